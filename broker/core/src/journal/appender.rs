//! One shard's side of the journal: it numbers the shard's appends and keeps a watermark of
//! those known durable, so a read can tell whether what it shows is on disk yet. Owned by one
//! shard task; the watermark is advanced by the tasks that wait for each append.

use super::{Durable, Journal, StoredEvent, StoredSnapshot};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use tokio::sync::oneshot;

#[derive(Debug)]
pub struct Appender {
    journal: Journal,
    /// Appends issued so far.
    appended: u64,
    /// Every append up to this number is durable.
    durable: Arc<AtomicU64>,
}

impl Appender {
    pub fn new(journal: Journal) -> Self {
        Appender {
            journal,
            appended: 0,
            durable: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The sequence number the next append will get: an entity records it as its last append.
    pub fn next_sequence(&self) -> u64 {
        self.appended + 1
    }

    /// Appends events (and a snapshot behind them); the `Durable` also advances the watermark.
    /// Appends of one shard complete in order (one writer), so the watermark only rises.
    pub async fn append(
        &mut self,
        events: Vec<StoredEvent>,
        snapshot: Option<StoredSnapshot>,
    ) -> Durable {
        self.append_telling(events, snapshot, None).await
    }

    /// [`append`](Self::append), also telling `tell` whether the events became durable: for a
    /// second party that must wait for them too (the shard's event publisher).
    pub async fn append_telling(
        &mut self,
        events: Vec<StoredEvent>,
        snapshot: Option<StoredSnapshot>,
        tell: Option<oneshot::Sender<bool>>,
    ) -> Durable {
        self.appended += 1;
        let sequence = self.appended;
        let durable = self.journal.append(events).await;
        if let Some(snapshot) = snapshot {
            self.journal.snapshot(snapshot).await;
        }
        let watermark = Arc::clone(&self.durable);
        Durable::spawn(async move {
            let result = durable.await;
            if result.is_ok() {
                watermark.fetch_max(sequence, Ordering::AcqRel);
            }
            if let Some(tell) = tell {
                // A publisher that stopped has nothing left to publish.
                let _ = tell.send(result.is_ok());
            }
            result
        })
    }

    /// A `Durable` for a read of an entity whose last append was `last_append`: ready when that
    /// is known durable, else the end of an empty append queued behind it.
    pub async fn durable_through(&self, last_append: u64) -> Durable {
        if self.durable.load(Ordering::Acquire) >= last_append {
            Durable::ok()
        } else {
            self.journal.append(Vec::new()).await
        }
    }
}
