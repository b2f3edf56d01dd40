//! Multi-scale denoising score matching (Song & Ermon 2019, "Generative modeling by estimating
//! gradients of the data distribution"): one noise-conditional model E(x, sigma) fitted by
//! denoising score matching at a whole ladder of noise levels at once, then sampled by annealed
//! Langevin dynamics from the largest level down to the smallest.

use super::score_matching::per_sample_sum;
use super::{Metrics, Objective, ObjectiveStep};
use crate::Error;
use crate::energy::{NoiseConditionalEnergy, check_energy_shape};
use crate::error::check_positive;
use crate::sampler::AnnealedLangevinConfig;
use ebm_tensor::autodiff::{GradOptions, grad};
use ebm_tensor::{Float, Tensor};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// Settings of [`MultiScaleDenoisingScoreMatching`]: the noise levels
/// sigma_1 > sigma_2 > ... > sigma_L in geometric progression from `sigma_max` to `sigma_min`.
///
/// The defaults (3 to 0.01 in 10 levels) suit the 2-D sets: Song & Ermon (2020, "Improved
/// techniques for training score-based generative models") advise a largest level about the
/// largest distance between data points, and a smallest one below the detail to resolve.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MultiScaleDenoisingScoreMatchingConfig {
    /// The largest noise level sigma_1 (finite, > `sigma_min` when there are two levels or
    /// more). Default 3.
    pub sigma_max: f64,
    /// The smallest noise level sigma_L (finite, > 0). Default 0.01.
    pub sigma_min: f64,
    /// The number of levels L (at least 1; one level is `[sigma_min]`). Default 10.
    pub n_levels: usize,
}

impl Default for MultiScaleDenoisingScoreMatchingConfig {
    fn default() -> Self {
        MultiScaleDenoisingScoreMatchingConfig {
            sigma_max: 3.0,
            sigma_min: 0.01,
            n_levels: 10,
        }
    }
}

impl MultiScaleDenoisingScoreMatchingConfig {
    /// The noise levels, largest first: sigma_i = sigma_max (sigma_min / sigma_max)^((i-1)/(L-1)).
    pub fn sigmas(&self) -> Vec<f64> {
        AnnealedLangevinConfig::geometric(self.sigma_max, self.sigma_min, self.n_levels).sigmas
    }

    /// The annealed Langevin sampler that matches these levels: the same sigmas, T = 100
    /// steps per level and Song & Ermon's step size epsilon = 2e-5 for sigma_L = 0.01, scaled
    /// as sigma_min^2 (epsilon = 2e-5 (sigma_min / 0.01)^2), so that every level steps with
    /// alpha_i = 0.2 sigma_i^2 whatever the scale. Change the public fields to taste.
    ///
    /// ```
    /// use ebm::objective::multiscale::MultiScaleDenoisingScoreMatchingConfig;
    ///
    /// let config = MultiScaleDenoisingScoreMatchingConfig::default();
    /// let sampler = config.annealed_langevin_config();
    /// assert_eq!(sampler.sigmas, config.sigmas());
    /// ```
    pub fn annealed_langevin_config(&self) -> AnnealedLangevinConfig {
        let mut config =
            AnnealedLangevinConfig::geometric(self.sigma_max, self.sigma_min, self.n_levels);
        config.step_size = 2e-5 * (self.sigma_min / 0.01).powi(2);
        config
    }

    /// Checks every setting.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] naming the first setting out of range.
    pub fn validate(&self) -> Result<(), Error> {
        if self.n_levels == 0 {
            return Err(Error::config(
                "multi-scale denoising score matching n_levels",
                0,
                "at least 1 noise level",
            ));
        }
        check_positive(
            "multi-scale denoising score matching sigma_min",
            self.sigma_min,
        )?;
        check_positive(
            "multi-scale denoising score matching sigma_max",
            self.sigma_max,
        )?;
        if self.n_levels > 1 && self.sigma_max <= self.sigma_min {
            return Err(Error::config(
                "multi-scale denoising score matching sigma_max",
                self.sigma_max,
                format!(
                    "a value above sigma_min = {} for {} levels",
                    self.sigma_min, self.n_levels
                ),
            ));
        }
        Ok(())
    }
}

/// Multi-scale denoising score matching (Song & Ermon 2019, "Generative modeling by estimating
/// gradients of the data distribution"), for a noise-conditional energy E(x, sigma) with score
/// s(x, sigma) = -grad_x E(x, sigma):
///
/// ```text
/// L = 1/L sum_l lambda(sigma_l) 1/2 E || s(x + sigma_l z, sigma_l) + z / sigma_l ||^2
///   = 1/2 E_l E || sigma_l s(x + sigma_l z, sigma_l) + z ||^2,    lambda(sigma) = sigma^2,
/// ```
///
/// estimated with one level l_i drawn uniformly per sample, z_i ~ N(0, I). The weight
/// lambda(sigma) = sigma^2 makes every level's term of order one (the optimal sigma s has norm
/// about sqrt(d)), so no level dominates. At each level the minimiser is the score of the
/// data convolved with N(0, sigma_l^2 I), which is what annealed Langevin sampling
/// ([`MultiScaleDenoisingScoreMatchingConfig::annealed_langevin_config`]) follows.
///
/// Assumptions: E differentiable in x; the largest level comparable with the spread of the
/// data and the smallest below its finest detail.
///
/// Cost per step: that of single-scale denoising score matching on the batch (one forward
/// pass, one recorded backward pass to x, and the weight gradient of both), whatever L.
///
/// Metrics: `loss`, and `loss_level_<l>` (0-based, largest sigma first) for the levels drawn
/// in the batch: the mean of 1/2 ||sigma s + z||^2 over its samples, noisy with few samples
/// per level.
#[derive(Clone, Debug)]
pub struct MultiScaleDenoisingScoreMatching {
    config: MultiScaleDenoisingScoreMatchingConfig,
    sigmas: Vec<f64>,
}

impl MultiScaleDenoisingScoreMatching {
    /// The objective with these settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] from [`MultiScaleDenoisingScoreMatchingConfig::validate`].
    pub fn new(config: MultiScaleDenoisingScoreMatchingConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(MultiScaleDenoisingScoreMatching {
            config,
            sigmas: config.sigmas(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &MultiScaleDenoisingScoreMatchingConfig {
        &self.config
    }

    /// The noise levels, largest first.
    pub fn sigmas(&self) -> &[f64] {
        &self.sigmas
    }

    /// The loss at given levels and noise, per sample: 1/2 ||sigma_i s(x_i + sigma_i z_i,
    /// sigma_i) + z_i||^2, `[n]`, with its graph. [`Objective::step`] draws `levels` (indices
    /// into [`Self::sigmas`]) and `z`, then averages this.
    ///
    /// # Shapes
    /// `batch` and `z`: `[n, ...]`; `levels`: n indices.
    ///
    /// # Errors
    /// An error of the autodiff engine.
    ///
    /// # Panics
    /// When a level is out of range or the shapes do not fit.
    pub fn per_sample_loss<T: Float, E: NoiseConditionalEnergy<T> + ?Sized>(
        &self,
        energy: &E,
        batch: &Tensor<T>,
        levels: &[usize],
        z: &Tensor<T>,
    ) -> Result<Tensor<T>, Error> {
        let n = batch.dim(0);
        assert_eq!(levels.len(), n, "one noise level per sample");
        assert_eq!(batch.shape(), z.shape(), "noise and batch shapes differ");
        let sigma: Vec<f64> = levels.iter().map(|&l| self.sigmas[l]).collect();
        let sigma = Tensor::<T>::from_f64s(&sigma, [n]);

        // sigma as [n, 1, ...] to scale each sample
        let mut dims = vec![1; batch.rank()];
        dims[0] = n;
        let sigma_b = sigma.reshape(dims);

        // the noisy batch as a leaf, and grad_x E(x~, sigma) with its graph
        let noisy = (&batch.detach() + &(z * &sigma_b)).set_requires_grad(true);
        let e = energy.energy_at(&noisy, &sigma);
        check_energy_shape(&e, &noisy);
        let g = grad(
            &[e.sum()],
            std::slice::from_ref(&noisy),
            None,
            GradOptions::create_graph(),
        )?
        .remove(0);

        // sigma s + z = z - sigma grad_x E
        let residual = z - &(&g * &sigma_b);
        Ok(per_sample_sum(&residual.square()).mul_scalar(0.5))
    }
}

impl<T: Float, E: NoiseConditionalEnergy<T> + ?Sized> Objective<T, E>
    for MultiScaleDenoisingScoreMatching
{
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error> {
        let n = batch.dim(0);
        let n_levels = self.sigmas.len();
        let levels: Vec<usize> = (0..n).map(|_| rng.random_range(0..n_levels)).collect();
        let z = Tensor::randn(batch.shape().clone(), rng);
        let per_sample = self.per_sample_loss(energy, batch, &levels, &z)?;
        let loss = per_sample.mean();

        // the loss of each level drawn, from the n per-sample values
        let mut sums = vec![(0.0, 0usize); n_levels];
        for (&l, v) in levels.iter().zip(per_sample.to_f64s()) {
            sums[l].0 += v;
            sums[l].1 += 1;
        }
        let mut metrics = Metrics::new();
        metrics.set("loss", loss.item());
        for (l, &(sum, count)) in sums.iter().enumerate() {
            if count > 0 {
                metrics.set(format!("loss_level_{l}"), sum / count as f64);
            }
        }
        Ok(ObjectiveStep {
            loss,
            aux_loss: None,
            metrics,
        })
    }
}
