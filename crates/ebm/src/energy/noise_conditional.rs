//! The noise-conditional MLP energy E(x, sigma) of multi-scale score matching, and the trait
//! of learnable noise-conditional energies.

use super::mlp::{PREFIX, check_widths, flatten_samples, silu};
use super::{EnergySpec, NoiseConditionalEnergy};
use crate::Error;
use ebm_nn::{Activation, Mlp, MlpConfig, Module, ParamStore, SpectralNormConfig};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// A learnable noise-conditional energy: a [`NoiseConditionalEnergy`] that owns its
/// parameters and describes itself, the counterpart of [`super::EnergyModel`].
///
/// A noise-conditional energy is not an [`super::Energy`] (it needs a noise level), so it is
/// not an `EnergyModel` either: rather than hide sigma in an extra input column or fix a
/// default one, it gets this trait of its own. [`super::AtNoiseLevel`] makes an `Energy` of it
/// at one sigma (for annealed Langevin sampling); [`EnergySpec::build_noise_conditional`]
/// rebuilds it from its spec, and [`super::save_noise_conditional_energy`] /
/// [`super::load_noise_conditional_energy`] write and read checkpoints.
pub trait NoiseConditionalModel<T: Float>: NoiseConditionalEnergy<T> {
    /// The parameters (and buffers, such as spectral-norm vectors).
    fn params(&self) -> &ParamStore<T>;

    /// The parameters, for an optimiser step or loading weights.
    fn params_mut(&mut self) -> &mut ParamStore<T>;

    /// The architecture and hyper-parameters: everything but the weights.
    fn spec(&self) -> EnergySpec;

    /// Advances the state that training updates once per step (the power iteration of
    /// spectral normalisation), without recording the graph. Does nothing by default.
    fn update_state(&mut self) {}
}

/// Settings of a [`NoiseConditionalMlp`]; its spec kind is `"ncsn-mlp"`.
///
/// As JSON: `{"kind": "ncsn-mlp", "widths": [2, 128, 128, 1], "activation": "silu"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseConditionalMlpConfig {
    /// The number of values per sample, hidden sizes, and a last width of 1 (the energy):
    /// `[2, 128, 128, 1]`. The first layer reads one input more than `widths[0]`: log sigma.
    pub widths: Vec<usize>,
    /// The nonlinearity between layers (default SiLU; score matching needs a smooth one).
    #[serde(default = "silu")]
    pub activation: Activation,
    /// Spectral normalisation of every weight, if any.
    #[serde(default)]
    pub spectral_norm: Option<SpectralNormConfig>,
}

impl NoiseConditionalMlpConfig {
    /// A network of the given widths (ending in 1) with SiLU and no spectral norm.
    pub fn new(widths: &[usize]) -> Self {
        NoiseConditionalMlpConfig {
            widths: widths.to_vec(),
            activation: Activation::Silu,
            spectral_norm: None,
        }
    }
}

/// A noise-conditional MLP energy, scaled by the noise level:
///
/// ```text
/// E(x, sigma) = f([x, ln sigma]) / sigma          f an MLP with one output
/// s(x, sigma) = -grad_x E(x, sigma) = -grad_x f([x, ln sigma]) / sigma
/// ```
///
/// Two choices, and why:
/// * **sigma enters as an input**, ln sigma appended to each (flattened) sample, rather than
///   one output head per noise level: the model is then defined at every sigma > 0, so
///   training may draw sigma from a continuous range and sampling may use any schedule. The
///   logarithm, because noise levels are spread geometrically (0.01 to 1 and beyond): ln sigma
///   spaces them evenly and keeps the input of order 1.
/// * **the output is divided by sigma**, so that the score is of order 1 / sigma when f is of
///   order 1. The score of data perturbed by N(0, sigma^2 I) at a typical noisy point is
///   (x - x~) / sigma^2, of norm about sqrt(d) / sigma: this scaling lets one network of
///   unit-scale outputs match it at every level. It is technique 3 of Song & Ermon,
///   "Improved Techniques for Training Score-Based Generative Models" (NeurIPS 2020), written
///   for an energy, whose score is its gradient.
///
/// Its tensors live in its own [`ParamStore`] under the prefix `energy`, as an
/// [`ebm_nn::Mlp`] of widths `[widths[0] + 1, widths[1], ..., 1]`: `energy.0.weight` is
/// `[widths[1], widths[0] + 1]`, its last column multiplying ln sigma.
///
/// Noise levels must be positive: sigma <= 0 gives non-finite energies.
///
/// Cost per evaluation: that of the MLP on `widths[0] + 1` inputs, plus a logarithm and a
/// division per sample.
///
/// # Shapes
/// `x`: `[n, ...]` with `widths[0]` values per sample, `sigma`: `[n]`; returns `[n]`.
///
/// # Example
/// ```
/// use ebm::energy::{AtNoiseLevel, Energy, NoiseConditionalMlp, NoiseConditionalMlpConfig};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let config = NoiseConditionalMlpConfig::new(&[2, 32, 1]);
/// let energy = NoiseConditionalMlp::<f64>::new(config, &mut rng)?;
/// let x = Tensor::<f64>::randn([4, 2], &mut rng);
/// let at_tenth = AtNoiseLevel::new(&energy, 0.1);
/// assert_eq!(at_tenth.score(&x)?.dims(), &[4, 2]);
/// # Ok::<(), ebm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct NoiseConditionalMlp<T: Float> {
    mlp: Mlp,
    store: ParamStore<T>,
    config: NoiseConditionalMlpConfig,
}

impl<T: Float> NoiseConditionalMlp<T> {
    /// A network of the given settings, its weights drawn from `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for fewer than two widths, a zero width or a last width other
    /// than 1; [`Error::Nn`] for invalid spectral-norm settings.
    pub fn new<R: Rng + ?Sized>(
        config: NoiseConditionalMlpConfig,
        rng: &mut R,
    ) -> Result<Self, Error> {
        check_widths("NoiseConditionalMlp widths", &config.widths)?;
        let mut widths = config.widths.clone();
        widths[0] += 1;
        let mlp_config = MlpConfig {
            spectral_norm: config.spectral_norm,
            ..MlpConfig::new(&widths, config.activation)
        };
        let mut store = ParamStore::new();
        let mlp = Mlp::from_config(&mut store, PREFIX, &mlp_config, rng)?;
        Ok(NoiseConditionalMlp { mlp, store, config })
    }

    /// The settings.
    pub fn config(&self) -> &NoiseConditionalMlpConfig {
        &self.config
    }

    /// The network f, whose input rows are `[x, ln sigma]`.
    pub fn network(&self) -> &Mlp {
        &self.mlp
    }

    /// The number of values per sample (without ln sigma).
    pub fn input_size(&self) -> usize {
        self.config.widths[0]
    }
}

impl<T: Float> NoiseConditionalEnergy<T> for NoiseConditionalMlp<T> {
    #[track_caller]
    fn energy_at(&self, x: &Tensor<T>, sigma: &Tensor<T>) -> Tensor<T> {
        let n = x.dim(0);
        assert_eq!(
            sigma.dims(),
            &[n],
            "NoiseConditionalMlp: expected one noise level per sample, [{n}], got shape {}",
            sigma.shape()
        );
        let rows = flatten_samples("NoiseConditionalMlp", x, self.input_size());
        let input = Tensor::concat(&[rows, sigma.log().reshape([n, 1])], 1);
        let f = self.mlp.forward(&self.store, &input).reshape([n]);
        &f / sigma
    }
}

impl<T: Float> NoiseConditionalModel<T> for NoiseConditionalMlp<T> {
    fn params(&self) -> &ParamStore<T> {
        &self.store
    }

    fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.store
    }

    fn spec(&self) -> EnergySpec {
        EnergySpec::new("ncsn-mlp", &self.config)
    }

    /// One step of the power iteration of every spectral norm (nothing without one).
    fn update_state(&mut self) {
        self.mlp.update_state(&mut self.store);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn first_layer_reads_log_sigma_too() {
        let mut rng = StdRng::seed_from_u64(0);
        let config = NoiseConditionalMlpConfig::new(&[3, 5, 1]);
        let energy = NoiseConditionalMlp::<f32>::new(config, &mut rng).unwrap();
        assert_eq!(energy.params().expect("energy.0.weight").dims(), &[5, 4]);
        let x = Tensor::<f32>::zeros([2, 3]);
        let e = energy.energy_at(&x, &Tensor::full([2], 0.5));
        assert_eq!(e.dims(), &[2]);
    }

    #[test]
    #[should_panic(expected = "one noise level per sample")]
    fn sigma_of_the_wrong_length_panics() {
        let mut rng = StdRng::seed_from_u64(1);
        let config = NoiseConditionalMlpConfig::new(&[2, 4, 1]);
        let energy = NoiseConditionalMlp::<f32>::new(config, &mut rng).unwrap();
        energy.energy_at(&Tensor::zeros([3, 2]), &Tensor::ones([1]));
    }
}
