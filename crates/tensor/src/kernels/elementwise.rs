//! Elementwise maps and broadcasting binary loops.

use super::{CHUNK, PARALLEL_MIN};
use crate::{Float, Shape};
use rayon::prelude::*;
use std::mem::MaybeUninit;

/// A new buffer of `len` elements, written chunk by chunk by `fill(offset, chunk)` (in parallel
/// when large) without being zeroed first.
///
/// `fill` must write every element of the chunk it is given: every caller zips the chunk with
/// input slices of the same length.
#[inline]
pub(crate) fn filled<T: Float>(
    len: usize,
    fill: impl Fn(usize, &mut [MaybeUninit<T>]) + Sync,
) -> Vec<T> {
    let mut out = Vec::with_capacity(len);
    let spare = &mut out.spare_capacity_mut()[..len];
    if len < PARALLEL_MIN || !crate::threads::may_split() {
        fill(0, spare);
    } else {
        spare
            .par_chunks_mut(CHUNK)
            .enumerate()
            .for_each(|(i, chunk)| fill(i * CHUNK, chunk));
    }
    // SAFETY: `fill` wrote all `len` elements (the contract above).
    unsafe { out.set_len(len) };
    out
}

/// `out[i] = f(x[i])`.
#[inline]
pub(crate) fn map<T: Float>(x: &[T], f: impl Fn(T) -> T + Sync) -> Vec<T> {
    filled(x.len(), |start, chunk| {
        let x = &x[start..start + chunk.len()];
        for (o, &v) in chunk.iter_mut().zip(x) {
            o.write(f(v));
        }
    })
}

/// `out[i] = f(a[i], b[i])` for buffers of equal length.
#[inline]
pub(crate) fn zip<T: Float>(a: &[T], b: &[T], f: impl Fn(T, T) -> T + Sync) -> Vec<T> {
    assert_eq!(a.len(), b.len());
    filled(a.len(), |start, chunk| {
        let a = &a[start..start + chunk.len()];
        let b = &b[start..start + chunk.len()];
        for ((o, &u), &v) in chunk.iter_mut().zip(a).zip(b) {
            o.write(f(u, v));
        }
    })
}

/// `out = f(a, b)` with numpy broadcasting of `a` and `b` to `out_shape`.
pub(crate) fn broadcast_zip<T: Float>(
    a: &[T],
    a_shape: &Shape,
    b: &[T],
    b_shape: &Shape,
    out_shape: &Shape,
    f: impl Fn(T, T) -> T + Sync + Copy,
) -> Vec<T> {
    if a_shape == b_shape {
        return zip(a, b, f);
    }
    if b.len() == 1 {
        let v = b[0];
        if a_shape == out_shape {
            return map(a, move |u| f(u, v));
        }
    }
    if a.len() == 1 {
        let u = a[0];
        if b_shape == out_shape {
            return map(b, move |v| f(u, v));
        }
    }

    // General case: rows of the last axis, each with strides 0 or 1 into a and b.
    let rank = out_shape.rank();
    let sa = broadcast_strides(a_shape, out_shape);
    let sb = broadcast_strides(b_shape, out_shape);
    let inner = if rank == 0 {
        1
    } else {
        out_shape.dims()[rank - 1]
    };
    let (ia, ib) = if rank == 0 {
        (0, 0)
    } else {
        (sa[rank - 1], sb[rank - 1])
    };
    let rows = out_shape.numel() / inner.max(1);
    let mut out = vec![T::zero(); out_shape.numel()];
    let outer_dims = &out_shape.dims()[..rank.saturating_sub(1)];
    let row = |r: usize, dst: &mut [T]| {
        // Offsets of row r in a and b, from its multi-index over the outer axes.
        let (mut oa, mut ob, mut rest) = (0, 0, r);
        for ax in (0..outer_dims.len()).rev() {
            let i = rest % outer_dims[ax];
            rest /= outer_dims[ax];
            oa += i * sa[ax];
            ob += i * sb[ax];
        }
        match (ia, ib) {
            (1, 1) => {
                for ((d, &u), &v) in dst
                    .iter_mut()
                    .zip(&a[oa..oa + inner])
                    .zip(&b[ob..ob + inner])
                {
                    *d = f(u, v);
                }
            }
            (1, 0) => {
                let v = b[ob];
                for (d, &u) in dst.iter_mut().zip(&a[oa..oa + inner]) {
                    *d = f(u, v);
                }
            }
            (0, 1) => {
                let u = a[oa];
                for (d, &v) in dst.iter_mut().zip(&b[ob..ob + inner]) {
                    *d = f(u, v);
                }
            }
            _ => {
                let (u, v) = (a[oa], b[ob]);
                dst.iter_mut().for_each(|d| *d = f(u, v));
            }
        }
    };
    if out.len() < PARALLEL_MIN || inner == 0 || !crate::threads::may_split() {
        for (r, dst) in out.chunks_mut(inner.max(1)).enumerate().take(rows) {
            row(r, dst);
        }
    } else {
        out.par_chunks_mut(inner)
            .enumerate()
            .for_each(|(r, dst)| row(r, dst));
    }
    out
}

/// Strides of `shape` seen as broadcast to `target`: 0 along broadcast axes.
pub(crate) fn broadcast_strides(shape: &Shape, target: &Shape) -> Vec<usize> {
    let offset = target.rank() - shape.rank();
    let own = shape.strides();
    (0..target.rank())
        .map(|ax| {
            if ax < offset || shape.dims()[ax - offset] == 1 {
                0
            } else {
                own[ax - offset]
            }
        })
        .collect()
}

/// A scalar function that kernels inline into their loops (implementations mark `at` with
/// `#[inline(always)]`, so that the loop vectorises around the function body).
pub(crate) trait Scalar<T>: Sync {
    /// The function's value at `x`.
    fn at(&self, x: T) -> T;
}

/// `out[i] = f(x[i])`, or `g[i] * f(x[i])` when `g` is given, compiled for AVX-512 or AVX2
/// when the CPU has them (chosen at run time). The loop of the transcendental functions.
#[inline]
pub(crate) fn apply<T: Float, F: Scalar<T>>(f: &F, x: &[T], g: Option<&[T]>) -> Vec<T> {
    if let Some(g) = g {
        assert_eq!(x.len(), g.len());
    }
    filled(x.len(), |start, chunk| {
        let x = &x[start..start + chunk.len()];
        match g {
            None => apply_chunk(f, x, chunk),
            Some(g) => apply_mul_chunk(f, x, &g[start..start + chunk.len()], chunk),
        }
    })
}

#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
fn apply_chunk<T: Float, F: Scalar<T>>(f: &F, x: &[T], out: &mut [MaybeUninit<T>]) {
    for (o, &v) in out.iter_mut().zip(x) {
        o.write(f.at(v));
    }
}

#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
fn apply_mul_chunk<T: Float, F: Scalar<T>>(f: &F, x: &[T], g: &[T], out: &mut [MaybeUninit<T>]) {
    for ((o, &v), &gi) in out.iter_mut().zip(x).zip(g) {
        o.write(gi * f.at(v));
    }
}

/// A function of an element and of its cached basis (see `kernels::basis`), inlined into the
/// loops of [`apply_basis`].
pub(crate) trait Scalar2<T>: Sync {
    /// The value at `x`, whose basis is `s`.
    fn at(&self, x: T, s: T) -> T;
}

/// `out[i] = f(x[i], s[i])`, or `g[i] * f(x[i], s[i])` when `g` is given; vectorised as
/// [`apply`].
pub(crate) fn apply_basis<T: Float, F: Scalar2<T>>(
    f: &F,
    x: &[T],
    s: &[T],
    g: Option<&[T]>,
) -> Vec<T> {
    assert!(s.len() == x.len() && g.is_none_or(|g| g.len() == x.len()));
    filled(x.len(), |start, chunk| {
        let range = start..start + chunk.len();
        match g {
            None => basis_chunk(f, &x[range.clone()], &s[range], chunk),
            Some(g) => basis_mul_chunk(f, &x[range.clone()], &s[range.clone()], &g[range], chunk),
        }
    })
}

#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
fn basis_chunk<T: Float, F: Scalar2<T>>(f: &F, x: &[T], s: &[T], out: &mut [MaybeUninit<T>]) {
    for ((o, &v), &b) in out.iter_mut().zip(x).zip(s) {
        o.write(f.at(v, b));
    }
}

#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
fn basis_mul_chunk<T: Float, F: Scalar2<T>>(
    f: &F,
    x: &[T],
    s: &[T],
    g: &[T],
    out: &mut [MaybeUninit<T>],
) {
    for (((o, &v), &b), &gi) in out.iter_mut().zip(x).zip(s).zip(g) {
        o.write(gi * f.at(v, b));
    }
}
