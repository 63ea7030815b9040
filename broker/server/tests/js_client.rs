//! Eclipse Ditto's official JavaScript client for Node.js against twinwire: `twinwire run`'s
//! server on a free port with a journal in a temp directory, and the script
//! `tests/js/ditto-client.test.mjs` driving it with `@eclipse-ditto/ditto-javascript-client-node`
//! (things, features and policies over HTTP, events over a WebSocket, live messages answered by a
//! WebSocket client, a custom acknowledgement issued over a WebSocket).
//!
//! Needs Node.js (18 or later; `NODE` names another binary than `node`) and the script's
//! dependencies: `npm ci --prefix tests/js` from the workspace root.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};
use twinwire::config::Config;
use twinwire::run;

const SCRIPT: &str = "ditto-client.test.mjs";
const CLIENT_PACKAGE: &str = "node_modules/@eclipse-ditto/ditto-javascript-client-node";
const TIMEOUT: Duration = Duration::from_secs(120);

fn js_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/js")
}

struct Outcome {
    status: Option<ExitStatus>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs `node <script>` in `dir` with `TWINWIRE_HOST=host`, killing it after `timeout`
/// (`status` is then `None`).
fn run_node(dir: &Path, host: &str, timeout: Duration) -> Outcome {
    let node = std::env::var("NODE").unwrap_or_else(|_| "node".to_owned());
    let started = Instant::now();
    let mut child = Command::new(&node)
        .arg(SCRIPT)
        .current_dir(dir)
        .env("TWINWIRE_HOST", host)
        .env("TWINWIRE_ALICE", "alice:wonderland")
        .env("TWINWIRE_BOB", "bob:builder")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("could not start `{node} {SCRIPT}` (is Node.js installed?): {e}")
        });
    let drain = |mut pipe: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for node") {
            break Some(status);
        }
        if started.elapsed() >= timeout {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Outcome {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ditto_javascript_client() {
    let dir = js_dir();
    assert!(
        dir.join(CLIENT_PACKAGE).is_dir(),
        "the Ditto JavaScript client is not installed in {}: run `npm ci --prefix tests/js` \
         from the workspace root first",
        dir.display()
    );

    let data = tempfile::tempdir().expect("temp dir");
    let mut config = Config {
        listen: "127.0.0.1:0".parse().expect("addr"),
        data_dir: Some(data.path().to_owned()),
        ..Config::default()
    };
    let users = ["alice:wonderland".to_owned(), "bob:builder".to_owned()];
    run::add_flag_users(&mut config, &users).expect("users");
    let running = run::start(config, false).await.expect("started");
    let host = running.addr.to_string();

    let outcome = tokio::task::spawn_blocking(move || run_node(&dir, &host, TIMEOUT))
        .await
        .expect("node runner");
    running.stop().await.expect("stopped");

    let report = format!(
        "--- stdout ---\n{}\n--- stderr ---\n{}",
        outcome.stdout.trim_end(),
        outcome.stderr.trim_end()
    );
    match outcome.status {
        None => panic!(
            "`node {SCRIPT}` did not finish within {} s and was killed\n{report}",
            TIMEOUT.as_secs()
        ),
        Some(status) => assert!(
            status.success(),
            "`node {SCRIPT}` failed ({status}) after {:.1} s\n{report}",
            outcome.elapsed.as_secs_f64()
        ),
    }
    assert!(
        outcome.stdout.contains("PASS"),
        "`node {SCRIPT}` exited 0 without reporting PASS\n{report}"
    );
}
