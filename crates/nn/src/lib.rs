//! Neural-network building blocks for `ebm`: parameters, layers, optimisers, weights on disk.
//!
//! The second layer of `ebm`, a toolkit for energy-based models, on top of `ebm-tensor`. An
//! energy network maps a batch `[n, d]` to energies; lower energy means more likely
//! (E(x) = -log p(x) + const, score = -grad_x E).
//!
//! # Quick start
//! One denoising-score-matching step of an MLP energy with Adam, then a checkpoint:
//! ```
//! use ebm_nn::{Activation, Adam, AdamConfig, Mlp, Module, Optimizer, ParamStore};
//! use ebm_nn::{StateDict, clip_grad_norm, load_safetensors, save_safetensors};
//! use ebm_tensor::{Tensor, autodiff::{GradOptions, grad}};
//! use rand::SeedableRng;
//!
//! let mut rng = rand::rngs::StdRng::seed_from_u64(0);
//! let mut store = ParamStore::<f32>::new();
//! let energy = Mlp::new(&mut store, "energy", &[2, 64, 64, 1], Activation::Silu, &mut rng)?;
//! let mut adam = Adam::new(AdamConfig { lr: 1e-3, ..AdamConfig::default() })?;
//!
//! // Loss: | -grad_x E(x + sigma z) + z / sigma |^2, averaged over the batch.
//! let (x, sigma) = (Tensor::<f32>::randn([128, 2], &mut rng), 0.1);
//! let z = Tensor::<f32>::randn([128, 2], &mut rng);
//! let noisy = (&x + &z.mul_scalar(sigma)).set_requires_grad(true);
//! let e = energy.forward_train(&mut store, &noisy).sum();
//! let grad_e = &grad(&[e], &[noisy], None, GradOptions::create_graph())?[0];
//! let loss = (&z.mul_scalar(1.0 / sigma) - grad_e).square().sum_axes(&[1], false).mean();
//!
//! // Gradients for every parameter, clipped, then one step.
//! let mut grads = store.backward(&loss)?;
//! let norm = clip_grad_norm(&mut grads, 10.0)?;
//! adam.step(&mut store, &grads);
//! assert!(norm.is_finite() && store.expect("energy.0.weight").requires_grad());
//!
//! // Weights and optimiser state in one file, written atomically.
//! let path = std::env::temp_dir().join(format!("ebm-nn-quick-{}.safetensors", std::process::id()));
//! let mut extras = StateDict::new();
//! extras.merge_prefixed("optim", adam.state_dict())?;
//! extras.metadata.insert("energy".into(), serde_json::to_string(energy.config())?);
//! save_safetensors(&path, &store, &extras)?;
//! let restored = load_safetensors(&path, &mut store)?;
//! adam.load_state_dict(&store, &restored.prefixed("optim"))?;
//! # std::fs::remove_file(&path)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Design
//! * A [`ParamStore`] holds every tensor by name (`energy.0.weight`), in insertion order;
//!   layers hold names and settings. [`Module::forward`] reads the store; optimisers and
//!   loading write it. Parameters are always leaves that require grad.
//! * Gradients come as [`ParamGrads`], one per parameter, from [`ParamStore::backward`],
//!   [`ParamStore::grad`] (to keep or differentiate the graph) or [`ParamStore::grads_from`].
//! * Layouts follow PyTorch (`Linear` weight `[out, in]`, `Conv2d` weight `[o, c, kh, kw]`,
//!   the same default initialisation), so weights move between the two unchanged.
//! * Optimiser and EMA state is a [`StateDict`]: named tensors plus exact counts in metadata,
//!   saved next to the weights, so that a resumed run continues bit for bit.
//! * Settings are validated once, by constructors that return [`NnError`]; a forward pass
//!   panics only on programmer errors (wrong input shape, a store without the layer's
//!   tensors).

#![deny(missing_docs)]

mod activation;
mod error;
mod flow;
mod grads;
mod init;
mod io;
mod layers;
mod module;
mod optim;
mod sharded;
mod state;
mod store;

pub use activation::Activation;
pub use error::{MismatchReport, NnError, ShapeProblem};
pub use flow::{
    AffineCoupling, AffineCouplingConfig, CouplingMask, RealNvp, RealNvpConfig,
    standard_normal_log_prob,
};
pub use grads::ParamGrads;
pub use init::{FanMode, Fans, Init};
pub use io::{
    FORMAT_VERSION, RESERVED_PREFIX, load_safetensors, read_safetensors, save_safetensors,
};
pub use layers::{
    Conv2d, Conv2dConfig, INIT_POWER_ITERATIONS, Linear, LinearConfig, Mlp, MlpConfig,
    SpectralNorm, SpectralNormConfig,
};
pub use module::Module;
pub use optim::{
    Adam, AdamConfig, Decay, Ema, LrSchedule, LrScheduleConfig, Optimizer, Sgd, SgdConfig,
    clip_grad_norm,
};
pub use sharded::sharded_backward;
pub use state::StateDict;
pub use store::{ParamStore, TensorKind};
