//! The `ebm` command. Parsing lives in `cli`, each subcommand in its own module.

mod bench;
mod checkpoint;
mod cli;
mod compare;
mod energy_cmd;
mod eval;
mod points;
pub mod report;
mod sample;
mod train;

/// Batched steps allocate and free buffers of hundreds of kilobytes many times a second;
/// glibc's allocator hands those back to the kernel each time (a page fault per page on reuse),
/// which cost about 40% of the time of `ebm bench langevin-sample`.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its index in `mi_option_t`,
/// 15 in both the mimalloc 2 and 3 sources that libmimalloc-sys 0.1.49 vendors; the crate
/// exports no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> std::process::ExitCode {
    // Never hand freed memory back to the kernel (purge delay -1): a training step frees and
    // reallocates the same large buffers (the im2col columns of `dsm-conv` are megabytes), and
    // with mimalloc's default delay the kernel zeroed those pages again, step after step: 7%
    // of the CPU time of `ebm bench dsm-conv` (23,000-35,000 page faults in 43 steps; 460
    // without, most of them loading the data). The process keeps its peak working set instead,
    // which a steady training loop reuses.
    // SAFETY: set before any other thread exists, as mi_option_set requires.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1) };
    cli::main()
}
