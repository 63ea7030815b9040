//! The durable event journal of the twin engine: shards hand it the events they produced, and it
//! reports the moment each batch is on disk (fsynced), which is when twin-persisted may be issued.
//!
//! It must not interpret events or snapshots (their bytes are opaque here), assign revisions (the
//! shard that owns a thing does), reorder what one caller appended, or report success before the
//! store has fsynced. It does not decide when to snapshot: the shard knows its state and does.
//!
//! - [`EventStore`]: the small storage trait, so that a shared database can replace the embedded
//!   store when one machine is outgrown.
//! - [`RedbStore`] (redb_store.rs): the embedded store, one redb file in a data directory.
//! - [`Journal`] (writer.rs): the cheap, cloneable handle; a dedicated writer thread owns the write
//!   path and turns whatever is queued into one group commit.
//! - batch.rs: which queued requests go into the next commit; no I/O, no channels.
//! - [`recover`] (recovery.rs): snapshot plus later events of one thing, checked for gaps.
//! - [`JournalError`] (error.rs).
//!
//! # Guarantees
//!
//! - A [`Durable`] resolves `Ok` only after the commit holding its events returned from fsync.
//! - One `append` is all or nothing; so is each group commit, which holds many appends.
//! - Appends are committed in queue order, so the events of one entity appended by one task
//!   reach disk in that order and without gaps: a later append never becomes durable without the
//!   earlier ones (they are in the same commit or an earlier one).
//! - A snapshot is committed with or after every event queued before it, never before.
//! - Fail-stop: after a failed commit the journal refuses every later append (see [`Journal`]).
//! - Not promised: that an event whose `Durable` failed, or was never awaited before a crash, is
//!   absent after a restart. An fsync that fails may still have written. A requester that got no
//!   twin-persisted acknowledgement must treat the outcome as unknown, as in Ditto.

pub mod appender;
mod batch;
mod error;
mod recovery;
mod redb_store;
mod writer;

pub use error::JournalError;
pub use recovery::{recover, Recovery};
pub use redb_store::RedbStore;
pub use writer::{Durable, Journal, JournalConfig, DEFAULT_QUEUE_CAPACITY};

/// One event as the journal stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The persistence id of the entity, e.g. `thing:org.eclipse.ditto:fancy-thing`.
    pub entity: String,
    /// Assigned by the shard that owns the entity: 1, 2, 3, … without gaps.
    pub revision: u64,
    /// When the shard applied the command (Unix epoch, milliseconds). The shard keeps these
    /// non-decreasing per entity, so that [`EventStore::revision_at`] finds a prefix of history.
    pub timestamp_millis: i64,
    /// The serialized event, opaque to the journal.
    pub data: Vec<u8>,
}

/// The full state of an entity at `revision`, so that recovery replays only later events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    pub entity: String,
    pub revision: u64,
    pub timestamp_millis: i64,
    /// The serialized state, opaque to the journal.
    pub data: Vec<u8>,
}

/// Where the journal keeps events and snapshots.
///
/// Only the journal's writer thread calls [`append`](EventStore::append), one call at a time;
/// the read methods may be called from any thread at any time, concurrently with an append, and
/// see either all of a committed append or none of it. Reads block on disk I/O.
pub trait EventStore: Send + Sync + 'static {
    /// Appends in one atomic write that is durable (fsynced) when this returns Ok; all or nothing.
    ///
    /// An event whose (entity, revision) is already stored fails the whole call with
    /// [`JournalError::Conflict`]: events are never overwritten. A snapshot with the revision of
    /// one already stored replaces it (it holds the same state).
    fn append(
        &self,
        events: &[StoredEvent],
        snapshots: &[StoredSnapshot],
    ) -> Result<(), JournalError>;

    /// Events of one entity with `from <= revision <= to`, ascending.
    fn read_events(
        &self,
        entity: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<StoredEvent>, JournalError>;

    /// The newest snapshot of an entity with `revision <= max_revision`.
    fn read_snapshot(
        &self,
        entity: &str,
        max_revision: u64,
    ) -> Result<Option<StoredSnapshot>, JournalError>;

    /// The highest event revision stored for an entity (0 when none).
    fn last_revision(&self, entity: &str) -> Result<u64, JournalError>;

    /// The highest revision whose event timestamp is `<= timestamp_millis` (for Ditto's
    /// `at-historical-timestamp`), if any. Exact when the entity's timestamps are non-decreasing,
    /// as [`StoredEvent::timestamp_millis`] asks of the shard.
    fn revision_at(&self, entity: &str, timestamp_millis: i64)
        -> Result<Option<u64>, JournalError>;
}
