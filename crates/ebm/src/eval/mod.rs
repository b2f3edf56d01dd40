//! Evaluation: how good is a model p(x) = exp(-E(x)) / Z, in numbers one can trust.
//!
//! * [`log_normalizer_quadrature`], [`nll_quadrature`]: log Z and the test NLL for d <= 2,
//!   exact up to the rule's O(h^2) error and the mass off the grid;
//! * [`Ais::forward`]: log Z in any dimension, a stochastic lower bound
//!   (`E[log Z_hat] <= log Z`);
//! * [`Ais::reverse`]: from exact samples of the model, a stochastic upper bound (from MCMC
//!   samples, an approximate one);
//! * [`mmd_squared`]: the distance between model samples and data, an unbiased estimate of
//!   MMD^2;
//! * [`fisher_divergence`]: the mean squared score error against a known score, an unbiased
//!   Monte Carlo estimate;
//! * [`auroc`]: how well the energy tells held-out data from another set (out-of-distribution
//!   detection), with its standard error.
//!
//! The NLL of data follows from log Z: NLL = mean E(x) + log Z, so a lower bound on log Z is
//! a lower bound on the NLL and an upper bound on log Z an upper one. [`bits_per_dim`] turns
//! an NLL in nats into the unit of image models.
//!
//! Nothing here prints: each function returns a record with the estimate, its standard error
//! and its diagnostics (the mass on the grid's border, the effective sample size of the AIS
//! weights, the MMD bandwidth), for the caller to show.

mod ais;
mod fisher;
mod mmd;
mod ood;
mod quadrature;

pub use ais::{Ais, AisBounds, AisConfig, AisEstimate, AisSchedule, AisTransition, AisTuning};
pub use fisher::{FisherDivergence, fisher_divergence};
pub use mmd::{Mmd, MmdBandwidth, mmd_squared};
pub use ood::{Auroc, auroc};
pub use quadrature::{
    Quadrature, QuadratureGrid, QuadratureNll, QuadratureRule, log_normalizer_quadrature,
    nll_quadrature,
};

/// Bits per dimension of an NLL in nats over `dim` dimensions: nll / (dim ln 2).
///
/// For images scaled to [0, 1] from 256 levels, a density NLL counts a continuous volume: add
/// `dim * ln 256` nats (the discretisation's log-volume) before converting, as image papers do
/// for dequantised data (Theis et al., "A note on the evaluation of generative models", 2016).
///
/// ```
/// let bpd = ebm::eval::bits_per_dim(2.0 * std::f64::consts::LN_2, 2);
/// assert!((bpd - 1.0).abs() < 1e-12);
/// ```
pub fn bits_per_dim(nll_nats: f64, dim: usize) -> f64 {
    nll_nats / (dim as f64 * std::f64::consts::LN_2)
}

/// log((1 / n) sum_i exp(a_i)), without overflow; -inf for no terms or all -inf.
pub(crate) fn log_mean_exp(a: &[f64]) -> f64 {
    let max = a.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    let sum: f64 = a.iter().map(|v| (v - max).exp()).sum();
    max + (sum / a.len() as f64).ln()
}

/// The mean of `v` and its standard error sd / sqrt(n) (divisor n - 1; 0 for n = 1).
pub(crate) fn mean_and_standard_error(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    (mean, (var / n).sqrt())
}
