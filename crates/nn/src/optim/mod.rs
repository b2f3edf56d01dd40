//! Optimisers over a [`ParamStore`](crate::ParamStore), gradient clipping, learning-rate
//! schedules, and an exponential moving average of the weights.

mod adam;
mod clip;
mod ema;
mod schedule;
mod sgd;
mod slots;

pub use adam::{Adam, AdamConfig};
pub use clip::clip_grad_norm;
pub use ema::Ema;
pub use schedule::{Decay, LrSchedule, LrScheduleConfig};
pub use sgd::{Sgd, SgdConfig};

use crate::{NnError, ParamGrads, ParamStore, StateDict};
use ebm_tensor::Float;

/// An optimiser: updates the parameters of a store in place from their gradients.
///
/// Parameters stay leaves that require grad (the update goes through
/// [`Tensor::update_`](ebm_tensor::Tensor::update_), in place unless something else still
/// holds the tensor). Per-parameter state is keyed by parameter name, created at a
/// parameter's first step with a gradient, and exported by [`Optimizer::state_dict`] as named
/// tensors plus exact step counts, so that a run restored with
/// [`Optimizer::load_state_dict`] continues bit for bit.
pub trait Optimizer<T: Float> {
    /// One update of every parameter that has a gradient (those with `None` are left alone,
    /// their state too).
    ///
    /// # Panics
    /// When `grads` were collected from a store with other parameters (a programmer error).
    fn step(&mut self, store: &mut ParamStore<T>, grads: &ParamGrads<T>);

    /// The learning rate the next step uses.
    fn lr(&self) -> f64;

    /// Sets the learning rate, for schedules: `opt.set_lr(schedule.lr(opt.steps()))`.
    ///
    /// # Panics
    /// When `lr` is negative or not finite (schedules only produce valid rates).
    fn set_lr(&mut self, lr: f64);

    /// The number of steps taken (restored with the state).
    fn steps(&self) -> u64;

    /// The state as named tensors (`exp_avg.energy.0.weight`, ...) and metadata (the kind of
    /// optimiser, step counts as decimal strings).
    fn state_dict(&self) -> StateDict<T>;

    /// Replaces the state by `state`, checked against the parameters of `store`.
    ///
    /// # Errors
    /// [`NnError::Mismatch`] listing every missing, unexpected or mis-shaped tensor;
    /// [`NnError::InvalidConfig`] when the state belongs to another kind of optimiser or a
    /// count does not parse. The state is unchanged on error.
    fn load_state_dict(
        &mut self,
        store: &ParamStore<T>,
        state: &StateDict<T>,
    ) -> Result<(), NnError>;
}

/// Panics unless `grads` lines up with the parameters of `store`.
#[track_caller]
pub(crate) fn check_grads<T: Float>(store: &ParamStore<T>, grads: &ParamGrads<T>) {
    let same = grads.names.len() == store.len()
        && grads
            .names
            .iter()
            .zip(store.iter())
            .all(|(a, (b, _))| a == b);
    assert!(
        same,
        "the gradients were collected for parameters {:?} but the store holds {:?}; collect them with this store's `backward` or `grads_from`",
        grads.names,
        store.names()
    );
}

/// Panics unless `lr` is finite and >= 0.
#[track_caller]
pub(crate) fn check_lr(lr: f64) {
    assert!(
        lr.is_finite() && lr >= 0.0,
        "set_lr: the learning rate must be finite and >= 0, got {lr}"
    );
}

/// `Ok(x)` when `x` is finite and > 0.
pub(crate) fn positive(what: &str, x: f64) -> Result<f64, NnError> {
    if x.is_finite() && x > 0.0 {
        Ok(x)
    } else {
        Err(NnError::config(what, x, "finite and > 0"))
    }
}

/// `Ok(x)` when `x` is finite and >= 0.
pub(crate) fn non_negative(what: &str, x: f64) -> Result<f64, NnError> {
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(NnError::config(what, x, "finite and >= 0"))
    }
}

/// `Ok(x)` when `0 <= x < 1`.
pub(crate) fn unit_interval(what: &str, x: f64) -> Result<f64, NnError> {
    if (0.0..1.0).contains(&x) {
        Ok(x)
    } else {
        Err(NnError::config(what, x, "in [0, 1)"))
    }
}
