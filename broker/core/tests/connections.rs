//! A connection end to end through the router, the real engine and journal, with a loopback
//! adapter behind the adapter API (the same API a loaded plugin is driven through): a consumed
//! command modifies a twin and is settled as delivered once its requested acks are in, including
//! the acknowledgement a target issues once the adapter confirmed publishing the event;
//! malformed payloads and enforcement failures get errors on the reply target and are settled as
//! permanent; a missing acknowledgement hands the message back for redelivery.

use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use twinwire_core::auth::AuthContext;
use twinwire_core::connections::model::Connection;
use twinwire_core::connections::runtime::{AdapterFactory, RunningConnection};
use twinwire_core::journal::{Journal, JournalConfig, RedbStore};
use twinwire_core::routing::{Requester, Router};
use twinwire_core::things::EngineConfig;
use twinwire_plugin::{
    async_trait, Adapter, ConnectionStatus, Host, HostSink, Message, Outcome, Receipt, SendError,
};
use twinwire_protocol::Envelope;

/// Publishes into a channel the test reads, records settlements.
struct Loopback {
    host: Host,
    published: mpsc::UnboundedSender<Message>,
    settled: Arc<Mutex<Vec<(u64, Outcome)>>>,
}

#[async_trait]
impl Adapter for Loopback {
    async fn send(&self, message: Message) -> Result<Receipt, SendError> {
        let _ = self.published.send(message);
        Ok(Receipt::default())
    }

    async fn settle(&self, token: u64, outcome: Outcome) {
        self.settled.lock().unwrap().push((token, outcome));
    }
}

struct Harness {
    published_tx: mpsc::UnboundedSender<Message>,
    router: Router,
    host: Host,
    published: mpsc::UnboundedReceiver<Message>,
    settled: Arc<Mutex<Vec<(u64, Outcome)>>>,
    _connections: (RunningConnection, RunningConnection),
    _dir: tempfile::TempDir,
}

async fn harness(connection: Value) -> Harness {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path()).expect("store");
    let journal = Journal::start(Arc::new(store), JournalConfig::default()).expect("journal");
    let router = Router::start(
        journal,
        EngineConfig {
            shards: 2,
            ..EngineConfig::default()
        },
    );
    let (published_tx, published) = mpsc::unbounded_channel();
    let loopback_tx = published_tx.clone();
    let settled = Arc::new(Mutex::new(Vec::new()));
    let host_slot: Arc<Mutex<Option<Host>>> = Arc::default();
    let factory: AdapterFactory = {
        let settled = Arc::clone(&settled);
        let host_slot = Arc::clone(&host_slot);
        Arc::new(move |_: Connection, sink: Arc<dyn HostSink>| {
            let host = Host::new(sink);
            *host_slot.lock().unwrap() = Some(host.clone());
            let adapter = Loopback {
                host,
                published: published_tx.clone(),
                settled: Arc::clone(&settled),
            };
            Box::pin(async move {
                adapter.host.status(ConnectionStatus::Connected, "loopback");
                Ok(Arc::new(adapter) as Arc<dyn Adapter>)
            })
        })
    };
    // A second connection whose target publishes the events: a connection never receives
    // what it caused itself (Ditto's origin rule), so the source's own targets would not.
    let consumers: Connection = serde_json::from_value(json!({
        "id": "consumers", "connectionType": "amqp-091", "connectionStatus": "open", "uri": "amqp://h:5672",
        "targets": [{"address": "events/{{ thing:id }}", "topics": ["_/_/things/twin/events"],
                     "authorizationContext": ["integration:devices"],
                     "issuedAcknowledgementLabel": "{{connection:id}}:published"}]
    }))
    .expect("connection");
    let consumers = RunningConnection::open(consumers, router.clone(), &factory)
        .await
        .expect("open");
    let connection: Connection = serde_json::from_value(connection).expect("connection");
    let running = RunningConnection::open(connection, router.clone(), &factory)
        .await
        .expect("open");
    let host = host_slot.lock().unwrap().clone().expect("host");
    // The thing the device owns: integration:devices may write it.
    let create = Envelope::from_json(json!({
        "topic": "org.eclipse.ditto/lamp/things/twin/commands/create", "path": "/",
        "value": {"attributes": {"on": false}, "_policy": {"entries": {"devices": {
            "subjects": {"integration:devices": {"type": "t"}},
            "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                          "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}}}
    }))
    .unwrap();
    let created = router
        .handle(
            create,
            &Requester::http(AuthContext::new(["integration:devices"]).unwrap()),
        )
        .await;
    assert_eq!(created.reply.unwrap().status, Some(201));
    Harness {
        published_tx: loopback_tx,
        router,
        host,
        published,
        settled,
        _connections: (running, consumers),
        _dir: dir,
    }
}

fn connection(extra_source: Value) -> Value {
    let mut source = json!({"addresses": ["commands"], "authorizationContext": ["integration:devices"],
                            "headerMapping": {"reply-to": "{{ header:reply-to }}"},
                            "replyTarget": {"address": "{{ header:reply-to }}", "expectedResponseTypes": ["response", "error", "nack"]}});
    for (k, v) in extra_source.as_object().unwrap() {
        source[k] = v.clone();
    }
    json!({
        "id": "devices", "connectionType": "amqp-091", "connectionStatus": "open", "uri": "amqp://h:5672",
        "sources": [source]
    })
}

fn command(thing: &str, value: Value, headers: Value) -> Message {
    let payload = json!({"topic": format!("org.eclipse.ditto/{thing}/things/twin/commands/modify"),
                         "headers": headers, "path": "/attributes/on", "value": value});
    Message::new(
        "commands",
        &[
            ("reply-to", "replies"),
            ("content-type", "application/vnd.eclipse.ditto+json"),
        ],
        payload.to_string(),
    )
}

impl Harness {
    fn loopback_sender(&self) -> mpsc::UnboundedSender<Message> {
        self.published_tx.clone()
    }
}

async fn settled(h: &Harness, token: u64) -> Outcome {
    for _ in 0..200 {
        if let Some((_, outcome)) = h.settled.lock().unwrap().iter().find(|(t, _)| *t == token) {
            return *outcome;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("message {token} was never settled");
}

async fn next_published(h: &mut Harness, address_prefix: &str) -> Message {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(5), h.published.recv())
            .await
            .expect("a publish within 5 s")
            .expect("open");
        let created = serde_json::from_slice::<Value>(message.payload())
            .is_ok_and(|v| v["topic"].as_str().is_some_and(|t| t.ends_with("/created")));
        if message.address_lossy().starts_with(address_prefix) && !created {
            return message;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumed_command_settles_after_persistence_and_the_targets_ack() {
    let mut h = harness(connection(
        json!({"acknowledgementRequests": {"includes": ["consumers:published"]}}),
    ))
    .await;
    h.host.deliver(
        command("lamp", json!(true), json!({"correlation-id": "c-1"})),
        1,
    );
    // The event goes out on the target, resolved address; the target acks it once sent.
    let event = next_published(&mut h, "events/").await;
    assert_eq!(event.address_lossy(), "events/org.eclipse.ditto:lamp");
    let body: Value = serde_json::from_slice(event.payload()).unwrap();
    assert_eq!(
        body["topic"],
        "org.eclipse.ditto/lamp/things/twin/events/modified"
    );
    assert_eq!(settled(&h, 1).await, Outcome::Delivered);
    // The aggregated answer went to the reply target.
    let reply = next_published(&mut h, "replies").await;
    let reply: Value = serde_json::from_slice(reply.payload()).unwrap();
    assert_eq!(reply["status"], 200, "{reply}");
    assert_eq!(reply["value"]["consumers:published"]["status"], 200);
    assert_eq!(reply["value"]["twin-persisted"]["status"], 204);
    // The twin changed.
    let retrieve = Envelope::from_json(json!({"topic": "org.eclipse.ditto/lamp/things/twin/commands/retrieve", "path": "/attributes/on"})).unwrap();
    let answer = h
        .router
        .handle(
            retrieve,
            &Requester::http(AuthContext::new(["integration:devices"]).unwrap()),
        )
        .await;
    assert_eq!(answer.reply.unwrap().value, Some(json!(true)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_get_errors_on_the_reply_target_and_are_not_redelivered() {
    let mut h = harness(connection(
        json!({"enforcement": {"input": "{{ header:device }}", "filters": ["{{ thing:name }}"]}}),
    ))
    .await;
    // Malformed payload.
    h.host.deliver(
        Message::new(
            "commands",
            &[("reply-to", "replies"), ("device", "lamp")],
            "{not json",
        ),
        10,
    );
    assert_eq!(settled(&h, 10).await, Outcome::Permanent);
    let error: Value =
        serde_json::from_slice(next_published(&mut h, "replies").await.payload()).unwrap();
    assert_eq!(
        error["value"]["error"],
        "connectivity:message.mapping.failed"
    );
    // Another device's thing: enforcement refuses it.
    let mut impostor = command("lamp", json!(true), json!({}));
    impostor = Message::new(
        "commands",
        &[("reply-to", "replies"), ("device", "other")],
        impostor.payload(),
    );
    h.host.deliver(impostor, 11);
    assert_eq!(settled(&h, 11).await, Outcome::Permanent);
    let error: Value =
        serde_json::from_slice(next_published(&mut h, "replies").await.payload()).unwrap();
    assert_eq!(
        error["value"]["error"],
        "connectivity:connection.id.enforcement.failed"
    );
    // An unknown thing: the error response, settled as permanent (404).
    let unknown = Message::new(
        "commands",
        &[("reply-to", "replies"), ("device", "ghost")],
        command("ghost", json!(1), json!({})).payload(),
    );
    h.host.deliver(unknown, 12);
    assert_eq!(settled(&h, 12).await, Outcome::Permanent);
    let error: Value =
        serde_json::from_slice(next_published(&mut h, "replies").await.payload()).unwrap();
    assert_eq!(error["status"], 404, "{error}");
    // The stream goes on.
    let good = Message::new(
        "commands",
        &[("reply-to", "replies"), ("device", "lamp")],
        command("lamp", json!(true), json!({})).payload(),
    );
    h.host.deliver(good, 13);
    assert_eq!(settled(&h, 13).await, Outcome::Delivered);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledgement_that_never_comes_hands_the_message_back() {
    // A label nobody declares: nobody issues it (a declarer that does not receive the signal
    // would issue a weak ack instead).
    let mut spec = connection(json!({"acknowledgementRequests": {"includes": ["nobody:never"]}}));
    spec["sources"][0]["replyTarget"]["expectedResponseTypes"] = json!(["nack"]);
    let mut h = harness(spec).await;
    h.host
        .deliver(command("lamp", json!(true), json!({"timeout": "1s"})), 20);
    assert_eq!(settled(&h, 20).await, Outcome::Retryable);
    let nack: Value =
        serde_json::from_slice(next_published(&mut h, "replies").await.payload()).unwrap();
    assert_eq!(nack["status"], 424, "{nack}");
    assert_eq!(nack["value"]["nobody:never"]["status"], 408);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_redelivered_too_often_goes_to_the_dead_letter_target() {
    let mut spec = connection(
        json!({"acknowledgementRequests": {"includes": ["nobody:never"]},
                                     "maxRedeliveries": 2, "deadLetterTarget": "dead-letters"}),
    );
    spec["sources"][0]["replyTarget"]["expectedResponseTypes"] = json!(["error"]);
    let mut h = harness(spec).await;
    // The broker redelivers the same message each time it is handed back.
    for (token, expected) in [
        (30, Outcome::Retryable),
        (31, Outcome::Retryable),
        (32, Outcome::Permanent),
    ] {
        h.host.deliver(
            command(
                "lamp",
                json!(true),
                json!({"timeout": "200ms", "correlation-id": "same"}),
            ),
            token,
        );
        assert_eq!(settled(&h, token).await, expected, "delivery {token}");
    }
    let dead = next_published(&mut h, "dead-letters").await;
    assert!(dead.header("twinwire-dead-letter-reason").is_some());
    let body: Value = serde_json::from_slice(dead.payload()).unwrap();
    assert_eq!(body["headers"]["correlation-id"], "same");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_per_source_and_target_in_dittos_shape() {
    let mut h = harness(connection(json!({}))).await;
    h.host.deliver(command("lamp", json!(true), json!({})), 40);
    assert_eq!(settled(&h, 40).await, Outcome::Delivered);
    h.host.deliver(
        Message::new("commands", &[("reply-to", "replies")], "{broken"),
        41,
    );
    assert_eq!(settled(&h, 41).await, Outcome::Permanent);
    let _ = next_published(&mut h, "replies").await;
    let metrics = h._connections.0.metrics.json("devices");
    let inbound = &metrics["connectionMetrics"]["inbound"];
    assert_eq!(inbound["consumed"]["success"]["PT1M"], 2, "{metrics}");
    assert_eq!(inbound["mapped"]["success"]["PT1H"], 1);
    assert_eq!(inbound["mapped"]["failure"]["PT24H"], 1);
    assert_eq!(metrics["containsFailures"], true);
    assert_eq!(
        metrics["sourceMetrics"]["addressMetrics"]["commands"]["consumed"]["success"]["PT1M"],
        2
    );
    // The other connection's target published the event.
    let consumers = h._connections.1.metrics.json("consumers");
    let published = &consumers["targetMetrics"]["addressMetrics"]["events/{{ thing:id }}"]
        ["published"]["success"]["PT1M"];
    assert!(published.as_u64().unwrap_or(0) >= 1, "{consumers}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_announces_being_opened_and_closed_to_its_own_targets() {
    let mut h = harness(connection(json!({}))).await;
    let announcing: Connection = serde_json::from_value(json!({
        "id": "announcer", "connectionType": "amqp-091", "connectionStatus": "open", "uri": "amqp://h:5672",
        "targets": [{"address": "announcements", "topics": ["_/_/connections/announcements"],
                     "authorizationContext": ["integration:devices"]}]
    }))
    .unwrap();
    let factory: AdapterFactory = {
        let published = h.loopback_sender();
        Arc::new(move |_: Connection, sink: Arc<dyn HostSink>| {
            let host = Host::new(sink);
            let adapter = Loopback {
                host,
                published: published.clone(),
                settled: Arc::default(),
            };
            Box::pin(async move {
                adapter.host.status(ConnectionStatus::Connected, "loopback");
                Ok(Arc::new(adapter) as Arc<dyn Adapter>)
            })
        })
    };
    let running = RunningConnection::open(announcing, h.router.clone(), &factory)
        .await
        .expect("open");
    let opened: Value =
        serde_json::from_slice(next_published(&mut h, "announcements").await.payload()).unwrap();
    assert_eq!(
        opened["topic"],
        "_/announcer/connections/announcements/opened"
    );
    assert!(opened["value"]["openedAt"].is_string());
    running.close().await;
    let closed: Value =
        serde_json::from_slice(next_published(&mut h, "announcements").await.payload()).unwrap();
    assert_eq!(
        closed["topic"],
        "_/announcer/connections/announcements/closed"
    );
}
