//! Convolution kernels: im2col (the patches of an image laid out as columns) and its adjoint,
//! col2im (columns added back into an image).
//!
//! Both work one channel plane at a time: the patches of plane (b, c) fill one contiguous block
//! of the columns, and col2im of that block writes plane (b, c) only. Planes are therefore
//! independent, and run in parallel when the buffer is large with the same result for any
//! number of threads.

use super::{CHUNK, PARALLEL_MIN};
use crate::Float;
use rayon::prelude::*;
use std::ops::Range;

/// The geometry of a 2-D convolution on one channel plane: image, kernel, stride, zero padding
/// (dilation 1) and the output size they give.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Patches {
    /// Image height.
    pub h: usize,
    /// Image width.
    pub w: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Step between kernel positions (both axes).
    pub stride: usize,
    /// Zeros on each side of both axes.
    pub padding: usize,
    /// Output height: (h + 2 padding - kh) / stride + 1.
    pub oh: usize,
    /// Output width: (w + 2 padding - kw) / stride + 1.
    pub ow: usize,
}

impl Patches {
    /// The geometry, or `None` when the stride is zero, the kernel is empty, or the kernel does
    /// not fit in the padded image.
    pub(crate) fn new(
        (h, w): (usize, usize),
        (kh, kw): (usize, usize),
        stride: usize,
        padding: usize,
    ) -> Option<Patches> {
        let out = |len: usize, k: usize| {
            let padded = len + 2 * padding;
            (k > 0 && padded >= k).then(|| (padded - k) / stride + 1)
        };
        if stride == 0 {
            return None;
        }
        Some(Patches {
            h,
            w,
            kh,
            kw,
            stride,
            padding,
            oh: out(h, kh)?,
            ow: out(w, kw)?,
        })
    }

    /// Elements of one image plane.
    pub(crate) fn plane_len(&self) -> usize {
        self.h * self.w
    }

    /// Elements of the columns of one plane: kh * kw rows of oh * ow positions.
    pub(crate) fn cols_len(&self) -> usize {
        self.kh * self.kw * self.oh * self.ow
    }

    /// The output positions o in `0..out_len` whose input position o * stride + k - padding
    /// lies inside `0..in_len`: a range, since the map is increasing.
    fn inside(&self, out_len: usize, in_len: usize, k: usize) -> Range<usize> {
        let (s, p) = (self.stride, self.padding);
        let start = if k >= p { 0 } else { (p - k).div_ceil(s) };
        let end = if in_len + p > k {
            (in_len + p - k).div_ceil(s)
        } else {
            0
        };
        let end = end.min(out_len);
        start.min(end)..end
    }
}

/// The patches of images `x` ([n, c, h, w] with `x.len() / (h * w)` planes) as columns
/// [n, c * kh * kw, oh * ow]: row (ci, ki, kj), column (oy, ox) holds
/// x[ci, oy * stride + ki - padding, ox * stride + kj - padding], or 0 in the padding.
pub(crate) fn im2col<T: Float>(x: &[T], g: &Patches) -> Vec<T> {
    let planes = x.len() / g.plane_len().max(1);
    let mut cols = vec![T::zero(); planes * g.cols_len()];
    for_each_plane(&mut cols, g.cols_len(), x, g.plane_len(), |dst, src| {
        im2col_plane(src, dst, g)
    });
    cols
}

/// The adjoint of [`im2col`]: every column entry added back to the image pixel it was copied
/// from (overlapping patches accumulate; entries in the padding are dropped). `cols` is
/// [n, c * kh * kw, oh * ow], the result [n, c, h, w].
pub(crate) fn col2im<T: Float>(cols: &[T], g: &Patches) -> Vec<T> {
    let planes = cols.len() / g.cols_len().max(1);
    let mut x = vec![T::zero(); planes * g.plane_len()];
    for_each_plane(&mut x, g.plane_len(), cols, g.cols_len(), |dst, src| {
        col2im_plane(src, dst, g)
    });
    x
}

/// Runs `f(dst_plane, src_plane)` over matching blocks of `dst` and `src`, in parallel when
/// `dst` is large. Each call writes its own block only, so the result is independent of the
/// schedule.
fn for_each_plane<T: Float>(
    dst: &mut [T],
    dst_len: usize,
    src: &[T],
    src_len: usize,
    f: impl Fn(&mut [T], &[T]) + Sync,
) {
    if dst.is_empty() || dst_len == 0 || src_len == 0 {
        return;
    }
    if dst.len() < PARALLEL_MIN || !crate::threads::may_split() {
        let pairs = dst.chunks_mut(dst_len).zip(src.chunks(src_len));
        pairs.for_each(|(d, s)| f(d, s));
    } else {
        // Group small planes so that each task has about CHUNK elements of work.
        let per_task = (CHUNK / dst_len.max(src_len)).max(1);
        dst.par_chunks_mut(dst_len)
            .zip(src.par_chunks(src_len))
            .with_min_len(per_task)
            .for_each(|(d, s)| f(d, s));
    }
}

/// im2col of one plane `x` [h, w] into `cols` [kh * kw, oh * ow], which starts zeroed.
fn im2col_plane<T: Float>(x: &[T], cols: &mut [T], g: &Patches) {
    let (s, p) = (g.stride, g.padding);
    for ki in 0..g.kh {
        let rows = g.inside(g.oh, g.h, ki);
        for kj in 0..g.kw {
            let span = g.inside(g.ow, g.w, kj);
            if span.is_empty() {
                continue;
            }
            let ix = span.start * s + kj - p;
            let block = &mut cols[(ki * g.kw + kj) * g.oh * g.ow..][..g.oh * g.ow];

            for oy in rows.clone() {
                let iy = oy * s + ki - p;
                let src = &x[iy * g.w + ix..(iy + 1) * g.w];
                let dst = &mut block[oy * g.ow..][span.clone()];
                if s == 1 {
                    dst.copy_from_slice(&src[..dst.len()]);
                } else {
                    for (d, &v) in dst.iter_mut().zip(src.iter().step_by(s)) {
                        *d = v;
                    }
                }
            }
        }
    }
}

/// col2im of one plane: `cols` [kh * kw, oh * ow] added into `x` [h, w].
fn col2im_plane<T: Float>(cols: &[T], x: &mut [T], g: &Patches) {
    let (s, p) = (g.stride, g.padding);
    for ki in 0..g.kh {
        let rows = g.inside(g.oh, g.h, ki);
        for kj in 0..g.kw {
            let span = g.inside(g.ow, g.w, kj);
            if span.is_empty() {
                continue;
            }
            let ix = span.start * s + kj - p;
            let block = &cols[(ki * g.kw + kj) * g.oh * g.ow..][..g.oh * g.ow];

            for oy in rows.clone() {
                let iy = oy * s + ki - p;
                let src = &block[oy * g.ow..][span.clone()];
                let dst = &mut x[iy * g.w + ix..(iy + 1) * g.w];
                if s == 1 {
                    for (d, &v) in dst.iter_mut().zip(src) {
                        *d = *d + v;
                    }
                } else {
                    for (d, &v) in dst.iter_mut().step_by(s).zip(src) {
                        *d = *d + v;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The positions that `inside` returns, by brute force.
    fn inside_brute(g: &Patches, out_len: usize, in_len: usize, k: usize) -> Vec<usize> {
        (0..out_len)
            .filter(|&o| {
                let i = (o * g.stride + k) as isize - g.padding as isize;
                (0..in_len as isize).contains(&i)
            })
            .collect()
    }

    #[test]
    fn inside_matches_brute_force() {
        for h in 1..8 {
            for k in 1..5 {
                for stride in 1..4 {
                    for padding in 0..4 {
                        let Some(g) = Patches::new((h, h), (k, k), stride, padding) else {
                            continue;
                        };
                        for ki in 0..k {
                            let got: Vec<usize> = g.inside(g.oh, h, ki).collect();
                            assert_eq!(got, inside_brute(&g, g.oh, h, ki), "{g:?}, ki {ki}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn geometry_rejects_kernels_that_do_not_fit() {
        assert_eq!(Patches::new((2, 5), (3, 3), 1, 0), None);
        assert_eq!(Patches::new((3, 3), (3, 3), 0, 0), None);
        assert_eq!(Patches::new((3, 3), (0, 3), 1, 0), None);
        let g = Patches::new((2, 5), (3, 3), 2, 1).unwrap();
        assert_eq!((g.oh, g.ow), (1, 3));
    }

    #[test]
    fn parallel_planes_match_serial_planes() {
        // Enough planes to cross PARALLEL_MIN, compared with the plane kernels run one by one.
        let g = Patches::new((9, 7), (3, 2), 2, 1).unwrap();
        let planes = 600;
        let x: Vec<f64> = (0..planes * g.plane_len())
            .map(|i| (i as f64 * 0.37).sin())
            .collect();
        let cols = im2col(&x, &g);
        assert!(cols.len() >= PARALLEL_MIN);
        let back = col2im(&cols, &g);
        for plane in 0..planes {
            let mut c = vec![0.0; g.cols_len()];
            im2col_plane(&x[plane * g.plane_len()..][..g.plane_len()], &mut c, &g);
            assert_eq!(c, cols[plane * g.cols_len()..][..g.cols_len()]);
            let mut b = vec![0.0; g.plane_len()];
            col2im_plane(&c, &mut b, &g);
            assert_eq!(b, back[plane * g.plane_len()..][..g.plane_len()]);
        }
    }
}
