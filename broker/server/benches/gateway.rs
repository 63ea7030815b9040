//! The gateway under load on loopback (issue 6, item 8), each figure beside its baseline in the
//! same run:
//!
//! 1. HTTP `GET /api/2/things/{id}` (basic auth, policy check, durable read) with `wrk`, beside
//!    a trivial axum handler answering the same bytes on the same server stack: requests/s,
//!    p50, p99.
//! 2. WebSocket modify round trips/s: sessions each sending `modify` commands one after the
//!    other and waiting for each response (durable: fsync, group commit); beside the same
//!    sessions sending `retrieve`s (no journal write).
//! 3. Live message round trips/s: requester sessions send messages to a thing, a device session
//!    answers each; beside, the same requesters round-tripping a WebSocket echo (a `retrieve`)
//!    is figure 2's baseline.
//!
//! The load runs in a second process (this binary with `client …`), as wrk does, so the
//! figures are the broker's. `cargo bench -p twinwire --bench gateway`; needs `wrk` (Debian:
//! `apt-get install wrk`). `TWINWIRE_BENCH_SECONDS` (default 5) per measurement,
//! `TWINWIRE_BENCH_ROUNDS` (default 3, medians quoted), `TWINWIRE_BENCH_CONNECTIONS` (default 64).

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use base64::Engine as _;
use futures_util::{SinkExt, StreamExt};
use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;
use twinwire::config::Config;
use twinwire_bench::{env_number, median, ms, percentile, report, Row};

const NS: &str = "org.eclipse.ditto";
const USER: &str = "bench";
const PASSWORD: &str = "bench";

fn basic() -> String {
    let token = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    format!("Basic {token}")
}

/// A scenario's name and, per round, its rate, p50 and p99.
type Measured = (&'static str, Vec<f64>, Vec<f64>, Vec<f64>);

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("client") {
        client(&args[2..]);
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(orchestrate());
}

async fn orchestrate() {
    let seconds = env_number("TWINWIRE_BENCH_SECONDS", 5usize).max(1);
    let rounds = env_number("TWINWIRE_BENCH_ROUNDS", 3usize).max(1);
    let connections = env_number("TWINWIRE_BENCH_CONNECTIONS", 64usize).max(1);
    if Command::new("wrk").arg("--version").output().is_err() {
        eprintln!("wrk is needed: apt-get install wrk");
        std::process::exit(2);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: Some(dir.path().to_owned()),
        ..Config::default()
    };
    config.limits.session_queue = 65_536;
    twinwire::run::add_flag_users(&mut config, &[format!("{USER}:{PASSWORD}")]).expect("user");
    let running = twinwire::run::start(config, false).await.expect("broker");
    let addr = running.addr;
    let http = reqwest::Client::new();
    // The things: one read by HTTP, one per WebSocket session.
    let sessions = 32;
    for i in 0..=sessions {
        let status = http
            .put(format!("http://{addr}/api/2/things/{NS}:bench-{i}"))
            .header("authorization", basic())
            .json(&json!({"attributes": {"n": 0, "location": "kitchen"}, "features": {"lamp": {"properties": {"on": false}}}}))
            .send()
            .await
            .expect("create")
            .status();
        assert!(status.is_success(), "{status}");
    }
    let thing_url = format!("http://{addr}/api/2/things/{NS}:bench-0");
    let bytes = http
        .get(&thing_url)
        .header("authorization", basic())
        .send()
        .await
        .expect("get")
        .bytes()
        .await
        .expect("body");
    // The baseline: the same bytes from a trivial handler on the same stack.
    let baseline = {
        let bytes = bytes.clone();
        let app = axum::Router::new().route(
            "/baseline",
            axum::routing::get(move || {
                let bytes = bytes.clone();
                async move { ([("content-type", "application/json")], bytes) }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let baseline_addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{baseline_addr}/baseline")
    };
    println!(
        "gateway on loopback: {rounds} rounds × {seconds} s, wrk -t2 -c{connections}; \
         a {}-byte thing; WebSocket clients in a second process",
        bytes.len()
    );
    let mut table: Vec<Measured> = [
        "HTTP baseline: trivial handler, same bytes",
        "HTTP GET /api/2/things/{id} (auth, policy, durable read)",
        "WebSocket retrieve round trips (baseline)",
        "WebSocket modify round trips (durable)",
        "live message round trips (requester → device → requester)",
    ]
    .into_iter()
    .map(|name| (name, Vec::new(), Vec::new(), Vec::new()))
    .collect();
    let exe = std::env::current_exe().expect("exe");
    for _ in 0..rounds {
        for (row, url, auth) in [(0, &baseline, false), (1, &thing_url, true)] {
            let (rps, p50, p99) = wrk(url, auth, connections, seconds);
            table[row].1.push(rps);
            table[row].2.push(p50);
            table[row].3.push(p99);
        }
        for (row, mode) in [(2, "retrieve"), (3, "modify"), (4, "message")] {
            let output = Command::new(&exe)
                .args([
                    "client",
                    mode,
                    &addr.to_string(),
                    &sessions.to_string(),
                    &seconds.to_string(),
                ])
                .output()
                .expect("client process");
            let text = String::from_utf8_lossy(&output.stdout);
            let figures: Value = serde_json::from_str(text.trim()).unwrap_or_else(|_| {
                panic!(
                    "client {mode}: {text} {}",
                    String::from_utf8_lossy(&output.stderr)
                )
            });
            table[row]
                .1
                .push(figures["per_second"].as_f64().unwrap_or(0.0));
            table[row].2.push(figures["p50_ms"].as_f64().unwrap_or(0.0));
            table[row].3.push(figures["p99_ms"].as_f64().unwrap_or(0.0));
        }
    }
    println!();
    println!(
        "{:<60} | {:>11} | {:>8} | {:>8} | {:>7}",
        "scenario", "per second", "p50 ms", "p99 ms", "x base"
    );
    println!("{}", "-".repeat(60 + 3 + 11 + 3 + 8 + 3 + 8 + 3 + 7));
    let medians: Vec<(f64, f64, f64)> = table
        .iter()
        .map(|(_, r, a, b)| (median(r), median(a), median(b)))
        .collect();
    let bases = [0, 0, 2, 2, 2];
    // twinwire-bench's rows: each of twinwire's figures beside its baseline's.
    let short = [
        "",
        "HTTP GET a thing (wrk)",
        "",
        "WebSocket modify round trips",
        "live message round trips",
    ];
    let base_names = ["trivial handler", "", "WebSocket retrieves"];
    let mut rows = Vec::new();
    for (i, (name, ..)) in table.iter().enumerate() {
        let (rps, p50, p99) = medians[i];
        println!(
            "{:<60} | {:>11.0} | {:>8.3} | {:>8.3} | {:>7.2}",
            name,
            rps,
            p50,
            p99,
            rps / medians[bases[i]].0
        );
        if bases[i] != i {
            let unit = if i == 1 {
                "requests/s"
            } else {
                "round trips/s"
            };
            rows.push(
                Row::new(short[i], unit, rps)
                    .baseline(base_names[bases[i]], medians[bases[i]].0)
                    .latency_ms(p50, p99),
            );
        }
    }
    running.stop().await.expect("stopped");
    report(&rows);
}

/// Runs wrk; requests/s, p50 and p99 in ms.
fn wrk(url: &str, auth: bool, connections: usize, seconds: usize) -> (f64, f64, f64) {
    let mut command = Command::new("wrk");
    command.args([
        "-t2",
        &format!("-c{connections}"),
        &format!("-d{seconds}s"),
        "--latency",
    ]);
    if auth {
        command.args(["-H", &format!("Authorization: {}", basic())]);
    }
    let output = command.arg(url).output().expect("wrk");
    let text = String::from_utf8_lossy(&output.stdout);
    let rps = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0.0);
    let percentile = |p: &str| {
        text.lines()
            .find_map(|l| l.trim().strip_prefix(p))
            .map(|v| parse_duration_ms(v.trim()))
            .unwrap_or(0.0)
    };
    if text.contains("Non-2xx") {
        eprintln!("wrk saw errors:\n{text}");
    }
    (rps, percentile("50%"), percentile("99%"))
}

/// wrk's `1.23ms`, `456.00us`, `1.02s`.
fn parse_duration_ms(v: &str) -> f64 {
    let (number, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (v, 1.0)
    };
    number.parse::<f64>().unwrap_or(0.0) * factor
}

// ------------------------------------------------------------------------------------------
// The client process.
// ------------------------------------------------------------------------------------------

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(addr: &str) -> Ws {
    let mut request = format!("ws://{addr}/ws/2")
        .into_client_request()
        .expect("request");
    request
        .headers_mut()
        .insert("authorization", basic().parse().expect("header"));
    tokio_tungstenite::connect_async(request)
        .await
        .expect("ws")
        .0
}

async fn text(ws: &mut Ws) -> String {
    loop {
        match ws.next().await {
            Some(Ok(Message::Text(t))) => return t.to_string(),
            Some(Ok(_)) => continue,
            other => panic!("session ended: {other:?}"),
        }
    }
}

fn client(args: &[String]) {
    let mode = args[0].clone();
    let addr = args[1].clone();
    let sessions: usize = args[2].parse().expect("sessions");
    let seconds: u64 = args[3].parse().expect("seconds");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        // The device answers every message.
        let mut device = None;
        if mode == "message" {
            let mut ws = connect(&addr).await;
            ws.send(Message::Text("START-SEND-MESSAGES".into())).await.expect("send");
            assert_eq!(text(&mut ws).await, "START-SEND-MESSAGES:ACK");
            device = Some(tokio::spawn(async move {
                loop {
                    let Some(Ok(Message::Text(t))) = ws.next().await else { break };
                    let Ok(m) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                    let reply = json!({
                        "topic": m["topic"], "path": m["path"].as_str().unwrap_or("/").replace("inbox", "outbox"),
                        "status": 200, "headers": {"correlation-id": m["headers"]["correlation-id"], "content-type": "application/json"},
                        "value": {"pong": m["value"]}
                    });
                    if ws.send(Message::Text(reply.to_string().into())).await.is_err() {
                        break;
                    }
                }
            }));
        }
        let deadline = Instant::now() + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for session in 0..sessions {
            let addr = addr.clone();
            let mode = mode.clone();
            tasks.push(tokio::spawn(async move {
                let mut ws = connect(&addr).await;
                let thing = format!("bench-{}", session + 1);
                let mut latencies = Vec::new();
                let mut n = 0u64;
                while Instant::now() < deadline {
                    n += 1;
                    let command = match mode.as_str() {
                        "modify" => json!({"topic": format!("{NS}/{thing}/things/twin/commands/modify"),
                            "headers": {"correlation-id": format!("{session}-{n}")}, "path": "/attributes/n", "value": n}),
                        "retrieve" => json!({"topic": format!("{NS}/{thing}/things/twin/commands/retrieve"),
                            "headers": {"correlation-id": format!("{session}-{n}")}, "path": "/attributes/n"}),
                        _ => json!({"topic": format!("{NS}/{thing}/things/live/messages/ping"),
                            "headers": {"correlation-id": format!("{session}-{n}"), "content-type": "application/json", "timeout": "10s"},
                            "path": "/inbox/messages/ping", "value": n}),
                    };
                    let started = Instant::now();
                    ws.send(Message::Text(command.to_string().into())).await.expect("send");
                    let reply: Value = serde_json::from_str(&text(&mut ws).await).expect("json");
                    let status = reply["status"].as_u64().unwrap_or(0);
                    assert!((200..300).contains(&status), "{reply}");
                    latencies.push(started.elapsed());
                }
                latencies
            }));
        }
        let started = Instant::now();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("session"));
        }
        let elapsed = started.elapsed().as_secs_f64();
        all.sort();
        let pick = |p: f64| ms(percentile(&all, p));
        println!(
            "{}",
            json!({"per_second": all.len() as f64 / elapsed, "p50_ms": pick(0.5), "p99_ms": pick(0.99)})
        );
        if let Some(device) = device {
            device.abort();
        }
    });
}
