//! The MQTT adapter (adapters/mqtt), built and loaded as the broker loads plugins, against the
//! real Mosquitto on 127.0.0.1:1883 (and, for the restart test, a Mosquitto of the test's own on
//! a free port): the router with the real engine and journal, devices played by rumqttc clients.
//!
//! Every test works under a topic prefix and client IDs of its own, so the tests can share the
//! server and run at the same time.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use twinwire_core::auth::AuthContext;
use twinwire_core::connections::model::Connection;
use twinwire_core::connections::plugins::Plugins;
use twinwire_core::connections::runtime::{AdapterFactory, RunningConnection};
use twinwire_core::journal::{Journal, JournalConfig, RedbStore};
use twinwire_core::routing::acks::AckIssuer;
use twinwire_core::routing::pubsub::{Kind, SubscriberId, Subscription};
use twinwire_core::routing::{Requester, Router};
use twinwire_core::things::EngineConfig;
use twinwire_plugin::ConnectionStatus;
use twinwire_protocol::Envelope;

const WAIT: Duration = Duration::from_secs(20);
const NAMESPACE: &str = "org.eclipse.ditto";
const SUBJECT: &str = "integration:devices";

/// The plugin directory: the MQTT adapter built once per process and copied in.
fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join("twinwire-mqtt-plugin");
        let file = twinwire_tests::build_plugin("twinwire-adapter-mqtt", &base.join("target"));
        let dir = base.join(format!("plugins-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("plugin dir");
        let name = file.file_name().expect("a file name");
        std::fs::copy(&file, dir.join(name)).expect("copy the plugin");
        dir
    })
}

struct Broker {
    router: Router,
    factory: AdapterFactory,
    _dir: tempfile::TempDir,
}

fn broker() -> Broker {
    let plugins = Plugins::load_dir(plugin_dir());
    assert_eq!(plugins.types(), ["mqtt", "mqtt-5"]);
    assert_eq!(plugins.settles("mqtt"), Some(true));
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
    Broker {
        router,
        factory: plugins.factory(),
        _dir: dir,
    }
}

fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

fn auth(subject: &str) -> AuthContext {
    AuthContext::new([subject]).expect("subject")
}

impl Broker {
    /// Opens a connection and waits until its adapter is connected.
    async fn open(&self, connection: Value) -> RunningConnection {
        let connection: Connection = serde_json::from_value(connection).expect("connection");
        let running = RunningConnection::open(connection, self.router.clone(), &self.factory)
            .await
            .expect("open the connection");
        wait_connected(&running).await;
        running
    }

    /// Creates `thing` with a policy letting the devices read and write it.
    async fn create_thing(&self, thing: &str) {
        let create = Envelope::from_json(json!({
            "topic": format!("{NAMESPACE}/{thing}/things/twin/commands/create"), "path": "/",
            "value": {"attributes": {"on": false}, "_policy": {"entries": {"devices": {
                "subjects": {SUBJECT: {"type": "t"}},
                "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                              "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}}}
        }))
        .expect("create");
        let created = self
            .router
            .handle(create, &Requester::http(auth(SUBJECT)))
            .await;
        assert_eq!(created.reply.expect("a reply").status, Some(201));
    }

    /// The thing as stored.
    async fn thing(&self, thing: &str) -> Value {
        let retrieve = Envelope::from_json(json!({
            "topic": format!("{NAMESPACE}/{thing}/things/twin/commands/retrieve"), "path": "/",
            "fields": "attributes,_revision"
        }))
        .expect("retrieve");
        let answer = self
            .router
            .handle(retrieve, &Requester::http(auth(SUBJECT)))
            .await;
        let reply = answer.reply.expect("a reply");
        assert_eq!(reply.status, Some(200), "{:?}", reply.to_json());
        reply.value.expect("the thing")
    }
}

async fn wait_connected(running: &RunningConnection) {
    let started = Instant::now();
    while running.status().status != ConnectionStatus::Connected {
        assert!(
            started.elapsed() < WAIT,
            "not connected: {:?}",
            running.status()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A device: an MQTT 3.1.1 client subscribed to some topics, its messages in a queue.
struct Device {
    client: rumqttc::AsyncClient,
    messages: mpsc::UnboundedReceiver<rumqttc::Publish>,
    task: tokio::task::JoinHandle<()>,
}

impl Device {
    /// Connects to `port` with a persistent session (`clean`: false), subscribes `topics` at qos
    /// 1, and keeps polling (reconnecting) until dropped.
    async fn connect(port: u16, id: &str, topics: &[String]) -> Device {
        let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", port);
        options
            .set_keep_alive(Duration::from_secs(5))
            .set_clean_session(false);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 1_000);
        let (tx, messages) = mpsc::unbounded_channel();
        let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
        let mut subscribed_tx = Some(subscribed_tx);
        for topic in topics {
            client
                .subscribe(topic, rumqttc::QoS::AtLeastOnce)
                .await
                .expect("subscribe");
        }
        let expected = topics.len();
        let task = tokio::spawn(async move {
            let mut acks = 0;
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let _ = tx.send(p);
                    }
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        acks += 1;
                        if acks >= expected {
                            if let Some(done) = subscribed_tx.take() {
                                let _ = done.send(());
                            }
                        }
                    }
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        if expected > 0 {
            tokio::time::timeout(WAIT, subscribed)
                .await
                .expect("subscribed in time")
                .expect("subscribed");
        }
        Device {
            client,
            messages,
            task,
        }
    }

    async fn publish(&self, topic: &str, payload: impl Into<Vec<u8>>) {
        self.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, payload.into())
            .await
            .expect("publish");
    }

    /// The next message on `topic` whose JSON payload `wanted` accepts.
    async fn next(
        &mut self,
        topic: &str,
        wanted: impl Fn(&Value) -> bool,
    ) -> (rumqttc::Publish, Value) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let p = tokio::time::timeout_at(deadline, self.messages.recv())
                .await
                .unwrap_or_else(|_| panic!("nothing wanted on {topic} within {WAIT:?}"))
                .expect("device running");
            if p.topic != topic {
                continue;
            }
            let value: Value = serde_json::from_slice(&p.payload).expect("a JSON payload");
            if wanted(&value) {
                return (p, value);
            }
        }
    }

    /// Nothing on `topic` for `quiet`.
    async fn nothing(&mut self, topic: &str, quiet: Duration) {
        let deadline = tokio::time::Instant::now() + quiet;
        while let Ok(Some(p)) = tokio::time::timeout_at(deadline, self.messages.recv()).await {
            assert_ne!(
                p.topic,
                topic,
                "unexpected: {}",
                String::from_utf8_lossy(&p.payload)
            );
        }
    }
}

impl Drop for Device {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn modify(thing: &str, path: &str, value: Value, headers: Value) -> String {
    json!({
        "topic": format!("{NAMESPACE}/{thing}/things/twin/commands/modify"),
        "headers": headers, "path": path, "value": value
    })
    .to_string()
}

/// The devices' connection: commands from `tw/<u>/commands/#`, replies to the reply-to header.
fn devices_connection(u: &str, port: u16, acks: Value, specific: Value) -> Value {
    let mut specific = specific;
    specific["clientId"] = json!(format!("tw-devices-{u}"));
    specific["reconnectMinDelay"] = json!("100ms");
    specific["reconnectMaxDelay"] = json!("1s");
    json!({
        "id": format!("devices-{u}"), "connectionType": "mqtt", "connectionStatus": "open",
        "uri": format!("tcp://127.0.0.1:{port}"),
        "specificConfig": specific,
        "sources": [{
            "addresses": [format!("tw/{u}/commands/#")], "qos": 1,
            "authorizationContext": [SUBJECT],
            "acknowledgementRequests": {"includes": acks},
            "replyTarget": {"enabled": true, "address": "{{header:reply-to}}",
                            "expectedResponseTypes": ["response", "error", "nack"]}
        }]
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn device_to_twin_to_target_with_twin_persisted_and_a_target_ack() {
    let b = broker();
    let u = unique();
    let thing = format!("lamp-{u}");
    // The target is another connection's: a connection never gets the events it caused.
    let _events = b
        .open(json!({
            "id": format!("events-{u}"), "connectionType": "mqtt", "connectionStatus": "open",
            "uri": "tcp://127.0.0.1:1883",
            "specificConfig": {"clientId": format!("tw-events-{u}")},
            "targets": [{"address": format!("tw/{u}/events/{{{{ thing:id }}}}"),
                         "topics": ["_/_/things/twin/events"], "qos": 1,
                         "authorizationContext": [SUBJECT],
                         "issuedAcknowledgementLabel": "{{connection:id}}:published"}]
        }))
        .await;
    let devices = b
        .open(devices_connection(
            &u,
            1883,
            json!(["twin-persisted", format!("events-{u}:published")]),
            json!({}),
        ))
        .await;
    b.create_thing(&thing).await;
    let events_topic = format!("tw/{u}/events/{NAMESPACE}:{thing}");
    let replies = format!("tw/{u}/replies/{thing}");
    let mut device = Device::connect(
        1883,
        &format!("tw-device-{u}"),
        &[format!("tw/{u}/events/#"), replies.clone()],
    )
    .await;

    device
        .publish(
            &format!("tw/{u}/commands/{thing}"),
            modify(
                &thing,
                "/attributes/on",
                json!(true),
                json!({"correlation-id": format!("c-{u}"), "reply-to": replies}),
            ),
        )
        .await;

    let (published, event) = device
        .next(&events_topic, |e| {
            e["topic"] == format!("{NAMESPACE}/{thing}/things/twin/events/modified")
        })
        .await;
    assert_eq!(published.qos, rumqttc::QoS::AtLeastOnce, "the target's qos");
    assert_eq!(event["path"], "/attributes/on");
    assert_eq!(event["value"], true);
    assert_eq!(event["revision"], 2);

    let (_, reply) = device.next(&replies, |_| true).await;
    assert_eq!(reply["status"], 200, "{reply}");
    assert_eq!(
        reply["topic"],
        format!("{NAMESPACE}/{thing}/things/twin/acks")
    );
    assert_eq!(reply["headers"]["correlation-id"], format!("c-{u}"));
    assert_eq!(reply["value"]["twin-persisted"]["status"], 204, "{reply}");
    assert_eq!(
        reply["value"][format!("events-{u}:published")]["status"],
        200,
        "{reply}"
    );
    assert_eq!(b.thing(&thing).await["attributes"]["on"], true);

    // The command was acknowledged to the server: the same session, opened again, gets nothing.
    devices.close().await;
    let devices = b
        .open(devices_connection(
            &u,
            1883,
            json!(["twin-persisted", format!("events-{u}:published")]),
            json!({}),
        ))
        .await;
    device.nothing(&replies, Duration::from_millis(1_500)).await;
    assert_eq!(b.thing(&thing).await["_revision"], 2);
    devices.close().await;
}
