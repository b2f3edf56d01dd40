//! `ebm eval`: the test NLL (exact by quadrature for d <= 2, AIS bounds in any dimension, in
//! bits per dimension for images), the MMD between model samples and data, the Fisher
//! divergence to the true score (built-in sets with a known density), and the AUROC of the
//! energy against out-of-distribution sets, as a table or JSON.

use crate::checkpoint::{self, Dtype, Loaded, Model};
use crate::sample::chains;
use anyhow::{Context, Result, bail};
use ebm::data::{Dataset, ImageTransform, PixelRange, Split, Toy2d, resize_bilinear};
use ebm::energy::{GaussianEnergy, energies};
use ebm::eval::{
    Ais, AisConfig, AisEstimate, AisTransition, AisTuning, MmdBandwidth, QuadratureGrid, auroc,
    bits_per_dim, fisher_divergence, mmd_squared, nll_quadrature,
};
use ebm::objective::nce::{GaussianNoise, GaussianNoiseConfig};
use ebm::sampler::{Mala, MalaConfig};
use ebm_tensor::{Float, Tensor};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Data points at most in the MMD (an evenly strided subset of larger sets): the estimate
/// costs O((m + n)^2).
const MMD_MAX_DATA: usize = 2000;

/// Flags of `ebm eval`.
#[derive(clap::Args, Debug)]
pub struct EvalArgs {
    /// The checkpoint (safetensors written by `ebm train` or `save_energy`).
    #[arg(long)]
    checkpoint: PathBuf,
    /// Test data: a built-in 2-D set (8gaussians, ...), an image set (`fashion-mnist`: its
    /// test split; `digits`: all 1797), or a data file (.csv, .npy, IDX; optionally .gz; byte
    /// images get the pixel options).
    #[arg(long)]
    data: String,
    /// Image sets: the range pixels are mapped to (`unit` [0, 1] or `symmetric` [-1, 1]).
    /// Default: the run's (the config.toml beside the checkpoint), else symmetric.
    #[arg(long, value_name = "RANGE", value_parser = crate::train::parse_range)]
    pixel_range: Option<PixelRange>,
    /// Image sets: uniform noise of one level on every pixel (with it, the bits per
    /// dimension bound the discrete data's). Default: the run's, else true.
    #[arg(long, value_name = "BOOL", action = clap::ArgAction::Set)]
    dequantize: Option<bool>,
    /// Out-of-distribution sets, comma-separated: `uniform` (uniform noise over the range of
    /// the data's values), `digits`, `fashion-mnist` (its test split) or a data file;
    /// image sets are resized to the model's image size. Reports the AUROC of the energy
    /// (held-out data against each set).
    #[arg(long, value_delimiter = ',')]
    ood: Vec<String>,
    /// Points drawn from a built-in set.
    #[arg(long, default_value_t = 10_000)]
    n_data: usize,
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// The seed of the built-in data, AIS and the model's chains.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// The quadrature box [-R, R]^d (d <= 2).
    #[arg(long, default_value_t = 6.0)]
    grid_range: f64,
    /// Quadrature points per axis.
    #[arg(long, default_value_t = 400)]
    grid_points: usize,
    /// AIS temperatures K (0 skips AIS).
    #[arg(long, default_value_t = 1000)]
    ais_temperatures: usize,
    /// AIS chains per direction.
    #[arg(long, default_value_t = 256)]
    ais_chains: usize,
    /// MALA step size of the AIS transitions (with --ais-tune, where the pilot run starts).
    #[arg(long, default_value_t = 0.05)]
    ais_step_size: f64,
    /// Tune one AIS step size per temperature by a pilot run of 32 chains (then fixed, so
    /// the bounds keep their meaning); `false` uses --ais-step-size at every temperature.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    ais_tune: bool,
    /// The acceptance rate the tuned steps aim at.
    #[arg(long, default_value_t = 0.574)]
    ais_target_acceptance: f64,
    /// The AIS base is the Gaussian fitted to the data, its covariance times this.
    #[arg(long, default_value_t = 1.5)]
    base_inflation: f64,
    /// Model samples (MALA chains from the base) for the MMD and the reverse AIS run.
    #[arg(long, default_value_t = 1000)]
    model_samples: usize,
    /// MALA steps of those chains.
    #[arg(long, default_value_t = 500)]
    sample_steps: usize,
    /// MALA step size of those chains. Default: the tuned AIS step at the model (beta = 1),
    /// else 0.05.
    #[arg(long)]
    sample_step_size: Option<f64>,
    /// The noise level at which a noise-conditional checkpoint is evaluated. Default: the
    /// run's smallest level (its config.toml's sigma_min), else 0.01.
    #[arg(long)]
    sigma: Option<f64>,
    /// Compute threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

impl EvalArgs {
    /// Fills the pixel options and the noise level not given as flags from the run the
    /// checkpoint sits in (its config.toml), and says on stderr what it took.
    fn fill_from_run(&mut self) {
        let Some(run) = checkpoint::run_settings(&self.checkpoint) else {
            return;
        };
        let mut taken = Vec::new();
        if let (None, Some(range)) = (self.pixel_range, run.pixel_range) {
            self.pixel_range = Some(range);
            taken.push(format!("--pixel-range {}", range.name()));
        }
        if let (None, Some(dequantize)) = (self.dequantize, run.dequantize) {
            self.dequantize = Some(dequantize);
            taken.push(format!("--dequantize {dequantize}"));
        }
        if let (None, Some(levels)) = (self.sigma, run.noise_levels) {
            let sigma = levels.sigma_min;
            self.sigma = Some(sigma);
            taken.push(format!("--sigma {sigma}"));
        }
        if !taken.is_empty() {
            eprintln!("eval: {} from {}", taken.join(", "), run.path.display());
        }
    }

    /// The range of image sets' pixels.
    fn pixel_range(&self) -> PixelRange {
        self.pixel_range.unwrap_or_default()
    }

    /// The transform of image sets' pixels.
    fn transform(&self) -> ImageTransform {
        ImageTransform {
            range: self.pixel_range(),
            dequantize: self.dequantize.unwrap_or(true),
        }
    }

    /// The noise level of a noise-conditional checkpoint.
    fn sigma(&self) -> f64 {
        self.sigma.unwrap_or(0.01)
    }
}

pub fn run(mut args: EvalArgs) -> Result<()> {
    args.fill_from_run();
    let report = match checkpoint::dtype(&args.checkpoint)? {
        Dtype::F32 => ebm_tensor::with_threads(args.threads, || evaluate::<f32>(&args)),
        Dtype::F64 => ebm_tensor::with_threads(args.threads, || evaluate::<f64>(&args)),
    }?;
    if args.json {
        println!("{report}");
    } else {
        print_table(&report);
    }
    Ok(())
}

/// Test points from `name`: a built-in 2-D set, an image set (with `transform`), else a file;
/// with the number of pixel levels for image sets (for bits per dimension).
fn load_set(name: &str, args: &EvalArgs, rng: &mut StdRng) -> Result<(Tensor<f64>, Option<u32>)> {
    if let Ok(set) = name.parse::<Toy2d>() {
        return Ok((set.sample(args.n_data, rng), None));
    }
    let image_set = match name {
        "digits" => Some(Dataset::digits()),
        "fashion-mnist" => Some(Dataset::fashion_mnist(Split::Test)?),
        _ => None,
    };
    if let Some(set) = image_set {
        let set = set.with_transform(args.transform())?;
        return Ok((set.all(rng), set.levels()));
    }
    let path = Path::new(name);
    if !path.exists() {
        let names: Vec<&str> = Toy2d::ALL.iter().map(|s| s.name()).collect();
        bail!(
            "{name}: no such file, nor a built-in set ({}, digits, fashion-mnist)",
            names.join(", ")
        );
    }
    // A file: CSV, NPY or IDX (optionally .gz); quantised images (bytes) get the transform.
    let set = ebm::data::load(path)?;
    if set.is_empty() {
        bail!("{name}: holds no samples; give a file with at least one row");
    }
    let set = match set.levels() {
        Some(_) if set.sample_shape().len() == 3 => set.with_transform(args.transform())?,
        _ => set,
    };
    let levels = set.transform().and(set.levels());
    Ok((set.all(rng), levels))
}

/// An out-of-distribution set as model inputs of `shape`: `uniform` noise over the range of
/// `data`'s values, or a set resized (images) to the model's size.
fn load_ood(
    name: &str,
    args: &EvalArgs,
    data: &Tensor<f64>,
    shape: &[usize],
    rng: &mut StdRng,
) -> Result<Tensor<f64>> {
    let n = data.dim(0);
    let mut dims = vec![n];
    dims.extend_from_slice(shape);
    if name == "uniform" {
        let v = data.data();
        let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let len = dims.iter().product();
        let noise = (0..len).map(|_| lo + (hi - lo) * rng.random::<f64>());
        return Ok(Tensor::from_vec(noise.collect(), dims));
    }
    let (set, _) = load_set(name, args, rng).with_context(|| format!("--ood {name}"))?;
    match (set.dims(), shape) {
        (&[_, c, ..], &[model_c, h, w]) if set.dims().len() == 4 && c == model_c => {
            Ok(resize_bilinear(&set, h, w)?)
        }
        (found, _) if &found[1..] == shape => Ok(set),
        (found, _) => bail!(
            "--ood {name}: samples of shape {:?}, the model takes {shape:?}; give a set of the \
             model's shape (images with the model's channels are resized)",
            &found[1..]
        ),
    }
}

fn evaluate<T: Float>(args: &EvalArgs) -> Result<Value> {
    let loaded = checkpoint::load::<T>(&args.checkpoint)?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let (points, levels) = load_set(&args.data, args, &mut rng)?;
    let data = loaded.batch(&points, &format!("--data {}", args.data))?;
    let energy = loaded.energy(args.sigma());
    let d = loaded.dim();

    // The mean energy of the data, the part of the NLL that needs no normaliser.
    let e = energies(&*energy, &data).to_f64s();
    if let Some(i) = e.iter().position(|v| !v.is_finite()) {
        bail!(
            "the model's energy is {} at data point {i}: the checkpoint is broken",
            e[i]
        );
    }
    let mean_energy = e.iter().sum::<f64>() / e.len() as f64;

    // Exact NLL by quadrature in one or two dimensions.
    let quadrature = if d <= 2 && loaded.sample_shape.len() == 1 {
        let r = args.grid_range;
        let grid = QuadratureGrid::square(d, -r, r, args.grid_points);
        let q = nll_quadrature(&*energy, &data, &grid)?;
        Some(json!({
            "log_z": q.quadrature.log_z,
            "nll": q.nll,
            "nll_standard_error": q.standard_error,
            "border_mass_fraction": q.quadrature.border_mass_fraction,
            "grid": grid,
        }))
    } else {
        None
    };

    // AIS, its step sizes tuned by a pilot run from the base (the Gaussian fitted to the
    // data).
    let base = fit_base::<T>(&points, d, args.base_inflation)?;
    let ais = if args.ais_temperatures > 0 {
        let ais = Ais::new(AisConfig {
            n_temperatures: args.ais_temperatures,
            n_chains: args.ais_chains,
            transition: AisTransition::Mala(MalaConfig::new(args.ais_step_size)),
            ..AisConfig::default()
        })?;
        Some(if args.ais_tune {
            let tuning = AisTuning {
                target_acceptance: Some(args.ais_target_acceptance),
                ..AisTuning::default()
            };
            let what = format!(
                "tuning the AIS steps ({} pilot chains x {} temperatures)",
                tuning.pilot_chains, args.ais_temperatures
            );
            stage(&what, || {
                ais.tuned(&mut rng, &*energy, &base, &loaded.sample_shape, &tuning)
            })
            .context("tuning the AIS step sizes")?
        } else {
            ais
        })
    } else {
        None
    };
    let tuned_steps = ais.as_ref().and_then(Ais::step_sizes);

    // Model samples: MALA chains from the base, for the MMD and the reverse AIS run.
    let sample_step = args
        .sample_step_size
        .or_else(|| tuned_steps.and_then(|h| h.last().copied()))
        .unwrap_or(0.05);
    let x0 = base
        .sample(args.model_samples.max(2), &mut rng)
        .reshape(data_dims(&loaded, args.model_samples.max(2)));
    let mala = Mala::new(MalaConfig::new(sample_step))?;
    let what = format!(
        "model samples ({} MALA chains x {} steps)",
        x0.dim(0),
        args.sample_steps
    );
    let (state, acceptance, _) = stage(&what, || {
        chains(&mala, &mut rng, x0, &*energy, args.sample_steps)
    })?;
    let samples = state.position;
    let stride = data.dim(0).div_ceil(MMD_MAX_DATA);
    let idx: Vec<usize> = (0..data.dim(0)).step_by(stride).collect();
    let mmd = mmd_squared(&samples, &data.index_select(0, &idx), MmdBandwidth::Median)?;

    // AIS bounds on log Z, and so on the NLL.
    let ais = if let Some(ais) = &ais {
        let start = samples.narrow(0, 0, args.ais_chains.min(samples.dim(0)));
        let what = format!(
            "forward and reverse AIS ({} chains x {} temperatures each)",
            args.ais_chains, args.ais_temperatures
        );
        let b = stage(&what, || {
            ais.bounds(
                &mut rng,
                &*energy,
                &base,
                &loaded.sample_shape,
                Some(&start),
                false,
            )
        })?;
        let side = |est: &AisEstimate| {
            let nll = mean_energy + est.log_z;
            let mut v = json!({
                "log_z": est.log_z,
                "standard_error": est.standard_error,
                "effective_sample_size": est.effective_sample_size,
                "acceptance_rate": est.acceptance_rate,
                "nll": nll,
            });
            if let Some(levels) = levels {
                // The density's NLL plus the log-volume of a pixel level's bin (its width is
                // the range over the levels): an upper bound on the discrete data's NLL when
                // the test data are dequantised (Theis et al. 2016).
                let (low, high) = args.pixel_range().bounds();
                let width = high - low;
                let volume = d as f64 * (f64::from(levels) / width).ln();
                v["bits_per_dim"] = json!(bits_per_dim(nll + volume, d));
            }
            v
        };
        let range = |h: &[f64]| {
            let lo = h.iter().copied().fold(f64::INFINITY, f64::min);
            json!([lo, h.iter().copied().fold(0.0, f64::max)])
        };
        Some(json!({
            "temperatures": args.ais_temperatures,
            "chains": args.ais_chains,
            "step_size_range": tuned_steps.map_or(json!([args.ais_step_size, args.ais_step_size]), range),
            "tuned": tuned_steps.is_some(),
            "lower": side(&b.lower),
            "upper": b.upper.as_ref().map(side),
            "upper_is_exact": b.upper_is_exact,
        }))
    } else {
        None
    };

    // The Fisher divergence to the true score, for the built-in sets whose density is known.
    let target = args
        .data
        .parse::<Toy2d>()
        .ok()
        .and_then(|set| set.density::<T>());
    let fisher = match target {
        Some(target) if target.dim() == d => {
            let f = fisher_divergence(&*energy, &target, &data)?;
            Some(json!({"value": f.value, "standard_error": f.standard_error}))
        }
        _ => None,
    };

    // Out-of-distribution sets: the AUROC of the energy, data against each.
    let mut ood = Vec::new();
    for name in &args.ood {
        let set = load_ood(name, args, &points, &loaded.sample_shape, &mut rng)?;
        let set = loaded.batch(&set, &format!("--ood {name}"))?;
        let out = energies(&*energy, &set).to_f64s();
        let a = auroc(&e, &out).with_context(|| format!("--ood {name}"))?;
        ood.push(json!({
            "set": name,
            "auroc": a.auroc,
            "standard_error": a.standard_error,
            "n": a.n_outliers,
            "mean_energy": out.iter().sum::<f64>() / out.len() as f64,
        }));
    }

    Ok(json!({
        "checkpoint": args.checkpoint.display().to_string(),
        "kind": loaded.kind,
        "sigma": matches!(loaded.model, Model::NoiseConditional(_)).then(|| args.sigma()),
        "pixel_range": levels.map(|_| args.pixel_range().name()),
        "dequantize": levels.map(|_| args.transform().dequantize),
        "data": args.data,
        "n_data": data.dim(0),
        "dim": d,
        "mean_energy": mean_energy,
        "quadrature": quadrature,
        "ais": ais,
        "mmd": {
            "mmd2": mmd.mmd2,
            "standard_error": mmd.standard_error,
            "bandwidth": mmd.bandwidth,
            "model_samples": samples.dim(0),
            "data_points": idx.len(),
            "sampler_acceptance": acceptance,
            "sampler_step_size": sample_step,
        },
        "fisher_divergence": fisher,
        "ood": ood,
    }))
}

/// Runs `f`, one of the long stages of an evaluation, saying on stderr what it does and,
/// when done, how long it took.
fn stage<R>(what: &str, f: impl FnOnce() -> R) -> R {
    eprint!("eval: {what} ... ");
    let start = std::time::Instant::now();
    let result = f();
    eprintln!("{:.1} s", start.elapsed().as_secs_f64());
    result
}

fn data_dims<T: Float>(loaded: &Loaded<T>, n: usize) -> Vec<usize> {
    let mut dims = vec![n];
    dims.extend_from_slice(&loaded.sample_shape);
    dims
}

/// The Gaussian fitted to the data (flattened), covariance inflated; a diagonal one when
/// there are too few points for a full covariance (n <= 2 d).
fn fit_base<T: Float>(points: &Tensor<f64>, d: usize, inflation: f64) -> Result<GaussianEnergy<T>> {
    let n = points.dim(0);
    let flat = Tensor::<T>::from_f64s(&points.to_f64s(), [n, d]);
    let config = GaussianNoiseConfig {
        covariance_inflation: inflation,
    };
    if n > 2 * d {
        let noise =
            GaussianNoise::fit(&flat, &config).context("fitting the AIS base to the data")?;
        return Ok(noise.gaussian().clone());
    }
    let v = points.to_f64s();
    let mean: Vec<f64> = (0..d)
        .map(|j| v.iter().skip(j).step_by(d).sum::<f64>() / n as f64)
        .collect();
    let mut cov = vec![0.0; d * d];
    for j in 0..d {
        let var = v
            .iter()
            .skip(j)
            .step_by(d)
            .map(|x| (x - mean[j]).powi(2))
            .sum::<f64>()
            / n as f64;
        cov[j * d + j] = inflation * var.max(1e-6);
    }
    Ok(GaussianEnergy::from_mean_covariance(
        &Tensor::from_f64s(&mean, [d]),
        &Tensor::from_f64s(&cov, [d, d]),
    )?)
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().map_or("-".into(), |x| format!("{x:.4}"));
    println!(
        "checkpoint      {} ({})",
        r["checkpoint"].as_str().unwrap_or(""),
        r["kind"].as_str().unwrap_or("")
    );
    println!(
        "data            {} ({} points, d = {})",
        r["data"].as_str().unwrap_or(""),
        r["n_data"],
        r["dim"]
    );
    println!("mean energy     {}", f(&r["mean_energy"]));
    if let Some(q) = r["quadrature"].as_object() {
        println!(
            "NLL (exact)     {} +- {}  [quadrature; log Z {}, border mass {:.1e}]",
            f(&q["nll"]),
            f(&q["nll_standard_error"]),
            f(&q["log_z"]),
            q["border_mass_fraction"].as_f64().unwrap_or(f64::NAN)
        );
    }
    if let Some(a) = r["ais"].as_object() {
        let lo = &a["lower"];
        println!(
            "NLL >= (AIS)    {}  [log Z >= {} +- {}, ESS {:.0}]",
            f(&lo["nll"]),
            f(&lo["log_z"]),
            f(&lo["standard_error"]),
            lo["effective_sample_size"].as_f64().unwrap_or(0.0)
        );
        let hi = &a["upper"];
        if hi.is_object() {
            let how = if a["upper_is_exact"].as_bool() == Some(true) {
                ""
            } else {
                ", approximate: reverse run from MCMC samples"
            };
            println!(
                "NLL <= (AIS)    {}  [log Z <= {} +- {}, ESS {:.0}{how}]",
                f(&hi["nll"]),
                f(&hi["log_z"]),
                f(&hi["standard_error"]),
                hi["effective_sample_size"].as_f64().unwrap_or(0.0)
            );
        }
    }
    if let Some(a) = r["ais"].as_object() {
        let bits = |side: &Value| side["bits_per_dim"].as_f64();
        if let Some(lo) = bits(&a["lower"]) {
            let hi = bits(&a["upper"]).map_or("-".into(), |v| format!("{v:.4}"));
            println!("bits/dim (AIS)  >= {lo:.4}, <= {hi}  [levels' bin volume included]");
        }
        let h = &a["step_size_range"];
        let how = if a["tuned"].as_bool() == Some(true) {
            "tuned per temperature by a pilot run"
        } else {
            "fixed"
        };
        println!(
            "AIS steps       MALA step {:.2e} to {:.2e}, {} temperatures, {} chains  [{how}]",
            h[0].as_f64().unwrap_or(f64::NAN),
            h[1].as_f64().unwrap_or(f64::NAN),
            a["temperatures"],
            a["chains"]
        );
    }
    if let Some(fd) = r["fisher_divergence"].as_object() {
        println!(
            "Fisher div.     {} +- {}  [E_data ||s_model - s_true||^2, the set's true score]",
            f(&fd["value"]),
            f(&fd["standard_error"])
        );
    }
    for o in r["ood"].as_array().into_iter().flatten() {
        println!(
            "OOD AUROC       {} +- {}  [vs {}: {} points, mean energy {}]",
            f(&o["auroc"]),
            f(&o["standard_error"]),
            o["set"].as_str().unwrap_or(""),
            o["n"],
            f(&o["mean_energy"])
        );
    }
    let m = &r["mmd"];
    println!(
        "MMD^2           {} +- {}  [RBF, bandwidth {}; {} model samples vs {} data points]",
        f(&m["mmd2"]),
        f(&m["standard_error"]),
        f(&m["bandwidth"]),
        m["model_samples"],
        m["data_points"]
    );
}
