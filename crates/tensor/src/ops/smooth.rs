//! Elementwise functions (exp, log, powers, activations), differentiable to any order.
//!
//! Each is one [`Smooth`] function; its k-th derivative is evaluated in a single fused pass, and
//! the backward rule of "k-th derivative" is "(k+1)-th derivative times the incoming gradient".

use crate::kernels::basis;
use crate::kernels::smooth::{Smooth, eval};
use crate::{Float, Tensor};
use std::sync::Arc;

/// A function's basis at the input of an operation (sigmoid(x) for SiLU, say), computed once
/// and shared by every derivative the graph takes of that operation; `None` for functions
/// without one.
type Basis<T> = Option<Arc<Vec<T>>>;

impl<T: Float> Tensor<T> {
    /// The k-th derivative of `f`, elementwise (`k = 0` is `f` itself).
    pub fn smooth(&self, f: Smooth, k: usize) -> Tensor<T> {
        // SiLU's value and its basis in one pass, where a fused kernel exists.
        let fused = (f == Smooth::Silu && k == 0)
            .then(|| crate::kernels::sigmoid::silu_f32(self.data()))
            .flatten();
        let (cache, data): (Basis<T>, Vec<T>) = match fused {
            Some((s, y)) => (Some(Arc::new(s)), y),
            None => {
                let cache: Basis<T> = basis::basis(f, self.data()).map(Arc::new);
                let data = match &cache {
                    Some(s) => basis::eval(f, k, self.data(), s, None),
                    None => None,
                }
                .unwrap_or_else(|| eval(f, k, self.data(), None));
                (cache, data)
            }
        };
        Tensor::from_op(data, self.shape().clone(), f.name(), [self], move |c| {
            vec![Some(c.input(0).derivative_mul(
                f,
                k + 1,
                c.grad,
                cache.clone(),
            ))]
        })
    }

    /// `g * f^(k)(x)` elementwise in one pass, with `g` of this tensor's shape: the backward of
    /// [`Tensor::smooth`], fused so that activations cost one pass per derivative order.
    #[track_caller]
    pub fn smooth_mul(&self, f: Smooth, k: usize, g: &Tensor<T>) -> Tensor<T> {
        let cache = basis::basis(f, self.data()).map(Arc::new);
        self.derivative_mul(f, k, g, cache)
    }

    /// [`Tensor::smooth_mul`] with the basis of `f` at `self` already computed.
    #[track_caller]
    fn derivative_mul(&self, f: Smooth, k: usize, g: &Tensor<T>, cache: Basis<T>) -> Tensor<T> {
        assert_eq!(self.shape(), g.shape(), "smooth_mul: x and g shapes differ");
        if f.vanishes(k) {
            return self.zeros_like();
        }
        let data = match &cache {
            Some(s) => basis::eval(f, k, self.data(), s, Some(g.data())),
            None => None,
        }
        .unwrap_or_else(|| eval(f, k, self.data(), Some(g.data())));
        Tensor::from_op(data, self.shape().clone(), f.name(), [self, g], move |c| {
            let (x, g, gg) = (c.input(0), c.input(1), c.grad);
            let dx = c
                .needs(0)
                .then(|| x.derivative_mul(f, k + 1, &(gg * g), cache.clone()));
            let dg = c
                .needs(1)
                .then(|| x.derivative_mul(f, k, gg, cache.clone()));
            vec![dx, dg]
        })
    }

    /// e^x.
    pub fn exp(&self) -> Tensor<T> {
        self.smooth(Smooth::Exp, 0)
    }

    /// Natural logarithm.
    pub fn log(&self) -> Tensor<T> {
        self.smooth(Smooth::Log, 0)
    }

    /// ln(1 + x), accurate for small x.
    pub fn log1p(&self) -> Tensor<T> {
        self.smooth(Smooth::Log1p, 0)
    }

    /// x^p for a real exponent (x must be positive unless p is an integer).
    pub fn powf(&self, p: f64) -> Tensor<T> {
        self.smooth(Smooth::Pow(p), 0)
    }

    /// x^n for an integer exponent.
    pub fn powi(&self, n: i32) -> Tensor<T> {
        self.smooth(Smooth::Pow(n as f64), 0)
    }

    /// Square root.
    pub fn sqrt(&self) -> Tensor<T> {
        self.smooth(Smooth::Pow(0.5), 0)
    }

    /// x^2.
    pub fn square(&self) -> Tensor<T> {
        self.smooth(Smooth::Pow(2.0), 0)
    }

    /// 1 / x.
    pub fn recip(&self) -> Tensor<T> {
        self.smooth(Smooth::Pow(-1.0), 0)
    }

    /// |x|. Its derivative is sign(x) (0 at 0) and its second derivative is zero.
    pub fn abs(&self) -> Tensor<T> {
        self.smooth(Smooth::Abs, 0)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&self) -> Tensor<T> {
        self.smooth(Smooth::Tanh, 0)
    }

    /// Logistic sigmoid 1 / (1 + e^-x).
    pub fn sigmoid(&self) -> Tensor<T> {
        self.smooth(Smooth::Sigmoid, 0)
    }

    /// Softplus ln(1 + e^x), computed without overflow.
    pub fn softplus(&self) -> Tensor<T> {
        self.smooth(Smooth::Softplus, 0)
    }

    /// SiLU (swish): x sigmoid(x). Smooth, the usual choice for energies that score matching
    /// differentiates twice.
    pub fn silu(&self) -> Tensor<T> {
        self.smooth(Smooth::Silu, 0)
    }

    /// ELU: x for x > 0, alpha (e^x - 1) otherwise. Its first derivative is continuous only
    /// for alpha = 1, and its second derivative jumps at 0.
    pub fn elu(&self, alpha: f64) -> Tensor<T> {
        self.smooth(Smooth::Elu(alpha), 0)
    }

    /// ReLU max(x, 0). Its second derivative is zero everywhere (and undefined at 0), so score
    /// matching through a ReLU network sees no curvature: prefer SiLU or softplus there.
    pub fn relu(&self) -> Tensor<T> {
        self.smooth(Smooth::Relu, 0)
    }

    /// Leaky ReLU: x for x > 0, slope * x otherwise. Zero second derivative, as ReLU.
    pub fn leaky_relu(&self, slope: f64) -> Tensor<T> {
        self.smooth(Smooth::LeakyRelu(slope), 0)
    }
}
