//! The 2-D convolution layer.

use super::linear::{torch_default, yes};
use super::spectral::{SpectralNorm, SpectralNormConfig};
use crate::{Fans, Init, Module, NnError, ParamStore};
use ebm_tensor::{Conv2dOptions, Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Settings of a [`Conv2d`] layer (square kernels, the same stride and padding on both axes).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv2dConfig {
    /// Channels of the input.
    pub in_channels: usize,
    /// Channels of the output.
    pub out_channels: usize,
    /// Height and width of the kernel.
    pub kernel_size: usize,
    /// Step between kernel positions (>= 1).
    #[serde(default = "one")]
    pub stride: usize,
    /// Zeros added on each side of both spatial axes.
    #[serde(default)]
    pub padding: usize,
    /// Whether to add a learned bias per output channel.
    #[serde(default = "yes")]
    pub bias: bool,
    /// How to fill the weight (PyTorch's default: U(+-1/sqrt(in_channels kernel_size^2))).
    #[serde(default = "torch_default")]
    pub weight_init: Init,
    /// How to fill the bias (PyTorch's default, as the weight).
    #[serde(default = "torch_default")]
    pub bias_init: Init,
    /// Spectral normalisation of the weight, if any.
    #[serde(default)]
    pub spectral_norm: Option<SpectralNormConfig>,
}

fn one() -> usize {
    1
}

impl Conv2dConfig {
    /// A convolution with stride 1, no padding, a bias and PyTorch's initialisation.
    pub fn new(in_channels: usize, out_channels: usize, kernel_size: usize) -> Self {
        Conv2dConfig {
            in_channels,
            out_channels,
            kernel_size,
            stride: 1,
            padding: 0,
            bias: true,
            weight_init: Init::TorchDefault,
            bias_init: Init::TorchDefault,
            spectral_norm: None,
        }
    }
}

/// A 2-D convolution (cross-correlation), like `torch.nn.Conv2d` with dilation 1 and one
/// group: `y[b, o] = bias[o] + sum_c weight[o, c] * x[b, c]` (see
/// [`Tensor::conv2d`] for the formula).
///
/// Its tensors in the store, for a layer called `name`: `name.weight` of shape
/// `[out_channels, in_channels, k, k]`, `name.bias` of shape `[out_channels]` unless
/// disabled, and with spectral normalisation the buffer `name.weight_u` of shape
/// `[out_channels]` (the weight is then divided by the top singular value of its
/// `[out, in k k]` matrix, see [`SpectralNorm`]).
///
/// # Shapes
/// `[n, in_channels, h, w] -> [n, out_channels, oh, ow]` with
/// `oh = (h + 2 padding - k) / stride + 1` (rounded down), likewise `ow`.
///
/// # Example
/// ```
/// use ebm_nn::{Conv2d, Conv2dConfig, Module, ParamStore};
/// use ebm_tensor::Tensor;
/// use rand::SeedableRng;
///
/// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
/// let mut store = ParamStore::<f32>::new();
/// let config = Conv2dConfig { padding: 1, ..Conv2dConfig::new(3, 8, 3) };
/// let conv = Conv2d::from_config(&mut store, "conv", &config, &mut rng).unwrap();
/// let y = conv.forward(&store, &Tensor::ones([2, 3, 8, 8]));
/// assert_eq!(y.dims(), &[2, 8, 8, 8]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    weight: String,
    bias: Option<String>,
    config: Conv2dConfig,
    spectral_norm: Option<SpectralNorm>,
}

impl Conv2d {
    /// A convolution with stride 1, no padding, a bias and PyTorch's initialisation.
    ///
    /// # Errors
    /// As [`Conv2d::from_config`].
    pub fn new<T: Float, R: Rng + ?Sized>(
        store: &mut ParamStore<T>,
        name: &str,
        in_channels: usize,
        out_channels: usize,
        kernel_size: usize,
        rng: &mut R,
    ) -> Result<Self, NnError> {
        let config = Conv2dConfig::new(in_channels, out_channels, kernel_size);
        Self::from_config(store, name, &config, rng)
    }

    /// A convolution with the given settings, its tensors added to `store` under `name.`
    /// (all of them or, on error, none).
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for a zero channel count, kernel size or stride, or invalid
    /// initialiser or spectral-norm settings; [`NnError::DuplicateName`] or
    /// [`NnError::InvalidName`] for the names.
    pub fn from_config<T: Float, R: Rng + ?Sized>(
        store: &mut ParamStore<T>,
        name: &str,
        config: &Conv2dConfig,
        rng: &mut R,
    ) -> Result<Self, NnError> {
        let (c, o, k) = (config.in_channels, config.out_channels, config.kernel_size);
        if c == 0 || o == 0 || k == 0 || config.stride == 0 {
            return Err(NnError::config(
                &format!("Conv2d `{name}` geometry"),
                format!("{c} -> {o} channels, kernel {k}, stride {}", config.stride),
                "channels, kernel_size and stride >= 1",
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
        let dims = [o, c, k, k];
        let fans = Fans::of_weight(&dims).expect("rank 4");
        let w = config.weight_init.sample::<T, R>(&dims, fans, rng)?;
        let b = match &bias {
            Some(_) => Some(config.bias_init.sample::<T, R>(&[o], fans, rng)?),
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
        Ok(Conv2d {
            weight,
            bias,
            config: *config,
            spectral_norm,
        })
    }

    /// The settings.
    pub fn config(&self) -> &Conv2dConfig {
        &self.config
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

    /// The weight the forward pass uses, `[o, c, k, k]`: the stored one, or W / sigma(W) with
    /// spectral normalisation (differentiable in W).
    pub fn weight<T: Float>(&self, store: &ParamStore<T>) -> Tensor<T> {
        match &self.spectral_norm {
            Some(sn) => sn.weight(store),
            None => store.expect(&self.weight).clone(),
        }
    }
}

impl<T: Float> Module<T> for Conv2d {
    #[track_caller]
    fn forward(&self, store: &ParamStore<T>, x: &Tensor<T>) -> Tensor<T> {
        assert!(
            x.rank() == 4 && x.dim(1) == self.config.in_channels,
            "Conv2d `{}`: expected input [n, {}, h, w], got {}",
            self.weight,
            self.config.in_channels,
            x.shape()
        );
        let options = Conv2dOptions {
            stride: self.config.stride,
            padding: self.config.padding,
        };
        let bias = self.bias.as_ref().map(|b| store.expect(b));
        x.conv2d(&self.weight(store), bias, options)
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

    /// out[b, o, y, x] = bias[o] + sum w[o, c, i, j] xin[b, c, y s + i - p, x s + j - p].
    fn naive(x: &Tensor<f64>, w: &Tensor<f64>, b: &[f64], s: usize, p: usize) -> Vec<f64> {
        let ([n, c, h, wd], [o, _, k, _]) = (dims4(x), dims4(w));
        let (oh, ow) = ((h + 2 * p - k) / s + 1, (wd + 2 * p - k) / s + 1);
        let (xd, wdat) = (x.to_f64s(), w.to_f64s());
        let mut out = Vec::new();
        for bi in 0..n {
            for oi in 0..o {
                for y in 0..oh {
                    for xx in 0..ow {
                        let mut acc = b[oi];
                        for ci in 0..c {
                            for i in 0..k {
                                for j in 0..k {
                                    let (py, px) = (y * s + i, xx * s + j);
                                    if py < p || px < p || py - p >= h || px - p >= wd {
                                        continue;
                                    }
                                    let xv = xd[((bi * c + ci) * h + py - p) * wd + px - p];
                                    acc += wdat[((oi * c + ci) * k + i) * k + j] * xv;
                                }
                            }
                        }
                        out.push(acc);
                    }
                }
            }
        }
        out
    }

    fn dims4(t: &Tensor<f64>) -> [usize; 4] {
        t.dims().try_into().unwrap()
    }

    #[test]
    fn forward_matches_a_direct_loop() {
        let mut rng = StdRng::seed_from_u64(0);
        let mut store = ParamStore::<f64>::new();
        let config = Conv2dConfig {
            stride: 2,
            padding: 1,
            ..Conv2dConfig::new(2, 3, 3)
        };
        let conv = Conv2d::from_config(&mut store, "c", &config, &mut rng).unwrap();
        let x = Tensor::<f64>::randn([2, 2, 5, 6], &mut rng);
        let got = conv.forward(&store, &x).to_f64s();
        let want = naive(
            &x,
            store.expect("c.weight"),
            &store.expect("c.bias").to_f64s(),
            2,
            1,
        );
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            // Sums of 18 products in a different order: rounding only.
            assert!((g - w).abs() < 1e-12, "{g} vs {w}");
        }
    }

    #[test]
    fn default_init_bound_uses_the_receptive_field() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut store = ParamStore::<f32>::new();
        Conv2d::new(&mut store, "c", 4, 8, 3, &mut rng).unwrap();
        let bound = 1.0 / 36f64.sqrt();
        for (name, t) in store.iter() {
            assert!(t.to_f64s().iter().all(|v| v.abs() <= bound), "{name}");
        }
    }

    #[test]
    fn spectral_norm_of_a_conv_weight_trains() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut store = ParamStore::<f64>::new();
        let config = Conv2dConfig {
            spectral_norm: Some(SpectralNormConfig::default()),
            ..Conv2dConfig::new(2, 3, 3)
        };
        let conv = Conv2d::from_config(&mut store, "c", &config, &mut rng).unwrap();
        assert_eq!(store.expect("c.weight_u").dims(), &[3]);
        let x = Tensor::<f64>::randn([1, 2, 4, 4], &mut rng);
        let loss = conv.forward_train(&mut store, &x).square().sum();
        let grads = store.backward(&loss).unwrap();
        assert_eq!(grads.by_name("c.weight").unwrap().dims(), &[3, 2, 3, 3]);
    }

    #[test]
    fn zero_stride_is_an_error() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut store = ParamStore::<f32>::new();
        let config = Conv2dConfig {
            stride: 0,
            ..Conv2dConfig::new(1, 1, 1)
        };
        let err = Conv2d::from_config(&mut store, "c", &config, &mut rng).unwrap_err();
        assert!(matches!(err, NnError::InvalidConfig { .. }));
        assert!(store.is_empty());
    }
}
