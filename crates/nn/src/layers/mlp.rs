//! The multilayer perceptron: linear layers with a nonlinearity between them.

use super::linear::{Linear, LinearConfig, torch_default, yes};
use super::spectral::SpectralNormConfig;
use crate::{Activation, Init, Module, NnError, ParamStore};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Settings of an [`Mlp`], serialisable so that a checkpoint can rebuild the network.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpConfig {
    /// Input size, hidden sizes, output size: `[2, 128, 128, 1]` is an energy on the plane
    /// with two hidden layers of 128.
    pub widths: Vec<usize>,
    /// The nonlinearity after every layer but the last.
    pub activation: Activation,
    /// Whether the layers have biases.
    #[serde(default = "yes")]
    pub bias: bool,
    /// How to fill the weights.
    #[serde(default = "torch_default")]
    pub weight_init: Init,
    /// How to fill the biases.
    #[serde(default = "torch_default")]
    pub bias_init: Init,
    /// Spectral normalisation of every weight, if any.
    #[serde(default)]
    pub spectral_norm: Option<SpectralNormConfig>,
}

impl MlpConfig {
    /// Layers of the given widths with biases, PyTorch's initialisation and no spectral
    /// normalisation.
    pub fn new(widths: &[usize], activation: Activation) -> Self {
        MlpConfig {
            widths: widths.to_vec(),
            activation,
            bias: true,
            weight_init: Init::TorchDefault,
            bias_init: Init::TorchDefault,
            spectral_norm: None,
        }
    }
}

/// A multilayer perceptron: `Linear -> activation -> ... -> Linear`, with no activation after
/// the last layer (an energy is an unconstrained real number).
///
/// Layer `i` of an MLP called `name` stores `name.i.weight` (`[widths[i + 1], widths[i]]`),
/// `name.i.bias` and, with spectral normalisation, the buffer `name.i.weight_u`.
///
/// # Shapes
/// `[n, widths[0]] -> [n, widths[last]]`.
///
/// # Example
/// ```
/// use ebm_nn::{Activation, Mlp, Module, ParamStore};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut store = ParamStore::<f32>::new();
/// let mlp = Mlp::new(&mut store, "energy", &[2, 16, 16, 1], Activation::Silu, &mut rng).unwrap();
/// assert_eq!(store.numel(), (2 * 16 + 16) + (16 * 16 + 16) + (16 + 1));
/// let energy = mlp.forward(&store, &Tensor::zeros([8, 2]));
/// assert_eq!(energy.dims(), &[8, 1]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Mlp {
    layers: Vec<Linear>,
    config: MlpConfig,
}

impl Mlp {
    /// An MLP of the given widths with PyTorch's initialisation, its tensors added to `store`
    /// under `name.`.
    ///
    /// # Arguments
    /// * `widths`: input size, hidden sizes, output size (at least two entries, none zero).
    /// * `activation`: the nonlinearity between layers.
    ///
    /// # Errors
    /// As [`Mlp::from_config`].
    pub fn new<T: Float, R: Rng + ?Sized>(
        store: &mut ParamStore<T>,
        name: &str,
        widths: &[usize],
        activation: Activation,
        rng: &mut R,
    ) -> Result<Self, NnError> {
        Self::from_config(store, name, &MlpConfig::new(widths, activation), rng)
    }

    /// An MLP with the given settings, its tensors added to `store` under `name.` (all of
    /// them or, on error, none).
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for fewer than two widths, a zero width, or invalid
    /// initialiser or spectral-norm settings; [`NnError::DuplicateName`] or
    /// [`NnError::InvalidName`] for the names.
    pub fn from_config<T: Float, R: Rng + ?Sized>(
        store: &mut ParamStore<T>,
        name: &str,
        config: &MlpConfig,
        rng: &mut R,
    ) -> Result<Self, NnError> {
        let widths = &config.widths;
        if widths.len() < 2 || widths.contains(&0) {
            return Err(NnError::config(
                &format!("Mlp `{name}` widths"),
                format!("{widths:?}"),
                "at least two widths (input and output), none zero, such as [2, 128, 128, 1]",
            ));
        }

        // Build into a scratch store, then move: the store gains every tensor or none.
        let mut scratch = ParamStore::new();
        let mut layers = Vec::with_capacity(widths.len() - 1);
        for (i, pair) in widths.windows(2).enumerate() {
            let layer = LinearConfig {
                in_features: pair[0],
                out_features: pair[1],
                bias: config.bias,
                weight_init: config.weight_init,
                bias_init: config.bias_init,
                spectral_norm: config.spectral_norm,
            };
            let layer_name = format!("{name}.{i}");
            layers.push(Linear::from_config(&mut scratch, &layer_name, &layer, rng)?);
        }
        store.absorb(scratch)?;
        Ok(Mlp {
            layers,
            config: config.clone(),
        })
    }

    /// The settings it was built from.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// The linear layers, first to last.
    pub fn layers(&self) -> &[Linear] {
        &self.layers
    }

    /// The input size.
    pub fn in_features(&self) -> usize {
        self.config.widths[0]
    }

    /// The output size.
    pub fn out_features(&self) -> usize {
        *self
            .config
            .widths
            .last()
            .expect("validated: at least two widths")
    }
}

impl<T: Float> Module<T> for Mlp {
    #[track_caller]
    fn forward(&self, store: &ParamStore<T>, x: &Tensor<T>) -> Tensor<T> {
        let last = self.layers.len() - 1;
        let mut h = x.clone();
        for (i, layer) in self.layers.iter().enumerate() {
            h = layer.forward(store, &h);
            if i < last {
                h = self.config.activation.apply(&h);
            }
        }
        h
    }

    fn update_state(&self, store: &mut ParamStore<T>) {
        for layer in &self.layers {
            layer.update_state(store);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn names_and_shapes_follow_the_widths() {
        let mut store = ParamStore::<f32>::new();
        let mut rng = StdRng::seed_from_u64(0);
        let mlp = Mlp::new(&mut store, "mlp", &[3, 5, 1], Activation::Tanh, &mut rng).unwrap();
        assert_eq!(
            store.names(),
            vec!["mlp.0.weight", "mlp.0.bias", "mlp.1.weight", "mlp.1.bias"]
        );
        assert_eq!(store.expect("mlp.1.weight").dims(), &[1, 5]);
        assert_eq!((mlp.in_features(), mlp.out_features()), (3, 1));
    }

    #[test]
    fn forward_equals_the_composition_by_hand() {
        let mut store = ParamStore::<f64>::new();
        let mut rng = StdRng::seed_from_u64(1);
        let mlp = Mlp::new(&mut store, "m", &[2, 4, 3], Activation::Silu, &mut rng).unwrap();
        let x = Tensor::<f64>::randn([5, 2], &mut rng);
        let (w0, b0) = (store.expect("m.0.weight"), store.expect("m.0.bias"));
        let (w1, b1) = (store.expect("m.1.weight"), store.expect("m.1.bias"));
        let want = ((x.matmul(&w0.t()) + b0).silu().matmul(&w1.t())) + b1;
        for (g, w) in mlp.forward(&store, &x).to_f64s().iter().zip(want.to_f64s()) {
            // The same sums, perhaps in another order inside the matrix kernel: rounding only.
            assert!((g - w).abs() < 1e-14, "{g} vs {w}");
        }
    }

    #[test]
    fn score_of_the_energy_is_differentiable_in_the_weights() {
        // Second order through the whole network: the gradient of |grad_x E|^2 reaches every
        // weight, and every bias but the last (which shifts E without changing its slope).
        use ebm_tensor::autodiff::{GradOptions, grad};
        let mut store = ParamStore::<f64>::new();
        let mut rng = StdRng::seed_from_u64(2);
        let mlp = Mlp::new(&mut store, "e", &[2, 8, 1], Activation::Softplus, &mut rng).unwrap();
        let x = Tensor::<f64>::randn([4, 2], &mut rng).set_requires_grad(true);
        let energy = mlp.forward(&store, &x).sum();
        let score = grad(&[energy], &[x], None, GradOptions::create_graph()).unwrap();
        let grads = store.backward(&score[0].square().sum()).unwrap();
        for (name, g) in grads.iter() {
            assert_eq!(g.is_some(), name != "e.1.bias", "{name}");
        }
    }

    #[test]
    fn invalid_widths_and_taken_names_leave_the_store_unchanged() {
        let mut store = ParamStore::<f32>::new();
        let mut rng = StdRng::seed_from_u64(3);
        let err = Mlp::new(&mut store, "m", &[2], Activation::Relu, &mut rng).unwrap_err();
        assert!(err.to_string().contains("at least two widths"), "{err}");
        store.insert("m.1.bias", Tensor::zeros([1])).unwrap();
        let err = Mlp::new(&mut store, "m", &[2, 3, 1], Activation::Relu, &mut rng).unwrap_err();
        assert!(matches!(err, NnError::DuplicateName { .. }));
        assert_eq!(store.names(), vec!["m.1.bias"]);
    }

    #[test]
    fn config_round_trips_through_json() {
        let config = MlpConfig {
            spectral_norm: Some(SpectralNormConfig::default()),
            ..MlpConfig::new(&[2, 64, 1], Activation::Elu { alpha: 1.0 })
        };
        let json = serde_json::to_string(&config).unwrap();
        assert_eq!(serde_json::from_str::<MlpConfig>(&json).unwrap(), config);
        let short: MlpConfig =
            serde_json::from_str(r#"{"widths": [2, 1], "activation": "silu"}"#).unwrap();
        assert_eq!(short, MlpConfig::new(&[2, 1], Activation::Silu));
    }

    #[test]
    fn spectral_norm_mlp_updates_every_u_in_train_mode_only() {
        let mut store = ParamStore::<f64>::new();
        let mut rng = StdRng::seed_from_u64(4);
        let config = MlpConfig {
            spectral_norm: Some(SpectralNormConfig::default()),
            ..MlpConfig::new(&[2, 4, 1], Activation::Silu)
        };
        let mlp = Mlp::from_config(&mut store, "m", &config, &mut rng).unwrap();
        assert_eq!(store.buffers().count(), 2);
        let x = Tensor::<f64>::randn([3, 2], &mut rng);
        store
            .set("m.0.weight", Tensor::<f64>::randn([4, 2], &mut rng))
            .unwrap();
        let before = store.expect("m.0.weight_u").to_f64s();
        mlp.forward(&store, &x);
        assert_eq!(store.expect("m.0.weight_u").to_f64s(), before);
        mlp.forward_train(&mut store, &x);
        assert_ne!(store.expect("m.0.weight_u").to_f64s(), before);
    }
}
