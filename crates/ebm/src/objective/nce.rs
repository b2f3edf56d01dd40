//! Noise-contrastive estimation (Gutmann & Hyvarinen, "Noise-contrastive estimation: A new
//! estimation principle for unnormalized statistical models", AISTATS 2010; section 4 of Song &
//! Kingma 2021): learn the energy and its log-normaliser by telling data from noise.
//!
//! The model's log-density is log p(x) = -E(x) - c, with c a learned scalar. A logistic
//! classifier with the logit
//!
//! ```text
//! G(x) = log p(x) - log(nu q(x)) = -E(x) - c - log nu - log q(x)
//! ```
//!
//! separates data (label 1) from `nu` times as many noise draws y ~ q (label 0). Its loss
//!
//! ```text
//! L = -mean_data log sigmoid(G(x)) - nu mean_noise log sigmoid(-G(y))
//!   =  mean_data softplus(-G(x))  +  nu mean_noise softplus(G(y))
//! ```
//!
//! is minimised over the energy's parameters and c together. When the model family contains
//! the data distribution and q > 0 wherever the data is, the minimiser is p = p_data with c the
//! true log-normaliser (the estimator is consistent). The softplus forms stay finite for any
//! finite logit (softplus(t) = max(t, 0) + log(1 + e^-|t|)), so a model far from the noise gives
//! a large loss, never an overflow.

use super::{Metrics, Objective, ObjectiveStep};
use crate::Error;
use crate::energy::{Energy, GaussianEnergy};
use crate::error::check_positive;
use ebm_nn::{ParamStore, StateDict};
use ebm_tensor::autodiff::no_grad;
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The name of the log-normaliser in [`Nce::params`].
pub const LOG_NORMALIZER: &str = "log_normalizer";

/// A noise distribution for NCE: anything with a density and an exact sampler.
///
/// The noise is fixed during training: [`NoiseDistribution::log_prob`] returns constants (no
/// graph), so that no gradient reaches its parameters.
pub trait NoiseDistribution<T: Float> {
    /// `n` independent draws, `[n, ...]` (the shape of a data sample after the batch axis).
    fn sample(&self, n: usize, rng: &mut dyn Rng) -> Tensor<T>;

    /// The normalised log-density log q(x) of each sample: `[n, ...]` to `[n]`, without graph.
    fn log_prob(&self, x: &Tensor<T>) -> Tensor<T>;

    /// What a checkpoint must keep to rebuild this noise exactly (its fitted parameters).
    /// Empty by default.
    fn state_dict(&self) -> StateDict<T> {
        StateDict::new()
    }

    /// Restores what [`NoiseDistribution::state_dict`] saved.
    ///
    /// # Errors
    /// [`Error::Restore`] when the saved state does not fit this noise.
    fn load_state_dict(&mut self, state: &StateDict<T>) -> Result<(), Error> {
        let _ = state;
        Ok(())
    }
}

/// A Gaussian as NCE noise, with its current parameters taken as fixed: `sample` draws
/// exactly, `log_prob` is log N(x; mu, Sigma) without graph.
impl<T: Float> NoiseDistribution<T> for GaussianEnergy<T> {
    fn sample(&self, n: usize, rng: &mut dyn Rng) -> Tensor<T> {
        GaussianEnergy::sample(self, n, rng)
    }

    fn log_prob(&self, x: &Tensor<T>) -> Tensor<T> {
        no_grad(|| GaussianEnergy::log_prob(self, x))
    }

    fn state_dict(&self) -> StateDict<T> {
        use crate::energy::EnergyModel;
        let mut state = StateDict::new();
        for (name, t) in self.params().iter() {
            state.tensors.insert(name.to_string(), t.detach());
        }
        state
    }

    fn load_state_dict(&mut self, state: &StateDict<T>) -> Result<(), Error> {
        use crate::energy::EnergyModel;
        let names: Vec<String> = self
            .params()
            .names()
            .into_iter()
            .map(String::from)
            .collect();
        for name in &names {
            let saved = state.tensors.get(name).ok_or_else(|| Error::Restore {
                what: "Gaussian noise".into(),
                reason: format!(
                    "the saved state has no tensor {name:?}; save it with the same noise"
                ),
            })?;
            self.params_mut()
                .set(name, saved.clone())
                .map_err(|e| Error::Restore {
                    what: "Gaussian noise".into(),
                    reason: e.to_string(),
                })?;
        }
        Ok(())
    }
}

/// Settings of [`GaussianNoise::fit`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GaussianNoiseConfig {
    /// The factor that multiplies the data's covariance (default 1.0: the noise has the data's
    /// mean and covariance). Values above 1 widen the noise so that it covers the data's tails,
    /// which a non-Gaussian data set needs for NCE to see them at all; values far from 1 make
    /// the classification too easy and the estimator less efficient.
    pub covariance_inflation: f64,
}

impl Default for GaussianNoiseConfig {
    fn default() -> Self {
        GaussianNoiseConfig {
            covariance_inflation: 1.0,
        }
    }
}

/// Gaussian noise N(mu, Sigma) for NCE, usually fitted to the data ([`GaussianNoise::fit`]).
///
/// Sampling is x = mu + L^-T z with P = Sigma^-1 = L L^T (one `[n, d] x [d, d]` product);
/// the density is the closed form of [`GaussianEnergy`].
#[derive(Clone, Debug)]
pub struct GaussianNoise<T: Float> {
    gaussian: GaussianEnergy<T>,
}

impl<T: Float> GaussianNoise<T> {
    /// N(mean, covariance).
    ///
    /// # Shapes
    /// `mean`: `[d]`; `covariance`: `[d, d]`.
    ///
    /// # Errors
    /// As [`GaussianEnergy::from_mean_covariance`]: a shape that does not fit, values that are
    /// not finite, a covariance that is not symmetric positive-definite.
    pub fn new(mean: &Tensor<T>, covariance: &Tensor<T>) -> Result<Self, Error> {
        Ok(GaussianNoise {
            gaussian: GaussianEnergy::from_mean_covariance(mean, covariance)?,
        })
    }

    /// The Gaussian with the data's mean and its sample covariance (divisor n - 1) times
    /// `config.covariance_inflation`.
    ///
    /// # Shapes
    /// `data`: `[n, d]` with n > d (fewer samples give a singular covariance).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an inflation that is not finite and positive, or data whose
    /// covariance is not positive-definite (too few samples, a constant coordinate);
    /// [`Error::Shape`] for data that is not a batch `[n, d]` with n >= 2.
    pub fn fit(data: &Tensor<T>, config: &GaussianNoiseConfig) -> Result<Self, Error> {
        check_positive(
            "Gaussian noise covariance_inflation",
            config.covariance_inflation,
        )?;
        if data.rank() != 2 || data.dim(0) < 2 || data.dim(1) == 0 {
            return Err(Error::Shape {
                what: "fitting Gaussian noise".into(),
                expected: "[n, d] with n >= 2 and d >= 1".into(),
                found: data.dims().to_vec(),
            });
        }
        let (n, d) = (data.dim(0), data.dim(1));
        let values = data.to_f64s();

        // Mean, then the centred second moment.
        let mut mean = vec![0.0; d];
        for row in values.chunks(d) {
            mean.iter_mut().zip(row).for_each(|(m, v)| *m += v);
        }
        mean.iter_mut().for_each(|m| *m /= n as f64);
        let mut cov = vec![0.0; d * d];
        for row in values.chunks(d) {
            for i in 0..d {
                for j in 0..=i {
                    cov[i * d + j] += (row[i] - mean[i]) * (row[j] - mean[j]);
                }
            }
        }
        let scale = config.covariance_inflation / (n - 1) as f64;
        for i in 0..d {
            for j in 0..=i {
                let v = cov[i * d + j] * scale;
                cov[i * d + j] = v;
                cov[j * d + i] = v;
            }
        }
        Self::new(
            &Tensor::from_f64s(&mean, [d]),
            &Tensor::from_f64s(&cov, [d, d]),
        )
    }

    /// The Gaussian itself (its mean, covariance, normaliser).
    pub fn gaussian(&self) -> &GaussianEnergy<T> {
        &self.gaussian
    }
}

impl<T: Float> NoiseDistribution<T> for GaussianNoise<T> {
    fn sample(&self, n: usize, rng: &mut dyn Rng) -> Tensor<T> {
        NoiseDistribution::sample(&self.gaussian, n, rng)
    }

    fn log_prob(&self, x: &Tensor<T>) -> Tensor<T> {
        NoiseDistribution::log_prob(&self.gaussian, x)
    }

    fn state_dict(&self) -> StateDict<T> {
        NoiseDistribution::state_dict(&self.gaussian)
    }

    fn load_state_dict(&mut self, state: &StateDict<T>) -> Result<(), Error> {
        NoiseDistribution::load_state_dict(&mut self.gaussian, state)
    }
}

/// Settings of [`Nce`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NceConfig {
    /// nu, the number of noise draws per data sample (default 1): a batch of n data samples is
    /// contrasted with ceil(nu n) noise draws. Larger nu lowers the estimator's variance towards
    /// that of maximum likelihood, at nu times the noise cost.
    pub noise_ratio: f64,
    /// The starting value of the learned log-normaliser c (default 0).
    pub initial_log_normalizer: f64,
    /// The Gaussian noise that [`Nce::fit_gaussian`] fits to the data; unused when the noise is
    /// given ([`Nce::new`]).
    pub noise: GaussianNoiseConfig,
}

impl Default for NceConfig {
    fn default() -> Self {
        NceConfig {
            noise_ratio: 1.0,
            initial_log_normalizer: 0.0,
            noise: GaussianNoiseConfig::default(),
        }
    }
}

/// Noise-contrastive estimation: logistic classification of data against noise, with the
/// model's log-normaliser c learned as a parameter (see the [module docs](self) for the
/// formula).
///
/// Assumptions: the noise has a tractable normalised density and an exact sampler, and covers
/// the data (q > 0 where the data lives; a noise far from the data makes the classifier's job
/// easy and the gradients small). The energy needs no gradient in x and no sampler.
///
/// Cost per step: ceil(nu n) noise draws and their log-density, and one forward pass of the
/// energy over the n + ceil(nu n) samples together, then one backward pass to the parameters.
///
/// Parameters: [`Nce::params`] holds one scalar, [`LOG_NORMALIZER`] (c), to train with the
/// energy's (one optimiser or two). The noise's fitted parameters are saved by
/// [`Objective::state_dict`] under `noise.`.
///
/// Metrics: `loss`, `log_normalizer` (c), `accuracy` (the fraction of data with G > 0 and of
/// noise with G < 0), `energy_data` and `energy_noise` (mean energies).
///
/// # Example
/// ```
/// use ebm::energy::GaussianEnergy;
/// use ebm::objective::{Nce, NceConfig, Objective};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let data = Tensor::<f64>::randn([500, 2], &mut rng);
/// let mut nce = Nce::fit_gaussian(NceConfig::default(), &data)?;
/// let model = GaussianEnergy::<f64>::new(2)?;
///
/// // The model equals the noise up to c = 0 vs log Z: the classifier is near chance.
/// let step = nce.step(&model, &data, &mut rng)?;
/// assert!(step.metrics.get("loss").unwrap().is_finite());
/// assert_eq!(nce.log_normalizer(), 0.0);
/// # Ok::<(), ebm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Nce<T: Float, Q = GaussianNoise<T>> {
    config: NceConfig,
    noise: Q,
    params: ParamStore<T>,
}

impl<T: Float> Nce<T, GaussianNoise<T>> {
    /// NCE against a Gaussian fitted to `data` with `config.noise` ([`GaussianNoise::fit`]).
    ///
    /// # Errors
    /// As [`Nce::new`] and [`GaussianNoise::fit`].
    pub fn fit_gaussian(config: NceConfig, data: &Tensor<T>) -> Result<Self, Error> {
        let noise = GaussianNoise::fit(data, &config.noise)?;
        Self::new(config, noise)
    }
}

impl<T: Float, Q: NoiseDistribution<T>> Nce<T, Q> {
    /// NCE against the given noise.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a `noise_ratio` that is not finite and positive, an
    /// `initial_log_normalizer` that is not finite, or a `noise.covariance_inflation` that is
    /// not finite and positive.
    pub fn new(config: NceConfig, noise: Q) -> Result<Self, Error> {
        check_positive("NCE noise_ratio", config.noise_ratio)?;
        check_positive(
            "NCE noise.covariance_inflation",
            config.noise.covariance_inflation,
        )?;
        if !config.initial_log_normalizer.is_finite() {
            return Err(Error::config(
                "NCE initial_log_normalizer",
                config.initial_log_normalizer,
                "a finite number",
            ));
        }
        let mut params = ParamStore::new();
        params
            .insert(
                LOG_NORMALIZER,
                Tensor::scalar(config.initial_log_normalizer),
            )
            .expect("the name is fixed and valid");
        Ok(Nce {
            config,
            noise,
            params,
        })
    }

    /// The settings.
    pub fn config(&self) -> &NceConfig {
        &self.config
    }

    /// The noise distribution.
    pub fn noise(&self) -> &Q {
        &self.noise
    }

    /// The objective's parameters: the scalar [`LOG_NORMALIZER`] (as [`Objective::params`],
    /// without naming the energy type).
    pub fn params(&self) -> &ParamStore<T> {
        &self.params
    }

    /// The objective's parameters, for an optimiser step.
    pub fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.params
    }

    /// The noise's state under `noise.` (as [`Objective::state_dict`]; c is a parameter, saved
    /// with [`Nce::params`]).
    pub fn state_dict(&self) -> StateDict<T> {
        let mut state = StateDict::new();
        state
            .merge_prefixed("noise", self.noise.state_dict())
            .expect("an empty dict takes any valid names");
        state
    }

    /// Restores what [`Nce::state_dict`] saved.
    ///
    /// # Errors
    /// [`Error::Restore`] when the saved noise state does not fit this noise.
    pub fn load_state_dict(&mut self, state: &StateDict<T>) -> Result<(), Error> {
        self.noise.load_state_dict(&state.prefixed("noise"))
    }

    /// The current value of the learned log-normaliser c.
    pub fn log_normalizer(&self) -> f64 {
        self.params.expect(LOG_NORMALIZER).item()
    }

    /// The number of noise draws for `n` data samples: ceil(nu n), at least 1.
    pub fn noise_count(&self, n: usize) -> usize {
        ((self.config.noise_ratio * n as f64).ceil() as usize).max(1)
    }

    /// The NCE loss with the noise draws given: data `[n, ...]`, noise `[m, ...]` (any m >= 1;
    /// [`Objective::step`] draws ceil(nu n)). Returns the loss with its graph and the metrics.
    ///
    /// # Errors
    /// [`Error::Shape`] when the noise samples do not have the shape of the data samples.
    pub fn loss_with_noise<E: Energy<T> + ?Sized>(
        &self,
        energy: &E,
        batch: &Tensor<T>,
        noise: &Tensor<T>,
    ) -> Result<ObjectiveStep<T>, Error> {
        if batch.rank() == 0
            || noise.rank() != batch.rank()
            || noise.dims()[1..] != batch.dims()[1..]
            || batch.dim(0) == 0
            || noise.dim(0) == 0
        {
            return Err(Error::Shape {
                what: "NCE noise samples".into(),
                expected: format!(
                    "[m, ...] with m >= 1, samples shaped as the data {}",
                    batch.shape()
                ),
                found: noise.dims().to_vec(),
            });
        }
        let (n, m) = (batch.dim(0), noise.dim(0));
        let nu = self.config.noise_ratio;

        // One pass of the energy over data and noise together.
        let both = Tensor::concat(&[batch.detach(), noise.detach()], 0);
        let energies = energy.energy(&both);
        let log_q = self.noise.log_prob(&both);

        // G = -E - c - log nu - log q, per sample.
        let c = self.params.expect(LOG_NORMALIZER);
        let offset = &log_q.add_scalar(nu.ln()) + c;
        let logits = -(&energies + &offset);
        let g_data = logits.narrow(0, 0, n);
        let g_noise = logits.narrow(0, n, m);

        let loss = logistic_loss(&g_data, &g_noise, nu);

        let e = energies.to_f64s();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;

        let mut metrics = Metrics::new();
        metrics.set("loss", loss.item());
        metrics.set("log_normalizer", c.item());
        metrics.set("accuracy", accuracy(&g_data, &g_noise));
        metrics.set("energy_data", mean(&e[..n]));
        metrics.set("energy_noise", mean(&e[n..]));
        Ok(ObjectiveStep {
            loss,
            aux_loss: None,
            metrics,
        })
    }
}

/// The NCE classification loss from the logits of data `[n]` and noise `[m]`:
/// L = mean softplus(-G_data) + nu mean softplus(G_noise), stable for any finite logit.
pub(crate) fn logistic_loss<T: Float>(
    g_data: &Tensor<T>,
    g_noise: &Tensor<T>,
    nu: f64,
) -> Tensor<T> {
    &(-g_data).softplus().mean() + &g_noise.softplus().mean().mul_scalar(nu)
}

/// The fraction of data with G > 0 and of noise with G < 0 (the classifier's accuracy).
pub(crate) fn accuracy<T: Float>(g_data: &Tensor<T>, g_noise: &Tensor<T>) -> f64 {
    let (data, noise) = (g_data.to_f64s(), g_noise.to_f64s());
    let correct =
        data.iter().filter(|&&g| g > 0.0).count() + noise.iter().filter(|&&g| g < 0.0).count();
    correct as f64 / (data.len() + noise.len()) as f64
}

impl<T: Float, Q: NoiseDistribution<T>, E: Energy<T> + ?Sized> Objective<T, E> for Nce<T, Q> {
    /// Draws ceil(nu n) noise samples and returns [`Nce::loss_with_noise`].
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error> {
        if batch.rank() == 0 || batch.dim(0) == 0 {
            return Err(Error::Shape {
                what: "NCE data batch".into(),
                expected: "[n, ...] with n >= 1".into(),
                found: batch.dims().to_vec(),
            });
        }
        let noise = self.noise.sample(self.noise_count(batch.dim(0)), rng);
        self.loss_with_noise(energy, batch, &noise)
    }

    fn params(&self) -> Option<&ParamStore<T>> {
        Some(&self.params)
    }

    fn params_mut(&mut self) -> Option<&mut ParamStore<T>> {
        Some(&mut self.params)
    }

    /// The noise's state under `noise.` (c is a parameter, saved with [`Objective::params`]).
    fn state_dict(&self) -> StateDict<T> {
        Nce::state_dict(self)
    }

    fn load_state_dict(&mut self, state: &StateDict<T>) -> Result<(), Error> {
        Nce::load_state_dict(self, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn noise_count_rounds_up() {
        let config = NceConfig {
            noise_ratio: 0.5,
            ..NceConfig::default()
        };
        let noise = GaussianEnergy::<f64>::new(2).unwrap();
        let nce = Nce::new(config, noise).unwrap();
        assert_eq!(nce.noise_count(3), 2);
        assert_eq!(nce.noise_count(1), 1);
    }
}
