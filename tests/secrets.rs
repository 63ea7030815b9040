//! Secrets stay out of the logs: connections of every adapter whose URI or credentials carry a
//! password are opened against closed ports, so that they fail and log why, with every log line
//! (all levels) captured; no password appears in a line or in a connection's status, and the
//! lines about these connections are there (the check is not vacuous). The connections API
//! redacts the same secrets (broker/server/tests/gateway.rs).

mod support;

use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;
use twinwire_core::connections::model::Connection;
use twinwire_core::connections::runtime::RunningConnection;

/// Every log line written, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(
            &self
                .0
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
        .into_owned()
    }
}

const SECRETS: [&str; 5] = [
    "mqtt-uri-secret",
    "amqp-uri-secret",
    "kafka-uri-secret",
    "kafka-credentials-secret",
    "mqtt-credentials-secret",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_password_reaches_a_log_line_or_a_status() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("trace"))
        .with_writer(move || writer.clone())
        .init();
    let u = unique();
    let connections = [
        (
            "twinwire-adapter-mqtt",
            &["mqtt", "mqtt-5"][..],
            json!({"id": format!("mqtt-{u}"), "connectionType": "mqtt", "connectionStatus": "open",
                   "uri": "tcp://user:mqtt-uri-secret@127.0.0.1:1",
                   "sources": [{"addresses": ["a/#"], "qos": 1, "authorizationContext": [SUBJECT]}]}),
        ),
        (
            "twinwire-adapter-mqtt",
            &["mqtt", "mqtt-5"][..],
            json!({"id": format!("mqtt5-{u}"), "connectionType": "mqtt-5", "connectionStatus": "open",
                   "uri": "tcp://127.0.0.1:1",
                   "credentials": {"type": "plain", "username": "u", "password": "mqtt-credentials-secret"},
                   "sources": [{"addresses": ["a/#"], "qos": 1, "authorizationContext": [SUBJECT]}]}),
        ),
        (
            "twinwire-adapter-amqp",
            &["amqp-091"][..],
            json!({"id": format!("amqp-{u}"), "connectionType": "amqp-091", "connectionStatus": "open",
                   "uri": "amqp://user:amqp-uri-secret@127.0.0.1:1/%2f",
                   "sources": [{"addresses": ["q"], "authorizationContext": [SUBJECT]}]}),
        ),
        (
            "twinwire-adapter-kafka",
            &["kafka"][..],
            json!({"id": format!("kafka-{u}"), "connectionType": "kafka", "connectionStatus": "open",
                   "uri": "tcp://user:kafka-uri-secret@127.0.0.1:1",
                   "specificConfig": {"bootstrapServers": "127.0.0.1:1"},
                   "sources": [{"addresses": ["t"], "qos": 1, "authorizationContext": [SUBJECT]}]}),
        ),
        (
            "twinwire-adapter-kafka",
            &["kafka"][..],
            json!({"id": format!("kafka2-{u}"), "connectionType": "kafka", "connectionStatus": "open",
                   "uri": "tcp://127.0.0.1:1",
                   "credentials": {"type": "plain", "username": "u", "password": "kafka-credentials-secret"},
                   "specificConfig": {"bootstrapServers": "127.0.0.1:1", "saslMechanism": "scram-sha-256"},
                   "targets": [{"address": "t", "topics": ["_/_/things/twin/events"], "authorizationContext": [SUBJECT]}]}),
        ),
    ];
    let mut running = Vec::new();
    let mut ids = Vec::new();
    for (package, types, connection) in connections {
        let b = broker(package, types);
        ids.push(connection["id"].as_str().unwrap_or("").to_owned());
        let connection: Connection = serde_json::from_value(connection).expect("connection");
        let opened = RunningConnection::open(connection, b.router.clone(), &b.factory)
            .await
            .expect("opened");
        running.push((b, opened));
    }
    // Long enough for each adapter to fail to connect and say why.
    tokio::time::sleep(Duration::from_secs(3)).await;
    for (_, connection) in &running {
        let status = connection.status();
        for secret in SECRETS {
            assert!(!status.detail.contains(secret), "{status:?}");
        }
    }
    for (b, connection) in running {
        connection.close().await;
        drop(b);
    }
    let logs = captured.text();
    for secret in SECRETS {
        assert!(!logs.contains(secret), "{secret} was logged");
    }
    for id in &ids {
        assert!(logs.contains(id.as_str()), "nothing logged about {id}");
    }
}
