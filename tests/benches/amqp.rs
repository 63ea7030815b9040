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
mod support;

use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{micros, Round, SUBJECT, WINDOW};
use tokio::sync::{mpsc, Semaphore};
use twinwire_adapter_amqp::Amqp;
use twinwire_bench::env_number;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672/%2f";

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
    let round = support::collect(&mut done, messages, Duration::from_secs(30), begin).await;
    reader.abort();
    round
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
        |_, sent| support::raw_payload(sent),
        support::raw_sent_at,
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

/// twinwire: queue in, twin persisted, event out to an exchange.
async fn twinwire_round(u: &str, messages: usize) -> Round {
    let (input, exchange, output) = (
        format!("bench-{u}-tw-in"),
        format!("bench-{u}-tw-x"),
        format!("bench-{u}-tw-out"),
    );
    let (_connection, admin) = channel().await;
    declare(&admin, &input, &exchange, &output).await;
    let (router, _dir) = support::broker().await;
    let factory = support::static_factory::<Amqp>();
    let events = support::open(
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
    let devices = support::open(
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
    let round = drive(
        &input,
        &output,
        messages,
        support::modify_payload,
        support::event_sent_at,
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

fn main() {
    let messages = env_number("AMQP_BENCH_MESSAGES", 20_000usize).max(1);
    let rounds = env_number("AMQP_BENCH_ROUNDS", 3usize).max(1);
    support::runtime().block_on(async {
        let (raw, tw) = support::rounds(
            rounds,
            messages,
            |u| async move { raw_round(&u, messages).await },
            |u| async move { twinwire_round(&u, messages).await },
        )
        .await;
        support::print_and_report(
            &format!("AMQP 0.9.1 end to end, {messages} messages, window {WINDOW}, median of {rounds} rounds"),
            ("lapin pass-through (consume, republish with confirms, ack)", raw),
            ("queue in -> twin persisted -> event out to an exchange", tw),
            ("lapin pass-through", "queue in, twin persisted, event out"),
        );
    });
}
