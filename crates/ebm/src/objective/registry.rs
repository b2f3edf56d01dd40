//! Every training method by a short name, and a serialisable spec that builds one: what a
//! command line or a config file needs to choose a method at run time.
//!
//! A [`MethodSpec`] is a method name and that method's settings, serialised flat, so that a
//! TOML config reads
//!
//! ```toml
//! [method]
//! name = "pcd"
//! n_steps = 40
//! kernel = { langevin = { step_size = 0.005, noise_scale = 0.1 } }
//! ```
//!
//! Settings that are not given keep the method's defaults ([`MethodSpec::resolve`] fills them
//! in); [`MethodSpec::build`] makes the objective. [`METHODS`] lists the names with a line
//! each.
//!
//! Adding a method: one [`MethodInfo`] line in [`METHODS`] and one arm in `MethodSpec::make`
//! (its default settings and its constructor). The tests check that every listed method
//! resolves and builds.
//!
//! Methods with parameters of their own (NCE's log-normaliser, the critic of `lsd`, the flows
//! of `fce` and `adversarial`) need a second optimiser for them
//! ([`crate::train::Trainer::with_aux_optimizer`]); [`MethodInfo::aux_lr`] is its default
//! learning rate.

use super::{
    Adversarial, AdversarialConfig, ChainInit, ChainStart, ConditionalNce, ConditionalNceConfig,
    FlowContrastive, FlowContrastiveConfig, KernelSteinDiscrepancy, KernelSteinDiscrepancyConfig,
    LearnedStein, LearnedSteinConfig, MaximumLikelihood, MaximumLikelihoodConfig,
    MinimumProbabilityFlow, MinimumProbabilityFlowConfig, MinimumVelocity, MinimumVelocityConfig,
    Nce, NceConfig, Objective,
};
use crate::Error;
use crate::energy::{EnergyModel, NoiseConditionalModel};
use crate::objective::multiscale::{
    MultiScaleDenoisingScoreMatching, MultiScaleDenoisingScoreMatchingConfig,
};
use crate::objective::score_matching::{
    DenoisingScoreMatching, DenoisingScoreMatchingConfig, ExactScoreMatching,
    ExactScoreMatchingConfig, SlicedScoreMatching, SlicedScoreMatchingConfig,
};
use crate::sampler::RestartDistribution;
use ebm_nn::RealNvpConfig;
use ebm_tensor::{Float, Tensor};
use rand::{Rng, SeedableRng};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The kind of model a method trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ModelKind {
    /// A plain energy E(x): [`EnergyModel`].
    Energy,
    /// A noise-conditional energy E(x, sigma): [`NoiseConditionalModel`].
    NoiseConditional,
}

/// Where a method's sampler settings live, for [`MethodSpec::set_sampler`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplerKnobs {
    /// The method samples nothing.
    None,
    /// An MCMC kernel (`kernel.<kind>.step_size`) run for `n_steps` steps per training step.
    Mcmc,
    /// One Langevin step of size `step_size` (minimum velocity learning).
    LangevinStep,
}

/// A registered method: its name, a one-line description, and what it needs.
#[derive(Clone, Copy, Debug)]
pub struct MethodInfo {
    /// The short name (`dsm`, `pcd`, ...).
    pub name: &'static str,
    /// One line saying what the method is.
    pub about: &'static str,
    /// The kind of model it trains.
    pub model: ModelKind,
    /// Whether it needs binary data (values 0 or 1).
    pub binary_data: bool,
    /// Where its sampler settings live.
    pub sampler: SamplerKnobs,
    /// The default learning rate of the method's own parameters (a log-normaliser, a critic,
    /// a flow), which a second optimiser trains; `None` for methods without any.
    pub aux_lr: Option<f64>,
}

const fn method(name: &'static str, about: &'static str) -> MethodInfo {
    MethodInfo {
        name,
        about,
        model: ModelKind::Energy,
        binary_data: false,
        sampler: SamplerKnobs::None,
        aux_lr: None,
    }
}

/// A method with parameters of its own, trained at `aux_lr` by default.
const fn with_params(info: MethodInfo, aux_lr: f64) -> MethodInfo {
    MethodInfo {
        aux_lr: Some(aux_lr),
        ..info
    }
}

const fn mcmc(name: &'static str, about: &'static str) -> MethodInfo {
    MethodInfo {
        sampler: SamplerKnobs::Mcmc,
        ..method(name, about)
    }
}

/// Every method, in the order the help lists them.
pub const METHODS: &[MethodInfo] = &[
    mcmc(
        "cd",
        "maximum likelihood, contrastive divergence: Langevin chains start at the data",
    ),
    mcmc(
        "pcd",
        "maximum likelihood, persistent chains kept across steps (one per batch row)",
    ),
    mcmc(
        "replay",
        "maximum likelihood with a replay buffer of chains, 5% restarted from noise",
    ),
    mcmc(
        "short-run",
        "maximum likelihood, short-run MCMC: fresh chains from noise every step",
    ),
    method(
        "esm",
        "exact score matching (Hessian trace, for small dimensions)",
    ),
    method("dsm", "denoising score matching at one noise scale"),
    method("ssm", "sliced score matching (random projections)"),
    method("ssm-vr", "sliced score matching, variance-reduced"),
    MethodInfo {
        model: ModelKind::NoiseConditional,
        ..method(
            "ncsn",
            "multi-scale denoising score matching (noise-conditional energy)",
        )
    },
    with_params(
        method(
            "nce",
            "noise-contrastive estimation against a Gaussian fitted to the data",
        ),
        1e-3,
    ),
    // Measured on 8gaussians with an MLP energy 2-64-64-1, Adam: energy 2e-3, flow 2e-4.
    with_params(
        method(
            "fce",
            "flow contrastive estimation: NCE against a Real NVP flow trained to fool it",
        ),
        2e-4,
    ),
    method("cnce", "conditional NCE: data against its own noisy copies"),
    method(
        "ksd",
        "kernel Stein discrepancy (RBF kernel, median bandwidth)",
    ),
    // Measured on 8gaussians with an MLP energy 2-64-64-1, Adam: energy 1e-3, critic 3e-3
    // (the critic must keep up with the energy).
    with_params(
        method(
            "lsd",
            "learned Stein discrepancy: a critic MLP trained to maximise the Stein term",
        ),
        3e-3,
    ),
    MethodInfo {
        binary_data: true,
        ..method("mpf", "minimum probability flow (binary data, RBM)")
    },
    MethodInfo {
        sampler: SamplerKnobs::LangevinStep,
        ..method(
            "mvl",
            "minimum velocity learning: the flow of one Langevin step",
        )
    },
    // Measured on 8gaussians with an MLP energy 2-64-64-1, Adam: energy 1e-3, flow 1e-3.
    with_params(
        method(
            "adversarial",
            "maximum likelihood against a Real NVP flow sampler trained to match the model",
        ),
        1e-3,
    ),
];

/// The registered method called `name`.
///
/// # Errors
/// [`Error::InvalidConfig`] naming `name` and listing the known methods.
pub fn method_info(name: &str) -> Result<&'static MethodInfo, Error> {
    METHODS.iter().find(|m| m.name == name).ok_or_else(|| {
        let names: Vec<&str> = METHODS.iter().map(|m| m.name).collect();
        Error::config("method", name, format!("one of {}", names.join(", ")))
    })
}

/// An objective built from a [`MethodSpec`], by the kind of model it trains.
pub enum MethodObjective<T: Float> {
    /// Trains an [`EnergyModel`].
    Energy(Box<dyn Objective<T, dyn EnergyModel<T>>>),
    /// Trains a [`NoiseConditionalModel`].
    NoiseConditional(Box<dyn Objective<T, dyn NoiseConditionalModel<T>>>),
}

/// A method by name, with its settings (those not given keep the method's defaults).
///
/// Serialised flat: `{"name": "dsm", "sigma": 0.1}` in JSON, a `[method]` table with
/// `name = "dsm"` and the settings in TOML.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MethodSpec {
    /// The method's name, one of [`METHODS`].
    pub name: String,
    /// Its settings, the fields of its config struct (such as
    /// [`DenoisingScoreMatchingConfig`]); nested tables are merged field by field.
    #[serde(flatten)]
    pub config: Map<String, Value>,
}

impl MethodSpec {
    /// The method `name` with its default settings.
    pub fn new(name: &str) -> Self {
        MethodSpec {
            name: name.to_string(),
            config: Map::new(),
        }
    }

    /// The registered method.
    ///
    /// # Errors
    /// As [`method_info`].
    pub fn info(&self) -> Result<&'static MethodInfo, Error> {
        method_info(&self.name)
    }

    /// The spec with every setting filled in: the method's defaults overlaid with these
    /// settings (see [`overlay_settings`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown method, or settings that do not fit its config
    /// (an unknown field, a value of the wrong type), naming the field.
    ///
    /// Settings sized by the data (the flow's `dim` of `fce` and `adversarial`) take the
    /// library's default (2); [`MethodSpec::resolve_for`] sizes them.
    pub fn resolve(&self) -> Result<MethodSpec, Error> {
        self.resolve_with(None)
    }

    /// [`MethodSpec::resolve`] for data with `dim` values per sample: the settings sized by
    /// the data default to `dim`.
    ///
    /// # Errors
    /// As [`MethodSpec::resolve`].
    pub fn resolve_for(&self, dim: usize) -> Result<MethodSpec, Error> {
        self.resolve_with(Some(dim))
    }

    fn resolve_with(&self, dim: Option<usize>) -> Result<MethodSpec, Error> {
        let (config, _) = self.make::<f64>(dim, None)?;
        Ok(MethodSpec {
            name: self.name.clone(),
            config,
        })
    }

    /// The objective, ready to train: [`MethodSpec::build_with_rng`] with the fixed seed 0
    /// for the initial weights of the method's own networks (the critic of `lsd`, the flows
    /// of `fce` and `adversarial`).
    ///
    /// # Errors
    /// As [`MethodSpec::build_with_rng`].
    pub fn build<T: Float>(&self, data: &Tensor<T>) -> Result<MethodObjective<T>, Error> {
        self.build_with_rng(data, &mut rand::rngs::StdRng::seed_from_u64(0))
    }

    /// The objective, ready to train, with its own networks (if any) initialised from `rng`.
    ///
    /// `data` is a sample of the training data `[n, ...]`: methods that fit something to it
    /// (NCE fits its Gaussian noise) use it, and methods with networks on the data (the
    /// critic of `lsd`, the flows of `fce` and `adversarial`) take its dimension d, the values
    /// per sample.
    ///
    /// # Errors
    /// As [`MethodSpec::resolve`]; the errors of the method's constructor for settings out of
    /// range (naming the setting); [`Error::InvalidConfig`] for a flow `dim` other than d.
    pub fn build_with_rng<T: Float>(
        &self,
        data: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<MethodObjective<T>, Error> {
        let dim = sample_len(data);
        let (_, built) = self.make(Some(dim), Some((data, rng)))?;
        Ok(built.expect("`make` builds when given data"))
    }

    /// Sets the sampler's step size and number of steps per training step, where the method
    /// has them ([`MethodInfo::sampler`]). For an MCMC method, `step_size` sets the kernel's
    /// step size and, for Langevin, its noise scale to sqrt(2 step_size) (the textbook choice;
    /// set `noise_scale` in the settings afterwards to decouple them).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an unknown method, or a setting the method does not have
    /// (naming the methods that have it).
    pub fn set_sampler(
        &mut self,
        step_size: Option<f64>,
        n_steps: Option<usize>,
    ) -> Result<(), Error> {
        let knobs = self.info()?.sampler;
        let with = |keep: fn(SamplerKnobs) -> bool| {
            let names: Vec<&str> = METHODS
                .iter()
                .filter(|m| keep(m.sampler))
                .map(|m| m.name)
                .collect();
            names.join(", ")
        };
        if let Some(n) = n_steps {
            if knobs != SamplerKnobs::Mcmc {
                let what = format!("sampler n_steps for method `{}`", self.name);
                let expected = format!(
                    "a method that runs chains: {}",
                    with(|k| k == SamplerKnobs::Mcmc)
                );
                return Err(Error::config(what, n, expected));
            }
            self.config.insert("n_steps".into(), n.into());
        }
        let Some(step) = step_size else {
            return Ok(());
        };
        match knobs {
            SamplerKnobs::None => {
                let what = format!("sampler step_size for method `{}`", self.name);
                let expected = format!(
                    "a method with a sampler: {}",
                    with(|k| k != SamplerKnobs::None)
                );
                Err(Error::config(what, step, expected))
            }
            SamplerKnobs::LangevinStep => {
                self.config.insert("step_size".into(), step.into());
                Ok(())
            }
            SamplerKnobs::Mcmc => {
                let resolved = self.resolve()?;
                let Some(Value::Object(kernel)) = resolved.config.get("kernel") else {
                    unreachable!("an MCMC method always has a kernel")
                };
                let (kind, settings) = kernel.iter().next().expect("one kernel");
                let mut settings = settings.clone();
                settings["step_size"] = step.into();
                if kind == "langevin" {
                    settings["noise_scale"] = (2.0 * step).sqrt().into();
                }
                let mut kernel = Map::new();
                kernel.insert(kind.clone(), settings);
                self.config.insert("kernel".into(), Value::Object(kernel));
                Ok(())
            }
        }
    }

    /// The resolved settings and, given data, the objective: the one place that knows each
    /// method's config type, defaults and constructor.
    ///
    /// `dim` sizes the settings that depend on the data (2 when not known).
    fn make<T: Float>(
        &self,
        dim: Option<usize>,
        data: Option<(&Tensor<T>, &mut dyn Rng)>,
    ) -> Result<Made<T>, Error> {
        let name = self.name.as_str();
        let info = method_info(name)?;
        let o = &self.config;
        let flow = RealNvpConfig {
            dim: dim.unwrap_or(RealNvpConfig::default().dim),
            ..RealNvpConfig::default()
        };
        match info.name {
            "cd" | "pcd" | "replay" | "short-run" => {
                let c = merged(name, maximum_likelihood_default(name), o)?;
                finish(c, data, |c, _, _| energy(MaximumLikelihood::<T>::new(c)?))
            }
            "esm" => {
                let c = merged(name, ExactScoreMatchingConfig::default(), o)?;
                finish(c, data, |c, _, _| energy(ExactScoreMatching::new(c)?))
            }
            "dsm" => {
                let c = merged(name, DenoisingScoreMatchingConfig::default(), o)?;
                finish(c, data, |c, _, _| energy(DenoisingScoreMatching::new(c)?))
            }
            "ssm" | "ssm-vr" => {
                let default = SlicedScoreMatchingConfig {
                    variance_reduced: name == "ssm-vr",
                    ..SlicedScoreMatchingConfig::default()
                };
                let c = merged(name, default, o)?;
                finish(c, data, |c, _, _| energy(SlicedScoreMatching::new(c)?))
            }
            "ncsn" => {
                let c = merged(name, MultiScaleDenoisingScoreMatchingConfig::default(), o)?;
                finish(c, data, |c, _, _| {
                    let o = MultiScaleDenoisingScoreMatching::new(c)?;
                    Ok(MethodObjective::NoiseConditional(Box::new(o)))
                })
            }
            "nce" => {
                let c = merged(name, NceConfig::default(), o)?;
                finish(c, data, |c, d, _| energy(Nce::fit_gaussian(c, d)?))
            }
            "cnce" => {
                let c = merged(name, ConditionalNceConfig::default(), o)?;
                finish(c, data, |c, _, _| energy(ConditionalNce::new(c)?))
            }
            "ksd" => {
                let c = merged(name, KernelSteinDiscrepancyConfig::default(), o)?;
                finish(c, data, |c, _, _| energy(KernelSteinDiscrepancy::new(c)?))
            }
            "mpf" => {
                let c = merged(name, MinimumProbabilityFlowConfig::default(), o)?;
                finish(c, data, |c, _, _| energy(MinimumProbabilityFlow::new(c)?))
            }
            "mvl" => {
                let c = merged(name, MinimumVelocityConfig::default(), o)?;
                finish(c, data, |c, _, _| energy(MinimumVelocity::new(c)?))
            }
            "fce" => {
                let default = FlowContrastiveConfig {
                    flow,
                    ..FlowContrastiveConfig::default()
                };
                let c = merged(name, default, o)?;
                finish(c, data, |c, d, rng| {
                    check_flow_dim(name, &c.flow, d)?;
                    energy(FlowContrastive::new(c, rng)?)
                })
            }
            "lsd" => {
                let c = merged(name, LearnedSteinConfig::default(), o)?;
                finish(c, data, |c, d, rng| {
                    energy(LearnedStein::new(c, sample_len(d), rng)?)
                })
            }
            "adversarial" => {
                let default = AdversarialConfig {
                    flow,
                    ..AdversarialConfig::default()
                };
                let c = merged(name, default, o)?;
                finish(c, data, |c, d, rng| {
                    check_flow_dim(name, &c.flow, d)?;
                    energy(Adversarial::new(c, rng)?)
                })
            }
            other => unreachable!("method `{other}` is listed in METHODS but has no arm in make"),
        }
    }
}

/// The maximum-likelihood settings of each chain start: the `replay` default (a buffer of
/// 10,000, 20 Langevin steps of 0.01), with the chains of CD starting at the data, those of
/// PCD persistent from the first batch, and short-run chains from U[-4, 4]^d for 100 steps.
fn maximum_likelihood_default(name: &str) -> MaximumLikelihoodConfig {
    let default = MaximumLikelihoodConfig::default();
    let noise = RestartDistribution::Uniform {
        low: -4.0,
        high: 4.0,
    };
    match name {
        "cd" => MaximumLikelihoodConfig {
            chain_init: ChainInit::Data,
            ..default
        },
        "pcd" => MaximumLikelihoodConfig {
            chain_init: ChainInit::Persistent(ChainStart::Data),
            ..default
        },
        "short-run" => MaximumLikelihoodConfig {
            chain_init: ChainInit::Noise(noise),
            n_steps: 100,
            ..default
        },
        _ => default,
    }
}

/// The resolved settings, and the objective when it was built.
type Made<T> = (Map<String, Value>, Option<MethodObjective<T>>);

/// An energy objective, boxed.
fn energy<T: Float, O>(objective: O) -> Result<MethodObjective<T>, Error>
where
    O: Objective<T, dyn EnergyModel<T>> + 'static,
{
    Ok(MethodObjective::Energy(Box::new(objective)))
}

/// The settings as a map (without the `null`s of unset options, which TOML cannot hold), and
/// the objective when there is data (and an RNG) to build it with.
fn finish<T: Float, C: Serialize>(
    config: C,
    data: Option<(&Tensor<T>, &mut dyn Rng)>,
    build: impl FnOnce(C, &Tensor<T>, &mut dyn Rng) -> Result<MethodObjective<T>, Error>,
) -> Result<Made<T>, Error> {
    let Value::Object(mut map) = serde_json::to_value(&config).expect("configs serialise") else {
        unreachable!("method configs are structs")
    };
    strip_nulls(&mut map);
    let built = data.map(|(d, rng)| build(config, d, rng)).transpose()?;
    Ok((map, built))
}

/// The values per sample of a batch `[n, ...]` (0 for an empty one).
fn sample_len<T: Float>(data: &Tensor<T>) -> usize {
    match data.rank() {
        0 => 0,
        _ => data.numel().checked_div(data.dim(0)).unwrap_or(0),
    }
}

/// `Ok(())` when the flow takes samples of the data's dimension, else an error naming both.
fn check_flow_dim<T: Float>(
    name: &str,
    flow: &RealNvpConfig,
    data: &Tensor<T>,
) -> Result<(), Error> {
    let d = sample_len(data);
    if flow.dim == d {
        return Ok(());
    }
    Err(Error::config(
        format!("flow dim of method `{name}`"),
        flow.dim,
        format!("the data's {d} values per sample: leave `flow.dim` out, or set it to {d}"),
    ))
}

/// `default` overlaid with `settings`, read back as `C`.
fn merged<C: Serialize + DeserializeOwned>(
    name: &str,
    default: C,
    settings: &Map<String, Value>,
) -> Result<C, Error> {
    let mut value = serde_json::to_value(&default).expect("configs serialise");
    overlay_settings(&mut value, &Value::Object(settings.clone()));
    serde_json::from_value(value).map_err(|e| {
        let mut defaults = serde_json::to_value(&default).expect("configs serialise");
        if let Value::Object(map) = &mut defaults {
            strip_nulls(map);
        }
        Error::config(
            format!("settings of method `{name}`"),
            e,
            format!("the fields of its config, whose defaults are {defaults}"),
        )
    })
}

/// Overlays `over` onto `base`, field by field: where both are objects and every field of
/// `over` is a field of `base`, each field is overlaid in turn; anything else (a value, an
/// enum variant other than the default's, an unknown field) replaces what is there, so that
/// deserialising the result reports unknown fields by name.
pub fn overlay_settings(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) if o.keys().all(|k| b.contains_key(k)) => {
            for (k, v) in o {
                overlay_settings(b.get_mut(k).expect("checked"), v);
            }
        }
        (base, over) => *base = over.clone(),
    }
}

/// Removes the `null` entries of a map and of the maps inside it.
pub(crate) fn strip_nulls(map: &mut Map<String, Value>) {
    map.retain(|_, v| !v.is_null());
    for v in map.values_mut() {
        if let Value::Object(inner) = v {
            strip_nulls(inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn every_method_resolves_and_builds_with_its_defaults() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let data = Tensor::<f32>::randn([64, 2], &mut rng);
        for info in METHODS {
            let spec = MethodSpec::new(info.name);
            let resolved = spec.resolve().unwrap();
            assert_eq!(resolved.resolve().unwrap(), resolved, "{}", info.name);
            let built = spec.build(&data).unwrap();
            let noise_conditional = matches!(built, MethodObjective::NoiseConditional(_));
            assert_eq!(noise_conditional, info.model == ModelKind::NoiseConditional);
        }
    }

    #[test]
    fn methods_with_parameters_of_their_own_have_an_aux_lr() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let data = Tensor::<f32>::randn([64, 2], &mut rng);
        for info in METHODS {
            let MethodObjective::Energy(o) = MethodSpec::new(info.name).build(&data).unwrap()
            else {
                continue;
            };
            let own = o.params().is_some_and(|p| !p.is_empty());
            assert_eq!(own, info.aux_lr.is_some(), "{}", info.name);
        }
    }

    #[test]
    fn flows_are_sized_by_the_data() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let data = Tensor::<f32>::randn([32, 3], &mut rng);
        for name in ["fce", "adversarial"] {
            let spec = MethodSpec::new(name);
            assert_eq!(spec.resolve().unwrap().config["flow"]["dim"], 2);
            let resolved = spec.resolve_for(3).unwrap();
            assert_eq!(resolved.config["flow"]["dim"], 3);
            assert_eq!(resolved.resolve().unwrap(), resolved, "{name}");
            resolved.build(&data).unwrap();
            spec.build(&data).unwrap();

            // A flow of another dimension is named with the fix.
            let two = spec.resolve().unwrap();
            let err = two.build(&data).map(|_| ()).unwrap_err().to_string();
            assert!(
                err.contains("flow dim") && err.contains("3 values"),
                "{err}"
            );
        }
        MethodSpec::new("lsd").build(&data).unwrap();
    }

    #[test]
    fn settings_overlay_the_method_defaults() {
        let spec: MethodSpec =
            serde_json::from_str(r#"{"name": "pcd", "kernel": {"langevin": {"step_size": 0.5}}}"#)
                .unwrap();
        let resolved = spec.resolve().unwrap();
        let kernel = &resolved.config["kernel"]["langevin"];
        assert_eq!(kernel["step_size"], 0.5);
        assert_eq!(kernel["noise_scale"], 0.02f64.sqrt());
        assert_eq!(resolved.config["chain_init"]["persistent"], "data");
        assert_eq!(
            MethodSpec::new("ssm").resolve().unwrap().config["variance_reduced"],
            false
        );
    }

    #[test]
    fn unknown_methods_and_fields_are_named() {
        let err = MethodSpec::new("dsn").resolve().unwrap_err().to_string();
        assert!(err.contains("`dsn`") || err.contains("dsn"), "{err}");
        assert!(err.contains("dsm") && err.contains("pcd"), "{err}");

        let mut spec = MethodSpec::new("dsm");
        spec.config.insert("sigmaa".into(), 0.2.into());
        let err = spec.resolve().unwrap_err().to_string();
        assert!(err.contains("sigmaa") && err.contains("dsm"), "{err}");
    }

    #[test]
    fn sampler_settings_go_where_the_method_keeps_them() {
        let mut spec = MethodSpec::new("short-run");
        spec.set_sampler(Some(0.02), Some(7)).unwrap();
        let resolved = spec.resolve().unwrap();
        assert_eq!(resolved.config["n_steps"], 7);
        assert_eq!(resolved.config["kernel"]["langevin"]["step_size"], 0.02);
        assert_eq!(
            resolved.config["kernel"]["langevin"]["noise_scale"],
            0.04f64.sqrt()
        );

        let mut mvl = MethodSpec::new("mvl");
        mvl.set_sampler(Some(0.003), None).unwrap();
        assert_eq!(mvl.resolve().unwrap().config["step_size"], 0.003);
        let err = mvl.set_sampler(None, Some(3)).unwrap_err().to_string();
        assert!(err.contains("mvl") && err.contains("replay"), "{err}");
        let err = MethodSpec::new("dsm")
            .set_sampler(Some(0.1), None)
            .unwrap_err();
        assert!(err.to_string().contains("dsm"), "{err}");
    }
}
