//! The supervisor with a connection directory edited while it runs: connections are added,
//! replaced when their file changes and closed when it goes, one at a time, the others
//! untouched; a file that no longer validates keeps the running version; a connection whose
//! adapter cannot be created is retried with backoff until it can; the connection API's JSON
//! never shows a password.

use serde_json::Value;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use twinwire_core::connections::model::Connection;
use twinwire_core::connections::runtime::AdapterFactory;
use twinwire_core::connections::supervisor::{Backoff, Supervisor};
use twinwire_core::journal::{Journal, JournalConfig, RedbStore};
use twinwire_core::routing::Router;
use twinwire_core::things::EngineConfig;
use twinwire_plugin::{
    async_trait, Adapter, ConnectionStatus, Host, HostSink, Message, Receipt, SendError,
};

#[derive(Default)]
struct Log {
    created: HashMap<String, u32>,
    closed: HashMap<String, u32>,
    hosts: HashMap<String, Host>,
}

struct Quiet {
    id: String,
    log: Arc<Mutex<Log>>,
}

#[async_trait]
impl Adapter for Quiet {
    async fn send(&self, _: Message) -> Result<Receipt, SendError> {
        Ok(Receipt::default())
    }

    async fn close(&self) {
        *self
            .log
            .lock()
            .unwrap()
            .closed
            .entry(self.id.clone())
            .or_default() += 1;
    }
}

/// Creates adapters; fails the first `specificConfig.failTimes` attempts of a connection.
fn factory(log: Arc<Mutex<Log>>) -> AdapterFactory {
    let attempts: Arc<Mutex<HashMap<String, u32>>> = Arc::default();
    Arc::new(move |connection: Connection, sink: Arc<dyn HostSink>| {
        let log = Arc::clone(&log);
        let attempts = Arc::clone(&attempts);
        Box::pin(async move {
            let fail_times: u32 = connection
                .specific_config
                .get("failTimes")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            let attempt = {
                let mut attempts = attempts.lock().unwrap();
                let n = attempts.entry(connection.id.clone()).or_default();
                *n += 1;
                *n
            };
            if attempt <= fail_times {
                return Err(format!("broker unreachable (attempt {attempt})"));
            }
            let host = Host::new(sink);
            {
                let mut log = log.lock().unwrap();
                *log.created.entry(connection.id.clone()).or_default() += 1;
                log.hosts.insert(connection.id.clone(), host.clone());
            }
            host.status(ConnectionStatus::Connected, "ready");
            Ok(Arc::new(Quiet {
                id: connection.id,
                log,
            }) as Arc<dyn Adapter>)
        })
    })
}

fn router(dir: &Path) -> Router {
    let store = RedbStore::open(dir).expect("store");
    let journal = Journal::start(Arc::new(store), JournalConfig::default()).expect("journal");
    Router::start(
        journal,
        EngineConfig {
            shards: 1,
            ..EngineConfig::default()
        },
    )
}

fn file(id: &str, extra: &str) -> String {
    format!(
        "id: {id}\nconnectionType: amqp-091\nconnectionStatus: open\nuri: amqp://user:s3cret@127.0.0.1:5672\n{extra}\
         sources:\n  - addresses: [q-{id}]\n    authorizationContext: [integration:{id}]\n"
    )
}

async fn status(s: &Supervisor, id: &str) -> String {
    s.status_json(id)
        .await
        .map(|v| v["liveStatus"].as_str().unwrap_or("").to_owned())
        .unwrap_or_default()
}

async fn until_open(s: &Supervisor, id: &str) {
    for _ in 0..100 {
        if status(s, id).await == "open" {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{id} never opened: {:?}", s.status_json(id).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_follow_their_files_one_at_a_time() {
    let data = tempfile::tempdir().expect("temp dir");
    let dir = tempfile::tempdir().expect("temp dir");
    let log: Arc<Mutex<Log>> = Arc::default();
    let s = Supervisor::new(
        router(data.path()),
        factory(Arc::clone(&log)),
        Backoff::default(),
    );
    std::fs::write(dir.path().join("a.yaml"), file("a", "")).unwrap();
    s.reload(dir.path()).await;
    until_open(&s, "a").await;
    // Added.
    std::fs::write(dir.path().join("b.yaml"), file("b", "")).unwrap();
    s.reload(dir.path()).await;
    until_open(&s, "b").await;
    assert_eq!(s.ids().await, ["a", "b"]);
    // Changed: b is replaced, a is left alone.
    std::fs::write(dir.path().join("b.yaml"), file("b", "tags: [changed]\n")).unwrap();
    s.reload(dir.path()).await;
    until_open(&s, "b").await;
    {
        let log = log.lock().unwrap();
        assert_eq!((log.created["a"], log.created["b"]), (1, 2));
        assert_eq!(log.closed.get("b"), Some(&1));
        assert_eq!(log.closed.get("a"), None);
    }
    // Broken: the running version stays.
    std::fs::write(
        dir.path().join("a.yaml"),
        "id: a\nconnectionType: amqp-091\nconnectionStatus: open\nuri: amqp://nowhere\n",
    )
    .unwrap();
    s.reload(dir.path()).await;
    assert_eq!(status(&s, "a").await, "open");
    assert_eq!(log.lock().unwrap().created["a"], 1);
    // Removed: closed.
    std::fs::remove_file(dir.path().join("b.yaml")).unwrap();
    s.reload(dir.path()).await;
    assert_eq!(s.ids().await, ["a"]);
    assert_eq!(log.lock().unwrap().closed.get("b"), Some(&2));
    // The API's JSON hides the password.
    let json: Value = s.connection_json("a").await.expect("a");
    assert_eq!(json["uri"], "amqp://user:***@127.0.0.1:5672");
    assert!(!json.to_string().contains("s3cret"));
    s.close_all().await;
    assert_eq!(log.lock().unwrap().closed.get("a"), Some(&1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_cannot_open_is_retried_with_backoff() {
    let data = tempfile::tempdir().expect("temp dir");
    let log: Arc<Mutex<Log>> = Arc::default();
    let backoff = Backoff {
        initial: Duration::from_millis(50),
        max: Duration::from_millis(200),
    };
    let s = Supervisor::new(router(data.path()), factory(Arc::clone(&log)), backoff);
    let spec: Connection = yaml_serde_from(&file("flaky", "specificConfig:\n  failTimes: 3\n"));
    s.apply(spec).await;
    tokio::time::sleep(Duration::from_millis(60)).await;
    assert_eq!(status(&s, "flaky").await, "failed");
    until_open(&s, "flaky").await;
    let logs = s.logs_json("flaky").await.expect("logs");
    let failures = logs["connectionLogs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["level"] == "failure")
        .count();
    assert_eq!(failures, 3, "{logs}");
    assert_eq!(
        s.status_json("flaky").await.unwrap()["recoveryStatus"],
        "succeeded"
    );
    s.close_all().await;
}

fn yaml_serde_from(text: &str) -> Connection {
    let env = |_: &str| None;
    let loaded = twinwire_core::connections::load_file(Path::new("inline.yaml"), text, &env);
    loaded.connection.expect("parses")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_that_fails_for_good_is_created_again() {
    let data = tempfile::tempdir().expect("temp dir");
    let log: Arc<Mutex<Log>> = Arc::default();
    let backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(100),
    };
    let s = Supervisor::new(router(data.path()), factory(Arc::clone(&log)), backoff);
    s.apply(yaml_serde_from(&file("fragile", ""))).await;
    until_open(&s, "fragile").await;
    let host = log.lock().unwrap().hosts["fragile"].clone();
    host.status(
        ConnectionStatus::Failed,
        "the broker closed the channel for good",
    );
    for _ in 0..100 {
        if log.lock().unwrap().created["fragile"] == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log.lock().unwrap().created["fragile"], 2, "created again");
    assert_eq!(
        log.lock().unwrap().closed.get("fragile"),
        Some(&1),
        "the failed one closed"
    );
    until_open(&s, "fragile").await;
    let logs = s.logs_json("fragile").await.unwrap();
    assert!(
        logs.to_string()
            .contains("the broker closed the channel for good"),
        "{logs}"
    );
    s.close_all().await;
}
