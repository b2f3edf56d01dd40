//! The samplers as pictures: two PNG figures for the README, in a few seconds on two cores.
//!
//! ```text
//! cargo run --release -p ebm --example sampler_figures [-- --seed S --out DIR]
//! ```
//!
//! Written into the output directory (`runs/sampler-figures` by default):
//! * `samplers-annealed.png`: the mixture 0.2 N((-5, -5), I) + 0.8 N((5, 5), I) of Song & Ermon
//!   (2019, section 3.2) on [-9, 9]^2. Left: its density. Middle: the first 1,000 of 2,000 chains of plain
//!   Langevin on the mixture smoothed at sigma = 1, started uniformly on [-8, 8]^2: each
//!   chain stays in the basin it starts in, so the modes keep the split of the starting points
//!   (about half each). Right: annealed Langevin from the same start (10 levels from sigma =
//!   20 down to 1, the same number of steps): the chains cross between the modes while the
//!   noise is large, and end with the mixture's weights. Under each panel a bar shows the
//!   fraction of the mass (left) or of the chains (middle, right) near the heavy mode, with a
//!   tick at its true value 0.8.
//! * `samplers-landscapes.png`: a banana, a ring and a double well. Each panel is exp(-E) on a
//!   square window, with one MALA draw per chain on top (1,000 chains started uniformly on the
//!   window's middle half, step size tuned by dual averaging over 1,000 warm-up steps, then
//!   4,000 steps, every 20th recorded for the diagnostics).
//!
//! Heat maps are viridis, linear from 0 to the panel's maximum; draws are white dots with a
//! dark rim. The numbers behind the pictures (fractions, acceptance, ESS, split R-hat) are
//! printed.

// The pixel buffer, PNG encoder and colour map of the other example (which also holds a loss
// chart this one does not draw, hence the allowance).
#[allow(dead_code)]
#[path = "train_8gaussians/figures.rs"]
mod figures;

use ebm::energy::{
    AtNoiseLevel, BananaConfig, BananaEnergy, DoubleWellConfig, DoubleWellEnergy, Energy,
    GaussianMixtureEnergy, RingConfig, RingEnergy,
};
use ebm::sampler::{
    AnnealedLangevin, AnnealedLangevinConfig, Langevin, LangevinConfig, Mala, MalaConfig, Sampler,
    run as run_chains, trace, warmup,
};
use ebm_tensor::Tensor;
use ebm_tensor::autodiff::no_grad;
use figures::{Canvas, Rgb, viridis};
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

type Error = Box<dyn std::error::Error + Send + Sync>;

const USAGE: &str = "usage: sampler_figures [--seed S] [--out DIR]
  --seed S   seed of the starting points and the samplers' noise (default 0)
  --out DIR  output directory (default runs/sampler-figures)";
const DEFAULT_OUT: &str = "runs/sampler-figures";
/// Rayon threads for the whole run.
const THREADS: usize = 2;

/// Pixels per panel side, between panels, and around the figure.
const SIDE: usize = 320;
const GAP: usize = 12;
const MARGIN: usize = 12;
/// The bar under each panel of the first figure: its height and its distance from the panel.
const BAR: usize = 14;
const BAR_GAP: usize = 8;

const WHITE: Rgb = [255, 255, 255];
const DOT: Rgb = [255, 255, 255];
const DOT_RIM: Rgb = [20, 20, 20];
const BAR_HEAVY: Rgb = [45, 45, 45];
const BAR_LIGHT: Rgb = [205, 205, 205];
const BAR_TICK: Rgb = [220, 40, 40];

/// The mixture of Song & Ermon 2019 (section 3.2): (weight, mean), unit standard deviations.
const MODES: [(f64, [f64; 2]); 2] = [(0.2, [-5.0, -5.0]), (0.8, [5.0, 5.0])];
/// Chains of each sampler (the fractions count all; the pictures show the first half).
const MIXTURE_CHAINS: usize = 2000;

/// Chains, warm-up steps and recorded steps (every `THIN`-th kept) of MALA per landscape.
const MALA_CHAINS: usize = 1000;
const WARMUP_STEPS: usize = 1000;
const TRACE_STEPS: usize = 4000;
const THIN: usize = 20;

/// What the flags ask for.
struct Settings {
    seed: u64,
    out: PathBuf,
}

fn main() -> ExitCode {
    let settings = match parse_args(std::env::args().skip(1)) {
        Ok(Some(settings)) => settings,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("error: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match ebm_tensor::with_threads(THREADS, || run(&settings)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The settings from the command line, or `None` for `--help`.
fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Option<Settings>, String> {
    let mut settings = Settings {
        seed: 0,
        out: PathBuf::from(DEFAULT_OUT),
    };
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Ok(None);
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seed" => {
                settings.seed = value
                    .parse()
                    .map_err(|_| format!("--seed takes a whole number, got `{value}`"))?
            }
            "--out" => settings.out = PathBuf::from(&value),
            _ => return Err(format!("unknown flag `{flag}`")),
        }
    }
    Ok(Some(settings))
}

fn run(settings: &Settings) -> Result<(), Error> {
    let start = Instant::now();
    let out = &settings.out;
    std::fs::create_dir_all(out).map_err(|e| format!("cannot create {}: {e}", out.display()))?;
    let mut rng = StdRng::seed_from_u64(settings.seed);

    let annealed = annealed_figure(&mut rng)?;
    write_atomically(&out.join("samplers-annealed.png"), &annealed.to_png()?)?;
    let landscapes = landscapes_figure(&mut rng)?;
    write_atomically(&out.join("samplers-landscapes.png"), &landscapes.to_png()?)?;

    println!(
        "\nwrote samplers-annealed.png and samplers-landscapes.png to {} in {:.1} s",
        out.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Figure 1: the mixture's density, plain Langevin, annealed Langevin.
fn annealed_figure(rng: &mut StdRng) -> Result<Canvas, Error> {
    let weights = Tensor::<f64>::from_f64s(&MODES.map(|(w, _)| w), [2]);
    let means = Tensor::from_f64s(MODES.map(|(_, mu)| mu).as_flattened(), [2, 2]);
    let mixture = GaussianMixtureEnergy::from_parts(&weights, &means, &Tensor::ones([2]))?;
    let view = View {
        centre: [0.0, 0.0],
        half: 9.0,
    };

    // Song & Ermon's schedule (10 levels from 20 down to 1, epsilon = 0.1), with 300 steps per
    // level rather than their 100, so that the chains settle at each level (see
    // tests/diag_annealed.rs).
    let config = AnnealedLangevinConfig {
        steps_per_level: 300,
        step_size: 0.1,
        ..AnnealedLangevinConfig::geometric(20.0, 1.0, 10)
    };
    let sigma_min = config.sigmas[config.sigmas.len() - 1];
    let x0 = Tensor::<f64>::rand_uniform([MIXTURE_CHAINS, 2], -8.0, 8.0, rng);

    // Plain Langevin on the energy at sigma_min, with the last level's step (alpha / 2 in the
    // x - eps grad E + sqrt(2 eps) z form) and the same number of steps.
    let at_min = AtNoiseLevel::new(&mixture, sigma_min);
    let plain = Langevin::new(LangevinConfig::new(config.level_step_size(9) / 2.0))?;
    let state = plain.init(x0.clone(), &at_min)?;
    let (state, _) = run_chains(&plain, rng, state, &at_min, config.n_steps())?;
    let plain_x = state.position.to_f64s();

    let sampler = AnnealedLangevin::new(config.clone())?;
    let (annealed_x, info) = sampler.sample(rng, x0.clone(), &mixture)?;
    let annealed_x = annealed_x.to_f64s();

    let start = heavy_fraction(&x0.to_f64s());
    let (plain_f, annealed_f) = (heavy_fraction(&plain_x), heavy_fraction(&annealed_x));
    println!("samplers-annealed.png: mixture 0.2 N((-5,-5), I) + 0.8 N((5,5), I), x, y in [-9, 9]");
    println!(
        "  {MIXTURE_CHAINS} chains from U[-8, 8]^2 ({start:.3} start nearer the heavy mode), \
         {} steps each",
        config.n_steps()
    );
    println!("  fraction of chains near the weight-0.8 mode (5, 5):");
    println!("    plain Langevin at sigma = {sigma_min}:          {plain_f:.3}");
    println!(
        "    annealed Langevin (sigma 20 -> {sigma_min}, 10 levels): {annealed_f:.3} \
         ({} divergent)",
        info.n_divergent()
    );

    // The true density; the two samplers' draws on the density they target (sigma_min).
    let grid = view.points(SIDE);
    let density = no_grad(|| (-mixture.energy(&grid)).exp().to_f64s());
    let smoothed = no_grad(|| (-at_min.energy(&grid)).exp().to_f64s());
    let mut canvas = figure_canvas(3, BAR_GAP + BAR);
    for (i, (values, draws, fraction)) in [
        (&density, None, MODES[1].0),
        (&smoothed, Some(&plain_x), plain_f),
        (&smoothed, Some(&annealed_x), annealed_f),
    ]
    .into_iter()
    .enumerate()
    {
        let origin = panel_origin(i);
        heat_map(&mut canvas, origin, values);
        if let Some(draws) = draws {
            // Half the chains, so that the dots do not cover the heat map.
            dots(&mut canvas, origin, &view, &draws[..MIXTURE_CHAINS], 1.6);
        }
        let bar_top = origin.1 + (SIDE + BAR_GAP) as i64;
        fraction_bar(&mut canvas, (origin.0, bar_top), fraction, MODES[1].0);
    }
    Ok(canvas)
}

/// The fraction of the points (flat x, y pairs) nearer (5, 5) than (-5, -5).
fn heavy_fraction(xy: &[f64]) -> f64 {
    let near = xy.chunks_exact(2).filter(|p| p[0] + p[1] > 0.0).count();
    near as f64 / (xy.len() / 2) as f64
}

/// Figure 2: MALA on three landscapes.
fn landscapes_figure(rng: &mut StdRng) -> Result<Canvas, Error> {
    let banana = BananaEnergy::<f64>::new(BananaConfig {
        dim: 2,
        scale: 1.5,
        curvature: 0.6,
    })?;
    let ring = RingEnergy::<f64>::new(RingConfig {
        dim: 2,
        radius: 3.0,
        scale: 0.3,
    })?;
    let well = DoubleWellEnergy::<f64>::new(DoubleWellConfig {
        dim: 2,
        barrier: 3.0,
    })?;
    let panels: [(&str, &dyn Energy<f64>, View); 3] = [
        (
            "banana (s 1.5, b 0.6)",
            &banana,
            View {
                centre: [0.0, 1.5],
                half: 5.0,
            },
        ),
        (
            "ring (r 3, s 0.3)",
            &ring,
            View {
                centre: [0.0, 0.0],
                half: 4.5,
            },
        ),
        (
            "double well (a 3)",
            &well,
            View {
                centre: [0.0, 0.0],
                half: 3.0,
            },
        ),
    ];

    println!(
        "\nsamplers-landscapes.png: MALA, {MALA_CHAINS} chains from uniform on the middle half of each window, \
         {WARMUP_STEPS} warm-up steps (dual averaging to 0.574), then {TRACE_STEPS} steps, \
         every {THIN}th recorded"
    );
    let mut canvas = figure_canvas(3, 0);
    for (i, (name, energy, view)) in panels.into_iter().enumerate() {
        // Starting points uniform on the middle half of the window: further out, where these
        // energies are steep (quartic in the double well and the banana), a step size tuned
        // for the bulk overshoots, and a chain started there can wait a long time for its
        // first accepted move.
        let (lo, hi) = view.range();
        let centre = Tensor::from_f64s(&view.centre, [1, 2]);
        let x0 = &Tensor::<f64>::rand_uniform([MALA_CHAINS, 2], -0.5, 0.5, rng)
            .mul_scalar(view.half)
            + &centre;

        let mala = Mala::new(MalaConfig::new(0.1))?;
        let state = mala.init(x0, energy)?;
        let tuned = warmup(&mala, rng, state, energy, WARMUP_STEPS, None)?;
        let (state, recorded) = trace(&tuned.sampler, rng, tuned.state, energy, TRACE_STEPS, THIN)?;
        let ess = recorded.effective_sample_size()?;
        let rhat = recorded.split_rhat()?;
        println!(
            "  {name:<22} window [{:.1}, {:.1}] x [{:.1}, {:.1}]: step size {:.3}, acceptance \
             {:.3}, ESS [{:.0}, {:.0}] of {} draws, split R-hat [{:.3}, {:.3}], {} divergent (rejected) proposals",
            lo[0],
            hi[0],
            lo[1],
            hi[1],
            tuned.sampler.config().step_size,
            recorded.acceptance.mean,
            ess[0],
            ess[1],
            recorded.n_draws() * recorded.n_chains(),
            rhat[0],
            rhat[1],
            recorded.acceptance.n_divergent
        );

        let density = no_grad(|| {
            let e = energy.energy(&view.points(SIDE)).to_f64s();
            let min = e.iter().copied().fold(f64::INFINITY, f64::min);
            e.iter().map(|e| (min - e).exp()).collect::<Vec<_>>()
        });
        let origin = panel_origin(i);
        heat_map(&mut canvas, origin, &density);
        dots(&mut canvas, origin, &view, &state.position.to_f64s(), 1.8);
    }
    Ok(canvas)
}

/// A square window of the plane: its centre and half-width.
#[derive(Clone, Copy)]
struct View {
    centre: [f64; 2],
    half: f64,
}

impl View {
    /// The lower and upper corners.
    fn range(&self) -> ([f64; 2], [f64; 2]) {
        let [cx, cy] = self.centre;
        (
            [cx - self.half, cy - self.half],
            [cx + self.half, cy + self.half],
        )
    }

    /// The centres of `side` x `side` pixels, `[side^2, 2]`, row by row from the top (y up).
    fn points(&self, side: usize) -> Tensor<f64> {
        let (lo, hi) = self.range();
        let h = 2.0 * self.half / side as f64;
        let mut xy = Vec::with_capacity(2 * side * side);
        for row in 0..side {
            for col in 0..side {
                xy.push(lo[0] + (col as f64 + 0.5) * h);
                xy.push(hi[1] - (row as f64 + 0.5) * h);
            }
        }
        Tensor::from_f64s(&xy, [side * side, 2])
    }

    /// The pixel coordinates (column, row; fractional) of the point (`x`, `y`) in a panel of
    /// `side` pixels.
    fn pixel_of(&self, x: f64, y: f64, side: usize) -> (f64, f64) {
        let (lo, hi) = self.range();
        let h = 2.0 * self.half / side as f64;
        ((x - lo[0]) / h, (hi[1] - y) / h)
    }
}

/// A white canvas for `panels` panels side by side, each with `below` extra pixels under it.
fn figure_canvas(panels: usize, below: usize) -> Canvas {
    let width = 2 * MARGIN + panels * SIDE + (panels - 1) * GAP;
    let height = 2 * MARGIN + SIDE + below;
    Canvas::new(width, height, WHITE)
}

/// The top-left pixel of panel `i`.
fn panel_origin(i: usize) -> (i64, i64) {
    ((MARGIN + i * (SIDE + GAP)) as i64, MARGIN as i64)
}

/// `values` (`SIDE` x `SIDE`, row-major from the top) in viridis from 0 to their maximum.
fn heat_map(canvas: &mut Canvas, (x0, y0): (i64, i64), values: &[f64]) {
    let max = values.iter().copied().fold(f64::MIN_POSITIVE, f64::max);
    for (i, &v) in values.iter().enumerate() {
        let (col, row) = ((i % SIDE) as i64, (i / SIDE) as i64);
        canvas.set(x0 + col, y0 + row, viridis(v / max));
    }
}

/// The points (flat x, y pairs) as white dots of radius `r` pixels with a dark rim, clipped
/// to the panel.
fn dots(canvas: &mut Canvas, (x0, y0): (i64, i64), view: &View, xy: &[f64], r: f64) {
    let inside =
        |(c, r): (f64, f64)| (0.0..SIDE as f64).contains(&c) && (0.0..SIDE as f64).contains(&r);
    let pixels: Vec<(f64, f64)> = xy
        .chunks_exact(2)
        .map(|p| view.pixel_of(p[0], p[1], SIDE))
        .filter(|&p| inside(p))
        .collect();
    // All the rims first, then all the centres, so that overlapping dots stay white.
    for &(c, row) in &pixels {
        canvas.disc(x0 as f64 + c, y0 as f64 + row, r, DOT_RIM);
    }
    for &(c, row) in &pixels {
        canvas.disc(x0 as f64 + c, y0 as f64 + row, r - 0.7, DOT);
    }
}

/// A bar as wide as a panel: dark for `fraction` of it from the left, light for the rest, with
/// a red tick at `target`.
fn fraction_bar(canvas: &mut Canvas, (x0, y0): (i64, i64), fraction: f64, target: f64) {
    let side = SIDE as i64;
    let split = x0 + (fraction.clamp(0.0, 1.0) * side as f64).round() as i64;
    let bottom = y0 + BAR as i64;
    canvas.fill((x0, split), (y0, bottom), BAR_HEAVY);
    canvas.fill((split, x0 + side), (y0, bottom), BAR_LIGHT);
    let tick = x0 + (target * side as f64).round() as i64;
    canvas.fill((tick - 1, tick + 2), (y0 - 4, bottom + 4), BAR_TICK);
}

/// Writes `bytes` to a temporary file next to `path`, then renames it over `path`, so that a
/// failed write leaves no partial file behind.
fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let name = path.file_name().ok_or("no file name")?.to_string_lossy();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = std::fs::File::create(&temp)
        .and_then(|mut file| {
            file.write_all(bytes)?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        return Err(format!("cannot write {}: {e}", path.display()).into());
    }
    Ok(())
}
