//! The convolutional energy for images: strided 3x3 convolutions, then a linear head.

use super::mlp::{PREFIX, silu};
use super::{Energy, EnergyModel, EnergySpec};
use crate::Error;
use ebm_nn::{
    Activation, Conv2d, Conv2dConfig, Linear, LinearConfig, Module, ParamStore, SpectralNormConfig,
};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Settings of a [`ConvEnergy`]; its spec kind is `"conv"`.
///
/// As JSON: `{"kind": "conv", "in_channels": 1, "height": 28, "width": 28,
/// "channels": [32, 64, 64]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvEnergyConfig {
    /// Channels of the input images.
    pub in_channels: usize,
    /// Height of the input images, in pixels.
    pub height: usize,
    /// Width of the input images, in pixels.
    pub width: usize,
    /// Output channels of each stage, one 3x3 convolution per stage: the first at full
    /// resolution (stride 1), each later one halving it (stride 2).
    pub channels: Vec<usize>,
    /// The nonlinearity after every convolution (default SiLU; score matching needs a smooth
    /// one).
    #[serde(default = "silu")]
    pub activation: Activation,
    /// Spectral normalisation of every weight (the convolutions' kernel matrices and the
    /// head), if any.
    #[serde(default)]
    pub spectral_norm: Option<SpectralNormConfig>,
}

impl ConvEnergyConfig {
    /// Stages of the given channels on images `[in_channels, height, width]`, with SiLU and no
    /// spectral norm.
    pub fn new(in_channels: usize, height: usize, width: usize, channels: &[usize]) -> Self {
        ConvEnergyConfig {
            in_channels,
            height,
            width,
            channels: channels.to_vec(),
            activation: Activation::Silu,
            spectral_norm: None,
        }
    }

    /// The net of the `dsm-conv` benchmark, on 1x28x28 images: conv3x3(1->32, pad 1) SiLU,
    /// conv3x3(32->64, stride 2, pad 1) SiLU, conv3x3(64->64, stride 2, pad 1) SiLU, flatten,
    /// linear(3136->1).
    pub fn bench() -> Self {
        Self::new(1, 28, 28, &[32, 64, 64])
    }

    /// The height and width after the last stage: each stride-2 stage maps a side s to
    /// (s - 1) / 2 + 1 (rounded down), that is s / 2 rounded up.
    pub fn output_size(&self) -> (usize, usize) {
        let halve = |s: usize| (s.saturating_sub(1)) / 2 + 1;
        let stages = self.channels.len().saturating_sub(1);
        (0..stages).fold((self.height, self.width), |(h, w), _| (halve(h), halve(w)))
    }

    /// The number of features the linear head reads: last channels x output height x width.
    pub fn head_features(&self) -> usize {
        let (h, w) = self.output_size();
        self.channels.last().copied().unwrap_or(0) * h * w
    }

    fn validate(&self) -> Result<(), Error> {
        self.validate_for("ConvEnergy")
    }

    /// Checks the input shape and the channels, naming `owner` (the energy these settings
    /// build) in the error.
    pub(super) fn validate_for(&self, owner: &str) -> Result<(), Error> {
        let (c, h, w) = (self.in_channels, self.height, self.width);
        if c == 0 || h == 0 || w == 0 {
            return Err(Error::config(
                format!("{owner} input shape [in_channels, height, width]"),
                format!("[{c}, {h}, {w}]"),
                "every extent >= 1, such as [1, 28, 28]",
            ));
        }
        if self.channels.is_empty() || self.channels.contains(&0) {
            return Err(Error::config(
                format!("{owner} channels"),
                format!("{:?}", self.channels),
                "at least one stage, none with zero channels, such as [32, 64, 64]",
            ));
        }
        Ok(())
    }
}

/// A convolutional energy for images, after the small nets of IGEBM (Du & Mordatch, 2019)
/// and JEM (Grathwohl et al., 2020), without their residual blocks:
///
/// ```text
/// h_0 = act(conv3x3(x,       stride 1, pad 1))       channels[0]
/// h_i = act(conv3x3(h_{i-1}, stride 2, pad 1))       channels[i], sides halved (rounded up)
/// E(x) = linear(flatten(h_last))                      one output
/// ```
///
/// Its tensors live in its own [`ParamStore`] under the prefix `energy`: the convolutions
/// `energy.conv.i.weight` (`[channels[i], channels[i - 1], 3, 3]`) and `energy.conv.i.bias`,
/// the head `energy.head.weight` (`[1, head_features]`) and `energy.head.bias`, and with
/// spectral normalisation the buffers `*.weight_u`. PyTorch's initialisation.
///
/// Cost per evaluation: about `2 n sum_i 9 channels[i - 1] channels[i] h_i w_i` flops (the
/// convolutions dominate), three times that with the gradient in x.
///
/// # Shapes
/// `[n, in_channels, height, width] -> [n]`; a flat batch `[n, in_channels height width]`
/// is read as images too.
///
/// # Example
/// ```
/// use ebm::energy::{ConvEnergy, ConvEnergyConfig, Energy};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let config = ConvEnergyConfig::new(1, 8, 8, &[4, 8]);
/// let energy = ConvEnergy::<f32>::new(config, &mut rng)?;
/// let images = Tensor::<f32>::rand_uniform([2, 1, 8, 8], 0.0, 1.0, &mut rng);
/// assert_eq!(energy.energy(&images).dims(), &[2]);
/// # Ok::<(), ebm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct ConvEnergy<T: Float> {
    convs: Vec<Conv2d>,
    head: Linear,
    store: ParamStore<T>,
    config: ConvEnergyConfig,
}

impl<T: Float> ConvEnergy<T> {
    /// A network of the given settings, its weights drawn from `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty input extent or no (or an empty) stage;
    /// [`Error::Nn`] for invalid spectral-norm settings.
    pub fn new<R: Rng + ?Sized>(config: ConvEnergyConfig, rng: &mut R) -> Result<Self, Error> {
        config.validate()?;
        let mut store = ParamStore::new();

        // The stages: 3x3 kernels padded by 1, stride 1 then 2.
        let mut convs = Vec::with_capacity(config.channels.len());
        let mut in_channels = config.in_channels;
        for (i, &out_channels) in config.channels.iter().enumerate() {
            let layer = Conv2dConfig {
                stride: if i == 0 { 1 } else { 2 },
                padding: 1,
                spectral_norm: config.spectral_norm,
                ..Conv2dConfig::new(in_channels, out_channels, 3)
            };
            let name = format!("{PREFIX}.conv.{i}");
            convs.push(Conv2d::from_config(&mut store, &name, &layer, rng)?);
            in_channels = out_channels;
        }

        // The head: every feature of the last stage to one energy.
        let head = LinearConfig {
            spectral_norm: config.spectral_norm,
            ..LinearConfig::new(config.head_features(), 1)
        };
        let head = Linear::from_config(&mut store, &format!("{PREFIX}.head"), &head, rng)?;
        Ok(ConvEnergy {
            convs,
            head,
            store,
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &ConvEnergyConfig {
        &self.config
    }

    /// The convolutions, first to last.
    pub fn convs(&self) -> &[Conv2d] {
        &self.convs
    }

    /// The linear head.
    pub fn head(&self) -> &Linear {
        &self.head
    }

    /// The batch as images `[n, c, h, w]`.
    #[track_caller]
    fn images(&self, x: &Tensor<T>) -> Tensor<T> {
        let ConvEnergyConfig {
            in_channels: c,
            height: h,
            width: w,
            ..
        } = self.config;
        let ok = (x.rank() == 4 && x.dims()[1..] == [c, h, w])
            || (x.rank() == 2 && x.dim(1) == c * h * w);
        assert!(
            ok,
            "ConvEnergy: expected images [n, {c}, {h}, {w}] or rows [n, {}], got shape {}",
            c * h * w,
            x.shape()
        );
        x.reshape([x.dim(0), c, h, w])
    }
}

impl<T: Float> Energy<T> for ConvEnergy<T> {
    #[track_caller]
    fn energy(&self, x: &Tensor<T>) -> Tensor<T> {
        let mut h = self.images(x);
        for conv in &self.convs {
            h = self.config.activation.apply(&conv.forward(&self.store, &h));
        }
        let out = self.head.forward(&self.store, &h.flatten_batch());
        out.reshape([x.dim(0)])
    }
}

impl<T: Float> EnergyModel<T> for ConvEnergy<T> {
    fn params(&self) -> &ParamStore<T> {
        &self.store
    }

    fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.store
    }

    fn spec(&self) -> EnergySpec {
        EnergySpec::new("conv", &self.config)
    }

    /// One step of the power iteration of every spectral norm (nothing without one).
    fn update_state(&mut self) {
        for conv in &self.convs {
            conv.update_state(&mut self.store);
        }
        self.head.update_state(&mut self.store);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn bench_net_has_the_benchmark_layers() {
        let config = ConvEnergyConfig::bench();
        assert_eq!(config.output_size(), (7, 7));
        assert_eq!(config.head_features(), 3136);
        let mut rng = StdRng::seed_from_u64(0);
        let energy = ConvEnergy::<f32>::new(config, &mut rng).unwrap();
        let store = energy.params();
        assert_eq!(store.expect("energy.conv.0.weight").dims(), &[32, 1, 3, 3]);
        assert_eq!(store.expect("energy.conv.2.weight").dims(), &[64, 64, 3, 3]);
        assert_eq!(store.expect("energy.head.weight").dims(), &[1, 3136]);
        let strides: Vec<usize> = energy.convs().iter().map(|c| c.config().stride).collect();
        assert_eq!(strides, [1, 2, 2]);
    }

    #[test]
    fn odd_sides_round_up() {
        assert_eq!(
            ConvEnergyConfig::new(1, 5, 6, &[2, 2, 2]).output_size(),
            (2, 2)
        );
        assert_eq!(ConvEnergyConfig::new(1, 5, 6, &[2]).output_size(), (5, 6));
    }

    #[test]
    fn empty_stages_and_extents_are_errors() {
        let mut rng = StdRng::seed_from_u64(1);
        for config in [
            ConvEnergyConfig::new(1, 8, 8, &[]),
            ConvEnergyConfig::new(1, 8, 8, &[4, 0]),
            ConvEnergyConfig::new(0, 8, 8, &[4]),
        ] {
            let err = ConvEnergy::<f32>::new(config, &mut rng).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
        }
    }
}
