//! twinwire-protocol: the Ditto Protocol model, pure and without I/O.
//!
//! - [`topic`]: topic paths (`{namespace}/{name}/{group}/{channel}/{criterion}/{action}`).
//! - [`id`]: namespaces, names and namespaced IDs.
//! - [`headers`]: case-insensitive, order-keeping headers with typed access to the predefined ones.
//! - [`pointer`]: RFC 6901 JSON pointers, the envelope's `path`.
//! - [`envelope`]: the envelope, read from and written to JSON, with the size bound.
//! - [`signal`]: classification of an envelope into Ditto's signal type names.
//! - [`error`]: Ditto errors (status, code, message, description) and [`ProtocolError`].
//! - [`exceptions`]: the Ditto exceptions of the reference, as typed constructors.
//! - [`acks`]: acknowledgement labels and (aggregated) acknowledgement envelopes.
//! - [`rql`]: RQL conditions and filters, parsed and evaluated against a thing as Ditto does.

pub mod acks;
pub mod envelope;
pub mod error;
pub mod exceptions;
pub mod headers;
pub mod id;
pub mod pointer;
pub mod rql;
pub mod signal;
pub mod topic;

pub use acks::{AckLabel, Acknowledgement};
pub use envelope::{Envelope, DEFAULT_MAX_ENVELOPE_BYTES};
pub use error::{DittoError, ProtocolError};
pub use headers::Headers;
pub use id::{NamespacedId, PolicyId, ThingId};
pub use pointer::JsonPointer;
pub use signal::{SignalKind, SignalType};
pub use topic::{Channel, Criterion, Group, Topic};
