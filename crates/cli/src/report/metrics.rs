//! Reading `metrics.jsonl`: one JSON object per logged step, `"step"` and named numbers.

use anyhow::{Context, Result, bail};
use serde_json::Value;
use std::path::Path;

/// The curves of a run: for each metric, its (step, value) pairs in file order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MetricsLog {
    /// Metrics with their points: `loss` first, then the others by name.
    pub series: Vec<(String, Vec<(f64, f64)>)>,
    /// Records (non-blank lines) read.
    pub records: usize,
}

/// The last and the best value of one metric.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricSummary {
    /// The metric's name, as in `metrics.jsonl`.
    pub name: String,
    /// Its last logged value, and the step it was logged at.
    pub last: (f64, f64),
    /// Its best value and step: the lowest, or the highest for metrics where higher is better
    /// (see [`higher_is_better`]).
    pub best: (f64, f64),
}

/// Whether a larger value of the metric `name` is better: accuracies, acceptance rates and
/// (log-)likelihoods; every other metric (losses, energies, divergences) is better lower.
pub fn higher_is_better(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    name.contains("accuracy")
        || name.contains("acceptance")
        || (name.contains("likelihood") && !name.contains("negative"))
}

impl MetricsLog {
    /// Reads `path`: blank lines are skipped; every other line must be a JSON object with a
    /// numeric `"step"`. Its other numeric entries are metrics; `null` and non-numeric
    /// entries (a phase name, say) are ignored.
    ///
    /// # Errors
    /// A missing or unreadable file, a line that is not a JSON object, a missing or
    /// non-numeric `"step"`, or a file with no records: each names the file (and the line).
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the metrics file {}", path.display()))?;
        let log = Self::parse(&text).with_context(|| format!("in {}", path.display()))?;
        if log.records == 0 {
            bail!(
                "{} has no records (one JSON object per line)",
                path.display()
            );
        }
        Ok(log)
    }

    /// Parses the text of a metrics file (errors name the line, counting from 1).
    fn parse(text: &str) -> Result<Self> {
        let mut log = MetricsLog::default();
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            let at = || format!("line {}", i + 1);
            let value: Value =
                serde_json::from_str(line).with_context(|| format!("{}: not valid JSON", at()))?;
            let Value::Object(record) = value else {
                bail!(
                    "{}: expected a JSON object such as {{\"step\": 1, \"loss\": 0.5}}",
                    at()
                );
            };
            let step = record
                .get("step")
                .and_then(Value::as_f64)
                .with_context(|| format!("{}: no numeric \"step\"", at()))?;
            for (name, v) in &record {
                let Some(v) = v.as_f64().filter(|_| name != "step") else {
                    continue;
                };
                match log.series.iter_mut().find(|(n, _)| n == name) {
                    Some((_, points)) => points.push((step, v)),
                    None => log.series.push((name.clone(), vec![(step, v)])),
                }
            }
            log.records += 1;
        }
        log.series
            .sort_by(|a, b| (a.0 != "loss", &a.0).cmp(&(b.0 != "loss", &b.0)));
        Ok(log)
    }

    /// The last and best value of every metric, in the order of [`MetricsLog::series`].
    pub fn summaries(&self) -> Vec<MetricSummary> {
        self.series
            .iter()
            .filter_map(|(name, points)| {
                let last = *points.last()?;
                let higher = higher_is_better(name);
                let better = |a: f64, b: f64| if higher { a > b } else { a < b };
                let best = points.iter().copied().fold(points[0], |best, p| {
                    if better(p.1, best.1) { p } else { best }
                });
                Some(MetricSummary {
                    name: name.clone(),
                    last: (last.0, last.1),
                    best: (best.0, best.1),
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_become_curves_with_last_and_best() {
        let text = "{\"step\": 1, \"loss\": 2.0, \"accuracy\": 0.5}\n\n\
                    {\"step\": 2, \"loss\": 1.0, \"phase\": \"warm\", \"accuracy\": 0.9}\n\
                    {\"step\": 3, \"loss\": 1.5, \"accuracy\": 0.7, \"grad_norm\": null}\n";
        let log = MetricsLog::parse(text).unwrap();
        assert_eq!(log.records, 3);
        let names: Vec<&str> = log.series.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["loss", "accuracy"]);
        let s = log.summaries();
        assert_eq!((s[0].last, s[0].best), ((3.0, 1.5), (2.0, 1.0)));
        assert_eq!((s[1].last, s[1].best), ((3.0, 0.7), (2.0, 0.9)));
        let log = MetricsLog::parse("{\"step\": 1, \"b\": 1, \"loss\": 2, \"a\": 3}").unwrap();
        let names: Vec<&str> = log.series.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["loss", "a", "b"]);
    }

    #[test]
    fn bad_lines_are_named() {
        let err = MetricsLog::parse("{\"step\": 1}\n{\"step\": 2, \"loss\": }\n").unwrap_err();
        assert!(format!("{err:#}").contains("line 2"), "{err:#}");
        let err = MetricsLog::parse("{\"loss\": 1}\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("line 1: no numeric \"step\""),
            "{err:#}"
        );
        let err = MetricsLog::parse("[1, 2]\n").unwrap_err();
        assert!(
            format!("{err:#}").contains("expected a JSON object"),
            "{err:#}"
        );
    }
}
