//! Kernel Stein discrepancy as a training loss (Liu, Lee & Jordan 2016, "A kernelized Stein
//! discrepancy for goodness-of-fit tests"; Chwialkowski, Strathmann & Gretton 2016, "A kernel
//! test of goodness of fit"; section 5.2 of Song & Kingma 2021, "How to Train Your Energy-Based
//! Models").
//!
//! The kernel Stein discrepancy between the data distribution p and a model with score
//! s = -grad_x E is
//!
//! ```text
//! KSD^2(p, s) = E_{x, x' ~ p} [ u(x, x') ],
//! u(x, y) = s(x)^T s(y) k(x, y) + s(x)^T grad_y k(x, y) + s(y)^T grad_x k(x, y)
//!           + tr(grad_x grad_y k(x, y)),
//! ```
//!
//! which is zero exactly when the model's score is the data's (for a characteristic kernel
//! such as the RBF kernel used here), and needs neither the normaliser nor samples from the
//! model. Like score matching it only involves the model's score, so training differentiates
//! through grad_x E.
//!
//! ```
//! use ebm::energy::GaussianEnergy;
//! use ebm::objective::Objective;
//! use ebm::objective::stein::{KernelSteinDiscrepancy, KernelSteinDiscrepancyConfig};
//! use ebm_tensor::Tensor;
//! use rand::SeedableRng;
//!
//! let energy = GaussianEnergy::<f64>::new(2)?;
//! let mut ksd = KernelSteinDiscrepancy::new(KernelSteinDiscrepancyConfig::default())?;
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let batch = Tensor::randn([64, 2], &mut rng);
//! let step = ksd.step(&energy, &batch, &mut rng)?;
//! assert!(step.metrics.get("loss").unwrap().is_finite());
//! assert!(step.metrics.get("bandwidth").unwrap() > 0.0);
//! # Ok::<(), ebm::Error>(())
//! ```

use super::score_matching::gradient_at;
use super::{Metrics, Objective, ObjectiveStep};
use crate::Error;
use crate::energy::Energy;
use crate::error::check_positive;
use ebm_tensor::autodiff::no_grad;
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How [`KernelSteinDiscrepancy`] chooses the bandwidth h of the RBF kernel
/// k(x, y) = exp(-||x - y||^2 / (2 h^2)).
///
/// The median rules read the squared distances ||x_i - x_j||^2 over the pairs i < j of the
/// batch (detached: the bandwidth is a constant of the loss) and take their median `med` (the
/// mean of the two middle values for an even number of pairs).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Bandwidth {
    /// h^2 = med / (2 ln(n + 1)) for a batch of n, the rule of Stein variational gradient
    /// descent (Liu & Wang 2016): a pair at the median distance gets k = 1 / (n + 1), so the
    /// other points together weigh about as much as a point's own k(x_i, x_i) = 1, and the
    /// kernel narrows as the batch grows.
    #[default]
    MedianLog,
    /// h^2 = med: the median heuristic of kernel two-sample and goodness-of-fit tests
    /// (Gretton et al. 2012; Chwialkowski et al. 2016), a wider kernel.
    Median,
    /// A fixed bandwidth.
    Fixed {
        /// h (finite, > 0).
        h: f64,
    },
}

/// Settings of [`KernelSteinDiscrepancy`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KernelSteinDiscrepancyConfig {
    /// The kernel's bandwidth rule. Default [`Bandwidth::MedianLog`], which adapts to the
    /// data's scale (the 2-D sets as well as anything else).
    pub bandwidth: Bandwidth,
}

/// Kernel Stein discrepancy with an RBF kernel, as the unbiased U-statistic over the pairs of
/// the batch:
///
/// ```text
/// L = 1 / (n (n - 1)) sum_{i != j} u(x_i, x_j),   s_i = -grad_x E(x_i),  r_ij = x_i - x_j,
/// u(x_i, x_j) = k_ij [ s_i^T s_j + (s_i - s_j)^T r_ij / h^2 + D / h^2 - ||r_ij||^2 / h^4 ],
/// k_ij = exp(-||r_ij||^2 / (2 h^2))
/// ```
///
/// with D the number of entries of a sample (inputs `[n, ...]` are flattened to `[n, D]`). The
/// sum is computed in batched tensor ops: the Gram matrices s s^T, s x^T and x x^T and
/// elementwise `[n, n]` arithmetic, with the diagonal masked out. The U-statistic is an unbiased
/// estimate of KSD^2 for a fixed bandwidth (it can be negative); with a median rule the
/// bandwidth depends on the batch, a small bias that vanishes as n grows.
///
/// Assumptions: E differentiable in x; the data density differentiable and the model's score
/// with finite second moment under the data, so that Stein's identity holds (the same
/// integration by parts as score matching, but without the model's second derivatives).
///
/// Cost per step, for a batch of n in dimension D: one forward pass and one recorded backward
/// pass for the scores (and the weight gradient of both), plus O(n^2 D) for the three Gram
/// matrices and O(n^2) memory for the `[n, n]` terms; the median rules add sorting the
/// n (n - 1) / 2 pairwise distances, O(n^2 log n). Quadratic in the batch, so batches of a few
/// hundred.
///
/// Metrics: `loss`, `bandwidth` (the h used).
#[derive(Clone, Debug)]
pub struct KernelSteinDiscrepancy {
    config: KernelSteinDiscrepancyConfig,
}

impl KernelSteinDiscrepancy {
    /// The objective with these settings.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when a fixed bandwidth is not finite and positive.
    pub fn new(config: KernelSteinDiscrepancyConfig) -> Result<Self, Error> {
        if let Bandwidth::Fixed { h } = config.bandwidth {
            check_positive("kernel Stein discrepancy bandwidth h", h)?;
        }
        Ok(KernelSteinDiscrepancy { config })
    }

    /// The settings.
    pub fn config(&self) -> &KernelSteinDiscrepancyConfig {
        &self.config
    }

    /// The bandwidth h that this objective uses on `batch` `[n, ...]`.
    ///
    /// # Errors
    /// [`Error::Shape`] for fewer than 2 samples; [`Error::InvalidConfig`] when a median rule
    /// meets a batch whose median pairwise distance is 0 (mostly repeated points).
    pub fn bandwidth<T: Float>(&self, batch: &Tensor<T>) -> Result<f64, Error> {
        check_batch(batch)?;
        let n = batch.dim(0) as f64;
        let h2 = match self.config.bandwidth {
            Bandwidth::Fixed { h } => return Ok(h),
            Bandwidth::Median => median_squared_distance(batch),
            Bandwidth::MedianLog => median_squared_distance(batch) / (2.0 * (n + 1.0).ln()),
        };
        if !(h2 > 0.0 && h2.is_finite()) {
            return Err(Error::config(
                "kernel Stein discrepancy median bandwidth h^2",
                h2,
                "a batch of distinct finite points, or a fixed bandwidth",
            ));
        }
        Ok(h2.sqrt())
    }
}

impl<T: Float, E: Energy<T> + ?Sized> Objective<T, E> for KernelSteinDiscrepancy {
    fn step(
        &mut self,
        energy: &E,
        batch: &Tensor<T>,
        _rng: &mut dyn Rng,
    ) -> Result<ObjectiveStep<T>, Error> {
        let h = self.bandwidth(batch)?;
        let (x, g) = gradient_at(energy, batch)?;
        let loss = kernel_stein_discrepancy(&x.detach(), &-&g, h)?;
        let mut metrics = Metrics::new();
        metrics.set("loss", loss.item());
        metrics.set("bandwidth", h);
        Ok(ObjectiveStep {
            loss,
            aux_loss: None,
            metrics,
        })
    }
}

/// The U-statistic of the squared kernel Stein discrepancy with the RBF kernel of bandwidth
/// `h`, for samples `x` and the model's scores `score` at them (see [`KernelSteinDiscrepancy`]
/// for the formula). Differentiable in both; training passes `x` detached and the scores with
/// their graph in the parameters.
///
/// # Shapes
/// `x` and `score`: `[n, ...]` of the same shape, n >= 2; returns a scalar.
///
/// # Errors
/// [`Error::Shape`] when the shapes differ or n < 2; [`Error::InvalidConfig`] when `h` is not
/// finite and positive.
pub fn kernel_stein_discrepancy<T: Float>(
    x: &Tensor<T>,
    score: &Tensor<T>,
    h: f64,
) -> Result<Tensor<T>, Error> {
    check_batch(x)?;
    check_positive("kernel Stein discrepancy bandwidth h", h)?;
    if x.shape() != score.shape() {
        return Err(Error::Shape {
            what: "kernel Stein discrepancy scores".into(),
            expected: format!("the samples' shape {}", x.shape()),
            found: score.dims().to_vec(),
        });
    }
    let n = x.dim(0);
    let x = x.flatten_batch();
    let s = score.flatten_batch();
    let d = x.dim(1) as f64;
    let h2 = h * h;

    // ||x_i - x_j||^2 = |x_i|^2 + |x_j|^2 - 2 x_i^T x_j, clamped at 0 against rounding.
    let sq = x.square().sum_axes(&[1], false);
    let xx = x.matmul_t(&x, false, true);
    let r2 = (&(&sq.unsqueeze(1) + &sq.unsqueeze(0)) - &xx.mul_scalar(2.0)).clamp(0.0, f64::MAX);
    let k = r2.mul_scalar(-0.5 / h2).exp();

    // a_ij = s_i^T x_j, so s_i^T r_ij = a_ii - a_ij and -s_j^T r_ij = a_jj - a_ji.
    let ss = s.matmul_t(&s, false, true);
    let a = s.matmul_t(&x, false, true);
    let sx = (&s * &x).sum_axes(&[1], false);
    let cross = &(&(&sx.unsqueeze(1) - &a) + &sx.unsqueeze(0)) - &a.t();
    let trace = r2.mul_scalar(-1.0 / (h2 * h2)).add_scalar(d / h2);
    let u = &k * &(&(&ss + &cross.mul_scalar(1.0 / h2)) + &trace);

    let off_diagonal: Vec<f64> = (0..n * n)
        .map(|ij| if ij / n == ij % n { 0.0 } else { 1.0 })
        .collect();
    let mask = Tensor::from_f64s(&off_diagonal, [n, n]);
    Ok((&u * &mask).sum().mul_scalar(1.0 / (n * (n - 1)) as f64))
}

/// The median of ||x_i - x_j||^2 over the pairs i < j of `x` `[n, ...]` (n >= 2), detached;
/// the mean of the two middle values for an even number of pairs.
pub fn median_squared_distance<T: Float>(x: &Tensor<T>) -> f64 {
    let n = x.dim(0);
    assert!(n >= 2, "median pairwise distance of fewer than 2 samples");
    let v = no_grad(|| x.detach().flatten_batch().to_f64s());
    let d = v.len() / n;
    let mut r2 = Vec::with_capacity(n * (n - 1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let (a, b) = (&v[i * d..(i + 1) * d], &v[j * d..(j + 1) * d]);
            r2.push(a.iter().zip(b).map(|(p, q)| (p - q) * (p - q)).sum::<f64>());
        }
    }
    r2.sort_by(f64::total_cmp);
    let m = r2.len();
    if m % 2 == 1 {
        r2[m / 2]
    } else {
        0.5 * (r2[m / 2 - 1] + r2[m / 2])
    }
}

/// A batch `[n, ...]` with n >= 2 (the U-statistic needs pairs).
fn check_batch<T: Float>(batch: &Tensor<T>) -> Result<(), Error> {
    if batch.rank() < 1 || batch.dim(0) < 2 {
        return Err(Error::Shape {
            what: "kernel Stein discrepancy batch".into(),
            expected: "[n, ...] with n >= 2 samples (the U-statistic sums over pairs)".into(),
            found: batch.dims().to_vec(),
        });
    }
    Ok(())
}
