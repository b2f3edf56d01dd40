//! The self-description of a learnable energy, and rebuilding one from it.

use super::{
    BananaEnergy, DoubleWellEnergy, EnergyModel, GaussianConfig, GaussianEnergy,
    GaussianMixtureEnergy, RingEnergy,
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
    /// [`Error::Restore`] for an unknown kind or settings that do not match it; the errors of
    /// the kind's constructor for settings out of range.
    pub fn build<T: Float, R: Rng + ?Sized>(
        &self,
        rng: &mut R,
    ) -> Result<Box<dyn EnergyModel<T>>, Error> {
        Ok(match self.kind.as_str() {
            "gaussian" => Box::new(GaussianEnergy::new(self.config::<GaussianConfig>()?.dim)?),
            "gmm" => Box::new(GaussianMixtureEnergy::new(self.config()?, rng)?),
            "double-well" => Box::new(DoubleWellEnergy::new(self.config()?)?),
            "banana" => Box::new(BananaEnergy::new(self.config()?)?),
            "ring" => Box::new(RingEnergy::new(self.config()?)?),
            _ => {
                return Err(Error::Restore {
                    what: format!("energy of kind `{}`", self.kind),
                    reason: format!(
                        "unknown kind; the known kinds are: {}",
                        Self::KINDS.join(", ")
                    ),
                });
            }
        })
    }

    /// The kinds that [`EnergySpec::build`] knows.
    pub const KINDS: &'static [&'static str] =
        &["gaussian", "gmm", "double-well", "banana", "ring"];
}
