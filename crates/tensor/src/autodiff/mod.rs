//! Reverse-mode automatic differentiation on a define-by-run graph.
//!
//! Every operation on tensors that require gradients records its inputs and a backward rule.
//! The rules are written with the same differentiable operations as the forward pass, so a
//! backward pass run with [`GradOptions::create_graph`] is itself recorded and can be
//! differentiated again: score matching differentiates through `-grad_x E`, exact score matching
//! through a Hessian trace.
//!
//! Memory: a tensor owns the operations behind it (reference counts; the graph has no cycles),
//! so the graph is freed as soon as the last tensor that reaches it is dropped.

mod backward;
mod derivatives;
pub(crate) mod graph;

pub use backward::{GradOptions, Gradients, grad};
pub use derivatives::{hessian_trace, hvp, jvp, vjp};
pub use graph::{GradModeGuard, is_grad_enabled, no_grad, with_grad_mode};
