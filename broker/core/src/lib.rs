//! twinwire-core: the broker core. It will hold things, policies, the journal, the router, pub/sub,
//! the acknowledgement collector, enrichment and connection pipelines; the twin engine issue starts it.
//! It builds on twinwire-protocol and never sees a transport's own message types.
//!
//! - [`things`]: the thing model, its commands, and the sharded engine that owns the things.
//! - [`policies`]: the policy model, its commands, and the compiled enforcer.
//! - [`routing`]: pub/sub, acknowledgements and settlement (in progress).
//! - [`journal`]: the durable event journal: group commit with fsync, snapshots, recovery.
//! - [`auth`]: the authorization context (subjects) a command acts as.
//! - [`cache`]: bounded LRU caches that allocate as they fill.
//! - [`event`]: the event shape things and policies share: applied, journaled, published.
//! - `conditional`: if-match, if-none-match and if-equal, shared by things and policies.

pub use twinwire_protocol as protocol;

pub mod auth;
pub mod cache;
pub(crate) mod conditional;
pub mod connections;
pub mod event;
pub mod journal;
pub mod placeholders;
pub mod policies;
pub mod routing;
pub mod things;
