//! Real NVP: a stack of affine coupling layers over a standard normal base.

use super::coupling::{AffineCoupling, AffineCouplingConfig};
use crate::{Activation, NnError, ParamStore};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// ln(2 pi).
const LN_2PI: f64 = 1.837_877_066_409_345_5;

/// How the coordinates are split between conditioning and transformed ones, alternating from
/// one coupling layer to the next so that every coordinate is transformed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CouplingMask {
    /// Even coordinates condition the odd ones in even layers, odd ones the even ones in odd
    /// layers (for d = 2: x0 sets the map of x1, then x1 that of x0).
    #[default]
    Parity,
    /// The first floor(d / 2) coordinates condition the rest in even layers, the reverse in odd
    /// layers.
    Halves,
}

impl CouplingMask {
    /// The conditioning coordinates of layer `layer` in dimension `dim` (>= 2).
    pub fn conditioning(self, dim: usize, layer: usize) -> Vec<usize> {
        let even = layer.is_multiple_of(2);
        match self {
            CouplingMask::Parity => (0..dim).filter(|i| i.is_multiple_of(2) == even).collect(),
            CouplingMask::Halves if even => (0..dim / 2).collect(),
            CouplingMask::Halves => (dim / 2..dim).collect(),
        }
    }
}

/// Settings of a [`RealNvp`] flow. `Default` suits the 2-D sets: 8 coupling layers with
/// conditioners 64-64 (SiLU), log-scales bounded by 2.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RealNvpConfig {
    /// The dimension d of the samples (at least 2: a coupling needs a coordinate to condition
    /// on and one to transform).
    pub dim: usize,
    /// The number of coupling layers (at least 1; an even number transforms every coordinate
    /// equally often).
    pub n_couplings: usize,
    /// Hidden widths of each conditioner MLP (empty: affine conditioners).
    pub hidden: Vec<usize>,
    /// The conditioners' nonlinearity: smooth (SiLU, tanh, softplus) for log q to be twice
    /// differentiable.
    pub activation: Activation,
    /// The split of the coordinates in each layer.
    pub mask: CouplingMask,
    /// B, the bound of each layer's log-scale (|s| < B per coordinate and layer).
    pub log_scale_bound: f64,
}

impl Default for RealNvpConfig {
    fn default() -> Self {
        RealNvpConfig {
            dim: 2,
            n_couplings: 8,
            hidden: vec![64, 64],
            activation: Activation::Silu,
            mask: CouplingMask::Parity,
            log_scale_bound: 2.0,
        }
    }
}

/// A Real NVP normalising flow (Dinh, Sohl-Dickstein & Bengio, "Density estimation using Real
/// NVP", ICLR 2017): x = g(z) = f_K(...f_1(z)), each f_k an [`AffineCoupling`], z ~ N(0, I).
///
/// ```text
/// log q(x) = log N(g^-1(x); 0, I) + sum_k log |det df_k^-1|
///          = log N(z; 0, I) - sum_k sum_T s_k,        z = g^-1(x)
/// log N(z; 0, I) = -|z|^2 / 2 - d/2 log(2 pi)
/// ```
///
/// Both directions cost one pass through the K conditioners, and the log-determinant is exact
/// (a sum of log-scales). Everything is built from differentiable tensor operations, so
/// `log_prob` is differentiable in the parameters and in x (to any order), and `sample` is
/// reparameterised: x = g(z) carries the graph to the parameters.
///
/// A new flow is the identity (every conditioner's last layer is zero): q = N(0, I).
///
/// Like the other layers, the flow holds names and settings; its tensors live in a
/// [`ParamStore`] (`name.k.i.weight`, `name.k.i.bias` for layer i of the conditioner of
/// coupling k), so optimisers and safetensors files handle them as any others.
///
/// # Shapes
/// Samples are `[n, d]`; log-densities and log-determinants `[n]`.
///
/// # Example
/// ```
/// use ebm_nn::{ParamStore, RealNvp, RealNvpConfig};
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut store = ParamStore::<f64>::new();
/// let flow = RealNvp::new(&mut store, "flow", &RealNvpConfig::default(), &mut rng)?;
/// let (x, log_q) = flow.sample_with_log_prob(&store, 5, &mut rng);
/// let again = flow.log_prob(&store, &x);
/// for (a, b) in log_q.to_f64s().iter().zip(again.to_f64s()) {
///     assert!((a - b).abs() < 1e-12);
/// }
/// # Ok::<(), ebm_nn::NnError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct RealNvp {
    config: RealNvpConfig,
    couplings: Vec<AffineCoupling>,
}

impl RealNvp {
    /// A flow with the given settings, its tensors added to `store` under `name.` (all of them
    /// or, on error, none), starting at the identity.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for `dim` < 2, `n_couplings` of 0, a zero hidden width or a
    /// `log_scale_bound` that is not finite and positive; [`NnError::DuplicateName`] or
    /// [`NnError::InvalidName`] for the names.
    pub fn new<T: Float, R: Rng + ?Sized>(
        store: &mut ParamStore<T>,
        name: &str,
        config: &RealNvpConfig,
        rng: &mut R,
    ) -> Result<Self, NnError> {
        if config.dim < 2 {
            return Err(NnError::config(
                &format!("RealNvp `{name}` dim"),
                config.dim,
                "at least 2 (a coupling transforms some coordinates given the others)",
            ));
        }
        if config.n_couplings == 0 {
            return Err(NnError::config(
                &format!("RealNvp `{name}` n_couplings"),
                0,
                "at least 1 (2 or more, so that every coordinate is transformed)",
            ));
        }
        if config.hidden.contains(&0) {
            return Err(NnError::config(
                &format!("RealNvp `{name}` hidden"),
                format!("{:?}", config.hidden),
                "non-zero widths, such as [64, 64]",
            ));
        }

        // Build into a scratch store, then move: the store gains every tensor or none.
        let mut scratch = ParamStore::new();
        let mut couplings = Vec::with_capacity(config.n_couplings);
        for k in 0..config.n_couplings {
            let layer = AffineCouplingConfig {
                dim: config.dim,
                conditioning: config.mask.conditioning(config.dim, k),
                hidden: config.hidden.clone(),
                activation: config.activation,
                log_scale_bound: config.log_scale_bound,
            };
            let layer_name = format!("{name}.{k}");
            couplings.push(AffineCoupling::new(&mut scratch, &layer_name, &layer, rng)?);
        }
        store.absorb(scratch)?;
        Ok(RealNvp {
            config: config.clone(),
            couplings,
        })
    }

    /// The settings.
    pub fn config(&self) -> &RealNvpConfig {
        &self.config
    }

    /// The dimension d.
    pub fn dim(&self) -> usize {
        self.config.dim
    }

    /// The coupling layers, from the base towards the data.
    pub fn couplings(&self) -> &[AffineCoupling] {
        &self.couplings
    }

    /// x = g(z) and log |det dg/dz| per sample.
    ///
    /// # Shapes
    /// `z`: `[n, d]`; returns `([n, d], [n])`.
    ///
    /// # Panics
    /// When `z` is not `[n, d]`.
    #[track_caller]
    pub fn forward<T: Float>(
        &self,
        store: &ParamStore<T>,
        z: &Tensor<T>,
    ) -> (Tensor<T>, Tensor<T>) {
        let mut x = z.clone();
        let mut log_det = Tensor::zeros([z.dim(0)]);
        for layer in &self.couplings {
            let (next, ld) = layer.forward(store, &x);
            x = next;
            log_det = &log_det + &ld;
        }
        (x, log_det)
    }

    /// z = g^-1(x) and log |det dg^-1/dx| per sample.
    ///
    /// # Shapes
    /// `x`: `[n, d]`; returns `([n, d], [n])`.
    ///
    /// # Panics
    /// When `x` is not `[n, d]`.
    #[track_caller]
    pub fn inverse<T: Float>(
        &self,
        store: &ParamStore<T>,
        x: &Tensor<T>,
    ) -> (Tensor<T>, Tensor<T>) {
        let mut z = x.clone();
        let mut log_det = Tensor::zeros([x.dim(0)]);
        for layer in self.couplings.iter().rev() {
            let (next, ld) = layer.inverse(store, &z);
            z = next;
            log_det = &log_det + &ld;
        }
        (z, log_det)
    }

    /// The normalised log-density log q(x) of each sample, differentiable in the parameters
    /// and in `x`.
    ///
    /// # Shapes
    /// `[n, d] -> [n]`.
    ///
    /// # Panics
    /// When `x` is not `[n, d]`.
    #[track_caller]
    pub fn log_prob<T: Float>(&self, store: &ParamStore<T>, x: &Tensor<T>) -> Tensor<T> {
        let (z, log_det) = self.inverse(store, x);
        &standard_normal_log_prob(&z) + &log_det
    }

    /// `n` draws x = g(z), z ~ N(0, I), carrying the graph to the parameters
    /// (reparameterised).
    ///
    /// # Shapes
    /// Returns `[n, d]`.
    pub fn sample<T: Float, R: Rng + ?Sized>(
        &self,
        store: &ParamStore<T>,
        n: usize,
        rng: &mut R,
    ) -> Tensor<T> {
        let z = Tensor::randn([n, self.dim()], rng);
        self.forward(store, &z).0
    }

    /// `n` draws with their log-density, log q(x) = log N(z) - log |det dg/dz|, without the
    /// inverse pass. Both carry the graph to the parameters; the gradient of the mean of
    /// log q(x) is that of the flow's negative entropy (reparameterised).
    ///
    /// # Shapes
    /// Returns `([n, d], [n])`.
    pub fn sample_with_log_prob<T: Float, R: Rng + ?Sized>(
        &self,
        store: &ParamStore<T>,
        n: usize,
        rng: &mut R,
    ) -> (Tensor<T>, Tensor<T>) {
        let z = Tensor::randn([n, self.dim()], rng);
        let (x, log_det) = self.forward(store, &z);
        (x, &standard_normal_log_prob(&z) - &log_det)
    }
}

/// log N(z; 0, I) = -|z|^2 / 2 - d/2 log(2 pi) of each row of a batch `[n, d]`.
pub fn standard_normal_log_prob<T: Float>(z: &Tensor<T>) -> Tensor<T> {
    let d = z.dim(1) as f64;
    z.square()
        .sum_axes(&[1], false)
        .mul_scalar(-0.5)
        .add_scalar(-0.5 * d * LN_2PI)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn masks_alternate_and_cover_every_coordinate() {
        assert_eq!(CouplingMask::Parity.conditioning(2, 0), [0]);
        assert_eq!(CouplingMask::Parity.conditioning(2, 1), [1]);
        assert_eq!(CouplingMask::Parity.conditioning(5, 2), [0, 2, 4]);
        assert_eq!(CouplingMask::Halves.conditioning(5, 0), [0, 1]);
        assert_eq!(CouplingMask::Halves.conditioning(5, 1), [2, 3, 4]);
    }

    #[test]
    fn a_new_flow_is_the_standard_normal() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut store = ParamStore::<f64>::new();
        let config = RealNvpConfig {
            dim: 3,
            ..RealNvpConfig::default()
        };
        let flow = RealNvp::new(&mut store, "flow", &config, &mut rng).unwrap();
        assert_eq!(store.len(), 8 * 6);
        let x = Tensor::<f64>::randn([4, 3], &mut rng);
        let want = standard_normal_log_prob(&x).to_f64s();
        assert_eq!(flow.log_prob(&store, &x).to_f64s(), want);
        let row = [0.5, -1.0, 2.0];
        let by_hand = -0.5 * row.iter().map(|v| v * v).sum::<f64>() - 1.5 * LN_2PI;
        let at = flow
            .log_prob(&store, &Tensor::from_f64s(&row, [1, 3]))
            .item();
        assert!((at - by_hand).abs() < 1e-14);
    }

    #[test]
    fn invalid_settings_are_rejected_naming_the_value() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut store = ParamStore::<f32>::new();
        let cases = [
            (
                RealNvpConfig {
                    dim: 1,
                    ..RealNvpConfig::default()
                },
                "dim",
            ),
            (
                RealNvpConfig {
                    n_couplings: 0,
                    ..RealNvpConfig::default()
                },
                "n_couplings",
            ),
            (
                RealNvpConfig {
                    hidden: vec![8, 0],
                    ..RealNvpConfig::default()
                },
                "[8, 0]",
            ),
            (
                RealNvpConfig {
                    log_scale_bound: -1.0,
                    ..RealNvpConfig::default()
                },
                "-1",
            ),
        ];
        for (config, needle) in cases {
            let err = RealNvp::new(&mut store, "f", &config, &mut rng).unwrap_err();
            assert!(err.to_string().contains(needle), "{err}");
        }
        assert!(store.is_empty());
        let parsed: RealNvpConfig =
            serde_json::from_str(r#"{"dim": 3, "mask": "halves"}"#).unwrap();
        assert_eq!(
            (parsed.dim, parsed.mask, parsed.n_couplings),
            (3, CouplingMask::Halves, 8)
        );
        assert!(serde_json::from_str::<RealNvpConfig>(r#"{"depth": 3}"#).is_err());
    }
}
