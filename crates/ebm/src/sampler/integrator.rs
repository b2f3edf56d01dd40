//! The leapfrog (velocity Verlet) integrator of Hamiltonian dynamics, for HMC.

use super::{ChainState, evaluate};
use crate::Error;
use crate::energy::Energy;
use ebm_tensor::{Float, Tensor};

/// `n_steps` leapfrog steps of Hamiltonian dynamics with H(x, p) = E(x) + K(p), from every
/// chain of `state` with momentum `momentum`: the final chains and momenta.
///
/// ```text
/// p <- p - (eps / 2) grad E(x)
/// x <- x + eps M^-1 p
/// p <- p - (eps / 2) grad E(x)
/// ```
///
/// The scheme is symplectic and time-reversible: negating the final momentum and integrating
/// again returns to the start (up to rounding), and the energy error H(end) - H(start) stays
/// O(eps^2) over a fixed time for a smooth energy, which is what makes HMC's acceptance rate
/// high. A non-finite energy along the way propagates to the end, where HMC flags it.
///
/// Cost: `n_steps` batched evaluations of the energy and its gradient (the gradient at the
/// start is the one kept in `state`).
///
/// Leimkuhler & Reich, "Simulating Hamiltonian Dynamics", Cambridge 2004; Neal, "MCMC using
/// Hamiltonian dynamics", Handbook of MCMC 2011.
///
/// # Arguments
/// * `inverse_mass_matrix`: the diagonal of M^-1, shaped like one chain (`[d]` for chains
///   `[n, d]`; any shape that broadcasts against the momenta); `None` for the identity.
///
/// # Shapes
/// `momentum` has the shape of `state.position`, `[n, ...]`.
///
/// # Errors
/// An error of the autodiff engine.
///
/// # Example
/// A harmonic oscillator E = x^2 / 2: half a period (time pi) takes x = 1 to x = -1.
/// ```
/// use ebm::sampler::{ChainState, leapfrog};
/// use ebm_tensor::Tensor;
///
/// let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
/// let start = ChainState::new(Tensor::ones([1, 1]), &energy).unwrap();
/// let n = 1000;
/// let h = std::f64::consts::PI / n as f64;
/// let (end, p) = leapfrog(&energy, &start, &Tensor::zeros([1, 1]), h, None, n).unwrap();
/// assert!((end.position.item() + 1.0).abs() < 1e-5);
/// assert!(p.item().abs() < 1e-5);
/// ```
pub fn leapfrog<T: Float, E: Energy<T> + ?Sized>(
    energy: &E,
    state: &ChainState<T>,
    momentum: &Tensor<T>,
    step_size: f64,
    inverse_mass_matrix: Option<&Tensor<T>>,
    n_steps: usize,
) -> Result<(ChainState<T>, Tensor<T>), Error> {
    let half = 0.5 * step_size;
    let mut end = state.clone();
    let mut p = momentum.clone();
    for _ in 0..n_steps {
        // Half kick, drift, new gradient, half kick.
        p = &p - &end.grad.mul_scalar(half);
        let velocity = match inverse_mass_matrix {
            Some(m) => &p * m,
            None => p.clone(),
        };
        let position = &end.position + &velocity.mul_scalar(step_size);
        let (e, g) = evaluate(energy, &position)?;
        end = ChainState {
            position,
            energy: e,
            grad: g,
        };
        p = &p - &end.grad.mul_scalar(half);
    }
    Ok((end, p))
}

/// The kinetic energy K(p) = p^T M^-1 p / 2 of each chain, `[n, ...] -> [n]`, for the
/// diagonal `inverse_mass_matrix` of [`leapfrog`] (`None` for the identity).
pub fn kinetic_energy<T: Float>(
    momentum: &Tensor<T>,
    inverse_mass_matrix: Option<&Tensor<T>>,
) -> Tensor<T> {
    let weighted = match inverse_mass_matrix {
        Some(m) => &momentum.square() * m,
        None => momentum.square(),
    };
    weighted
        .flatten_batch()
        .sum_axes(&[1], false)
        .mul_scalar(0.5)
}
