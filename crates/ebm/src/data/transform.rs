//! Image transforms: pixel counts to `[0, 1]` or `[-1, 1]`, with optional uniform
//! dequantisation, and resizing (to score one image set with a model of another's size).

use crate::Error;
use ebm_tensor::Tensor;
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// The range that pixel values are mapped to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PixelRange {
    /// `[0, 1]`.
    Unit,
    /// `[-1, 1]` (the range most image EBMs use; the default).
    #[default]
    Symmetric,
}

impl PixelRange {
    /// The name a config or flag gives it: `unit` or `symmetric`.
    pub fn name(self) -> &'static str {
        match self {
            PixelRange::Unit => "unit",
            PixelRange::Symmetric => "symmetric",
        }
    }

    /// The interval `(low, high)`.
    pub fn bounds(self) -> (f64, f64) {
        match self {
            PixelRange::Unit => (0.0, 1.0),
            PixelRange::Symmetric => (-1.0, 1.0),
        }
    }
}

/// How [`super::Dataset::batch`] turns quantised pixels (integers `v` in `0..L`, `L` the
/// number of levels: 256 for bytes, 17 for the digits) into model inputs.
///
/// Formula, per entry:
/// * plain: `x = v / (L - 1)`, so 0 maps to 0 and the brightest value to exactly 1;
/// * dequantised: `x = (v + u) / L` with `u ~ U(0, 1)` drawn afresh for every entry of every
///   batch, which spreads each level over its own bin `[v / L, (v + 1) / L)` and turns the
///   discrete data into a continuous density (Theis et al. 2016, "A note on the evaluation of
///   generative models"); for bytes this is "add U(0, 1) / 256 noise to v / 256". The
///   result lies in `[0, 1)`.
///
/// With [`PixelRange::Symmetric`], `x` is then mapped to `2 x - 1`.
///
/// Defaults: `[-1, 1]`, no dequantisation.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImageTransform {
    /// The output range (default [`PixelRange::Symmetric`], `[-1, 1]`).
    pub range: PixelRange,
    /// Add uniform noise inside each level's bin (default `false`).
    pub dequantize: bool,
}

impl ImageTransform {
    /// To `[0, 1]`, no dequantisation.
    pub fn unit() -> Self {
        ImageTransform {
            range: PixelRange::Unit,
            dequantize: false,
        }
    }

    /// To `[-1, 1]`, no dequantisation.
    pub fn symmetric() -> Self {
        ImageTransform {
            range: PixelRange::Symmetric,
            dequantize: false,
        }
    }

    /// The same transform with uniform dequantisation switched on.
    pub fn dequantized(self) -> Self {
        ImageTransform {
            dequantize: true,
            ..self
        }
    }

    /// Applies the transform to pixel values `0..levels`, in place.
    pub fn apply_in_place<R: Rng + ?Sized>(&self, values: &mut [f64], levels: u32, rng: &mut R) {
        let levels = levels as f64;
        for v in values.iter_mut() {
            let unit = if self.dequantize {
                (*v + rng.random::<f64>()) / levels
            } else {
                *v / (levels - 1.0).max(1.0)
            };
            *v = match self.range {
                PixelRange::Unit => unit,
                PixelRange::Symmetric => 2.0 * unit - 1.0,
            };
        }
    }
}

/// Resizes images `[n, c, h, w]` to `[n, c, height, width]` by bilinear interpolation, with
/// the corner pixels of the input and the output aligned: output pixel (i, j) reads the input
/// at (i (h - 1) / (height - 1), j (w - 1) / (width - 1)), between its four nearest pixels.
/// So a constant image stays constant, an image linear in the pixel indices stays linear, and
/// the output stays within the input's range. Used to score the 8 x 8 digits with a 28 x 28
/// model (out-of-distribution checks); it does not low-pass filter, so strong downscaling
/// aliases.
///
/// ```
/// use ebm_tensor::Tensor;
/// let x = Tensor::from_f64s(&[0.0, 1.0, 2.0, 3.0], [1, 1, 2, 2]);
/// let y = ebm::data::resize_bilinear(&x, 3, 3).unwrap();
/// assert_eq!(y.data()[4], 1.5); // the centre, the mean of the four corners
/// ```
///
/// # Errors
/// [`Error::Shape`] for input that is not `[n, c, h, w]` or an empty output size.
pub fn resize_bilinear(
    images: &Tensor<f64>,
    height: usize,
    width: usize,
) -> Result<Tensor<f64>, Error> {
    let &[n, c, h, w] = images.dims() else {
        return Err(Error::Shape {
            what: "resizing images".into(),
            expected: "[n, c, h, w]".into(),
            found: images.dims().to_vec(),
        });
    };
    if height == 0 || width == 0 || h == 0 || w == 0 {
        return Err(Error::Shape {
            what: format!("resizing images to {height} x {width}"),
            expected: "non-empty images and output size".into(),
            found: images.dims().to_vec(),
        });
    }
    // Where output index i reads along an axis of input length `len`: the lower neighbour
    // and the weight of the upper one.
    let taps = |len: usize, out: usize| -> Vec<(usize, f64)> {
        (0..out)
            .map(|i| {
                let pos = if out == 1 {
                    0.0
                } else {
                    i as f64 * (len - 1) as f64 / (out - 1) as f64
                };
                let lo = (pos.floor() as usize).min(len - 1);
                (lo, pos - lo as f64)
            })
            .collect()
    };
    let (rows, cols) = (taps(h, height), taps(w, width));
    let src = images.data();
    let mut out = Vec::with_capacity(n * c * height * width);
    for plane in src.chunks(h * w) {
        for &(r, fr) in &rows {
            let r1 = (r + 1).min(h - 1);
            for &(q, fq) in &cols {
                let q1 = (q + 1).min(w - 1);
                let top = plane[r * w + q] * (1.0 - fq) + plane[r * w + q1] * fq;
                let bottom = plane[r1 * w + q] * (1.0 - fq) + plane[r1 * w + q1] * fq;
                out.push(top * (1.0 - fr) + bottom * fr);
            }
        }
    }
    Ok(Tensor::from_vec(out, vec![n, c, height, width]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn plain_transforms_map_the_end_levels_to_the_ends_of_the_range() {
        // Exact arithmetic on small integers: 0, 255/255 and 51/255 = 0.2.
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let mut v = vec![0.0, 255.0, 51.0];
        ImageTransform::unit().apply_in_place(&mut v, 256, &mut rng);
        assert_eq!(v, [0.0, 1.0, 0.2]);
        let mut v = vec![0.0, 16.0, 8.0];
        ImageTransform::symmetric().apply_in_place(&mut v, 17, &mut rng);
        assert_eq!(v, [-1.0, 1.0, 0.0]);
    }

    #[test]
    fn dequantisation_fills_each_bin_uniformly() {
        // Level v lands in [v / L, (v + 1) / L) (exact bounds). The mean of the noise part
        // x L - v is 1/2, with standard error 0.29 / sqrt(100,000) = 0.0009: bound 0.005.
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let raw: Vec<f64> = (0..100_000).map(|i| (i % 256) as f64).collect();
        let mut v = raw.clone();
        ImageTransform::unit()
            .dequantized()
            .apply_in_place(&mut v, 256, &mut rng);
        let mut noise = 0.0;
        for (x, r) in v.iter().zip(&raw) {
            assert!(*x >= r / 256.0 && *x < (r + 1.0) / 256.0, "{r} -> {x}");
            noise += x * 256.0 - r;
        }
        assert!(
            (noise / 1e5 - 0.5).abs() < 0.005,
            "mean noise {}",
            noise / 1e5
        );

        let mut v = raw.clone();
        ImageTransform::symmetric()
            .dequantized()
            .apply_in_place(&mut v, 256, &mut rng);
        assert!(v.iter().all(|x| (-1.0..1.0).contains(x)));
    }

    #[test]
    fn resizing_keeps_constants_and_linear_images_and_the_range() {
        // An image linear in the pixel indices, a + b r + c q, resized from 8 x 8 to 28 x 28
        // is the same linear function of the input coordinates the output pixels read
        // (bilinear interpolation is exact on linear functions): checked to 1e-12, rounding
        // on values of order 10.
        let (h, w) = (8, 8);
        let f = |r: f64, q: f64| 0.5 + 0.7 * r - 0.3 * q;
        let mut v = Vec::new();
        for _plane in 0..2 {
            for r in 0..h {
                for q in 0..w {
                    v.push(f(r as f64, q as f64));
                }
            }
        }
        let x = Tensor::from_vec(v, vec![2, 1, h, w]);
        let y = resize_bilinear(&x, 28, 28).unwrap();
        assert_eq!(y.dims(), &[2, 1, 28, 28]);
        let scale = 7.0 / 27.0;
        for (k, value) in y.data().iter().enumerate() {
            let (i, j) = ((k / 28) % 28, k % 28);
            let expected = f(i as f64 * scale, j as f64 * scale);
            assert!(
                (value - expected).abs() < 1e-12,
                "pixel {k}: {value} vs {expected}"
            );
        }
        // Corners are copied exactly; the same size is the identity.
        assert_eq!(y.data()[0], f(0.0, 0.0));
        assert_eq!(y.data()[28 * 28 - 1], f(7.0, 7.0));
        assert_eq!(resize_bilinear(&x, 8, 8).unwrap().data(), x.data());

        // Random pixels in [0, 1] stay in [0, 1] (convex combinations).
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let noise: Vec<f64> = (0..64).map(|_| rng.random::<f64>()).collect();
        let z = resize_bilinear(&Tensor::from_vec(noise, vec![1, 1, 8, 8]), 13, 5).unwrap();
        assert!(z.data().iter().all(|v| (0.0..=1.0).contains(v)));

        let e = resize_bilinear(&Tensor::<f64>::zeros([4, 64]), 28, 28).unwrap_err();
        assert!(e.to_string().contains("[n, c, h, w]"), "{e}");
    }
}
