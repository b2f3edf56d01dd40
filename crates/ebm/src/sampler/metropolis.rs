//! The Metropolis-Hastings accept/reject step shared by MALA and HMC.

use super::{ChainState, StepInfo, non_finite, per_chain_norm};
use ebm_tensor::{Float, Tensor};
use rand::Rng;

/// Accepts or rejects each chain's proposal, row by row.
///
/// `energy_error` is, per chain, minus the log of the Metropolis-Hastings ratio: for MALA
/// E(x') - E(x) + log q(x'|x) - log q(x|x'), for HMC H(x', p') - H(x, p). A chain moves to its
/// proposal when log u < min(0, -energy_error), u ~ U(0, 1).
///
/// A proposal is divergent when its energy, gradient or energy error is not finite, or its
/// energy error exceeds `divergence_threshold`; a divergent proposal is rejected (acceptance
/// probability 0) and the chain keeps its old state, which [`Tensor::where_mask`] selects row
/// by row, so a NaN in a rejected proposal never reaches the state.
///
/// Draws one uniform number per chain from `rng`.
pub(crate) fn accept_reject<T: Float, R: Rng + ?Sized>(
    rng: &mut R,
    current: ChainState<T>,
    proposal: ChainState<T>,
    energy_error: &Tensor<T>,
    divergence_threshold: f64,
) -> (ChainState<T>, StepInfo<T>) {
    let n = current.n_chains();
    let errors = energy_error.to_f64s();
    let proposal_norm = per_chain_norm(&proposal.grad);
    let non_finite = non_finite(&proposal.energy, &proposal_norm);

    // Divergence and acceptance probability, per chain.
    let is_divergent: Vec<bool> = errors
        .iter()
        .zip(&non_finite)
        .map(|(&err, &bad)| bad || !err.is_finite() || err > divergence_threshold)
        .collect();
    let log_alpha: Vec<f64> = errors
        .iter()
        .zip(&is_divergent)
        .map(|(&err, &div)| {
            if div {
                f64::NEG_INFINITY
            } else {
                (-err).min(0.0)
            }
        })
        .collect();

    // The coin flips: log u < log alpha.
    let log_u = Tensor::<T>::rand_uniform([n], 0.0, 1.0, rng)
        .log()
        .to_f64s();
    let is_accepted: Vec<bool> = log_u
        .iter()
        .zip(&log_alpha)
        .map(|(&lu, &la)| lu < la)
        .collect();

    // Select the accepted rows of the proposal, the others from the current state.
    let keep: Vec<f64> = is_accepted
        .iter()
        .map(|&a| f64::from(u8::from(a)))
        .collect();
    let mask = Tensor::<T>::from_f64s(&keep, [n]);
    let mut row_shape = vec![1; current.position.rank()];
    row_shape[0] = n;
    let row_mask = mask.reshape(row_shape);
    let state = ChainState {
        position: proposal.position.where_mask(&row_mask, &current.position),
        energy: proposal.energy.where_mask(&mask, &current.energy),
        grad: proposal.grad.where_mask(&row_mask, &current.grad),
    };

    let acceptance: Vec<f64> = log_alpha.iter().map(|la| la.exp()).collect();
    let info = StepInfo {
        acceptance_probability: Tensor::from_f64s(&acceptance, [n]),
        is_accepted,
        is_divergent,
        energy: state.energy.clone(),
        grad_norm: per_chain_norm(&state.grad),
    };
    (state, info)
}

/// Per-chain squared Euclidean norms of a batch `[n, ...]`: `[n]`.
pub(crate) fn per_chain_sq_norm<T: Float>(x: &Tensor<T>) -> Tensor<T> {
    x.flatten_batch().square().sum_axes(&[1], false)
}
