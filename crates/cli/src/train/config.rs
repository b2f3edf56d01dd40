//! The settings of a training run: what a TOML file holds, with the defaults of `ebm train`
//! without arguments, and the flags laid over them.

use super::args::TrainArgs;
use super::data::DataConfig;
use anyhow::{Context, Result, bail};
use ebm::energy::EnergySpec;
use ebm::objective::MethodSpec;
use ebm_nn::{AdamConfig, Decay, LrScheduleConfig};
use serde::{Deserialize, Serialize};
use std::path::Path;

/// Every setting of a run, as `config.toml` holds it. Missing fields take the defaults:
/// denoising score matching of an MLP energy on `8gaussians`, 40,000 steps of 256 points,
/// Adam 1e-3 with a cosine decay to 0.05 of it (the README's first run).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// The data: a built-in set or a data file, with its pixel options (see [`DataConfig`]).
    pub data: DataConfig,
    /// Training steps.
    pub steps: u64,
    /// Data points per step.
    pub batch_size: usize,
    /// Seed of everything random.
    pub seed: u64,
    /// Compute threads.
    pub threads: usize,
    /// Steps between two lines of metrics.jsonl.
    pub log_every: u64,
    /// Steps between two checkpoints (one is also written at the end).
    pub checkpoint_every: u64,
    /// Steps between two grids of model samples, `samples-<step>.png` (image data only; by
    /// default at every checkpoint).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sample_every: Option<u64>,
    /// Rescale the energy's gradient to at most this norm.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub grad_clip: Option<f64>,
    /// The method and its settings.
    pub method: MethodSpec,
    /// The energy and its settings; by default an MLP sized for the data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub energy: Option<EnergySpec>,
    /// Adam and its learning-rate schedule.
    pub optimizer: OptimizerConfig,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            data: DataConfig::named("8gaussians"),
            steps: 40_000,
            batch_size: 256,
            seed: 0,
            threads: 2,
            log_every: 100,
            checkpoint_every: 5_000,
            sample_every: None,
            grad_clip: None,
            method: MethodSpec::new("dsm"),
            energy: None,
            optimizer: OptimizerConfig::default(),
        }
    }
}

/// Adam (for the energy, and for the objective's own parameters when it has some) with a
/// linear warm-up and half a cosine down to `final_lr_factor` of the rate over the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerConfig {
    /// The learning rate after warm-up.
    pub lr: f64,
    /// Adam's first-moment decay.
    pub beta1: f64,
    /// Adam's second-moment decay.
    pub beta2: f64,
    /// Adam's epsilon.
    pub eps: f64,
    /// Weight decay (L2, or decoupled as AdamW).
    pub weight_decay: f64,
    /// AdamW's decoupled weight decay.
    pub decoupled_weight_decay: bool,
    /// Steps of linear warm-up.
    pub warmup_steps: u64,
    /// The final rate as a fraction of `lr` (1 keeps it constant).
    pub final_lr_factor: f64,
    /// The learning rate of the method's own parameters (NCE's log-normaliser, the critic of
    /// `lsd`, the flows of `fce` and `adversarial`), on the same schedule as `lr`; by default
    /// the method's (`MethodInfo::aux_lr`). Only for methods that have such parameters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aux_lr: Option<f64>,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        let adam = AdamConfig::default();
        OptimizerConfig {
            lr: 1e-3,
            beta1: adam.beta1,
            beta2: adam.beta2,
            eps: adam.eps,
            weight_decay: adam.weight_decay,
            decoupled_weight_decay: adam.decoupled_weight_decay,
            warmup_steps: 0,
            final_lr_factor: 0.05,
            aux_lr: None,
        }
    }
}

impl OptimizerConfig {
    /// Adam's settings.
    pub fn adam(&self) -> AdamConfig {
        AdamConfig {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            decoupled_weight_decay: self.decoupled_weight_decay,
        }
    }

    /// Adam's settings for the method's own parameters: these at `aux_lr` (or `lr`).
    pub fn aux_adam(&self) -> AdamConfig {
        AdamConfig {
            lr: self.aux_lr.unwrap_or(self.lr),
            ..self.adam()
        }
    }

    /// The schedule of a run of `steps` steps.
    pub fn schedule(&self, steps: u64) -> LrScheduleConfig {
        LrScheduleConfig {
            base_lr: self.lr,
            warmup_steps: self.warmup_steps,
            decay: Decay::Cosine {
                decay_steps: steps.saturating_sub(self.warmup_steps).max(1),
                final_factor: self.final_lr_factor,
            },
        }
    }
}

impl TrainConfig {
    /// The settings of a TOML file; missing fields take the defaults.
    ///
    /// # Errors
    /// When the file cannot be read or parsed, naming the file and the field (an unknown
    /// field, a value of the wrong type, with its line).
    pub fn from_file(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the config {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("in the config {}", path.display()))
    }

    /// The settings of TOML text.
    ///
    /// # Errors
    /// As [`TrainConfig::from_file`].
    pub fn from_toml(text: &str) -> Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// The settings as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string(self).expect("every setting has a TOML form")
    }

    /// Lays the flags over these settings. A `--method` or `--energy` other than the file's
    /// starts from that method's or energy's defaults (the file's settings were for another).
    ///
    /// # Errors
    /// A sampler flag for a method without that setting.
    pub fn apply(&mut self, args: &TrainArgs) -> Result<()> {
        if let Some(name) = &args.method
            && *name != self.method.name
        {
            self.method = MethodSpec::new(name);
        }
        if let Some(kind) = &args.energy {
            let same = self.energy.as_ref().is_some_and(|e| e.kind == *kind);
            if !same {
                self.energy = Some(EnergySpec {
                    kind: kind.clone(),
                    config: Default::default(),
                });
            }
        }
        if args.step_size.is_some() || args.n_steps.is_some() {
            self.method.set_sampler(args.step_size, args.n_steps)?;
        }
        fn set<V: Copy>(field: &mut V, flag: Option<V>) {
            if let Some(v) = flag {
                *field = v;
            }
        }
        set(&mut self.steps, args.steps);
        set(&mut self.batch_size, args.batch_size);
        set(&mut self.seed, args.seed);
        set(&mut self.checkpoint_every, args.checkpoint_every);
        set(&mut self.log_every, args.log_every);
        set(&mut self.optimizer.lr, args.lr);
        if args.aux_lr.is_some() {
            self.optimizer.aux_lr = args.aux_lr;
        }
        set(&mut self.threads, args.threads);
        if let Some(name) = &args.data
            && *name != self.data.name
        {
            // Another set: the file's pixel options were for the one it named.
            self.data = DataConfig::named(name);
        }
        if let Some(range) = args.pixel_range {
            self.data.range = Some(range);
        }
        if args.dequantize.is_some() {
            self.data.dequantize = args.dequantize;
        }
        if args.sample_every.is_some() {
            self.sample_every = args.sample_every;
        }
        Ok(())
    }

    /// Checks the settings that no constructor checks.
    ///
    /// # Errors
    /// Naming the setting and its value.
    pub fn validate(&self) -> Result<()> {
        let counts = [
            ("steps", self.steps),
            ("batch_size", self.batch_size as u64),
            ("threads", self.threads as u64),
            ("log_every", self.log_every),
            ("checkpoint_every", self.checkpoint_every),
            ("sample_every", self.sample_every.unwrap_or(1)),
        ];
        for (name, value) in counts {
            if value == 0 {
                bail!("invalid {name}: got 0, expected at least 1");
            }
        }
        if let Some(c) = self.grad_clip
            && !(c.is_finite() && c > 0.0)
        {
            bail!("invalid grad_clip: got {c}, expected a finite number > 0");
        }
        self.optimizer
            .adam()
            .validate()
            .context("invalid [optimizer] setting")?;
        if let Some(lr) = self.optimizer.aux_lr
            && !(lr.is_finite() && lr > 0.0)
        {
            bail!("invalid [optimizer] aux_lr: got {lr}, expected a finite number > 0");
        }
        ebm_nn::LrSchedule::new(self.optimizer.schedule(self.steps))
            .context("invalid [optimizer] schedule setting")?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_is_the_default_run() {
        assert_eq!(TrainConfig::from_toml("").unwrap(), TrainConfig::default());
    }

    #[test]
    fn the_resolved_form_reads_back_the_same() {
        let mut config = TrainConfig::default();
        config.method = config.method.resolve().unwrap();
        config.grad_clip = Some(5.0);
        let again = TrainConfig::from_toml(&config.to_toml()).unwrap();
        assert_eq!(again, config);

        let pcd = TrainConfig {
            method: MethodSpec::new("pcd").resolve().unwrap(),
            ..TrainConfig::default()
        };
        let text = pcd.to_toml();
        assert_eq!(TrainConfig::from_toml(&text).unwrap(), pcd, "{text}");
    }

    #[test]
    fn unknown_and_mistyped_fields_are_named() {
        let err = TrainConfig::from_toml("stepz = 3").unwrap_err().to_string();
        assert!(err.contains("stepz"), "{err}");
        let err = TrainConfig::from_toml("steps = \"many\"")
            .unwrap_err()
            .to_string();
        assert!(err.contains("steps") || err.contains("many"), "{err}");
        let err = TrainConfig::from_toml("[optimizer]\nlearning_rate = 0.1")
            .unwrap_err()
            .to_string();
        assert!(err.contains("learning_rate"), "{err}");
    }

    #[test]
    fn flags_override_the_file() {
        let text = "steps = 10\nseed = 3\n[method]\nname = \"dsm\"\nsigma = 0.3\n";
        let mut config = TrainConfig::from_toml(text).unwrap();
        let args = TrainArgs {
            steps: Some(20),
            lr: Some(0.01),
            ..TrainArgs::default()
        };
        config.apply(&args).unwrap();
        assert_eq!(
            (config.steps, config.seed, config.optimizer.lr),
            (20, 3, 0.01)
        );
        assert_eq!(config.method.config["sigma"], 0.3);

        // Another method starts from its own defaults; the same one keeps the file's.
        let same = TrainArgs {
            method: Some("dsm".into()),
            ..TrainArgs::default()
        };
        config.apply(&same).unwrap();
        assert_eq!(config.method.config["sigma"], 0.3);
        let other = TrainArgs {
            method: Some("pcd".into()),
            step_size: Some(0.02),
            ..TrainArgs::default()
        };
        config.apply(&other).unwrap();
        assert_eq!(config.method.name, "pcd");
        assert!(!config.method.config.contains_key("sigma"));
        let kernel = &config.method.resolve().unwrap().config["kernel"];
        assert_eq!(kernel["langevin"]["step_size"], 0.02);
    }

    #[test]
    fn validation_names_the_setting() {
        let config = TrainConfig {
            batch_size: 0,
            ..TrainConfig::default()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("batch_size"), "{err}");
        let mut config = TrainConfig::default();
        config.optimizer.lr = -1.0;
        let err = format!("{:#}", config.validate().unwrap_err());
        assert!(err.contains("lr") && err.contains("-1"), "{err}");
    }
}
