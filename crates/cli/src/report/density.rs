//! A 2-D energy's normalised density on a grid: exp(-E(x)) / Z, with log Z by quadrature.

use anyhow::{Result, bail};
use ebm::energy::{EnergyModel, EnergySpec};
use ebm_tensor::autodiff::no_grad;
use ebm_tensor::{Float, Tensor};

/// Points per forward pass when evaluating the energy on a grid.
const EVAL_BATCH: usize = 8192;
/// Cells per axis of the picture's grid.
pub const PICTURE_SIDE: usize = 160;
/// Cells per axis of the quadrature grid.
const QUADRATURE_SIDE: usize = 320;
/// The quadrature box is this many times the picture's, about the same centre, so that the
/// mass outside it is negligible for a model that fits data inside the picture.
const QUADRATURE_ZOOM: f64 = 2.0;
/// The picture's half-width when no points are given: the 2-D sets lie within [-4, 4]^2.
const DEFAULT_HALF_WIDTH: f64 = 4.0;

/// A square box `[centre - half, centre + half]` on both axes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Square {
    /// Its centre.
    pub centre: [f64; 2],
    /// Half its side.
    pub half: f64,
}

impl Square {
    /// The box that shows `points` `[n, 2]`: their 0.5% to 99.5% quantiles on each axis
    /// (so that a few stray samples do not shrink the rest), squared and widened by a quarter
    /// of the span on each side; [-4, 4]^2 without points.
    pub fn around(points: &[[f64; 2]]) -> Square {
        let finite: Vec<[f64; 2]> = points
            .iter()
            .copied()
            .filter(|p| p[0].is_finite() && p[1].is_finite())
            .collect();
        if finite.is_empty() {
            return Square {
                centre: [0.0, 0.0],
                half: DEFAULT_HALF_WIDTH,
            };
        }
        let range = |axis: usize| {
            let mut v: Vec<f64> = finite.iter().map(|p| p[axis]).collect();
            v.sort_by(f64::total_cmp);
            let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
            (at(0.005), at(0.995))
        };
        let ((x0, x1), (y0, y1)) = (range(0), range(1));
        let span = (x1 - x0).max(y1 - y0).max(1e-3);
        Square {
            centre: [0.5 * (x0 + x1), 0.5 * (y0 + y1)],
            half: 0.5 * span * 1.5,
        }
    }

    /// The cell centres of a `side` x `side` grid over the box, row by row from the top.
    pub fn grid(&self, side: usize) -> Vec<[f64; 2]> {
        let h = self.spacing(side);
        let (lo_x, hi_y) = (self.centre[0] - self.half, self.centre[1] + self.half);
        (0..side * side)
            .map(|k| {
                let (row, col) = (k / side, k % side);
                [lo_x + (col as f64 + 0.5) * h, hi_y - (row as f64 + 0.5) * h]
            })
            .collect()
    }

    /// The side of a cell of a `side` x `side` grid.
    pub fn spacing(&self, side: usize) -> f64 {
        2.0 * self.half / side as f64
    }

    /// (low, high) on the x axis, then on the y axis.
    pub fn ranges(&self) -> ([f64; 2], [f64; 2]) {
        let [cx, cy] = self.centre;
        (
            [cx - self.half, cx + self.half],
            [cy - self.half, cy + self.half],
        )
    }
}

/// The learned density on the picture's grid.
#[derive(Clone, Debug)]
pub struct DensityGrid {
    /// The box shown.
    pub view: Square,
    /// p(x) = exp(-E(x) - log Z) at the `PICTURE_SIDE`^2 cell centres, row by row from the top.
    pub density: Vec<f64>,
    /// log Z, by the midpoint rule on a grid over a box `QUADRATURE_ZOOM` times the view.
    pub log_z: f64,
    /// The model's probability of the view box (the midpoint rule on the picture's grid).
    pub mass_in_view: f64,
}

/// The input dimension of a vector energy, from its spec: `widths[0]` of an MLP, `dim` of the
/// analytic energies; `None` for images and binary models.
pub fn input_dim(spec: &EnergySpec) -> Option<usize> {
    let field = match spec.kind.as_str() {
        "mlp" => spec.config.get("widths")?.as_array()?.first()?,
        "gaussian" | "gmm" | "double-well" | "banana" | "ring" => spec.config.get("dim")?,
        _ => return None,
    };
    field.as_u64().map(|d| d as usize)
}

/// The density of a 2-D `energy` over `view`, normalised by quadrature.
///
/// # Errors
/// When the energy is not finite at some grid point (the message names the point).
pub fn density_grid<T: Float>(energy: &dyn EnergyModel<T>, view: Square) -> Result<DensityGrid> {
    let wide = Square {
        centre: view.centre,
        half: view.half * QUADRATURE_ZOOM,
    };
    let q_energies = energies(energy, &wide.grid(QUADRATURE_SIDE))?;
    let log_z =
        log_sum_exp(q_energies.iter().map(|e| -e)) + 2.0 * wide.spacing(QUADRATURE_SIDE).ln();

    let energies = energies(energy, &view.grid(PICTURE_SIDE))?;
    let density: Vec<f64> = energies.iter().map(|e| (-e - log_z).exp()).collect();
    let cell = view.spacing(PICTURE_SIDE).powi(2);
    let mass_in_view = density.iter().sum::<f64>() * cell;
    Ok(DensityGrid {
        view,
        density,
        log_z,
        mass_in_view,
    })
}

/// E at each point, without recording the graph, in batches.
fn energies<T: Float>(energy: &dyn EnergyModel<T>, points: &[[f64; 2]]) -> Result<Vec<f64>> {
    let values = no_grad(|| {
        let mut out = Vec::with_capacity(points.len());
        for chunk in points.chunks(EVAL_BATCH) {
            let x = Tensor::<T>::from_f64s(chunk.as_flattened(), [chunk.len(), 2]);
            out.extend(energy.energy(&x).to_f64s());
        }
        out
    });
    if let Some(i) = values.iter().position(|e| !e.is_finite()) {
        bail!(
            "the energy is {} at ({}, {}): no density to draw",
            values[i],
            points[i][0],
            points[i][1]
        );
    }
    Ok(values)
}

/// log sum_i exp(a_i), without overflow.
fn log_sum_exp(a: impl Iterator<Item = f64> + Clone) -> f64 {
    let max = a.clone().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    max + a.map(|v| (v - max).exp()).sum::<f64>().ln()
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebm::energy::GaussianEnergy;

    #[test]
    fn a_standard_normal_is_normalised_by_quadrature() {
        let energy = GaussianEnergy::<f64>::new(2).unwrap();
        let view = Square {
            centre: [0.0, 0.0],
            half: 4.0,
        };
        let grid = density_grid(&energy, view).unwrap();
        // E = |x|^2 / 2, so log Z = ln(2 pi) up to the midpoint rule's O(h^2) error (h = 0.05:
        // about 1e-4 relative) and the mass outside [-8, 8]^2 (1e-15): 1e-3 is far above both
        // and far below any mistake of a factor in h^2.
        let want = (2.0 * std::f64::consts::PI).ln();
        assert!((grid.log_z - want).abs() < 1e-3, "log Z {}", grid.log_z);
        // Mass in [-4, 4]^2: (1 - 2 Phi(-4))^2 = 0.99987.
        assert!((grid.mass_in_view - 0.99987).abs() < 1e-3);
        assert_eq!(input_dim(&ebm::energy::EnergyModel::spec(&energy)), Some(2));
    }

    #[test]
    fn the_box_follows_the_points() {
        let pts: Vec<[f64; 2]> = (0..101).map(|i| [i as f64 / 100.0, 2.0]).collect();
        let sq = Square::around(&pts);
        // Quantiles 0.01 and 1.0 of the x values: centre 0.505, half-width 0.75 * 0.99.
        assert!((sq.centre[0] - 0.505).abs() < 1e-12 && (sq.centre[1] - 2.0).abs() < 1e-12);
        assert!((sq.half - 0.75).abs() < 1e-2, "{sq:?}");
        assert_eq!(Square::around(&[]).half, 4.0);
    }
}
