//! Policies (docs/basic-policy.md): who may READ and WRITE which part of a thing, a policy or a
//! thing's messages.
//!
//! - [`policy`]: a policy's state, changed only by applying events, and the model's rules for
//!   its parts (subjects, resources, imports, references) in Ditto's form and errors.
//! - [`event`]: policy events, applied, journaled and published in one shape.
//! - [`state`]: one policy command against one policy, pure: the answer or the event.
//! - [`enforcer`]: a policy compiled for permission checks and READ filtering.
//! - [`enforcers`]: the cache of compiled policies shared by all shards, and the policy command rules.
//! - [`announce`]: which subjects are announced before their expiry or on deletion.
//! - [`shard`]: the task owning a share of the policies.

pub mod announce;
pub mod enforcer;
pub mod enforcers;
pub mod event;
pub mod policy;
pub mod rules;
pub mod shard;
pub mod state;
