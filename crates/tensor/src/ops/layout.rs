//! Changing how elements are arranged: reshape, permute, transpose, (un)squeeze.

use crate::kernels::layout::permute;
use crate::{Float, Shape, Tensor};

impl<T: Float> Tensor<T> {
    /// The same elements with another shape of the same size (no copy).
    ///
    /// # Panics
    /// When the sizes differ.
    #[track_caller]
    pub fn reshape(&self, shape: impl Into<Shape>) -> Tensor<T> {
        let shape = shape.into();
        assert_eq!(
            shape.numel(),
            self.numel(),
            "reshape: cannot view {} elements (shape {}) as {shape}",
            self.numel(),
            self.shape()
        );
        if &shape == self.shape() {
            return self.clone();
        }
        let from = self.shape().clone();
        Tensor::from_op(self.0.data.clone(), shape, "reshape", [self], move |c| {
            vec![Some(c.grad.reshape(from.clone()))]
        })
    }

    /// Flattens every axis after the first: `[n, ...]` to `[n, rest]`.
    pub fn flatten_batch(&self) -> Tensor<T> {
        let n = if self.rank() == 0 { 1 } else { self.dim(0) };
        self.reshape([n, self.numel() / n.max(1)])
    }

    /// Inserts an axis of extent 1 at `axis` (`0..=rank`).
    #[track_caller]
    pub fn unsqueeze(&self, axis: usize) -> Tensor<T> {
        assert!(
            axis <= self.rank(),
            "unsqueeze: axis {axis} > rank {}",
            self.rank()
        );
        let mut dims = self.dims().to_vec();
        dims.insert(axis, 1);
        self.reshape(dims)
    }

    /// Removes an axis of extent 1.
    #[track_caller]
    pub fn squeeze(&self, axis: isize) -> Tensor<T> {
        let ax = self.shape().axis(axis);
        assert_eq!(
            self.dims()[ax],
            1,
            "squeeze: axis {axis} of {} is not 1",
            self.shape()
        );
        let mut dims = self.dims().to_vec();
        dims.remove(ax);
        self.reshape(dims)
    }

    /// Reorders the axes: axis i of the result is axis `perm[i]` of this tensor.
    ///
    /// # Panics
    /// When `perm` is not a permutation of `0..rank`.
    #[track_caller]
    pub fn permute(&self, perm: &[usize]) -> Tensor<T> {
        let rank = self.rank();
        let mut seen = vec![false; rank];
        assert!(
            perm.len() == rank
                && perm
                    .iter()
                    .all(|&p| p < rank && !std::mem::replace(&mut seen[p], true)),
            "permute: {perm:?} is not a permutation of the {rank} axes of {}",
            self.shape()
        );
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return self.clone();
        }
        let shape = Shape::new(&perm.iter().map(|&p| self.dims()[p]).collect::<Vec<_>>());
        let data = permute(self.data(), self.shape(), perm);
        let mut inverse = vec![0; rank];
        for (i, &p) in perm.iter().enumerate() {
            inverse[p] = i;
        }
        Tensor::from_op(data, shape, "permute", [self], move |c| {
            vec![Some(c.grad.permute(&inverse))]
        })
    }

    /// Swaps two axes (negative counts from the end).
    #[track_caller]
    pub fn transpose(&self, a: isize, b: isize) -> Tensor<T> {
        let (a, b) = (self.shape().axis(a), self.shape().axis(b));
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// The transpose of a matrix, or of the last two axes.
    #[track_caller]
    pub fn t(&self) -> Tensor<T> {
        self.transpose(-2, -1)
    }
}
