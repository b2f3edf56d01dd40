//! Sets built on a square grid: `25gaussians` and `checkerboard`.

use super::{Points, normal, to_tensor};
use ebm_tensor::{Float, Tensor};
use rand::{Rng, RngExt};

/// Distance between neighbouring `25gaussians` centres, before scaling.
const GRID_SPACING: f64 = 2.0;
/// Standard deviation of each `25gaussians` component, before scaling.
const GRID_STD: f64 = 0.05;
/// `25gaussians` points are divided by this, like those of `8gaussians`.
const GRID_SCALE: f64 = 1.414;
/// Side of one `checkerboard` square.
const SQUARE: f64 = 2.0;

/// `n` points of `25gaussians`: an equal mixture of 25 isotropic Gaussians whose centres form
/// a 5 x 5 grid, `(2 i, 2 j) / 1.414` for `i, j` in `-2..=2` (so the outer centres sit at
/// +-2.83, like the `8gaussians` circle), each with standard deviation `0.05 / 1.414 = 0.035`.
///
/// The narrow, well separated modes make it a test of mode coverage: a sampler that mixes
/// badly leaves some of the 25 empty.
///
/// # Shapes
/// Returns `[n, 2]`.
pub fn twenty_five_gaussians<T: Float, R: Rng + ?Sized>(n: usize, rng: &mut R) -> Tensor<T> {
    to_tensor(&grid_points(n, GRID_STD, rng))
}

/// The centres and the component standard deviation of `25gaussians`, after scaling.
pub(super) fn grid_components() -> (Vec<[f64; 2]>, f64) {
    let mut centres = Vec::with_capacity(25);
    for i in -2..=2 {
        for j in -2..=2 {
            let (x, y) = (GRID_SPACING * i as f64, GRID_SPACING * j as f64);
            centres.push([x / GRID_SCALE, y / GRID_SCALE]);
        }
    }
    (centres, GRID_STD / GRID_SCALE)
}

/// `n` points of the 25-Gaussian grid with component standard deviation `std` (before the
/// division by 1.414).
pub(super) fn grid_points<R: Rng + ?Sized>(n: usize, std: f64, rng: &mut R) -> Points {
    (0..n)
        .map(|_| {
            let i = rng.random_range(-2..=2) as f64;
            let j = rng.random_range(-2..=2) as f64;
            let x = GRID_SPACING * i + std * normal(rng);
            let y = GRID_SPACING * j + std * normal(rng);
            [x / GRID_SCALE, y / GRID_SCALE]
        })
        .collect()
}

/// `n` points of `checkerboard`: uniform on the 8 dark squares of a 4 x 4 board of squares of
/// side 2 that covers `[-4, 4]^2`. A square `[-4 + 2 c, -2 + 2 c) x [-4 + 2 r, -2 + 2 r)`
/// (column `c`, row `r` in `0..4`) is dark when `c + r` is even, so the square at the
/// bottom-left corner is dark.
///
/// The density is flat with sharp edges: no smooth energy fits it exactly, which shows how a
/// model spends its capacity.
///
/// # Shapes
/// Returns `[n, 2]`.
pub fn checkerboard<T: Float, R: Rng + ?Sized>(n: usize, rng: &mut R) -> Tensor<T> {
    to_tensor(&checkerboard_points(n, rng))
}

/// `n` points of [`checkerboard`], as pairs.
pub(super) fn checkerboard_points<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Points {
    (0..n)
        .map(|_| {
            // A column, then one of the two dark rows of that column (same parity as c).
            let c = rng.random_range(0..4_u32);
            let r = 2 * rng.random_range(0..2_u32) + c % 2;

            // A uniform point inside that square.
            let x = -4.0 + SQUARE * (c as f64 + rng.random::<f64>());
            let y = -4.0 + SQUARE * (r as f64 + rng.random::<f64>());
            [x, y]
        })
        .collect()
}

/// `true` when `p` lies in a dark square of the checkerboard (half-open squares).
#[cfg(test)]
fn is_dark(p: [f64; 2]) -> bool {
    let c = ((p[0] + 4.0) / SQUARE).floor();
    let r = ((p[1] + 4.0) / SQUARE).floor();
    (0.0..4.0).contains(&c) && (0.0..4.0).contains(&r) && (c + r) as i64 % 2 == 0
}

#[cfg(test)]
mod tests {
    use super::super::test_util::moments;
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn twenty_five_gaussians_has_the_grid_moments() {
        // Each coordinate has mean 0 and variance (4 E[i^2] + std^2) / 1.414^2, with
        // E[i^2] = 2 for i uniform in -2..=2: 8.0025 / 1.999 = 4.003. With 200,000 points the
        // standard error of the mean is 0.0045 and that of the variance about 0.01 (the
        // 5-point grid has a light fourth moment), so 0.025 and 0.06 are 5-sigma bounds.
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let points = grid_points(200_000, GRID_STD, &mut rng);
        let (mean, var) = moments(&points);
        let expected = (GRID_SPACING.powi(2) * 2.0 + GRID_STD.powi(2)) / GRID_SCALE.powi(2);
        for axis in 0..2 {
            assert!(mean[axis].abs() < 0.025, "axis {axis}: mean {}", mean[axis]);
            assert!(
                (var[axis] - expected).abs() < 0.06,
                "axis {axis}: {}",
                var[axis]
            );
        }
    }

    #[test]
    fn twenty_five_gaussians_points_sit_near_a_centre_and_every_centre_is_used() {
        // Distance to the nearest centre in units of the component std, per axis: a normal
        // draw beyond 6 sigma has probability 2e-9, so none of 20,000 x 2 should be there.
        // Each centre gets 1/25 of the points: 800 +- 28 expected, so [600, 1000] is 7 sigma.
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let points = grid_points(20_000, GRID_STD, &mut rng);
        let mut counts = [0_usize; 25];
        let std = GRID_STD / GRID_SCALE;
        for p in &points {
            let cell = p.map(|v| (v * GRID_SCALE / GRID_SPACING).round());
            for axis in 0..2 {
                let centre = cell[axis] * GRID_SPACING / GRID_SCALE;
                assert!(
                    (p[axis] - centre).abs() < 6.0 * std,
                    "{p:?} far from the grid"
                );
            }
            counts[(cell[0] + 2.0) as usize * 5 + (cell[1] + 2.0) as usize] += 1;
        }
        assert!(
            counts.iter().all(|&c| (600..=1000).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn checkerboard_points_fall_only_in_dark_squares_evenly() {
        // Structure is exact (no noise): every point in a dark square. Each of the 8 squares
        // gets 1/8 of 40,000 points, 5000 +- 66, so [4600, 5400] is a 6-sigma bound; the
        // variance of U(-4, 4) is 64 / 12 = 5.33 per axis (standard error 0.021; bound 0.1).
        let mut rng = rand::rngs::StdRng::seed_from_u64(6);
        let points = checkerboard_points(40_000, &mut rng);
        let mut counts = [0_usize; 16];
        for &p in &points {
            assert!(is_dark(p), "{p:?} is in a light square");
            let c = ((p[0] + 4.0) / SQUARE).floor() as usize;
            let r = ((p[1] + 4.0) / SQUARE).floor() as usize;
            counts[r * 4 + c] += 1;
        }
        let dark: Vec<usize> = counts.iter().copied().filter(|&c| c > 0).collect();
        assert_eq!(dark.len(), 8, "{counts:?}");
        assert!(
            dark.iter().all(|&c| (4600..=5400).contains(&c)),
            "{counts:?}"
        );

        let (mean, var) = moments(&points);
        for axis in 0..2 {
            assert!(mean[axis].abs() < 0.05, "axis {axis}: mean {}", mean[axis]);
            assert!(
                (var[axis] - 64.0 / 12.0).abs() < 0.1,
                "axis {axis}: {}",
                var[axis]
            );
        }
    }
}
