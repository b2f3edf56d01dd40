//! The Gaussian energy, with a learnable mean and Cholesky factor of the precision.
//!
//! Also the small dense helpers (Cholesky factorisation, triangular inverse) that the analytic
//! energies use on their d x d parameter matrices, and the input check they share.

use super::{Energy, EnergyModel, EnergySpec};
use crate::Error;
use ebm_nn::ParamStore;
use ebm_tensor::autodiff::no_grad;
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// ln(2 pi).
pub(crate) const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// Settings of [`GaussianEnergy`]: the architecture only (the mean and the precision are
/// parameters, saved with the weights).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaussianConfig {
    /// The dimension d of the samples.
    pub dim: usize,
}

/// The energy of a Gaussian N(mu, Sigma), normalised in closed form:
///
/// ```text
/// E(x)  = 0.5 (x - mu)^T P (x - mu),      P = Sigma^-1 = L L^T
/// log Z = d/2 log(2 pi) - sum_i log L_ii,  so that E(x) + log Z = -log N(x; mu, Sigma)
/// ```
///
/// # Parameters
/// * `mean` `[d]`: mu.
/// * `precision_tril` `[d, d]`: the strictly lower triangle of L. Its diagonal and upper
///   triangle are masked out: they never enter the energy and receive zero gradient.
/// * `precision_log_diag` `[d]`: log L_ii, so that the diagonal exp(log L_ii) is positive and
///   every value of the parameters is a valid Gaussian.
///
/// Normaliser: known (closed form above, [`GaussianEnergy::log_normalizer`]). Sampler: exact
/// ([`GaussianEnergy::sample`], x = mu + L^-T z).
///
/// Cost per evaluation of a batch `[n, d]`: one `[n, d] x [d, d]` product (two for the energy
/// and its gradient, which have closed forms: grad_x E = P (x - mu)).
///
/// # Example
/// ```
/// use ebm::energy::{Energy, GaussianEnergy};
/// use ebm_tensor::Tensor;
///
/// let mean = Tensor::<f64>::from_f64s(&[1.0, -1.0], [2]);
/// let cov = Tensor::from_f64s(&[2.0, 0.5, 0.5, 1.0], [2, 2]);
/// let gaussian = GaussianEnergy::from_mean_covariance(&mean, &cov)?;
///
/// // The score at the mean is zero; log N at the mean is -log Z.
/// let x = Tensor::from_f64s(&[1.0, -1.0], [1, 2]);
/// assert!(gaussian.score(&x)?.to_f64s().iter().all(|s| s.abs() < 1e-12));
/// let log_det = (2.0f64 * 1.0 - 0.25).ln();
/// let expected = -(std::f64::consts::TAU.ln() + 0.5 * log_det);
/// assert!((gaussian.log_prob(&x).item() - expected).abs() < 1e-12);
/// # Ok::<(), ebm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct GaussianEnergy<T: Float> {
    dim: usize,
    params: ParamStore<T>,
    /// 1 strictly below the diagonal, 0 elsewhere.
    strict_lower: Tensor<T>,
    /// The identity.
    eye: Tensor<T>,
}

impl<T: Float> GaussianEnergy<T> {
    /// The standard normal N(0, I) in `dim` dimensions.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `dim` is 0.
    pub fn new(dim: usize) -> Result<Self, Error> {
        check_dim("Gaussian dim", dim)?;
        Ok(Self::from_factor(&vec![0.0; dim], &identity(dim)))
    }

    /// N(mean, covariance), with L the Cholesky factor of the precision covariance^-1.
    ///
    /// # Shapes
    /// `mean`: `[d]`; `covariance`: `[d, d]`.
    ///
    /// # Errors
    /// [`Error::Shape`] for shapes that do not fit; [`Error::InvalidConfig`] for values that are
    /// not finite or a covariance that is not symmetric positive-definite (the message prints
    /// it and the pivot where the Cholesky factorisation fails).
    pub fn from_mean_covariance(mean: &Tensor<T>, covariance: &Tensor<T>) -> Result<Self, Error> {
        if mean.rank() != 1 || mean.dim(0) == 0 {
            return Err(Error::Shape {
                what: "Gaussian mean".into(),
                expected: "[d] with d >= 1".into(),
                found: mean.dims().to_vec(),
            });
        }
        let d = mean.dim(0);
        if covariance.dims() != [d, d] {
            return Err(Error::Shape {
                what: "Gaussian covariance".into(),
                expected: format!("[{d}, {d}], the dimension of the mean"),
                found: covariance.dims().to_vec(),
            });
        }
        let mu = mean.to_f64s();
        if let Some(v) = mu.iter().find(|v| !v.is_finite()) {
            return Err(Error::config("Gaussian mean", v, "finite entries"));
        }
        let cov = covariance.to_f64s();
        check_symmetric("Gaussian covariance", &cov, d)?;

        // Sigma = C C^T, P = C^-T C^-1, then P = L L^T.
        let c = cholesky(&cov, d).map_err(|(row, pivot)| not_spd(&cov, d, row, pivot))?;
        let c_inv = tril_inverse(&c, d);
        let precision = gram_columns(&c_inv, d);
        let l = cholesky(&precision, d).map_err(|(row, pivot)| {
            Error::config(
                "Gaussian covariance",
                format_matrix(&cov, d),
                format!(
                    "a well-conditioned positive-definite matrix; the Cholesky factorisation of its inverse meets pivot {pivot:e} at row {row}"
                ),
            )
        })?;
        Ok(Self::from_factor(&mu, &l))
    }

    /// The model with mean `mean` and precision factor `l` (lower triangular, `[d, d]`
    /// row-major, positive diagonal).
    fn from_factor(mean: &[f64], l: &[f64]) -> Self {
        let d = mean.len();
        let mut tril = vec![0.0; d * d];
        let mut log_diag = vec![0.0; d];
        for i in 0..d {
            for j in 0..i {
                tril[i * d + j] = l[i * d + j];
            }
            log_diag[i] = l[i * d + i].ln();
        }
        let mut params = ParamStore::new();
        let names_are_valid = "parameter names are fixed and valid";
        params
            .insert("mean", Tensor::from_f64s(mean, [d]))
            .expect(names_are_valid);
        params
            .insert("precision_tril", Tensor::from_f64s(&tril, [d, d]))
            .expect(names_are_valid);
        params
            .insert("precision_log_diag", Tensor::from_f64s(&log_diag, [d]))
            .expect(names_are_valid);
        let mask: Vec<f64> = (0..d * d)
            .map(|k| if k % d < k / d { 1.0 } else { 0.0 })
            .collect();
        GaussianEnergy {
            dim: d,
            params,
            strict_lower: Tensor::from_f64s(&mask, [d, d]),
            eye: Tensor::from_f64s(&identity(d), [d, d]),
        }
    }

    /// The dimension d.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The mean mu `[d]` (the parameter itself, recording the graph).
    pub fn mean(&self) -> Tensor<T> {
        self.params.expect("mean").clone()
    }

    /// The Cholesky factor L of the precision, `[d, d]`, built from the parameters (recording
    /// the graph).
    pub fn precision_cholesky(&self) -> Tensor<T> {
        let tril = self.params.expect("precision_tril");
        let diag = self
            .params
            .expect("precision_log_diag")
            .exp()
            .reshape([1, self.dim]);
        &(tril * &self.strict_lower) + &(&self.eye * &diag)
    }

    /// The precision P = L L^T, `[d, d]` (recording the graph).
    pub fn precision(&self) -> Tensor<T> {
        let l = self.precision_cholesky();
        l.matmul_t(&l, false, true)
    }

    /// The covariance Sigma = P^-1 = L^-T L^-1, `[d, d]`, computed from the current values (a
    /// constant: no graph).
    pub fn covariance(&self) -> Tensor<T> {
        let l_inv = tril_inverse(&self.factor_values(), self.dim);
        Tensor::from_f64s(&gram_columns(&l_inv, self.dim), [self.dim, self.dim])
    }

    /// log Z = d/2 log(2 pi) - sum_i log L_ii, for the current parameters.
    pub fn log_normalizer(&self) -> f64 {
        self.log_normalizer_tensor().item()
    }

    /// log Z as a scalar tensor that records its graph in the parameters.
    fn log_normalizer_tensor(&self) -> Tensor<T> {
        let log_diag = self.params.expect("precision_log_diag");
        log_diag.sum().rsub_scalar(0.5 * self.dim as f64 * LN_2PI)
    }

    /// The normalised log-density log N(x; mu, Sigma) = -E(x) - log Z, per sample: `[n, d]`
    /// to `[n]`, recording the graph (differentiable in x and in every parameter, so it can be
    /// maximised directly).
    pub fn log_prob(&self, x: &Tensor<T>) -> Tensor<T> {
        -(&self.energy(x) + &self.log_normalizer_tensor())
    }

    /// `n` independent exact draws, `[n, d]`: x = mu + L^-T z with z ~ N(0, I), one batched
    /// product with the d x d matrix L^-1 (computed once per call). No graph.
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Tensor<T> {
        let l_inv = tril_inverse(&self.factor_values(), self.dim);
        let l_inv = Tensor::<T>::from_f64s(&l_inv, [self.dim, self.dim]);
        let z = Tensor::<T>::randn([n, self.dim], rng);
        no_grad(|| &z.matmul(&l_inv) + &self.mean())
    }

    /// L as plain numbers, row-major.
    fn factor_values(&self) -> Vec<f64> {
        no_grad(|| self.precision_cholesky()).to_f64s()
    }

    /// (energies, gradients) in closed form: y = (x - mu) L, E = |y|^2 / 2, grad = y L^T.
    fn closed_form(&self, x: &Tensor<T>) -> (Tensor<T>, Tensor<T>) {
        let l = self.precision_cholesky();
        let y = (x - &self.mean()).matmul(&l);
        let e = y.square().sum_axes(&[1], false).mul_scalar(0.5);
        (e, y.matmul_t(&l, false, true))
    }
}

impl<T: Float> Energy<T> for GaussianEnergy<T> {
    #[track_caller]
    fn energy(&self, x: &Tensor<T>) -> Tensor<T> {
        check_batch(x, self.dim, "GaussianEnergy");
        let y = (x - &self.mean()).matmul(&self.precision_cholesky());
        y.square().sum_axes(&[1], false).mul_scalar(0.5)
    }

    /// In closed form, grad_x E = P (x - mu). With `create_graph` the results keep their graph
    /// to the parameters and to `x` itself (the default path would start from a detached copy
    /// of `x`).
    #[track_caller]
    fn energy_and_grad(
        &self,
        x: &Tensor<T>,
        create_graph: bool,
    ) -> Result<(Tensor<T>, Tensor<T>), Error> {
        check_batch(x, self.dim, "GaussianEnergy");
        Ok(if create_graph {
            self.closed_form(x)
        } else {
            no_grad(|| self.closed_form(x))
        })
    }

    /// In closed form: tr(P) = sum_ij L_ij^2, the same for every sample.
    #[track_caller]
    fn laplacian(&self, x: &Tensor<T>, create_graph: bool) -> Result<Tensor<T>, Error> {
        check_batch(x, self.dim, "GaussianEnergy");
        let trace = || &Tensor::ones([x.dim(0)]) * &self.precision_cholesky().square().sum();
        Ok(if create_graph {
            trace()
        } else {
            no_grad(trace)
        })
    }
}

impl<T: Float> EnergyModel<T> for GaussianEnergy<T> {
    fn params(&self) -> &ParamStore<T> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.params
    }

    fn spec(&self) -> EnergySpec {
        EnergySpec::new("gaussian", &GaussianConfig { dim: self.dim })
    }
}

/// Panics unless `x` is a batch `[n, dim]`: another shape is a programmer error.
#[track_caller]
pub(crate) fn check_batch<T: Float>(x: &Tensor<T>, dim: usize, energy: &str) {
    assert!(
        x.rank() == 2 && x.dim(1) == dim,
        "{energy}: expected a batch [n, {dim}], got {}",
        x.shape()
    );
}

/// `Ok(())` for a dimension of at least 1.
pub(crate) fn check_dim(what: &str, dim: usize) -> Result<(), Error> {
    if dim >= 1 {
        Ok(())
    } else {
        Err(Error::config(what, dim, "an integer >= 1"))
    }
}

/// The d x d identity, row-major.
fn identity(d: usize) -> Vec<f64> {
    (0..d * d)
        .map(|k| if k % d == k / d { 1.0 } else { 0.0 })
        .collect()
}

/// `Ok(())` when `a` (`d x d`, row-major) is finite and symmetric to rounding.
fn check_symmetric(what: &str, a: &[f64], d: usize) -> Result<(), Error> {
    let expected = "a finite symmetric positive-definite matrix";
    if a.iter().any(|v| !v.is_finite()) {
        return Err(Error::config(what, format_matrix(a, d), expected));
    }
    for i in 0..d {
        for j in 0..i {
            let (u, v) = (a[i * d + j], a[j * d + i]);
            if (u - v).abs() > 1e-10 * (u.abs() + v.abs()) {
                return Err(Error::config(
                    what,
                    format_matrix(a, d),
                    format!("{expected}; entries ({i}, {j}) = {u} and ({j}, {i}) = {v} differ"),
                ));
            }
        }
    }
    Ok(())
}

fn not_spd(a: &[f64], d: usize, row: usize, pivot: f64) -> Error {
    Error::config(
        "Gaussian covariance",
        format_matrix(a, d),
        format!(
            "a symmetric positive-definite matrix; its Cholesky factorisation meets pivot {pivot:e} <= 0 at row {row}"
        ),
    )
}

/// `[[a, b], [c, d]]`, the first 8 rows and columns.
pub(crate) fn format_matrix(a: &[f64], d: usize) -> String {
    let shown = d.min(8);
    let rows: Vec<String> = (0..shown)
        .map(|i| {
            let row: Vec<String> = (0..shown).map(|j| a[i * d + j].to_string()).collect();
            let more = if d > shown { ", ..." } else { "" };
            format!("[{}{more}]", row.join(", "))
        })
        .collect();
    let more = if d > shown { ", ..." } else { "" };
    format!("[{}{more}]", rows.join(", "))
}

/// The lower Cholesky factor of a symmetric `d x d` matrix (row-major), or the row and value
/// of the first pivot that is not positive.
pub(crate) fn cholesky(a: &[f64], d: usize) -> Result<Vec<f64>, (usize, f64)> {
    let mut l = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..=i {
            let dot: f64 = (0..j).map(|k| l[i * d + k] * l[j * d + k]).sum();
            let v = a[i * d + j] - dot;
            if i == j {
                if v.is_nan() || v <= 0.0 {
                    return Err((i, v));
                }
                l[i * d + i] = v.sqrt();
            } else {
                l[i * d + j] = v / l[j * d + j];
            }
        }
    }
    Ok(l)
}

/// The inverse of a lower-triangular `d x d` matrix with a non-zero diagonal (forward
/// substitution, column by column); lower triangular too.
pub(crate) fn tril_inverse(l: &[f64], d: usize) -> Vec<f64> {
    let mut inv = vec![0.0; d * d];
    for j in 0..d {
        inv[j * d + j] = 1.0 / l[j * d + j];
        for i in j + 1..d {
            let dot: f64 = (j..i).map(|k| l[i * d + k] * inv[k * d + j]).sum();
            inv[i * d + j] = -dot / l[i * d + i];
        }
    }
    inv
}

/// M^T M for a `d x d` matrix M (row-major).
fn gram_columns(m: &[f64], d: usize) -> Vec<f64> {
    let mut g = vec![0.0; d * d];
    for i in 0..d {
        for j in 0..d {
            g[i * d + j] = (0..d).map(|k| m[k * d + i] * m[k * d + j]).sum();
        }
    }
    g
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cholesky_and_triangular_inverse_reconstruct_the_matrix() {
        let a = [4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let l = cholesky(&a, 3).unwrap();
        let lt_l = gram_columns(&transpose(&l, 3), 3);
        for (x, y) in lt_l.iter().zip(&a) {
            assert!((x - y).abs() < 1e-12, "{lt_l:?} vs {a:?}");
        }
        let inv = tril_inverse(&l, 3);
        for i in 0..3 {
            for j in 0..3 {
                let p: f64 = (0..3).map(|k| l[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((p - f64::from(u8::from(i == j))).abs() < 1e-12);
            }
        }
        assert_eq!(cholesky(&[1.0, 2.0, 2.0, 1.0], 2).unwrap_err().0, 1);
    }

    fn transpose(m: &[f64], d: usize) -> Vec<f64> {
        (0..d * d).map(|k| m[(k % d) * d + k / d]).collect()
    }
}
