//! `ebm sample`, `ebm eval` and `ebm energy` on checkpoints written here, and their refusals
//! of bad input.

use assert_cmd::Command;
use ebm::energy::{Energy, GaussianEnergy, MlpEnergy, MlpEnergyConfig, save_energy};
use ebm_nn::StateDict;
use ebm_tensor::Tensor;
use predicates::prelude::*;
use rand::SeedableRng;
use std::path::{Path, PathBuf};

fn gaussian() -> GaussianEnergy<f64> {
    let mean = Tensor::from_f64s(&[0.5, -0.5], [2]);
    let cov = Tensor::from_f64s(&[1.0, 0.3, 0.3, 0.5], [2, 2]);
    GaussianEnergy::from_mean_covariance(&mean, &cov).unwrap()
}

/// A temp dir with `gaussian.safetensors` (f64) and `mlp.safetensors` (f32, 2-16-1).
fn setup() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let g = dir.path().join("gaussian.safetensors");
    save_energy(&g, &gaussian(), &StateDict::new()).unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0);
    let mlp = MlpEnergy::<f32>::new(MlpEnergyConfig::new(&[2, 16, 1]), &mut rng).unwrap();
    let m = dir.path().join("mlp.safetensors");
    save_energy(&m, &mlp, &StateDict::new()).unwrap();
    (dir, g, m)
}

fn ebm() -> Command {
    Command::cargo_bin("ebm").unwrap()
}

fn write_csv(path: &Path, x: &Tensor<f64>) {
    let d = x.dim(1);
    let rows: Vec<String> = x
        .to_f64s()
        .chunks(d)
        .map(|r| r.iter().map(f64::to_string).collect::<Vec<_>>().join(","))
        .collect();
    std::fs::write(path, rows.join("\n") + "\n").unwrap();
}

#[test]
fn sample_writes_csv_and_npy() {
    let (dir, g, m) = setup();
    let csv = dir.path().join("s.csv");
    ebm()
        .args(["sample", "--checkpoint"])
        .arg(&g)
        .args(["--n", "50", "--steps", "20"])
        .args(["--sampler", "mala", "--step-size", "0.1", "--out"])
        .arg(&csv)
        .assert()
        .success();
    let text = std::fs::read_to_string(&csv).unwrap();
    assert_eq!(text.lines().count(), 50);
    assert!(text.lines().all(|l| l.split(',').count() == 2));

    let npy = dir.path().join("s.npy");
    ebm()
        .args(["sample", "--checkpoint"])
        .arg(&m)
        .args(["--n", "30", "--steps", "10"])
        .args(["--sampler", "hmc", "--step-size", "0.05", "--out"])
        .arg(&npy)
        .assert()
        .success();
    let bytes = std::fs::read(&npy).unwrap();
    assert_eq!(&bytes[..6], b"\x93NUMPY");
    let header = String::from_utf8_lossy(&bytes[10..128]);
    assert!(header.contains("'shape': (30, 2)"), "{header}");
    assert_eq!((bytes.len() - 128) / 8, 60);
}

#[test]
fn eval_json_gives_the_exact_nll_of_a_gaussian() {
    let (dir, g, _) = setup();
    let target = gaussian();
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let x = target.sample(500, &mut rng);
    let data = dir.path().join("test.csv");
    write_csv(&data, &x);

    let out = ebm()
        .args(["eval", "--json", "--checkpoint"])
        .arg(&g)
        .arg("--data")
        .arg(&data)
        .args([
            "--ais-temperatures",
            "200",
            "--ais-chains",
            "64",
            "--ais-step-size",
            "0.2",
        ])
        .args([
            "--model-samples",
            "200",
            "--sample-steps",
            "100",
            "--sample-step-size",
            "0.2",
        ])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let report: serde_json::Value = serde_json::from_slice(&out).unwrap();

    // The closed form: mean E(x) + log Z over the same points (written with round-trip
    // precision, so read back exactly). Quadrature on [-6, 6]^2 with h = 0.03 is exact to far
    // below 1e-6 for this Gaussian (its widest sd is 1), so 1e-6 bounds it.
    let exact = target.energy(&x).mean().item() + target.log_normalizer();
    let nll = report["quadrature"]["nll"].as_f64().unwrap();
    assert!(
        (nll - exact).abs() < 1e-6,
        "quadrature NLL {nll} vs {exact}"
    );
    let border = report["quadrature"]["border_mass_fraction"]
        .as_f64()
        .unwrap();
    assert!(border < 1e-6, "{report}");

    // AIS: the forward bound is at most a few standard errors above the exact NLL and close
    // to it (a 2-D target that the fitted base nearly matches); the reverse run started from
    // MCMC chains, so its bound is flagged approximate. The chains' MMD to data from the same
    // Gaussian is within 4 standard errors of 0.
    let ais = &report["ais"];
    let lo = ais["lower"]["nll"].as_f64().unwrap();
    let se = ais["lower"]["standard_error"].as_f64().unwrap();
    assert!(
        lo < exact + 4.0 * se + 1e-3 && lo > exact - 0.2,
        "AIS lower NLL {lo} vs {exact}"
    );
    assert_eq!(ais["upper_is_exact"], false);
    let mmd = &report["mmd"];
    assert!(mmd["mmd2"].as_f64().unwrap() < 4.0 * mmd["standard_error"].as_f64().unwrap());
}

#[test]
fn eval_reads_a_built_in_set_and_prints_a_table() {
    let (_dir, _, m) = setup();
    ebm()
        .args([
            "eval",
            "--data",
            "8gaussians",
            "--n-data",
            "200",
            "--checkpoint",
        ])
        .arg(&m)
        .args([
            "--ais-temperatures",
            "20",
            "--ais-chains",
            "16",
            "--grid-points",
            "100",
        ])
        .args(["--model-samples", "50", "--sample-steps", "10"])
        .assert()
        .success()
        .stdout(predicate::str::contains("NLL (exact)"));
}

#[test]
fn energy_prints_the_analytic_score() {
    let (dir, g, _) = setup();
    let target = gaussian();
    let x = Tensor::from_f64s(&[0.0, 0.0, 1.0, -1.0, 2.5, 0.3], [3, 2]);
    let input = dir.path().join("points.csv");
    write_csv(&input, &x);
    let out = ebm()
        .args(["energy", "--score", "--checkpoint"])
        .arg(&g)
        .arg("--input")
        .arg(&input)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("energy,score_0,score_1"));
    let e = target.energy(&x).to_f64s();
    let s = target.score(&x).unwrap().to_f64s();
    for (i, line) in lines.enumerate() {
        let v: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        // Both sides are the same closed form in f64, printed with round-trip precision.
        assert!((v[0] - e[i]).abs() < 1e-12);
        assert!((v[1] - s[2 * i]).abs() < 1e-12 && (v[2] - s[2 * i + 1]).abs() < 1e-12);
    }
}

#[test]
fn bad_input_fails_with_a_clear_message_and_no_output_file() {
    let (dir, g, _) = setup();
    let out = dir.path().join("never.csv");

    // A missing checkpoint: named, and no file written.
    let missing = dir.path().join("nope.safetensors");
    ebm()
        .args(["sample", "--checkpoint"])
        .arg(&missing)
        .arg("--out")
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains("nope.safetensors"));
    assert!(!out.exists());

    // Points of the wrong dimension.
    let wide = dir.path().join("wide.csv");
    write_csv(&wide, &Tensor::zeros([4, 3]));
    ebm()
        .args(["energy", "--checkpoint"])
        .arg(&g)
        .arg("--input")
        .arg(&wide)
        .assert()
        .failure()
        .stdout("")
        .stderr(
            predicate::str::contains("3 values per point")
                .and(predicate::str::contains("wide.csv")),
        );
    ebm()
        .args(["eval", "--checkpoint"])
        .arg(&g)
        .arg("--data")
        .arg(&wide)
        .assert()
        .failure()
        .stderr(predicate::str::contains("takes samples of shape [2]"));

    // NaN in the input: the file and the row named.
    let nan = dir.path().join("nan.csv");
    std::fs::write(&nan, "1,2\n3,NaN\n").unwrap();
    ebm()
        .args(["energy", "--checkpoint"])
        .arg(&g)
        .arg("--input")
        .arg(&nan)
        .assert()
        .failure()
        .stderr(predicate::str::contains("nan.csv").and(predicate::str::contains("row 1")));

    // A sampler the checkpoint cannot run, and an unknown data set: no output.
    ebm()
        .args(["sample", "--sampler", "annealed", "--checkpoint"])
        .arg(&g)
        .arg("--out")
        .arg(&out)
        .assert()
        .failure()
        .stderr(predicate::str::contains("noise-conditional"));
    assert!(!out.exists());
    ebm()
        .args(["eval", "--data", "9gaussians", "--checkpoint"])
        .arg(&g)
        .assert()
        .failure()
        .stderr(predicate::str::contains("8gaussians"));
    let leftovers = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".tmp")
        })
        .count();
    assert_eq!(leftovers, 0);
}
