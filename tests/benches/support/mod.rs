//! What the end-to-end benches (MQTT, AMQP, Kafka) share: the twinwire side (a broker with an
//! adapter linked statically, the things, the commands and the events they turn into), the
//! round's figures, and the table each prints and reports. What differs is the broker's client
//! code: how a bench produces, relays and consumes.

#![allow(dead_code, unreachable_pub)] // a module of each bench, which uses its own part

use serde_json::{json, Value};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use twinwire_bench::{median_by, report, Row};
use twinwire_core::auth::AuthContext;
use twinwire_core::connections::model::Connection;
use twinwire_core::connections::runtime::{AdapterFactory, RunningConnection};
use twinwire_core::journal::{Journal, JournalConfig, RedbStore};
use twinwire_core::routing::{Requester, Router};
use twinwire_core::things::EngineConfig;
use twinwire_plugin::{host, ConnectionStatus, HostSink, Plugin};
use twinwire_protocol::Envelope;

/// Messages between input and output at most (a stock Mosquitto drops qos 1 messages queued
/// beyond `max_queued_messages`).
pub const WINDOW: usize = 200;
/// The things the modify commands go to, in turn.
pub const THINGS: usize = 100;
pub const NAMESPACE: &str = "org.eclipse.ditto";
pub const SUBJECT: &str = "integration:bench";

/// One round's figures.
pub struct Round {
    pub per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// CPU of the whole process per message, where a bench measures it.
    pub cpu_us: Option<f64>,
}

pub fn micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

/// Waits for `messages` (sent, received) pairs in microseconds on `done` (at most `wait` for
/// each) and makes the round of them, `begin` being when the first was sent.
pub async fn collect(
    done: &mut mpsc::UnboundedReceiver<(u64, u64)>,
    messages: usize,
    wait: Duration,
    begin: Instant,
) -> Round {
    let mut latencies = Vec::with_capacity(messages);
    while latencies.len() < messages {
        let (sent, received) = tokio::time::timeout(wait, done.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {messages} arrived", latencies.len()))
            .expect("the consumer runs");
        latencies.push(received.saturating_sub(sent));
    }
    let elapsed = begin.elapsed();
    latencies.sort_unstable();
    let ms = |q: f64| twinwire_bench::percentile(&latencies, q) as f64 / 1000.0;
    Round {
        per_second: messages as f64 / elapsed.as_secs_f64(),
        p50_ms: ms(0.50),
        p99_ms: ms(0.99),
        cpu_us: None,
    }
}

/// The baseline's payload: its send time.
pub fn raw_payload(sent: u64) -> Vec<u8> {
    sent.to_string().into_bytes()
}

pub fn raw_sent_at(payload: &[u8]) -> Option<u64> {
    std::str::from_utf8(payload).ok()?.parse().ok()
}

/// twinwire's payload: a Ditto modify of the `i`th message's thing, carrying its send time.
pub fn modify_payload(i: usize, sent: u64) -> Vec<u8> {
    json!({"topic": format!("{NAMESPACE}/bench-{}/things/twin/commands/modify", i % THINGS),
           "headers": {}, "path": "/attributes/sent", "value": sent})
    .to_string()
    .into_bytes()
}

/// The send time in the event a modify caused.
pub fn event_sent_at(payload: &[u8]) -> Option<u64> {
    let event: Value = serde_json::from_slice(payload).ok()?;
    (event["path"] == "/attributes/sent")
        .then(|| event["value"].as_u64())
        .flatten()
}

/// Connections whose adapter is `P` linked statically (the plugin boundary costs ~0.3 µs a
/// message).
pub fn static_factory<P: Plugin>() -> AdapterFactory {
    Arc::new(|connection: Connection, sink: Arc<dyn HostSink>| {
        Box::pin(async move {
            let config = serde_json::to_vec(&connection).map_err(|e| e.to_string())?;
            host::create_static::<P>(&config, sink).await
        })
    })
}

/// A router on a journal with fsync in a temp directory (kept while the router lives), with
/// the `THINGS` things the commands modify.
pub async fn broker() -> (Router, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path()).expect("store");
    let journal = Journal::start(Arc::new(store), JournalConfig::default()).expect("journal");
    let router = Router::start(journal, EngineConfig::default());
    for t in 0..THINGS {
        let create = Envelope::from_json(json!({
            "topic": format!("{NAMESPACE}/bench-{t}/things/twin/commands/create"), "path": "/",
            "value": {"attributes": {"sent": 0}, "_policy": {"entries": {"bench": {
                "subjects": {SUBJECT: {"type": "t"}},
                "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                              "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}}}
        }))
        .expect("create");
        let answer = router
            .handle(
                create,
                &Requester::http(AuthContext::new([SUBJECT]).expect("subject")),
            )
            .await;
        assert_eq!(answer.reply.and_then(|r| r.status), Some(201));
    }
    (router, dir)
}

/// Opens `connection` and waits until it is connected.
pub async fn open(
    router: &Router,
    factory: &AdapterFactory,
    connection: Value,
) -> RunningConnection {
    let connection: Connection = serde_json::from_value(connection).expect("connection");
    let running = RunningConnection::open(connection, router.clone(), factory)
        .await
        .expect("open");
    let started = Instant::now();
    while running.status().status != ConnectionStatus::Connected {
        assert!(started.elapsed() < Duration::from_secs(10), "not connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running
}

/// A short unique tag for one round's topics, queues and client IDs.
pub fn unique(round: usize) -> String {
    format!(
        "{}-{round}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// The runtime the benches drive both sides on.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// `rounds` rounds of the baseline and then twinwire, each round with a tag of its own, and
/// the CPU of the whole process (both sides and whatever runs in it) per message, set-up
/// included.
pub async fn rounds<B, BF, T, TF>(
    rounds: usize,
    messages: usize,
    baseline: B,
    twinwire: T,
) -> (Vec<Round>, Vec<Round>)
where
    B: Fn(String) -> BF,
    BF: Future<Output = Round>,
    T: Fn(String) -> TF,
    TF: Future<Output = Round>,
{
    let (mut raw, mut tw) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        let u = unique(r);
        let cpu_before = cpu_seconds();
        let mut round = baseline(u.clone()).await;
        round.cpu_us = Some((cpu_seconds() - cpu_before) * 1e6 / messages as f64);
        raw.push(round);
        let cpu_before = cpu_seconds();
        let mut round = twinwire(u).await;
        round.cpu_us = Some((cpu_seconds() - cpu_before) * 1e6 / messages as f64);
        tw.push(round);
    }
    (raw, tw)
}

/// CPU seconds this process used so far (user and system, from /proc; 0 where there is none).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // After the command name in parentheses: utime and stime are the 12th and 13th fields.
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0 // USER_HZ
}

/// Prints the median rounds of the baseline and of twinwire as a table under `title`, and
/// reports twinwire's beside the baseline's to twinwire-bench.
pub fn print_and_report(
    title: &str,
    baseline: (&str, Vec<Round>),
    twinwire: (&str, Vec<Round>),
    short: (&str, &str),
) {
    let by_rate = |r: &Round| r.per_second;
    let (Some(raw), Some(tw)) = (
        median_by(baseline.1, by_rate),
        median_by(twinwire.1, by_rate),
    ) else {
        return;
    };
    let cpu = |r: &Round| r.cpu_us.map(|us| format!(" {us:.0} |")).unwrap_or_default();
    let cpu_header = if raw.cpu_us.is_some() {
        (" CPU µs/message |", "---|")
    } else {
        ("", "")
    };
    println!("{title}");
    println!(
        "| scenario | messages/s | p50 ms | p99 ms |{} x baseline |",
        cpu_header.0
    );
    println!("|---|---|---|---|{}---|", cpu_header.1);
    println!(
        "| baseline: {} | {:.0} | {:.2} | {:.2} |{} 1.00 |",
        baseline.0,
        raw.per_second,
        raw.p50_ms,
        raw.p99_ms,
        cpu(&raw)
    );
    println!(
        "| twinwire: {} | {:.0} | {:.2} | {:.2} |{} {:.2} |",
        twinwire.0,
        tw.per_second,
        tw.p50_ms,
        tw.p99_ms,
        cpu(&tw),
        tw.per_second / raw.per_second
    );
    report(&[Row::new(short.1, "messages/s", tw.per_second)
        .baseline(short.0, raw.per_second)
        .latency_ms(tw.p50_ms, tw.p99_ms)]);
}
