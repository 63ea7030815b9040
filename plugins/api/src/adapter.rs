//! The author's side: the [`Adapter`] and [`Plugin`] traits, the [`Host`] handle, and the small
//! types both sides share.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::ffi;
use crate::Message;

/// What the transport reported of a message it took.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Receipt {
    /// Transport metadata for the target's acknowledgement, as a JSON object (Kafka's record
    /// metadata with `debugEnabled`); empty for none, which most transports report.
    pub metadata: String,
}

impl Receipt {
    /// A receipt with metadata for the acknowledgement.
    pub fn with_metadata(metadata: impl Into<String>) -> Receipt {
        Receipt {
            metadata: metadata.into(),
        }
    }
}

/// Why a send failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// The adapter rejected or failed the message for good.
    Rejected(String),
    /// The send failed but may succeed later (e.g. the connection is down).
    Retryable(String),
    /// The adapter is full: try again later.
    Backpressure,
    /// The adapter instance is closed or closing.
    Closed,
    /// The adapter panicked while sending; the text is the panic's message.
    Panicked(String),
    /// The boundary was misused (a plugin answered with an unknown status, ...).
    Invalid(String),
}

impl SendError {
    /// The ABI status code ([`ffi::TW_ERR_REJECTED`], ...).
    pub fn status(&self) -> i32 {
        match self {
            SendError::Rejected(_) => ffi::TW_ERR_REJECTED,
            SendError::Retryable(_) => ffi::TW_ERR_RETRYABLE,
            SendError::Backpressure => ffi::TW_ERR_BACKPRESSURE,
            SendError::Closed => ffi::TW_ERR_CLOSED,
            SendError::Panicked(_) => ffi::TW_ERR_PANIC,
            SendError::Invalid(_) => ffi::TW_ERR_INVALID,
        }
    }

    /// The detail text (empty for the variants without one).
    pub fn detail(&self) -> &str {
        match self {
            SendError::Rejected(d)
            | SendError::Retryable(d)
            | SendError::Panicked(d)
            | SendError::Invalid(d) => d,
            SendError::Backpressure | SendError::Closed => "",
        }
    }

    /// The error an ABI status stands for; `None` for [`ffi::TW_OK`].
    pub fn from_status(status: i32, detail: &str) -> Option<SendError> {
        Some(match status {
            ffi::TW_OK => return None,
            ffi::TW_ERR_REJECTED => SendError::Rejected(detail.to_owned()),
            ffi::TW_ERR_RETRYABLE => SendError::Retryable(detail.to_owned()),
            ffi::TW_ERR_BACKPRESSURE => SendError::Backpressure,
            ffi::TW_ERR_CLOSED => SendError::Closed,
            ffi::TW_ERR_PANIC => SendError::Panicked(detail.to_owned()),
            ffi::TW_ERR_INVALID => SendError::Invalid(detail.to_owned()),
            other => SendError::Invalid(format!("unknown send status {other}: {detail}")),
        })
    }

    /// `Ok(())` for [`ffi::TW_OK`], else the error.
    pub fn result_of(status: i32, detail: &str) -> Result<(), SendError> {
        match SendError::from_status(status, detail) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// A send's result: for [`ffi::TW_OK`] the receipt, whose metadata is `detail`.
    pub fn receipt_of(status: i32, detail: &str) -> Result<Receipt, SendError> {
        SendError::result_of(status, detail).map(|()| Receipt::with_metadata(detail))
    }
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Rejected(d) => write!(f, "rejected by the adapter: {d}"),
            SendError::Retryable(d) => write!(f, "failed, may succeed later: {d}"),
            SendError::Backpressure => f.write_str("the adapter is full"),
            SendError::Closed => f.write_str("the adapter is closed"),
            SendError::Panicked(d) => write!(f, "the adapter panicked: {d}"),
            SendError::Invalid(d) => write!(f, "invalid use of the plugin boundary: {d}"),
        }
    }
}

impl std::error::Error for SendError {}

/// How the host settled an inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// Processed: acknowledge it.
    Delivered,
    /// Failed, may succeed later: redeliver.
    Retryable,
    /// Failed for good: drop or dead-letter.
    Permanent,
}

impl Outcome {
    /// The ABI code ([`ffi::TW_SETTLE_DELIVERED`], ...).
    pub fn code(self) -> u32 {
        match self {
            Outcome::Delivered => ffi::TW_SETTLE_DELIVERED,
            Outcome::Retryable => ffi::TW_SETTLE_RETRYABLE,
            Outcome::Permanent => ffi::TW_SETTLE_PERMANENT,
        }
    }

    /// The outcome of an ABI code, if known.
    pub fn from_code(code: u32) -> Option<Outcome> {
        match code {
            ffi::TW_SETTLE_DELIVERED => Some(Outcome::Delivered),
            ffi::TW_SETTLE_RETRYABLE => Some(Outcome::Retryable),
            ffi::TW_SETTLE_PERMANENT => Some(Outcome::Permanent),
            _ => None,
        }
    }
}

/// The host's answer to an inbound message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// Taken: the host will settle it by its token (unless the instance closes first).
    Accepted,
    /// Not taken, no credit now: deliver it again later.
    Backpressure,
    /// Not taken, and never will be (the host is closing the connection).
    Refused,
}

impl Delivery {
    /// The ABI status ([`ffi::TW_OK`], [`ffi::TW_ERR_BACKPRESSURE`], [`ffi::TW_ERR_HOST_REFUSED`]).
    pub fn status(self) -> i32 {
        match self {
            Delivery::Accepted => ffi::TW_OK,
            Delivery::Backpressure => ffi::TW_ERR_BACKPRESSURE,
            Delivery::Refused => ffi::TW_ERR_HOST_REFUSED,
        }
    }

    /// The answer an ABI status stands for; unknown statuses count as [`Delivery::Refused`].
    pub fn from_status(status: i32) -> Delivery {
        match status {
            ffi::TW_OK => Delivery::Accepted,
            ffi::TW_ERR_BACKPRESSURE => Delivery::Backpressure,
            _ => Delivery::Refused,
        }
    }
}

/// The host's answer to a batch of inbound messages: it took the first `accepted` of them; `rest`
/// is the answer to the first one it did not take ([`Delivery::Accepted`] if it took all).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct BatchDelivery {
    /// How many messages, from the front, the host took.
    pub accepted: usize,
    /// Why it did not take the next one, or `Accepted` if it took all.
    pub rest: Delivery,
}

/// An inbound message with the settle token the adapter chose for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inbound {
    /// The message.
    pub message: Message,
    /// The token the host passes back to [`Adapter::settle`].
    pub settle_token: u64,
}

/// An adapter's connection status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectionStatus {
    /// Connected.
    Connected,
    /// Disconnected (may come back).
    Disconnected,
    /// Failed, will not recover by itself.
    Failed,
}

impl ConnectionStatus {
    /// The ABI code ([`ffi::TW_STATUS_CONNECTED`], ...).
    pub fn code(self) -> u32 {
        match self {
            ConnectionStatus::Connected => ffi::TW_STATUS_CONNECTED,
            ConnectionStatus::Disconnected => ffi::TW_STATUS_DISCONNECTED,
            ConnectionStatus::Failed => ffi::TW_STATUS_FAILED,
        }
    }

    /// The status of an ABI code, if known.
    pub fn from_code(code: u32) -> Option<ConnectionStatus> {
        match code {
            ffi::TW_STATUS_CONNECTED => Some(ConnectionStatus::Connected),
            ffi::TW_STATUS_DISCONNECTED => Some(ConnectionStatus::Disconnected),
            ffi::TW_STATUS_FAILED => Some(ConnectionStatus::Failed),
            _ => None,
        }
    }
}

/// A log level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Error.
    Error,
    /// Warning.
    Warn,
    /// Information.
    Info,
    /// Debug.
    Debug,
    /// Trace.
    Trace,
}

impl LogLevel {
    /// The ABI code ([`ffi::TW_LOG_ERROR`], ...).
    pub fn code(self) -> u32 {
        match self {
            LogLevel::Error => ffi::TW_LOG_ERROR,
            LogLevel::Warn => ffi::TW_LOG_WARN,
            LogLevel::Info => ffi::TW_LOG_INFO,
            LogLevel::Debug => ffi::TW_LOG_DEBUG,
            LogLevel::Trace => ffi::TW_LOG_TRACE,
        }
    }

    /// The level of an ABI code; unknown codes count as `Info`.
    pub fn from_code(code: u32) -> LogLevel {
        match code {
            ffi::TW_LOG_ERROR => LogLevel::Error,
            ffi::TW_LOG_WARN => LogLevel::Warn,
            ffi::TW_LOG_DEBUG => LogLevel::Debug,
            ffi::TW_LOG_TRACE => LogLevel::Trace,
            _ => LogLevel::Info,
        }
    }
}

/// How the glue runs a plugin's own tokio runtime (only for plugins loaded through the ABI; a
/// statically linked adapter runs on the caller's runtime).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Worker threads of the plugin's multi-thread runtime.
    pub worker_threads: usize,
    /// Poll every `send` and `settle` once on the caller's thread, with a no-op waker, before
    /// handing it to the runtime: a send that completes without waiting never leaves the host
    /// thread (2-2.5x cheaper than a thread hop). Turn it off if the adapter does blocking work
    /// before its first `.await`: that would stall a host thread.
    pub inline_first_poll: bool,
    /// How long `close` waits for [`Adapter::close`] and then for the runtime's threads to end.
    pub shutdown_timeout: Duration,
    /// The name of the runtime's threads.
    pub thread_name: String,
}

impl Default for RuntimeConfig {
    fn default() -> RuntimeConfig {
        RuntimeConfig {
            worker_threads: 1,
            inline_first_poll: true,
            shutdown_timeout: Duration::from_secs(5),
            thread_name: "twinwire-plugin".to_owned(),
        }
    }
}

/// What the host does with what an adapter hands it. Implemented by the host (the broker, a test);
/// every method may be called from any thread, concurrently, and must not block (use unbounded or
/// `try_send` channels).
pub trait HostSink: Send + Sync + 'static {
    /// An inbound message. Return [`Delivery::Accepted`] to take it (then settle it by its token).
    fn inbound(&self, inbound: Inbound) -> Delivery;

    /// A batch of inbound messages: take a prefix. The default takes them one by one.
    fn inbound_batch(&self, batch: Vec<Inbound>) -> BatchDelivery {
        let mut accepted = 0;
        for inbound in batch {
            match self.inbound(inbound) {
                Delivery::Accepted => accepted += 1,
                rest => return BatchDelivery { accepted, rest },
            }
        }
        BatchDelivery {
            accepted,
            rest: Delivery::Accepted,
        }
    }

    /// The adapter's connection status changed.
    fn status(&self, status: ConnectionStatus, detail: &str);

    /// A log line from the adapter (plugin panics included).
    fn log(&self, level: LogLevel, text: &str);

    /// A gauge of the adapter's (e.g. a partition's consumer lag). Hosts that keep no adapter
    /// metrics ignore it.
    fn metric(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        let _ = (name, labels, value);
    }
}

/// The adapter's handle on the host: deliver inbound messages, report status, log. Cheap to clone;
/// every method is non-blocking.
#[derive(Clone)]
pub struct Host {
    sink: Arc<dyn HostSink>,
}

impl Host {
    /// A handle delivering to `sink` (the glue makes one for the plugin's callbacks; a host linking
    /// an adapter statically makes one for its own sink).
    pub fn new(sink: Arc<dyn HostSink>) -> Host {
        Host { sink }
    }

    /// Delivers an inbound message; the host settles it later by `settle_token` if it answers
    /// [`Delivery::Accepted`]. Keep a clone (cheap) if you may need to deliver it again.
    pub fn deliver(&self, message: Message, settle_token: u64) -> Delivery {
        self.sink.inbound(Inbound {
            message,
            settle_token,
        })
    }

    /// Delivers a batch; the host takes a prefix of it.
    pub fn deliver_batch(&self, batch: Vec<Inbound>) -> BatchDelivery {
        self.sink.inbound_batch(batch)
    }

    /// Reports the connection status.
    pub fn status(&self, status: ConnectionStatus, detail: &str) {
        self.sink.status(status, detail);
    }

    /// Logs a line through the host.
    pub fn log(&self, level: LogLevel, text: &str) {
        self.sink.log(level, text);
    }

    /// Sets a gauge of the adapter's, told apart by `labels` (bounded: never a thing ID).
    pub fn metric(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.sink.metric(name, labels, value);
    }
}

impl fmt::Debug for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Host").finish_non_exhaustive()
    }
}

/// A running adapter instance: what the host drives. Implemented by the plugin author (and, on the
/// host side, by [`PluginAdapter`](crate::host::PluginAdapter), so the broker talks to static and
/// loaded adapters alike through `dyn Adapter`).
#[async_trait]
pub trait Adapter: Send + Sync + 'static {
    /// Sends one message to the transport. The future resolves when the transport took it (or
    /// failed to). Sends may run concurrently.
    async fn send(&self, message: Message) -> Result<Receipt, SendError>;

    /// The host's outcome for the inbound message delivered with `settle_token`. The default
    /// ignores it.
    async fn settle(&self, settle_token: u64, outcome: Outcome) {
        let _ = (settle_token, outcome);
    }

    /// Closes the instance: disconnect, and join every thread the adapter started itself (the glue
    /// can only join the plugin runtime's threads; a thread that outlives the plugin's code
    /// crashes the process). No send or settle overlaps it.
    async fn close(&self) {}
}

/// A kind of adapter: how to make one. `export_adapter!(T)` turns a `Plugin` into a loadable
/// plugin library; a host can also link it statically.
#[async_trait]
pub trait Plugin: Adapter + Sized {
    /// The plugin's name, e.g. `mqtt`.
    const NAME: &'static str;
    /// The connection types it serves, e.g. `["mqtt", "mqtt-5"]`.
    const CONNECTION_TYPES: &'static [&'static str];

    /// Whether it settles what its sources consume (its broker redelivers what it hands back).
    /// An adapter whose transport acknowledges on receipt says `false`.
    const SETTLES: bool = true;

    /// How to run the plugin's runtime for this configuration (ABI plugins only).
    fn runtime_config(config: &[u8]) -> RuntimeConfig {
        let _ = config;
        RuntimeConfig::default()
    }

    /// Makes an instance from its configuration (bytes: the host decides the format, typically
    /// JSON). Runs on the plugin's runtime. Errors are shown to the user.
    async fn create(config: &[u8], host: Host) -> Result<Self, String>;
}
