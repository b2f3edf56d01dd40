//! `ebm sample`: draws from a checkpoint's energy with an MCMC sampler and writes them.

use crate::checkpoint::{self, Dtype, Loaded, Model};
use crate::points::write_points;
use anyhow::{Context, Result, bail};
use ebm::energy::Energy;
use ebm::objective::multiscale::MultiScaleDenoisingScoreMatchingConfig;
use ebm::sampler::{
    AnnealedLangevin, ChainState, Hmc, HmcConfig, Langevin, LangevinConfig, Mala, MalaConfig,
    Sampler, StepInfo,
};
use ebm_tensor::{Float, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::path::PathBuf;

/// The samplers `ebm sample` runs.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SamplerKind {
    /// Unadjusted Langevin, noise sqrt(2 step).
    Langevin,
    /// Metropolis-adjusted Langevin.
    Mala,
    /// Hamiltonian Monte Carlo (--leapfrog-steps per step).
    Hmc,
    /// Annealed Langevin over noise levels (noise-conditional checkpoints).
    Annealed,
}

/// Where the chains start.
#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Init {
    /// Uniform over [--low, --high] in every coordinate.
    Uniform,
    /// N(0, --init-std^2 I).
    Gaussian,
}

/// Flags of `ebm sample`.
#[derive(clap::Args, Debug)]
pub struct SampleArgs {
    /// The checkpoint (safetensors written by `ebm train` or `save_energy`).
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// The number of chains, one sample each.
    #[arg(long, default_value_t = 1000)]
    pub n: usize,
    /// The sampler [default: annealed for a noise-conditional checkpoint, else langevin].
    #[arg(long, value_enum)]
    pub sampler: Option<SamplerKind>,
    /// Steps per chain (per noise level for annealed) [default: 1000, annealed 100].
    #[arg(long)]
    pub steps: Option<usize>,
    /// Step size [default: 0.01; annealed: 2e-5 (sigma_min / 0.01)^2 at the last level, as
    /// Song & Ermon].
    #[arg(long)]
    pub step_size: Option<f64>,
    /// Leapfrog steps per HMC step.
    #[arg(long, default_value_t = 10)]
    pub leapfrog_steps: usize,
    /// The seed of the start and of the chains.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the chains start.
    #[arg(long, value_enum, default_value = "uniform")]
    pub init: Init,
    /// Lower end of the uniform start [default: -4; for images, the low end of the pixel
    /// range of the run beside the checkpoint (its config.toml), else -1].
    #[arg(long, allow_negative_numbers = true)]
    pub low: Option<f64>,
    /// Upper end of the uniform start [default: 4; for images, 1].
    #[arg(long, allow_negative_numbers = true)]
    pub high: Option<f64>,
    /// Standard deviation of the Gaussian start.
    #[arg(long, default_value_t = 1.0)]
    pub init_std: f64,
    /// Largest noise level (annealed) [default: the run's (the config.toml beside the
    /// checkpoint), else 1].
    #[arg(long)]
    pub sigma_max: Option<f64>,
    /// Smallest noise level (annealed; also the level the other samplers use on a
    /// noise-conditional checkpoint) [default: the run's, else 0.01].
    #[arg(long)]
    pub sigma_min: Option<f64>,
    /// Noise levels, geometric from --sigma-max to --sigma-min (annealed) [default: the
    /// run's, else 10].
    #[arg(long)]
    pub levels: Option<usize>,
    /// Annealed: end with one denoising step, x + sigma_min^2 s(x, sigma_min) (Tweedie),
    /// as the training run's sample grids do.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub denoise: bool,
    /// Compute threads.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// The output: .csv, .npy, or .png (a grid, for image samples).
    #[arg(long)]
    pub out: PathBuf,
}

pub fn run(args: SampleArgs) -> Result<()> {
    let threads = args.threads;
    match checkpoint::dtype(&args.checkpoint)? {
        Dtype::F32 => ebm_tensor::with_threads(threads, || run_typed::<f32>(&args)),
        Dtype::F64 => ebm_tensor::with_threads(threads, || run_typed::<f64>(&args)),
    }
}

fn run_typed<T: Float>(args: &SampleArgs) -> Result<()> {
    let loaded = checkpoint::load::<T>(&args.checkpoint)?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let x0 = start::<T>(args, &loaded, &mut rng)?;
    let (x, summary) = draw(args, &loaded, x0, &mut rng)?;
    write_points(&args.out, &Tensor::from_f64s(&x.to_f64s(), x.dims()))?;
    eprintln!(
        "{summary}; wrote {} samples to {}",
        x.dim(0),
        args.out.display()
    );
    Ok(())
}

/// The default box of the uniform start: [-4, 4] for points; for images the pixel range of
/// the run the checkpoint sits in (its `config.toml`), else [-1, 1].
fn default_box<T: Float>(loaded: &Loaded<T>) -> (f64, f64) {
    if loaded.sample_shape.len() != 3 {
        return (-4.0, 4.0);
    }
    checkpoint::run_settings(&loaded.path)
        .and_then(|run| run.pixel_range)
        .unwrap_or_default()
        .bounds()
}

/// The noise levels: each flag given, else the run's (its config.toml, an `ncsn` run), else
/// 10 levels from 1 to 0.01.
fn noise_levels<T: Float>(
    args: &SampleArgs,
    loaded: &Loaded<T>,
) -> MultiScaleDenoisingScoreMatchingConfig {
    let run = checkpoint::run_settings(&loaded.path).and_then(|run| run.noise_levels);
    let base = run.unwrap_or(MultiScaleDenoisingScoreMatchingConfig {
        sigma_max: 1.0,
        sigma_min: 0.01,
        n_levels: 10,
    });
    MultiScaleDenoisingScoreMatchingConfig {
        sigma_max: args.sigma_max.unwrap_or(base.sigma_max),
        sigma_min: args.sigma_min.unwrap_or(base.sigma_min),
        n_levels: args.levels.unwrap_or(base.n_levels),
    }
}

/// `n` starting points of the model's sample shape.
pub fn start<T: Float>(
    args: &SampleArgs,
    loaded: &Loaded<T>,
    rng: &mut StdRng,
) -> Result<Tensor<T>> {
    if args.n == 0 {
        bail!("--n 0: ask for at least one sample");
    }
    let mut dims = vec![args.n];
    dims.extend_from_slice(&loaded.sample_shape);
    Ok(match args.init {
        Init::Uniform => {
            let (low, high) = default_box(loaded);
            let (low, high) = (args.low.unwrap_or(low), args.high.unwrap_or(high));
            if low >= high || low.is_nan() || high.is_nan() {
                bail!("--low {low} must be below --high {high}");
            }
            Tensor::rand_uniform(dims, low, high, rng)
        }
        Init::Gaussian => Tensor::randn(dims, rng).mul_scalar(args.init_std),
    })
}

/// Runs the chosen sampler from `x0`; the samples and a one-line summary.
fn draw<T: Float>(
    args: &SampleArgs,
    loaded: &Loaded<T>,
    x0: Tensor<T>,
    rng: &mut StdRng,
) -> Result<(Tensor<T>, String)> {
    let noise_conditional = matches!(loaded.model, Model::NoiseConditional(_));
    let kind = args.sampler.unwrap_or(if noise_conditional {
        SamplerKind::Annealed
    } else {
        SamplerKind::Langevin
    });
    if kind == SamplerKind::Annealed {
        let Model::NoiseConditional(model) = &loaded.model else {
            bail!(
                "--sampler annealed needs a noise-conditional checkpoint; {} holds a plain `{}` energy: use --sampler langevin, mala or hmc",
                loaded.path.display(),
                loaded.kind
            );
        };
        let levels = noise_levels(args, loaded);
        let mut config = levels.annealed_langevin_config();
        config.steps_per_level = args.steps.unwrap_or(100);
        config.step_size = args.step_size.unwrap_or(config.step_size);
        config.denoise_last = args.denoise;
        let sampler = AnnealedLangevin::new(config)?;
        let (x, info) = sampler.sample(rng, x0, &**model)?;
        let summary = format!(
            "annealed Langevin, {} levels from sigma {} to {} x {} steps (step {:.2e} at the last){}: {} divergent chains",
            levels.n_levels,
            levels.sigma_max,
            levels.sigma_min,
            sampler.config().steps_per_level,
            sampler.config().step_size,
            if args.denoise { ", denoised" } else { "" },
            info.n_divergent()
        );
        return Ok((x, summary));
    }
    let energy = loaded.energy(noise_levels(args, loaded).sigma_min);
    let steps = args.steps.unwrap_or(1000);
    let h = args.step_size.unwrap_or(0.01);
    let (state, acceptance, divergent) = match kind {
        SamplerKind::Langevin => chains(
            &Langevin::new(LangevinConfig::new(h))?,
            rng,
            x0,
            &*energy,
            steps,
        )?,
        SamplerKind::Mala => chains(&Mala::new(MalaConfig::new(h))?, rng, x0, &*energy, steps)?,
        _ => chains(
            &Hmc::new(HmcConfig::new(h, args.leapfrog_steps))?,
            rng,
            x0,
            &*energy,
            steps,
        )?,
    };
    let summary = format!(
        "{kind:?} ({steps} steps of size {h}): acceptance {acceptance:.3}, {divergent} divergent proposals"
    )
    .to_lowercase();
    Ok((state.position, summary))
}

/// `steps` steps of `sampler` from `x0`: the final state, the mean acceptance rate and the
/// number of divergent proposals (without keeping every step's info).
pub fn chains<T, S, E>(
    sampler: &S,
    rng: &mut StdRng,
    x0: Tensor<T>,
    energy: &E,
    steps: usize,
) -> Result<(ChainState<T>, f64, usize)>
where
    T: Float,
    S: Sampler<T, State = ChainState<T>, Info = StepInfo<T>>,
    E: Energy<T> + ?Sized,
{
    let mut state = sampler.init(x0, energy).context("starting the chains")?;
    let (mut acceptance, mut divergent) = (0.0, 0);
    for _ in 0..steps {
        let (next, info) = sampler.step(rng, state, energy)?;
        acceptance += info.acceptance_rate();
        divergent += info.n_divergent();
        state = next;
    }
    if state.position.to_f64s().iter().any(|v| !v.is_finite()) {
        bail!("the chains diverged (non-finite samples after {steps} steps); lower --step-size");
    }
    Ok((state, acceptance / steps.max(1) as f64, divergent))
}
