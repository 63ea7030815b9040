//! Things: the twin engine's model and its command handling.
//!
//! - [`thing`]: a thing's state, changed only by applying events.
//! - [`event`]: thing events, applied, journaled and published in one shape.
//! - [`state`]: one command against one thing, pure: the answer or the event.
//! - [`json`]: pointer, merge-patch and field-selector surgery on JSON.

pub mod event;
pub mod json;
pub mod state;
pub mod thing;

pub use event::ThingEvent;
pub use state::{handle, Command, Outcome};
pub use thing::{Thing, ThingEntity};
