//! What operators scrape and probe: `/metrics` after a flow of HTTP commands (the counters and
//! histograms moved by exactly that flow), `/health/live` and `/health/ready`, all without
//! credentials, on `twinwire run`'s server with a journal in a temp directory.

use serde_json::{json, Value};
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
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
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
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while in_memory(&handle.render()) != 0.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the stopped shard's things still count"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
