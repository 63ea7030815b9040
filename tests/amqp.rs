//! The AMQP 0.9.1 adapter (adapters/amqp), built and loaded as the broker loads plugins, against
//! the real RabbitMQ on 127.0.0.1:5672 (guest/guest): the router with the real engine and
//! journal; devices and consumers played by lapin clients.
//!
//! Every test declares queues and exchanges of its own (and the connection-killing test a vhost
//! of its own), so the tests can share the server and run at the same time.

mod support;

use futures_util::StreamExt;
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicPublishOptions, ExchangeDeclareOptions,
    QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable};
use lapin::{BasicProperties, Channel, Connection, ConnectionProperties, ExchangeKind};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;
use twinwire_core::routing::Requester;
use twinwire_protocol::Envelope;

const AMQP: &str = "amqp://guest:guest@127.0.0.1:5672";

fn broker_amqp() -> Broker {
    broker("twinwire-adapter-amqp", &["amqp-091"])
}

/// A lapin client of the test's: declares, publishes, reads.
struct Client {
    connection: Connection,
    channel: Channel,
}

impl Client {
    async fn connect(vhost: &str) -> Client {
        let connection = Connection::connect(
            &format!("{AMQP}/{}", vhost.replace('/', "%2f")),
            ConnectionProperties::default(),
        )
        .await
        .expect("connect to RabbitMQ");
        let channel = connection.create_channel().await.expect("channel");
        Client {
            connection,
            channel,
        }
    }

    /// Declares `queue` (auto-delete off, so it outlives the test's own connection), with
    /// `arguments`.
    async fn queue(&self, queue: &str, arguments: FieldTable) {
        self.channel
            .queue_declare(queue.into(), QueueDeclareOptions::default(), arguments)
            .await
            .expect("declare the queue");
    }

    /// Declares a topic exchange and a queue bound to it with `#`.
    async fn exchange_with_queue(&self, exchange: &str, queue: &str) {
        self.channel
            .exchange_declare(
                exchange.into(),
                ExchangeKind::Topic,
                ExchangeDeclareOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("declare the exchange");
        self.queue(queue, FieldTable::default()).await;
        self.channel
            .queue_bind(
                queue.into(),
                exchange.into(),
                "#".into(),
                QueueBindOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("bind");
    }

    /// Publishes `payload` to `queue` (the default exchange) with `correlation-id` and
    /// `reply-to` properties.
    async fn send(&self, queue: &str, payload: &[u8], correlation: &str, reply_to: &str) {
        let properties = BasicProperties::default()
            .with_correlation_id(correlation.into())
            .with_reply_to(reply_to.into())
            .with_content_type("application/json".into());
        self.channel
            .basic_publish(
                "".into(),
                queue.into(),
                BasicPublishOptions::default(),
                payload,
                properties,
            )
            .await
            .expect("publish")
            .await
            .expect("confirm");
    }

    /// Consumes `queue`: its messages (correlation-id, payload) in a channel.
    async fn read(&self, queue: &str) -> tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)> {
        let mut consumer = self
            .channel
            .basic_consume(
                queue.into(),
                format!("test-{}", unique()).into(),
                BasicConsumeOptions::default(),
                FieldTable::default(),
            )
            .await
            .expect("consume");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Some(Ok(delivery)) = consumer.next().await {
                let correlation = delivery
                    .properties
                    .correlation_id()
                    .as_ref()
                    .map(|c| c.as_str().to_owned())
                    .unwrap_or_default();
                let _ = delivery.acker.ack(BasicAckOptions::default()).await;
                let _ = tx.send((correlation, delivery.data));
            }
        });
        rx
    }

    async fn delete(&self, queues: &[&str]) {
        for queue in queues {
            let _ = self
                .channel
                .queue_delete((*queue).into(), QueueDeleteOptions::default())
                .await;
        }
    }
}

/// The next message from `rx`, its payload as JSON.
async fn next(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    what: &str,
) -> (String, Value) {
    let (correlation, payload) = tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
        .expect("reading");
    let value = serde_json::from_slice(&payload).unwrap_or_else(|e| {
        panic!(
            "{what}: not JSON ({e}): {}",
            String::from_utf8_lossy(&payload)
        )
    });
    (correlation, value)
}

/// The devices' connection: commands from `queue`, replies to the `reply-to` property.
fn devices_connection(id: &str, vhost: &str, queue: &str, acks: Value, specific: Value) -> Value {
    let mut specific = specific;
    specific["reconnectMinDelay"] = json!("100ms");
    specific["reconnectMaxDelay"] = json!("1s");
    json!({
        "id": id, "connectionType": "amqp-091", "connectionStatus": "open",
        "uri": format!("{AMQP}/{}", vhost.replace('/', "%2f")),
        "specificConfig": specific,
        "sources": [{
            "addresses": [queue],
            "authorizationContext": [SUBJECT],
            "acknowledgementRequests": {"includes": acks},
            "headerMapping": {"correlation-id": "{{header:correlation-id}}", "reply-to": "{{header:reply-to}}"},
            "replyTarget": {"enabled": true, "address": "{{header:reply-to}}",
                            "headerMapping": {"correlation-id": "{{header:correlation-id}}"},
                            "expectedResponseTypes": ["response", "error", "nack"]}
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queue_to_twin_to_exchange_with_twin_persisted_and_a_target_ack() {
    let b = broker_amqp();
    let u = unique();
    let thing = format!("lamp-{u}");
    let client = Client::connect("/").await;
    let (commands, replies, exchange, events) = (
        format!("tw-{u}-commands"),
        format!("tw-{u}-replies"),
        format!("tw-{u}-events"),
        format!("tw-{u}-events-out"),
    );
    client.queue(&commands, FieldTable::default()).await;
    client.queue(&replies, FieldTable::default()).await;
    client.exchange_with_queue(&exchange, &events).await;
    let _events = b
        .open(json!({
            "id": format!("events-{u}"), "connectionType": "amqp-091", "connectionStatus": "open",
            "uri": format!("{AMQP}/%2f"),
            "targets": [{"address": format!("{exchange}/{{{{ thing:id }}}}"),
                         "topics": ["_/_/things/twin/events"],
                         "authorizationContext": [SUBJECT],
                         "issuedAcknowledgementLabel": "{{connection:id}}:published"}]
        }))
        .await;
    let devices = b
        .open(devices_connection(
            &format!("devices-{u}"),
            "/",
            &commands,
            json!(["twin-persisted", format!("events-{u}:published")]),
            json!({}),
        ))
        .await;
    b.create_thing(&thing).await;
    let mut events_in = client.read(&events).await;
    let mut replies_in = client.read(&replies).await;

    client
        .send(
            &commands,
            modify(&thing, "/attributes/on", json!(true), json!({})).as_bytes(),
            &format!("c-{u}"),
            &format!("/{replies}"),
        )
        .await;

    let modified = loop {
        let (_, event) = next(&mut events_in, "an event").await;
        if event["topic"] == format!("{NAMESPACE}/{thing}/things/twin/events/modified") {
            break event;
        }
    };
    assert_eq!(modified["value"], true);
    assert_eq!(modified["revision"], 2);
    let (correlation, reply) = next(&mut replies_in, "a reply").await;
    assert_eq!(correlation, format!("c-{u}"), "correlation-id property");
    check_acknowledged(&reply, &format!("events-{u}"), 200);
    assert_eq!(b.thing(&thing).await["attributes"]["on"], true);
    devices.close().await;
    client.delete(&[&commands, &replies, &events]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_ack_requeues_and_is_applied_once_and_a_permanent_failure_is_dead_lettered() {
    let b = broker_amqp();
    let u = unique();
    let thing = format!("valve-{u}");
    let client = Client::connect("/").await;
    let (commands, replies, dead) = (
        format!("tw-{u}-commands"),
        format!("tw-{u}-replies"),
        format!("tw-{u}-dead"),
    );
    client.queue(&dead, FieldTable::default()).await;
    let mut arguments = FieldTable::default();
    arguments.insert(
        "x-dead-letter-exchange".into(),
        AMQPValue::LongString("".into()),
    );
    arguments.insert(
        "x-dead-letter-routing-key".into(),
        AMQPValue::LongString(dead.as_str().into()),
    );
    client.queue(&commands, arguments).await;
    client.queue(&replies, FieldTable::default()).await;
    let label = format!("checker-{u}:checked");
    let mut checks = acknowledger(
        &b.router,
        &format!("checker-{u}"),
        &label,
        Answering::AllButFirst,
    );
    let devices = b
        .open(devices_connection(
            &format!("devices-{u}"),
            "/",
            &commands,
            json!(["twin-persisted", label]),
            json!({}),
        ))
        .await;
    b.create_thing(&thing).await;
    let mut replies_in = client.read(&replies).await;
    let mut dead_in = client.read(&dead).await;

    client
        .send(
            &commands,
            modify(
                &thing,
                "/attributes/open",
                json!(true),
                json!({"timeout": "1s"}),
            )
            .as_bytes(),
            "c-ack",
            &format!("/{replies}"),
        )
        .await;
    let (_, failed) = next(&mut replies_in, "the failed answer").await;
    assert_eq!(failed["status"], 424, "{failed}");
    assert_eq!(failed["value"][&label]["status"], 408, "{failed}");
    // Requeued, redelivered (marked so), not applied again; the ack comes the second time.
    let (_, done) = next(&mut replies_in, "the second answer").await;
    assert_eq!(done["status"], 200, "{done}");
    assert_eq!(done["value"]["twin-persisted"]["status"], 201, "{done}");
    let now = b.thing(&thing).await;
    assert_eq!(now["_revision"], 2, "applied once: {now}");
    let seen = (checks.recv().await, checks.recv().await);
    assert_eq!(seen, (Some(2), Some(2)), "the same event twice");

    // A permanent failure: its error goes to reply-to, the message to the dead-letter queue.
    let ghost = modify(&format!("ghost-{u}"), "/attributes/x", json!(1), json!({}));
    client
        .send(
            &commands,
            ghost.as_bytes(),
            "c-ghost",
            &format!("/{replies}"),
        )
        .await;
    let (correlation, error) = next(&mut replies_in, "the error").await;
    assert_eq!(correlation, "c-ghost");
    assert_eq!(error["status"], 404, "{error}");
    let (correlation, dead_lettered) = next(&mut dead_in, "the dead letter").await;
    assert_eq!(correlation, "c-ghost");
    assert_eq!(
        dead_lettered,
        serde_json::from_str::<Value>(&ghost).expect("JSON")
    );
    devices.close().await;
    client.delete(&[&commands, &replies, &dead]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_get_errors_on_reply_to_and_the_stream_goes_on() {
    let b = broker_amqp();
    let u = unique();
    let thing = format!("sensor-{u}");
    let client = Client::connect("/").await;
    let (commands, replies) = (format!("tw-{u}-commands"), format!("tw-{u}-replies"));
    client.queue(&commands, FieldTable::default()).await;
    client.queue(&replies, FieldTable::default()).await;
    let devices = b
        .open(devices_connection(
            &format!("devices-{u}"),
            "/",
            &commands,
            json!([]),
            json!({}),
        ))
        .await;
    b.create_thing(&thing).await;
    let mut replies_in = client.read(&replies).await;
    let reply_to = format!("/{replies}");
    for (correlation, payload) in malformed_then_good(&thing) {
        client
            .send(&commands, &payload, correlation, &reply_to)
            .await;
    }
    // Answers correlate by correlation-id; they need not come in order.
    let mut answers = std::collections::HashMap::new();
    for _ in 0..4 {
        let (correlation, answer) = next(&mut replies_in, "an answer").await;
        answers.insert(correlation, answer);
    }
    check_malformed_answers(&b, &thing, &answers).await;
    devices.close().await;
    client.delete(&[&commands, &replies]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_to_a_missing_exchange_fails_and_the_next_one_goes_out() {
    let b = broker_amqp();
    let u = unique();
    let client = Client::connect("/").await;
    // Each thing's events go to the exchange named like the thing: one exists, one does not.
    let (exchange, missing, events) = (
        format!("tw-{u}-events"),
        format!("tw-{u}-nowhere"),
        format!("tw-{u}-events-out"),
    );
    client.exchange_with_queue(&exchange, &events).await;
    let events_connection = b
        .open(json!({
            "id": format!("events-{u}"), "connectionType": "amqp-091", "connectionStatus": "open",
            "uri": format!("{AMQP}/%2f"),
            "targets": [{"address": "{{ thing:name }}/{{ thing:id }}",
                         "topics": ["_/_/things/twin/events"],
                         "authorizationContext": [SUBJECT],
                         "issuedAcknowledgementLabel": "{{connection:id}}:published"}]
        }))
        .await;
    b.create_thing(&missing).await;
    b.create_thing(&exchange).await;
    let mut events_in = client.read(&events).await;
    let modify = |thing: &str| {
        Envelope::from_json(json!({
            "topic": format!("{NAMESPACE}/{thing}/things/twin/commands/modify"),
            "headers": {"requested-acks": [format!("events-{u}:published")], "timeout": "10s"},
            "path": "/attributes/open", "value": true
        }))
        .expect("modify")
    };
    // RabbitMQ closes the channel of a publish to a missing exchange: the ack fails.
    let answer = b
        .router
        .handle(modify(&missing), &Requester::http(auth(SUBJECT)))
        .await;
    let reply = answer.reply.expect("a reply");
    let status = reply
        .value
        .as_ref()
        .map(|v| v[format!("events-{u}:published")]["status"].clone());
    assert_eq!(reply.status, Some(503), "{}", reply.to_json());
    assert_eq!(status, Some(json!(503)), "{}", reply.to_json());
    // A new publishing channel takes the next one.
    let answer = b
        .router
        .handle(modify(&exchange), &Requester::http(auth(SUBJECT)))
        .await;
    let reply = answer.reply.expect("a reply");
    assert_eq!(reply.status, Some(200), "{}", reply.to_json());
    // The attribute is new: an attribute-created event.
    loop {
        let (_, event) = next(&mut events_in, "the event").await;
        if event["path"] == "/attributes/open" {
            assert_eq!(
                event["topic"],
                format!("{NAMESPACE}/{exchange}/things/twin/events/created")
            );
            break;
        }
    }
    events_connection.close().await;
    client.delete(&[&events]).await;
}

/// Runs `rabbitmqctl` with `args`; panics (a test helper) when it fails.
fn rabbitmqctl(args: &[&str]) {
    let binary = ["/usr/sbin/rabbitmqctl", "/usr/lib/rabbitmq/bin/rabbitmqctl"]
        .into_iter()
        .find(|b| std::path::Path::new(b).is_file())
        .unwrap_or("rabbitmqctl");
    let output = Command::new(binary)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run rabbitmqctl {args:?}: {e}"));
    assert!(
        output.status.success(),
        "rabbitmqctl {args:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_broker_connection_killed_mid_stream_loses_nothing_and_applies_nothing_twice() {
    const MESSAGES: usize = 3_000;
    let b = broker_amqp();
    let u = unique();
    let thing = format!("meter-{u}");
    // A slow acknowledger keeps the stream going for a few seconds: 20 in flight, 20 ms each.
    let label = format!("slow-{u}:seen");
    let _slow = acknowledger(
        &b.router,
        &format!("slow-{u}"),
        &label,
        Answering::After(Duration::from_millis(20)),
    );
    // A vhost of the test's own: killing its connections disturbs no other test.
    let vhost = format!("tw-{u}");
    rabbitmqctl(&["add_vhost", &vhost]);
    rabbitmqctl(&["set_permissions", "-p", &vhost, "guest", ".*", ".*", ".*"]);
    let commands = format!("tw-{u}-commands");
    {
        let client = Client::connect(&vhost).await;
        client.queue(&commands, FieldTable::default()).await;
        for i in 0..MESSAGES {
            let command = modify(&thing, &format!("/attributes/m{i}"), json!(i), json!({}));
            client
                .send(&commands, command.as_bytes(), &format!("c-{i}"), "")
                .await;
        }
        let _ = client.connection.close(200, "done".into()).await;
    }
    b.create_thing(&thing).await;
    let devices = b
        .open(devices_connection(
            &format!("devices-{u}"),
            &vhost,
            &commands,
            json!(["twin-persisted", label]),
            json!({"maxInFlight": "20"}),
        ))
        .await;
    // Mid-stream: some applied, many in flight or queued.
    let started = Instant::now();
    loop {
        let revision = b.thing(&thing).await["_revision"].as_u64().unwrap_or(0);
        if revision > 60 {
            break;
        }
        assert!(started.elapsed() < WAIT, "no progress");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    rabbitmqctl(&[
        "close_all_connections",
        "-p",
        &vhost,
        "twinwire test: killed",
    ]);
    let at_kill = b.thing(&thing).await["_revision"].as_u64().unwrap_or(0);
    assert!(
        at_kill < MESSAGES as u64,
        "the stream ended before the kill"
    );
    let started = Instant::now();
    let (missing, revision) = loop {
        let now = b.thing(&thing).await;
        let missing: Vec<usize> = (0..MESSAGES)
            .filter(|i| now["attributes"][format!("m{i}")] != json!(i))
            .collect();
        if missing.is_empty() || started.elapsed() > Duration::from_secs(60) {
            break (missing, now["_revision"].clone());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(missing.is_empty(), "lost: {missing:?}");
    assert_eq!(
        revision,
        json!(MESSAGES + 1),
        "created once, each message applied once"
    );
    devices.close().await;
    rabbitmqctl(&["delete_vhost", &vhost]);
}
