//! Derivatives evaluated from a cached basis: the derivatives of sigmoid, softplus and SiLU are
//! polynomials in s = sigmoid(x), those of tanh polynomials in tanh(x), those of exp are exp(x).
//! An activation computes its basis once in the forward pass; every derivative that its
//! backward passes need (three or four per layer when score matching differentiates a gradient)
//! is then a short polynomial, with no `exp` and no division.

use super::elementwise::{Scalar, Scalar2, apply, apply_basis};
use super::smooth::{Smooth, sigmoid, tanh};
use crate::Float;

/// f' in terms of f, for the logistic sigmoid (s - s^2) and tanh (1 - t^2).
const SIGMOID: [f64; 3] = [0.0, 1.0, -1.0];
const TANH: [f64; 3] = [1.0, 0.0, -1.0];

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
fn horner<T: Float, const N: usize>(c: &[T; N], x: T) -> T {
    // Fused multiply-adds: the kernels that inline this are compiled for FMA.
    let mut acc = c[N - 1];
    for i in (0..N - 1).rev() {
        acc = acc.mul_add(x, c[i]);
    }
    acc
}

fn horner_slice<T: Float>(c: &[T], x: T) -> T {
    c.iter().rev().fold(T::zero(), |acc, &ci| acc * x + ci)
}

/// The coefficients as a fixed-size array, when the degree allows.
fn fixed<T: Float, const N: usize>(coefficients: &[f64]) -> Option<[T; N]> {
    (coefficients.len() <= N).then(|| {
        let mut c = [T::zero(); N];
        for (ci, &v) in c.iter_mut().zip(coefficients) {
            *ci = T::of(v);
        }
        c
    })
}

fn long<T: Float>(coefficients: &[f64]) -> Vec<T> {
    coefficients.iter().map(|&v| T::of(v)).collect()
}

/// Runs `$body` with `$n` bound to a constant array size of at least `$len` (at most FIXED),
/// so that short polynomials are evaluated without padding.
macro_rules! with_size {
    ($len:expr, $n:ident => $body:expr) => {
        match $len {
            0..=2 => {
                const $n: usize = 2;
                $body
            }
            3 => {
                const $n: usize = 3;
                $body
            }
            4 => {
                const $n: usize = 4;
                $body
            }
            5 | 6 => {
                const $n: usize = 6;
                $body
            }
            _ => {
                const $n: usize = FIXED;
                $body
            }
        }
    };
}

/// The basis of `f` at every element of `x`, for the functions that have one.
pub(crate) fn basis<T: Float>(f: Smooth, x: &[T]) -> Option<Vec<T>> {
    match f {
        Smooth::Sigmoid | Smooth::Softplus | Smooth::Silu => {
            Some(super::sigmoid::sigmoid_f32(x).unwrap_or_else(|| apply(&Base::Sigmoid, x, None)))
        }
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
        x.mul_add(horner(&self.p, s), self.k * horner(&self.q, s))
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
    fn sigmoid_polynomials_match_known_derivatives() {
        // s' = s - s^2, s'' = s - 3 s^2 + 2 s^3
        assert_eq!(chain_poly(1, [0.0, 1.0, -1.0]), vec![0.0, 1.0, -1.0]);
        assert_eq!(chain_poly(2, [0.0, 1.0, -1.0]), vec![0.0, 1.0, -3.0, 2.0]);
        // tanh'' = -2 t + 2 t^3
        assert_eq!(chain_poly(2, [1.0, 0.0, -1.0]), vec![0.0, -2.0, 0.0, 2.0]);
    }

    /// g times the k-th derivative of f, from the basis evaluated point by point in f64.
    fn reference(f: Smooth, k: usize, x: &[f64], g: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(g)
            .map(|(&v, &gi)| {
                let s = match f {
                    Smooth::Tanh => v.tanh(),
                    Smooth::Exp => v.exp(),
                    _ => 1.0 / (1.0 + (-v).exp()),
                };
                let sig = |k| horner_slice(&chain_poly(k, SIGMOID), s);
                gi * match f {
                    Smooth::Exp => s,
                    Smooth::Tanh => horner_slice(&chain_poly(k, TANH), s),
                    Smooth::Sigmoid => sig(k),
                    Smooth::Softplus => sig(k - 1),
                    _ if k == 0 => v * s,
                    _ => v * sig(k) + k as f64 * sig(k - 1),
                }
            })
            .collect()
    }

    #[test]
    fn basis_derivatives_equal_pointwise_formulas() {
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
                let direct = reference(f, k, &x, &g);
                // The kernel's basis and std's differ by an ulp or so (1e-16), which the
                // polynomials' coefficients (up to about 1e4 at order 8) amplify.
                for (a, b) in cached.iter().zip(&direct) {
                    assert!(
                        (a - b).abs() <= 1e-10 * (1.0 + b.abs()),
                        "{f:?} order {k}: {a} vs {b}"
                    );
                }
            }
        }
    }
}
