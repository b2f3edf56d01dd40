//! Reductions: sums onto a broadcast-compatible shape, and maxima along an axis.

use super::elementwise::broadcast_strides;
use crate::{Float, Shape};

/// Sums `x` (shape `shape`) onto `target`, a shape that broadcasts to `shape`: the adjoint of
/// broadcasting. Summation order is fixed (row-major), so results do not depend on threads.
pub(crate) fn sum_to<T: Float>(x: &[T], shape: &Shape, target: &Shape) -> Vec<T> {
    let mut out = vec![T::zero(); target.numel()];
    if x.is_empty() {
        return out;
    }
    if target.numel() == 1 {
        out[0] = sum_slice(x);
        return out;
    }
    let rank = shape.rank();
    let strides = broadcast_strides(target, shape);
    let dims = shape.dims();
    let inner = dims[rank - 1];
    let inner_stride = strides[rank - 1];
    let mut index = vec![0usize; rank - 1];
    let mut offset = 0usize;
    for row in x.chunks(inner) {
        if inner_stride == 1 {
            for (o, &v) in out[offset..offset + inner].iter_mut().zip(row) {
                *o = *o + v;
            }
        } else {
            out[offset] = out[offset] + sum_slice(row);
        }

        // Advance the odometer over the outer axes.
        for ax in (0..rank - 1).rev() {
            index[ax] += 1;
            offset += strides[ax];
            if index[ax] < dims[ax] {
                break;
            }
            offset -= strides[ax] * dims[ax];
            index[ax] = 0;
        }
    }
    out
}

/// A sum with eight independent accumulators (vectorises, and rounds better than one).
pub(crate) fn sum_slice<T: Float>(x: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let chunks = x.chunks_exact(8);
    let tail = chunks.remainder();
    for c in chunks {
        for i in 0..8 {
            acc[i] = acc[i] + c[i];
        }
    }
    let mut total = tail.iter().fold(T::zero(), |a, &b| a + b);
    for a in acc {
        total = total + a;
    }
    total
}

/// The maximum along `axis`, keeping the axis with extent 1. NaN propagates.
pub(crate) fn max_axis<T: Float>(x: &[T], shape: &Shape, axis: usize) -> Vec<T> {
    let before: usize = shape.dims()[..axis].iter().product();
    let after: usize = shape.dims()[axis + 1..].iter().product();
    let len = shape.dims()[axis];
    let mut out = vec![T::neg_infinity(); before * after];
    for b in 0..before {
        let dst = &mut out[b * after..(b + 1) * after];
        for i in 0..len {
            let src = &x[(b * len + i) * after..(b * len + i + 1) * after];
            for (d, &v) in dst.iter_mut().zip(src) {
                *d = if v > *d || v.is_nan() { v } else { *d };
            }
        }
    }
    out
}
