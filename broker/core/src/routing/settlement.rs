//! Settlement of a signal consumed from a source: a reference-counted finalizer that tells the
//! source, exactly once and after the last copy of the signal is done, the worst outcome of all
//! copies. No I/O, no await, no lock on the way: what an outcome means on the wire (PUBACK,
//! ack/nack/reject, an offset commit) is the source adapter's sink's business, not this file's.
//!
//! # How it is used
//!
//! A source adapter creates one [`Settlement`] per consumed transport message, with a sink that
//! settles that message on its transport. Every copy of the signal (payload mapping that splits
//! a message, fan-out to targets and subscribers, the ack collector) holds its own copy of the
//! handle, made with [`Settlement::split`] (or `clone`). Each copy is completed once with
//! [`Settlement::settle`]; a copy dropped without that counts as
//! `Retryable { reason: "dropped" }` ([`DROPPED`]), so a panicking task, an aborted one, a full
//! queue that drops its item or a shutdown never loses what was consumed. When the last copy is
//! settled or dropped the sink is called once with the worst outcome.
//!
//! A copy that is discarded on purpose (a mapper produced nothing, a filter said no) must be
//! settled explicitly, with whatever the pipeline decides; only an accidental drop is retryable.
//!
//! # Which outcome is worst: `Delivered < Permanent < Retryable`
//!
//! Take a message split into two copies, one failing permanently (a 400 from a target) and one
//! retryably (a custom ack timed out). The source is told **retryable**, and redelivers:
//!
//! - **At least once.** The retryable copy has not reached its target and may on the next
//!   attempt. Telling the source "permanent" would discard or dead-letter the message, losing
//!   it for that target for good. Redelivering costs the permanent copy one more identical
//!   failure (one more error response) and the delivered copies a duplicate, which at-least-once
//!   accepts by definition (the adapter issues require a redelivered command to be applied
//!   once). Between a certain loss and a duplicate, at-least-once takes the duplicate.
//! - **Ditto does the same.** Its consumers redeliver when any failed status is 408, 424 or 5xx,
//!   whatever the other statuses are, so a Ditto user sees the same behaviour here.
//! - **Poison messages.** `Permanent` is what stops a message that can never succeed, and it
//!   still does when every failure is permanent. What "retryable wins" cannot stop is a retryable
//!   failure that never clears, but that loop exists with or without a permanent sibling, so its
//!   bound belongs where redeliveries are counted: the adapter (RabbitMQ's delivery limit or
//!   `x-delivery-count`, a per-message attempt count beside the Kafka seek or MQTT DUP flag). A
//!   settlement has no memory across deliveries, by design.
//! - `Permanent` is worse than `Delivered`: one copy that can never be delivered makes the message
//!   a failure (an AMQP reject lands it in a dead-letter queue) even if the other copies arrived.
//!
//! Among copies of the same, worst kind, the reason of the first one settled is kept.
//!
//! # Why it is cheap
//!
//! The handle is the `Arc`: one allocation per consumed message, holding the sink beside the
//! reasons. Its strong count is the number of open copies and its `Drop` is the finalizer, so a
//! copy costs one atomic increment, and settling one as delivered one atomic decrement. A failure
//! records its reason in a `OnceLock` per kind (the first wins; one compare-and-swap, and a brief
//! wait only if another copy is storing a reason of the same kind at that very moment). The
//! last decrement's acquire fence makes every reason visible to the finalizer, which has the
//! state to itself (`&mut`): the sink's `Mutex` is never locked, only there to make the sink
//! `Sync` without asking the sink to be.
//!
//! # What a holder must know
//!
//! - The sink runs on the thread that finishes the last copy, perhaps inside a `Drop` during a
//!   panic: it must be quick, must not block and must not panic (send to a channel, set a flag).
//! - A copy parked somewhere keeps the settlement open: a slot of a `tokio::sync::broadcast`
//!   ring holds its value until overwritten, so hand each subscriber its own copy instead.
//!   `mem::forget` on a copy, or a reference cycle through one, means the source is never told.
//! - When the handle crosses to an adapter plugin it stays on the host: the plugin sees an opaque
//!   `u64` delivery token, and the host's sink calls the plugin's settle entry with that token
//!   and [`OutcomeKind`] as a byte. The handle guarantees the plugin one call per token; a token
//!   map dropped when an instance closes drops its copies, which then count as retryable.

use serde_json::Value;
use std::borrow::Cow;
use std::fmt;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use tokio::sync::oneshot;
use twinwire_protocol::acks::LIVE_RESPONSE;

/// Why a settlement failed: mostly a static text, formatted only where a status says more.
pub type Reason = Cow<'static, str>;

/// The reason a copy dropped without being settled reports.
pub const DROPPED: &str = "dropped";

/// What the source is told about a consumed message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Every copy arrived: acknowledge, commit, PUBACK.
    Delivered,
    /// A copy can never be delivered as it is (a client error): settle without redelivery, after
    /// the error response, so the message is not redelivered forever.
    Permanent { reason: Reason },
    /// A copy may arrive if tried again (timeout, 408, 429, 5xx, a 424 with such a member, a
    /// dropped copy): hand the message back for redelivery.
    Retryable { reason: Reason },
}

/// The kind of an [`Outcome`], ordered from best to worst; see the module documentation for why
/// `Retryable` is worse than `Permanent`. The discriminants are stable so a byte can carry them
/// (to a plugin, into a metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(u8)]
pub enum OutcomeKind {
    Delivered = 0,
    Permanent = 1,
    Retryable = 2,
}

impl Outcome {
    pub fn permanent(reason: impl Into<Reason>) -> Outcome {
        Outcome::Permanent {
            reason: reason.into(),
        }
    }

    pub fn retryable(reason: impl Into<Reason>) -> Outcome {
        Outcome::Retryable {
            reason: reason.into(),
        }
    }

    pub fn kind(&self) -> OutcomeKind {
        match self {
            Outcome::Delivered => OutcomeKind::Delivered,
            Outcome::Permanent { .. } => OutcomeKind::Permanent,
            Outcome::Retryable { .. } => OutcomeKind::Retryable,
        }
    }

    /// The reason of a failure; `None` when delivered.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Delivered => None,
            Outcome::Permanent { reason } | Outcome::Retryable { reason } => Some(reason),
        }
    }

    /// Whether the source should hand the message back for redelivery.
    pub fn should_redeliver(&self) -> bool {
        self.kind() == OutcomeKind::Retryable
    }

    /// The worse of the two; on a tie `self`, the earlier one, with its reason.
    pub fn worst(self, other: Outcome) -> Outcome {
        if other.kind() > self.kind() {
            other
        } else {
            self
        }
    }

    /// Classifies an HTTP-like status of a response or acknowledgement (Ditto's status codes):
    ///
    /// - 2xx, and also 1xx and 3xx (Ditto counts only 4xx and 5xx as failed): delivered;
    /// - 412 precondition failed: delivered, as in Ditto. The receiver evaluated the sender's own
    ///   condition and declined; a redelivery gets the same 412, and a dead-letter queue full of
    ///   conditional updates that did what was asked helps nobody;
    /// - 408 request timeout, 424 failed dependency (its members unseen: use
    ///   [`Outcome::from_aggregated_acks`] when they are at hand), 429 too many requests (not in
    ///   Ditto's list, but it says "later" by definition) and every 5xx: retryable;
    /// - every other 4xx: permanent;
    /// - anything outside 100..=599 is not a status at all: permanent, since trying again cannot
    ///   turn it into one.
    pub fn from_status(status: u16) -> Outcome {
        match status {
            412 | 100..=399 => Outcome::Delivered,
            408 => Outcome::retryable(format!("status {status}: request timeout")),
            424 => Outcome::retryable(format!("status {status}: failed dependency")),
            429 => Outcome::retryable(format!("status {status}: too many requests")),
            500..=599 => Outcome::retryable(format!("status {status}: server error")),
            400..=499 => Outcome::permanent(format!("status {status}: client error")),
            _ => Outcome::permanent(format!("status {status}: not an HTTP status")),
        }
    }

    /// Classifies the status of a live response (or a `live-response` acknowledgement): the
    /// device answered, whatever it answered, so only a timeout (408) counts as failed, as in
    /// Ditto. A 404 from a device is its answer, and redelivering asks it the same question again.
    pub fn from_live_response_status(status: u16) -> Outcome {
        if status == 408 {
            Outcome::from_status(status)
        } else {
            Outcome::Delivered
        }
    }

    /// Classifies the `value` of an aggregated acknowledgements message (`.../things/<channel>/acks`
    /// with several acks, typically status 424): an object of label → `{"status", "headers",
    /// "payload"?}`, or label → an array of those when several acks share a label, as Ditto
    /// writes them. The result is the worst member ([`Outcome::from_status`] for each,
    /// [`Outcome::from_live_response_status`] for `live-response`), its reason prefixed by the
    /// label: retryable if any member is retryable, else permanent if any is, else delivered.
    ///
    /// A single acknowledgement's aggregate carries its own status: classify that status.
    /// A value with no readable member, or a member without a readable status, is retryable: it
    /// came with a 424, which says something failed, and Ditto redelivers every 424.
    pub fn from_aggregated_acks(value: &Value) -> Outcome {
        let members = match value.as_object() {
            Some(members) if !members.is_empty() => members,
            _ => return Outcome::retryable("aggregated acknowledgements without members"),
        };
        let mut worst = Outcome::Delivered;
        for (label, member) in members {
            let outcome = match member {
                Value::Array(same_label) if !same_label.is_empty() => same_label
                    .iter()
                    .map(|one| member_outcome(label, one))
                    .fold(Outcome::Delivered, Outcome::worst),
                one => member_outcome(label, one),
            };
            worst = worst.worst(outcome);
        }
        worst
    }
}

/// One member of an aggregated acknowledgements value, its reason naming its label.
fn member_outcome(label: &str, member: &Value) -> Outcome {
    let status = member
        .get("status")
        .and_then(Value::as_u64)
        .and_then(|s| u16::try_from(s).ok());
    let outcome = match status {
        Some(status) if label == LIVE_RESPONSE => Outcome::from_live_response_status(status),
        Some(status) => Outcome::from_status(status),
        None => Outcome::retryable("no status"),
    };
    match outcome {
        Outcome::Delivered => Outcome::Delivered,
        Outcome::Permanent { reason } => Outcome::permanent(format!("{label}: {reason}")),
        Outcome::Retryable { reason } => Outcome::retryable(format!("{label}: {reason}")),
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Delivered => f.write_str("delivered"),
            Outcome::Permanent { reason } => write!(f, "permanent failure ({reason})"),
            Outcome::Retryable { reason } => write!(f, "retryable failure ({reason})"),
        }
    }
}

/// The settlement handle one copy of a consumed signal holds. `Send + Sync`, two words; see the
/// module documentation for the rules.
pub struct Settlement {
    /// `None` only while `settle` or `drop` hands this copy's outcome over.
    shared: Option<Arc<Shared<dyn Sink>>>,
}

/// What all copies share. Its `Drop`, run once by whichever copy goes last, is the finalizer.
struct Shared<S: ?Sized + Sink> {
    permanent: OnceLock<Reason>,
    retryable: OnceLock<Reason>,
    /// Last so the sink's type can be erased in place (one allocation for handle and sink).
    sink: Mutex<S>,
}

/// A sink, type-erased: calls the user's `FnOnce` the first time, then nothing.
trait Sink: Send {
    fn fire(&mut self, outcome: Outcome);
}

impl<F: FnOnce(Outcome) + Send> Sink for Option<F> {
    fn fire(&mut self, outcome: Outcome) {
        if let Some(sink) = self.take() {
            sink(outcome);
        }
    }
}

impl<S: ?Sized + Sink> Shared<S> {
    fn record(&self, outcome: Outcome) {
        // The first reason of each kind wins; a later one of the same kind is dropped here.
        match outcome {
            Outcome::Delivered => {}
            Outcome::Permanent { reason } => {
                let _ = self.permanent.set(reason);
            }
            Outcome::Retryable { reason } => {
                let _ = self.retryable.set(reason);
            }
        }
    }

    fn worst_so_far(&self) -> OutcomeKind {
        if self.retryable.get().is_some() {
            OutcomeKind::Retryable
        } else if self.permanent.get().is_some() {
            OutcomeKind::Permanent
        } else {
            OutcomeKind::Delivered
        }
    }
}

impl<S: ?Sized + Sink> Drop for Shared<S> {
    fn drop(&mut self) {
        let outcome = if let Some(reason) = self.retryable.take() {
            Outcome::Retryable { reason }
        } else if let Some(reason) = self.permanent.take() {
            Outcome::Permanent { reason }
        } else {
            Outcome::Delivered
        };
        // `&mut self`: no other copy exists, so this never locks; the mutex is never locked
        // anywhere, so it cannot be poisoned either.
        self.sink
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .fire(outcome);
    }
}

impl Settlement {
    /// A settlement whose sink is called exactly once, with the worst outcome, when the last copy
    /// is settled or dropped. The sink runs on that copy's thread, possibly inside a `Drop`: keep
    /// it short and non-blocking.
    pub fn new<F>(sink: F) -> Settlement
    where
        F: FnOnce(Outcome) + Send + 'static,
    {
        let shared: Arc<Shared<dyn Sink>> = Arc::new(Shared {
            permanent: OnceLock::new(),
            retryable: OnceLock::new(),
            sink: Mutex::new(Some(sink)),
        });
        Settlement {
            shared: Some(shared),
        }
    }

    /// A settlement whose outcome arrives on a oneshot receiver. If the receiver is gone the
    /// outcome is discarded: nobody is left to tell.
    pub fn channel() -> (Settlement, oneshot::Receiver<Outcome>) {
        let (tx, rx) = oneshot::channel();
        let settlement = Settlement::new(move |outcome| {
            let _ = tx.send(outcome);
        });
        (settlement, rx)
    }

    /// Another copy holding the same settlement, for one more copy of the signal (a fan-out
    /// target, one of several signals a payload mapping made). It must be settled or dropped too.
    pub fn split(&self) -> Settlement {
        Settlement {
            shared: self.shared.clone(),
        }
    }

    /// Completes this copy. The source is told when the last copy completes.
    pub fn settle(mut self, outcome: Outcome) {
        if let Some(shared) = self.shared.take() {
            shared.record(outcome);
        }
    }
}

impl Clone for Settlement {
    /// The same as [`Settlement::split`]: the clone is one more copy to settle.
    fn clone(&self) -> Self {
        self.split()
    }
}

impl Drop for Settlement {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.record(Outcome::retryable(DROPPED));
        }
    }
}

impl fmt::Debug for Settlement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Settlement");
        if let Some(shared) = &self.shared {
            // Both only a glance: other copies may change them at any moment.
            s.field("copies", &Arc::strong_count(shared))
                .field("worst_so_far", &shared.worst_so_far());
        }
        s.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A settlement whose outcome and number of sink calls the test can read.
    fn build_recorded() -> (Settlement, Arc<Mutex<Vec<Outcome>>>) {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let sink_calls = Arc::clone(&calls);
        let settlement = Settlement::new(move |outcome| sink_calls.lock().unwrap().push(outcome));
        (settlement, calls)
    }

    #[test]
    fn kinds_are_ordered_delivered_permanent_retryable() {
        assert!(OutcomeKind::Delivered < OutcomeKind::Permanent);
        assert!(OutcomeKind::Permanent < OutcomeKind::Retryable);
        assert_eq!(OutcomeKind::Retryable as u8, 2);
        let permanent = Outcome::permanent("400");
        let retryable = Outcome::retryable("408");
        assert_eq!(permanent.clone().worst(retryable.clone()), retryable);
        assert_eq!(retryable.clone().worst(permanent.clone()), retryable);
        assert_eq!(Outcome::Delivered.worst(permanent.clone()), permanent);
        assert_eq!(
            Outcome::retryable("first").worst(Outcome::retryable("second")),
            Outcome::retryable("first")
        );
        assert!(retryable.should_redeliver() && !permanent.should_redeliver());
        assert_eq!(Outcome::Delivered.reason(), None);
        assert_eq!(permanent.reason(), Some("400"));
    }

    #[test]
    fn statuses_classify_as_ditto_redelivers() {
        let kind = |s| Outcome::from_status(s).kind();
        for s in [200, 201, 202, 204, 299, 100, 304, 412] {
            assert_eq!(kind(s), OutcomeKind::Delivered, "{s}");
        }
        for s in [408, 424, 429, 500, 502, 503, 504, 599] {
            assert_eq!(kind(s), OutcomeKind::Retryable, "{s}");
        }
        for s in [400, 401, 403, 404, 409, 413, 422, 499, 0, 99, 600, u16::MAX] {
            assert_eq!(kind(s), OutcomeKind::Permanent, "{s}");
        }
        assert_eq!(
            Outcome::from_status(503).reason(),
            Some("status 503: server error")
        );
        assert_eq!(Outcome::from_live_response_status(404), Outcome::Delivered);
        assert_eq!(
            Outcome::from_live_response_status(408).kind(),
            OutcomeKind::Retryable
        );
    }

    #[test]
    fn aggregated_acks_take_the_worst_member_and_name_it() {
        let mixed = json!({
            "twin-persisted": {"status": 204, "headers": {}},
            "conn:bad": {"status": 400, "payload": "no", "headers": {}},
            "conn:slow": {"status": 408, "headers": {}},
        });
        assert_eq!(
            Outcome::from_aggregated_acks(&mixed),
            Outcome::retryable("conn:slow: status 408: request timeout")
        );
        let permanent_only = json!({
            "twin-persisted": {"status": 204, "headers": {}},
            "conn:bad": {"status": 403, "headers": {}},
        });
        assert_eq!(
            Outcome::from_aggregated_acks(&permanent_only),
            Outcome::permanent("conn:bad: status 403: client error")
        );
        let live = json!({
            "live-response": {"status": 404, "headers": {}},
            "twin-persisted": {"status": 201, "headers": {}},
        });
        assert_eq!(Outcome::from_aggregated_acks(&live), Outcome::Delivered);
        let same_label = json!({
            "conn:a": [{"status": 200, "headers": {}}, {"status": 503, "headers": {}}],
            "conn:b": {"status": 404, "headers": {}},
        });
        assert_eq!(
            Outcome::from_aggregated_acks(&same_label).reason(),
            Some("conn:a: status 503: server error")
        );
        for unreadable in [
            json!({}),
            json!(null),
            json!([]),
            json!({"conn:a": []}),
            json!({"conn:a": {"status": "408"}}),
            json!({"conn:a": {"status": 70000}}),
            json!({"conn:a": 424}),
        ] {
            assert_eq!(
                Outcome::from_aggregated_acks(&unreadable).kind(),
                OutcomeKind::Retryable,
                "{unreadable}"
            );
        }
    }

    #[test]
    fn one_copy_settles_with_its_own_outcome() {
        for outcome in [
            Outcome::Delivered,
            Outcome::permanent("status 400: client error"),
            Outcome::retryable("status 503: server error"),
        ] {
            let (settlement, calls) = build_recorded();
            settlement.settle(outcome.clone());
            assert_eq!(*calls.lock().unwrap(), vec![outcome]);
        }
    }

    #[test]
    fn the_sink_waits_for_every_copy() {
        let (first, calls) = build_recorded();
        let second = first.split();
        let third = second.clone();
        first.settle(Outcome::permanent("p"));
        second.settle(Outcome::Delivered);
        assert!(calls.lock().unwrap().is_empty());
        let fourth = third.split();
        third.settle(Outcome::Delivered);
        assert!(calls.lock().unwrap().is_empty());
        drop(fourth);
        assert_eq!(*calls.lock().unwrap(), vec![Outcome::retryable(DROPPED)]);
    }

    #[test]
    fn the_first_reason_of_the_worst_kind_is_kept() {
        let (a, calls) = build_recorded();
        let (b, c, d) = (a.split(), a.split(), a.split());
        a.settle(Outcome::permanent("p1"));
        b.settle(Outcome::retryable("r1"));
        c.settle(Outcome::retryable("r2"));
        d.settle(Outcome::permanent("p2"));
        assert_eq!(*calls.lock().unwrap(), vec![Outcome::retryable("r1")]);
    }

    #[test]
    fn the_oneshot_receives_the_outcome_and_a_gone_receiver_is_fine() {
        let (settlement, mut rx) = Settlement::channel();
        settlement.settle(Outcome::Delivered);
        assert_eq!(rx.try_recv().unwrap(), Outcome::Delivered);
        let (settlement, rx) = Settlement::channel();
        drop(rx);
        settlement.settle(Outcome::Delivered);
    }

    #[test]
    fn the_handle_is_two_words_send_and_sync() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Settlement>();
        assert_eq!(
            std::mem::size_of::<Settlement>(),
            2 * std::mem::size_of::<usize>()
        );
    }

    #[test]
    fn debug_shows_copies_and_the_worst_so_far() {
        let count = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&count);
        let a = Settlement::new(move |_| {
            counted.fetch_add(1, Ordering::SeqCst);
        });
        let b = a.split();
        b.settle(Outcome::permanent("p"));
        assert_eq!(
            format!("{a:?}"),
            "Settlement { copies: 1, worst_so_far: Permanent }"
        );
        drop(a);
        assert_eq!(count.load(Ordering::SeqCst), 1);
    }
}
