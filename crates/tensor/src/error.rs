//! Errors of tensor construction and of differentiation.

use crate::Shape;

/// What can go wrong when building tensors or asking for gradients.
///
/// Shape mismatches inside operations are programmer errors and panic with the offending
/// shapes; these variants are for what a caller can check and recover from.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum TensorError {
    /// A buffer's length does not match the shape it was given.
    #[error("a buffer of {len} elements cannot have shape {shape} ({} elements); pass a shape whose product is {len}", shape.numel())]
    DataLength {
        /// Number of elements supplied.
        len: usize,
        /// The requested shape.
        shape: Shape,
    },

    /// `grad` was called without `grad_outputs` on an output that is not a scalar.
    #[error(
        "output {index} has shape {shape}, not a single element; pass grad_outputs of that shape (ones for a sum), or reduce the output to a scalar first"
    )]
    OutputNotScalar {
        /// Position of the output in the list.
        index: usize,
        /// Its shape.
        shape: Shape,
    },

    /// A `grad_outputs` entry has a different shape from its output.
    #[error("grad_outputs[{index}] has shape {got} but output {index} has shape {expected}")]
    GradOutputShape {
        /// Position in the list.
        index: usize,
        /// The output's shape.
        expected: Shape,
        /// The shape supplied.
        got: Shape,
    },

    /// A gradient was asked with respect to a tensor that does not require one.
    #[error(
        "input {index} (shape {shape}) does not require grad; create it with `.set_requires_grad(true)` before using it"
    )]
    InputWithoutGrad {
        /// Position of the input in the list.
        index: usize,
        /// Its shape.
        shape: Shape,
    },

    /// An input is not reachable from the outputs and `allow_unused` was false.
    #[error(
        "input {index} (shape {shape}) was not used to compute the outputs; set `allow_unused` to get zeros for it"
    )]
    UnusedInput {
        /// Position of the input in the list.
        index: usize,
        /// Its shape.
        shape: Shape,
    },

    /// The graph through an operation was released by an earlier `grad` call.
    #[error(
        "the graph through `{op}` was freed by an earlier backward pass; pass `retain_graph: true` to the first call if you need to differentiate twice"
    )]
    GraphFreed {
        /// The operation whose saved graph is gone.
        op: &'static str,
    },
}
