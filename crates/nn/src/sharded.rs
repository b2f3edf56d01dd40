//! Data-parallel gradients: a batch split into shards, each differentiated on its own thread.
//!
//! On a few cores, a small network's step is a chain of small operations, and splitting each
//! of them across threads costs a thread wake-up per operation. Splitting the *batch* instead
//! costs one fork and one join per step: every shard runs its forward and backward passes on
//! one thread (its kernels do not split their work again, see `ebm_tensor::sequential`), and
//! the shard gradients are summed. For a loss that is a mean over samples
//! this gives the same gradient, up to the order of floating-point additions.

use crate::{NnError, ParamGrads, ParamStore};
use ebm_tensor::{Float, Tensor, TensorError};
use rayon::prelude::*;
use std::ops::Range;

/// The loss and parameter gradients of a per-sample mean, computed shard by shard in parallel.
///
/// `loss(range)` must return the mean loss over the samples in `range` (a scalar tensor).
/// The result is sum_s (|s| / n) loss_s and the same weighted sum of the shards' gradients:
/// exactly the mean over all n samples.
///
/// Shards are `shard_size` samples long (the last one may be shorter) whatever the number of
/// threads, and their results are added in shard order, so the result does not depend on the
/// number of threads. Draw the step's randomness for the whole batch before calling, and slice
/// it in `loss`, so that sharding does not change what is computed.
///
/// # Errors
/// The first error returned by `loss`, or a loss that is not a scalar.
///
/// # Panics
/// When `n` or `shard_size` is zero.
pub fn sharded_backward<T: Float, F>(
    store: &ParamStore<T>,
    n: usize,
    shard_size: usize,
    loss: F,
) -> Result<(f64, ParamGrads<T>), NnError>
where
    F: Fn(Range<usize>) -> Result<Tensor<T>, TensorError> + Sync,
{
    assert!(
        n > 0 && shard_size > 0,
        "sharded_backward: need n > 0 and shard_size > 0"
    );
    let ranges: Vec<Range<usize>> = (0..n)
        .step_by(shard_size)
        .map(|s| s..(s + shard_size).min(n))
        .collect();
    let shards: Vec<Result<(f64, ParamGrads<T>), NnError>> = ranges
        .par_iter()
        .map(|range| {
            // Each shard on its thread alone: the shards already keep the threads busy.
            ebm_tensor::sequential(|| {
                let value = loss(range.clone())?;
                let grads = store.backward(&value)?;
                Ok((value.item(), grads))
            })
        })
        .collect();

    // Weighted sums, in shard order.
    let mut total = 0.0;
    let mut sums: Vec<Option<Vec<T>>> = vec![None; store.len()];
    let mut names = Vec::new();
    for (range, shard) in ranges.iter().zip(shards) {
        let (value, grads) = shard?;
        let weight = range.len() as f64 / n as f64;
        total += weight * value;
        let w = T::of(weight);
        for (sum, (_, g)) in sums.iter_mut().zip(grads.iter()) {
            let Some(g) = g else { continue };
            let sum = sum.get_or_insert_with(|| vec![T::zero(); g.numel()]);
            for (s, &v) in sum.iter_mut().zip(g.data()) {
                *s = *s + w * v;
            }
        }
        if names.is_empty() {
            names = grads.names;
        }
    }
    let grads = store
        .iter()
        .zip(sums)
        .map(|((_, p), sum)| sum.map(|s| Tensor::from_vec(s, p.shape().clone())))
        .collect();
    Ok((total, ParamGrads { names, grads }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Activation, Mlp, Module};
    use rand::SeedableRng;

    #[test]
    fn sharded_gradients_equal_whole_batch_gradients() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(5);
        let mut store = ParamStore::<f64>::new();
        let mlp = Mlp::new(&mut store, "e", &[2, 16, 16, 1], Activation::Silu, &mut rng).unwrap();
        let x = Tensor::<f64>::randn([37, 2], &mut rng);
        let loss = |r: Range<usize>| {
            let xs = x.narrow(0, r.start, r.len());
            Ok(mlp.forward(&store, &xs).square().mean())
        };

        let (whole_value, whole) = sharded_backward(&store, 37, 37, loss).unwrap();
        let (value, sharded) = sharded_backward(&store, 37, 8, loss).unwrap();

        // Same sums in another order: f64 rounding, about 1e-16 relative per addition.
        assert!((value - whole_value).abs() < 1e-12 * whole_value.abs());
        for ((name, a), (_, b)) in sharded.iter().zip(whole.iter()) {
            for (u, v) in a.unwrap().data().iter().zip(b.unwrap().data()) {
                assert!(
                    (u - v).abs() < 1e-12 * (1.0 + v.abs()),
                    "{name}: {u} vs {v}"
                );
            }
        }
    }
}
