//! Products with Jacobians and Hessians, built on [`grad`].

use super::backward::{GradOptions, grad};
use crate::{Float, Tensor, TensorError};

/// Vector-Jacobian product v^T J of `output` with respect to `input` (one reverse pass).
///
/// # Shapes
/// `v` has the shape of `output`; the result has the shape of `input`.
pub fn vjp<T: Float>(
    output: &Tensor<T>,
    input: &Tensor<T>,
    v: &Tensor<T>,
    create_graph: bool,
) -> Result<Tensor<T>, TensorError> {
    let options = GradOptions {
        create_graph,
        retain_graph: Some(true),
        allow_unused: true,
    };
    let mut g = grad(
        std::slice::from_ref(output),
        std::slice::from_ref(input),
        Some(std::slice::from_ref(v)),
        options,
    )?;
    Ok(g.remove(0))
}

/// Jacobian-vector product J v of `output` with respect to `input`, by the double-backward
/// trick: u -> J^T u is linear in u, and its vector-Jacobian product with `v` is J v. Costs two
/// reverse passes and no forward-mode machinery.
///
/// # Shapes
/// `v` has the shape of `input`; the result has the shape of `output`.
pub fn jvp<T: Float>(
    output: &Tensor<T>,
    input: &Tensor<T>,
    v: &Tensor<T>,
    create_graph: bool,
) -> Result<Tensor<T>, TensorError> {
    let u = output.zeros_like().set_requires_grad(true);
    let jt_u = vjp(output, input, &u, true)?;
    vjp(&jt_u, &u, v, create_graph)
}

/// Hessian-vector product H v of a one-element `output` with respect to `input` (two reverse
/// passes, the first recorded).
///
/// # Returns
/// `(gradient, hvp)`, both of the shape of `input`; the gradient is returned because callers
/// usually need it too (sliced score matching needs both s and v^T grad s).
pub fn hvp<T: Float>(
    output: &Tensor<T>,
    input: &Tensor<T>,
    v: &Tensor<T>,
    create_graph: bool,
) -> Result<(Tensor<T>, Tensor<T>), TensorError> {
    let g = vjp(output, input, &output.ones_like(), true)?;
    let hv = vjp(&g, input, v, create_graph)?;
    Ok((g, hv))
}

/// Per-row trace of the Hessian, sum_j d^2 f / d x_ij^2, from a gradient that was computed with
/// `create_graph`.
///
/// `gradient` is d(sum_i f_i)/dx for a batch x of shape `[n, d]` whose rows are independent (the
/// i-th output depends only on the i-th row, as for an energy of a batch). Then row i of the
/// product of the batch Hessian with the one-hot direction e_j is row i's Hessian times e_j, so d
/// reverse passes give every row's exact trace. Cost: d backward passes; use it for small d and
/// a Hutchinson estimate (`hvp` with random probes) beyond.
///
/// # Shapes
/// `gradient` and `input`: `[n, d]`; result `[n]`.
pub fn hessian_trace<T: Float>(
    gradient: &Tensor<T>,
    input: &Tensor<T>,
    create_graph: bool,
) -> Result<Tensor<T>, TensorError> {
    assert_eq!(
        gradient.shape(),
        input.shape(),
        "hessian_trace: gradient and input shapes"
    );
    assert_eq!(
        input.rank(),
        2,
        "hessian_trace expects a batch [n, d], got {}",
        input.shape()
    );
    let (n, d) = (input.dim(0), input.dim(1));
    let mut trace: Option<Tensor<T>> = None;
    for j in 0..d {
        let mut e = vec![T::zero(); n * d];
        e.iter_mut().skip(j).step_by(d).for_each(|v| *v = T::one());
        let e = Tensor::from_vec(e, [n, d]);
        let h_col = vjp(gradient, input, &e, create_graph)?;
        let diag = (&h_col * &e).sum_axes(&[1], false);
        trace = Some(match trace {
            Some(t) => &t + &diag,
            None => diag,
        });
    }
    Ok(trace.unwrap_or_else(|| Tensor::zeros([n])))
}
