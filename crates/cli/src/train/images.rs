//! The pictures of a run on images: grids of the model's samples, drawn by the method's own
//! sampler, and of the training data.
//!
//! How the samples are drawn:
//! * maximum likelihood with a replay buffer or persistent chains (`replay`, `pcd`): [`GRID`]
//!   of the kept chains, picked at random, each moved by the method's kernel for its
//!   `n_steps` once more (what a training step does to its negatives, without restarts);
//! * `short-run`: fresh chains from uniform noise over the data range, `n_steps` of its kernel;
//! * other MCMC methods (`cd`, whose chains start at the data) and methods without a sampler:
//!   [`FROM_NOISE_STEPS`] steps of the method's kernel (Langevin of step 0.01 without one)
//!   from uniform noise over the data range;
//! * noise-conditional energies (`ncsn`): annealed Langevin over the method's noise levels
//!   (its `annealed_langevin_config`, 100 steps per level, ending with a denoising step) from
//!   uniform noise over the data range.
//!
//! Samples are kept as drawn (`samples.npy`); only the picture clamps them to the data range,
//! and its caption says how many pixels that touched.

use super::config::TrainConfig;
use super::data::DataSource;
use super::setup::{Session, Setup};
use crate::points::{png_grid, write_points};
use crate::report::Picture;
use crate::sample::chains;
use anyhow::{Context, Result, bail};
use ebm::energy::{EnergyModel, NoiseConditionalModel};
use ebm::objective::multiscale::MultiScaleDenoisingScoreMatchingConfig;
use ebm::objective::{ChainInit, McmcKernel, SamplerKnobs};
use ebm::sampler::{AnnealedLangevin, Hmc, Langevin, LangevinConfig, Mala};
use ebm::train::step_rng;
use ebm_nn::StateDict;
use ebm_tensor::Tensor;
use rand::rngs::StdRng;
use rand::seq::index;
use std::path::Path;

/// The random stream of the final pictures: the number of no training step.
const STREAM: u64 = u64::MAX;

/// The files written, each with a line saying what it holds.
pub type Written = Vec<(String, String)>;

/// The final pictures of a run on images, written to `dir`: `samples.png` and `samples.npy`
/// (the model's samples, by the method's sampler) and `data.png` (training images); with the
/// grids written during training (`samples-<step>.png`, read back), as the report shows them,
/// and a line per file written for the summary.
///
/// # Errors
/// Samples that cannot be drawn (a diverging sampler), or a file that cannot be written.
pub fn final_pictures(dir: &Path, setup: &Setup) -> Result<(Vec<Picture>, Written)> {
    let (_, range) = image_space(&setup.data)?;
    let mut rng = step_rng(setup.config.seed, STREAM);
    let data = data_sample(&setup.data, &mut rng);
    let drawn = match &setup.session {
        Session::Energy(t) => {
            let state = t.objective().state_dict();
            energy_samples(&setup.config, &setup.data, t.model(), &state, &mut rng)?
        }
        Session::NoiseConditional(t) => {
            noise_conditional_samples(&setup.config, &setup.data, t.model(), &mut rng)?
        }
    };
    let (samples_png, outside) = grid(&drawn.samples, range)?;
    let (data_png, _) = grid(&data, range)?;
    write_points(&dir.join("samples.npy"), &drawn.samples)?;
    crate::points::write_atomically(&dir.join("samples.png"), &samples_png)?;
    crate::points::write_atomically(&dir.join("data.png"), &data_png)?;

    // The pictures, in the report's order: final samples, data, then the samples over time.
    let (low, high) = range;
    let step = |s: u64| format!("at step {s}");
    let mut pictures = vec![
        Picture {
            png: samples_png,
            caption: format!(
                "samples.png: {} model samples {}, {}; {:.2}% of their pixel values lie outside the data range [{low}, {high}] and are clamped to it in this picture only (samples.npy holds them as drawn)",
                drawn.samples.dim(0),
                step(setup.config.steps),
                drawn.how,
                100.0 * outside
            ),
        },
        Picture {
            png: data_png,
            caption: format!(
                "data.png: {} training images as the model sees them (range [{low}, {high}])",
                data.dim(0)
            ),
        },
    ];
    for (s, path) in snapshots(dir, setup.config.steps)? {
        let png = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        pictures.push(Picture {
            png,
            caption: format!(
                "samples-{s}.png: model samples {}, drawn as samples.png",
                step(s)
            ),
        });
    }
    let written = vec![
        (
            "samples.png".to_string(),
            format!("{} model samples: {}", drawn.samples.dim(0), drawn.how),
        ),
        (
            "samples.npy".to_string(),
            "the same samples, as drawn (not clamped)".to_string(),
        ),
        (
            "data.png".to_string(),
            format!("{} training images", data.dim(0)),
        ),
    ];
    Ok((pictures, written))
}

/// The `samples-<step>.png` of `dir` up to step `last`, by step.
fn snapshots(dir: &Path, last: u64) -> Result<Vec<(u64, std::path::PathBuf)>> {
    let mut found = Vec::new();
    let entries = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for entry in entries {
        let path = entry?.path();
        let name = path.file_name().unwrap_or_default().to_string_lossy();
        let step = name
            .strip_prefix("samples-")
            .and_then(|rest| rest.strip_suffix(".png"))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(s) = step.filter(|&s| s <= last) {
            found.push((s, path));
        }
    }
    found.sort();
    Ok(found)
}

/// Images in a grid (8 x 8).
pub const GRID: usize = 64;
/// Kernel steps from noise for methods whose training chains are not kept.
pub const FROM_NOISE_STEPS: usize = 500;
/// The saved tensors of the chains that maximum likelihood keeps.
const REPLAY_BUFFER: &str = "replay_buffer.buffer";
const PERSISTENT: &str = "chains";

/// Model samples and how they were drawn.
pub struct Drawn {
    /// The samples, `[GRID, c, h, w]`, as drawn (not clamped).
    pub samples: Tensor<f64>,
    /// One line saying how.
    pub how: String,
}

/// [`GRID`] samples of a plain energy, by the method's sampler; `chains` is the objective's
/// saved state (its replay buffer or persistent chains, when it keeps them).
///
/// # Errors
/// A kernel setting its constructor refuses, or chains that diverge.
pub fn energy_samples(
    config: &TrainConfig,
    data: &DataSource,
    model: &dyn EnergyModel<f32>,
    chains_state: &StateDict<f32>,
    rng: &mut StdRng,
) -> Result<Drawn> {
    let (shape, (low, high)) = image_space(data)?;
    let method = &config.method;
    let (kernel, kernel_name) = method_kernel(config)?;
    let n_steps = method.config.get("n_steps").and_then(|n| n.as_u64());
    let n_steps = n_steps.map(|n| n as usize);
    let kept = [REPLAY_BUFFER, PERSISTENT]
        .iter()
        .find_map(|key| chains_state.tensors.get(*key).map(|x| (*key, x)));
    let short_run = matches!(
        method
            .config
            .get("chain_init")
            .map(|c| serde_json::from_value(c.clone())),
        Some(Ok(ChainInit::Noise(_)))
    );

    // Where the chains start, and for how many steps they run.
    let (x0, steps, start) = match (kept, n_steps) {
        (Some((key, chains)), Some(n)) => {
            let rows = index::sample(rng, chains.dim(0), GRID.min(chains.dim(0))).into_vec();
            let x0 = chains.index_select(0, &rows);
            let what = if key == REPLAY_BUFFER {
                "the replay buffer"
            } else {
                "the persistent chains"
            };
            (x0, n, format!("{} chains of {what}", rows.len()))
        }
        (None, Some(n)) if short_run => (noise(shape, low, high, rng), n, uniform(low, high)),
        _ => (
            noise(shape, low, high, rng),
            FROM_NOISE_STEPS,
            uniform(low, high),
        ),
    };
    let drawn = match &kernel {
        McmcKernel::Langevin(c) => chains(&Langevin::new(c.clone())?, rng, x0, model, steps),
        McmcKernel::Mala(c) => chains(&Mala::new(c.clone())?, rng, x0, model, steps),
        McmcKernel::Hmc(c) => chains(&Hmc::new(c.clone())?, rng, x0, model, steps),
    };
    let (state, _, _) = drawn.with_context(|| format!("drawing samples by {kernel_name}"))?;
    let x = &state.position;
    Ok(Drawn {
        samples: Tensor::from_f64s(&x.to_f64s(), x.dims()),
        how: format!("{steps} steps of {kernel_name} from {start}"),
    })
}

/// [`GRID`] samples of a noise-conditional energy by annealed Langevin over the method's
/// noise levels, from uniform noise over the data range.
///
/// # Errors
/// Method settings that are not those of `ncsn`, or chains that diverge.
pub fn noise_conditional_samples(
    config: &TrainConfig,
    data: &DataSource,
    model: &dyn NoiseConditionalModel<f32>,
    rng: &mut StdRng,
) -> Result<Drawn> {
    let (shape, (low, high)) = image_space(data)?;
    let levels: MultiScaleDenoisingScoreMatchingConfig =
        serde_json::from_value(serde_json::Value::Object(config.method.config.clone()))
            .context("the method's noise levels")?;
    let mut annealed = levels.annealed_langevin_config();
    annealed.denoise_last = true;
    let sampler = AnnealedLangevin::new(annealed.clone())?;
    let x0 = noise(shape, low, high, rng);
    let (x, info) = sampler.sample(rng, x0, model)?;
    if x.data().iter().any(|v| !v.is_finite()) || info.n_divergent() > 0 {
        bail!(
            "annealed Langevin diverged ({} divergent chains); lower step_size or sigma_max",
            info.n_divergent()
        );
    }
    let how = format!(
        "annealed Langevin, {} levels from sigma {} to {} x {} steps (step {:.2e} at the last), denoised, from {}",
        annealed.n_levels(),
        levels.sigma_max,
        levels.sigma_min,
        annealed.steps_per_level,
        annealed.step_size,
        uniform(low, high)
    );
    Ok(Drawn {
        samples: Tensor::from_f64s(&x.to_f64s(), x.dims()),
        how,
    })
}

/// A grid of `[n, c, h, w]` images with values in `[low, high]`, as PNG bytes, and the
/// fraction of values outside that range (clamped in the picture only). Small images are
/// enlarged (each pixel a square of [`DISPLAY_SIDE`] / side pixels) so that the grid is
/// readable.
///
/// # Errors
/// Images that a PNG cannot show (not 1 or 3 channels).
pub fn grid(x: &Tensor<f64>, (low, high): (f64, f64)) -> Result<(Vec<u8>, f64)> {
    let span = (high - low).max(1e-12);
    let v = x.to_f64s();
    let outside = v.iter().filter(|&&p| p < low || p > high).count();
    let (n, c, h, w) = match *x.dims() {
        [n, c, h, w] => (n, c, h, w),
        _ => bail!("image samples must be [n, c, h, w], got {:?}", x.dims()),
    };
    let k = (DISPLAY_SIDE / h.max(w)).max(1);
    let mut unit = Vec::with_capacity(v.len() * k * k);
    for plane in v.chunks(h * w) {
        for i in 0..h * k {
            for j in 0..w * k {
                unit.push((plane[(i / k) * w + j / k] - low) / span);
            }
        }
    }
    let png = png_grid(&Tensor::from_f64s(&unit, [n, c, h * k, w * k]))?;
    Ok((png, outside as f64 / v.len().max(1) as f64))
}

/// The least side, in pixels, of an image in a grid.
pub const DISPLAY_SIDE: usize = 48;

/// [`GRID`] training images (or all of a smaller set), as the model sees them.
pub fn data_sample(data: &DataSource, rng: &mut StdRng) -> Tensor<f64> {
    let x = data.sample(GRID, rng);
    Tensor::from_f64s(&x.to_f64s(), x.dims())
}

/// The image shape and the data's value range.
fn image_space(data: &DataSource) -> Result<([usize; 3], (f64, f64))> {
    match (data.image_shape(), data.value_range()) {
        (Some(shape), Some(range)) => Ok((shape, range)),
        _ => bail!("the data are not images [c, h, w] with 1 or 3 channels"),
    }
}

/// [`GRID`] images of uniform noise over `[low, high]`.
fn noise([c, h, w]: [usize; 3], low: f64, high: f64, rng: &mut StdRng) -> Tensor<f32> {
    Tensor::rand_uniform([GRID, c, h, w], low, high, rng)
}

fn uniform(low: f64, high: f64) -> String {
    format!("uniform noise on [{low}, {high}]")
}

/// The method's MCMC kernel (its step size for `mvl`), or Langevin of step 0.01; and a name
/// for it.
pub fn method_kernel(config: &TrainConfig) -> Result<(McmcKernel, String)> {
    let method = &config.method;
    let default = LangevinConfig::new(0.01);
    let kernel = match method.info()?.sampler {
        SamplerKnobs::Mcmc => serde_json::from_value(method.config["kernel"].clone())
            .context("the method's kernel settings")?,
        SamplerKnobs::LangevinStep => {
            let h = method.config["step_size"]
                .as_f64()
                .unwrap_or(default.step_size);
            McmcKernel::Langevin(LangevinConfig::new(h))
        }
        SamplerKnobs::None => McmcKernel::Langevin(default),
    };
    let name = match &kernel {
        McmcKernel::Langevin(c) if c.noise_scale != (2.0 * c.step_size).sqrt() => {
            format!("Langevin (step {}, noise {})", c.step_size, c.noise_scale)
        }
        McmcKernel::Langevin(c) => format!("Langevin (step {})", c.step_size),
        McmcKernel::Mala(c) => format!("MALA (step {})", c.step_size),
        McmcKernel::Hmc(c) => format!("HMC (step {})", c.step_size),
    };
    Ok((kernel, name))
}
