//! Durable appends per second and append→durable latency of the journal for N concurrent
//! producers, beside a baseline of the raw store (`RedbStore::append` called directly with the
//! batch sizes the journal ended up using) and this disk's plain write+fsync latency.
//!
//! `cargo bench -p twinwire-core --bench journal`. Each producer is a tokio task appending one
//! ~200-byte event at a time to its own entity and awaiting its `Durable` before the next, as a
//! shard waiting for twin-persisted would. `TWINWIRE_BENCH_SECONDS` (default 3) sets each run's
//! length, `TWINWIRE_BENCH_PRODUCERS` (default `1,16,256`) the producer counts.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use twinwire_bench::{env_number, ms, percentile, report, Row};
use twinwire_core::journal::{
    EventStore, Journal, JournalConfig, JournalError, RedbStore, StoredEvent, StoredSnapshot,
};

const EVENT_BYTES: usize = 200;
const FSYNC_ROUNDS: usize = 500;

/// A RedbStore that remembers how many events each commit carried.
struct RecordingStore {
    inner: RedbStore,
    batches: Mutex<Vec<usize>>,
}

impl EventStore for RecordingStore {
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

fn event(producer: usize, revision: u64) -> StoredEvent {
    let entity = format!("thing:org.eclipse.ditto:bench-{producer}");
    let mut data = format!("{{\"topic\":\"org.eclipse.ditto/bench-{producer}/things/twin/events/modified\",\"revision\":{revision},\"value\":\"").into_bytes();
    data.resize(EVENT_BYTES - 2, b'x');
    data.extend_from_slice(b"\"}");
    StoredEvent {
        entity,
        revision,
        timestamp_millis: revision as i64,
        data,
    }
}

/// Plain write of EVENT_BYTES + fdatasync on a file in `dir`: the floor under every commit.
fn fsync_latency(dir: &Path) -> Vec<Duration> {
    let path = dir.join("fsync-probe");
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(&path)
        .expect("probe file");
    let mut latencies = Vec::with_capacity(FSYNC_ROUNDS);
    for _ in 0..FSYNC_ROUNDS {
        let start = Instant::now();
        file.write_all(&[b'x'; EVENT_BYTES]).expect("write");
        file.sync_data().expect("fdatasync");
        latencies.push(start.elapsed());
    }
    latencies.sort();
    latencies
}

struct JournalRun {
    events: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    batches: Vec<usize>,
}

fn run_journal(dir: &Path, producers: usize, length: Duration) -> JournalRun {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store = Arc::new(RecordingStore {
        inner: RedbStore::open(dir).expect("open store"),
        batches: Mutex::new(Vec::new()),
    });
    let journal = Journal::start(store.clone(), JournalConfig::default()).expect("start");
    let start = Instant::now();
    let latencies = runtime.block_on(async {
        let tasks: Vec<_> = (0..producers)
            .map(|producer| {
                let journal = journal.clone();
                tokio::spawn(async move {
                    let mut latencies = Vec::new();
                    let mut revision = 0;
                    while start.elapsed() < length {
                        revision += 1;
                        let begun = Instant::now();
                        journal
                            .append(vec![event(producer, revision)])
                            .await
                            .await
                            .expect("durable");
                        latencies.push(begun.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.expect("producer"));
        }
        journal.shutdown().await.expect("shutdown");
        all
    });
    let elapsed = start.elapsed();
    let mut latencies = latencies;
    latencies.sort();
    let batches = store.batches.lock().expect("lock").clone();
    JournalRun {
        events: latencies.len(),
        elapsed,
        latencies,
        batches,
    }
}

struct RawRun {
    events: usize,
    elapsed: Duration,
    commit_latencies: Vec<Duration>,
}

/// The same commits, issued back to back on one thread, with no queue, channel or wake-ups.
fn run_raw(dir: &Path, producers: usize, batches: &[usize]) -> RawRun {
    let store = RedbStore::open(dir).expect("open store");
    let mut revisions = vec![0u64; producers];
    let mut next_producer = 0;
    let mut commit_latencies = Vec::with_capacity(batches.len());
    let mut events = 0;
    let start = Instant::now();
    for &size in batches {
        let batch: Vec<_> = (0..size)
            .map(|_| {
                let producer = next_producer;
                next_producer = (next_producer + 1) % producers;
                revisions[producer] += 1;
                event(producer, revisions[producer])
            })
            .collect();
        let begun = Instant::now();
        store.append(&batch, &[]).expect("raw append");
        commit_latencies.push(begun.elapsed());
        events += size;
    }
    let elapsed = start.elapsed();
    commit_latencies.sort();
    RawRun {
        events,
        elapsed,
        commit_latencies,
    }
}

fn main() {
    let seconds: f64 = env_number("TWINWIRE_BENCH_SECONDS", 3.0);
    let producer_counts: Vec<usize> = std::env::var("TWINWIRE_BENCH_PRODUCERS")
        .unwrap_or_else(|_| "1,16,256".to_owned())
        .split(',')
        .filter_map(|v| v.trim().parse().ok())
        .collect();
    let length = Duration::from_secs_f64(seconds);
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");

    let fsync = fsync_latency(root.path());
    println!(
        "disk: write {EVENT_BYTES} B + fdatasync, {FSYNC_ROUNDS} rounds: p50 {:.3} ms, p99 {:.3} ms ({:.0} fsyncs/s at p50)",
        ms(percentile(&fsync, 0.5)),
        ms(percentile(&fsync, 0.99)),
        1.0 / percentile(&fsync, 0.5).as_secs_f64()
    );
    println!(
        "journal: {EVENT_BYTES} B events, one append per producer in flight, {seconds} s per run"
    );
    println!();
    println!(
        "{:>9} | {:>12} {:>9} {:>9} {:>8} {:>10} | {:>12} {:>14} {:>14}",
        "producers",
        "journal ev/s",
        "p50 ms",
        "p99 ms",
        "commits",
        "mean batch",
        "raw ev/s",
        "raw p50 ms/c",
        "raw p99 ms/c"
    );
    // The floor under every commit, for reading the rows below.
    let mut rows = vec![Row::new(
        format!("disk: write {EVENT_BYTES} B + fdatasync"),
        "fsyncs/s at p50",
        1.0 / percentile(&fsync, 0.5).as_secs_f64(),
    )
    .latency_ms(ms(percentile(&fsync, 0.5)), ms(percentile(&fsync, 0.99)))];
    for (i, &producers) in producer_counts.iter().enumerate() {
        let journal = run_journal(&root.path().join(format!("journal-{i}")), producers, length);
        let raw = run_raw(
            &root.path().join(format!("raw-{i}")),
            producers,
            &journal.batches,
        );
        let commits = journal.batches.len();
        let rate = journal.events as f64 / journal.elapsed.as_secs_f64();
        let raw_rate = raw.events as f64 / raw.elapsed.as_secs_f64();
        rows.push(
            Row::new(
                format!("{producers} producers, append → durable"),
                "events/s",
                rate,
            )
            .baseline("raw redb, same batches", raw_rate)
            .latency_ms(
                ms(percentile(&journal.latencies, 0.5)),
                ms(percentile(&journal.latencies, 0.99)),
            ),
        );
        println!(
            "{:>9} | {:>12.0} {:>9.3} {:>9.3} {:>8} {:>10.1} | {:>12.0} {:>14.3} {:>14.3}",
            producers,
            rate,
            ms(percentile(&journal.latencies, 0.5)),
            ms(percentile(&journal.latencies, 0.99)),
            commits,
            journal.events as f64 / commits.max(1) as f64,
            raw_rate,
            ms(percentile(&raw.commit_latencies, 0.5)),
            ms(percentile(&raw.commit_latencies, 0.99)),
        );
    }
    report(&rows);
}
