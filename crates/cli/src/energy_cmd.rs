//! `ebm energy`: the energies (and scores) of the points in a file, as CSV on stdout.

use crate::checkpoint::{self, Dtype};
use crate::points::read_points;
use anyhow::Result;
use ebm::sampler::evaluate;
use ebm_tensor::Float;
use std::io::Write;
use std::path::PathBuf;

/// Flags of `ebm energy`.
#[derive(clap::Args, Debug)]
pub struct EnergyArgs {
    /// The checkpoint (safetensors written by `ebm train` or `save_energy`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// The points: .csv (one per line) or .npy.
    #[arg(long)]
    input: PathBuf,
    /// Also print the score s = -grad_x E, one column per coordinate.
    #[arg(long)]
    score: bool,
    /// The noise level at which a noise-conditional checkpoint is evaluated.
    #[arg(long, default_value_t = 0.01)]
    sigma: f64,
}

pub fn run(args: EnergyArgs) -> Result<()> {
    let csv = match checkpoint::dtype(&args.checkpoint)? {
        Dtype::F32 => table::<f32>(&args),
        Dtype::F64 => table::<f64>(&args),
    }?;
    std::io::stdout().lock().write_all(csv.as_bytes())?;
    Ok(())
}

/// The whole CSV, built before anything is printed (no partial output on error).
fn table<T: Float>(args: &EnergyArgs) -> Result<String> {
    let loaded = checkpoint::load::<T>(&args.checkpoint)?;
    let points = read_points(&args.input)?;
    let x = loaded.batch(&points, &args.input.display().to_string())?;
    let energy = loaded.energy(args.sigma);
    let (e, g) = evaluate(&*energy, &x)?;
    let (e, g) = (e.to_f64s(), g.to_f64s());
    let d = loaded.dim();

    let mut out = String::from("energy");
    if args.score {
        (0..d).for_each(|j| out.push_str(&format!(",score_{j}")));
    }
    out.push('\n');
    for (i, ei) in e.iter().enumerate() {
        out.push_str(&ei.to_string());
        if args.score {
            g[i * d..(i + 1) * d]
                .iter()
                .for_each(|v| out.push_str(&format!(",{}", -v)));
        }
        out.push('\n');
    }
    Ok(out)
}
