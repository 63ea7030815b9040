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

mod support;

use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{micros, Round, SUBJECT, WINDOW};
use tokio::sync::{mpsc, Semaphore};
use twinwire_adapter_mqtt::Mqtt;
use twinwire_bench::env_number;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
                        let _ = done_tx.send((sent, micros(start)));
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
                payload(i, micros(start)),
            )
            .await
            .expect("publish");
    }
    let round = support::collect(&mut done, messages, Duration::from_secs(30), begin).await;
    consumer.abort();
    producer_loop.abort();
    round
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
        |_, sent| support::raw_payload(sent),
        support::raw_sent_at,
    )
    .await;
    relay_task.abort();
    round
}

/// twinwire: MQTT in, twin persisted, event out to MQTT.
async fn twinwire_round(u: &str, messages: usize) -> Round {
    let (router, _dir) = support::broker().await;
    let factory = support::static_factory::<Mqtt>();
    let events = support::open(
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
    let devices = support::open(
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
    let round = drive(
        &format!("tw-{u}"),
        &format!("bench/{u}/tw/in"),
        &format!("bench/{u}/tw/out"),
        messages,
        support::modify_payload,
        support::event_sent_at,
    )
    .await;
    devices.close().await;
    events.close().await;
    round
}

fn main() {
    let messages = env_number("MQTT_BENCH_MESSAGES", 20_000usize).max(1);
    let rounds = env_number("MQTT_BENCH_ROUNDS", 3usize).max(1);
    let _server = start_server();
    support::runtime().block_on(async {
        let (raw, tw) = support::rounds(
            rounds,
            messages,
            |u| async move { raw_round(&u, messages).await },
            |u| async move { twinwire_round(&u, messages).await },
        )
        .await;
        support::print_and_report(
            &format!(
                "MQTT qos 1 end to end, {messages} messages, window {WINDOW}, median of {rounds} rounds, Mosquitto on port {}",
                port()
            ),
            ("rumqttc pass-through (consume, republish, ack)", raw),
            ("MQTT in -> twin persisted -> event out to MQTT", tw),
            ("rumqttc pass-through", "MQTT in, twin persisted, event out (qos 1)"),
        );
    });
}
