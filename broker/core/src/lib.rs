//! twinwire-core: the broker core. It will hold things, policies, the journal, the router, pub/sub,
//! the acknowledgement collector, enrichment and connection pipelines; the twin engine issue starts it.
//! It builds on twinwire-protocol and never sees a transport's own message types.
//!
//! - [`journal`]: the durable event journal: group commit with fsync, snapshots, recovery.

pub use twinwire_protocol as protocol;

pub mod auth;
pub mod journal;
pub mod policies;
pub mod things;
