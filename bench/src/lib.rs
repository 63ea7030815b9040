//! What twinwire's benchmarks share: the [`Row`] each reports for the one table of
//! `twinwire-bench`, [`report`] to hand the rows over, and the small statistics and environment
//! helpers every bench needs.
//!
//! A bench prints its own human-readable tables as before and calls [`report`] with its rows;
//! run alone (`cargo bench -p … --bench …`) that prints nothing more. Run by `twinwire-bench`,
//! [`REPORT_ENV`] names a file the rows are appended to, one JSON object a line.

use serde::{Deserialize, Serialize};
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// The environment variable naming the file [`report`] appends its rows to.
pub const REPORT_ENV: &str = "TWINWIRE_BENCH_REPORT";

/// One scenario's figures: what twinwire did, what its baseline did in the same run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// What was measured, e.g. `modify through MQTT, event out (qos 1)`.
    pub scenario: String,
    /// What `figure` counts, with its unit, e.g. `messages/s`.
    pub measure: String,
    /// twinwire's figure.
    pub figure: f64,
    /// What twinwire is compared with, measured in the same run and the same unit.
    pub baseline: Option<Baseline>,
    /// `figure / baseline.figure`.
    pub ratio: Option<f64>,
    /// Latency percentiles in milliseconds, where the scenario has latencies.
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    /// Peak resident set size (VmHWM) of the process that measured, in bytes; [`report`] fills
    /// in its own when a bench gives none (one measured in a child process, say).
    pub peak_rss_bytes: Option<u64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub name: String,
    pub figure: f64,
}

impl Row {
    pub fn new(scenario: impl Into<String>, measure: impl Into<String>, figure: f64) -> Row {
        Row {
            scenario: scenario.into(),
            measure: measure.into(),
            figure,
            baseline: None,
            ratio: None,
            p50_ms: None,
            p99_ms: None,
            peak_rss_bytes: None,
        }
    }

    /// The baseline's name and figure (same unit as twinwire's); sets the ratio.
    pub fn baseline(mut self, name: impl Into<String>, figure: f64) -> Row {
        self.ratio = (figure != 0.0).then(|| self.figure / figure);
        self.baseline = Some(Baseline {
            name: name.into(),
            figure,
        });
        self
    }

    pub fn latency_ms(mut self, p50: f64, p99: f64) -> Row {
        self.p50_ms = Some(p50);
        self.p99_ms = Some(p99);
        self
    }

    pub fn peak_rss(mut self, bytes: u64) -> Row {
        self.peak_rss_bytes = Some(bytes);
        self
    }
}

/// Appends `rows` to the file [`REPORT_ENV`] names, if it names one; prints nothing otherwise.
/// A row without a peak RSS gets this process's. A file that cannot be written is said on
/// stderr (the runner then finds no rows and shows the bench as failed).
pub fn report(rows: &[Row]) {
    let Some(path) = std::env::var_os(REPORT_ENV) else {
        return;
    };
    let peak = peak_rss_bytes();
    let mut lines = String::new();
    for row in rows {
        let mut row = row.clone();
        row.peak_rss_bytes = row.peak_rss_bytes.or(peak);
        match serde_json::to_string(&row) {
            Ok(line) => {
                lines.push_str(&line);
                lines.push('\n');
            }
            Err(e) => eprintln!("twinwire-bench: row {:?} not reported: {e}", row.scenario),
        }
    }
    let written = OpenOptions::new()
        .create(true)
        .append(true)
        .open(&path)
        .and_then(|mut file| file.write_all(lines.as_bytes()));
    if let Err(e) = written {
        eprintln!(
            "twinwire-bench: cannot append to {}: {e}",
            Path::new(&path).display()
        );
    }
}

/// The rows of a report file, in order; a line that is not a row is an error.
pub fn read_report(path: &Path) -> Result<Vec<Row>, ReportError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(ReportError::Read(e)),
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(i, line)| serde_json::from_str(line).map_err(|e| ReportError::Line(i + 1, e)))
        .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error("cannot read the report: {0}")]
    Read(std::io::Error),
    #[error("report line {0} is not a row: {1}")]
    Line(usize, serde_json::Error),
}

/// A `kB` field of a `/proc` file such as `/proc/self/status` (`VmHWM`, `VmRSS`) or
/// `/proc/meminfo`, in bytes; `None` where there is no such file or field.
pub fn proc_bytes(file: &str, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
}

/// This process's peak resident set size (VmHWM), in bytes.
pub fn peak_rss_bytes() -> Option<u64> {
    proc_bytes("/proc/self/status", "VmHWM")
}

/// The number in the environment variable `name` (`_` allowed as a digit separator), else
/// `default`, also when it does not parse.
pub fn env_number<T: FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// The median of `values` (the upper one of an even count); 0 for none.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// The item whose `key` is the median (the upper one of an even count), e.g. the median round
/// of several, with its other figures; `None` for none.
pub fn median_by<T>(mut items: Vec<T>, key: impl Fn(&T) -> f64) -> Option<T> {
    items.sort_by(|a, b| key(a).total_cmp(&key(b)));
    let middle = items.len() / 2;
    (middle < items.len()).then(|| items.swap_remove(middle))
}

/// The `p` quantile (0 to 1) of `sorted` by nearest rank; the default (zero) for none.
pub fn percentile<T: Copy + Default>(sorted: &[T], p: f64) -> T {
    if sorted.is_empty() {
        return T::default();
    }
    let index = ((sorted.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
    sorted[index]
}

/// A duration in milliseconds.
pub fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1e3
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 3.0);
        assert_eq!(percentile::<u64>(&[], 0.5), 0);
        let sorted: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&sorted, 0.5), 51);
        assert_eq!(percentile(&sorted, 0.99), 99);
        assert_eq!(percentile(&sorted, 1.0), 100);
        assert_eq!(
            median_by(vec![(1, 5.0), (2, 1.0), (3, 3.0)], |r| r.1),
            Some((3, 3.0))
        );
        assert_eq!(median_by(Vec::<f64>::new(), |r| *r), None);
    }

    #[test]
    fn rows_round_trip_through_a_report_file() {
        let dir = std::env::temp_dir().join(format!("twinwire-bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let file = dir.join("report.jsonl");
        let rows = vec![
            Row::new("a", "messages/s", 200.0)
                .baseline("pass-through", 400.0)
                .latency_ms(1.0, 2.0),
            Row::new("b", "MiB/100k things", 30.0).peak_rss(1 << 20),
        ];
        assert_eq!(rows[0].ratio, Some(0.5));
        // The one test that sets the variable; the file is this process's own.
        std::env::set_var(REPORT_ENV, &file);
        report(&rows);
        report(&rows[1..]);
        std::env::remove_var(REPORT_ENV);
        let read = read_report(&file).expect("rows");
        assert_eq!(read.len(), 3);
        assert_eq!(read[0].scenario, "a");
        assert!(read[0].peak_rss_bytes.is_some() || peak_rss_bytes().is_none());
        assert_eq!(read[1], rows[1]);
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
