//! Random tensors from an explicit generator (so that runs are reproducible from a seed).

use crate::{Float, Shape, Tensor};
use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};

impl<T: Float> Tensor<T> {
    /// Standard normal entries.
    pub fn randn<R: Rng + ?Sized>(shape: impl Into<Shape>, rng: &mut R) -> Tensor<T> {
        let shape = shape.into();
        let data = (0..shape.numel())
            .map(|_| {
                T::of(<StandardNormal as Distribution<f64>>::sample(
                    &StandardNormal,
                    rng,
                ))
            })
            .collect();
        Tensor::from_vec(data, shape)
    }

    /// Entries uniform in `[low, high)`.
    ///
    /// # Panics
    /// When `low >= high` or either is not finite.
    #[track_caller]
    pub fn rand_uniform<R: Rng + ?Sized>(
        shape: impl Into<Shape>,
        low: f64,
        high: f64,
        rng: &mut R,
    ) -> Tensor<T> {
        assert!(
            low < high && low.is_finite() && high.is_finite(),
            "rand_uniform: need finite low < high, got [{low}, {high})"
        );
        let shape = shape.into();
        let data = (0..shape.numel())
            .map(|_| T::of(rng.random_range(low..high)))
            .collect();
        Tensor::from_vec(data, shape)
    }

    /// Entries +1 or -1 with equal probability (Rademacher), as used by Hutchinson trace
    /// estimates and sliced score matching.
    pub fn rademacher<R: Rng + ?Sized>(shape: impl Into<Shape>, rng: &mut R) -> Tensor<T> {
        let shape = shape.into();
        let data = (0..shape.numel())
            .map(|_| {
                if rng.random::<bool>() {
                    T::one()
                } else {
                    -T::one()
                }
            })
            .collect();
        Tensor::from_vec(data, shape)
    }
}
