//! Step-size adaptation by dual averaging, and the warm-up that runs it.

use super::{Hmc, HmcConfig, Mala, MalaConfig, Sampler, StepInfo};
use crate::Error;
use crate::energy::Energy;
use crate::error::check_positive;
use ebm_tensor::Float;
use rand::Rng;

/// Nesterov's dual averaging of the log step size towards a target acceptance rate, as in
/// NUTS (Hoffman & Gelman 2014, algorithm 5) and BlackJAX's `dual_averaging`.
///
/// After the m-th step, with acceptance rate a_m (m = 1, 2, ...):
///
/// ```text
/// H_m        = (1 - 1 / (m + t0)) H_{m-1} + (target - a_m) / (m + t0)
/// log eps_m  = mu - sqrt(m) / gamma * H_m
/// log eps'_m = m^-kappa log eps_m + (1 - m^-kappa) log eps'_{m-1}
/// ```
///
/// with mu = log(10 eps_0), gamma = 0.05, t0 = 10, kappa = 0.75, H_0 = 0, log eps'_0 = 0.
/// Warm-up steps use eps_m ([`DualAveraging::step_size`]); sampling afterwards uses the
/// averaged eps'_m ([`DualAveraging::final_step_size`]), which is far less noisy. The
/// acceptance rate rises as the step size falls, which the sign of the update assumes.
///
/// Hoffman & Gelman, "The No-U-Turn Sampler", JMLR 2014; Nesterov, "Primal-dual subgradient
/// methods for convex problems", Mathematical Programming 2009.
///
/// # Example
/// ```
/// use ebm::sampler::DualAveraging;
///
/// let mut adapt = DualAveraging::new(0.1, 0.65).unwrap();
/// adapt.update(1.0); // every proposal accepted: try a longer step
/// assert!(adapt.step_size() > 0.1);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct DualAveraging {
    target_acceptance: f64,
    mu: f64,
    log_step_size: f64,
    log_step_size_avg: f64,
    avg_error: f64,
    n_updates: usize,
}

impl DualAveraging {
    /// The shrinkage of the log step size towards mu.
    pub const GAMMA: f64 = 0.05;
    /// The offset that damps the first updates.
    pub const T0: f64 = 10.0;
    /// The decay exponent of the averaging weights.
    pub const KAPPA: f64 = 0.75;

    /// Adaptation from `initial_step_size` towards `target_acceptance`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an initial step size that is not a finite positive number,
    /// or a target outside (0, 1).
    pub fn new(initial_step_size: f64, target_acceptance: f64) -> Result<Self, Error> {
        check_positive("dual averaging initial step size", initial_step_size)?;
        if !(target_acceptance > 0.0 && target_acceptance < 1.0) {
            return Err(Error::config(
                "dual averaging target_acceptance",
                target_acceptance,
                "a number in (0, 1), such as 0.574 for MALA or 0.65 for HMC",
            ));
        }
        Ok(DualAveraging {
            target_acceptance,
            mu: (10.0 * initial_step_size).ln(),
            log_step_size: initial_step_size.ln(),
            log_step_size_avg: 0.0,
            avg_error: 0.0,
            n_updates: 0,
        })
    }

    /// One update with the acceptance rate of the last step (a NaN counts as 0).
    pub fn update(&mut self, acceptance_rate: f64) {
        let a = if acceptance_rate.is_nan() {
            0.0
        } else {
            acceptance_rate.clamp(0.0, 1.0)
        };
        self.n_updates += 1;
        let m = self.n_updates as f64;

        // Running mean of the acceptance error, then the new iterate.
        let w = 1.0 / (m + Self::T0);
        self.avg_error = (1.0 - w) * self.avg_error + w * (self.target_acceptance - a);
        self.log_step_size = self.mu - m.sqrt() / Self::GAMMA * self.avg_error;

        // Averaged iterate with weights m^-kappa.
        let eta = m.powf(-Self::KAPPA);
        self.log_step_size_avg = eta * self.log_step_size + (1.0 - eta) * self.log_step_size_avg;
    }

    /// The step size to use for the next warm-up step.
    pub fn step_size(&self) -> f64 {
        self.log_step_size.exp()
    }

    /// The averaged step size, to use after warm-up (the initial one before any update).
    pub fn final_step_size(&self) -> f64 {
        if self.n_updates == 0 {
            self.log_step_size.exp()
        } else {
            self.log_step_size_avg.exp()
        }
    }

    /// The target acceptance rate.
    pub fn target_acceptance(&self) -> f64 {
        self.target_acceptance
    }

    /// The number of updates so far.
    pub fn n_updates(&self) -> usize {
        self.n_updates
    }
}

/// A sampler whose step size can be tuned by [`warmup`].
pub trait StepSized: Sized {
    /// The step size.
    fn step_size(&self) -> f64;

    /// The same sampler with another step size.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when the step size is not valid for the sampler.
    fn with_step_size(&self, step_size: f64) -> Result<Self, Error>;

    /// The acceptance rate that [`warmup`] aims at when given no target.
    fn default_target_acceptance(&self) -> f64;
}

impl StepSized for Mala {
    fn step_size(&self) -> f64 {
        self.config().step_size
    }

    fn with_step_size(&self, step_size: f64) -> Result<Self, Error> {
        Mala::new(MalaConfig {
            step_size,
            ..self.config().clone()
        })
    }

    /// 0.574, optimal for MALA in high dimension (Roberts & Rosenthal 1998).
    fn default_target_acceptance(&self) -> f64 {
        0.574
    }
}

impl StepSized for Hmc {
    fn step_size(&self) -> f64 {
        self.config().step_size
    }

    fn with_step_size(&self, step_size: f64) -> Result<Self, Error> {
        Hmc::new(HmcConfig {
            step_size,
            ..self.config().clone()
        })
    }

    /// 0.65, optimal for HMC with a fixed trajectory in high dimension (Beskos, Pillai,
    /// Roberts, Sanz-Serna & Stuart 2013, "Optimal tuning of the hybrid Monte Carlo
    /// algorithm": 0.651). Stan and BlackJAX's window adaptation use 0.8 for NUTS, whose
    /// trajectories are longer and benefit from smaller steps.
    fn default_target_acceptance(&self) -> f64 {
        0.65
    }
}

/// What [`warmup`] returns: the tuned sampler, the chains where warm-up left them, and the
/// record of the adaptation.
#[derive(Clone, Debug)]
pub struct WarmedUp<S, St> {
    /// The sampler with the final (averaged) step size.
    pub sampler: S,
    /// The state after the last warm-up step.
    pub state: St,
    /// The step size used at each warm-up step.
    pub step_sizes: Vec<f64>,
    /// The mean acceptance probability over chains at each warm-up step.
    pub acceptance_rates: Vec<f64>,
}

/// `n_steps` steps of `sampler` from `state` that adapt its step size by [`DualAveraging`],
/// fed with the mean acceptance probability over chains at each step.
///
/// Returns the sampler with the averaged step size, for sampling afterwards at a fixed step
/// size: adaptation happens only here, so the chains that follow are a proper Markov chain.
/// The warm-up steps themselves are not draws from the target and should be discarded.
///
/// # Arguments
/// * `target_acceptance`: `None` for the sampler's default (0.574 for MALA, 0.65 for HMC).
///
/// Cost: `n_steps` steps of the sampler.
///
/// # Errors
/// [`Error::InvalidConfig`] for zero steps, a target outside (0, 1), or a step size that the
/// sampler refuses (such as an infinite one, on an energy so flat that every proposal is
/// accepted); the first error of [`Sampler::step`].
///
/// # Example
/// ```
/// use ebm::sampler::{Mala, MalaConfig, Sampler, warmup};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
/// let sampler = Mala::new(MalaConfig::new(0.01)).unwrap();
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let state = sampler.init(Tensor::zeros([500, 5]), &energy).unwrap();
/// let tuned = warmup(&sampler, &mut rng, state, &energy, 200, None).unwrap();
/// assert!(tuned.sampler.config().step_size > 0.1);
/// ```
pub fn warmup<T, S, E, R>(
    sampler: &S,
    rng: &mut R,
    mut state: S::State,
    energy: &E,
    n_steps: usize,
    target_acceptance: Option<f64>,
) -> Result<WarmedUp<S, S::State>, Error>
where
    T: Float,
    S: Sampler<T, Info = StepInfo<T>> + StepSized,
    E: Energy<T> + ?Sized,
    R: Rng + ?Sized,
{
    if n_steps == 0 {
        return Err(Error::config(
            "warm-up n_steps",
            0,
            "at least 1 step (dual averaging needs acceptance rates to adapt to)",
        ));
    }
    let target = target_acceptance.unwrap_or_else(|| sampler.default_target_acceptance());
    let mut adapt = DualAveraging::new(sampler.step_size(), target)?;
    let mut step_sizes = Vec::with_capacity(n_steps);
    let mut acceptance_rates = Vec::with_capacity(n_steps);

    for _ in 0..n_steps {
        let current = sampler.with_step_size(adapt.step_size())?;
        let (next, info) = current.step(rng, state, energy)?;
        state = next;
        step_sizes.push(adapt.step_size());
        acceptance_rates.push(info.acceptance_rate());
        adapt.update(info.acceptance_rate());
    }

    Ok(WarmedUp {
        sampler: sampler.with_step_size(adapt.final_step_size())?,
        state,
        step_sizes,
        acceptance_rates,
    })
}
