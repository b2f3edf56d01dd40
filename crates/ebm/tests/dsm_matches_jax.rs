//! The denoising score-matching loss of the `dsm-mlp` network (2-128-128-1, SiLU) and its
//! gradient with respect to every weight, against JAX's values in float64.
//!
//! Weights, data and noise come from the closed-form patterns of
//! `fixtures/make_dsm_mlp_fixture.py`, which wrote `fixtures/dsm_mlp_f64.bin` with JAX.

use ebm::objective::score_matching::denoising_score_matching_with_noise;
use ebm_tensor::Tensor;
use ebm_tensor::autodiff::{GradOptions, grad};

const SIZES: [usize; 4] = [2, 128, 128, 1];
const N: usize = 32;
const SIGMA: f64 = 0.1;

/// scale * sin(a k + b) over the row-major index k, as `pattern` in the script.
fn pattern(dims: &[usize], a: f64, b: f64, scale: f64) -> Tensor<f64> {
    let n: usize = dims.iter().product();
    let values: Vec<f64> = (0..n).map(|k| scale * (a * k as f64 + b).sin()).collect();
    Tensor::from_vec(values, dims)
}

fn fixture() -> Vec<f64> {
    let bytes = include_bytes!("fixtures/dsm_mlp_f64.bin");
    bytes
        .chunks_exact(8)
        .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
        .collect()
}

#[test]
fn dsm_loss_and_weight_gradients_match_jax_to_1e_10() {
    let mut params = Vec::new();
    for layer in 0..3 {
        let (i, o) = (SIZES[layer], SIZES[layer + 1]);
        let bound = 1.0 / (i as f64).sqrt();
        let l = layer as f64;
        params.push(pattern(&[i, o], 0.37 + 0.11 * l, 0.1, bound).set_requires_grad(true));
        params.push(pattern(&[o], 0.53 + 0.07 * l, 0.2, bound).set_requires_grad(true));
    }
    let energy = |x: &Tensor<f64>| {
        let mut h = x.clone();
        for (layer, pair) in params.chunks(2).enumerate() {
            h = &h.matmul(&pair[0]) + &pair[1];
            if layer < 2 {
                h = h.silu();
            }
        }
        h.reshape([x.dim(0)])
    };
    let x = pattern(&[N, 2], 0.7, 0.0, 2.0);
    let z = pattern(&[N, 2], 1.3, 0.5, 1.0);

    let loss = denoising_score_matching_with_noise(&energy, &x, &z, SIGMA).unwrap();
    let options = GradOptions::default().allow_unused(true);
    let grads = grad(std::slice::from_ref(&loss), &params, None, options).unwrap();

    // Both sides compute in f64 with the same operations in different orders, so they differ
    // by rounding only: about 1e-15 relative per operation, far inside 1e-10. A wrong rule
    // (even one wrong second derivative of SiLU) shifts the gradients by orders more.
    let expected = fixture();
    let ours: Vec<f64> = std::iter::once(loss.item())
        .chain(grads.iter().flat_map(|g| g.to_f64s()))
        .collect();
    assert_eq!(ours.len(), expected.len(), "fixture length");
    let scale = expected.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    for (i, (a, b)) in ours.iter().zip(&expected).enumerate() {
        let tolerance = 1e-10 * b.abs().max(1e-3 * scale);
        assert!(
            (a - b).abs() <= tolerance,
            "entry {i}: ours {a:e}, JAX {b:e}"
        );
    }
}
