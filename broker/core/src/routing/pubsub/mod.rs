//! Pub/sub (issue 5, items 1 and 2): who receives which event, live signal and announcement.
//! Pure and synchronous: no I/O, no await, no locks of its own. [`Hub::publish`] takes `&self`
//! and hands each delivery to a sink the caller gives, so the engine can share one hub behind
//! an `RwLock` (publishing under the read lock, subscribing under the write lock) and do the
//! sending itself.
//!
//! A signal reaches a subscription when, in this order:
//!
//! 1. it is of a [`Kind`] the subscription asked for, in one of its namespaces (or it asked for
//!    all): an `index` lookup, so subscribers of other kinds or namespaces cost nothing;
//! 2. it was not caused by the subscriber's own origin (docs/basic-signals.md: "not published to
//!    the same origin"; Ditto's `StreamingSessionActor.isSameOrigin`);
//! 3. the subscriber may READ something of it (`view`): events are cut to the readable parts;
//! 4. its extra fields, read from the thing after the signal and cut to what the subscriber may
//!    READ, are placed in `extra` (`enrich`, docs/basic-enrichment.md);
//! 5. the RQL filter holds for the thing `filter` builds from the readable event and the extra
//!    fields, with the signal's `topic:*` and `resource:*` placeholders and one `time:now` per
//!    publish (docs/basic-changenotifications.md). A filter on placeholders alone is tested
//!    before 3, being the cheapest way to rule a subscriber out.
//!
//! - `subscription`: [`Subscription`], [`SubscriberId`], [`Kind`].
//! - `index`: subscriptions bucketed by kind and namespace.
//! - `view`: what of a signal a subscriber may see, per kind.
//! - `enrich`: extraFields compiled, resolved per signal and cut to READ.
//! - `filter`: the thing an RQL filter sees (Ditto's `ThingEventToThingConverter`).
//!
//! Mirrors Ditto's gateway (`StreamingSessionActor`, `StreamingSession`, `SessionedSignal`,
//! `WebSocketRoute.postprocess`) and connectivity (`SignalFilter`,
//! `OutboundMappingProcessorActor`) where they decide the same things.

mod enrich;
mod filter;
mod index;
mod subscription;
mod view;

pub use subscription::{parse_filter, Kind, Kinds, SubscriberId, Subscription};

use crate::policies::enforcer::Enforcer;
use enrich::ExtraFields;
use index::Index;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use twinwire_protocol::rql::ThingContext;
use twinwire_protocol::{DittoError, Envelope, JsonPointer};

/// What the publisher knows about a signal beyond the envelope.
#[derive(Debug, Clone, Copy)]
pub struct PublishContext<'a> {
    pub kind: Kind,
    /// The connection or session that caused the signal (Ditto's `origin` header): none of its
    /// subscribers receive it.
    pub origin: Option<&'a str>,
    /// The compiled policy of the thing the signal is about. `None`: nobody receives a thing
    /// signal (its policy is gone); announcements need none.
    pub enforcer: Option<&'a Enforcer>,
    /// The thing's JSON after the signal, for extra fields. `None` (deleted, not loaded): no
    /// `extra` ("Deleted events cannot be enriched with the deleted values").
    pub thing: Option<&'a Value>,
    /// "Now" for `time:` values in filters; `None` reads the clock once per publish.
    pub now_millis: Option<i64>,
}

impl<'a> PublishContext<'a> {
    pub fn new(kind: Kind) -> Self {
        PublishContext {
            kind,
            origin: None,
            enforcer: None,
            thing: None,
            now_millis: None,
        }
    }

    /// The context of a signal whose kind its topic tells ([`Kind::of`]).
    pub fn for_signal(signal: &Envelope) -> Option<Self> {
        Kind::of(signal).map(Self::new)
    }

    pub fn with_origin(mut self, origin: &'a str) -> Self {
        self.origin = Some(origin);
        self
    }

    pub fn with_enforcer(mut self, enforcer: &'a Enforcer) -> Self {
        self.enforcer = Some(enforcer);
        self
    }

    pub fn with_thing(mut self, thing: &'a Value) -> Self {
        self.thing = Some(thing);
        self
    }

    pub fn with_now_millis(mut self, now_millis: i64) -> Self {
        self.now_millis = Some(now_millis);
        self
    }
}

/// Counters since the hub was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct HubStats {
    /// Subscriptions held now.
    pub subscriptions: usize,
    /// Subscriptions looked at by publishing: those the index found for a signal's kind and
    /// namespace. Subscribers of other kinds and namespaces never count here.
    pub evaluated: u64,
    /// Envelopes handed to a sink.
    pub delivered: u64,
}

/// A subscription as the hub keeps it: compiled for publishing.
#[derive(Debug)]
struct Entry {
    sub: Subscription,
    extra: Option<ExtraFields>,
    /// The thing fields the filter reads; none: it reads only placeholders, or there is none.
    filter_reads: Vec<JsonPointer>,
}

/// The subscriptions, indexed, and the fan-out of signals to them. `Send + Sync`.
#[derive(Debug, Default)]
pub struct Hub {
    entries: Vec<Option<Entry>>,
    free: Vec<u32>,
    slots: HashMap<SubscriberId, u32>,
    index: Index,
    evaluated: AtomicU64,
    delivered: AtomicU64,
}

impl Hub {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a subscription, or replaces the one with the same ID (a WebSocket session sending
    /// `START-SEND-EVENTS` again changes its filter). Its extra fields are checked here:
    /// `json.fieldselector.invalid` or `placeholder:unresolved` (400) refuse it, and an
    /// existing subscription of that ID stays as it was.
    pub fn subscribe(&mut self, sub: Subscription) -> Result<(), DittoError> {
        let extra = sub
            .extra_fields
            .as_deref()
            .map(ExtraFields::compile)
            .transpose()?;
        self.unsubscribe(&sub.id);
        let filter_reads = sub
            .filter
            .as_ref()
            .map(|f| f.properties().into_iter().cloned().collect())
            .unwrap_or_default();
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                // A u32 slot per subscription: four billion subscribers is beyond any broker.
                let slot = u32::try_from(self.entries.len()).unwrap_or(u32::MAX);
                self.entries.push(None);
                slot
            }
        };
        self.index.insert(slot, sub.kinds, sub.namespace_list());
        self.slots.insert(sub.id.clone(), slot);
        self.entries[slot as usize] = Some(Entry {
            sub,
            extra,
            filter_reads,
        });
        Ok(())
    }

    /// Removes a subscription; `false` if there was none of that ID.
    pub fn unsubscribe(&mut self, id: &SubscriberId) -> bool {
        let Some(slot) = self.slots.remove(id) else {
            return false;
        };
        if let Some(entry) = self.entries[slot as usize].take() {
            self.index
                .remove(slot, entry.sub.kinds, entry.sub.namespace_list());
        }
        self.free.push(slot);
        true
    }

    /// Removes every subscription of an origin (a session that closed, a connection that
    /// stopped); answers how many there were.
    pub fn unsubscribe_origin(&mut self, origin: &str) -> usize {
        let ids: Vec<SubscriberId> = self
            .slots
            .keys()
            .filter(|id| id.origin() == origin)
            .cloned()
            .collect();
        ids.iter().filter(|id| self.unsubscribe(id)).count()
    }

    pub fn get(&self, id: &SubscriberId) -> Option<&Subscription> {
        let slot = *self.slots.get(id)?;
        self.entries[slot as usize].as_ref().map(|e| &e.sub)
    }

    pub fn len(&self) -> usize {
        self.slots.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    pub fn stats(&self) -> HubStats {
        HubStats {
            subscriptions: self.len(),
            evaluated: self.evaluated.load(Ordering::Relaxed),
            delivered: self.delivered.load(Ordering::Relaxed),
        }
    }

    /// Fans `signal` out: every subscription it reaches gets its own envelope, cut to what it
    /// may READ and enriched, through `deliver`. Answers how many deliveries were made.
    pub fn publish(
        &self,
        signal: &Envelope,
        ctx: &PublishContext<'_>,
        mut deliver: impl FnMut(&SubscriberId, Envelope),
    ) -> usize {
        self.publish_each(signal, ctx, |id, outcome| {
            if let Ok(envelope) = outcome {
                deliver(id, envelope);
            }
        })
    }

    /// [`publish`](Self::publish), telling also which subscriptions of the signal's kind and
    /// namespace did not receive it and why: what weak acknowledgements are issued for
    /// (docs/basic-acknowledgements.md). Subscriptions of other kinds and namespaces are not
    /// looked at, so not told of.
    pub fn publish_each(
        &self,
        signal: &Envelope,
        ctx: &PublishContext<'_>,
        mut each: impl FnMut(&SubscriberId, Result<Envelope, Skipped>),
    ) -> usize {
        let now_millis = ctx.now_millis.unwrap_or_else(system_now_millis);
        let mut evaluated = 0u64;
        let mut delivered = 0usize;
        for slot in self.index.candidates(ctx.kind, &signal.topic.namespace) {
            let Some(entry) = self.entries.get(slot as usize).and_then(Option::as_ref) else {
                continue;
            };
            evaluated += 1;
            let outcome = prepare(entry, signal, ctx, now_millis);
            delivered += usize::from(outcome.is_ok());
            each(&entry.sub.id, outcome);
        }
        self.evaluated.fetch_add(evaluated, Ordering::Relaxed);
        self.delivered
            .fetch_add(delivered as u64, Ordering::Relaxed);
        delivered
    }
}

/// Why a subscription of the signal's kind and namespace did not receive it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Skipped {
    /// Its own origin caused the signal.
    OwnOrigin,
    /// It may read nothing of the signal (or the thing's policy is gone).
    NotReadable,
    /// Its RQL filter does not hold.
    FilteredOut,
}

/// Steps 2 to 5 for one subscription: the envelope it receives, or why none.
fn prepare(
    entry: &Entry,
    signal: &Envelope,
    ctx: &PublishContext<'_>,
    now_millis: i64,
) -> Result<Envelope, Skipped> {
    let sub = &entry.sub;
    if ctx.origin == Some(sub.id.origin()) {
        return Err(Skipped::OwnOrigin);
    }
    if let Some(filter) = sub
        .filter
        .as_ref()
        .filter(|_| entry.filter_reads.is_empty())
    {
        let nothing = Value::Null;
        let rql = ThingContext::new(&nothing)
            .with_envelope(signal)
            .with_now_millis(now_millis);
        if !filter.matches(&rql) {
            return Err(Skipped::FilteredOut);
        }
    }
    let mut view = view::visible(ctx.kind, ctx.enforcer, &sub.id, &sub.auth, signal)
        .ok_or(Skipped::NotReadable)?;
    // Ditto's signals carry no `extra` of their own: only enrichment sets it.
    view.extra = None;
    let extra = match (&entry.extra, ctx.thing, ctx.enforcer) {
        (Some(fields), Some(thing), Some(enforcer)) if ctx.kind.is_thing_signal() => {
            fields.extra(signal, thing, enforcer, &sub.auth)
        }
        _ => None,
    };
    if let Some(filter) = sub
        .filter
        .as_ref()
        .filter(|_| !entry.filter_reads.is_empty())
    {
        let thing = filter::filter_thing(ctx.kind, &view, extra.as_ref(), &entry.filter_reads);
        let rql = ThingContext::new(&thing)
            .with_envelope(&view)
            .with_now_millis(now_millis);
        if !filter.matches(&rql) {
            return Err(Skipped::FilteredOut);
        }
    }
    view.extra = extra;
    Ok(view)
}

fn system_now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::AuthContext;
    use serde_json::json;

    #[test]
    fn is_send_and_sync() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<Hub>();
        shared::<Subscription>();
    }

    fn sub(origin: &str, name: &str) -> Subscription {
        Subscription::new(
            SubscriberId::new(origin, name),
            AuthContext::new(["a:b"]).unwrap().unrestricted(),
            Kind::ConnectionAnnouncements,
        )
    }

    fn opened(connection: &str) -> Envelope {
        Envelope::from_json(json!({
            "topic": format!("_/{connection}/connections/announcements/opened"),
            "path": "/", "value": {"openedAt": "2026-01-01T00:00:00Z"}
        }))
        .unwrap()
    }

    fn receivers(hub: &Hub, signal: &Envelope) -> Vec<String> {
        let mut got = Vec::new();
        let ctx = PublishContext::for_signal(signal).unwrap();
        hub.publish(signal, &ctx, |id, _| got.push(id.to_string()));
        got
    }

    #[test]
    fn subscribe_replace_and_unsubscribe() {
        let mut hub = Hub::new();
        hub.subscribe(sub("c1", "t1")).unwrap();
        hub.subscribe(sub("c1", "t2")).unwrap();
        hub.subscribe(sub("c2", "t1")).unwrap();
        assert_eq!(receivers(&hub, &opened("c1")), ["c1/t1", "c1/t2"]);
        // Replacing keeps one subscription of that ID.
        hub.subscribe(sub("c1", "t1")).unwrap();
        assert_eq!(hub.len(), 3);
        assert_eq!(receivers(&hub, &opened("c1")), ["c1/t2", "c1/t1"]);
        // A refused replacement leaves the old one.
        assert!(hub
            .subscribe(sub("c1", "t1").with_extra_fields("a("))
            .is_err());
        assert!(hub.get(&SubscriberId::new("c1", "t1")).is_some());
        assert!(hub.unsubscribe(&SubscriberId::new("c1", "t2")));
        assert!(!hub.unsubscribe(&SubscriberId::new("c1", "t2")));
        assert_eq!(receivers(&hub, &opened("c1")), ["c1/t1"]);
        assert_eq!(hub.unsubscribe_origin("c1"), 1);
        assert!(receivers(&hub, &opened("c1")).is_empty());
        assert_eq!(receivers(&hub, &opened("c2")), ["c2/t1"]);
        // Slots are reused.
        hub.subscribe(sub("c3", "t1")).unwrap();
        assert_eq!(hub.entries.len(), 3);
        let stats = hub.stats();
        assert_eq!(stats.subscriptions, 2);
        assert_eq!(stats.delivered, 6);
    }
}
