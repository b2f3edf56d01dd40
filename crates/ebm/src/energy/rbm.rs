//! Restricted Boltzmann machines, as free energies of their visible units.
//!
//! An RBM is a joint energy E(v, h) over visible units v and hidden units h with no
//! connection inside a layer, so that both conditionals p(h | v) and p(v | h) factorise over
//! units. Summing (or integrating) the hidden units out gives the free energy
//!
//! ```text
//! F(v) = -log sum_h exp(-E(v, h)),    p(v) = exp(-F(v)) / Z
//! ```
//!
//! which is an ordinary [`Energy`] of the visible units: any objective or gradient-based
//! sampler of this crate applies to it, and block Gibbs sampling
//! ([`crate::sampler::BlockGibbs`]) uses the factorised conditionals through
//! [`BlockConditionals`].
//!
//! Layout, for both kinds: the weight W is `[n_hidden, n_visible]` (PyTorch's `[out, in]`,
//! hidden units as outputs), so the hidden pre-activations of a batch `[n, V]` are
//! `v W^T + c`, `[n, H]`, and the visible ones `h W + b`, `[n, V]`. Parameters are named
//! `weight`, `visible_bias` (b, `[V]`), `hidden_bias` (c, `[H]`) and, for the
//! Gaussian-Bernoulli RBM, `log_sigma` (`[V]`).
//!
//! References: Hinton, "A practical guide to training restricted Boltzmann machines", UTML TR
//! 2010-003; Cho, Ilin & Raiko, "Improved learning of Gaussian-Bernoulli restricted Boltzmann
//! machines", ICANN 2011.

use super::{Energy, EnergyModel, EnergySpec};
use crate::Error;
use crate::error::check_non_negative;
use ebm_nn::ParamStore;
use ebm_tensor::autodiff::no_grad;
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The most units of a layer that exact enumeration accepts: 2^20 (about a million) states.
pub const MAX_ENUMERATED_UNITS: usize = 20;

/// States evaluated together while enumerating a layer (bounds the memory of one batch).
const ENUMERATION_CHUNK: usize = 4096;

const WEIGHT: &str = "weight";
const VISIBLE_BIAS: &str = "visible_bias";
const HIDDEN_BIAS: &str = "hidden_bias";
const LOG_SIGMA: &str = "log_sigma";

/// One of the two layers of an RBM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RbmLayer {
    /// The visible units v.
    Visible,
    /// The hidden units h.
    Hidden,
}

/// A model whose units split into two blocks, each conditionally independent given the
/// other: what block Gibbs sampling ([`crate::sampler::BlockGibbs`]) needs.
///
/// Its [`Energy`] is the free energy of the visible units, reported along the chains.
/// Samples are detached: no graph is recorded.
pub trait BlockConditionals<T: Float>: Energy<T> {
    /// The number of visible units V.
    fn n_visible(&self) -> usize;

    /// The number of hidden units H.
    fn n_hidden(&self) -> usize;

    /// A draw of h ~ p(h | v) for every row: `[n, V] -> [n, H]`.
    fn sample_hidden<R: Rng + ?Sized>(&self, visible: &Tensor<T>, rng: &mut R) -> Tensor<T>;

    /// A draw of v ~ p(v | h) for every row: `[n, H] -> [n, V]`.
    fn sample_visible<R: Rng + ?Sized>(&self, hidden: &Tensor<T>, rng: &mut R) -> Tensor<T>;
}

fn default_init_scale() -> f64 {
    0.01
}

/// Settings of [`BernoulliRbm`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BernoulliRbmConfig {
    /// The number of visible units V.
    pub n_visible: usize,
    /// The number of hidden units H.
    pub n_hidden: usize,
    /// The standard deviation of the initial weights, N(0, init_scale^2); biases start at
    /// zero. Hinton's guide recommends 0.01.
    #[serde(default = "default_init_scale")]
    pub init_scale: f64,
}

impl BernoulliRbmConfig {
    /// V visible and H hidden units, initial weights of scale 0.01.
    pub fn new(n_visible: usize, n_hidden: usize) -> Self {
        BernoulliRbmConfig {
            n_visible,
            n_hidden,
            init_scale: default_init_scale(),
        }
    }
}

/// A Bernoulli-Bernoulli RBM: binary visible units v in {0, 1}^V and hidden units h in
/// {0, 1}^H, with
///
/// ```text
/// E(v, h)      = -b^T v - c^T h - h^T W v
/// F(v)         = -b^T v - sum_j softplus(c_j + W_j v)
/// p(h_j = 1|v) = sigmoid(c_j + W_j v),    p(v_i = 1|h) = sigmoid(b_i + sum_j W_ji h_j)
/// ```
///
/// (W_j is row j of W, `[H, V]`.) The free energy is defined for any real v, and is the
/// energy of the visible marginal on binary v: p(v) = exp(-F(v)) / Z with
/// Z = sum_{v in {0,1}^V} exp(-F(v)), which [`BernoulliRbm::log_partition_exact`] computes for
/// small models.
///
/// Cost: F of a batch `[n, V]` is one `[n, V] x [V, H]` product; so is each conditional.
///
/// # Example
/// ```
/// use ebm::energy::{BernoulliRbm, BernoulliRbmConfig, Energy};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let rbm = BernoulliRbm::<f64>::new(BernoulliRbmConfig::new(4, 3), &mut rng).unwrap();
/// let v = Tensor::from_f64s(&[1.0, 0.0, 1.0, 1.0], [1, 4]);
/// assert_eq!(rbm.energy(&v).dims(), &[1]);
/// let log_z = rbm.log_partition_exact().unwrap().item();
/// let log_p = -rbm.energy(&v).item() - log_z;
/// assert!(log_p < 0.0);
/// ```
#[derive(Clone, Debug)]
pub struct BernoulliRbm<T: Float> {
    config: BernoulliRbmConfig,
    store: ParamStore<T>,
}

impl<T: Float> BernoulliRbm<T> {
    /// The kind in an [`EnergySpec`].
    pub const KIND: &'static str = "rbm";

    /// A model with these settings: weights N(0, init_scale^2) drawn from `rng`, biases zero.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero units or an initial scale that is negative or not
    /// finite.
    pub fn new<R: Rng + ?Sized>(config: BernoulliRbmConfig, rng: &mut R) -> Result<Self, Error> {
        check_units("Bernoulli RBM", config.n_visible, config.n_hidden)?;
        check_non_negative("Bernoulli RBM init_scale", config.init_scale)?;
        let (v, h) = (config.n_visible, config.n_hidden);

        let mut store = ParamStore::new();
        let weight = Tensor::randn([h, v], rng).mul_scalar(config.init_scale);
        store.insert(WEIGHT, weight)?;
        store.insert(VISIBLE_BIAS, Tensor::zeros([v]))?;
        store.insert(HIDDEN_BIAS, Tensor::zeros([h]))?;
        Ok(BernoulliRbm { config, store })
    }

    /// The settings.
    pub fn config(&self) -> &BernoulliRbmConfig {
        &self.config
    }

    /// The weight W, `[H, V]`.
    pub fn weight(&self) -> &Tensor<T> {
        self.store.expect(WEIGHT)
    }

    /// The visible bias b, `[V]`.
    pub fn visible_bias(&self) -> &Tensor<T> {
        self.store.expect(VISIBLE_BIAS)
    }

    /// The hidden bias c, `[H]`.
    pub fn hidden_bias(&self) -> &Tensor<T> {
        self.store.expect(HIDDEN_BIAS)
    }

    /// p(h_j = 1 | v) = sigmoid(c_j + W_j v), recording the graph: `[n, V] -> [n, H]`.
    #[track_caller]
    pub fn hidden_probabilities(&self, visible: &Tensor<T>) -> Tensor<T> {
        check_layer("Bernoulli RBM", "visible", visible, self.config.n_visible);
        self.hidden_logits(visible).sigmoid()
    }

    /// p(v_i = 1 | h) = sigmoid(b_i + sum_j W_ji h_j), recording the graph:
    /// `[n, H] -> [n, V]`.
    #[track_caller]
    pub fn visible_probabilities(&self, hidden: &Tensor<T>) -> Tensor<T> {
        check_layer("Bernoulli RBM", "hidden", hidden, self.config.n_hidden);
        self.visible_logits(hidden).sigmoid()
    }

    /// The joint energy E(v, h) = -b^T v - c^T h - h^T W v of each row: `[n, V], [n, H] -> [n]`.
    #[track_caller]
    pub fn joint_energy(&self, visible: &Tensor<T>, hidden: &Tensor<T>) -> Tensor<T> {
        check_layer("Bernoulli RBM", "visible", visible, self.config.n_visible);
        check_layer("Bernoulli RBM", "hidden", hidden, self.config.n_hidden);
        let interaction = &self.hidden_logits(visible) * hidden;
        -(&dot(visible, self.visible_bias()) + &interaction.sum_axes(&[1], false))
    }

    /// The free energy of the hidden units, with the visible ones summed out:
    /// F_h(h) = -c^T h - sum_i softplus(b_i + sum_j W_ji h_j), `[n, H] -> [n]`.
    #[track_caller]
    pub fn hidden_free_energy(&self, hidden: &Tensor<T>) -> Tensor<T> {
        check_layer("Bernoulli RBM", "hidden", hidden, self.config.n_hidden);
        let softplus = self.visible_logits(hidden).softplus().sum_axes(&[1], false);
        -(&dot(hidden, self.hidden_bias()) + &softplus)
    }

    /// log Z, by enumerating the 2^min(V, H) states of the smaller layer (see
    /// [`BernoulliRbm::log_partition_enumerating`]).
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when both layers have more than [`MAX_ENUMERATED_UNITS`] units.
    pub fn log_partition_exact(&self) -> Result<Tensor<T>, Error> {
        let layer = if self.config.n_visible <= self.config.n_hidden {
            RbmLayer::Visible
        } else {
            RbmLayer::Hidden
        };
        self.log_partition_enumerating(layer)
    }

    /// log Z = log sum_v exp(-F(v)) = log sum_h exp(-F_h(h)), summing over the states of
    /// `layer` (the other layer is summed out in closed form). A scalar that records the
    /// graph, so that the exact log-likelihood -F(v) - log Z of a small model can be trained.
    ///
    /// Cost: 2^k evaluations of a free energy, k the units of `layer`, in batches of 4096.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when `layer` has more than [`MAX_ENUMERATED_UNITS`] units.
    pub fn log_partition_enumerating(&self, layer: RbmLayer) -> Result<Tensor<T>, Error> {
        match layer {
            RbmLayer::Visible => {
                log_sum_exp_over_states(self.config.n_visible, |v| -self.energy(v))
            }
            RbmLayer::Hidden => {
                log_sum_exp_over_states(self.config.n_hidden, |h| -self.hidden_free_energy(h))
            }
        }
    }

    fn hidden_logits(&self, visible: &Tensor<T>) -> Tensor<T> {
        visible.linear(self.weight(), Some(self.hidden_bias()))
    }

    fn visible_logits(&self, hidden: &Tensor<T>) -> Tensor<T> {
        &hidden.matmul(self.weight()) + self.visible_bias()
    }
}

impl<T: Float> Energy<T> for BernoulliRbm<T> {
    /// F(v) = -b^T v - sum_j softplus(c_j + W_j v): `[n, V] -> [n]`.
    fn energy(&self, x: &Tensor<T>) -> Tensor<T> {
        check_layer("Bernoulli RBM", "visible", x, self.config.n_visible);
        let softplus = self.hidden_logits(x).softplus().sum_axes(&[1], false);
        -(&dot(x, self.visible_bias()) + &softplus)
    }
}

impl<T: Float> EnergyModel<T> for BernoulliRbm<T> {
    fn params(&self) -> &ParamStore<T> {
        &self.store
    }

    fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.store
    }

    fn spec(&self) -> EnergySpec {
        EnergySpec::new(Self::KIND, &self.config)
    }
}

impl<T: Float> BlockConditionals<T> for BernoulliRbm<T> {
    fn n_visible(&self) -> usize {
        self.config.n_visible
    }

    fn n_hidden(&self) -> usize {
        self.config.n_hidden
    }

    fn sample_hidden<R: Rng + ?Sized>(&self, visible: &Tensor<T>, rng: &mut R) -> Tensor<T> {
        no_grad(|| bernoulli(&self.hidden_probabilities(visible), rng))
    }

    fn sample_visible<R: Rng + ?Sized>(&self, hidden: &Tensor<T>, rng: &mut R) -> Tensor<T> {
        no_grad(|| bernoulli(&self.visible_probabilities(hidden), rng))
    }
}

/// Settings of [`GaussianBernoulliRbm`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GaussianBernoulliRbmConfig {
    /// The number of visible units V.
    pub n_visible: usize,
    /// The number of hidden units H.
    pub n_hidden: usize,
    /// Whether the per-unit standard deviations sigma_i are trained (as the parameter
    /// `log_sigma`). When false, `log_sigma` is a buffer: zero (unit variance, the usual
    /// choice for standardised data) unless set otherwise through
    /// [`EnergyModel::params_mut`].
    #[serde(default)]
    pub learn_sigma: bool,
    /// The standard deviation of the initial weights, N(0, init_scale^2); biases and
    /// log_sigma start at zero.
    #[serde(default = "default_init_scale")]
    pub init_scale: f64,
}

impl GaussianBernoulliRbmConfig {
    /// V visible and H hidden units, unit variance (not trained), initial weights of scale
    /// 0.01.
    pub fn new(n_visible: usize, n_hidden: usize) -> Self {
        GaussianBernoulliRbmConfig {
            n_visible,
            n_hidden,
            learn_sigma: false,
            init_scale: default_init_scale(),
        }
    }
}

/// A Gaussian-Bernoulli RBM: real visible units v in R^V with per-unit standard deviations
/// sigma_i, binary hidden units h in {0, 1}^H, in the parametrisation of Cho et al. (2011):
///
/// ```text
/// E(v, h) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - c^T h - sum_ij h_j W_ji v_i / sigma_i^2
/// F(v)    = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + sum_i W_ji v_i / sigma_i^2)
/// p(h_j = 1 | v) = sigmoid(c_j + sum_i W_ji v_i / sigma_i^2)
/// p(v | h)       = N(b + W^T h, diag(sigma^2))
/// ```
///
/// With sigma = 1 it is also the model of Hinton's guide, which scales the interaction by
/// v_i / sigma_i instead (so its conditional mean is b_i + sigma_i sum_j W_ji h_j); Cho's form
/// keeps the conditional mean independent of sigma and makes learning sigma better behaved.
/// sigma is held as log sigma, trained or not ([`GaussianBernoulliRbmConfig::learn_sigma`]).
///
/// The visible marginal is a mixture of 2^H Gaussians N(b + W^T h, diag(sigma^2)), one per
/// hidden state, with weights proportional to exp(-F_h(h))
/// ([`GaussianBernoulliRbm::hidden_free_energy`]).
///
/// Cost: F of a batch `[n, V]` is one `[n, V] x [V, H]` product; so is each conditional.
///
/// # Example
/// ```
/// use ebm::energy::{Energy, GaussianBernoulliRbm, GaussianBernoulliRbmConfig};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let config = GaussianBernoulliRbmConfig {
///     learn_sigma: true,
///     ..GaussianBernoulliRbmConfig::new(2, 8)
/// };
/// let rbm = GaussianBernoulliRbm::<f64>::new(config, &mut rng).unwrap();
/// let x = Tensor::from_f64s(&[0.5, -1.0], [1, 2]);
/// let log_p = -rbm.energy(&x).item() - rbm.log_partition_exact().unwrap().item();
/// assert!(log_p.is_finite());
/// ```
#[derive(Clone, Debug)]
pub struct GaussianBernoulliRbm<T: Float> {
    config: GaussianBernoulliRbmConfig,
    store: ParamStore<T>,
}

impl<T: Float> GaussianBernoulliRbm<T> {
    /// The kind in an [`EnergySpec`].
    pub const KIND: &'static str = "gaussian-rbm";

    /// A model with these settings: weights N(0, init_scale^2) drawn from `rng`, biases and
    /// log sigma zero.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for zero units or an initial scale that is negative or not
    /// finite.
    pub fn new<R: Rng + ?Sized>(
        config: GaussianBernoulliRbmConfig,
        rng: &mut R,
    ) -> Result<Self, Error> {
        check_units("Gaussian-Bernoulli RBM", config.n_visible, config.n_hidden)?;
        check_non_negative("Gaussian-Bernoulli RBM init_scale", config.init_scale)?;
        let (v, h) = (config.n_visible, config.n_hidden);

        let mut store = ParamStore::new();
        let weight = Tensor::randn([h, v], rng).mul_scalar(config.init_scale);
        store.insert(WEIGHT, weight)?;
        store.insert(VISIBLE_BIAS, Tensor::zeros([v]))?;
        store.insert(HIDDEN_BIAS, Tensor::zeros([h]))?;
        if config.learn_sigma {
            store.insert(LOG_SIGMA, Tensor::zeros([v]))?;
        } else {
            store.insert_buffer(LOG_SIGMA, Tensor::zeros([v]))?;
        }
        Ok(GaussianBernoulliRbm { config, store })
    }

    /// The settings.
    pub fn config(&self) -> &GaussianBernoulliRbmConfig {
        &self.config
    }

    /// The weight W, `[H, V]`.
    pub fn weight(&self) -> &Tensor<T> {
        self.store.expect(WEIGHT)
    }

    /// The visible bias b, `[V]`.
    pub fn visible_bias(&self) -> &Tensor<T> {
        self.store.expect(VISIBLE_BIAS)
    }

    /// The hidden bias c, `[H]`.
    pub fn hidden_bias(&self) -> &Tensor<T> {
        self.store.expect(HIDDEN_BIAS)
    }

    /// log sigma, `[V]`.
    pub fn log_sigma(&self) -> &Tensor<T> {
        self.store.expect(LOG_SIGMA)
    }

    /// The standard deviations sigma = exp(log sigma), `[V]`.
    pub fn sigma(&self) -> Tensor<T> {
        self.log_sigma().exp()
    }

    /// p(h_j = 1 | v) = sigmoid(c_j + sum_i W_ji v_i / sigma_i^2), recording the graph:
    /// `[n, V] -> [n, H]`.
    #[track_caller]
    pub fn hidden_probabilities(&self, visible: &Tensor<T>) -> Tensor<T> {
        check_layer(
            "Gaussian-Bernoulli RBM",
            "visible",
            visible,
            self.config.n_visible,
        );
        self.hidden_logits(visible).sigmoid()
    }

    /// The mean of p(v | h), b + W^T h, recording the graph: `[n, H] -> [n, V]`.
    #[track_caller]
    pub fn visible_mean(&self, hidden: &Tensor<T>) -> Tensor<T> {
        check_layer(
            "Gaussian-Bernoulli RBM",
            "hidden",
            hidden,
            self.config.n_hidden,
        );
        &hidden.matmul(self.weight()) + self.visible_bias()
    }

    /// The joint energy E(v, h) of each row: `[n, V], [n, H] -> [n]`.
    #[track_caller]
    pub fn joint_energy(&self, visible: &Tensor<T>, hidden: &Tensor<T>) -> Tensor<T> {
        check_layer(
            "Gaussian-Bernoulli RBM",
            "visible",
            visible,
            self.config.n_visible,
        );
        check_layer(
            "Gaussian-Bernoulli RBM",
            "hidden",
            hidden,
            self.config.n_hidden,
        );
        let interaction = (&self.hidden_logits(visible) * hidden).sum_axes(&[1], false);
        &self.quadratic(visible) - &interaction
    }

    /// The free energy of the hidden units, with the visible ones integrated out:
    ///
    /// ```text
    /// F_h(h) = -log int exp(-E(v, h)) dv
    ///        = -c^T h - sum_i [((b_i + m_i)^2 - b_i^2) / (2 sigma_i^2) + log(sqrt(2 pi) sigma_i)]
    /// ```
    ///
    /// with m = W^T h: `[n, H] -> [n]`. The mixture weight of hidden state h in the visible
    /// marginal is exp(-F_h(h)) / Z.
    #[track_caller]
    pub fn hidden_free_energy(&self, hidden: &Tensor<T>) -> Tensor<T> {
        let mean = self.visible_mean(hidden);
        let b = self.visible_bias();
        let gain = &(&mean.square() - &b.square()) * &self.inverse_variance().mul_scalar(0.5);
        let log_norm = self
            .log_sigma()
            .add_scalar(0.5 * (2.0 * std::f64::consts::PI).ln())
            .sum();
        -(&(&dot(hidden, self.hidden_bias()) + &gain.sum_axes(&[1], false)) + &log_norm)
    }

    /// log Z = log int exp(-F(v)) dv = log sum_h exp(-F_h(h)), by enumerating the 2^H hidden
    /// states. A scalar that records the graph.
    ///
    /// Cost: 2^H evaluations of F_h, in batches of 4096.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] when H is above [`MAX_ENUMERATED_UNITS`].
    pub fn log_partition_exact(&self) -> Result<Tensor<T>, Error> {
        log_sum_exp_over_states(self.config.n_hidden, |h| -self.hidden_free_energy(h))
    }

    /// 1 / sigma^2 = exp(-2 log sigma), `[V]`.
    fn inverse_variance(&self) -> Tensor<T> {
        self.log_sigma().mul_scalar(-2.0).exp()
    }

    /// sum_i (v_i - b_i)^2 / (2 sigma_i^2), `[n]`.
    fn quadratic(&self, visible: &Tensor<T>) -> Tensor<T> {
        let centred = visible - self.visible_bias();
        (&centred.square() * &self.inverse_variance().mul_scalar(0.5)).sum_axes(&[1], false)
    }

    fn hidden_logits(&self, visible: &Tensor<T>) -> Tensor<T> {
        let scaled = visible * &self.inverse_variance();
        scaled.linear(self.weight(), Some(self.hidden_bias()))
    }
}

impl<T: Float> Energy<T> for GaussianBernoulliRbm<T> {
    /// F(v) = sum_i (v_i - b_i)^2 / (2 sigma_i^2) - sum_j softplus(c_j + sum_i W_ji v_i /
    /// sigma_i^2): `[n, V] -> [n]`.
    fn energy(&self, x: &Tensor<T>) -> Tensor<T> {
        check_layer(
            "Gaussian-Bernoulli RBM",
            "visible",
            x,
            self.config.n_visible,
        );
        let softplus = self.hidden_logits(x).softplus().sum_axes(&[1], false);
        &self.quadratic(x) - &softplus
    }
}

impl<T: Float> EnergyModel<T> for GaussianBernoulliRbm<T> {
    fn params(&self) -> &ParamStore<T> {
        &self.store
    }

    fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.store
    }

    fn spec(&self) -> EnergySpec {
        EnergySpec::new(Self::KIND, &self.config)
    }
}

impl<T: Float> BlockConditionals<T> for GaussianBernoulliRbm<T> {
    fn n_visible(&self) -> usize {
        self.config.n_visible
    }

    fn n_hidden(&self) -> usize {
        self.config.n_hidden
    }

    fn sample_hidden<R: Rng + ?Sized>(&self, visible: &Tensor<T>, rng: &mut R) -> Tensor<T> {
        no_grad(|| bernoulli(&self.hidden_probabilities(visible), rng))
    }

    fn sample_visible<R: Rng + ?Sized>(&self, hidden: &Tensor<T>, rng: &mut R) -> Tensor<T> {
        no_grad(|| {
            let mean = self.visible_mean(hidden);
            let z = Tensor::randn(mean.shape().clone(), rng);
            &mean + &(&z * &self.sigma())
        })
    }
}

/// Rejects a layer without units.
fn check_units(model: &str, n_visible: usize, n_hidden: usize) -> Result<(), Error> {
    for (layer, n) in [("n_visible", n_visible), ("n_hidden", n_hidden)] {
        if n == 0 {
            return Err(Error::config(
                format!("{model} {layer}"),
                n,
                "at least 1 unit",
            ));
        }
    }
    Ok(())
}

/// Panics unless `x` is `[n, units]`: feeding a layer the wrong width is a programmer error.
#[track_caller]
fn check_layer<T: Float>(model: &str, layer: &str, x: &Tensor<T>, units: usize) {
    assert!(
        x.rank() == 2 && x.dim(1) == units,
        "{model}: the {layer} layer takes a batch [n, {units}], got {}",
        x.shape()
    );
}

/// Row-wise dot products of a batch `[n, k]` with a vector `[k]`: `[n]`.
fn dot<T: Float>(x: &Tensor<T>, v: &Tensor<T>) -> Tensor<T> {
    (x * v).sum_axes(&[1], false)
}

/// Independent Bernoulli draws with the given probabilities: 1 where u < p for u uniform in
/// [0, 1), so P(1) = p.
fn bernoulli<T: Float, R: Rng + ?Sized>(probabilities: &Tensor<T>, rng: &mut R) -> Tensor<T> {
    let u = Tensor::rand_uniform(probabilities.shape().clone(), 0.0, 1.0, rng);
    let above = (probabilities - &u).relu();
    probabilities
        .ones_like()
        .where_mask(&above, &probabilities.zeros_like())
}

/// Binary states `start..start + len` of `k` units, `[len, k]`: row s holds the bits of s,
/// unit j being bit j.
fn binary_states<T: Float>(k: usize, start: usize, len: usize) -> Tensor<T> {
    let bits: Vec<f64> = (start..start + len)
        .flat_map(|s| (0..k).map(move |j| ((s >> j) & 1) as f64))
        .collect();
    Tensor::from_f64s(&bits, [len, k])
}

/// log sum_s exp(f(s)) over the 2^k binary states of `k` units, `f` mapping a batch of states
/// `[m, k]` to `[m]`; a scalar that records the graph.
fn log_sum_exp_over_states<T: Float>(
    k: usize,
    f: impl Fn(&Tensor<T>) -> Tensor<T>,
) -> Result<Tensor<T>, Error> {
    if k > MAX_ENUMERATED_UNITS {
        return Err(Error::config(
            "units to enumerate for an exact RBM log partition function",
            k,
            format!(
                "at most {MAX_ENUMERATED_UNITS} (2^{MAX_ENUMERATED_UNITS} states); estimate log Z of larger models by annealed importance sampling"
            ),
        ));
    }
    let total = 1usize << k;
    let chunks: Vec<Tensor<T>> = (0..total)
        .step_by(ENUMERATION_CHUNK)
        .map(|start| {
            let states = binary_states(k, start, ENUMERATION_CHUNK.min(total - start));
            f(&states).logsumexp(0, true)
        })
        .collect();
    Ok(Tensor::concat(&chunks, 0).logsumexp(0, false))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn binary_states_list_every_state_once() {
        let states = binary_states::<f64>(3, 0, 8).to_f64s();
        let mut seen: Vec<usize> = states
            .chunks(3)
            .map(|r| r.iter().enumerate().map(|(j, &b)| (b as usize) << j).sum())
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..8).collect::<Vec<_>>());
    }

    #[test]
    fn bernoulli_draws_are_binary_and_respect_certain_probabilities() {
        let mut rng = StdRng::seed_from_u64(0);
        let p = Tensor::<f64>::from_f64s(&[0.0, 1.0, 0.5, 0.5], [1, 4]);
        let draws = bernoulli(&p, &mut rng).to_f64s();
        assert!(draws.iter().all(|&d| d == 0.0 || d == 1.0));
        assert_eq!((draws[0], draws[1]), (0.0, 1.0));
    }

    #[test]
    fn enumeration_in_chunks_matches_one_batch() {
        // 13 units: 2 chunks of 4096 states; log 2^13 for the zero function.
        let log_z = log_sum_exp_over_states::<f64>(13, |s| s.sum_axes(&[1], false).mul_scalar(0.0))
            .unwrap()
            .item();
        assert!((log_z - 13.0 * 2f64.ln()).abs() < 1e-12);
    }
}
