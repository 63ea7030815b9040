//! The example adapter plugin (examples/tcp-adapter, connection type `tcp-lines`), built by cargo
//! and loaded through the plugin ABI as the broker loads plugins, driving connections end to end:
//! the router with the real engine and journal, and TCP listeners in the test playing the device
//! gateways the plugin connects to.
//!
//! The connection of the devices is examples/connections/tcp-lines.yaml itself (its port comes in
//! as `TCP_LINES_PORT`). It requests the acknowledgement `mqtt-devices:published`, which that
//! example's MQTT connection issues; here a second tcp-lines connection with the ID `mqtt-devices`
//! stands in for it, with a target that publishes the events to a second listener. It must be
//! another connection: a connection never receives the events its own commands caused.

use serde_json::{json, Value};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpListener;
use twinwire_core::auth::AuthContext;
use twinwire_core::connections::model::Connection;
use twinwire_core::connections::runtime::{AdapterFactory, RunningConnection};
use twinwire_core::journal::{Journal, JournalConfig, RedbStore};
use twinwire_core::routing::{Requester, Router};
use twinwire_core::things::EngineConfig;
use twinwire_plugin::host::PluginLibrary;
use twinwire_plugin::{Adapter, ConnectionStatus, HostSink};
use twinwire_protocol::Envelope;

const PACKAGE: &str = "twinwire-example-tcp-adapter";
const WAIT: Duration = Duration::from_secs(10);
const THING: &str = "org.eclipse.ditto:lamp";

/// Builds the example plugin (once per process) and returns its library file.
fn plugin_file() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        twinwire_tests::build_plugin(
            PACKAGE,
            &Path::new(env!("CARGO_TARGET_TMPDIR")).join("twinwire-example-plugin"),
        )
    })
}

/// Makes each connection's adapter as the broker does for a plugin: the connection, as JSON, is
/// the plugin's configuration.
fn plugin_factory(library: PluginLibrary) -> AdapterFactory {
    Arc::new(move |connection: Connection, sink: Arc<dyn HostSink>| {
        let library = library.clone();
        Box::pin(async move {
            let kind = connection.connection_type.as_str();
            if !library.connection_types().iter().any(|t| t == kind) {
                return Err(format!("plugin {} does not serve {kind}", library.name()));
            }
            let config = serde_json::to_vec(&connection).map_err(|e| e.to_string())?;
            let adapter = library.create(&config, sink).await?;
            Ok(Arc::new(adapter) as Arc<dyn Adapter>)
        })
    })
}

/// The device gateway's end of a connection: reads the plugin's lines, writes its own.
struct Peer {
    lines: Lines<BufReader<OwnedReadHalf>>,
    write: OwnedWriteHalf,
    /// Lines read but not asked for yet.
    backlog: VecDeque<Value>,
}

impl Peer {
    async fn send(&mut self, line: &Value) {
        let mut text = line.to_string();
        text.push('\n');
        self.write.write_all(text.as_bytes()).await.expect("write");
    }

    async fn send_raw(&mut self, text: &str) {
        self.write.write_all(text.as_bytes()).await.expect("write");
    }

    /// The first line (in order of arrival) that `wanted` accepts.
    async fn next(&mut self, what: &str, wanted: impl Fn(&Value) -> bool) -> Value {
        if let Some(at) = self.backlog.iter().position(&wanted) {
            return self.backlog.remove(at).expect("present");
        }
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.next_line())
                .await
                .unwrap_or_else(|_| {
                    panic!("no {what} within {WAIT:?}; other lines: {:?}", self.backlog)
                })
                .expect("read")
                .unwrap_or_else(|| panic!("the plugin closed the connection; waiting for {what}"));
            let line: Value = serde_json::from_str(&line).expect("a JSON line");
            if wanted(&line) {
                return line;
            }
            self.backlog.push_back(line);
        }
    }

    async fn settled(&mut self, token: u64) -> String {
        let line = self
            .next(&format!("settlement of {token}"), |l| l["settled"] == token)
            .await;
        line["outcome"].as_str().expect("an outcome").to_owned()
    }

    /// The next message line to `address`, its payload parsed.
    async fn message_to(&mut self, address: &str) -> (Value, Value) {
        let line = self
            .next(&format!("a message to {address}"), |l| {
                l["address"] == address
            })
            .await;
        let payload = serde_json::from_str(line["payload"].as_str().expect("a text payload"))
            .expect("a JSON payload");
        (line["headers"].clone(), payload)
    }

    /// The next event of `criterion` (`modified`, `created`...) on `events/<THING>`.
    async fn event(&mut self, criterion: &str) -> Value {
        let topic = format!("org.eclipse.ditto/lamp/things/twin/events/{criterion}");
        let line = self
            .next(&format!("a {criterion} event"), |l| {
                l["address"] == format!("events/{THING}")
                    && l["payload"].as_str().is_some_and(|p| {
                        serde_json::from_str::<Value>(p).is_ok_and(|p| p["topic"] == topic)
                    })
            })
            .await;
        serde_json::from_str(line["payload"].as_str().expect("payload")).expect("JSON")
    }

    /// Waits for the plugin to close the socket; lines still coming are kept.
    async fn closed(&mut self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            match tokio::time::timeout_at(deadline, self.lines.next_line()).await {
                Err(_) => panic!("the plugin did not close the connection within {WAIT:?}"),
                Ok(Ok(None) | Err(_)) => return,
                Ok(Ok(Some(line))) => self
                    .backlog
                    .push_back(serde_json::from_str(&line).expect("JSON")),
            }
        }
    }
}

/// Opens `connection` (its `uri` pointing at `listener`) and accepts the plugin's connection.
async fn open(
    connection: Connection,
    listener: &TcpListener,
    router: &Router,
    factory: &AdapterFactory,
) -> (RunningConnection, Peer) {
    let running = RunningConnection::open(connection, router.clone(), factory)
        .await
        .expect("open the connection");
    let peer = accept(listener, &running).await;
    (running, peer)
}

/// Accepts the plugin's connection and waits until it reports it connected.
async fn accept(listener: &TcpListener, running: &RunningConnection) -> Peer {
    let (stream, _) = tokio::time::timeout(WAIT, listener.accept())
        .await
        .expect("the plugin connects")
        .expect("accept");
    wait_for_status(running, ConnectionStatus::Connected).await;
    let (read, write) = stream.into_split();
    Peer {
        lines: BufReader::new(read).lines(),
        write,
        backlog: VecDeque::new(),
    }
}

async fn wait_for_status(running: &RunningConnection, status: ConnectionStatus) {
    let started = Instant::now();
    while running.status().status != status {
        assert!(
            started.elapsed() < WAIT,
            "not {status:?}: {:?}",
            running.status()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

struct Harness {
    router: Router,
    /// The gateway of examples/connections/tcp-lines.yaml.
    devices: Peer,
    devices_connection: RunningConnection,
    /// The gateway of the `mqtt-devices` stand-in, which publishes the events.
    consumers: Peer,
    consumers_connection: RunningConnection,
    /// Where the stand-in's gateway listens.
    consumers_port: u16,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let library = PluginLibrary::load(plugin_file()).expect("load the example plugin");
    assert_eq!(library.name(), "tcp-lines");
    assert_eq!(library.connection_types(), ["tcp-lines"]);
    let factory = plugin_factory(library);

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

    // The stand-in for the MQTT example connection: issues mqtt-devices:published once it wrote
    // an event to its gateway. Opened first: its label is declared before anyone requests it.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let consumers_port = listener.local_addr().expect("address").port();
    let consumers: Connection = serde_json::from_value(json!({
        "id": "mqtt-devices", "connectionType": "tcp-lines", "connectionStatus": "open",
        "uri": format!("tcp://127.0.0.1:{consumers_port}"),
        "specificConfig": {"reconnectDelayMs": 50},
        "targets": [{"address": "events/{{ thing:id }}", "topics": ["_/_/things/twin/events"],
                     "authorizationContext": ["integration:devices"],
                     "issuedAcknowledgementLabel": "{{connection:id}}:published"}]
    }))
    .expect("connection");
    let (consumers_connection, consumers) = open(consumers, &listener, &router, &factory).await;

    // The example connection file, as `twinwire check` and the broker read it.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("address").port().to_string();
    let file =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/connections/tcp-lines.yaml");
    let text = std::fs::read_to_string(&file).expect("read the example connection");
    let env = |name: &str| (name == "TCP_LINES_PORT").then(|| port.clone());
    let loaded = twinwire_core::connections::load_file(&file, &text, &env);
    assert!(loaded.is_usable(), "{:?}", loaded.problems);
    let devices = loaded.connection.expect("a connection");
    assert_eq!(devices.uri, format!("tcp://127.0.0.1:{port}"));
    let (devices_connection, devices) = open(devices, &listener, &router, &factory).await;

    // The thing the devices own: integration:devices may write it.
    let create = Envelope::from_json(json!({
        "topic": "org.eclipse.ditto/lamp/things/twin/commands/create", "path": "/",
        "value": {"attributes": {"on": false}, "_policy": {"entries": {"devices": {
            "subjects": {"integration:devices": {"type": "t"}},
            "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                          "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}}}
    }))
    .expect("create");
    let created = router.handle(create, &http()).await;
    assert_eq!(created.reply.expect("a reply").status, Some(201));
    let mut h = Harness {
        router,
        devices,
        devices_connection,
        consumers,
        consumers_connection,
        consumers_port,
        _dir: dir,
    };
    // Not caused by either connection: both gateways get it.
    h.devices.event("created").await;
    h.consumers.event("created").await;
    h
}

fn http() -> Requester {
    Requester::http(AuthContext::new(["integration:devices"]).expect("subjects"))
}

/// A command line of the gateway: Ditto Protocol in the payload, to the source's address.
fn command(thing: &str, value: Value, correlation_id: &str) -> Value {
    let payload = json!({"topic": format!("org.eclipse.ditto/{thing}/things/twin/commands/modify"),
                         "headers": {"correlation-id": correlation_id},
                         "path": "/attributes/on", "value": value});
    json!({"address": "commands",
           "headers": {"content-type": "application/vnd.eclipse.ditto+json",
                       "correlation-id": correlation_id},
           "payload": payload.to_string()})
}

async fn attribute_on(router: &Router) -> Option<Value> {
    let retrieve = Envelope::from_json(json!({
        "topic": "org.eclipse.ditto/lamp/things/twin/commands/retrieve", "path": "/attributes/on"
    }))
    .expect("retrieve");
    router.handle(retrieve, &http()).await.reply?.value
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_over_the_plugin_is_settled_once_persisted_and_published() {
    let mut h = harness().await;
    h.devices.send(&command("lamp", json!(true), "c-1")).await;

    // The other connection published the event to its gateway (that is its acknowledgement).
    let event = h.consumers.event("modified").await;
    assert_eq!(event["value"], true, "{event}");
    // Settled over the wire: the first message line is token 1.
    assert_eq!(h.devices.settled(1).await, "delivered");
    // The aggregated answer on the reply target, with the correlation ID as a header.
    let (headers, reply) = h.devices.message_to("replies").await;
    assert_eq!(headers["correlation-id"], "c-1", "{headers}");
    assert_eq!(reply["status"], 200, "{reply}");
    assert_eq!(reply["headers"]["correlation-id"], "c-1", "{reply}");
    assert_eq!(reply["value"]["twin-persisted"]["status"], 204, "{reply}");
    assert_eq!(
        reply["value"]["mqtt-devices:published"]["status"], 200,
        "{reply}"
    );
    assert_eq!(attribute_on(&h.router).await, Some(json!(true)));

    // The devices' own target publishes changes it did not cause: the first modified event its
    // gateway gets is this one, not its own command's.
    let modify = Envelope::from_json(json!({
        "topic": "org.eclipse.ditto/lamp/things/twin/commands/modify", "path": "/attributes/on",
        "value": "from-http"
    }))
    .expect("modify");
    let modified = h.router.handle(modify, &http()).await;
    assert_eq!(modified.reply.expect("a reply").status, Some(204));
    let event = h.devices.event("modified").await;
    assert_eq!(event["value"], "from-http", "{event}");
    assert_eq!(h.consumers.event("modified").await["value"], "from-http");

    // Closing a connection closes the plugin's socket and joins its task.
    h.devices_connection.close().await;
    h.devices.closed().await;
    assert!(
        h.devices.backlog.iter().all(|l| l.get("settled").is_none()),
        "nothing more to settle: {:?}",
        h.devices.backlog
    );
    h.consumers_connection.close().await;
    h.consumers.closed().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_messages_are_settled_as_permanent_with_errors_on_the_reply_target() {
    let mut h = harness().await;

    // Not a message at all: the plugin refuses the line itself; no token is used up.
    h.devices.send_raw("this is not JSON\n").await;
    let refused = h
        .devices
        .next("a refusal", |l| l.get("refused").is_some())
        .await;
    assert!(
        refused["refused"].as_str().unwrap().contains("not JSON"),
        "{refused}"
    );

    // A message whose payload is not Ditto Protocol: the broker's mapping fails.
    h.devices
        .send(
            &json!({"address": "commands", "headers": {"correlation-id": "bad-1"},
                      "payload": "{not json"}),
        )
        .await;
    assert_eq!(h.devices.settled(1).await, "permanent");
    let (headers, error) = h.devices.message_to("replies").await;
    assert_eq!(headers["correlation-id"], "bad-1", "{headers}");
    assert_eq!(
        error["value"]["error"], "connectivity:message.mapping.failed",
        "{error}"
    );

    // A thing that does not exist: the 404, settled as permanent (resending will not help).
    h.devices.send(&command("ghost", json!(1), "ghost-1")).await;
    assert_eq!(h.devices.settled(2).await, "permanent");
    let (_, error) = h.devices.message_to("replies").await;
    assert_eq!(error["status"], 404, "{error}");
    assert_eq!(error["headers"]["correlation-id"], "ghost-1", "{error}");

    // The stream goes on.
    h.devices
        .send(&command("lamp", json!(true), "good-1"))
        .await;
    assert_eq!(h.devices.settled(3).await, "delivered");
    let (_, reply) = h.devices.message_to("replies").await;
    assert_eq!(reply["status"], 200, "{reply}");
    assert_eq!(attribute_on(&h.router).await, Some(json!(true)));
    h.devices_connection.close().await;
    h.consumers_connection.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_gateway_fails_publishing_until_the_plugin_reconnects() {
    let Harness {
        router,
        mut devices,
        devices_connection,
        consumers,
        consumers_connection,
        consumers_port,
        _dir,
    } = harness().await;
    // The stand-in's gateway goes away, and nothing listens on its port any more.
    drop(consumers);
    wait_for_status(&consumers_connection, ConnectionStatus::Disconnected).await;

    // Its target cannot publish the event: the acknowledgement it issues is a failure, and the
    // command is handed back to the devices' gateway to be sent again.
    devices.send(&command("lamp", json!(true), "lost-1")).await;
    assert_eq!(devices.settled(1).await, "retryable");
    let (_, nack) = devices.message_to("replies").await;
    assert_eq!(
        nack["value"]["mqtt-devices:published"]["status"]
            .as_u64()
            .map(|s| s >= 400),
        Some(true),
        "{nack}"
    );
    assert_eq!(nack["value"]["twin-persisted"]["status"], 204, "{nack}");

    // The gateway is back on the same port: the plugin reconnects by itself; the resent command
    // goes through.
    let listener = TcpListener::bind(("127.0.0.1", consumers_port))
        .await
        .expect("bind the same port again");
    let mut consumers = accept(&listener, &consumers_connection).await;
    devices.send(&command("lamp", json!(false), "lost-1")).await;
    assert_eq!(devices.settled(2).await, "delivered");
    assert_eq!(consumers.event("modified").await["value"], false);
    assert_eq!(attribute_on(&router).await, Some(json!(false)));
    devices_connection.close().await;
    consumers_connection.close().await;
    consumers.closed().await;
}
