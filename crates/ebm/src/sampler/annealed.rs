//! Annealed Langevin dynamics over decreasing noise levels (Song & Ermon 2019).

use super::{ChainState, Langevin, LangevinConfig, Sampler, StepInfo};
use crate::Error;
use crate::energy::{AtNoiseLevel, NoiseConditionalEnergy};
use crate::error::check_positive;
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Settings of [`AnnealedLangevin`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnnealedLangevinConfig {
    /// The noise levels sigma_1 > sigma_2 > ... > sigma_L > 0, visited in this order.
    pub sigmas: Vec<f64>,
    /// Langevin steps T at each level.
    pub steps_per_level: usize,
    /// The step size epsilon of the last level; level i steps with
    /// alpha_i = epsilon * sigma_i^2 / sigma_L^2.
    pub step_size: f64,
    /// Whether to finish with one denoising step x + sigma_L^2 s(x, sigma_L) (Tweedie's
    /// formula: the posterior mean of the clean sample given the noisy one).
    #[serde(default)]
    pub denoise_last: bool,
    /// Clamp the chains to `[low, high]` after every step (the data range of images).
    #[serde(default)]
    pub clamp: Option<(f64, f64)>,
}

impl AnnealedLangevinConfig {
    /// `n_levels` noise levels in geometric progression from `sigma_max` down to `sigma_min`
    /// (a single level is `[sigma_min]`), with the settings of Song & Ermon for images:
    /// T = 100 steps per level, epsilon = 2e-5, no final denoising. Change the public fields
    /// to taste; [`AnnealedLangevin::new`] checks them.
    ///
    /// ```
    /// use ebm::sampler::AnnealedLangevinConfig;
    ///
    /// let config = AnnealedLangevinConfig::geometric(1.0, 0.01, 3);
    /// assert_eq!(config.sigmas.len(), 3);
    /// assert!((config.sigmas[1] - 0.1).abs() < 1e-12);
    /// ```
    pub fn geometric(sigma_max: f64, sigma_min: f64, n_levels: usize) -> Self {
        let sigmas = match n_levels {
            0 => Vec::new(),
            1 => vec![sigma_min],
            _ => {
                let ratio = sigma_min / sigma_max;
                let last = (n_levels - 1) as f64;
                (0..n_levels)
                    .map(|i| sigma_max * ratio.powf(i as f64 / last))
                    .collect()
            }
        };
        AnnealedLangevinConfig {
            sigmas,
            steps_per_level: 100,
            step_size: 2e-5,
            denoise_last: false,
            clamp: None,
        }
    }

    /// The number of noise levels L.
    pub fn n_levels(&self) -> usize {
        self.sigmas.len()
    }

    /// The step size of level `level` (0-based): alpha_i = epsilon * sigma_i^2 / sigma_L^2.
    ///
    /// # Panics
    /// When `level` is not below the number of levels.
    #[track_caller]
    pub fn level_step_size(&self, level: usize) -> f64 {
        let sigma_last = self.sigmas[self.sigmas.len() - 1];
        let ratio = self.sigmas[level] / sigma_last;
        self.step_size * ratio * ratio
    }

    /// The number of Langevin steps of a full run, L * T.
    pub fn n_steps(&self) -> usize {
        self.sigmas.len() * self.steps_per_level
    }

    /// `Ok(())` when the levels are positive and decreasing and the step settings positive.
    fn validate(&self) -> Result<(), Error> {
        if self.sigmas.is_empty() {
            return Err(Error::config(
                "annealed Langevin sigmas",
                "[]",
                "at least one noise level, such as AnnealedLangevinConfig::geometric(1.0, 0.01, 10)",
            ));
        }
        for (i, &sigma) in self.sigmas.iter().enumerate() {
            check_positive(&format!("annealed Langevin sigmas[{i}]"), sigma)?;
        }
        if let Some(i) = (1..self.sigmas.len()).find(|&i| self.sigmas[i] >= self.sigmas[i - 1]) {
            return Err(Error::config(
                "annealed Langevin sigmas",
                format!(
                    "{:?} (sigmas[{i}] = {} after sigmas[{}] = {})",
                    self.sigmas,
                    self.sigmas[i],
                    i - 1,
                    self.sigmas[i - 1]
                ),
                "strictly decreasing noise levels, largest first",
            ));
        }
        if self.steps_per_level == 0 {
            return Err(Error::config(
                "annealed Langevin steps_per_level",
                0,
                "at least 1 (Song & Ermon use 100)",
            ));
        }
        check_positive("annealed Langevin step_size", self.step_size)
    }
}

/// Annealed Langevin dynamics: Langevin chains run on a noise-conditional energy at
/// decreasing noise levels, each level starting where the previous one stopped.
///
/// ```text
/// for i = 1..L:
///     alpha_i = epsilon * sigma_i^2 / sigma_L^2
///     repeat T times:
///         x <- x - (alpha_i / 2) grad_x E(x, sigma_i) + sqrt(alpha_i) z,   z ~ N(0, I)
/// optionally: x <- x - sigma_L^2 grad_x E(x, sigma_L)                  (Tweedie denoising)
/// ```
///
/// At a large sigma the smoothed density exp(-E(x, sigma)) has no barriers between its modes,
/// so the chains spread over the modes in proportion to their mass; the later levels refine
/// the samples within each mode. Plain Langevin at the smallest noise level cannot do this:
/// chains stay in the basin they start in. The step size alpha_i keeps the signal-to-noise
/// ratio of the update the same at every level. No Metropolis correction, so each level
/// carries the O(alpha_i) bias of unadjusted Langevin.
///
/// Cost: L * T batched evaluations of the energy and its gradient, plus one at each of the
/// L - 1 level changes (the chains' energies at the new sigma).
///
/// Song & Ermon, "Generative Modeling by Estimating Gradients of the Data Distribution",
/// NeurIPS 2019, algorithm 1; the final denoising step is that of Jolicoeur-Martineau et al.,
/// "Adversarial score matching and improved sampling for image generation", ICLR 2021.
///
/// # Example
/// ```
/// use ebm::sampler::{AnnealedLangevin, AnnealedLangevinConfig};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// // A standard normal smoothed by noise sigma: E(x, sigma) = |x|^2 / (2 (1 + sigma^2)).
/// let energy = |x: &Tensor<f64>, s: &Tensor<f64>| {
///     &x.square().sum_axes(&[1], false) / &s.square().add_scalar(1.0).mul_scalar(2.0)
/// };
/// let config = AnnealedLangevinConfig {
///     steps_per_level: 20,
///     step_size: 0.1,
///     ..AnnealedLangevinConfig::geometric(10.0, 0.1, 5)
/// };
/// let sampler = AnnealedLangevin::new(config).unwrap();
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let x0 = Tensor::rand_uniform([500, 2], -5.0, 5.0, &mut rng);
/// let (x, info) = sampler.sample(&mut rng, x0, &energy).unwrap();
/// assert_eq!(x.dims(), &[500, 2]);
/// assert_eq!(info.levels.len(), 5);
/// assert_eq!(info.n_divergent(), 0);
/// ```
#[derive(Clone, Debug)]
pub struct AnnealedLangevin {
    config: AnnealedLangevinConfig,
    /// One unadjusted Langevin sampler per level: step alpha_i / 2, noise sqrt(alpha_i).
    levels: Vec<Langevin>,
}

/// The state of annealed Langevin chains between steps.
#[derive(Clone, Debug)]
pub struct AnnealedLangevinState<T: Float> {
    /// The chains, with energies and gradients at the noise level `level`.
    pub chains: ChainState<T>,
    /// The current noise level (0-based index into the config's sigmas).
    pub level: usize,
    /// Steps done at the current level.
    pub step: usize,
}

/// What a level of a full run reports (the last step of the level).
#[derive(Clone, Debug, PartialEq)]
pub struct AnnealedLevelInfo {
    /// The noise level sigma_i.
    pub sigma: f64,
    /// The step size alpha_i.
    pub step_size: f64,
    /// The mean energy E(x, sigma_i) over chains after the level's last step.
    pub mean_energy: f64,
    /// The mean of |grad_x E(x, sigma_i)| over chains after the level's last step.
    pub mean_grad_norm: f64,
    /// The number of chains flagged divergent (non-finite energy or gradient) at some step of
    /// the level.
    pub n_divergent: usize,
}

/// What [`AnnealedLangevin::sample`] reports.
#[derive(Clone, Debug, PartialEq)]
pub struct AnnealedLangevinInfo {
    /// One record per noise level, in the order run.
    pub levels: Vec<AnnealedLevelInfo>,
    /// Whether the returned samples are the denoised ones.
    pub denoised: bool,
}

impl AnnealedLangevinInfo {
    /// The largest number of divergent chains at any level (a chain that went non-finite
    /// stays so, and is counted at every later level).
    pub fn n_divergent(&self) -> usize {
        self.levels.iter().map(|l| l.n_divergent).max().unwrap_or(0)
    }
}

impl AnnealedLangevin {
    /// A sampler with these settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when there are no sigmas, a sigma is not finite and positive,
    /// the sigmas do not strictly decrease, `steps_per_level` is 0, `step_size` is not
    /// positive, or the clamp range is empty.
    pub fn new(config: AnnealedLangevinConfig) -> Result<Self, Error> {
        config.validate()?;
        let levels = (0..config.n_levels())
            .map(|i| {
                let alpha = config.level_step_size(i);
                Langevin::new(LangevinConfig {
                    step_size: alpha / 2.0,
                    noise_scale: alpha.sqrt(),
                    grad_clip: None,
                    clamp: config.clamp,
                })
            })
            .collect::<Result<_, _>>()?;
        Ok(AnnealedLangevin { config, levels })
    }

    /// The settings.
    pub fn config(&self) -> &AnnealedLangevinConfig {
        &self.config
    }

    /// Chains started at `position` (`[n, ...]`), at the first (largest) noise level.
    ///
    /// # Errors
    /// As [`ChainState::new`].
    pub fn init<T: Float, E: NoiseConditionalEnergy<T> + ?Sized>(
        &self,
        position: Tensor<T>,
        energy: &E,
    ) -> Result<AnnealedLangevinState<T>, Error> {
        let at = AtNoiseLevel::new(energy, self.config.sigmas[0]);
        Ok(AnnealedLangevinState {
            chains: ChainState::new(position, &at)?,
            level: 0,
            step: 0,
        })
    }

    /// One Langevin step of every chain at the state's noise level; after the level's last
    /// step the state moves to the next level (its energies and gradients re-evaluated
    /// there). Steps past the end of the schedule continue at the last level.
    ///
    /// # Returns
    /// The next state, and the step's info with energies at the level the step ran at.
    ///
    /// # Errors
    /// An error of the autodiff engine.
    pub fn step<T: Float, E: NoiseConditionalEnergy<T> + ?Sized, R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        state: AnnealedLangevinState<T>,
        energy: &E,
    ) -> Result<(AnnealedLangevinState<T>, StepInfo<T>), Error> {
        let AnnealedLangevinState {
            chains,
            mut level,
            mut step,
        } = state;
        let at = AtNoiseLevel::new(energy, self.config.sigmas[level]);
        let (mut chains, info) = self.levels[level].step(rng, chains, &at)?;
        step += 1;

        // Move on to the next level, evaluated at its sigma.
        if step == self.config.steps_per_level && level + 1 < self.levels.len() {
            level += 1;
            step = 0;
            let at = AtNoiseLevel::new(energy, self.config.sigmas[level]);
            chains = ChainState::new(chains.position, &at)?;
        }
        let state = AnnealedLangevinState {
            chains,
            level,
            step,
        };
        Ok((state, info))
    }

    /// Whether every level has run its steps.
    pub fn is_finished<T: Float>(&self, state: &AnnealedLangevinState<T>) -> bool {
        state.level + 1 == self.levels.len() && state.step >= self.config.steps_per_level
    }

    /// Tweedie's denoising step at the state's noise level sigma:
    /// x + sigma^2 s(x, sigma) = x - sigma^2 grad_x E(x, sigma) (no energy evaluation: the
    /// state holds the gradient).
    pub fn denoise<T: Float>(&self, state: &AnnealedLangevinState<T>) -> Tensor<T> {
        let sigma = self.config.sigmas[state.level];
        &state.chains.position - &state.chains.grad.mul_scalar(sigma * sigma)
    }

    /// The full schedule from `x0` (`[n, ...]`): L levels of T steps, then the denoising
    /// step when `denoise_last` is set.
    ///
    /// # Returns
    /// The samples `[n, ...]` and one record per level.
    ///
    /// # Errors
    /// As [`ChainState::new`] and [`Self::step`].
    pub fn sample<T: Float, E: NoiseConditionalEnergy<T> + ?Sized, R: Rng + ?Sized>(
        &self,
        rng: &mut R,
        x0: Tensor<T>,
        energy: &E,
    ) -> Result<(Tensor<T>, AnnealedLangevinInfo), Error> {
        let mut state = self.init(x0, energy)?;
        let n = state.chains.n_chains();
        let mut levels = Vec::with_capacity(self.levels.len());
        for level in 0..self.levels.len() {
            let mut divergent = vec![false; n];
            let mut last = None;
            for _ in 0..self.config.steps_per_level {
                let (next, info) = self.step(rng, state, energy)?;
                state = next;
                for (d, &now) in divergent.iter_mut().zip(&info.is_divergent) {
                    *d |= now;
                }
                last = Some(info);
            }
            let last = last.expect("steps_per_level >= 1 is validated");
            levels.push(AnnealedLevelInfo {
                sigma: self.config.sigmas[level],
                step_size: self.config.level_step_size(level),
                mean_energy: last.mean_energy(),
                mean_grad_norm: last.mean_grad_norm(),
                n_divergent: divergent.iter().filter(|&&d| d).count(),
            });
        }

        let denoised = self.config.denoise_last;
        let x = if denoised {
            self.denoise(&state)
        } else {
            state.chains.position
        };
        Ok((x, AnnealedLangevinInfo { levels, denoised }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn config(sigmas: Vec<f64>) -> AnnealedLangevinConfig {
        AnnealedLangevinConfig {
            sigmas,
            steps_per_level: 10,
            step_size: 0.1,
            denoise_last: false,
            clamp: None,
        }
    }

    #[test]
    fn geometric_levels_run_from_max_to_min() {
        let c = AnnealedLangevinConfig::geometric(20.0, 1.0, 10);
        assert_eq!(c.sigmas[0], 20.0);
        assert!((c.sigmas[9] - 1.0).abs() < 1e-12);
        assert!((c.level_step_size(0) - 2e-5 * 400.0).abs() < 1e-15);
        assert_eq!(AnnealedLangevinConfig::geometric(5.0, 0.5, 1).sigmas, [0.5]);
    }

    #[test]
    fn bad_configs_are_refused_with_the_offending_value() {
        let err = |c| AnnealedLangevin::new(c).unwrap_err().to_string();
        assert!(err(config(vec![])).contains("sigmas"));
        assert!(err(config(vec![1.0, 1.0])).contains("sigmas[1] = 1 after sigmas[0] = 1"));
        assert!(err(config(vec![1.0, 2.0])).contains("strictly decreasing"));
        assert!(err(config(vec![1.0, -0.5])).contains("sigmas[1]"));
        assert!(err(config(vec![f64::NAN])).contains("sigmas[0]"));
        let mut c = config(vec![1.0]);
        c.steps_per_level = 0;
        assert!(err(c).contains("steps_per_level"));
        let mut c = config(vec![1.0]);
        c.step_size = 0.0;
        assert!(err(c).contains("step_size"));
        let mut c = config(vec![1.0]);
        c.clamp = Some((1.0, -1.0));
        assert!(err(c).contains("clamp"));
    }

    #[test]
    fn clamped_chains_stay_in_range() {
        // A standard normal at every noise level, sampled within [0, 0.5].
        let energy = |x: &Tensor<f64>, _s: &Tensor<f64>| x.square().sum_axes(&[1], false);
        let mut c = config(vec![2.0, 1.0]);
        c.clamp = Some((0.0, 0.5));
        let sampler = AnnealedLangevin::new(c).unwrap();
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let x0 = Tensor::rand_uniform([200, 3], -3.0, 3.0, &mut rng);
        let (x, _) = sampler.sample(&mut rng, x0, &energy).unwrap();
        assert!(x.to_f64s().iter().all(|&v| (0.0..=0.5).contains(&v)));
    }

    #[test]
    fn config_round_trips_through_json() {
        let c = config(vec![2.0, 1.0]);
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            serde_json::from_str::<AnnealedLangevinConfig>(&text).unwrap(),
            c
        );
    }
}
