//! Training objectives: each turns an energy and a batch of data into a differentiable loss.
//!
//! [`Objective`] is the common shape of every method: one call of [`Objective::step`] takes the
//! energy, a data batch and an RNG, and returns the loss to minimise with a record of
//! [`Metrics`]. Whatever an objective keeps between steps (persistent chains, a replay buffer,
//! a learned log-normaliser, an auxiliary network) lives in the objective, with its own
//! parameters ([`Objective::params`]) and saved state ([`Objective::state_dict`]), so that a
//! training loop drives any method with any optimiser, and switching method is one line.
//!
//! The free functions of [`score_matching`] are the losses themselves, for use in your own
//! loops.

pub mod adversarial;
pub mod conditional_nce;
pub mod flow_contrastive;
pub mod kl_derivative;
pub mod learned_stein;
pub mod maximum_likelihood;
pub mod multiscale;
pub mod nce;
pub mod registry;
pub mod score_matching;
pub mod stein;

pub use adversarial::{Adversarial, AdversarialConfig};
pub use conditional_nce::{ConditionalNce, ConditionalNceConfig, conditional_nce_loss};
pub use flow_contrastive::{FLOW_PREFIX, FlowContrastive, FlowContrastiveConfig};
pub use kl_derivative::{
    MinimumProbabilityFlow, MinimumProbabilityFlowConfig, MinimumVelocity, MinimumVelocityConfig,
};
pub use learned_stein::{LearnedStein, LearnedSteinConfig};
pub use maximum_likelihood::{
    ChainInit, ChainStart, MaximumLikelihood, MaximumLikelihoodConfig, McmcKernel, contrastive_loss,
};
pub use nce::{
    GaussianNoise, GaussianNoiseConfig, LOG_NORMALIZER, Nce, NceConfig, NoiseDistribution,
};
pub use registry::{
    METHODS, MethodInfo, MethodObjective, MethodSpec, ModelKind, SamplerKnobs, method_info,
};
pub use stein::{Bandwidth, KernelSteinDiscrepancy, KernelSteinDiscrepancyConfig};

use crate::Error;
use ebm_nn::{ParamStore, StateDict};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use std::borrow::Cow;

/// A training method: a loss for each data batch.
///
/// `E` is the kind of energy it trains: any [`crate::energy::Energy`] for most methods, a
/// [`crate::energy::NoiseConditionalEnergy`] for multi-scale score matching. The RNG is a
/// trait object so that objectives can be chosen at run time (`Box<dyn Objective<..>>`).
pub trait Objective<T: Float, E: ?Sized> {
    /// The loss of one batch `[n, ...]` (a scalar to minimise over the energy's parameters),
    /// with its metrics.
    ///
    /// # Errors
    /// An error of the autodiff engine or of a sampler; [`Error::Shape`] for a batch that does
    /// not fit the objective's state (a replay buffer of another sample shape, say).
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error>;

    /// Parameters that the objective owns and trains along with the energy (NCE's
    /// log-normaliser, a critic, a flow); `None` for most objectives.
    fn params(&self) -> Option<&ParamStore<T>> {
        None
    }

    /// The objective's parameters, for an optimiser step.
    fn params_mut(&mut self) -> Option<&mut ParamStore<T>> {
        None
    }

    /// State besides parameters that a checkpoint must keep to resume exactly (persistent
    /// chains, a replay buffer). Empty by default.
    fn state_dict(&self) -> StateDict<T> {
        StateDict::new()
    }

    /// Restores what [`Objective::state_dict`] saved.
    ///
    /// # Errors
    /// [`Error::Restore`] when the saved state does not fit this objective.
    fn load_state_dict(&mut self, state: &StateDict<T>) -> Result<(), Error> {
        let _ = state;
        Ok(())
    }
}

/// A boxed objective is an objective: methods chosen at run time ([`MethodSpec::build`]) go
/// into a [`crate::train::Trainer`] like any other.
impl<T: Float, E: ?Sized, O: Objective<T, E> + ?Sized> Objective<T, E> for Box<O> {
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error> {
        (**self).step(energy, batch, rng)
    }

    fn params(&self) -> Option<&ParamStore<T>> {
        (**self).params()
    }

    fn params_mut(&mut self) -> Option<&mut ParamStore<T>> {
        (**self).params_mut()
    }

    fn state_dict(&self) -> StateDict<T> {
        (**self).state_dict()
    }

    fn load_state_dict(&mut self, state: &StateDict<T>) -> Result<(), Error> {
        (**self).load_state_dict(state)
    }
}

/// What one step of an objective returns.
#[derive(Clone, Debug)]
pub struct ObjectiveStep<T: Float> {
    /// The scalar that the energy's parameters minimise.
    pub loss: Tensor<T>,
    /// For min-max objectives, the scalar that the objective's own parameters minimise (for
    /// instance minus a critic's objective); `None` when they minimise `loss` too.
    pub aux_loss: Option<Tensor<T>>,
    /// Named scalars: the loss value, energies of data and samples, acceptance rates...
    pub metrics: Metrics,
}

/// Named scalar metrics of a step, in the order they were recorded.
///
/// Names are `&'static str` for fixed metrics and `String` for computed ones (such as
/// `loss_level_3`), without allocating for the former.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Metrics(pub Vec<(Cow<'static, str>, f64)>);

impl Metrics {
    /// No metrics.
    pub fn new() -> Self {
        Metrics(Vec::new())
    }

    /// Records `value` under `name` (replacing an earlier value of that name).
    pub fn set(&mut self, name: impl Into<Cow<'static, str>>, value: f64) {
        let name = name.into();
        match self.0.iter_mut().find(|(n, _)| *n == name) {
            Some(entry) => entry.1 = value,
            None => self.0.push((name, value)),
        }
    }

    /// The value recorded under `name`.
    pub fn get(&self, name: &str) -> Option<f64> {
        self.0.iter().find(|(n, _)| n == name).map(|&(_, v)| v)
    }

    /// The metrics, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> + '_ {
        self.0.iter().map(|(n, v)| (n.as_ref(), *v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn metrics_keep_order_and_replace_by_name() {
        let mut m = Metrics::new();
        m.set("loss", 1.0);
        m.set("energy_data", -2.0);
        m.set("loss", 0.5);
        let names: Vec<(&str, f64)> = m.iter().collect();
        assert_eq!(names, [("loss", 0.5), ("energy_data", -2.0)]);
        m.set(format!("loss_level_{}", 3), 1.5);
        assert_eq!(m.get("loss_level_3"), Some(1.5));
        assert_eq!(m.get("energy_data"), Some(-2.0));
        assert_eq!(m.get("missing"), None);
    }

    #[test]
    fn a_dyn_rng_drives_the_tensor_generators() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let dyn_rng: &mut dyn Rng = &mut rng;
        let z = Tensor::<f32>::randn([3], dyn_rng);
        assert_eq!(z.dims(), &[3]);
    }
}
