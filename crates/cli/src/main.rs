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

fn main() -> std::process::ExitCode {
    cli::main()
}
