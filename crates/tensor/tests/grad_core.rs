//! First-, second- and third-order checks of arithmetic, elementwise functions, reductions,
//! matrix products and layout operations against finite differences in f64.

// `&[x.clone()]` reads better than `std::slice::from_ref(&x)` in these tables of checks.
#![allow(clippy::cloned_ref_to_slice_refs)]

mod common;

use common::{check, randn, random_dims, rng, uniform};
use ebm_tensor::{Shape, Tensor};

/// Shapes that broadcast against each other, in both directions.
const BROADCAST_PAIRS: &[(&[usize], &[usize])] = &[
    (&[3, 4], &[3, 4]),
    (&[3, 4], &[4]),
    (&[3, 1], &[1, 4]),
    (&[2, 3, 4], &[3, 1]),
    (&[4], &[2, 3, 4]),
    (&[], &[2, 3]),
];

#[test]
fn arithmetic_with_broadcasting_to_third_order() {
    let mut r = rng(1);
    for &(a, b) in BROADCAST_PAIRS {
        let x = randn(&mut r, a);
        let y = uniform(&mut r, b, 0.5, 2.0);
        check("add", &|v| &v[0] + &v[1], &[x.clone(), y.clone()], 3);
        check("sub", &|v| &v[0] - &v[1], &[x.clone(), y.clone()], 3);
        check("mul", &|v| &v[0] * &v[1], &[x.clone(), y.clone()], 3);
        check("div", &|v| &v[0] / &v[1], &[x.clone(), y.clone()], 3);
        check(
            "div reversed",
            &|v| &v[1] / &v[0].exp(),
            &[x.clone(), y.clone()],
            3,
        );
    }
}

#[test]
fn scalar_ops_and_negation_to_third_order() {
    let mut r = rng(2);
    let x = randn(&mut r, &[3, 2]);
    check(
        "affine",
        &|v| v[0].affine(-1.5, 0.3).square(),
        &[x.clone()],
        3,
    );
    check(
        "scalar operators",
        &|v| (&v[0] * 2.0 + 1.0) / 3.0 - 0.5,
        &[x.clone()],
        3,
    );
    check("neg", &|v| -(&v[0] * &v[0]), &[x.clone()], 3);
    check("rsub", &|v| v[0].rsub_scalar(2.0).powi(3), &[x], 3);
}

#[test]
fn elementwise_functions_to_third_order() {
    let mut r = rng(3);
    for rank in 0..=3 {
        let dims = random_dims(&mut r, rank, 4);
        let x = randn(&mut r, &dims);
        let pos = uniform(&mut r, &dims, 0.3, 2.0);
        check("exp", &|v| v[0].exp(), &[x.clone()], 3);
        check("log", &|v| v[0].log(), &[pos.clone()], 3);
        check("log1p", &|v| v[0].log1p(), &[pos.clone()], 3);
        check("sqrt", &|v| v[0].sqrt(), &[pos.clone()], 3);
        check("powf", &|v| v[0].powf(1.7), &[pos.clone()], 3);
        check("powi", &|v| v[0].powi(3), &[x.clone()], 3);
        check("powi negative", &|v| v[0].powi(-2), &[pos.clone()], 3);
        check("square", &|v| v[0].square(), &[x.clone()], 3);
        check("recip", &|v| v[0].recip(), &[pos.clone()], 3);
        check("tanh", &|v| v[0].tanh(), &[x.clone()], 3);
        check("sigmoid", &|v| v[0].sigmoid(), &[x.clone()], 3);
        check("softplus", &|v| v[0].softplus(), &[x.clone()], 3);
        check("silu", &|v| v[0].silu(), &[x.clone()], 3);
        check("elu", &|v| v[0].elu(0.8), &[x.clone()], 3);
    }
}

#[test]
fn piecewise_linear_functions_have_zero_second_derivative() {
    // Inputs kept away from the kinks at 0, where finite differences are meaningless.
    let x = Tensor::<f64>::from_f64s(&[-1.3, -0.4, 0.6, 2.1, -2.5, 0.9], [2, 3]);
    check("abs", &|v| v[0].abs(), &[x.clone()], 3);
    check("relu", &|v| v[0].relu(), &[x.clone()], 3);
    check("leaky_relu", &|v| v[0].leaky_relu(0.1), &[x.clone()], 3);
    check("relu times x", &|v| &v[0].relu() * &v[0], &[x.clone()], 3);
}

#[test]
fn reductions_to_third_order() {
    let mut r = rng(4);
    let x = randn(&mut r, &[3, 4, 2]);
    check("sum", &|v| v[0].square().sum(), &[x.clone()], 3);
    check("mean", &|v| v[0].powi(3).mean(), &[x.clone()], 3);
    for axes in [&[0isize][..], &[1], &[2], &[-1], &[0, 2], &[0, 1, 2]] {
        for keep in [false, true] {
            check(
                "sum_axes",
                &|v| v[0].silu().sum_axes(axes, keep),
                &[x.clone()],
                3,
            );
            check(
                "mean_axes",
                &|v| v[0].tanh().mean_axes(axes, keep),
                &[x.clone()],
                3,
            );
        }
    }
    for axis in [0isize, 1, 2, -1] {
        for keep in [false, true] {
            check(
                "max_axis",
                &|v| v[0].max_axis(axis, keep).square(),
                &[x.clone()],
                3,
            );
            check(
                "logsumexp",
                &|v| v[0].logsumexp(axis, keep),
                &[x.clone()],
                3,
            );
        }
        check("log_softmax", &|v| v[0].log_softmax(axis), &[x.clone()], 3);
        check("softmax", &|v| v[0].softmax(axis), &[x.clone()], 3);
    }
    check("max", &|v| v[0].max(), &[x.clone()], 3);
    check(
        "broadcast_to",
        &|v| v[0].broadcast_to(&Shape::new(&[2, 3, 4, 2])).silu(),
        &[x.clone()],
        3,
    );
    check(
        "sum_to",
        &|v| v[0].sum_to(&Shape::new(&[4, 1])).silu(),
        &[x],
        3,
    );
}

#[test]
fn matmul_plain_transposed_and_batched_to_third_order() {
    let mut r = rng(5);
    let (m, k, n, b) = (3, 4, 2, 2);
    for ta in [false, true] {
        for tb in [false, true] {
            let (am, bm) = (
                if ta { [k, m] } else { [m, k] },
                if tb { [n, k] } else { [k, n] },
            );
            let a2 = randn(&mut r, &am);
            let b2 = randn(&mut r, &bm);
            let a3 = randn(&mut r, &[b, am[0], am[1]]);
            let b3 = randn(&mut r, &[b, bm[0], bm[1]]);
            let f = move |v: &[Tensor<f64>]| v[0].matmul_t(&v[1], ta, tb).silu();
            check("matmul 2x2", &f, &[a2.clone(), b2.clone()], 3);
            check("matmul 3x3", &f, &[a3.clone(), b3.clone()], 3);
            check("matmul 2x3", &f, &[a2.clone(), b3.clone()], 3);
            check("matmul 3x2", &f, &[a3.clone(), b2.clone()], 3);
        }
    }
}

#[test]
fn linear_with_and_without_bias_to_third_order() {
    let mut r = rng(7);
    let (x, w, b) = (
        randn(&mut r, &[5, 3]),
        randn(&mut r, &[4, 3]),
        randn(&mut r, &[4]),
    );
    check(
        "linear",
        &|v| v[0].linear(&v[1], Some(&v[2])).silu(),
        &[x.clone(), w.clone(), b],
        3,
    );
    check(
        "linear without bias",
        &|v| v[0].linear(&v[1], None).silu(),
        &[x, w],
        3,
    );
}

#[test]
fn layout_operations_to_second_order() {
    let mut r = rng(6);
    let x = randn(&mut r, &[2, 3, 4]);
    check("reshape", &|v| v[0].reshape([4, 6]).silu(), &[x.clone()], 2);
    check(
        "permute",
        &|v| v[0].permute(&[2, 0, 1]).silu(),
        &[x.clone()],
        2,
    );
    check(
        "transpose",
        &|v| v[0].transpose(0, 2).silu(),
        &[x.clone()],
        2,
    );
    check("t", &|v| v[0].t().silu(), &[x.clone()], 2);
    check(
        "unsqueeze/squeeze",
        &|v| v[0].unsqueeze(1).silu().squeeze(1),
        &[x.clone()],
        2,
    );
    check("flatten_batch", &|v| v[0].flatten_batch().silu(), &[x], 2);
}
