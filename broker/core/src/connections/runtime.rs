//! A connection at work: its adapter (a plugin or a statically linked one, through the same
//! [`Adapter`] API), its sources' inbound pipelines feeding the router, its targets'
//! subscriptions feeding the adapter, and the settlement of every consumed message.
//!
//! Inbound: the adapter hands each consumed message to the host sink (non-blocking: a full
//! queue answers backpressure). One task per connection runs the source pipeline and submits
//! the signals to the router in order; each signal's answer is awaited in a task of its own,
//! goes to the source's reply target, and settles its copy of the message's [`Settlement`]:
//! when the last copy is done the adapter is told the worst outcome (delivered, retryable,
//! permanent). A message that fails mapping or enforcement gets its error on the reply target
//! and is settled as permanent.
//!
//! Outbound: each target's topics are subscriptions sharing one queue; a task maps each signal
//! (once, however many of its topics matched), sends it through the adapter and, when the
//! signal requested the target's label, acknowledges it once the adapter confirmed the send
//! (or with the failure).

use super::inbound::{Inbound as Mapped, InboundSource};
use super::log::ConnectionLog;
use super::message::ExternalMessage;
use super::metrics::{ConnectionMetrics, Kind};
use super::model::Connection;
use super::outbound::{Outbound, OutboundTarget};
use super::subscriptions::{declared_labels, issuer, target_subscriptions, FirstMatch};
use super::target_ack::{AckStatuses, Sent};
use crate::routing::announcements::{connection_closed, connection_opened};
use crate::routing::settlement::{Outcome, Settlement};
use crate::routing::{Consumed, Requester, Router};
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use twinwire_plugin::{
    Adapter, ConnectionStatus, Delivery, HostSink, Inbound, LogLevel, Message, Receipt,
};
use twinwire_protocol::headers::names;
use twinwire_protocol::topic::{Channel, Criterion, Group};
use twinwire_protocol::{DittoError, Envelope, Headers, JsonPointer, Topic};

/// Makes the adapter of a connection: loads a plugin or builds a static one, with the sink its
/// inbound messages, status and logs go to.
pub type AdapterFactory = Arc<
    dyn Fn(
            Connection,
            Arc<dyn HostSink>,
        ) -> Pin<Box<dyn Future<Output = Result<Arc<dyn Adapter>, String>> + Send>>
        + Send
        + Sync,
>;

/// The header an adapter names the source of a consumed message by (its index in `sources`);
/// absent: the first source.
pub const SOURCE_HEADER: &str = "twinwire-source";

/// The header an adapter marks a consumed message by when its transport says it may have been
/// delivered before (MQTT DUP, AMQP redelivered, Kafka consumed again after a rewind): a twin
/// change it made then is not made again (see [`Consumed`]).
pub const REDELIVERED_HEADER: &str = "twinwire-redelivered";

/// How long closing waits for the targets to publish what is queued.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(3);
/// How long closing waits for consumed messages to settle, so that the adapter acknowledges
/// (commits) them instead of leaving them to be redelivered.
const CLOSE_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Consumed messages taken and not yet settled, and whether the connection takes more.
#[derive(Debug, Default)]
struct Intake {
    closing: std::sync::atomic::AtomicBool,
    unsettled: std::sync::atomic::AtomicUsize,
}

impl Intake {
    fn settled(&self) {
        self.unsettled
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Messages queued from the adapter before it is answered with backpressure.
const INBOUND_QUEUE: usize = 4_096;
/// Signals queued for a target before deliveries wait or drop (see the publisher).
const TARGET_QUEUE: usize = 4_096;

/// What the adapter last said about its connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    pub status: ConnectionStatus,
    pub detail: String,
}

/// An open connection.
pub struct RunningConnection {
    pub id: String,
    adapter: Arc<dyn Adapter>,
    router: Router,
    tasks: Vec<JoinHandle<()>>,
    pub metrics: Arc<ConnectionMetrics>,
    pub log: Arc<ConnectionLog>,
    status: Arc<Mutex<Status>>,
    failures: tokio::sync::watch::Receiver<Option<String>>,
    intake: Arc<Intake>,
}

impl std::fmt::Debug for RunningConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningConnection")
            .field("id", &self.id)
            .field("status", &self.status())
            .finish_non_exhaustive()
    }
}

struct Sink {
    id: String,
    inbound: mpsc::Sender<Inbound>,
    status: Arc<Mutex<Status>>,
    router: Router,
    /// Set once the targets subscribed: announcements before that would reach nobody, so
    /// `open` announces a connection that connected while it was being set up.
    ready: Arc<std::sync::atomic::AtomicBool>,
    /// The detail of a `Failed` status: the supervisor recreates the adapter.
    failed: tokio::sync::watch::Sender<Option<String>>,
    metrics: Arc<ConnectionMetrics>,
    intake: Arc<Intake>,
    /// Whether the adapter connected before: connecting again counts as a reconnect.
    connected_once: std::sync::atomic::AtomicBool,
}

impl HostSink for Sink {
    fn inbound(&self, inbound: Inbound) -> Delivery {
        use std::sync::atomic::Ordering;
        if self.intake.closing.load(Ordering::Acquire) {
            return Delivery::Refused;
        }
        // Counted before it is queued: the inbound loop may settle it at once.
        self.intake.unsettled.fetch_add(1, Ordering::AcqRel);
        match self.inbound.try_send(inbound) {
            Ok(()) => Delivery::Accepted,
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.intake.settled();
                Delivery::Backpressure
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.intake.settled();
                Delivery::Refused
            }
        }
    }

    fn status(&self, status: ConnectionStatus, detail: &str) {
        let previous = std::mem::replace(
            &mut *self.status.lock().unwrap_or_else(PoisonError::into_inner),
            Status {
                status,
                detail: detail.to_owned(),
            },
        );
        tracing::info!(connection = %self.id, ?status, detail, "connection status");
        metrics::gauge!("twinwire_connection_connected", "connection" => self.id.clone()).set(
            if status == ConnectionStatus::Connected {
                1.0
            } else {
                0.0
            },
        );
        if status == ConnectionStatus::Connected
            && previous.status != ConnectionStatus::Connected
            && self
                .connected_once
                .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            metrics::counter!("twinwire_connection_reconnects_total", "connection" => self.id.clone())
                .increment(1);
        }
        if status == ConnectionStatus::Failed {
            self.failed.send_replace(Some(detail.to_owned()));
        }
        // Every transition to connected, reconnects too, is announced (as Ditto does).
        let ready = self.ready.load(std::sync::atomic::Ordering::Acquire);
        if ready
            && status == ConnectionStatus::Connected
            && previous.status != ConnectionStatus::Connected
        {
            self.router
                .announce_connection(&connection_opened(&self.id, &now_iso()));
        }
    }

    fn log(&self, level: LogLevel, text: &str) {
        match level {
            LogLevel::Error => tracing::error!(connection = %self.id, "{text}"),
            LogLevel::Warn => tracing::warn!(connection = %self.id, "{text}"),
            LogLevel::Info => tracing::info!(connection = %self.id, "{text}"),
            _ => tracing::debug!(connection = %self.id, "{text}"),
        }
    }

    fn metric(&self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.metrics.gauge(name, labels, value);
    }
}

fn now_iso() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

impl RunningConnection {
    /// Opens a connection: compiles its pipelines, declares its labels, makes its adapter and
    /// starts its tasks.
    pub async fn open(
        connection: Connection,
        router: Router,
        factory: &AdapterFactory,
    ) -> Result<RunningConnection, DittoError> {
        Self::open_with_log(connection, router, factory, Arc::default()).await
    }

    /// [`open`](Self::open), its pipelines logging to `log`.
    pub async fn open_with_log(
        connection: Connection,
        router: Router,
        factory: &AdapterFactory,
        log: Arc<ConnectionLog>,
    ) -> Result<RunningConnection, DittoError> {
        let id = connection.id.clone();
        let sources: Vec<InboundSource> = connection
            .sources
            .iter()
            .enumerate()
            .map(|(i, s)| InboundSource::compile(&connection, i, s))
            .collect::<Result<_, _>>()?;
        let targets: Vec<OutboundTarget> = connection
            .targets
            .iter()
            .enumerate()
            .map(|(i, t)| OutboundTarget::compile(&connection, i, t))
            .collect::<Result<_, _>>()?;
        let labels = declared_labels(&connection);
        let labels: Vec<&str> = labels.iter().map(String::as_str).collect();
        router
            .acks()
            .declared()
            .declare_connection(&id, &labels)
            .map_err(|e| e.to_ditto_error())?;
        let status = Arc::new(Mutex::new(Status {
            status: ConnectionStatus::Disconnected,
            detail: "opening".into(),
        }));
        let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
        let ready = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (failed, failures) = tokio::sync::watch::channel(None);
        let metrics = Arc::new(ConnectionMetrics::new(
            &id,
            connection
                .sources
                .iter()
                .map(|s| s.addresses.join(";"))
                .collect(),
            connection
                .targets
                .iter()
                .map(|t| t.address.clone())
                .collect(),
        ));
        let intake = Arc::new(Intake::default());
        let sink = Arc::new(Sink {
            failed,
            metrics: Arc::clone(&metrics),
            intake: Arc::clone(&intake),
            connected_once: std::sync::atomic::AtomicBool::new(false),
            id: id.clone(),
            inbound: inbound_tx,
            status: Arc::clone(&status),
            router: router.clone(),
            ready: Arc::clone(&ready),
        });
        let adapter = match factory(connection.clone(), sink).await {
            Ok(adapter) => adapter,
            Err(reason) => {
                router.leave(&issuer(&connection));
                return Err(
                    twinwire_protocol::exceptions::connectivity::configuration_invalid(
                        &format!("The connection '{id}' could not be opened."),
                        &reason,
                    ),
                );
            }
        };
        let mut tasks = Vec::new();
        tasks.push(tokio::spawn(inbound_loop(
            Arc::clone(&intake),
            id.clone(),
            Arc::new(sources),
            inbound_rx,
            Arc::clone(&adapter),
            router.clone(),
            Arc::clone(&metrics),
            Arc::clone(&log),
        )));
        for (i, (target, spec)) in targets.into_iter().zip(&connection.targets).enumerate() {
            let (tx, rx) = mpsc::channel(TARGET_QUEUE);
            let subscriptions = target_subscriptions(&connection, i, spec).map_err(|p| {
                twinwire_protocol::exceptions::connectivity::configuration_invalid(
                    &p.message, &p.hint,
                )
            })?;
            for sub in subscriptions {
                router.subscribe(sub, Some(issuer(&connection)), tx.clone())?;
            }
            tasks.push(tokio::spawn(target_loop(
                id.clone(),
                target,
                rx,
                Arc::clone(&adapter),
                router.clone(),
                Arc::clone(&metrics),
                Arc::clone(&log),
            )));
        }
        ready.store(true, std::sync::atomic::Ordering::Release);
        let connected = status.lock().unwrap_or_else(PoisonError::into_inner).status
            == ConnectionStatus::Connected;
        if connected {
            router.announce_connection(&connection_opened(&id, &now_iso()));
        }
        Ok(RunningConnection {
            id,
            adapter,
            router,
            tasks,
            metrics,
            log,
            status,
            failures,
            intake,
        })
    }

    /// Changes to `Some(detail)` when the adapter reports it failed for good.
    pub fn failures(&self) -> tokio::sync::watch::Receiver<Option<String>> {
        self.failures.clone()
    }

    pub fn status(&self) -> Status {
        self.status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Closes the connection: announces it, unsubscribes, closes the adapter (unsettled
    /// messages go back to their broker), and stops its tasks.
    pub async fn close(self) {
        self.router
            .announce_connection(&connection_closed(&self.id, &now_iso()));
        // Let the targets publish what is queued, the closed announcement last, before the
        // adapter goes (Ditto waits up to 3 s: `disconnect-announcement-timeout`).
        let drained = tokio::time::Instant::now() + CLOSE_GRACE;
        while self.router.publisher().pending_for(&self.id) > 0
            && tokio::time::Instant::now() < drained
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        // Take nothing more; let what was taken settle, so the adapter acknowledges it rather
        // than leaving it to be redelivered (an adapter is not settled while it closes).
        self.intake
            .closing
            .store(true, std::sync::atomic::Ordering::Release);
        let drained = tokio::time::Instant::now() + CLOSE_DRAIN;
        while self
            .intake
            .unsettled
            .load(std::sync::atomic::Ordering::Acquire)
            > 0
            && tokio::time::Instant::now() < drained
        {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        self.router.leave(&twinwire_core_issuer(&self.id));
        self.adapter.close().await;
        for task in self.tasks {
            task.abort();
        }
    }
}

fn twinwire_core_issuer(id: &str) -> crate::routing::acks::AckIssuer {
    crate::routing::acks::AckIssuer::Connection(id.to_owned())
}

/// The plugin message as a transport message (one copy).
pub fn to_external(message: &Message) -> ExternalMessage {
    ExternalMessage {
        address: message.address_lossy().into_owned(),
        headers: message
            .headers_lossy()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
        payload: message.payload().to_vec(),
    }
}

/// A transport message as the plugin message to send.
pub fn to_plugin(message: &ExternalMessage) -> Message {
    let headers: Vec<(&str, &str)> = message
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Message::new(
        message.address.as_str(),
        &headers,
        message.payload.as_slice(),
    )
}

fn settle_outcome(outcome: &Outcome) -> twinwire_plugin::Outcome {
    match outcome {
        Outcome::Delivered => twinwire_plugin::Outcome::Delivered,
        Outcome::Retryable { .. } => twinwire_plugin::Outcome::Retryable,
        Outcome::Permanent { .. } => twinwire_plugin::Outcome::Permanent,
    }
}

#[allow(clippy::too_many_arguments)]
async fn inbound_loop(
    intake: Arc<Intake>,
    id: String,
    sources: Arc<Vec<InboundSource>>,
    mut inbound: mpsc::Receiver<Inbound>,
    adapter: Arc<dyn Adapter>,
    router: Router,
    metrics: Arc<ConnectionMetrics>,
    log: Arc<ConnectionLog>,
) {
    let redeliveries = Arc::new(Mutex::new(crate::cache::lru(REDELIVERY_MEMORY)));
    while let Some(Inbound {
        message,
        settle_token,
    }) = inbound.recv().await
    {
        let external = to_external(&message);
        let index = external
            .header(SOURCE_HEADER)
            .and_then(|i| i.parse::<usize>().ok())
            .unwrap_or(0)
            .min(sources.len().saturating_sub(1));
        let Some(source) = sources.get(index) else {
            let _ = adapter
                .settle(settle_token, twinwire_plugin::Outcome::Permanent)
                .await;
            intake.settled();
            continue;
        };
        metrics.source(index, Kind::Consumed, true);
        let settling = Arc::clone(&adapter);
        let key = redelivery_key(&external);
        let redelivered = external
            .header(REDELIVERED_HEADER)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
            || redeliveries
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .contains(&key);
        let poison = Poison {
            max: source.max_redeliveries,
            dead_letter: source.dead_letter_target.clone(),
            key,
            counts: Arc::clone(&redeliveries),
            // Kept only where it may be dead-lettered: a copy of every payload otherwise.
            message: source
                .dead_letter_target
                .is_some()
                .then(|| external.clone()),
        };
        let taken = Arc::clone(&intake);
        let settled_by = id.clone();
        let settlement = Settlement::new(move |outcome: Outcome| {
            let (outcome, dead) = poison.judge(outcome);
            let settle = settle_outcome(&outcome);
            metrics::counter!(
                "twinwire_connection_settlements_total",
                "connection" => settled_by,
                "outcome" => match settle {
                    twinwire_plugin::Outcome::Delivered => "delivered",
                    twinwire_plugin::Outcome::Retryable => "retryable",
                    twinwire_plugin::Outcome::Permanent => "permanent",
                },
            )
            .increment(1);
            tokio::spawn(async move {
                if let Some(dead) = dead {
                    if let Err(e) = settling.send(to_plugin(&dead)).await {
                        tracing::warn!(error = %e, "a poison message could not be dead-lettered");
                    }
                }
                settling.settle(settle_token, settle).await;
                taken.settled();
            });
        });
        match source.inbound(&external) {
            Mapped::Dropped => {
                metrics.source(index, Kind::Dropped, true);
                settlement.settle(Outcome::Delivered);
            }
            Mapped::Refused(error) => {
                let kind = if error.code() == "connectivity:connection.id.enforcement.failed" {
                    Kind::Enforced
                } else {
                    Kind::Mapped
                };
                metrics.source(index, kind, false);
                log.record(
                    "failure",
                    "source",
                    if kind == Kind::Enforced {
                        "enforced"
                    } else {
                        "mapped"
                    },
                    error.message.clone().unwrap_or_default(),
                    external.header(names::CORRELATION_ID).map(str::to_owned),
                    Some(external.address.clone()),
                );
                tracing::debug!(connection = %id, error = %error.code(), "consumed message refused");
                let reply = error_envelope(&external, &error);
                let out = source.reply(&reply);
                let adapter = Arc::clone(&adapter);
                // Not in this loop: a send that waits on inbound progress must not stall it.
                tokio::spawn(async move {
                    if let Some(out) = out {
                        let _ = adapter.send(to_plugin(&out)).await;
                    }
                    settlement.settle(Outcome::permanent(error.code().to_owned()));
                });
            }
            Mapped::Signals(signals) => {
                for (n, (signal, auth)) in signals.into_iter().enumerate() {
                    metrics.source(index, Kind::Mapped, true);
                    let copy = settlement.split();
                    let requester = Requester::connection(id.clone(), auth).consumed(Consumed {
                        key: signal_key(key, n),
                        redelivered,
                    });
                    let command_headers = signal.headers.clone();
                    let pending = router.submit(signal, &requester).await;
                    let adapter = Arc::clone(&adapter);
                    let sources = Arc::clone(&sources);
                    tokio::spawn(async move {
                        let answer = pending.await;
                        if let Some(reply) = &answer.reply {
                            let reply = with_command_headers(reply, &command_headers);
                            if let Some(out) = sources.get(index).and_then(|s| s.reply(&reply)) {
                                let _ = adapter.send(to_plugin(&out)).await;
                            }
                        }
                        copy.settle(answer.settlement);
                    });
                }
                // The copies decide; this one only says "nothing failed here".
                settlement.settle(Outcome::Delivered);
            }
        }
    }
}

/// The answer with the command's headers it lacks (as Ditto's responses carry their command's
/// headers), so the reply target's placeholders (`{{ header:reply-to }}`) resolve. The
/// acknowledgement request headers stay the command's own.
fn with_command_headers(answer: &Envelope, command: &Headers) -> Envelope {
    let mut answer = answer.clone();
    for (name, value) in command.iter() {
        let request_only = [
            names::REQUESTED_ACKS,
            names::RESPONSE_REQUIRED,
            names::TIMEOUT,
        ]
        .iter()
        .any(|n| n.eq_ignore_ascii_case(name));
        if !request_only && !answer.headers.contains(name) {
            answer.headers.insert(name, value.clone());
        }
    }
    answer.headers.strip_internal_for_delivery();
    answer
}

/// Messages remembered for counting their redeliveries.
const REDELIVERY_MEMORY: std::num::NonZeroUsize = match std::num::NonZeroUsize::new(65_536) {
    Some(n) => n,
    None => std::num::NonZeroUsize::MIN,
};

/// A message is known across redeliveries by its address, payload and correlation-id header.
fn redelivery_key(message: &ExternalMessage) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    message.address.hash(&mut hasher);
    message.payload.hash(&mut hasher);
    message.header(names::CORRELATION_ID).hash(&mut hasher);
    hasher.finish()
}

/// The key of the `n`th signal a message mapped to.
fn signal_key(message: u64, n: usize) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    (message, n).hash(&mut hasher);
    hasher.finish()
}

/// Poison handling (twinwire, beyond Ditto): a message handed back for redelivery more than
/// `max` times is settled as permanent instead, and sent to the dead-letter address if there is
/// one, with the reason in `twinwire-dead-letter-reason`.
struct Poison {
    max: Option<u32>,
    dead_letter: Option<String>,
    key: u64,
    counts: Arc<Mutex<lru::LruCache<u64, u32>>>,
    /// The consumed message, when there is a dead-letter address to send it to.
    message: Option<ExternalMessage>,
}

impl Poison {
    /// Also remembers a message handed back for redelivery: its next copy is a redelivery.
    fn judge(self, outcome: Outcome) -> (Outcome, Option<ExternalMessage>) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if !outcome.should_redeliver() {
            counts.pop(&self.key);
            return (outcome, None);
        }
        let count = counts.get(&self.key).copied().unwrap_or(0) + 1;
        if count <= self.max.unwrap_or(u32::MAX) {
            counts.put(self.key, count);
            return (outcome, None);
        }
        counts.pop(&self.key);
        let max = self.max.unwrap_or(u32::MAX);
        let reason = format!("redelivered {max} times: {outcome}");
        tracing::warn!(reason, "poison message");
        let dead = self
            .dead_letter
            .zip(self.message)
            .map(|(address, mut message)| {
                message.address = address;
                message.set_header("twinwire-dead-letter-reason", reason.clone());
                message
            });
        (Outcome::permanent(reason), dead)
    }
}

/// An error as the reply target receives it when no signal came of a message.
fn error_envelope(message: &ExternalMessage, error: &DittoError) -> Envelope {
    let topic = Topic {
        namespace: twinwire_protocol::id::WILDCARD.to_owned(),
        name: twinwire_protocol::id::WILDCARD.to_owned(),
        group: Group::Things,
        channel: Channel::Twin,
        criterion: Criterion::Errors,
    };
    let mut headers = Headers::new();
    for name in [names::CORRELATION_ID, "reply-to"] {
        if let Some(value) = message.header(name) {
            headers.insert(name, value);
        }
    }
    let mut envelope = Envelope::new(topic, headers, JsonPointer::root());
    envelope.status = Some(error.status);
    envelope.value = Some(error.to_json());
    envelope
}

/// Sends of one target in flight at a time: handed to the adapter in order, confirmed in any
/// order, acknowledged in order. A transport that confirms each send (MQTT qos 1, AMQP publisher
/// confirms) would otherwise cap a target at one message per round trip.
const TARGET_PIPELINE: usize = 256;

async fn target_loop(
    id: String,
    target: OutboundTarget,
    mut signals: mpsc::Receiver<Envelope>,
    adapter: Arc<dyn Adapter>,
    router: Router,
    metrics: Arc<ConnectionMetrics>,
    log: Arc<ConnectionLog>,
) {
    use futures_util::stream::{FuturesOrdered, StreamExt};
    let mut first = FirstMatch::new(1_024);
    let requester = Requester::connection(id.clone(), crate::auth::AuthContext::none());
    let t = target.index();
    let mut in_flight = FuturesOrdered::new();
    let mut open = true;
    while open || !in_flight.is_empty() {
        // Completions first: each poll of `in_flight` also gives newly pushed sends their first
        // poll, in push order, which hands them to the adapter in the order of the signals.
        tokio::select! {
            biased;
            Some((signal, acknowledge, result)) = in_flight.next(), if !in_flight.is_empty() => {
                acknowledge_sent(&target, &router, &requester, &metrics, t, &signal, acknowledge, result).await;
            }
            next = signals.recv(), if open && in_flight.len() < TARGET_PIPELINE => {
                let Some(signal) = next else {
                    open = false;
                    continue;
                };
                if !first.first(&signal) {
                    continue;
                }
                metrics.target(t, Kind::Dispatched, true);
                let acknowledge = target.must_acknowledge(&signal);
                let outbound = target.outbound(&signal);
                let statuses = target.ack_statuses;
                let (adapter, metrics, log, id) =
                    (Arc::clone(&adapter), Arc::clone(&metrics), Arc::clone(&log), id.clone());
                in_flight.push_back(async move {
                    let result = publish(&id, t, outbound, statuses, &signal, &*adapter, &metrics, &log).await;
                    (signal, acknowledge, result)
                });
            }
        }
    }
}

/// Sends what a signal became for a target.
#[allow(clippy::too_many_arguments)]
async fn publish(
    id: &str,
    t: usize,
    outbound: Result<Outbound, DittoError>,
    statuses: AckStatuses,
    signal: &Envelope,
    adapter: &dyn Adapter,
    metrics: &ConnectionMetrics,
    log: &ConnectionLog,
) -> Result<Sent, DittoError> {
    match outbound {
        Ok(Outbound::Publish(messages)) => {
            let mut result = Ok(Receipt::default());
            for message in &messages {
                match adapter.send(to_plugin(message)).await {
                    Ok(receipt) => {
                        metrics.target(t, Kind::Published, true);
                        if result.is_ok() {
                            result = Ok(receipt);
                        }
                    }
                    Err(e) => {
                        metrics.target(t, Kind::Published, false);
                        log.record(
                            "failure",
                            "target",
                            "published",
                            e.to_string(),
                            signal.headers.correlation_id().map(str::to_owned),
                            Some(message.address.clone()),
                        );
                        tracing::warn!(connection = %id, target = t, error = %e, "publishing failed");
                        result = Err(statuses.failure(&e));
                    }
                }
            }
            result.map(Sent::Published)
        }
        Ok(Outbound::Dropped(reason)) => {
            metrics.target(t, Kind::Dropped, true);
            tracing::debug!(connection = %id, target = t, reason, "signal dropped");
            Ok(Sent::Nothing)
        }
        Err(error) => Err(error),
    }
}

/// Issues the target's acknowledgement of a sent signal when the signal requested it.
#[allow(clippy::too_many_arguments)]
async fn acknowledge_sent(
    target: &OutboundTarget,
    router: &Router,
    requester: &Requester,
    metrics: &ConnectionMetrics,
    t: usize,
    signal: &Envelope,
    acknowledge: bool,
    result: Result<Sent, DittoError>,
) {
    if !acknowledge {
        return;
    }
    let Some(label) = &target.issued_label else {
        return;
    };
    let ack = target.ack_statuses.acknowledgement(signal, label, &result);
    let answer = router.handle(ack, requester).await;
    metrics.target(t, Kind::Acknowledged, answer.reply.is_none());
}
