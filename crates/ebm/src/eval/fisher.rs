//! The Fisher divergence between a model and a target whose score is known.

use super::mean_and_standard_error;
use crate::Error;
use crate::energy::Energy;
use crate::sampler::evaluate;
use ebm_tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

/// What [`fisher_divergence`] returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FisherDivergence {
    /// The Monte Carlo estimate of E_p ||s_model(x) - s_p(x)||^2.
    pub value: f64,
    /// Its standard error over the samples, sd / sqrt(n).
    pub standard_error: f64,
}

/// The Fisher divergence of a model from a target p whose score is known (an analytic
/// energy), estimated on samples `x` of p:
///
/// ```text
/// F(p, q) = E_{x ~ p} || s_q(x) - s_p(x) ||^2,    s = -grad_x E
/// F_hat   = (1 / n) sum_i || s_model(x_i) - s_target(x_i) ||^2
/// ```
///
/// No factor 1/2 (score-matching losses carry one: F / 2 is the part of the exact
/// score-matching loss that depends on the model). Unbiased when the x_i are exact draws of p;
/// with MCMC draws, only as good as the chains. The divergence is not symmetric, and it is
/// blind to how mass splits between well-separated modes (the scores agree inside each).
///
/// Cost: one batched gradient evaluation of each energy.
///
/// Hyvarinen, "Estimation of non-normalized statistical models by score matching", JMLR 2005;
/// Lyu, "Interpretation and generalization of score matching", UAI 2009.
///
/// # Errors
/// An error of the autodiff engine; [`Error::InvalidConfig`] when a score is not finite at a
/// sample (its row named).
pub fn fisher_divergence<T, M, P>(
    model: &M,
    target: &P,
    x: &Tensor<T>,
) -> Result<FisherDivergence, Error>
where
    T: Float,
    M: Energy<T> + ?Sized,
    P: Energy<T> + ?Sized,
{
    let (_, g_model) = evaluate(model, x)?;
    let (_, g_target) = evaluate(target, x)?;
    let diff = (&g_model - &g_target).flatten_batch();
    let per_sample = diff.square().sum_axes(&[1], false).to_f64s();
    if let Some(i) = per_sample.iter().position(|v| !v.is_finite()) {
        return Err(Error::config(
            "score difference",
            format!("{} at sample {i}", per_sample[i]),
            "finite scores of both energies at every sample",
        ));
    }
    let (value, standard_error) = mean_and_standard_error(&per_sample);
    Ok(FisherDivergence {
        value,
        standard_error,
    })
}
