//! Copies that rearrange a buffer: permutation and broadcasting.

use super::elementwise::broadcast_strides;
use crate::{Float, Shape};

/// The buffer of a tensor of shape `shape` with its axes permuted: output axis i is input axis
/// `perm[i]`.
pub(crate) fn permute<T: Float>(x: &[T], shape: &Shape, perm: &[usize]) -> Vec<T> {
    let strides = shape.strides();
    let out_dims: Vec<usize> = perm.iter().map(|&p| shape.dims()[p]).collect();
    let src_strides: Vec<usize> = perm.iter().map(|&p| strides[p]).collect();
    gather_strided(x, &out_dims, &src_strides)
}

/// The buffer of `x` (shape `shape`) broadcast to `target`.
pub(crate) fn broadcast<T: Float>(x: &[T], shape: &Shape, target: &Shape) -> Vec<T> {
    let strides = broadcast_strides(shape, target);
    gather_strided(x, target.dims(), &strides)
}

/// out[i0, i1, ...] = x[sum_k i_k * strides[k]] over the extents `dims`.
fn gather_strided<T: Float>(x: &[T], dims: &[usize], strides: &[usize]) -> Vec<T> {
    let numel: usize = dims.iter().product();
    let mut out = Vec::with_capacity(numel);
    if numel == 0 {
        return out;
    }
    let rank = dims.len();
    if rank == 0 {
        out.push(x[0]);
        return out;
    }
    let inner = dims[rank - 1];
    let inner_stride = strides[rank - 1];
    let mut index = vec![0usize; rank - 1];
    let mut offset = 0usize;
    loop {
        if inner_stride == 1 {
            out.extend_from_slice(&x[offset..offset + inner]);
        } else {
            out.extend((0..inner).map(|j| x[offset + j * inner_stride]));
        }

        // Advance the odometer over the outer axes.
        let mut ax = rank - 1;
        loop {
            if ax == 0 {
                return out;
            }
            ax -= 1;
            index[ax] += 1;
            offset += strides[ax];
            if index[ax] < dims[ax] {
                break;
            }
            offset -= strides[ax] * dims[ax];
            index[ax] = 0;
        }
    }
}

/// Copies `x` (shape `shape`) into a zero buffer of shape `outer` at `start` along `axis`: the
/// adjoint of `narrow`.
pub(crate) fn pad_axis<T: Float>(
    x: &[T],
    shape: &Shape,
    axis: usize,
    start: usize,
    outer_len: usize,
) -> Vec<T> {
    let before: usize = shape.dims()[..axis].iter().product();
    let after: usize = shape.dims()[axis + 1..].iter().product();
    let len = shape.dims()[axis];
    let mut out = vec![T::zero(); before * outer_len * after];
    for b in 0..before {
        let src = &x[b * len * after..(b + 1) * len * after];
        let dst_start = (b * outer_len + start) * after;
        out[dst_start..dst_start + len * after].copy_from_slice(src);
    }
    out
}

/// The slice `start..start + len` of `x` (shape `shape`) along `axis`.
pub(crate) fn narrow<T: Float>(
    x: &[T],
    shape: &Shape,
    axis: usize,
    start: usize,
    len: usize,
) -> Vec<T> {
    let before: usize = shape.dims()[..axis].iter().product();
    let after: usize = shape.dims()[axis + 1..].iter().product();
    let full = shape.dims()[axis];
    let mut out = Vec::with_capacity(before * len * after);
    for b in 0..before {
        let s = (b * full + start) * after;
        out.extend_from_slice(&x[s..s + len * after]);
    }
    out
}

/// Overwrites row `indices[j]` of `dst` (rows of `row` elements) with row `j` of `src`.
pub(crate) fn copy_rows<T: Float>(dst: &mut [T], indices: &[usize], src: &[T], row: usize) {
    for (j, &i) in indices.iter().enumerate() {
        dst[i * row..(i + 1) * row].copy_from_slice(&src[j * row..(j + 1) * row]);
    }
}
