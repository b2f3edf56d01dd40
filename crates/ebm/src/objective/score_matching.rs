//! Score matching (section 3 of Song & Kingma, "How to Train Your Energy-Based Models", 2021):
//! fit the model's score s(x) = -grad_x E(x) to the data's, which never needs the normaliser.
//!
//! Every loss here differentiates through -grad_x E, so it needs the energy's gradient with its
//! graph (`create_graph`), and training differentiates that again: these are the workloads that
//! made the project own an engine with higher-order gradients.

use ebm_tensor::autodiff::{GradOptions, grad, hessian_trace};
use ebm_tensor::{Float, Tensor, TensorError};
use rand::Rng;

/// An energy: a batch `[n, ...]` in, energies `[n]` out.
pub type EnergyFn<'a, T> = dyn Fn(&Tensor<T>) -> Tensor<T> + 'a;

/// grad_x sum_i E(x_i) with its graph, and the batch as a leaf that requires grad.
fn energy_gradient<T: Float>(
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
fn per_sample_sum<T: Float>(t: &Tensor<T>) -> Tensor<T> {
    t.flatten_batch().sum_axes(&[1], false)
}

/// Denoising score matching (Vincent 2011) with Gaussian noise of scale `sigma`:
///
/// ```text
/// L = 1/2 mean_i || s(x_i + sigma z_i) + z_i / sigma ||^2,   z_i ~ N(0, I)
/// ```
///
/// Its minimiser is the score of the data convolved with N(0, sigma^2 I), so small `sigma`
/// approaches the data score (and raises the variance). Assumes a differentiable energy; cost
/// per step: one forward pass, one recorded backward pass to x, and the backward pass of both
/// for the weight gradient (about 4-5 forward passes).
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
    let (_, g) = energy_gradient(energy, &noisy)?;

    // s + z / sigma = z / sigma - grad_x E
    let residual = &z.mul_scalar(1.0 / sigma) - &g;
    Ok(per_sample_sum(&residual.square()).mean().mul_scalar(0.5))
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
/// backward passes, whatever the dimension.
///
/// # Shapes
/// `x` and `v`: `[n, d]`; returns a scalar.
pub fn sliced_score_matching<T: Float>(
    energy: &EnergyFn<'_, T>,
    x: &Tensor<T>,
    v: &Tensor<T>,
    variance_reduced: bool,
) -> Result<Tensor<T>, TensorError> {
    assert_eq!(
        x.shape(),
        v.shape(),
        "sliced score matching: x and v shapes differ"
    );
    let (x, g) = energy_gradient(energy, x)?;

    // v^T s = -v^T g, and v^T grad_x(v^T s) = -v^T H v with H the Hessian of E.
    let gv = per_sample_sum(&(&g * v));
    let hv = grad(&[gv.sum()], &[x], None, GradOptions::create_graph())?.remove(0);
    let vhv = per_sample_sum(&(&hv * v));
    let second = if variance_reduced {
        per_sample_sum(&g.square())
    } else {
        gv.square()
    };
    Ok((&second.mul_scalar(0.5) - &vhv).mean())
}

/// Exact (implicit) score matching (Hyvarinen 2005):
///
/// ```text
/// L = mean_i [ tr(grad_x s(x_i)) + 1/2 ||s(x_i)||^2 ],   tr(grad_x s) = -Laplacian E
/// ```
///
/// equal to the Fisher divergence to the data up to a constant, under mild tail conditions.
/// The trace is exact, from d recorded backward passes, so the cost grows with the dimension:
/// use it for small d and sliced score matching beyond.
///
/// # Shapes
/// `x`: `[n, d]`; returns a scalar.
pub fn exact_score_matching<T: Float>(
    energy: &EnergyFn<'_, T>,
    x: &Tensor<T>,
) -> Result<Tensor<T>, TensorError> {
    let (x, g) = energy_gradient(energy, x)?;
    let laplacian = hessian_trace(&g, &x, true)?;
    Ok((&per_sample_sum(&g.square()).mul_scalar(0.5) - &laplacian).mean())
}
