//! From settings to a trainer: the data, the energy sized for it, the method, Adam.
//!
//! Everything random here draws from `step_rng(seed, 0)`, in a fixed order (the energy's
//! initial weights, then the sample that a method may fit to), so that a resumed run
//! rebuilds exactly the objects the checkpoint's state is loaded into.

use super::config::TrainConfig;
use super::data::DataSource;
use anyhow::{Context, Result, bail};
use ebm::energy::{
    BernoulliRbmConfig, ConvEnergyConfig, EnergyModel, EnergySpec, GaussianBernoulliRbmConfig,
    NoiseConditionalConvConfig, NoiseConditionalModel,
};
use ebm::objective::registry::overlay_settings;
use ebm::objective::{METHODS, MethodInfo, MethodObjective, ModelKind, Objective};
use ebm::train::{Trainer, TrainerConfig, step_rng};
use ebm_nn::{Adam, Optimizer};
use ebm_tensor::Tensor;
use serde_json::{Map, Value, json};

/// Points drawn once for methods that fit something to the data (NCE's Gaussian noise) and
/// for checking what the data is.
const DATA_SAMPLE: usize = 10_000;

/// A trainer of an energy by a method chosen at run time.
pub type EnergyTrainer =
    Trainer<f32, dyn EnergyModel<f32>, Box<dyn Objective<f32, dyn EnergyModel<f32>>>>;

/// A trainer of a noise-conditional energy by a method chosen at run time.
pub type NoiseConditionalTrainer = Trainer<
    f32,
    dyn NoiseConditionalModel<f32>,
    Box<dyn Objective<f32, dyn NoiseConditionalModel<f32>>>,
>;

/// The trainer of a run, by the kind of model its method trains.
pub enum Session {
    /// A plain energy.
    Energy(EnergyTrainer),
    /// A noise-conditional energy.
    NoiseConditional(NoiseConditionalTrainer),
}

/// The freshly built model.
enum Model {
    Energy(Box<dyn EnergyModel<f32>>),
    NoiseConditional(Box<dyn NoiseConditionalModel<f32>>),
}

/// Everything a run needs, built and checked before anything is written.
pub struct Setup {
    /// The settings with every default filled in, as config.toml holds them.
    pub config: TrainConfig,
    /// The data.
    pub data: DataSource,
    /// The trainer.
    pub session: Session,
}

/// Builds the run of `config`: resolves the method's and the energy's settings, builds them
/// and the optimisers.
///
/// # Errors
/// Any setting out of range or unknown, naming it; data the method cannot train on.
pub fn build(mut config: TrainConfig) -> Result<Setup> {
    config.validate()?;
    let (data, resolved) = DataSource::open(&config.data)?;
    config.data = resolved;
    data.check_batch_size(config.batch_size)?;
    if let DataSource::File(_) = &data {
        // The resolved settings name the file so that a resume finds it from anywhere.
        let path = std::path::Path::new(&config.data.name).canonicalize()?;
        config.data.name = path.display().to_string();
    }
    if data.image_shape().is_some() && config.sample_every.is_none() {
        config.sample_every = Some(config.checkpoint_every);
    }
    let info = config.method.info()?;

    // The method's settings, sized for the data, and the rate of its own parameters.
    let shape = data.batch(1, &mut step_rng(config.seed, 0)).dims()[1..].to_vec();
    config.method = config.method.resolve_for(shape.iter().product())?;
    config.optimizer.aux_lr = aux_lr(info, config.optimizer.aux_lr)?;

    // The energy, sized for the data, built first from the setup's stream.
    let spec = resolve_energy(config.energy.as_ref(), info, &shape)?;
    let mut rng = step_rng(config.seed, 0);
    let invalid = || format!("invalid [energy] settings {}", spec.to_json());
    let model = match info.model {
        ModelKind::Energy => Model::Energy(spec.build(&mut rng).with_context(invalid)?),
        ModelKind::NoiseConditional => Model::NoiseConditional(
            spec.build_noise_conditional(&mut rng)
                .with_context(invalid)?,
        ),
    };

    // Then the sample a method may fit to, and the method.
    let mut built = match &model {
        Model::Energy(m) => m.spec(),
        Model::NoiseConditional(m) => m.spec(),
    };
    strip_nulls(&mut built.config);
    let takes = crate::checkpoint::sample_shape(&built)
        .with_context(|| format!("the energy `{}`", built.kind))?;
    data.check_shape(&takes, &format!("the energy `{}` ({})", built.kind, built.to_json()))
        .context("the [energy] settings do not fit the data (leave out its widths or dim to size it for the data)")?;
    config.energy = Some(built);
    let sample = data.sample(DATA_SAMPLE, &mut rng);
    check_data(info, &config.data.name, &sample)?;
    let objective = config
        .method
        .build_with_rng(&sample, &mut rng)
        .with_context(|| format!("cannot build method `{}`", config.method.name))?;

    // The trainer, with Adam for the energy and for the objective's own parameters.
    let adam = |c| -> Result<Box<dyn Optimizer<f32>>> { Ok(Box::new(Adam::new(c)?)) };
    let optimizer = || adam(config.optimizer.adam());
    let trainer_config = TrainerConfig {
        grad_clip: config.grad_clip,
        observe_every: 1,
    };
    let session = match (model, objective) {
        (Model::Energy(model), MethodObjective::Energy(objective)) => {
            let has_params = objective.params().is_some_and(|p| !p.is_empty());
            let mut trainer = Trainer::new(model, objective, optimizer()?, trainer_config);
            if has_params {
                trainer = trainer.with_aux_optimizer(adam(config.optimizer.aux_adam())?);
            }
            Session::Energy(trainer)
        }
        (Model::NoiseConditional(model), MethodObjective::NoiseConditional(objective)) => {
            Session::NoiseConditional(Trainer::new(model, objective, optimizer()?, trainer_config))
        }
        _ => unreachable!("the registry says which model each method trains"),
    };
    Ok(Setup {
        config,
        data,
        session,
    })
}

/// The learning rate of the method's own parameters: the one given, else the method's
/// default; none for a method without such parameters.
fn aux_lr(info: &MethodInfo, given: Option<f64>) -> Result<Option<f64>> {
    match (info.aux_lr, given) {
        (None, Some(lr)) => {
            let with: Vec<&str> = METHODS
                .iter()
                .filter(|m| m.aux_lr.is_some())
                .map(|m| m.name)
                .collect();
            bail!(
                "invalid aux_lr {lr} for method `{}`: it has no parameters of its own; aux_lr is for {}. Drop --aux-lr (or aux_lr in [optimizer])",
                info.name,
                with.join(", ")
            )
        }
        (default, given) => Ok(given.or(default)),
    }
}

/// Refuses data that the method cannot train on, before anything is written.
fn check_data(info: &MethodInfo, name: &str, sample: &Tensor<f32>) -> Result<()> {
    if info.binary_data && sample.data().iter().any(|&v| v != 0.0 && v != 1.0) {
        bail!(
            "method `{}` needs binary data (every value 0 or 1), and `{name}` is not binary: choose binary data, or another method",
            info.name
        );
    }
    Ok(())
}

/// The energy's spec: its kind (by default an MLP, noise-conditional for methods that need
/// one), its settings sized for samples of `shape`, overlaid with those given.
fn resolve_energy(
    given: Option<&EnergySpec>,
    info: &MethodInfo,
    shape: &[usize],
) -> Result<EnergySpec> {
    let noise_conditional = info.model == ModelKind::NoiseConditional;
    let asked = given.map_or("mlp", |s| s.kind.as_str());
    let kind = match (noise_conditional, asked) {
        (true, "mlp") => "ncsn-mlp",
        (true, "conv") => "ncsn-conv",
        (true, k) if !EnergySpec::NOISE_CONDITIONAL_KINDS.contains(&k) => bail!(
            "invalid energy `{k}` for method `{}`: it trains a noise-conditional energy E(x, sigma); use one of mlp, conv ({})",
            info.name,
            EnergySpec::NOISE_CONDITIONAL_KINDS.join(", ")
        ),
        (false, k) if !EnergySpec::KINDS.contains(&k) => bail!(
            "invalid energy `{k}` for method `{}`: expected one of {}",
            info.name,
            EnergySpec::KINDS.join(", ")
        ),
        (_, k) => k,
    };
    let mut settings = Value::Object(default_energy_settings(kind, shape)?);
    let given_settings = given.map_or_else(Map::new, |s| s.config.clone());
    overlay_settings(&mut settings, &Value::Object(given_settings));
    let Value::Object(config) = settings else {
        unreachable!("an object overlaid with an object")
    };
    Ok(EnergySpec {
        kind: kind.to_string(),
        config,
    })
}

/// The settings of an energy of `kind` for samples of `shape`: MLPs of two hidden layers of
/// 128, convolutional nets of 32 and 64 channels, 8 mixture components, 16 hidden units.
fn default_energy_settings(kind: &str, shape: &[usize]) -> Result<Map<String, Value>> {
    let d: usize = shape.iter().product();
    let image = || match *shape {
        [c, h, w] => Ok((c, h, w)),
        _ => bail!(
            "invalid energy `{kind}` for samples of shape {shape:?}: it needs images [c, h, w]; use mlp"
        ),
    };
    let value = match kind {
        "mlp" | "ncsn-mlp" => json!({ "widths": [d, 128, 128, 1] }),
        "conv" => {
            let (c, h, w) = image()?;
            serde_json::to_value(ConvEnergyConfig::new(c, h, w, &[32, 64]))?
        }
        "ncsn-conv" => {
            let (c, h, w) = image()?;
            serde_json::to_value(NoiseConditionalConvConfig::new(c, h, w, &[32, 64]))?
        }
        "gaussian" => json!({ "dim": d }),
        "gmm" => json!({ "dim": d, "n_components": 8 }),
        "rbm" => serde_json::to_value(BernoulliRbmConfig::new(d, 16))?,
        "gaussian-rbm" => serde_json::to_value(GaussianBernoulliRbmConfig::new(d, 16))?,
        _ => json!({}),
    };
    let Value::Object(mut map) = value else {
        unreachable!("energy configs are structs")
    };
    strip_nulls(&mut map);
    Ok(map)
}

/// Removes the `null`s (unset options), which TOML cannot hold, from a map and the maps in it.
fn strip_nulls(map: &mut Map<String, Value>) {
    map.retain(|_, v| !v.is_null());
    for v in map.values_mut() {
        if let Value::Object(inner) = v {
            strip_nulls(inner);
        }
    }
}
