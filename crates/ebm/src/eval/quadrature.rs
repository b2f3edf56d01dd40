//! The exact normaliser of a low-dimensional energy by quadrature on a grid, and the exact
//! negative log-likelihood that it gives.

use super::log_mean_exp;
use crate::Error;
use crate::energy::{Energy, energies};
use ebm_tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};

/// Grid points per batch of energy evaluations (bounds the memory of one forward pass).
const EVAL_BATCH: usize = 8192;

/// The rule that weighs the grid's values.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QuadratureRule {
    /// Cell centres of `n_points` equal cells per axis, each of weight h^d.
    #[default]
    Midpoint,
    /// `n_points` nodes per axis including both ends, weight h per axis (h / 2 at the ends).
    Trapezoid,
}

/// A box `[lower_i, upper_i]` in d = 1 or 2 dimensions, with `n_points` per axis, and a rule.
///
/// Both rules have an error of O(h^2) for an integrand with a bounded second derivative on the
/// box (h the spacing): about (h^2 / 24) times the integral of the Laplacian of exp(-E) for the
/// midpoint rule, -(h^2 / 12) times it for the trapezoid rule. The mass of exp(-E) outside the
/// box is not counted at all: the box must hold the whole density with room to spare, which
/// [`Quadrature::border_mass_fraction`] lets a caller check.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuadratureGrid {
    /// The lower end of each axis (d = 1 or 2 entries).
    pub lower: Vec<f64>,
    /// The upper end of each axis.
    pub upper: Vec<f64>,
    /// Points per axis (the grid has `n_points^d`). Default 400.
    pub n_points: usize,
    /// The rule. Default [`QuadratureRule::Midpoint`].
    pub rule: QuadratureRule,
}

impl Default for QuadratureGrid {
    /// `[-6, 6]^2` with 400 midpoints per axis (spacing 0.03): enough for the built-in 2-D
    /// sets, which lie within radius 4.
    fn default() -> Self {
        QuadratureGrid::square(2, -6.0, 6.0, 400)
    }
}

impl QuadratureGrid {
    /// The cube `[lo, hi]^dim` with `n_points` midpoints per axis.
    pub fn square(dim: usize, lo: f64, hi: f64, n_points: usize) -> Self {
        QuadratureGrid {
            lower: vec![lo; dim],
            upper: vec![hi; dim],
            n_points,
            rule: QuadratureRule::Midpoint,
        }
    }

    /// The dimension d.
    pub fn dim(&self) -> usize {
        self.lower.len()
    }

    /// `Ok(())` for 1 or 2 axes with finite, increasing bounds and at least 2 points.
    fn validate(&self) -> Result<(), Error> {
        let d = self.lower.len();
        if !(1..=2).contains(&d) || self.upper.len() != d {
            return Err(Error::config(
                "quadrature grid bounds",
                format!("lower {:?}, upper {:?}", self.lower, self.upper),
                "1 or 2 axes with as many lower as upper ends (for d > 2, use AIS)",
            ));
        }
        for (i, (&lo, &hi)) in self.lower.iter().zip(&self.upper).enumerate() {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(Error::config(
                    format!("quadrature grid axis {i}"),
                    format!("[{lo}, {hi}]"),
                    "finite ends with lower < upper",
                ));
            }
        }
        if self.n_points < 2 {
            return Err(Error::config(
                "quadrature n_points",
                self.n_points,
                "at least 2 per axis (hundreds for an O(h^2) error of 1e-4)",
            ));
        }
        Ok(())
    }

    /// The nodes and log-weights of one axis.
    fn axis(&self, i: usize) -> (Vec<f64>, Vec<f64>) {
        let (lo, hi, n) = (self.lower[i], self.upper[i], self.n_points);
        match self.rule {
            QuadratureRule::Midpoint => {
                let h = (hi - lo) / n as f64;
                let nodes = (0..n).map(|k| lo + (k as f64 + 0.5) * h).collect();
                (nodes, vec![h.ln(); n])
            }
            QuadratureRule::Trapezoid => {
                let h = (hi - lo) / (n - 1) as f64;
                let nodes = (0..n).map(|k| lo + k as f64 * h).collect();
                let weights = (0..n)
                    .map(|k| if k == 0 || k == n - 1 { 0.5 * h } else { h }.ln())
                    .collect();
                (nodes, weights)
            }
        }
    }
}

/// What [`log_normalizer_quadrature`] returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quadrature {
    /// log Z ~ log sum_i w_i exp(-E(x_i)).
    pub log_z: f64,
    /// The share of the grid's mass on its outermost ring of points (those with an index 0 or
    /// n - 1 on some axis). Above about 1e-6 the density reaches the border: the box is too
    /// small and log Z too low; widen it.
    pub border_mass_fraction: f64,
    /// The number of points evaluated, n_points^d.
    pub n_points: usize,
}

/// log Z = log integral exp(-E(x)) dx by quadrature over `grid`.
///
/// ```text
/// log Z ~ logsumexp_i (-E(x_i) + log w_i)       x_i, w_i the grid's nodes and weights
/// ```
///
/// Exact up to the rule's O(h^2) error and the mass outside the box (see [`QuadratureGrid`]).
/// Cost: n_points^d energy evaluations (no gradient), in batches of 8,192.
///
/// # Errors
/// [`Error::InvalidConfig`] for a grid that is not 1- or 2-D with increasing finite bounds,
/// or an energy that is not finite at some grid point (named).
pub fn log_normalizer_quadrature<T: Float, E: Energy<T> + ?Sized>(
    energy: &E,
    grid: &QuadratureGrid,
) -> Result<Quadrature, Error> {
    grid.validate()?;
    let d = grid.dim();
    let axes: Vec<(Vec<f64>, Vec<f64>)> = (0..d).map(|i| grid.axis(i)).collect();
    let n = grid.n_points;
    let total = n.pow(d as u32);

    // Every point as (coordinates, log-weight, on the border?), row-major over the axes.
    let point = |k: usize| {
        let idx: Vec<usize> = (0..d)
            .map(|i| (k / n.pow((d - 1 - i) as u32)) % n)
            .collect();
        let coords: Vec<f64> = idx.iter().zip(&axes).map(|(&j, a)| a.0[j]).collect();
        let log_w: f64 = idx.iter().zip(&axes).map(|(&j, a)| a.1[j]).sum();
        let border = idx.iter().any(|&j| j == 0 || j == n - 1);
        (coords, log_w, border)
    };

    // -E(x_i) + log w_i, batch by batch.
    let mut terms = Vec::with_capacity(total);
    let mut border = Vec::with_capacity(total);
    for start in (0..total).step_by(EVAL_BATCH) {
        let len = EVAL_BATCH.min(total - start);
        let points: Vec<_> = (start..start + len).map(point).collect();
        let flat: Vec<f64> = points.iter().flat_map(|p| p.0.iter().copied()).collect();
        let e = energies(energy, &Tensor::<T>::from_f64s(&flat, [len, d])).to_f64s();
        for (k, (p, e)) in points.iter().zip(e).enumerate() {
            if !e.is_finite() {
                return Err(Error::config(
                    "energy on the quadrature grid",
                    format!("{e} at x = {:?} (point {})", p.0, start + k),
                    "finite energies everywhere on the grid; shrink the box or fix the model",
                ));
            }
            terms.push(-e + p.1);
            border.push(p.2);
        }
    }

    // log-sum-exp over the grid, and the share of the border.
    let log_z = log_mean_exp(&terms) + (total as f64).ln();
    let on_border: f64 = terms
        .iter()
        .zip(&border)
        .filter(|(_, b)| **b)
        .map(|(t, _)| (t - log_z).exp())
        .sum();
    Ok(Quadrature {
        log_z,
        border_mass_fraction: on_border,
        n_points: total,
    })
}

/// What [`nll_quadrature`] returns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QuadratureNll {
    /// The mean negative log-likelihood of the data, mean_i E(x_i) + log Z, in nats.
    pub nll: f64,
    /// Its standard error over the data points, sd(E) / sqrt(n) (log Z is a constant).
    pub standard_error: f64,
    /// The normaliser used.
    pub quadrature: Quadrature,
}

/// The exact mean negative log-likelihood of `data` (`[n, d]`, d = 1 or 2) under
/// p = exp(-E) / Z, with log Z by [`log_normalizer_quadrature`]:
///
/// ```text
/// NLL = (1 / n) sum_i E(x_i) + log Z
/// ```
///
/// # Errors
/// [`Error::Shape`] for data that is not `[n, d]` with the grid's d and n >= 1;
/// [`Error::InvalidConfig`] for a non-finite energy of a data point, and as
/// [`log_normalizer_quadrature`].
pub fn nll_quadrature<T: Float, E: Energy<T> + ?Sized>(
    energy: &E,
    data: &Tensor<T>,
    grid: &QuadratureGrid,
) -> Result<QuadratureNll, Error> {
    if data.rank() != 2 || data.dim(0) == 0 || data.dim(1) != grid.dim() {
        return Err(Error::Shape {
            what: "data for the quadrature NLL".into(),
            expected: format!("[n, {}], the grid's dimension, with n >= 1", grid.dim()),
            found: data.dims().to_vec(),
        });
    }
    let quadrature = log_normalizer_quadrature(energy, grid)?;
    let (mean, standard_error) = mean_energy(energy, data)?;
    Ok(QuadratureNll {
        nll: mean + quadrature.log_z,
        standard_error,
        quadrature,
    })
}

/// The mean energy of `data` and its standard error, in batches, refusing non-finite values.
pub(crate) fn mean_energy<T: Float, E: Energy<T> + ?Sized>(
    energy: &E,
    data: &Tensor<T>,
) -> Result<(f64, f64), Error> {
    let n = data.dim(0);
    let mut e = Vec::with_capacity(n);
    for start in (0..n).step_by(EVAL_BATCH) {
        let len = EVAL_BATCH.min(n - start);
        e.extend(energies(energy, &data.narrow(0, start, len)).to_f64s());
    }
    if let Some(i) = e.iter().position(|v| !v.is_finite()) {
        return Err(Error::config(
            "energy of a data point",
            format!("{} at row {i}", e[i]),
            "finite energies on the data; check the data for NaN or the model for divergence",
        ));
    }
    Ok(super::mean_and_standard_error(&e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trapezoid_and_midpoint_agree_on_a_standard_normal() {
        // log Z of |x|^2 / 2 in 1-D is ln sqrt(2 pi); with h = 0.012 on [-12, 12] both rules
        // are exact to far below 1e-8 (for a Gaussian the rules converge spectrally).
        let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
        let exact = 0.5 * std::f64::consts::TAU.ln();
        for rule in [QuadratureRule::Midpoint, QuadratureRule::Trapezoid] {
            let grid = QuadratureGrid {
                rule,
                ..QuadratureGrid::square(1, -12.0, 12.0, 2000)
            };
            let q = log_normalizer_quadrature(&energy, &grid).unwrap();
            assert!((q.log_z - exact).abs() < 1e-8, "{rule:?}: {}", q.log_z);
            assert!(q.border_mass_fraction < 1e-20);
        }
    }

    #[test]
    fn a_box_too_small_shows_mass_on_its_border() {
        let energy = |x: &Tensor<f64>| x.square().sum_axes(&[1], false).mul_scalar(0.5);
        let q = log_normalizer_quadrature(&energy, &QuadratureGrid::square(2, -1.0, 1.0, 50));
        assert!(q.unwrap().border_mass_fraction > 0.05);
        assert!(
            log_normalizer_quadrature(&energy, &QuadratureGrid::square(3, -1.0, 1.0, 5)).is_err()
        );
    }
}
