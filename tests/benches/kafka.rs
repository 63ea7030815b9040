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
mod support;

use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{micros, Round, SUBJECT, WINDOW};
use tokio::sync::{mpsc, Semaphore};
use twinwire_adapter_kafka::Kafka;
use twinwire_bench::env_number;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    let round = support::collect(&mut done, messages, Duration::from_secs(60), begin).await;
    stop.store(true, Ordering::Release);
    let _ = tokio::task::spawn_blocking(move || reading.join()).await;
    drop(deliveries);
    round
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
        |_, sent| support::raw_payload(sent),
        support::raw_sent_at,
    )
    .await;
    relaying.abort();
    round
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
    let (router, _dir) = support::broker().await;
    let factory = support::static_factory::<Kafka>();
    let events = support::open(
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
    let devices = support::open(
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
    let round = drive(
        &bootstrap,
        &input,
        &output,
        messages,
        support::modify_payload,
        support::event_sent_at,
    )
    .await;
    devices.close().await;
    events.close().await;
    round
}

fn main() {
    let messages = env_number("KAFKA_BENCH_MESSAGES", 20_000usize).max(1);
    let rounds = env_number("KAFKA_BENCH_ROUNDS", 3usize).max(1);
    let prometheus = env_number("KAFKA_BENCH_PROMETHEUS", 0u8) == 1;
    if prometheus {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .expect("a Prometheus recorder");
    }
    let cluster = MockCluster::new(1).expect("a mock cluster");
    let cluster = &cluster;
    support::runtime().block_on(async {
        let (raw, tw) = support::rounds(
            rounds,
            messages,
            |u| async move { raw_round(cluster, &u, messages).await },
            |u| async move { twinwire_round(cluster, &u, messages).await },
        )
        .await;
        let recorder = if prometheus { ", Prometheus recorder installed" } else { "" };
        support::print_and_report(
            &format!("Kafka end to end (librdkafka mock cluster), {messages} messages, window {WINDOW}, median of {rounds} rounds{recorder}"),
            ("rdkafka pass-through (consume, produce acks=all, commit)", raw),
            ("topic in -> twin persisted -> event out to a topic", tw),
            ("rdkafka pass-through", "topic in, twin persisted, event out (mock cluster)"),
        );
    });
}
