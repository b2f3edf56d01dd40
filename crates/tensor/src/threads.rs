//! Running work on a pool of a chosen size, or on the calling thread alone.

use std::cell::Cell;

thread_local! {
    /// Whether kernels on this thread must not split their work (see [`sequential`]).
    static SEQUENTIAL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with every kernel on this thread working alone, without splitting its work across
/// threads.
///
/// For callers that already run independent pieces of work in parallel (shards of a batch, one
/// per thread): splitting each operation of a shard again only adds task hand-offs, and data
/// that moves to the other core's cache. Results are the same either way (kernels split their
/// work in fixed-size chunks).
///
/// # Example
/// ```
/// let x = ebm_tensor::Tensor::<f32>::ones([100_000]);
/// let total = ebm_tensor::sequential(|| x.sum().item());
/// assert_eq!(total, 100_000.0);
/// ```
pub fn sequential<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the previous setting, also when `f` panics.
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            SEQUENTIAL.set(self.0);
        }
    }
    let _restore = Restore(SEQUENTIAL.replace(true));
    f()
}

/// Whether kernels may split their work across threads here.
#[inline]
pub(crate) fn may_split() -> bool {
    !SEQUENTIAL.get()
}

/// Runs `f` on a new rayon pool of `threads` threads (0: one per CPU), from inside the pool.
///
/// Parallel kernels called from a pool thread split their work with the caller; called from a
/// thread outside any pool, they hand the work to rayon's global pool and block until it is
/// done, which costs a thread wake-up per operation. Wrap a training loop or a benchmark in
/// this function.
///
/// # Panics
/// When the operating system refuses to start the threads.
///
/// # Example
/// ```
/// let total = ebm_tensor::with_threads(2, || ebm_tensor::Tensor::<f32>::ones([4]).sum().item());
/// assert_eq!(total, 4.0);
/// ```
pub fn with_threads<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap_or_else(|e| panic!("could not start a pool of {threads} threads: {e}"))
        .install(f)
}
