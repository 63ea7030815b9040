//! The Kafka adapter (adapters/kafka), built and loaded as the broker loads plugins, against
//! librdkafka's mock cluster (the Kafka wire protocol on loopback ports of this process): the
//! router with the real engine and journal; devices and consumers played by rdkafka clients.
//!
//! `TWINWIRE_KAFKA_BOOTSTRAP=host:port` points every test but the one failing a broker at a real
//! Kafka-compatible cluster instead (e.g. tansu on 127.0.0.1:9092); that one always uses the
//! mock cluster.

mod support;

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message as _, OwnedHeaders};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{DefaultProducerContext, FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use support::*;
use tokio::sync::mpsc::UnboundedReceiver;
use twinwire_core::connections::runtime::RunningConnection;

fn broker_kafka() -> Broker {
    broker("twinwire-adapter-kafka", &["kafka"])
}

/// The cluster a test talks to: a mock cluster of its own, or the one named by
/// `TWINWIRE_KAFKA_BOOTSTRAP` where a test allows it.
struct Cluster {
    bootstrap: String,
    stop: Arc<AtomicBool>,
    readers: Mutex<Vec<std::thread::JoinHandle<()>>>,
    // Last: dropped after the readers ended.
    mock: Option<MockCluster<'static, DefaultProducerContext>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        for reader in self
            .readers
            .get_mut()
            .map(std::mem::take)
            .unwrap_or_default()
        {
            let _ = reader.join();
        }
    }
}

impl Cluster {
    /// A mock cluster of three brokers.
    fn mock() -> Cluster {
        let mock = MockCluster::new(3).expect("a mock cluster");
        let bootstrap = mock.bootstrap_servers();
        Cluster {
            mock: Some(mock),
            bootstrap,
            stop: Arc::default(),
            readers: Mutex::default(),
        }
    }

    /// The external cluster if one is named, else a mock cluster.
    fn any() -> Cluster {
        match std::env::var("TWINWIRE_KAFKA_BOOTSTRAP") {
            Ok(bootstrap) if !bootstrap.is_empty() => Cluster {
                mock: None,
                bootstrap,
                stop: Arc::default(),
                readers: Mutex::default(),
            },
            _ => Cluster::mock(),
        }
    }

    async fn topic(&self, name: &str, partitions: i32) {
        match &self.mock {
            Some(mock) => mock
                .create_topic(name, partitions, 1)
                .expect("create a mock topic"),
            None => {
                let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
                    .set("bootstrap.servers", &self.bootstrap)
                    .create()
                    .expect("admin client");
                let created = admin
                    .create_topics(
                        &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
                        &AdminOptions::new(),
                    )
                    .await
                    .expect("create topics");
                for result in created {
                    result.expect("topic created");
                }
            }
        }
    }

    fn producer(&self) -> FutureProducer {
        ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("message.timeout.ms", "30000")
            .create()
            .expect("producer")
    }

    /// Produces `payload` to `topic` with `headers`.
    async fn send(
        &self,
        producer: &FutureProducer,
        topic: &str,
        headers: &[(&str, &str)],
        payload: &[u8],
    ) {
        let mut owned = OwnedHeaders::new();
        for (key, value) in headers {
            owned = owned.insert(Header {
                key,
                value: Some(*value),
            });
        }
        producer
            .send(
                FutureRecord::<str, [u8]>::to(topic)
                    .payload(payload)
                    .headers(owned),
                Duration::from_secs(10),
            )
            .await
            .expect("produced");
    }

    /// Reads `topic` from the start: (key, headers, payload) of each record. The reader runs on
    /// a thread of its own, which ends (closing its consumer) before the cluster goes.
    fn read(&self, topic: &str) -> UnboundedReceiver<Record> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", format!("reader-{}", unique()))
            .set("auto.offset.reset", "earliest")
            .create()
            .expect("consumer");
        consumer.subscribe(&[topic]).expect("subscribe");
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let stop = Arc::clone(&self.stop);
        let reader = std::thread::spawn(move || {
            while !stop.load(Ordering::Acquire) {
                let Some(Ok(m)) = consumer.poll(Duration::from_millis(50)) else {
                    continue;
                };
                let headers = m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|h| {
                                let value = h.value.unwrap_or_default();
                                (
                                    h.key.to_owned(),
                                    String::from_utf8_lossy(value).into_owned(),
                                )
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let record = Record {
                    key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
                    headers,
                    payload: m.payload().unwrap_or_default().to_vec(),
                };
                if tx.send(record).is_err() {
                    return;
                }
            }
        });
        self.readers.lock().expect("readers").push(reader);
        rx
    }

    /// The offset `group` committed for partition 0 of `topic` (`None`: nothing yet).
    fn committed(&self, group: &str, topic: &str) -> Option<i64> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &self.bootstrap)
            .set("group.id", group)
            .create()
            .expect("consumer");
        let mut list = TopicPartitionList::new();
        list.add_partition(topic, 0);
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(5))
            .ok()?;
        match committed.find_partition(topic, 0)?.offset() {
            Offset::Offset(o) => Some(o),
            _ => None,
        }
    }
}

struct Record {
    key: Option<String>,
    headers: Vec<(String, String)>,
    payload: Vec<u8>,
}

impl Record {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.payload))
        })
    }
}

async fn next(rx: &mut UnboundedReceiver<Record>, what: &str) -> Record {
    tokio::time::timeout(WAIT, rx.recv())
        .await
        .unwrap_or_else(|_| panic!("no {what} within {WAIT:?}"))
        .expect("reading")
}

/// The devices' connection: commands from `topic` (qos 1), replies to the `reply-to` header.
fn devices_connection(
    id: &str,
    bootstrap: &str,
    topic: &str,
    acks: Value,
    specific: Value,
) -> Value {
    let mut specific = specific;
    specific["bootstrapServers"] = json!(bootstrap);
    specific["consumerOffsetReset"] = json!("earliest");
    specific["commitInterval"] = json!("50ms");
    json!({
        "id": id, "connectionType": "kafka", "connectionStatus": "open",
        "uri": format!("tcp://{bootstrap}"),
        "specificConfig": specific,
        "sources": [{
            "addresses": [topic], "qos": 1,
            "authorizationContext": [SUBJECT],
            "acknowledgementRequests": {"includes": acks},
            "headerMapping": {"correlation-id": "{{header:correlation-id}}", "reply-to": "{{header:reply-to}}"},
            "replyTarget": {"enabled": true, "address": "{{header:reply-to}}",
                            "headerMapping": {"correlation-id": "{{header:correlation-id}}"},
                            "expectedResponseTypes": ["response", "error", "nack"]}
        }]
    })
}

/// What every test starts with: a cluster, a broker with the Kafka plugin, a thing, and topics
/// for commands (`partitions` of them) and replies.
struct Setup {
    cluster: Cluster,
    b: Broker,
    u: String,
    thing: String,
    commands: String,
    replies: String,
}

impl Setup {
    async fn new(cluster: Cluster, thing: &str, partitions: i32) -> Setup {
        let b = broker_kafka();
        let u = unique();
        let (commands, replies) = (format!("tw-{u}-commands"), format!("tw-{u}-replies"));
        cluster.topic(&commands, partitions).await;
        cluster.topic(&replies, 1).await;
        Setup {
            thing: format!("{thing}-{u}"),
            cluster,
            b,
            u,
            commands,
            replies,
        }
    }

    /// Opens the devices' connection `id` (acks requested: `acks`).
    async fn devices(&self, id: &str, acks: Value, specific: Value) -> RunningConnection {
        let connection =
            devices_connection(id, &self.cluster.bootstrap, &self.commands, acks, specific);
        let running = self.b.open(connection).await;
        self.b.create_thing(&self.thing).await;
        running
    }

    /// Produces a command with `correlation-id` and the replies topic as `reply-to`.
    async fn command(&self, producer: &FutureProducer, correlation: &str, payload: &[u8]) {
        self.cluster
            .send(
                producer,
                &self.commands,
                &[("correlation-id", correlation), ("reply-to", &self.replies)],
                payload,
            )
            .await;
    }
}

/// Replies by correlation-id until there are `count`, the first of each kept.
async fn replies_by_correlation(
    rx: &mut UnboundedReceiver<Record>,
    answered: &mut HashMap<String, Value>,
    count: usize,
) {
    while answered.len() < count {
        let record = next(rx, "a reply").await;
        let correlation = record.header("correlation-id").unwrap_or("").to_owned();
        answered.entry(correlation).or_insert_with(|| record.json());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_to_twin_to_topic_with_twin_persisted_and_a_target_ack() {
    let t = Setup::new(Cluster::any(), "lamp", 3).await;
    let (u, thing, bootstrap) = (&t.u, &t.thing, &t.cluster.bootstrap);
    let events = format!("tw-{u}-events");
    t.cluster.topic(&events, 2).await;
    let events_id = format!("events-{u}");
    let _events =
        t.b.open(json!({
            "id": events_id, "connectionType": "kafka", "connectionStatus": "open",
            "uri": format!("tcp://{bootstrap}"),
            "specificConfig": {"bootstrapServers": bootstrap},
            "targets": [{"address": format!("{events}/{{{{ thing:id }}}}"),
                         "topics": ["_/_/things/twin/events"],
                         "authorizationContext": [SUBJECT],
                         "issuedAcknowledgementLabel": "{{connection:id}}:published"}]
        }))
        .await;
    let devices = t
        .devices(
            &format!("devices-{u}"),
            json!(["twin-persisted", format!("{events_id}:published")]),
            json!({}),
        )
        .await;
    let mut events_in = t.cluster.read(&events);
    let mut replies_in = t.cluster.read(&t.replies);
    let producer = t.cluster.producer();
    let correlation = format!("c-{u}");
    let command = modify(thing, "/attributes/on", json!(true), json!({}));
    t.command(&producer, &correlation, command.as_bytes()).await;

    let modified = loop {
        let record = next(&mut events_in, "an event").await;
        let event = record.json();
        if event["topic"] == format!("{NAMESPACE}/{thing}/things/twin/events/modified") {
            // `topic/key`: the thing's ID is the record key.
            let key = format!("{NAMESPACE}:{thing}");
            assert_eq!(record.key.as_deref(), Some(key.as_str()));
            assert_eq!(
                record.header("ditto-connection-id"),
                Some(events_id.as_str())
            );
            break event;
        }
    };
    assert_eq!(modified["value"], true);
    assert_eq!(modified["revision"], 2);
    let reply = next(&mut replies_in, "a reply").await;
    assert_eq!(reply.header("correlation-id"), Some(correlation.as_str()));
    // Kafka's target acknowledgement: 204, no content (debugEnabled off).
    check_acknowledged(&reply.json(), &events_id, 204);
    assert_eq!(t.b.thing(thing).await["attributes"]["on"], true);
    devices.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn target_acks_carry_the_record_metadata_with_debug_and_fail_with_400_for_good() {
    let t = Setup::new(Cluster::any(), "meter", 1).await;
    let (u, thing, bootstrap) = (&t.u, &t.thing, &t.cluster.bootstrap);
    let events = format!("tw-{u}-events");
    t.cluster.topic(&events, 1).await;
    let events_id = format!("events-{u}");
    let target = |address: String, label: &str| {
        json!({"address": address, "topics": ["_/_/things/twin/events"],
               "authorizationContext": [SUBJECT],
               "issuedAcknowledgementLabel": format!("{{{{connection:id}}}}:{label}")})
    };
    let _events =
        t.b.open(json!({
            "id": events_id, "connectionType": "kafka", "connectionStatus": "open",
            "uri": format!("tcp://{bootstrap}"),
            "specificConfig": {"bootstrapServers": bootstrap, "debugEnabled": true,
                               "publishTimeout": "5s"},
            "targets": [target(events.clone(), "published"),
                        // The topic has one partition: Kafka never takes this record.
                        target(format!("{events}#7"), "lost")]
        }))
        .await;
    let (published, lost) = (
        format!("{events_id}:published"),
        format!("{events_id}:lost"),
    );
    let devices = t
        .devices(
            &format!("devices-{u}"),
            json!(["twin-persisted", published, lost]),
            json!({}),
        )
        .await;
    let mut events_in = t.cluster.read(&events);
    let mut replies_in = t.cluster.read(&t.replies);
    let producer = t.cluster.producer();
    let command = modify(thing, "/attributes/kwh", json!(12.5), json!({}));
    t.command(&producer, &format!("c-{u}"), command.as_bytes())
        .await;

    let event = loop {
        let record = next(&mut events_in, "an event").await;
        if record.json()["path"] == "/attributes/kwh" {
            break record;
        }
    };
    let reply = next(&mut replies_in, "a reply").await.json();
    // One label failed: the aggregate is 424, each acknowledgement keeps its own status.
    assert_eq!(reply["status"], 424, "{reply}");
    assert_eq!(reply["value"]["twin-persisted"]["status"], 201, "{reply}");
    let metadata = &reply["value"][&published];
    assert_eq!(metadata["status"], 200, "{reply}");
    let record = &metadata["payload"];
    assert_eq!(record["topic"], json!(events), "{reply}");
    assert_eq!(record["partition"], 0, "{reply}");
    assert!(record["offset"].as_i64().is_some_and(|o| o >= 0), "{reply}");
    assert!(
        record["timestamp"].as_i64().is_some_and(|t| t > 0),
        "{reply}"
    );
    assert_eq!(record["serializedKeySize"], -1, "no key: {reply}");
    assert_eq!(
        record["serializedValueSize"],
        event.payload.len(),
        "{reply}"
    );
    let failed = &reply["value"][&lost];
    assert_eq!(failed["status"], 400, "{reply}");
    assert_eq!(
        failed["payload"]["error"], "connectivity:message.sending.failed",
        "{reply}"
    );
    devices.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commit_stays_before_a_failed_message_which_is_redelivered_and_applied_once() {
    let t = Setup::new(Cluster::any(), "valve", 1).await;
    let (u, thing, commands) = (&t.u, &t.thing, &t.commands);
    let label = format!("checker-{u}:checked");
    // Fails (does not answer) the first event requesting its label: message 3's.
    let mut checks = acknowledger(
        &t.b.router,
        &format!("checker-{u}"),
        &label,
        Answering::AllButFirst,
    );
    let group = format!("devices-{u}");
    let devices = t
        .devices(&group, json!(["twin-persisted"]), json!({}))
        .await;
    let mut replies_in = t.cluster.read(&t.replies);
    let producer = t.cluster.producer();
    for n in 1..=10 {
        // Only message 3 asks for the checker's acknowledgement, with a 1 s timeout.
        let headers = if n == 3 {
            json!({"requested-acks": ["twin-persisted", label], "timeout": "1s"})
        } else {
            json!({})
        };
        let command = modify(thing, &format!("/attributes/m{n}"), json!(n), headers);
        t.command(&producer, &format!("m{n}"), command.as_bytes())
            .await;
    }
    // Message 3's first answer fails; until it is settled, the commit stays at its offset (2)
    // or before, though the messages after it succeeded.
    let failing = Instant::now();
    let mut answered = HashMap::new();
    let failed = loop {
        let record = next(&mut replies_in, "a reply").await;
        let correlation = record.header("correlation-id").unwrap_or("").to_owned();
        if correlation == "m3" {
            break record.json();
        }
        answered.insert(correlation, record.json());
    };
    assert_eq!(
        failed["status"], 424,
        "the first answer to m3 fails: {failed}"
    );
    assert_eq!(failed["value"][&label]["status"], 408, "{failed}");
    let held = t.cluster.committed(&group, commands);
    assert!(
        held.is_some_and(|o| o <= 2),
        "committed past the failed message: {held:?}"
    );
    // Redelivered: answered again (and the messages after it, replayed, once more).
    answered.remove("m3");
    replies_by_correlation(&mut replies_in, &mut answered, 10).await;
    assert!(failing.elapsed() >= Duration::from_millis(900));
    assert_eq!(answered["m3"]["status"], 200, "{}", answered["m3"]);
    assert_eq!(answered["m3"]["value"][&label]["status"], 200);
    // Applied once each: ten changes after the creation.
    let now = t.b.thing(thing).await;
    assert_eq!(now["_revision"], 11, "{now}");
    for n in 1..=10 {
        assert_eq!(now["attributes"][format!("m{n}")], n, "{now}");
    }
    // Message 3's event went to the checker twice: failed, then acknowledged.
    let first = tokio::time::timeout(WAIT, checks.recv())
        .await
        .expect("first");
    let again = tokio::time::timeout(WAIT, checks.recv())
        .await
        .expect("again");
    assert_eq!(first, again);
    // And the commit moves on past the last message.
    let started = Instant::now();
    while t.cluster.committed(&group, commands) != Some(10) {
        assert!(
            started.elapsed() < WAIT,
            "committed: {:?} (held at {held:?})",
            t.cluster.committed(&group, commands)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    devices.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_failing_and_recovering_mid_stream_loses_nothing() {
    const N: usize = 40;
    let t = Setup::new(Cluster::mock(), "meter", 1).await;
    let mock = t.cluster.mock.as_ref().expect("a mock cluster");
    // Both topics led by broker 1, which fails.
    mock.partition_leader(&t.commands, 0, Some(1))
        .expect("leader");
    mock.partition_leader(&t.replies, 0, Some(1))
        .expect("leader");
    let devices = t
        .devices(
            &format!("devices-{}", t.u),
            json!(["twin-persisted"]),
            json!({}),
        )
        .await;
    let mut replies_in = t.cluster.read(&t.replies);
    let producer = t.cluster.producer();
    let command = |n: usize| modify(&t.thing, &format!("/attributes/m{n}"), json!(n), json!({}));
    for n in 0..N / 2 {
        t.command(&producer, &format!("m{n}"), command(n).as_bytes())
            .await;
    }
    // Part of the first half answered; then the broker fails while the second half is sent.
    let mut answered = HashMap::new();
    replies_by_correlation(&mut replies_in, &mut answered, N / 4).await;
    mock.broker_down(1).expect("broker down");
    let sending = {
        let (producer, commands, replies) =
            (producer.clone(), t.commands.clone(), t.replies.clone());
        let commands_of: Vec<(String, String)> =
            (N / 2..N).map(|n| (format!("m{n}"), command(n))).collect();
        tokio::spawn(async move {
            for (correlation, payload) in commands_of {
                let headers = OwnedHeaders::new()
                    .insert(Header {
                        key: "correlation-id",
                        value: Some(&correlation),
                    })
                    .insert(Header {
                        key: "reply-to",
                        value: Some(&replies),
                    });
                producer
                    .send(
                        FutureRecord::<str, str>::to(&commands)
                            .payload(&payload)
                            .headers(headers),
                        Duration::from_secs(30),
                    )
                    .await
                    .expect("produced");
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(2)).await;
    mock.broker_up(1).expect("broker up");
    sending.await.expect("sent");
    replies_by_correlation(&mut replies_in, &mut answered, N).await;
    for (correlation, reply) in &answered {
        // Each one creates its attribute.
        assert_eq!(reply["status"], 201, "{correlation}: {reply}");
    }
    let now = t.b.thing(&t.thing).await;
    assert_eq!(now["_revision"], 1 + N as u64, "each applied once: {now}");
    for n in 0..N {
        assert_eq!(now["attributes"][format!("m{n}")], n, "{now}");
    }
    devices.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_get_error_responses_and_the_stream_goes_on() {
    let t = Setup::new(Cluster::any(), "sensor", 1).await;
    let devices = t
        .devices(&format!("devices-{}", t.u), json!([]), json!({}))
        .await;
    let mut replies_in = t.cluster.read(&t.replies);
    let producer = t.cluster.producer();
    for (correlation, payload) in malformed_then_good(&t.thing) {
        t.command(&producer, correlation, &payload).await;
    }
    let mut answers = HashMap::new();
    replies_by_correlation(&mut replies_in, &mut answers, 4).await;
    check_malformed_answers(&t.b, &t.thing, &answers).await;
    devices.close().await;
}

/// The lag of partition 0 of `topic` in the connection's metrics.
fn lag(metrics: &Value, topic: &str) -> Option<f64> {
    metrics["adapterMetrics"]["kafka_consumer_lag"]
        .as_array()?
        .iter()
        .find(|g| g["labels"]["topic"] == topic && g["labels"]["partition"] == "0")?["value"]
        .as_f64()
}

/// Waits until the connection reports a lag of `want` for partition 0 of `topic`.
async fn wait_for_lag(devices: &RunningConnection, topic: &str, want: f64) {
    let started = Instant::now();
    loop {
        let json = devices.metrics.json(&devices.id);
        if lag(&json, topic) == Some(want) {
            return;
        }
        assert!(
            started.elapsed() < WAIT,
            "lag never {want}: {}",
            json["adapterMetrics"]
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_lag_is_reported_and_closing_drains_and_commits() {
    let t = Setup::new(Cluster::any(), "gauge", 1).await;
    let (u, thing, commands) = (&t.u, &t.thing, &t.commands);
    let label = format!("checker-{u}:checked");
    let (release, released) = tokio::sync::watch::channel(false);
    let _checks = acknowledger(
        &t.b.router,
        &format!("checker-{u}"),
        &label,
        Answering::WhenReleased(released),
    );
    let group = format!("devices-{u}");
    let devices = t
        .devices(
            &group,
            json!(["twin-persisted"]),
            json!({"statisticsInterval": "200ms", "drainTimeout": "10s"}),
        )
        .await;
    let producer = t.cluster.producer();
    // One settled message: the committed offset is known, the lag 0.
    let command = modify(thing, "/attributes/m0", json!(0), json!({}));
    t.command(&producer, "m0", command.as_bytes()).await;
    wait_for_lag(&devices, commands, 0.0).await;
    // Five held by the checker: five behind.
    for n in 1..=5 {
        let acks = json!({"requested-acks": ["twin-persisted", label]});
        let command = modify(thing, &format!("/attributes/m{n}"), json!(n), acks);
        t.command(&producer, &format!("m{n}"), command.as_bytes())
            .await;
    }
    wait_for_lag(&devices, commands, 5.0).await;
    // Closing waits for them (released meanwhile), then commits past them.
    let closing = tokio::spawn(devices.close());
    tokio::time::sleep(Duration::from_millis(300)).await;
    release.send_replace(true);
    closing.await.expect("closed");
    assert_eq!(t.cluster.committed(&group, commands), Some(6));
    assert_eq!(t.b.thing(thing).await["_revision"], 7);
}
