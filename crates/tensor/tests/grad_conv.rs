//! Convolutions: first- and second-order checks of im2col, col2im, conv2d, conv_transpose2d and
//! avg_pool2d against finite differences, their values against direct loops, and the adjoint
//! identities that tie them together.

mod common;

use common::{check, randn, rng};
use ebm_tensor::{Conv2dOptions, Tensor};
use rand::RngExt;
use rand::rngs::StdRng;

/// Every (stride, padding) pair the suites cover.
const OPTIONS: [Conv2dOptions; 4] = [
    Conv2dOptions {
        stride: 1,
        padding: 0,
    },
    Conv2dOptions {
        stride: 1,
        padding: 1,
    },
    Conv2dOptions {
        stride: 2,
        padding: 0,
    },
    Conv2dOptions {
        stride: 2,
        padding: 1,
    },
];

/// Random sizes of a small convolution.
#[derive(Clone, Copy, Debug)]
struct Case {
    n: usize,
    c: usize,
    o: usize,
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
}

impl Case {
    /// n in 1..=2, channels in 1..=3, images 3..=6 pixels a side, kernels 1..=3 a side.
    fn random(r: &mut StdRng) -> Case {
        Case {
            n: r.random_range(1..=2),
            c: r.random_range(1..=3),
            o: r.random_range(1..=3),
            h: r.random_range(3..=6),
            w: r.random_range(3..=6),
            kh: r.random_range(1..=3),
            kw: r.random_range(1..=3),
        }
    }

    /// Output height and width of conv2d.
    fn out(&self, options: Conv2dOptions) -> (usize, usize) {
        let (s, p) = (options.stride, options.padding);
        (
            (self.h + 2 * p - self.kh) / s + 1,
            (self.w + 2 * p - self.kw) / s + 1,
        )
    }

    /// Output height and width of conv_transpose2d from an h x w input, when not empty.
    fn out_transposed(&self, options: Conv2dOptions) -> Option<(usize, usize)> {
        let (s, p) = (options.stride, options.padding);
        let full = |len: usize, k: usize| ((len - 1) * s + k).checked_sub(2 * p).filter(|&v| v > 0);
        Some((full(self.h, self.kh)?, full(self.w, self.kw)?))
    }
}

/// The sum of the products of two equal-length buffers.
fn inner(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.data().iter().zip(b.data()).map(|(u, v)| u * v).sum()
}

/// The largest absolute difference between two buffers of the same shape.
fn max_diff(a: &Tensor<f64>, b: &Tensor<f64>) -> f64 {
    assert_eq!(a.shape(), b.shape());
    a.data()
        .iter()
        .zip(b.data())
        .map(|(u, v)| (u - v).abs())
        .fold(0.0, f64::max)
}

/// conv2d by its definition: a sum over the kernel at every output pixel.
fn direct_conv2d(
    x: &Tensor<f64>,
    weight: &Tensor<f64>,
    bias: Option<&Tensor<f64>>,
    options: Conv2dOptions,
) -> Tensor<f64> {
    let (s, p) = (options.stride as isize, options.padding as isize);
    let &[n, c, h, w] = x.dims() else { panic!() };
    let &[o, _, kh, kw] = weight.dims() else {
        panic!()
    };
    let oh = (h + 2 * options.padding - kh) / options.stride + 1;
    let ow = (w + 2 * options.padding - kw) / options.stride + 1;
    let (xd, wd) = (x.data(), weight.data());
    let mut out = vec![0.0; n * o * oh * ow];
    for b in 0..n {
        for oc in 0..o {
            for y in 0..oh {
                for xx in 0..ow {
                    let mut acc = bias.map_or(0.0, |t| t.data()[oc]);
                    for ci in 0..c {
                        for i in 0..kh {
                            for j in 0..kw {
                                let iy = y as isize * s + i as isize - p;
                                let ix = xx as isize * s + j as isize - p;
                                if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                    continue;
                                }
                                let (iy, ix) = (iy as usize, ix as usize);
                                acc += wd[((oc * c + ci) * kh + i) * kw + j]
                                    * xd[((b * c + ci) * h + iy) * w + ix];
                            }
                        }
                    }
                    out[((b * o + oc) * oh + y) * ow + xx] = acc;
                }
            }
        }
    }
    Tensor::from_vec(out, [n, o, oh, ow])
}

/// conv_transpose2d by its definition: every input pixel scatters its scaled kernel.
fn direct_conv_transpose2d(
    x: &Tensor<f64>,
    weight: &Tensor<f64>,
    bias: Option<&Tensor<f64>>,
    options: Conv2dOptions,
) -> Tensor<f64> {
    let (s, p) = (options.stride as isize, options.padding as isize);
    let &[n, c_in, h, w] = x.dims() else { panic!() };
    let &[_, c_out, kh, kw] = weight.dims() else {
        panic!()
    };
    let oh = (h - 1) * options.stride + kh - 2 * options.padding;
    let ow = (w - 1) * options.stride + kw - 2 * options.padding;
    let (xd, wd) = (x.data(), weight.data());
    let mut out = vec![0.0; n * c_out * oh * ow];
    for b in 0..n {
        for oc in 0..c_out {
            let plane = &mut out[(b * c_out + oc) * oh * ow..][..oh * ow];
            plane.fill(bias.map_or(0.0, |t| t.data()[oc]));
            for ci in 0..c_in {
                for y in 0..h {
                    for xx in 0..w {
                        let v = xd[((b * c_in + ci) * h + y) * w + xx];
                        for i in 0..kh {
                            for j in 0..kw {
                                let oy = y as isize * s + i as isize - p;
                                let ox = xx as isize * s + j as isize - p;
                                if oy < 0 || ox < 0 || oy >= oh as isize || ox >= ow as isize {
                                    continue;
                                }
                                plane[oy as usize * ow + ox as usize] +=
                                    v * wd[((ci * c_out + oc) * kh + i) * kw + j];
                            }
                        }
                    }
                }
            }
        }
    }
    Tensor::from_vec(out, [n, c_out, oh, ow])
}

/// avg_pool2d by its definition: the mean of each window.
fn direct_avg_pool2d(x: &Tensor<f64>, kernel: usize, stride: usize) -> Tensor<f64> {
    let &[n, c, h, w] = x.dims() else { panic!() };
    let (oh, ow) = ((h - kernel) / stride + 1, (w - kernel) / stride + 1);
    let mut out = Vec::with_capacity(n * c * oh * ow);
    for plane in x.data().chunks(h * w) {
        for y in 0..oh {
            for xx in 0..ow {
                let mut sum = 0.0;
                for i in 0..kernel {
                    for j in 0..kernel {
                        sum += plane[(y * stride + i) * w + xx * stride + j];
                    }
                }
                out.push(sum / (kernel * kernel) as f64);
            }
        }
    }
    Tensor::from_vec(out, [n, c, oh, ow])
}

#[test]
fn im2col_and_col2im_to_second_order() {
    let mut r = rng(10);
    for options in OPTIONS {
        for _ in 0..3 {
            let k = Case::random(&mut r);
            let (oh, ow) = k.out(options);
            let x = randn(&mut r, &[k.n, k.c, k.h, k.w]);
            let cols = randn(&mut r, &[k.n, k.c * k.kh * k.kw, oh * ow]);
            let what = format!("{k:?}, {options:?}");
            check(
                &format!("im2col {what}"),
                &|v| v[0].im2col(k.kh, k.kw, options),
                std::slice::from_ref(&x),
                2,
            );
            check(
                &format!("im2col then square {what}"),
                &|v| v[0].im2col(k.kh, k.kw, options).square(),
                &[x],
                2,
            );
            check(
                &format!("col2im {what}"),
                &|v| v[0].col2im(k.c, k.h, k.w, k.kh, k.kw, options),
                std::slice::from_ref(&cols),
                2,
            );
            check(
                &format!("col2im then square {what}"),
                &|v| v[0].col2im(k.c, k.h, k.w, k.kh, k.kw, options).square(),
                &[cols],
                2,
            );
        }
    }
}

#[test]
fn col2im_is_the_adjoint_of_im2col() {
    let mut r = rng(11);
    for options in OPTIONS {
        for _ in 0..5 {
            let k = Case::random(&mut r);
            let (oh, ow) = k.out(options);
            let x = randn(&mut r, &[k.n, k.c, k.h, k.w]);
            let cols = randn(&mut r, &[k.n, k.c * k.kh * k.kw, oh * ow]);
            let lhs = inner(&x.im2col(k.kh, k.kw, options), &cols);
            let rhs = inner(&x, &cols.col2im(k.c, k.h, k.w, k.kh, k.kw, options));
            assert!(
                (lhs - rhs).abs() < 1e-12,
                "{k:?} {options:?}: {lhs} vs {rhs}"
            );
        }
    }
}

#[test]
fn im2col_matches_its_definition() {
    // Channel 0 of a 1x2x3x4 image is 0..12, channel 1 is 100..112; 2x2 kernel, stride 2,
    // padding 1 gives 2x3 positions.
    let values: Vec<f64> = (0..12).chain(100..112).map(f64::from).collect();
    let x = Tensor::<f64>::from_vec(values, [1, 2, 3, 4]);
    let options = Conv2dOptions {
        stride: 2,
        padding: 1,
    };
    let cols = x.im2col(2, 2, options);
    assert_eq!(cols.dims(), &[1, 8, 6]);
    // Rows (channel 0, ki, kj) then (channel 1, ki, kj); 0 marks padding.
    let expected = [
        [0., 0., 0., 0., 5., 7.],
        [0., 0., 0., 4., 6., 0.],
        [0., 1., 3., 0., 9., 11.],
        [0., 2., 0., 8., 10., 0.],
        [0., 0., 0., 0., 105., 107.],
        [0., 0., 0., 104., 106., 0.],
        [0., 101., 103., 0., 109., 111.],
        [100., 102., 0., 108., 110., 0.],
    ];
    assert_eq!(cols.data(), expected.concat());
}

#[test]
fn conv2d_with_and_without_bias_to_second_order() {
    let mut r = rng(12);
    for options in OPTIONS {
        for _ in 0..3 {
            let k = Case::random(&mut r);
            let x = randn(&mut r, &[k.n, k.c, k.h, k.w]);
            let weight = randn(&mut r, &[k.o, k.c, k.kh, k.kw]);
            let bias = randn(&mut r, &[k.o]);
            let what = format!("{k:?}, {options:?}");
            check(
                &format!("conv2d {what}"),
                &|v| v[0].conv2d(&v[1], None, options),
                &[x.clone(), weight.clone()],
                2,
            );
            check(
                &format!("conv2d with bias, then silu {what}"),
                &|v| v[0].conv2d(&v[1], Some(&v[2]), options).silu(),
                &[x, weight, bias],
                2,
            );
        }
    }
}

#[test]
fn conv_transpose2d_with_and_without_bias_to_second_order() {
    let mut r = rng(13);
    for options in OPTIONS {
        let mut done = 0;
        while done < 3 {
            let mut k = Case::random(&mut r);
            (k.h, k.w) = (r.random_range(2..=4), r.random_range(2..=4));
            if k.out_transposed(options).is_none() {
                continue;
            }
            done += 1;
            let x = randn(&mut r, &[k.n, k.c, k.h, k.w]);
            let weight = randn(&mut r, &[k.c, k.o, k.kh, k.kw]);
            let bias = randn(&mut r, &[k.o]);
            let what = format!("{k:?}, {options:?}");
            check(
                &format!("conv_transpose2d {what}"),
                &|v| v[0].conv_transpose2d(&v[1], None, options),
                &[x.clone(), weight.clone()],
                2,
            );
            check(
                &format!("conv_transpose2d with bias, then silu {what}"),
                &|v| v[0].conv_transpose2d(&v[1], Some(&v[2]), options).silu(),
                &[x, weight, bias],
                2,
            );
        }
    }
}

#[test]
fn avg_pool2d_to_second_order() {
    let mut r = rng(14);
    for kernel in 1..=3 {
        for stride in 1..=2 {
            let (h, w) = (r.random_range(kernel..=6), r.random_range(kernel..=6));
            let dims = [r.random_range(1..=2), r.random_range(1..=3), h, w];
            let x = randn(&mut r, &dims);
            let what = format!("kernel {kernel}, stride {stride}");
            check(
                &format!("avg_pool2d {what}"),
                &|v| v[0].avg_pool2d(kernel, stride),
                std::slice::from_ref(&x),
                2,
            );
            check(
                &format!("avg_pool2d then silu {what}"),
                &|v| v[0].avg_pool2d(kernel, stride).silu(),
                &[x],
                2,
            );
        }
    }
}

#[test]
fn conv2d_matches_direct_convolution() {
    let mut r = rng(15);
    for options in OPTIONS {
        for _ in 0..5 {
            let k = Case::random(&mut r);
            let x = randn(&mut r, &[k.n, k.c, k.h, k.w]);
            let weight = randn(&mut r, &[k.o, k.c, k.kh, k.kw]);
            let bias = randn(&mut r, &[k.o]);
            for bias in [None, Some(&bias)] {
                let got = x.conv2d(&weight, bias, options);
                let want = direct_conv2d(&x, &weight, bias, options);
                assert!(max_diff(&got, &want) < 1e-12, "{k:?} {options:?}");
            }
        }
    }

    // Large enough for the kernels' parallel path (over 32768 column entries).
    let x = randn(&mut r, &[2, 4, 40, 37]);
    let weight = randn(&mut r, &[5, 4, 3, 2]);
    let bias = randn(&mut r, &[5]);
    for options in OPTIONS {
        let got = x.conv2d(&weight, Some(&bias), options);
        let want = direct_conv2d(&x, &weight, Some(&bias), options);
        assert!(max_diff(&got, &want) < 1e-12, "large, {options:?}");
    }
}

#[test]
fn conv_transpose2d_matches_direct_scatter() {
    let mut r = rng(16);
    for options in OPTIONS {
        for _ in 0..5 {
            let k = Case::random(&mut r);
            let Some((oh, ow)) = k.out_transposed(options) else {
                continue;
            };
            let x = randn(&mut r, &[k.n, k.c, k.h, k.w]);
            let weight = randn(&mut r, &[k.c, k.o, k.kh, k.kw]);
            let bias = randn(&mut r, &[k.o]);
            for bias in [None, Some(&bias)] {
                let got = x.conv_transpose2d(&weight, bias, options);
                assert_eq!(got.dims(), &[k.n, k.o, oh, ow]);
                let want = direct_conv_transpose2d(&x, &weight, bias, options);
                assert!(max_diff(&got, &want) < 1e-12, "{k:?} {options:?}");
            }
        }
    }

    let x = randn(&mut r, &[2, 3, 21, 18]);
    let weight = randn(&mut r, &[3, 4, 3, 3]);
    for options in OPTIONS {
        let got = x.conv_transpose2d(&weight, None, options);
        let want = direct_conv_transpose2d(&x, &weight, None, options);
        assert!(max_diff(&got, &want) < 1e-12, "large, {options:?}");
    }
}

#[test]
fn avg_pool2d_matches_window_means() {
    let mut r = rng(17);
    for kernel in 1..=3 {
        for stride in 1..=3 {
            let dims = [2, 3, r.random_range(kernel..=7), r.random_range(kernel..=7)];
            let x = randn(&mut r, &dims);
            let got = x.avg_pool2d(kernel, stride);
            let want = direct_avg_pool2d(&x, kernel, stride);
            assert!(
                max_diff(&got, &want) < 1e-12,
                "kernel {kernel}, stride {stride}"
            );
        }
    }
}

#[test]
fn conv_transpose2d_is_the_adjoint_of_conv2d() {
    let mut r = rng(18);
    for options in OPTIONS {
        let mut done = 0;
        while done < 5 {
            let k = Case::random(&mut r);
            // The adjoint maps back onto the whole image only when the strides tile it exactly.
            let (s, p) = (options.stride, options.padding);
            if !(k.h + 2 * p - k.kh).is_multiple_of(s) || !(k.w + 2 * p - k.kw).is_multiple_of(s) {
                continue;
            }
            done += 1;
            let (oh, ow) = k.out(options);
            let x = randn(&mut r, &[k.n, k.c, k.h, k.w]);
            let weight = randn(&mut r, &[k.o, k.c, k.kh, k.kw]);
            let y = randn(&mut r, &[k.n, k.o, oh, ow]);
            let lhs = inner(&x.conv2d(&weight, None, options), &y);
            let rhs = inner(&x, &y.conv_transpose2d(&weight, None, options));
            assert!(
                (lhs - rhs).abs() < 1e-12,
                "{k:?} {options:?}: {lhs} vs {rhs}"
            );
        }
    }
}

#[test]
fn conv2d_in_f32_agrees_with_f64() {
    let mut r = rng(19);
    let x = randn(&mut r, &[2, 3, 9, 8]);
    let weight = randn(&mut r, &[4, 3, 3, 3]);
    let bias = randn(&mut r, &[4]);
    let options = OPTIONS[3];
    let want = x.conv2d(&weight, Some(&bias), options);
    let got = x
        .cast::<f32>()
        .conv2d(&weight.cast(), Some(&bias.cast()), options);
    assert!(max_diff(&got.cast(), &want) < 1e-4);
}

#[test]
#[should_panic(expected = "conv2d: the input [1, 2, 5, 5] has 2 channels")]
fn conv2d_rejects_mismatched_channels() {
    let x = Tensor::<f64>::zeros([1, 2, 5, 5]);
    x.conv2d(&Tensor::zeros([4, 3, 3, 3]), None, Conv2dOptions::default());
}

#[test]
#[should_panic(expected = "does not fit a 2x5 image")]
fn conv2d_rejects_a_kernel_larger_than_the_image() {
    let x = Tensor::<f64>::zeros([1, 1, 2, 5]);
    x.conv2d(&Tensor::zeros([1, 1, 3, 3]), None, Conv2dOptions::default());
}

#[test]
#[should_panic(expected = "conv2d: the bias must have shape [4]")]
fn conv2d_rejects_a_bias_of_the_wrong_length() {
    let x = Tensor::<f64>::zeros([1, 3, 5, 5]);
    let weight = Tensor::zeros([4, 3, 3, 3]);
    x.conv2d(&weight, Some(&Tensor::zeros([3])), Conv2dOptions::default());
}

#[test]
#[should_panic(expected = "col2im: columns of shape [1, 9, 5]")]
fn col2im_rejects_columns_of_the_wrong_shape() {
    Tensor::<f64>::zeros([1, 9, 5]).col2im(1, 4, 4, 3, 3, Conv2dOptions::default());
}
