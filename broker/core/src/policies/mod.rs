//! Policies (docs/basic-policy.md): who may READ and WRITE which part of a thing, a policy or a
//! thing's messages.
//!
//! - [`policy`]: a policy's state, changed only by applying events, and the model's rules for
//!   its parts (subjects, resources, imports, references) in Ditto's form and errors.
//! - [`event`]: policy events, applied, journaled and published in one shape.
//! - [`state`]: one policy command against one policy, pure: the answer or the event.
//! - [`enforcer`]: a policy compiled for permission checks and READ filtering.

pub mod enforcer;
pub mod event;
pub mod policy;
pub mod state;
