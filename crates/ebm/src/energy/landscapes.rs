//! Unnormalised test landscapes with known structure: a double well, a banana (twisted
//! Gaussian) and a ring. Each says which of its normaliser and sampler is known.

use super::gaussian::{LN_2PI, check_batch, check_dim};
use super::{Energy, EnergyModel, EnergySpec};
use crate::Error;
use crate::error::check_positive;
use ebm_nn::ParamStore;
use ebm_tensor::{Float, Tensor};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// Settings of [`DoubleWellEnergy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoubleWellConfig {
    /// The dimension d (the first coordinate has the two wells, the others are standard
    /// normal).
    pub dim: usize,
    /// The initial barrier height a: E(0) - E(+-1) along the first coordinate.
    pub barrier: f64,
}

/// A double well in the first coordinate, standard normal in the others:
///
/// ```text
/// E(x)  = a (x_0^2 - 1)^2 + 0.5 sum_{i>0} x_i^2
/// log Z = log Z_1(a) + (d - 1)/2 log(2 pi),   Z_1(a) = int exp(-a (t^2 - 1)^2) dt
/// ```
///
/// Two modes at x_0 = +-1 separated by a barrier of height a: for large a, local samplers
/// rarely cross it.
///
/// # Parameters
/// * `log_barrier` `[1]`: log a (so that a > 0).
///
/// Normaliser: known, Z_1 by 1-D Simpson quadrature on the window where
/// a (t^2 - 1)^2 < 80, with steps under 1/100 of the wells' width (relative error < 1e-10);
/// a constant, not differentiable in the parameters. Sampler: exact
/// ([`DoubleWellEnergy::sample`], rejection from a Gaussian at each well).
///
/// Cost per evaluation: O(n d).
#[derive(Clone, Debug)]
pub struct DoubleWellEnergy<T: Float> {
    config: DoubleWellConfig,
    params: ParamStore<T>,
}

impl<T: Float> DoubleWellEnergy<T> {
    /// The double well of `config`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `dim` is 0 or `barrier` is not finite and positive.
    pub fn new(config: DoubleWellConfig) -> Result<Self, Error> {
        check_dim("double-well dim", config.dim)?;
        check_positive("double-well barrier", config.barrier)?;
        let params = store(&[("log_barrier", config.barrier.ln())]);
        Ok(DoubleWellEnergy { config, params })
    }

    /// The dimension d.
    pub fn dim(&self) -> usize {
        self.config.dim
    }

    /// The current barrier height a.
    pub fn barrier(&self) -> f64 {
        self.params.expect("log_barrier").item().exp()
    }

    /// log Z for the current barrier (see the type's docs).
    pub fn log_normalizer(&self) -> f64 {
        let d = self.config.dim as f64;
        log_well_integral(self.barrier()) + 0.5 * (d - 1.0) * LN_2PI
    }

    /// `n` independent exact draws, `[n, d]`. The first coordinate by rejection: pick a well
    /// s = +-1, propose t ~ N(s, 1 / (2a)) and accept when s t >= 0 with probability
    /// exp(-a (t - s)^2 ((t + s)^2 - 1)), which is the target over the proposal, <= 1 on that
    /// side since (t + s)^2 >= 1 there. The acceptance rate is 0.5 sqrt(a / pi) Z_1(a): about
    /// 0.5 for a >= 1, 0.33 at a = 0.1, 0.17 at a = 0.01.
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Tensor<T> {
        let a = self.barrier();
        let spread = (0.5 / a).sqrt();
        let first: Vec<f64> = (0..n)
            .map(|_| {
                loop {
                    let s = if rng.random::<bool>() { 1.0 } else { -1.0 };
                    let z: f64 = StandardNormal.sample(rng);
                    let t = s + spread * z;
                    let log_ratio = -a * (t - s).powi(2) * ((t + s).powi(2) - 1.0);
                    if s * t >= 0.0 && rng.random::<f64>().ln() < log_ratio {
                        break t;
                    }
                }
            })
            .collect();
        let first = Tensor::from_f64s(&first, [n, 1]);
        let d = self.config.dim;
        if d == 1 {
            return first;
        }
        Tensor::concat(&[first, Tensor::randn([n, d - 1], rng)], 1)
    }
}

impl<T: Float> Energy<T> for DoubleWellEnergy<T> {
    #[track_caller]
    fn energy(&self, x: &Tensor<T>) -> Tensor<T> {
        let (n, d) = (x.dim(0), self.config.dim);
        check_batch(x, d, "DoubleWellEnergy");
        let a = self.params.expect("log_barrier").exp();
        let well = &x
            .narrow(1, 0, 1)
            .reshape([n])
            .square()
            .add_scalar(-1.0)
            .square()
            * &a;
        if d == 1 {
            return well;
        }
        let rest = x.narrow(1, 1, d - 1).square().sum_axes(&[1], false);
        &well + &rest.mul_scalar(0.5)
    }
}

impl<T: Float> EnergyModel<T> for DoubleWellEnergy<T> {
    fn params(&self) -> &ParamStore<T> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.params
    }

    /// The settings the model was built with (the current barrier is in the weights).
    fn spec(&self) -> EnergySpec {
        EnergySpec::new("double-well", &self.config)
    }
}

/// Settings of [`BananaEnergy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BananaConfig {
    /// The dimension d >= 2 (the twist bends the first two coordinates; the others are
    /// standard normal).
    pub dim: usize,
    /// The initial standard deviation s of the first coordinate.
    pub scale: f64,
    /// The initial curvature b of the twist (any finite value; 0 is a Gaussian).
    pub curvature: f64,
}

/// The "banana": a Gaussian bent by a volume-preserving twist (the twisted Gaussian of
/// Haario, Saksman & Tamminen, "Adaptive proposal distribution for random walk Metropolis
/// algorithm", Computational Statistics 1999):
///
/// ```text
/// E(x)  = x_0^2 / (2 s^2) + (x_1 - b (x_0^2 - s^2))^2 / 2 + 0.5 sum_{i>1} x_i^2
/// log Z = d/2 log(2 pi) + log s
/// ```
///
/// The map (x_0, x_1) -> (x_0, x_1 - b (x_0^2 - s^2)) has Jacobian determinant 1, so the
/// normaliser is that of N(0, diag(s^2, 1, ..., 1)). The shift b s^2 centres x_1: the density
/// has mean 0 and covariance diag(s^2, 1 + 2 b^2 s^4, 1, ..., 1).
///
/// # Parameters
/// * `log_scale` `[1]`: log s.
/// * `curvature` `[1]`: b.
///
/// Normaliser: known in closed form, differentiable in the parameters
/// ([`BananaEnergy::log_prob`]). Sampler: exact ([`BananaEnergy::sample`], the twist of
/// Gaussian draws).
///
/// Cost per evaluation: O(n d).
#[derive(Clone, Debug)]
pub struct BananaEnergy<T: Float> {
    config: BananaConfig,
    params: ParamStore<T>,
}

impl<T: Float> BananaEnergy<T> {
    /// The banana of `config`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `dim` < 2, `scale` is not finite and positive or
    /// `curvature` is not finite.
    pub fn new(config: BananaConfig) -> Result<Self, Error> {
        if config.dim < 2 {
            return Err(Error::config(
                "banana dim",
                config.dim,
                "an integer >= 2 (the twist bends two coordinates)",
            ));
        }
        check_positive("banana scale", config.scale)?;
        if !config.curvature.is_finite() {
            return Err(Error::config(
                "banana curvature",
                config.curvature,
                "a finite number",
            ));
        }
        let params = store(&[
            ("log_scale", config.scale.ln()),
            ("curvature", config.curvature),
        ]);
        Ok(BananaEnergy { config, params })
    }

    /// The dimension d.
    pub fn dim(&self) -> usize {
        self.config.dim
    }

    /// The current standard deviation s of the first coordinate.
    pub fn scale(&self) -> f64 {
        self.params.expect("log_scale").item().exp()
    }

    /// The current curvature b.
    pub fn curvature(&self) -> f64 {
        self.params.expect("curvature").item()
    }

    /// log Z = d/2 log(2 pi) + log s.
    pub fn log_normalizer(&self) -> f64 {
        self.log_normalizer_tensor().item()
    }

    fn log_normalizer_tensor(&self) -> Tensor<T> {
        let d = self.config.dim as f64;
        self.params.expect("log_scale").add_scalar(0.5 * d * LN_2PI)
    }

    /// The normalised log-density -E(x) - log Z, `[n, d]` to `[n]`, recording the graph
    /// (differentiable in x and in the parameters).
    pub fn log_prob(&self, x: &Tensor<T>) -> Tensor<T> {
        -(&self.energy(x) + &self.log_normalizer_tensor())
    }

    /// `n` independent exact draws, `[n, d]`: z ~ N(0, I), x_0 = s z_0,
    /// x_1 = z_1 + b (x_0^2 - s^2), the rest z. No graph.
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Tensor<T> {
        let (s, b, d) = (self.scale(), self.curvature(), self.config.dim);
        let z = Tensor::<T>::randn([n, d], rng);
        let x0 = z.narrow(1, 0, 1).mul_scalar(s);
        let x1 = &z.narrow(1, 1, 1) + &x0.square().add_scalar(-s * s).mul_scalar(b);
        let mut columns = vec![x0, x1];
        if d > 2 {
            columns.push(z.narrow(1, 2, d - 2));
        }
        Tensor::concat(&columns, 1)
    }
}

impl<T: Float> Energy<T> for BananaEnergy<T> {
    #[track_caller]
    fn energy(&self, x: &Tensor<T>) -> Tensor<T> {
        let (n, d) = (x.dim(0), self.config.dim);
        check_batch(x, d, "BananaEnergy");
        let log_s = self.params.expect("log_scale");
        let b = self.params.expect("curvature");
        let var = log_s.mul_scalar(2.0).exp();
        let x0 = x.narrow(1, 0, 1).reshape([n]);
        let x1 = x.narrow(1, 1, 1).reshape([n]);
        let first = &x0.square() / &var.mul_scalar(2.0);
        let untwisted = &x1 - &(&(&x0.square() - &var) * b);
        let mut e = &first + &untwisted.square().mul_scalar(0.5);
        if d > 2 {
            let rest = x.narrow(1, 2, d - 2).square().sum_axes(&[1], false);
            e = &e + &rest.mul_scalar(0.5);
        }
        e
    }
}

impl<T: Float> EnergyModel<T> for BananaEnergy<T> {
    fn params(&self) -> &ParamStore<T> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.params
    }

    /// The settings the model was built with (the current values are in the weights).
    fn spec(&self) -> EnergySpec {
        EnergySpec::new("banana", &self.config)
    }
}

/// Settings of [`RingEnergy`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RingConfig {
    /// The dimension d (a circle in 2-D, a spherical shell above).
    pub dim: usize,
    /// The initial radius r.
    pub radius: f64,
    /// The initial radial standard deviation s.
    pub scale: f64,
}

/// A ring (spherical shell) of radius r and radial width s:
///
/// ```text
/// E(x)  = (|x| - r)^2 / (2 s^2)
/// log Z = log S_{d-1} + log int_0^inf rho^(d-1) exp(-(rho - r)^2 / (2 s^2)) d rho
/// ```
///
/// with S_{d-1} = 2 pi^(d/2) / Gamma(d/2) the area of the unit sphere (2 pi in 2-D).
///
/// # Parameters
/// * `log_radius` `[1]`: log r.
/// * `log_scale` `[1]`: log s.
///
/// Normaliser: known, the radial integral by Simpson quadrature over 12 s either side of the
/// mode of the radial density, 4000 steps (relative error < 1e-10); a constant, not
/// differentiable in the parameters. Sampler: exact ([`RingEnergy::sample`]).
///
/// E is not differentiable at the origin (its gradient there is not finite); chains reach it
/// with probability zero.
///
/// Cost per evaluation: O(n d).
#[derive(Clone, Debug)]
pub struct RingEnergy<T: Float> {
    config: RingConfig,
    params: ParamStore<T>,
}

impl<T: Float> RingEnergy<T> {
    /// The ring of `config`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `dim` is 0 or `radius` or `scale` is not finite and
    /// positive.
    pub fn new(config: RingConfig) -> Result<Self, Error> {
        check_dim("ring dim", config.dim)?;
        check_positive("ring radius", config.radius)?;
        check_positive("ring scale", config.scale)?;
        let params = store(&[
            ("log_radius", config.radius.ln()),
            ("log_scale", config.scale.ln()),
        ]);
        Ok(RingEnergy { config, params })
    }

    /// The dimension d.
    pub fn dim(&self) -> usize {
        self.config.dim
    }

    /// The current radius r.
    pub fn radius(&self) -> f64 {
        self.params.expect("log_radius").item().exp()
    }

    /// The current radial standard deviation s.
    pub fn scale(&self) -> f64 {
        self.params.expect("log_scale").item().exp()
    }

    /// log Z for the current parameters (see the type's docs).
    pub fn log_normalizer(&self) -> f64 {
        let radial = self.radial();
        let (lo, hi) = radial.window();
        let integral = simpson(
            |rho| (radial.log_density(rho) - radial.log_peak).exp(),
            lo,
            hi,
            4000,
        );
        log_sphere_area(self.config.dim) + radial.log_peak + integral.ln()
    }

    /// `n` independent exact draws, `[n, d]`: a uniform direction times a radius from the
    /// radial density q(rho) = rho^(d-1) exp(-(rho - r)^2 / (2 s^2)), by rejection from
    /// N(rho*, s^2) at its mode rho*. log q is concave with log q'' <= -1/s^2, so
    /// log q(rho) <= log q(rho*) - (rho - rho*)^2 / (2 s^2) and the acceptance probability
    /// q(rho) / (q(rho*) exp(-(rho - rho*)^2 / (2 s^2))) is at most 1. The acceptance rate is
    /// at least 1/2 (from 0.66 to 1 in 2-D). No graph.
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Tensor<T> {
        let radial = self.radial();
        let radii: Vec<f64> = (0..n)
            .map(|_| {
                loop {
                    let z: f64 = StandardNormal.sample(rng);
                    let rho = radial.mode + radial.scale * z;
                    let log_ratio = radial.log_density(rho) - radial.log_peak + 0.5 * z * z;
                    if rho > 0.0 && rng.random::<f64>().ln() < log_ratio {
                        break rho;
                    }
                }
            })
            .collect();
        let radii = Tensor::<T>::from_f64s(&radii, [n, 1]);
        let directions = Tensor::<T>::randn([n, self.config.dim], rng);
        let norms = directions.square().sum_axes(&[1], true).sqrt();
        &(&directions / &norms) * &radii
    }

    fn radial(&self) -> Radial {
        Radial::new(self.config.dim, self.radius(), self.scale())
    }
}

impl<T: Float> Energy<T> for RingEnergy<T> {
    #[track_caller]
    fn energy(&self, x: &Tensor<T>) -> Tensor<T> {
        check_batch(x, self.config.dim, "RingEnergy");
        let r = self.params.expect("log_radius").exp();
        let two_var = self
            .params
            .expect("log_scale")
            .mul_scalar(2.0)
            .exp()
            .mul_scalar(2.0);
        let norm = x.square().sum_axes(&[1], false).sqrt();
        &(&norm - &r).square() / &two_var
    }
}

impl<T: Float> EnergyModel<T> for RingEnergy<T> {
    fn params(&self) -> &ParamStore<T> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.params
    }

    /// The settings the model was built with (the current values are in the weights).
    fn spec(&self) -> EnergySpec {
        EnergySpec::new("ring", &self.config)
    }
}

/// The radial density of the ring, log q(rho) = (d - 1) log rho - (rho - r)^2 / (2 s^2), and
/// its mode.
struct Radial {
    dim: usize,
    radius: f64,
    scale: f64,
    mode: f64,
    log_peak: f64,
}

impl Radial {
    fn new(dim: usize, radius: f64, scale: f64) -> Self {
        // q'(rho) = 0: rho^2 - r rho - (d - 1) s^2 = 0.
        let k = (dim - 1) as f64;
        let mode = 0.5 * (radius + (radius * radius + 4.0 * k * scale * scale).sqrt());
        let mut radial = Radial {
            dim,
            radius,
            scale,
            mode,
            log_peak: 0.0,
        };
        radial.log_peak = radial.log_density(mode);
        radial
    }

    fn log_density(&self, rho: f64) -> f64 {
        let gaussian = -(rho - self.radius).powi(2) / (2.0 * self.scale * self.scale);
        if self.dim == 1 {
            gaussian
        } else {
            (self.dim - 1) as f64 * rho.ln() + gaussian
        }
    }

    /// Where q is above e^-72 of its peak (by the concavity bound).
    fn window(&self) -> (f64, f64) {
        let half = 12.0 * self.scale;
        ((self.mode - half).max(0.0), self.mode + half)
    }
}

/// log of the area of the unit sphere in d dimensions, 2 pi^(d/2) / Gamma(d/2).
fn log_sphere_area(dim: usize) -> f64 {
    // Gamma(d/2) by Gamma(x + 1) = x Gamma(x) from Gamma(1) = 1 or Gamma(1/2) = sqrt(pi).
    let half = dim as f64 / 2.0;
    let (mut x, mut log_gamma) = if dim.is_multiple_of(2) {
        (1.0, 0.0)
    } else {
        (0.5, 0.5 * std::f64::consts::PI.ln())
    };
    while x < half {
        log_gamma += x.ln();
        x += 1.0;
    }
    std::f64::consts::LN_2 + half * std::f64::consts::PI.ln() - log_gamma
}

/// log int exp(-a (t^2 - 1)^2) dt, by Simpson's rule on [0, T] (doubled, by symmetry) where
/// a (T^2 - 1)^2 = 80, with steps under 1/100 of the wells' width 1 / sqrt(8 a).
fn log_well_integral(a: f64) -> f64 {
    let end = (1.0 + (80.0 / a).sqrt()).sqrt();
    let width = 1.0 / (8.0 * a).sqrt();
    let step = (end / 2000.0).min(width / 100.0);
    let n = (end / step).ceil() as usize;
    let integral = simpson(|t| (-a * (t * t - 1.0).powi(2)).exp(), 0.0, end, n);
    (2.0 * integral).ln()
}

/// Simpson's rule for f on [lo, hi] with (at least) `n` intervals.
fn simpson(f: impl Fn(f64) -> f64, lo: f64, hi: f64, n: usize) -> f64 {
    let n = n.max(2).div_ceil(2) * 2;
    let h = (hi - lo) / n as f64;
    let inner: f64 = (1..n)
        .map(|i| {
            let weight = if i % 2 == 1 { 4.0 } else { 2.0 };
            weight * f(lo + i as f64 * h)
        })
        .sum();
    (f(lo) + inner + f(hi)) * h / 3.0
}

/// A store of scalar parameters `[1]`, in the order given.
fn store<T: Float>(values: &[(&str, f64)]) -> ParamStore<T> {
    let mut params = ParamStore::new();
    for &(name, value) in values {
        params
            .insert(name, Tensor::from_f64s(&[value], [1]))
            .expect("parameter names are fixed and valid");
    }
    params
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sphere_areas_match_the_known_values() {
        let pi = std::f64::consts::PI;
        for (d, area) in [(1, 2.0), (2, 2.0 * pi), (3, 4.0 * pi), (4, 2.0 * pi * pi)] {
            assert!(
                (log_sphere_area(d) - f64::ln(area)).abs() < 1e-14,
                "d = {d}"
            );
        }
    }

    #[test]
    fn well_integral_matches_the_gaussian_limit() {
        // For large a the wells are Gaussians of variance 1 / (8 a): Z_1 -> 2 sqrt(pi / (4 a)),
        // with a relative correction O(1 / a) (here ~1e-3).
        let a = 400.0;
        let limit = (2.0 * (std::f64::consts::PI / (4.0 * a)).sqrt()).ln();
        assert!((log_well_integral(a) - limit).abs() < 2e-3);
        // a -> 0 is not needed; a = 1 against a fine trapezoid sum.
        let h = 1e-4;
        let trapezoid: f64 = (-40_000..=40_000)
            .map(|i| (-(((i as f64 * h).powi(2) - 1.0).powi(2))).exp() * h)
            .sum();
        assert!((log_well_integral(1.0) - trapezoid.ln()).abs() < 1e-10);
    }

    #[test]
    fn radial_window_integral_matches_the_two_dimensional_closed_form() {
        // d = 2, r = 0: Z = 2 pi s^2 (a Gaussian in the plane).
        let s = 0.7;
        let ring = Radial::new(2, 1e-300, s);
        let (lo, hi) = ring.window();
        let integral = simpson(
            |rho| (ring.log_density(rho) - ring.log_peak).exp(),
            lo,
            hi,
            4000,
        );
        let log_z = log_sphere_area(2) + ring.log_peak + integral.ln();
        assert!((log_z - (2.0 * std::f64::consts::PI * s * s).ln()).abs() < 1e-10);
    }
}
