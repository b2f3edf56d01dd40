//! Normalising flows: invertible networks with an exact log-density, used as tractable noise
//! and samplers by the flow-based training methods of energy-based models.

mod coupling;
mod realnvp;

pub use coupling::{AffineCoupling, AffineCouplingConfig};
pub use realnvp::{CouplingMask, RealNvp, RealNvpConfig, standard_normal_log_prob};
