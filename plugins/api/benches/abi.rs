//! Round trips through the plugin ABI against the same echo adapter linked statically, in one run:
//! `cargo bench -p twinwire-plugin --bench abi`.
//!
//! A round trip is a send whose echo comes back to the host sink as an inbound message, plus the
//! send's result; every echo is checked against what was sent. Messages: a 23-byte address, 3
//! headers, a 100-byte payload. The host is a current-thread tokio runtime; one task drives a
//! window of sends (through `dyn Adapter`, as the broker will), inside `tokio::task::unconstrained`
//! (tokio's coop budget would otherwise make the driving task yield every 128 operations and
//! distort the numbers). Each plugin instance runs its own multi-thread runtime with one worker.
//! Cases are interleaved round by round; the table shows medians (and the best) of the rounds.
//!
//! Environment: `TW_BENCH_MESSAGES` (default 200000), `TW_BENCH_ROUNDS` (5), `TW_BENCH_WINDOW`
//! (1024). Without `--bench` (as `cargo test --benches` runs it) it makes one tiny round.

#[path = "../tests/common/mod.rs"]
mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use twinwire_bench::{env_number, median, report, Row};
use twinwire_plugin::host::{create_static, PluginAdapter, PluginLibrary};
use twinwire_plugin::{Adapter, ConnectionStatus, Delivery, HostSink, Inbound, LogLevel, Message};

/// An adapter under test: as `dyn Adapter`, as a plugin (for batches), and its sink.
type Made = (Arc<dyn Adapter>, Option<PluginAdapter>, Arc<Sink>);

/// Collects echoes.
#[derive(Default)]
struct Sink {
    inbound: Mutex<Vec<Inbound>>,
}

impl HostSink for Sink {
    fn inbound(&self, inbound: Inbound) -> Delivery {
        self.inbound.lock().unwrap().push(inbound);
        Delivery::Accepted
    }
    fn status(&self, _: ConnectionStatus, _: &str) {}
    fn log(&self, level: LogLevel, text: &str) {
        if level <= LogLevel::Warn {
            eprintln!("plugin {level:?}: {text}");
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Drive {
    /// One `Adapter::send` per message (`dyn Adapter`).
    Each,
    /// `PluginAdapter::send_batch` of this many messages per call.
    Batch(usize),
}

struct Case {
    name: &'static str,
    threads: &'static str,
    adapter: Arc<dyn Adapter>,
    plugin: Option<PluginAdapter>,
    sink: Arc<Sink>,
    drive: Drive,
    /// Index of the case this one is compared with.
    baseline: Option<usize>,
    rates: Vec<f64>,
}

/// `window` distinct messages: address `telemetry/device-000000` (23 bytes), 3 headers (one is the
/// index, to check echoes), 100-byte payload.
fn messages(window: usize) -> Vec<Message> {
    (0..window)
        .map(|i| {
            Message::new(
                format!("telemetry/device-{i:06}"),
                &[
                    ("content-type", "application/json".to_owned()),
                    ("correlation-id", format!("corr-{i:08}")),
                    ("seq", i.to_string()),
                ],
                format!("{{\"seq\":{i:08},\"value\":{:080}}}", i * 7),
            )
        })
        .collect()
}

/// Checks that the echoes are exactly `sent` (order free).
fn check(sink: &Sink, sent: &[Message]) {
    let echoes = std::mem::take(&mut *sink.inbound.lock().unwrap());
    assert_eq!(echoes.len(), sent.len(), "every send echoes once");
    let mut seen = vec![false; sent.len()];
    for echo in &echoes {
        let seq: usize = echo
            .message
            .header_str("seq")
            .and_then(|s| s.ok())
            .and_then(|s| s.parse().ok())
            .expect("seq");
        assert!(!seen[seq], "echo {seq} twice");
        seen[seq] = true;
        assert_eq!(echo.message, sent[seq], "echo {seq} differs");
    }
}

/// Runs `total` round trips in windows of `sent.len()`; returns the elapsed time.
async fn run(case: &Case, sent: &[Message], total: usize) -> Duration {
    let start = Instant::now();
    let mut done = 0;
    while done < total {
        let window = &sent[..sent.len().min(total - done)];
        match case.drive {
            Drive::Each => {
                let results = join_all(window.iter().map(|m| case.adapter.send(m.clone()))).await;
                assert!(
                    results.iter().all(Result::is_ok),
                    "{}: a send failed",
                    case.name
                );
            }
            Drive::Batch(size) => {
                let plugin = case.plugin.as_ref().expect("batch cases are plugin cases");
                let batches: Vec<_> = window
                    .chunks(size)
                    .map(|chunk| plugin.send_batch(chunk))
                    .collect();
                for results in join_all(batches).await {
                    assert!(
                        results.iter().all(Result::is_ok),
                        "{}: a send failed",
                        case.name
                    );
                }
            }
        }
        check(&case.sink, window);
        done += window.len();
    }
    start.elapsed()
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (total, rounds, window) = if full {
        (
            env_number("TW_BENCH_MESSAGES", 200_000usize).max(1),
            env_number("TW_BENCH_ROUNDS", 5usize).max(1),
            env_number("TW_BENCH_WINDOW", 1024usize).max(1),
        )
    } else {
        (2_000, 1, 256)
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(tokio::task::unconstrained(bench(total, rounds, window)));
}

async fn bench(total: usize, rounds: usize, window: usize) {
    let library = PluginLibrary::load(common::plugin(common::ECHO)).expect("load the echo plugin");
    eprintln!("plugin: {}", library.path().display());

    async fn make_static(config: &str) -> Made {
        let sink = Arc::new(Sink::default());
        let adapter = create_static::<twinwire_plugin_echo::Echo>(config.as_bytes(), sink.clone())
            .await
            .expect("static echo");
        (adapter, None, sink)
    }
    async fn make_plugin(library: &PluginLibrary, config: &str) -> Made {
        let sink = Arc::new(Sink::default());
        let adapter = library
            .create(config.as_bytes(), sink.clone())
            .await
            .expect("plugin echo");
        (Arc::new(adapter.clone()), Some(adapter), sink)
    }
    let specs: Vec<(&'static str, &'static str, Made, Drive, Option<usize>)> = vec![
        (
            "A static, direct",
            "host",
            make_static("").await,
            Drive::Each,
            None,
        ),
        (
            "B ABI, direct (inline first poll)",
            "host",
            make_plugin(&library, "").await,
            Drive::Each,
            Some(0),
        ),
        (
            "C ABI, direct, send_batch(64)",
            "host",
            make_plugin(&library, "").await,
            Drive::Batch(64),
            Some(0),
        ),
        (
            "D static, hop (yield on host rt)",
            "host",
            make_static("hop=1").await,
            Drive::Each,
            None,
        ),
        (
            "E ABI, hop (inline poll, then plugin rt)",
            "host+plugin",
            make_plugin(&library, "hop=1").await,
            Drive::Each,
            Some(3),
        ),
        (
            "F ABI, spawn always (inline=0)",
            "host+plugin",
            make_plugin(&library, "inline=0").await,
            Drive::Each,
            Some(0),
        ),
        (
            "G ABI, spawn always, send_batch(64)",
            "host+plugin",
            make_plugin(&library, "inline=0").await,
            Drive::Batch(64),
            Some(0),
        ),
    ];
    let mut cases: Vec<Case> = specs
        .into_iter()
        .map(
            |(name, threads, (adapter, plugin, sink), drive, baseline)| Case {
                name,
                threads,
                adapter,
                plugin,
                sink,
                drive,
                baseline,
                rates: Vec::new(),
            },
        )
        .collect();

    let sent = messages(window);
    // Warm-up: one small round each.
    for case in &cases {
        run(case, &sent, window.min(total)).await;
    }
    for round in 0..rounds {
        for case in cases.iter_mut() {
            let elapsed = run(case, &sent, total).await;
            case.rates.push(total as f64 / elapsed.as_secs_f64());
        }
        eprintln!("round {}/{rounds} done", round + 1);
    }

    println!();
    println!(
        "twinwire plugin ABI bench: {total} round trips per round, window {window}, {rounds} rounds (median, best)"
    );
    println!();
    println!("| case | threads | msg/s median | msg/s best | ns/msg median | vs baseline | overhead ns/msg |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    let mut rows = Vec::new();
    for case in &cases {
        let med = median(&case.rates);
        let best = case.rates.iter().copied().fold(0.0, f64::max);
        let ns = 1e9 / med;
        let (vs, overhead) = match case.baseline {
            Some(b) => {
                let base = median(&cases[b].rates);
                // The case's name without its letter, beside its baseline's.
                let name = |case: &Case| case.name.get(2..).unwrap_or(case.name).to_owned();
                rows.push(
                    Row::new(name(case), "round trips/s", med).baseline(name(&cases[b]), base),
                );
                let base_ns = 1e9 / base;
                (
                    format!("{:.2}x slower than {}", base / med, &cases[b].name[..1]),
                    format!("{:+.0}", ns - base_ns),
                )
            }
            None => ("baseline".to_owned(), "".to_owned()),
        };
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {} | {} |",
            case.name, case.threads, med, best, ns, vs, overhead
        );
    }

    // Latency: one message in flight.
    let latency_total = (total / 10).max(100);
    let one = &sent[..1];
    println!();
    println!("round-trip latency, window 1, {latency_total} messages (median of {rounds} rounds):");
    println!();
    println!("| case | µs per round trip |");
    println!("|---|---:|");
    for index in [0usize, 1, 3, 4, 5] {
        let case = &cases[index];
        let mut micros = Vec::new();
        for _ in 0..rounds {
            let elapsed = run(case, one, latency_total).await;
            micros.push(elapsed.as_secs_f64() * 1e6 / latency_total as f64);
        }
        println!("| {} | {:.2} |", case.name, median(&micros));
    }

    for case in &cases {
        if let Some(plugin) = &case.plugin {
            assert_eq!(plugin.unknown_send_results(), 0);
            plugin.close().await.expect("close");
        } else {
            case.adapter.close().await;
        }
    }
    report(&rows);
}
