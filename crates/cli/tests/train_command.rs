//! `ebm train` end to end: every method trains, a bad setting is refused before anything is
//! written, a divergence keeps the last good checkpoint, and an interrupted run resumed from
//! its checkpoint ends with the same weights, bit for bit, as an uninterrupted one.

use assert_cmd::Command;
use ebm::objective::METHODS;
use ebm_nn::{StateDict, read_safetensors};
use std::ffi::OsString;
use std::path::Path;

/// The binary under test.
fn ebm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ebm"))
}

/// The arguments of a small, fast run: few steps of small batches on one thread.
fn small_args(out: &Path, extra: &[&str]) -> Vec<OsString> {
    let mut args: Vec<OsString> = ["train", "--batch-size", "16", "--threads", "1"]
        .iter()
        .chain(&["--log-every", "1", "--out"])
        .map(OsString::from)
        .collect();
    args.push(out.into());
    args.extend(extra.iter().map(OsString::from));
    args
}

/// A small, fast run.
fn small(out: &Path, extra: &[&str]) -> Command {
    let mut cmd = ebm();
    cmd.args(small_args(out, extra));
    cmd
}

/// The metrics of a run, one JSON object per line.
fn metrics(dir: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn checkpoint(dir: &Path) -> StateDict<f32> {
    read_safetensors::<f32>(dir.join("checkpoint.safetensors")).unwrap()
}

#[test]
fn help_lists_every_method_with_its_line() {
    let out = ebm().args(["train", "--help"]).assert().success();
    let text = String::from_utf8(out.get_output().stdout.clone()).unwrap();
    for m in METHODS {
        assert!(
            text.contains(m.name) && text.contains(m.about),
            "{}: {text}",
            m.name
        );
    }
}

#[test]
fn the_readme_lists_every_method_as_the_registry_does() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"));
    let readme = readme.unwrap();
    for m in METHODS {
        let row = format!("| `{}` | {} |", m.name, m.about);
        assert!(readme.contains(&row), "README.md lacks the row {row}");
    }
}

#[test]
fn every_method_trains_a_few_steps() {
    // The methods with networks of their own are registered (and so trained below).
    for name in ["nce", "fce", "lsd", "adversarial"] {
        let m = METHODS.iter().find(|m| m.name == name);
        assert!(m.is_some_and(|m| m.aux_lr.is_some()), "{name}");
    }
    let tmp = tempfile::tempdir().unwrap();
    for m in METHODS {
        let dir = tmp.path().join(m.name);
        let mut cmd = small(&dir, &["--method", m.name, "--steps", "3"]);
        if m.binary_data {
            // The built-in sets are continuous: refused up front, naming the need.
            let out = cmd.assert().failure();
            let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
            assert!(err.contains("binary") && err.contains(m.name), "{err}");
            assert!(!dir.exists(), "{} left a directory", m.name);
            continue;
        }
        cmd.assert().success();
        let lines = metrics(&dir);
        assert_eq!(lines.len(), 3, "{}", m.name);
        for (i, line) in lines.iter().enumerate() {
            assert_eq!(line["step"], i as u64 + 1, "{}", m.name);
            for key in ["loss", "lr", "steps_per_s", "elapsed_s", "grad_norm"] {
                assert!(line[key].is_number(), "{}: {key} in {line}", m.name);
            }
            // The method's own parameters train at its rate, on the schedule of lr.
            let aux = line["aux_lr"].as_f64();
            assert_eq!(aux.is_some(), m.aux_lr.is_some(), "{}: {line}", m.name);
            if let (Some(aux), Some(default)) = (aux, m.aux_lr) {
                let ratio = line["lr"].as_f64().unwrap() / 1e-3;
                assert!((aux - default * ratio).abs() <= 1e-12, "{}: {line}", m.name);
            }
        }
        let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
        assert!(
            config.contains(&format!("name = \"{}\"", m.name)),
            "{config}"
        );
        let state = checkpoint(&dir);
        assert_eq!(state.metadata["trainer.step"], "3", "{}", m.name);
        // The method's own parameters and their optimiser are in the checkpoint.
        let own = state
            .tensors
            .keys()
            .any(|k| k.starts_with("objective.param."));
        let optim = state.tensors.keys().any(|k| k.starts_with("aux_optim."));
        assert_eq!(own, m.aux_lr.is_some(), "{}", m.name);
        assert_eq!(optim, m.aux_lr.is_some(), "{}", m.name);
    }
}

#[test]
fn bad_settings_name_the_value_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("bad.toml");
    std::fs::write(&config, "stepz = 10\n").unwrap();
    let bad_method = tmp.path().join("bad-method.toml");
    std::fs::write(&bad_method, "[method]\nname = \"dsm\"\nsigma = -1.0\n").unwrap();
    let cases: [(&[&str], &[&str]); 11] = [
        (&["--steps", "0"], &["steps", "0"]),
        (&["--method", "dsn"], &["dsn", "dsm", "pcd"]),
        (&["--data", "9gaussians"], &["9gaussians", "8gaussians"]),
        (&["--lr=-1"], &["lr", "-1"]),
        (&["--energy", "conv"], &["conv", "[2]"]),
        (&["--energy", "transformer"], &["transformer", "mlp"]),
        (&["--step-size", "0.1"], &["step_size", "dsm", "pcd"]),
        (&["--aux-lr", "0.01"], &["aux_lr", "dsm", "fce", "lsd"]),
        (&["--method", "fce", "--aux-lr=-1"], &["aux_lr", "-1"]),
        (&["--config", config.to_str().unwrap()], &["stepz"]),
        (
            &["--config", bad_method.to_str().unwrap()],
            &["sigma", "-1"],
        ),
    ];
    for (i, (flags, words)) in cases.iter().enumerate() {
        let dir = tmp.path().join(format!("run{i}"));
        let out = small(&dir, flags).assert().failure();
        let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
        for w in *words {
            assert!(err.contains(w), "{flags:?}: `{w}` not in: {err}");
        }
        assert!(!dir.exists(), "{flags:?} left a run directory");
    }
}

#[test]
fn a_diverging_run_stops_and_keeps_the_last_good_checkpoint() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    // Adam moves every weight by about lr at its first step: weights of 1e30 overflow f32 at
    // the next forward pass.
    let flags = ["--lr", "1e30", "--steps", "50", "--checkpoint-every", "1"];
    let out = small(&dir, &flags).assert().failure();
    let err = String::from_utf8_lossy(&out.get_output().stderr).to_string();
    let step: u64 = err
        .split("diverged at step ")
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no step in: {err}"));
    assert!(err.contains("learning rate"), "{err}");
    assert!(
        err.contains(&format!("checkpoint (step {})", step - 1)),
        "{err}"
    );
    let state = checkpoint(&dir);
    assert_eq!(state.metadata["trainer.step"], (step - 1).to_string());
    let weights = state
        .tensors
        .iter()
        .filter(|(k, _)| k.starts_with("energy."));
    for (name, t) in weights {
        assert!(t.data().iter().all(|v| v.is_finite()), "{name}");
    }
}

/// The tensors of two checkpoints are equal bit for bit (the files may order their metadata
/// differently, so the bytes are not compared).
fn assert_same_tensors(a: &StateDict<f32>, b: &StateDict<f32>) {
    let names = |s: &StateDict<f32>| s.tensors.keys().cloned().collect::<Vec<_>>();
    assert_eq!(names(a), names(b));
    for (name, x) in &a.tensors {
        let y = &b.tensors[name];
        assert_eq!(x.dims(), y.dims(), "{name}");
        let same = x
            .data()
            .iter()
            .zip(y.data())
            .all(|(u, v)| u.to_bits() == v.to_bits());
        assert!(same, "{name} differs");
    }
}

/// Runs `method` to the end, and again interrupted by Ctrl-C once a few steps are logged and
/// resumed: the two checkpoints and metrics must agree.
fn resume_matches_uninterrupted(method: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let config = tmp.path().join("small.toml");
    std::fs::write(
        &config,
        "[energy]\nkind = \"mlp\"\nwidths = [2, 32, 32, 1]\n",
    )
    .unwrap();
    let flags = [
        "--method",
        method,
        "--steps",
        "1500",
        "--checkpoint-every",
        "100",
        "--config",
        config.to_str().unwrap(),
    ];
    let whole = tmp.path().join("whole");
    small(&whole, &flags).assert().success();

    // Interrupt once the run has logged a few steps, then resume it.
    let parts = tmp.path().join("parts");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_ebm"))
        .args(small_args(&parts, &flags))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log = parts.join("metrics.jsonl");
    while std::fs::read_to_string(&log).map_or(true, |t| t.lines().count() < 5) {
        assert!(child.try_wait().unwrap().is_none(), "the run stopped early");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    let killed = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&output.stderr).to_string();
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("--resume"), "{err}");
    let stopped: u64 = checkpoint(&parts).metadata["trainer.step"].parse().unwrap();
    assert!(stopped < 1500, "the run ended before Ctrl-C reached it");

    ebm()
        .arg("train")
        .arg("--resume")
        .arg(&parts)
        .assert()
        .success();
    assert_same_tensors(&checkpoint(&whole), &checkpoint(&parts));
    assert_eq!(checkpoint(&parts).metadata["trainer.step"], "1500");

    // The metrics: every step once, with the same losses.
    let (a, b) = (metrics(&whole), metrics(&parts));
    assert_eq!(a.len(), 1500);
    assert_eq!(b.len(), 1500);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x["step"], &x["loss"]), (&y["step"], &y["loss"]));
    }
}

#[test]
fn replay_resumed_after_ctrl_c_equals_an_uninterrupted_run() {
    // The replay buffer and Adam's moments are the state that must survive.
    resume_matches_uninterrupted("replay");
}

#[test]
fn nce_resumed_after_ctrl_c_equals_an_uninterrupted_run() {
    // NCE adds the learned log-normaliser, its own optimiser and the fitted noise.
    resume_matches_uninterrupted("nce");
}

#[test]
fn fce_resumed_after_ctrl_c_equals_an_uninterrupted_run() {
    // FCE adds the flow and c, their optimiser at its own scheduled rate, and the flow's
    // settings checked on restore.
    resume_matches_uninterrupted("fce");
}

#[test]
fn lsd_resumed_after_ctrl_c_equals_an_uninterrupted_run() {
    // LSD adds the critic network and its optimiser.
    resume_matches_uninterrupted("lsd");
}

#[test]
fn adversarial_resumed_after_ctrl_c_equals_an_uninterrupted_run() {
    // The flow sampler, whose draws come from the step's random stream.
    resume_matches_uninterrupted("adversarial");
}

#[test]
fn a_finished_run_writes_its_report_and_names_the_files() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("run");
    let out = small(&dir, &["--steps", "20"]).assert().success();
    let stdout = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    for name in ["loss.png", "density.png"] {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        assert!(bytes.len() > 1000, "{name}: {} bytes", bytes.len());
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{name}");
        assert!(stdout.contains(name), "{name} not in: {stdout}");
    }
    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    assert_eq!(html.matches("data:image/png;base64,").count(), 2);
    assert!(html.contains("[method]"), "the config is shown");
    assert!(stdout.contains("report.html"), "{stdout}");
    // The samples drawn over the density are named with their sampler.
    assert!(
        stdout.contains("samples: 500 steps of Langevin"),
        "{stdout}"
    );
}
