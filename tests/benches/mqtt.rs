//! MQTT end to end beside a raw rumqttc pass-through measured in the same run, against a
//! Mosquitto the benchmark starts on a free loopback port with `max_inflight_messages 1000`
//! (a stock Mosquitto sends a client at most 20 unacknowledged qos 1 messages: a consumer that
//! acknowledges only once a message is persisted then gets 20 per persistence round trip).
//! `MQTT_BENCH_PORT=1883` measures the running server instead.
//!
//! - baseline: a rumqttc client consumes `in` at qos 1 with manual acks, republishes each
//!   message to `out` at qos 1 and acknowledges it; nothing else.
//! - twinwire: a qos 1 source takes Ditto modify commands from `in` (100 things in turn; each
//!   settled once twin-persisted), and another connection's qos 1 target publishes the events to
//!   `out` (the MQTT adapter linked statically, the real engine and journal with fsync).
//!
//! Both: a producer publishes at qos 1 and keeps at most `WINDOW` messages between `in` and
//! `out` (a stock Mosquitto drops qos 1 messages queued beyond `max_queued_messages`); a
//! consumer reads `out`. Latency: from publishing to `in` to receiving on `out`.
//!
//! `cargo bench -p twinwire-tests --bench mqtt` (`MQTT_BENCH_MESSAGES`, default 20000;
//! `MQTT_BENCH_ROUNDS`, default 3: the median round is reported).

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use twinwire_adapter_mqtt::Mqtt;
use twinwire_core::auth::AuthContext;
use twinwire_core::connections::model::Connection;
use twinwire_core::connections::runtime::{AdapterFactory, RunningConnection};
use twinwire_core::journal::{Journal, JournalConfig, RedbStore};
use twinwire_core::routing::{Requester, Router};
use twinwire_core::things::EngineConfig;
use twinwire_plugin::{host, ConnectionStatus, HostSink};
use twinwire_protocol::Envelope;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const WINDOW: usize = 200;
const THINGS: usize = 100;
const NAMESPACE: &str = "org.eclipse.ditto";
const SUBJECT: &str = "integration:bench";

static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();

fn port() -> u16 {
    *PORT.get().expect("the server is started")
}

/// The benchmark's Mosquitto (none with `MQTT_BENCH_PORT`): killed on drop, then its
/// directory removed.
struct Server {
    child: Option<std::process::Child>,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn start_server() -> Server {
    if let Some(port) = std::env::var("MQTT_BENCH_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
    {
        PORT.set(port).expect("once");
        return Server {
            child: None,
            _dir: None,
        };
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let dir = tempfile::tempdir().expect("temp dir");
    let conf = dir.path().join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n\
             max_inflight_messages 1000\nmax_queued_messages 100000\n"
        ),
    )
    .expect("config");
    let child = std::process::Command::new(twinwire_tests::mosquitto_binary())
        .arg("-c")
        .arg(&conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start mosquitto");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "mosquitto did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    PORT.set(port).expect("once");
    Server {
        child: Some(child),
        _dir: Some(dir),
    }
}

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now_micros(start: Instant) -> u64 {
    start.elapsed().as_micros() as u64
}

struct Round {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

/// Publishes `messages` payloads made by `payload(i, sent_at_micros)` to `input`, at most
/// `WINDOW` ahead of what `output` received; `sent_at` reads a received payload's send time.
async fn drive(
    tag: &str,
    input: &str,
    output: &str,
    messages: usize,
    payload: impl Fn(usize, u64) -> Vec<u8>,
    sent_at: impl Fn(&[u8]) -> Option<u64> + Send + 'static,
) -> Round {
    let start = Instant::now();
    let window = Arc::new(Semaphore::new(WINDOW));
    // Consumer.
    let mut options = rumqttc::MqttOptions::new(format!("bench-sink-{tag}"), "127.0.0.1", port());
    options.set_keep_alive(Duration::from_secs(30));
    let (sink, mut sink_loop) = rumqttc::AsyncClient::new(options, 10);
    sink.subscribe(output, rumqttc::QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel::<()>();
    let (done_tx, mut done) = mpsc::unbounded_channel::<(u64, u64)>();
    let freed = Arc::clone(&window);
    let consumer = tokio::spawn(async move {
        let mut subscribed_tx = Some(subscribed_tx);
        loop {
            match sink_loop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    if let Some(tx) = subscribed_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    if let Some(sent) = sent_at(&p.payload) {
                        freed.add_permits(1);
                        let _ = done_tx.send((sent, now_micros(start)));
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("sink: {e}"),
            }
        }
    });
    subscribed.await.expect("subscribed");
    // Producer.
    let mut options = rumqttc::MqttOptions::new(format!("bench-source-{tag}"), "127.0.0.1", port());
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_inflight(1_000);
    let (source, mut source_loop) = rumqttc::AsyncClient::new(options, 1_000);
    let producer_loop = tokio::spawn(async move {
        loop {
            if let Err(e) = source_loop.poll().await {
                panic!("source: {e}");
            }
        }
    });
    let begin = Instant::now();
    for i in 0..messages {
        window.acquire().await.expect("window").forget();
        source
            .publish(
                input,
                rumqttc::QoS::AtLeastOnce,
                false,
                payload(i, now_micros(start)),
            )
            .await
            .expect("publish");
    }
    let mut latencies = Vec::with_capacity(messages);
    while latencies.len() < messages {
        let (sent, received) = tokio::time::timeout(Duration::from_secs(30), done.recv())
            .await
            .unwrap_or_else(|_| panic!("{tag}: {} of {messages} arrived", latencies.len()))
            .expect("consumer running");
        latencies.push(received.saturating_sub(sent));
    }
    let elapsed = begin.elapsed();
    consumer.abort();
    producer_loop.abort();
    latencies.sort_unstable();
    let pick = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Round {
        per_second: messages as f64 / elapsed.as_secs_f64(),
        p50_ms: pick(0.50) as f64 / 1000.0,
        p99_ms: pick(0.99) as f64 / 1000.0,
    }
}

/// The baseline: consume, republish, acknowledge.
async fn raw_round(u: &str, messages: usize) -> Round {
    let input = format!("bench/{u}/raw/in");
    let output = format!("bench/{u}/raw/out");
    let mut options = rumqttc::MqttOptions::new(format!("bench-relay-{u}"), "127.0.0.1", port());
    options
        .set_keep_alive(Duration::from_secs(30))
        .set_manual_acks(true)
        .set_inflight(1_000);
    let (relay, mut relay_loop) = rumqttc::AsyncClient::new(options, 2_000);
    relay
        .subscribe(&input, rumqttc::QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let (ready_tx, ready) = tokio::sync::oneshot::channel::<()>();
    let out = output.clone();
    let relay_task = tokio::spawn(async move {
        let mut ready_tx = Some(ready_tx);
        loop {
            match relay_loop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    if let Some(tx) = ready_tx.take() {
                        let _ = tx.send(());
                    }
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    relay
                        .try_publish(&out, rumqttc::QoS::AtLeastOnce, false, p.payload.clone())
                        .expect("republish");
                    relay.try_ack(&p).expect("ack");
                }
                Ok(_) => {}
                Err(e) => panic!("relay: {e}"),
            }
        }
    });
    ready.await.expect("relay subscribed");
    let round = drive(
        &format!("raw-{u}"),
        &input,
        &output,
        messages,
        |_, sent| sent.to_string().into_bytes(),
        |payload| std::str::from_utf8(payload).ok()?.parse().ok(),
    )
    .await;
    relay_task.abort();
    round
}

fn static_mqtt() -> AdapterFactory {
    Arc::new(|connection: Connection, sink: Arc<dyn HostSink>| {
        Box::pin(async move {
            let config = serde_json::to_vec(&connection).map_err(|e| e.to_string())?;
            host::create_static::<Mqtt>(&config, sink).await
        })
    })
}

async fn open(router: &Router, factory: &AdapterFactory, connection: Value) -> RunningConnection {
    let connection: Connection = serde_json::from_value(connection).expect("connection");
    let running = RunningConnection::open(connection, router.clone(), factory)
        .await
        .expect("open");
    let started = Instant::now();
    while running.status().status != ConnectionStatus::Connected {
        assert!(started.elapsed() < Duration::from_secs(10), "not connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    running
}

/// twinwire: MQTT in, twin persisted, event out to MQTT.
async fn twinwire_round(u: &str, messages: usize) -> Round {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path()).expect("store");
    let journal = Journal::start(Arc::new(store), JournalConfig::default()).expect("journal");
    let router = Router::start(journal, EngineConfig::default());
    let factory = static_mqtt();
    let events = open(
        &router,
        &factory,
        json!({
            "id": format!("bench-events-{u}"), "connectionType": "mqtt", "connectionStatus": "open",
            "uri": format!("tcp://127.0.0.1:{}", port()),
            "targets": [{"address": format!("bench/{u}/tw/out"), "topics": ["_/_/things/twin/events"],
                         "qos": 1, "authorizationContext": [SUBJECT]}]
        }),
    )
    .await;
    let devices = open(
        &router,
        &factory,
        json!({
            "id": format!("bench-devices-{u}"), "connectionType": "mqtt", "connectionStatus": "open",
            "uri": format!("tcp://127.0.0.1:{}", port()),
            "specificConfig": {"maxInFlight": "1000"},
            "sources": [{"addresses": [format!("bench/{u}/tw/in")], "qos": 1,
                         "authorizationContext": [SUBJECT],
                         "acknowledgementRequests": {"includes": ["twin-persisted"]}}]
        }),
    )
    .await;
    for t in 0..THINGS {
        let create = Envelope::from_json(json!({
            "topic": format!("{NAMESPACE}/bench-{t}/things/twin/commands/create"), "path": "/",
            "value": {"attributes": {"sent": 0}, "_policy": {"entries": {"bench": {
                "subjects": {SUBJECT: {"type": "t"}},
                "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                              "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}}}}
        }))
        .expect("create");
        let answer = router
            .handle(
                create,
                &Requester::http(AuthContext::new([SUBJECT]).expect("subject")),
            )
            .await;
        assert_eq!(answer.reply.and_then(|r| r.status), Some(201));
    }
    let round = drive(
        &format!("tw-{u}"),
        &format!("bench/{u}/tw/in"),
        &format!("bench/{u}/tw/out"),
        messages,
        |i, sent| {
            json!({"topic": format!("{NAMESPACE}/bench-{}/things/twin/commands/modify", i % THINGS),
                   "headers": {}, "path": "/attributes/sent", "value": sent})
            .to_string()
            .into_bytes()
        },
        |payload| {
            let event: Value = serde_json::from_slice(payload).ok()?;
            (event["path"] == "/attributes/sent")
                .then(|| event["value"].as_u64())
                .flatten()
        },
    )
    .await;
    devices.close().await;
    events.close().await;
    round
}

fn median(mut rounds: Vec<Round>) -> Round {
    rounds.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
    let mid = rounds.len() / 2;
    rounds.swap_remove(mid)
}

fn main() {
    let messages = env_number("MQTT_BENCH_MESSAGES", 20_000);
    let rounds = env_number("MQTT_BENCH_ROUNDS", 3).max(1);
    let _server = start_server();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut raw = Vec::new();
        let mut tw = Vec::new();
        for r in 0..rounds {
            let u = format!("{}-{r}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
            raw.push(raw_round(&u, messages).await);
            tw.push(twinwire_round(&u, messages).await);
        }
        let (raw, tw) = (median(raw), median(tw));
        println!(
            "MQTT qos 1 end to end, {messages} messages, window {WINDOW}, median of {rounds} rounds, Mosquitto on port {}",
            port()
        );
        println!("| scenario | messages/s | p50 ms | p99 ms | x baseline |");
        println!("|---|---|---|---|---|");
        println!(
            "| baseline: rumqttc pass-through (consume, republish, ack) | {:.0} | {:.2} | {:.2} | 1.00 |",
            raw.per_second, raw.p50_ms, raw.p99_ms
        );
        println!(
            "| twinwire: MQTT in -> twin persisted -> event out to MQTT | {:.0} | {:.2} | {:.2} | {:.2} |",
            tw.per_second,
            tw.p50_ms,
            tw.p99_ms,
            tw.per_second / raw.per_second
        );
    });
}
