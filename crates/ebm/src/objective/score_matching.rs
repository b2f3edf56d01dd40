//! Score matching (section 3 of Song & Kingma, "How to Train Your Energy-Based Models", 2021):
//! fit the model's score s(x) = -grad_x E(x) to the data's, which never needs the normaliser.
//!
//! Every loss here differentiates through -grad_x E, so it needs the energy's gradient with its
//! graph (`create_graph`), and training differentiates that again: these are the workloads that
//! made the project own an engine with higher-order gradients.
//!
//! Two ways in:
//! * the objectives [`ExactScoreMatching`], [`DenoisingScoreMatching`] and
//!   [`SlicedScoreMatching`] (and the multi-scale
//!   [`MultiScaleDenoisingScoreMatching`](super::multiscale::MultiScaleDenoisingScoreMatching)),
//!   each an [`Objective`] for any [`Energy`], built from a validated config;
//! * the free functions [`exact_score_matching`], [`denoising_score_matching`] and
//!   [`sliced_score_matching`]: the same losses for a closure energy ([`EnergyFn`]), for use in
//!   your own loops.
//!
//! ```
//! use ebm::energy::GaussianEnergy;
//! use ebm::objective::Objective;
//! use ebm::objective::score_matching::{SlicedScoreMatching, SlicedScoreMatchingConfig};
//! use ebm_tensor::Tensor;
//! use rand::SeedableRng;
//!
//! let energy = GaussianEnergy::<f64>::new(2)?;
//! let mut ssm = SlicedScoreMatching::new(SlicedScoreMatchingConfig::default())?;
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let batch = Tensor::randn([64, 2], &mut rng);
//! let step = ssm.step(&energy, &batch, &mut rng)?;
//! assert!(step.metrics.get("loss").unwrap().is_finite());
//! # Ok::<(), ebm::Error>(())
//! ```

use super::{Metrics, Objective, ObjectiveStep};
use crate::Error;
use crate::energy::Energy;
use crate::error::check_positive;
use ebm_tensor::autodiff::{GradOptions, grad, hessian_trace, no_grad};
use ebm_tensor::{Float, Shape, Tensor, TensorError};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// An energy: a batch `[n, ...]` in, energies `[n]` out.
pub type EnergyFn<'a, T> = dyn Fn(&Tensor<T>) -> Tensor<T> + 'a;

/// The distribution of the random directions v of sliced score matching and of Hutchinson's
/// trace estimator. Both have E[v v^T] = I, which is all the estimators need; Rademacher
/// vectors give the trace estimate of least variance (Hutchinson 1990).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Projection {
    /// Entries +1 or -1 with equal probability.
    #[default]
    Rademacher,
    /// Standard normal entries.
    Gaussian,
}

impl Projection {
    /// Directions of the given shape.
    pub fn sample<T: Float, R: Rng + ?Sized>(
        self,
        shape: impl Into<Shape>,
        rng: &mut R,
    ) -> Tensor<T> {
        match self {
            Projection::Rademacher => Tensor::rademacher(shape, rng),
            Projection::Gaussian => Tensor::randn(shape, rng),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Exact score matching
// ---------------------------------------------------------------------------------------------

/// How [`ExactScoreMatching`] computes tr(grad_x s) = -tr(grad_x^2 E).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum TraceEstimator {
    /// The exact trace: d recorded backward passes through the gradient (one per input
    /// dimension). For small d; the input must be `[n, d]`.
    #[default]
    Exact,
    /// Hutchinson's unbiased estimate tr(H) ~ mean_j v_j^T H v_j over `n_probes` random
    /// directions per sample: `n_probes` Hessian-vector products, whatever d.
    Hutchinson {
        /// Probes per sample (at least 1).
        n_probes: usize,
        /// Their distribution.
        probe: Projection,
    },
}

/// Settings of [`ExactScoreMatching`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExactScoreMatchingConfig {
    /// The trace of the score's Jacobian: exact (default) or Hutchinson's estimate.
    pub trace: TraceEstimator,
}

/// Exact (implicit) score matching (Hyvarinen 2005, "Estimation of non-normalized statistical
/// models by score matching"):
///
/// ```text
/// L = mean_i [ 1/2 ||s(x_i)||^2 + tr(grad_x s(x_i)) ],   s = -grad_x E,  tr(grad_x s) = -Lap E
/// ```
///
/// equal to the Fisher divergence 1/2 E_pd ||s - grad log p_d||^2 up to a constant.
///
/// Assumptions: E twice differentiable in x, the data density differentiable with
/// p_d(x) s(x) -> 0 at infinity (the integration by parts), finite second moments of the scores.
///
/// Cost per step, for a batch of n in dimension d: with the exact trace, one forward pass, one
/// recorded backward pass and d backward passes through the gradient (plus the weight
/// gradient of all of them): linear in d, so for small d only. With
/// [`TraceEstimator::Hutchinson`] and k probes, the batch is repeated k times and each copy
/// takes one Hessian-vector product (two recorded backward passes): cost independent of d,
/// k times that of one probe, with extra variance. Hutchinson's form is the variance-reduced
/// sliced score matching of [`SlicedScoreMatching`].
///
/// Metrics: `loss`, `score_norm` (mean over the batch of ||s(x_i)||).
#[derive(Clone, Debug)]
pub struct ExactScoreMatching {
    config: ExactScoreMatchingConfig,
}

impl ExactScoreMatching {
    /// The objective with these settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when Hutchinson's `n_probes` is 0.
    pub fn new(config: ExactScoreMatchingConfig) -> Result<Self, Error> {
        if let TraceEstimator::Hutchinson { n_probes: 0, .. } = config.trace {
            return Err(Error::config(
                "exact score matching Hutchinson n_probes",
                0,
                "at least 1 probe per sample",
            ));
        }
        Ok(ExactScoreMatching { config })
    }

    /// The settings.
    pub fn config(&self) -> &ExactScoreMatchingConfig {
        &self.config
    }
}

impl<T: Float, E: Energy<T> + ?Sized> Objective<T, E> for ExactScoreMatching {
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error> {
        let (terms, g) = match self.config.trace {
            TraceEstimator::Exact => {
                if batch.rank() != 2 {
                    return Err(Error::Shape {
                        what: "exact score matching with the exact trace".into(),
                        expected: "[n, d] (use the Hutchinson trace for other shapes)".into(),
                        found: batch.dims().to_vec(),
                    });
                }
                let (x, g) = gradient_at(energy, batch)?;
                (exact_terms(&x, &g)?, g)
            }
            TraceEstimator::Hutchinson { n_probes, probe } => {
                let x = repeat_batch(batch, n_probes);
                let v = probe.sample(x.shape().clone(), rng);
                let (x, g) = gradient_at(energy, &x)?;
                (sliced_terms(&x, &g, &v, true)?, g)
            }
        };
        Ok(score_step(terms.mean(), &g))
    }
}

// ---------------------------------------------------------------------------------------------
// Denoising score matching
// ---------------------------------------------------------------------------------------------

/// Settings of [`DenoisingScoreMatching`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DenoisingScoreMatchingConfig {
    /// The noise scale sigma (finite, > 0). Default 0.1, for data of unit scale such as the
    /// 2-D sets.
    pub sigma: f64,
}

impl Default for DenoisingScoreMatchingConfig {
    fn default() -> Self {
        DenoisingScoreMatchingConfig { sigma: 0.1 }
    }
}

/// Denoising score matching (Vincent 2011, "A connection between score matching and denoising
/// autoencoders") with Gaussian noise of scale sigma:
///
/// ```text
/// L = 1/2 mean_i || s(x_i + sigma z_i) + z_i / sigma ||^2,   z_i ~ N(0, I)
/// ```
///
/// Its minimiser is the score of the data convolved with N(0, sigma^2 I), not of the data: a
/// bias that vanishes as sigma -> 0 (a Gaussian N(mu, Sigma) is fitted as N(mu, Sigma +
/// sigma^2 I)), while the variance of the loss grows like 1/sigma^2.
///
/// Assumptions: E differentiable in x; nothing about the data (no derivative of its density).
///
/// Cost per step: one forward pass, one recorded backward pass to x, and the backward pass of
/// both for the weight gradient (about 4-5 forward passes), whatever the dimension.
///
/// Metrics: `loss`, `score_norm` (mean of ||s|| at the noisy points).
#[derive(Clone, Debug)]
pub struct DenoisingScoreMatching {
    config: DenoisingScoreMatchingConfig,
}

impl DenoisingScoreMatching {
    /// The objective with these settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when sigma is not finite and positive.
    pub fn new(config: DenoisingScoreMatchingConfig) -> Result<Self, Error> {
        check_positive("denoising score matching sigma", config.sigma)?;
        Ok(DenoisingScoreMatching { config })
    }

    /// The settings.
    pub fn config(&self) -> &DenoisingScoreMatchingConfig {
        &self.config
    }
}

impl<T: Float, E: Energy<T> + ?Sized> Objective<T, E> for DenoisingScoreMatching {
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error> {
        let sigma = self.config.sigma;
        let z = Tensor::randn(batch.shape().clone(), rng);
        let noisy = &batch.detach() + &z.mul_scalar(sigma);
        let (_, g) = gradient_at(energy, &noisy)?;
        Ok(score_step(denoising_terms(&g, &z, sigma).mean(), &g))
    }
}

// ---------------------------------------------------------------------------------------------
// Sliced score matching
// ---------------------------------------------------------------------------------------------

/// Settings of [`SlicedScoreMatching`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlicedScoreMatchingConfig {
    /// Random projections per sample (at least 1). Default 1.
    pub n_projections: usize,
    /// Their distribution. Default Rademacher.
    pub projection: Projection,
    /// Replace 1/2 (v^T s)^2 by its expectation 1/2 ||s||^2 (SSM-VR). Default true.
    pub variance_reduced: bool,
}

impl Default for SlicedScoreMatchingConfig {
    fn default() -> Self {
        SlicedScoreMatchingConfig {
            n_projections: 1,
            projection: Projection::Rademacher,
            variance_reduced: true,
        }
    }
}

/// Sliced score matching (Song, Garg, Shi & Ermon 2019, "Sliced score matching: a scalable
/// approach to density and score estimation"), with m projections v_ij per sample:
///
/// ```text
/// L    = mean_ij [ v_ij^T grad_x(v_ij^T s(x_i)) + 1/2 (v_ij^T s(x_i))^2 ]
/// L_VR = mean_ij [ v_ij^T grad_x(v_ij^T s(x_i)) ] + mean_i 1/2 ||s(x_i)||^2     (SSM-VR)
/// ```
///
/// Both equal exact score matching in expectation over v with E[v v^T] = I; the
/// variance-reduced form has the second term in closed form.
///
/// Assumptions: those of exact score matching (E twice differentiable in x, scores vanishing
/// fast enough in the tails).
///
/// Cost per step: the batch is repeated m times and each copy takes one Hessian-vector
/// product (a forward pass and two recorded backward passes, then the weight gradient of all
/// of them): m times the cost of one projection, whatever the dimension.
///
/// Metrics: `loss`, `score_norm` (mean of ||s(x_i)||).
#[derive(Clone, Debug)]
pub struct SlicedScoreMatching {
    config: SlicedScoreMatchingConfig,
}

impl SlicedScoreMatching {
    /// The objective with these settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `n_projections` is 0.
    pub fn new(config: SlicedScoreMatchingConfig) -> Result<Self, Error> {
        if config.n_projections == 0 {
            return Err(Error::config(
                "sliced score matching n_projections",
                0,
                "at least 1 projection per sample",
            ));
        }
        Ok(SlicedScoreMatching { config })
    }

    /// The settings.
    pub fn config(&self) -> &SlicedScoreMatchingConfig {
        &self.config
    }
}

impl<T: Float, E: Energy<T> + ?Sized> Objective<T, E> for SlicedScoreMatching {
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error> {
        let c = self.config;
        let x = repeat_batch(batch, c.n_projections);
        let v = c.projection.sample(x.shape().clone(), rng);
        let (x, g) = gradient_at(energy, &x)?;
        let terms = sliced_terms(&x, &g, &v, c.variance_reduced)?;
        Ok(score_step(terms.mean(), &g))
    }
}

// ---------------------------------------------------------------------------------------------
// The losses as free functions of a closure energy
// ---------------------------------------------------------------------------------------------

/// Denoising score matching (Vincent 2011) with Gaussian noise of scale `sigma`:
///
/// ```text
/// L = 1/2 mean_i || s(x_i + sigma z_i) + z_i / sigma ||^2,   z_i ~ N(0, I)
/// ```
///
/// Its minimiser is the score of the data convolved with N(0, sigma^2 I), so small `sigma`
/// approaches the data score (and raises the variance). Assumes a differentiable energy; cost
/// per step: one forward pass, one recorded backward pass to x, and the backward pass of both
/// for the weight gradient (about 4-5 forward passes). The objective form, for any
/// [`Energy`], is [`DenoisingScoreMatching`].
///
/// # Shapes
/// `x`: `[n, ...]`; returns a scalar.
pub fn denoising_score_matching<T: Float, R: Rng + ?Sized>(
    energy: &EnergyFn<'_, T>,
    x: &Tensor<T>,
    sigma: f64,
    rng: &mut R,
) -> Result<Tensor<T>, TensorError> {
    let z = Tensor::randn(x.shape().clone(), rng);
    denoising_score_matching_with_noise(energy, x, &z, sigma)
}

/// [`denoising_score_matching`] with the standard normal noise `z` given (same shape as `x`).
pub fn denoising_score_matching_with_noise<T: Float>(
    energy: &EnergyFn<'_, T>,
    x: &Tensor<T>,
    z: &Tensor<T>,
    sigma: f64,
) -> Result<Tensor<T>, TensorError> {
    assert!(
        sigma > 0.0 && sigma.is_finite(),
        "denoising score matching needs sigma > 0, got {sigma}"
    );
    let noisy = x + &z.mul_scalar(sigma);
    let (_, g) = closure_gradient(energy, &noisy)?;
    Ok(denoising_terms(&g, z, sigma).mean())
}

/// Sliced score matching (Song et al. 2019) with one projection `v` per sample:
///
/// ```text
/// L = mean_i [ v_i^T grad_x(v_i^T s(x_i)) + 1/2 (v_i^T s(x_i))^2 ]
/// ```
///
/// which equals exact score matching in expectation over v with E[v v^T] = I (Gaussian or
/// Rademacher v). With `variance_reduced`, the second term is replaced by its expectation
/// 1/2 ||s(x_i)||^2 (the "SSM-VR" form). Cost: one Hessian-vector product, i.e. two recorded
/// backward passes, whatever the dimension. The objective form, for any [`Energy`] and several
/// projections per sample, is [`SlicedScoreMatching`].
///
/// # Shapes
/// `x` and `v`: `[n, d]`; returns a scalar.
pub fn sliced_score_matching<T: Float>(
    energy: &EnergyFn<'_, T>,
    x: &Tensor<T>,
    v: &Tensor<T>,
    variance_reduced: bool,
) -> Result<Tensor<T>, TensorError> {
    let (x, g) = closure_gradient(energy, x)?;
    Ok(sliced_terms(&x, &g, v, variance_reduced)?.mean())
}

/// Exact (implicit) score matching (Hyvarinen 2005):
///
/// ```text
/// L = mean_i [ tr(grad_x s(x_i)) + 1/2 ||s(x_i)||^2 ],   tr(grad_x s) = -Laplacian E
/// ```
///
/// equal to the Fisher divergence to the data up to a constant, under mild tail conditions.
/// The trace is exact, from d recorded backward passes, so the cost grows with the dimension:
/// use it for small d and sliced score matching beyond. The objective form, for any
/// [`Energy`], is [`ExactScoreMatching`].
///
/// # Shapes
/// `x`: `[n, d]`; returns a scalar.
pub fn exact_score_matching<T: Float>(
    energy: &EnergyFn<'_, T>,
    x: &Tensor<T>,
) -> Result<Tensor<T>, TensorError> {
    let (x, g) = closure_gradient(energy, x)?;
    Ok(exact_terms(&x, &g)?.mean())
}

// ---------------------------------------------------------------------------------------------
// Shared pieces: each loss as per-sample terms of the energy's gradient g = grad_x E
// ---------------------------------------------------------------------------------------------

/// A fresh leaf copy of `x` that requires grad, and grad_x E there with its graph.
pub(crate) fn gradient_at<T: Float, E: Energy<T> + ?Sized>(
    energy: &E,
    x: &Tensor<T>,
) -> Result<(Tensor<T>, Tensor<T>), Error> {
    let x = x.detach().set_requires_grad(true);
    let (_, g) = energy.energy_and_grad(&x, true)?;
    Ok((x, g))
}

/// [`gradient_at`] for a closure energy, with the tensor engine's error.
fn closure_gradient<T: Float>(
    energy: &EnergyFn<'_, T>,
    x: &Tensor<T>,
) -> Result<(Tensor<T>, Tensor<T>), TensorError> {
    let x = x.detach().set_requires_grad(true);
    let e = energy(&x);
    assert_eq!(
        e.dims(),
        &[x.dim(0)],
        "an energy maps a batch [n, ...] to [n], got {}",
        e.shape()
    );
    let g = grad(
        &[e.sum()],
        std::slice::from_ref(&x),
        None,
        GradOptions::create_graph(),
    )?;
    Ok((x, g.into_iter().next().unwrap()))
}

/// Sum over every axis but the first: `[n, ...]` to `[n]`.
pub(crate) fn per_sample_sum<T: Float>(t: &Tensor<T>) -> Tensor<T> {
    t.flatten_batch().sum_axes(&[1], false)
}

/// `m` copies of the batch stacked along the first axis, detached: `[n, ...]` to `[m n, ...]`.
fn repeat_batch<T: Float>(batch: &Tensor<T>, m: usize) -> Tensor<T> {
    let batch = batch.detach();
    if m == 1 {
        batch
    } else {
        Tensor::concat(&vec![batch; m], 0)
    }
}

/// 1/2 ||s + z / sigma||^2 = 1/2 ||z / sigma - g||^2 per sample, `[n]`.
fn denoising_terms<T: Float>(g: &Tensor<T>, z: &Tensor<T>, sigma: f64) -> Tensor<T> {
    let residual = &z.mul_scalar(1.0 / sigma) - g;
    per_sample_sum(&residual.square()).mul_scalar(0.5)
}

/// v^T grad_x(v^T s) + 1/2 (v^T s)^2 per sample (1/2 ||s||^2 for the second term when
/// `variance_reduced`), `[n]`, from g = grad_x E recorded at the leaf `x`.
fn sliced_terms<T: Float>(
    x: &Tensor<T>,
    g: &Tensor<T>,
    v: &Tensor<T>,
    variance_reduced: bool,
) -> Result<Tensor<T>, TensorError> {
    assert_eq!(
        x.shape(),
        v.shape(),
        "sliced score matching: x and v shapes differ"
    );

    // v^T s = -v^T g, and v^T grad_x(v^T s) = -v^T H v with H the Hessian of E.
    let gv = per_sample_sum(&(g * v));
    let hv = grad(
        &[gv.sum()],
        std::slice::from_ref(x),
        None,
        GradOptions::create_graph(),
    )?
    .remove(0);
    let vhv = per_sample_sum(&(&hv * v));
    let second = if variance_reduced {
        per_sample_sum(&g.square())
    } else {
        gv.square()
    };
    Ok(&second.mul_scalar(0.5) - &vhv)
}

/// 1/2 ||s||^2 + tr(grad_x s) = 1/2 ||g||^2 - tr(H) per sample, `[n]`, with the exact trace.
fn exact_terms<T: Float>(x: &Tensor<T>, g: &Tensor<T>) -> Result<Tensor<T>, TensorError> {
    let laplacian = hessian_trace(g, x, true)?;
    Ok(&per_sample_sum(&g.square()).mul_scalar(0.5) - &laplacian)
}

/// The step of a single-scale score-matching objective: the loss and its metrics (`loss`,
/// `score_norm` = mean ||s|| = mean ||g||).
fn score_step<T: Float>(loss: Tensor<T>, g: &Tensor<T>) -> ObjectiveStep<T> {
    let score_norm = no_grad(|| per_sample_sum(&g.detach().square()).sqrt().mean().item());
    let mut metrics = Metrics::new();
    metrics.set("loss", loss.item());
    metrics.set("score_norm", score_norm);
    ObjectiveStep {
        loss,
        aux_loss: None,
        metrics,
    }
}
