//! The differentiable operations, as methods of [`Tensor`](crate::Tensor).
//!
//! Each operation computes its result with a kernel and records a backward rule written with
//! other operations of this module, which is what lets gradients be differentiated again.

mod arith;
mod conv;
mod index;
mod layout;
mod matmul;
mod random;
mod reduce;
mod smooth;

pub use crate::kernels::smooth::Smooth;
pub use conv::Conv2dOptions;
