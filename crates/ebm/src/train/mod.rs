//! The training loop: any [`Objective`] with any optimiser, with a divergence watchdog and
//! metrics delivered to an [`Observer`]; checkpoints that resume bit for bit
//! ([`Trainer::save`], [`Trainer::load_checkpoint`], [`step_rng`]).

mod resume;
mod rng;

pub use rng::step_rng;

use crate::Error;
use crate::energy::{
    EnergyModel, NoiseConditionalModel, save_energy, save_noise_conditional_energy,
};
use crate::objective::{Metrics, Objective};
use ebm_nn::{Optimizer, ParamGrads, ParamStore, StateDict, clip_grad_norm};
use ebm_tensor::autodiff::{GradOptions, grad};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use std::collections::BTreeMap;
use std::path::Path;

/// A model that a [`Trainer`] can train: parameters, per-step state, and a checkpoint.
///
/// Implemented for `dyn EnergyModel<T>` and `dyn NoiseConditionalModel<T>`: box a built-in
/// energy (`Box::new(mlp) as Box<dyn EnergyModel<f32>>`) to train it.
pub trait Trainable<T: Float> {
    /// The parameters.
    fn params(&self) -> &ParamStore<T>;
    /// The parameters, for the optimiser.
    fn params_mut(&mut self) -> &mut ParamStore<T>;
    /// Advances the once-per-step state (spectral normalisation).
    fn update_state(&mut self);
    /// Writes the model, with `extras` beside its weights, to a checkpoint.
    ///
    /// # Errors
    /// As [`save_energy`].
    fn save(&self, path: &Path, extras: &StateDict<T>) -> Result<(), Error>;
}

impl<T: Float> Trainable<T> for dyn EnergyModel<T> {
    fn params(&self) -> &ParamStore<T> {
        EnergyModel::params(self)
    }
    fn params_mut(&mut self) -> &mut ParamStore<T> {
        EnergyModel::params_mut(self)
    }
    fn update_state(&mut self) {
        EnergyModel::update_state(self)
    }
    fn save(&self, path: &Path, extras: &StateDict<T>) -> Result<(), Error> {
        save_energy(path, self, extras)
    }
}

impl<T: Float> Trainable<T> for dyn NoiseConditionalModel<T> {
    fn params(&self) -> &ParamStore<T> {
        NoiseConditionalModel::params(self)
    }
    fn params_mut(&mut self) -> &mut ParamStore<T> {
        NoiseConditionalModel::params_mut(self)
    }
    fn update_state(&mut self) {
        NoiseConditionalModel::update_state(self)
    }
    fn save(&self, path: &Path, extras: &StateDict<T>) -> Result<(), Error> {
        save_noise_conditional_energy(path, self, extras)
    }
}

/// Receives the metrics of training steps.
pub trait Observer {
    /// Called after step `step` (counting from 1) with its metrics.
    fn observe(&mut self, step: u64, metrics: &Metrics);
}

impl<F: FnMut(u64, &Metrics)> Observer for F {
    fn observe(&mut self, step: u64, metrics: &Metrics) {
        self(step, metrics)
    }
}

/// Settings of a [`Trainer`].
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainerConfig {
    /// Rescale the energy's gradient to this norm when it is larger.
    #[serde(default)]
    pub grad_clip: Option<f64>,
    /// Report metrics to the observer every this many steps (and at the last step of
    /// [`Trainer::fit`]).
    #[serde(default = "one")]
    pub observe_every: u64,
}

fn one() -> u64 {
    1
}

impl Default for TrainerConfig {
    fn default() -> Self {
        TrainerConfig {
            grad_clip: None,
            observe_every: 1,
        }
    }
}

/// Trains a model with an objective and an optimiser.
///
/// One [`Trainer::step`]: advance the model's per-step state, ask the objective for the loss
/// of the batch, differentiate it once with respect to the model's and the objective's
/// parameters, check that the loss and the gradient norm are finite (else
/// [`Error::Diverged`], with nothing updated), clip, and update both. A min-max objective (one
/// that returns an auxiliary loss) has its own parameters updated from that loss instead.
///
/// # Example
/// ```
/// use ebm::energy::{EnergyModel, GaussianEnergy};
/// use ebm::objective::{Metrics, Objective, ObjectiveStep};
/// use ebm::train::{Trainer, TrainerConfig};
/// use ebm::Error;
/// use ebm_nn::{Adam, AdamConfig};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// // An objective of one's own: the mean energy of the data (a toy; it only lowers energies).
/// struct MeanEnergy;
/// impl Objective<f64, dyn EnergyModel<f64>> for MeanEnergy {
///     fn step(
///         &mut self,
///         energy: &dyn EnergyModel<f64>,
///         batch: &Tensor<f64>,
///         _rng: &mut dyn rand::Rng,
///     ) -> Result<ObjectiveStep<f64>, Error> {
///         let loss = energy.energy(batch).mean();
///         let mut metrics = Metrics::new();
///         metrics.set("loss", loss.item());
///         Ok(ObjectiveStep { loss, aux_loss: None, metrics })
///     }
/// }
///
/// let model: Box<dyn EnergyModel<f64>> = Box::new(GaussianEnergy::new(2).unwrap());
/// let adam = Adam::new(AdamConfig { lr: 0.01, ..AdamConfig::default() }).unwrap();
/// let mut trainer = Trainer::new(model, MeanEnergy, Box::new(adam), TrainerConfig::default());
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let batch = Tensor::full([8, 2], 3.0);
/// let first = trainer.step(&batch, &mut rng).unwrap().get("loss").unwrap();
/// for _ in 0..50 {
///     trainer.step(&batch, &mut rng).unwrap();
/// }
/// let last = trainer.step(&batch, &mut rng).unwrap().get("loss").unwrap();
/// assert!(last < first);
/// ```
pub struct Trainer<T: Float, M: ?Sized, O> {
    model: Box<M>,
    objective: O,
    optimizer: Box<dyn Optimizer<T>>,
    aux_optimizer: Option<Box<dyn Optimizer<T>>>,
    config: TrainerConfig,
    step: u64,
}

impl<T, M, O> Trainer<T, M, O>
where
    T: Float,
    M: Trainable<T> + ?Sized,
    O: Objective<T, M>,
{
    /// A trainer of `model` by `objective`, updating the model with `optimizer`.
    pub fn new(
        model: Box<M>,
        objective: O,
        optimizer: Box<dyn Optimizer<T>>,
        config: TrainerConfig,
    ) -> Self {
        Trainer {
            model,
            objective,
            optimizer,
            aux_optimizer: None,
            config,
            step: 0,
        }
    }

    /// The optimiser of the objective's own parameters (needed when it has some: NCE's
    /// log-normaliser, a critic, a flow).
    pub fn with_aux_optimizer(mut self, optimizer: Box<dyn Optimizer<T>>) -> Self {
        self.aux_optimizer = Some(optimizer);
        self
    }

    /// The model.
    pub fn model(&self) -> &M {
        &self.model
    }

    /// The objective.
    pub fn objective(&self) -> &O {
        &self.objective
    }

    /// The model's optimiser (for learning-rate schedules: `set_lr`).
    pub fn optimizer_mut(&mut self) -> &mut dyn Optimizer<T> {
        self.optimizer.as_mut()
    }

    /// The optimiser of the objective's own parameters, when one was given (for
    /// learning-rate schedules: `set_lr`).
    pub fn aux_optimizer_mut(&mut self) -> Option<&mut (dyn Optimizer<T> + 'static)> {
        self.aux_optimizer.as_deref_mut()
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.step
    }

    /// Gives back the model.
    pub fn into_model(self) -> Box<M> {
        self.model
    }

    /// One training step on `batch`; returns its metrics, with `grad_norm` (before clipping)
    /// added.
    ///
    /// # Errors
    /// [`Error::Diverged`] when the loss or the gradient norm is not finite: nothing is
    /// updated, so the model and the optimiser keep their last good state.
    /// [`Error::InvalidConfig`] when the objective has parameters but no auxiliary optimiser
    /// was given. The objective's errors.
    pub fn step(&mut self, batch: &Tensor<T>, rng: &mut dyn Rng) -> Result<Metrics, Error> {
        let own = self.objective.params().map_or(0, ParamStore::len);
        if own > 0 && self.aux_optimizer.is_none() {
            return Err(Error::config(
                "trainer",
                "an objective with parameters and no auxiliary optimiser",
                "an optimiser for them, given with `Trainer::with_aux_optimizer`",
            ));
        }
        let step = self.step + 1;
        self.model.update_state();
        let out = self.objective.step(&self.model, batch, rng)?;
        let mut metrics = out.metrics;
        let loss_value = out.loss.item();
        if !loss_value.is_finite() {
            return Err(diverged(step, "loss", loss_value));
        }

        // The gradients: of the loss for the model (and for the objective's parameters, unless
        // it has a loss of its own), in one backward pass.
        let model_inputs = self.model.params().tensors();
        let aux_inputs = self
            .objective
            .params()
            .map_or_else(Vec::new, ParamStore::tensors);
        let shared = out.aux_loss.is_none();
        let inputs: Vec<Tensor<T>> = if shared {
            model_inputs.iter().chain(&aux_inputs).cloned().collect()
        } else {
            model_inputs.clone()
        };
        let options = GradOptions {
            retain_graph: Some(!shared),
            ..GradOptions::default()
        }
        .allow_unused(true);
        let mut all = grad(std::slice::from_ref(&out.loss), &inputs, None, options)?;
        let aux_grads: Vec<Tensor<T>> = match &out.aux_loss {
            None => all.split_off(model_inputs.len()),
            Some(aux) if !aux_inputs.is_empty() => grad(
                std::slice::from_ref(aux),
                &aux_inputs,
                None,
                GradOptions::default().allow_unused(true),
            )?,
            Some(_) => Vec::new(),
        };
        let mut model_grads = self.model.params().grads_from_vec(all)?;
        let norm = model_grads.norm();
        metrics.set("grad_norm", norm);
        if !norm.is_finite() {
            return Err(diverged(step, "gradient norm", norm));
        }
        if let Some(max) = self.config.grad_clip {
            clip_grad_norm(&mut model_grads, max)?;
        }
        let aux_grads: Option<ParamGrads<T>> = match self.objective.params() {
            Some(store) if !aux_grads.is_empty() => Some(store.grads_from_vec(aux_grads)?),
            _ => None,
        };
        if let Some(g) = &aux_grads {
            let n = g.norm();
            if !n.is_finite() {
                return Err(diverged(
                    step,
                    "gradient norm of the objective's parameters",
                    n,
                ));
            }
        }

        // Every check passed: update.
        self.optimizer.step(self.model.params_mut(), &model_grads);
        if let (Some(g), Some(opt), Some(store)) = (
            &aux_grads,
            self.aux_optimizer.as_mut(),
            self.objective.params_mut(),
        ) {
            opt.step(store, g);
        }
        self.step = step;
        Ok(metrics)
    }

    /// `n_steps` steps on batches from `data`, reporting to `observer` every
    /// [`TrainerConfig::observe_every`] steps and at the last one.
    ///
    /// # Errors
    /// The first error of [`Trainer::step`]; the steps before it are kept.
    pub fn fit(
        &mut self,
        n_steps: u64,
        rng: &mut dyn Rng,
        mut data: impl FnMut(&mut dyn Rng) -> Tensor<T>,
        observer: &mut dyn Observer,
    ) -> Result<(), Error> {
        let every = self.config.observe_every.max(1);
        for i in 0..n_steps {
            let batch = data(rng);
            let metrics = self.step(&batch, rng)?;
            if self.step.is_multiple_of(every) || i + 1 == n_steps {
                observer.observe(self.step, &metrics);
            }
        }
        Ok(())
    }

    /// Writes a checkpoint: the model's weights and spec, the optimisers' state (`optim.`,
    /// `aux_optim.`), the objective's parameters and state (`objective.`) and the step count.
    ///
    /// # Errors
    /// As [`save_energy`].
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), Error> {
        self.save_with_metadata(path, &BTreeMap::new())
    }

    /// [`Trainer::save`], with `metadata` (such as the run's settings) added to the file's.
    ///
    /// # Errors
    /// As [`Trainer::save`]; [`Error::InvalidConfig`] for a key that the checkpoint writes
    /// itself (`trainer.step`, `energy`, ...).
    pub fn save_with_metadata(
        &self,
        path: impl AsRef<Path>,
        metadata: &BTreeMap<String, String>,
    ) -> Result<(), Error> {
        let mut extras = StateDict::new();
        extras.merge_prefixed("optim", self.optimizer.state_dict())?;
        if let Some(opt) = &self.aux_optimizer {
            extras.merge_prefixed("aux_optim", opt.state_dict())?;
        }
        let mut objective = self.objective.state_dict();
        if let Some(store) = self.objective.params() {
            for (name, t) in store.iter() {
                objective
                    .tensors
                    .insert(format!("param.{name}"), t.detach());
            }
        }
        extras.merge_prefixed("objective", objective)?;
        extras
            .metadata
            .insert(KEY_STEP.into(), self.step.to_string());
        for (key, value) in metadata {
            if extras.metadata.insert(key.clone(), value.clone()).is_some() {
                return Err(Error::config(
                    "checkpoint metadata key",
                    key,
                    "a key that the trainer does not write itself; rename it",
                ));
            }
        }
        self.model.save(path.as_ref(), &extras)
    }
}

/// The metadata key of the step count in a checkpoint.
const KEY_STEP: &str = "trainer.step";

/// An [`Error::Diverged`] with the fix that usually applies.
fn diverged(step: u64, quantity: &str, value: f64) -> Error {
    Error::Diverged {
        step,
        quantity: quantity.to_string(),
        value,
        hint: "lower the learning rate or the sampler's step size, clip gradients, or raise the energy penalty".into(),
    }
}
