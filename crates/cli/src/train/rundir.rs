//! The run directory: `config.toml` (the resolved settings, written first),
//! `metrics.jsonl` (one JSON object per logged step) and `checkpoint.safetensors`.

use anyhow::{Context, Result, bail};
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The resolved settings.
pub const CONFIG: &str = "config.toml";
/// One JSON object per logged step.
pub const METRICS: &str = "metrics.jsonl";
/// The last checkpoint.
pub const CHECKPOINT: &str = "checkpoint.safetensors";

/// `runs/<UTC time>-<method>-<data>`, with `-2`, `-3`... when that exists already.
pub fn default_dir(method: &str, data: &str) -> PathBuf {
    let base = format!("{}-{method}-{data}", utc_stamp(SystemTime::now()));
    let mut dir = Path::new("runs").join(&base);
    let mut n = 2;
    while dir.exists() {
        dir = Path::new("runs").join(format!("{base}-{n}"));
        n += 1;
    }
    dir
}

/// Creates the directory of a new run and writes its config.
///
/// # Errors
/// When `dir` already holds a run (it has a config.toml), or cannot be written.
pub fn create(dir: &Path, config_toml: &str) -> Result<()> {
    if dir.join(CONFIG).exists() {
        bail!(
            "{} already holds a run; continue it with `ebm train --resume {}`, or choose another --out",
            dir.display(),
            dir.display()
        );
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    write_atomically(&dir.join(CONFIG), config_toml.as_bytes())?;
    File::create(dir.join(METRICS))
        .with_context(|| format!("cannot create {}", dir.join(METRICS).display()))?;
    Ok(())
}

/// Writes `bytes` to a temporary file beside `path`, flushes it, and renames it over `path`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let name = path.file_name().expect("a file name").to_string_lossy();
    let temp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    let written = File::create(&temp)
        .and_then(|mut f| {
            f.write_all(bytes)?;
            f.sync_all()
        })
        .and_then(|()| std::fs::rename(&temp, path));
    if let Err(e) = written {
        let _ = std::fs::remove_file(&temp);
        bail!("cannot write {}: {e}", path.display());
    }
    Ok(())
}

/// The metrics file, opened for appending.
pub struct MetricsLog {
    file: File,
}

impl MetricsLog {
    /// Opens the run's metrics for appending, first dropping the lines after step `keep` (a
    /// resumed run logs them again). Returns the log and the `elapsed_s` of the last line
    /// kept (0 without one).
    ///
    /// # Errors
    /// When the file cannot be read or written, or holds a line that is not JSON.
    pub fn open(dir: &Path, keep: u64) -> Result<(Self, f64)> {
        let path = dir.join(METRICS);
        let mut kept = String::new();
        let mut elapsed = 0.0;
        if path.exists() {
            let file =
                File::open(&path).with_context(|| format!("cannot read {}", path.display()))?;
            for line in BufReader::new(file).lines() {
                let line = line?;
                let value: serde_json::Value = serde_json::from_str(&line).with_context(|| {
                    format!("{} holds a line that is not JSON: {line}", path.display())
                })?;
                if value["step"].as_u64().is_some_and(|s| s <= keep) {
                    elapsed = value["elapsed_s"].as_f64().unwrap_or(elapsed);
                    kept.push_str(&line);
                    kept.push('\n');
                }
            }
        }
        write_atomically(&path, kept.as_bytes())?;
        let file = OpenOptions::new()
            .append(true)
            .open(&path)
            .with_context(|| format!("cannot open {}", path.display()))?;
        Ok((MetricsLog { file }, elapsed))
    }

    /// Appends one line: a JSON object of these fields, in this order.
    ///
    /// # Errors
    /// When the file cannot be written.
    pub fn write(&mut self, fields: &[(&str, serde_json::Value)]) -> Result<()> {
        let mut line = String::from("{");
        for (i, (name, value)) in fields.iter().enumerate() {
            let name = serde_json::Value::from(*name);
            let comma = if i == 0 { "" } else { "," };
            line.push_str(&format!("{comma}{name}:{value}"));
        }
        line.push('}');
        writeln!(self.file, "{line}").context("cannot write metrics.jsonl")
    }
}

/// `YYYYMMDD-HHMMSS` in UTC.
fn utc_stamp(time: SystemTime) -> String {
    let secs = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    let (hh, mm, ss) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{y:04}{m:02}{d:02}-{hh:02}{mm:02}{ss:02}")
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`, eras of 400 years).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn stamps_are_utc_calendar_times() {
        let at = |secs| utc_stamp(UNIX_EPOCH + Duration::from_secs(secs));
        assert_eq!(at(0), "19700101-000000");
        // 2000-02-29 12:34:56 UTC, a leap day of a century leap year.
        assert_eq!(at(951_827_696), "20000229-123456");
        // 2024-12-31 23:59:59 UTC.
        assert_eq!(at(1_735_689_599), "20241231-235959");
    }

    #[test]
    fn metrics_are_cut_back_to_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let lines = "{\"step\":1,\"elapsed_s\":0.5}\n{\"step\":2,\"elapsed_s\":1.0}\n\
                     {\"step\":3,\"elapsed_s\":1.5}\n";
        std::fs::write(dir.path().join(METRICS), lines).unwrap();
        let (mut log, elapsed) = MetricsLog::open(dir.path(), 2).unwrap();
        assert_eq!(elapsed, 1.0);
        log.write(&[("step", 3.into())]).unwrap();
        drop(log);
        let text = std::fs::read_to_string(dir.path().join(METRICS)).unwrap();
        assert_eq!(
            text,
            "{\"step\":1,\"elapsed_s\":0.5}\n{\"step\":2,\"elapsed_s\":1.0}\n{\"step\":3}\n"
        );
    }
}
