//! The report of a run directory: `loss.png`, `density.png` (2-D energies) and a
//! self-contained `report.html` that shows them with the metrics and the config.
//!
//! Reads from the run directory:
//! * `metrics.jsonl` (required): one JSON object per logged step, `"step"` and metric values;
//! * `config.toml` (optional): shown verbatim;
//! * `checkpoint.safetensors` (optional): an energy saved by `ebm::energy::save_energy` (or
//!   `ebm train`), in f32 or f64. When it is a vector energy on the plane, its density
//!   exp(-E)/Z is drawn as a heat map, with Z by the midpoint rule on a grid twice the size of
//!   the picture (evaluated in the checkpoint's element type).
//!
//! Data points and model samples to draw over the density are passed in (`[n, 2]` each), and
//! so are pictures made elsewhere (the sample grids of a run on images), which the page shows
//! after its own figures.

pub mod density;
pub mod figures;
pub mod html;
pub mod metrics;

use crate::checkpoint::Dtype;
use anyhow::{Context, Result, bail};
use density::{DensityGrid, Square, density_grid, input_dim};
use ebm::energy::{EnergySpec, load_energy, read_energy_spec};
use ebm_tensor::Tensor;
use html::{Figure, Page};
use metrics::{MetricSummary, MetricsLog};
use std::path::{Path, PathBuf};

/// What [`write_report`] wrote and found.
#[derive(Clone, Debug)]
pub struct ReportSummary {
    /// The files written: `loss.png`, `density.png` when drawn, `report.html`.
    pub files: Vec<PathBuf>,
    /// Records read from `metrics.jsonl`.
    pub records: usize,
    /// The last and best value of each metric.
    pub metrics: Vec<MetricSummary>,
    /// log Z of the 2-D energy by quadrature, and the model's probability of the box shown,
    /// when the density was drawn.
    pub density: Option<(f64, f64)>,
    /// What was left out and why (no checkpoint, an energy that is not 2-D...).
    pub notes: Vec<String>,
}

/// A picture already written to the run directory, for report.html to show.
#[derive(Clone, Debug)]
pub struct Picture {
    /// The PNG file's bytes.
    pub png: Vec<u8>,
    /// What it shows.
    pub caption: String,
}

/// Writes `loss.png`, `density.png` (for a 2-D energy) and `report.html` into `run_dir`.
///
/// # Arguments
/// * `data`: data points `[n, 2]` to draw over the density, if any.
/// * `samples`: the model's samples `[n, 2]` to draw over it, if any.
/// * `pictures`: more figures for the page, shown after those it draws.
///
/// # Errors
/// A missing or malformed `metrics.jsonl` (naming the file and line), an unreadable
/// `config.toml` or checkpoint, points that are not `[n, 2]`, an energy that is not finite
/// on the grid, or a file that cannot be written.
pub fn write_report(
    run_dir: &Path,
    data: Option<&Tensor<f64>>,
    samples: Option<&Tensor<f64>>,
    pictures: &[Picture],
) -> Result<ReportSummary> {
    let log = MetricsLog::read(&run_dir.join("metrics.jsonl"))?;
    let config = read_optional(&run_dir.join("config.toml"))?;
    let data = points("data", data)?;
    let samples = points("samples", samples)?;
    let mut notes = Vec::new();

    // The figures.
    let loss_png = figures::metric_curves(&log)?;
    let mut pngs = vec![(
        "loss.png",
        loss_png,
        "each metric over the steps".to_string(),
    )];
    let grid = density(run_dir, &data, &samples, &mut notes)?;
    if let Some(grid) = &grid {
        let png = figures::density_map(grid, &data, &samples)?;
        let caption = format!(
            "learned density exp(-E)/Z (log Z = {} by quadrature), {} data points, {} samples",
            figures::short(grid.log_z),
            data.len(),
            samples.len()
        );
        pngs.push(("density.png", png, caption));
    }

    // The files.
    let mut files = Vec::new();
    for (name, png, _) in &pngs {
        files.push(write(&run_dir.join(name), png)?);
    }
    let metrics = log.summaries();
    let figures: Vec<Figure<'_>> = pngs
        .iter()
        .map(|(_, png, caption)| (png.as_slice(), caption))
        .chain(pictures.iter().map(|p| (p.png.as_slice(), &p.caption)))
        .map(|(png, caption)| Figure {
            png,
            caption: caption.clone(),
        })
        .collect();
    let title = run_dir
        .canonicalize()
        .unwrap_or_else(|_| run_dir.to_path_buf());
    let title = title.file_name().map_or_else(
        || title.display().to_string(),
        |n| n.to_string_lossy().into(),
    );
    let page = Page {
        title: &title,
        metrics: &metrics,
        records: log.records,
        figures: &figures,
        notes: &notes,
        config: config.as_deref(),
    };
    files.push(write(
        &run_dir.join("report.html"),
        html::render(&page).as_bytes(),
    )?);
    Ok(ReportSummary {
        files,
        records: log.records,
        metrics,
        density: grid.map(|g| (g.log_z, g.mass_in_view)),
        notes,
    })
}

/// The density of the run's checkpoint when it is a 2-D vector energy; `None` (with a note)
/// when there is no checkpoint or the energy is of another kind.
fn density(
    run_dir: &Path,
    data: &[[f64; 2]],
    samples: &[[f64; 2]],
    notes: &mut Vec<String>,
) -> Result<Option<DensityGrid>> {
    let path = run_dir.join("checkpoint.safetensors");
    if !path.exists() {
        notes.push("No density figure: no checkpoint.safetensors in the run directory.".into());
        return Ok(None);
    }
    let dtype = crate::checkpoint::dtype(&path)?;
    let spec = match dtype {
        Dtype::F32 => read_energy_spec::<f32>(&path),
        Dtype::F64 => read_energy_spec::<f64>(&path),
    }
    .with_context(|| format!("reading the energy in {}", path.display()))?;
    if EnergySpec::NOISE_CONDITIONAL_KINDS.contains(&spec.kind.as_str()) {
        notes.push(format!(
            "No density figure: the energy (kind {}) is noise-conditional, E(x, sigma).",
            spec.kind
        ));
        return Ok(None);
    }
    if input_dim(&spec) != Some(2) {
        notes.push(format!(
            "No density figure: the energy (kind {}) is not a function on the plane.",
            spec.kind
        ));
        return Ok(None);
    }
    let shown = Square::around(if data.is_empty() { samples } else { data });
    let grid = match dtype {
        Dtype::F32 => density_grid(load_energy::<f32>(&path)?.0.as_ref(), shown),
        Dtype::F64 => density_grid(load_energy::<f64>(&path)?.0.as_ref(), shown),
    };
    let grid = grid.with_context(|| format!("drawing the density of {}", path.display()))?;
    Ok(Some(grid))
}

/// Points `[n, 2]` as pairs (none for `None`).
fn points(what: &str, x: Option<&Tensor<f64>>) -> Result<Vec<[f64; 2]>> {
    let Some(x) = x else {
        return Ok(Vec::new());
    };
    if x.rank() != 2 || x.dim(1) != 2 {
        bail!("the {what} to draw must be [n, 2], got {}", x.shape());
    }
    Ok(x.to_f64s().chunks(2).map(|p| [p[0], p[1]]).collect())
}

/// The text of `path`, or `None` when there is no such file.
fn read_optional(path: &Path) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Writes `bytes` to `path` through a temporary name, so that a reader never sees half a file.
fn write(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ebm::energy::{GaussianEnergy, MlpEnergy, MlpEnergyConfig, save_energy};
    use ebm_nn::StateDict;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    /// A fresh, empty directory under the system's temporary directory.
    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ebm-report-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// A run directory with a config, 60 logged steps and, if `dim` is given, a checkpoint:
    /// a tiny MLP energy on the plane for 2, a Gaussian otherwise.
    fn synthetic_run(name: &str, dim: Option<usize>) -> PathBuf {
        let dir = temp_dir(name);
        let config = "# a <tiny> run & more\n[objective]\nkind = \"dsm\"\nsigma = 0.1\n";
        std::fs::write(dir.join("config.toml"), config).unwrap();
        let mut lines = String::new();
        for step in 1..=60 {
            let loss = 50.0 * (-(step as f64) / 8.0).exp();
            let gap = (step as f64 / 5.0).sin();
            lines += &format!("{{\"step\": {step}, \"loss\": {loss}, \"energy_gap\": {gap}}}\n");
        }
        std::fs::write(dir.join("metrics.jsonl"), lines).unwrap();
        let mut rng = StdRng::seed_from_u64(0);
        let path = dir.join("checkpoint.safetensors");
        match dim {
            Some(2) => {
                let mlp = MlpEnergy::<f64>::new(MlpEnergyConfig::new(&[2, 8, 1]), &mut rng);
                save_energy(&path, &mlp.unwrap(), &StateDict::new()).unwrap();
            }
            Some(d) => {
                let gaussian = GaussianEnergy::<f64>::new(d).unwrap();
                save_energy(&path, &gaussian, &StateDict::new()).unwrap();
            }
            None => {}
        }
        dir
    }

    /// Every tag of `html` is closed in order (or self-closing), and every image is a data URI.
    fn check_well_formed(html: &str) -> usize {
        let mut stack: Vec<String> = Vec::new();
        let mut images = 0;
        let mut rest = html;
        while let Some(start) = rest.find('<') {
            let end = start + rest[start..].find('>').expect("an unclosed '<'");
            let tag = &rest[start + 1..end];
            rest = &rest[end + 1..];
            if tag.starts_with('!') {
                continue;
            }
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            if let Some(closing) = tag.strip_prefix('/') {
                assert_eq!(
                    stack.pop().as_deref(),
                    Some(closing),
                    "mismatched </{closing}>"
                );
            } else if tag.ends_with('/') {
                if name == "img" {
                    assert!(
                        tag.contains("src=\"data:image/png;base64,"),
                        "{}",
                        &tag[..40]
                    );
                    images += 1;
                }
            } else {
                stack.push(name);
            }
        }
        assert!(stack.is_empty(), "unclosed tags: {stack:?}");
        images
    }

    #[test]
    fn a_report_writes_every_file_from_a_2d_run() {
        let dir = synthetic_run("2d", Some(2));
        let mut rng = StdRng::seed_from_u64(1);
        let data = Tensor::<f64>::randn([200, 2], &mut rng);
        let samples = Tensor::<f64>::randn([100, 2], &mut rng).mul_scalar(1.5);
        let summary = write_report(&dir, Some(&data), Some(&samples), &[]).unwrap();

        for name in ["loss.png", "density.png", "report.html"] {
            assert!(summary.files.contains(&dir.join(name)), "{name}");
        }
        for name in ["loss.png", "density.png"] {
            let bytes = std::fs::read(dir.join(name)).unwrap();
            assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name}");
        }
        assert_eq!(summary.records, 60);
        assert_eq!(summary.metrics[0].name, "loss");
        assert_eq!(summary.metrics[0].last.0, 60.0);
        // A smooth energy on a box twice the data's: the picture holds most of the mass.
        let (log_z, mass) = summary.density.unwrap();
        assert!(
            log_z.is_finite() && mass > 0.0 && mass <= 1.0 + 1e-9,
            "{log_z} {mass}"
        );

        let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
        assert_eq!(check_well_formed(&html), 2);
        assert!(html.contains("# a &lt;tiny&gt; run &amp; more"));
        assert!(html.contains("<td>energy_gap</td>"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn runs_without_a_2d_energy_get_no_density() {
        for (name, dim) in [("3d", Some(3)), ("none", None)] {
            let dir = synthetic_run(name, dim);
            let summary = write_report(&dir, None, None, &[]).unwrap();
            assert!(summary.density.is_none() && !dir.join("density.png").exists());
            assert_eq!(summary.notes.len(), 1, "{:?}", summary.notes);
            let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
            assert_eq!(check_well_formed(&html), 1);
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }

    #[test]
    fn bad_input_is_named() {
        let dir = synthetic_run("bad", None);
        let metrics = dir.join("metrics.jsonl");
        std::fs::write(
            &metrics,
            "{\"step\": 1, \"loss\": 1}\n\n{\"step\": 2, \"loss\": 1,\n",
        )
        .unwrap();
        let err = format!("{:#}", write_report(&dir, None, None, &[]).unwrap_err());
        assert!(
            err.contains("metrics.jsonl") && err.contains("line 3"),
            "{err}"
        );

        std::fs::remove_file(&metrics).unwrap();
        let err = format!("{:#}", write_report(&dir, None, None, &[]).unwrap_err());
        assert!(err.contains("metrics.jsonl"), "{err}");

        std::fs::write(&metrics, "{\"step\": 1}\n").unwrap();
        let wrong = Tensor::<f64>::zeros([4, 3]);
        let err = format!(
            "{:#}",
            write_report(&dir, Some(&wrong), None, &[]).unwrap_err()
        );
        assert!(err.contains("[n, 2]"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
