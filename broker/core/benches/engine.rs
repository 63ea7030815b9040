//! The twin engine end to end (issue 3, item 8): modify-attribute commands for many things
//! through `ThingEngine` with durable persistence, beside a baseline of the raw store writing the
//! same event bytes in the same batches, and resident memory for the things kept hot.
//!
//! `cargo bench -p twinwire-core --bench engine` (release). Things have the shape of Ditto's
//! benchmark (docs: 2023-10-09-ditto-benchmark): a definition, two attributes, one feature with
//! one property. One table row per scenario:
//!
//! 1. create N things, then modify one attribute of each, N commands a round, submitted in order
//!    through `ThingEngine::submit` and awaited concurrently with at most W in flight: commands/s
//!    and submit→durable p50/p99 (the median over the rounds);
//! 2. the same modifies paced at R/s: submit→durable p50/p99;
//! 3. the raw `RedbStore::append` with the same event bytes (`ThingEvent::encode`) in exactly the
//!    batches the journal committed in 1 (recorded by a counting wrapper store);
//! 4. RSS (VmRSS) per 100,000 things after 1, and after creating H hot things in a fresh
//!    process (this binary re-run as a child), plus the things alone, without engine or store.
//!
//! Environment: `TWINWIRE_BENCH_THINGS` (N, default 100000), `TWINWIRE_BENCH_HOT_THINGS`
//! (H, default 1000000; 0 skips), `TWINWIRE_BENCH_WINDOW` (W, 4096), `TWINWIRE_BENCH_ROUNDS`
//! (3), `TWINWIRE_BENCH_PACED_RATE` (R, 10000), `TWINWIRE_BENCH_PACED_SECONDS` (3, per round).
//! Data goes to a temporary directory under the target directory (a real disk, not tmpfs).

use lru::LruCache;

fn bench_auth() -> twinwire_core::auth::AuthContext {
    twinwire_core::auth::AuthContext::new(["pre-authenticated:bench"]).expect("subject")
}

/// The allocator the `twinwire` binary uses, so the figures are the broker's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use serde_json::{json, Value};
use std::collections::HashMap;
use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use twinwire_bench::{env_number, median, percentile, proc_bytes, report};
use twinwire_core::journal::{
    EventStore, Journal, JournalConfig, JournalError, RedbStore, StoredEvent, StoredSnapshot,
};
use twinwire_core::things::shard::journal_key;
use twinwire_core::things::{
    handle, Command, EngineConfig, Outcome, ThingEngine, ThingEntity, ThingEvent,
};
use twinwire_protocol::topic::{Channel, CommandAction, Criterion, EventAction, Group};
use twinwire_protocol::{Envelope, Headers, JsonPointer, ThingId, Topic};

const NAMESPACE: &str = "org.eclipse.ditto";
/// Set in a child process to the part it runs (`hot` or `model`).
const CHILD_ENV: &str = "TWINWIRE_BENCH_CHILD";
/// Same length and format as the shard's timestamps, for the raw baseline's event bytes.
const TIMESTAMP: &str = "2026-01-01T00:00:00.000Z";

struct Params {
    things: usize,
    hot_things: usize,
    window: usize,
    rounds: usize,
    paced_rate: f64,
    paced_seconds: f64,
}

impl Params {
    fn from_env() -> Params {
        Params {
            things: env_number("TWINWIRE_BENCH_THINGS", 100_000usize).max(1),
            hot_things: env_number("TWINWIRE_BENCH_HOT_THINGS", 1_000_000usize),
            window: env_number("TWINWIRE_BENCH_WINDOW", 4096usize).max(1),
            rounds: env_number("TWINWIRE_BENCH_ROUNDS", 3usize).max(1),
            paced_rate: env_number("TWINWIRE_BENCH_PACED_RATE", 10_000f64).max(1.0),
            paced_seconds: env_number("TWINWIRE_BENCH_PACED_SECONDS", 3f64).max(0.1),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Commands and events

/// The policy all bench things share, as a fleet of devices does; it grants the bench subject
/// READ and WRITE on them, so every command pays for a real permission check.
const SHARED_POLICY: &str = "bench-policy";

async fn create_shared_policy(engine: &ThingEngine) {
    let topic = Topic {
        namespace: NAMESPACE.to_owned(),
        name: SHARED_POLICY.to_owned(),
        group: Group::Policies,
        channel: Channel::None,
        criterion: Criterion::Commands(CommandAction::Create),
    };
    let mut envelope = Envelope::new(topic, Headers::new(), JsonPointer::root());
    let all = json!({"grant": ["READ", "WRITE"], "revoke": []});
    envelope.value = Some(json!({"entries": {"BENCH": {
        "subjects": {"pre-authenticated:bench": {"type": "bench"}},
        "resources": {"thing:/": all, "policy:/": all}
    }}}));
    let executed = engine.execute(envelope, &bench_auth()).await;
    executed
        .durable
        .await
        .expect("the shared policy is durable");
    assert_eq!(
        executed.response.status,
        Some(201),
        "{}",
        executed.response.to_json()
    );
}

fn thing_name(i: usize) -> String {
    format!("test-thing-{i}")
}

fn thing_id(i: usize) -> ThingId {
    ThingId::new(NAMESPACE, &thing_name(i)).expect("valid thing ID")
}

/// The thing of Ditto's benchmark, as its connection's thing template creates it.
fn thing_value(i: usize) -> Value {
    let id = format!("{NAMESPACE}:{}", thing_name(i));
    json!({
        "thingId": id,
        "policyId": format!("{NAMESPACE}:{SHARED_POLICY}"),
        "definition": "org.eclipse.ditto:coffeebrewer:0.1.0",
        "attributes": {"location": "test location", "model": "Speaking coffee machine"},
        "features": {"coffee-brewer": {"properties": {"brewed-coffees": 0}}}
    })
}

fn command(i: usize, action: CommandAction, path: &JsonPointer, value: Value) -> Envelope {
    let topic = Topic {
        namespace: NAMESPACE.to_owned(),
        name: thing_name(i),
        group: Group::Things,
        channel: Channel::Twin,
        criterion: Criterion::Commands(action),
    };
    let mut headers = Headers::new();
    headers.insert("correlation-id", format!("bench-{i}"));
    let mut envelope = Envelope::new(topic, headers, path.clone());
    envelope.value = Some(value);
    envelope
}

fn create_command(i: usize) -> Envelope {
    command(
        i,
        CommandAction::Create,
        &JsonPointer::root(),
        thing_value(i),
    )
}

fn location_path() -> JsonPointer {
    JsonPointer::parse("/attributes/location").expect("pointer")
}

/// The value the modify of `round` writes; the paced rounds count on from the unpaced ones.
fn location_value(round: usize) -> Value {
    Value::from(format!("test location {round}"))
}

/// The event the engine journals for `create_command(i)`, computed by the same handler.
fn created_event(i: usize) -> ThingEvent {
    let entity = ThingEntity::new(thing_id(i));
    let envelope = create_command(i);
    let command = Command::from_envelope(&envelope).expect("create command");
    match handle(&entity, command, TIMESTAMP) {
        Ok(Outcome::Changed { event, .. }) => *event,
        other => panic!("create was not a change: {other:?}"),
    }
}

/// The event the engine journals for the modify of `round` (revision `round + 1`).
fn modified_event(round: usize) -> ThingEvent {
    ThingEvent {
        action: EventAction::Modified,
        path: location_path(),
        value: Some(location_value(round)),
        revision: round as u64 + 1,
        timestamp: TIMESTAMP.to_owned(),
        metadata: None,
        headers: None,
    }
}

fn stored(i: usize, event: &ThingEvent) -> StoredEvent {
    StoredEvent {
        entity: journal_key(&thing_id(i)),
        revision: event.revision,
        timestamp_millis: 1_767_225_600_000,
        data: event.encode(),
    }
}

// ---------------------------------------------------------------------------------------------
// A store that records its commits

#[derive(Default)]
struct Commits {
    /// Records (events plus snapshots) of each store append, in order.
    records: Vec<usize>,
    /// Time spent inside `RedbStore::append`.
    busy: Duration,
}

impl Commits {
    fn mean_batch(&self) -> f64 {
        self.records.iter().sum::<usize>() as f64 / self.records.len().max(1) as f64
    }
}

struct CountingStore {
    inner: RedbStore,
    commits: Mutex<Commits>,
}

impl CountingStore {
    fn take(&self) -> Commits {
        std::mem::take(&mut *self.commits.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl EventStore for CountingStore {
    fn append(&self, events: &[StoredEvent], snaps: &[StoredSnapshot]) -> Result<(), JournalError> {
        let begun = Instant::now();
        let result = self.inner.append(events, snaps);
        let mut commits = self.commits.lock().unwrap_or_else(PoisonError::into_inner);
        commits.records.push(events.len() + snaps.len());
        commits.busy += begun.elapsed();
        result
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

// ---------------------------------------------------------------------------------------------
// Measuring

/// VmRSS (or another `/proc/self/status` field) in bytes.
fn proc_status(field: &str) -> u64 {
    proc_bytes("/proc/self/status", field).unwrap_or(0)
}

fn rss() -> u64 {
    proc_status("VmRSS")
}

/// CPU time of this process's threads so far, ns, summed by role: the tokio workers (shards,
/// and the tasks awaiting each command), the journal writer, and the rest (the main thread,
/// whose `block_on` runs the driver loop that builds and submits the commands).
#[derive(Clone, Copy, Default)]
struct Cpu {
    workers: u64,
    journal: u64,
    other: u64,
}

fn thread_cpu() -> Cpu {
    let mut cpu = Cpu::default();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return cpu;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let nanos: u64 = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|s| s.split_whitespace().next()?.parse().ok())
            .unwrap_or(0);
        match name.trim() {
            "tokio-rt-worker" => cpu.workers += nanos,
            n if n.starts_with("twinwire-journ") => cpu.journal += nanos,
            _ => cpu.other += nanos,
        }
    }
    cpu
}

impl Cpu {
    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            workers: self.workers.saturating_sub(before.workers),
            journal: self.journal.saturating_sub(before.journal),
            other: self.other.saturating_sub(before.other),
        }
    }

    /// "total µs per command (workers + journal + main)".
    fn per_command(self, commands: usize) -> String {
        let us = |ns: u64| ns as f64 / 1e3 / commands.max(1) as f64;
        format!(
            "CPU {:.1} µs/cmd (workers {:.1} + journal {:.1} + main {:.1})",
            us(self.workers + self.journal + self.other),
            us(self.workers),
            us(self.journal),
            us(self.other)
        )
    }
}

fn mib(bytes: f64) -> f64 {
    bytes / (1024.0 * 1024.0)
}

fn ms(nanos: u64) -> f64 {
    nanos as f64 / 1e6
}

/// Plain write + fdatasync on a file in `dir`: the floor under every commit.
fn fsync_p50(dir: &Path) -> Duration {
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(dir.join("fsync-probe"))
        .expect("probe file");
    let mut latencies: Vec<Duration> = (0..200)
        .map(|_| {
            let begun = Instant::now();
            file.write_all(&[b'x'; 200]).expect("write");
            file.sync_data().expect("fdatasync");
            begun.elapsed()
        })
        .collect();
    latencies.sort();
    latencies[latencies.len() / 2]
}

struct Run {
    commands: usize,
    elapsed: Duration,
    /// Submit→durable of every command, ns, sorted.
    latencies: Vec<u64>,
    /// Most a paced submit started after its due time.
    max_lag: Duration,
}

impl Run {
    fn rate(&self) -> f64 {
        self.commands as f64 / self.elapsed.as_secs_f64()
    }
    fn p50(&self) -> u64 {
        percentile(&self.latencies, 0.5)
    }
    fn p99(&self) -> u64 {
        percentile(&self.latencies, 0.99)
    }
}

/// Submits `n` commands in order (`make(0..n)`), each awaited in its own task, at most `window`
/// in flight, at `rate` per second when given. Every command must answer `status` and become
/// durable, or the run panics: a failure rate is not a throughput.
async fn drive(
    engine: &ThingEngine,
    n: usize,
    window: usize,
    rate: Option<f64>,
    status: u16,
    make: impl Fn(usize) -> Envelope,
) -> Run {
    let permits = Arc::new(Semaphore::new(window));
    let slots: Arc<[AtomicU64]> = (0..n).map(|_| AtomicU64::new(0)).collect();
    let first_failure: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let mut max_lag = Duration::ZERO;
    let start = Instant::now();
    for i in 0..n {
        if let Some(rate) = rate {
            let due = start + Duration::from_secs_f64(i as f64 / rate);
            let now = Instant::now();
            if due > now {
                tokio::time::sleep_until(due.into()).await;
            } else {
                max_lag = max_lag.max(now - due);
            }
        }
        let permit = Arc::clone(&permits)
            .acquire_owned()
            .await
            .expect("semaphore");
        let envelope = make(i);
        let begun = Instant::now();
        let submitted = engine.submit(envelope, &bench_auth()).await;
        let slots = Arc::clone(&slots);
        let first_failure = Arc::clone(&first_failure);
        tokio::spawn(async move {
            let executed = submitted.await;
            let answered = executed.response.status == Some(status);
            let durable = executed.durable.await;
            let nanos = begun.elapsed().as_nanos() as u64;
            if answered && durable.is_ok() {
                slots[i].store(nanos.max(1), Ordering::Relaxed);
            } else {
                let mut first = first_failure.lock().unwrap_or_else(PoisonError::into_inner);
                first.get_or_insert_with(|| {
                    format!("{} / durable {durable:?}", executed.response.to_json())
                });
            }
            drop(permit);
        });
    }
    let all = permits
        .acquire_many(window as u32)
        .await
        .expect("semaphore");
    let elapsed = start.elapsed();
    drop(all);
    if let Some(failure) = first_failure.lock().expect("lock").take() {
        panic!("a command failed: {failure}");
    }
    let mut latencies: Vec<u64> = slots.iter().map(|s| s.load(Ordering::Relaxed)).collect();
    latencies.sort_unstable();
    Run {
        commands: n,
        elapsed,
        latencies,
        max_lag,
    }
}

fn runtime() -> tokio::runtime::Runtime {
    // Worker threads default to the cores; the journal writer is one more (std) thread.
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// The engine with room for `max_things` in memory, of which `parsed` parsed (the rest compact).
fn start_engine(dir: &Path, max_things: usize, parsed: usize) -> (Arc<CountingStore>, ThingEngine) {
    let store = Arc::new(CountingStore {
        inner: RedbStore::open(dir).expect("open store"),
        commits: Mutex::new(Commits::default()),
    });
    let journal = Journal::start(store.clone(), JournalConfig::default()).expect("journal");
    let config = EngineConfig {
        max_things_in_memory: max_things.max(EngineConfig::default().max_things_in_memory),
        max_parsed_things: parsed,
        ..EngineConfig::default()
    };
    (store, ThingEngine::start(journal, config))
}

// ---------------------------------------------------------------------------------------------
// Scenarios 1 and 2: the engine; 4: its RSS

struct Round {
    run: Run,
    commits: Commits,
    cpu: Cpu,
}

struct EngineResults {
    create: Round,
    modify: Vec<Round>,
    paced: Vec<Round>,
    rss_empty: u64,
    rss_created: u64,
    rss_modified: u64,
    rss_after_paced: u64,
    file_bytes: u64,
}

fn run_engine(dir: &Path, p: &Params) -> EngineResults {
    let runtime = runtime();
    // The modify load's working set (every thing, round robin) is configured to stay parsed.
    let (store, engine) = runtime.block_on(async {
        let started = start_engine(dir, p.things, p.things);
        create_shared_policy(&started.1).await;
        started
    });
    let path = location_path();
    let results = runtime.block_on(async {
        let rss_empty = rss();
        let cpu = thread_cpu();
        let run = drive(&engine, p.things, p.window, None, 201, create_command).await;
        let create = Round {
            run,
            commits: store.take(),
            cpu: thread_cpu().since(cpu),
        };
        let rss_created = rss();
        eprintln!("  created {} things: {:.0}/s", p.things, create.run.rate());
        let mut modify = Vec::new();
        for round in 1..=p.rounds {
            let value = location_value(round);
            let cpu = thread_cpu();
            let run = drive(&engine, p.things, p.window, None, 204, |i| {
                command(i, CommandAction::Modify, &path, value.clone())
            })
            .await;
            eprintln!("  modify round {round}: {:.0}/s", run.rate());
            modify.push(Round {
                run,
                commits: store.take(),
                cpu: thread_cpu().since(cpu),
            });
        }
        let rss_modified = rss();
        let mut paced = Vec::new();
        let paced_commands = (p.paced_rate * p.paced_seconds).round() as usize;
        for round in 1..=p.rounds {
            let value = location_value(p.rounds + round);
            let offset = (round - 1) * paced_commands;
            let cpu = thread_cpu();
            let run = drive(
                &engine,
                paced_commands,
                p.window,
                Some(p.paced_rate),
                204,
                |i| {
                    let thing = (offset + i) % p.things;
                    command(thing, CommandAction::Modify, &path, value.clone())
                },
            )
            .await;
            eprintln!(
                "  paced round {round}: {:.0}/s, p99 {:.2} ms",
                run.rate(),
                ms(run.p99())
            );
            paced.push(Round {
                run,
                commits: store.take(),
                cpu: thread_cpu().since(cpu),
            });
        }
        let rss_after_paced = rss();
        engine.shutdown().await.expect("engine shutdown");
        (
            create,
            modify,
            paced,
            [rss_empty, rss_created, rss_modified, rss_after_paced],
        )
    });
    let (create, modify, paced, [rss_empty, rss_created, rss_modified, rss_after_paced]) = results;
    let file_bytes = std::fs::metadata(store.inner.path()).map_or(0, |m| m.len());
    EngineResults {
        create,
        modify,
        paced,
        rss_empty,
        rss_created,
        rss_modified,
        rss_after_paced,
        file_bytes,
    }
}

// ---------------------------------------------------------------------------------------------
// Scenario 3: the raw store

struct RawRun {
    events: usize,
    /// Time inside `RedbStore::append` only; the events are built before each call.
    busy: Duration,
    /// Per commit, ns, sorted.
    commits: Vec<u64>,
}

impl RawRun {
    fn rate(&self) -> f64 {
        self.events as f64 / self.busy.as_secs_f64()
    }
}

/// Appends `event(i)` for things 0, 1, 2, … in the batch sizes given.
fn raw_appends(
    store: &RedbStore,
    batches: &[usize],
    event: impl Fn(usize) -> StoredEvent,
) -> RawRun {
    let mut next = 0;
    let mut busy = Duration::ZERO;
    let mut commits = Vec::with_capacity(batches.len());
    for &size in batches {
        let batch: Vec<StoredEvent> = (next..next + size).map(&event).collect();
        next += size;
        let begun = Instant::now();
        store.append(&batch, &[]).expect("raw append");
        let took = begun.elapsed();
        busy += took;
        commits.push(took.as_nanos() as u64);
    }
    commits.sort_unstable();
    RawRun {
        events: next,
        busy,
        commits,
    }
}

/// The engine's commits replayed on a fresh store: the creates, then each modify round.
fn run_raw(dir: &Path, engine: &EngineResults) -> (RawRun, Vec<RawRun>) {
    let store = RedbStore::open(dir).expect("open raw store");
    let create = raw_appends(&store, &engine.create.commits.records, |i| {
        stored(i, &created_event(i))
    });
    let modify = engine
        .modify
        .iter()
        .enumerate()
        .map(|(index, round)| {
            let event = modified_event(index + 1);
            raw_appends(&store, &round.commits.records, |i| stored(i, &event))
        })
        .collect();
    (create, modify)
}

// ---------------------------------------------------------------------------------------------
// Children: the hot things, and the things alone

/// Creates the hot things through the engine in this (fresh) process and prints `RESULT`.
fn child_hot(p: &Params) {
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    let n = p.hot_things;
    let runtime = runtime();
    // Room for every thing even in the fullest shard: capacity is split evenly over the shards
    // and an ID hash fills them unevenly (a shard of 1M/16 things varies by ~±250).
    let capacity = n + n / 10;
    // The default parsed tier: the rest of the hot things are kept compact.
    let parsed = EngineConfig::default().max_parsed_things;
    let (store, engine) = runtime.block_on(async {
        let started = start_engine(root.path(), capacity, parsed);
        create_shared_policy(&started.1).await;
        started
    });
    let (run, rss_empty, rss_loaded) = runtime.block_on(async {
        let rss_empty = rss();
        let run = drive(&engine, n, p.window, None, 201, create_command).await;
        let rss_loaded = rss();
        engine.shutdown().await.expect("engine shutdown");
        (run, rss_empty, rss_loaded)
    });
    let commits = store.take();
    let file_bytes = std::fs::metadata(store.inner.path()).map_or(0, |m| m.len());
    println!(
        "RESULT things={n} rate={} p50={} p99={} rss_empty={rss_empty} rss_loaded={rss_loaded} \
         hwm={} commits={} mean_batch={} busy={} elapsed={} file_bytes={file_bytes}",
        run.rate(),
        run.p50(),
        run.p99(),
        proc_status("VmHWM"),
        commits.records.len(),
        commits.mean_batch(),
        commits.busy.as_secs_f64(),
        run.elapsed.as_secs_f64(),
    );
}

/// The same things as the engine holds them (entities built by the handler, in an LRU cache
/// keyed by ID), without engine, journal or store: the model's own memory.
fn child_model(p: &Params) {
    let n = p.hot_things.max(p.things);
    let before = rss();
    let mut cache = LruCache::unbounded();
    let mut json_bytes = 0;
    for i in 0..n {
        let id = thing_id(i);
        let mut entity = ThingEntity::new(id.clone());
        entity.apply(&created_event(i));
        if i == 0 {
            json_bytes = entity
                .thing
                .as_ref()
                .map_or(0, |t| Value::Object(t.json.clone()).to_string().len());
        }
        cache.push(id, entity);
    }
    let after = rss();
    println!(
        "RESULT things={n} rss_before={before} rss_after={after} json_bytes={json_bytes} len={} hwm={}",
        cache.len(),
        proc_status("VmHWM"),
    );
}

fn run_child(mode: &str) -> HashMap<String, f64> {
    let exe = std::env::current_exe().expect("current exe");
    let output = std::process::Command::new(exe)
        .env(CHILD_ENV, mode)
        .stderr(std::process::Stdio::inherit())
        .output()
        .expect("child process");
    assert!(output.status.success(), "child {mode} failed: {output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("child {mode} printed no RESULT: {stdout}"));
    line.split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .filter_map(|(k, v)| Some((k.to_owned(), v.parse().ok()?)))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Report

fn environment() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")
                .map(|r| r.trim_start_matches([' ', '\t', ':']).to_owned())
        })
        .unwrap_or_default();
    let memory = proc_bytes("/proc/meminfo", "MemTotal").unwrap_or(0);
    format!(
        "{cores} cores ({cpu}), {:.1} GiB RAM",
        mib(memory as f64) / 1024.0
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

struct Row {
    scenario: String,
    figure: String,
    baseline: String,
    ratio: String,
    p50: String,
    p99: String,
    rss: String,
}

fn dash() -> String {
    "-".to_owned()
}

fn print_table(rows: &[Row]) {
    println!(
        "{:<52} | {:>17} | {:>15} | {:>6} | {:>8} | {:>8} | {:>22}",
        "scenario", "figure", "baseline", "ratio", "p50 ms", "p99 ms", "RSS"
    );
    println!("{}", "-".repeat(52 + 17 + 15 + 6 + 8 + 8 + 22 + 18));
    for r in rows {
        println!(
            "{:<52} | {:>17} | {:>15} | {:>6} | {:>8} | {:>8} | {:>22}",
            r.scenario, r.figure, r.baseline, r.ratio, r.p50, r.p99, r.rss
        );
    }
}

fn main() {
    let p = Params::from_env();
    match std::env::var(CHILD_ENV).as_deref() {
        Ok("hot") => return child_hot(&p),
        Ok("model") => return child_model(&p),
        _ => {}
    }
    let root = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("temp dir");
    println!("environment: {}", environment());
    println!(
        "disk: write 200 B + fdatasync p50 {:.3} ms; load average at start {}",
        fsync_p50(root.path()).as_secs_f64() * 1e3,
        load_average()
    );
    println!(
        "parameters: things {} (TWINWIRE_BENCH_THINGS), hot things {} (TWINWIRE_BENCH_HOT_THINGS), \
         window {}, rounds {}, paced {}/s for {} s per round; EngineConfig and JournalConfig \
         defaults ({} shards, batch <= {} records) but scenario 1-2 keep all their things parsed \
         and scenario 4 keeps the default {} parsed, tokio multi-thread runtime with {} workers",
        p.things,
        p.hot_things,
        p.window,
        p.rounds,
        p.paced_rate,
        p.paced_seconds,
        EngineConfig::default().shards,
        JournalConfig::default().max_batch_events,
        EngineConfig::default().max_parsed_things,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    eprintln!("scenario 1-2: engine");
    let rss_process_start = rss();
    let engine = run_engine(&root.path().join("engine"), &p);
    eprintln!("scenario 3: raw store");
    let (raw_create, raw_modify) = run_raw(&root.path().join("raw"), &engine);
    let hot = (p.hot_things > 0).then(|| {
        eprintln!("scenario 4: {} hot things (child process)", p.hot_things);
        run_child("hot")
    });
    eprintln!("scenario 4: the things alone (child process)");
    let model = run_child("model");

    let n = p.things as f64;
    let per_100k = |bytes: f64, things: f64| mib(bytes) * 100_000.0 / things;
    let mut rows = Vec::new();

    // The rows of twinwire-bench's table: the figures of this one, in numbers.
    let mut reported = Vec::new();
    let create = &engine.create;
    reported.push(
        twinwire_bench::Row::new(
            format!("create {} things", p.things),
            "creates/s",
            create.run.rate(),
        )
        .baseline("raw redb, same batches", raw_create.rate())
        .latency_ms(ms(create.run.p50()), ms(create.run.p99())),
    );
    rows.push(Row {
        scenario: format!(
            "1. create {} things (engine, window {})",
            p.things, p.window
        ),
        figure: format!("{:.0} creates/s", create.run.rate()),
        baseline: format!("{:.0} ev/s", raw_create.rate()),
        ratio: format!("{:.2}", create.run.rate() / raw_create.rate()),
        p50: format!("{:.2}", ms(create.run.p50())),
        p99: format!("{:.2}", ms(create.run.p99())),
        rss: format!("{:.0} MiB", mib(engine.rss_created as f64)),
    });

    let rates: Vec<f64> = engine.modify.iter().map(|r| r.run.rate()).collect();
    let p50s: Vec<f64> = engine.modify.iter().map(|r| ms(r.run.p50())).collect();
    let p99s: Vec<f64> = engine.modify.iter().map(|r| ms(r.run.p99())).collect();
    let raw_rates: Vec<f64> = raw_modify.iter().map(RawRun::rate).collect();
    let modify_rate = median(&rates);
    let raw_rate = median(&raw_rates);
    reported.push(
        twinwire_bench::Row::new(
            format!("modify-attribute x{}, window {}", p.things, p.window),
            "commands/s",
            modify_rate,
        )
        .baseline("raw redb, same batches", raw_rate)
        .latency_ms(median(&p50s), median(&p99s)),
    );
    rows.push(Row {
        scenario: format!(
            "1. modify-attribute x{} (engine, window {}), median of {}",
            p.things, p.window, p.rounds
        ),
        figure: format!("{modify_rate:.0} cmd/s"),
        baseline: format!("{raw_rate:.0} ev/s"),
        ratio: format!("{:.2}", modify_rate / raw_rate),
        p50: format!("{:.2}", median(&p50s)),
        p99: format!("{:.2}", median(&p99s)),
        rss: format!("{:.0} MiB", mib(engine.rss_modified as f64)),
    });

    let paced_rates: Vec<f64> = engine.paced.iter().map(|r| r.run.rate()).collect();
    let paced_p50: Vec<f64> = engine.paced.iter().map(|r| ms(r.run.p50())).collect();
    let paced_p99: Vec<f64> = engine.paced.iter().map(|r| ms(r.run.p99())).collect();
    reported.push(
        twinwire_bench::Row::new(
            format!("modify-attribute paced {:.0}/s", p.paced_rate),
            "commands/s",
            median(&paced_rates),
        )
        .latency_ms(median(&paced_p50), median(&paced_p99)),
    );
    rows.push(Row {
        scenario: format!(
            "2. modify-attribute paced {:.0}/s, median of {}",
            p.paced_rate, p.rounds
        ),
        figure: format!("{:.0} cmd/s", median(&paced_rates)),
        baseline: dash(),
        ratio: dash(),
        p50: format!("{:.2}", median(&paced_p50)),
        p99: format!("{:.2}", median(&paced_p99)),
        rss: format!("{:.0} MiB", mib(engine.rss_after_paced as f64)),
    });

    let raw_p50: Vec<f64> = raw_modify
        .iter()
        .map(|r| ms(percentile(&r.commits, 0.5)))
        .collect();
    let raw_p99: Vec<f64> = raw_modify
        .iter()
        .map(|r| ms(percentile(&r.commits, 0.99)))
        .collect();
    let batches: Vec<f64> = engine
        .modify
        .iter()
        .map(|r| r.commits.mean_batch())
        .collect();
    rows.push(Row {
        scenario: format!(
            "3. raw RedbStore::append, same batches (mean {:.0})",
            median(&batches)
        ),
        figure: format!("{raw_rate:.0} ev/s"),
        baseline: dash(),
        ratio: dash(),
        p50: format!("{:.2}/c", median(&raw_p50)),
        p99: format!("{:.2}/c", median(&raw_p99)),
        rss: dash(),
    });

    let delta = engine.rss_modified.saturating_sub(engine.rss_empty) as f64;
    reported.push(twinwire_bench::Row::new(
        format!("RSS of {} things", p.things),
        "MiB/100k things",
        per_100k(delta, n),
    ));
    rows.push(Row {
        scenario: format!("4. RSS per 100,000 things after 1 ({} things)", p.things),
        figure: format!("{:.0} MiB/100k", per_100k(delta, n)),
        baseline: dash(),
        ratio: dash(),
        p50: dash(),
        p99: dash(),
        rss: format!(
            "+{:.0} of {:.0} MiB",
            mib(delta),
            mib(engine.rss_modified as f64)
        ),
    });

    if let Some(hot) = &hot {
        let things = hot["things"];
        let loaded = hot["rss_loaded"];
        let delta = loaded - hot["rss_empty"];
        reported.push(
            twinwire_bench::Row::new(
                format!("create {things:.0} hot things (fresh process)"),
                "creates/s",
                hot["rate"],
            )
            .latency_ms(ms(hot["p50"] as u64), ms(hot["p99"] as u64))
            .peak_rss(hot["hwm"] as u64),
        );
        reported.push(
            twinwire_bench::Row::new(
                format!("RSS of {things:.0} hot things"),
                "MiB/100k things",
                per_100k(delta, things),
            )
            .peak_rss(hot["hwm"] as u64),
        );
        rows.push(Row {
            scenario: format!("4. create {things:.0} hot things (engine, fresh process)"),
            figure: format!("{:.0} creates/s", hot["rate"]),
            baseline: dash(),
            ratio: dash(),
            p50: format!("{:.2}", ms(hot["p50"] as u64)),
            p99: format!("{:.2}", ms(hot["p99"] as u64)),
            rss: format!("{:.0} MiB", mib(loaded)),
        });
        rows.push(Row {
            scenario: format!("4. RSS per 100,000 of {things:.0} hot things"),
            figure: format!("{:.0} MiB/100k", per_100k(delta, things)),
            baseline: dash(),
            ratio: dash(),
            p50: dash(),
            p99: dash(),
            rss: format!("+{:.0} of {:.0} MiB", mib(delta), mib(loaded)),
        });
    }
    let model_things = model["things"];
    let model_delta = model["rss_after"] - model["rss_before"];
    reported.push(
        twinwire_bench::Row::new(
            format!("RSS of {model_things:.0} things alone (LRU, no engine)"),
            "MiB/100k things",
            per_100k(model_delta, model_things),
        )
        .peak_rss(model["hwm"] as u64),
    );
    rows.push(Row {
        scenario: format!("4. the things alone ({model_things:.0} in an LRU, no engine)"),
        figure: format!("{:.0} MiB/100k", per_100k(model_delta, model_things)),
        baseline: dash(),
        ratio: dash(),
        p50: dash(),
        p99: dash(),
        rss: format!("+{:.0} MiB", mib(model_delta)),
    });

    println!();
    print_table(&rows);
    println!(
        "figure: commands (or events) per second; baseline/ratio: the raw store with the same \
         event bytes in the same batches, and the engine's share of it; p50/p99: submit→durable \
         per command (row 3: per store commit); RSS: VmRSS of the process"
    );
    println!();
    println!("details:");
    let c = &engine.create;
    println!(
        "  create: {} commits, mean batch {:.1}, store busy {:.2} s of {:.2} s; raw: {:.2} s; {}",
        c.commits.records.len(),
        c.commits.mean_batch(),
        c.commits.busy.as_secs_f64(),
        c.run.elapsed.as_secs_f64(),
        raw_create.busy.as_secs_f64(),
        c.cpu.per_command(c.run.commands),
    );
    for (i, (round, raw)) in engine.modify.iter().zip(&raw_modify).enumerate() {
        println!(
            "  modify round {}: {:.0} cmd/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} commits, \
             mean batch {:.1}, store busy {:.2} s of {:.2} s | raw {:.0} ev/s, commit p50 {:.2} ms p99 {:.2} ms\n    {}",
            i + 1,
            round.run.rate(),
            ms(round.run.p50()),
            ms(round.run.p99()),
            ms(round.run.latencies.last().copied().unwrap_or(0)),
            round.commits.records.len(),
            round.commits.mean_batch(),
            round.commits.busy.as_secs_f64(),
            round.run.elapsed.as_secs_f64(),
            raw.rate(),
            ms(percentile(&raw.commits, 0.5)),
            ms(percentile(&raw.commits, 0.99)),
            round.cpu.per_command(round.run.commands),
        );
    }
    for (i, round) in engine.paced.iter().enumerate() {
        println!(
            "  paced round {}: {:.0} cmd/s, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms, latest submit {:.2} ms \
             behind schedule; {} commits, mean batch {:.1}; {}",
            i + 1,
            round.run.rate(),
            ms(round.run.p50()),
            ms(round.run.p99()),
            ms(round.run.latencies.last().copied().unwrap_or(0)),
            round.run.max_lag.as_secs_f64() * 1e3,
            round.commits.records.len(),
            round.commits.mean_batch(),
            round.cpu.per_command(round.run.commands),
        );
    }
    println!(
        "  RSS: process start {:.0} MiB, engine started {:.0}, after creates {:.0}, after modifies {:.0}, \
         after paced {:.0}; redb file {:.0} MiB (redb's cache keeps written pages, up to 1 GiB by default)",
        mib(rss_process_start as f64),
        mib(engine.rss_empty as f64),
        mib(engine.rss_created as f64),
        mib(engine.rss_modified as f64),
        mib(engine.rss_after_paced as f64),
        mib(engine.file_bytes as f64),
    );
    if let Some(hot) = &hot {
        println!(
            "  hot: {:.0} things, {:.1} s, {:.0} commits, mean batch {:.1}, store busy {:.1} s; RSS empty {:.0} MiB, \
             loaded {:.0} MiB, peak {:.0} MiB; redb file {:.0} MiB",
            hot["things"],
            hot["elapsed"],
            hot["commits"],
            hot["mean_batch"],
            hot["busy"],
            mib(hot["rss_empty"]),
            mib(hot["rss_loaded"]),
            mib(hot["hwm"]),
            mib(hot["file_bytes"]),
        );
    }
    println!(
        "  things alone: {:.0} bytes each in memory (RSS delta / things); the thing's JSON is {:.0} bytes",
        model_delta / model_things,
        model["json_bytes"],
    );
    println!("  load average at end {}", load_average());
    report(&reported);
}
