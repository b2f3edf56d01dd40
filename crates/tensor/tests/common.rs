//! Helpers shared by the gradient-check suites: seeded random inputs and a check wrapper.

#![allow(dead_code)]

use ebm_tensor::autodiff::{GradOptions, grad};
use ebm_tensor::check::{CheckOptions, TestFn, check_gradients};
use ebm_tensor::{Tensor, TensorError};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use std::slice::from_ref;

/// A seeded generator for one test.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// Standard normal entries of the given shape.
pub fn randn(rng: &mut StdRng, dims: &[usize]) -> Tensor<f64> {
    Tensor::randn(dims, rng)
}

/// Entries uniform in [low, high).
pub fn uniform(rng: &mut StdRng, dims: &[usize], low: f64, high: f64) -> Tensor<f64> {
    Tensor::rand_uniform(dims, low, high, rng)
}

/// A random shape of the given rank, extents in 1..=max.
pub fn random_dims(rng: &mut StdRng, rank: usize, max: usize) -> Vec<usize> {
    (0..rank).map(|_| rng.random_range(1..=max)).collect()
}

/// Checks derivatives up to `order`, panicking with the failure and `what`.
#[track_caller]
pub fn check(what: &str, f: &TestFn<'_>, inputs: &[Tensor<f64>], order: usize) {
    if let Err(e) = check_gradients(f, inputs, order, &CheckOptions::default()) {
        let shapes: Vec<String> = inputs.iter().map(|t| t.shape().to_string()).collect();
        panic!("{what} (inputs {}): {e}", shapes.join(", "));
    }
}

/// A leaf that requires grad.
pub fn leaf(values: &[f64], dims: &[usize]) -> Tensor<f64> {
    Tensor::from_f64s(values, dims).set_requires_grad(true)
}

/// d output / d input through [`grad`].
pub fn try_d(
    output: &Tensor<f64>,
    input: &Tensor<f64>,
    options: GradOptions,
) -> Result<Tensor<f64>, TensorError> {
    grad(from_ref(output), from_ref(input), None, options).map(|mut g| g.remove(0))
}

/// d output / d input, with or without the graph of the result.
pub fn d(output: &Tensor<f64>, input: &Tensor<f64>, create_graph: bool) -> Tensor<f64> {
    let options = GradOptions {
        create_graph,
        ..GradOptions::default()
    };
    try_d(output, input, options).unwrap()
}

/// Elementwise |got - want| <= tol * max(1, |want|).
#[track_caller]
pub fn assert_close(what: &str, got: &[f64], want: &[f64], tol: f64) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= tol * w.abs().max(1.0),
            "{what}: element {i} is {g:.15e}, expected {w:.15e}"
        );
    }
}
