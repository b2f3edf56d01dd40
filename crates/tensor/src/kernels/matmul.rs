//! Matrix products through the `gemm` crate (runtime-selected SIMD kernels, rayon threads).

use crate::Float;
use std::mem::MaybeUninit;

/// A product with an extent from 2 to this goes through [`small`], whose loops beat the packing
/// of the general kernel there. Measured on the dsm-mlp step (one thread, AVX2 loops): 256x2 by
/// 2x128 took 19 us through `gemm` and 6 us here, 256x128 by 128x2 11 us and 6 us; extents of 1
/// stay with `gemm`, whose matrix-vector paths were faster (2.2 us against 2.9 us for 256x128 by
/// 128x1).
const SMALL: usize = 4;

/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_MIN_FLOPS: usize = 1 << 18;

/// `out (+)= op(a) op(b)` for row-major matrices, where op transposes when asked.
///
/// `a` is stored as [m, k] (or [k, m] when `ta`), `b` as [k, n] (or [n, k] when `tb`); `out` is
/// [m, n]. With `accumulate` the product is added to `out`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    ta: bool,
    b: &[T],
    tb: bool,
    out: &mut [T],
    accumulate: bool,
) {
    assert!(a.len() >= m * k && b.len() >= k * n && out.len() >= m * n);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        if !accumulate {
            out[..m * n].iter_mut().for_each(|v| *v = T::zero());
        }
        return;
    }
    if takes_small_path(m, k, n) {
        return small(m, k, n, a, ta, b, tb, out, accumulate);
    }

    // SAFETY: the assert above bounds every index the product reaches.
    unsafe { general(m, k, n, a, ta, b, tb, out.as_mut_ptr(), accumulate) };
}

/// Whether a product goes through [`small`] rather than the general kernel.
fn takes_small_path(m: usize, k: usize, n: usize) -> bool {
    [m, k, n].iter().any(|extent| (2..=SMALL).contains(extent))
}

/// `out = op(a) op(b)` into a buffer that has not been initialised: the general path writes
/// every element without reading it, the others start from zeros.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_uninit<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    ta: bool,
    b: &[T],
    tb: bool,
    out: &mut [MaybeUninit<T>],
) {
    assert!(a.len() >= m * k && b.len() >= k * n && out.len() >= m * n);
    let out = &mut out[..m * n];
    if m == 0 || n == 0 || k == 0 || takes_small_path(m, k, n) {
        out.iter_mut().for_each(|v| {
            v.write(T::zero());
        });
        // SAFETY: every element was just written.
        let out = unsafe { std::slice::from_raw_parts_mut(out.as_mut_ptr().cast::<T>(), m * n) };
        return gemm(m, k, n, a, ta, b, tb, out, true);
    }
    // SAFETY: the assert bounds every index; with `accumulate` false the kernel writes each
    // element of `out` and reads none.
    unsafe { general(m, k, n, a, ta, b, tb, out.as_mut_ptr().cast::<T>(), false) };
}

/// The `gemm` crate's product into `out` (read first when `accumulate`).
///
/// # Safety
/// `a`, `b` and `out` must hold m * k, k * n and m * n elements, `out` must not alias them, and
/// `out` must be initialised when `accumulate` is set.
#[allow(clippy::too_many_arguments)]
unsafe fn general<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    ta: bool,
    b: &[T],
    tb: bool,
    out: *mut T,
    accumulate: bool,
) {
    // Row-major strides: element (i, j) of a matrix stored [r, c] is at i * c + j.
    let (a_rs, a_cs) = if ta { (1, m as isize) } else { (k as isize, 1) };
    let (b_rs, b_cs) = if tb { (1, k as isize) } else { (n as isize, 1) };
    let parallelism = if m * n * k >= PARALLEL_MIN_FLOPS && crate::threads::may_split() {
        gemm::Parallelism::Rayon(0)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: the caller's contract bounds every index (i < m, j < n, l < k) that the strides
    // reach, and `out` does not alias `a` or `b`.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            out,
            1,
            n as isize,
            accumulate,
            a.as_ptr(),
            a_cs,
            a_rs,
            b.as_ptr(),
            b_cs,
            b_rs,
            T::one(),
            T::one(),
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// `out (+)= op(a) op(b)` by plain loops (compiled for AVX-512 or AVX2 when the CPU has them),
/// for products with a small extent.
///
/// Every case keeps its innermost loop contiguous so that it vectorises: rows of op(b) scaled
/// into rows of `out` (small k, or small m with b in row order), dot products of contiguous rows
/// (small n with a in row order, small m with b transposed), or rows of a scaled into a
/// transposed output (small n with a transposed).
#[allow(clippy::too_many_arguments)]
#[multiversion::multiversion(targets(
    "x86_64+avx512f+avx512vl+avx512dq+avx2+fma",
    "x86_64+avx2+fma"
))]
fn small<T: Float>(
    m: usize,
    k: usize,
    n: usize,
    a: &[T],
    ta: bool,
    b: &[T],
    tb: bool,
    out: &mut [T],
    accumulate: bool,
) {
    let out = &mut out[..m * n];
    if !accumulate {
        out.iter_mut().for_each(|v| *v = T::zero());
    }
    let a_at = |i: usize, l: usize| if ta { a[l * m + i] } else { a[i * k + l] };
    let b_at = |l: usize, j: usize| if tb { b[j * k + l] } else { b[l * n + j] };

    if k <= SMALL || (m <= SMALL && !tb) {
        // out[i, :] += op(a)[i, l] * op(b)[l, :], with op(b)'s rows made contiguous (k * n is
        // small when copied: k is small, or b is already in row order).
        let b_rows: Vec<T>;
        let b_rows: &[T] = if tb {
            b_rows = (0..k)
                .flat_map(|l| (0..n).map(move |j| b_at(l, j)))
                .collect();
            &b_rows
        } else {
            &b[..k * n]
        };
        for i in 0..m {
            let dst = &mut out[i * n..(i + 1) * n];
            for l in 0..k {
                axpy(a_at(i, l), &b_rows[l * n..(l + 1) * n], dst);
            }
        }
    } else if n <= SMALL && ta {
        // out^T[j, :] += op(b)[l, j] * a[l, :], a's stored rows being contiguous.
        let mut out_t = vec![T::zero(); n * m];
        for l in 0..k {
            let a_row = &a[l * m..(l + 1) * m];
            for j in 0..n {
                axpy(b_at(l, j), a_row, &mut out_t[j * m..(j + 1) * m]);
            }
        }
        for i in 0..m {
            for j in 0..n {
                out[i * n + j] = out[i * n + j] + out_t[j * m + i];
            }
        }
    } else {
        // Dot products: rows of op(a) with columns of op(b), both made contiguous (n small and a
        // in row order, or m small and b transposed so that its stored rows are the columns).
        let columns: Vec<T>;
        let columns: &[T] = if tb {
            &b[..n * k]
        } else {
            columns = (0..n)
                .flat_map(|j| (0..k).map(move |l| b_at(l, j)))
                .collect();
            &columns
        };
        let mut gathered = vec![T::zero(); if ta { k } else { 0 }];
        for i in 0..m {
            let a_row: &[T] = if ta {
                gathered
                    .iter_mut()
                    .enumerate()
                    .for_each(|(l, v)| *v = a_at(i, l));
                &gathered
            } else {
                &a[i * k..(i + 1) * k]
            };
            for j in 0..n {
                out[i * n + j] = out[i * n + j] + dot(a_row, &columns[j * k..(j + 1) * k]);
            }
        }
    }
}

/// `y += alpha * x`.
#[inline]
fn axpy<T: Float>(alpha: T, x: &[T], y: &mut [T]) {
    for (d, &v) in y.iter_mut().zip(x) {
        *d = *d + alpha * v;
    }
}

/// A dot product with eight independent accumulators (so that it vectorises).
fn dot<T: Float>(x: &[T], y: &[T]) -> T {
    let mut acc = [T::zero(); 8];
    let (xc, yc) = (x.chunks_exact(8), y.chunks_exact(8));
    let tail: T = xc
        .remainder()
        .iter()
        .zip(yc.remainder())
        .map(|(&u, &v)| u * v)
        .sum();
    for (u, v) in xc.zip(yc) {
        for i in 0..8 {
            acc[i] = acc[i] + u[i] * v[i];
        }
    }
    acc.iter().fold(tail, |s, &v| s + v)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The product by its definition, in f64.
    fn naive(m: usize, k: usize, n: usize, a: &[f64], ta: bool, b: &[f64], tb: bool) -> Vec<f64> {
        let mut out = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                for l in 0..k {
                    let x = if ta { a[l * m + i] } else { a[i * k + l] };
                    let y = if tb { b[j * k + l] } else { b[l * n + j] };
                    out[i * n + j] += x * y;
                }
            }
        }
        out
    }

    #[test]
    fn small_and_general_paths_agree_with_the_definition() {
        // Covers small k, small n (a in row order and transposed), small m, and general.
        let shapes = [
            (7, 2, 9),
            (9, 17, 3),
            (1, 20, 11),
            (13, 1, 6),
            (3, 3, 3),
            (12, 19, 10),
            (2, 30, 20),
        ];
        for (m, k, n) in shapes {
            for ta in [false, true] {
                for tb in [false, true] {
                    let a: Vec<f64> = (0..m * k).map(|i| (0.37 * i as f64).sin()).collect();
                    let b: Vec<f64> = (0..k * n).map(|i| (0.23 * i as f64).cos()).collect();
                    let want = naive(m, k, n, &a, ta, &b, tb);
                    let mut got = vec![1.0; m * n];
                    gemm(m, k, n, &a, ta, &b, tb, &mut got, true);
                    for (g, w) in got.iter().zip(&want) {
                        assert!((g - (w + 1.0)).abs() < 1e-12, "{m}x{k}x{n} ta {ta} tb {tb}");
                    }
                }
            }
        }
    }
}
