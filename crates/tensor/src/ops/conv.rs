//! Two-dimensional convolution, its transpose, and average pooling.
//!
//! All three are built from one pair of mutually adjoint linear maps, [`Tensor::im2col`] and
//! [`Tensor::col2im`] (each one's backward rule is the other), together with matrix products
//! and reshapes. Their gradients, to any order, come from those rules: nothing here records a
//! rule of its own except the pair.

use crate::kernels::conv::{Patches, col2im, im2col};
use crate::{Float, Shape, Tensor};

/// Stride and zero padding of a 2-D convolution (dilation is 1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Conv2dOptions {
    /// Step between kernel positions, in pixels (both axes).
    pub stride: usize,
    /// Zeros added on each side of both spatial axes.
    pub padding: usize,
}

impl Default for Conv2dOptions {
    fn default() -> Self {
        Conv2dOptions {
            stride: 1,
            padding: 0,
        }
    }
}

impl<T: Float> Tensor<T> {
    /// The patches of a batch of images, one column per kernel position (PyTorch's `unfold`).
    ///
    /// Row `(ci * kh + ki) * kw + kj` and column `oy * ow + ox` of item `b` hold
    ///
    /// ```text
    /// x[b, ci, oy * stride + ki - padding, ox * stride + kj - padding]
    /// ```
    ///
    /// or zero where that position lies in the padding. The map is linear; its adjoint is
    /// [`Tensor::col2im`], which is also its backward rule.
    ///
    /// # Shapes
    /// `[n, c, h, w] -> [n, c * kh * kw, oh * ow]` with `oh = (h + 2 padding - kh) / stride + 1`
    /// and `ow = (w + 2 padding - kw) / stride + 1`, rounded down (positions that do not fit a
    /// whole kernel are dropped).
    ///
    /// # Panics
    /// When this tensor is not of rank 4, the stride or a kernel extent is zero, or the kernel
    /// does not fit in the padded image.
    #[track_caller]
    pub fn im2col(&self, kh: usize, kw: usize, options: Conv2dOptions) -> Tensor<T> {
        let [n, c, h, w] = image_dims("im2col", self.shape());
        let g = patches("im2col", (h, w), (kh, kw), options);
        let shape = Shape::new(&[n, c * kh * kw, g.oh * g.ow]);
        Tensor::from_op(
            im2col(self.data(), &g),
            shape,
            "im2col",
            [self],
            move |ctx| vec![Some(ctx.grad.col2im(c, h, w, kh, kw, options))],
        )
    }

    /// Columns added back into images: the adjoint of [`Tensor::im2col`] for images of `c`
    /// channels of `h` x `w` pixels. Each entry is added to the pixel that im2col copied it
    /// from, so overlapping patches accumulate and entries in the padding are dropped. Its
    /// backward rule is [`Tensor::im2col`].
    ///
    /// # Shapes
    /// `[n, c * kh * kw, oh * ow] -> [n, c, h, w]`, with `oh` and `ow` as in
    /// [`Tensor::im2col`] for an `h` x `w` image.
    ///
    /// # Panics
    /// When this shape does not match the one im2col gives for these sizes, or the geometry is
    /// invalid (as for [`Tensor::im2col`]).
    #[track_caller]
    pub fn col2im(
        &self,
        c: usize,
        h: usize,
        w: usize,
        kh: usize,
        kw: usize,
        options: Conv2dOptions,
    ) -> Tensor<T> {
        let g = patches("col2im", (h, w), (kh, kw), options);
        let rows = c * kh * kw;
        let dims = self.dims();
        assert!(
            dims.len() == 3 && dims[1] == rows && dims[2] == g.oh * g.ow,
            "col2im: columns of shape {} do not fit images [_, {c}, {h}, {w}] with a {kh}x{kw} kernel and {options:?}: expected [_, {rows}, {}]",
            self.shape(),
            g.oh * g.ow
        );
        let shape = Shape::new(&[dims[0], c, h, w]);
        Tensor::from_op(
            col2im(self.data(), &g),
            shape,
            "col2im",
            [self],
            move |ctx| vec![Some(ctx.grad.im2col(kh, kw, options))],
        )
    }

    /// The 2-D convolution (cross-correlation, as PyTorch's `conv2d`) of a batch of images with
    /// a bank of kernels, plus an optional bias per output channel:
    ///
    /// ```text
    /// out[b, o, y, x] = bias[o] + sum_{c, i, j} weight[o, c, i, j]
    ///                             * x[b, c, y * stride + i - padding, x * stride + j - padding]
    /// ```
    ///
    /// with zeros outside the image. Computed as `weight [o, c * kh * kw]` times
    /// [`Tensor::im2col`] of the input.
    ///
    /// # Shapes
    /// `self: [n, c, h, w]`, `weight: [o, c, kh, kw]`, `bias: [o]` ->
    /// `[n, o, oh, ow]` with `oh = (h + 2 padding - kh) / stride + 1` (rounded down), likewise
    /// `ow`.
    ///
    /// # Cost
    /// `2 n o c kh kw oh ow` flops, and a column buffer of `n c kh kw oh ow` elements.
    ///
    /// # Panics
    /// When the shapes do not agree as above, or the kernel does not fit in the padded image.
    ///
    /// # Example
    /// ```
    /// use ebm_tensor::{Conv2dOptions, Tensor};
    /// let x = Tensor::<f32>::ones([2, 3, 8, 8]);
    /// let weight = Tensor::<f32>::ones([4, 3, 3, 3]);
    /// let options = Conv2dOptions { stride: 2, padding: 1 };
    /// let y = x.conv2d(&weight, None, options);
    /// assert_eq!(y.dims(), &[2, 4, 4, 4]);
    /// assert_eq!(y.data()[5], 27.0); // an inner position sees the whole 3x3x3 kernel
    /// ```
    #[track_caller]
    pub fn conv2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        options: Conv2dOptions,
    ) -> Tensor<T> {
        let [n, c, h, w] = image_dims("conv2d", self.shape());
        let [o, wc, kh, kw] = weight_dims("conv2d", weight.shape());
        assert_eq!(
            c,
            wc,
            "conv2d: the input {} has {c} channels but the weight {} (shape [out, in, kh, kw]) expects {wc}",
            self.shape(),
            weight.shape()
        );
        let g = patches("conv2d", (h, w), (kh, kw), options);

        let cols = self.im2col(kh, kw, options);
        let out = weight
            .reshape([o, c * kh * kw])
            .matmul(&cols)
            .reshape([n, o, g.oh, g.ow]);
        add_bias("conv2d", out, bias)
    }

    /// The transposed 2-D convolution (PyTorch's `conv_transpose2d` with `output_padding` 0 and
    /// dilation 1): every input pixel scatters a copy of its kernel, scaled by its value, into
    /// the output, kernels `stride` apart, after which `padding` pixels are cut from each side:
    ///
    /// ```text
    /// out[b, o, y * stride + i - padding, x * stride + j - padding]
    ///     += x[b, c, y, x] * weight[c, o, i, j]           (plus bias[o] everywhere)
    /// ```
    ///
    /// Computed as `weight^T` times the input, then [`Tensor::col2im`]. Without the bias it is
    /// the adjoint of [`Tensor::conv2d`] with the same weight and options, from images of the
    /// output's size, whenever `h + 2 padding - kh` of those images is a multiple of `stride`
    /// (otherwise conv2d drops their last rows or columns, which PyTorch's `output_padding`
    /// would restore; it is not supported here).
    ///
    /// # Shapes
    /// `self: [n, c_in, h, w]`, `weight: [c_in, c_out, kh, kw]` (as PyTorch's
    /// `ConvTranspose2d`), `bias: [c_out]` -> `[n, c_out, oh, ow]` with
    /// `oh = (h - 1) stride - 2 padding + kh`, likewise `ow`.
    ///
    /// # Cost
    /// As [`Tensor::conv2d`] from the output to the input: `2 n c_in c_out kh kw h w` flops, and
    /// a column buffer of `n c_out kh kw h w` elements.
    ///
    /// # Panics
    /// When the shapes do not agree as above, or the output would be empty.
    #[track_caller]
    pub fn conv_transpose2d(
        &self,
        weight: &Tensor<T>,
        bias: Option<&Tensor<T>>,
        options: Conv2dOptions,
    ) -> Tensor<T> {
        let [n, c_in, h, w] = image_dims("conv_transpose2d", self.shape());
        let [wc, c_out, kh, kw] = weight_dims("conv_transpose2d", weight.shape());
        assert_eq!(
            c_in,
            wc,
            "conv_transpose2d: the input {} has {c_in} channels but the weight {} (shape [in, out, kh, kw]) expects {wc}",
            self.shape(),
            weight.shape()
        );
        let (s, p) = (options.stride, options.padding);
        let out_len = |len: usize, k: usize| {
            let full = len.saturating_sub(1) * s + k;
            assert!(
                s > 0 && len > 0 && full > 2 * p,
                "conv_transpose2d: input {} with a {kh}x{kw} kernel and {options:?} gives an empty output",
                self.shape()
            );
            full - 2 * p
        };
        let (oh, ow) = (out_len(h, kh), out_len(w, kw));

        // weight^T [c_out * kh * kw, c_in] times each item's pixels [c_in, h * w].
        let weight = weight.reshape([c_in, c_out * kh * kw]);
        let cols = weight.matmul_t(&self.reshape([n, c_in, h * w]), true, false);
        let out = cols.col2im(c_out, oh, ow, kh, kw, options);
        add_bias("conv_transpose2d", out, bias)
    }

    /// The mean over each `kernel` x `kernel` window, windows `stride` apart, with no padding
    /// (PyTorch's `avg_pool2d` with padding 0 and `ceil_mode` false): the mean over the rows of
    /// each channel's block of [`Tensor::im2col`].
    ///
    /// # Shapes
    /// `[n, c, h, w] -> [n, c, oh, ow]` with `oh = (h - kernel) / stride + 1` (rounded down),
    /// likewise `ow`.
    ///
    /// # Panics
    /// When this tensor is not of rank 4, `kernel` or `stride` is zero, or the window is larger
    /// than the image.
    #[track_caller]
    pub fn avg_pool2d(&self, kernel: usize, stride: usize) -> Tensor<T> {
        let [n, c, h, w] = image_dims("avg_pool2d", self.shape());
        let options = Conv2dOptions { stride, padding: 0 };
        let g = patches("avg_pool2d", (h, w), (kernel, kernel), options);
        self.im2col(kernel, kernel, options)
            .reshape([n, c, kernel * kernel, g.oh * g.ow])
            .mean_axes(&[2], false)
            .reshape([n, c, g.oh, g.ow])
    }
}

/// The extents of a batch of images, `[n, c, h, w]`.
#[track_caller]
fn image_dims(op: &str, shape: &Shape) -> [usize; 4] {
    shape
        .dims()
        .try_into()
        .unwrap_or_else(|_| panic!("{op}: images must have shape [n, c, h, w], got {shape}"))
}

/// The extents of a bank of kernels, `[out, in, kh, kw]` (or `[in, out, kh, kw]`).
#[track_caller]
fn weight_dims(op: &str, shape: &Shape) -> [usize; 4] {
    shape
        .dims()
        .try_into()
        .unwrap_or_else(|_| panic!("{op}: the weight must have rank 4, got {shape}"))
}

/// The geometry of a convolution, panicking with the sizes when it has no output.
#[track_caller]
fn patches(
    op: &str,
    image: (usize, usize),
    kernel: (usize, usize),
    options: Conv2dOptions,
) -> Patches {
    Patches::new(image, kernel, options.stride, options.padding).unwrap_or_else(|| {
        panic!(
            "{op}: a {}x{} kernel with {options:?} does not fit a {}x{} image (the stride and kernel must be positive, and the kernel no larger than the padded image)",
            kernel.0, kernel.1, image.0, image.1
        )
    })
}

/// `out + bias` with the bias broadcast over the batch and the pixels.
#[track_caller]
fn add_bias<T: Float>(op: &str, out: Tensor<T>, bias: Option<&Tensor<T>>) -> Tensor<T> {
    let Some(bias) = bias else {
        return out;
    };
    let channels = out.dims()[1];
    assert_eq!(
        bias.dims(),
        &[channels],
        "{op}: the bias must have shape [{channels}] (one per output channel), got {}",
        bias.shape()
    );
    out + bias.reshape([1, channels, 1, 1])
}
