//! The recorded graph: what each operation saves, the grad-mode switch, and how graphs free.

use crate::tensor::Node;
use crate::{Float, Tensor};
use smallvec::SmallVec;
use std::cell::Cell;
use std::sync::Arc;

/// What a backward rule sees: the operation's output, the gradient flowing into it, its inputs,
/// and which inputs need a gradient at all (skip the others: their result is ignored).
pub(crate) struct Ctx<'a, T: Float> {
    pub out: &'a Tensor<T>,
    pub grad: &'a Tensor<T>,
    pub inputs: &'a [Tensor<T>],
    pub needs: &'a [bool],
}

impl<T: Float> Ctx<'_, T> {
    /// The `i`-th input.
    pub fn input(&self, i: usize) -> &Tensor<T> {
        &self.inputs[i]
    }

    /// Whether input `i` needs a gradient.
    pub fn needs(&self, i: usize) -> bool {
        self.needs[i]
    }
}

pub(crate) type Rule<T> = dyn Fn(&Ctx<'_, T>) -> Vec<Option<Tensor<T>>> + Send + Sync;

/// A recorded operation: its name, its inputs, and its backward rule.
pub(crate) struct GradFn<T: Float> {
    pub name: &'static str,
    pub inputs: SmallVec<[Tensor<T>; 2]>,
    pub rule: Box<Rule<T>>,
}

/// A node's link to the operation that made it.
pub(crate) enum GradFnSlot<T: Float> {
    /// A leaf.
    None,
    /// Made by a recorded operation.
    Live(Arc<GradFn<T>>),
    /// Made by a recorded operation whose graph a backward pass released.
    Freed(&'static str),
}

impl<T: Float> Drop for Node<T> {
    /// Frees the graph behind this node without recursion, so that a chain of a million
    /// operations drops as safely as a short one.
    fn drop(&mut self) {
        let slot = self.grad_fn.get_mut().unwrap_or_else(|e| e.into_inner());
        let GradFnSlot::Live(first) = std::mem::replace(slot, GradFnSlot::None) else {
            return;
        };
        let mut stack = vec![first];
        while let Some(grad_fn) = stack.pop() {
            let Ok(grad_fn) = Arc::try_unwrap(grad_fn) else {
                continue;
            };
            for input in grad_fn.inputs {
                if let Ok(mut node) = Arc::try_unwrap(input.0) {
                    let slot = node.grad_fn.get_mut().unwrap_or_else(|e| e.into_inner());
                    if let GradFnSlot::Live(next) = std::mem::replace(slot, GradFnSlot::None) {
                        stack.push(next);
                    }
                }
            }
        }
    }
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether operations on this thread record the graph (true unless inside [`no_grad`]).
pub fn is_grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Turns graph recording on or off for this thread until the guard drops.
#[must_use = "recording is restored when the guard drops"]
pub struct GradModeGuard {
    previous: bool,
}

impl GradModeGuard {
    /// Sets the grad mode of this thread to `enabled` until the guard drops.
    pub fn new(enabled: bool) -> Self {
        let previous = GRAD_ENABLED.with(|g| g.replace(enabled));
        GradModeGuard { previous }
    }
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Runs `f` without recording the graph: its results require no gradient. Use it for
/// sampling chains, evaluation and parameter updates.
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = GradModeGuard::new(false);
    f()
}

/// Runs `f` with graph recording on or off.
pub fn with_grad_mode<R>(enabled: bool, f: impl FnOnce() -> R) -> R {
    let _guard = GradModeGuard::new(enabled);
    f()
}
