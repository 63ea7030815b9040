//! Kafka end to end on librdkafka's mock cluster (the Kafka wire protocol on loopback, in this
//! process), beside a raw rdkafka pass-through measured on the same cluster in the same run.
//!
//! - baseline: an rdkafka consumer (offsets stored only once the copy is delivered, committed by
//!   librdkafka every 100 ms) produces each record to the output topic with `acks=all`; nothing
//!   else.
//! - twinwire: a source (qos 1) takes Ditto modify commands from the input topic (100 things in
//!   turn; each settled once twin-persisted), and another connection's target produces the
//!   events to the output topic (the Kafka adapter linked statically, the real engine and
//!   journal with fsync).
//!
//! Both: a producer writes to the input topic and keeps at most `WINDOW` messages between input
//! and output; a consumer reads the output topic. Latency: from producing to receiving.
//!
//! `cargo bench -p twinwire-tests --bench kafka` (`KAFKA_BENCH_MESSAGES`, default 20000;
//! `KAFKA_BENCH_ROUNDS`, default 3: the median round is reported; `KAFKA_BENCH_PROMETHEUS=1`
//! installs a Prometheus recorder first, as `twinwire run` does, so the metrics cost counts).

use rdkafka::consumer::{BaseConsumer, Consumer, StreamConsumer};
use rdkafka::message::Message as _;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::ClientConfig;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use twinwire_adapter_kafka::Kafka;
use twinwire_core::auth::AuthContext;
use twinwire_core::connections::model::Connection as TwinwireConnection;
use twinwire_core::connections::runtime::{AdapterFactory, RunningConnection};
use twinwire_core::journal::{Journal, JournalConfig, RedbStore};
use twinwire_core::routing::{Requester, Router};
use twinwire_core::things::EngineConfig;
use twinwire_plugin::{host, ConnectionStatus, HostSink};
use twinwire_protocol::Envelope;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WINDOW: usize = 200;
const THINGS: usize = 100;
const NAMESPACE: &str = "org.eclipse.ditto";
const SUBJECT: &str = "integration:bench";

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

struct Round {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU of the whole process (both sides and the mock cluster) per message, set up included.
    cpu_us: f64,
}

/// Every client of the bench, twinwire's included: the mock cluster answers a fetch only after
/// `fetch.wait.max.ms` (500 ms by default), whatever arrived meanwhile.
const FETCH_WAIT_MS: &str = "5";

fn client(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("fetch.wait.max.ms", FETCH_WAIT_MS);
    config
}

/// Produces `messages` payloads to `input` (after one to warm up), at most `WINDOW` ahead of
/// what arrived on `output`; `sent_at` reads a received payload's send time.
async fn drive(
    bootstrap: &str,
    input: &str,
    output: &str,
    messages: usize,
    payload: impl Fn(usize, u64) -> Vec<u8>,
    sent_at: impl Fn(&[u8]) -> Option<u64> + Send + 'static,
) -> Round {
    let start = Instant::now();
    let window = Arc::new(Semaphore::new(WINDOW));
    let reader: BaseConsumer = client(bootstrap)
        .set("group.id", format!("bench-reader-{output}"))
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("reader");
    reader.subscribe(&[output]).expect("subscribe");
    let (done_tx, mut done) = mpsc::unbounded_channel::<(u64, u64)>();
    let freed = Arc::clone(&window);
    let stop = Arc::new(AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let reading = std::thread::spawn(move || {
        while !stopped.load(Ordering::Acquire) {
            if let Some(Ok(m)) = reader.poll(Duration::from_millis(20)) {
                if let Some(sent) = sent_at(m.payload().unwrap_or_default()) {
                    freed.add_permits(1);
                    let _ = done_tx.send((sent, micros(start)));
                }
            }
        }
    });
    let producer: FutureProducer = client(bootstrap)
        .set("linger.ms", "1")
        .create()
        .expect("producer");
    // One message through first: the consumer groups have joined (the mock cluster delays a
    // group's first rebalance by 3 s) before the clock starts.
    let warm_up = payload(0, micros(start));
    producer
        .send(
            FutureRecord::<str, [u8]>::to(input).payload(&warm_up),
            Duration::from_secs(10),
        )
        .await
        .map_err(|(e, _)| e)
        .expect("warm-up produced");
    tokio::time::timeout(Duration::from_secs(60), done.recv())
        .await
        .expect("the warm-up message arrives")
        .expect("reader running");
    let begin = Instant::now();
    let mut deliveries = Vec::with_capacity(messages);
    for i in 0..messages {
        window.acquire().await.expect("window").forget();
        let bytes = payload(i, micros(start));
        deliveries.push(
            producer
                .send_result(FutureRecord::<str, [u8]>::to(input).payload(&bytes))
                .map_err(|(e, _)| e)
                .expect("queued"),
        );
    }
    let mut latencies = Vec::with_capacity(messages);
    while latencies.len() < messages {
        let (sent, received) = tokio::time::timeout(Duration::from_secs(60), done.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {messages} arrived", latencies.len()))
            .expect("reader running");
        latencies.push(received.saturating_sub(sent));
    }
    let elapsed = begin.elapsed();
    stop.store(true, Ordering::Release);
    let _ = tokio::task::spawn_blocking(move || reading.join()).await;
    drop(deliveries);
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Round {
        per_second: messages as f64 / elapsed.as_secs_f64(),
        p50_ms: pick(0.50) as f64 / 1000.0,
        p99_ms: pick(0.99) as f64 / 1000.0,
        cpu_us: 0.0,
    }
}

/// The baseline: consume, produce with `acks=all`, store the offset once delivered (committed
/// by librdkafka).
async fn raw_round(
    cluster: &MockCluster<'static, impl rdkafka::ClientContext>,
    u: &str,
    messages: usize,
) -> Round {
    let bootstrap = cluster.bootstrap_servers();
    let (input, output) = (format!("bench-{u}-raw-in"), format!("bench-{u}-raw-out"));
    for topic in [&input, &output] {
        cluster.create_topic(topic, 1, 1).expect("topic");
    }
    let relay: Arc<StreamConsumer> = Arc::new(
        client(&bootstrap)
            .set("group.id", format!("bench-relay-{u}"))
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "true")
            .set("auto.commit.interval.ms", "100")
            .set("enable.auto.offset.store", "false")
            .create()
            .expect("relay consumer"),
    );
    relay.subscribe(&[input.as_str()]).expect("subscribe");
    let producer: FutureProducer = client(&bootstrap)
        .set("acks", "all")
        .set("linger.ms", "1")
        .create()
        .expect("relay producer");
    let relaying = {
        let (relay, output) = (Arc::clone(&relay), output.clone());
        tokio::spawn(async move {
            loop {
                let Ok(m) = relay.recv().await else { continue };
                let delivery = producer
                    .send_result(
                        FutureRecord::<[u8], [u8]>::to(&output)
                            .payload(m.payload().unwrap_or_default()),
                    )
                    .map_err(|(e, _)| e)
                    .expect("queued");
                let (topic, partition, offset) = (m.topic().to_owned(), m.partition(), m.offset());
                let relay = Arc::clone(&relay);
                // Stored once delivered, without holding up the next record.
                tokio::spawn(async move {
                    if matches!(delivery.await, Ok(Ok(_))) {
                        let _ = relay.store_offset(&topic, partition, offset + 1);
                    }
                });
            }
        })
    };
    let round = drive(
        &bootstrap,
        &input,
        &output,
        messages,
        |_, sent| sent.to_string().into_bytes(),
        |payload| std::str::from_utf8(payload).ok()?.parse().ok(),
    )
    .await;
    relaying.abort();
    round
}

fn static_kafka() -> AdapterFactory {
    Arc::new(|connection: TwinwireConnection, sink: Arc<dyn HostSink>| {
        Box::pin(async move {
            let config = serde_json::to_vec(&connection).map_err(|e| e.to_string())?;
            host::create_static::<Kafka>(&config, sink).await
        })
    })
}

async fn open(router: &Router, factory: &AdapterFactory, connection: Value) -> RunningConnection {
    let connection: TwinwireConnection = serde_json::from_value(connection).expect("connection");
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

/// twinwire: topic in, twin persisted, event out to a topic.
async fn twinwire_round(
    cluster: &MockCluster<'static, impl rdkafka::ClientContext>,
    u: &str,
    messages: usize,
) -> Round {
    let bootstrap = cluster.bootstrap_servers();
    let (input, output) = (format!("bench-{u}-tw-in"), format!("bench-{u}-tw-out"));
    for topic in [&input, &output] {
        cluster.create_topic(topic, 1, 1).expect("topic");
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path()).expect("store");
    let journal = Journal::start(Arc::new(store), JournalConfig::default()).expect("journal");
    let router = Router::start(journal, EngineConfig::default());
    let factory = static_kafka();
    let events = open(
        &router,
        &factory,
        json!({
            "id": format!("bench-events-{u}"), "connectionType": "kafka", "connectionStatus": "open",
            "uri": format!("tcp://{bootstrap}"),
            "specificConfig": {"bootstrapServers": bootstrap, "librdkafka-producer.linger.ms": "1"},
            "targets": [{"address": format!("{output}/{{{{ thing:id }}}}"), "topics": ["_/_/things/twin/events"],
                         "authorizationContext": [SUBJECT]}]
        }),
    )
    .await;
    let devices = open(
        &router,
        &factory,
        json!({
            "id": format!("bench-devices-{u}"), "connectionType": "kafka", "connectionStatus": "open",
            "uri": format!("tcp://{bootstrap}"),
            "specificConfig": {"bootstrapServers": bootstrap, "consumerOffsetReset": "earliest",
                               "librdkafka-consumer.fetch.wait.max.ms": FETCH_WAIT_MS},
            "sources": [{"addresses": [input], "qos": 1, "authorizationContext": [SUBJECT],
                         "acknowledgementRequests": {"includes": ["twin-persisted"]}}]
        }),
    )
    .await;
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
    let round = drive(
        &bootstrap,
        &input,
        &output,
        messages,
        |i, sent| {
            json!({"topic": format!("{NAMESPACE}/bench-{}/things/twin/commands/modify", i % THINGS),
                   "headers": {}, "path": "/attributes/sent", "value": sent})
            .to_string()
            .into_bytes()
        },
        |payload| {
            let event: Value = serde_json::from_slice(payload).ok()?;
            (event["path"] == "/attributes/sent")
                .then(|| event["value"].as_u64())
                .flatten()
        },
    )
    .await;
    devices.close().await;
    events.close().await;
    round
}

fn median(mut rounds: Vec<Round>) -> Round {
    rounds.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    let mid = rounds.len() / 2;
    rounds.swap_remove(mid)
}

fn main() {
    let messages = env_number("KAFKA_BENCH_MESSAGES", 20_000);
    let rounds = env_number("KAFKA_BENCH_ROUNDS", 3).max(1);
    let prometheus = env_number("KAFKA_BENCH_PROMETHEUS", 0) == 1;
    if prometheus {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("a Prometheus recorder");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let cluster = MockCluster::new(1).expect("a mock cluster");
    runtime.block_on(async {
        let mut raw = Vec::new();
        let mut tw = Vec::new();
        for r in 0..rounds {
            let u = format!("{}-{r}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            let cpu_before = cpu_seconds();
            let mut round = raw_round(&cluster, &u, messages).await;
            round.cpu_us = (cpu_seconds() - cpu_before) * 1e6 / messages as f64;
            raw.push(round);
            let cpu_before = cpu_seconds();
            let mut round = twinwire_round(&cluster, &u, messages).await;
            round.cpu_us = (cpu_seconds() - cpu_before) * 1e6 / messages as f64;
            tw.push(round);
        }
        let (raw, tw) = (median(raw), median(tw));
        let recorder = if prometheus { ", Prometheus recorder installed" } else { "" };
        println!("Kafka end to end (librdkafka mock cluster), {messages} messages, window {WINDOW}, median of {rounds} rounds{recorder}");
        println!("| scenario | messages/s | p50 ms | p99 ms | CPU µs/message | x baseline |");
        println!("|---|---|---|---|---|---|");
        println!(
            "| baseline: rdkafka pass-through (consume, produce acks=all, commit) | {:.0} | {:.2} | {:.2} | {:.0} | 1.00 |",
            raw.per_second, raw.p50_ms, raw.p99_ms, raw.cpu_us
        );
        println!(
            "| twinwire: topic in -> twin persisted -> event out to a topic | {:.0} | {:.2} | {:.2} | {:.0} | {:.2} |",
            tw.per_second,
            tw.p50_ms,
            tw.p99_ms,
            tw.cpu_us,
            tw.per_second / raw.per_second
        );
    });
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
