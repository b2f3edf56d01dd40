//! The self-description of a learnable energy, and rebuilding one from it.

use super::{
    BananaEnergy, BernoulliRbm, ConvEnergy, DoubleWellEnergy, EnergyModel, GaussianBernoulliRbm,
    GaussianConfig, GaussianEnergy, GaussianMixtureEnergy, MlpEnergy, NoiseConditionalConv,
    NoiseConditionalMlp, NoiseConditionalModel, RingEnergy,
};
use crate::Error;
use ebm_tensor::Float;
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The architecture and hyper-parameters of a learnable energy: a kind (such as `"mlp"`) and
/// its settings as a JSON object.
///
/// Serialised flat, `{"kind": "mlp", "widths": [2, 128, 128, 1], ...}`, so that it reads the
/// same in a checkpoint's metadata and in a TOML config. [`EnergySpec::build`] makes a fresh
/// model of that architecture (random weights), ready to load a checkpoint's weights into.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EnergySpec {
    /// The kind of energy, such as `"mlp"` or `"gaussian"`.
    pub kind: String,
    /// Its settings.
    #[serde(flatten)]
    pub config: Map<String, Value>,
}

impl EnergySpec {
    /// A spec of the given kind whose settings are the fields of `config` (a struct that
    /// serialises to a JSON object).
    ///
    /// # Panics
    /// When `config` does not serialise to a JSON object (a programmer error).
    pub fn new<C: Serialize>(kind: &str, config: &C) -> Self {
        let config = match serde_json::to_value(config) {
            Ok(Value::Object(map)) => map,
            other => {
                panic!("the config of energy `{kind}` must serialise to an object, got {other:?}")
            }
        };
        EnergySpec {
            kind: kind.to_string(),
            config,
        }
    }

    /// The settings, read back as a config struct.
    ///
    /// # Errors
    /// [`Error::Restore`] when they do not match `C` (a field missing, unknown or mistyped).
    pub fn config<C: serde::de::DeserializeOwned>(&self) -> Result<C, Error> {
        serde_json::from_value(Value::Object(self.config.clone())).map_err(|e| Error::Restore {
            what: format!("the settings of energy `{}`", self.kind),
            reason: format!(
                "{e}; the settings were {}",
                Value::Object(self.config.clone())
            ),
        })
    }

    /// The spec as one line of JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a JSON object always serialises")
    }

    /// A spec from JSON, as [`EnergySpec::to_json`] writes it.
    ///
    /// # Errors
    /// [`Error::Restore`] for JSON that is not an object with a string `kind`.
    pub fn from_json(json: &str) -> Result<Self, Error> {
        serde_json::from_str(json).map_err(|e| Error::Restore {
            what: "an energy spec".into(),
            reason: format!("{e}; expected a JSON object such as {{\"kind\": \"mlp\", ...}}"),
        })
    }

    /// A fresh model of this architecture, its weights initialised from `rng`.
    ///
    /// # Errors
    /// [`Error::Restore`] for an unknown kind, a noise-conditional one (see
    /// [`EnergySpec::build_noise_conditional`]) or settings that do not match it; the errors of
    /// the kind's constructor for settings out of range.
    pub fn build<T: Float, R: Rng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<Box<dyn EnergyModel<T>>, Error> {
        match self.kind.as_str() {
            "mlp" => Ok(Box::new(MlpEnergy::<T>::new(self.config()?, rng)?)),
            "conv" => Ok(Box::new(ConvEnergy::<T>::new(self.config()?, rng)?)),
            "rbm" => Ok(Box::new(BernoulliRbm::<T>::new(self.config()?, rng)?)),
            "gaussian-rbm" => Ok(Box::new(GaussianBernoulliRbm::<T>::new(
                self.config()?,
                rng,
            )?)),
            "gaussian" => Ok(Box::new(GaussianEnergy::new(
                self.config::<GaussianConfig>()?.dim,
            )?)),
            "gmm" => Ok(Box::new(GaussianMixtureEnergy::new(self.config()?, rng)?)),
            "double-well" => Ok(Box::new(DoubleWellEnergy::new(self.config()?)?)),
            "banana" => Ok(Box::new(BananaEnergy::new(self.config()?)?)),
            "ring" => Ok(Box::new(RingEnergy::new(self.config()?)?)),
            kind if Self::NOISE_CONDITIONAL_KINDS.contains(&kind) => Err(Error::Restore {
                what: format!("energy of kind `{kind}`"),
                reason: "it is noise-conditional, E(x, sigma): build it with `EnergySpec::build_noise_conditional` (or load it with `load_noise_conditional_energy`)".into(),
            }),
            _ => Err(self.unknown_kind()),
        }
    }

    /// A fresh noise-conditional model of this architecture, its weights initialised from
    /// `rng`.
    ///
    /// # Errors
    /// [`Error::Restore`] for an unknown kind, one that is not noise-conditional (see
    /// [`EnergySpec::build`]) or settings that do not match it; the errors of the kind's
    /// constructor for settings out of range.
    pub fn build_noise_conditional<T: Float, R: Rng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<Box<dyn NoiseConditionalModel<T>>, Error> {
        match self.kind.as_str() {
            "ncsn-mlp" => Ok(Box::new(NoiseConditionalMlp::<T>::new(self.config()?, rng)?)),
            "ncsn-conv" => Ok(Box::new(NoiseConditionalConv::<T>::new(
                self.config()?,
                rng,
            )?)),
            kind if Self::KINDS.contains(&kind) => Err(Error::Restore {
                what: format!("noise-conditional energy of kind `{kind}`"),
                reason: "it is a plain energy E(x): build it with `EnergySpec::build` (or load it with `load_energy`)".into(),
            }),
            _ => Err(self.unknown_kind()),
        }
    }

    fn unknown_kind(&self) -> Error {
        Error::Restore {
            what: format!("energy of kind `{}`", self.kind),
            reason: format!(
                "unknown kind; the known kinds are: {} (and, noise-conditional: {})",
                Self::KINDS.join(", "),
                Self::NOISE_CONDITIONAL_KINDS.join(", ")
            ),
        }
    }

    /// The kinds that [`EnergySpec::build`] knows.
    pub const KINDS: &'static [&'static str] = &[
        "mlp",
        "conv",
        "gaussian",
        "gmm",
        "double-well",
        "banana",
        "ring",
        "rbm",
        "gaussian-rbm",
    ];

    /// The kinds that [`EnergySpec::build_noise_conditional`] knows.
    pub const NOISE_CONDITIONAL_KINDS: &'static [&'static str] = &["ncsn-mlp", "ncsn-conv"];
}
