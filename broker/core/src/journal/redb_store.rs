//! `RedbStore`: the embedded [`EventStore`], one redb file in the data directory, every commit
//! fsynced. It must not buffer writes of its own or report success before redb's commit returned.
//!
//! Tables, keyed by the entity first so that one entity's records are adjacent and ordered:
//!
//! | table       | key                | value                  |
//! |-------------|--------------------|------------------------|
//! | `events`    | (entity, revision) | (timestamp, data)      |
//! | `snapshots` | (entity, revision) | (timestamp, data)      |
//! | `meta`      | name               | u64 (`format_version`) |
//!
//! There is no timestamp index: [`EventStore::revision_at`] binary-searches an entity's events,
//! whose timestamps the shard keeps non-decreasing. An index `(entity, timestamp, revision)` was
//! measured: it doubles the B-tree pages each commit dirties (one per entity touched, per table),
//! which cost 25-35% of group-commit throughput, to speed up a rare historical query.

use super::{EventStore, JournalError, StoredEvent, StoredSnapshot};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use std::path::{Path, PathBuf};

const EVENTS: TableDefinition<(&str, u64), (i64, &[u8])> = TableDefinition::new("events");
const SNAPSHOTS: TableDefinition<(&str, u64), (i64, &[u8])> = TableDefinition::new("snapshots");
const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

const FORMAT_VERSION_KEY: &str = "format_version";
/// Bump when the table layout changes, so that an old build refuses a new file instead of
/// misreading it.
const FORMAT_VERSION: u64 = 1;

/// The embedded event store: `<data_dir>/journal.redb`.
///
/// redb takes an exclusive lock on the file, so one process at a time owns a data directory; a
/// second open fails with a store error rather than corrupting it. After a crash, opening
/// repairs the file to its last committed transaction, which may take a while on a large file.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
}

impl RedbStore {
    /// The file name inside the data directory.
    pub const FILE_NAME: &'static str = "journal.redb";

    /// Opens the store in `data_dir`, creating the directory and the file when missing.
    pub fn open(data_dir: impl AsRef<Path>) -> Result<RedbStore, JournalError> {
        Self::open_with_cache(data_dir, Self::DEFAULT_CACHE_BYTES)
    }

    /// redb's page cache. redb's own default (1 GiB) keeps every written page and dominated the
    /// broker's memory with a million things; the shards cache the things themselves, so the
    /// store's cache serves only recoveries and history.
    pub const DEFAULT_CACHE_BYTES: usize = 64 * 1024 * 1024;

    /// Opens (or creates) the store with a page cache of `cache_bytes`.
    pub fn open_with_cache(
        data_dir: impl AsRef<Path>,
        cache_bytes: usize,
    ) -> Result<RedbStore, JournalError> {
        std::fs::create_dir_all(data_dir.as_ref())?;
        let path = data_dir.as_ref().join(Self::FILE_NAME);
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(&path)?;
        let store = RedbStore { db, path };
        store.prepare()?;
        Ok(store)
    }

    /// The path of the redb file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the tables (so readers never meet a missing one) and checks the format version.
    fn prepare(&self) -> Result<(), JournalError> {
        let txn = self.begin_durable_write()?;
        {
            txn.open_table(EVENTS)?;
            txn.open_table(SNAPSHOTS)?;
            let mut meta = txn.open_table(META)?;
            let found = meta.get(FORMAT_VERSION_KEY)?.map(|v| v.value());
            match found {
                Some(FORMAT_VERSION) => {}
                Some(found) => {
                    return Err(JournalError::UnsupportedFormat {
                        found,
                        supported: FORMAT_VERSION,
                    })
                }
                None => {
                    meta.insert(FORMAT_VERSION_KEY, FORMAT_VERSION)?;
                }
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn begin_durable_write(&self) -> Result<WriteTransaction, JournalError> {
        let mut txn = self.db.begin_write()?;
        // Immediate is redb's default; it is set anyway because the journal's promise rests on
        // it: commit() returns only after fsync. redb's one-phase commit is crash safe (commit
        // slots carry checksums); two-phase commit only guards against an adversary choosing
        // the order pages reach the disk, and costs a second fsync per commit.
        txn.set_durability(Durability::Immediate)?;
        Ok(txn)
    }
}

impl EventStore for RedbStore {
    fn append(
        &self,
        events: &[StoredEvent],
        snapshots: &[StoredSnapshot],
    ) -> Result<(), JournalError> {
        let txn = self.begin_durable_write()?;
        {
            let mut table = txn.open_table(EVENTS)?;
            for event in events {
                let key = (event.entity.as_str(), event.revision);
                let previous =
                    table.insert(key, (event.timestamp_millis, event.data.as_slice()))?;
                if previous.is_some() {
                    // Returning drops `txn` uncommitted, which aborts it: nothing of this append
                    // is written, including the events before this one.
                    return Err(JournalError::Conflict {
                        entity: event.entity.clone(),
                        revision: event.revision,
                    });
                }
            }
            let mut table = txn.open_table(SNAPSHOTS)?;
            for snapshot in snapshots {
                let key = (snapshot.entity.as_str(), snapshot.revision);
                table.insert(key, (snapshot.timestamp_millis, snapshot.data.as_slice()))?;
            }
        }
        txn.commit()?;
        Ok(())
    }

    fn read_events(
        &self,
        entity: &str,
        from: u64,
        to: u64,
    ) -> Result<Vec<StoredEvent>, JournalError> {
        if from > to {
            return Ok(Vec::new());
        }
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let mut events = Vec::new();
        for entry in table.range((entity, from)..=(entity, to))? {
            let (key, value) = entry?;
            let (_, revision) = key.value();
            let (timestamp_millis, data) = value.value();
            events.push(StoredEvent {
                entity: entity.to_owned(),
                revision,
                timestamp_millis,
                data: data.to_vec(),
            });
        }
        Ok(events)
    }

    fn read_snapshot(
        &self,
        entity: &str,
        max_revision: u64,
    ) -> Result<Option<StoredSnapshot>, JournalError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(SNAPSHOTS)?;
        let newest = table
            .range((entity, 0)..=(entity, max_revision))?
            .next_back()
            .transpose()?;
        Ok(newest.map(|(key, value)| {
            let (_, revision) = key.value();
            let (timestamp_millis, data) = value.value();
            StoredSnapshot {
                entity: entity.to_owned(),
                revision,
                timestamp_millis,
                data: data.to_vec(),
            }
        }))
    }

    fn last_revision(&self, entity: &str) -> Result<u64, JournalError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let last = table
            .range((entity, 0)..=(entity, u64::MAX))?
            .next_back()
            .transpose()?;
        Ok(last.map_or(0, |(key, _)| key.value().1))
    }

    fn revision_at(
        &self,
        entity: &str,
        timestamp_millis: i64,
    ) -> Result<Option<u64>, JournalError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        // (revision, timestamp) of the first (or last) event with from <= revision <= to.
        let probe = |from: u64, to: u64, last: bool| -> Result<Option<(u64, i64)>, JournalError> {
            if from > to {
                return Ok(None);
            }
            let mut range = table.range((entity, from)..=(entity, to))?;
            let entry = if last {
                range.next_back()
            } else {
                range.next()
            };
            Ok(entry
                .transpose()?
                .map(|(key, value)| (key.value().1, value.value().0)))
        };
        let Some((first, first_time)) = probe(0, u64::MAX, false)? else {
            return Ok(None);
        };
        if first_time > timestamp_millis {
            return Ok(None);
        }
        let Some((last, last_time)) = probe(0, u64::MAX, true)? else {
            return Ok(Some(first));
        };
        if last_time <= timestamp_millis {
            return Ok(Some(last));
        }
        // Invariant: event `low` is at or before the time, event `high` after it. Revisions are
        // consecutive, so each probe halves the interval; should there be a gap, the probe takes
        // the nearest stored event inside it, which still shrinks the interval.
        let (mut low, mut high) = (first, last);
        while high - low > 1 {
            let middle = low + (high - low) / 2;
            let found = match probe(middle, high - 1, false)? {
                Some(found) => Some(found),
                None => probe(low + 1, middle - 1, true)?,
            };
            let Some((revision, time)) = found else {
                break; // no event between low and high
            };
            if time <= timestamp_millis {
                low = revision;
            } else {
                high = revision;
            }
        }
        Ok(Some(low))
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
