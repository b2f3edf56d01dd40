//! Sets with spiral arms: `pinwheel` and `2spirals`.

use super::{Points, normal, to_tensor};
use ebm_tensor::{Float, Tensor};
use rand::{Rng, RngExt};
use std::f64::consts::{PI, TAU};

/// Number of `pinwheel` arms.
const ARMS: usize = 5;
/// Standard deviation of the radial coordinate of a `pinwheel` point, before scaling.
const RADIAL_STD: f64 = 0.3;
/// Standard deviation of the tangential coordinate of a `pinwheel` point, before scaling.
const TANGENTIAL_STD: f64 = 0.1;
/// How fast the `pinwheel` arms turn with the radius.
const TWIST: f64 = 0.25;
/// `pinwheel` points are multiplied by this.
const PINWHEEL_SCALE: f64 = 2.0;
/// Largest angle along a spiral of `2spirals` (one and a half turns).
const SPIRAL_TURN: f64 = 3.0 * PI;
/// `2spirals` points (t cos t, t sin t) are divided by this.
const SPIRAL_SCALE: f64 = 3.0;
/// Standard deviation of the `2spirals` noise, after scaling.
const SPIRAL_NOISE: f64 = 0.1;

/// `n` points of `pinwheel`: five curved arms. A point starts at `(1 + 0.3 u, 0.1 v)` with
/// `u, v` standard normal, is turned by the angle of its arm (`2 pi k / 5` for an arm `k`
/// picked uniformly) plus `0.25 exp(1 + 0.3 u)` (so arms bend as they go out), and is
/// multiplied by 2. Most points lie within radius 3.8.
///
/// # Shapes
/// Returns `[n, 2]`.
pub fn pinwheel<T: Float, R: Rng + ?Sized>(n: usize, rng: &mut R) -> Tensor<T> {
    to_tensor(&pinwheel_points(n, rng))
}

/// `n` points of [`pinwheel`], as pairs.
pub(super) fn pinwheel_points<R: Rng + ?Sized>(n: usize, rng: &mut R) -> Points {
    (0..n)
        .map(|_| {
            // Radial and tangential coordinates in the arm's own frame.
            let radial = 1.0 + RADIAL_STD * normal(rng);
            let tangential = TANGENTIAL_STD * normal(rng);

            // Turn by the arm's angle plus a twist that grows with the radial coordinate.
            let arm = rng.random_range(0..ARMS) as f64;
            let angle = TAU * arm / ARMS as f64 + TWIST * radial.exp();
            let (sin, cos) = angle.sin_cos();
            let x = cos * radial - sin * tangential;
            let y = sin * radial + cos * tangential;
            [PINWHEEL_SCALE * x, PINWHEEL_SCALE * y]
        })
        .collect()
}

/// `n` points of `2spirals`: two interleaved spirals, `s (-t cos t, t sin t) / 3` with
/// `s = +-1` (at random) and `t = 3 pi sqrt(u)`, `u` uniform on [0, 1] (so points are uniform
/// along the arc length, roughly), plus Gaussian noise of standard deviation 0.1 per
/// coordinate. The spirals reach radius pi.
///
/// # Shapes
/// Returns `[n, 2]`.
pub fn two_spirals<T: Float, R: Rng + ?Sized>(n: usize, rng: &mut R) -> Tensor<T> {
    to_tensor(&two_spirals_points(n, SPIRAL_NOISE, rng))
}

/// `n` points of the two spirals with noise of standard deviation `noise`.
pub(super) fn two_spirals_points<R: Rng + ?Sized>(n: usize, noise: f64, rng: &mut R) -> Points {
    (0..n)
        .map(|_| {
            let t = SPIRAL_TURN * rng.random::<f64>().sqrt();
            let side = if rng.random::<bool>() { 1.0 } else { -1.0 };
            let x = -side * t * t.cos() / SPIRAL_SCALE + noise * normal(rng);
            let y = side * t * t.sin() / SPIRAL_SCALE + noise * normal(rng);
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
    fn pinwheel_is_centred_with_the_stated_mean_square_radius() {
        // The five arms are rotations by 2 pi k / 5 of one another, and the five rotations of
        // any vector sum to zero, so the mean is 0. The rotation keeps lengths, so
        // E|x|^2 = 4 (E radial^2 + E tangential^2) = 4 (1 + 0.09 + 0.01) = 4.4. Over 100,000
        // points the standard errors are 0.0066 (mean) and 0.01 (|x|^2 has std 3.2 at most):
        // bounds 0.03 and 0.05.
        let points = pinwheel_points(100_000, &mut rng(21));
        let (mean, _) = moments(&points);
        assert!(mean[0].abs() < 0.03 && mean[1].abs() < 0.03, "{mean:?}");
        let expected = PINWHEEL_SCALE.powi(2) * (1.0 + RADIAL_STD.powi(2) + TANGENTIAL_STD.powi(2));
        let found = mean_square_radius(&points);
        assert!((found - expected).abs() < 0.05, "{found} vs {expected}");
    }

    #[test]
    fn pinwheel_arms_are_equally_used_and_turn_with_the_radius() {
        // A point of radial coordinate r (no tangential spread) sits at radius 2 r and angle
        // 2 pi k / 5 + 0.25 e^r. Undoing the twist with r ~ |x| / 2 must leave the angle near
        // one of the five arm directions; the tangential spread and the error in r move it.
        // A simulation of 10^6 points (numpy) puts 98.7% of them within 0.35 rad (the arms are
        // 1.26 rad apart); over 20,000 points that share has standard error 0.0008, so 0.98 is
        // an 8-sigma bound that a wrong twist (sign or scale) fails by far. Each arm gets 20%
        // of the points, 4000 +- 57, and [3700, 4300] is a 5-sigma bound.
        let gap = TAU / ARMS as f64;
        let (mut counts, mut near) = ([0_usize; ARMS], 0);
        for p in pinwheel_points(20_000, &mut rng(22)) {
            let r = p[0].hypot(p[1]) / PINWHEEL_SCALE;
            let unwound = (p[1].atan2(p[0]) - TWIST * r.exp()) / gap;
            let arm = unwound.round();
            counts[arm.rem_euclid(ARMS as f64) as usize] += 1;
            near += usize::from((unwound - arm).abs() * gap < 0.35);
        }
        assert!(
            near as f64 / 20_000.0 > 0.98,
            "{near} of 20,000 near an arm"
        );
        assert!(
            counts.iter().all(|c| (3700..=4300).contains(c)),
            "{counts:?}"
        );
    }

    #[test]
    fn two_spirals_without_noise_lie_on_their_spirals() {
        // Exact structure: radius t / 3 and angle pi - t (s = 1) or -t (s = -1), mod 2 pi;
        // 1e-9 is rounding. The two sides are used in equal shares: 5000 +- 50 each.
        let mut first = 0;
        for p in two_spirals_points(10_000, 0.0, &mut rng(23)) {
            let t = SPIRAL_SCALE * p[0].hypot(p[1]);
            assert!(t <= SPIRAL_TURN + 1e-9, "{p:?}");
            let angle = p[1].atan2(p[0]);
            let off = |target: f64| {
                let d = (angle - target).rem_euclid(TAU);
                d.min(TAU - d) * t // arc distance, so points near the origin pass
            };
            if off(PI - t) < 1e-9 {
                first += 1;
            } else {
                assert!(off(-t) < 1e-9, "{p:?} is on neither spiral");
            }
        }
        assert!(
            (4700..=5300).contains(&first),
            "{first} of 10,000 on the first spiral"
        );
    }

    #[test]
    fn two_spirals_are_centred_with_the_stated_mean_square_radius() {
        // The sides are mirror images through the origin, so the mean is 0; E|x|^2 =
        // E[t^2] / 9 + 2 noise^2 with t^2 = 9 pi^2 u: pi^2 / 2 + 0.02 = 4.955. |x|^2 is
        // uniform on [0, pi^2] (std 2.85) plus noise, so over 100,000 points the standard
        // error is 0.009 and 0.05 is a 5.5-sigma bound; the mean's is 0.007, bound 0.035.
        let points = two_spirals_points(100_000, SPIRAL_NOISE, &mut rng(24));
        let (mean, _) = moments(&points);
        assert!(mean[0].abs() < 0.035 && mean[1].abs() < 0.035, "{mean:?}");
        let expected = PI * PI / 2.0 + 2.0 * SPIRAL_NOISE.powi(2);
        let found = mean_square_radius(&points);
        assert!((found - expected).abs() < 0.05, "{found} vs {expected}");
    }
}
