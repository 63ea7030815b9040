//! `RedbStore`: the embedded [`EventStore`], one redb file in the data directory, every commit
//! fsynced. It must not buffer writes of its own or report success before redb's commit returned.
//!
//! Tables, all keyed by the entity first so one entity's records are adjacent and ordered:
//!
//! | table         | key                           | value                  |
//! |---------------|-------------------------------|------------------------|
//! | `events`      | (entity, revision)            | (timestamp, data)      |
//! | `event_times` | (entity, timestamp, revision) | ()                     |
//! | `snapshots`   | (entity, revision)            | (timestamp, data)      |
//! | `meta`        | name                          | u64 (`format_version`) |
//!
//! `event_times` is an index that answers [`EventStore::revision_at`] with one B-tree seek
//! instead of a scan of the entity's history; it costs one small insert per event in the same
//! transaction, which is noise beside the fsync.

use super::{EventStore, JournalError, StoredEvent, StoredSnapshot};
use redb::{
    Database, Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use std::path::{Path, PathBuf};

const EVENTS: TableDefinition<(&str, u64), (i64, &[u8])> = TableDefinition::new("events");
const EVENT_TIMES: TableDefinition<(&str, i64, u64), ()> = TableDefinition::new("event_times");
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
        std::fs::create_dir_all(data_dir.as_ref())?;
        let path = data_dir.as_ref().join(Self::FILE_NAME);
        let db = Database::create(&path)?;
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
            txn.open_table(EVENT_TIMES)?;
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
            let mut times = txn.open_table(EVENT_TIMES)?;
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
                times.insert(
                    (
                        event.entity.as_str(),
                        event.timestamp_millis,
                        event.revision,
                    ),
                    (),
                )?;
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
        let times = txn.open_table(EVENT_TIMES)?;
        let newest = times
            .range((entity, i64::MIN, 0)..=(entity, timestamp_millis, u64::MAX))?
            .next_back()
            .transpose()?;
        Ok(newest.map(|(key, _)| key.value().2))
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}
