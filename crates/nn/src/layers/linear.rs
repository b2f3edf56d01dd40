//! The fully connected layer y = x W^T + b.

use super::spectral::{SpectralNorm, SpectralNormConfig};
use crate::{Fans, Init, Module, NnError, ParamStore};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Settings of a [`Linear`] layer.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LinearConfig {
    /// Size of each input row.
    pub in_features: usize,
    /// Size of each output row.
    pub out_features: usize,
    /// Whether to add a learned bias.
    #[serde(default = "yes")]
    pub bias: bool,
    /// How to fill the weight (PyTorch's default: U(+-1/sqrt(in_features))).
    #[serde(default = "torch_default")]
    pub weight_init: Init,
    /// How to fill the bias (PyTorch's default: U(+-1/sqrt(in_features))).
    #[serde(default = "torch_default")]
    pub bias_init: Init,
    /// Spectral normalisation of the weight, if any.
    #[serde(default)]
    pub spectral_norm: Option<SpectralNormConfig>,
}

pub(crate) fn yes() -> bool {
    true
}

pub(crate) fn torch_default() -> Init {
    Init::TorchDefault
}

impl LinearConfig {
    /// A layer from `in_features` to `out_features` with a bias and PyTorch's initialisation.
    pub fn new(in_features: usize, out_features: usize) -> Self {
        LinearConfig {
            in_features,
            out_features,
            bias: true,
            weight_init: Init::TorchDefault,
            bias_init: Init::TorchDefault,
            spectral_norm: None,
        }
    }
}

/// A fully connected layer: `y = x W^T + b`, like `torch.nn.Linear`.
///
/// Its tensors in the store, for a layer called `name`:
/// * `name.weight`, shape `[out_features, in_features]` (PyTorch's layout, so weights move
///   between the two unchanged; the product uses the transpose in place, without a copy);
/// * `name.bias`, shape `[out_features]`, unless disabled;
/// * `name.weight_u`, shape `[out_features]`, a buffer, with spectral normalisation, which
///   then replaces W by W / sigma(W) (see [`SpectralNorm`]).
///
/// # Shapes
/// `[n, in_features] -> [n, out_features]` (also `[b, n, in_features]`).
///
/// # Example
/// ```
/// use ebm_nn::{Linear, Module, ParamStore};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut store = ParamStore::<f32>::new();
/// let layer = Linear::new(&mut store, "fc", 3, 2, &mut rng).unwrap();
/// let y = layer.forward(&store, &Tensor::ones([5, 3]));
/// assert_eq!(y.dims(), &[5, 2]);
/// assert_eq!(store.names(), vec!["fc.weight", "fc.bias"]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    weight: String,
    bias: Option<String>,
    in_features: usize,
    out_features: usize,
    spectral_norm: Option<SpectralNorm>,
}

impl Linear {
    /// A layer with a bias and PyTorch's default initialisation, its tensors added to `store`
    /// under `name.`.
    ///
    /// # Errors
    /// As [`Linear::from_config`].
    pub fn new<T: Float, R: Rng + ?Sized>(
        store: &mut ParamStore<T>,
        name: &str,
        in_features: usize,
        out_features: usize,
        rng: &mut R,
    ) -> Result<Self, NnError> {
        Self::from_config(
            store,
            name,
            &LinearConfig::new(in_features, out_features),
            rng,
        )
    }

    /// A layer with the given settings, its tensors added to `store` under `name.`
    /// (all of them or, on error, none).
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for a zero size or invalid initialiser or spectral-norm
    /// settings; [`NnError::DuplicateName`] or [`NnError::InvalidName`] for the names.
    pub fn from_config<T: Float, R: Rng + ?Sized>(
        store: &mut ParamStore<T>,
        name: &str,
        config: &LinearConfig,
        rng: &mut R,
    ) -> Result<Self, NnError> {
        let (n_in, n_out) = (config.in_features, config.out_features);
        if n_in == 0 || n_out == 0 {
            return Err(NnError::config(
                &format!("Linear `{name}` size"),
                format!("{n_in} -> {n_out}"),
                "in_features and out_features >= 1",
            ));
        }
        if let Some(sn) = &config.spectral_norm {
            sn.validate()?;
        }
        let weight = format!("{name}.weight");
        let bias = config.bias.then(|| format!("{name}.bias"));
        let u = format!("{name}.weight_u");
        let mut names = vec![weight.as_str()];
        names.extend(bias.as_deref());
        if config.spectral_norm.is_some() {
            names.push(&u);
        }
        store.check_free(&names)?;

        // Draw everything before inserting anything, so that an error leaves the store as is.
        let dims = [n_out, n_in];
        let fans = Fans::of_weight(&dims).expect("rank 2");
        let w = config.weight_init.sample::<T, R>(&dims, fans, rng)?;
        let b = match &bias {
            Some(_) => Some(config.bias_init.sample::<T, R>(&[n_out], fans, rng)?),
            None => None,
        };
        store.insert(weight.clone(), w)?;
        if let (Some(name), Some(b)) = (&bias, b) {
            store.insert(name.clone(), b)?;
        }
        let spectral_norm = match config.spectral_norm {
            Some(sn) => Some(SpectralNorm::new(store, &weight, &u, sn, rng)?),
            None => None,
        };
        Ok(Linear {
            weight,
            bias,
            in_features: n_in,
            out_features: n_out,
            spectral_norm,
        })
    }

    /// Size of each input row.
    pub fn in_features(&self) -> usize {
        self.in_features
    }

    /// Size of each output row.
    pub fn out_features(&self) -> usize {
        self.out_features
    }

    /// The name of the weight in the store.
    pub fn weight_name(&self) -> &str {
        &self.weight
    }

    /// The name of the bias in the store, if there is one.
    pub fn bias_name(&self) -> Option<&str> {
        self.bias.as_deref()
    }

    /// The spectral normalisation of the weight, if any.
    pub fn spectral_norm(&self) -> Option<&SpectralNorm> {
        self.spectral_norm.as_ref()
    }

    /// The weight the forward pass uses, `[out, in]`: the stored one, or W / sigma(W) with
    /// spectral normalisation (differentiable in W).
    pub fn weight<T: Float>(&self, store: &ParamStore<T>) -> Tensor<T> {
        match &self.spectral_norm {
            Some(sn) => sn.weight(store),
            None => store.expect(&self.weight).clone(),
        }
    }
}

impl<T: Float> Module<T> for Linear {
    #[track_caller]
    fn forward(&self, store: &ParamStore<T>, x: &Tensor<T>) -> Tensor<T> {
        assert!(
            x.rank() >= 1 && x.dim(-1) == self.in_features,
            "Linear `{}`: expected input [n, {}], got {}",
            self.weight,
            self.in_features,
            x.shape()
        );
        let bias = self.bias.as_ref().map(|b| store.expect(b));
        x.linear(&self.weight(store), bias)
    }

    fn update_state(&self, store: &mut ParamStore<T>) {
        if let Some(sn) = &self.spectral_norm {
            sn.update(store);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn forward_computes_x_w_transposed_plus_b() {
        let mut store = ParamStore::<f64>::new();
        let mut rng = StdRng::seed_from_u64(0);
        let layer = Linear::new(&mut store, "l", 2, 3, &mut rng).unwrap();
        store
            .set(
                "l.weight",
                Tensor::from_f64s(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [3, 2]),
            )
            .unwrap();
        store
            .set("l.bias", Tensor::from_f64s(&[0.5, -0.5, 1.0], [3]))
            .unwrap();
        let x = Tensor::from_f64s(&[1.0, -1.0, 2.0, 0.0], [2, 2]);
        let y = layer.forward(&store, &x);
        assert_eq!(y.to_f64s(), vec![-0.5, -1.5, 0.0, 2.5, 5.5, 11.0]);
    }

    #[test]
    fn default_init_is_bounded_by_one_over_sqrt_fan_in() {
        let mut store = ParamStore::<f32>::new();
        let mut rng = StdRng::seed_from_u64(1);
        Linear::new(&mut store, "l", 16, 64, &mut rng).unwrap();
        for (name, t) in store.iter() {
            assert!(t.to_f64s().iter().all(|v| v.abs() <= 0.25), "{name}");
        }
        assert_eq!(store.expect("l.weight").dims(), &[64, 16]);
    }

    #[test]
    fn no_bias_and_spectral_norm_options() {
        let mut store = ParamStore::<f64>::new();
        let mut rng = StdRng::seed_from_u64(2);
        let config = LinearConfig {
            bias: false,
            spectral_norm: Some(SpectralNormConfig::default()),
            ..LinearConfig::new(4, 3)
        };
        let layer = Linear::from_config(&mut store, "sn", &config, &mut rng).unwrap();
        assert_eq!(store.names(), vec!["sn.weight"]);
        assert!(store.contains("sn.weight_u"));
        let x = Tensor::ones([2, 4]);
        let y = layer.forward_train(&mut store, &x);
        assert_eq!(y.dims(), &[2, 3]);
        assert!(layer.bias_name().is_none());
    }

    #[test]
    fn errors_leave_the_store_unchanged() {
        let mut store = ParamStore::<f32>::new();
        let mut rng = StdRng::seed_from_u64(3);
        store.insert("l.bias", Tensor::zeros([1])).unwrap();
        let err = Linear::new(&mut store, "l", 2, 1, &mut rng).unwrap_err();
        assert!(matches!(err, NnError::DuplicateName { .. }));
        assert_eq!(store.names(), vec!["l.bias"]);
        let err = Linear::new(&mut store, "m", 0, 1, &mut rng).unwrap_err();
        assert!(matches!(err, NnError::InvalidConfig { .. }));
    }

    #[test]
    #[should_panic(expected = "expected input [n, 2]")]
    fn wrong_input_width_panics_with_shapes() {
        let mut store = ParamStore::<f32>::new();
        let mut rng = StdRng::seed_from_u64(4);
        let layer = Linear::new(&mut store, "l", 2, 1, &mut rng).unwrap();
        layer.forward(&store, &Tensor::ones([3, 5]));
    }
}
