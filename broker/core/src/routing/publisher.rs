//! The publisher: the [`Hub`] with where each subscriber's deliveries go, and the weak
//! acknowledgements a fan-out calls for. It is the engine's [`EventSink`]: thing shards hand it
//! their durable changes in order, policy shards their announcements.
//!
//! Fan-out never waits: each subscriber has a bounded queue. When it is full, a signal the
//! subscriber is to acknowledge (a requested label it declared, or `live-response` for a live
//! command or message) waits for room in a task of its own, at most the signal's timeout: that
//! subscriber's backlog pushes back on its own acknowledgements only, never on the other
//! subscribers or the shards. Any other signal (QoS 0) is dropped and counted.

use super::acks::{
    AckIssuer, AckRequest, Outcome as AckOutcome, PendingAcks, RequestKind, MAX_TIMEOUT,
};
use super::pubsub::{Hub, Kind, PublishContext, Skipped, SubscriberId, Subscription};
use crate::things::{EventSink, ThingChange};
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::sync::{Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use twinwire_protocol::headers::names;
use twinwire_protocol::{AckLabel, DittoError, Envelope};

/// Where one subscriber's deliveries go.
#[derive(Debug, Clone)]
pub struct Outlet {
    pub sender: mpsc::Sender<Envelope>,
    /// The subscriber as an issuer of acknowledgements (its weak acks, its own signals).
    pub issuer: Option<AckIssuer>,
    /// Signals it is to acknowledge that found its queue full, in order.
    overflow: Arc<Overflow>,
}

impl Outlet {
    pub fn new(sender: mpsc::Sender<Envelope>, issuer: Option<AckIssuer>) -> Self {
        Outlet {
            sender,
            issuer,
            overflow: Arc::default(),
        }
    }
}

/// Deliveries waiting for room in a subscriber's queue, each until its signal's deadline; one
/// task at a time moves them into the queue, in order.
#[derive(Debug, Default)]
struct Overflow {
    waiting: Mutex<VecDeque<(Envelope, tokio::time::Instant)>>,
    draining: AtomicBool,
}

impl Overflow {
    fn queue(&self) -> MutexGuard<'_, VecDeque<(Envelope, tokio::time::Instant)>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn is_empty(&self) -> bool {
        self.queue().is_empty()
    }

    /// Queues a delivery and makes sure a task drains the overflow; `false` without a runtime.
    fn push(
        self: &Arc<Self>,
        sender: &mpsc::Sender<Envelope>,
        envelope: Envelope,
        timeout: Duration,
    ) -> bool {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return false;
        };
        self.queue()
            .push_back((envelope, tokio::time::Instant::now() + timeout));
        if !self.draining.swap(true, Ordering::AcqRel) {
            let overflow = Arc::clone(self);
            let sender = sender.clone();
            runtime.spawn(async move { overflow.drain(sender).await });
        }
        true
    }

    async fn drain(&self, sender: mpsc::Sender<Envelope>) {
        loop {
            let next = self.queue().pop_front();
            let Some((envelope, deadline)) = next else {
                self.draining.store(false, Ordering::Release);
                // A push between the pop and the store found `draining` still set.
                if self.is_empty() || self.draining.swap(true, Ordering::AcqRel) {
                    return;
                }
                continue;
            };
            // Past its deadline the request timed out already: nobody waits for it.
            if tokio::time::timeout_at(deadline, sender.send(envelope)).await != Ok(Ok(())) {
                tracing::debug!("a signal waiting for a slow subscriber timed out");
            }
        }
    }
}

#[derive(Debug, Default)]
struct State {
    hub: Hub,
    outlets: HashMap<SubscriberId, Outlet>,
    /// Subscriptions with extra fields: while there are any, changes carry the thing.
    enriching: usize,
}

/// Counters since the publisher was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PublisherStats {
    pub subscriptions: usize,
    pub delivered: u64,
    /// Deliveries lost to a full queue.
    pub dropped: u64,
}

/// The subscriptions and their outlets. `Send + Sync`; shared as an `Arc`.
#[derive(Debug)]
pub struct Publisher {
    state: RwLock<State>,
    acks: PendingAcks,
    delivered: AtomicU64,
    dropped: AtomicU64,
}

impl Publisher {
    pub fn new(acks: PendingAcks) -> Self {
        Publisher {
            state: RwLock::new(State::default()),
            acks,
            delivered: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }

    // Every update leaves the state consistent, so a panic elsewhere does not poison it.
    fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn acks(&self) -> &PendingAcks {
        &self.acks
    }

    /// Adds or replaces a subscription; answers whether some subscription now wants extra
    /// fields. Refused subscriptions (bad extra fields) leave everything as it was.
    pub fn subscribe(&self, sub: Subscription, outlet: Outlet) -> Result<bool, DittoError> {
        let mut state = self.write();
        let id = sub.id.clone();
        let enriches = sub.extra_fields.is_some();
        let replaced = state.hub.get(&id).map(|s| s.extra_fields.is_some());
        state.hub.subscribe(sub)?;
        state.enriching =
            state.enriching - usize::from(replaced == Some(true)) + usize::from(enriches);
        state.outlets.insert(id, outlet);
        Ok(state.enriching > 0)
    }

    /// Removes a subscription; answers whether some subscription still wants extra fields.
    pub fn unsubscribe(&self, id: &SubscriberId) -> bool {
        let mut state = self.write();
        if let Some(sub) = state.hub.get(id) {
            let enriched = sub.extra_fields.is_some();
            state.hub.unsubscribe(id);
            state.enriching -= usize::from(enriched);
        }
        state.outlets.remove(id);
        state.enriching > 0
    }

    /// Removes every subscription of an origin; answers whether some subscription still wants
    /// extra fields.
    pub fn unsubscribe_origin(&self, origin: &str) -> bool {
        let ids: Vec<SubscriberId> = self
            .read()
            .outlets
            .keys()
            .filter(|id| id.origin() == origin)
            .cloned()
            .collect();
        let mut enriching = self.read().enriching > 0;
        for id in &ids {
            enriching = self.unsubscribe(id);
        }
        enriching
    }

    /// Deliveries queued for an origin's subscribers and not yet taken.
    pub fn pending_for(&self, origin: &str) -> usize {
        self.read()
            .outlets
            .iter()
            .filter(|(id, _)| id.origin() == origin)
            .map(|(_, outlet)| outlet.sender.max_capacity() - outlet.sender.capacity())
            .max()
            .unwrap_or(0)
    }

    pub fn stats(&self) -> PublisherStats {
        PublisherStats {
            subscriptions: self.read().hub.len(),
            delivered: self.delivered.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
        }
    }

    /// Fans a signal out and answers the issuers it reached, including those skipped as its
    /// own origin (which Ditto does not weakly acknowledge either) and those whose queue was
    /// full (whose requests must time out, not be weakly acknowledged).
    pub fn publish(&self, signal: &Envelope, ctx: &PublishContext<'_>) -> Vec<AckIssuer> {
        let state = self.read();
        let mut reached = Vec::new();
        let mut delivered = 0u64;
        let mut dropped = 0u64;
        state.hub.publish_each(signal, ctx, |id, outcome| {
            let Some(outlet) = state.outlets.get(id) else {
                return;
            };
            match outcome {
                Ok(mut envelope) => {
                    envelope.headers.strip_internal_for_delivery();
                    let awaited = awaited_from(signal, outlet, &self.acks);
                    // Behind a backlog, a signal to acknowledge queues up behind it (order kept)
                    // and any other is dropped (a later one must not overtake it).
                    let sent = if outlet.overflow.is_empty() {
                        outlet.sender.try_send(envelope)
                    } else {
                        Err(TrySendError::Full(envelope))
                    };
                    match sent {
                        Ok(()) => delivered += 1,
                        Err(TrySendError::Full(envelope)) if awaited => {
                            let timeout = signal.headers.timeout().unwrap_or(MAX_TIMEOUT).min(MAX_TIMEOUT);
                            if outlet.overflow.push(&outlet.sender, envelope, timeout) {
                                delivered += 1;
                            } else {
                                dropped += 1;
                            }
                        }
                        Err(TrySendError::Full(_)) => {
                            dropped += 1;
                            tracing::warn!(subscriber = %id, topic = %signal.topic, "delivery queue full, signal dropped");
                        }
                        // The subscriber is going away; its unsubscribe follows.
                        Err(TrySendError::Closed(_)) => {}
                    }
                }
                Err(Skipped::OwnOrigin) => {}
                Err(Skipped::FilteredOut | Skipped::NotReadable) => return,
            }
            if let Some(issuer) = &outlet.issuer {
                if !reached.contains(issuer) {
                    reached.push(issuer.clone());
                }
            }
        });
        self.delivered.fetch_add(delivered, Ordering::Relaxed);
        self.dropped.fetch_add(dropped, Ordering::Relaxed);
        count_deliveries(signal, "delivered", delivered);
        count_deliveries(signal, "dropped", dropped);
        reached
    }

    /// Publishes a signal and issues weak acks for the labels it requests whose declarers it
    /// did not reach.
    pub fn publish_acknowledged(&self, signal: &Envelope, ctx: &PublishContext<'_>) {
        let reached = self.publish(signal, ctx);
        if signal.headers.contains(names::REQUESTED_ACKS) {
            self.acks.issue_weak_acks(signal, &reached);
        }
    }
}

/// Whether the subscriber is to acknowledge the signal: it requests a label the subscriber
/// declared, or `live-response` (a live command or message, answered by its receiver).
fn awaited_from(signal: &Envelope, outlet: &Outlet, acks: &PendingAcks) -> bool {
    let Ok(Some(labels)) = signal.headers.requested_acks() else {
        return false;
    };
    labels.iter().any(|label| {
        label.as_str() == twinwire_protocol::acks::LIVE_RESPONSE
            || outlet
                .issuer
                .as_ref()
                .is_some_and(|issuer| acks.declared().declarer(label).as_ref() == Some(issuer))
    })
}

impl Publisher {
    /// Publishes an announcement that requests acknowledgements, and again after each attempt
    /// that was not acknowledged in time or was refused (docs/basic-policy.md: the `timeout` is
    /// "how long to wait for acknowledgements before retrying"), until the subjects' deletion
    /// time has passed and it was tried [`ANNOUNCEMENT_ATTEMPTS_AFTER_DELETION`] times since.
    async fn announce_until_acknowledged(&self, announcement: Envelope, labels: Vec<AckLabel>) {
        let timeout = announcement
            .headers
            .timeout()
            .unwrap_or(ANNOUNCEMENT_ACK_TIMEOUT)
            .min(MAX_TIMEOUT);
        let delete_at = announcement
            .value
            .as_ref()
            .and_then(|v| v.get("deleteAt"))
            .and_then(serde_json::Value::as_str)
            .and_then(crate::policies::rules::parse_instant);
        let ctx = PublishContext::new(Kind::PolicyAnnouncements);
        let mut after_deletion = 0;
        loop {
            let request = AckRequest {
                kind: RequestKind::Other,
                labels: labels.clone(),
                response_required: false,
                timeout,
                outcome: AckOutcome::NoResponseAfterAcks,
            };
            let waiter = match self.acks.register(&announcement, request) {
                Ok(Some(waiter)) => waiter,
                Ok(None) => return,
                Err(error) => {
                    tracing::warn!(%error, topic = %announcement.topic, "announcement not tracked");
                    self.publish(&announcement, &ctx);
                    return;
                }
            };
            self.publish_acknowledged(&announcement, &ctx);
            let completion = waiter.completion().await;
            let acknowledged = !completion.timed_out
                && completion
                    .acks
                    .iter()
                    .all(|a| (200..300).contains(&a.status));
            if acknowledged {
                return;
            }
            if delete_at.is_none_or(|at| at <= chrono::Utc::now()) {
                after_deletion += 1;
                if after_deletion >= ANNOUNCEMENT_ATTEMPTS_AFTER_DELETION {
                    tracing::warn!(topic = %announcement.topic, "announcement never acknowledged; given up");
                    return;
                }
            }
            tracing::debug!(topic = %announcement.topic, status = completion.status(), "announcement not acknowledged; publishing again");
            if completion.timed_out {
                continue;
            }
            // Refused rather than timed out: wait as long before trying again.
            tokio::time::sleep(timeout).await;
        }
    }
}

/// How long an announcement waits for its acks when its `requestedAcks` name no timeout.
pub const ANNOUNCEMENT_ACK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Attempts at an unacknowledged announcement once its subjects are deleted.
pub const ANNOUNCEMENT_ATTEMPTS_AFTER_DELETION: u32 = 3;

impl EventSink for Publisher {
    fn thing_changed(&self, change: ThingChange) {
        for event in &change.events {
            let origin = event.headers.get_str(names::DITTO_ORIGIN);
            let mut ctx = PublishContext::new(Kind::TwinEvents);
            if let Some(origin) = origin.as_deref() {
                ctx = ctx.with_origin(origin);
            }
            if let Some(policy) = &change.policy {
                ctx = ctx.with_enforcer(&policy.enforcer);
            }
            if let Some(thing) = &change.thing {
                ctx = ctx.with_thing(thing);
            }
            self.publish_acknowledged(event, &ctx);
        }
    }

    fn policy_announcement(self: Arc<Self>, announcement: Envelope) {
        let labels = announcement
            .headers
            .requested_acks()
            .ok()
            .flatten()
            .unwrap_or_default();
        let ctx = PublishContext::new(Kind::PolicyAnnouncements);
        if labels.is_empty() {
            self.publish(&announcement, &ctx);
            return;
        }
        tokio::spawn(async move { self.announce_until_acknowledged(announcement, labels).await });
    }
}

/// Signals out, by kind and channel (`twinwire_deliveries_total`).
fn count_deliveries(signal: &Envelope, outcome: &'static str, count: u64) {
    if count > 0 {
        metrics::counter!(
            "twinwire_deliveries_total",
            "group" => signal.topic.group.as_str(),
            "channel" => signal.topic.channel.as_str(),
            "criterion" => signal.topic.criterion.name(),
            "outcome" => outcome,
        )
        .increment(count);
    }
}
