//! The MQTT adapter (adapters/mqtt), built and loaded as the broker loads plugins, against the
//! real Mosquitto on 127.0.0.1:1883 (and, for the restart test, a Mosquitto of the test's own on
//! a free port): the router with the real engine and journal, devices played by rumqttc clients.
//!
//! Every test works under a topic prefix and client IDs of its own, so the tests can share the
//! server and run at the same time.

mod support;

use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use support::*;
use tokio::sync::mpsc;
use twinwire_core::connections::model::Connection;
use twinwire_core::connections::runtime::RunningConnection;
use twinwire_core::routing::Requester;
use twinwire_plugin::ConnectionStatus;
use twinwire_protocol::Envelope;

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
            // Qos 2: the server delivers each message with the qos it was published with.
            client
                .subscribe(topic, rumqttc::QoS::ExactlyOnce)
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
    let b = broker("twinwire-adapter-mqtt", &["mqtt", "mqtt-5"]);
    let u = unique();
    let thing = format!("lamp-{u}");
    // The target is another connection's: a connection never gets the events it caused.
    let _events = b
        .open(json!({
            "id": format!("events-{u}"), "connectionType": "mqtt", "connectionStatus": "open",
            "uri": "tcp://127.0.0.1:1883",
            "specificConfig": {"clientId": format!("tw-events-{u}")},
            "targets": [{"address": format!("tw/{u}/events/{{{{ thing:id }}}}"),
                         "topics": ["_/_/things/twin/events"], "qos": 2,
                         "authorizationContext": [SUBJECT],
                         "issuedAcknowledgementLabel": "{{connection:id}}:published"}]
        }))
        .await;
    // Replies go out through a second client.
    let devices = b
        .open(devices_connection(
            &u,
            1883,
            json!(["twin-persisted", format!("events-{u}:published")]),
            json!({"separatePublisherClient": "true"}),
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
    assert_eq!(published.qos, rumqttc::QoS::ExactlyOnce, "the target's qos");
    assert_eq!(event["path"], "/attributes/on");
    assert_eq!(event["value"], true);
    assert_eq!(event["revision"], 2);

    let (published, reply) = device.next(&replies, |_| true).await;
    assert_eq!(published.qos, rumqttc::QoS::AtLeastOnce, "the source's qos");
    assert_eq!(reply["status"], 200, "{reply}");
    assert_eq!(
        reply["topic"],
        format!("{NAMESPACE}/{thing}/things/twin/acks")
    );
    assert_eq!(reply["headers"]["correlation-id"], format!("c-{u}"));
    check_acknowledged(&reply, &format!("events-{u}"), 200);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_ack_that_times_out_makes_the_server_redeliver_and_it_is_applied_once() {
    let b = broker("twinwire-adapter-mqtt", &["mqtt", "mqtt-5"]);
    let u = unique();
    let thing = format!("valve-{u}");
    let label = format!("checker-{u}:checked");
    let mut checks = acknowledger(
        &b.router,
        &format!("checker-{u}"),
        &label,
        Answering::AllButFirst,
    );
    let devices = b
        .open(devices_connection(
            &u,
            1883,
            json!(["twin-persisted", label]),
            json!({"reconnectForRedeliveryDelay": "1s"}),
        ))
        .await;
    b.create_thing(&thing).await;
    let replies = format!("tw/{u}/replies/{thing}");
    let mut device = Device::connect(
        1883,
        &format!("tw-device-{u}"),
        std::slice::from_ref(&replies),
    )
    .await;

    device
        .publish(
            &format!("tw/{u}/commands/{thing}"),
            modify(
                &thing,
                "/attributes/open",
                json!(true),
                json!({"correlation-id": format!("c-{u}"), "reply-to": replies, "timeout": "1s"}),
            ),
        )
        .await;

    // First delivery: persisted, but the custom ack times out: 424, retryable, not acknowledged.
    let (_, failed) = device.next(&replies, |_| true).await;
    assert_eq!(failed["status"], 424, "{failed}");
    // The attribute is new: 201.
    assert_eq!(failed["value"]["twin-persisted"]["status"], 201, "{failed}");
    assert_eq!(failed["value"][&label]["status"], 408, "{failed}");
    // The adapter reconnects, Mosquitto redelivers, and the change is not made again: its
    // event goes out once more for the acknowledgement, which now comes.
    let (_, done) = device.next(&replies, |_| true).await;
    assert_eq!(done["status"], 200, "{done}");
    assert_eq!(
        done["value"]["twin-persisted"]["status"], 201,
        "answered as the first time: {done}"
    );
    assert_eq!(done["value"][&label]["status"], 200, "{done}");
    let thing_now = b.thing(&thing).await;
    assert_eq!(thing_now["attributes"]["open"], true);
    assert_eq!(thing_now["_revision"], 2, "applied once: {thing_now}");
    let first = tokio::time::timeout(WAIT, checks.recv())
        .await
        .expect("first event");
    let second = tokio::time::timeout(WAIT, checks.recv())
        .await
        .expect("again");
    assert_eq!((first, second), (Some(2), Some(2)), "the same event twice");

    // Acknowledged now: nothing more comes, also not to the same session opened again.
    devices.close().await;
    let devices = b
        .open(devices_connection(
            &u,
            1883,
            json!(["twin-persisted", label]),
            json!({}),
        ))
        .await;
    device.nothing(&replies, Duration::from_millis(1_500)).await;
    assert!(checks.try_recv().is_err(), "no third delivery");
    assert_eq!(b.thing(&thing).await["_revision"], 2);
    devices.close().await;
}

/// A Mosquitto of the test's own on a free loopback port, persisting to a temp directory, so
/// that it can be stopped and started without disturbing the other tests.
struct OwnMosquitto {
    port: u16,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl OwnMosquitto {
    async fn start() -> OwnMosquitto {
        OwnMosquitto::start_with(|_| String::new()).await
    }

    /// Starts one whose listener takes the lines `extra(dir)` adds (files go in `dir`).
    async fn start_with(extra: impl FnOnce(&Path) -> String) -> OwnMosquitto {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let dir = tempfile::tempdir().expect("temp dir");
        let conf = format!(
            "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\npersistence true\n\
             persistence_location {}/\nmax_queued_messages 10000\n{}",
            dir.path().display(),
            extra(dir.path())
        );
        std::fs::write(dir.path().join("mosquitto.conf"), conf).expect("write the config");
        let mut own = OwnMosquitto {
            port,
            dir,
            child: None,
        };
        own.resume().await;
        own
    }

    /// Starts the server (again) and waits until it accepts connections.
    async fn resume(&mut self) {
        let child = Command::new(twinwire_tests::mosquitto_binary())
            .arg("-c")
            .arg(self.dir.path().join("mosquitto.conf"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start mosquitto (apt install mosquitto)");
        self.child = Some(child);
        let started = Instant::now();
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(started.elapsed() < WAIT, "mosquitto did not start");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Stops the server as an operator does (SIGTERM: it saves its state and exits).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnMosquitto {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mosquitto_stopped_and_started_mid_stream_loses_no_qos_1_message() {
    const MESSAGES: usize = 300;
    let mut server = OwnMosquitto::start().await;
    let b = broker("twinwire-adapter-mqtt", &["mqtt", "mqtt-5"]);
    let u = unique();
    let thing = format!("meter-{u}");
    let devices = b
        .open(devices_connection(
            &u,
            server.port,
            json!(["twin-persisted"]),
            json!({}),
        ))
        .await;
    b.create_thing(&thing).await;
    let device = Device::connect(server.port, &format!("tw-device-{u}"), &[]).await;
    let topic = format!("tw/{u}/commands/{thing}");
    for i in 0..MESSAGES {
        if i == MESSAGES / 2 {
            // Mid-stream: the server goes away and comes back; both clients reconnect.
            server.stop();
            let started = Instant::now();
            while devices.status().status == ConnectionStatus::Connected {
                assert!(started.elapsed() < WAIT, "the adapter did not notice");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            server.resume().await;
            wait_connected(&devices).await;
        }
        device
            .publish(
                &topic,
                modify(&thing, &format!("/attributes/m{i}"), json!(i), json!({})),
            )
            .await;
        // A stream, not a burst: messages are on their way when the server stops.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let started = Instant::now();
    let missing = loop {
        let attributes = b.thing(&thing).await["attributes"].clone();
        let missing: Vec<usize> = (0..MESSAGES)
            .filter(|i| attributes[format!("m{i}")] != json!(i))
            .collect();
        if missing.is_empty() || started.elapsed() > Duration::from_secs(40) {
            break missing;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(missing.is_empty(), "lost: {missing:?}");
    devices.close().await;
}

/// The next reply an MQTT 5 device got: its correlation data and JSON payload.
async fn reply5(
    got: &mut mpsc::UnboundedReceiver<Option<rumqttc::v5::mqttbytes::v5::Publish>>,
) -> (Option<String>, Value) {
    let p = tokio::time::timeout(WAIT, got.recv())
        .await
        .expect("a reply in time")
        .flatten()
        .expect("a publish");
    let correlation = p
        .properties
        .as_ref()
        .and_then(|pp| pp.correlation_data.clone())
        .map(|d| String::from_utf8_lossy(&d).into_owned());
    let value: Value = serde_json::from_slice(&p.payload).expect("JSON");
    (correlation, value)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_5_malformed_payloads_and_unknown_things_get_errors_and_the_stream_goes_on() {
    use rumqttc::v5::mqttbytes::v5::{Packet, PublishProperties};
    use rumqttc::v5::mqttbytes::QoS;
    let b = broker("twinwire-adapter-mqtt", &["mqtt", "mqtt-5"]);
    let u = unique();
    let thing = format!("sensor-{u}");
    let mut connection = devices_connection(&u, 1883, json!([]), json!({}));
    connection["connectionType"] = json!("mqtt-5");
    // As Ditto's documentation sets up MQTT 5 replies: the properties mapped in, and back out.
    connection["sources"][0]["headerMapping"] = json!({
        "correlation-id": "{{header:correlation-id}}", "reply-to": "{{header:reply-to}}"});
    connection["sources"][0]["replyTarget"]["headerMapping"] =
        json!({"correlation-id": "{{header:correlation-id}}"});
    let devices = b.open(connection).await;
    b.create_thing(&thing).await;

    let replies = format!("tw/{u}/replies/{thing}");
    let mut options = rumqttc::v5::MqttOptions::new(format!("tw-device5-{u}"), "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = rumqttc::v5::AsyncClient::new(options, 100);
    client
        .subscribe(&replies, QoS::AtLeastOnce)
        .await
        .expect("subscribe");
    let (tx, mut got) = mpsc::unbounded_channel();
    let poller = tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::v5::Event::Incoming(Packet::Publish(p))) => {
                    let _ = tx.send(Some(p));
                }
                Ok(rumqttc::v5::Event::Incoming(Packet::SubAck(_))) => {
                    let _ = tx.send(None);
                }
                Ok(_) => {}
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    assert!(matches!(
        tokio::time::timeout(WAIT, got.recv()).await,
        Ok(Some(None))
    ));
    let send = |payload: Vec<u8>, correlation: &str| {
        let properties = PublishProperties {
            response_topic: Some(replies.clone()),
            correlation_data: Some(correlation.as_bytes().to_vec().into()),
            content_type: Some("application/json".to_owned()),
            ..Default::default()
        };
        let client = client.clone();
        let topic = format!("tw/{u}/commands/{thing}");
        async move {
            client
                .publish_with_properties(topic, QoS::AtLeastOnce, false, payload, properties)
                .await
                .expect("publish");
        }
    };
    send(b"{ not json".to_vec(), "bad-json").await;
    let (correlation, error) = reply5(&mut got).await;
    assert_eq!(correlation.as_deref(), Some("bad-json"), "{error}");
    assert_eq!(error["status"], 400, "{error}");
    assert!(
        error["topic"]
            .as_str()
            .is_some_and(|t| t.ends_with("/errors")),
        "{error}"
    );

    send(vec![0xff, 0xfe, 0x00], "binary").await;
    let (correlation, error) = reply5(&mut got).await;
    assert_eq!(correlation.as_deref(), Some("binary"));
    assert_eq!(error["status"], 400, "{error}");

    let ghost = format!("ghost-{u}");
    send(
        modify(&ghost, "/attributes/x", json!(1), json!({})).into_bytes(),
        "unknown",
    )
    .await;
    let (correlation, error) = reply5(&mut got).await;
    assert_eq!(correlation.as_deref(), Some("unknown"));
    assert_eq!(error["status"], 404, "{error}");
    assert_eq!(error["value"]["error"], "things:thing.notfound", "{error}");

    // The stream goes on.
    send(
        modify(&thing, "/attributes/on", json!(true), json!({})).into_bytes(),
        "good",
    )
    .await;
    let (correlation, response) = reply5(&mut got).await;
    assert_eq!(correlation.as_deref(), Some("good"));
    assert_eq!(response["status"], 204, "{response}");
    assert_eq!(b.thing(&thing).await["attributes"]["on"], true);
    poller.abort();
    devices.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_most_max_in_flight_messages_are_unsettled() {
    const WINDOW: usize = 5;
    const MESSAGES: usize = 20;
    let b = broker("twinwire-adapter-mqtt", &["mqtt", "mqtt-5"]);
    let u = unique();
    let thing = format!("pump-{u}");
    let label = format!("holder-{u}:held");
    let (release, released) = tokio::sync::watch::channel(false);
    let mut seen = acknowledger(
        &b.router,
        &format!("holder-{u}"),
        &label,
        Answering::WhenReleased(released),
    );
    let devices = b
        .open(devices_connection(
            &u,
            1883,
            json!(["twin-persisted", label]),
            json!({"maxInFlight": WINDOW.to_string()}),
        ))
        .await;
    b.create_thing(&thing).await;
    let device = Device::connect(1883, &format!("tw-device-{u}"), &[]).await;
    for i in 0..MESSAGES {
        device
            .publish(
                &format!("tw/{u}/commands/{thing}"),
                modify(&thing, &format!("/attributes/m{i}"), json!(i), json!({})),
            )
            .await;
    }
    // While nothing settles, the broker gets the window's worth and no more.
    let mut held = 0;
    while let Ok(Some(_)) = tokio::time::timeout(Duration::from_millis(1_500), seen.recv()).await {
        held += 1;
    }
    assert_eq!(held, WINDOW, "unsettled messages beyond maxInFlight");
    release.send_replace(true);
    let started = Instant::now();
    loop {
        let attributes = b.thing(&thing).await["attributes"].clone();
        if (0..MESSAGES).all(|i| attributes[format!("m{i}")] == json!(i)) {
            break;
        }
        assert!(started.elapsed() < WAIT, "not all applied: {attributes}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    devices.close().await;
}

/// A test CA and certificates it signed for the server (localhost, 127.0.0.1) and a client.
struct Pki {
    ca: String,
    server: (String, String),
    client: (String, String),
}

fn pki(name: &str) -> Pki {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().expect("key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, format!("{name} test CA"));
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let signed = |names: Vec<String>| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &ca, &ca_key)
            .expect("signed");
        (cert.pem(), key.serialize_pem())
    };
    Pki {
        ca: ca.pem(),
        server: signed(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]),
        client: signed(vec!["twinwire-client".to_owned()]),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_ca_and_a_client_certificate() {
    let certs = pki("twinwire");
    let server_files = certs.server.clone();
    let ca = certs.ca.clone();
    let server = OwnMosquitto::start_with(move |dir| {
        for (file, text) in [("ca.pem", &ca), ("server.pem", &server_files.0), ("server.key", &server_files.1)] {
            std::fs::write(dir.join(file), text).expect("write");
        }
        format!(
            "cafile {0}/ca.pem\ncertfile {0}/server.pem\nkeyfile {0}/server.key\nrequire_certificate true\n",
            dir.display()
        )
    })
    .await;
    let b = broker("twinwire-adapter-mqtt", &["mqtt", "mqtt-5"]);
    let u = unique();
    let thing = format!("door-{u}");
    let connection = |id: &str, ca: &str, client: Option<&(String, String)>| {
        let mut c = json!({
            "id": id, "connectionType": "mqtt", "connectionStatus": "open",
            "uri": format!("ssl://localhost:{}", server.port), "ca": ca,
            "specificConfig": {"clientId": format!("tw-{id}"), "reconnectMinDelay": "100ms", "reconnectMaxDelay": "500ms"},
            "targets": [{"address": format!("tw/{u}/events/{{{{ thing:id }}}}"),
                         "topics": ["_/_/things/twin/events"], "qos": 1,
                         "authorizationContext": [SUBJECT],
                         "issuedAcknowledgementLabel": "{{connection:id}}:published"}]
        });
        if let Some((cert, key)) = client {
            c["credentials"] = json!({"type": "client-cert", "cert": cert, "key": key});
        }
        serde_json::from_value::<Connection>(c).expect("connection")
    };
    // With the CA and a client certificate: connected, and its publishes are acknowledged.
    let id = format!("tls-{u}");
    let running = RunningConnection::open(
        connection(&id, &certs.ca, Some(&certs.client)),
        b.router.clone(),
        &b.factory,
    )
    .await
    .expect("open");
    wait_connected(&running).await;
    b.create_thing(&thing).await;
    let modify = Envelope::from_json(json!({
        "topic": format!("{NAMESPACE}/{thing}/things/twin/commands/modify"),
        "headers": {"requested-acks": [format!("{id}:published")], "timeout": "10s"},
        "path": "/attributes/open", "value": true
    }))
    .expect("modify");
    let answer = b
        .router
        .handle(modify, &Requester::http(auth(SUBJECT)))
        .await;
    let reply = answer.reply.expect("a reply");
    assert_eq!(reply.status, Some(200), "{}", reply.to_json());
    running.close().await;

    // Without a client certificate, or trusting another CA: never connected, with the reason.
    let other = pki("other");
    for (name, ca, client) in [
        ("nocert", certs.ca.as_str(), None),
        ("wrongca", other.ca.as_str(), Some(&certs.client)),
    ] {
        let id = format!("{name}-{u}");
        let running =
            RunningConnection::open(connection(&id, ca, client), b.router.clone(), &b.factory)
                .await
                .expect("open");
        tokio::time::sleep(Duration::from_millis(1_000)).await;
        let status = running.status();
        assert_eq!(
            status.status,
            ConnectionStatus::Disconnected,
            "{name}: {status:?}"
        );
        assert!(
            status.detail.contains("lost or refused"),
            "{name}: {status:?}"
        );
        running.close().await;
    }
}
