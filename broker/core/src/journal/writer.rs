//! `Journal`: the handle shards append through, and the writer thread behind it that turns
//! whatever is queued into one group commit. The thread must not wait for more work once it has
//! some (no timers: batches come from concurrency alone) and must not panic on a store error.
//!
//! Design: a bounded tokio channel carries requests from async callers to one std thread. The
//! thread blocks for the first request, drains what else is already queued (up to the batch
//! bounds, see batch.rs), writes it all with one `EventStore::append`, then completes every
//! `Durable` of the batch. While it is in fsync, new requests pile up and form the next batch, so
//! the batch size follows the load: one event when idle, hundreds under contention. The thread is
//! a plain thread, not a tokio task, because the store blocks on fsync for milliseconds.

use super::batch::{Batch, Limits};
use super::{EventStore, JournalError, StoredEvent, StoredSnapshot};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};

/// Default capacity of the request queue, in requests (one append or one snapshot each).
///
/// Two default batches: while the writer commits one batch, the next can fill completely and a
/// burst still finds room. More buys no throughput (a commit takes at most one batch) and only
/// adds queueing latency and memory while the disk is the bottleneck. A full queue makes
/// `append` wait, which holds up the shard, whose full inbox in turn pushes back on connections.
pub const DEFAULT_QUEUE_CAPACITY: usize = 512;

/// Bounds of the journal. Defaults suit one SSD and events of a few hundred bytes.
#[derive(Debug, Clone)]
pub struct JournalConfig {
    /// Most records (events plus snapshots) in one group commit; default 256.
    ///
    /// Measured with redb on the development machine (fsync 0.17 ms): a commit of N events of
    /// different things costs about 0.2 ms plus 10-15 µs per event, as each event dirties its own
    /// B-tree leaf page. Throughput peaks between 128 and 256 events per commit (~90k events/s)
    /// and falls beyond, while the commit keeps growing (~14 ms at 1024), so a bigger batch only
    /// delays its first waiter. One append larger than this is written alone, never split.
    pub max_batch_events: usize,
    /// Most bytes (data plus keys, roughly) in one group commit; default 4 MiB. Bounds the
    /// memory and write time (a few ms at SSD speed) of one transaction when events or snapshots
    /// are large, where the record count alone would let a batch grow to hundreds of MB.
    pub max_batch_bytes: usize,
    /// Capacity of the request queue; see [`DEFAULT_QUEUE_CAPACITY`].
    pub queue_capacity: usize,
}

impl Default for JournalConfig {
    fn default() -> Self {
        JournalConfig {
            max_batch_events: 256,
            max_batch_bytes: 4 * 1024 * 1024,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }
}

type Completion = oneshot::Sender<Result<(), JournalError>>;

enum Request {
    /// One append: all of its events go into the same commit. Empty for a flush.
    Events {
        events: Vec<StoredEvent>,
        done: Completion,
    },
    Snapshot(StoredSnapshot),
    /// Write everything queued before, then stop; answers after the thread let go of the store.
    Shutdown(Completion),
}

/// State the handles and the writer thread share.
struct Shared {
    /// Set once, by the writer, when a commit failed. Handles check it to refuse appends
    /// without queueing; the writer checks it to refuse what was queued before they could.
    failure: OnceLock<Arc<JournalError>>,
}

/// The durable event journal: a cheap, cloneable handle to the writer thread.
///
/// Appends are committed in queue order. The events of one entity must be appended by one task
/// at a time (the shard that owns it), which is what makes queue order their revision order.
///
/// # Fail-stop
///
/// When a group commit fails, every `Durable` of that batch resolves to
/// [`JournalError::Failed`] and the journal refuses every later append with
/// [`JournalError::Stopped`], for good. The shards' in-memory state is then ahead of the disk:
/// their failed events were applied but not written. Continuing would let a later revision of a
/// thing reach disk after a missing earlier one, a gap that recovery could not replay across.
/// The way out is a restart, which recovers every thing to its last persisted revision.
///
/// Dropping every handle lets the writer finish what is queued and exit; [`shutdown`] does the
/// same and waits for it.
///
/// [`shutdown`]: Journal::shutdown
///
/// ```
/// # use std::sync::Arc;
/// # use twinwire_core::journal::{Journal, JournalConfig, JournalError, RedbStore, StoredEvent};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), JournalError> {
/// # let dir = tempfile::tempdir()?;
/// let store = Arc::new(RedbStore::open(dir.path())?);
/// let journal = Journal::start(store, JournalConfig::default())?;
/// let event = StoredEvent {
///     entity: "thing:org.eclipse.ditto:fancy-thing".to_owned(),
///     revision: 1,
///     timestamp_millis: 1_700_000_000_000,
///     data: br#"{"topic":"org.eclipse.ditto/fancy-thing/things/twin/events/created"}"#.to_vec(),
/// };
/// let durable = journal.append(vec![event]).await; // queued: the shard may go on
/// durable.await?; // fsynced: twin-persisted may be issued
/// assert_eq!(journal.store().last_revision("thing:org.eclipse.ditto:fancy-thing")?, 1);
/// journal.shutdown().await
/// # }
/// ```
#[derive(Clone)]
pub struct Journal {
    requests: mpsc::Sender<Request>,
    store: Arc<dyn EventStore>,
    shared: Arc<Shared>,
}

impl Journal {
    /// Spawns the writer thread, which owns the store's write path from now on.
    ///
    /// Fails on a configuration value of zero or when the thread cannot be spawned.
    pub fn start(
        store: Arc<dyn EventStore>,
        config: JournalConfig,
    ) -> Result<Journal, JournalError> {
        if config.queue_capacity == 0 {
            return Err(JournalError::InvalidConfig(
                "queue_capacity must be at least 1",
            ));
        }
        if config.max_batch_events == 0 || config.max_batch_bytes == 0 {
            return Err(JournalError::InvalidConfig(
                "max_batch_events and max_batch_bytes must be at least 1",
            ));
        }
        let limits = Limits {
            max_records: config.max_batch_events,
            max_bytes: config.max_batch_bytes,
        };
        let (requests, inbox) = mpsc::channel(config.queue_capacity);
        let shared = Arc::new(Shared {
            failure: OnceLock::new(),
        });
        let writer = Writer {
            store: Arc::clone(&store),
            shared: Arc::clone(&shared),
            limits,
        };
        std::thread::Builder::new()
            .name("twinwire-journal".to_owned())
            .spawn(move || writer.run(inbox))?;
        Ok(Journal {
            requests,
            store,
            shared,
        })
    }

    /// Why the journal stopped taking appends (a failed write: fail-stop), if it did.
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.get().map(|e| e.to_string())
    }

    /// Queues events (of one or several entities) for the next group commit, all or nothing.
    ///
    /// Returns once they are queued, waiting only while the queue is full (that is the push
    /// back). The returned [`Durable`] resolves `Ok` when they are fsynced, `Err` if the write
    /// failed or the journal has stopped. If this future is dropped before it returns, nothing
    /// was queued.
    pub async fn append(&self, events: Vec<StoredEvent>) -> Durable {
        if let Some(failure) = self.shared.failure.get() {
            return Durable::ready(Err(JournalError::Stopped(Arc::clone(failure))));
        }
        let (done, receiver) = oneshot::channel();
        match self.requests.send(Request::Events { events, done }).await {
            Ok(()) => Durable::waiting(receiver),
            Err(_) => Durable::ready(Err(JournalError::Closed)),
        }
    }

    /// Queues a snapshot behind every event queued before it: it is committed with them or
    /// after them, never before. Nobody waits for a snapshot to be durable, so there is no
    /// `Durable`; when the journal has stopped or closed it is dropped (the shard learns of the
    /// failure from its appends).
    pub async fn snapshot(&self, snapshot: StoredSnapshot) {
        if self.shared.failure.get().is_some() {
            return;
        }
        // A closed queue means shutdown: there is nobody left to tell and nothing to do.
        let _ = self.requests.send(Request::Snapshot(snapshot)).await;
    }

    /// Waits until everything queued before this call is durable (an empty append).
    pub async fn flush(&self) -> Result<(), JournalError> {
        self.append(Vec::new()).await.await
    }

    /// Writes everything queued before this call, stops the writer thread and waits until it
    /// has let go of the store. Appends through other handles then fail with
    /// [`JournalError::Closed`]. Returns the fail-stop error if the journal had stopped.
    pub async fn shutdown(self) -> Result<(), JournalError> {
        let (done, receiver) = oneshot::channel();
        if self.requests.send(Request::Shutdown(done)).await.is_err() {
            // Another handle shut the writer down already.
            return Err(JournalError::Closed);
        }
        receiver.await.unwrap_or(Err(JournalError::Closed))
    }

    /// The store, for reads. They go to it directly: redb serves readers concurrently with the
    /// writer, and each read sees whole commits only. Reads block on disk I/O.
    pub fn store(&self) -> &Arc<dyn EventStore> {
        &self.store
    }

    /// The state of `entity` to replay: its newest snapshot up to `up_to` and the events after
    /// it, checked for gaps. `up_to = u64::MAX` for the latest persisted revision, or a result
    /// of [`EventStore::revision_at`] for a historical one. Blocks on disk I/O.
    pub fn recover(&self, entity: &str, up_to: u64) -> Result<super::Recovery, JournalError> {
        super::recover(self.store.as_ref(), entity, up_to)
    }
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("stopped", &self.shared.failure.get().is_some())
            .finish_non_exhaustive()
    }
}

/// Resolves when the events of one append are durable (`Ok`), or will never be (`Err`).
///
/// Cheap (a oneshot receiver) and `Send`, so a shard can hand it to whoever issues the
/// twin-persisted acknowledgement. Dropping it does not cancel the write.
#[must_use = "a Durable is the only way to learn whether the events reached disk"]
pub struct Durable(DurableState);

enum DurableState {
    Waiting(oneshot::Receiver<Result<(), JournalError>>),
    /// Known without the writer (stopped or closed journal); `None` once taken.
    Ready(Option<Result<(), JournalError>>),
}

impl Durable {
    /// A `Durable` that is already resolved `Ok`: for a command that wrote nothing (a query, a
    /// refused command), so that callers can treat every command alike.
    pub fn ok() -> Durable {
        Durable::ready(Ok(()))
    }

    /// Runs `outcome` as a tokio task and resolves with its result. For work that must follow
    /// the outcome even if nobody awaits this `Durable` (a shard advancing its durable
    /// watermark). Must be called within a tokio runtime, like `tokio::spawn`.
    pub fn spawn<F>(outcome: F) -> Durable
    where
        F: Future<Output = Result<(), JournalError>> + Send + 'static,
    {
        let (done, receiver) = oneshot::channel();
        tokio::spawn(async move {
            // Nobody may be waiting any more; the work itself is done either way.
            let _ = done.send(outcome.await);
        });
        Durable::waiting(receiver)
    }

    fn waiting(receiver: oneshot::Receiver<Result<(), JournalError>>) -> Self {
        Durable(DurableState::Waiting(receiver))
    }

    fn ready(result: Result<(), JournalError>) -> Self {
        Durable(DurableState::Ready(Some(result)))
    }
}

impl Future for Durable {
    type Output = Result<(), JournalError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.get_mut().0 {
            // A dropped sender means the writer thread is gone without answering (it panicked):
            // the events are not known to be durable.
            DurableState::Waiting(receiver) => Pin::new(receiver)
                .poll(cx)
                .map(|answer| answer.unwrap_or(Err(JournalError::Closed))),
            // Polled again after completion: there is no second answer to give.
            DurableState::Ready(result) => {
                Poll::Ready(result.take().unwrap_or(Err(JournalError::Closed)))
            }
        }
    }
}

impl std::fmt::Debug for Durable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Durable")
    }
}

/// What one commit means for each of its waiters.
enum Outcome {
    Durable,
    Failed(Arc<JournalError>),
    Stopped(Arc<JournalError>),
}

impl Outcome {
    fn answer(&self) -> Result<(), JournalError> {
        match self {
            Outcome::Durable => Ok(()),
            Outcome::Failed(cause) => Err(JournalError::Failed(Arc::clone(cause))),
            Outcome::Stopped(cause) => Err(JournalError::Stopped(Arc::clone(cause))),
        }
    }
}

/// The writer thread's state: the only code that calls `EventStore::append`.
struct Writer {
    store: Arc<dyn EventStore>,
    shared: Arc<Shared>,
    limits: Limits,
}

impl Writer {
    fn run(self, mut inbox: mpsc::Receiver<Request>) {
        // A request that did not fit the previous batch; it opens the next one.
        let mut carried: Option<Request> = None;
        loop {
            let first = match carried.take() {
                Some(request) => request,
                None => match inbox.blocking_recv() {
                    Some(request) => request,
                    // Every handle is gone and the queue is drained.
                    None => return,
                },
            };
            let mut batch = Batch::new();
            let mut shutdown = None;
            let mut next = Some(first);
            // Fill from what is already queued; never wait for more.
            while let Some(request) = next.take() {
                match request {
                    Request::Shutdown(done) => {
                        shutdown = Some(done);
                        break;
                    }
                    Request::Events { events, done } => {
                        if !batch.fits_events(&events, self.limits) {
                            carried = Some(Request::Events { events, done });
                            break;
                        }
                        batch.push_events(events, done);
                    }
                    Request::Snapshot(snapshot) => {
                        if !batch.fits_snapshot(&snapshot, self.limits) {
                            carried = Some(Request::Snapshot(snapshot));
                            break;
                        }
                        batch.push_snapshot(snapshot);
                    }
                }
                next = inbox.try_recv().ok();
            }
            if !batch.is_empty() {
                self.commit(batch);
            }
            if let Some(done) = shutdown {
                self.stop(inbox, done);
                return;
            }
        }
    }

    /// Writes one batch and completes its waiters.
    fn commit(&self, batch: Batch<Completion>) {
        let records = batch.records();
        let bytes = batch.bytes();
        let (events, snapshots, waiters) = batch.into_parts();
        let outcome = if let Some(failure) = self.shared.failure.get() {
            Outcome::Stopped(Arc::clone(failure))
        } else if records == 0 {
            // Only flushes: everything before them was completed by earlier batches.
            Outcome::Durable
        } else {
            let started = std::time::Instant::now();
            let appended = self.store.append(&events, &snapshots);
            metrics::histogram!("twinwire_journal_commit_seconds")
                .record(started.elapsed().as_secs_f64());
            metrics::histogram!("twinwire_journal_batch_records").record(records as f64);
            match appended {
                Ok(()) => {
                    tracing::trace!(records, bytes, waiters = waiters.len(), "journal commit");
                    Outcome::Durable
                }
                Err(error) => {
                    tracing::error!(
                        error = %error,
                        records,
                        "journal write failed; the journal refuses further appends (fail-stop)"
                    );
                    let failure = Arc::new(error);
                    // Only this thread sets it, and only once: no store call follows a failure.
                    let _ = self.shared.failure.set(Arc::clone(&failure));
                    Outcome::Failed(failure)
                }
            }
        };
        for done in waiters {
            // The caller may have dropped its Durable; the write stands either way.
            let _ = done.send(outcome.answer());
        }
    }

    /// Refuses whatever was queued behind the shutdown, lets go of the store, then answers.
    fn stop(self, mut inbox: mpsc::Receiver<Request>, done: Completion) {
        inbox.close();
        while let Ok(request) = inbox.try_recv() {
            match request {
                Request::Events { done, .. } | Request::Shutdown(done) => {
                    let _ = done.send(Err(JournalError::Closed));
                }
                Request::Snapshot(_) => {}
            }
        }
        let result = match self.shared.failure.get() {
            Some(failure) => Err(JournalError::Stopped(Arc::clone(failure))),
            None => Ok(()),
        };
        drop(self.store);
        let _ = done.send(result);
    }
}
