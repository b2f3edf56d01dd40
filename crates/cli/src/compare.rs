//! `ebm compare`: trains several methods with their registry defaults on the same data, with
//! the same budget and seed, through the machinery of `ebm train` (each method gets its own
//! run directory, report included), then scores each model on held-out data:
//!
//! * NLL: the exact mean negative log-likelihood, mean E(x) + log Z, with log Z by midpoint
//!   quadrature (`ebm::eval::nll_quadrature`) over [-R, R]^2, R = max(6, 1.5 max |x|), 400
//!   points per axis (data on the plane only);
//! * MMD^2: the unbiased estimate with an RBF kernel of median bandwidth
//!   (`ebm::eval::mmd_squared`) between the model's samples (those of the report: 500 chains
//!   of the method's sampler) and 1000 held-out points (data on the plane only).
//!
//! Held out: a built-in set is drawn afresh from a stream no training step uses; a data file
//! is used whole for training, so its "held-out" points are a sample of the training file.
//!
//! Writes `compare.csv` (method, NLL, MMD^2, wall seconds, steps per second, status),
//! `compare.md` (the same as a table) and `compare.png` (one density panel per method).

use crate::report::density::{Square, density_grid};
use crate::report::figures::{density_panels, density_rgb, short};
use crate::train::{Finished, Interrupted, Session, Setup, TrainConfig, ctrl_c_flag, train_in};
use anyhow::{Context, Result, bail};
use ebm::eval::{MmdBandwidth, QuadratureGrid, mmd_squared, nll_quadrature};
use ebm::objective::{METHODS, MethodSpec, method_info};
use ebm::train::step_rng;
use ebm_tensor::Tensor;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Held-out points for the NLL and the MMD.
const HELD_OUT: usize = 1000;
/// Quadrature points per axis.
const GRID_POINTS: usize = 400;
/// Panels per row of compare.png.
const COLUMNS: usize = 4;
/// The random stream of the held-out points (no training step, nor the report's, uses it).
const STREAM: u64 = u64::MAX - 1;

/// Flags of `ebm compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// The data: a built-in 2-D set or a data file (as `ebm train --data`).
    #[arg(long, default_value = "8gaussians")]
    pub data: String,
    /// The methods, comma-separated (`dsm,nce,fce`), or `all`.
    #[arg(long, default_value = "all")]
    pub methods: String,
    /// Training steps of each method.
    #[arg(long, default_value_t = 10_000)]
    pub steps: u64,
    /// Data points per step.
    #[arg(long, default_value_t = 256)]
    pub batch_size: usize,
    /// The seed of every run (the same for all methods).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Compute threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// The output directory (default: runs/compare-<data>-<seed>), one run directory per
    /// method inside it.
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
}

/// One method's line of the comparison.
struct Row {
    method: String,
    nll: Option<f64>,
    mmd2: Option<f64>,
    wall_s: Option<f64>,
    steps_per_s: Option<f64>,
    status: String,
}

/// Runs `ebm compare`.
///
/// # Errors
/// An unknown method or an output directory that holds a comparison, before anything is
/// trained; Ctrl-C; I/O. A method that fails to train is a row with its error, not an error.
pub fn run(args: CompareArgs) -> Result<()> {
    let methods = method_names(&args.methods)?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("runs").join(format!("compare-{}-{}", args.data, args.seed)));
    if out.join("compare.csv").exists() {
        bail!(
            "{} already holds a comparison; choose another --out",
            out.display()
        );
    }
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let interrupted = ctrl_c_flag()?;
    ebm_tensor::with_threads(args.threads.max(1), || {
        let mut rows = Vec::new();
        let mut panels = Vec::new();
        for name in &methods {
            let config = TrainConfig {
                data: crate::train::DataConfig::named(&args.data),
                steps: args.steps,
                batch_size: args.batch_size,
                seed: args.seed,
                threads: args.threads,
                log_every: (args.steps / 200).max(1),
                checkpoint_every: args.steps.max(1),
                method: MethodSpec::new(name),
                ..TrainConfig::default()
            };
            match train_in(config, Some(out.join(name)), &interrupted) {
                Ok((setup, finished)) => {
                    let (row, panel) = score(name, &setup, &finished)?;
                    rows.push(row);
                    panels.extend(panel);
                }
                Err(e) if e.is::<Interrupted>() => return Err(e),
                Err(e) => {
                    eprintln!("{name}: not trained: {e:#}");
                    rows.push(Row {
                        method: name.clone(),
                        nll: None,
                        mmd2: None,
                        wall_s: None,
                        steps_per_s: None,
                        status: format!("failed: {e:#}"),
                    });
                }
            }
        }
        write_outputs(&out, &args, &rows, &panels)
    })
}

/// The methods of `--methods`, each checked against the registry.
fn method_names(list: &str) -> Result<Vec<String>> {
    if list.trim() == "all" {
        return Ok(METHODS.iter().map(|m| m.name.to_string()).collect());
    }
    let names: Vec<String> = list
        .split(',')
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        bail!("--methods is empty: name methods separated by commas, or `all`");
    }
    for name in &names {
        method_info(name).context("in --methods")?;
    }
    Ok(names)
}

/// The scores of one trained method, and its density panel (data on the plane).
fn score(name: &str, setup: &Setup, finished: &Finished) -> Result<(Row, Option<Vec<u8>>)> {
    let mut row = Row {
        method: name.to_string(),
        nll: None,
        mmd2: None,
        wall_s: Some(finished.elapsed_s),
        steps_per_s: Some(finished.steps_per_s),
        status: "ok".into(),
    };
    let mut rng = step_rng(setup.config.seed, STREAM);
    let held_out = setup.data.sample(HELD_OUT, &mut rng);
    let n = held_out.dim(0);
    if held_out.numel() != 2 * n {
        row.status = "ok (NLL and MMD only for data on the plane)".into();
        return Ok((row, None));
    }
    let Session::Energy(trainer) = &setup.session else {
        row.status = "ok (noise-conditional: no single density to score)".into();
        return Ok((row, None));
    };
    let model = trainer.model();
    let held_out = held_out.reshape([n, 2]);
    let points: Vec<[f64; 2]> = held_out.to_f64s().chunks(2).map(|p| [p[0], p[1]]).collect();

    // Exact NLL by quadrature.
    let reach = points.iter().flatten().fold(0.0f64, |m, v| m.max(v.abs()));
    let r = (1.5 * reach).max(6.0);
    let grid = QuadratureGrid::square(2, -r, r, GRID_POINTS);
    match nll_quadrature(model, &held_out, &grid) {
        Ok(q) => row.nll = Some(q.nll),
        Err(e) => row.status = format!("NLL: {e}"),
    }

    // MMD^2 of the report's samples to the held-out points.
    let drawn = crate::train::figures::points(setup)?;
    let samples: Vec<[f64; 2]> = match &drawn.samples {
        Some(s) => {
            let y = Tensor::<f64>::from_f64s(&held_out.to_f64s(), [n, 2]);
            match mmd_squared(s, &y, MmdBandwidth::Median) {
                Ok(m) => row.mmd2 = Some(m.mmd2),
                Err(e) => row.status = format!("MMD: {e}"),
            }
            s.to_f64s().chunks(2).map(|p| [p[0], p[1]]).collect()
        }
        None => {
            row.status = format!("MMD: {}", drawn.how);
            Vec::new()
        }
    };

    // The density panel.
    let panel = density_grid(model, Square::around(&points)).and_then(|g| {
        let nll = row.nll.map_or("-".into(), short);
        let caption = format!("{name}: held-out NLL {nll}, log Z {}", short(g.log_z));
        density_rgb(&g, &points, &samples, &caption)
    });
    let panel = match panel {
        Ok(p) => Some(p),
        Err(e) => {
            row.status = format!("density: {e:#}");
            None
        }
    };
    Ok((row, panel))
}

/// compare.csv, compare.md and compare.png.
fn write_outputs(out: &Path, args: &CompareArgs, rows: &[Row], panels: &[Vec<u8>]) -> Result<()> {
    let num = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    let mut csv = String::from("method,nll,mmd2,wall_s,steps_per_s,status\n");
    for r in rows {
        let status = r.status.replace(['"', '\n'], " ");
        let line = [
            r.method.clone(),
            num(r.nll),
            num(r.mmd2),
            num(r.wall_s),
            num(r.steps_per_s),
            format!("\"{status}\""),
        ];
        writeln!(csv, "{}", line.join(","))?;
    }

    let cell = |v: Option<f64>, digits: usize| v.map_or("-".into(), |v| format!("{v:.digits$}"));
    let mut md = format!(
        "# ebm compare: {} methods on `{}`, {} steps of {}, seed {}\n\n",
        rows.len(),
        args.data,
        args.steps,
        args.batch_size,
        args.seed
    );
    md.push_str(
        "NLL: exact held-out negative log-likelihood in nats (log Z by quadrature); MMD^2: \
         unbiased, RBF kernel of median bandwidth, model samples against held-out data (0 when \
         they agree). Lower is better for both.\n\n",
    );
    md.push_str(
        "| method | NLL | MMD^2 | wall s | steps/s | status |\n|---|---|---|---|---|---|\n",
    );
    for r in rows {
        let status = r.status.replace('|', "/").replace('\n', " ");
        writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {status} |",
            r.method,
            cell(r.nll, 3),
            cell(r.mmd2, 4),
            cell(r.wall_s, 1),
            cell(r.steps_per_s, 0)
        )?;
    }
    std::fs::write(out.join("compare.csv"), csv)?;
    std::fs::write(out.join("compare.md"), md)?;
    let mut written = vec!["compare.csv", "compare.md"];
    if !panels.is_empty() {
        std::fs::write(out.join("compare.png"), density_panels(panels, COLUMNS)?)?;
        written.push("compare.png");
    }
    println!(
        "{}",
        std::fs::read_to_string(out.join("compare.md"))?.trim_end()
    );
    println!("wrote {} in {}", written.join(", "), out.display());
    Ok(())
}
