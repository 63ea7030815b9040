//! `twinwire-bench`: every benchmark of the project, each beside its baseline measured in the
//! same run, in one table.
//!
//! ```text
//! cargo run --release -p twinwire-bench -- all [--quick]    every scenario
//! cargo run --release -p twinwire-bench -- list             what there is, and what each needs
//! cargo run --release -p twinwire-bench -- kafka engine     the named ones
//! ```
//!
//! It builds the bench executables with one `cargo bench --no-run`, runs each as a child
//! process as `cargo bench` would (with `--bench`, in its package's directory) with
//! `TWINWIRE_BENCH_REPORT` naming a file for its rows, and prints the rows. A bench's own
//! output goes to `target/twinwire-bench/NAME.log`. `--quick` sets each bench's scale
//! variables to a run of seconds; a variable already set in the environment wins over it.
//! A failed or skipped scenario is shown in the table and makes the exit status 1.

use std::collections::BTreeSet;
use std::io::Read;
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use twinwire_bench::{read_report, Row, REPORT_ENV};

/// What a scenario needs besides the build.
#[derive(Clone, Copy)]
enum Need {
    Nothing,
    /// `wrk` on the PATH, for the HTTP load.
    Wrk,
    /// A `mosquitto` binary (the bench starts its own on a free port).
    Mosquitto,
    /// RabbitMQ on 127.0.0.1:5672.
    RabbitMq,
    /// The Ditto reference's protocol examples (the messages checked).
    DittoReference,
}

struct Scenario {
    name: &'static str,
    package: &'static str,
    about: &'static str,
    needs: Need,
    /// The bench's scale variables for `--quick`.
    quick: &'static [(&'static str, &'static str)],
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "journal",
        package: "twinwire-core",
        about: "durable appends/s of 1, 16, 256 producers; baseline: raw redb commits of the same batches",
        needs: Need::Nothing,
        quick: &[("TWINWIRE_BENCH_SECONDS", "1")],
    },
    Scenario {
        name: "engine",
        package: "twinwire-core",
        about: "creates and modify commands/s through the twin engine, RSS per 100,000 things; baseline: raw redb appends of the same events in the same batches",
        needs: Need::Nothing,
        quick: &[
            ("TWINWIRE_BENCH_THINGS", "20000"),
            ("TWINWIRE_BENCH_HOT_THINGS", "50000"),
            ("TWINWIRE_BENCH_ROUNDS", "1"),
            ("TWINWIRE_BENCH_PACED_SECONDS", "1"),
        ],
    },
    Scenario {
        name: "policies",
        package: "twinwire-core",
        about: "permission checks/s, READ-filtered retrieves/s (baseline: a clone of the thing), policy compiles/s",
        needs: Need::Nothing,
        quick: &[("TWINWIRE_BENCH_ROUNDS", "3"), ("TWINWIRE_BENCH_CHECKS", "200000")],
    },
    Scenario {
        name: "fanout",
        package: "twinwire-core",
        about: "one event to 1,000 subscribers with filters, extra fields and READ cuts; baseline: cloning it to 1,000",
        needs: Need::Nothing,
        quick: &[("TWINWIRE_BENCH_ROUNDS", "3"), ("TWINWIRE_BENCH_EVENTS", "100")],
    },
    Scenario {
        name: "acks",
        package: "twinwire-core",
        about: "modifies answered once a subscribed connection acknowledged; baseline: answered at twin-persisted",
        needs: Need::Nothing,
        quick: &[("TWINWIRE_BENCH_ROUNDS", "2"), ("TWINWIRE_BENCH_REQUESTS", "300")],
    },
    Scenario {
        name: "protocol_check",
        package: "twinwire",
        about: "`twinwire protocol check` messages/s; baseline: serde_json::Value parsing of the same lines",
        needs: Need::DittoReference,
        quick: &[("TWINWIRE_BENCH_MESSAGES", "20000"), ("TWINWIRE_BENCH_RUNS", "3")],
    },
    Scenario {
        name: "gateway",
        package: "twinwire",
        about: "HTTP reads (wrk), WebSocket modifies, live messages; baselines: a trivial handler, WebSocket retrieves",
        needs: Need::Wrk,
        quick: &[("TWINWIRE_BENCH_SECONDS", "2"), ("TWINWIRE_BENCH_ROUNDS", "1")],
    },
    Scenario {
        name: "abi",
        package: "twinwire-plugin",
        about: "round trips through the adapter plugin ABI; baseline: the same adapter linked statically",
        needs: Need::Nothing,
        quick: &[("TW_BENCH_MESSAGES", "20000"), ("TW_BENCH_ROUNDS", "1")],
    },
    Scenario {
        name: "mqtt",
        package: "twinwire-tests",
        about: "MQTT in -> twin persisted -> event out to MQTT; baseline: a rumqttc pass-through",
        needs: Need::Mosquitto,
        quick: &[("MQTT_BENCH_MESSAGES", "5000"), ("MQTT_BENCH_ROUNDS", "1")],
    },
    Scenario {
        name: "amqp",
        package: "twinwire-tests",
        about: "AMQP 0.9.1 queue in -> twin persisted -> event out to an exchange; baseline: a lapin pass-through",
        needs: Need::RabbitMq,
        quick: &[("AMQP_BENCH_MESSAGES", "5000"), ("AMQP_BENCH_ROUNDS", "1")],
    },
    Scenario {
        name: "kafka",
        package: "twinwire-tests",
        about: "Kafka topic in -> twin persisted -> event out to a topic (librdkafka's mock cluster); baseline: an rdkafka pass-through",
        needs: Need::Nothing,
        quick: &[("KAFKA_BENCH_MESSAGES", "5000"), ("KAFKA_BENCH_ROUNDS", "1")],
    },
];

const USAGE: &str = "usage: twinwire-bench [--quick] [--timeout SECONDS] (all | list | NAME...)
  all              every scenario
  list             the scenarios, what each measures and needs
  NAME...          the named scenarios
  --quick          each scaled down to seconds (CI runs `all --quick`)
  --timeout S      stop a scenario after S seconds (default 600 with --quick, else 3600)";

fn main() -> ExitCode {
    let mut quick = false;
    let mut timeout = None;
    let mut names = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => quick = true,
            "--timeout" => match args.next().and_then(|s| s.parse::<u64>().ok()) {
                Some(seconds) => timeout = Some(Duration::from_secs(seconds)),
                None => return usage("--timeout takes a number of seconds"),
            },
            "-h" | "--help" => {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            _ if arg.starts_with('-') => return usage(&format!("unknown option {arg}")),
            _ => names.push(arg),
        }
    }
    if names.iter().any(|n| n == "list") {
        list();
        return ExitCode::SUCCESS;
    }
    let chosen: Vec<&Scenario> = if names.iter().any(|n| n == "all") {
        SCENARIOS.iter().collect()
    } else {
        let mut chosen = Vec::new();
        for name in &names {
            match SCENARIOS.iter().find(|s| s.name == name) {
                Some(s) => chosen.push(s),
                None => return usage(&format!("no scenario {name}; `list` shows them")),
            }
        }
        chosen
    };
    if chosen.is_empty() {
        return usage("name the scenarios, or `all`");
    }
    let timeout = timeout.unwrap_or(Duration::from_secs(if quick { 600 } else { 3600 }));
    run_all(&chosen, quick, timeout)
}

fn usage(problem: &str) -> ExitCode {
    eprintln!("{problem}\n{USAGE}");
    ExitCode::from(2)
}

fn list() {
    let width = SCENARIOS.iter().map(|s| s.name.len()).max().unwrap_or(0);
    for s in SCENARIOS {
        println!(
            "{:width$}  {} (cargo bench -p {} --bench {}){}",
            s.name,
            s.about,
            s.package,
            s.name,
            match s.needs {
                Need::Nothing => String::new(),
                need => format!("; needs {}", need_text(need)),
            }
        );
    }
}

/// The workspace root: this package's parent.
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_owned)
}

fn need_text(need: Need) -> &'static str {
    match need {
        Need::Nothing => "nothing",
        Need::Wrk => "wrk on the PATH (Debian: apt-get install wrk; scripts/bench.sh installs it)",
        Need::Mosquitto => "the mosquitto binary (scripts/services.sh installs it)",
        Need::RabbitMq => "RabbitMQ on 127.0.0.1:5672 (scripts/services.sh starts it)",
        Need::DittoReference => {
            "the Ditto reference's protocol examples at ../shared/ditto-reference (or TWINWIRE_DITTO_REFERENCE)"
        }
    }
}

fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(binary).is_file()))
}

/// Whether what `need` names is there.
fn present(need: Need) -> bool {
    match need {
        Need::Nothing => true,
        Need::Wrk => on_path("wrk"),
        Need::Mosquitto => {
            std::env::var_os("MQTT_BENCH_PORT").is_some()
                || on_path("mosquitto")
                || Path::new("/usr/sbin/mosquitto").is_file()
        }
        Need::RabbitMq => {
            let addr = SocketAddr::from(([127, 0, 0, 1], 5672));
            TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_ok()
        }
        Need::DittoReference => {
            let reference = std::env::var_os("TWINWIRE_DITTO_REFERENCE").map_or_else(
                || workspace().join("../shared/ditto-reference"),
                PathBuf::from,
            );
            reference.join("protocol-examples").is_dir()
        }
    }
}

enum Outcome {
    Rows(Vec<Row>),
    Failed(String),
    NotRun(String),
}

fn run_all(chosen: &[&Scenario], quick: bool, timeout: Duration) -> ExitCode {
    let started = Instant::now();
    let out_dir = target_dir().join("twinwire-bench");
    if let Err(e) = std::fs::create_dir_all(&out_dir) {
        eprintln!("cannot create {}: {e}", out_dir.display());
        return ExitCode::FAILURE;
    }
    let runnable: Vec<&Scenario> = chosen
        .iter()
        .copied()
        .filter(|s| present(s.needs))
        .collect();
    let built = build(&runnable);
    let mut results = Vec::new();
    for (i, s) in chosen.iter().enumerate() {
        eprint!("[{}/{}] {} ... ", i + 1, chosen.len(), s.name);
        let begun = Instant::now();
        let outcome = if !present(s.needs) {
            Outcome::NotRun(format!("needs {}", need_text(s.needs)))
        } else {
            match &built {
                Err(e) => Outcome::Failed(e.clone()),
                Ok(built) => match built.iter().find(|b| b.name == s.name) {
                    None => Outcome::Failed("not built (cargo's errors are above)".to_owned()),
                    Some(b) => run(s, b, quick, &out_dir, timeout),
                },
            }
        };
        let took = begun.elapsed().as_secs_f64();
        match &outcome {
            Outcome::Rows(rows) => eprintln!("ok, {} rows, {took:.0} s", rows.len()),
            Outcome::Failed(why) => eprintln!("FAILED after {took:.0} s: {why}"),
            Outcome::NotRun(why) => eprintln!("not run: {why}"),
        }
        results.push((s.name, outcome));
    }
    print_table(&results);
    let scale = if quick { "quick" } else { "full" };
    println!();
    println!(
        "ratio: twinwire ÷ baseline, both rates from the same run (above 1: twinwire is faster); \
         p50/p99: latency of one operation, ms; peak RSS: VmHWM of the bench process. \
         {} scenarios at {scale} scale in {:.0} s on {} cores; each bench's own output: {}",
        chosen.len(),
        started.elapsed().as_secs_f64(),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        out_dir.display()
    );
    let failed: Vec<&str> = results
        .iter()
        .filter(|(_, o)| !matches!(o, Outcome::Rows(_)))
        .map(|(name, _)| *name)
        .collect();
    if failed.is_empty() {
        ExitCode::SUCCESS
    } else {
        println!("not measured: {}", failed.join(", "));
        ExitCode::FAILURE
    }
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| workspace().join("target"), PathBuf::from)
}

/// A bench executable cargo built, and the directory of its package (where `cargo bench`
/// runs it).
struct Built {
    name: String,
    executable: PathBuf,
    package_dir: PathBuf,
}

/// Builds the benches of `scenarios` with one `cargo bench --no-run`; cargo's diagnostics go
/// to stderr, its JSON messages name the executables.
fn build(scenarios: &[&Scenario]) -> Result<Vec<Built>, String> {
    if scenarios.is_empty() {
        return Ok(Vec::new());
    }
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "bench",
            "--no-run",
            "--message-format=json-render-diagnostics",
        ])
        .arg("--manifest-path")
        .arg(workspace().join("Cargo.toml"));
    // Every bench package, whichever benches are wanted: features unify over the packages
    // built together, so another set would rebuild the dependencies with other features.
    let packages: BTreeSet<&str> = SCENARIOS.iter().map(|s| s.package).collect();
    for package in packages {
        command.args(["-p", package]);
    }
    for s in scenarios {
        command.args(["--bench", s.name]);
    }
    eprintln!("building the benches (cargo bench --no-run) ...");
    let output = command
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| format!("cannot run cargo: {e}"))?;
    let mut built = Vec::new();
    for line in output.stdout.split(|b| *b == b'\n') {
        let Ok(message) = serde_json::from_slice::<serde_json::Value>(line) else {
            continue;
        };
        let is_bench = message["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "bench"));
        let (Some(name), Some(executable), Some(manifest)) = (
            message["target"]["name"].as_str(),
            message["executable"].as_str(),
            message["manifest_path"].as_str(),
        ) else {
            continue;
        };
        if message["reason"] == "compiler-artifact" && is_bench {
            built.push(Built {
                name: name.to_owned(),
                executable: PathBuf::from(executable),
                package_dir: Path::new(manifest)
                    .parent()
                    .map_or_else(workspace, Path::to_owned),
            });
        }
    }
    if built.is_empty() && !output.status.success() {
        return Err(format!("cargo bench --no-run failed ({})", output.status));
    }
    Ok(built)
}

/// Runs one bench executable to the end (or the timeout) and reads the rows it reported.
fn run(s: &Scenario, built: &Built, quick: bool, out_dir: &Path, timeout: Duration) -> Outcome {
    let log_path = out_dir.join(format!("{}.log", s.name));
    let report_path = out_dir.join(format!("{}.jsonl", s.name));
    if let Err(e) = std::fs::remove_file(&report_path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Outcome::Failed(format!("cannot remove {}: {e}", report_path.display()));
        }
    }
    let log = match std::fs::File::create(&log_path) {
        Ok(log) => log,
        Err(e) => return Outcome::Failed(format!("cannot create {}: {e}", log_path.display())),
    };
    let log_err = match log.try_clone() {
        Ok(log) => log,
        Err(e) => return Outcome::Failed(format!("{}: {e}", log_path.display())),
    };
    let mut command = Command::new(&built.executable);
    command
        .arg("--bench")
        .current_dir(&built.package_dir)
        .env(REPORT_ENV, &report_path)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err);
    if quick {
        for (name, value) in s.quick {
            if std::env::var_os(name).is_none() {
                command.env(name, value);
            }
        }
    }
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Outcome::Failed(format!("cannot start {}: {e}", built.executable.display()))
        }
    };
    let begun = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if begun.elapsed() > timeout => {
                // Only this child: what it started ends with its own duration.
                let _ = child.kill();
                let _ = child.wait();
                return Outcome::Failed(format!(
                    "timed out after {} s; its output: {}",
                    timeout.as_secs(),
                    log_path.display()
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => return Outcome::Failed(format!("waiting for it: {e}")),
        }
    };
    if !status.success() {
        return Outcome::Failed(format!(
            "{status}: {}; its output: {}",
            why_it_failed(&log_path),
            log_path.display()
        ));
    }
    match read_report(&report_path) {
        Ok(rows) if rows.is_empty() => Outcome::Failed(format!(
            "it reported no rows; its output: {}",
            log_path.display()
        )),
        Ok(rows) => Outcome::Rows(rows),
        Err(e) => Outcome::Failed(format!("{}: {e}", report_path.display())),
    }
}

/// The panic message in a failed bench's output, else its last line.
fn why_it_failed(log: &Path) -> String {
    let mut text = String::new();
    if std::fs::File::open(log)
        .and_then(|mut f| f.read_to_string(&mut text))
        .is_err()
    {
        return "no output".to_owned();
    }
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let panic = lines.iter().position(|l| l.contains("panicked at"));
    let line = match panic {
        // The message is on the line after the location.
        Some(i) => lines.get(i + 1).or(lines.get(i)),
        None => lines.last(),
    };
    let line = line.map_or("no output", |l| l.trim());
    let mut short: String = line.chars().take(160).collect();
    if short.len() < line.len() {
        short.push('…');
    }
    short
}

// ---------------------------------------------------------------------------------------------
// The table

fn print_table(results: &[(&str, Outcome)]) {
    let header = [
        "scenario",
        "twinwire",
        "baseline",
        "ratio",
        "p50 / p99 ms",
        "peak RSS",
    ];
    let mut lines: Vec<Result<[String; 6], String>> = Vec::new();
    for (name, outcome) in results {
        match outcome {
            Outcome::Rows(rows) => {
                lines.extend(rows.iter().map(|row| Ok(cells(name, row))));
            }
            Outcome::Failed(why) => lines.push(Err(format!("{name}: FAILED: {why}"))),
            Outcome::NotRun(why) => lines.push(Err(format!("{name}: NOT RUN: {why}"))),
        }
    }
    let mut widths = header.map(str::len);
    for cells in lines.iter().flatten() {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let print = |cells: &[String; 6]| {
        let mut line = String::new();
        for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let pad = width.saturating_sub(cell.chars().count());
            match i {
                0 => line.push_str(&format!("{cell}{}", " ".repeat(pad))),
                _ => line.push_str(&format!(" | {}{cell}", " ".repeat(pad))),
            }
        }
        println!("{}", line.trim_end());
    };
    println!();
    print(&header.map(str::to_owned));
    println!(
        "{}",
        "-".repeat(widths.iter().sum::<usize>() + 3 * (widths.len() - 1))
    );
    for line in &lines {
        match line {
            Ok(cells) => print(cells),
            Err(text) => println!("{text}"),
        }
    }
}

fn cells(bench: &str, row: &Row) -> [String; 6] {
    let dash = || "-".to_owned();
    [
        format!("{bench}: {}", row.scenario),
        format!("{} {}", number(row.figure), row.measure),
        row.baseline
            .as_ref()
            .map_or_else(dash, |b| format!("{} {}", number(b.figure), b.name)),
        row.ratio.map_or_else(dash, |r| format!("{r:.2}")),
        match (row.p50_ms, row.p99_ms) {
            (Some(p50), Some(p99)) => format!("{} / {}", latency(p50), latency(p99)),
            _ => dash(),
        },
        row.peak_rss_bytes.map_or_else(dash, |bytes| {
            format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
        }),
    ]
}

/// `1,234,567`, `123`, `12.3`, `1.23`.
fn number(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x.abs() < 10.0 {
        return format!("{x:.2}");
    }
    if x.abs() < 100.0 {
        return format!("{x:.1}");
    }
    let digits = format!("{:.0}", x.abs());
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if x < 0.0 {
        grouped.insert(0, '-');
    }
    grouped
}

fn latency(ms: f64) -> String {
    if ms < 1.0 {
        format!("{ms:.3}")
    } else if ms < 100.0 {
        format!("{ms:.2}")
    } else {
        format!("{ms:.0}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(number(1_234_567.4), "1,234,567");
        assert_eq!(number(123.4), "123");
        assert_eq!(number(12.34), "12.3");
        assert_eq!(number(1.234), "1.23");
        assert_eq!(number(-4321.0), "-4,321");
        assert_eq!(latency(0.1234), "0.123");
        assert_eq!(latency(12.345), "12.35");
    }

    #[test]
    fn every_scenario_has_a_unique_name() {
        let names: BTreeSet<&str> = SCENARIOS.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), SCENARIOS.len());
    }
}
