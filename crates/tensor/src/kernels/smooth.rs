//! Elementwise functions and all their derivatives, each evaluated in one pass.
//!
//! The derivatives of the logistic sigmoid and of tanh are polynomials in the function itself
//! (s' = s - s^2, t' = 1 - t^2), so the k-th derivative of sigmoid, tanh, softplus and SiLU is a
//! polynomial of degree k + 1 in one `exp`: any order is exact and costs the same.

use super::elementwise::{map, zip};
use crate::Float;

/// An elementwise function whose derivatives of every order the engine can evaluate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Smooth {
    /// e^x.
    Exp,
    /// ln x.
    Log,
    /// ln(1 + x).
    Log1p,
    /// x^p (integer p: any real x; otherwise x > 0).
    Pow(f64),
    /// Hyperbolic tangent.
    Tanh,
    /// Logistic sigmoid 1 / (1 + e^-x).
    Sigmoid,
    /// ln(1 + e^x).
    Softplus,
    /// x sigmoid(x) (also called swish).
    Silu,
    /// x for x > 0, alpha (e^x - 1) otherwise; second derivative jumps at 0 unless alpha = 1.
    Elu(f64),
    /// |x|; derivative sign(x) (0 at 0), zero second derivative.
    Abs,
    /// max(x, 0); derivative 1 for x > 0 (0 at 0), zero second derivative.
    Relu,
    /// x for x > 0, slope x otherwise; zero second derivative.
    LeakyRelu(f64),
}

impl Smooth {
    /// Whether the k-th derivative is zero everywhere (piecewise-linear functions beyond k = 1,
    /// integer powers beyond their degree).
    pub(crate) fn vanishes(self, k: usize) -> bool {
        match self {
            Smooth::Abs | Smooth::Relu | Smooth::LeakyRelu(_) => k >= 2,
            Smooth::Pow(p) => p.fract() == 0.0 && p >= 0.0 && k as f64 > p,
            _ => false,
        }
    }

    /// The operation's name in the graph.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Smooth::Exp => "exp",
            Smooth::Log => "log",
            Smooth::Log1p => "log1p",
            Smooth::Pow(_) => "pow",
            Smooth::Tanh => "tanh",
            Smooth::Sigmoid => "sigmoid",
            Smooth::Softplus => "softplus",
            Smooth::Silu => "silu",
            Smooth::Elu(_) => "elu",
            Smooth::Abs => "abs",
            Smooth::Relu => "relu",
            Smooth::LeakyRelu(_) => "leaky_relu",
        }
    }
}

/// Up to this degree a polynomial is evaluated with a fixed, unrolled Horner loop.
const FIXED: usize = 8;

/// Coefficients (lowest degree first) of the polynomial P with d^k/dx^k f(x) = P(f(x)), for a
/// function with f' = c0 + c1 f + c2 f^2 (sigmoid: 0, 1, -1; tanh: 1, 0, -1).
fn chain_poly(k: usize, fprime: [f64; 3]) -> Vec<f64> {
    let mut p = vec![0.0, 1.0];
    for _ in 0..k {
        // P_{n+1}(f) = P_n'(f) * f'(f)
        let dp: Vec<f64> = (1..p.len()).map(|i| i as f64 * p[i]).collect();
        let mut next = vec![0.0; dp.len() + 2];
        for (i, &c) in dp.iter().enumerate() {
            for (j, &q) in fprime.iter().enumerate() {
                next[i + j] += c * q;
            }
        }
        while next.len() > 1 && *next.last().unwrap() == 0.0 {
            next.pop();
        }
        p = next;
    }
    p
}

#[inline(always)]
fn horner<T: Float>(c: &[T; FIXED], x: T) -> T {
    let mut acc = c[FIXED - 1];
    for i in (0..FIXED - 1).rev() {
        acc = acc * x + c[i];
    }
    acc
}

fn horner_slice<T: Float>(c: &[T], x: T) -> T {
    c.iter().rev().fold(T::zero(), |acc, &ci| acc * x + ci)
}

/// A polynomial in a form ready to evaluate fast.
enum Poly<T> {
    Fixed([T; FIXED]),
    Long(Vec<T>),
}

impl<T: Float> Poly<T> {
    fn new(coefficients: &[f64]) -> Self {
        if coefficients.len() <= FIXED {
            let mut c = [T::zero(); FIXED];
            for (ci, &v) in c.iter_mut().zip(coefficients) {
                *ci = T::of(v);
            }
            Poly::Fixed(c)
        } else {
            Poly::Long(coefficients.iter().map(|&v| T::of(v)).collect())
        }
    }

    #[inline(always)]
    fn eval(&self, x: T) -> T {
        match self {
            Poly::Fixed(c) => horner(c, x),
            Poly::Long(c) => horner_slice(c, x),
        }
    }
}

#[inline(always)]
fn sigmoid<T: Float>(x: T) -> T {
    T::one() / (T::one() + (-x).fast_exp())
}

#[inline(always)]
fn tanh<T: Float>(x: T) -> T {
    // 1 - 2 / (e^{2x} + 1): exact at both ends (e^{2x} = inf gives 1, 0 gives -1).
    let two = T::of(2.0);
    T::one() - two / ((two * x).fast_exp() + T::one())
}

/// Coefficient c and exponent q such that d^k/dx^k x^p = c x^q.
fn pow_derivative(p: f64, k: usize) -> (f64, f64) {
    let c = (0..k).map(|j| p - j as f64).product();
    (c, p - k as f64)
}

#[inline(always)]
fn powq<T: Float>(x: T, q: f64, integral: bool) -> T {
    if integral {
        x.powi(q as i32)
    } else {
        x.powf(T::of(q))
    }
}

/// Evaluates the k-th derivative of `f` at every element of `x`, times `g` when given.
pub(crate) fn eval<T: Float>(f: Smooth, k: usize, x: &[T], g: Option<&[T]>) -> Vec<T> {
    macro_rules! run {
        ($h:expr) => {{
            let h = $h;
            match g {
                None => map(x, h),
                Some(g) => zip(x, g, move |x, g| g * h(x)),
            }
        }};
    }
    let zero = T::zero();
    let one = T::one();
    match f {
        Smooth::Exp => run!(|x: T| x.fast_exp()),
        Smooth::Log | Smooth::Log1p => {
            let shift = if f == Smooth::Log1p { one } else { zero };
            if k == 0 {
                if f == Smooth::Log1p {
                    run!(|x: T| x.ln_1p())
                } else {
                    run!(|x: T| x.ln())
                }
            } else {
                // d^k ln(x) = (-1)^(k-1) (k-1)! x^-k
                let (c, q) = pow_derivative(-1.0, k - 1);
                let c = T::of(c);
                run!(move |x: T| c * (x + shift).powi(q as i32))
            }
        }
        Smooth::Pow(p) => {
            let (c, q) = pow_derivative(p, k);
            let integral = q.fract() == 0.0;
            if c == 0.0 {
                run!(|_x: T| zero)
            } else {
                let c = T::of(c);
                run!(move |x: T| c * powq(x, q, integral))
            }
        }
        Smooth::Sigmoid => {
            let p = Poly::new(&chain_poly(k, [0.0, 1.0, -1.0]));
            run!(move |x: T| p.eval(sigmoid(x)))
        }
        Smooth::Tanh => {
            let p = Poly::new(&chain_poly(k, [1.0, 0.0, -1.0]));
            run!(move |x: T| p.eval(tanh(x)))
        }
        Smooth::Softplus => {
            if k == 0 {
                // max(x, 0) + ln(1 + e^-|x|), without overflow
                run!(|x: T| x.max(zero) + (-x.abs()).fast_exp().ln_1p())
            } else {
                let p = Poly::new(&chain_poly(k - 1, [0.0, 1.0, -1.0]));
                run!(move |x: T| p.eval(sigmoid(x)))
            }
        }
        Smooth::Silu => {
            // d^k (x s) = x s^(k) + k s^(k-1)
            let pk = Poly::new(&chain_poly(k, [0.0, 1.0, -1.0]));
            if k == 0 {
                run!(move |x: T| x * sigmoid(x))
            } else {
                let pk1 = Poly::new(&chain_poly(k - 1, [0.0, 1.0, -1.0]));
                let kt = T::of(k as f64);
                run!(move |x: T| {
                    let s = sigmoid(x);
                    x * pk.eval(s) + kt * pk1.eval(s)
                })
            }
        }
        Smooth::Elu(alpha) => {
            let a = T::of(alpha);
            match k {
                0 => run!(move |x: T| if x > zero {
                    x
                } else {
                    a * (x.fast_exp() - one)
                }),
                1 => run!(move |x: T| if x > zero { one } else { a * x.fast_exp() }),
                _ => run!(move |x: T| if x > zero { zero } else { a * x.fast_exp() }),
            }
        }
        Smooth::Abs => match k {
            0 => run!(|x: T| x.abs()),
            1 => run!(move |x: T| if x > zero {
                one
            } else if x < zero {
                -one
            } else {
                zero
            }),
            _ => run!(|_x: T| zero),
        },
        Smooth::Relu => match k {
            0 => run!(move |x: T| if x > zero { x } else { zero }),
            1 => run!(move |x: T| if x > zero { one } else { zero }),
            _ => run!(|_x: T| zero),
        },
        Smooth::LeakyRelu(slope) => {
            let a = T::of(slope);
            match k {
                0 => run!(move |x: T| if x > zero { x } else { a * x }),
                1 => run!(move |x: T| if x > zero { one } else { a }),
                _ => run!(|_x: T| zero),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sigmoid_polynomials_match_known_derivatives() {
        // s' = s - s^2, s'' = s - 3 s^2 + 2 s^3
        assert_eq!(chain_poly(1, [0.0, 1.0, -1.0]), vec![0.0, 1.0, -1.0]);
        assert_eq!(chain_poly(2, [0.0, 1.0, -1.0]), vec![0.0, 1.0, -3.0, 2.0]);
        // tanh'' = -2 t + 2 t^3
        assert_eq!(chain_poly(2, [1.0, 0.0, -1.0]), vec![0.0, -2.0, 0.0, 2.0]);
    }

    #[test]
    fn derivatives_match_finite_differences_in_f64() {
        let fs = [
            Smooth::Exp,
            Smooth::Log,
            Smooth::Log1p,
            Smooth::Pow(2.5),
            Smooth::Pow(3.0),
            Smooth::Pow(-1.0),
            Smooth::Tanh,
            Smooth::Sigmoid,
            Smooth::Softplus,
            Smooth::Silu,
            Smooth::Elu(0.7),
        ];
        let xs = [0.3, 0.9, 1.7, -0.4, -2.2];
        let h = 1e-5;
        for f in fs {
            for k in 0..6 {
                for &x in &xs {
                    if matches!(f, Smooth::Log | Smooth::Pow(2.5)) && x <= 0.0
                        || f == Smooth::Log1p && x <= -1.0
                    {
                        continue;
                    }
                    let at = |x: f64| eval::<f64>(f, k, &[x], None)[0];
                    let fd = (at(x + h) - at(x - h)) / (2.0 * h);
                    let exact = eval::<f64>(f, k + 1, &[x], None)[0];
                    let tol = 1e-6 * (1.0 + exact.abs());
                    assert!(
                        (fd - exact).abs() < tol,
                        "{f:?} order {k} at {x}: fd {fd} vs {exact}"
                    );
                }
            }
        }
    }
}
