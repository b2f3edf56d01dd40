//! `ebm bench`: the benchmark workloads, timed the way the peer programs time them.
//!
//! A workload is a closure that runs one step (data, loss, gradients, optimiser update) and
//! returns its loss. Steps are timed one by one after a warm-up; the report gives the median and
//! the 10th/90th percentiles, interpolated as numpy does, so that the numbers line up with
//! `python3 shared/peers/run.py WORKLOAD --json`.

mod conv;
mod workloads;

use anyhow::{Context, Result, bail};
use std::time::Instant;

/// Flags of `ebm bench`.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// The workload to run (omit it, or pass --list, to see them all).
    workload: Option<String>,
    /// Timed steps (default: per workload, as the peers).
    #[arg(long)]
    steps: Option<usize>,
    /// Untimed steps first.
    #[arg(long)]
    warmup: Option<usize>,
    /// Seed of the weights and of the data.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Compute threads (the benchmarks are defined on 2).
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Print one JSON line with the peers' fields.
    #[arg(long)]
    json: bool,
    /// Also report the mean loss of the first and of the last 20 steps.
    #[arg(long)]
    show_loss: bool,
    /// List the workloads.
    #[arg(long)]
    list: bool,
}

/// A workload ready to run: its step (which returns the loss) and the name of its data source.
pub(crate) struct Built {
    pub step: Box<dyn FnMut() -> f64>,
    /// As the peers name it: `8gaussians`, `fashion-mnist` or `uniform-random`.
    pub data: &'static str,
}

/// One benchmark workload: its name, what a step is, and its default step counts.
pub(crate) struct Workload {
    pub name: &'static str,
    pub about: &'static str,
    pub steps: usize,
    pub warmup: usize,
    /// Builds the step function from a seed.
    pub build: fn(u64) -> Built,
    /// Work units per step (chain-steps for sampling; 1 for training).
    pub units: usize,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let all = workloads::all();
    let Some(name) = args.workload.as_deref().filter(|_| !args.list) else {
        for w in &all {
            println!(
                "{:16} {} [default {} steps, {} warm-up]",
                w.name, w.about, w.steps, w.warmup
            );
        }
        return Ok(());
    };
    let Some(workload) = all.iter().find(|w| w.name == name) else {
        let names: Vec<&str> = all.iter().map(|w| w.name).collect();
        bail!(
            "unknown workload `{name}`; the workloads are: {}",
            names.join(", ")
        );
    };
    if args.threads == 0 {
        bail!("--threads must be at least 1");
    }
    let steps = args.steps.unwrap_or(workload.steps);
    let warmup = args.warmup.unwrap_or(workload.warmup);
    if steps == 0 {
        bail!("--steps must be at least 1");
    }

    // Run on a pool of the requested size, from inside it, so that parallel kernels split their
    // work with the caller instead of handing it over and waiting.
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(args.threads)
        .build()
        .context("could not start the thread pool")?;
    let (times, losses, data) = pool.install(|| {
        let Built { mut step, data } = (workload.build)(args.seed);
        let mut times = Vec::with_capacity(steps);
        let mut losses = Vec::with_capacity(warmup + steps);
        for i in 0..warmup + steps {
            let start = Instant::now();
            let loss = step();
            let elapsed = start.elapsed().as_secs_f64() * 1e3;
            if i >= warmup {
                times.push(elapsed);
            }
            losses.push(loss);
        }
        (times, losses, data)
    });
    if let Some(i) = losses.iter().position(|l| !l.is_finite()) {
        bail!(
            "the loss of step {i} is {}: the workload diverged",
            losses[i]
        );
    }

    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let (p10, median, p90) = (
        percentile(&sorted, 0.1),
        percentile(&sorted, 0.5),
        percentile(&sorted, 0.9),
    );
    let unit = if workload.units > 1 {
        "chain-steps/s"
    } else {
        "steps/s"
    };
    let throughput = workload.units as f64 * 1e3 / median;
    let k = losses.len().min(20);
    let first = losses[..k].iter().sum::<f64>() / k as f64;
    let last = losses[losses.len() - k..].iter().sum::<f64>() / k as f64;

    if args.json {
        let mut line = serde_json::json!({
            "workload": workload.name,
            "framework": "ebm",
            "version": env!("CARGO_PKG_VERSION"),
            "threads": args.threads,
            "median_ms_per_step": round4(median),
            "p10_ms": round4(p10),
            "p90_ms": round4(p90),
            "steps": steps,
            "throughput": (throughput * 100.0).round() / 100.0,
            "throughput_unit": unit,
            "data": data,
        });
        if args.show_loss {
            line["loss_first"] = first.into();
            line["loss_last"] = last.into();
        }
        println!("{line}");
        return Ok(());
    }
    println!(
        "{} [ebm {}, {} threads; data {data}]: median {median:.3} ms/step (p10 {p10:.3}, p90 {p90:.3}) over {steps} steps after {warmup} warm-up; {throughput:.1} {unit}",
        workload.name,
        env!("CARGO_PKG_VERSION"),
        args.threads,
    );
    if args.show_loss {
        println!("  loss: mean of the first {k} steps {first:.5}, of the last {k} steps {last:.5}");
    }
    Ok(())
}

fn round4(x: f64) -> f64 {
    (x * 1e4).round() / 1e4
}

/// The q-quantile of sorted values, interpolated linearly (as numpy.percentile).
fn percentile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn percentile_interpolates_like_numpy() {
        // numpy.percentile([1, 2, 3, 4, 10], [10, 50, 90]) = [1.4, 3.0, 7.6]
        let xs = [1.0, 2.0, 3.0, 4.0, 10.0];
        for (q, want) in [(0.1, 1.4), (0.5, 3.0), (0.9, 7.6)] {
            let got = percentile(&xs, q);
            assert!((got - want).abs() < 1e-12, "q {q}: {got} vs {want}");
        }
    }
}
