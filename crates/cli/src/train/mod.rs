//! `ebm train`: train an energy-based model by any registered method, in a run directory with
//! its resolved config, metrics and checkpoints; resume it bit for bit.
//!
//! Flags (`args`) are laid over a TOML config (`config`) and checked once (`setup`, which
//! builds everything before a file is written); `rundir` owns the files, `fit` the loop.

mod args;
mod config;
mod data;
pub(crate) mod figures;
mod fit;
mod help;
pub(crate) mod images;
mod progress;
mod rundir;
mod setup;

pub use args::{TrainArgs, parse_range};
pub use config::TrainConfig;
pub use data::DataConfig;
pub use fit::{Finished, Interrupted};
pub use setup::{Session, Setup};

use crate::report::write_report;
use anyhow::{Context, Result, bail};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Runs `ebm train`.
///
/// # Errors
/// A bad setting (before anything is written), divergence, Ctrl-C ([`Interrupted`]), I/O.
pub fn run(args: TrainArgs) -> Result<()> {
    let interrupted = ctrl_c_flag()?;
    match &args.resume {
        Some(dir) => {
            let flags = args.setting_flags();
            if !flags.is_empty() {
                bail!(
                    "--resume continues with the run's own config.toml; drop {} (or edit {})",
                    flags.join(", "),
                    dir.join(rundir::CONFIG).display()
                );
            }
            let config = TrainConfig::from_file(&dir.join(rundir::CONFIG))
                .with_context(|| format!("{} is not a run directory", dir.display()))?;
            let dir = dir.clone();
            ebm_tensor::with_threads(config.threads, move || resume(config, &dir, &interrupted))
        }
        None => {
            let mut config = match &args.config {
                Some(path) => TrainConfig::from_file(path)?,
                None => TrainConfig::default(),
            };
            config.apply(&args)?;
            let out = args.out.clone();
            ebm_tensor::with_threads(config.threads.max(1), move || {
                start(config, out, &interrupted)
            })
        }
    }
}

/// A new run: everything is built and checked, then the directory is made.
fn start(config: TrainConfig, out: Option<PathBuf>, interrupted: &Arc<AtomicBool>) -> Result<()> {
    train_in(config, out, interrupted).map(|_| ())
}

/// Trains a new run of `config` in `out` (by default `runs/<time>-<method>-<data>`), writes its
/// report and prints its summary; gives back the trained setup, for `ebm compare`.
///
/// # Errors
/// As [`run`]: a bad setting before anything is written, divergence, Ctrl-C, I/O.
pub fn train_in(
    config: TrainConfig,
    out: Option<PathBuf>,
    interrupted: &Arc<AtomicBool>,
) -> Result<(Setup, Finished)> {
    let mut setup = setup::build(config)?;
    let dir = out.unwrap_or_else(|| {
        rundir::default_dir(&setup.config.method.name, &setup.data.short_name())
    });
    rundir::create(&dir, &setup.config.to_toml())?;
    eprintln!(
        "training: method {}, energy {}, data {}, {} steps of {}; run directory {}",
        setup.config.method.name,
        setup
            .config
            .energy
            .as_ref()
            .map_or("?", |e| e.kind.as_str()),
        setup.config.data,
        setup.config.steps,
        setup.config.batch_size,
        dir.display()
    );
    let finished = fit::train(&mut setup, &dir, interrupted)?;
    after_training(&dir, &setup, &finished)?;
    Ok((setup, finished))
}

/// A run continued from its checkpoint.
fn resume(config: TrainConfig, dir: &Path, interrupted: &Arc<AtomicBool>) -> Result<()> {
    let mut setup = setup::build(config)?;
    let checkpoint = dir.join(rundir::CHECKPOINT);
    if !checkpoint.exists() {
        bail!(
            "{} has no checkpoint yet (the run stopped before its first, due every {} steps); start it again",
            dir.display(),
            setup.config.checkpoint_every
        );
    }
    match &mut setup.session {
        Session::Energy(t) => t.load_checkpoint(&checkpoint),
        Session::NoiseConditional(t) => t.load_checkpoint(&checkpoint),
    }
    .with_context(|| format!("cannot resume from {}", checkpoint.display()))?;
    let step = match &setup.session {
        Session::Energy(t) => t.steps(),
        Session::NoiseConditional(t) => t.steps(),
    };
    if step >= setup.config.steps {
        println!(
            "{} is complete: step {step} of {}",
            dir.display(),
            setup.config.steps
        );
        return Ok(());
    }
    eprintln!(
        "resuming {} at step {step} of {}",
        dir.display(),
        setup.config.steps
    );
    let finished = fit::train(&mut setup, dir, interrupted)?;
    after_training(dir, &setup, &finished)
}

/// What follows the last step: the figures and report.html, then the summary. A report that
/// cannot be written is a warning: the run itself is complete.
fn after_training(dir: &Path, setup: &setup::Setup, finished: &Finished) -> Result<()> {
    let images = setup
        .data
        .image_shape()
        .map(|_| images::final_pictures(dir, setup));
    let (pictures, written) = match images {
        Some(Ok((pictures, written))) => (pictures, written),
        Some(Err(e)) => {
            eprintln!("warning: no samples.png: {e:#}");
            (Vec::new(), Vec::new())
        }
        None => (Vec::new(), Vec::new()),
    };
    let report = figures::points(setup).and_then(|points| {
        let summary = write_report(
            dir,
            points.data.as_ref(),
            points.samples.as_ref(),
            &pictures,
        )?;
        Ok((summary, points.how))
    });
    println!("run directory {}:", dir.display());
    println!("  {:22} the resolved settings", rundir::CONFIG);
    println!(
        "  {:22} metrics every {} steps",
        rundir::METRICS,
        setup.config.log_every
    );
    println!(
        "  {:22} weights, optimiser and method state at step {}",
        rundir::CHECKPOINT,
        finished.steps
    );
    if let (Some(every), false) = (setup.config.sample_every, written.is_empty()) {
        println!(
            "  {:22} model samples every {every} steps",
            "samples-<step>.png"
        );
    }
    for (name, what) in &written {
        println!("  {name:22} {what}");
    }
    match &report {
        Ok((summary, how)) => {
            for file in &summary.files {
                let name = file.file_name().unwrap_or_default().to_string_lossy();
                let what = match name.as_ref() {
                    "loss.png" => "every metric over the steps".to_string(),
                    "density.png" => format!("the learned density with data and {how}"),
                    _ => "the figures, metrics and settings on one page".to_string(),
                };
                println!("  {name:22} {what}");
            }
            for note in &summary.notes {
                println!("  ({note})");
            }
            println!("open {}", dir.join("report.html").display());
        }
        Err(e) => eprintln!("warning: no report written: {e:#}"),
    }
    if let Some((loss, n)) = finished.recent_loss {
        println!("final loss (mean of the last {n} steps): {loss:.4}");
    }
    println!(
        "{} steps in {:.1} s ({:.0} steps/s in this process)",
        finished.steps, finished.elapsed_s, finished.steps_per_s
    );
    Ok(())
}

/// A flag that Ctrl-C sets (the loop finishes its step, checkpoints and stops); a second
/// Ctrl-C exits at once.
pub(crate) fn ctrl_c_flag() -> Result<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    let handler = Arc::clone(&flag);
    ctrlc::set_handler(move || {
        if handler.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("\nCtrl-C: finishing this step and writing the checkpoint (Ctrl-C again to quit at once)");
    })
    .context("cannot install the Ctrl-C handler")?;
    Ok(flag)
}
