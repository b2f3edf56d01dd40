//! Image transforms: pixel counts to `[0, 1]` or `[-1, 1]`, with optional uniform
//! dequantisation.

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
}
