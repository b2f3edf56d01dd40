//! Dense CPU tensors in `f32` and `f64` with reverse-mode automatic differentiation that can
//! differentiate its own gradients, to any order.
//!
//! This is the bottom layer of `ebm`, a toolkit for energy-based models, and knows nothing of
//! them: it supplies what their training needs, which is mostly gradients of functions of
//! gradients. Score matching, for example, trains an energy E through its score -grad_x E.
//!
//! # Quick start
//! The denoising score-matching loss of a one-layer energy and its gradient with respect to the
//! weights:
//! ```
//! use ebm_tensor::{Tensor, autodiff::{grad, GradOptions}};
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let w = Tensor::<f64>::randn([2, 8], &mut rng).set_requires_grad(true);
//! let v = Tensor::<f64>::randn([8, 1], &mut rng).set_requires_grad(true);
//! let energy = |x: &Tensor<f64>| x.matmul(&w).silu().matmul(&v).sum();
//!
//! // Perturb data, take the score -grad_x E with its graph, and compare with the target.
//! let (x, sigma) = (Tensor::<f64>::randn([16, 2], &mut rng), 0.1);
//! let z = Tensor::<f64>::randn([16, 2], &mut rng);
//! let noisy = (&x + &z.mul_scalar(sigma)).set_requires_grad(true);
//! let score = -&grad(&[energy(&noisy)], &[noisy.clone()], None, GradOptions::create_graph())
//!     .unwrap()[0];
//! let loss = (&score + &z.mul_scalar(1.0 / sigma)).square().sum_axes(&[1], false).mean() * 0.5;
//! let grads = loss.backward().unwrap();
//! assert_eq!(grads.get(&w).unwrap().dims(), &[2, 8]);
//! ```
//!
//! # Threads
//! Large kernels split their work over rayon's threads in fixed-size chunks, so results do not
//! depend on the number of threads. Run a training loop inside [`with_threads`] (or your own
//! rayon pool's `install`): kernels called from a pool thread share the work with the caller,
//! while kernels called from outside hand it over and wait, which costs microseconds per
//! operation.
//!
//! # Conventions
//! Shapes are row-major and batch-first. Operations panic on shape mismatches (a programmer
//! error) with the shapes in the message; fallible constructors and [`autodiff::grad`] return
//! [`TensorError`]. Gradients are checked against finite differences by [`check`].

#![deny(missing_docs)]

pub mod autodiff;
pub mod check;
mod error;
mod float;
mod kernels;
pub mod ops;
mod shape;
mod tensor;
mod threads;

pub use error::TensorError;
pub use float::{DType, Float};
pub use ops::{Conv2dOptions, Smooth};
pub use shape::Shape;
pub use tensor::Tensor;
pub use threads::{sequential, with_threads};
