//! `ebm eval`: the test NLL (exact by quadrature for d <= 2, AIS bounds in any dimension) and
//! the MMD between model samples and data, as a table or JSON.

use crate::checkpoint::{self, Dtype, Loaded};
use crate::points::read_points;
use crate::sample::chains;
use anyhow::{Context, Result, bail};
use ebm::data::Toy2d;
use ebm::energy::{GaussianEnergy, energies};
use ebm::eval::{
    Ais, AisConfig, AisEstimate, AisTransition, MmdBandwidth, QuadratureGrid, bits_per_dim,
    mmd_squared, nll_quadrature,
};
use ebm::objective::nce::{GaussianNoise, GaussianNoiseConfig};
use ebm::sampler::{Mala, MalaConfig};
use ebm_tensor::{Float, Tensor};
use rand::SeedableRng;
use rand::rngs::StdRng;
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
    /// Test data: a built-in 2-D set (8gaussians, ...) or a .csv / .npy file.
    #[arg(long)]
    data: String,
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
    /// MALA step size of the AIS transitions.
    #[arg(long, default_value_t = 0.05)]
    ais_step_size: f64,
    /// The AIS base is the Gaussian fitted to the data, its covariance times this.
    #[arg(long, default_value_t = 1.5)]
    base_inflation: f64,
    /// Model samples (MALA chains from the base) for the MMD and the reverse AIS run.
    #[arg(long, default_value_t = 1000)]
    model_samples: usize,
    /// MALA steps of those chains.
    #[arg(long, default_value_t = 500)]
    sample_steps: usize,
    /// MALA step size of those chains.
    #[arg(long, default_value_t = 0.05)]
    sample_step_size: f64,
    /// The noise level at which a noise-conditional checkpoint is evaluated.
    #[arg(long, default_value_t = 0.01)]
    sigma: f64,
    /// Compute threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

pub fn run(args: EvalArgs) -> Result<()> {
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

/// The test points: a built-in set by name, else a file.
fn load_data(args: &EvalArgs, rng: &mut StdRng) -> Result<Tensor<f64>> {
    if let Ok(set) = args.data.parse::<Toy2d>() {
        return Ok(set.sample(args.n_data, rng));
    }
    let path = Path::new(&args.data);
    if !path.exists() {
        let names: Vec<&str> = Toy2d::ALL.iter().map(|s| s.name()).collect();
        bail!(
            "--data {}: no such file, nor a built-in set ({})",
            args.data,
            names.join(", ")
        );
    }
    read_points(path)
}

fn evaluate<T: Float>(args: &EvalArgs) -> Result<Value> {
    let loaded = checkpoint::load::<T>(&args.checkpoint)?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let points = load_data(args, &mut rng)?;
    let data = loaded.batch(&points, &format!("--data {}", args.data))?;
    let energy = loaded.energy(args.sigma);
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

    // Model samples: MALA chains from the base, for the MMD and the reverse AIS run.
    let base = fit_base::<T>(&points, d, args.base_inflation)?;
    let x0 = base
        .sample(args.model_samples.max(2), &mut rng)
        .reshape(data_dims(&loaded, args.model_samples.max(2)));
    let mala = Mala::new(MalaConfig::new(args.sample_step_size))?;
    let (state, acceptance, _) = chains(&mala, &mut rng, x0, &*energy, args.sample_steps)?;
    let samples = state.position;
    let stride = data.dim(0).div_ceil(MMD_MAX_DATA);
    let idx: Vec<usize> = (0..data.dim(0)).step_by(stride).collect();
    let mmd = mmd_squared(&samples, &data.index_select(0, &idx), MmdBandwidth::Median)?;

    // AIS bounds on log Z, and so on the NLL.
    let ais = if args.ais_temperatures > 0 {
        let ais = Ais::new(AisConfig {
            n_temperatures: args.ais_temperatures,
            n_chains: args.ais_chains,
            transition: AisTransition::Mala(MalaConfig::new(args.ais_step_size)),
            ..AisConfig::default()
        })?;
        let start = samples.narrow(0, 0, args.ais_chains.min(samples.dim(0)));
        let b = ais.bounds(
            &mut rng,
            &*energy,
            &base,
            &loaded.sample_shape,
            Some(&start),
            false,
        )?;
        let side = |est: &AisEstimate| {
            let nll = mean_energy + est.log_z;
            let mut v = json!({
                "log_z": est.log_z,
                "standard_error": est.standard_error,
                "effective_sample_size": est.effective_sample_size,
                "acceptance_rate": est.acceptance_rate,
                "nll": nll,
            });
            if loaded.sample_shape.len() == 3 {
                v["bits_per_dim"] = json!(bits_per_dim(nll, d));
            }
            v
        };
        Some(json!({
            "temperatures": args.ais_temperatures,
            "chains": args.ais_chains,
            "lower": side(&b.lower),
            "upper": b.upper.as_ref().map(side),
            "upper_is_exact": b.upper_is_exact,
        }))
    } else {
        None
    };

    Ok(json!({
        "checkpoint": args.checkpoint.display().to_string(),
        "kind": loaded.kind,
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
        },
    }))
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
