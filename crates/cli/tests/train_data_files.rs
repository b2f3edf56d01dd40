//! `ebm train --data FILE`: a CSV file trains like a built-in set, and every kind of bad file
//! is refused before the run directory exists, with the data layer's message naming the file,
//! the place in it and the fix.

use assert_cmd::Command;
use std::path::Path;

/// A short run on `data`, writing to `out`, with `extra` flags.
fn train(data: &Path, out: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ebm"));
    cmd.args([
        "train",
        "--steps",
        "5",
        "--batch-size",
        "16",
        "--threads",
        "1",
    ])
    .arg("--data")
    .arg(data)
    .arg("--out")
    .arg(out)
    .args(extra);
    cmd
}

/// `n` rows of `d` values, deterministic and spread over a few units.
fn table(n: usize, d: usize) -> String {
    let mut text = String::new();
    for i in 0..n {
        let row: Vec<String> = (0..d)
            .map(|j| format!("{:.3}", ((i * 7 + j * 3) % 11) as f64 / 3.0 - 1.5))
            .collect();
        text.push_str(&row.join(","));
        text.push('\n');
    }
    text
}

#[test]
fn a_csv_file_trains_and_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("points.csv");
    std::fs::write(&data, format!("x,y\n{}", table(100, 2))).unwrap();
    let out = tmp.path().join("run");
    train(&data, &out, &["--method", "fce"]).assert().success();

    let lines = std::fs::read_to_string(out.join("metrics.jsonl")).unwrap();
    assert_eq!(lines.lines().count(), 1, "logged at the last step");
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    let full = data.canonicalize().unwrap();
    assert!(
        config.contains(&format!("data = \"{}\"", full.display())),
        "{config}"
    );
    for name in ["checkpoint.safetensors", "density.png", "report.html"] {
        assert!(out.join(name).exists(), "{name}");
    }

    // A sample of 3 values trains too: the energy and the flow are sized for it.
    let three = tmp.path().join("three.csv");
    std::fs::write(&three, table(40, 3)).unwrap();
    let out3 = tmp.path().join("run3");
    train(&three, &out3, &["--method", "fce"])
        .assert()
        .success();
    let config = std::fs::read_to_string(out3.join("config.toml")).unwrap();
    assert!(config.contains("widths = [3, 128, 128, 1]"), "{config}");
    assert!(config.contains("dim = 3"), "{config}");
}

#[test]
fn bad_files_are_named_with_the_place_and_the_fix_and_write_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let energy_2d = tmp.path().join("e2.toml");
    std::fs::write(
        &energy_2d,
        "[energy]\nkind = \"mlp\"\nwidths = [2, 16, 1]\n",
    )
    .unwrap();
    let e2 = energy_2d.to_str().unwrap();
    // (file name, contents, extra flags, words the message must hold)
    let cases: [(&str, String, &[&str], &[&str]); 7] = [
        (
            "nan.csv",
            "x,y\n1,2\nnan,3\n".into(),
            &[],
            &["nan.csv", "line 3", "NaN", "remove"],
        ),
        (
            "inf.csv",
            "1,2\n3,inf\n".into(),
            &[],
            &["inf.csv", "line 2", "inf", "remove"],
        ),
        (
            "ragged.csv",
            "1,2\n3,4,5\n".into(),
            &[],
            &["ragged.csv", "line 2", "same number"],
        ),
        (
            "empty.csv",
            String::new(),
            &[],
            &["empty.csv", "no samples", "holds at least one"],
        ),
        (
            "three.csv",
            table(40, 3),
            &["--config", e2],
            &["three.csv", "[3]", "[2]", "widths"],
        ),
        (
            "small.csv",
            table(10, 2),
            &[],
            &["small.csv", "10 samples", "--batch-size"],
        ),
        (
            "missing.csv",
            String::new(),
            &[],
            &["missing.csv", "cannot be read", "path"],
        ),
    ];
    for (i, (name, text, flags, words)) in cases.iter().enumerate() {
        let data = tmp.path().join(name);
        if *name != "missing.csv" {
            std::fs::write(&data, text).unwrap();
        }
        let out = tmp.path().join(format!("run{i}"));
        let done = train(&data, &out, flags).assert().failure();
        let err = String::from_utf8_lossy(&done.get_output().stderr).to_string();
        for w in *words {
            assert!(err.contains(w), "{name}: `{w}` not in: {err}");
        }
        assert!(!out.exists(), "{name} left a run directory");
    }
}
