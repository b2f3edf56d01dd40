//! Two-dimensional toy distributions, drawn in code (no files, no downloads).

use ebm_tensor::{Float, Tensor};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};

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
        let (zx, zy): (f64, f64) = (StandardNormal.sample(rng), StandardNormal.sample(rng));
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
    /// [`eight_gaussians`].
    EightGaussians,
}

impl Toy2d {
    /// Every set, in the order the docs list them.
    pub const ALL: &'static [Toy2d] = &[Toy2d::EightGaussians];

    /// The set's name, as [`std::str::FromStr`] reads it (`8gaussians`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Toy2d::EightGaussians => "8gaussians",
        }
    }

    /// `n` points of the set, `[n, 2]`.
    pub fn sample<T: Float, R: Rng + ?Sized>(self, n: usize, rng: &mut R) -> Tensor<T> {
        match self {
            Toy2d::EightGaussians => eight_gaussians(n, rng),
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
}
