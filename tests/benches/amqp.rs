//! AMQP 0.9.1 end to end against the RabbitMQ on 127.0.0.1:5672, beside a raw lapin
//! pass-through measured in the same run.
//!
//! - baseline: a lapin consumer (manual acks, prefetch 1000) republishes each message to the
//!   output exchange with publisher confirms and acknowledges it once confirmed; nothing else.
//! - twinwire: a source takes Ditto modify commands from the input queue (100 things in turn;
//!   each settled once twin-persisted), and another connection's target publishes the events to
//!   the output exchange (the AMQP adapter linked statically, the real engine and journal with
//!   fsync).
//!
//! Both: a producer publishes to the input queue and keeps at most `WINDOW` messages between
//! input and output; a consumer reads a queue bound to the output exchange. Latency: from
//! publishing to receiving.
//!
//! `cargo bench -p twinwire-tests --bench amqp` (`AMQP_BENCH_MESSAGES`, default 20000;
//! `AMQP_BENCH_ROUNDS`, default 3: the median round is reported).

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions,
    QueueDeleteOptions,
};
use lapin::types::FieldTable;
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use twinwire_adapter_amqp::Amqp;
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

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";
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
}

async fn channel() -> (Connection, Channel) {
    let connection = Connection::connect(AMQP, ConnectionProperties::default())
        .await
        .expect("connect");
    let channel = connection.create_channel().await.expect("channel");
    (connection, channel)
}

/// The input queue, the output exchange and a queue bound to it.
async fn declare(channel: &Channel, input: &str, exchange: &str, output: &str) {
    for queue in [input, output] {
        channel
            .queue_declare(
                queue.into(),
                QueueDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("queue");
    }
    channel
        .exchange_declare(
            exchange.into(),
            ExchangeKind::Topic,
            ExchangeDeclareOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("exchange");
    channel
        .queue_bind(
            output.into(),
            exchange.into(),
            "#".into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("bind");
}

/// Publishes `messages` payloads to `input`, at most `WINDOW` ahead of what arrived on
/// `output`; `sent_at` reads a received payload's send time.
async fn drive(
    input: &str,
    output: &str,
    messages: usize,
    payload: impl Fn(usize, u64) -> Vec<u8>,
    sent_at: impl Fn(&[u8]) -> Option<u64> + Send + 'static,
) -> Round {
    let start = Instant::now();
    let window = Arc::new(Semaphore::new(WINDOW));
    let (_sink_connection, sink) = channel().await;
    sink.basic_qos(1_000, BasicQosOptions::default())
        .await
        .expect("qos");
    let mut consumer = sink
        .basic_consume(
            output.into(),
            "bench-sink".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let (done_tx, mut done) = mpsc::unbounded_channel::<(u64, u64)>();
    let freed = Arc::clone(&window);
    let reader = tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let _ = delivery.acker.ack(BasicAckOptions::default()).await;
            if let Some(sent) = sent_at(&delivery.data) {
                freed.add_permits(1);
                let _ = done_tx.send((sent, micros(start)));
            }
        }
    });
    let (_source_connection, source) = channel().await;
    let begin = Instant::now();
    for i in 0..messages {
        window.acquire().await.expect("window").forget();
        source
            .basic_publish(
                "".into(),
                input.into(),
                BasicPublishOptions::default(),
                &payload(i, micros(start)),
                BasicProperties::default().with_content_type("application/json".into()),
            )
            .await
            .expect("publish");
    }
    let mut latencies = Vec::with_capacity(messages);
    while latencies.len() < messages {
        let (sent, received) = tokio::time::timeout(Duration::from_secs(30), done.recv())
            .await
            .unwrap_or_else(|_| panic!("{} of {messages} arrived", latencies.len()))
            .expect("reader running");
        latencies.push(received.saturating_sub(sent));
    }
    let elapsed = begin.elapsed();
    reader.abort();
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Round {
        per_second: messages as f64 / elapsed.as_secs_f64(),
        p50_ms: pick(0.50) as f64 / 1000.0,
        p99_ms: pick(0.99) as f64 / 1000.0,
    }
}

/// The baseline: consume, republish with confirms, acknowledge.
async fn raw_round(u: &str, messages: usize) -> Round {
    let (input, exchange, output) = (
        format!("bench-{u}-raw-in"),
        format!("bench-{u}-raw-x"),
        format!("bench-{u}-raw-out"),
    );
    let (_connection, relay) = channel().await;
    declare(&relay, &input, &exchange, &output).await;
    relay
        .basic_qos(1_000, BasicQosOptions::default())
        .await
        .expect("qos");
    relay
        .confirm_select(ConfirmSelectOptions::default())
        .await
        .expect("confirms");
    let mut consumer = relay
        .basic_consume(
            input.as_str().into(),
            "bench-relay".into(),
            BasicConsumeOptions::default(),
            FieldTable::default(),
        )
        .await
        .expect("consume");
    let publisher = relay.clone();
    let exchange_name = exchange.clone();
    let relay_task = tokio::spawn(async move {
        while let Some(Ok(delivery)) = consumer.next().await {
            let confirm = publisher
                .basic_publish(
                    exchange_name.as_str().into(),
                    "raw".into(),
                    BasicPublishOptions::default(),
                    &delivery.data,
                    BasicProperties::default(),
                )
                .await
                .expect("republish");
            // Acknowledged once confirmed, without holding up the next delivery.
            tokio::spawn(async move {
                if confirm.await.is_ok() {
                    let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                }
            });
        }
    });
    let round = drive(
        &input,
        &output,
        messages,
        |_, sent| sent.to_string().into_bytes(),
        |payload| std::str::from_utf8(payload).ok()?.parse().ok(),
    )
    .await;
    relay_task.abort();
    for queue in [&input, &output] {
        let _ = relay
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    round
}

fn static_amqp() -> AdapterFactory {
    Arc::new(|connection: TwinwireConnection, sink: Arc<dyn HostSink>| {
        Box::pin(async move {
            let config = serde_json::to_vec(&connection).map_err(|e| e.to_string())?;
            host::create_static::<Amqp>(&config, sink).await
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

/// twinwire: queue in, twin persisted, event out to an exchange.
async fn twinwire_round(u: &str, messages: usize) -> Round {
    let (input, exchange, output) = (
        format!("bench-{u}-tw-in"),
        format!("bench-{u}-tw-x"),
        format!("bench-{u}-tw-out"),
    );
    let (_connection, admin) = channel().await;
    declare(&admin, &input, &exchange, &output).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path()).expect("store");
    let journal = Journal::start(Arc::new(store), JournalConfig::default()).expect("journal");
    let router = Router::start(journal, EngineConfig::default());
    let factory = static_amqp();
    let events = open(
        &router,
        &factory,
        json!({
            "id": format!("bench-events-{u}"), "connectionType": "amqp-091", "connectionStatus": "open",
            "uri": AMQP,
            "targets": [{"address": format!("{exchange}/{{{{ thing:id }}}}"), "topics": ["_/_/things/twin/events"],
                         "authorizationContext": [SUBJECT]}]
        }),
    )
    .await;
    let devices = open(
        &router,
        &factory,
        json!({
            "id": format!("bench-devices-{u}"), "connectionType": "amqp-091", "connectionStatus": "open",
            "uri": AMQP,
            "specificConfig": {"maxInFlight": "1000"},
            "sources": [{"addresses": [input], "authorizationContext": [SUBJECT],
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
    for queue in [&input, &output] {
        let _ = admin
            .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
            .await;
    }
    round
}

fn median(mut rounds: Vec<Round>) -> Round {
    rounds.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    let mid = rounds.len() / 2;
    rounds.swap_remove(mid)
}

fn main() {
    let messages = env_number("AMQP_BENCH_MESSAGES", 20_000);
    let rounds = env_number("AMQP_BENCH_ROUNDS", 3).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut raw = Vec::new();
        let mut tw = Vec::new();
        for r in 0..rounds {
            let u = format!("{}-{r}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            raw.push(raw_round(&u, messages).await);
            tw.push(twinwire_round(&u, messages).await);
        }
        let (raw, tw) = (median(raw), median(tw));
        println!("AMQP 0.9.1 end to end, {messages} messages, window {WINDOW}, median of {rounds} rounds");
        println!("| scenario | messages/s | p50 ms | p99 ms | x baseline |");
        println!("|---|---|---|---|---|");
        println!(
            "| baseline: lapin pass-through (consume, republish with confirms, ack) | {:.0} | {:.2} | {:.2} | 1.00 |",
            raw.per_second, raw.p50_ms, raw.p99_ms
        );
        println!(
            "| twinwire: queue in -> twin persisted -> event out to an exchange | {:.0} | {:.2} | {:.2} | {:.2} |",
            tw.per_second,
            tw.p50_ms,
            tw.p99_ms,
            tw.per_second / raw.per_second
        );
    });
}
