//! The journal against a real redb file in a temporary directory: store reads and writes, group
//! commit, batch bounds, snapshot ordering, fail-stop, push back, shutdown and reopen.
//!
//! The wrapper stores below count or inject failures around a real `RedbStore`; nothing here is
//! a mock of the disk. The crash test (a killed writer process) is in journal_crash.rs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;
use twinwire_core::journal::{
    recover, Durable, EventStore, Journal, JournalConfig, JournalError, RedbStore, StoredEvent,
    StoredSnapshot,
};

/// Bound on every test, so a hang fails instead of stalling the run.
const TEST_TIMEOUT: Duration = Duration::from_secs(60);

/// On the disk the build uses (not a tmpfs /tmp), so fsync costs what it costs in production.
fn temp_dir() -> tempfile::TempDir {
    tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir")
}

fn build_event(entity: &str, revision: u64, timestamp_millis: i64) -> StoredEvent {
    StoredEvent {
        entity: entity.to_owned(),
        revision,
        timestamp_millis,
        data: format!("{{\"revision\":{revision}}}").into_bytes(),
    }
}

fn build_snapshot(entity: &str, revision: u64) -> StoredSnapshot {
    StoredSnapshot {
        entity: entity.to_owned(),
        revision,
        timestamp_millis: revision as i64,
        data: format!("state at {revision}").into_bytes(),
    }
}

fn revisions(events: &[StoredEvent]) -> Vec<u64> {
    events.iter().map(|e| e.revision).collect()
}

async fn bounded<F: std::future::Future>(future: F) -> F::Output {
    tokio::time::timeout(TEST_TIMEOUT, future)
        .await
        .expect("test took longer than its bound")
}

/// Counts store appends and records how many records each carried.
struct CountingStore {
    inner: RedbStore,
    batches: Mutex<Vec<usize>>,
}

impl CountingStore {
    fn new(inner: RedbStore) -> Self {
        CountingStore {
            inner,
            batches: Mutex::new(Vec::new()),
        }
    }

    fn batches(&self) -> Vec<usize> {
        self.batches.lock().expect("lock").clone()
    }
}

impl EventStore for CountingStore {
    fn append(&self, events: &[StoredEvent], snaps: &[StoredSnapshot]) -> Result<(), JournalError> {
        // A poisoned lock only means another test thread panicked; the count is still good.
        self.batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(events.len() + snaps.len());
        self.inner.append(events, snaps)
    }
    fn read_events(&self, e: &str, from: u64, to: u64) -> Result<Vec<StoredEvent>, JournalError> {
        self.inner.read_events(e, from, to)
    }
    fn read_snapshot(&self, e: &str, max: u64) -> Result<Option<StoredSnapshot>, JournalError> {
        self.inner.read_snapshot(e, max)
    }
    fn last_revision(&self, e: &str) -> Result<u64, JournalError> {
        self.inner.last_revision(e)
    }
    fn revision_at(&self, e: &str, t: i64) -> Result<Option<u64>, JournalError> {
        self.inner.revision_at(e, t)
    }
}

/// Fails the append call with index `fail_call` (0-based) once, without touching the disk.
struct FailingStore {
    inner: RedbStore,
    calls: AtomicUsize,
    fail_call: usize,
}

impl EventStore for FailingStore {
    fn append(&self, events: &[StoredEvent], snaps: &[StoredSnapshot]) -> Result<(), JournalError> {
        if self.calls.fetch_add(1, Ordering::SeqCst) == self.fail_call {
            return Err(JournalError::Io(std::io::Error::other("injected failure")));
        }
        self.inner.append(events, snaps)
    }
    fn read_events(&self, e: &str, from: u64, to: u64) -> Result<Vec<StoredEvent>, JournalError> {
        self.inner.read_events(e, from, to)
    }
    fn read_snapshot(&self, e: &str, max: u64) -> Result<Option<StoredSnapshot>, JournalError> {
        self.inner.read_snapshot(e, max)
    }
    fn last_revision(&self, e: &str) -> Result<u64, JournalError> {
        self.inner.last_revision(e)
    }
    fn revision_at(&self, e: &str, t: i64) -> Result<Option<u64>, JournalError> {
        self.inner.revision_at(e, t)
    }
}

/// Checks, at every append, that each snapshot's events up to its revision are on disk already
/// or in the same append; counts violations.
struct SnapshotOrderStore {
    inner: RedbStore,
    violations: AtomicUsize,
    snapshots_seen: AtomicUsize,
}

impl EventStore for SnapshotOrderStore {
    fn append(&self, events: &[StoredEvent], snaps: &[StoredSnapshot]) -> Result<(), JournalError> {
        for snapshot in snaps {
            self.snapshots_seen.fetch_add(1, Ordering::SeqCst);
            let on_disk = self.inner.last_revision(&snapshot.entity)?;
            let in_batch = events
                .iter()
                .filter(|e| e.entity == snapshot.entity)
                .map(|e| e.revision)
                .max()
                .unwrap_or(0);
            if on_disk.max(in_batch) < snapshot.revision {
                self.violations.fetch_add(1, Ordering::SeqCst);
            }
        }
        self.inner.append(events, snaps)
    }
    fn read_events(&self, e: &str, from: u64, to: u64) -> Result<Vec<StoredEvent>, JournalError> {
        self.inner.read_events(e, from, to)
    }
    fn read_snapshot(&self, e: &str, max: u64) -> Result<Option<StoredSnapshot>, JournalError> {
        self.inner.read_snapshot(e, max)
    }
    fn last_revision(&self, e: &str) -> Result<u64, JournalError> {
        self.inner.last_revision(e)
    }
    fn revision_at(&self, e: &str, t: i64) -> Result<Option<u64>, JournalError> {
        self.inner.revision_at(e, t)
    }
}

/// Holds every append until the gate is opened, to keep the writer busy on purpose.
struct GatedStore {
    inner: RedbStore,
    open: Mutex<bool>,
    opened: Condvar,
    entered: AtomicUsize,
}

impl GatedStore {
    fn open_gate(&self) {
        *self.open.lock().expect("lock") = true;
        self.opened.notify_all();
    }
}

impl EventStore for GatedStore {
    fn append(&self, events: &[StoredEvent], snaps: &[StoredSnapshot]) -> Result<(), JournalError> {
        self.entered.fetch_add(1, Ordering::SeqCst);
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        while !*open {
            let (guard, _) = self
                .opened
                .wait_timeout(open, TEST_TIMEOUT)
                .unwrap_or_else(PoisonError::into_inner);
            open = guard;
        }
        drop(open);
        self.inner.append(events, snaps)
    }
    fn read_events(&self, e: &str, from: u64, to: u64) -> Result<Vec<StoredEvent>, JournalError> {
        self.inner.read_events(e, from, to)
    }
    fn read_snapshot(&self, e: &str, max: u64) -> Result<Option<StoredSnapshot>, JournalError> {
        self.inner.read_snapshot(e, max)
    }
    fn last_revision(&self, e: &str) -> Result<u64, JournalError> {
        self.inner.last_revision(e)
    }
    fn revision_at(&self, e: &str, t: i64) -> Result<Option<u64>, JournalError> {
        self.inner.revision_at(e, t)
    }
}

const A: &str = "thing:org.eclipse.ditto:a";
/// A prefix of `A` as a string: must not see A's records, nor A see its.
const AB: &str = "thing:org.eclipse.ditto:ab";

#[test]
fn store_reads_events_snapshots_and_revisions() {
    let dir = temp_dir();
    let store = RedbStore::open(dir.path()).expect("open");
    let a: Vec<_> = (1..=5).map(|r| build_event(A, r, r as i64 * 100)).collect();
    let ab: Vec<_> = (1..=2).map(|r| build_event(AB, r, 1)).collect();
    store.append(&a, &[build_snapshot(A, 3)]).expect("append a");
    store.append(&ab, &[]).expect("append ab");

    assert_eq!(store.read_events(A, 1, 5).expect("read"), a);
    assert_eq!(
        revisions(&store.read_events(A, 2, 3).expect("read")),
        [2, 3]
    );
    assert_eq!(
        revisions(&store.read_events(A, 4, u64::MAX).expect("read")),
        [4, 5]
    );
    assert!(store.read_events(A, 4, 3).expect("read").is_empty());
    assert_eq!(
        revisions(&store.read_events(AB, 0, u64::MAX).expect("read")),
        [1, 2]
    );
    assert!(store
        .read_events("thing:x:none", 0, u64::MAX)
        .expect("read")
        .is_empty());

    assert_eq!(store.last_revision(A).expect("last"), 5);
    assert_eq!(store.last_revision(AB).expect("last"), 2);
    assert_eq!(store.last_revision("thing:x:none").expect("last"), 0);

    assert_eq!(store.read_snapshot(A, 2).expect("snapshot"), None);
    assert_eq!(
        store.read_snapshot(A, 3).expect("snapshot"),
        Some(build_snapshot(A, 3))
    );
    assert_eq!(
        store.read_snapshot(A, u64::MAX).expect("snapshot"),
        Some(build_snapshot(A, 3))
    );
    assert_eq!(store.read_snapshot(AB, u64::MAX).expect("snapshot"), None);

    assert_eq!(store.revision_at(A, 99).expect("at"), None);
    assert_eq!(store.revision_at(A, 100).expect("at"), Some(1));
    assert_eq!(store.revision_at(A, 250).expect("at"), Some(2));
    assert_eq!(store.revision_at(A, i64::MAX).expect("at"), Some(5));
    assert_eq!(store.revision_at(AB, 1).expect("at"), Some(2));
    assert_eq!(
        store.revision_at("thing:x:none", i64::MAX).expect("at"),
        None
    );
}

#[test]
fn revision_at_finds_the_last_event_at_or_before_a_time() {
    let dir = temp_dir();
    let store = RedbStore::open(dir.path()).expect("open");
    // Non-decreasing with repeats, as a shard stamps commands that arrive within one millisecond.
    let time = |revision: u64| (revision / 3) as i64 * 10;
    let events: Vec<_> = (1..=1000).map(|r| build_event(A, r, time(r))).collect();
    store.append(&events, &[]).expect("append");
    for t in [-1, 0, 1, 9, 10, 15, 20, 1234, 3329, 3330, 3333, 99_999] {
        let expected = events
            .iter()
            .filter(|e| e.timestamp_millis <= t)
            .map(|e| e.revision)
            .max();
        assert_eq!(store.revision_at(A, t).expect("at"), expected, "at {t}");
    }
    // A single event, and an entity whose history starts later (older events pruned).
    store
        .append(&[build_event(AB, 1, 50)], &[])
        .expect("append");
    assert_eq!(store.revision_at(AB, 49).expect("at"), None);
    assert_eq!(store.revision_at(AB, 50).expect("at"), Some(1));
    let c = "thing:org.eclipse.ditto:c";
    let later = [7, 8, 9, 12, 13].map(|r| build_event(c, r, r as i64));
    store.append(&later, &[]).expect("append");
    for (t, expected) in [
        (6, None),
        (7, Some(7)),
        (11, Some(9)),
        (12, Some(12)),
        (20, Some(13)),
    ] {
        assert_eq!(store.revision_at(c, t).expect("at"), expected, "at {t}");
    }
}

#[test]
fn a_stored_revision_is_never_overwritten_and_the_append_is_all_or_nothing() {
    let dir = temp_dir();
    let store = RedbStore::open(dir.path()).expect("open");
    store
        .append(&[build_event(A, 1, 1), build_event(A, 2, 2)], &[])
        .expect("append");
    let error = store
        .append(
            &[build_event(A, 3, 3), build_event(A, 2, 9)],
            &[build_snapshot(A, 3)],
        )
        .expect_err("revision 2 exists");
    assert!(
        matches!(&error, JournalError::Conflict { entity, revision: 2 } if entity == A),
        "{error:?}"
    );
    assert_eq!(store.last_revision(A).expect("last"), 2);
    assert_eq!(
        store.read_events(A, 2, 2).expect("read")[0].timestamp_millis,
        2
    );
    assert_eq!(store.read_snapshot(A, u64::MAX).expect("snapshot"), None);
}

#[test]
fn recovery_replays_from_the_snapshot_and_refuses_gaps() {
    let dir = temp_dir();
    let store = RedbStore::open(dir.path()).expect("open");
    let events: Vec<_> = (1..=6).map(|r| build_event(A, r, r as i64)).collect();
    store
        .append(&events, &[build_snapshot(A, 4)])
        .expect("append");

    let latest = recover(&store, A, u64::MAX).expect("recover");
    assert_eq!(latest.snapshot, Some(build_snapshot(A, 4)));
    assert_eq!(revisions(&latest.events), [5, 6]);
    assert_eq!(latest.revision(), 6);

    let historical = store.revision_at(A, 3).expect("at").expect("some");
    let at_three = recover(&store, A, historical).expect("recover");
    assert_eq!(at_three.snapshot, None);
    assert_eq!(revisions(&at_three.events), [1, 2, 3]);

    let nothing = recover(&store, "thing:x:none", u64::MAX).expect("recover");
    assert_eq!((nothing.revision(), nothing.snapshot), (0, None));

    store
        .append(&[build_event(AB, 1, 1), build_event(AB, 3, 3)], &[])
        .expect("append");
    let error = recover(&store, AB, u64::MAX).expect_err("gap");
    assert!(
        matches!(
            error,
            JournalError::Gap {
                expected: 2,
                found: 3,
                ..
            }
        ),
        "{error:?}"
    );
}

#[test]
fn a_second_open_of_the_same_directory_is_refused() {
    let dir = temp_dir();
    let _first = RedbStore::open(dir.path()).expect("open");
    let second = RedbStore::open(dir.path());
    assert!(matches!(second, Err(JournalError::Redb(_))), "{second:?}");
}

#[test]
fn zero_bounds_are_refused() {
    let dir = temp_dir();
    let store: Arc<dyn EventStore> = Arc::new(RedbStore::open(dir.path()).expect("open"));
    for config in [
        JournalConfig {
            queue_capacity: 0,
            ..JournalConfig::default()
        },
        JournalConfig {
            max_batch_events: 0,
            ..JournalConfig::default()
        },
        JournalConfig {
            max_batch_bytes: 0,
            ..JournalConfig::default()
        },
    ] {
        let result = Journal::start(Arc::clone(&store), config);
        assert!(matches!(result, Err(JournalError::InvalidConfig(_))));
    }
}

#[test]
fn durable_is_send_and_unpin() {
    fn assert_send_unpin<T: Send + Unpin + 'static>() {}
    assert_send_unpin::<Durable>();
    fn assert_clone_send_sync<T: Clone + Send + Sync + 'static>() {}
    assert_clone_send_sync::<Journal>();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ready_and_spawned_durables_resolve_with_their_outcome() {
    bounded(Durable::ok()).await.expect("ok");
    bounded(Durable::spawn(async { Ok(()) })).await.expect("ok");
    let error = bounded(Durable::spawn(async { Err(JournalError::Closed) }))
        .await
        .expect_err("the spawned outcome");
    assert!(matches!(error, JournalError::Closed), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_is_readable_once_durable() {
    let dir = temp_dir();
    let store = Arc::new(RedbStore::open(dir.path()).expect("open"));
    let journal = Journal::start(store, JournalConfig::default()).expect("start");
    let events = vec![
        build_event(A, 1, 10),
        build_event(A, 2, 20),
        build_event(AB, 1, 30),
    ];
    bounded(async {
        journal.append(events.clone()).await.await.expect("durable");
    })
    .await;
    let stored = journal.store().read_events(A, 0, u64::MAX).expect("read");
    assert_eq!(stored, events[..2]);
    assert_eq!(journal.store().last_revision(AB).expect("last"), 1);
    bounded(journal.shutdown()).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_group_commits() {
    const TASKS: usize = 1_000;
    let dir = temp_dir();
    let store = Arc::new(CountingStore::new(
        RedbStore::open(dir.path()).expect("open"),
    ));
    let journal = Journal::start(store.clone(), JournalConfig::default()).expect("start");
    let tasks: Vec<_> = (0..TASKS)
        .map(|i| {
            let journal = journal.clone();
            tokio::spawn(async move {
                let entity = format!("thing:group:{i}");
                journal.append(vec![build_event(&entity, 1, 1)]).await.await
            })
        })
        .collect();
    bounded(async {
        for task in tasks {
            task.await.expect("task").expect("durable");
        }
    })
    .await;

    let batches = store.batches();
    assert_eq!(batches.iter().sum::<usize>(), TASKS);
    // One fsync per append would be 1,000 calls. While the writer is in one fsync, the other
    // tasks queue up, so a handful of commits carry everything; 200 leaves room for a slow,
    // shared machine while still proving batching.
    assert!(
        batches.len() <= TASKS / 5,
        "{} store appends for {TASKS} concurrent appends: {batches:?}",
        batches.len()
    );
    for i in (0..TASKS).step_by(97) {
        let entity = format!("thing:group:{i}");
        assert_eq!(journal.store().last_revision(&entity).expect("last"), 1);
    }
    bounded(journal.shutdown()).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batches_respect_their_bounds_and_never_split_an_append() {
    let dir = temp_dir();
    let store = Arc::new(CountingStore::new(
        RedbStore::open(dir.path()).expect("open"),
    ));
    let config = JournalConfig {
        max_batch_events: 10,
        ..JournalConfig::default()
    };
    let journal = Journal::start(store.clone(), config).expect("start");
    let mut durables = Vec::new();
    for i in 0..200 {
        durables.push(journal.append(vec![build_event(A, i + 1, 0)]).await);
    }
    let big: Vec<_> = (1..=25).map(|r| build_event(AB, r, 0)).collect();
    durables.push(journal.append(big).await);
    bounded(async {
        for durable in durables {
            durable.await.expect("durable");
        }
    })
    .await;

    let batches = store.batches();
    assert_eq!(batches.iter().sum::<usize>(), 225);
    let oversized: Vec<_> = batches.iter().filter(|&&n| n > 10).collect();
    assert_eq!(oversized, [&25], "{batches:?}");
    assert_eq!(
        revisions(&journal.store().read_events(A, 0, u64::MAX).expect("read")),
        (1..=200).collect::<Vec<_>>()
    );
    bounded(journal.shutdown()).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_never_reaches_disk_before_its_events() {
    let dir = temp_dir();
    let store = Arc::new(SnapshotOrderStore {
        inner: RedbStore::open(dir.path()).expect("open"),
        violations: AtomicUsize::new(0),
        snapshots_seen: AtomicUsize::new(0),
    });
    // Small batches, so that events and their snapshot often land in different commits.
    let config = JournalConfig {
        max_batch_events: 3,
        ..JournalConfig::default()
    };
    let journal = Journal::start(store.clone(), config).expect("start");
    let shards: Vec<_> = (0..16)
        .map(|i| {
            let journal = journal.clone();
            tokio::spawn(async move {
                let entity = format!("thing:snap:{i}");
                let mut durables = Vec::new();
                for revision in 1..=40 {
                    let event = build_event(&entity, revision, revision as i64);
                    durables.push(journal.append(vec![event]).await);
                    if revision % 5 == 0 {
                        // Queued right behind its events, without waiting for them.
                        journal.snapshot(build_snapshot(&entity, revision)).await;
                    }
                }
                for durable in durables {
                    durable.await.expect("durable");
                }
            })
        })
        .collect();
    bounded(async {
        for shard in shards {
            shard.await.expect("shard");
        }
        journal.flush().await.expect("flush");
    })
    .await;
    assert_eq!(store.snapshots_seen.load(Ordering::SeqCst), 16 * 8);
    assert_eq!(store.violations.load(Ordering::SeqCst), 0);
    let latest = journal.recover("thing:snap:7", u64::MAX).expect("recover");
    assert_eq!(latest.snapshot.map(|s| s.revision), Some(40));
    assert!(latest.events.is_empty());
    bounded(journal.shutdown()).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_write_stops_the_journal() {
    let dir = temp_dir();
    let store = Arc::new(FailingStore {
        inner: RedbStore::open(dir.path()).expect("open"),
        calls: AtomicUsize::new(0),
        fail_call: 1,
    });
    let journal = Journal::start(store.clone(), JournalConfig::default()).expect("start");
    bounded(async {
        journal
            .append(vec![build_event(A, 1, 1)])
            .await
            .await
            .expect("first commit is durable");

        let failed = journal.append(vec![build_event(A, 2, 2)]).await;
        // Queued behind the failing events: must not be written on its own later.
        journal.snapshot(build_snapshot(A, 2)).await;
        let error = failed.await.expect_err("second commit fails");
        assert!(matches!(error, JournalError::Failed(_)), "{error:?}");
        assert!(error.is_fail_stop());

        let error = journal
            .append(vec![build_event(A, 3, 3)])
            .await
            .await
            .expect_err("stopped");
        assert!(matches!(error, JournalError::Stopped(_)), "{error:?}");
        let error = journal.flush().await.expect_err("stopped");
        assert!(matches!(error, JournalError::Stopped(_)), "{error:?}");
    })
    .await;

    // The store itself works again, but the journal made no call after the failure.
    assert_eq!(store.calls.load(Ordering::SeqCst), 2);
    assert_eq!(journal.store().last_revision(A).expect("last"), 1);
    assert_eq!(
        journal.store().read_snapshot(A, u64::MAX).expect("read"),
        None
    );
    let error = bounded(journal.shutdown()).await.expect_err("stopped");
    assert!(matches!(error, JournalError::Stopped(_)), "{error:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_makes_append_wait() {
    let dir = temp_dir();
    let store = Arc::new(GatedStore {
        inner: RedbStore::open(dir.path()).expect("open"),
        open: Mutex::new(false),
        opened: Condvar::new(),
        entered: AtomicUsize::new(0),
    });
    let config = JournalConfig {
        queue_capacity: 1,
        ..JournalConfig::default()
    };
    let journal = Journal::start(store.clone(), config).expect("start");

    let first = journal.append(vec![build_event(A, 1, 1)]).await;
    // Wait until the writer holds the first append inside the (gated) store.
    bounded(async {
        while store.entered.load(Ordering::SeqCst) == 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;
    let second = bounded(journal.append(vec![build_event(A, 2, 2)])).await;
    // The queue (capacity 1) holds the second append; the third must wait for room.
    let third = tokio::time::timeout(
        Duration::from_millis(200),
        journal.append(vec![build_event(A, 3, 3)]),
    )
    .await;
    assert!(
        third.is_err(),
        "append returned although the queue was full"
    );

    store.open_gate();
    let third = bounded(journal.append(vec![build_event(A, 3, 3)])).await;
    bounded(async {
        for durable in [first, second, third] {
            durable.await.expect("durable");
        }
    })
    .await;
    assert_eq!(journal.store().last_revision(A).expect("last"), 3);
    bounded(journal.shutdown()).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_still_writes_what_was_queued() {
    let dir = temp_dir();
    let store = Arc::new(RedbStore::open(dir.path()).expect("open"));
    let journal = Journal::start(store.clone(), JournalConfig::default()).expect("start");
    let mut durables = Vec::new();
    for revision in 1..=50 {
        durables.push(journal.append(vec![build_event(A, revision, 0)]).await);
    }
    drop(journal);
    bounded(async {
        for durable in durables {
            durable.await.expect("durable");
        }
    })
    .await;
    assert_eq!(store.last_revision(A).expect("last"), 50);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_shutdown_other_handles_are_refused() {
    let dir = temp_dir();
    let store = Arc::new(RedbStore::open(dir.path()).expect("open"));
    let journal = Journal::start(store, JournalConfig::default()).expect("start");
    let other = journal.clone();
    let queued = journal.append(vec![build_event(A, 1, 0)]).await;
    bounded(journal.shutdown()).await.expect("shutdown");
    bounded(queued)
        .await
        .expect("queued before shutdown: durable");
    let error = bounded(other.append(vec![build_event(A, 2, 0)]).await)
        .await
        .expect_err("closed");
    assert!(matches!(error, JournalError::Closed), "{error:?}");
    assert!(matches!(
        bounded(other.shutdown()).await,
        Err(JournalError::Closed)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reopening_finds_everything_that_was_durable() {
    let dir = temp_dir();
    {
        let store = Arc::new(RedbStore::open(dir.path()).expect("open"));
        let journal = Journal::start(store, JournalConfig::default()).expect("start");
        bounded(async {
            for revision in 1..=30u64 {
                let events = vec![
                    build_event(A, revision, revision as i64),
                    build_event(AB, revision, revision as i64),
                ];
                let durable = journal.append(events).await;
                if revision == 20 {
                    journal.snapshot(build_snapshot(A, 20)).await;
                }
                durable.await.expect("durable");
            }
        })
        .await;
        // Shutdown lets go of the writer's store; the last Arc goes with `journal`.
        bounded(journal.shutdown()).await.expect("shutdown");
    }
    let store = RedbStore::open(dir.path()).expect("reopen");
    let a = recover(&store, A, u64::MAX).expect("recover");
    assert_eq!(a.snapshot, Some(build_snapshot(A, 20)));
    assert_eq!(revisions(&a.events), (21..=30).collect::<Vec<_>>());
    let ab = recover(&store, AB, u64::MAX).expect("recover");
    assert_eq!(ab.snapshot, None);
    assert_eq!(ab.revision(), 30);
    assert_eq!(store.revision_at(AB, 15).expect("at"), Some(15));
}
