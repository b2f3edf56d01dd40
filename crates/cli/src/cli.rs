//! Command-line flags and dispatch to the subcommands.

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Energy-based models: train, sample, evaluate, benchmark.
#[derive(Parser, Debug)]
#[command(name = "ebm", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Time one of the benchmark workloads (see shared BENCH.md), like the JAX/PyTorch peers.
    Bench(crate::bench::BenchArgs),
    /// Train an energy-based model (by default DSM on 8gaussians, about a minute).
    Train(Box<crate::train::TrainArgs>),
    /// Draw samples from a checkpoint's energy by MCMC; write .csv, .npy or a .png grid.
    Sample(crate::sample::SampleArgs),
    /// Evaluate a checkpoint on data: NLL (exact for d <= 2, AIS bounds), MMD to the data.
    Eval(crate::eval::EvalArgs),
    /// Train several methods on the same data and budget; compare NLL, MMD, speed, densities.
    Compare(crate::compare::CompareArgs),
    /// Print the energies (and scores) of the points in a file, as CSV.
    Energy(crate::energy_cmd::EnergyArgs),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Bench(args) => crate::bench::run(args),
        Command::Train(args) => crate::train::run(*args),
        Command::Sample(args) => crate::sample::run(args),
        Command::Eval(args) => crate::eval::run(args),
        Command::Energy(args) => crate::energy_cmd::run(args),
        Command::Compare(args) => crate::compare::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.is::<crate::train::Interrupted>() => {
            eprintln!("{e}");
            ExitCode::from(130)
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
