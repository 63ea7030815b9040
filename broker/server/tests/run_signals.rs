//! `twinwire run` as a process: it prints where it listens, serves, and on SIGTERM stops
//! accepting, finishes, flushes the journal and exits 0; what it acknowledged is there after a
//! restart on the same data directory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn start(data_dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_twinwire"))
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--user",
            "alice:wonderland",
            "--data-dir",
        ])
        .arg(data_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("twinwire run");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("first line");
    let addr = line
        .trim()
        .strip_prefix("twinwire listening on http://")
        .unwrap_or_else(|| panic!("unexpected first line: {line}"))
        .to_owned();
    (child, addr)
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    for _ in 0..200 {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    panic!("twinwire did not stop within 10 s of SIGTERM");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_and_keeps_what_was_acknowledged() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut child, addr) = start(dir.path());
    let http = reqwest::Client::new();
    let url = format!("http://{addr}/api/2/things/org.eclipse.ditto:kept");
    let created = http
        .put(&url)
        .basic_auth("alice", Some("wonderland"))
        .json(&serde_json::json!({"attributes": {"kept": true}}))
        .send()
        .await
        .expect("put");
    assert_eq!(created.status(), 201);
    assert!(terminate(&mut child).success(), "exit 0 on SIGTERM");
    let (mut child, addr) = start(dir.path());
    let url = format!("http://{addr}/api/2/things/org.eclipse.ditto:kept/attributes/kept");
    let kept = http
        .get(&url)
        .basic_auth("alice", Some("wonderland"))
        .send()
        .await
        .expect("get");
    assert_eq!(kept.status(), 200);
    assert_eq!(kept.text().await.expect("body"), "true");
    assert!(terminate(&mut child).success());
}
