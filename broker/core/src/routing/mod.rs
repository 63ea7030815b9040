//! Signal routing: who gets which signal, and when a request counts as done.
//!
//! - [`pubsub`]: subscriptions and the indexed fan-out of events, live signals and
//!   announcements, each cut to what the subscriber may READ and enriched with extra fields.
//! - [`acks`]: acknowledgement requests, declared labels and the collector that aggregates acks.
//! - [`live`]: live requests waiting for a device's response, their timeouts and `use-twin`.
//! - [`settlement`]: the reference-counted settlement handle of a signal consumed from a source.
//! - [`announcements`]: connection opened/closed and policy subject deletion announcements.
//! - [`publisher`]: the hub with each subscriber's delivery queue; the engine's event sink.
//! - [`router`]: where every signal enters and is answered, tying the parts together.

pub mod acks;
pub mod announcements;
pub mod live;
pub mod publisher;
pub mod pubsub;
pub mod router;
pub mod settlement;

pub use router::{Answer, Consumed, Pending, Requester, Router};
