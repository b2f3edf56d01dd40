//! Progress on stderr: an `indicatif` bar on a terminal (step, loss, steps/s, ETA), a plain
//! line every tenth of the run otherwise.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// The progress display of a run.
pub struct Progress {
    bar: Option<ProgressBar>,
    total: u64,
    every: u64,
}

impl Progress {
    /// Progress of a run of `total` steps, starting after step `start`.
    pub fn new(start: u64, total: u64) -> Self {
        let every = (total / 10).max(1);
        if !std::io::stderr().is_terminal() {
            return Progress {
                bar: None,
                total,
                every,
            };
        }
        let bar = ProgressBar::new(total);
        let style = ProgressStyle::with_template(
            "{spinner} step {pos}/{len} [{bar:30}] loss {msg}  {per_sec}  ETA {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_position(start);
        bar.reset_eta();
        Progress {
            bar: Some(bar),
            total,
            every,
        }
    }

    /// Shows step `step` done, with its loss and the recent speed.
    pub fn update(&self, step: u64, loss: Option<f64>, steps_per_s: f64) {
        let loss = loss.map_or("-".to_string(), |l| format!("{l:.4}"));
        match &self.bar {
            Some(bar) => {
                bar.set_position(step);
                bar.set_message(loss);
            }
            None if step.is_multiple_of(self.every) || step == self.total => {
                eprintln!(
                    "step {step}/{}  loss {loss}  {steps_per_s:.0} steps/s",
                    self.total
                );
            }
            None => {}
        }
    }

    /// Removes the bar (before the summary or an error).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
