//! Payload mapping (docs/connectivity-mapping.md): transport messages into Ditto Protocol
//! signals and back, by the mappers a source or target names, in order.
//!
//! - `ditto`: the default, Ditto Protocol JSON both ways.
//! - `normalized`: outbound twin events as a sparse thing JSON with `_context`.
//! - `raw_message`: live message payloads to and from raw transport messages; everything else
//!   (and Ditto Protocol content) through the Ditto mapper.
//! - `implicit_thing_creation`: inbound, a createThing from a thing template.
//! - `update_twin`: inbound, a live thing-query response as a twin mergeThing.
//! - `connection_status`: inbound, Hono's `creation-time`/`ttd` as a `ConnectionStatus` feature.
//! - `options`: reading options (unknown ones are refused with
//!   `connectivity:message.mapper.config.invalid`), `content-type-blocklist`, JSON templates.

mod connection_status;
mod ditto;
mod implicit_thing_creation;
mod normalized;
mod options;
mod raw_message;
mod update_twin;

pub use connection_status::{
    ConnectionStatusMapper, DEFAULT_FEATURE_ID, DISTANT_FUTURE, FEATURE_DEFINITION,
};
pub use ditto::{DittoMapper, DITTO_CONTENT_TYPE};
pub use implicit_thing_creation::{ImplicitThingCreationMapper, ALLOW_POLICY_LOCKOUT_HEADER};
pub use normalized::NormalizedMapper;
pub use options::{mapper_config_invalid, MAPPER_CONFIG_INVALID};
pub use raw_message::{RawMessageMapper, DEFAULT_OUTGOING_CONTENT_TYPE};
pub use update_twin::{UpdateTwinWithLiveResponseMapper, CORRELATION_ID_SUFFIX};

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

    /// [`Mapper::inbound`] on behalf of `subject`, the first subject of the source's
    /// authorization context, which `{{ request:subjectId }}` in the options of
    /// `ImplicitThingCreation` and `UpdateTwinWithLiveResponse` resolves to. Mappers that do not
    /// use it need not implement it: by default it is [`Mapper::inbound`].
    fn inbound_as(
        &self,
        message: &ExternalMessage,
        subject: Option<&str>,
    ) -> Result<Vec<Envelope>, DittoError> {
        let _ = subject;
        self.inbound(message)
    }

    /// A signal as messages to publish.
    fn outbound(&self, signal: &Envelope) -> Result<Vec<ExternalMessage>, DittoError>;
}
