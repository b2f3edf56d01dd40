//! Gradient checks against central finite differences, in `f64`, to any order.
//!
//! Like PyTorch's `gradcheck` and `gradgradcheck`: the derivatives that the engine computes are
//! compared with differences of function values. For a function f of inputs x, with fixed random
//! weights w_0, w_1, ... the levels
//!
//! ```text
//! F_0(x)         = f(x)
//! F_{k+1}(x, w)  = grad_x sum(w_k * F_k(x, w))      (computed by the engine, with its graph)
//! ```
//!
//! are checked one by one: at level k, the engine's gradient of S_k = sum(w_k * F_k) with
//! respect to every input *and every earlier weight* is compared with central differences of S_k.
//! Level 0 checks first derivatives; level 1 checks the backward rules' own derivatives (second
//! order), including with respect to the incoming gradient; level 2 the third order.

use crate::Tensor;
use crate::autodiff::{GradOptions, grad};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::fmt;

/// Step and tolerances of a check.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CheckOptions {
    /// Half-width of the central difference.
    pub eps: f64,
    /// Absolute tolerance.
    pub atol: f64,
    /// Relative tolerance (to the larger of the two values' magnitudes).
    pub rtol: f64,
    /// Seed of the random weights w_k.
    pub seed: u64,
}

impl Default for CheckOptions {
    /// eps 1e-6, atol 1e-6, rtol 1e-5. A central difference errs by about eps^2 |f'''| / 6
    /// (truncation, ~1e-13 here) plus 1e-16 |f| / eps (rounding, ~1e-10 for f of order 1), so
    /// these tolerances are 4 orders above the error of a correct derivative while still far
    /// below the error of a wrong one.
    fn default() -> Self {
        CheckOptions {
            eps: 1e-6,
            atol: 1e-6,
            rtol: 1e-5,
            seed: 0x5eed,
        }
    }
}

/// A derivative that disagrees with finite differences.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckFailure {
    /// Derivative order (1 for first derivatives).
    pub order: usize,
    /// Which variable: "input i" or "weight of level k, output j".
    pub variable: String,
    /// Flat index of the element.
    pub element: usize,
    /// The engine's value.
    pub analytic: f64,
    /// The finite-difference value.
    pub numeric: f64,
}

impl fmt::Display for CheckFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "order-{} derivative wrt {} element {}: engine {:.12e}, finite difference {:.12e} (diff {:.3e})",
            self.order,
            self.variable,
            self.element,
            self.analytic,
            self.numeric,
            (self.analytic - self.numeric).abs()
        )
    }
}

impl std::error::Error for CheckFailure {}

/// The function under test: inputs in, one output tensor out.
pub type TestFn<'a> = dyn Fn(&[Tensor<f64>]) -> Tensor<f64> + 'a;

/// Checks the derivatives of `f` at `inputs` up to `order` (1: gradient, 2: gradient of the
/// gradient, 3: third order) against central finite differences.
///
/// Every input is differentiated; the function must be smooth near `inputs` (no kinks within
/// `eps`).
///
/// # Errors
/// The first disagreement found.
///
/// # Example
/// ```
/// use ebm_tensor::{Tensor, check::{check_gradients, CheckOptions}};
/// let x = Tensor::<f64>::from_f64s(&[0.3, -1.2, 0.7], [3]);
/// check_gradients(&|v| v[0].silu().square(), &[x], 3, &CheckOptions::default()).unwrap();
/// ```
pub fn check_gradients(
    f: &TestFn<'_>,
    inputs: &[Tensor<f64>],
    order: usize,
    options: &CheckOptions,
) -> Result<(), CheckFailure> {
    let mut rng = StdRng::seed_from_u64(options.seed);
    let xs: Vec<Tensor<f64>> = inputs.iter().map(Tensor::detach).collect();
    let mut weights: Vec<Vec<Tensor<f64>>> = Vec::new();
    for level in 0..order {
        // Draw this level's weights from the shapes of its outputs.
        let (vars_x, vars_w) = variables(&xs, &weights);
        let outputs = evaluate(f, &vars_x, &vars_w, level);
        weights.push(
            outputs
                .iter()
                .map(|o| Tensor::randn(o.shape().clone(), &mut rng))
                .collect(),
        );
        check_level(f, &xs, &weights, level, options)?;
    }
    Ok(())
}

/// Level k's outputs F_k at the given values (all treated as variables).
fn evaluate(
    f: &TestFn<'_>,
    xs: &[Tensor<f64>],
    weights: &[Vec<Tensor<f64>>],
    level: usize,
) -> Vec<Tensor<f64>> {
    if level == 0 {
        return vec![f(xs)];
    }
    let below = evaluate(f, xs, weights, level - 1);
    let scalar = weighted_sum(&below, &weights[level - 1]);
    if !scalar.requires_grad() {
        return xs.iter().map(Tensor::zeros_like).collect();
    }
    let options = GradOptions::create_graph().allow_unused(true);
    grad(&[scalar], xs, None, options).expect("gradient of a scalar")
}

fn weighted_sum(outputs: &[Tensor<f64>], weights: &[Tensor<f64>]) -> Tensor<f64> {
    let mut total = Tensor::scalar(0.0);
    for (o, w) in outputs.iter().zip(weights) {
        total = &total + &(o * w).sum();
    }
    total
}

/// Fresh leaves that require grad, holding the values of the inputs and the weights.
fn variables(
    xs: &[Tensor<f64>],
    weights: &[Vec<Tensor<f64>>],
) -> (Vec<Tensor<f64>>, Vec<Vec<Tensor<f64>>>) {
    let leaf = |t: &Tensor<f64>| t.detach().set_requires_grad(true);
    let xs = xs.iter().map(leaf).collect();
    let weights = weights
        .iter()
        .map(|ws| ws.iter().map(leaf).collect())
        .collect();
    (xs, weights)
}

/// S_k as a plain number, for finite differences.
fn s_value(f: &TestFn<'_>, xs: &[Tensor<f64>], weights: &[Vec<Tensor<f64>>], level: usize) -> f64 {
    let (xs, weights) = variables(xs, weights);
    weighted_sum(&evaluate(f, &xs, &weights, level), &weights[level]).item()
}

fn check_level(
    f: &TestFn<'_>,
    xs: &[Tensor<f64>],
    weights: &[Vec<Tensor<f64>>],
    level: usize,
    options: &CheckOptions,
) -> Result<(), CheckFailure> {
    // The engine's gradient of S_k with respect to the inputs and the earlier weights.
    let (vars_x, vars_w) = variables(xs, weights);
    let s = weighted_sum(&evaluate(f, &vars_x, &vars_w, level), &vars_w[level]);
    let mut variables: Vec<(String, Tensor<f64>)> = vars_x
        .iter()
        .enumerate()
        .map(|(i, x)| (format!("input {i}"), x.clone()))
        .collect();
    for (k, ws) in vars_w.iter().enumerate().take(level) {
        for (j, w) in ws.iter().enumerate() {
            variables.push((format!("weight of level {k}, output {j}"), w.clone()));
        }
    }
    let tensors: Vec<Tensor<f64>> = variables.iter().map(|(_, t)| t.clone()).collect();
    let analytic = if s.requires_grad() {
        grad(
            &[s],
            &tensors,
            None,
            GradOptions::default().allow_unused(true),
        )
        .expect("gradient of a scalar")
    } else {
        tensors.iter().map(Tensor::zeros_like).collect()
    };

    // Central differences, one element at a time.
    for (v, ((name, tensor), analytic)) in variables.iter().zip(&analytic).enumerate() {
        for e in 0..tensor.numel() {
            let shifted = |delta: f64| {
                let mut xs: Vec<Tensor<f64>> = xs.to_vec();
                let mut ws: Vec<Vec<Tensor<f64>>> = weights.to_vec();
                let target = if v < xs.len() {
                    &mut xs[v]
                } else {
                    let (mut k, mut j) = (0, v - xs.len());
                    while j >= ws[k].len() {
                        j -= ws[k].len();
                        k += 1;
                    }
                    &mut ws[k][j]
                };
                let mut values = target.to_vec();
                values[e] += delta;
                *target = Tensor::from_vec(values, target.shape().clone());
                s_value(f, &xs, &ws, level)
            };
            let numeric = (shifted(options.eps) - shifted(-options.eps)) / (2.0 * options.eps);
            let exact = analytic.data()[e];
            let scale = exact.abs().max(numeric.abs());
            // Written so that a NaN on either side fails the check.
            let agrees = (exact - numeric).abs() <= options.atol + options.rtol * scale;
            if !agrees {
                return Err(CheckFailure {
                    order: level + 1,
                    variable: name.clone(),
                    element: e,
                    analytic: exact,
                    numeric,
                });
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Shape;

    /// e^x with a backward rule that is right to first order but detaches its saved output, so
    /// its second derivative is wrong: the checker must say so.
    fn exp_detached(x: &Tensor<f64>) -> Tensor<f64> {
        let data = x.data().iter().map(|v| v.exp()).collect::<Vec<_>>();
        Tensor::from_op(data, x.shape().clone(), "exp_detached", [x], |c| {
            vec![Some(c.grad * &c.out.detach())]
        })
    }

    /// e^x with a wrong gradient (2 e^x).
    fn exp_wrong(x: &Tensor<f64>) -> Tensor<f64> {
        let data = x.data().iter().map(|v| v.exp()).collect::<Vec<_>>();
        Tensor::from_op(data, x.shape().clone(), "exp_wrong", [x], |c| {
            vec![Some((c.grad * c.out).mul_scalar(2.0))]
        })
    }

    #[test]
    fn a_function_with_its_own_parameter_is_checked_to_second_order() {
        // The output requires grad through a leaf made inside the function, not only through
        // the inputs.
        let x = Tensor::<f64>::from_f64s(&[0.4, -0.3], Shape::new(&[2]));
        let f = |v: &[Tensor<f64>]| {
            let own = Tensor::<f64>::from_f64s(&[1.5, 0.5], Shape::new(&[2]));
            (&v[0] * &own.set_requires_grad(true)).silu()
        };
        check_gradients(&f, &[x], 2, &CheckOptions::default()).unwrap();
    }

    #[test]
    fn checker_catches_wrong_first_and_second_derivatives() {
        let x = Tensor::<f64>::from_f64s(&[0.1, -0.5, 0.9], Shape::new(&[3]));
        let opts = CheckOptions::default();
        let wrong =
            check_gradients(&|v| exp_wrong(&v[0]), std::slice::from_ref(&x), 1, &opts).unwrap_err();
        assert_eq!(wrong.order, 1);
        assert!(
            check_gradients(&|v| exp_detached(&v[0]), std::slice::from_ref(&x), 1, &opts).is_ok()
        );
        let wrong = check_gradients(&|v| exp_detached(&v[0]), std::slice::from_ref(&x), 2, &opts)
            .unwrap_err();
        assert_eq!(wrong.order, 2);
        assert!(check_gradients(&|v| v[0].exp(), &[x], 3, &opts).is_ok());
    }
}
