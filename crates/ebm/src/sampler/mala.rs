//! The Metropolis-adjusted Langevin algorithm (MALA).

use super::metropolis::{accept_reject, per_chain_sq_norm};
use super::{ChainState, Langevin, LangevinConfig, Sampler, StepInfo, evaluate};
use crate::Error;
use crate::energy::Energy;
use crate::error::check_positive;
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The energy error above which a proposal counts as divergent, as in BlackJAX.
pub const DEFAULT_DIVERGENCE_THRESHOLD: f64 = 1000.0;

fn default_divergence_threshold() -> f64 {
    DEFAULT_DIVERGENCE_THRESHOLD
}

/// Settings of [`Mala`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MalaConfig {
    /// The step size epsilon: the proposal moves by -epsilon grad E plus noise of variance
    /// 2 epsilon.
    pub step_size: f64,
    /// A proposal whose energy error (minus the log acceptance ratio) exceeds this is flagged
    /// divergent and rejected. Default 1000.
    #[serde(default = "default_divergence_threshold")]
    pub divergence_threshold: f64,
}

impl MalaConfig {
    /// This step size, with the default divergence threshold.
    pub fn new(step_size: f64) -> Self {
        MalaConfig {
            step_size,
            divergence_threshold: DEFAULT_DIVERGENCE_THRESHOLD,
        }
    }
}

/// The Metropolis-adjusted Langevin algorithm: a Langevin proposal with a Metropolis-Hastings
/// correction, so that exp(-E) / Z is exactly stationary for any step size.
///
/// ```text
/// x' = x - eps grad E(x) + sqrt(2 eps) z,             z ~ N(0, I)
/// q(x'|x) = N(x'; x - eps grad E(x), 2 eps I)
/// log alpha = min(0, -(E(x') - E(x)) + log q(x|x') - log q(x'|x))
/// ```
///
/// Each chain moves to x' when log u < log alpha (u ~ U(0, 1)), else stays where it was. A
/// proposal whose energy or gradient is not finite, or whose energy error -log(ratio) exceeds
/// [`MalaConfig::divergence_threshold`], is flagged in [`StepInfo::is_divergent`] and rejected.
///
/// Tuning: in high dimension d the step size should scale as d^(-1/3), for an acceptance rate
/// near 0.574 (Roberts & Rosenthal 1998); [`warmup`](super::warmup) finds it by dual averaging.
///
/// Cost per step: one batched evaluation of the energy and its gradient (at the proposal; the
/// current point's are kept in the state).
///
/// Roberts & Tweedie, "Exponential convergence of Langevin distributions and their discrete
/// approximations", Bernoulli 1996; Roberts & Rosenthal, "Optimal scaling of discrete
/// approximations to Langevin diffusions", JRSS B 1998.
///
/// # Example
/// ```
/// use ebm::sampler::{Mala, MalaConfig, Sampler, run};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
/// let sampler = Mala::new(MalaConfig::new(0.5)).unwrap();
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let state = sampler.init(Tensor::zeros([1000, 2]), &energy).unwrap();
/// let (state, infos) = run(&sampler, &mut rng, state, &energy, 50).unwrap();
/// assert_eq!(state.position.dims(), &[1000, 2]);
/// assert!(infos[49].acceptance_rate() > 0.5);
/// ```
#[derive(Clone, Debug)]
pub struct Mala {
    config: MalaConfig,
    proposal: Langevin,
}

impl Mala {
    /// A sampler with these settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a step size or divergence threshold that is not a finite
    /// positive number.
    pub fn new(config: MalaConfig) -> Result<Self, Error> {
        check_positive("MALA step_size", config.step_size)?;
        check_positive("MALA divergence_threshold", config.divergence_threshold)?;
        let proposal = Langevin::new(LangevinConfig::new(config.step_size))?;
        Ok(Mala { config, proposal })
    }

    /// The settings.
    pub fn config(&self) -> &MalaConfig {
        &self.config
    }
}

impl<T: Float> Sampler<T> for Mala {
    type State = ChainState<T>;
    type Info = StepInfo<T>;

    fn init<E: Energy<T> + ?Sized>(
        &self,
        position: Tensor<T>,
        energy: &E,
    ) -> Result<ChainState<T>, Error> {
        ChainState::new(position, energy)
    }

    fn step<E: Energy<T> + ?Sized, R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        state: ChainState<T>,
        energy: &E,
    ) -> Result<(ChainState<T>, StepInfo<T>), Error> {
        let eps = self.config.step_size;

        // Langevin proposal, evaluated once.
        let position = self.proposal.propose(rng, &state);
        let (e, g) = evaluate(energy, &position)?;
        let proposal = ChainState {
            position,
            energy: e,
            grad: g,
        };

        // log q(x'|x) - log q(x|x') with q Gaussian of variance 2 eps: the normalisers cancel.
        let forward = &(&proposal.position - &state.position) + &state.grad.mul_scalar(eps);
        let backward = &(&state.position - &proposal.position) + &proposal.grad.mul_scalar(eps);
        let log_q_ratio = (&per_chain_sq_norm(&backward) - &per_chain_sq_norm(&forward))
            .mul_scalar(1.0 / (4.0 * eps));
        let energy_error = &(&proposal.energy - &state.energy) + &log_q_ratio;

        Ok(accept_reject(
            rng,
            state,
            proposal,
            &energy_error,
            self.config.divergence_threshold,
        ))
    }
}
