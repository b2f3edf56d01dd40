//! Annealed importance sampling of log Z (Neal 2001), forward and reverse (Grosse et al. 2015).

use super::{log_mean_exp, mean_and_standard_error};
use crate::Error;
use crate::energy::{Energy, GaussianEnergy};
use crate::error::check_positive;
use crate::sampler::{
    ChainState, Hmc, HmcConfig, Mala, MalaConfig, Sampler, StepInfo, StepSized, evaluate,
};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How the inverse temperatures 0 = beta_0 < beta_1 < ... < beta_K = 1 are spaced.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AisSchedule {
    /// beta_k = k / K.
    Linear,
    /// beta_k proportional to sigmoid(delta (2 k / K - 1)), shifted and scaled to run from 0
    /// to 1: small steps at both ends, where the log-weights change fastest (Grosse et al.
    /// 2015 use delta = 4).
    Sigmoid {
        /// The steepness (> 0).
        delta: f64,
    },
}

impl Default for AisSchedule {
    fn default() -> Self {
        AisSchedule::Sigmoid { delta: 4.0 }
    }
}

/// The Markov transition applied at each intermediate distribution. Both are
/// Metropolis-adjusted, so each leaves its intermediate distribution exactly invariant (as
/// AIS requires) and is reversible (as the reverse run requires).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AisTransition {
    /// [`Mala`] with these settings.
    Mala(MalaConfig),
    /// [`Hmc`] with these settings.
    Hmc(HmcConfig),
}

/// Settings of [`Ais`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AisConfig {
    /// K, the number of steps along the path (K - 1 intermediate distributions). Default 1000.
    pub n_temperatures: usize,
    /// Chains of the forward run. Default 256.
    pub n_chains: usize,
    /// The spacing of the temperatures. Default sigmoid, delta = 4.
    pub schedule: AisSchedule,
    /// The transition. Default MALA with step size 0.05.
    pub transition: AisTransition,
    /// Transitions per intermediate distribution. Default 1.
    pub steps_per_temperature: usize,
}

impl Default for AisConfig {
    fn default() -> Self {
        AisConfig {
            n_temperatures: 1000,
            n_chains: 256,
            schedule: AisSchedule::default(),
            transition: AisTransition::Mala(MalaConfig::new(0.05)),
            steps_per_temperature: 1,
        }
    }
}

/// How [`Ais::tuned`] picks one step size per temperature, by a pilot run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AisTuning {
    /// The acceptance rate aimed at, at every temperature. `None`: the transition's own
    /// (0.574 for MALA, 0.65 for HMC).
    pub target_acceptance: Option<f64>,
    /// Chains of the pilot run. Default 32.
    pub pilot_chains: usize,
    /// Transitions at the first temperature before the pilot moves on, to find the base's
    /// step size from the configured one. Default 50.
    pub warmup_steps: usize,
}

impl Default for AisTuning {
    fn default() -> Self {
        AisTuning {
            target_acceptance: None,
            pilot_chains: 32,
            warmup_steps: 50,
        }
    }
}

/// One AIS estimate of log Z.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AisEstimate {
    /// The estimate log Z_hat.
    pub log_z: f64,
    /// Its standard error by the delta method, sd(w) / (sqrt(n) mean(w)) over the chains'
    /// weights w (unreliable when [`AisEstimate::effective_sample_size`] is small).
    pub standard_error: f64,
    /// (sum w)^2 / sum w^2: how many chains carry the estimate (n when all weights agree).
    pub effective_sample_size: f64,
    /// The number of chains.
    pub n_chains: usize,
    /// The mean acceptance rate of the transitions.
    pub acceptance_rate: f64,
    /// Proposals flagged divergent over the run (rejected, so the chains stay valid).
    pub n_divergent: usize,
    /// The chains' log-weights (log w for the forward run, log w_rev for the reverse one).
    pub log_weights: Vec<f64>,
}

/// Both AIS bounds on log Z.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AisBounds {
    /// The forward run: `E[log Z_hat]` <= log Z.
    pub lower: AisEstimate,
    /// The reverse run, when it was given samples of the target to start from: `E[log Z_hat]`
    /// >= log Z if those samples are exact.
    pub upper: Option<AisEstimate>,
    /// Whether the reverse run started from exact samples (else from MCMC chains, and the
    /// upper bound holds only as far as those chains reached the target).
    pub upper_is_exact: bool,
}

/// Annealed importance sampling of log Z = log integral exp(-E(x)) dx, in any dimension.
///
/// The path runs from a normalised Gaussian base p_0 = N(mu, Sigma) (log Z_0 known) to the
/// target f_K = exp(-E) along the geometric path
///
/// ```text
/// f_k(x) = exp(-(1 - beta_k) E_0(x) - beta_k E(x)),   0 = beta_0 < ... < beta_K = 1
/// forward:  x_0 ~ p_0;  x_k ~ T_k(x_{k-1}, .)  for k = 1..K-1  (T_k leaves f_k invariant)
///           log w = sum_{k=1..K} -(beta_k - beta_{k-1}) (E(x_{k-1}) - E_0(x_{k-1}))
///           log Z_hat = log Z_0 + log mean_chains w
/// reverse:  x_{K-1} ~ p (samples of the target), then the same transitions in reverse order
///           log w_rev = sum_{k=1..K} (beta_k - beta_{k-1}) (E(x_{k-1}) - E_0(x_{k-1}))
///           log Z_hat = log Z_0 - log mean_chains w_rev
/// ```
///
/// E(w) = Z / Z_0, so by Jensen's inequality the forward log Z_hat is a stochastic lower
/// bound, E(log Z_hat) <= log Z (Neal 2001), and it is unlikely to exceed log Z by more than
/// a few nats (P(log Z_hat > log Z + b) <= e^-b). E(w_rev) = Z_0 / Z when the reverse run
/// starts from exact samples of p, so its log Z_hat is a stochastic upper bound; the two
/// sandwich log Z and their gap shrinks to 0 as K grows (bidirectional Monte Carlo, Grosse
/// et al. 2015). For a trained EBM there are no exact samples: starting the reverse run from
/// long MCMC chains gives an upper bound only as far as those chains have reached p, which
/// nothing here checks.
///
/// Assumptions: the base covers the target (its tails are not much lighter), and the
/// transitions are Metropolis-adjusted (MALA or HMC), so each leaves its f_k invariant
/// whatever its step size; a poor step size costs variance, never bias of the bound. Sample
/// shapes of any rank work: the base sees each sample flattened to its d values.
///
/// Cost: K (steps_per_temperature + 1) batched evaluations of E and its gradient for MALA
/// (for HMC, n_leapfrog_steps per transition): the extra one re-evaluates the chains at each
/// new temperature.
///
/// Neal, "Annealed importance sampling", Statistics and Computing 2001; Grosse, Ghahramani &
/// Adams, "Sandwiching the marginal likelihood using bidirectional Monte Carlo", 2015.
///
/// # Example
/// ```
/// use ebm::energy::GaussianEnergy;
/// use ebm::eval::{Ais, AisConfig};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// // Target: |x|^2 / 2 in 2-D (log Z = ln 2 pi); base: N(0, 4 I).
/// let target = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
/// let cov = Tensor::from_f64s(&[4.0, 0.0, 0.0, 4.0], [2, 2]);
/// let base = GaussianEnergy::from_mean_covariance(&Tensor::zeros([2]), &cov)?;
/// let ais = Ais::new(AisConfig { n_temperatures: 100, ..AisConfig::default() })?;
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let est = ais.forward(&mut rng, &target, &base, &[2])?;
/// assert!((est.log_z - std::f64::consts::TAU.ln()).abs() < 0.05);
/// # Ok::<(), ebm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Ais {
    config: AisConfig,
    betas: Vec<f64>,
    kernel: Kernel,
    /// Per-temperature step sizes (index k for beta_k), set by [`Ais::tuned`].
    step_sizes: Option<Vec<f64>>,
}

/// The transition, built and checked once.
#[derive(Clone, Debug)]
enum Kernel {
    Mala(Mala),
    Hmc(Hmc),
}

impl Ais {
    /// AIS with these settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for no temperatures, chains or steps per temperature, a
    /// sigmoid steepness that is not finite and positive, or transition settings that
    /// [`Mala::new`] / [`Hmc::new`] refuse.
    pub fn new(config: AisConfig) -> Result<Self, Error> {
        let k = config.n_temperatures;
        for (what, v) in [
            ("AIS n_temperatures", k),
            ("AIS n_chains", config.n_chains),
            ("AIS steps_per_temperature", config.steps_per_temperature),
        ] {
            if v == 0 {
                return Err(Error::config(
                    what,
                    0,
                    "at least 1 (hundreds to thousands of temperatures)",
                ));
            }
        }
        let kernel = match &config.transition {
            AisTransition::Mala(c) => Kernel::Mala(Mala::new(c.clone())?),
            AisTransition::Hmc(c) => Kernel::Hmc(Hmc::new(c.clone())?),
        };
        let betas = match config.schedule {
            AisSchedule::Linear => (0..=k).map(|i| i as f64 / k as f64).collect(),
            AisSchedule::Sigmoid { delta } => {
                check_positive("AIS sigmoid delta", delta)?;
                let s = |i: usize| 1.0 / (1.0 + (-delta * (2.0 * i as f64 / k as f64 - 1.0)).exp());
                let (s0, s1) = (s(0), s(k));
                (0..=k).map(|i| (s(i) - s0) / (s1 - s0)).collect()
            }
        };
        Ok(Ais {
            config,
            betas,
            kernel,
            step_sizes: None,
        })
    }

    /// The same AIS with one step size per temperature, tuned by a pilot run: a forward run
    /// of `tuning.pilot_chains` chains from the base that, after each transition, scales the
    /// step size by exp(a - target) for the acceptance rate a it measured, so that it
    /// tracks the changing scale of the intermediate distributions (on a Gaussian path the
    /// best MALA step shrinks in proportion to the variance). The pilot's step sizes are then
    /// smoothed in log scale over a window of K / 50 temperatures, and fixed.
    ///
    /// The runs that estimate log Z use those fixed step sizes, so each transition still
    /// leaves its intermediate distribution invariant and both bounds keep their meaning; the
    /// pilot's own chains are discarded. The pilot costs `pilot_chains / n_chains` of a
    /// forward run, plus `warmup_steps` transitions.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a target acceptance outside (0, 1) or no pilot chains;
    /// [`Error::Shape`] as [`Ais::forward`]; an error of the energy.
    pub fn tuned<T, E, R>(
        &self,
        rng: &mut R,
        target: &E,
        base: &GaussianEnergy<T>,
        sample_shape: &[usize],
        tuning: &AisTuning,
    ) -> Result<Ais, Error>
    where
        T: Float,
        E: Energy<T> + ?Sized,
        R: Rng + ?Sized,
    {
        let aim = tuning
            .target_acceptance
            .unwrap_or_else(|| self.kernel.default_target_acceptance());
        if !(aim > 0.0 && aim < 1.0) {
            return Err(Error::config(
                "AIS target_acceptance",
                aim,
                "a number in (0, 1), such as 0.574 for MALA or 0.65 for HMC",
            ));
        }
        if tuning.pilot_chains == 0 {
            return Err(Error::config(
                "AIS pilot_chains",
                0,
                "at least 1 (a few dozen measure the acceptance well enough)",
            ));
        }
        let mut x = base_draws(rng, base, sample_shape, tuning.pilot_chains)?;
        let k_max = self.betas.len() - 1;
        let mut log_h = vec![self.kernel.step_size().ln(); k_max + 1];
        let mut h = self.kernel.step_size();
        for (k, &beta) in self.betas.iter().enumerate().take(k_max).skip(1) {
            let path = GeometricPath { target, base, beta };
            let mut state = ChainState::new(x, &path)?;
            let steps =
                self.config.steps_per_temperature + if k == 1 { tuning.warmup_steps } else { 0 };
            // The step recorded for beta_k: the mean log step of its last transitions (the
            // warm-up's are the search for the base's).
            let mut used = 0.0;
            for i in 0..steps {
                let kernel = self.kernel.with_step_size(h)?;
                let (s, info) = kernel.step(rng, state, &path)?;
                state = s;
                if i + self.config.steps_per_temperature >= steps {
                    used += h.ln();
                }
                let a = info.acceptance_rate();
                let a = if a.is_nan() { 0.0 } else { a };
                h *= (a - aim).exp();
            }
            log_h[k] = used / self.config.steps_per_temperature as f64;
            x = state.position;
        }
        // The ends: beta_0 has no transition; beta_K's step (for sampling the target) is
        // that of the last intermediate distribution.
        if k_max >= 2 {
            log_h[0] = log_h[1];
            log_h[k_max] = log_h[k_max - 1];
        }
        let half = k_max / 100;
        let smoothed = (0..=k_max)
            .map(|k| {
                let (lo, hi) = (k.saturating_sub(half), (k + half).min(k_max));
                (log_h[lo..=hi].iter().sum::<f64>() / (hi - lo + 1) as f64).exp()
            })
            .collect();
        Ok(Ais {
            step_sizes: Some(smoothed),
            ..self.clone()
        })
    }

    /// The step size of the transition at each temperature (index k for beta_k), when
    /// [`Ais::tuned`] set them; `None` when every temperature uses the configured one.
    pub fn step_sizes(&self) -> Option<&[f64]> {
        self.step_sizes.as_deref()
    }

    /// The settings.
    pub fn config(&self) -> &AisConfig {
        &self.config
    }

    /// The inverse temperatures beta_0 = 0, ..., beta_K = 1.
    pub fn betas(&self) -> &[f64] {
        &self.betas
    }

    /// The forward run from `config.n_chains` draws of `base`: a stochastic lower bound.
    ///
    /// # Arguments
    /// `sample_shape`: the shape of one sample of the target (`[d]`, or `[c, h, w]`), whose
    /// number of values must be the base's dimension.
    ///
    /// # Errors
    /// [`Error::Shape`] when `sample_shape` does not hold `base.dim()` values; an error of the
    /// autodiff engine; [`Error::InvalidConfig`] when a log-weight is NaN (an energy that is
    /// NaN somewhere the chains went).
    pub fn forward<T, E, R>(
        &self,
        rng: &mut R,
        target: &E,
        base: &GaussianEnergy<T>,
        sample_shape: &[usize],
    ) -> Result<AisEstimate, Error>
    where
        T: Float,
        E: Energy<T> + ?Sized,
        R: Rng + ?Sized,
    {
        let x0 = base_draws(rng, base, sample_shape, self.config.n_chains)?;
        let run = self.run(rng, target, base, x0, Direction::Forward)?;
        let log_z = base.log_normalizer() + log_mean_exp(&run.log_weights);
        Ok(run.into_estimate(log_z))
    }

    /// The reverse run from `start` (`[n, ...]`, one chain per row): samples of the target.
    /// A stochastic upper bound when they are exact samples; an approximate one when they come
    /// from MCMC.
    ///
    /// # Errors
    /// [`Error::Shape`] when a row of `start` does not hold `base.dim()` values or there is
    /// no row; as [`Ais::forward`].
    pub fn reverse<T, E, R>(
        &self,
        rng: &mut R,
        target: &E,
        base: &GaussianEnergy<T>,
        start: &Tensor<T>,
    ) -> Result<AisEstimate, Error>
    where
        T: Float,
        E: Energy<T> + ?Sized,
        R: Rng + ?Sized,
    {
        if start.rank() < 2 || start.dim(0) == 0 || start.numel() / start.dim(0) != base.dim() {
            return Err(Error::Shape {
                what: "reverse AIS start".into(),
                expected: format!("[n, ...] with n >= 1 and {} values per row", base.dim()),
                found: start.dims().to_vec(),
            });
        }
        let run = self.run(rng, target, base, start.detach(), Direction::Reverse)?;
        let log_z = base.log_normalizer() - log_mean_exp(&run.log_weights);
        Ok(run.into_estimate(log_z))
    }

    /// Both runs: the forward lower bound, and the reverse upper bound when `reverse_start`
    /// holds samples of the target (`exact` says whether they are exact draws).
    ///
    /// # Errors
    /// As [`Ais::forward`] and [`Ais::reverse`].
    pub fn bounds<T, E, R>(
        &self,
        rng: &mut R,
        target: &E,
        base: &GaussianEnergy<T>,
        sample_shape: &[usize],
        reverse_start: Option<&Tensor<T>>,
        exact: bool,
    ) -> Result<AisBounds, Error>
    where
        T: Float,
        E: Energy<T> + ?Sized,
        R: Rng + ?Sized,
    {
        let lower = self.forward(rng, target, base, sample_shape)?;
        let upper = reverse_start
            .map(|s| self.reverse(rng, target, base, s))
            .transpose()?;
        Ok(AisBounds {
            upper_is_exact: exact && upper.is_some(),
            lower,
            upper,
        })
    }

    /// The chains through all temperatures, in `direction`, accumulating log-weights.
    fn run<T, E, R>(
        &self,
        rng: &mut R,
        target: &E,
        base: &GaussianEnergy<T>,
        mut x: Tensor<T>,
        direction: Direction,
    ) -> Result<Run, Error>
    where
        T: Float,
        E: Energy<T> + ?Sized,
        R: Rng + ?Sized,
    {
        let k_max = self.betas.len() - 1;
        let mut log_weights = vec![0.0; x.dim(0)];
        let (mut accepted, mut steps, mut n_divergent) = (0.0, 0usize, 0usize);
        let order: Vec<usize> = match direction {
            Direction::Forward => (1..=k_max).collect(),
            Direction::Reverse => (1..=k_max).rev().collect(),
        };
        for k in order {
            // The weight increment at the current point: f_k / f_{k-1} forward, its inverse
            // in reverse; both parts evaluated once, with gradients for the next transition.
            let (e1, g1) = evaluate(target, &x)?;
            let (e0, g0) = base.energy_and_grad(&x.flatten_batch(), false)?;
            let g0 = g0.reshape(x.dims());
            let gap = (&e1 - &e0).to_f64s();
            let step = self.betas[k] - self.betas[k - 1];
            let sign = match direction {
                Direction::Forward => -1.0,
                Direction::Reverse => 1.0,
            };
            for (w, g) in log_weights.iter_mut().zip(&gap) {
                *w += sign * step * g;
            }

            // The transition at the next temperature to visit (none after the last weight).
            let next = match direction {
                Direction::Forward if k < k_max => k,
                Direction::Reverse if k > 1 => k - 1,
                _ => continue,
            };
            let beta = self.betas[next];
            let path = GeometricPath { target, base, beta };
            let mut state = ChainState {
                position: x,
                energy: &e0.mul_scalar(1.0 - beta) + &e1.mul_scalar(beta),
                grad: &g0.mul_scalar(1.0 - beta) + &g1.mul_scalar(beta),
            };
            let kernel = match &self.step_sizes {
                Some(h) => self.kernel.with_step_size(h[next])?,
                None => self.kernel.clone(),
            };
            for _ in 0..self.config.steps_per_temperature {
                let (s, info) = kernel.step(rng, state, &path)?;
                state = s;
                accepted += info.acceptance_rate();
                n_divergent += info.n_divergent();
                steps += 1;
            }
            x = state.position;
        }
        if let Some(i) = log_weights.iter().position(|w| w.is_nan()) {
            return Err(Error::config(
                "AIS log-weight",
                format!("NaN for chain {i}"),
                "an energy that is a number wherever the chains go (check the model for NaN)",
            ));
        }
        Ok(Run {
            log_weights,
            acceptance_rate: if steps > 0 {
                accepted / steps as f64
            } else {
                1.0
            },
            n_divergent,
        })
    }
}

impl Kernel {
    fn step_size(&self) -> f64 {
        match self {
            Kernel::Mala(m) => m.step_size(),
            Kernel::Hmc(h) => h.step_size(),
        }
    }

    fn with_step_size(&self, step_size: f64) -> Result<Kernel, Error> {
        Ok(match self {
            Kernel::Mala(m) => Kernel::Mala(m.with_step_size(step_size)?),
            Kernel::Hmc(h) => Kernel::Hmc(h.with_step_size(step_size)?),
        })
    }

    fn default_target_acceptance(&self) -> f64 {
        match self {
            Kernel::Mala(m) => m.default_target_acceptance(),
            Kernel::Hmc(h) => h.default_target_acceptance(),
        }
    }

    fn step<T, E, R>(
        &self,
        rng: &mut R,
        state: ChainState<T>,
        path: &E,
    ) -> Result<(ChainState<T>, StepInfo<T>), Error>
    where
        T: Float,
        E: Energy<T> + ?Sized,
        R: Rng + ?Sized,
    {
        match self {
            Kernel::Mala(mala) => mala.step(rng, state, path),
            Kernel::Hmc(hmc) => hmc.step(rng, state, path),
        }
    }
}

/// `n` draws of `base` shaped `[n, sample_shape..]`.
fn base_draws<T: Float, R: Rng + ?Sized>(
    rng: &mut R,
    base: &GaussianEnergy<T>,
    sample_shape: &[usize],
    n: usize,
) -> Result<Tensor<T>, Error> {
    let d: usize = sample_shape.iter().product();
    if d != base.dim() {
        return Err(Error::Shape {
            what: format!("AIS sample shape for a base of dimension {}", base.dim()),
            expected: format!("a shape holding {} values", base.dim()),
            found: sample_shape.to_vec(),
        });
    }
    let mut dims = vec![n];
    dims.extend_from_slice(sample_shape);
    Ok(base.sample(n, rng).reshape(dims))
}

#[derive(Clone, Copy, Debug)]
enum Direction {
    Forward,
    Reverse,
}

/// What a run leaves before it becomes an estimate.
struct Run {
    log_weights: Vec<f64>,
    acceptance_rate: f64,
    n_divergent: usize,
}

impl Run {
    fn into_estimate(self, log_z: f64) -> AisEstimate {
        // Weights relative to the largest, for the delta-method error and the ESS.
        let max = self
            .log_weights
            .iter()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        let w: Vec<f64> = self.log_weights.iter().map(|l| (l - max).exp()).collect();
        let (mean, se) = mean_and_standard_error(&w);
        let sum: f64 = w.iter().sum();
        let sum_sq: f64 = w.iter().map(|v| v * v).sum();
        AisEstimate {
            log_z,
            standard_error: se / mean,
            effective_sample_size: sum * sum / sum_sq,
            n_chains: w.len(),
            acceptance_rate: self.acceptance_rate,
            n_divergent: self.n_divergent,
            log_weights: self.log_weights,
        }
    }
}

/// E_beta(x) = (1 - beta) E_0(x) + beta E(x), the base seeing each sample flattened.
struct GeometricPath<'a, T: Float, E: ?Sized> {
    target: &'a E,
    base: &'a GaussianEnergy<T>,
    beta: f64,
}

impl<T: Float, E: Energy<T> + ?Sized> Energy<T> for GeometricPath<'_, T, E> {
    fn energy(&self, x: &Tensor<T>) -> Tensor<T> {
        let e0 = self.base.energy(&x.flatten_batch());
        &e0.mul_scalar(1.0 - self.beta) + &self.target.energy(x).mul_scalar(self.beta)
    }

    fn energy_and_grad(
        &self,
        x: &Tensor<T>,
        create_graph: bool,
    ) -> Result<(Tensor<T>, Tensor<T>), Error> {
        let (e1, g1) = self.target.energy_and_grad(x, create_graph)?;
        let (e0, g0) = self
            .base
            .energy_and_grad(&x.flatten_batch(), create_graph)?;
        let b = self.beta;
        Ok((
            &e0.mul_scalar(1.0 - b) + &e1.mul_scalar(b),
            &g0.reshape(x.dims()).mul_scalar(1.0 - b) + &g1.mul_scalar(b),
        ))
    }
}
