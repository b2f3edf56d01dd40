//! Two-dimensional toy distributions, drawn in code from an RNG (no files, no downloads).
//!
//! Every set lies roughly in `[-4, 4]^2` (at least 99% of its points; most sets all of them),
//! the box that the examples plot, and is named for the command line by [`Toy2d`]:
//!
//! | name | function | what |
//! |---|---|---|
//! | `8gaussians` | [`eight_gaussians`] | 8 Gaussians (std 0.35) on a circle of radius 2.83 |
//! | `25gaussians` | [`twenty_five_gaussians`] | 5 x 5 grid of Gaussians (std 0.035), 1.41 apart |
//! | `checkerboard` | [`checkerboard`] | uniform on the 8 dark squares of a 4 x 4 board |
//! | `swissroll` | [`swiss_roll`] | 1.5 turns of a spiral, radius 0.94 to 2.83, noise 0.2 |
//! | `moons` | [`moons`] | two interleaved half circles of radius 2, noise 0.2 |
//! | `circles` | [`circles`] | two concentric circles of radii 3 and 1.5, noise 0.08 |
//! | `rings` | [`rings`] | four concentric circles of radii 0.75 to 3, noise 0.08 |
//! | `pinwheel` | [`pinwheel`] | five curved arms out to radius ~3.8 |
//! | `2spirals` | [`two_spirals`] | two interleaved spirals out to radius pi, noise 0.1 |
//!
//! The shapes follow the toy sets of the normalising-flow and score-matching literature
//! (FFJORD, Grathwohl et al. 2019; sliced score matching, Song et al. 2019), with the
//! constants stated in each function's docs. Each point draws its own component (mode, arm,
//! circle) at random, so any `n` works and the proportions hold in expectation only.

mod curves;
mod grid;
mod spirals;

pub use curves::{circles, moons, rings, swiss_roll};
pub use grid::{checkerboard, twenty_five_gaussians};
pub use spirals::{pinwheel, two_spirals};

use crate::energy::GaussianMixtureEnergy;
use ebm_tensor::{Float, Tensor};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};

/// Points as `[x, y]` pairs, before they become a tensor.
type Points = Vec<[f64; 2]>;

/// One standard normal draw.
fn normal<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    StandardNormal.sample(rng)
}

/// The points as an `[n, 2]` tensor.
fn to_tensor<T: Float>(points: &[[f64; 2]]) -> Tensor<T> {
    let data = points.iter().flatten().map(|&v| T::of(v)).collect();
    Tensor::from_vec(data, [points.len(), 2])
}

/// Radius of the circle the `8gaussians` centres lie on, before scaling.
const RADIUS: f64 = 4.0;
/// Standard deviation of each `8gaussians` component, before scaling.
const STD: f64 = 0.5;
/// All `8gaussians` points are divided by this, as in the benchmark peers.
const SCALE: f64 = 1.414;

/// `n` points of `8gaussians`: an equal mixture of eight isotropic Gaussians with standard
/// deviation 0.5 whose centres lie at angles k * 45 degrees on a circle of radius 4, everything
/// divided by 1.414 (so the centres sit at radius 2.83 and each component has std 0.354).
///
/// # Shapes
/// Returns `[n, 2]`.
pub fn eight_gaussians<T: Float, R: Rng + ?Sized>(n: usize, rng: &mut R) -> Tensor<T> {
    let mut data = Vec::with_capacity(2 * n);
    for _ in 0..n {
        let k = rng.random_range(0..8) as f64;
        let angle = k * std::f64::consts::FRAC_PI_4;
        let (zx, zy) = (normal(rng), normal(rng));
        data.push(T::of((RADIUS * angle.cos() + STD * zx) / SCALE));
        data.push(T::of((RADIUS * angle.sin() + STD * zy) / SCALE));
    }
    Tensor::from_vec(data, [n, 2])
}

/// A built-in 2-D data set, by name.
///
/// # Example
/// ```
/// use ebm::data::Toy2d;
/// use rand::SeedableRng;
///
/// let set: Toy2d = "8gaussians".parse().unwrap();
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let x = set.sample::<f32, _>(100, &mut rng);
/// assert_eq!(x.dims(), &[100, 2]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Toy2d {
    /// `8gaussians`: [`eight_gaussians`].
    EightGaussians,
    /// `25gaussians`: [`twenty_five_gaussians`].
    TwentyFiveGaussians,
    /// `checkerboard`: [`checkerboard`].
    Checkerboard,
    /// `swissroll`: [`swiss_roll`].
    SwissRoll,
    /// `moons`: [`moons`].
    Moons,
    /// `circles`: [`circles`].
    Circles,
    /// `rings`: [`rings`].
    Rings,
    /// `pinwheel`: [`pinwheel`].
    Pinwheel,
    /// `2spirals`: [`two_spirals`].
    TwoSpirals,
}

impl Toy2d {
    /// Every set, in the order the docs list them.
    pub const ALL: &'static [Toy2d] = &[
        Toy2d::EightGaussians,
        Toy2d::TwentyFiveGaussians,
        Toy2d::Checkerboard,
        Toy2d::SwissRoll,
        Toy2d::Moons,
        Toy2d::Circles,
        Toy2d::Rings,
        Toy2d::Pinwheel,
        Toy2d::TwoSpirals,
    ];

    /// The set's name, as [`std::str::FromStr`] reads it (`8gaussians`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Toy2d::EightGaussians => "8gaussians",
            Toy2d::TwentyFiveGaussians => "25gaussians",
            Toy2d::Checkerboard => "checkerboard",
            Toy2d::SwissRoll => "swissroll",
            Toy2d::Moons => "moons",
            Toy2d::Circles => "circles",
            Toy2d::Rings => "rings",
            Toy2d::Pinwheel => "pinwheel",
            Toy2d::TwoSpirals => "2spirals",
        }
    }

    /// What the set looks like, in one line (for listings such as `--help`).
    pub fn description(self) -> &'static str {
        match self {
            Toy2d::EightGaussians => "8 Gaussians on a circle of radius 2.83",
            Toy2d::TwentyFiveGaussians => "5 x 5 grid of narrow Gaussians",
            Toy2d::Checkerboard => "uniform on the dark squares of a 4 x 4 board",
            Toy2d::SwissRoll => "a noisy spiral of one and a half turns",
            Toy2d::Moons => "two interleaved half circles",
            Toy2d::Circles => "two concentric circles",
            Toy2d::Rings => "four concentric circles",
            Toy2d::Pinwheel => "five curved arms",
            Toy2d::TwoSpirals => "two interleaved spirals",
        }
    }

    /// The set's true density as an energy whose normaliser is known, for the sets that are
    /// Gaussian mixtures (`8gaussians`, `25gaussians`): an equal mixture of isotropic
    /// Gaussians with the set's centres and standard deviation, so that its energy plus its
    /// `log_normalizer` is -log p exactly, and its score is the data's true score. `None` for
    /// the other sets, whose densities have no closed form that a score could be read from.
    ///
    /// ```
    /// use ebm::data::Toy2d;
    /// let p = Toy2d::EightGaussians.density::<f64>().unwrap();
    /// assert_eq!(p.dim(), 2);
    /// assert!(Toy2d::Moons.density::<f64>().is_none());
    /// ```
    pub fn density<T: Float>(self) -> Option<GaussianMixtureEnergy<T>> {
        let (centres, std): (Vec<[f64; 2]>, f64) = match self {
            Toy2d::EightGaussians => {
                let centres = (0..8)
                    .map(|k| {
                        let angle = k as f64 * std::f64::consts::FRAC_PI_4;
                        [RADIUS * angle.cos() / SCALE, RADIUS * angle.sin() / SCALE]
                    })
                    .collect();
                (centres, STD / SCALE)
            }
            Toy2d::TwentyFiveGaussians => grid::grid_components(),
            _ => return None,
        };
        let k = centres.len();
        let means: Vec<f64> = centres.iter().flatten().copied().collect();
        let mixture = GaussianMixtureEnergy::from_parts(
            &Tensor::from_f64s(&vec![1.0; k], [k]),
            &Tensor::from_f64s(&means, [k, 2]),
            &Tensor::from_f64s(&vec![std; k], [k]),
        );
        Some(mixture.expect("the built-in mixtures are valid"))
    }

    /// `n` points of the set, `[n, 2]`.
    pub fn sample<T: Float, R: Rng + ?Sized>(self, n: usize, rng: &mut R) -> Tensor<T> {
        match self {
            Toy2d::EightGaussians => eight_gaussians(n, rng),
            Toy2d::TwentyFiveGaussians => twenty_five_gaussians(n, rng),
            Toy2d::Checkerboard => checkerboard(n, rng),
            Toy2d::SwissRoll => swiss_roll(n, rng),
            Toy2d::Moons => moons(n, rng),
            Toy2d::Circles => circles(n, rng),
            Toy2d::Rings => rings(n, rng),
            Toy2d::Pinwheel => pinwheel(n, rng),
            Toy2d::TwoSpirals => two_spirals(n, rng),
        }
    }
}

impl std::fmt::Display for Toy2d {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Toy2d {
    type Err = crate::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Toy2d::ALL
            .iter()
            .copied()
            .find(|set| set.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Toy2d::ALL.iter().map(|set| set.name()).collect();
                crate::Error::config("2-D data set", s, format!("one of {}", names.join(", ")))
            })
    }
}

/// Moments that the tests of every set use.
#[cfg(test)]
mod test_util {
    /// Per-axis mean and (biased) variance.
    pub(super) fn moments(points: &[[f64; 2]]) -> ([f64; 2], [f64; 2]) {
        let n = points.len() as f64;
        let mean = [0, 1].map(|a| points.iter().map(|p| p[a]).sum::<f64>() / n);
        let var = [0, 1].map(|a| points.iter().map(|p| (p[a] - mean[a]).powi(2)).sum::<f64>() / n);
        (mean, var)
    }

    /// The mean of |x|^2.
    pub(super) fn mean_square_radius(points: &[[f64; 2]]) -> f64 {
        points
            .iter()
            .map(|p| p[0] * p[0] + p[1] * p[1])
            .sum::<f64>()
            / points.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn eight_gaussians_has_the_stated_moments() {
        // Each coordinate has mean 0 and variance (R^2 / 2 + STD^2) / SCALE^2 (the centres'
        // coordinates have mean square R^2 / 2 over the eight angles). With 200,000 points the
        // standard error of the variance is below 0.01, so 0.05 is a 5-sigma bound.
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let x = eight_gaussians::<f64, _>(200_000, &mut rng);
        let var = (RADIUS * RADIUS / 2.0 + STD * STD) / (SCALE * SCALE);
        for axis in 0..2 {
            let v: Vec<f64> = x.data().iter().skip(axis).step_by(2).copied().collect();
            let mean = v.iter().sum::<f64>() / v.len() as f64;
            let m2 = v.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / v.len() as f64;
            assert!(mean.abs() < 0.02, "axis {axis}: mean {mean}");
            assert!(
                (m2 - var).abs() < 0.05,
                "axis {axis}: variance {m2} vs {var}"
            );
        }
    }

    #[test]
    fn the_mixture_densities_are_those_the_sets_are_drawn_from() {
        use crate::energy::Energy;
        // Stein's identity ties a density to its samples: E_p[x . s_p(x)] = -d for the true
        // score s_p (integrate by parts). A wrong centre or width moves it by far more than
        // the bound, 5 standard errors of the sample mean (estimated from the sample):
        // 200,000 points give ~0.02 for 8gaussians and ~0.2 for the narrow 25gaussians.
        for set in [Toy2d::EightGaussians, Toy2d::TwentyFiveGaussians] {
            let p = set.density::<f64>().unwrap();
            let mut rng = rand::rngs::StdRng::seed_from_u64(4);
            let x = set.sample::<f64, _>(200_000, &mut rng);
            let (_, grad) = p.energy_and_grad(&x, false).unwrap();
            let terms: Vec<f64> = x
                .data()
                .chunks(2)
                .zip(grad.data().chunks(2))
                .map(|(x, g)| -(x[0] * g[0] + x[1] * g[1]))
                .collect();
            let n = terms.len() as f64;
            let mean = terms.iter().sum::<f64>() / n;
            let sd = (terms.iter().map(|t| (t - mean).powi(2)).sum::<f64>() / n).sqrt();
            let se = sd / n.sqrt();
            assert!(
                (mean + 2.0).abs() < 5.0 * se,
                "{set}: E[x.s] = {mean} +- {se}"
            );
        }
        // Normalised: E + log Z is -log p, checked against the mixture written out at a few
        // points (8gaussians), to rounding.
        let p = Toy2d::EightGaussians.density::<f64>().unwrap();
        let points = [[2.83, 0.0], [0.3, -0.2], [-1.9, 2.1]];
        let x = Tensor::from_f64s(&points.concat(), [3, 2]);
        let e = p.energy(&x).to_f64s();
        let sigma = STD / SCALE;
        for (point, e) in points.iter().zip(e) {
            let density: f64 = (0..8)
                .map(|k| {
                    let angle = k as f64 * std::f64::consts::FRAC_PI_4;
                    let dx = point[0] - RADIUS * angle.cos() / SCALE;
                    let dy = point[1] - RADIUS * angle.sin() / SCALE;
                    (-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp()
                        / (8.0 * std::f64::consts::TAU * sigma * sigma)
                })
                .sum();
            let nll = e + p.log_normalizer();
            assert!(
                (nll + density.ln()).abs() < 1e-9,
                "{point:?}: {nll} vs {}",
                -density.ln()
            );
        }
        assert!(Toy2d::Checkerboard.density::<f32>().is_none());
    }

    #[test]
    fn every_set_is_deterministic_per_seed_and_lies_in_the_box() {
        // Same seed, same points (bit for bit); another seed, other points. "Roughly in
        // [-4, 4]^2": at least 99% of 10,000 points inside (the widest set, pinwheel, has
        // 99.98% inside by a 10^6-point simulation; a set scaled 1.5x too large fails).
        for &set in Toy2d::ALL {
            let draw = |seed| {
                let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
                set.sample::<f64, _>(10_000, &mut rng)
            };
            let (a, b, c) = (draw(1), draw(1), draw(2));
            assert_eq!(a.dims(), &[10_000, 2], "{set}");
            assert_eq!(a.data(), b.data(), "{set}: not reproducible");
            assert_ne!(a.data(), c.data(), "{set}: seed ignored");
            assert!(a.data().iter().all(|v| v.is_finite()), "{set}");
            let inside = a
                .data()
                .chunks(2)
                .filter(|p| p.iter().all(|v| v.abs() <= 4.0));
            assert!(inside.count() >= 9_900, "{set}: under 99% inside [-4, 4]^2");

            let mut rng = rand::rngs::StdRng::seed_from_u64(0);
            assert_eq!(set.sample::<f32, _>(0, &mut rng).dims(), &[0, 2], "{set}");
        }
    }

    #[test]
    fn names_round_trip_and_an_unknown_name_lists_them_all() {
        for &set in Toy2d::ALL {
            assert_eq!(set.name().parse::<Toy2d>().unwrap(), set);
            assert!(!set.description().is_empty());
        }
        let err = "9gaussians".parse::<Toy2d>().unwrap_err().to_string();
        for &set in Toy2d::ALL {
            assert!(err.contains(set.name()), "{err}");
        }
    }
}
