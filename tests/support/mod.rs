//! What the adapter tests share: a broker (router, engine, journal in a temp directory) with
//! an adapter plugin built by cargo and loaded from a plugin directory as `twinwire run` loads
//! it, things to work on, and a subscriber that acknowledges as a test wants.

#![allow(dead_code, unreachable_pub)] // a module of each test file, which uses its own part

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
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

pub const WAIT: Duration = Duration::from_secs(20);
pub const NAMESPACE: &str = "org.eclipse.ditto";
pub const SUBJECT: &str = "integration:devices";

/// The plugin directory of `package`: the adapter built once per process and copied in.
fn plugin_dir(package: &str) -> PathBuf {
    static DIRS: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let mut dirs = DIRS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    dirs.entry(package.to_owned())
        .or_insert_with(|| {
            let base = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("{package}-plugin"));
            let file = twinwire_tests::build_plugin(package, &base.join("target"));
            let dir = base.join(format!("plugins-{}", std::process::id()));
            std::fs::create_dir_all(&dir).expect("plugin dir");
            let name = file.file_name().expect("a file name");
            std::fs::copy(&file, dir.join(name)).expect("copy the plugin");
            dir
        })
        .clone()
}

pub struct Broker {
    pub router: Router,
    pub factory: AdapterFactory,
    _dir: tempfile::TempDir,
}

/// A broker whose connections use the adapter plugin of `package`, serving `types`.
pub fn broker(package: &str, types: &[&str]) -> Broker {
    let plugins = Plugins::load_dir(&plugin_dir(package));
    assert_eq!(plugins.types(), types);
    assert_eq!(plugins.settles(types[0]), Some(true));
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

pub fn unique() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

pub fn auth(subject: &str) -> AuthContext {
    AuthContext::new([subject]).expect("subject")
}

impl Broker {
    /// Opens a connection and waits until its adapter is connected.
    pub async fn open(&self, connection: Value) -> RunningConnection {
        let connection: Connection = serde_json::from_value(connection).expect("connection");
        let running = RunningConnection::open(connection, self.router.clone(), &self.factory)
            .await
            .expect("open the connection");
        wait_connected(&running).await;
        running
    }

    /// Creates `thing` with a policy letting the devices read and write it.
    pub async fn create_thing(&self, thing: &str) {
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
    pub async fn thing(&self, thing: &str) -> Value {
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

pub async fn wait_connected(running: &RunningConnection) {
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

/// A Ditto modify command for `thing` as JSON text.
pub fn modify(thing: &str, path: &str, value: Value, headers: Value) -> String {
    json!({
        "topic": format!("{NAMESPACE}/{thing}/things/twin/commands/modify"),
        "headers": headers, "path": path, "value": value
    })
    .to_string()
}

/// How a test acknowledger answers the events that request its label.
pub enum Answering {
    /// Not the first (it "crashes" before acknowledging), every later one.
    AllButFirst,
    /// Each once this says `true`.
    WhenReleased(tokio::sync::watch::Receiver<bool>),
    /// Each after this long (a slow consumer).
    After(Duration),
}

/// A connection-like subscriber `id` of twin events that declares `label` and acknowledges the
/// events requesting it as `answering` says. Reports the revision of each such event.
pub fn acknowledger(
    router: &Router,
    id: &str,
    label: &str,
    answering: Answering,
) -> mpsc::UnboundedReceiver<u64> {
    router
        .acks()
        .declared()
        .declare_connection(id, &[label])
        .expect("declared");
    let (sender, mut events) = mpsc::channel(1024);
    let sub = Subscription::new(
        SubscriberId::new(id, "acks"),
        auth(SUBJECT),
        Kind::TwinEvents,
    );
    router
        .subscribe(sub, Some(AckIssuer::Connection(id.to_owned())), sender)
        .expect("subscribed");
    let (seen_tx, seen) = mpsc::unbounded_channel();
    let router = router.clone();
    let (id, label) = (id.to_owned(), label.to_owned());
    tokio::spawn(async move {
        let mut first = true;
        while let Some(event) = events.recv().await {
            let requested = event
                .headers
                .requested_acks()
                .ok()
                .flatten()
                .unwrap_or_default();
            if !requested.iter().any(|l| l.as_str() == label) {
                continue;
            }
            let _ = seen_tx.send(event.revision.unwrap_or(0));
            let (released, delay) = match &answering {
                Answering::AllButFirst if std::mem::take(&mut first) => continue,
                Answering::AllButFirst => (None, Duration::ZERO),
                Answering::WhenReleased(released) => (Some(released.clone()), Duration::ZERO),
                Answering::After(delay) => (None, *delay),
            };
            let ack = Envelope::from_json(json!({
                "topic": format!("{}/{}/things/twin/acks/{label}", event.topic.namespace, event.topic.name),
                "headers": {"correlation-id": event.headers.correlation_id().expect("correlation-id")},
                "path": "/", "status": 200
            }))
            .expect("ack");
            let from = Requester::connection(id.clone(), auth(SUBJECT));
            let router = router.clone();
            tokio::spawn(async move {
                if let Some(mut released) = released {
                    let _ = released.wait_for(|r| *r).await;
                }
                tokio::time::sleep(delay).await;
                router.handle(ack, &from).await;
            });
        }
    });
    seen
}

/// The malformed payloads every adapter test sends, by correlation-id, and a good modify last.
pub fn malformed_then_good(thing: &str) -> Vec<(&'static str, Vec<u8>)> {
    vec![
        ("bad-json", b"{ not json".to_vec()),
        ("binary", vec![0xff, 0xfe, 0x00]),
        (
            "unknown-command",
            br#"{"topic":"org.eclipse.ditto/x/things/twin/commands/fly","path":"/"}"#.to_vec(),
        ),
        (
            "good",
            modify(thing, "/attributes/on", json!(true), json!({})).into_bytes(),
        ),
    ]
}

/// The answers to [`malformed_then_good`], by correlation-id: errors for the malformed ones, the
/// good one applied.
pub async fn check_malformed_answers(b: &Broker, thing: &str, answers: &HashMap<String, Value>) {
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
    assert_eq!(b.thing(thing).await["attributes"]["on"], true);
}

/// A reply aggregating `twin-persisted` (a new attribute: 204 for a change) and the events
/// connection's `<events>:published` acknowledgement.
pub fn check_acknowledged(reply: &Value, events_connection: &str, published_status: u16) {
    assert_eq!(reply["status"], 200, "{reply}");
    assert_eq!(reply["value"]["twin-persisted"]["status"], 204, "{reply}");
    assert_eq!(
        reply["value"][format!("{events_connection}:published")]["status"],
        published_status,
        "{reply}"
    );
}
