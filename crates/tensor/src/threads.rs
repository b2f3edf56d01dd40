//! Running work on a pool of a chosen size.

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
