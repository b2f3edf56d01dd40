//! Exact likelihoods in the plane: the model's normaliser by quadrature, and the true
//! `8gaussians` density in closed form.

use ebm_nn::{Mlp, Module, ParamStore};
use ebm_tensor::Tensor;
use ebm_tensor::autodiff::no_grad;

/// Points per forward pass when evaluating many energies.
const EVAL_BATCH: usize = 8192;

/// A square grid of `side` x `side` cell centres over `[lo, hi]^2`, row-major with the first
/// row at the top (largest y), as a picture is laid out.
pub struct Grid {
    /// Lower end of both axes.
    pub lo: f64,
    /// Upper end of both axes.
    pub hi: f64,
    /// Cells per axis.
    pub side: usize,
}

impl Grid {
    /// The width of one cell.
    pub fn spacing(&self) -> f64 {
        (self.hi - self.lo) / self.side as f64
    }

    /// The cell centres, `[x, y]` per cell, row by row from the top.
    pub fn points(&self) -> Vec<[f64; 2]> {
        let h = self.spacing();
        let mut points = Vec::with_capacity(self.side * self.side);
        for row in 0..self.side {
            let y = self.hi - (row as f64 + 0.5) * h;
            for col in 0..self.side {
                points.push([self.lo + (col as f64 + 0.5) * h, y]);
            }
        }
        points
    }

    /// The pixel coordinates (column, row; fractional) of the point `p`.
    pub fn to_pixel(&self, p: [f64; 2]) -> (f64, f64) {
        let h = self.spacing();
        ((p[0] - self.lo) / h, (self.hi - p[1]) / h)
    }
}

/// The energies E(x) of `points` under the MLP energy, without recording the graph, in batches
/// of [`EVAL_BATCH`].
pub fn energies(mlp: &Mlp, store: &ParamStore<f32>, points: &[[f64; 2]]) -> Vec<f64> {
    no_grad(|| {
        let mut out = Vec::with_capacity(points.len());
        for chunk in points.chunks(EVAL_BATCH) {
            let flat: Vec<f64> = chunk.as_flattened().to_vec();
            let x = Tensor::<f32>::from_f64s(&flat, [chunk.len(), 2]);
            out.extend(mlp.forward(store, &x).to_f64s());
        }
        out
    })
}

/// log sum_i exp(a_i), without overflow.
pub fn log_sum_exp(a: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = a.clone().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + a.map(|v| (v - max).exp()).sum::<f64>().ln()
}

/// log Z = log integral exp(-E(x)) dx by the midpoint rule on `grid`, from the energies at its
/// cell centres: log Z ~ log sum_ij exp(-E_ij) + 2 log h. Exact to within the mass outside the
/// box and the rule's O(h^2) error, both negligible for a smooth energy on a box that holds
/// the data with room to spare.
pub fn log_normaliser(grid: &Grid, energies: &[f64]) -> f64 {
    log_sum_exp(energies.iter().map(|e| -e)) + 2.0 * grid.spacing().ln()
}

/// log p(x) of the true `8gaussians` density: an equal mixture of eight isotropic Gaussians
/// with std 0.5 / 1.414, centred at angles k * 45 degrees on a circle of radius 4 / 1.414 (as
/// `ebm::data::toy2d::eight_gaussians` draws them).
pub fn true_log_density(p: [f64; 2]) -> f64 {
    let (radius, std) = (4.0 / 1.414, 0.5 / 1.414);
    let var = std * std;
    let components = (0..8).map(|k| {
        let angle = k as f64 * std::f64::consts::FRAC_PI_4;
        let (dx, dy) = (p[0] - radius * angle.cos(), p[1] - radius * angle.sin());
        -(dx * dx + dy * dy) / (2.0 * var)
    });
    log_sum_exp(components) - 8f64.ln() - (2.0 * std::f64::consts::PI * var).ln()
}
