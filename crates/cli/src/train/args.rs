//! The raw flags of `ebm train`, as clap parses them; `settings.rs` turns them into a
//! validated configuration.

use ebm::data::PixelRange;
use std::path::PathBuf;

/// `unit` or `symmetric` (also for `ebm eval`).
pub fn parse_range(text: &str) -> Result<PixelRange, String> {
    match text {
        "unit" => Ok(PixelRange::Unit),
        "symmetric" => Ok(PixelRange::Symmetric),
        _ => Err(format!(
            "`{text}` is not a pixel range; use unit ([0, 1]) or symmetric ([-1, 1])"
        )),
    }
}

/// Flags of `ebm train`. Every setting can also come from a TOML file (`--config`); a flag
/// overrides the file.
#[derive(clap::Args, Debug, Default)]
#[command(after_help = super::help::methods())]
pub struct TrainArgs {
    /// Read the settings from this TOML file (flags override it).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Continue the run in this directory from its last checkpoint, with its config.toml.
    #[arg(long, value_name = "RUN_DIR")]
    pub resume: Option<PathBuf>,
    /// The training method (listed below).
    #[arg(long, value_name = "NAME")]
    pub method: Option<String>,
    /// The energy: mlp, conv, gaussian, gmm, rbm, gaussian-rbm (ncsn-mlp and ncsn-conv for
    /// ncsn, where mlp and conv mean those).
    #[arg(long, value_name = "KIND")]
    pub energy: Option<String>,
    /// The data: a built-in 2-D set (such as 8gaussians), a built-in image set (digits,
    /// fashion-mnist) or a data file (.csv, .npy, IDX; optionally .gz).
    #[arg(long, value_name = "NAME")]
    pub data: Option<String>,
    /// Pixels to [0, 1] (unit) or [-1, 1] (symmetric) [default for image sets: symmetric;
    /// image files train on raw values unless given].
    #[arg(long, value_name = "RANGE", value_parser = parse_range)]
    pub pixel_range: Option<PixelRange>,
    /// Uniform noise of one level on every pixel of every batch [default for image sets:
    /// true].
    #[arg(long, value_name = "BOOL")]
    pub dequantize: Option<bool>,
    /// Training steps.
    #[arg(long, value_name = "N")]
    pub steps: Option<u64>,
    /// Data points per step.
    #[arg(long, value_name = "N")]
    pub batch_size: Option<usize>,
    /// Adam's learning rate (decayed along half a cosine to `final_lr_factor` of it).
    #[arg(long, value_name = "X")]
    pub lr: Option<f64>,
    /// Learning rate of the method's own parameters (nce, fce, lsd, adversarial), on the
    /// schedule of --lr [default: the method's: nce 1e-3, fce 2e-4, lsd 3e-3, adversarial
    /// 1e-3].
    #[arg(long, value_name = "X")]
    pub aux_lr: Option<f64>,
    /// Seed of the initial weights, the data and every random draw.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Step size of the method's sampler (MCMC methods and mvl).
    #[arg(long, value_name = "X")]
    pub step_size: Option<f64>,
    /// Sampler steps per training step (MCMC methods).
    #[arg(long, value_name = "N")]
    pub n_steps: Option<usize>,
    /// The run directory (default: runs/<time>-<method>-<data>).
    #[arg(long, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Write the checkpoint every N steps (and at the end).
    #[arg(long, value_name = "N")]
    pub checkpoint_every: Option<u64>,
    /// Write a grid of model samples, samples-<step>.png, every N steps (image data) [default:
    /// at every checkpoint].
    #[arg(long, value_name = "N")]
    pub sample_every: Option<u64>,
    /// Write a line of metrics.jsonl every N steps.
    #[arg(long, value_name = "N")]
    pub log_every: Option<u64>,
    /// Compute threads.
    #[arg(long, value_name = "N")]
    pub threads: Option<usize>,
}

impl TrainArgs {
    /// The flags that change a setting, by name: `--resume` takes none of them.
    pub fn setting_flags(&self) -> Vec<&'static str> {
        let flags = [
            ("--config", self.config.is_some()),
            ("--method", self.method.is_some()),
            ("--energy", self.energy.is_some()),
            ("--data", self.data.is_some()),
            ("--pixel-range", self.pixel_range.is_some()),
            ("--dequantize", self.dequantize.is_some()),
            ("--sample-every", self.sample_every.is_some()),
            ("--steps", self.steps.is_some()),
            ("--batch-size", self.batch_size.is_some()),
            ("--lr", self.lr.is_some()),
            ("--aux-lr", self.aux_lr.is_some()),
            ("--seed", self.seed.is_some()),
            ("--step-size", self.step_size.is_some()),
            ("--n-steps", self.n_steps.is_some()),
            ("--out", self.out.is_some()),
            ("--checkpoint-every", self.checkpoint_every.is_some()),
            ("--log-every", self.log_every.is_some()),
            ("--threads", self.threads.is_some()),
        ];
        flags
            .iter()
            .filter(|(_, set)| *set)
            .map(|(f, _)| *f)
            .collect()
    }
}
