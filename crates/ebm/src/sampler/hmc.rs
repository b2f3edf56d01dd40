//! Hamiltonian Monte Carlo with a fixed number of leapfrog steps.

use super::integrator::{kinetic_energy, leapfrog};
use super::mala::DEFAULT_DIVERGENCE_THRESHOLD;
use super::metropolis::accept_reject;
use super::{ChainState, Sampler, StepInfo};
use crate::Error;
use crate::energy::Energy;
use crate::error::check_positive;
use ebm_tensor::{Float, Tensor};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

fn default_divergence_threshold() -> f64 {
    DEFAULT_DIVERGENCE_THRESHOLD
}

/// Settings of [`Hmc`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HmcConfig {
    /// The leapfrog step size epsilon.
    pub step_size: f64,
    /// Leapfrog steps per HMC step (the trajectory length is `step_size * n_leapfrog_steps`).
    pub n_leapfrog_steps: usize,
    /// The diagonal of the inverse mass matrix M^-1, one entry per coordinate of a chain;
    /// `None` for the identity. Setting it to the target's marginal variances makes every
    /// coordinate move on the same time scale.
    #[serde(default)]
    pub inverse_mass_matrix: Option<Vec<f64>>,
    /// A trajectory whose energy error H(end) - H(start) exceeds this is flagged divergent and
    /// rejected. Default 1000.
    #[serde(default = "default_divergence_threshold")]
    pub divergence_threshold: f64,
    /// Each step draws its step size uniformly from `step_size * [1 - j, 1 + j]` (the same for
    /// every chain), so that no trajectory length stays near a period of the target's dynamics
    /// (Neal 2011, section 5.4.2.4). 0, the default, keeps the step size fixed and draws
    /// nothing.
    #[serde(default)]
    pub step_size_jitter: f64,
}

impl HmcConfig {
    /// This step size and number of leapfrog steps, with the identity mass matrix and the
    /// default divergence threshold.
    pub fn new(step_size: f64, n_leapfrog_steps: usize) -> Self {
        HmcConfig {
            step_size,
            n_leapfrog_steps,
            inverse_mass_matrix: None,
            divergence_threshold: DEFAULT_DIVERGENCE_THRESHOLD,
            step_size_jitter: 0.0,
        }
    }
}

/// Hamiltonian Monte Carlo: a fresh Gaussian momentum, a leapfrog trajectory, and a Metropolis
/// correction on the Hamiltonian.
///
/// ```text
/// H(x, p) = E(x) + p^T M^-1 p / 2,          M^-1 = diag(inverse_mass_matrix)
/// p ~ N(0, M);  (x', p') = leapfrog(x, p, eps, n_leapfrog_steps)
/// log alpha = min(0, -(H(x', p') - H(x, p)))
/// ```
///
/// Each chain moves to x' when log u < log alpha (u ~ U(0, 1)); the momentum is discarded and
/// drawn again at the next step, so the state is a [`ChainState`]. A trajectory whose energy
/// error is not finite or exceeds [`HmcConfig::divergence_threshold`] is flagged in
/// [`StepInfo::is_divergent`] and rejected.
///
/// The info is the shared [`StepInfo`], so that HMC, MALA and Langevin report alike (and
/// [`warmup`](super::warmup) and the metrics read any of them); a chain's energy error is
/// -log of its acceptance probability whenever that probability is below 1.
///
/// Tuning: the step size for an acceptance rate near 0.65 (Beskos et al. 2013), which
/// [`warmup`](super::warmup) finds by dual averaging; a trajectory length near a multiple of
/// a period of the target's dynamics makes chains return where they started, a known weakness
/// of fixed-length HMC that NUTS removes and [`HmcConfig::step_size_jitter`] avoids.
///
/// Cost per step: `n_leapfrog_steps` batched evaluations of the energy and its gradient.
///
/// Duane, Kennedy, Pendleton & Roweth, "Hybrid Monte Carlo", Physics Letters B 1987; Neal,
/// "MCMC using Hamiltonian dynamics", Handbook of MCMC 2011.
///
/// # Example
/// ```
/// use ebm::sampler::{Hmc, HmcConfig, Sampler, run};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
/// let sampler = Hmc::new(HmcConfig::new(0.3, 5)).unwrap();
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let state = sampler.init(Tensor::zeros([1000, 2]), &energy).unwrap();
/// let (state, infos) = run(&sampler, &mut rng, state, &energy, 20).unwrap();
/// assert_eq!(state.position.dims(), &[1000, 2]);
/// assert!(infos[19].acceptance_rate() > 0.9);
/// ```
#[derive(Clone, Debug)]
pub struct Hmc {
    config: HmcConfig,
}

impl Hmc {
    /// A sampler with these settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a step size or divergence threshold that is not a finite
    /// positive number, zero leapfrog steps, or an inverse mass matrix that is empty or has an
    /// entry that is not a finite positive number, or a jitter outside [0, 1). The mass
    /// matrix's length is checked against the chains by [`Sampler::init`].
    pub fn new(config: HmcConfig) -> Result<Self, Error> {
        check_positive("HMC step_size", config.step_size)?;
        check_positive("HMC divergence_threshold", config.divergence_threshold)?;
        if config.n_leapfrog_steps == 0 {
            return Err(Error::config(
                "HMC n_leapfrog_steps",
                0,
                "at least 1 leapfrog step per HMC step",
            ));
        }
        if let Some(m) = &config.inverse_mass_matrix {
            if m.is_empty() {
                return Err(Error::config(
                    "HMC inverse_mass_matrix",
                    "[]",
                    "one positive entry per coordinate of a chain, or None for the identity",
                ));
            }
            for (i, &v) in m.iter().enumerate() {
                check_positive(&format!("HMC inverse_mass_matrix[{i}]"), v)?;
            }
        }
        let j = config.step_size_jitter;
        if !(0.0..1.0).contains(&j) {
            return Err(Error::config(
                "HMC step_size_jitter",
                j,
                "a fraction in [0, 1), such as 0.2 (0 for a fixed step size)",
            ));
        }
        Ok(Hmc { config })
    }

    /// The settings.
    pub fn config(&self) -> &HmcConfig {
        &self.config
    }

    /// The diagonal of M^-1 shaped like one chain of `position` (`[n, ...]`), or `None`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when its length is not the number of coordinates of a chain.
    fn inverse_mass<T: Float>(&self, position: &Tensor<T>) -> Result<Option<Tensor<T>>, Error> {
        let Some(m) = &self.config.inverse_mass_matrix else {
            return Ok(None);
        };
        let chain_dims = &position.dims()[1..];
        let d: usize = chain_dims.iter().product();
        if m.len() != d {
            return Err(Error::config(
                "HMC inverse_mass_matrix length",
                m.len(),
                format!(
                    "{d}, the number of coordinates of a chain of shape {chain_dims:?}, or None for the identity"
                ),
            ));
        }
        Ok(Some(Tensor::from_f64s(m, chain_dims)))
    }
}

impl<T: Float> Sampler<T> for Hmc {
    type State = ChainState<T>;
    type Info = StepInfo<T>;

    /// # Errors
    /// [`Error::InvalidConfig`] when the inverse mass matrix does not have one entry per
    /// coordinate of a chain; [`Error::Shape`] for no chains; an error of the autodiff engine.
    fn init<E: Energy<T> + ?Sized>(
        &self,
        position: Tensor<T>,
        energy: &E,
    ) -> Result<ChainState<T>, Error> {
        let state = ChainState::new(position, energy)?;
        self.inverse_mass(&state.position)?;
        Ok(state)
    }

    fn step<E: Energy<T> + ?Sized, R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        state: ChainState<T>,
        energy: &E,
    ) -> Result<(ChainState<T>, StepInfo<T>), Error> {
        let c = &self.config;
        let inverse_mass = self.inverse_mass(&state.position)?;
        let step_size = if c.step_size_jitter > 0.0 {
            let u: f64 = rng.random_range(-1.0..1.0);
            c.step_size * (1.0 + c.step_size_jitter * u)
        } else {
            c.step_size
        };

        // Momentum p ~ N(0, M): z / sqrt(M^-1).
        let z = Tensor::<T>::randn(state.position.shape().clone(), rng);
        let momentum = match &inverse_mass {
            Some(m) => &z / &m.sqrt(),
            None => z,
        };
        let h_start = &state.energy + &kinetic_energy(&momentum, inverse_mass.as_ref());

        // The trajectory and its energy error.
        let (proposal, p_end) = leapfrog(
            energy,
            &state,
            &momentum,
            step_size,
            inverse_mass.as_ref(),
            c.n_leapfrog_steps,
        )?;
        let h_end = &proposal.energy + &kinetic_energy(&p_end, inverse_mass.as_ref());
        let energy_error = &h_end - &h_start;

        Ok(accept_reject(
            rng,
            state,
            proposal,
            &energy_error,
            c.divergence_threshold,
        ))
    }
}
