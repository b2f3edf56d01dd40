//! Layers: linear, convolution, the MLP, and spectral normalisation of their weights.

mod conv;
mod linear;
mod mlp;
mod spectral;

pub use conv::{Conv2d, Conv2dConfig};
pub use linear::{Linear, LinearConfig};
pub use mlp::{Mlp, MlpConfig};
pub use spectral::{INIT_POWER_ITERATIONS, SpectralNorm, SpectralNormConfig};
