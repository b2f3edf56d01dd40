//! Energy-based models: densities known up to their normaliser, p(x) = exp(-E(x)) / Z.
//!
//! Sign convention, everywhere: the energy is E(x) = -log p(x) + const (lower is more likely),
//! and the score is s(x) = -grad_x E(x). An energy maps a batch `[n, ...]` to energies `[n]`.
//!
//! What is here:
//! * [`energy`]: the [`energy::Energy`] trait (any closure is one), learnable energies that
//!   own their parameters and rebuild from checkpoints (MLP, convolutional, noise-conditional,
//!   Gaussian, Gaussian mixture, test landscapes, RBMs), and [`energy::save_energy`] /
//!   [`energy::load_energy`];
//! * [`sampler`]: batched Markov chains with BlackJAX's init/step split (unadjusted Langevin,
//!   MALA, HMC, dual-averaging warm-up, annealed Langevin, block Gibbs), the replay buffer of
//!   persistent training, and chain diagnostics (ESS, split R-hat);
//! * [`objective`]: the [`objective::Objective`] trait that every training method implements,
//!   and the methods themselves;
//! * [`train`]: the [`train::Trainer`] that drives any objective with any optimiser, stops on
//!   divergence without corrupting the model, reports metrics and writes checkpoints;
//! * [`eval`]: exact log-normalisers and NLL by quadrature (d <= 2), annealed importance
//!   sampling bounds on log Z in any dimension (forward and reverse), MMD between sample sets,
//!   and the Fisher divergence to a known score;
//! * [`data`]: the built-in 2-D sets, the digits and Fashion-MNIST image sets, loading of
//!   CSV, NPY and IDX files, and [`data::Dataset`] with minibatches, splits and image
//!   transforms.
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
//!
//! And samples from that energy, by 100 steps of 1,000 Langevin chains:
//! ```
//! # use ebm_tensor::Tensor;
//! # use rand::SeedableRng;
//! # let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! # let w = Tensor::<f64>::randn([2, 16], &mut rng);
//! # let v = Tensor::<f64>::randn([16, 1], &mut rng);
//! # let energy = |x: &Tensor<f64>| x.matmul(&w).silu().matmul(&v).reshape([x.dim(0)]);
//! use ebm::sampler::{Langevin, LangevinConfig, Sampler, run};
//!
//! let langevin = Langevin::new(LangevinConfig::new(0.01)).unwrap(); // noise sqrt(2 * 0.01)
//! let start = Tensor::rand_uniform([1000, 2], -4.0, 4.0, &mut rng);
//! let state = langevin.init(start, &energy).unwrap();
//! let (state, infos) = run(&langevin, &mut rng, state, &energy, 100).unwrap();
//! assert_eq!(state.position.dims(), &[1000, 2]);
//! assert_eq!(infos.iter().map(|i| i.n_divergent()).sum::<usize>(), 0);
//! ```

#![deny(missing_docs)]

pub mod data;
pub mod energy;
mod error;
pub mod eval;
pub mod objective;
pub mod sampler;
pub mod train;

pub use error::Error;
