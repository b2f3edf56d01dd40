//! The error type of the crate.

use ebm_nn::NnError;
use ebm_tensor::TensorError;

/// What can go wrong in energies, samplers and objectives.
///
/// Shape mismatches that are programmer errors panic with a message (as in `ebm-tensor`);
/// these variants are for what a caller can check and recover from. Each message names the
/// offending value and says how to fix the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is out of its range.
    #[error("invalid {what}: got {value}, expected {expected}")]
    InvalidConfig {
        /// The setting, such as `"Langevin step_size"`.
        what: String,
        /// The value supplied, printed.
        value: String,
        /// The accepted range, in words.
        expected: String,
    },

    /// An input has the wrong shape for the energy, sampler or buffer it is given to.
    #[error("{what}: expected shape {expected}, got {found:?}")]
    Shape {
        /// What was being done.
        what: String,
        /// The expected shape, in words (such as `[n, 2]`).
        expected: String,
        /// The shape supplied.
        found: Vec<usize>,
    },

    /// A checkpoint or a saved state cannot be read back.
    #[error("cannot restore {what}: {reason}")]
    Restore {
        /// What was being restored, such as `"replay buffer"`.
        what: String,
        /// Why not, and what to do.
        reason: String,
    },

    /// Training produced a non-finite quantity; nothing was updated at that step.
    #[error("training diverged at step {step}: the {quantity} is {value}; {hint}")]
    Diverged {
        /// The step (counting from 1).
        step: u64,
        /// What went non-finite, such as `"loss"`.
        quantity: String,
        /// Its value.
        value: f64,
        /// The likely fix.
        hint: String,
    },

    /// A data file (or built-in data set) cannot be used: missing, truncated, malformed,
    /// non-finite values, an unsupported type, or the wrong shape for a model.
    #[error("{file}: {location}: {problem}; {fix}")]
    Data {
        /// The file (or data set) at fault.
        file: String,
        /// Where in it: `line 3, column 2` (CSV), `flat index 17` (NPY/IDX), `header`, ...
        location: String,
        /// What is wrong, with the offending value.
        problem: String,
        /// How to fix it.
        fix: String,
    },

    /// An error of the tensor engine (a graph freed too early, an unsupported operation).
    #[error(transparent)]
    Tensor(#[from] TensorError),

    /// An error of the layer crate (building layers, reading weights).
    #[error(transparent)]
    Nn(#[from] NnError),
}

impl Error {
    /// An [`Error::InvalidConfig`].
    pub fn config(
        what: impl Into<String>,
        value: impl ToString,
        expected: impl Into<String>,
    ) -> Self {
        Error::InvalidConfig {
            what: what.into(),
            value: value.to_string(),
            expected: expected.into(),
        }
    }
}

impl Error {
    /// An [`Error::Data`].
    pub fn data(
        file: impl std::fmt::Display,
        location: impl Into<String>,
        problem: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Error::Data {
            file: file.to_string(),
            location: location.into(),
            problem: problem.into(),
            fix: fix.into(),
        }
    }
}

/// `Ok(())` when `value` is finite and positive, else an [`Error::InvalidConfig`] naming `what`.
pub(crate) fn check_positive(what: &str, value: f64) -> Result<(), Error> {
    if value.is_finite() && value > 0.0 {
        Ok(())
    } else {
        Err(Error::config(what, value, "a finite number > 0"))
    }
}

/// `Ok(())` when `value` is finite and at least zero, else an [`Error::InvalidConfig`].
pub(crate) fn check_non_negative(what: &str, value: f64) -> Result<(), Error> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::config(what, value, "a finite number >= 0"))
    }
}
