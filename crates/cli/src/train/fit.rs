//! The training loop of `ebm train`: one step per (seed, step) random stream, metrics,
//! checkpoints, Ctrl-C and divergence.

use super::config::TrainConfig;
use super::data::DataSource;
use super::images;
use super::progress::Progress;
use super::rundir::{CHECKPOINT, METRICS, MetricsLog, write_atomically};
use super::setup::{Session, Setup};
use anyhow::{Result, bail};
use ebm::objective::Objective;
use ebm::train::{Trainable, Trainer, step_rng};
use ebm_nn::LrSchedule;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

/// The metadata key of the run's settings (config.toml) in the checkpoint.
const KEY_CONFIG: &str = "train.config";
/// Steps whose mean loss the summary reports.
const RECENT: usize = 1000;

/// A run stopped by Ctrl-C after writing its checkpoint (exit status 130).
#[derive(Debug)]
pub struct Interrupted {
    /// The last step taken, which the checkpoint holds.
    pub step: u64,
    /// The run directory.
    pub dir: PathBuf,
}

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "interrupted at step {}; the checkpoint holds it. Continue with: ebm train --resume {}",
            self.step,
            self.dir.display()
        )
    }
}

impl std::error::Error for Interrupted {}

/// What the summary reports.
pub struct Finished {
    /// The last step.
    pub steps: u64,
    /// The mean loss of the last steps, and how many.
    pub recent_loss: Option<(f64, usize)>,
    /// Steps per second of this process.
    pub steps_per_s: f64,
    /// Seconds of training, over all the processes of the run.
    pub elapsed_s: f64,
}

/// Trains the run of `setup` in `dir` to its last step.
///
/// # Errors
/// [`Interrupted`] after Ctrl-C (with the checkpoint written); divergence, with the last good
/// checkpoint kept; an I/O error.
pub fn train(setup: &mut Setup, dir: &Path, interrupted: &Arc<AtomicBool>) -> Result<Finished> {
    let Setup {
        config,
        data,
        session,
    } = setup;
    let (config, data) = (&*config, &*data);
    let mut run = Loop {
        config,
        data,
        dir,
        interrupted,
        metadata: BTreeMap::from([(KEY_CONFIG.to_string(), config.to_toml())]),
    };
    let write = |drawn: Result<images::Drawn>, step: u64| {
        let path = dir.join(format!("samples-{step}.png"));
        let range = data.value_range().unwrap_or((0.0, 1.0));
        drawn
            .and_then(|d| images::grid(&d.samples, range))
            .and_then(|(png, _)| write_atomically(&path, &png))
    };
    match session {
        Session::Energy(trainer) => run.fit(trainer, &|t, step| {
            let mut rng = step_rng(config.seed, SNAPSHOT_STREAM);
            let state = t.objective().state_dict();
            let drawn = images::energy_samples(config, data, t.model(), &state, &mut rng);
            write(drawn, step)
        }),
        Session::NoiseConditional(trainer) => run.fit(trainer, &|t, step| {
            let mut rng = step_rng(config.seed, SNAPSHOT_STREAM);
            let drawn = images::noise_conditional_samples(config, data, t.model(), &mut rng);
            write(drawn, step)
        }),
    }
}

/// The random stream of the sample grids drawn during training: the number of no training
/// step, so that drawing them changes nothing in the run.
const SNAPSHOT_STREAM: u64 = u64::MAX - 1;

/// Writes a grid of the model's samples at a step.
type Snapshot<'a, M, O> = &'a dyn Fn(&Trainer<f32, M, O>, u64) -> Result<()>;

/// The loop's view of the run.
struct Loop<'a> {
    config: &'a TrainConfig,
    data: &'a DataSource,
    dir: &'a Path,
    interrupted: &'a Arc<AtomicBool>,
    metadata: BTreeMap<String, String>,
}

impl Loop<'_> {
    fn fit<M, O>(
        &mut self,
        trainer: &mut Trainer<f32, M, O>,
        snapshot: Snapshot<'_, M, O>,
    ) -> Result<Finished>
    where
        M: Trainable<f32> + ?Sized,
        O: Objective<f32, M>,
    {
        let c = self.config;
        let schedule = LrSchedule::new(c.optimizer.schedule(c.steps))?;
        let start = trainer.steps();
        let (mut log, elapsed_before) = MetricsLog::open(self.dir, start)?;
        let progress = Progress::new(start, c.steps);
        let clock = Instant::now();
        let mut last_log = (start, Instant::now());
        let mut saved = (start > 0).then_some(start);
        let mut recent = VecDeque::with_capacity(RECENT);

        for step in start + 1..=c.steps {
            // The step's randomness is a function of (seed, step) alone.
            let mut rng = step_rng(c.seed, step);
            let batch = self.data.batch(c.batch_size, &mut rng);
            let lr = schedule.lr(step - 1);
            trainer.optimizer_mut().set_lr(lr);
            let aux_lr = c.optimizer.aux_lr.map(|a| a * lr / c.optimizer.lr);
            if let (Some(opt), Some(a)) = (trainer.aux_optimizer_mut(), aux_lr) {
                opt.set_lr(a);
            }
            let metrics = match trainer.step(&batch, &mut rng) {
                Ok(metrics) => metrics,
                Err(e @ ebm::Error::Diverged { .. }) => {
                    progress.finish();
                    bail!("{e}\n{}", self.kept(saved));
                }
                Err(e) => {
                    progress.finish();
                    return Err(e.into());
                }
            };
            let loss = metrics.get("loss");
            if let Some(l) = loss {
                if recent.len() == RECENT {
                    recent.pop_front();
                }
                recent.push_back(l);
            }

            // Metrics, progress, checkpoint.
            let rate = (step - last_log.0) as f64 / last_log.1.elapsed().as_secs_f64().max(1e-9);
            if step.is_multiple_of(c.log_every) || step == c.steps {
                let elapsed = elapsed_before + clock.elapsed().as_secs_f64();
                let mut line = vec![("step", Value::from(step))];
                line.extend(metrics.iter().map(|(name, value)| (name, number(value))));
                line.push(("lr", number(lr)));
                if let Some(a) = aux_lr {
                    line.push(("aux_lr", number(a)));
                }
                line.push(("steps_per_s", number(rate)));
                line.push(("elapsed_s", number(elapsed)));
                log.write(&line)?;
                last_log = (step, Instant::now());
            }
            progress.update(step, loss, rate);
            // The grid of the last step is the report's samples.png.
            let images = self.data.image_shape().is_some() && step < c.steps;
            if images
                && c.sample_every.is_some_and(|k| step.is_multiple_of(k))
                && let Err(e) = snapshot(trainer, step)
            {
                eprintln!("\nwarning: no samples-{step}.png: {e:#}");
            }
            let stop = self.interrupted.load(Ordering::SeqCst);
            if step.is_multiple_of(c.checkpoint_every) || step == c.steps || stop {
                self.save(trainer)?;
                saved = Some(step);
            }
            if stop {
                progress.finish();
                let dir = self.dir.to_path_buf();
                return Err(Interrupted { step, dir }.into());
            }
        }
        progress.finish();
        let done = c.steps - start;
        Ok(Finished {
            steps: c.steps,
            recent_loss: (!recent.is_empty()).then(|| {
                (
                    recent.iter().sum::<f64>() / recent.len() as f64,
                    recent.len(),
                )
            }),
            steps_per_s: done as f64 / clock.elapsed().as_secs_f64().max(1e-9),
            elapsed_s: elapsed_before + clock.elapsed().as_secs_f64(),
        })
    }

    /// Writes the checkpoint (atomically: a crash leaves the previous one).
    fn save<M, O>(&self, trainer: &Trainer<f32, M, O>) -> Result<()>
    where
        M: Trainable<f32> + ?Sized,
        O: Objective<f32, M>,
    {
        trainer.save_with_metadata(self.dir.join(CHECKPOINT), &self.metadata)?;
        Ok(())
    }

    /// What is kept after a divergence.
    fn kept(&self, saved: Option<u64>) -> String {
        let dir = self.dir.display();
        match saved {
            Some(step) => format!(
                "The last good checkpoint (step {step}) is kept in {dir}/{CHECKPOINT}, and {dir}/{METRICS} has the metrics up to the divergence. To continue from it, change the setting in {dir}/config.toml and run `ebm train --resume {dir}`; if it diverges again at once, start a new run."
            ),
            None => format!(
                "No checkpoint was written before it (one is written every {} steps); {dir}/{METRICS} has the metrics up to the divergence.",
                self.config.checkpoint_every
            ),
        }
    }
}

/// A JSON number, or `null` for a value that is not finite (JSON has no NaN).
fn number(x: f64) -> Value {
    serde_json::Number::from_f64(x).map_or(Value::Null, Value::Number)
}
