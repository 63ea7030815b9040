//! The next group commit: which queued appends and snapshots go into it, within the batch bounds.
//! No I/O and no channels: the writer thread feeds it requests and writes what it holds.
//!
//! An append is never split across commits (it is one command's events, all or nothing), so a
//! single append larger than the bounds becomes a batch of its own. Order is kept: the writer
//! stops filling at the first request that does not fit and starts the next batch with it.

use super::{StoredEvent, StoredSnapshot};

/// What one record costs a batch beyond its data bytes: the key (entity, revision), the
/// timestamp and redb's per-entry overhead, roughly. Only used against `max_bytes`, so rough is
/// enough; it keeps a batch of tiny events from looking free.
const RECORD_OVERHEAD_BYTES: usize = 32;

#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub(super) max_records: usize,
    pub(super) max_bytes: usize,
}

/// Records for one store append, plus whoever waits for it (`W`: a completion sender in the
/// writer, anything in tests).
#[derive(Debug)]
pub(super) struct Batch<W> {
    events: Vec<StoredEvent>,
    snapshots: Vec<StoredSnapshot>,
    waiters: Vec<W>,
    bytes: usize,
}

impl<W> Batch<W> {
    pub(super) fn new() -> Self {
        Batch {
            events: Vec::new(),
            snapshots: Vec::new(),
            waiters: Vec::new(),
            bytes: 0,
        }
    }

    /// True when nothing has been pushed (no records and nobody waiting).
    pub(super) fn is_empty(&self) -> bool {
        self.waiters.is_empty() && self.records() == 0
    }

    pub(super) fn records(&self) -> usize {
        self.events.len() + self.snapshots.len()
    }

    pub(super) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether an append of `events` may join. An empty batch takes anything, so that an
    /// oversized append still gets written (alone).
    pub(super) fn fits_events(&self, events: &[StoredEvent], limits: Limits) -> bool {
        let bytes: usize = events.iter().map(event_bytes).sum();
        self.fits(events.len(), bytes, limits)
    }

    pub(super) fn fits_snapshot(&self, snapshot: &StoredSnapshot, limits: Limits) -> bool {
        self.fits(1, snapshot_bytes(snapshot), limits)
    }

    fn fits(&self, records: usize, bytes: usize, limits: Limits) -> bool {
        self.is_empty()
            || (self.records() + records <= limits.max_records
                && self.bytes + bytes <= limits.max_bytes)
    }

    /// Adds one append and its waiter. An empty append still gets a waiter: it resolves with
    /// this batch, which makes it a barrier behind everything queued before it (flush).
    pub(super) fn push_events(&mut self, events: Vec<StoredEvent>, waiter: W) {
        self.bytes += events.iter().map(event_bytes).sum::<usize>();
        self.events.extend(events);
        self.waiters.push(waiter);
    }

    pub(super) fn push_snapshot(&mut self, snapshot: StoredSnapshot) {
        self.bytes += snapshot_bytes(&snapshot);
        self.snapshots.push(snapshot);
    }

    /// The records for the store and the waiters to complete once it answered.
    pub(super) fn into_parts(self) -> (Vec<StoredEvent>, Vec<StoredSnapshot>, Vec<W>) {
        (self.events, self.snapshots, self.waiters)
    }
}

fn event_bytes(event: &StoredEvent) -> usize {
    event.entity.len() + event.data.len() + RECORD_OVERHEAD_BYTES
}

fn snapshot_bytes(snapshot: &StoredSnapshot) -> usize {
    snapshot.entity.len() + snapshot.data.len() + RECORD_OVERHEAD_BYTES
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_records: 3,
        max_bytes: 1000,
    };

    fn build_event(revision: u64, data_len: usize) -> StoredEvent {
        StoredEvent {
            entity: "thing:t:a".to_owned(),
            revision,
            timestamp_millis: 0,
            data: vec![0; data_len],
        }
    }

    fn build_snapshot(revision: u64, data_len: usize) -> StoredSnapshot {
        StoredSnapshot {
            entity: "thing:t:a".to_owned(),
            revision,
            timestamp_millis: 0,
            data: vec![0; data_len],
        }
    }

    #[test]
    fn empty_batch_takes_an_oversized_append_whole() {
        let mut batch: Batch<u32> = Batch::new();
        let events: Vec<_> = (1..=5).map(|r| build_event(r, 500)).collect();
        assert!(batch.fits_events(&events, LIMITS));
        batch.push_events(events, 1);
        assert_eq!(batch.records(), 5);
        assert!(!batch.fits_events(&[build_event(6, 0)], LIMITS));
        // Over the bound, not even a flush joins: it waits for the next batch.
        assert!(!batch.fits_events(&[], LIMITS));
    }

    #[test]
    fn record_bound_counts_events_and_snapshots() {
        let mut batch: Batch<u32> = Batch::new();
        batch.push_events(vec![build_event(1, 1), build_event(2, 1)], 1);
        let snapshot = build_snapshot(2, 1);
        assert!(batch.fits_snapshot(&snapshot, LIMITS));
        batch.push_snapshot(snapshot);
        assert!(!batch.fits_events(&[build_event(3, 1)], LIMITS));
        // An empty append (a flush) adds no records, so it still fits at the bound.
        assert!(batch.fits_events(&[], LIMITS));
    }

    #[test]
    fn byte_bound_includes_entity_and_overhead() {
        let mut batch: Batch<u32> = Batch::new();
        batch.push_events(vec![build_event(1, 400)], 1);
        assert_eq!(
            batch.bytes(),
            "thing:t:a".len() + 400 + RECORD_OVERHEAD_BYTES
        );
        assert!(batch.fits_events(&[build_event(2, 400)], LIMITS));
        batch.push_events(vec![build_event(2, 400)], 2);
        assert!(!batch.fits_events(&[build_event(3, 100)], LIMITS));
    }

    #[test]
    fn parts_keep_queue_order() {
        let mut batch: Batch<u32> = Batch::new();
        batch.push_events(vec![build_event(1, 0)], 10);
        batch.push_events(Vec::new(), 11);
        batch.push_snapshot(build_snapshot(1, 0));
        batch.push_events(vec![build_event(2, 0), build_event(3, 0)], 12);
        let (events, snapshots, waiters) = batch.into_parts();
        let revisions: Vec<u64> = events.iter().map(|e| e.revision).collect();
        assert_eq!(revisions, [1, 2, 3]);
        assert_eq!(snapshots.len(), 1);
        assert_eq!(waiters, [10, 11, 12]);
    }

    #[test]
    fn a_waiter_alone_makes_the_batch_non_empty() {
        let mut batch: Batch<u32> = Batch::new();
        assert!(batch.is_empty());
        batch.push_events(Vec::new(), 1);
        assert!(!batch.is_empty());
        assert_eq!(batch.records(), 0);
    }
}
