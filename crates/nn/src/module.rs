//! The interface every layer shares: a forward pass over a store, and training-time state.

use crate::ParamStore;
use ebm_tensor::{Float, Tensor};

/// A layer or a network of layers whose tensors live in a [`ParamStore`].
///
/// A module holds the *names* of its tensors and its settings; the store holds the tensors.
/// So a forward pass borrows the store, an optimiser mutates it in between, and one store
/// can be evaluated from many threads at once.
///
/// Two passes:
/// * [`Module::forward`] reads the store and changes nothing: evaluation, sampling chains,
///   and any pass inside a training step that should not advance state.
/// * [`Module::forward_train`] first advances the state that training updates once per step
///   ([`Module::update_state`]: the power iteration of spectral normalisation), then runs
///   `forward`. For modules without such state the two are the same.
///
/// A training step that evaluates the energy on data and on samples calls `forward_train`
/// once (or `update_state` once) and `forward` for the other passes, so that every pass of a
/// step sees the same normalised weights.
pub trait Module<T: Float> {
    /// The output for input `x`, recording the graph as usual (wrap in
    /// [`ebm_tensor::autodiff::no_grad`] for evaluation without gradients).
    ///
    /// # Panics
    /// When `x` has the wrong shape for this module, or the store lacks one of its tensors
    /// (the module was built on another store): both programmer errors.
    fn forward(&self, store: &ParamStore<T>, x: &Tensor<T>) -> Tensor<T>;

    /// Advances the state that training updates once per step, without recording the graph.
    /// Does nothing by default.
    fn update_state(&self, store: &mut ParamStore<T>) {
        let _ = store;
    }

    /// [`Module::update_state`], then [`Module::forward`].
    fn forward_train(&self, store: &mut ParamStore<T>, x: &Tensor<T>) -> Tensor<T> {
        self.update_state(store);
        self.forward(store, x)
    }
}
