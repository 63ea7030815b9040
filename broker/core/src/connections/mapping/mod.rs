//! Payload mapping (docs/connectivity-mapping.md): transport messages into Ditto Protocol
//! signals and back, by the mappers a source or target names, in order.
//!
//! - `ditto`: the default, Ditto Protocol JSON both ways.
//! - `normalized`: outbound twin events as a sparse thing JSON with `_context`.

mod ditto;
mod normalized;

pub use ditto::{DittoMapper, DITTO_CONTENT_TYPE};
pub use normalized::NormalizedMapper;

use super::message::ExternalMessage;
use twinwire_protocol::{DittoError, Envelope};

/// At most this many signals from one message per mapper (Ditto's limit).
pub const MAX_MAPPED: usize = 10;

/// A payload mapper. Both directions may give several results, or none (the message is dropped).
pub trait Mapper: Send + Sync {
    /// The mapper's alias (`Ditto`, `Normalized`, …).
    fn alias(&self) -> &str;

    /// A consumed message as signals; `connectivity:message.mapping.failed` when it cannot be.
    fn inbound(&self, message: &ExternalMessage) -> Result<Vec<Envelope>, DittoError>;

    /// A signal as messages to publish.
    fn outbound(&self, signal: &Envelope) -> Result<Vec<ExternalMessage>, DittoError>;
}
