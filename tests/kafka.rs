//! The Kafka adapter (adapters/kafka), built and loaded as the broker loads plugins, against
//! librdkafka's mock cluster (the Kafka wire protocol on loopback ports of this process): the
//! router with the real engine and journal; devices and consumers played by rdkafka clients.
//!
//! `TWINWIRE_KAFKA_BOOTSTRAP=host:port` points the tests that need no broker failures at a real
//! Kafka-compatible cluster instead (e.g. tansu on 127.0.0.1:9092); the others always use the
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn topic_to_twin_to_topic_with_twin_persisted_and_a_target_ack() {
    let cluster = Cluster::any();
    let b = broker_kafka();
    let u = unique();
    let thing = format!("lamp-{u}");
    let (commands, replies, events) = (
        format!("tw-{u}-commands"),
        format!("tw-{u}-replies"),
        format!("tw-{u}-events"),
    );
    cluster.topic(&commands, 3).await;
    cluster.topic(&replies, 1).await;
    cluster.topic(&events, 2).await;
    let events_id = format!("events-{u}");
    let _events = b
        .open(json!({
            "id": events_id, "connectionType": "kafka", "connectionStatus": "open",
            "uri": format!("tcp://{}", cluster.bootstrap),
            "specificConfig": {"bootstrapServers": cluster.bootstrap},
            "targets": [{"address": format!("{events}/{{{{ thing:id }}}}"),
                         "topics": ["_/_/things/twin/events"],
                         "authorizationContext": [SUBJECT],
                         "issuedAcknowledgementLabel": "{{connection:id}}:published"}]
        }))
        .await;
    let devices = b
        .open(devices_connection(
            &format!("devices-{u}"),
            &cluster.bootstrap,
            &commands,
            json!(["twin-persisted", format!("events-{u}:published")]),
            json!({}),
        ))
        .await;
    b.create_thing(&thing).await;
    let mut events_in = cluster.read(&events);
    let mut replies_in = cluster.read(&replies);
    let producer = cluster.producer();
    let correlation = format!("c-{u}");
    cluster
        .send(
            &producer,
            &commands,
            &[("correlation-id", &correlation), ("reply-to", &replies)],
            modify(&thing, "/attributes/on", json!(true), json!({})).as_bytes(),
        )
        .await;

    let modified = loop {
        let record = next(&mut events_in, "an event").await;
        let event = record.json();
        if event["topic"] == format!("{NAMESPACE}/{thing}/things/twin/events/modified") {
            assert_eq!(
                record.key.as_deref(),
                Some(format!("{NAMESPACE}:{thing}").as_str())
            );
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
    let reply = reply.json();
    assert_eq!(reply["status"], 200, "{reply}");
    assert_eq!(reply["value"]["twin-persisted"]["status"], 204, "{reply}");
    assert_eq!(
        reply["value"][format!("events-{u}:published")]["status"],
        200,
        "{reply}"
    );
    assert_eq!(b.thing(&thing).await["attributes"]["on"], true);
    devices.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_commit_stays_before_a_failed_message_which_is_redelivered_and_applied_once() {
    let cluster = Cluster::mock();
    let b = broker_kafka();
    let u = unique();
    let thing = format!("valve-{u}");
    let (commands, replies) = (format!("tw-{u}-commands"), format!("tw-{u}-replies"));
    cluster.topic(&commands, 1).await;
    cluster.topic(&replies, 1).await;
    let label = format!("checker-{u}:checked");
    // Fails (does not answer) the first event requesting its label: message 3's.
    let mut checks = acknowledger(
        &b.router,
        &format!("checker-{u}"),
        &label,
        Answering::AllButFirst,
    );
    let group = format!("devices-{u}");
    let devices = b
        .open(devices_connection(
            &group,
            &cluster.bootstrap,
            &commands,
            json!(["twin-persisted"]),
            json!({}),
        ))
        .await;
    b.create_thing(&thing).await;
    let mut replies_in = cluster.read(&replies);
    let producer = cluster.producer();
    for n in 1..=10 {
        // Only message 3 asks for the checker's acknowledgement, with a 1 s timeout.
        let headers = if n == 3 {
            json!({"requested-acks": ["twin-persisted", label], "timeout": "1s"})
        } else {
            json!({})
        };
        let correlation = format!("m{n}");
        cluster
            .send(
                &producer,
                &commands,
                &[("correlation-id", &correlation), ("reply-to", &replies)],
                modify(&thing, &format!("/attributes/m{n}"), json!(n), headers).as_bytes(),
            )
            .await;
    }
    // Until message 3 is settled, the commit never passes its offset (2).
    let failing = Instant::now();
    let mut highest = None;
    let mut replies = HashMap::new();
    while replies.len() < 11 {
        let record = next(&mut replies_in, "a reply").await;
        let correlation = record.header("correlation-id").unwrap_or("").to_owned();
        let reply = record.json();
        if correlation == "m3" && !replies.contains_key("m3-failed") {
            assert_eq!(
                reply["status"], 424,
                "the first answer to m3 fails: {reply}"
            );
            assert_eq!(reply["value"][&label]["status"], 408, "{reply}");
            highest = cluster.committed(&group, &commands);
            assert!(
                highest.is_some_and(|o| o <= 2),
                "committed past the failed message: {highest:?}"
            );
            replies.insert("m3-failed".to_owned(), reply);
            continue;
        }
        replies.entry(correlation).or_insert(reply);
    }
    assert!(failing.elapsed() >= Duration::from_millis(900));
    assert_eq!(replies["m3"]["status"], 200, "{}", replies["m3"]);
    assert_eq!(replies["m3"]["value"][&label]["status"], 200);
    // Applied once each: ten changes after the creation.
    let now = b.thing(&thing).await;
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
    while cluster.committed(&group, &commands) != Some(10) {
        assert!(
            started.elapsed() < WAIT,
            "committed: {:?} (was {highest:?})",
            cluster.committed(&group, &commands)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    devices.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_failing_and_recovering_mid_stream_loses_nothing() {
    let cluster = Cluster::mock();
    let b = broker_kafka();
    let u = unique();
    let thing = format!("meter-{u}");
    let (commands, replies) = (format!("tw-{u}-commands"), format!("tw-{u}-replies"));
    cluster.topic(&commands, 1).await;
    cluster.topic(&replies, 1).await;
    let mock = cluster.mock.as_ref().expect("mock");
    // Both partitions on broker 1, which fails.
    mock.partition_leader(&commands, 0, Some(1))
        .expect("leader");
    mock.partition_leader(&replies, 0, Some(1)).expect("leader");
    let devices = b
        .open(devices_connection(
            &format!("devices-{u}"),
            &cluster.bootstrap,
            &commands,
            json!(["twin-persisted"]),
            json!({}),
        ))
        .await;
    b.create_thing(&thing).await;
    let mut replies_in = cluster.read(&replies);
    let producer = cluster.producer();
    const N: usize = 40;
    let send = |n: usize| {
        let (producer, commands, replies, thing) = (
            producer.clone(),
            commands.clone(),
            replies.clone(),
            thing.clone(),
        );
        async move {
            let mut headers = OwnedHeaders::new();
            let correlation = format!("m{n}");
            headers = headers
                .insert(Header {
                    key: "correlation-id",
                    value: Some(&correlation),
                })
                .insert(Header {
                    key: "reply-to",
                    value: Some(&replies),
                });
            let payload = modify(&thing, &format!("/attributes/m{n}"), json!(n), json!({}));
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
    };
    for n in 0..N / 2 {
        send(n).await;
    }
    // The first half answered, then the broker fails while the second half is sent.
    let mut answered = HashMap::new();
    while answered.len() < N / 4 {
        let record = next(&mut replies_in, "a reply").await;
        answered.insert(
            record.header("correlation-id").unwrap_or("").to_owned(),
            record.json(),
        );
    }
    mock.broker_down(1).expect("broker down");
    let sending = tokio::spawn({
        let sends: Vec<_> = (N / 2..N).map(send).collect();
        async move {
            for s in sends {
                s.await;
            }
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    mock.broker_up(1).expect("broker up");
    sending.await.expect("sent");
    while answered.len() < N {
        let record = next(&mut replies_in, "a reply").await;
        answered.insert(
            record.header("correlation-id").unwrap_or("").to_owned(),
            record.json(),
        );
    }
    for (correlation, reply) in &answered {
        assert!(
            reply["status"] == 201 || reply["status"] == 204,
            "{correlation}: {reply}"
        );
    }
    let now = b.thing(&thing).await;
    assert_eq!(now["_revision"], 1 + N as u64, "each applied once: {now}");
    for n in 0..N {
        assert_eq!(now["attributes"][format!("m{n}")], n, "{now}");
    }
    devices.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_payloads_get_error_responses_and_the_stream_goes_on() {
    let cluster = Cluster::any();
    let b = broker_kafka();
    let u = unique();
    let thing = format!("sensor-{u}");
    let (commands, replies) = (format!("tw-{u}-commands"), format!("tw-{u}-replies"));
    cluster.topic(&commands, 1).await;
    cluster.topic(&replies, 1).await;
    let devices = b
        .open(devices_connection(
            &format!("devices-{u}"),
            &cluster.bootstrap,
            &commands,
            json!([]),
            json!({}),
        ))
        .await;
    b.create_thing(&thing).await;
    let mut replies_in = cluster.read(&replies);
    let producer = cluster.producer();
    let unknown = br#"{"topic":"org.eclipse.ditto/x/things/twin/commands/fly","path":"/"}"#;
    let good = modify(&thing, "/attributes/on", json!(true), json!({}));
    for (correlation, payload) in [
        ("bad-json", &b"{ not json"[..]),
        ("binary", &[0xff, 0xfe, 0x00][..]),
        ("unknown-command", &unknown[..]),
        ("good", good.as_bytes()),
    ] {
        cluster
            .send(
                &producer,
                &commands,
                &[("correlation-id", correlation), ("reply-to", &replies)],
                payload,
            )
            .await;
    }
    let mut answers = HashMap::new();
    for _ in 0..4 {
        let record = next(&mut replies_in, "an answer").await;
        answers.insert(
            record.header("correlation-id").unwrap_or("").to_owned(),
            record.json(),
        );
    }
    for expected in ["bad-json", "binary", "unknown-command"] {
        let error = &answers[expected];
        assert_eq!(error["status"], 400, "{expected}: {error}");
        assert!(
            error["topic"]
                .as_str()
                .is_some_and(|t| t.ends_with("/errors")),
            "{error}"
        );
    }
    assert_eq!(answers["good"]["status"], 204, "{}", answers["good"]);
    assert_eq!(b.thing(&thing).await["attributes"]["on"], true);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consumer_lag_is_reported_and_closing_drains_and_commits() {
    let cluster = Cluster::mock();
    let b = broker_kafka();
    let u = unique();
    let thing = format!("gauge-{u}");
    let (commands, replies) = (format!("tw-{u}-commands"), format!("tw-{u}-replies"));
    cluster.topic(&commands, 1).await;
    cluster.topic(&replies, 1).await;
    let label = format!("checker-{u}:checked");
    let (release, released) = tokio::sync::watch::channel(false);
    let _checks = acknowledger(
        &b.router,
        &format!("checker-{u}"),
        &label,
        Answering::WhenReleased(released),
    );
    let group = format!("devices-{u}");
    let devices = b
        .open(devices_connection(
            &group,
            &cluster.bootstrap,
            &commands,
            json!(["twin-persisted"]),
            json!({"statisticsInterval": "200ms", "drainTimeout": "10s"}),
        ))
        .await;
    b.create_thing(&thing).await;
    let producer = cluster.producer();
    let send = |n: usize, acks: Value| {
        let correlation = format!("m{n}");
        let payload = modify(&thing, &format!("/attributes/m{n}"), json!(n), acks);
        let (producer, commands, replies) = (&producer, &commands, &replies);
        let cluster = &cluster;
        async move {
            cluster
                .send(
                    producer,
                    commands,
                    &[("correlation-id", &correlation), ("reply-to", replies)],
                    payload.as_bytes(),
                )
                .await;
        }
    };
    // One settled message: the committed offset is known, the lag 0.
    send(0, json!({})).await;
    let until = |want: f64| {
        let metrics = &devices.metrics;
        let commands = commands.clone();
        let group = group.clone();
        async move {
            let started = Instant::now();
            loop {
                let json = metrics.json(&group);
                if lag(&json, &commands) == Some(want) {
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
    };
    until(0.0).await;
    // Five held by the checker: five behind.
    for n in 1..=5 {
        send(n, json!({"requested-acks": ["twin-persisted", label]})).await;
    }
    until(5.0).await;
    // Closing waits for them (released meanwhile), then commits past them.
    let closing = tokio::spawn(devices.close());
    tokio::time::sleep(Duration::from_millis(300)).await;
    release.send_replace(true);
    closing.await.expect("closed");
    assert_eq!(cluster.committed(&group, &commands), Some(6));
    assert_eq!(b.thing(&thing).await["_revision"], 7);
}
