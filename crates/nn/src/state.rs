//! Named tensors plus string metadata: the saved form of optimiser and EMA state.

use crate::NnError;
use crate::store::validate_name;
use ebm_tensor::{Float, Tensor};
use std::collections::BTreeMap;

/// Named tensors and string metadata, sorted by name.
///
/// The saved form of everything besides the weights: optimiser moments, EMA weights, step
/// counts (as metadata strings, so that they stay exact whatever the element type). Sets from
/// several owners are combined under prefixes (`optim.`, `ema.`) and written next to the
/// weights by [`crate::save_safetensors`].
///
/// # Example
/// ```
/// use ebm_nn::StateDict;
/// use ebm_tensor::Tensor;
///
/// let mut optim = StateDict::<f32>::new();
/// optim.tensors.insert("exp_avg.w".into(), Tensor::zeros([2]));
/// optim.metadata.insert("step.w".into(), "3".into());
///
/// let mut extras = StateDict::new();
/// extras.merge_prefixed("optim", optim.clone()).unwrap();
/// assert!(extras.tensors.contains_key("optim.exp_avg.w"));
/// assert_eq!(extras.prefixed("optim"), optim);
/// ```
#[derive(Clone, Debug, Default)]
pub struct StateDict<T: Float = f32> {
    /// The tensors, by name.
    pub tensors: BTreeMap<String, Tensor<T>>,
    /// Strings, by key.
    pub metadata: BTreeMap<String, String>,
}

impl<T: Float> PartialEq for StateDict<T> {
    /// Equal names, shapes and bit-identical values; equal metadata.
    fn eq(&self, other: &Self) -> bool {
        let same_tensors = self.tensors.len() == other.tensors.len()
            && self
                .tensors
                .iter()
                .zip(&other.tensors)
                .all(|((a, x), (b, y))| {
                    a == b
                        && x.dims() == y.dims()
                        && x.data()
                            .iter()
                            .zip(y.data())
                            .all(|(u, v)| u.f64().to_bits() == v.f64().to_bits())
                });
        same_tensors && self.metadata == other.metadata
    }
}

impl<T: Float> StateDict<T> {
    /// An empty set.
    pub fn new() -> Self {
        StateDict {
            tensors: BTreeMap::new(),
            metadata: BTreeMap::new(),
        }
    }

    /// Whether there are neither tensors nor metadata.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty() && self.metadata.is_empty()
    }

    /// Adds every tensor and metadata entry of `other` under `prefix.` (`optim` makes
    /// `exp_avg.w` into `optim.exp_avg.w`).
    ///
    /// # Errors
    /// [`NnError::DuplicateName`] when a prefixed name is already here (nothing is added then),
    /// [`NnError::InvalidName`] for a prefixed tensor name that cannot be saved.
    pub fn merge_prefixed(&mut self, prefix: &str, other: StateDict<T>) -> Result<(), NnError> {
        let key = |name: &str| format!("{prefix}.{name}");
        for name in other.tensors.keys() {
            let full = key(name);
            validate_name(&full)?;
            if self.tensors.contains_key(&full) {
                return Err(NnError::DuplicateName { name: full });
            }
        }
        if let Some(k) = other
            .metadata
            .keys()
            .find(|k| self.metadata.contains_key(&key(k)))
        {
            return Err(NnError::DuplicateName { name: key(k) });
        }
        for (name, t) in other.tensors {
            self.tensors.insert(key(&name), t);
        }
        for (k, v) in other.metadata {
            self.metadata.insert(key(&k), v);
        }
        Ok(())
    }

    /// The entries under `prefix.`, with the prefix removed (handles and strings are cloned).
    pub fn prefixed(&self, prefix: &str) -> StateDict<T> {
        let head = format!("{prefix}.");
        let strip = |k: &String| k.strip_prefix(&head).map(String::from);
        StateDict {
            tensors: self
                .tensors
                .iter()
                .filter_map(|(k, t)| Some((strip(k)?, t.clone())))
                .collect(),
            metadata: self
                .metadata
                .iter()
                .filter_map(|(k, v)| Some((strip(k)?, v.clone())))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_then_prefixed_round_trips() {
        let mut a = StateDict::<f64>::new();
        a.tensors.insert("x".into(), Tensor::ones([2]));
        a.metadata.insert("k".into(), "v".into());
        let mut all = StateDict::new();
        all.merge_prefixed("p", a.clone()).unwrap();
        all.merge_prefixed("q", a.clone()).unwrap();
        assert_eq!(all.prefixed("p"), a);
        assert_eq!(all.tensors.len(), 2);
    }

    #[test]
    fn merge_refuses_collisions_without_partial_changes() {
        let mut a = StateDict::<f64>::new();
        a.tensors.insert("x".into(), Tensor::ones([2]));
        let mut all = StateDict::new();
        all.merge_prefixed("p", a.clone()).unwrap();
        a.tensors.insert("y".into(), Tensor::ones([1]));
        let err = all.merge_prefixed("p", a).unwrap_err();
        assert!(matches!(err, NnError::DuplicateName { ref name } if name == "p.x"));
        assert_eq!(all.tensors.len(), 1);
    }

    #[test]
    fn equality_is_bitwise() {
        let mut a = StateDict::<f64>::new();
        a.tensors.insert("x".into(), Tensor::from_f64s(&[0.0], [1]));
        let mut b = a.clone();
        b.tensors
            .insert("x".into(), Tensor::from_f64s(&[-0.0], [1]));
        assert_ne!(a, b);
    }
}
