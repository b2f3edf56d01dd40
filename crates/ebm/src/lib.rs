//! Energy-based models: densities known up to their normaliser, p(x) = exp(-E(x)) / Z.
//!
//! Sign convention, everywhere: the energy is E(x) = -log p(x) + const (lower is more likely),
//! and the score is s(x) = -grad_x E(x). An energy maps a batch `[n, ...]` to energies `[n]`.
//!
//! This crate grows with the project's issues: today it holds the built-in 2-D data and the
//! score-matching losses that the benchmarks run; samplers, the other objectives, evaluation
//! and the training loop follow.
//!
//! # Quick start
//! The denoising score-matching loss of a small energy on the `8gaussians` set, and its
//! gradient with respect to the energy's weights:
//! ```
//! use ebm::{data::toy2d::eight_gaussians, objective::score_matching::denoising_score_matching};
//! use ebm_tensor::Tensor;
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let w = Tensor::<f64>::randn([2, 16], &mut rng).set_requires_grad(true);
//! let v = Tensor::<f64>::randn([16, 1], &mut rng).set_requires_grad(true);
//! let energy = |x: &Tensor<f64>| x.matmul(&w).silu().matmul(&v).reshape([x.dim(0)]);
//!
//! let x = eight_gaussians::<f64, _>(256, &mut rng);
//! let loss = denoising_score_matching(&energy, &x, 0.1, &mut rng).unwrap();
//! let grads = loss.backward().unwrap();
//! assert_eq!(grads.get(&w).unwrap().dims(), &[2, 16]);
//! ```

#![deny(missing_docs)]

pub mod data;
pub mod energy;
mod error;
pub mod objective;
pub mod sampler;

pub use error::Error;
