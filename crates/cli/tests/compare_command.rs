//! `ebm compare` end to end: two methods trained on the same data write one row each (NLL,
//! MMD^2, wall time, speed), the table, the density panels and a run directory per method; an
//! unknown method is refused before anything is trained.

use assert_cmd::Command;

fn ebm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_ebm"))
}

#[test]
fn two_methods_are_trained_scored_and_drawn() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cmp");
    let flags = ["compare", "--methods", "dsm,lsd", "--steps", "20"];
    ebm()
        .args(flags)
        .args(["--batch-size", "32", "--threads", "1", "--out"])
        .arg(&out)
        .assert()
        .success();

    let csv = std::fs::read_to_string(out.join("compare.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "method,nll,mmd2,wall_s,steps_per_s,status");
    assert_eq!(lines.len(), 3, "{csv}");
    for (line, method) in lines[1..].iter().zip(["dsm", "lsd"]) {
        let fields: Vec<&str> = line.splitn(6, ',').collect();
        assert_eq!(fields[0], method);
        let numbers: Vec<f64> = fields[1..5].iter().map(|v| v.parse().unwrap()).collect();
        // An NLL of a density on the plane is finite; 20 steps from a random MLP leave it far
        // above the data's 2.83 nats but well below a flat density over [-6, 6]^2 (4.97)
        // plus slack; MMD^2 is an unbiased estimate, so it may dip just below 0.
        assert!(numbers[0].is_finite() && numbers[0] < 10.0, "{line}");
        assert!(numbers[1].is_finite() && numbers[1] > -0.05, "{line}");
        assert!(numbers[2] > 0.0 && numbers[3] > 0.0, "{line}");
        assert!(fields[5].contains("ok"), "{line}");
        assert!(out.join(method).join("report.html").exists(), "{method}");
    }
    let md = std::fs::read_to_string(out.join("compare.md")).unwrap();
    assert!(md.contains("| `dsm` |") && md.contains("| `lsd` |"), "{md}");
    let png = std::fs::read(out.join("compare.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    // Two density panels of 620 x 600 pixels side by side (the PNG header holds the size).
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    let height = u32::from_be_bytes(png[20..24].try_into().unwrap());
    assert_eq!((width, height), (2 * 620, 600));
}

#[test]
fn an_unknown_method_is_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cmp");
    let done = ebm()
        .args(["compare", "--methods", "dsm,dsn", "--out"])
        .arg(&out)
        .assert()
        .failure();
    let err = String::from_utf8_lossy(&done.get_output().stderr).to_string();
    assert!(err.contains("dsn") && err.contains("--methods"), "{err}");
    assert!(!out.exists());
}
