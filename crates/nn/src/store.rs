//! Named parameters and buffers, in insertion order.

use crate::NnError;
use ebm_tensor::{Float, Tensor};
use std::collections::HashMap;

/// Whether a stored tensor is trained or only carried along.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TensorKind {
    /// A trainable parameter: a leaf that requires grad, updated by optimisers.
    Param,
    /// State saved with the weights but not trained (a spectral-norm vector `u`): a leaf that
    /// does not require grad.
    Buffer,
}

#[derive(Clone, Debug)]
struct Entry<T: Float> {
    name: String,
    kind: TensorKind,
    tensor: Tensor<T>,
}

/// The tensors of a model by name (`energy.0.weight`), in the order they were inserted.
///
/// Layers hold names, the store holds tensors: a forward pass reads the store, an optimiser
/// writes it, a checkpoint saves it. Parameters are leaves with `requires_grad`; they stay
/// such leaves through [`ParamStore::set`], [`Tensor::update_`] on [`ParamStore::get_mut`],
/// optimiser steps and loading. Buffers are leaves without grad.
///
/// Cloning a store is cheap: tensors share their buffers until one side writes (copy on
/// write).
///
/// # Example
/// ```
/// use ebm_nn::ParamStore;
/// use ebm_tensor::Tensor;
///
/// let mut store = ParamStore::<f64>::new();
/// store.insert("w", Tensor::ones([2, 3])).unwrap();
/// store.insert_buffer("w.u", Tensor::ones([2])).unwrap();
/// assert_eq!((store.len(), store.numel()), (1, 6));
/// assert!(store.get("w").unwrap().requires_grad());
/// assert!(!store.get("w.u").unwrap().requires_grad());
/// ```
#[derive(Clone, Debug)]
pub struct ParamStore<T: Float = f32> {
    entries: Vec<Entry<T>>,
    index: HashMap<String, usize>,
    n_params: usize,
}

impl<T: Float> Default for ParamStore<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T: Float> ParamStore<T> {
    /// An empty store.
    pub fn new() -> Self {
        ParamStore {
            entries: Vec::new(),
            index: HashMap::new(),
            n_params: 0,
        }
    }

    /// Adds a trainable parameter: `value` becomes a leaf that requires grad (sharing its
    /// buffer, no copy).
    ///
    /// # Errors
    /// [`NnError::DuplicateName`] when the name is taken, [`NnError::InvalidName`] when it is
    /// empty, reserved or not printable ASCII.
    pub fn insert(&mut self, name: impl Into<String>, value: Tensor<T>) -> Result<(), NnError> {
        self.push(name.into(), TensorKind::Param, value)
    }

    /// Adds a buffer: a tensor saved with the weights but not trained (no grad).
    ///
    /// # Errors
    /// As [`ParamStore::insert`].
    pub fn insert_buffer(
        &mut self,
        name: impl Into<String>,
        value: Tensor<T>,
    ) -> Result<(), NnError> {
        self.push(name.into(), TensorKind::Buffer, value)
    }

    fn push(&mut self, name: String, kind: TensorKind, value: Tensor<T>) -> Result<(), NnError> {
        validate_name(&name)?;
        if self.index.contains_key(&name) {
            return Err(NnError::DuplicateName { name });
        }
        let tensor = as_leaf(value, kind);
        self.index.insert(name.clone(), self.entries.len());
        self.entries.push(Entry { name, kind, tensor });
        if kind == TensorKind::Param {
            self.n_params += 1;
        }
        Ok(())
    }

    /// The tensor (parameter or buffer) called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor<T>> {
        self.index.get(name).map(|&i| &self.entries[i].tensor)
    }

    /// Mutable access to the tensor called `name`, to change values in place with
    /// [`Tensor::update_`] (which keeps it a leaf with the same `requires_grad`). To replace it
    /// by another tensor prefer [`ParamStore::set`], which checks the shape and makes it a leaf.
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Tensor<T>> {
        self.index.get(name).map(|&i| &mut self.entries[i].tensor)
    }

    /// The tensor called `name`, for layers: a missing name is a programmer error (the layer
    /// was built on another store).
    ///
    /// # Panics
    /// When no tensor has that name.
    #[track_caller]
    pub fn expect(&self, name: &str) -> &Tensor<T> {
        self.get(name)
            .unwrap_or_else(|| panic!("{}", self.unknown(name)))
    }

    /// Whether the store holds a tensor called `name`.
    pub fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }

    /// Whether `name` is a parameter or a buffer.
    pub fn kind(&self, name: &str) -> Option<TensorKind> {
        self.index.get(name).map(|&i| self.entries[i].kind)
    }

    /// Replaces the values of `name` by `value` (no copy), keeping its kind: a parameter stays a
    /// leaf that requires grad, a buffer a leaf that does not.
    ///
    /// # Errors
    /// [`NnError::UnknownName`], or [`NnError::ShapeMismatch`] when the shapes differ.
    pub fn set(&mut self, name: &str, value: Tensor<T>) -> Result<(), NnError> {
        let Some(&i) = self.index.get(name) else {
            return Err(self.unknown(name));
        };
        let entry = &mut self.entries[i];
        if entry.tensor.dims() != value.dims() {
            return Err(NnError::ShapeMismatch {
                name: name.to_string(),
                expected: entry.tensor.dims().to_vec(),
                found: value.dims().to_vec(),
            });
        }
        entry.tensor = as_leaf(value, entry.kind);
        Ok(())
    }

    /// The number of trainable parameter tensors.
    pub fn len(&self) -> usize {
        self.n_params
    }

    /// Whether the store has no parameters.
    pub fn is_empty(&self) -> bool {
        self.n_params == 0
    }

    /// The number of trainable scalars (sum of the parameters' sizes).
    pub fn numel(&self) -> usize {
        self.iter().map(|(_, t)| t.numel()).sum()
    }

    /// The parameters (not buffers) with their names, in insertion order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Tensor<T>)> {
        self.iter_kind(TensorKind::Param)
    }

    /// The buffers with their names, in insertion order.
    pub fn buffers(&self) -> impl Iterator<Item = (&str, &Tensor<T>)> {
        self.iter_kind(TensorKind::Buffer)
    }

    /// Every tensor, parameters and buffers, with its name and kind, in insertion order.
    pub fn iter_all(&self) -> impl Iterator<Item = (&str, TensorKind, &Tensor<T>)> {
        self.entries
            .iter()
            .map(|e| (e.name.as_str(), e.kind, &e.tensor))
    }

    /// Mutable access to the parameters, in insertion order (used by optimisers).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut Tensor<T>)> {
        self.entries
            .iter_mut()
            .filter(|e| e.kind == TensorKind::Param)
            .map(|e| (e.name.as_str(), &mut e.tensor))
    }

    fn iter_kind(&self, kind: TensorKind) -> impl Iterator<Item = (&str, &Tensor<T>)> {
        self.entries
            .iter()
            .filter(move |e| e.kind == kind)
            .map(|e| (e.name.as_str(), &e.tensor))
    }

    /// The parameters' names, in order.
    pub fn names(&self) -> Vec<&str> {
        self.iter().map(|(n, _)| n).collect()
    }

    /// The parameters (cheap handles sharing the buffers), in order: the `inputs` of
    /// [`ebm_tensor::autodiff::grad`].
    pub fn tensors(&self) -> Vec<Tensor<T>> {
        self.iter().map(|(_, t)| t.clone()).collect()
    }

    /// Checks that every name is valid and free, so that a layer inserts all its tensors or
    /// none.
    pub(crate) fn check_free(&self, names: &[&str]) -> Result<(), NnError> {
        for (i, name) in names.iter().enumerate() {
            validate_name(name)?;
            if self.contains(name) || names[..i].contains(name) {
                return Err(NnError::DuplicateName {
                    name: name.to_string(),
                });
            }
        }
        Ok(())
    }

    /// Moves every tensor of `other` into this store, after checking that no name is taken
    /// (nothing moves on error).
    pub(crate) fn absorb(&mut self, other: ParamStore<T>) -> Result<(), NnError> {
        let names: Vec<&str> = other.entries.iter().map(|e| e.name.as_str()).collect();
        self.check_free(&names)?;
        for e in other.entries {
            self.push(e.name, e.kind, e.tensor)?;
        }
        Ok(())
    }

    pub(crate) fn unknown(&self, name: &str) -> NnError {
        const SHOWN: usize = 20;
        let mut known: Vec<&str> = self.entries.iter().take(SHOWN).map(|e| &*e.name).collect();
        if self.entries.len() > SHOWN {
            known.push("...");
        }
        let known = if known.is_empty() {
            "nothing (it is empty)".to_string()
        } else {
            known.join(", ")
        };
        NnError::UnknownName {
            name: name.to_string(),
            known,
        }
    }
}

/// `value` as a leaf of the given kind, sharing its buffer.
fn as_leaf<T: Float>(value: Tensor<T>, kind: TensorKind) -> Tensor<T> {
    let wants_grad = kind == TensorKind::Param;
    if value.requires_grad() == wants_grad && !value.has_grad_fn() {
        value
    } else {
        value.set_requires_grad(wants_grad)
    }
}

/// Checks that `name` can name a tensor in a store and in a safetensors file.
pub(crate) fn validate_name(name: &str) -> Result<(), NnError> {
    let reason = if name.is_empty() {
        "it is empty"
    } else if name == "__metadata__" {
        "safetensors reserves it for the header"
    } else if !name.bytes().all(|b| b.is_ascii_graphic()) {
        "it holds spaces, control or non-ASCII characters"
    } else {
        return Ok(());
    };
    Err(NnError::InvalidName {
        name: name.to_string(),
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> ParamStore<f64> {
        let mut s = ParamStore::new();
        s.insert("b", Tensor::ones([3])).unwrap();
        s.insert_buffer("b.u", Tensor::zeros([2])).unwrap();
        s.insert("a", Tensor::zeros([2, 2])).unwrap();
        s
    }

    #[test]
    fn keeps_insertion_order_and_counts_params_only() {
        let s = store();
        assert_eq!(s.names(), vec!["b", "a"]);
        assert_eq!((s.len(), s.numel()), (2, 7));
        assert_eq!(s.buffers().map(|(n, _)| n).collect::<Vec<_>>(), vec!["b.u"]);
        let all: Vec<_> = s.iter_all().map(|(n, k, _)| (n, k)).collect();
        assert_eq!(all[1], ("b.u", TensorKind::Buffer));
    }

    #[test]
    fn params_are_leaves_that_require_grad_buffers_are_not() {
        let s = store();
        let a = s.get("a").unwrap();
        assert!(a.requires_grad() && !a.has_grad_fn());
        assert!(!s.get("b.u").unwrap().requires_grad());
    }

    #[test]
    fn insert_shares_the_buffer() {
        let t = Tensor::<f64>::ones([4]);
        let mut s = ParamStore::new();
        s.insert("t", t.clone()).unwrap();
        assert_eq!(s.get("t").unwrap().data().as_ptr(), t.data().as_ptr());
    }

    #[test]
    fn rejects_duplicates_and_bad_names() {
        let mut s = store();
        assert!(matches!(
            s.insert("a", Tensor::ones([1])),
            Err(NnError::DuplicateName { .. })
        ));
        for bad in ["", "has space", "__metadata__", "é"] {
            assert!(matches!(
                s.insert(bad, Tensor::ones([1])),
                Err(NnError::InvalidName { .. })
            ));
        }
    }

    #[test]
    fn set_checks_shape_and_restores_leaf() {
        let mut s = store();
        let computed = Tensor::<f64>::ones([3])
            .set_requires_grad(true)
            .mul_scalar(2.0);
        s.set("b", computed).unwrap();
        let b = s.get("b").unwrap();
        assert!(b.requires_grad() && !b.has_grad_fn());
        assert_eq!(b.to_f64s(), vec![2.0; 3]);
        let err = s.set("b", Tensor::ones([2])).unwrap_err();
        assert!(matches!(err, NnError::ShapeMismatch { .. }), "{err}");
        let err = s.set("zzz", Tensor::ones([2])).unwrap_err();
        assert!(err.to_string().contains("b, b.u, a"), "{err}");
    }

    #[test]
    fn update_in_place_keeps_a_grad_leaf() {
        let mut s = store();
        let a = s.get_mut("a").unwrap();
        a.update_(|d| d.iter_mut().for_each(|v| *v += 1.0));
        let a = s.get("a").unwrap();
        assert!(a.requires_grad() && !a.has_grad_fn());
        assert_eq!(a.to_f64s(), vec![1.0; 4]);
    }

    #[test]
    #[should_panic(expected = "no tensor named `nope`")]
    fn expect_panics_with_the_known_names() {
        store().expect("nope");
    }
}
