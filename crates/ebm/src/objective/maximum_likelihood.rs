//! Maximum likelihood with MCMC (section 2 of Song & Kingma, "How to Train Your Energy-Based
//! Models", 2021): contrastive divergence and its persistent, replay-buffer and short-run
//! variants, behind one objective whose config says where the chains start.

use super::{Metrics, Objective, ObjectiveStep};
use crate::Error;
use crate::energy::Energy;
use crate::error::check_non_negative;
use crate::sampler::{
    ChainState, Hmc, HmcConfig, Langevin, LangevinConfig, Mala, MalaConfig, ReplayBuffer,
    ReplayBufferConfig, RestartDistribution, Sampler, StepInfo, run,
};
use ebm_nn::StateDict;
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Where the negative chains of [`MaximumLikelihood`] start at each step.
///
/// Serialised externally tagged, in snake case: `"data"`, `{ persistent = "data" }`,
/// `{ replay_buffer = { capacity = 10000, restart = { kind = "uniform", ... } } }`,
/// `{ noise = { kind = "gaussian", mean = 0.0, std = 1.0 } }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ChainInit {
    /// Contrastive divergence CD-k: the chains start at the data batch (Hinton, "Training
    /// products of experts by minimizing contrastive divergence", Neural Computation 2002).
    Data,
    /// Persistent contrastive divergence: one chain per batch row, kept across steps, started
    /// at the first batch or from noise on first use (Tieleman, "Training restricted Boltzmann
    /// machines using approximations to the likelihood gradient", ICML 2008). The batch size
    /// must then stay fixed.
    Persistent(ChainStart),
    /// A replay buffer of persistent chains with restarts: sample the buffer (restarting each
    /// draw with its probability), run the kernel, write the chains back (Du & Mordatch,
    /// "Implicit Generation and Modeling with Energy-Based Models", NeurIPS 2019). The buffer
    /// is created on first use, when the sample shape is known.
    ReplayBuffer(ReplayBufferConfig),
    /// Short-run MCMC: fresh chains from this noise at every step (Nijkamp, Hill, Zhu & Wu,
    /// "Learning non-convergent non-persistent short-run MCMC toward energy-based model",
    /// NeurIPS 2019).
    Noise(RestartDistribution),
}

/// Where persistent chains start on first use.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum ChainStart {
    /// At the first data batch.
    Data,
    /// At draws of this distribution.
    Noise(RestartDistribution),
}

/// The MCMC kernel that moves the negative chains.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum McmcKernel {
    /// Unadjusted Langevin (biased by O(step size), cheapest).
    Langevin(LangevinConfig),
    /// Metropolis-adjusted Langevin (exact stationary law, one evaluation per step).
    Mala(MalaConfig),
    /// Hamiltonian Monte Carlo (`n_leapfrog_steps` evaluations per step).
    Hmc(HmcConfig),
}

/// Settings of [`MaximumLikelihood`]. `Default` is the `pcd-mlp` setting of the 2-D sets: a
/// replay buffer of 10,000 chains restarted (5%) from U[-4, 4]^d, 20 Langevin steps of 0.01
/// with noise sqrt(0.02), energy penalty 0.1.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaximumLikelihoodConfig {
    /// Where the chains start.
    pub chain_init: ChainInit,
    /// The kernel that moves them.
    pub kernel: McmcKernel,
    /// Kernel steps per training step (k of CD-k), at least 1.
    pub n_steps: usize,
    /// alpha of the energy-magnitude penalty alpha * mean(E(x+)^2 + E(x-)^2); 0 turns it off.
    pub energy_penalty: f64,
}

impl Default for MaximumLikelihoodConfig {
    fn default() -> Self {
        let restart = RestartDistribution::Uniform {
            low: -4.0,
            high: 4.0,
        };
        MaximumLikelihoodConfig {
            chain_init: ChainInit::ReplayBuffer(ReplayBufferConfig::new(10_000, restart)),
            kernel: McmcKernel::Langevin(LangevinConfig::new(0.01)),
            n_steps: 20,
            energy_penalty: 0.1,
        }
    }
}

/// The validated kernel.
#[derive(Clone, Debug)]
enum Kernel {
    Langevin(Langevin),
    Mala(Mala),
    Hmc(Hmc),
}

impl Kernel {
    /// `n_steps` steps from `start`: the final chains and every step's info.
    fn run<T: Float, E: Energy<T> + ?Sized>(
        &self,
        start: Tensor<T>,
        energy: &E,
        n_steps: usize,
        rng: &mut dyn Rng,
    ) -> Result<(ChainState<T>, Vec<StepInfo<T>>), Error> {
        match self {
            Kernel::Langevin(s) => run(s, rng, s.init(start, energy)?, energy, n_steps),
            Kernel::Mala(s) => run(s, rng, s.init(start, energy)?, energy, n_steps),
            Kernel::Hmc(s) => run(s, rng, s.init(start, energy)?, energy, n_steps),
        }
    }
}

/// The chains kept between steps.
#[derive(Clone, Debug)]
enum Chains<T: Float> {
    /// CD-k and short-run MCMC keep nothing.
    None,
    /// Persistent chains, `[n, ...]`.
    Persistent(Tensor<T>),
    /// The replay buffer.
    Buffer(ReplayBuffer<T>),
}

/// Keys of the saved state.
const KEY_CHAIN_INIT: &str = "chain_init";
const KEY_CHAINS: &str = "chains";
const PREFIX_BUFFER: &str = "replay_buffer";

/// The contrastive loss of maximum likelihood with model samples `x-` given, and its parts.
///
/// ```text
/// L = mean_i E(x+_i) - mean_j E(x-_j) + alpha * mean_i,j (E(x+_i)^2 + E(x-_j)^2)
/// grad_theta L = E_pd[grad_theta E] - E_model[grad_theta E]
///                + 2 alpha (mean_i E(x+_i) grad_theta E(x+_i) + mean_j E(x-_j) grad_theta E(x-_j))
/// ```
///
/// The first two terms are the negative log-likelihood's gradient estimate (section 2 of the
/// tutorial); the penalty (Du & Mordatch 2019) keeps energies near zero. `samples` are
/// detached here, so no gradient flows through whatever produced them.
///
/// # Shapes
/// `data`: `[n, ...]`, `samples`: `[m, ...]`. Returns the scalar loss and the (detached) mean
/// energies of the data and of the samples.
pub fn contrastive_loss<T: Float, E: Energy<T> + ?Sized>(
    energy: &E,
    data: &Tensor<T>,
    samples: &Tensor<T>,
    energy_penalty: f64,
) -> (Tensor<T>, f64, f64) {
    let e_data = energy.energy(data);
    let e_samples = energy.energy(&samples.detach());
    let mut loss = &e_data.mean() - &e_samples.mean();
    if energy_penalty > 0.0 {
        let magnitude = &e_data.square().mean() + &e_samples.square().mean();
        loss = &loss + &magnitude.mul_scalar(energy_penalty);
    }
    let mean_data = e_data.detach().mean().item();
    let mean_samples = e_samples.detach().mean().item();
    (loss, mean_data, mean_samples)
}

/// Maximum-likelihood training with MCMC negatives: contrastive divergence (CD-k), persistent
/// CD, a replay buffer with restarts, or short-run MCMC from noise, as
/// [`MaximumLikelihoodConfig::chain_init`] says.
///
/// ```text
/// x- = K^k(x0)          (k kernel steps from the chain start x0, detached)
/// L  = mean E(x+) - mean E(x-) + alpha * mean(E(x+)^2 + E(x-)^2)
/// ```
///
/// whose gradient E_pd[grad E] - E_model[grad E] is the gradient of the negative
/// log-likelihood when x- follows the model (see [`contrastive_loss`]). Samples are detached:
/// no gradient flows through the chains.
///
/// Assumptions: a differentiable energy (for the Langevin, MALA and HMC kernels), with exp(-E)
/// integrable; the estimate is biased when the chains have not mixed (CD-k, short-run MCMC,
/// the O(step size) bias of unadjusted Langevin). Nothing about the normaliser needs to be
/// known.
///
/// Cost per step: `n_steps` kernel steps over `n` chains (one batched energy and gradient
/// evaluation each, `n_leapfrog_steps` for HMC), plus one forward and backward pass over the
/// data and the samples.
///
/// Metrics: `loss`, `energy_data` (mean E(x+)), `energy_samples` (mean E(x-)), `energy_gap`
/// (their difference), `acceptance_rate` (MALA and HMC: mean over steps and chains),
/// `chain_grad_norm` (mean |grad_x E| of the chains after the last step), `divergent_chains`
/// (chains flagged divergent at the last step).
///
/// Song & Kingma, "How to Train Your Energy-Based Models", 2021, section 2; the papers of the
/// variants are named on [`ChainInit`].
///
/// # Example
/// ```
/// use ebm::objective::{ChainInit, MaximumLikelihood, MaximumLikelihoodConfig, Objective};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let config = MaximumLikelihoodConfig {
///     chain_init: ChainInit::Data,
///     n_steps: 5,
///     ..MaximumLikelihoodConfig::default()
/// };
/// let mut objective = MaximumLikelihood::new(config)?;
/// let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let batch = Tensor::randn([64, 2], &mut rng);
/// let step = objective.step(&energy, &batch, &mut rng)?;
/// assert!(step.metrics.get("energy_gap").unwrap().is_finite());
/// # Ok::<(), ebm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct MaximumLikelihood<T: Float> {
    config: MaximumLikelihoodConfig,
    kernel: Kernel,
    chains: Chains<T>,
}

impl<T: Float> MaximumLikelihood<T> {
    /// The objective with these settings (no chains yet: they start on the first step).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the setting: `n_steps` of 0, an energy penalty that is
    /// negative or not finite, a kernel setting out of range, or a replay buffer or noise
    /// distribution out of range.
    pub fn new(config: MaximumLikelihoodConfig) -> Result<Self, Error> {
        if config.n_steps == 0 {
            return Err(Error::config(
                "maximum likelihood n_steps",
                0,
                "at least 1 kernel step per training step, such as 20",
            ));
        }
        check_non_negative("maximum likelihood energy_penalty", config.energy_penalty)?;
        let kernel = match &config.kernel {
            McmcKernel::Langevin(c) => Kernel::Langevin(Langevin::new(c.clone())?),
            McmcKernel::Mala(c) => Kernel::Mala(Mala::new(c.clone())?),
            McmcKernel::Hmc(c) => Kernel::Hmc(Hmc::new(c.clone())?),
        };
        match &config.chain_init {
            ChainInit::Data | ChainInit::Persistent(ChainStart::Data) => {}
            ChainInit::Persistent(ChainStart::Noise(noise)) | ChainInit::Noise(noise) => {
                noise.validate()?
            }
            ChainInit::ReplayBuffer(buffer) => buffer.validate()?,
        }
        Ok(MaximumLikelihood {
            config,
            kernel,
            chains: Chains::None,
        })
    }

    /// The settings.
    pub fn config(&self) -> &MaximumLikelihoodConfig {
        &self.config
    }

    /// The persistent chains (`None` before the first step or for other chain starts).
    pub fn persistent_chains(&self) -> Option<&Tensor<T>> {
        match &self.chains {
            Chains::Persistent(x) => Some(x),
            _ => None,
        }
    }

    /// The replay buffer (`None` before the first step or for other chain starts).
    pub fn replay_buffer(&self) -> Option<&ReplayBuffer<T>> {
        match &self.chains {
            Chains::Buffer(b) => Some(b),
            _ => None,
        }
    }

    /// The chain starts for a batch, with the buffer indices they came from.
    fn chain_starts(
        &mut self,
        batch: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<(Tensor<T>, Vec<usize>), Error> {
        let n = batch.dim(0);
        let sample_shape = &batch.dims()[1..];
        match &self.config.chain_init {
            ChainInit::Data => Ok((batch.detach(), Vec::new())),
            ChainInit::Noise(noise) => Ok((noise.draw(batch.dims().to_vec(), rng), Vec::new())),
            ChainInit::Persistent(start) => {
                if let Chains::Persistent(x) = &self.chains {
                    if x.dims() != batch.dims() {
                        return Err(Error::Shape {
                            what: "persistent chains (one per batch row)".into(),
                            expected: format!(
                                "batches of shape {:?}, as on the first step (keep the batch size fixed, dropping a last partial batch, or use a replay buffer)",
                                x.dims()
                            ),
                            found: batch.dims().to_vec(),
                        });
                    }
                    return Ok((x.clone(), Vec::new()));
                }
                let x = match start {
                    ChainStart::Data => batch.detach(),
                    ChainStart::Noise(noise) => noise.draw(batch.dims().to_vec(), rng),
                };
                Ok((x, Vec::new()))
            }
            ChainInit::ReplayBuffer(config) => {
                if !matches!(self.chains, Chains::Buffer(_)) {
                    let buffer = ReplayBuffer::new(config.clone(), sample_shape, rng)?;
                    self.chains = Chains::Buffer(buffer);
                }
                let Chains::Buffer(buffer) = &self.chains else {
                    unreachable!("the buffer was just created")
                };
                if buffer.sample_shape() != sample_shape {
                    return Err(Error::Shape {
                        what: "a batch for the replay buffer".into(),
                        expected: format!(
                            "[n, {:?}] as the buffer's samples",
                            buffer.sample_shape()
                        ),
                        found: batch.dims().to_vec(),
                    });
                }
                buffer.sample(n, rng)
            }
        }
    }

    /// Keeps the chains' end where the chain start says (persistent chains, the buffer).
    fn store_chains(&mut self, end: &Tensor<T>, indices: &[usize]) -> Result<(), Error> {
        match (&self.config.chain_init, &mut self.chains) {
            (ChainInit::Persistent(_), chains) => *chains = Chains::Persistent(end.clone()),
            (ChainInit::ReplayBuffer(_), Chains::Buffer(buffer)) => buffer.push(indices, end)?,
            _ => {}
        }
        Ok(())
    }

    /// The name of the chain start, as saved in the state.
    fn chain_init_name(&self) -> &'static str {
        match self.config.chain_init {
            ChainInit::Data => "data",
            ChainInit::Persistent(_) => "persistent",
            ChainInit::ReplayBuffer(_) => "replay_buffer",
            ChainInit::Noise(_) => "noise",
        }
    }
}

impl<T: Float, E: Energy<T> + ?Sized> Objective<T, E> for MaximumLikelihood<T> {
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error> {
        if batch.rank() < 2 || batch.dim(0) == 0 {
            return Err(Error::Shape {
                what: "a maximum likelihood batch".into(),
                expected: "[n, ...] with n >= 1".into(),
                found: batch.dims().to_vec(),
            });
        }

        // The negatives: k kernel steps from the chain starts, detached.
        let (start, indices) = self.chain_starts(batch, rng)?;
        let (end, infos) = self.kernel.run(start, energy, self.config.n_steps, rng)?;
        let samples = end.position.detach();
        self.store_chains(&samples, &indices)?;

        // The loss on the data and the samples.
        let (loss, energy_data, energy_samples) =
            contrastive_loss(energy, batch, &samples, self.config.energy_penalty);

        let mut metrics = Metrics::new();
        metrics.set("loss", loss.detach().item());
        metrics.set("energy_data", energy_data);
        metrics.set("energy_samples", energy_samples);
        metrics.set("energy_gap", energy_data - energy_samples);
        if !matches!(self.kernel, Kernel::Langevin(_)) {
            let rate = infos.iter().map(StepInfo::acceptance_rate).sum::<f64>();
            metrics.set("acceptance_rate", rate / infos.len() as f64);
        }
        let last = infos.last().expect("n_steps >= 1");
        metrics.set("chain_grad_norm", last.mean_grad_norm());
        metrics.set("divergent_chains", last.n_divergent() as f64);
        Ok(ObjectiveStep {
            loss,
            aux_loss: None,
            metrics,
        })
    }

    /// The chain start's name under `chain_init`, and the chains: the tensor `chains` for
    /// persistent chains, the replay buffer's state under `replay_buffer.` (empty before the
    /// first step).
    fn state_dict(&self) -> StateDict<T> {
        let mut state = StateDict::new();
        state
            .metadata
            .insert(KEY_CHAIN_INIT.into(), self.chain_init_name().into());
        match &self.chains {
            Chains::None => {}
            Chains::Persistent(x) => {
                state.tensors.insert(KEY_CHAINS.into(), x.detach());
            }
            Chains::Buffer(buffer) => state
                .merge_prefixed(PREFIX_BUFFER, buffer.state_dict())
                .expect("a fresh state has no entries under the buffer's prefix"),
        }
        state
    }

    fn load_state_dict(&mut self, state: &StateDict<T>) -> Result<(), Error> {
        let restore = |reason: String| Error::Restore {
            what: "maximum likelihood chains".into(),
            reason,
        };
        let saved = state.metadata.get(KEY_CHAIN_INIT).ok_or_else(|| {
            restore(format!(
                "the state has no `{KEY_CHAIN_INIT}` entry; save it with `MaximumLikelihood::state_dict`"
            ))
        })?;
        let ours = self.chain_init_name();
        if saved != ours {
            return Err(restore(format!(
                "the state was saved with chain_init `{saved}`, this objective uses `{ours}`; use the same chain_init to resume"
            )));
        }
        self.chains = match &self.config.chain_init {
            ChainInit::Persistent(_) => match state.tensors.get(KEY_CHAINS) {
                Some(x) => Chains::Persistent(x.detach()),
                None => Chains::None,
            },
            ChainInit::ReplayBuffer(config) => {
                let saved = state.prefixed(PREFIX_BUFFER);
                if saved.is_empty() {
                    Chains::None
                } else {
                    let buffer = ReplayBuffer::from_state_dict(&saved)?;
                    if buffer.config() != config {
                        return Err(restore(format!(
                            "the saved replay buffer has config {:?}, this objective uses {config:?}; use the same buffer settings to resume",
                            buffer.config()
                        )));
                    }
                    Chains::Buffer(buffer)
                }
            }
            ChainInit::Data | ChainInit::Noise(_) => Chains::None,
        };
        Ok(())
    }
}
