//! Sets whose points lie near curves: `swissroll`, `moons`, `circles` and `rings`.

use super::{Points, normal, to_tensor};
use ebm_tensor::{Float, Tensor};
use rand::{Rng, RngExt};
use std::f64::consts::{PI, TAU};

/// Parameter range of the swiss roll: t in [1.5 pi, 4.5 pi] (one and a half turns).
const ROLL_T: (f64, f64) = (1.5 * PI, 4.5 * PI);
/// The swiss roll (t cos t, t sin t) is divided by this.
const ROLL_SCALE: f64 = 5.0;
/// Standard deviation of the swiss-roll noise, after scaling.
const ROLL_NOISE: f64 = 0.2;
/// Standard deviation of the moons noise, before scaling.
const MOONS_NOISE: f64 = 0.1;
/// The centred moons are multiplied by this.
const MOONS_SCALE: f64 = 2.0;
/// Radii of the two `circles`.
const CIRCLE_RADII: [f64; 2] = [3.0, 1.5];
/// Radii of the four `rings`.
const RING_RADII: [f64; 4] = [3.0, 2.25, 1.5, 0.75];
/// Standard deviation of the noise of `circles` and `rings`, per coordinate.
const RING_NOISE: f64 = 0.08;

/// `n` points of `swissroll`: the 2-D swiss roll `(t cos t, t sin t) / 5` with t uniform in
/// `[1.5 pi, 4.5 pi]`, plus Gaussian noise of standard deviation 0.2 per coordinate. The
/// spiral runs from radius 0.94 out to 2.83.
///
/// # Shapes
/// Returns `[n, 2]`.
pub fn swiss_roll<T: Float, R: Rng + ?Sized>(n: usize, rng: &mut R) -> Tensor<T> {
    to_tensor(&swiss_roll_points(n, ROLL_NOISE, rng))
}

/// `n` swiss-roll points with noise of standard deviation `noise` (after scaling).
pub(super) fn swiss_roll_points<R: Rng + ?Sized>(n: usize, noise: f64, rng: &mut R) -> Points {
    (0..n)
        .map(|_| {
            let t = rng.random_range(ROLL_T.0..ROLL_T.1);
            let x = t * t.cos() / ROLL_SCALE + noise * normal(rng);
            let y = t * t.sin() / ROLL_SCALE + noise * normal(rng);
            [x, y]
        })
        .collect()
}

/// `n` points of `moons`: two interleaved half circles of radius 1, the upper one
/// `(cos a, sin a)` and the lower one `(1 - cos a, 0.5 - sin a)` with a uniform in `[0, pi]`,
/// half the points on each (at random), noise of standard deviation 0.1 per coordinate, then
/// shifted by `-(0.5, 0.25)` (so the mean is 0) and multiplied by 2. The result spans about
/// `[-3, 3] x [-1.5, 1.5]`.
///
/// # Shapes
/// Returns `[n, 2]`.
pub fn moons<T: Float, R: Rng + ?Sized>(n: usize, rng: &mut R) -> Tensor<T> {
    to_tensor(&moons_points(n, MOONS_NOISE, rng))
}

/// `n` moons points with noise of standard deviation `noise` (before scaling).
pub(super) fn moons_points<R: Rng + ?Sized>(n: usize, noise: f64, rng: &mut R) -> Points {
    (0..n)
        .map(|_| {
            let a = rng.random_range(0.0..PI);
            let (x, y) = if rng.random::<bool>() {
                (a.cos(), a.sin())
            } else {
                (1.0 - a.cos(), 0.5 - a.sin())
            };
            let x = x + noise * normal(rng) - 0.5;
            let y = y + noise * normal(rng) - 0.25;
            [MOONS_SCALE * x, MOONS_SCALE * y]
        })
        .collect()
}

/// `n` points of `circles`: two concentric circles of radii 3 and 1.5 centred at the origin,
/// half the points on each (at random), angle uniform, plus Gaussian noise of standard
/// deviation 0.08 per coordinate.
///
/// # Shapes
/// Returns `[n, 2]`.
pub fn circles<T: Float, R: Rng + ?Sized>(n: usize, rng: &mut R) -> Tensor<T> {
    to_tensor(&ring_points(n, &CIRCLE_RADII, RING_NOISE, rng))
}

/// `n` points of `rings`: four concentric circles of radii 3, 2.25, 1.5 and 0.75, a quarter
/// of the points on each (at random), angle uniform, plus Gaussian noise of standard deviation
/// 0.08 per coordinate.
///
/// # Shapes
/// Returns `[n, 2]`.
pub fn rings<T: Float, R: Rng + ?Sized>(n: usize, rng: &mut R) -> Tensor<T> {
    to_tensor(&ring_points(n, &RING_RADII, RING_NOISE, rng))
}

/// `n` points on circles of the given radii (one picked uniformly per point), with noise.
pub(super) fn ring_points<R: Rng + ?Sized>(
    n: usize,
    radii: &[f64],
    noise: f64,
    rng: &mut R,
) -> Points {
    (0..n)
        .map(|_| {
            let radius = radii[rng.random_range(0..radii.len())];
            let angle = rng.random_range(0.0..TAU);
            let x = radius * angle.cos() + noise * normal(rng);
            let y = radius * angle.sin() + noise * normal(rng);
            [x, y]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::test_util::{mean_square_radius, moments};
    use super::*;
    use rand::SeedableRng;

    fn rng(seed: u64) -> rand::rngs::StdRng {
        rand::rngs::StdRng::seed_from_u64(seed)
    }

    #[test]
    fn swiss_roll_without_noise_lies_on_its_spiral() {
        // Exact structure: radius r = t / 5 and angle t (mod 2 pi); 1e-9 is rounding.
        for p in swiss_roll_points(1000, 0.0, &mut rng(7)) {
            let t = ROLL_SCALE * p[0].hypot(p[1]);
            assert!((ROLL_T.0 - 1e-9..=ROLL_T.1 + 1e-9).contains(&t), "{p:?}");
            let turn = (p[1].atan2(p[0]) - t).rem_euclid(TAU);
            assert!(turn.min(TAU - turn) < 1e-9, "{p:?}: angle off by {turn}");
        }
    }

    #[test]
    fn swiss_roll_has_the_stated_mean_square_radius() {
        // E|x|^2 = E[t^2] / 25 + 2 noise^2, with E[t^2] = (b^3 - a^3) / (3 (b - a)) for t
        // uniform on [a, b]: 4.013. |x|^2 ranges over [0.9, 8], standard deviation about 2.2,
        // so the standard error over 100,000 points is 0.007 and 0.04 is a 5-sigma bound.
        let (a, b) = ROLL_T;
        let expected = (b.powi(3) - a.powi(3)) / (3.0 * (b - a)) / 25.0 + 2.0 * ROLL_NOISE.powi(2);
        let found = mean_square_radius(&swiss_roll_points(100_000, ROLL_NOISE, &mut rng(8)));
        assert!((found - expected).abs() < 0.04, "{found} vs {expected}");
    }

    #[test]
    fn moons_have_the_derived_moments() {
        // Unscaled, the upper moon has mean (0, 2/pi) and the lower (1, 0.5 - 2/pi), so the
        // shift makes the mean 0. Variances, from E cos^2 = E sin^2 = 1/2 on [0, pi]:
        // x: (E cos^2 + E (1 - cos)^2) / 2 - 0.25 = 0.75; y: (0.5 + 0.75 - 2/pi) / 2 - 0.0625
        // = 0.5625 - 1/pi; each plus noise^2, times 2^2. Standard errors over 100,000 points
        // are below 0.006 for the means and 0.01 for the variances: bounds 0.03 and 0.05.
        let (mean, var) = moments(&moons_points(100_000, MOONS_NOISE, &mut rng(9)));
        let s2 = MOONS_SCALE.powi(2);
        let expected = [
            s2 * (0.75 + MOONS_NOISE.powi(2)),
            s2 * (0.5625 - 1.0 / PI + MOONS_NOISE.powi(2)),
        ];
        for axis in 0..2 {
            assert!(mean[axis].abs() < 0.03, "axis {axis}: mean {}", mean[axis]);
            let err = (var[axis] - expected[axis]).abs();
            assert!(
                err < 0.05,
                "axis {axis}: {} vs {}",
                var[axis],
                expected[axis]
            );
        }
    }

    #[test]
    fn moons_without_noise_lie_on_their_half_circles() {
        // Exact structure: each point is at distance 2 from (scaled) centre (-1, -0.5) with
        // y >= -0.5 (upper moon) or from (1, 0.5) with y <= 0.5 (lower moon); 1e-9 is
        // rounding.
        for p in moons_points(1000, 0.0, &mut rng(10)) {
            let upper = (p[0] + 1.0).hypot(p[1] + 0.5);
            let lower = (p[0] - 1.0).hypot(p[1] - 0.5);
            let on_upper = (upper - 2.0).abs() < 1e-9 && p[1] >= -0.5 - 1e-9;
            let on_lower = (lower - 2.0).abs() < 1e-9 && p[1] <= 0.5 + 1e-9;
            assert!(on_upper || on_lower, "{p:?}");
        }
    }

    #[test]
    fn circles_and_rings_have_their_radii() {
        // Without noise every radius is one of the stated ones (1e-12 is rounding), used in
        // equal shares: 10,000 points over 4 radii is 2500 +- 43 each, [2250, 2750] is 5.8
        // sigma. With noise, E|x|^2 = mean of r^2 + 2 noise^2 (noise independent of the
        // angle); |x|^2 has standard deviation below 4, so over 100,000 points the standard
        // error is 0.013 and 0.06 is a 4.7-sigma bound.
        for (seed, radii) in [(11, &CIRCLE_RADII[..]), (12, &RING_RADII[..])] {
            let mut counts = vec![0_usize; radii.len()];
            for p in ring_points(10_000, radii, 0.0, &mut rng(seed)) {
                let r = p[0].hypot(p[1]);
                let k = radii.iter().position(|&q| (q - r).abs() < 1e-12);
                counts[k.unwrap_or_else(|| panic!("radius {r} is not one of {radii:?}"))] += 1;
            }
            let share = 10_000 / radii.len();
            let (low, high) = (share * 9 / 10, share * 11 / 10);
            assert!(
                counts.iter().all(|c| (low..=high).contains(c)),
                "{counts:?}"
            );

            let points = ring_points(100_000, radii, RING_NOISE, &mut rng(seed + 10));
            let expected = radii.iter().map(|r| r * r).sum::<f64>() / radii.len() as f64
                + 2.0 * RING_NOISE.powi(2);
            let found = mean_square_radius(&points);
            assert!(
                (found - expected).abs() < 0.06,
                "{radii:?}: {found} vs {expected}"
            );
        }
    }
}
