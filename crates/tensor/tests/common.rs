//! Helpers shared by the gradient-check suites: seeded random inputs and a check wrapper.

#![allow(dead_code)]

use ebm_tensor::Tensor;
use ebm_tensor::check::{CheckOptions, TestFn, check_gradients};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

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
