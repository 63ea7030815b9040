//! Things: the twin engine's model and its command handling.
//!
//! - [`thing`]: a thing's state, changed only by applying events.
//! - [`event`]: thing events, applied, journaled and published in one shape.
//! - [`state`]: one command against one thing, pure: the answer or the event.
//! - [`enforce`]: which commands a subject may send and what of a thing it may read.
//! - [`errors`]: the not-found and not-modifiable errors of each thing resource.
//! - [`json`]: pointer, merge-patch and field-selector surgery on JSON.
//! - [`metadata`]: the put-, get- and delete-metadata headers.
//! - [`shard`]: the task owning a share of the things: apply, journal, cache, recover.
//! - [`publish`]: each shard's durable changes handed on in order to an [`EventSink`].
//! - [`engine`]: the handle routing each command to its shard.

pub mod enforce;
pub mod engine;
pub mod errors;
pub mod event;
pub mod json;
pub mod metadata;
pub mod publish;
pub mod shard;
pub mod state;
pub mod thing;

pub use engine::{EngineConfig, Submitted, ThingEngine};
pub use event::ThingEvent;
pub use publish::{EventSink, ThingChange};
pub use shard::Executed;
pub use state::{handle, Command, Outcome};
pub use thing::{Thing, ThingEntity};
