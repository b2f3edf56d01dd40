//! Jacobian and Hessian products: `vjp`, `jvp`, `hvp` and `hessian_trace` against analytic
//! derivatives and finite differences, in f64.

mod common;

use common::*;
use ebm_tensor::Tensor;
use ebm_tensor::autodiff::{hessian_trace, hvp, jvp, vjp};

#[test]
fn hvp_matches_the_hessian_of_a_quadratic_plus_cubic() {
    // f(x) = 0.5 x^T A x + sum(c x^3): grad = A x + 3 c x^2, H = A + diag(6 c x).
    let n = 4;
    let mut r = rng(21);
    let bm = randn(&mut r, &[n, n]);
    let a = &bm + &bm.t();
    let c = randn(&mut r, &[n]);
    let x = randn(&mut r, &[n]).set_requires_grad(true);
    let v = randn(&mut r, &[n]);
    let row = x.reshape([1, n]);
    let f = (row.matmul(&a) * &row).sum() * 0.5 + (&c * &x.powi(3)).sum();

    let (g, hv) = hvp(&f, &x, &v, true).unwrap();
    let (am, cs, xs, vs) = (a.to_f64s(), c.to_f64s(), x.to_f64s(), v.to_f64s());
    let row_dot = |i: usize, u: &[f64]| (0..n).map(|j| am[i * n + j] * u[j]).sum::<f64>();
    let want_g: Vec<f64> = (0..n)
        .map(|i| row_dot(i, &xs) + 3.0 * cs[i] * xs[i] * xs[i])
        .collect();
    let want_hv: Vec<f64> = (0..n)
        .map(|i| row_dot(i, &vs) + 6.0 * cs[i] * xs[i] * vs[i])
        .collect();
    assert_close("gradient", &g.to_f64s(), &want_g, 1e-13);
    assert_close("H v", &hv.to_f64s(), &want_hv, 1e-13);

    // With create_graph the product differentiates again: d(u . H v)/dx = 6 c u v.
    let u = randn(&mut r, &[n]);
    let third = d(&(&hv * &u).sum(), &x, false);
    let us = u.to_f64s();
    let want: Vec<f64> = (0..n).map(|i| 6.0 * cs[i] * us[i] * vs[i]).collect();
    assert_close("third derivative", &third.to_f64s(), &want, 1e-13);
}

/// F(x) = tanh(W x) for x [4, 1], W [3, 4].
fn tanh_map(w: &Tensor<f64>, x: &Tensor<f64>) -> Tensor<f64> {
    w.matmul(x).tanh()
}

#[test]
fn jvp_and_vjp_match_the_jacobian_of_tanh_of_a_linear_map() {
    let mut r = rng(22);
    let w = randn(&mut r, &[3, 4]);
    let x = randn(&mut r, &[4, 1]).set_requires_grad(true);
    let v = randn(&mut r, &[4, 1]);
    let u = randn(&mut r, &[3, 1]);
    let y = tanh_map(&w, &x);

    // J = diag(1 - y^2) W.
    let scale: Vec<f64> = y.to_f64s().iter().map(|t| 1.0 - t * t).collect();
    let (wm, vs, us) = (w.to_f64s(), v.to_f64s(), u.to_f64s());
    let jv: Vec<f64> = (0..3)
        .map(|i| scale[i] * (0..4).map(|j| wm[i * 4 + j] * vs[j]).sum::<f64>())
        .collect();
    let ujt: Vec<f64> = (0..4)
        .map(|j| (0..3).map(|i| us[i] * scale[i] * wm[i * 4 + j]).sum())
        .collect();
    let got_jv = jvp(&y, &x, &v, false).unwrap();
    let got_vjp = vjp(&y, &x, &u, false).unwrap();
    assert_eq!(got_jv.dims(), &[3, 1]);
    assert_eq!(got_vjp.dims(), &[4, 1]);
    assert_close("J v", &got_jv.to_f64s(), &jv, 1e-13);
    assert_close("u^T J", &got_vjp.to_f64s(), &ujt, 1e-13);

    // J v against central differences of F along v.
    let eps = 1e-6;
    let shifted = |s: f64| tanh_map(&w, &(&x.detach() + &(&v * s))).to_f64s();
    let (hi, lo) = (shifted(eps), shifted(-eps));
    let fd: Vec<f64> = hi
        .iter()
        .zip(&lo)
        .map(|(a, b)| (a - b) / (2.0 * eps))
        .collect();
    assert_close("J v vs finite differences", &got_jv.to_f64s(), &fd, 1e-8);
}

/// Row energies f_i = sum_j e^{theta x_ij} + tanh(theta s_i) with s_i = sum_j x_ij, of a
/// batch x [n, d] and a scalar theta.
fn row_energies(x: &Tensor<f64>, theta: &Tensor<f64>) -> Tensor<f64> {
    (x * theta).exp().sum_axes(&[1], false) + (x.sum_axes(&[1], false) * theta).tanh()
}

/// The exact traces of the row Hessians, theta^2 (sum_j e^{theta x_ij} + d tanh''(theta s_i)).
fn exact_traces(x: &[f64], theta: f64, d: usize) -> Vec<f64> {
    x.chunks(d)
        .map(|row| {
            let t = (theta * row.iter().sum::<f64>()).tanh();
            let tanh2 = -2.0 * t * (1.0 - t * t);
            theta * theta * (row.iter().map(|v| (theta * v).exp()).sum::<f64>() + d as f64 * tanh2)
        })
        .collect()
}

/// Row traces of the Hessian with respect to x, differentiable in x and theta.
fn traces(x: &Tensor<f64>, theta: &Tensor<f64>) -> Tensor<f64> {
    let x = if x.requires_grad() {
        x.clone()
    } else {
        x.detach().set_requires_grad(true)
    };
    let energy = row_energies(&x, theta).sum();
    let gradient = d(&energy, &x, true);
    hessian_trace(&gradient, &x, true).unwrap()
}

#[test]
fn hessian_trace_is_the_exact_per_row_laplacian() {
    let (n, dim, theta) = (5, 3, 0.7);
    let mut r = rng(23);
    let x = uniform(&mut r, &[n, dim], -1.0, 1.0);
    let th = Tensor::scalar(theta).set_requires_grad(true);
    let got = traces(&x, &th);
    assert_eq!(got.dims(), &[n]);
    assert_close(
        "traces",
        &got.to_f64s(),
        &exact_traces(&x.to_f64s(), theta, dim),
        1e-13,
    );

    // d/dtheta of the summed traces, by hand.
    let dtheta = d(&got.sum(), &th, false).item();
    let want: f64 = x
        .to_f64s()
        .chunks(dim)
        .map(|row| {
            let s = row.iter().sum::<f64>();
            let t = (theta * s).tanh();
            let (t2, t3) = (
                -2.0 * t * (1.0 - t * t),
                -2.0 * (1.0 - t * t) * (1.0 - 3.0 * t * t),
            );
            let exps: f64 = row.iter().map(|v| (theta * v).exp()).sum();
            let x_exps: f64 = row.iter().map(|v| v * (theta * v).exp()).sum();
            2.0 * theta * exps
                + theta * theta * x_exps
                + dim as f64 * (2.0 * theta * t2 + theta * theta * s * t3)
        })
        .sum();
    assert_close("d trace / d theta", &[dtheta], &[want], 1e-12);
}

#[test]
fn hessian_trace_differentiates_against_finite_differences() {
    let mut r = rng(24);
    let x = uniform(&mut r, &[4, 3], -1.0, 1.0);
    let theta = Tensor::scalar(0.6);
    check(
        "trace wrt theta and x",
        &|v| traces(&v[1], &v[0]),
        &[theta.clone(), x.clone()],
        1,
    );

    // The output requires grad through x as well as theta (x is a leaf inside the function).
    check(
        "trace wrt theta, second order",
        &|v| traces(&x, &v[0]),
        &[theta],
        2,
    );
}

/// The smooth activations in f32 over their whole range, value and first two derivatives,
/// against f64 formulas: finite everywhere, and within a small absolute error where the exact
/// values are tiny. The sweep crosses the region x in (-88.7, -87.3), where e^-x is finite but
/// its reciprocal is subnormal (a sigmoid there once came out as -inf), and the matching
/// region of tanh (2x in (87.3, 88.7)). Lengths 16k + 7 reach both the vector kernels and
/// their scalar tails.
#[test]
fn smooth_activations_stay_finite_and_accurate_in_f32_everywhere() {
    use ebm_tensor::autodiff::{GradOptions, grad};
    let xs: Vec<f32> = (0..16 * 1500 + 7)
        .map(|i| -120.0 + i as f32 * 0.01)
        .collect();
    let n = xs.len();
    let x = Tensor::<f32>::from_vec(xs.clone(), [n]).set_requires_grad(true);
    type Exact = fn(f64) -> [f64; 3];
    let cases: [(&str, Tensor<f32>, Exact); 3] = [
        ("sigmoid", x.sigmoid(), |v| {
            let s = 1.0 / (1.0 + (-v).exp());
            [s, s * (1.0 - s), s * (1.0 - s) * (1.0 - 2.0 * s)]
        }),
        ("silu", x.silu(), |v| {
            let s = 1.0 / (1.0 + (-v).exp());
            let d1 = s + v * s * (1.0 - s);
            [v * s, d1, s * (1.0 - s) * (2.0 + v * (1.0 - 2.0 * s))]
        }),
        ("tanh", x.tanh(), |v| {
            let t = v.tanh();
            [t, 1.0 - t * t, -2.0 * t * (1.0 - t * t)]
        }),
    ];
    for (name, y, exact) in cases {
        let d1 = grad(
            &[y.sum()],
            std::slice::from_ref(&x),
            None,
            GradOptions::create_graph(),
        )
        .unwrap();
        let d2 = grad(
            &[d1[0].sum()],
            std::slice::from_ref(&x),
            None,
            GradOptions::default(),
        )
        .unwrap();
        for (order, got) in [y.data(), d1[0].data(), d2[0].data()]
            .into_iter()
            .enumerate()
        {
            for (i, &g) in got.iter().enumerate() {
                let want = exact(xs[i] as f64)[order];
                // f32 rounding of values of size up to |x| (SiLU) and of the inputs themselves:
                // 1e-5 relative plus 1e-6 absolute is far above rounding and far below any
                // wrong branch (which is off by O(1) or non-finite).
                let tol = 1e-5 * want.abs().max(1.0) + 1e-6;
                assert!(
                    g.is_finite() && (g as f64 - want).abs() <= tol,
                    "{name} derivative {order} at x = {}: {g} vs {want}",
                    xs[i]
                );
            }
        }
    }
}
