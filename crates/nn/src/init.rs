//! Weight initialisers, as in `torch.nn.init`, drawing from an explicit generator.

use crate::NnError;
use ebm_tensor::{Float, Tensor};
use rand::Rng;
use serde::{Deserialize, Serialize};

/// Fan-in and fan-out of a weight, the sizes that scale-aware initialisers divide by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fans {
    /// Inputs that feed one output: `in` for a linear weight `[out, in]`, `c kh kw` for a
    /// convolution weight `[o, c, kh, kw]`.
    pub fan_in: usize,
    /// Outputs that one input feeds: `out`, or `o kh kw`.
    pub fan_out: usize,
}

impl Fans {
    /// The fans of a weight laid out as PyTorch does: `[out, in, kernel...]` (axis 0 is the
    /// output, axis 1 the input, the rest a receptive field), or `None` below two axes.
    pub fn of_weight(dims: &[usize]) -> Option<Fans> {
        if dims.len() < 2 {
            return None;
        }
        let field: usize = dims[2..].iter().product();
        Some(Fans {
            fan_in: dims[1] * field,
            fan_out: dims[0] * field,
        })
    }
}

/// Which fan Kaiming initialisation keeps the variance of: forward activations (`FanIn`) or
/// backward gradients (`FanOut`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FanMode {
    /// Divide by the fan-in (PyTorch's default).
    FanIn,
    /// Divide by the fan-out.
    FanOut,
}

/// How to fill a new tensor.
///
/// The fan-based rules, with `gain` from [`crate::Activation::gain`]:
/// ```text
/// TorchDefault     U(-b, b),  b = 1 / sqrt(fan_in)      (nn.Linear, nn.Conv2d: weight and bias)
/// KaimingUniform   U(-b, b),  b = gain sqrt(3 / fan)    fan = fan_in or fan_out
/// KaimingNormal    N(0, s^2), s = gain / sqrt(fan)
/// XavierUniform    U(-b, b),  b = gain sqrt(6 / (fan_in + fan_out))
/// XavierNormal     N(0, s^2), s = gain sqrt(2 / (fan_in + fan_out))
/// ```
/// `TorchDefault` equals `KaimingUniform` with gain sqrt(1/3) (PyTorch's `a = sqrt(5)`).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum Init {
    /// All zeros.
    Zeros,
    /// Every element equal to `value`.
    Constant {
        /// The value.
        value: f64,
    },
    /// Uniform on `[low, high)`.
    Uniform {
        /// Lower end.
        low: f64,
        /// Upper end.
        high: f64,
    },
    /// Normal with the given mean and standard deviation.
    Normal {
        /// Mean.
        mean: f64,
        /// Standard deviation (>= 0).
        std: f64,
    },
    /// PyTorch's default for `nn.Linear` and `nn.Conv2d` weights and biases.
    TorchDefault,
    /// He et al. (2015), uniform.
    KaimingUniform {
        /// Gain of the following nonlinearity.
        gain: f64,
        /// Fan to divide by.
        mode: FanMode,
    },
    /// He et al. (2015), normal.
    KaimingNormal {
        /// Gain of the following nonlinearity.
        gain: f64,
        /// Fan to divide by.
        mode: FanMode,
    },
    /// Glorot and Bengio (2010), uniform.
    XavierUniform {
        /// Gain of the following nonlinearity.
        gain: f64,
    },
    /// Glorot and Bengio (2010), normal.
    XavierNormal {
        /// Gain of the following nonlinearity.
        gain: f64,
    },
}

impl Init {
    /// A tensor of shape `dims` filled by this rule.
    ///
    /// # Arguments
    /// * `fans`: the fans of the weight this tensor belongs to (for a bias, its weight's); only
    ///   the fan-based rules read it. [`Fans::of_weight`] computes them for a weight.
    /// * `rng`: the source of randomness.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for a non-finite value, `low >= high`, a negative standard
    /// deviation, a gain that is not finite and positive, or a fan-based rule with a zero fan.
    ///
    /// # Example
    /// ```
    /// use ebm_nn::{Fans, Init};
    /// use rand::SeedableRng;
    ///
    /// let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    /// let fans = Fans::of_weight(&[3, 4]).unwrap();
    /// let w = Init::TorchDefault.sample::<f32, _>(&[3, 4], fans, &mut rng).unwrap();
    /// assert!(w.to_f64s().iter().all(|v| v.abs() <= 0.5)); // 1 / sqrt(4)
    /// ```
    pub fn sample<T: Float, R: Rng + ?Sized>(
        &self,
        dims: &[usize],
        fans: Fans,
        rng: &mut R,
    ) -> Result<Tensor<T>, NnError> {
        match *self {
            Init::Zeros => Ok(Tensor::zeros(dims)),
            Init::Constant { value } => {
                finite("Init::Constant value", value)?;
                Ok(Tensor::full(dims, value))
            }
            Init::Uniform { low, high } => {
                finite("Init::Uniform low", low)?;
                finite("Init::Uniform high", high)?;
                if low >= high {
                    return Err(NnError::config(
                        "Init::Uniform range",
                        format!("[{low}, {high})"),
                        "low < high",
                    ));
                }
                Ok(Tensor::rand_uniform(dims, low, high, rng))
            }
            Init::Normal { mean, std } => normal(dims, mean, std, rng),
            Init::TorchDefault => {
                let fan = fan("Init::TorchDefault", fans.fan_in)?;
                symmetric(dims, 1.0 / fan.sqrt(), rng)
            }
            Init::KaimingUniform { gain, mode } => {
                let fan = fan("Init::KaimingUniform", fan_of(fans, mode))?;
                symmetric(dims, positive_gain(gain)? * (3.0 / fan).sqrt(), rng)
            }
            Init::KaimingNormal { gain, mode } => {
                let fan = fan("Init::KaimingNormal", fan_of(fans, mode))?;
                normal(dims, 0.0, positive_gain(gain)? / fan.sqrt(), rng)
            }
            Init::XavierUniform { gain } => {
                let fan = fan("Init::XavierUniform", fans.fan_in + fans.fan_out)?;
                symmetric(dims, positive_gain(gain)? * (6.0 / fan).sqrt(), rng)
            }
            Init::XavierNormal { gain } => {
                let fan = fan("Init::XavierNormal", fans.fan_in + fans.fan_out)?;
                normal(dims, 0.0, positive_gain(gain)? * (2.0 / fan).sqrt(), rng)
            }
        }
    }
}

fn fan_of(fans: Fans, mode: FanMode) -> usize {
    match mode {
        FanMode::FanIn => fans.fan_in,
        FanMode::FanOut => fans.fan_out,
    }
}

fn fan(what: &str, fan: usize) -> Result<f64, NnError> {
    if fan == 0 {
        return Err(NnError::config(
            &format!("{what} fan"),
            0,
            "a weight with at least one input and one output",
        ));
    }
    Ok(fan as f64)
}

fn finite(what: &str, value: f64) -> Result<f64, NnError> {
    if !value.is_finite() {
        return Err(NnError::config(what, value, "a finite number"));
    }
    Ok(value)
}

fn positive_gain(gain: f64) -> Result<f64, NnError> {
    if !(gain.is_finite() && gain > 0.0) {
        return Err(NnError::config("init gain", gain, "finite and > 0"));
    }
    Ok(gain)
}

fn symmetric<T: Float, R: Rng + ?Sized>(
    dims: &[usize],
    bound: f64,
    rng: &mut R,
) -> Result<Tensor<T>, NnError> {
    Ok(Tensor::rand_uniform(dims, -bound, bound, rng))
}

fn normal<T: Float, R: Rng + ?Sized>(
    dims: &[usize],
    mean: f64,
    std: f64,
    rng: &mut R,
) -> Result<Tensor<T>, NnError> {
    finite("Init::Normal mean", mean)?;
    if !(std.is_finite() && std >= 0.0) {
        return Err(NnError::config("normal std", std, "finite and >= 0"));
    }
    Ok(Tensor::<T>::randn(dims, rng).affine(std, mean))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    fn moments(t: &Tensor<f64>) -> (f64, f64, f64) {
        let v = t.to_f64s();
        let n = v.len() as f64;
        let mean = v.iter().sum::<f64>() / n;
        let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let max = v.iter().fold(0.0f64, |m, x| m.max(x.abs()));
        (mean, var.sqrt(), max)
    }

    #[test]
    fn fans_follow_pytorch_layout() {
        let conv = Fans::of_weight(&[8, 3, 5, 5]).unwrap();
        assert_eq!((conv.fan_in, conv.fan_out), (75, 200));
        assert_eq!(Fans::of_weight(&[4]), None);
    }

    #[test]
    fn fan_based_rules_have_the_stated_spread() {
        // 200 x 250 = 50,000 draws: the sample std of a draw with std s errs by about
        // s / sqrt(2 * 50,000) = 0.3% of s, so 3% relative is a ten-sigma margin.
        let mut rng = StdRng::seed_from_u64(1);
        let dims = [200, 250];
        let fans = Fans::of_weight(&dims).unwrap();
        let gain = 2f64.sqrt();
        let cases = [
            (
                Init::TorchDefault,
                (1.0 / 250f64).sqrt() / 3f64.sqrt(),
                Some(1.0 / 250f64.sqrt()),
            ),
            (
                Init::KaimingUniform {
                    gain,
                    mode: FanMode::FanIn,
                },
                gain / 250f64.sqrt(),
                Some(gain * (3.0 / 250f64).sqrt()),
            ),
            (
                Init::KaimingNormal {
                    gain,
                    mode: FanMode::FanOut,
                },
                gain / 200f64.sqrt(),
                None,
            ),
            (
                Init::XavierUniform { gain: 1.0 },
                (2.0 / 450f64).sqrt(),
                Some((6.0 / 450f64).sqrt()),
            ),
            (
                Init::XavierNormal { gain: 1.0 },
                (2.0 / 450f64).sqrt(),
                None,
            ),
        ];
        for (init, std, bound) in cases {
            let t = init.sample::<f64, _>(&dims, fans, &mut rng).unwrap();
            let (mean, got_std, max) = moments(&t);
            assert!(
                (got_std / std - 1.0).abs() < 0.03,
                "{init:?}: std {got_std} vs {std}"
            );
            // The mean of 50,000 draws errs by std / 224; 5% of std is a ten-sigma margin.
            assert!(mean.abs() < 0.05 * std, "{init:?}: mean {mean}");
            if let Some(b) = bound {
                assert!(max <= b, "{init:?}: {max} beyond the bound {b}");
            }
        }
    }

    #[test]
    fn simple_rules() {
        let mut rng = StdRng::seed_from_u64(2);
        let fans = Fans {
            fan_in: 1,
            fan_out: 1,
        };
        let z = Init::Zeros.sample::<f32, _>(&[3], fans, &mut rng).unwrap();
        assert_eq!(z.to_f64s(), vec![0.0; 3]);
        let c = Init::Constant { value: 0.5 }.sample::<f32, _>(&[2], fans, &mut rng);
        assert_eq!(c.unwrap().to_f64s(), vec![0.5; 2]);
        let u = Init::Uniform {
            low: 2.0,
            high: 3.0,
        }
        .sample::<f64, _>(&[100], fans, &mut rng);
        assert!(u.unwrap().to_f64s().iter().all(|v| (2.0..3.0).contains(v)));
    }

    #[test]
    fn invalid_settings_are_errors() {
        let mut rng = StdRng::seed_from_u64(3);
        let fans = Fans {
            fan_in: 0,
            fan_out: 4,
        };
        let bad = [
            Init::Uniform {
                low: 1.0,
                high: 1.0,
            },
            Init::Normal {
                mean: 0.0,
                std: -1.0,
            },
            Init::Constant { value: f64::NAN },
            Init::TorchDefault,
            Init::KaimingNormal {
                gain: 0.0,
                mode: FanMode::FanOut,
            },
        ];
        for init in bad {
            let err = init.sample::<f32, _>(&[2, 2], fans, &mut rng).unwrap_err();
            assert!(
                matches!(err, NnError::InvalidConfig { .. }),
                "{init:?}: {err}"
            );
        }
    }

    #[test]
    fn init_serialises_with_a_kind_tag() {
        let init = Init::KaimingNormal {
            gain: 1.0,
            mode: FanMode::FanIn,
        };
        let json = serde_json::to_string(&init).unwrap();
        assert_eq!(
            json,
            r#"{"kind":"kaiming_normal","gain":1.0,"mode":"fan_in"}"#
        );
        assert_eq!(serde_json::from_str::<Init>(&json).unwrap(), init);
    }
}
