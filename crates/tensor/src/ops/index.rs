//! Selecting and combining: narrow, pad, concat, stack, index-select, gather, where, clamp.

use crate::kernels::elementwise::map;
use crate::kernels::layout::{broadcast, narrow, pad_axis};
use crate::{Float, Shape, Tensor};

impl<T: Float> Tensor<T> {
    /// The elements `start..start + len` along `axis` (a copy).
    ///
    /// # Panics
    /// When the range is out of bounds.
    #[track_caller]
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Tensor<T> {
        let ax = self.shape().axis(axis);
        let full = self.dims()[ax];
        assert!(
            start + len <= full,
            "narrow: {start}..{} is out of bounds for axis {axis} of extent {full} (shape {})",
            start + len,
            self.shape()
        );
        let mut dims = self.dims().to_vec();
        dims[ax] = len;
        let data = narrow(self.data(), self.shape(), ax, start, len);
        Tensor::from_op(data, Shape::new(&dims), "narrow", [self], move |c| {
            vec![Some(c.grad.pad_axis(ax as isize, start, full))]
        })
    }

    /// Embeds this tensor in zeros along `axis`, at `start`, to a total extent of `len`: the
    /// adjoint of [`Tensor::narrow`].
    #[track_caller]
    pub fn pad_axis(&self, axis: isize, start: usize, len: usize) -> Tensor<T> {
        let ax = self.shape().axis(axis);
        let own = self.dims()[ax];
        assert!(
            start + own <= len,
            "pad_axis: {own} elements at {start} exceed extent {len}"
        );
        let mut dims = self.dims().to_vec();
        dims[ax] = len;
        let data = pad_axis(self.data(), self.shape(), ax, start, len);
        Tensor::from_op(data, Shape::new(&dims), "pad_axis", [self], move |c| {
            vec![Some(c.grad.narrow(ax as isize, start, own))]
        })
    }

    /// Joins tensors along an existing `axis`; all other extents must agree.
    ///
    /// # Panics
    /// On an empty list or mismatched shapes.
    #[track_caller]
    pub fn concat(tensors: &[Tensor<T>], axis: isize) -> Tensor<T> {
        assert!(!tensors.is_empty(), "concat of an empty list");
        let ax = tensors[0].shape().axis(axis);
        let first = tensors[0].shape();
        let off_axis = |s: &Shape| {
            let mut d = s.dims().to_vec();
            d[ax] = 0;
            d
        };
        for t in tensors {
            assert!(
                t.rank() == first.rank() && off_axis(t.shape()) == off_axis(first),
                "concat: shapes {} and {first} differ off axis {axis}",
                t.shape()
            );
        }
        concat_halves(tensors, ax)
    }

    /// Joins tensors of equal shape along a new `axis` (`0..=rank`).
    #[track_caller]
    pub fn stack(tensors: &[Tensor<T>], axis: usize) -> Tensor<T> {
        let parts: Vec<Tensor<T>> = tensors.iter().map(|t| t.unsqueeze(axis)).collect();
        Tensor::concat(&parts, axis as isize)
    }

    /// Rows (or slices along `axis`) picked by `indices`, repeats allowed: the result has
    /// extent `indices.len()` on `axis`.
    ///
    /// # Panics
    /// When an index is out of range.
    #[track_caller]
    pub fn index_select(&self, axis: isize, indices: &[usize]) -> Tensor<T> {
        let ax = self.shape().axis(axis);
        let full = self.dims()[ax];
        if let Some(&bad) = indices.iter().find(|&&i| i >= full) {
            panic!("index_select: index {bad} is out of range for axis {axis} of extent {full}");
        }
        let before: usize = self.dims()[..ax].iter().product();
        let after: usize = self.dims()[ax + 1..].iter().product();
        let mut data = Vec::with_capacity(before * indices.len() * after);
        for b in 0..before {
            for &i in indices {
                let s = (b * full + i) * after;
                data.extend_from_slice(&self.data()[s..s + after]);
            }
        }
        let mut dims = self.dims().to_vec();
        dims[ax] = indices.len();
        let indices = indices.to_vec();
        Tensor::from_op(data, Shape::new(&dims), "index_select", [self], move |c| {
            vec![Some(c.grad.index_add(ax as isize, &indices, full))]
        })
    }

    /// The adjoint of [`Tensor::index_select`]: a zero tensor with extent `len` on `axis` into
    /// which slice j of this tensor is added at position `indices[j]` (repeats accumulate).
    #[track_caller]
    pub fn index_add(&self, axis: isize, indices: &[usize], len: usize) -> Tensor<T> {
        let ax = self.shape().axis(axis);
        assert_eq!(
            self.dims()[ax],
            indices.len(),
            "index_add: {} indices for the {} slices along axis {axis} of {}",
            indices.len(),
            self.dims()[ax],
            self.shape()
        );
        if let Some(&bad) = indices.iter().find(|&&i| i >= len) {
            panic!("index_add: index {bad} is out of range for extent {len}");
        }
        let before: usize = self.dims()[..ax].iter().product();
        let after: usize = self.dims()[ax + 1..].iter().product();
        let mut data = vec![T::zero(); before * len * after];
        for b in 0..before {
            for (j, &i) in indices.iter().enumerate() {
                let src = &self.data()[(b * indices.len() + j) * after..][..after];
                let dst = &mut data[(b * len + i) * after..][..after];
                for (d, &s) in dst.iter_mut().zip(src) {
                    *d = *d + s;
                }
            }
        }
        let mut dims = self.dims().to_vec();
        dims[ax] = len;
        let indices = indices.to_vec();
        Tensor::from_op(data, Shape::new(&dims), "index_add", [self], move |c| {
            vec![Some(c.grad.index_select(ax as isize, &indices))]
        })
    }

    /// Picks one element per position along `axis`: `out[.., j, ..] = x[.., index[.., j, ..], ..]`
    /// with `index` of the output's shape (as `torch.gather`, with `index` holding one row per
    /// output row). Flattened row-major, `index` has `out.numel()` entries.
    ///
    /// # Panics
    /// When `index_shape` differs from this shape off `axis`, or an index is out of range.
    #[track_caller]
    pub fn gather(&self, axis: isize, index: &[usize], index_shape: impl Into<Shape>) -> Tensor<T> {
        let index_shape = index_shape.into();
        let ax = self.shape().axis(axis);
        let full = self.dims()[ax];
        check_gather_shapes("gather", self.shape(), &index_shape, ax, index.len());
        let (before, after, len) = split(&index_shape, ax);
        let mut data = Vec::with_capacity(index.len());
        for b in 0..before {
            for j in 0..len {
                for a in 0..after {
                    let i = index[(b * len + j) * after + a];
                    assert!(
                        i < full,
                        "gather: index {i} is out of range for extent {full}"
                    );
                    data.push(self.data()[(b * full + i) * after + a]);
                }
            }
        }
        let index = index.to_vec();
        let from = self.shape().clone();
        Tensor::from_op(data, index_shape, "gather", [self], move |c| {
            vec![Some(c.grad.scatter_add(ax as isize, &index, from.clone()))]
        })
    }

    /// The adjoint of [`Tensor::gather`]: zeros of `shape` into which each element of this
    /// tensor is added at the position its index names along `axis`.
    #[track_caller]
    pub fn scatter_add(&self, axis: isize, index: &[usize], shape: impl Into<Shape>) -> Tensor<T> {
        let shape = shape.into();
        let ax = self.shape().axis(axis);
        check_gather_shapes("scatter_add", &shape, self.shape(), ax, index.len());
        let full = shape.dims()[ax];
        let (before, after, len) = split(self.shape(), ax);
        let mut data = vec![T::zero(); shape.numel()];
        for b in 0..before {
            for j in 0..len {
                for a in 0..after {
                    let k = (b * len + j) * after + a;
                    let i = index[k];
                    assert!(
                        i < full,
                        "scatter_add: index {i} is out of range for extent {full}"
                    );
                    let dst = &mut data[(b * full + i) * after + a];
                    *dst = *dst + self.data()[k];
                }
            }
        }
        let index = index.to_vec();
        Tensor::from_op(data, shape, "scatter_add", [self], move |c| {
            let own = c.input(0).shape().clone();
            vec![Some(c.grad.gather(ax as isize, &index, own))]
        })
    }

    /// `mask ? self : other` elementwise, with broadcasting among the three; `mask` is a
    /// constant (its elements are true where nonzero).
    #[track_caller]
    pub fn where_mask(&self, mask: &Tensor<T>, other: &Tensor<T>) -> Tensor<T> {
        let shape = self
            .shape()
            .broadcast(other.shape())
            .and_then(|s| s.broadcast(mask.shape()))
            .unwrap_or_else(|| {
                panic!(
                    "where: shapes {}, {} and mask {} do not broadcast",
                    self.shape(),
                    other.shape(),
                    mask.shape()
                )
            });
        let ones = mask.detach().with_data(
            mask.data()
                .iter()
                .map(|&m| if m != T::zero() { T::one() } else { T::zero() })
                .collect(),
        );
        let keep = ones.broadcast_to(&shape);

        // The values only: broadcast the buffers, not the tensors (no graph nodes to drop).
        let a = broadcast(self.data(), self.shape(), &shape);
        let b = broadcast(other.data(), other.shape(), &shape);
        let data = zip3(
            keep.data(),
            &a,
            &b,
            |k, u, v| if k != T::zero() { u } else { v },
        );
        Tensor::from_op(data, shape, "where", [self, other], move |c| {
            let zero = c.grad.zeros_like();
            let ga = c
                .needs(0)
                .then(|| c.grad.where_mask(&keep, &zero).sum_to(c.input(0).shape()));
            let gb = c
                .needs(1)
                .then(|| zero.where_mask(&keep, c.grad).sum_to(c.input(1).shape()));
            vec![ga, gb]
        })
    }

    /// Clamps every element to `[min, max]`. The gradient is passed where the element lies
    /// strictly inside and is zero where it was clamped; higher derivatives are those of the
    /// identity inside.
    ///
    /// # Panics
    /// When `min > max` or either is NaN.
    #[track_caller]
    pub fn clamp(&self, min: f64, max: f64) -> Tensor<T> {
        assert!(min <= max, "clamp: min {min} > max {max}");
        let (lo, hi) = (T::of(min), T::of(max));
        let inside = self.with_data(
            self.data()
                .iter()
                .map(|&v| {
                    if v > lo && v < hi {
                        T::one()
                    } else {
                        T::zero()
                    }
                })
                .collect(),
        );
        // NaN stays NaN: both comparisons are false for it.
        let data = map(self.data(), |v| {
            if v < lo {
                lo
            } else if v > hi {
                hi
            } else {
                v
            }
        });
        Tensor::from_op(data, self.shape().clone(), "clamp", [self], move |c| {
            vec![Some(c.grad * &inside)]
        })
    }
}

/// Joins the two halves of `tensors`, each joined the same way, as a sum of two zero-padded
/// parts (so that each part's backward is a narrow): O(total size * log(pieces)) work, where
/// adding every piece padded to the full size would be quadratic in the number of pieces.
fn concat_halves<T: Float>(tensors: &[Tensor<T>], axis: usize) -> Tensor<T> {
    if let [single] = tensors {
        return single.clone();
    }
    let (left, right) = tensors.split_at(tensors.len() / 2);
    let (left, right) = (concat_halves(left, axis), concat_halves(right, axis));
    let (split, total) = (left.dims()[axis], left.dims()[axis] + right.dims()[axis]);
    let ax = axis as isize;
    left.pad_axis(ax, 0, total) + right.pad_axis(ax, split, total)
}

fn zip3<T: Float>(k: &[T], a: &[T], b: &[T], f: impl Fn(T, T, T) -> T) -> Vec<T> {
    k.iter()
        .zip(a.iter().zip(b))
        .map(|(&k, (&u, &v))| f(k, u, v))
        .collect()
}

/// Extents before `axis`, after it, and on it.
fn split(shape: &Shape, axis: usize) -> (usize, usize, usize) {
    let before = shape.dims()[..axis].iter().product();
    let after = shape.dims()[axis + 1..].iter().product();
    (before, after, shape.dims()[axis])
}

/// Panics unless `index` (with `index_len` entries) has the rank of `source` and its extents
/// off `axis`: the shapes of a gather's source and result, or of a scatter's target and input.
#[track_caller]
fn check_gather_shapes(op: &str, source: &Shape, index: &Shape, axis: usize, index_len: usize) {
    assert_eq!(
        index.numel(),
        index_len,
        "{op}: {index_len} indices for an index shape {index}"
    );
    let mut a = source.dims().to_vec();
    let mut b = index.dims().to_vec();
    assert_eq!(
        a.len(),
        b.len(),
        "{op}: source {source} and index {index} ranks differ"
    );
    a[axis] = 0;
    b[axis] = 0;
    assert_eq!(
        a, b,
        "{op}: source {source} and index {index} differ off axis {axis}"
    );
}
