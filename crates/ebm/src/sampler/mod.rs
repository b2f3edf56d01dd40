//! Samplers: Markov chains whose stationary distribution is (close to) p(x) = exp(-E(x)) / Z.
//!
//! Every sampler follows the init/step split of BlackJAX: [`Sampler::init`] builds the state of
//! a batch of chains, and [`Sampler::step`] takes a state and returns the next one with an
//! info record. All chains advance together: one batched evaluation of the energy and its
//! gradient per step (split into fixed-size shards run in parallel, see [`evaluate`]), so 10,000
//! chains cost about as much as one large forward and backward pass.
//!
//! Randomness is explicit: a step draws from the `rng` it is given, the same numbers in the same
//! order whatever the number of threads, so a run is reproducible from its seed.

mod annealed;
mod diagnostics;
mod dual_averaging;
mod gibbs;
mod hmc;
mod integrator;
mod langevin;
mod mala;
mod metropolis;
mod replay;

pub use annealed::{
    AnnealedLangevin, AnnealedLangevinConfig, AnnealedLangevinInfo, AnnealedLangevinState,
    AnnealedLevelInfo,
};
pub use diagnostics::{
    AcceptanceSummary, HasAcceptance, HasPosition, Trace, acceptance_summary,
    bulk_effective_sample_size, effective_sample_size, rank_normalized_split_rhat, split_rhat,
    trace,
};
pub use dual_averaging::{DualAveraging, StepSized, WarmedUp, warmup};
pub use gibbs::{BlockGibbs, BlockGibbsConfig, BlockGibbsInfo, BlockGibbsState};
pub use hmc::{Hmc, HmcConfig};
pub use integrator::{kinetic_energy, leapfrog};
pub use langevin::{Langevin, LangevinConfig};
pub use mala::{DEFAULT_DIVERGENCE_THRESHOLD, Mala, MalaConfig};
pub use replay::{ReplayBuffer, ReplayBufferConfig, RestartDistribution};

use crate::Error;
use crate::energy::Energy;
use ebm_tensor::{Float, Tensor, sequential};
use rand::Rng;
use rayon::prelude::*;

/// A sampler of a batch of chains: [`Sampler::init`] and [`Sampler::step`].
pub trait Sampler<T: Float> {
    /// The state of the chains between steps.
    type State;
    /// What one step reports besides the new state.
    type Info;

    /// The state of chains started at `position` (`[n, ...]`: one row per chain).
    ///
    /// # Errors
    /// An error of the autodiff engine while evaluating the energy.
    fn init<E: Energy<T> + ?Sized>(
        &self,
        position: Tensor<T>,
        energy: &E,
    ) -> Result<Self::State, Error>;

    /// One step of every chain.
    ///
    /// # Errors
    /// An error of the autodiff engine. A chain that diverges is not an error: it is flagged
    /// in the info record.
    fn step<E: Energy<T> + ?Sized, R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        state: Self::State,
        energy: &E,
    ) -> Result<(Self::State, Self::Info), Error>;
}

/// `n_steps` steps of `sampler` from `state`: the final state and the info of every step.
///
/// # Errors
/// The first error of [`Sampler::step`].
pub fn run<T, S, E, R>(
    sampler: &S,
    rng: &mut R,
    mut state: S::State,
    energy: &E,
    n_steps: usize,
) -> Result<(S::State, Vec<S::Info>), Error>
where
    T: Float,
    S: Sampler<T>,
    E: Energy<T> + ?Sized,
    R: Rng + ?Sized,
{
    let mut infos = Vec::with_capacity(n_steps);
    for _ in 0..n_steps {
        let (next, info) = sampler.step(rng, state, energy)?;
        state = next;
        infos.push(info);
    }
    Ok((state, infos))
}

/// The state of a batch of gradient-based chains: positions with their energies and energy
/// gradients, so that no step evaluates the energy twice at the same point.
#[derive(Clone, Debug)]
pub struct ChainState<T: Float> {
    /// The positions, `[n, ...]`: one row per chain.
    pub position: Tensor<T>,
    /// E(position), `[n]`.
    pub energy: Tensor<T>,
    /// grad_x E(position), `[n, ...]`.
    pub grad: Tensor<T>,
}

impl<T: Float> ChainState<T> {
    /// Chains at `position`, with the energy and gradient evaluated there.
    ///
    /// # Errors
    /// [`Error::Shape`] for a position of rank 0 or with no chains; an error of the autodiff
    /// engine.
    pub fn new<E: Energy<T> + ?Sized>(position: Tensor<T>, energy: &E) -> Result<Self, Error> {
        if position.rank() < 1 || position.dim(0) == 0 {
            return Err(Error::Shape {
                what: "starting chains".into(),
                expected: "[n, ...] with n >= 1 chains".into(),
                found: position.dims().to_vec(),
            });
        }
        let position = position.detach();
        let (energy, grad) = evaluate(energy, &position)?;
        Ok(ChainState {
            position,
            energy,
            grad,
        })
    }

    /// The number of chains.
    pub fn n_chains(&self) -> usize {
        self.position.dim(0)
    }
}

/// What one step of a gradient-based sampler reports, per chain.
#[derive(Clone, Debug)]
pub struct StepInfo<T: Float> {
    /// The Metropolis-Hastings acceptance probability of each chain's proposal, `[n]`
    /// (1 for unadjusted samplers).
    pub acceptance_probability: Tensor<T>,
    /// Whether each chain moved to its proposal (always true for unadjusted samplers).
    pub is_accepted: Vec<bool>,
    /// Whether each chain diverged: a non-finite energy or gradient at the proposal, or (for
    /// Metropolis-adjusted samplers) an energy error above the sampler's divergence threshold.
    pub is_divergent: Vec<bool>,
    /// The energy of each chain after the step, `[n]`.
    pub energy: Tensor<T>,
    /// The Euclidean norm of grad_x E of each chain after the step, `[n]`.
    pub grad_norm: Tensor<T>,
}

impl<T: Float> StepInfo<T> {
    /// The mean acceptance probability over chains.
    pub fn acceptance_rate(&self) -> f64 {
        self.acceptance_probability.mean().item()
    }

    /// The number of chains that diverged.
    pub fn n_divergent(&self) -> usize {
        self.is_divergent.iter().filter(|&&d| d).count()
    }

    /// The mean energy over chains.
    pub fn mean_energy(&self) -> f64 {
        self.energy.mean().item()
    }

    /// The mean gradient norm over chains.
    pub fn mean_grad_norm(&self) -> f64 {
        self.grad_norm.mean().item()
    }
}

/// Chains evaluated together in one shard of [`evaluate`]. Fixed, so that results do not
/// depend on the number of threads. For the 2-128-128-1 MLP of `ebm bench langevin-sample`
/// (10,000 chains, 100 steps), alternating runs measured 128: 401-443 ms, 256: 376-384 ms,
/// 512: 387-396 ms, 1024: 407-417 ms: a shard's activations then fit the core's L2 cache.
pub const CHAIN_SHARD: usize = 256;

/// The energies `[n]` and energy gradients `[n, ...]` of a batch of chains, detached.
///
/// Batches are split into shards of [`CHAIN_SHARD`] chains (two halves for batches of 64 to
/// 2 [`CHAIN_SHARD`]; batches below 64 stay whole), each
/// evaluated on its own thread with its kernels working alone (one fork and join per call,
/// rather than one per operation);
/// the shards do not depend on the number of threads, so neither does the result.
///
/// # Errors
/// An error of the autodiff engine.
pub fn evaluate<T: Float, E: Energy<T> + ?Sized>(
    energy: &E,
    x: &Tensor<T>,
) -> Result<(Tensor<T>, Tensor<T>), Error> {
    let n = x.dim(0);
    let shard = shard_size(n);
    if shard >= n {
        return energy.energy_and_grad(x, false);
    }
    let starts: Vec<usize> = (0..n).step_by(shard).collect();
    let shards: Vec<Result<EnergyAndGrad<T>, Error>> = starts
        .par_iter()
        .map(|&start| {
            let len = shard.min(n - start);
            sequential(|| energy.energy_and_grad(&x.narrow(0, start, len), false))
        })
        .collect();
    let mut energies = Vec::with_capacity(shards.len());
    let mut grads = Vec::with_capacity(shards.len());
    for shard in shards {
        let (e, g) = shard?;
        energies.push(e);
        grads.push(g);
    }
    Ok((Tensor::concat(&energies, 0), Tensor::concat(&grads, 0)))
}

/// Chains per shard for a batch of `n`: [`CHAIN_SHARD`], or half the batch for batches of up to
/// two shards (so that two threads share them), or the whole of a batch below 64 chains. A
/// function of `n` alone, never of the number of threads.
fn shard_size(n: usize) -> usize {
    if n < 64 {
        n
    } else if n <= 2 * CHAIN_SHARD {
        n.div_ceil(2)
    } else {
        CHAIN_SHARD
    }
}

/// Energies and their gradients.
type EnergyAndGrad<T> = (Tensor<T>, Tensor<T>);

/// Per-chain Euclidean norms of a batch `[n, ...]`: `[n]`.
pub(crate) fn per_chain_norm<T: Float>(g: &Tensor<T>) -> Tensor<T> {
    g.flatten_batch().square().sum_axes(&[1], false).sqrt()
}

/// Whether each chain's energy and gradient norm are finite.
pub(crate) fn non_finite<T: Float>(energy: &Tensor<T>, grad_norm: &Tensor<T>) -> Vec<bool> {
    energy
        .to_f64s()
        .iter()
        .zip(grad_norm.to_f64s())
        .map(|(e, g)| !e.is_finite() || !g.is_finite())
        .collect()
}
