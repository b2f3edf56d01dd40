//! Learning-rate schedules: linear warm-up, then constant, cosine or step decay.

use super::{non_negative, positive};
use crate::NnError;
use serde::{Deserialize, Serialize};

/// What the learning rate does after the warm-up.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind", deny_unknown_fields)]
pub enum Decay {
    /// Stays at the base rate.
    Constant,
    /// Half a cosine from the base rate down to `final_factor` times it over `decay_steps`
    /// steps, then flat (Loshchilov and Hutter, "SGDR", ICLR 2017, without restarts).
    Cosine {
        /// Length of the decay, in steps (>= 1).
        decay_steps: u64,
        /// The final rate as a fraction of the base rate, in [0, 1].
        final_factor: f64,
    },
    /// Multiplied by `gamma` every `step_size` steps (PyTorch's `StepLR`).
    Step {
        /// Steps between two drops (>= 1).
        step_size: u64,
        /// Factor of each drop, in (0, 1].
        gamma: f64,
    },
}

/// Settings of an [`LrSchedule`].
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LrScheduleConfig {
    /// The rate after warm-up (finite, > 0).
    pub base_lr: f64,
    /// Steps of linear warm-up (0 for none).
    #[serde(default)]
    pub warmup_steps: u64,
    /// What follows the warm-up.
    pub decay: Decay,
}

/// The learning rate as a function of the step index `s` (the number of optimiser steps taken
/// before this one, so the first step has `s = 0`):
///
/// ```text
/// s < W:   lr = base (s + 1) / W                                   (linear warm-up)
/// s >= W:  t = s - W, and
///          constant:  lr = base
///          cosine:    lr = base (f + (1 - f) (1 + cos(pi min(t, D) / D)) / 2)
///          step:      lr = base gamma^floor(t / step_size)
/// ```
///
/// with W = `warmup_steps`, D = `decay_steps`, f = `final_factor`. Being a pure function of
/// the step, it needs no state of its own to resume: use `opt.set_lr(schedule.lr(opt.steps()))`
/// before each step.
///
/// # Example
/// ```
/// use ebm_nn::{Decay, LrSchedule, LrScheduleConfig};
///
/// let decay = Decay::Cosine { decay_steps: 100, final_factor: 0.0 };
/// let config = LrScheduleConfig { base_lr: 1e-3, warmup_steps: 10, decay };
/// let schedule = LrSchedule::new(config).unwrap();
/// assert!((schedule.lr(0) - 1e-4).abs() < 1e-18);
/// assert_eq!(schedule.lr(10), 1e-3);
/// assert_eq!(schedule.lr(110), 0.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LrSchedule {
    config: LrScheduleConfig,
}

impl LrSchedule {
    /// A validated schedule.
    ///
    /// # Errors
    /// [`NnError::InvalidConfig`] for a base rate that is not finite and > 0, a zero
    /// `decay_steps` or `step_size`, a `final_factor` outside [0, 1] or a `gamma` outside
    /// (0, 1].
    pub fn new(config: LrScheduleConfig) -> Result<Self, NnError> {
        positive("schedule base_lr", config.base_lr)?;
        match config.decay {
            Decay::Constant => {}
            Decay::Cosine {
                decay_steps,
                final_factor,
            } => {
                if decay_steps == 0 {
                    return Err(NnError::config("cosine decay_steps", 0, ">= 1"));
                }
                non_negative("cosine final_factor", final_factor)?;
                if final_factor > 1.0 {
                    return Err(NnError::config(
                        "cosine final_factor",
                        final_factor,
                        "in [0, 1]",
                    ));
                }
            }
            Decay::Step { step_size, gamma } => {
                if step_size == 0 {
                    return Err(NnError::config("step decay step_size", 0, ">= 1"));
                }
                if !(gamma > 0.0 && gamma <= 1.0) {
                    return Err(NnError::config("step decay gamma", gamma, "in (0, 1]"));
                }
            }
        }
        Ok(LrSchedule { config })
    }

    /// A constant rate, without warm-up.
    ///
    /// # Errors
    /// As [`LrSchedule::new`].
    pub fn constant(lr: f64) -> Result<Self, NnError> {
        Self::new(LrScheduleConfig {
            base_lr: lr,
            warmup_steps: 0,
            decay: Decay::Constant,
        })
    }

    /// The settings.
    pub fn config(&self) -> &LrScheduleConfig {
        &self.config
    }

    /// The rate for the step with index `step` (0 for the first step).
    pub fn lr(&self, step: u64) -> f64 {
        let LrScheduleConfig {
            base_lr,
            warmup_steps,
            decay,
        } = self.config;
        if step < warmup_steps {
            return base_lr * (step + 1) as f64 / warmup_steps as f64;
        }
        let t = step - warmup_steps;
        match decay {
            Decay::Constant => base_lr,
            Decay::Cosine {
                decay_steps,
                final_factor,
            } => {
                let progress = t.min(decay_steps) as f64 / decay_steps as f64;
                let cosine = 0.5 * (1.0 + (std::f64::consts::PI * progress).cos());
                base_lr * (final_factor + (1.0 - final_factor) * cosine)
            }
            Decay::Step { step_size, gamma } => {
                let drops = (t / step_size).min(i32::MAX as u64) as i32;
                base_lr * gamma.powi(drops)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(warmup_steps: u64, decay: Decay) -> LrSchedule {
        LrSchedule::new(LrScheduleConfig {
            base_lr: 0.1,
            warmup_steps,
            decay,
        })
        .unwrap()
    }

    // The expected values are decimals; each rate takes a handful of roundings of numbers
    // of order 0.1, so they agree to 1e-16.
    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-16
    }

    #[test]
    fn warmup_rises_linearly_to_the_base_rate() {
        let s = schedule(4, Decay::Constant);
        let got: Vec<f64> = (0..6).map(|k| s.lr(k)).collect();
        let want = [0.025, 0.05, 0.075, 0.1, 0.1, 0.1];
        assert!(got.iter().zip(want).all(|(g, w)| close(*g, w)), "{got:?}");
    }

    #[test]
    fn cosine_hits_its_landmarks() {
        let s = schedule(
            2,
            Decay::Cosine {
                decay_steps: 10,
                final_factor: 0.1,
            },
        );
        // Start of decay: base; halfway (t = 5): the mean of base and the floor; end: floor.
        assert!(close(s.lr(2), 0.1));
        assert!(close(s.lr(7), 0.055), "{}", s.lr(7));
        assert!(close(s.lr(12), 0.01), "{}", s.lr(12));
        assert!(close(s.lr(1_000), 0.01));
        // A quarter of the way: f + (1 - f)(1 + cos(pi/4))/2.
        let quarter = 0.1 * (0.1 + 0.9 * (1.0 + 0.5f64.sqrt()) / 2.0);
        let s = schedule(
            0,
            Decay::Cosine {
                decay_steps: 4,
                final_factor: 0.1,
            },
        );
        assert!(close(s.lr(1), quarter));
    }

    #[test]
    fn step_decay_drops_every_step_size() {
        let s = schedule(
            0,
            Decay::Step {
                step_size: 3,
                gamma: 0.5,
            },
        );
        let got: Vec<f64> = [0, 2, 3, 5, 6, 9].iter().map(|&k| s.lr(k)).collect();
        assert_eq!(got, vec![0.1, 0.1, 0.05, 0.05, 0.025, 0.0125]);
    }

    #[test]
    fn invalid_settings_are_errors() {
        let base = LrScheduleConfig {
            base_lr: 0.1,
            warmup_steps: 0,
            decay: Decay::Constant,
        };
        let bad = [
            LrScheduleConfig {
                base_lr: 0.0,
                ..base
            },
            LrScheduleConfig {
                decay: Decay::Cosine {
                    decay_steps: 0,
                    final_factor: 0.0,
                },
                ..base
            },
            LrScheduleConfig {
                decay: Decay::Cosine {
                    decay_steps: 5,
                    final_factor: 2.0,
                },
                ..base
            },
            LrScheduleConfig {
                decay: Decay::Step {
                    step_size: 0,
                    gamma: 0.5,
                },
                ..base
            },
            LrScheduleConfig {
                decay: Decay::Step {
                    step_size: 1,
                    gamma: 0.0,
                },
                ..base
            },
        ];
        for config in bad {
            assert!(LrSchedule::new(config).is_err(), "{config:?}");
        }
        assert!(LrSchedule::constant(f64::NAN).is_err());
    }

    #[test]
    fn config_reads_from_json() {
        let json = r#"{"base_lr": 0.001, "warmup_steps": 100,
                       "decay": {"kind": "cosine", "decay_steps": 1000, "final_factor": 0.0}}"#;
        let config: LrScheduleConfig = serde_json::from_str(json).unwrap();
        assert_eq!(
            config.decay,
            Decay::Cosine {
                decay_steps: 1000,
                final_factor: 0.0
            }
        );
    }
}
