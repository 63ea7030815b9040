//! `JournalError`: why an append, a read or a recovery failed. Carries data, never formatted text.

use std::sync::Arc;

/// Why the journal or its store failed.
///
/// A store error is reported once, to the `Durable`s of the batch it hit, as [`Failed`]; every
/// later append gets [`Stopped`] with the same cause. Both share the cause through an `Arc`
/// because one failure answers many callers.
///
/// [`Failed`]: JournalError::Failed
/// [`Stopped`]: JournalError::Stopped
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum JournalError {
    /// The embedded store (redb) failed: I/O, corruption, a full disk.
    #[error("event store: {0}")]
    Redb(#[from] redb::Error),

    /// File system or thread trouble outside the store itself (data directory, writer thread).
    #[error("journal I/O: {0}")]
    Io(#[from] std::io::Error),

    /// An event with this revision is already stored: two writers for one entity, or a shard
    /// that lost track of its revision. Nothing of that append was written.
    #[error("revision {revision} of {entity} is already in the journal")]
    Conflict { entity: String, revision: u64 },

    /// The stored events of an entity are not consecutive where recovery expected them to be.
    #[error("the journal of {entity} has a gap: expected revision {expected}, found {found}")]
    Gap {
        entity: String,
        expected: u64,
        found: u64,
    },

    /// The data file was written by an incompatible version of the journal.
    #[error("journal format {found} is not supported (this build reads format {supported})")]
    UnsupportedFormat { found: u64, supported: u64 },

    /// A [`JournalConfig`](super::JournalConfig) value that cannot work, e.g. a zero capacity.
    #[error("invalid journal configuration: {0}")]
    InvalidConfig(&'static str),

    /// The group commit holding this append failed; none of it is known to be durable.
    #[error("journal write failed: {0}")]
    Failed(#[source] Arc<JournalError>),

    /// An earlier group commit failed, so the journal refuses appends (fail-stop).
    #[error("journal stopped after a failed write: {0}")]
    Stopped(#[source] Arc<JournalError>),

    /// The journal was shut down, or its writer thread is gone.
    #[error("journal is shut down")]
    Closed,
}

impl JournalError {
    /// True for the errors after which this journal accepts no more appends.
    pub fn is_fail_stop(&self) -> bool {
        matches!(self, JournalError::Failed(_) | JournalError::Stopped(_))
    }
}

// redb has one error type per operation; they all fold into `redb::Error`, so `?` works on any.
macro_rules! from_redb {
    ($($error:ty),* $(,)?) => {
        $(impl From<$error> for JournalError {
            fn from(error: $error) -> Self {
                JournalError::Redb(error.into())
            }
        })*
    };
}

from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::SetDurabilityError,
);
