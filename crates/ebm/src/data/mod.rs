//! Data sets: the built-in 2-D sets, generated in code from a seed.

pub mod toy2d;

pub use toy2d::Toy2d;
