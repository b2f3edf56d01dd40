//! The element types a tensor can hold: `f32` for speed, `f64` for checking.

use std::fmt::{Debug, Display};
use std::iter::Sum;

/// Names of the element types, as written in safetensors files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    /// 32-bit IEEE float.
    F32,
    /// 64-bit IEEE float.
    F64,
}

impl DType {
    /// The short name (`"f32"` or `"f64"`).
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "f32",
            DType::F64 => "f64",
        }
    }
}

/// A floating-point element type: implemented for `f32` and `f64` only.
///
/// The kernels are written once over this trait; where a type needs its own code (the
/// vectorisable `exp` of `f32`) it lives in the trait's methods.
pub trait Float:
    num_traits::Float + num_traits::FloatConst + Default + Debug + Display + Sum + Send + Sync + 'static
{
    /// The element type's name.
    const DTYPE: DType;

    /// Converts from `f64`, rounding to nearest.
    fn of(x: f64) -> Self;

    /// Converts to `f64` exactly.
    fn f64(self) -> f64;

    /// `e^x`, by a branch-free polynomial for `f32` (so that loops vectorise; within 2 ulp of the
    /// correctly rounded value on its whole range) and by the standard library for `f64`.
    fn fast_exp(self) -> Self;

    /// `1 / x` for `x >= 1` (or +inf, or NaN): by Newton's iteration from a first guess read off
    /// the bits for `f32` (no division, so that loops stay fast: a 512-bit division costs more
    /// than the rest of a sigmoid; within 2 ulp), by division for `f64`.
    fn recip_at_least_one(self) -> Self;
}

impl Float for f32 {
    const DTYPE: DType = DType::F32;

    #[inline(always)]
    fn of(x: f64) -> Self {
        x as f32
    }

    #[inline(always)]
    fn f64(self) -> f64 {
        self as f64
    }

    #[inline(always)]
    fn fast_exp(self) -> Self {
        exp_f32(self)
    }

    #[inline(always)]
    fn recip_at_least_one(self) -> Self {
        recip_f32(self)
    }
}

impl Float for f64 {
    const DTYPE: DType = DType::F64;

    #[inline(always)]
    fn of(x: f64) -> Self {
        x
    }

    #[inline(always)]
    fn f64(self) -> f64 {
        self
    }

    #[inline(always)]
    fn fast_exp(self) -> Self {
        self.exp()
    }

    #[inline(always)]
    fn recip_at_least_one(self) -> Self {
        1.0 / self
    }
}

/// `e^x` for `f32` without branches or calls, so that LLVM vectorises the loops that use it.
///
/// Range reduction x = n ln 2 + r with |r| <= ln 2 / 2 (ln 2 split in two parts so that r is
/// exact), then a minimax polynomial for e^r and a scale by 2^n built from the exponent bits.
/// Inputs are clamped to [-87.3, 88.7] (results below 2^-126 flush towards zero, above
/// f32::MAX give infinity); NaN stays NaN.
#[inline(always)]
pub(crate) fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    // ln 2 = C1 + C2 with C1 short enough that n * C1 is exact for |n| <= 128.
    const C1: f32 = 0.693_359_4;
    const C2: f32 = -2.121_944_4e-4;
    let clamped = x.clamp(-87.33654, 88.72284);
    // Round to nearest by adding and removing 1.5 * 2^23 (no libm call, so loops vectorise).
    const SHIFTER: f32 = 12_582_912.0;
    // Fused multiply-adds throughout: the kernels that inline this are compiled for FMA (and
    // elsewhere `mul_add` is still correct, through the C library).
    let shifted = clamped.mul_add(LOG2E, SHIFTER);
    let n = shifted - SHIFTER;
    let r = (-n).mul_add(C2, (-n).mul_add(C1, clamped));

    // e^r = 1 + r + r^2 q(r), q a minimax polynomial on |r| <= ln 2 / 2 (Cephes' expf).
    let q: f32 = 1.987_569_1e-4;
    let q = q.mul_add(r, 1.398_199_9e-3);
    let q = q.mul_add(r, 8.333_452e-3);
    let q = q.mul_add(r, 4.166_579_6e-2);
    let q = q.mul_add(r, 1.666_666_5e-1);
    let q = q.mul_add(r, 0.5);
    let p = (q * r).mul_add(r, r) + 1.0;

    // 2^n for n in [-126, 128]: n = 128 only when x is near the top, so split it in two halves.
    // The integer n sits in the low bits of `shifted` (|n| < 2^22): reading it from the bits
    // keeps the loop vectorised, where `n as i32` (saturating) is converted lane by lane.
    let ni = shifted.to_bits() as i32 - SHIFTER.to_bits() as i32;
    let half = ni >> 1;
    let s1 = f32::from_bits(((half + 127) as u32) << 23);
    let s2 = f32::from_bits(((ni - half + 127) as u32) << 23);
    let y = p * s1 * s2;
    let y = if x > 88.72284 { f32::INFINITY } else { y };
    let y = if x < -87.33654 { 0.0 } else { y };
    if x.is_nan() { x } else { y }
}

/// `1 / d` for `f32` `d >= 1`, +inf or NaN, without a division.
///
/// The first guess subtracts the bits of d from a constant, which negates the exponent and gives
/// a relative error below 0.051 for any mantissa; each Newton step r' = r (2 - d r) squares the
/// relative error (0.051, 2.6e-3, 6.8e-6, 4.6e-11), so three steps leave only rounding.
///
/// The guess needs a normal reciprocal: for d >= 2^126 (where 1 / d <= 2^-126 would be
/// subnormal, and the subtraction wraps to a negative number) the result is 0, within 1.2e-38
/// of the exact value. The sigmoid meets such d at x in (-88.7, -87.3), where e^-x is finite.
#[inline(always)]
pub(crate) fn recip_f32(d: f32) -> f32 {
    let r = f32::from_bits(0x7EF3_11C7_u32.wrapping_sub(d.to_bits()));
    // Each step as r + r (1 - d r), whose small correction rounds well (1/1 is exactly 1).
    let step = |r: f32| r.mul_add((-d).mul_add(r, 1.0), r);
    let r = step(step(step(r)));
    // 2^126: from here on (infinity included) the reciprocal is below the normal range.
    const SUBNORMAL_RECIP: f32 = 8.507_059e37;
    if d >= SUBNORMAL_RECIP { 0.0 } else { r }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fast_exp_f32_is_within_two_ulp_of_f64_exp() {
        let mut worst = 0.0f64;
        let mut x = -87.0f32;
        while x < 88.5 {
            let exact = (x as f64).exp();
            let got = exp_f32(x) as f64;
            let ulp = (exact as f32).to_bits();
            let ulp = (f32::from_bits(ulp + 1) - exact as f32) as f64;
            worst = worst.max((got - exact).abs() / ulp);
            x += 0.000_731;
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
    }

    #[test]
    fn recip_f32_is_within_two_ulp_for_inputs_of_at_least_one() {
        let mut worst = 0.0f64;
        let mut d = 1.0f32;
        while d < 8.5e37 {
            let exact = 1.0 / d as f64;
            let got = recip_f32(d) as f64;
            let below = exact as f32;
            let ulp = (f32::from_bits(below.to_bits() + 1) - below) as f64;
            worst = worst.max((got - exact).abs() / ulp);
            d *= 1.000_173;
        }
        assert!(worst <= 2.0, "worst error {worst} ulp");
        assert_eq!(recip_f32(1.0), 1.0);
        assert_eq!(recip_f32(f32::INFINITY), 0.0);
        // Where the exact reciprocal is subnormal, 0 (within 1.2e-38), never a negative value
        // from the wrapped bit trick: every d from 2^126 to f32::MAX.
        let mut d = 8.507_059e37f32;
        while d.is_finite() {
            let r = recip_f32(d);
            assert!((0.0..1.2e-38).contains(&r), "recip_f32({d:e}) = {r:e}");
            d = f32::from_bits(d.to_bits() + 997);
        }
        assert!(recip_f32(f32::NAN).is_nan());
    }

    #[test]
    fn fast_exp_f32_edges() {
        assert!(exp_f32(f32::NAN).is_nan());
        assert_eq!(exp_f32(100.0), f32::INFINITY);
        assert_eq!(exp_f32(-100.0), 0.0);
        assert_eq!(exp_f32(0.0), 1.0);
    }
}
