//! Behaviour of the autodiff engine as a whole: closed-form derivatives to third order,
//! vector-Jacobian products, every error `grad` and `backward` can return, grad mode, pruning,
//! the Jacobian and Hessian products, f32, very deep graphs and `update_`. The memory of a
//! training loop is checked in `memory.rs`.

mod common;

use common::*;
use ebm_tensor::autodiff::{
    GradModeGuard, GradOptions, grad, is_grad_enabled, no_grad, with_grad_mode,
};
use ebm_tensor::{Float, Tensor, TensorError};
use std::slice::from_ref;
use std::sync::Mutex;

/// Held by the tests that build large graphs, so that they do not run at the same time.
static HEAVY: Mutex<()> = Mutex::new(());

fn heavy_lock() -> std::sync::MutexGuard<'static, ()> {
    HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Options that keep the graph for another pass.
const RETAIN: GradOptions = GradOptions {
    create_graph: false,
    retain_graph: Some(true),
    allow_unused: false,
};

/// Asserts that the error's message contains every one of `parts`.
#[track_caller]
fn assert_mentions(err: &TensorError, parts: &[&str]) {
    let message = err.to_string();
    for part in parts {
        assert!(message.contains(part), "{part:?} missing from: {message}");
    }
}

// ---- closed forms ------------------------------------------------------------------------

/// A function applied elementwise.
type Elementwise<T> = fn(&Tensor<T>) -> Tensor<T>;

/// An elementwise function and its first three derivatives in closed form.
struct Closed {
    name: &'static str,
    f: Elementwise<f64>,
    derivatives: [fn(f64) -> f64; 3],
}

fn closed_forms() -> Vec<Closed> {
    vec![
        Closed {
            name: "x^3 - 2x^2 + x",
            f: |x| x.powi(3) - x.square() * 2.0 + x,
            derivatives: [|x| 3.0 * x * x - 4.0 * x + 1.0, |x| 6.0 * x - 4.0, |_| 6.0],
        },
        Closed {
            name: "x e^-x",
            f: |x| x * (-x).exp(),
            derivatives: [
                |x| (1.0 - x) * (-x).exp(),
                |x| (x - 2.0) * (-x).exp(),
                |x| (3.0 - x) * (-x).exp(),
            ],
        },
        Closed {
            name: "ln(1 + x^2)",
            f: |x| x.square().add_scalar(1.0).log(),
            derivatives: [
                |x| 2.0 * x / (1.0 + x * x),
                |x| 2.0 * (1.0 - x * x) / (1.0 + x * x).powi(2),
                |x| 4.0 * x * (x * x - 3.0) / (1.0 + x * x).powi(3),
            ],
        },
        Closed {
            // exp(2 ln(1 + x^2)) = (1 + x^2)^2
            name: "exp(2 ln(1 + x^2))",
            f: |x| (x.square().add_scalar(1.0).log() * 2.0).exp(),
            derivatives: [
                |x| 4.0 * x * (1.0 + x * x),
                |x| 12.0 * x * x + 4.0,
                |x| 24.0 * x,
            ],
        },
    ]
}

const POINTS: [f64; 6] = [-1.7, -0.3, 0.25, 0.9, 1.4, 2.5];

#[test]
fn repeated_create_graph_calls_give_first_to_third_derivatives() {
    let x = leaf(&POINTS, &[2, 3]);
    for case in closed_forms() {
        let d1 = d(&(case.f)(&x).sum(), &x, true);
        let d2 = d(&d1.sum(), &x, true);
        let d3 = d(&d2.sum(), &x, false);
        for (k, got) in [d1, d2, d3].iter().enumerate() {
            let want: Vec<f64> = POINTS.iter().map(|&p| case.derivatives[k](p)).collect();
            let what = format!("{}: derivative {}", case.name, k + 1);
            assert_close(&what, &got.to_f64s(), &want, 1e-12);
        }
    }
}

#[test]
fn mixed_second_partials_match_and_are_symmetric() {
    // f(x, y) = x^2 y + e^{xy}, elementwise.
    let (xs, ys) = ([0.3, -1.1, 0.8], [1.5, 0.4, -0.7]);
    let (x, y) = (leaf(&xs, &[3]), leaf(&ys, &[3]));
    let f = (x.square() * &y + (&x * &y).exp()).sum();
    let options = GradOptions::create_graph();
    let g = grad(&[f], &[x.clone(), y.clone()], None, options).unwrap();
    // g[0] and g[1] share one graph: the first two passes keep it (create_graph retains).
    let dxy = d(&g[0].sum(), &y, true);
    let dyx = d(&g[1].sum(), &x, true);
    let dxx = d(&g[0].sum(), &x, false);

    let pairs = xs.iter().zip(&ys);
    let want_xy: Vec<f64> = pairs
        .clone()
        .map(|(a, b)| 2.0 * a + (a * b).exp() * (1.0 + a * b))
        .collect();
    let want_xx: Vec<f64> = pairs
        .map(|(a, b)| 2.0 * b + b * b * (a * b).exp())
        .collect();
    assert_close("d2f/dxdy", &dxy.to_f64s(), &want_xy, 1e-12);
    assert_close("d2f/dydx", &dyx.to_f64s(), &want_xy, 1e-12);
    assert_close("d2f/dx2", &dxx.to_f64s(), &want_xx, 1e-12);
}

// ---- vector-Jacobian products and accumulation -------------------------------------------

#[test]
fn grad_outputs_give_the_vector_jacobian_product() {
    // y = tanh(A x) with x [3, 1]: v^T J = A^T (v * (1 - y^2)).
    let a = [0.5, -1.0, 0.3, 1.2, 0.7, -0.4];
    let x = leaf(&[0.2, -0.6, 1.1], &[3, 1]);
    let v = Tensor::from_f64s(&[1.5, -2.0], [2, 1]);
    let y = Tensor::from_f64s(&a, [2, 3]).matmul(&x).tanh();
    let (vs, ys) = (v.to_f64s(), y.to_f64s());
    let got = grad(&[y], &[x], Some(&[v]), GradOptions::default()).unwrap();

    let w: Vec<f64> = (0..2).map(|i| vs[i] * (1.0 - ys[i] * ys[i])).collect();
    let want: Vec<f64> = (0..3).map(|j| a[j] * w[0] + a[3 + j] * w[1]).collect();
    assert_close("A^T (v * (1 - y^2))", &got[0].to_f64s(), &want, 1e-14);
}

#[test]
fn gradients_of_several_outputs_are_summed() {
    let xs = [0.4, -0.2, 1.3];
    let x = leaf(&xs, &[3]);
    let scalars = [x.square().sum(), (&x * 3.0).exp().sum()];
    let got = grad(&scalars, from_ref(&x), None, GradOptions::default()).unwrap();
    let want: Vec<f64> = xs.iter().map(|a| 2.0 * a + 3.0 * (3.0 * a).exp()).collect();
    assert_close("two scalar outputs", &got[0].to_f64s(), &want, 1e-13);

    // Non-scalar outputs, each with its own vector.
    let (v1, v2) = ([1.0, -2.0, 0.5], [0.3, 0.7, -1.1]);
    let outputs = [x.square(), x.exp()];
    let vs = [Tensor::from_f64s(&v1, [3]), Tensor::from_f64s(&v2, [3])];
    let got = grad(&outputs, &[x], Some(&vs), GradOptions::default()).unwrap();
    let want: Vec<f64> = (0..3)
        .map(|i| 2.0 * xs[i] * v1[i] + xs[i].exp() * v2[i])
        .collect();
    assert_close("two vector outputs", &got[0].to_f64s(), &want, 1e-14);
}

#[test]
fn gradients_with_respect_to_several_inputs_broadcast_back() {
    // f = sum exp(x * b) with x [2, 3] and b [3] broadcast over the rows.
    let (xs, bs) = ([0.1, -0.5, 0.9, 1.2, 0.3, -0.8], [0.7, -0.2, 0.4]);
    let (x, b) = (leaf(&xs, &[2, 3]), leaf(&bs, &[3]));
    let f = (&x * &b).exp().sum();
    let g = grad(&[f], &[x, b], None, GradOptions::default()).unwrap();

    let e = |i: usize| (xs[i] * bs[i % 3]).exp();
    let want_x: Vec<f64> = (0..6).map(|i| bs[i % 3] * e(i)).collect();
    let want_b: Vec<f64> = (0..3)
        .map(|j| xs[j] * e(j) + xs[3 + j] * e(3 + j))
        .collect();
    assert_eq!(g[1].dims(), &[3]);
    assert_close("df/dx", &g[0].to_f64s(), &want_x, 1e-14);
    assert_close("df/db", &g[1].to_f64s(), &want_b, 1e-14);
}

#[test]
fn an_input_used_twice_accumulates_both_paths() {
    let xs = [0.5, -1.5];
    let x = leaf(&xs, &[2]);
    let h = x.exp();
    let y = (&h * &h + &h + &x * &x).sum();
    let want: Vec<f64> = xs
        .iter()
        .map(|a| 2.0 * (2.0 * a).exp() + a.exp() + 2.0 * a)
        .collect();
    assert_close(
        "e^2x + e^x + x^2",
        &d(&y, &x, false).to_f64s(),
        &want,
        1e-14,
    );
}

#[test]
fn an_input_listed_twice_gets_its_gradient_twice() {
    let x = leaf(&[0.5, -1.5], &[2]);
    let y = x.square().sum();
    let g = grad(&[y], &[x.clone(), x], None, GradOptions::default()).unwrap();
    assert_eq!(g[0].to_f64s(), vec![1.0, -3.0]);
    assert_eq!(g[1].to_f64s(), vec![1.0, -3.0]);
}

#[test]
fn an_intermediate_tensor_can_be_an_input() {
    let xs = [0.2, -0.7, 1.1];
    let x = leaf(&xs, &[3]);
    let h = x.exp();
    let y = (h.square() * 0.5 + h.log()).sum();

    // dy/dh = h + 1/h; together with x, dy/dx = (h + 1/h) h = h^2 + 1.
    let g = grad(from_ref(&y), &[h.clone(), x], None, GradOptions::default()).unwrap();
    let want_h: Vec<f64> = xs.iter().map(|a| a.exp() + (-a).exp()).collect();
    let want_x: Vec<f64> = xs.iter().map(|a| (2.0 * a).exp() + 1.0).collect();
    assert_close("dy/dh", &g[0].to_f64s(), &want_h, 1e-14);
    assert_close("dy/dx", &g[1].to_f64s(), &want_x, 1e-14);

    // The output with respect to itself is one.
    assert_eq!(d(&y, &y, false).to_f64s(), vec![1.0]);
}

// ---- errors ------------------------------------------------------------------------------

#[test]
fn a_non_scalar_output_without_grad_outputs_is_an_error() {
    let x = leaf(&[1.0; 6], &[2, 3]);
    let outputs = [x.sum(), x.square()];
    let err = grad(&outputs, from_ref(&x), None, GradOptions::default()).unwrap_err();
    assert_eq!(
        err,
        TensorError::OutputNotScalar {
            index: 1,
            shape: [2, 3].into()
        }
    );
    assert_mentions(&err, &["output 1", "[2, 3]", "grad_outputs"]);

    let err = x.square().backward().err().unwrap();
    assert!(matches!(err, TensorError::OutputNotScalar { index: 0, .. }));
}

#[test]
fn grad_outputs_of_the_wrong_shape_are_an_error() {
    let x = leaf(&[1.0; 6], &[2, 3]);
    let v = Tensor::ones([3, 2]);
    let err = grad(&[x.exp()], &[x], Some(&[v]), GradOptions::default()).unwrap_err();
    assert_eq!(
        err,
        TensorError::GradOutputShape {
            index: 0,
            expected: [2, 3].into(),
            got: [3, 2].into()
        }
    );
    assert_mentions(&err, &["grad_outputs[0]", "[3, 2]", "[2, 3]"]);
}

#[test]
fn an_input_that_does_not_require_grad_is_an_error() {
    let x = leaf(&[1.0, 2.0], &[2]);
    let c = Tensor::<f64>::ones([4, 1]);
    let y = x.sum();
    let err = grad(&[y], &[x, c], None, GradOptions::default()).unwrap_err();
    assert_eq!(
        err,
        TensorError::InputWithoutGrad {
            index: 1,
            shape: [4, 1].into()
        }
    );
    assert_mentions(&err, &["input 1", "[4, 1]", "set_requires_grad"]);
}

#[test]
fn an_unused_input_is_an_error_unless_allowed() {
    let x = leaf(&[1.0, 2.0], &[2]);
    let unused = leaf(&[3.0, 4.0, 5.0], &[3]);
    let y = x.square().sum();
    let inputs = [x, unused];

    let err = grad(from_ref(&y), &inputs, None, RETAIN).unwrap_err();
    assert_eq!(
        err,
        TensorError::UnusedInput {
            index: 1,
            shape: [3].into()
        }
    );
    assert_mentions(&err, &["input 1", "[3]", "allow_unused"]);

    let allow = GradOptions::default().allow_unused(true);
    let g = grad(&[y], &inputs, None, allow).unwrap();
    assert_eq!(g[0].to_f64s(), vec![2.0, 4.0]);
    assert_eq!(g[1].to_f64s(), vec![0.0; 3]);
    assert!(!g[1].requires_grad());
}

#[test]
fn a_second_backward_through_a_released_graph_is_an_error() {
    let x = leaf(&[0.5, 1.5], &[2]);
    let y = x.exp().sum();
    let op = y.op_name().unwrap();
    assert!(y.backward().is_ok());
    let err = y.backward().err().unwrap();
    assert_eq!(err, TensorError::GraphFreed { op });
    assert_mentions(&err, &[&format!("`{op}`"), "retain_graph"]);

    // Through `grad`, and from an operation recorded after the graph was released.
    let err = try_d(&y, &x, GradOptions::default()).unwrap_err();
    assert_eq!(err, TensorError::GraphFreed { op });
    let later = &y * 2.0;
    assert_eq!(later.backward().err(), Some(TensorError::GraphFreed { op }));
    assert!(is_grad_enabled(), "a failed pass restores the grad mode");

    // The released graph still gives the gradient with respect to its own output.
    assert_eq!(d(&y, &y, false).to_f64s(), vec![1.0]);
}

#[test]
fn an_input_below_a_released_intermediate_is_a_graph_freed_error() {
    // h = e^x has had its graph released; z = 2 h is recorded afterwards. The pass reaches h
    // (an input) but cannot go on to x: that is a released graph, not an unused input, and
    // allow_unused must not turn it into a zero gradient.
    let x = leaf(&[0.5], &[1]);
    let h = x.exp();
    h.sum().backward().unwrap();
    let z = (&h * 2.0).sum();
    let inputs = [h.clone(), x];
    let err = grad(from_ref(&z), &inputs, None, RETAIN).unwrap_err();
    assert_eq!(err, TensorError::GraphFreed { op: "exp" });
    let err = grad(from_ref(&z), &inputs, None, RETAIN.allow_unused(true)).unwrap_err();
    assert_eq!(err, TensorError::GraphFreed { op: "exp" });

    // Nor may the pass return only part of the gradient of x when x is also reached by
    // another path: here dz/dx = h + x e^x, of which only h could be computed.
    let z = (&h * &inputs[1]).sum();
    let err = grad(from_ref(&z), &inputs, None, RETAIN).unwrap_err();
    assert_eq!(err, TensorError::GraphFreed { op: "exp" });

    // The intermediate alone is fine, and so is a tensor made after it, which cannot lie
    // below it.
    assert_eq!(d(&z, &h, false).to_f64s(), vec![0.5]);
    let w = leaf(&[3.0], &[1]);
    let z = (&h * &w).sum();
    let g = grad(from_ref(&z), &[h.clone(), w], None, RETAIN).unwrap();
    assert_eq!(g[0].to_f64s(), vec![3.0]);
    assert_eq!(g[1].to_f64s(), h.to_f64s());
}

#[test]
fn retain_graph_allows_a_second_backward() {
    let xs = [0.5, 1.5];
    let x = leaf(&xs, &[2]);
    let y = x.exp().sum();
    let first = try_d(&y, &x, RETAIN).unwrap();
    let second = try_d(&y, &x, RETAIN).unwrap();
    let third = y.backward().unwrap();
    let want: Vec<f64> = xs.iter().map(|a| a.exp()).collect();
    assert_eq!(first.to_f64s(), want);
    assert_eq!(second.to_f64s(), want);
    assert_eq!(third.get(&x).unwrap().to_f64s(), want);
    assert!(y.backward().is_err(), "backward() releases the graph");

    // create_graph retains by default.
    let y = x.exp().sum();
    let _ = try_d(&y, &x, GradOptions::create_graph()).unwrap();
    assert_eq!(y.backward().unwrap().get(&x).unwrap().to_f64s(), want);
}

// ---- grad mode, detach, set_requires_grad -------------------------------------------------

#[test]
fn no_grad_results_do_not_require_grad() {
    let x = leaf(&[0.5, 1.5], &[2]);
    let y = no_grad(|| {
        assert!(!is_grad_enabled());
        x.exp() * &x
    });
    assert!(is_grad_enabled());
    assert!(!y.requires_grad() && !y.has_grad_fn());
    assert!(!with_grad_mode(false, || x.square()).requires_grad());
    assert!(with_grad_mode(true, || x.square()).requires_grad());

    // A gradient without create_graph carries no graph.
    assert!(!d(&x.square().sum(), &x, false).requires_grad());
}

#[test]
fn grad_mode_guards_nest_and_restore_the_mode() {
    let x = leaf(&[0.5], &[1]);
    no_grad(|| {
        {
            let _on = GradModeGuard::new(true);
            assert!(is_grad_enabled());
            assert!(x.exp().requires_grad());
            no_grad(|| assert!(!is_grad_enabled()));
            assert!(is_grad_enabled());
        }
        assert!(!is_grad_enabled());
        assert!(!x.exp().requires_grad());
    });
    assert!(is_grad_enabled());
    {
        let _off = GradModeGuard::new(false);
        let _off_again = GradModeGuard::new(false);
        assert!(!is_grad_enabled());
    }
    assert!(is_grad_enabled());
}

#[test]
fn grad_inside_no_grad_follows_create_graph() {
    let x = leaf(&[0.5, -0.5], &[2]);
    let y = x.powi(3).sum();
    no_grad(|| {
        assert!(!try_d(&y, &x, RETAIN).unwrap().requires_grad());
        let g = try_d(&y, &x, GradOptions::create_graph()).unwrap();
        assert!(g.requires_grad(), "create_graph records inside no_grad");
        assert!(!is_grad_enabled());
        let _on = GradModeGuard::new(true);
        assert_eq!(d(&g.sum(), &x, false).to_f64s(), vec![3.0, -3.0]);
    });
}

#[test]
fn detach_stops_gradients() {
    let xs = [0.5, -2.0];
    let x = leaf(&xs, &[2]);
    let frozen = x.detach();
    assert!(!frozen.requires_grad() && !frozen.has_grad_fn());
    assert_eq!(frozen.to_f64s(), xs);

    // d/dx sum(stop(x) * x) = x, not 2x.
    let y = (&frozen * &x).sum();
    assert_eq!(d(&y, &x, false).to_f64s(), xs);
}

#[test]
fn set_requires_grad_makes_a_leaf_without_history() {
    let x = leaf(&[0.5, -2.0], &[2]);
    let h = x.exp().set_requires_grad(true);
    assert!(h.requires_grad() && !h.has_grad_fn());
    let y = h.square().sum();
    let g = try_d(&y, &h, RETAIN).unwrap();
    let want = [2.0 * 0.5f64.exp(), 2.0 * (-2.0f64).exp()];
    assert_close("dy/dh", &g.to_f64s(), &want, 1e-15);
    let err = try_d(&y, &x, GradOptions::default()).unwrap_err();
    assert!(matches!(err, TensorError::UnusedInput { index: 0, .. }));

    let off = x.set_requires_grad(false);
    assert!(!off.requires_grad() && !off.exp().requires_grad());
}

// ---- pruning -------------------------------------------------------------------------------

/// A one-hidden-layer energy E = sum(tanh(x W + b) v) of a batch x [5, 3].
struct Mlp {
    x: Tensor<f64>,
    w: Tensor<f64>,
    b: Tensor<f64>,
    v: Tensor<f64>,
}

impl Mlp {
    fn new(params_require_grad: bool) -> Self {
        let mut r = rng(11);
        let p = params_require_grad;
        Mlp {
            x: randn(&mut r, &[5, 3]).set_requires_grad(true),
            w: randn(&mut r, &[3, 4]).set_requires_grad(p),
            b: randn(&mut r, &[4]).set_requires_grad(p),
            v: randn(&mut r, &[4, 1]).set_requires_grad(p),
        }
    }

    fn energy(&self) -> Tensor<f64> {
        (&self.x.matmul(&self.w) + &self.b)
            .tanh()
            .matmul(&self.v)
            .sum()
    }

    /// dE/dx = ((1 - h^2) * v^T) W^T, by hand.
    fn grad_x(&self) -> Vec<f64> {
        let h = no_grad(|| (&self.x.matmul(&self.w) + &self.b).tanh());
        let (h, w, v) = (h.to_f64s(), self.w.to_f64s(), self.v.to_f64s());
        let mut out = vec![0.0; 15];
        for i in 0..5 {
            for j in 0..3 {
                out[i * 3 + j] = (0..4)
                    .map(|k| (1.0 - h[i * 4 + k].powi(2)) * v[k] * w[j * 4 + k])
                    .sum();
            }
        }
        out
    }

    fn leaves(&self) -> Vec<Tensor<f64>> {
        vec![
            self.x.clone(),
            self.w.clone(),
            self.b.clone(),
            self.v.clone(),
        ]
    }
}

#[test]
fn grad_with_respect_to_x_alone_is_right_when_parameters_require_grad() {
    let with = Mlp::new(true);
    let without = Mlp::new(false);
    let want = without.grad_x();
    assert_eq!(with.grad_x(), want);
    let x_only = d(&with.energy(), &with.x, false);
    let constants = d(&without.energy(), &without.x, false);
    assert_close("x only", &x_only.to_f64s(), &want, 1e-13);
    assert_close("constants", &constants.to_f64s(), &want, 1e-13);
    let options = GradOptions::default();
    let all = grad(&[with.energy()], &with.leaves(), None, options).unwrap();
    assert_close("all leaves", &all[0].to_f64s(), &want, 1e-13);
}

#[test]
fn a_pruned_first_pass_still_differentiates_with_respect_to_parameters() {
    // Score-matching shape: L = |dE/dx|^2, differentiated with respect to the weights.
    let mlp = Mlp::new(true);
    let loss = || d(&mlp.energy(), &mlp.x, true).square().sum();
    let leaves = mlp.leaves();
    let joint = grad(&[loss()], &leaves, None, GradOptions::default()).unwrap();
    for (k, leaf) in leaves.iter().enumerate() {
        let alone = d(&loss(), leaf, false);
        assert_close(
            &format!("leaf {k}"),
            &alone.to_f64s(),
            &joint[k].to_f64s(),
            1e-13,
        );
    }
}

#[test]
fn backward_gives_a_gradient_for_every_leaf() {
    let mlp = Mlp::new(true);
    let grads = mlp.energy().backward().unwrap();
    assert_eq!(grads.len(), 4);
    let energy = mlp.energy();
    for leaf in mlp.leaves() {
        let want = try_d(&energy, &leaf, RETAIN).unwrap().to_f64s();
        let got = grads.get(&leaf).expect("every leaf has a gradient");
        assert_eq!(got.dims(), leaf.dims());
        assert_close("backward vs grad", &got.to_f64s(), &want, 1e-14);
    }
    let constant = Tensor::<f64>::ones([2]).set_requires_grad(true);
    assert!(grads.get(&constant).is_none());
}

// ---- f32 -----------------------------------------------------------------------------------

/// The derivatives of `f` (elementwise) at [`POINTS`] to third order, in either precision.
fn derivatives_to_third_order<T: Float>(f: Elementwise<T>) -> Vec<Vec<f64>> {
    let x = Tensor::<T>::from_f64s(&POINTS, [6]).set_requires_grad(true);
    let mut out = Vec::new();
    let mut y = f(&x).sum();
    for _ in 0..3 {
        let options = GradOptions::create_graph();
        let g = grad(&[y], from_ref(&x), None, options).unwrap().remove(0);
        out.push(g.to_f64s());
        y = g.sum();
    }
    out
}

fn polynomial<T: Float>(x: &Tensor<T>) -> Tensor<T> {
    x.powi(3) - x.square() * 2.0 + x
}

fn exp_log_silu<T: Float>(x: &Tensor<T>) -> Tensor<T> {
    (x.square().add_scalar(1.0).log() * 2.0).exp() + x.silu()
}

#[test]
fn f32_derivatives_agree_with_f64_to_f32_precision() {
    // A dozen operations, each rounding to half an ulp (6e-8): 2e-5 relative is well above the
    // accumulated error and well below that of any wrong rule.
    let tol = 2e-5;
    let functions: [(Elementwise<f32>, Elementwise<f64>); 2] =
        [(polynomial, polynomial), (exp_log_silu, exp_log_silu)];
    for (single, double) in functions {
        let single = derivatives_to_third_order(single);
        let double = derivatives_to_third_order(double);
        for k in 0..3 {
            assert_close(&format!("order {}", k + 1), &single[k], &double[k], tol);
        }
    }

    // The score of a small network, through matrix products.
    let mut r = rng(31);
    let (x, w, v) = (
        randn(&mut r, &[8, 2]),
        randn(&mut r, &[2, 16]),
        randn(&mut r, &[16, 1]),
    );
    let score = |x: Tensor<f64>| d(&x.matmul(&w).silu().matmul(&v).sum(), &x, false).to_f64s();
    let score32 = {
        let (x, w, v) = (
            x.cast::<f32>().set_requires_grad(true),
            w.cast::<f32>(),
            v.cast::<f32>(),
        );
        let e = x.matmul(&w).silu().matmul(&v).sum();
        grad(&[e], &[x], None, GradOptions::default()).unwrap()[0].to_f64s()
    };
    assert_close(
        "f32 score",
        &score32,
        &score(x.set_requires_grad(true)),
        tol,
    );
}

// ---- deep graphs ---------------------------------------------------------------------------

const DEPTH: usize = 200_000;

/// y_{k+1} = tanh(y_k), DEPTH times, and dy_N/dy_0 by the chain rule in plain f64.
fn tanh_chain(x: &Tensor<f64>) -> (Tensor<f64>, Vec<f64>) {
    let mut y = x.clone();
    let mut slope: Vec<f64> = vec![1.0; x.numel()];
    for _ in 0..DEPTH {
        y = y.tanh();
        for (s, t) in slope.iter_mut().zip(y.data()) {
            *s *= 1.0 - t * t;
        }
    }
    (y, slope)
}

#[test]
fn a_very_deep_chain_builds_differentiates_and_drops() {
    let _heavy = heavy_lock();
    let x = leaf(&[0.5, -1.0], &[2]);

    // Dropped without being differentiated: the node destructor walks the chain.
    drop(tanh_chain(&x));

    // Differentiated with the graph kept, then dropped.
    let (y, slope) = tanh_chain(&x);
    let g = try_d(&y.sum(), &x, RETAIN).unwrap();
    assert_close("chain rule", &g.to_f64s(), &slope, 1e-9);
    drop(y);

    // backward() releases the graph as it goes.
    let (y, _) = tanh_chain(&x);
    let grads = y.sum().backward().unwrap();
    assert_close("backward", &grads.get(&x).unwrap().to_f64s(), &slope, 1e-9);
    drop(y);

    // With create_graph the gradient is itself a chain as deep, which drops too.
    let (y, _) = tanh_chain(&x);
    let g = d(&y.sum(), &x, true);
    assert!(g.requires_grad());
    assert_close("create_graph", &g.to_f64s(), &slope, 1e-9);
    drop(y);
    drop(g);
}

// ---- update_ -------------------------------------------------------------------------------

#[test]
fn update_on_a_unique_tensor_changes_it_in_place() {
    let mut w = leaf(&[1.0, 2.0], &[2]);
    let (id, ptr) = (w.id(), w.data().as_ptr());
    w.update_(|d| d[0] = 5.0);
    assert_eq!(w.to_f64s(), vec![5.0, 2.0]);
    assert_eq!((w.id(), w.data().as_ptr()), (id, ptr));
    assert!(w.requires_grad());

    // Once a graph that used it is gone, it is unique again.
    let _ = d(&w.exp().sum(), &w, true);
    w.update_(|d| d[1] = 7.0);
    assert_eq!(w.id(), id);
    assert_eq!(w.to_f64s(), vec![5.0, 7.0]);
}

#[test]
fn update_on_a_shared_tensor_copies() {
    let mut w = leaf(&[1.0, 2.0], &[2]);
    let id = w.id();

    // Another handle to the node.
    let other = w.clone();
    w.update_(|d| d[0] = 5.0);
    assert_ne!(w.id(), id);
    assert!(w.requires_grad() && !w.has_grad_fn());
    assert_eq!(other.to_f64s(), vec![1.0, 2.0]);
    assert_eq!(w.to_f64s(), vec![5.0, 2.0]);

    // Another tensor sharing the buffer.
    let frozen = w.detach();
    let id = w.id();
    w.update_(|d| d[1] = 7.0);
    assert_ne!(w.id(), id);
    assert_eq!(frozen.to_f64s(), vec![5.0, 2.0]);

    // A live graph keeps the values it was recorded with.
    let y = w.square().sum();
    let old = w.clone();
    w.update_(|d| d[0] = 0.0);
    assert_eq!(d(&y, &old, false).to_f64s(), vec![10.0, 14.0]);

    // A tensor with history becomes a leaf.
    let mut h = old.exp();
    h.update_(|d| d[0] = 1.0);
    assert!(h.requires_grad() && !h.has_grad_fn());
}
