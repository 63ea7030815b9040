//! What operators scrape and probe: `/metrics` after a flow of HTTP commands and after a flow
//! through an MQTT connection's source and target (the real adapter plugin and Mosquitto on
//! 127.0.0.1:1883), the counters and histograms moved by exactly that flow; the things in memory;
//! `/health/live` and `/health/ready`; all without credentials, on `twinwire run`'s server with a
//! journal in a temp directory.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use twinwire::config::Config;
use twinwire::run;

const NS: &str = "org.eclipse.ditto";

/// The value of the series `name{labels}` (labels as Prometheus renders them, in any order);
/// 0 when it is not there yet.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (series_name, rest) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            if series_name != name {
                return None;
            }
            let present: Vec<&str> = rest.split(',').filter(|l| !l.is_empty()).collect();
            let all = labels
                .iter()
                .all(|(k, v)| present.contains(&format!("{k}=\"{v}\"").as_str()));
            (all && present.len() == labels.len()).then(|| value.parse::<f64>().ok())?
        })
        .sum()
}

async fn scrape(http: &reqwest::Client, base: &str) -> String {
    let response = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .is_ok_and(|c| c.starts_with("text/plain")));
    response.text().await.expect("text")
}

/// A broker on a free port with its journal in `dir` and the user alice (password wonderland).
fn alice_config(dir: &std::path::Path) -> Config {
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: Some(dir.to_owned()),
        ..Config::default()
    };
    run::add_flag_users(&mut config, &["alice:wonderland".to_owned()]).expect("users");
    config
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_an_http_flow_and_health_answers_without_credentials() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = alice_config(dir.path());
    let running = run::start(config, false).await.expect("started");
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();

    let before = scrape(&http, &base).await;
    let commands = [
        ("group", "things"),
        ("channel", "twin"),
        ("criterion", "commands"),
        ("origin", "http"),
    ];
    let answered = [("stage", "answered"), ("origin", "http")];
    let durable = [("stage", "durable"), ("origin", "http")];
    // One create, four modifies, one retrieve: six twin commands.
    let url = format!("{base}/api/2/things/{NS}:meter");
    let created = http
        .put(&url)
        .basic_auth("alice", Some("wonderland"))
        .json(&json!({"attributes": {"n": 0}}))
        .send()
        .await
        .expect("put");
    assert_eq!(created.status(), 201);
    for n in 1..=4 {
        let modified = http
            .put(format!("{url}/attributes/n"))
            .basic_auth("alice", Some("wonderland"))
            .json(&json!(n))
            .send()
            .await
            .expect("put");
        assert_eq!(modified.status(), 204);
    }
    let retrieved = http
        .get(&url)
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("get");
    assert_eq!(retrieved.status(), 200);
    let after = scrape(&http, &base).await;

    let moved = |name: &str, labels: &[(&str, &str)]| {
        sample(&after, name, labels) - sample(&before, name, labels)
    };
    assert_eq!(moved("twinwire_signals_received_total", &commands), 6.0);
    assert_eq!(moved("twinwire_command_seconds_count", &answered), 6.0);
    assert_eq!(moved("twinwire_command_seconds_count", &durable), 6.0);
    // Six records were written, in one or more commits: the thing and the default policy its
    // creation made, and four changes (the retrieve writes nothing).
    assert_eq!(moved("twinwire_journal_batch_records_sum", &[]), 6.0);
    assert!(moved("twinwire_journal_commit_seconds_count", &[]) >= 1.0);
    assert!(moved("twinwire_journal_commit_seconds_count", &[]) <= 6.0);
    // Latencies are below the 30 s bucket: every answered command is in it.
    let le = [("stage", "answered"), ("origin", "http"), ("le", "30")];
    assert_eq!(moved("twinwire_command_seconds_bucket", &le), 6.0);
    assert!(after.contains("# TYPE twinwire_signals_received_total counter"));
    // The thing was read from the journal once (its creation), then served from memory.
    assert_eq!(
        moved("twinwire_things_loaded_total", &[("from", "journal")]),
        1.0
    );
    // Each change awaited twin-persisted; none is pending now, no shard has a backlog.
    assert_eq!(moved("twinwire_ack_requests_total", &[]), 5.0);
    assert_eq!(sample(&after, "twinwire_acks_pending", &[]), 0.0);
    assert!(after.contains("twinwire_shard_queue_depth{shard=\"0\"} 0"));

    // Health, without credentials.
    let live = http
        .get(format!("{base}/health/live"))
        .send()
        .await
        .expect("live");
    assert_eq!(live.status(), 200);
    let ready = http
        .get(format!("{base}/health/ready"))
        .send()
        .await
        .expect("ready");
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.expect("json");
    assert_eq!(ready["status"], "UP");
    // The API itself still wants credentials.
    let refused = http.get(&url).send().await.expect("get");
    assert_eq!(refused.status(), 401);
    running.stop().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_ready_while_an_open_connection_is_not_connected() {
    let data = tempfile::tempdir().expect("temp dir");
    let connections = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        connections.path().join("c.yaml"),
        "id: devices\nconnectionType: mqtt\nconnectionStatus: open\nuri: tcp://127.0.0.1:1883\n\
         sources:\n  - addresses: [a/#]\n    qos: 1\n    authorizationContext: [integration:c1]\n",
    )
    .expect("write");
    // No plugin serves mqtt here: the connection cannot connect.
    let plugins = tempfile::tempdir().expect("temp dir");
    let config = Config {
        connections: Some(connections.path().to_owned()),
        plugins: Some(plugins.path().to_owned()),
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: Some(data.path().to_owned()),
        ..Config::default()
    };
    let running = run::start(config, false).await.expect("started");
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let mut ready = Value::Null;
    for _ in 0..100 {
        let response = http
            .get(format!("{base}/health/ready"))
            .send()
            .await
            .expect("ready");
        let status = response.status();
        ready = response.json().await.expect("json");
        if status == 503 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(ready["status"], "DOWN", "{ready}");
    let reason = ready["reasons"][0].as_str().unwrap_or("");
    assert!(
        reason.starts_with("connection 'devices' is not connected: "),
        "{ready}"
    );
    let live = http
        .get(format!("{base}/health/live"))
        .send()
        .await
        .expect("live");
    assert_eq!(live.status(), 200, "live while not ready");
    running.stop().await.expect("stopped");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn things_in_memory_follows_loads_creates_evictions_and_deletes() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = alice_config(dir.path());
    // One shard holding two things parsed and one compact (the compact cache's least size).
    config.engine.shards = 1;
    config.engine.max_things_in_memory = 2;
    let running = run::start(config, false).await.expect("started");
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let status = |method: reqwest::Method, n: u32| {
        let request = http
            .request(method, format!("{base}/api/2/things/{NS}:memory-{n}"))
            .basic_auth("alice", Some("wonderland"))
            .json(&json!({"attributes": {"n": n}}));
        async move { request.send().await.expect("request").status().as_u16() }
    };
    let before = scrape(&http, &base).await;
    let moved = |after: &str, name: &str, labels: &[(&str, &str)]| {
        sample(after, name, labels) - sample(&before, name, labels)
    };
    let in_memory = |after: &str| moved(after, "twinwire_things_in_memory", &[("shard", "0")]);
    let evicted =
        |after: &str, to: &str| moved(after, "twinwire_things_evicted_total", &[("to", to)]);
    let loaded = |after: &str| {
        moved(
            after,
            "twinwire_things_loaded_total",
            &[("from", "journal")],
        )
    };

    // A missing thing is looked up (its entry takes a place in the cache) but not counted.
    assert_eq!(status(reqwest::Method::GET, 0).await, 404);
    for n in 1..=3 {
        assert_eq!(status(reqwest::Method::PUT, n).await, 201);
    }
    let after = scrape(&http, &base).await;
    assert_eq!(in_memory(&after), 3.0);
    // memory-0's entry and memory-1 went compact; memory-0's then left memory.
    assert_eq!(evicted(&after, "compact"), 2.0);
    assert_eq!(evicted(&after, "journal"), 1.0);

    // A fourth pushes the compact memory-1 out of memory: still three.
    assert_eq!(status(reqwest::Method::PUT, 4).await, 201);
    let after = scrape(&http, &base).await;
    assert_eq!(in_memory(&after), 3.0);
    assert_eq!(evicted(&after, "journal"), 2.0);

    // A delete leaves one less.
    assert_eq!(status(reqwest::Method::DELETE, 4).await, 204);
    let after = scrape(&http, &base).await;
    assert_eq!(in_memory(&after), 2.0);
    // Loading memory-1 back from the journal compacts memory-3 and pushes memory-2 out.
    let loaded_before = loaded(&after);
    assert_eq!(status(reqwest::Method::GET, 1).await, 200);
    let after = scrape(&http, &base).await;
    assert_eq!(loaded(&after) - loaded_before, 1.0);
    assert_eq!(in_memory(&after), 2.0);
    assert_eq!(evicted(&after, "journal"), 3.0);
    assert!(after.contains("# TYPE twinwire_things_in_memory gauge"));

    // Stopped, its things leave memory (the shard task ends once its last sender is gone).
    running.stop().await.expect("stopped");
    let handle = twinwire::http::operations::prometheus().expect("the recorder");
    let deadline = Instant::now() + Duration::from_secs(10);
    while in_memory(&handle.render()) != 0.0 {
        assert!(
            Instant::now() < deadline,
            "the stopped shard's things still count"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A series' labels.
type Labels<'a> = Vec<(&'a str, &'a str)>;

/// The MQTT adapter plugin, built once by cargo (into the directory tests/support builds it in,
/// so the two share the build) and copied into a plugin directory of the test's own.
fn mqtt_plugin_dir() -> tempfile::TempDir {
    let base =
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("twinwire-adapter-mqtt-plugin");
    let file = twinwire_tests::build_plugin("twinwire-adapter-mqtt", &base.join("target"));
    let dir = tempfile::tempdir().expect("plugin dir");
    let name = file.file_name().expect("a file name");
    std::fs::copy(&file, dir.path().join(name)).expect("copy the plugin");
    dir
}

/// A device on the local Mosquitto: subscribed to `topics` (qos 1), its messages in a queue.
async fn device(
    id: &str,
    topics: &[String],
) -> (
    rumqttc::AsyncClient,
    tokio::sync::mpsc::UnboundedReceiver<rumqttc::Publish>,
) {
    let mut options = rumqttc::MqttOptions::new(id, "127.0.0.1", 1883);
    options.set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 100);
    for topic in topics {
        client
            .subscribe(topic, rumqttc::QoS::AtLeastOnce)
            .await
            .expect("subscribe");
    }
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let (subscribed_tx, subscribed) = tokio::sync::oneshot::channel();
    let mut subscribed_tx = Some(subscribed_tx);
    let mut suback = topics.len();
    tokio::spawn(async move {
        loop {
            match eventloop.poll().await {
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::Publish(p))) => {
                    if tx.send(p).is_err() {
                        return;
                    }
                }
                Ok(rumqttc::Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                    suback = suback.saturating_sub(1);
                    if suback == 0 {
                        if let Some(done) = subscribed_tx.take() {
                            let _ = done.send(());
                        }
                    }
                }
                Ok(_) => {}
                // The queue closes: whoever waits on it fails there.
                Err(_) => return,
            }
        }
    });
    tokio::time::timeout(Duration::from_secs(20), subscribed)
        .await
        .expect("subscribed in time")
        .expect("subscribed");
    (client, rx)
}

/// The JSON payloads of the messages under each topic prefix, once `n` came under each.
async fn gather(
    messages: &mut tokio::sync::mpsc::UnboundedReceiver<rumqttc::Publish>,
    wanted: &[(&str, usize)],
) -> Vec<Vec<Value>> {
    let mut out = vec![Vec::new(); wanted.len()];
    while out.iter().zip(wanted).any(|(got, (_, n))| got.len() < *n) {
        let p = tokio::time::timeout(Duration::from_secs(20), messages.recv())
            .await
            .unwrap_or_else(|_| panic!("wanted {wanted:?}, got {out:?}"))
            .expect("device running");
        if let Some(i) = wanted
            .iter()
            .position(|(prefix, _)| p.topic.starts_with(prefix))
        {
            out[i].push(serde_json::from_slice(&p.payload).expect("a JSON payload"));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_an_mqtt_flow_through_a_source_and_a_target() {
    let u = uuid::Uuid::new_v4().simple().to_string()[..12].to_owned();
    let id = format!("devices-{u}");
    let subject = format!("integration:{id}");
    let plugins = mqtt_plugin_dir();
    let connections = tempfile::tempdir().expect("temp dir");
    // A source of twin commands answered on their reply-to, and a target of twin events that
    // issues `<id>:published`. YAML reads JSON.
    let connection = json!({
        "id": id, "connectionType": "mqtt", "connectionStatus": "open",
        "uri": "tcp://127.0.0.1:1883",
        "specificConfig": {"clientId": format!("tw-{id}")},
        "sources": [{
            "addresses": [format!("tw/{u}/commands/#")], "qos": 1,
            "authorizationContext": [subject],
            "acknowledgementRequests": {"includes": ["twin-persisted"]},
            "replyTarget": {"enabled": true, "address": "{{header:reply-to}}"}
        }],
        "targets": [{
            "address": format!("tw/{u}/events/{{{{ thing:id }}}}"), "qos": 1,
            "topics": ["_/_/things/twin/events"], "authorizationContext": [subject],
            "issuedAcknowledgementLabel": "{{connection:id}}:published"
        }]
    });
    std::fs::write(
        connections.path().join("devices.yaml"),
        connection.to_string(),
    )
    .expect("write");
    let data = tempfile::tempdir().expect("temp dir");
    let config = Config {
        connections: Some(connections.path().to_owned()),
        plugins: Some(plugins.path().to_owned()),
        ..alice_config(data.path())
    };
    let running = run::start(config, false).await.expect("started");
    let base = format!("http://{}", running.addr);
    let http = reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status: Value = http
            .get(format!("{base}/api/2/connections/{id}/status"))
            .basic_auth("alice", Some("wonderland"))
            .send()
            .await
            .expect("status")
            .json()
            .await
            .expect("json");
        if status["liveStatus"] == "open" {
            break;
        }
        assert!(Instant::now() < deadline, "not connected: {status}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (device, mut messages) = device(
        &format!("tw-device-{u}"),
        &[format!("tw/{u}/events/#"), format!("tw/{u}/replies")],
    )
    .await;
    let before = scrape(&http, &base).await;

    // Over HTTP: the thing, with a policy for alice and the connection (its creation event goes
    // out through the target), then two changes requesting the target's acknowledgement.
    let thing = format!("{NS}:lamp-{u}");
    let url = format!("{base}/api/2/things/{thing}");
    let grant = json!({"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                       "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}});
    let created = http
        .put(&url)
        .basic_auth("alice", Some("wonderland"))
        .json(
            &json!({"attributes": {"on": false}, "_policy": {"entries": {
            "alice": {"subjects": {"nginx:alice": {"type": "t"}}, "resources": grant},
            "devices": {"subjects": {subject.clone(): {"type": "t"}}, "resources": grant}}}}),
        )
        .send()
        .await
        .expect("put");
    assert_eq!(created.status(), 201);
    for n in 1..=2 {
        let acknowledged: Value = http
            .put(format!("{url}/attributes/n"))
            .basic_auth("alice", Some("wonderland"))
            .header("requested-acks", format!("twin-persisted,{id}:published"))
            .json(&json!(n))
            .send()
            .await
            .expect("put")
            .json()
            .await
            .expect("json");
        assert_eq!(
            acknowledged[format!("{id}:published")]["status"],
            200,
            "{acknowledged}"
        );
    }
    // Over MQTT: three commands through the source, each answered on the device's reply topic.
    // Their events do not come back to the connection that caused them.
    for n in 1..=3 {
        let command = json!({
            "topic": format!("{NS}/lamp-{u}/things/twin/commands/modify"),
            "headers": {"correlation-id": format!("c-{n}"), "reply-to": format!("tw/{u}/replies")},
            "path": "/attributes/on", "value": n % 2 == 1
        });
        device
            .publish(
                format!("tw/{u}/commands/lamp"),
                rumqttc::QoS::AtLeastOnce,
                false,
                command.to_string(),
            )
            .await
            .expect("publish");
    }
    let replies_topic = format!("tw/{u}/replies");
    let events_topic = format!("tw/{u}/events/");
    let got = gather(&mut messages, &[(&replies_topic, 3), (&events_topic, 3)]).await;
    let (replies, events) = (&got[0], &got[1]);
    assert!(replies.iter().all(|r| r["status"] == 204), "{replies:?}");
    assert_eq!(
        events[0]["topic"],
        format!("{NS}/lamp-{u}/things/twin/events/created")
    );

    let connection = |labels: &[(&'static str, &'static str)]| {
        let mut all = vec![("connection", id.as_str())];
        all.extend_from_slice(labels);
        all
    };
    let message = |direction, kind| {
        connection(&[
            ("direction", direction),
            ("type", kind),
            ("outcome", "success"),
        ])
    };
    let from_connection = |criterion| {
        [
            ("group", "things"),
            ("channel", "twin"),
            ("criterion", criterion),
            ("origin", "connection"),
        ]
    };
    let expected: Vec<(&str, Labels<'_>, f64)> = vec![
        // The source: three messages consumed, mapped to a command each, and settled once
        // persisted and answered.
        (
            "twinwire_connection_messages_total",
            message("inbound", "consumed"),
            3.0,
        ),
        (
            "twinwire_connection_messages_total",
            message("inbound", "mapped"),
            3.0,
        ),
        (
            "twinwire_connection_settlements_total",
            connection(&[("outcome", "delivered")]),
            3.0,
        ),
        (
            "twinwire_signals_received_total",
            from_connection("commands").to_vec(),
            3.0,
        ),
        (
            "twinwire_command_seconds_count",
            vec![("stage", "durable"), ("origin", "connection")],
            3.0,
        ),
        // The target: the three HTTP changes' events dispatched and published; the two that
        // requested it acknowledged, each ack a signal from the connection.
        (
            "twinwire_connection_messages_total",
            message("outbound", "dispatched"),
            3.0,
        ),
        (
            "twinwire_connection_messages_total",
            message("outbound", "published"),
            3.0,
        ),
        (
            "twinwire_connection_messages_total",
            message("outbound", "acknowledged"),
            2.0,
        ),
        (
            "twinwire_signals_received_total",
            from_connection("acks").to_vec(),
            2.0,
        ),
        (
            "twinwire_acks_received_total",
            vec![("outcome", "accepted")],
            2.0,
        ),
        // Signals out: the three HTTP changes' events reached the target's queue; the three
        // the connection caused were not delivered back to it.
        (
            "twinwire_deliveries_total",
            vec![
                ("group", "things"),
                ("channel", "twin"),
                ("criterion", "events"),
                ("outcome", "delivered"),
            ],
            3.0,
        ),
        // Every change awaited acknowledgements: one creation and two changes over HTTP, three
        // over MQTT; none timed out, none was issued weakly, nothing failed or reconnected.
        ("twinwire_ack_requests_total", vec![], 6.0),
        ("twinwire_ack_requests_timed_out_total", vec![], 0.0),
        ("twinwire_acks_weak_total", vec![], 0.0),
        (
            "twinwire_connection_settlements_total",
            connection(&[("outcome", "retryable")]),
            0.0,
        ),
        (
            "twinwire_connection_settlements_total",
            connection(&[("outcome", "permanent")]),
            0.0,
        ),
        ("twinwire_connection_reconnects_total", connection(&[]), 0.0),
    ];
    // Settlements and acknowledgements complete just after the answers: wait for them, then
    // make sure nothing moves further.
    let deltas = |after: &str| -> Vec<f64> {
        expected
            .iter()
            .map(|(name, labels, _)| sample(after, name, labels) - sample(&before, name, labels))
            .collect()
    };
    let wanted: Vec<f64> = expected.iter().map(|(_, _, n)| *n).collect();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut after = scrape(&http, &base).await;
    while deltas(&after) != wanted && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        after = scrape(&http, &base).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = scrape(&http, &base).await;
    for ((name, labels, want), got) in expected.iter().zip(deltas(&after)) {
        assert_eq!(got, *want, "{name}{labels:?}");
    }
    for failure in [
        "consumed",
        "mapped",
        "enforced",
        "dispatched",
        "published",
        "acknowledged",
    ] {
        for direction in ["inbound", "outbound"] {
            let labels = connection(&[
                ("direction", direction),
                ("type", failure),
                ("outcome", "failure"),
            ]);
            assert_eq!(
                sample(&after, "twinwire_connection_messages_total", &labels),
                0.0
            );
        }
    }
    assert_eq!(
        sample(&after, "twinwire_connection_connected", &connection(&[])),
        1.0
    );
    assert_eq!(sample(&after, "twinwire_acks_pending", &[]), 0.0);
    drop(device);
    running.stop().await.expect("stopped");
}
