//! The multilayer-perceptron energy: E(x) = MLP(x), a scalar per sample.

use super::{Energy, EnergyModel, EnergySpec};
use crate::Error;
use ebm_nn::{Activation, Mlp, MlpConfig, Module, ParamStore, SpectralNormConfig};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// The prefix of every tensor name of the neural energies in their [`ParamStore`]
/// (`energy.0.weight`, ...).
pub(crate) const PREFIX: &str = "energy";

/// Settings of an [`MlpEnergy`]; its spec kind is `"mlp"`.
///
/// As JSON: `{"kind": "mlp", "widths": [2, 128, 128, 1], "activation": "silu"}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MlpEnergyConfig {
    /// Input size (the number of values per sample), hidden sizes, and a last width of 1
    /// (the energy): `[2, 128, 128, 1]`.
    pub widths: Vec<usize>,
    /// The nonlinearity between layers (default SiLU). Score matching differentiates the
    /// energy twice, so it needs a smooth one (SiLU, softplus, tanh, ELU); ReLU makes the
    /// score piecewise constant and is only fit for objectives that use E and grad_x E.
    #[serde(default = "silu")]
    pub activation: Activation,
    /// Spectral normalisation of every weight (Miyato et al., 2018), if any.
    #[serde(default)]
    pub spectral_norm: Option<SpectralNormConfig>,
}

pub(crate) fn silu() -> Activation {
    Activation::Silu
}

impl MlpEnergyConfig {
    /// An MLP energy of the given widths (ending in 1) with SiLU and no spectral norm.
    pub fn new(widths: &[usize]) -> Self {
        MlpEnergyConfig {
            widths: widths.to_vec(),
            activation: Activation::Silu,
            spectral_norm: None,
        }
    }

    /// The settings of the layers, after checking the widths.
    fn mlp_config(&self) -> Result<MlpConfig, Error> {
        check_widths("MlpEnergy widths", &self.widths)?;
        Ok(MlpConfig {
            spectral_norm: self.spectral_norm,
            ..MlpConfig::new(&self.widths, self.activation)
        })
    }
}

/// `Ok(())` for at least two widths, none zero, the last 1.
pub(crate) fn check_widths(what: &str, widths: &[usize]) -> Result<(), Error> {
    if widths.len() < 2 || widths.contains(&0) || widths.last() != Some(&1) {
        return Err(Error::config(
            what,
            format!("{widths:?}"),
            "the input size, the hidden sizes and a last width of 1 (the energy), none zero, such as [2, 128, 128, 1]",
        ));
    }
    Ok(())
}

/// A batch `[n, ...]` as rows `[n, d]`, for a network whose input has `d` values.
///
/// # Panics
/// When a sample does not hold `d` values (a programmer error).
#[track_caller]
pub(crate) fn flatten_samples<T: Float>(what: &str, x: &Tensor<T>, d: usize) -> Tensor<T> {
    assert!(
        x.rank() >= 1 && x.numel() == x.dim(0) * d,
        "{what}: expected a batch [n, ...] of {d} values per sample, got shape {}",
        x.shape()
    );
    x.reshape([x.dim(0), d])
}

/// A multilayer-perceptron energy, `E(x) = MLP(x)`: `Linear -> activation -> ... -> Linear`
/// with one output, no activation after the last layer.
///
/// Built on [`ebm_nn::Mlp`]; its tensors live in its own [`ParamStore`] under the prefix
/// `energy` (`energy.0.weight` of shape `[widths[1], widths[0]]`, `energy.0.bias`, ..., and
/// with spectral normalisation the buffers `energy.i.weight_u`). PyTorch's initialisation.
///
/// A sample of any shape is flattened: a batch `[n, ...]` whose samples hold `widths[0]`
/// values each.
///
/// Cost per evaluation: about `2 n sum_i widths[i] widths[i + 1]` flops (the matrix products),
/// three times that with the gradient in x.
///
/// # Shapes
/// `[n, ...] -> [n]`, with `widths[0]` values per sample.
///
/// # Example
/// ```
/// use ebm::energy::{Energy, EnergyModel, MlpEnergy, MlpEnergyConfig};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let energy = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&[2, 32, 32, 1]), &mut rng)?;
/// let x = Tensor::<f32>::randn([8, 2], &mut rng);
/// assert_eq!(energy.energy(&x).dims(), &[8]);
/// assert_eq!(energy.score(&x)?.dims(), &[8, 2]);
/// assert_eq!(energy.spec().kind, "mlp");
/// # Ok::<(), ebm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct MlpEnergy<T: Float> {
    mlp: Mlp,
    store: ParamStore<T>,
    config: MlpEnergyConfig,
}

impl<T: Float> MlpEnergy<T> {
    /// A network of the given settings, its weights drawn from `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for fewer than two widths, a zero width or a last width other
    /// than 1; [`Error::Nn`] for invalid spectral-norm settings.
    pub fn new<R: Rng + ?Sized>(config: MlpEnergyConfig, rng: &mut R) -> Result<Self, Error> {
        let mlp_config = config.mlp_config()?;
        let mut store = ParamStore::new();
        let mlp = Mlp::from_config(&mut store, PREFIX, &mlp_config, rng)?;
        Ok(MlpEnergy { mlp, store, config })
    }

    /// The settings.
    pub fn config(&self) -> &MlpEnergyConfig {
        &self.config
    }

    /// The network, whose tensors are in [`EnergyModel::params`].
    pub fn network(&self) -> &Mlp {
        &self.mlp
    }

    /// The number of values per sample.
    pub fn input_size(&self) -> usize {
        self.config.widths[0]
    }
}

impl<T: Float> Energy<T> for MlpEnergy<T> {
    #[track_caller]
    fn energy(&self, x: &Tensor<T>) -> Tensor<T> {
        let rows = flatten_samples("MlpEnergy", x, self.input_size());
        let out = self.mlp.forward(&self.store, &rows);
        out.reshape([x.dim(0)])
    }
}

impl<T: Float> EnergyModel<T> for MlpEnergy<T> {
    fn params(&self) -> &ParamStore<T> {
        &self.store
    }

    fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.store
    }

    fn spec(&self) -> EnergySpec {
        EnergySpec::new("mlp", &self.config)
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
    fn widths_must_end_in_one() {
        let mut rng = StdRng::seed_from_u64(0);
        for widths in [&[2, 8, 3][..], &[2], &[2, 0, 1]] {
            let err = MlpEnergy::<f32>::new(MlpEnergyConfig::new(widths), &mut rng).unwrap_err();
            assert!(err.to_string().contains("last width of 1"), "{err}");
        }
    }

    #[test]
    fn config_reads_with_defaults_and_refuses_unknown_fields() {
        let config: MlpEnergyConfig = serde_json::from_str(r#"{"widths": [2, 4, 1]}"#).unwrap();
        assert_eq!(config, MlpEnergyConfig::new(&[2, 4, 1]));
        let err = serde_json::from_str::<MlpEnergyConfig>(r#"{"widths": [2, 1], "depth": 3}"#);
        assert!(err.is_err());
    }
}
