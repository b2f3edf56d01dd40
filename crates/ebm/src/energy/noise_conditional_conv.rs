//! The convolutional noise-conditional energy E(x, sigma) for images: the trunk of
//! [`super::ConvEnergy`], each stage shifted per channel by a learned multiple of ln sigma.

use super::mlp::{PREFIX, silu};
use super::{ConvEnergyConfig, EnergySpec, NoiseConditionalEnergy, NoiseConditionalModel};
use crate::Error;
use ebm_nn::{
    Activation, Conv2d, Conv2dConfig, Linear, LinearConfig, Module, ParamStore, SpectralNormConfig,
};
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Settings of a [`NoiseConditionalConv`]; its spec kind is `"ncsn-conv"`.
///
/// The fields of [`ConvEnergyConfig`], with the same meaning and defaults.
///
/// As JSON: `{"kind": "ncsn-conv", "in_channels": 1, "height": 28, "width": 28,
/// "channels": [32, 64, 64]}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseConditionalConvConfig {
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
    /// Spectral normalisation of the convolutions' kernel matrices and the head, if any (not
    /// of the noise conditioning, which does not act on x).
    #[serde(default)]
    pub spectral_norm: Option<SpectralNormConfig>,
}

impl NoiseConditionalConvConfig {
    /// Stages of the given channels on images `[in_channels, height, width]`, with SiLU and no
    /// spectral norm.
    pub fn new(in_channels: usize, height: usize, width: usize, channels: &[usize]) -> Self {
        NoiseConditionalConvConfig {
            in_channels,
            height,
            width,
            channels: channels.to_vec(),
            activation: Activation::Silu,
            spectral_norm: None,
        }
    }

    /// The settings of the trunk as a [`ConvEnergyConfig`]: the same convolutions and head.
    pub fn trunk(&self) -> ConvEnergyConfig {
        ConvEnergyConfig {
            in_channels: self.in_channels,
            height: self.height,
            width: self.width,
            channels: self.channels.clone(),
            activation: self.activation,
            spectral_norm: self.spectral_norm,
        }
    }

    /// The number of features the linear head reads: last channels x output height x width
    /// (see [`ConvEnergyConfig::output_size`]).
    pub fn head_features(&self) -> usize {
        self.trunk().head_features()
    }

    fn validate(&self) -> Result<(), Error> {
        self.trunk().validate_for("NoiseConditionalConv")
    }
}

/// A convolutional noise-conditional energy for images, scaled by the noise level:
///
/// ```text
/// h_0 = act(conv3x3(x,       stride 1, pad 1) + a_0 ln sigma)   channels[0]
/// h_i = act(conv3x3(h_{i-1}, stride 2, pad 1) + a_i ln sigma)   channels[i], sides halved
/// f(x, ln sigma) = linear(flatten(h_last))                       one output
/// E(x, sigma) = f(x, ln sigma) / sigma
/// s(x, sigma) = -grad_x f(x, ln sigma) / sigma
/// ```
///
/// The trunk is that of [`super::ConvEnergy`]; `a_i` is a learned vector of `channels[i]`
/// values, so each stage's channels are shifted by their own multiple of ln sigma (the shift
/// half of FiLM, Perez et al. 2018; NCSN conditions its normalisation layers the same way).
///
/// Choices, and why:
/// * **ln sigma shifts every stage**, rather than entering once as an extra constant input
///   channel: an input channel would reach only the first convolution (later stages would
///   see sigma only through what it left in the features), and zero padding would make it
///   vary near the borders, mixing the noise level with position. A shift per stage and
///   channel is a [`Linear`] from ln sigma without bias (the convolution has the bias):
///   `channels[i]` weights per stage, one broadcast addition per evaluation. It is defined at
///   every sigma > 0, so training may draw sigma from a continuous range and sampling may use
///   any schedule; ln sigma, because noise levels are spread geometrically.
/// * **the output is divided by sigma**, as in [`super::NoiseConditionalMlp`]: the score is
///   then of order 1 / sigma when f is of order 1, matching the score of data perturbed by
///   N(0, sigma^2 I) at every level (technique 3 of Song & Ermon, "Improved Techniques for
///   Training Score-Based Generative Models", NeurIPS 2020). With every `a_i` zero, f does
///   not see sigma and sigma E(x, sigma) is the same at every level.
///
/// Its tensors live in its own [`ParamStore`] under the prefix `energy`: the convolutions
/// `energy.conv.i.weight` (`[channels[i], channels[i - 1], 3, 3]`) and `energy.conv.i.bias`,
/// the conditioning `energy.cond.i.weight` (`[channels[i], 1]`), the head
/// `energy.head.weight` (`[1, head_features]`) and `energy.head.bias`, and with spectral
/// normalisation the buffers `*.weight_u` of the convolutions and the head. PyTorch's
/// initialisation (so each `a_i` starts uniform on [-1, 1), as `nn.Linear(1, c)`).
///
/// Noise levels must be positive: sigma <= 0 gives non-finite energies.
///
/// Cost per evaluation: that of [`super::ConvEnergy`] (about
/// `2 n sum_i 9 channels[i - 1] channels[i] h_i w_i` flops), plus one addition per feature,
/// a logarithm and a division per sample; three times that with the gradient in x.
///
/// # Shapes
/// `x`: `[n, in_channels, height, width]` or flat `[n, in_channels height width]`, `sigma`:
/// `[n]`; returns `[n]`.
///
/// # Example
/// ```
/// use ebm::energy::{AtNoiseLevel, Energy, NoiseConditionalConv, NoiseConditionalConvConfig};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let config = NoiseConditionalConvConfig::new(1, 8, 8, &[4, 8]);
/// let energy = NoiseConditionalConv::<f32>::new(config, &mut rng)?;
/// let images = Tensor::<f32>::rand_uniform([2, 1, 8, 8], 0.0, 1.0, &mut rng);
/// let at_tenth = AtNoiseLevel::new(&energy, 0.1);
/// assert_eq!(at_tenth.score(&images)?.dims(), &[2, 1, 8, 8]);
/// # Ok::<(), ebm::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct NoiseConditionalConv<T: Float> {
    convs: Vec<Conv2d>,
    conds: Vec<Linear>,
    head: Linear,
    store: ParamStore<T>,
    config: NoiseConditionalConvConfig,
}

impl<T: Float> NoiseConditionalConv<T> {
    /// A network of the given settings, its weights drawn from `rng`.
    ///
    /// # Errors
    /// [`Error::InvalidConfig`] for an empty input extent or no (or an empty) stage;
    /// [`Error::Nn`] for invalid spectral-norm settings.
    pub fn new<R: Rng + ?Sized>(
        config: NoiseConditionalConvConfig,
        rng: &mut R,
    ) -> Result<Self, Error> {
        config.validate()?;
        let mut store = ParamStore::new();

        // The stages: 3x3 kernels padded by 1, stride 1 then 2, each with its shift by ln sigma.
        let mut convs = Vec::with_capacity(config.channels.len());
        let mut conds = Vec::with_capacity(config.channels.len());
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
            let cond = LinearConfig {
                bias: false,
                ..LinearConfig::new(1, out_channels)
            };
            let name = format!("{PREFIX}.cond.{i}");
            conds.push(Linear::from_config(&mut store, &name, &cond, rng)?);
            in_channels = out_channels;
        }

        // The head: every feature of the last stage to one output.
        let head = LinearConfig {
            spectral_norm: config.spectral_norm,
            ..LinearConfig::new(config.head_features(), 1)
        };
        let head = Linear::from_config(&mut store, &format!("{PREFIX}.head"), &head, rng)?;
        Ok(NoiseConditionalConv {
            convs,
            conds,
            head,
            store,
            config,
        })
    }

    /// The settings.
    pub fn config(&self) -> &NoiseConditionalConvConfig {
        &self.config
    }

    /// The convolutions, first to last.
    pub fn convs(&self) -> &[Conv2d] {
        &self.convs
    }

    /// The conditioning layers, one per stage: ln sigma `[n, 1]` to shifts `[n, channels[i]]`.
    pub fn conditioning(&self) -> &[Linear] {
        &self.conds
    }

    /// The linear head.
    pub fn head(&self) -> &Linear {
        &self.head
    }

    /// The batch as images `[n, c, h, w]`.
    #[track_caller]
    fn images(&self, x: &Tensor<T>) -> Tensor<T> {
        let NoiseConditionalConvConfig {
            in_channels: c,
            height: h,
            width: w,
            ..
        } = self.config;
        let ok = (x.rank() == 4 && x.dims()[1..] == [c, h, w])
            || (x.rank() == 2 && x.dim(1) == c * h * w);
        assert!(
            ok,
            "NoiseConditionalConv: expected images [n, {c}, {h}, {w}] or rows [n, {}], got shape {}",
            c * h * w,
            x.shape()
        );
        x.reshape([x.dim(0), c, h, w])
    }
}

impl<T: Float> NoiseConditionalEnergy<T> for NoiseConditionalConv<T> {
    #[track_caller]
    fn energy_at(&self, x: &Tensor<T>, sigma: &Tensor<T>) -> Tensor<T> {
        let n = x.dim(0);
        assert_eq!(
            sigma.dims(),
            &[n],
            "NoiseConditionalConv: expected one noise level per sample, [{n}], got shape {}",
            sigma.shape()
        );
        let log_sigma = sigma.log().reshape([n, 1]);
        let mut h = self.images(x);
        for (conv, cond) in self.convs.iter().zip(&self.conds) {
            let pre = conv.forward(&self.store, &h);
            let shift = cond
                .forward(&self.store, &log_sigma)
                .reshape([n, pre.dim(1), 1, 1]);
            h = self.config.activation.apply(&(&pre + &shift));
        }
        let f = self
            .head
            .forward(&self.store, &h.flatten_batch())
            .reshape([n]);
        &f / sigma
    }
}

impl<T: Float> NoiseConditionalModel<T> for NoiseConditionalConv<T> {
    fn params(&self) -> &ParamStore<T> {
        &self.store
    }

    fn params_mut(&mut self) -> &mut ParamStore<T> {
        &mut self.store
    }

    fn spec(&self) -> EnergySpec {
        EnergySpec::new("ncsn-conv", &self.config)
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
    fn every_stage_has_a_shift_by_log_sigma() {
        let mut rng = StdRng::seed_from_u64(0);
        let config = NoiseConditionalConvConfig::new(1, 8, 8, &[4, 8, 8]);
        let energy = NoiseConditionalConv::<f32>::new(config, &mut rng).unwrap();
        let store = energy.params();
        assert_eq!(store.expect("energy.conv.0.weight").dims(), &[4, 1, 3, 3]);
        assert_eq!(store.expect("energy.cond.0.weight").dims(), &[4, 1]);
        assert_eq!(store.expect("energy.cond.2.weight").dims(), &[8, 1]);
        assert!(store.get("energy.cond.0.bias").is_none());
        assert_eq!(store.expect("energy.head.weight").dims(), &[1, 8 * 2 * 2]);
    }

    #[test]
    #[should_panic(expected = "one noise level per sample")]
    fn sigma_of_the_wrong_length_panics() {
        let mut rng = StdRng::seed_from_u64(1);
        let config = NoiseConditionalConvConfig::new(1, 4, 4, &[2]);
        let energy = NoiseConditionalConv::<f32>::new(config, &mut rng).unwrap();
        energy.energy_at(&Tensor::zeros([3, 1, 4, 4]), &Tensor::ones([1]));
    }

    #[test]
    fn empty_stages_and_extents_are_errors() {
        let mut rng = StdRng::seed_from_u64(2);
        for config in [
            NoiseConditionalConvConfig::new(1, 8, 8, &[]),
            NoiseConditionalConvConfig::new(1, 8, 8, &[4, 0]),
            NoiseConditionalConvConfig::new(1, 0, 8, &[4]),
        ] {
            let err = NoiseConditionalConv::<f32>::new(config, &mut rng).unwrap_err();
            assert!(matches!(err, Error::InvalidConfig { .. }), "{err}");
        }
    }
}
