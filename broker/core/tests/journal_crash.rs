//! A real crash: a child process appends through the journal and reports each revision once its
//! `Durable` resolved; the parent kills it with SIGKILL mid-stream, reopens the store and checks
//! that every reported revision survived and that no entity has a gap.
//!
//! The child is this same test binary, started with `CHILD_ENV` set and filtered to run only
//! `crash_child_writer`, which does nothing when the variable is absent.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use twinwire_core::journal::{recover, EventStore, Journal, JournalConfig, RedbStore, StoredEvent};

/// Names the data directory the child writes to; its presence makes the child test act.
const CHILD_ENV: &str = "TWINWIRE_JOURNAL_CRASH_DIR";
/// Acknowledged events the parent waits for before it kills the child.
const ACKED_BEFORE_KILL: usize = 2_000;
/// Entities the child writes concurrently, one task each, like shards.
const ENTITIES: usize = 8;
/// Appends each child task keeps queued before awaiting the oldest, so that commits hold
/// several revisions of one entity and the kill can land between queued and durable.
const IN_FLIGHT: usize = 4;
/// Bound on the whole test, and on the child should the parent vanish without killing it.
const TEST_TIMEOUT: Duration = Duration::from_secs(120);
const DURABLE_PREFIX: &str = "durable ";

fn entity(i: usize) -> String {
    format!("thing:org.eclipse.ditto:crash-{i}")
}

#[test]
fn acknowledged_events_survive_sigkill() {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let exe = std::env::current_exe().expect("test binary");
    let mut child = KillOnDrop(
        Command::new(exe)
            .args([
                "crash_child_writer",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn child"),
    );
    let stdout = child.0.stdout.take().expect("child stdout");

    // Lines arrive on a thread so that the parent can give up on a silent child.
    let (lines_tx, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });

    let deadline = Instant::now() + TEST_TIMEOUT;
    let mut acked: HashMap<String, u64> = HashMap::new();
    let mut count = 0;
    while count < ACKED_BEFORE_KILL {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = match lines.recv_timeout(left) {
            Ok(line) => line,
            Err(error) => {
                panic!("child stopped reporting after {count} acknowledged events: {error}");
            }
        };
        let Some((name, revision)) = parse_durable(&line) else {
            continue; // libtest's own output
        };
        let highest = acked.entry(name.to_owned()).or_insert(0);
        // Each task reports in revision order; a regression here is a child bug, not a crash.
        assert_eq!(revision, *highest + 1, "{name} reported out of order");
        *highest = revision;
        count += 1;
    }

    assert!(
        child.0.try_wait().expect("child status").is_none(),
        "the child must still be writing when it is killed"
    );
    child.0.kill().expect("SIGKILL the child"); // std sends SIGKILL on Unix
    child.0.wait().expect("reap the child");
    // Whatever the child printed before dying still counts as acknowledged.
    reader.join().expect("reader thread");
    for line in lines.try_iter() {
        // Only whole lines of known entities: the kill may cut the last line short.
        if let Some((name, revision)) = parse_durable(&line) {
            if let Some(highest) = acked.get_mut(name) {
                *highest = (*highest).max(revision);
            }
        }
    }

    let store = RedbStore::open(dir.path()).expect("reopen after the crash");
    assert_eq!(acked.len(), ENTITIES, "every task got acknowledgements");
    let mut stored = 0;
    for (name, acked_up_to) in &acked {
        let last = store.last_revision(name).expect("last revision");
        stored += last;
        assert!(
            last >= *acked_up_to,
            "{name}: revision {acked_up_to} was acknowledged, the store ends at {last}"
        );
        // recover() fails on any gap; it must also start at revision 1.
        let recovery = recover(&store, name, u64::MAX).expect("gap-free journal");
        assert_eq!(recovery.revision(), last);
        assert_eq!(recovery.events.first().map(|e| e.revision), Some(1));
        for event in &recovery.events {
            assert_eq!(event.data, payload(name, event.revision), "{name}");
        }
    }
    // Events durable but not yet reported when the kill landed: expected, and allowed.
    let reported: u64 = acked.values().sum();
    eprintln!("acknowledged {reported} events, {stored} on disk after SIGKILL");
}

/// Kills the child if the parent fails early, so that no writer outlives the test.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `durable <entity> <revision>` as the child prints it. Searched for rather than expected at
/// the start, because libtest prints `test crash_child_writer ... ` without a newline first.
fn parse_durable(line: &str) -> Option<(&str, u64)> {
    let start = line.rfind(DURABLE_PREFIX)? + DURABLE_PREFIX.len();
    let (name, revision) = line[start..].split_once(' ')?;
    Some((name, revision.parse().ok()?))
}

/// The child: runs only when `CHILD_ENV` names a directory; appends until it is killed.
#[test]
fn crash_child_writer() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return; // an ordinary test run: this is only the child's entry point
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let store = Arc::new(RedbStore::open(dir).expect("open store"));
        let journal = Journal::start(store, JournalConfig::default()).expect("start journal");
        let tasks: Vec<_> = (0..ENTITIES)
            .map(|i| tokio::spawn(write_until_killed(journal.clone(), entity(i))))
            .collect();
        // Never reached in a good run: the parent kills the child long before.
        let _ = tokio::time::timeout(TEST_TIMEOUT, async {
            for task in tasks {
                let _ = task.await;
            }
        })
        .await;
    });
}

async fn write_until_killed(journal: Journal, name: String) {
    let mut queued = std::collections::VecDeque::new();
    let started = Instant::now();
    let mut revision = 0u64;
    while started.elapsed() < TEST_TIMEOUT {
        while queued.len() < IN_FLIGHT {
            revision += 1;
            let event = StoredEvent {
                entity: name.clone(),
                revision,
                timestamp_millis: revision as i64,
                data: payload(&name, revision),
            };
            queued.push_back((revision, journal.append(vec![event]).await));
        }
        let Some((acked, durable)) = queued.pop_front() else {
            continue;
        };
        durable.await.expect("durable");
        let mut out = std::io::stdout().lock();
        if writeln!(out, "{DURABLE_PREFIX}{name} {acked}")
            .and_then(|()| out.flush())
            .is_err()
        {
            return; // the parent is gone
        }
    }
}

/// Recognizable data of about 200 bytes, so that a torn or misplaced record would show.
fn payload(name: &str, revision: u64) -> Vec<u8> {
    let mut data =
        format!("{{\"thing\":\"{name}\",\"revision\":{revision},\"pad\":\"").into_bytes();
    data.resize(190, b'x');
    data.extend_from_slice(b"\"}");
    data
}
