//! Recovery of one entity: its newest snapshot and the events after it, as a shard needs them to
//! rebuild a thing after a restart or for a historical revision. Reads only; it must not repair.
//!
//! Entities are recovered one at a time, when their shard first needs them (as Ditto does when
//! a thing is first addressed), so a restart does not read the whole journal.

use super::{EventStore, JournalError, StoredEvent, StoredSnapshot};

/// What a shard replays to rebuild an entity: `snapshot` (if any), then `events` in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovery {
    pub snapshot: Option<StoredSnapshot>,
    /// Consecutive revisions, starting right after the snapshot's.
    pub events: Vec<StoredEvent>,
}

impl Recovery {
    /// The revision the entity has after replay; 0 when nothing is stored.
    pub fn revision(&self) -> u64 {
        match (self.events.last(), &self.snapshot) {
            (Some(event), _) => event.revision,
            (None, Some(snapshot)) => snapshot.revision,
            (None, None) => 0,
        }
    }
}

/// Reads the newest snapshot of `entity` with revision `<= up_to` and the events after it up to
/// `up_to`, and checks that they follow each other without a gap.
///
/// `up_to = u64::MAX` recovers the last persisted revision. A gap means events were lost or
/// written by someone who skipped revisions; replaying across it would build a state that never
/// existed, so it is an error ([`JournalError::Gap`]) rather than silently skipped.
pub fn recover(store: &dyn EventStore, entity: &str, up_to: u64) -> Result<Recovery, JournalError> {
    let snapshot = store.read_snapshot(entity, up_to)?;
    // Revisions start at 1 (0 means "nothing stored", as in `last_revision`).
    let mut expected = snapshot
        .as_ref()
        .map_or(1, |s| s.revision.saturating_add(1));
    let events = store.read_events(entity, expected, up_to)?;
    for event in &events {
        if event.revision != expected {
            return Err(JournalError::Gap {
                entity: entity.to_owned(),
                expected,
                found: event.revision,
            });
        }
        expected = expected.saturating_add(1);
    }
    Ok(Recovery { snapshot, events })
}
