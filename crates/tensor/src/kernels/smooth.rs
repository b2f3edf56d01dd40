//! Elementwise functions and all their derivatives, each evaluated in one pass.
//!
//! The derivatives of exp, sigmoid, tanh, softplus and SiLU come from their basis (see
//! `kernels::basis`): any order is exact and costs the same.

use super::basis;
use super::elementwise::{Scalar, apply};
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

#[inline(always)]
pub(super) fn sigmoid<T: Float>(x: T) -> T {
    (T::one() + (-x).fast_exp()).recip_at_least_one()
}

#[inline(always)]
pub(super) fn tanh<T: Float>(x: T) -> T {
    // 1 - 2 / (e^{2x} + 1): exact at both ends (e^{2x} = inf gives 1, 0 gives -1).
    let two = T::of(2.0);
    T::one() - two * ((two * x).fast_exp() + T::one()).recip_at_least_one()
}

/// Coefficient c and exponent q such that d^k/dx^k x^p = c x^q.
fn pow_derivative(p: f64, k: usize) -> (f64, f64) {
    let c = (0..k).map(|j| p - j as f64).product();
    (c, p - k as f64)
}

/// Declares a struct holding a kernel's constants and the scalar function it computes.
macro_rules! scalar_fn {
    ($name:ident { $($field:ident: $ty:ty),* } |$s:ident, $x:ident| $body:expr) => {
        struct $name<T> {
            $($field: $ty,)*
            _t: std::marker::PhantomData<T>,
        }
        impl<T: Float> Scalar<T> for $name<T> {
            #[inline(always)]
            #[allow(unused_variables)]
            fn at(&self, $x: T) -> T {
                let $s = self;
                $body
            }
        }
    };
}

macro_rules! make {
    ($name:ident { $($field:ident: $value:expr),* }) => {
        $name { $($field: $value,)* _t: std::marker::PhantomData }
    };
}

scalar_fn!(LnFn {} | s, x | x.ln());
scalar_fn!(Ln1pFn {} | s, x | x.ln_1p());
scalar_fn!(
    PowIntFn {
        c: T,
        q: i32,
        shift: T
    } | s,
    x | s.c * (x + s.shift).powi(s.q)
);
scalar_fn!(PowRealFn { c: T, q: T } | s, x | s.c * x.powf(s.q));
// Zero, except that NaN stays NaN.
scalar_fn!(ZeroFn {} | s, x | if x.is_nan() { x } else { T::zero() });
scalar_fn!(
    SoftplusFn {} | s,
    x | x.max(T::zero()) + (-x.abs()).fast_exp().ln_1p()
);
// Piecewise functions: `pos` and `neg` give the derivative's value on each side, with
// `neg_exp` choosing between a constant and a multiple of e^x on the negative side. Terms with
// a zero coefficient are left out rather than multiplied by zero, so that infinite inputs give
// the right limits (relu(-inf) = 0, not 0 * -inf = NaN).
scalar_fn!(
    PiecewiseFn {
        pos_slope: T,
        pos_const: T,
        neg_slope: T,
        neg_const: T,
        neg_exp: T
    } | s,
    x | {
        let term = |c: T, v: T| if c == T::zero() { T::zero() } else { c * v };
        let y = if x > T::zero() {
            term(s.pos_slope, x) + s.pos_const
        } else {
            term(s.neg_slope, x) + s.neg_const + term(s.neg_exp, x.fast_exp())
        };
        if x.is_nan() { x } else { y }
    }
);
scalar_fn!(
    SignFn {} | s,
    x | {
        if x > T::zero() {
            T::one()
        } else if x < T::zero() {
            -T::one()
        } else if x.is_nan() {
            x
        } else {
            T::zero()
        }
    }
);

fn run<T: Float, F: Scalar<T>>(f: F, x: &[T], g: Option<&[T]>) -> Vec<T> {
    apply(&f, x, g)
}

fn piecewise<T: Float>(pos: (f64, f64), neg: (f64, f64, f64)) -> PiecewiseFn<T> {
    make!(PiecewiseFn {
        pos_slope: T::of(pos.0),
        pos_const: T::of(pos.1),
        neg_slope: T::of(neg.0),
        neg_const: T::of(neg.1),
        neg_exp: T::of(neg.2)
    })
}

/// Evaluates the k-th derivative of `f` at every element of `x`, times `g` when given.
pub(crate) fn eval<T: Float>(f: Smooth, k: usize, x: &[T], g: Option<&[T]>) -> Vec<T> {
    match f {
        Smooth::Log if k == 0 => run(make!(LnFn {}), x, g),
        Smooth::Log1p if k == 0 => run(make!(Ln1pFn {}), x, g),
        Smooth::Log | Smooth::Log1p => {
            // d^k ln(x + shift) = (-1)^(k-1) (k-1)! (x + shift)^-k
            let shift = if f == Smooth::Log1p {
                T::one()
            } else {
                T::zero()
            };
            let (c, q) = pow_derivative(-1.0, k - 1);
            run(
                make!(PowIntFn {
                    c: T::of(c),
                    q: q as i32,
                    shift: shift
                }),
                x,
                g,
            )
        }
        Smooth::Pow(p) => {
            let (c, q) = pow_derivative(p, k);
            if c == 0.0 {
                run(make!(ZeroFn {}), x, g)
            } else if q.fract() == 0.0 {
                run(
                    make!(PowIntFn {
                        c: T::of(c),
                        q: q as i32,
                        shift: T::zero()
                    }),
                    x,
                    g,
                )
            } else {
                run(
                    make!(PowRealFn {
                        c: T::of(c),
                        q: T::of(q)
                    }),
                    x,
                    g,
                )
            }
        }
        Smooth::Softplus if k == 0 => run(make!(SoftplusFn {}), x, g),
        Smooth::Exp | Smooth::Sigmoid | Smooth::Tanh | Smooth::Softplus | Smooth::Silu => {
            let s = basis::basis(f, x).expect("these functions have a basis");
            basis::eval(f, k, x, &s, g).expect("every derivative but softplus itself")
        }
        Smooth::Elu(a) => match k {
            0 => run(piecewise((1.0, 0.0), (0.0, -a, a)), x, g),
            1 => run(piecewise((0.0, 1.0), (0.0, 0.0, a)), x, g),
            _ => run(piecewise((0.0, 0.0), (0.0, 0.0, a)), x, g),
        },
        Smooth::Abs => match k {
            0 => run(piecewise((1.0, 0.0), (-1.0, 0.0, 0.0)), x, g),
            1 => run(make!(SignFn {}), x, g),
            _ => run(make!(ZeroFn {}), x, g),
        },
        Smooth::Relu => match k {
            0 => run(piecewise((1.0, 0.0), (0.0, 0.0, 0.0)), x, g),
            1 => run(piecewise((0.0, 1.0), (0.0, 0.0, 0.0)), x, g),
            _ => run(make!(ZeroFn {}), x, g),
        },
        Smooth::LeakyRelu(a) => match k {
            0 => run(piecewise((1.0, 0.0), (a, 0.0, 0.0)), x, g),
            1 => run(piecewise((0.0, 1.0), (0.0, a, 0.0)), x, g),
            _ => run(make!(ZeroFn {}), x, g),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn piecewise_functions_take_their_limits_at_infinity() {
        let x = [f64::NEG_INFINITY, f64::INFINITY];
        assert_eq!(eval(Smooth::Relu, 0, &x, None), vec![0.0, f64::INFINITY]);
        assert_eq!(eval(Smooth::Relu, 1, &x, None), vec![0.0, 1.0]);
        assert_eq!(eval(Smooth::LeakyRelu(0.1), 1, &x, None), vec![0.1, 1.0]);
        assert_eq!(
            eval(Smooth::Elu(1.0), 0, &x, None),
            vec![-1.0, f64::INFINITY]
        );
        assert_eq!(eval(Smooth::Elu(1.0), 1, &x, None), vec![0.0, 1.0]);
        for f in [
            Smooth::Relu,
            Smooth::LeakyRelu(0.1),
            Smooth::Elu(1.0),
            Smooth::Abs,
        ] {
            for k in 0..3 {
                assert!(
                    eval(f, k, &[f64::NAN], None)[0].is_nan(),
                    "{f:?} order {k} hides NaN"
                );
            }
        }
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
            for k in 0..9 {
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
