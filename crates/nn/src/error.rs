//! The error type of the crate, and the report of tensors that do not match a store.

use ebm_tensor::TensorError;
use std::fmt;
use std::path::PathBuf;

/// What can go wrong when building layers, stepping optimisers, or reading and writing weights.
///
/// Shape mismatches inside a forward pass are programmer errors and panic (as in
/// `ebm-tensor`); these variants are for what a caller can check and recover from. Each message
/// names the offending values and says how to fix the problem.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NnError {
    /// A configuration value is out of its range.
    #[error("invalid {what}: got {value}, expected {expected}")]
    InvalidConfig {
        /// The setting, such as `"Adam lr"`.
        what: String,
        /// The value supplied, printed.
        value: String,
        /// The accepted range, in words.
        expected: String,
    },

    /// A name is already taken in a store or a set of named tensors.
    #[error(
        "the name `{name}` is already taken; give the layer another prefix or remove the duplicate"
    )]
    DuplicateName {
        /// The name.
        name: String,
    },

    /// A name cannot be used for a tensor.
    #[error(
        "`{name}` cannot name a tensor: {reason}; use non-empty names of printable ASCII without spaces, such as `energy.0.weight`"
    )]
    InvalidName {
        /// The name.
        name: String,
        /// Why not.
        reason: &'static str,
    },

    /// A name is not in the store.
    #[error("no tensor named `{name}` in the store; the store holds: {known}")]
    UnknownName {
        /// The name asked for.
        name: String,
        /// The names the store holds, comma-separated (cut after 20).
        known: String,
    },

    /// A tensor given for a name has another shape than the one there.
    #[error(
        "`{name}` has shape {expected:?} but the new value has shape {found:?}; pass a tensor of shape {expected:?}"
    )]
    ShapeMismatch {
        /// The name.
        name: String,
        /// The shape in the store.
        expected: Vec<usize>,
        /// The shape supplied.
        found: Vec<usize>,
    },

    /// Gradients were given as a list whose length is not the number of parameters.
    #[error(
        "got {found} gradients for {expected} parameters; pass one per parameter, in the order of `ParamStore::tensors()`"
    )]
    GradCount {
        /// The number of parameters.
        expected: usize,
        /// The number of gradients.
        found: usize,
    },

    /// Named tensors (a file, or an optimiser state) do not match what they are loaded into.
    #[error("{0}")]
    Mismatch(Box<MismatchReport>),

    /// A tensor in a file has another element type than the store.
    #[error(
        "`{name}` in {path} is {found}, the store holds {expected}; build the store with element type {found}, or read the file with `read_safetensors::<{found}>` and `cast` the tensors"
    )]
    DTypeMismatch {
        /// The file.
        path: PathBuf,
        /// The tensor's name.
        name: String,
        /// The store's element type.
        expected: String,
        /// The file's element type.
        found: String,
    },

    /// The global gradient norm is NaN or infinite.
    #[error(
        "the gradient norm is {norm} (not finite); non-finite gradients in: {params:?}. Lower the learning rate, check the loss for overflow, or clip the inputs"
    )]
    NonFiniteGradNorm {
        /// The norm that was computed.
        norm: f64,
        /// The parameters whose gradient holds a NaN or an infinity.
        params: Vec<String>,
    },

    /// A file could not be read or written.
    #[error("cannot {op} {path}: {source}")]
    Io {
        /// What was being done (`"write"`, `"read"`, `"rename onto"`).
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },

    /// A file is not a valid safetensors file, or the tensors cannot be encoded as one.
    #[error("{path} is not valid safetensors: {source}; write it again with `save_safetensors`")]
    Format {
        /// The file.
        path: PathBuf,
        /// The decoder's error.
        source: safetensors::SafeTensorError,
    },

    /// Differentiation failed.
    #[error(transparent)]
    Tensor(#[from] TensorError),
}

impl NnError {
    /// An [`NnError::InvalidConfig`] from displayable parts.
    pub(crate) fn config(what: &str, value: impl fmt::Display, expected: &str) -> Self {
        NnError::InvalidConfig {
            what: what.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        }
    }
}

/// A tensor whose shape differs from the one expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShapeProblem {
    /// The tensor's name.
    pub name: String,
    /// The shape the destination holds.
    pub expected: Vec<usize>,
    /// The shape found.
    pub found: Vec<usize>,
}

/// Every difference between a set of named tensors and the destination they are loaded into.
///
/// Reported all at once so that one error shows the whole picture (usually: the file was
/// written by another architecture).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MismatchReport {
    /// What was being loaded, such as `"weights from run/checkpoint.safetensors"`.
    pub source: String,
    /// Names the destination holds but the source lacks, with their expected shapes.
    pub missing: Vec<(String, Vec<usize>)>,
    /// Names the source holds but the destination does not know, with their shapes.
    pub unexpected: Vec<(String, Vec<usize>)>,
    /// Names in both, with different shapes.
    pub wrong_shape: Vec<ShapeProblem>,
    /// What to do about it.
    pub hint: String,
}

impl MismatchReport {
    /// Whether nothing differs.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.wrong_shape.is_empty()
    }

    /// `Ok(())` when nothing differs, otherwise this report as an error.
    pub(crate) fn into_result(self) -> Result<(), NnError> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(NnError::Mismatch(Box::new(self)))
        }
    }
}

impl fmt::Display for MismatchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} do not match:", self.source)?;
        if !self.missing.is_empty() {
            write!(f, "\n  missing ({}):", self.missing.len())?;
            for (name, shape) in &self.missing {
                write!(f, "\n    {name} (expected shape {shape:?})")?;
            }
        }
        if !self.unexpected.is_empty() {
            write!(f, "\n  unexpected ({}):", self.unexpected.len())?;
            for (name, shape) in &self.unexpected {
                write!(f, "\n    {name} (shape {shape:?})")?;
            }
        }
        if !self.wrong_shape.is_empty() {
            write!(f, "\n  wrong shape ({}):", self.wrong_shape.len())?;
            for p in &self.wrong_shape {
                write!(
                    f,
                    "\n    {} (expected {:?}, found {:?})",
                    p.name, p.expected, p.found
                )?;
            }
        }
        write!(f, "\n{}", self.hint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mismatch_report_lists_every_problem() {
        let report = MismatchReport {
            source: "weights from w.safetensors".into(),
            missing: vec![("a.weight".into(), vec![2, 3])],
            unexpected: vec![("b.bias".into(), vec![4])],
            wrong_shape: vec![ShapeProblem {
                name: "c.weight".into(),
                expected: vec![1, 2],
                found: vec![2, 1],
            }],
            hint: "build the same architecture".into(),
        };
        let text = NnError::Mismatch(Box::new(report)).to_string();
        for needle in [
            "a.weight",
            "[2, 3]",
            "b.bias",
            "c.weight",
            "found [2, 1]",
            "same",
        ] {
            assert!(text.contains(needle), "{needle} missing from: {text}");
        }
    }

    #[test]
    fn empty_report_is_ok() {
        assert!(MismatchReport::default().into_result().is_ok());
    }
}
