//! Derivatives evaluated from a cached basis: the derivatives of sigmoid, softplus and SiLU are
//! polynomials in s = sigmoid(x), those of tanh polynomials in tanh(x), those of exp are exp(x).
//! An activation computes its basis once in the forward pass; every derivative that its
//! backward passes need (three or four per layer when score matching differentiates a gradient)
//! is then a short polynomial, with no `exp` and no division.

use super::elementwise::{Scalar, Scalar2, apply, apply_basis};
use super::smooth::{
    FIXED, SIGMOID, Smooth, TANH, chain_poly, fixed, horner, horner_slice, long, sigmoid, tanh,
    with_size,
};
use crate::Float;

/// The basis of `f` at every element of `x`, for the functions that have one.
pub(crate) fn basis<T: Float>(f: Smooth, x: &[T]) -> Option<Vec<T>> {
    match f {
        Smooth::Sigmoid | Smooth::Softplus | Smooth::Silu => Some(apply(&Base::Sigmoid, x, None)),
        Smooth::Tanh => Some(apply(&Base::Tanh, x, None)),
        Smooth::Exp => Some(apply(&Base::Exp, x, None)),
        _ => None,
    }
}

/// The function a basis holds.
enum Base {
    Sigmoid,
    Tanh,
    Exp,
}

impl<T: Float> Scalar<T> for Base {
    #[inline(always)]
    fn at(&self, x: T) -> T {
        match self {
            Base::Sigmoid => sigmoid(x),
            Base::Tanh => tanh(x),
            Base::Exp => x.fast_exp(),
        }
    }
}

/// The k-th derivative of `f` (times `g` when given) from the basis `s` of `f` at `x`, or `None`
/// when this derivative is not a function of the basis (softplus itself).
pub(crate) fn eval<T: Float>(
    f: Smooth,
    k: usize,
    x: &[T],
    s: &[T],
    g: Option<&[T]>,
) -> Option<Vec<T>> {
    let out = match f {
        Smooth::Exp => apply_basis(&BasisOnly, x, s, g),
        Smooth::Sigmoid => poly(&chain_poly(k, SIGMOID), x, s, g),
        Smooth::Tanh => poly(&chain_poly(k, TANH), x, s, g),
        Smooth::Softplus if k == 0 => return None,
        Smooth::Softplus => poly(&chain_poly(k - 1, SIGMOID), x, s, g),
        Smooth::Silu if k == 0 => apply_basis(&TimesBasis, x, s, g),
        Smooth::Silu => {
            // d^k (x s) = x s^(k) + k s^(k-1), both polynomials in s
            let (p, q, kt) = (
                chain_poly(k, SIGMOID),
                chain_poly(k - 1, SIGMOID),
                T::of(k as f64),
            );
            if p.len() > FIXED {
                let f = SiluLong {
                    p: long(&p),
                    q: long(&q),
                    k: kt,
                };
                apply_basis(&f, x, s, g)
            } else {
                with_size!(p.len(), N => {
                    let f = Silu::<T, N> { p: fixed(&p).unwrap(), q: fixed(&q).unwrap(), k: kt };
                    apply_basis(&f, x, s, g)
                })
            }
        }
        _ => return None,
    };
    Some(out)
}

fn poly<T: Float>(c: &[f64], x: &[T], s: &[T], g: Option<&[T]>) -> Vec<T> {
    if c.len() > FIXED {
        return apply_basis(&PolyLong { p: long(c) }, x, s, g);
    }
    with_size!(c.len(), N => apply_basis(&Poly::<T, N> { p: fixed(c).unwrap() }, x, s, g))
}

/// s.
struct BasisOnly;

impl<T: Float> Scalar2<T> for BasisOnly {
    #[inline(always)]
    fn at(&self, _x: T, s: T) -> T {
        s
    }
}

/// x s.
struct TimesBasis;

impl<T: Float> Scalar2<T> for TimesBasis {
    #[inline(always)]
    fn at(&self, x: T, s: T) -> T {
        x * s
    }
}

/// p(s).
struct Poly<T, const N: usize> {
    p: [T; N],
}

impl<T: Float, const N: usize> Scalar2<T> for Poly<T, N> {
    #[inline(always)]
    fn at(&self, _x: T, s: T) -> T {
        horner(&self.p, s)
    }
}

struct PolyLong<T> {
    p: Vec<T>,
}

impl<T: Float> Scalar2<T> for PolyLong<T> {
    #[inline(always)]
    fn at(&self, _x: T, s: T) -> T {
        horner_slice(&self.p, s)
    }
}

/// x p(s) + k q(s).
struct Silu<T, const N: usize> {
    p: [T; N],
    q: [T; N],
    k: T,
}

impl<T: Float, const N: usize> Scalar2<T> for Silu<T, N> {
    #[inline(always)]
    fn at(&self, x: T, s: T) -> T {
        x * horner(&self.p, s) + self.k * horner(&self.q, s)
    }
}

struct SiluLong<T> {
    p: Vec<T>,
    q: Vec<T>,
    k: T,
}

impl<T: Float> Scalar2<T> for SiluLong<T> {
    #[inline(always)]
    fn at(&self, x: T, s: T) -> T {
        x * horner_slice(&self.p, s) + self.k * horner_slice(&self.q, s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basis_derivatives_equal_direct_ones() {
        let x: Vec<f64> = (0..40).map(|i| -4.0 + 0.21 * i as f64).collect();
        let g: Vec<f64> = (0..40).map(|i| (0.3 * i as f64).cos()).collect();
        for f in [
            Smooth::Exp,
            Smooth::Sigmoid,
            Smooth::Tanh,
            Smooth::Softplus,
            Smooth::Silu,
        ] {
            let s = basis(f, &x).unwrap();
            for k in 0..9 {
                let Some(cached) = eval(f, k, &x, &s, Some(&g)) else {
                    assert!(f == Smooth::Softplus && k == 0);
                    continue;
                };
                let direct = super::super::smooth::eval(f, k, &x, Some(&g));
                for (a, b) in cached.iter().zip(&direct) {
                    assert!(
                        (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
                        "{f:?} order {k}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
