//! Acknowledgements (docs/basic-acknowledgements.md, docs/protocol-specification-acks.md): what a
//! command requests, who may issue which label, and the collection of acks into one answer.
//!
//! - [`request`](AckRequest): the labels, response and timeout a command requests, after the
//!   defaults and error rows of the header-interaction tables for HTTP, WebSocket and
//!   connections. Pure.
//! - [`declared`](DeclaredAcks): the labels subscribers declared (unique, connection-prefixed),
//!   the check of an ack's issuer, and which labels get weak acks after a fan-out. Pure.
//! - [`collector`](AckCollector): one request's slots and deadline, and [`AckTable`], the
//!   requests by correlation-id and entity; completion into the command's response, an error or
//!   the aggregated acks. Pure: time is a parameter.
//! - [`pending`](PendingAcks): the cloneable handle the broker uses, and [`AckWaiter`], the
//!   requester's future with the timeout. The only module that awaits.
//! - [`AckError`]: every refusal, with its Ditto error.
//!
//! Must not: see a transport's message types, or publish anything itself: callers deliver the
//! completions and errors.

mod collector;
mod declared;
mod error;
mod pending;
mod request;

pub use collector::{
    acks_from_envelope, timeout_ack, AckCollector, AckCompletion, AckKey, AckTable,
};
pub use declared::{weak_ack, AckIssuer, DeclaredAcks, WEAK_ACK_PAYLOAD};
pub use error::AckError;
pub use pending::{AckWaiter, PendingAcks};
pub use request::{is_built_in, AckRequest, Origin, Outcome, RequestKind, MAX_TIMEOUT};
