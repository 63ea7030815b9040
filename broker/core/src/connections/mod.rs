//! Connections (docs/basic-connections.md): the model of a connection file, loading a directory
//! of them, and their validation.
//!
//! - [`model`]: the connection, its sources, targets and mapping definitions, in Ditto's names.
//! - [`inbound`]: a source's pipeline from a transport message to signals, and its replies.
//! - [`load`]: YAML files with `${VAR}` interpolation, and the line of a field for messages.
//! - [`metrics`]: per source and target, per minute, hour and day, in Ditto's shape.
//! - [`message`]: a transport message (address, headers, payload bytes).
//! - [`log`]: a connection's recent successes and failures, bounded per kind.
//! - [`mapping`]: payload mappers between transport messages and signals.
//! - [`outbound`]: a target's pipeline from a signal to transport messages.
//! - [`plugins`]: adapter plugins loaded from a directory, by the connection types they serve.
//! - [`runtime`]: an open connection: its adapter, inbound and target tasks, settlement.
//! - [`subscriptions`]: a connection's targets as pub/sub subscriptions.
//! - [`supervisor`]: every connection kept running: backoff, replacement, directory watching.
//! - [`target_ack`]: the acknowledgement a target issues, with its binding's statuses.
//! - [`validate`]: every rule Ditto checks when a connection is created, with what to do.

pub mod inbound;
pub mod load;
pub mod log;
pub mod mapping;
pub mod message;
pub mod metrics;
pub mod model;
pub mod outbound;
pub mod plugins;
pub mod runtime;
pub mod subscriptions;
pub mod supervisor;
pub mod target_ack;
pub mod validate;

pub use load::{load_dir, load_file, LoadError, Loaded};
pub use message::ExternalMessage;
pub use model::Connection;
pub use validate::{adapter_warnings, validate, Problem, Severity};
