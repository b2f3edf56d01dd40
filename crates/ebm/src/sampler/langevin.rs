//! Unadjusted Langevin dynamics (ULA; SGLD when the energy is a stochastic estimate).

use super::{ChainState, Sampler, StepInfo, evaluate, non_finite, per_chain_norm};
use crate::Error;
use crate::energy::Energy;
use crate::error::{check_non_negative, check_positive};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Settings of [`Langevin`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LangevinConfig {
    /// The step size epsilon multiplying the gradient.
    pub step_size: f64,
    /// The scale of the Gaussian noise. `sqrt(2 * step_size)` is the textbook choice (samples
    /// from exp(-E) as the step size shrinks); image EBMs often use a much smaller one, which
    /// samples at temperature `noise_scale^2 / (2 * step_size)`.
    pub noise_scale: f64,
    /// Clamp each component of the gradient to `[-c, c]` before the step.
    #[serde(default)]
    pub grad_clip: Option<f64>,
    /// Clamp positions to `[low, high]` after the step (the data range of images).
    #[serde(default)]
    pub clamp: Option<(f64, f64)>,
}

impl LangevinConfig {
    /// The textbook setting: noise scale sqrt(2 * step_size), no clipping, no clamping.
    pub fn new(step_size: f64) -> Self {
        LangevinConfig {
            step_size,
            noise_scale: (2.0 * step_size).sqrt(),
            grad_clip: None,
            clamp: None,
        }
    }

    /// The temperature the chains sample at, noise_scale^2 / (2 step_size): the stationary
    /// density of small steps is proportional to exp(-E / temperature).
    pub fn temperature(&self) -> f64 {
        self.noise_scale * self.noise_scale / (2.0 * self.step_size)
    }
}

/// Unadjusted Langevin dynamics:
///
/// ```text
/// x' = x - step_size * grad_x E(x) + noise_scale * z,   z ~ N(0, I)
/// ```
///
/// With noise_scale = sqrt(2 step_size) it is the Euler-Maruyama discretisation of the Langevin
/// diffusion, whose stationary density is exp(-E) / Z; the discretisation biases the chains'
/// stationary law by O(step_size) (for a Gaussian target N(0, s^2) the stationary variance is
/// s^2 / (1 - step_size / (2 s^2))). No Metropolis correction: see MALA for an exact sampler.
///
/// Cost per step: one batched evaluation of the energy and its gradient.
///
/// Roberts & Tweedie, "Exponential convergence of Langevin distributions and their discrete
/// approximations", Bernoulli 1996; Welling & Teh, "Bayesian learning via stochastic gradient
/// Langevin dynamics", ICML 2011.
///
/// # Example
/// ```
/// use ebm::sampler::{Langevin, LangevinConfig, Sampler, run};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
/// let sampler = Langevin::new(LangevinConfig::new(0.1)).unwrap();
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let state = sampler.init(Tensor::zeros([1000, 2]), &energy).unwrap();
/// let (state, infos) = run(&sampler, &mut rng, state, &energy, 50).unwrap();
/// assert_eq!(state.position.dims(), &[1000, 2]);
/// assert_eq!(infos[49].n_divergent(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct Langevin {
    config: LangevinConfig,
}

impl Langevin {
    /// A sampler with these settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a step size that is not positive, a negative noise scale,
    /// a gradient clip that is not positive, or a clamp range that is empty or not finite.
    pub fn new(config: LangevinConfig) -> Result<Self, Error> {
        check_positive("Langevin step_size", config.step_size)?;
        check_non_negative("Langevin noise_scale", config.noise_scale)?;
        if let Some(c) = config.grad_clip {
            check_positive("Langevin grad_clip", c)?;
        }
        if let Some((low, high)) = config.clamp
            && !(low.is_finite() && high.is_finite() && low < high)
        {
            return Err(Error::config(
                "Langevin clamp",
                format!("({low}, {high})"),
                "finite (low, high) with low < high, such as (0.0, 1.0)",
            ));
        }
        Ok(Langevin { config })
    }

    /// The settings.
    pub fn config(&self) -> &LangevinConfig {
        &self.config
    }

    /// The proposal x - step_size * clip(g) + noise_scale * z, clamped: shared with MALA.
    pub(crate) fn propose<T: Float, R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        state: &ChainState<T>,
    ) -> Tensor<T> {
        let c = &self.config;
        let g = match c.grad_clip {
            Some(clip) => state.grad.clamp(-clip, clip),
            None => state.grad.clone(),
        };
        let mut x = &state.position - &g.mul_scalar(c.step_size);
        if c.noise_scale > 0.0 {
            let z = Tensor::randn(state.position.shape().clone(), rng);
            x = &x + &z.mul_scalar(c.noise_scale);
        }
        match c.clamp {
            Some((low, high)) => x.clamp(low, high),
            None => x,
        }
    }
}

impl<T: Float> Sampler<T> for Langevin {
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
        let n = state.n_chains();
        let position = self.propose(rng, &state);
        let (e, g) = evaluate(energy, &position)?;

        let grad_norm = per_chain_norm(&g);
        let info = StepInfo {
            acceptance_probability: Tensor::ones([n]),
            is_accepted: vec![true; n],
            is_divergent: non_finite(&e, &grad_norm),
            energy: e.clone(),
            grad_norm,
        };
        let state = ChainState {
            position,
            energy: e,
            grad: g,
        };
        Ok((state, info))
    }
}
