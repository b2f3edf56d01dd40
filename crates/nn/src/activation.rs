//! Elementwise nonlinearities between layers, chosen by name in configs.

use ebm_tensor::{Float, Tensor};
use serde::{Deserialize, Serialize};
use std::fmt;

/// An elementwise nonlinearity.
///
/// Score matching differentiates the energy with respect to its input and then again with
/// respect to the weights, so it needs activations with a useful second derivative: SiLU,
/// softplus, tanh, sigmoid, and ELU (whose second derivative jumps at 0 unless alpha = 1).
/// ReLU and leaky ReLU have a zero second derivative and make the score piecewise constant in
/// the input; keep them for objectives that only need E and grad_x E.
///
/// Serialised in snake case, with parameters as fields: `"silu"`,
/// `{"leaky_relu": {"slope": 0.01}}` (JSON), or `activation = "silu"` (TOML).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Activation {
    /// x (no nonlinearity).
    Identity,
    /// x sigmoid(x), also called swish.
    Silu,
    /// ln(1 + e^x).
    Softplus,
    /// tanh(x).
    Tanh,
    /// 1 / (1 + e^-x).
    Sigmoid,
    /// x for x > 0, alpha (e^x - 1) otherwise.
    Elu {
        /// Scale of the negative part (PyTorch's default is 1).
        alpha: f64,
    },
    /// max(x, 0).
    Relu,
    /// x for x > 0, slope x otherwise.
    LeakyRelu {
        /// Slope of the negative part (PyTorch's default is 0.01).
        slope: f64,
    },
}

impl Activation {
    /// Applies the nonlinearity elementwise (differentiable to any order).
    pub fn apply<T: Float>(&self, x: &Tensor<T>) -> Tensor<T> {
        match *self {
            Activation::Identity => x.clone(),
            Activation::Silu => x.silu(),
            Activation::Softplus => x.softplus(),
            Activation::Tanh => x.tanh(),
            Activation::Sigmoid => x.sigmoid(),
            Activation::Elu { alpha } => x.elu(alpha),
            Activation::Relu => x.relu(),
            Activation::LeakyRelu { slope } => x.leaky_relu(slope),
        }
    }

    /// The gain for Kaiming and Xavier initialisation, as `torch.nn.init.calculate_gain`:
    /// 1 for identity and sigmoid, 5/3 for tanh, sqrt(2) for ReLU, sqrt(2 / (1 + slope^2)) for
    /// leaky ReLU. PyTorch defines none for SiLU, softplus and ELU; this returns sqrt(2) for
    /// them, since each behaves like a ReLU away from zero.
    pub fn gain(&self) -> f64 {
        match *self {
            Activation::Identity | Activation::Sigmoid => 1.0,
            Activation::Tanh => 5.0 / 3.0,
            Activation::LeakyRelu { slope } => (2.0 / (1.0 + slope * slope)).sqrt(),
            Activation::Relu | Activation::Silu | Activation::Softplus | Activation::Elu { .. } => {
                std::f64::consts::SQRT_2
            }
        }
    }

    /// Whether the second derivative is zero almost everywhere (ReLU, leaky ReLU, identity),
    /// which makes score-matching losses blind to curvature.
    pub fn is_piecewise_linear(&self) -> bool {
        matches!(
            self,
            Activation::Identity | Activation::Relu | Activation::LeakyRelu { .. }
        )
    }
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Activation::Identity => write!(f, "identity"),
            Activation::Silu => write!(f, "silu"),
            Activation::Softplus => write!(f, "softplus"),
            Activation::Tanh => write!(f, "tanh"),
            Activation::Sigmoid => write!(f, "sigmoid"),
            Activation::Elu { alpha } => write!(f, "elu(alpha={alpha})"),
            Activation::Relu => write!(f, "relu"),
            Activation::LeakyRelu { slope } => write!(f, "leaky_relu(slope={slope})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_matches_the_formulas() {
        let x = Tensor::<f64>::from_f64s(&[-1.5, 0.5], [2]);
        let sig = |v: f64| 1.0 / (1.0 + (-v).exp());
        type Case = (Activation, fn(f64) -> f64);
        let cases: [Case; 8] = [
            (Activation::Identity, |v| v),
            (Activation::Silu, |v| v / (1.0 + (-v).exp())),
            (Activation::Softplus, |v| v.exp().ln_1p()),
            (Activation::Tanh, f64::tanh),
            (Activation::Sigmoid, |v| 1.0 / (1.0 + (-v).exp())),
            (Activation::Elu { alpha: 0.5 }, |v| {
                if v > 0.0 { v } else { 0.5 * v.exp_m1() }
            }),
            (Activation::Relu, |v| v.max(0.0)),
            (Activation::LeakyRelu { slope: 0.1 }, |v| {
                if v > 0.0 { v } else { 0.1 * v }
            }),
        ];
        assert!((sig(0.0) - 0.5).abs() < 1e-15);
        for (act, f) in cases {
            let got = act.apply(&x).to_f64s();
            for (g, v) in got.iter().zip([-1.5, 0.5]) {
                // The kernels evaluate these in a few f64 operations: 1e-12 leaves room for
                // rounding in exp/log1p while catching any wrong formula.
                assert!((g - f(v)).abs() < 1e-12, "{act}: {g} vs {}", f(v));
            }
        }
    }

    #[test]
    fn gains_follow_torch() {
        assert_eq!(Activation::Tanh.gain(), 5.0 / 3.0);
        assert_eq!(Activation::Relu.gain(), 2f64.sqrt());
        let leaky = Activation::LeakyRelu { slope: 2f64.sqrt() }.gain();
        assert!((leaky - (2.0f64 / 3.0).sqrt()).abs() < 1e-15); // one rounding
    }

    #[test]
    fn serde_round_trip_in_snake_case() {
        let json = serde_json::to_string(&Activation::Silu).unwrap();
        assert_eq!(json, "\"silu\"");
        let leaky = Activation::LeakyRelu { slope: 0.2 };
        let json = serde_json::to_string(&leaky).unwrap();
        assert_eq!(json, r#"{"leaky_relu":{"slope":0.2}}"#);
        assert_eq!(serde_json::from_str::<Activation>(&json).unwrap(), leaky);
    }
}
