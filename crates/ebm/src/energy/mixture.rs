//! The Gaussian-mixture energy: normalised, with a closed-form score, exact samples and an
//! exact noise-conditional version.

use super::gaussian::{LN_2PI, check_batch, check_dim};
use super::{Energy, EnergyModel, EnergySpec, NoiseConditionalEnergy};
use crate::Error;
use crate::error::{check_non_negative, check_positive};
use ebm_nn::ParamStore;
use ebm_tensor::autodiff::no_grad;
use ebm_tensor::{Float, Tensor};
use rand::{Rng, RngExt};
use serde::{Deserialize, Serialize};

/// Settings of [`GaussianMixtureEnergy`]: the architecture only (weights, means and scales
/// are parameters, saved with the weights).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaussianMixtureConfig {
    /// The dimension d of the samples.
    pub dim: usize,
    /// The number K of components.
    pub n_components: usize,
}

/// A mixture of K isotropic Gaussians, as an energy whose normaliser is exactly 1:
///
/// ```text
/// E(x) = -log sum_k w_k N(x; mu_k, s_k^2 I)
///      = -logsumexp_k [ log w_k - d/2 log(2 pi s_k^2) - |x - mu_k|^2 / (2 s_k^2) ]
/// log Z = 0
/// ```
///
/// Each component has its own isotropic scale s_k (no full covariances: this keeps the
/// noise-conditional version and the score cheap; a [`super::GaussianEnergy`] covers
/// correlated single Gaussians).
///
/// # Parameters
/// * `logits` `[K]`: w = softmax(logits).
/// * `means` `[K, d]`: mu_k.
/// * `log_stds` `[K]`: log s_k.
///
/// Every value of the parameters is a valid mixture.
///
/// Normaliser: known (1). Sampler: exact ([`GaussianMixtureEnergy::sample`]). Score: closed
/// form, grad_x E = sum_k r_k(x) (x - mu_k) / s_k^2 with responsibilities r = softmax over k of
/// the bracket above; the Laplacian too.
///
/// Noise-conditional: convolving with N(0, sigma^2 I) adds sigma^2 to every variance, so
/// [`GaussianMixtureEnergy::smoothed`] is the exact density of x + sigma z, and the mixture is a
/// [`NoiseConditionalEnergy`] whose energy at sigma is that of the smoothed mixture (the
/// perturbed data densities of Song & Ermon, "Generative modeling by estimating gradients of the
/// data distribution", NeurIPS 2019, known exactly).
///
/// Cost per evaluation of a batch `[n, d]`: O(n K d) (the differences x - mu_k, then a
/// logsumexp over K); the closed-form gradient adds one `[n, K] x [K, d]` product.
///
/// # Example
/// ```
/// use ebm::energy::{Energy, GaussianMixtureEnergy};
/// use ebm_tensor::Tensor;
///
/// let weights = Tensor::<f64>::from_f64s(&[0.5, 0.5], [2]);
/// let means = Tensor::from_f64s(&[-2.0, 0.0, 2.0, 0.0], [2, 2]);
/// let stds = Tensor::from_f64s(&[0.5, 0.5], [2]);
/// let mixture = GaussianMixtureEnergy::from_parts(&weights, &means, &stds)?;
///
/// // By symmetry the score at the origin is zero.
/// let origin = Tensor::zeros([1, 2]);
/// assert!(mixture.score(&origin)?.to_f64s().iter().all(|s| s.abs() < 1e-12));
/// // Smoothing by sigma = 1 gives variances 0.25 + 1.
/// let smoothed = mixture.smoothed(1.0)?;
/// assert!((smoothed.stds().to_f64s()[0] - 1.25f64.sqrt()).abs() < 1e-12);
/// # Ok::<(), ebm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct GaussianMixtureEnergy<T: Float> {
    dim: usize,
    n_components: usize,
    params: ParamStore<T>,
}

impl<T: Float> GaussianMixtureEnergy<T> {
    /// A fresh mixture: equal weights, unit scales, means drawn from N(0, I).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `dim` or `n_components` is 0.
    pub fn new<R: Rng + ?Sized>(config: GaussianMixtureConfig, rng: &mut R) -> Result<Self, Error> {
        check_dim("Gaussian mixture dim", config.dim)?;
        check_dim("Gaussian mixture n_components", config.n_components)?;
        let k = config.n_components;
        let means = Tensor::randn([k, config.dim], rng);
        Ok(Self::from_values(
            Tensor::zeros([k]),
            means,
            Tensor::zeros([k]),
        ))
    }

    /// The mixture with these weights, means and standard deviations.
    ///
    /// The weights need not sum to 1: they are normalised (logits = log w).
    ///
    /// # Shapes
    /// `weights`: `[K]`; `means`: `[K, d]`; `stds`: `[K]`.
    ///
    /// # Errors
    /// [`Error::Shape`] for shapes that do not fit (or K or d = 0); [`Error::InvalidConfig`]
    /// for a weight or a standard deviation that is not finite and positive, or a mean that
    /// is not finite.
    pub fn from_parts(
        weights: &Tensor<T>,
        means: &Tensor<T>,
        stds: &Tensor<T>,
    ) -> Result<Self, Error> {
        if means.rank() != 2 || means.dim(0) == 0 || means.dim(1) == 0 {
            return Err(Error::Shape {
                what: "Gaussian mixture means".into(),
                expected: "[K, d] with K, d >= 1".into(),
                found: means.dims().to_vec(),
            });
        }
        let k = means.dim(0);
        for (what, t) in [("weights", weights), ("stds", stds)] {
            if t.dims() != [k] {
                return Err(Error::Shape {
                    what: format!("Gaussian mixture {what}"),
                    expected: format!("[{k}], one per component of the means"),
                    found: t.dims().to_vec(),
                });
            }
        }
        let (w, s) = (weights.to_f64s(), stds.to_f64s());
        for (i, (&w, &s)) in w.iter().zip(&s).enumerate() {
            check_positive(&format!("Gaussian mixture weight {i}"), w)?;
            check_positive(&format!("Gaussian mixture std {i}"), s)?;
        }
        if let Some(v) = means.to_f64s().iter().find(|v| !v.is_finite()) {
            return Err(Error::config("Gaussian mixture mean", v, "finite entries"));
        }
        Ok(Self::from_values(
            weights.detach().log(),
            means.detach(),
            stds.detach().log(),
        ))
    }

    fn from_values(logits: Tensor<T>, means: Tensor<T>, log_stds: Tensor<T>) -> Self {
        let (k, d) = (means.dim(0), means.dim(1));
        let mut params = ParamStore::new();
        let names_are_valid = "parameter names are fixed and valid";
        params.insert("logits", logits).expect(names_are_valid);
        params.insert("means", means).expect(names_are_valid);
        params.insert("log_stds", log_stds).expect(names_are_valid);
        GaussianMixtureEnergy {
            dim: d,
            n_components: k,
            params,
        }
    }

    /// The dimension d.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The number K of components.
    pub fn n_components(&self) -> usize {
        self.n_components
    }

    /// The weights softmax(logits), `[K]` (recording the graph).
    pub fn weights(&self) -> Tensor<T> {
        self.params.expect("logits").softmax(0)
    }

    /// The means, `[K, d]` (the parameter itself).
    pub fn means(&self) -> Tensor<T> {
        self.params.expect("means").clone()
    }

    /// The standard deviations s_k, `[K]` (recording the graph).
    pub fn stds(&self) -> Tensor<T> {
        self.params.expect("log_stds").exp()
    }

    /// log Z = 0: the energy is normalised.
    pub fn log_normalizer(&self) -> f64 {
        0.0
    }

    /// The log-density log p(x) = -E(x), `[n, d]` to `[n]`, recording the graph.
    pub fn log_prob(&self, x: &Tensor<T>) -> Tensor<T> {
        -&self.energy(x)
    }

    /// The mixture convolved with N(0, sigma^2 I): the same weights and means, standard
    /// deviations sqrt(s_k^2 + sigma^2). The density of x + sigma z for x from this mixture.
    /// A new model whose parameters are copies (no graph to these).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for a sigma that is negative or not finite.
    pub fn smoothed(&self, sigma: f64) -> Result<Self, Error> {
        check_non_negative("Gaussian mixture smoothing sigma", sigma)?;
        let log_stds = no_grad(|| {
            let var = self.params.expect("log_stds").mul_scalar(2.0).exp();
            var.add_scalar(sigma * sigma).log().mul_scalar(0.5)
        });
        Ok(Self::from_values(
            self.params.expect("logits").detach(),
            self.means().detach(),
            log_stds,
        ))
    }

    /// `n` independent exact draws, `[n, d]`: a component k with probability w_k, then
    /// mu_k + s_k z. No graph.
    pub fn sample<R: Rng + ?Sized>(&self, n: usize, rng: &mut R) -> Tensor<T> {
        let weights = no_grad(|| self.weights()).to_f64s();
        let components: Vec<usize> = (0..n)
            .map(|_| {
                let u: f64 = rng.random();
                let mut cumulative = 0.0;
                weights
                    .iter()
                    .position(|w| {
                        cumulative += w;
                        u < cumulative
                    })
                    .unwrap_or(self.n_components - 1)
            })
            .collect();
        let z = Tensor::<T>::randn([n, self.dim], rng);
        no_grad(|| {
            let mu = self.means().index_select(0, &components);
            let s = self.stds().index_select(0, &components).reshape([n, 1]);
            &mu + &(&z * &s)
        })
    }

    /// The variances s_k^2 as `[1, K]`.
    fn variances(&self) -> Tensor<T> {
        let log_stds = self.params.expect("log_stds");
        log_stds
            .mul_scalar(2.0)
            .exp()
            .reshape([1, self.n_components])
    }

    /// The log-weighted component densities a `[n, K]` and squared distances |x - mu_k|^2
    /// `[n, K]`, for variances `var` (`[1, K]` or `[n, K]`).
    fn log_components(&self, x: &Tensor<T>, var: &Tensor<T>) -> (Tensor<T>, Tensor<T>) {
        let (n, k, d) = (x.dim(0), self.n_components, self.dim);
        let diff = &x.reshape([n, 1, d]) - &self.means().reshape([1, k, d]);
        let sq = diff.square().sum_axes(&[2], false);
        let log_w = self.params.expect("logits").log_softmax(0);
        let log_norm = var.log().add_scalar(LN_2PI).mul_scalar(0.5 * d as f64);
        let a = &(&log_w - &log_norm) - &(&sq / &var.mul_scalar(2.0));
        (a, sq)
    }

    /// Energies `[n]`, gradients `[n, d]` and the Laplacian `[n]` (when asked), in closed
    /// form, for variances `var`.
    fn closed_form(
        &self,
        x: &Tensor<T>,
        var: &Tensor<T>,
        with_laplacian: bool,
    ) -> (Tensor<T>, Tensor<T>, Option<Tensor<T>>) {
        let n = x.dim(0);
        let (a, sq) = self.log_components(x, var);
        let lse = a.logsumexp(1, true);
        let r = (&a - &lse).exp();

        // grad = sum_k r_k (x - mu_k) / s_k^2 = x sum_k (r_k / s_k^2) - (r / s^2) M
        let w = &r / var;
        let g = &(x * &w.sum_axes(&[1], true)) - &w.matmul(&self.means());

        // tr Hessian = d sum_k r_k / s_k^2 - sum_k r_k |x - mu_k|^2 / s_k^4 + |grad|^2
        let laplacian = with_laplacian.then(|| {
            let spread = w.sum_axes(&[1], false).mul_scalar(self.dim as f64);
            let second = (&(&w * &sq) / var).sum_axes(&[1], false);
            &(&spread - &second) + &g.square().sum_axes(&[1], false)
        });
        (-&lse.reshape([n]), g, laplacian)
    }
}

impl<T: Float> Energy<T> for GaussianMixtureEnergy<T> {
    #[track_caller]
    fn energy(&self, x: &Tensor<T>) -> Tensor<T> {
        check_batch(x, self.dim, "GaussianMixtureEnergy");
        let (a, _) = self.log_components(x, &self.variances());
        -&a.logsumexp(1, false)
    }

    /// In closed form (see the type's docs). With `create_graph` the results keep their graph
    /// to the parameters and to `x` itself.
    #[track_caller]
    fn energy_and_grad(
        &self,
        x: &Tensor<T>,
        create_graph: bool,
    ) -> Result<(Tensor<T>, Tensor<T>), Error> {
        check_batch(x, self.dim, "GaussianMixtureEnergy");
        let eval = || {
            let (e, g, _) = self.closed_form(x, &self.variances(), false);
            (e, g)
        };
        Ok(if create_graph { eval() } else { no_grad(eval) })
    }

    /// In closed form: d sum_k r_k / s_k^2 - sum_k r_k |x - mu_k|^2 / s_k^4 + |grad_x E|^2.
    #[track_caller]
    fn laplacian(&self, x: &Tensor<T>, create_graph: bool) -> Result<Tensor<T>, Error> {
        check_batch(x, self.dim, "GaussianMixtureEnergy");
        let eval = || {
            let (_, _, laplacian) = self.closed_form(x, &self.variances(), true);
            laplacian.expect("asked for")
        };
        Ok(if create_graph { eval() } else { no_grad(eval) })
    }
}

/// The energy of the mixture convolved with N(0, sigma^2 I), at per-sample sigma: the
/// variances become s_k^2 + sigma^2. At one sigma it equals
/// [`GaussianMixtureEnergy::smoothed`]`(sigma).energy(x)`, differentiable in the parameters.
impl<T: Float> NoiseConditionalEnergy<T> for GaussianMixtureEnergy<T> {
    #[track_caller]
    fn energy_at(&self, x: &Tensor<T>, sigma: &Tensor<T>) -> Tensor<T> {
        check_batch(x, self.dim, "GaussianMixtureEnergy");
        let n = x.dim(0);
        assert_eq!(
            sigma.dims(),
            &[n],
            "GaussianMixtureEnergy: expected noise levels [{n}], one per sample, got {}",
            sigma.shape()
        );
        let var = &self.variances() + &sigma.square().reshape([n, 1]);
        let (a, _) = self.log_components(x, &var);
        -&a.logsumexp(1, false)
    }
}

impl<T: Float> EnergyModel<T> for GaussianMixtureEnergy<T> {
    fn params(&self) -> &ParamStore<T> {
        &self.params
    }

    fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.params
    }

    fn spec(&self) -> EnergySpec {
        let config = GaussianMixtureConfig {
            dim: self.dim,
            n_components: self.n_components,
        };
        EnergySpec::new("gmm", &config)
    }
}
