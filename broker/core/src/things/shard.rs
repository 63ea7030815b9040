//! A thing shard: the one task that owns a fixed share of the things (by ID hash). It applies
//! their commands in arrival order with no lock, appends their events to the journal, keeps the
//! recently used ones in a bounded cache and rebuilds the others from the journal on access.
//! It answers every request with what it did and a [`Durable`] for when that is on disk.

use super::enforce;
use super::event::ThingEvent;
use super::publish::{Queued, ThingChange};
use super::state::{self, Command, Outcome};
use super::thing::ThingEntity;
use crate::auth::AuthContext;
use crate::event::published_headers;
use crate::journal::appender::Appender;
use crate::journal::{Durable, Journal, JournalError, StoredSnapshot};
use crate::policies::enforcers::{Compiled, Enforcers};
use lru::LruCache;
use serde_json::{Map, Value};
use std::num::NonZeroUsize;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use twinwire_protocol::exceptions::things as exc;
use twinwire_protocol::headers::names;
use twinwire_protocol::topic::CommandAction;
use twinwire_protocol::{DittoError, Envelope, ThingId};

/// What one command produced: the response (or error response) to send back, the events to
/// publish, and when the changes they report are durable.
#[derive(Debug)]
pub struct Executed {
    pub response: Envelope,
    pub events: Vec<Envelope>,
    /// Resolves when this command's event is fsynced; for a read, when every change the read
    /// saw is. Only then may the response leave the broker or twin-persisted be issued.
    pub durable: Durable,
    /// The compiled policy the command was enforced with (a retrieve, a change), or the thing's
    /// policy (a policy look-up).
    pub policy: Option<Arc<Compiled>>,
}

impl Executed {
    /// An answer with nothing to publish.
    pub fn answer(response: Envelope, durable: Durable) -> Self {
        Executed {
            response,
            events: Vec::new(),
            durable,
            policy: None,
        }
    }
}

/// What a request to a shard asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Mode {
    /// Execute the command.
    Execute,
    /// Only whether the thing exists: answered 200 or 404, nothing enforced or changed.
    Probe,
    /// The thing's compiled policy, for enforcing a live signal: 200 or 404, with `policy`.
    Policy,
}

pub(super) struct Request {
    pub(super) envelope: Envelope,
    pub(super) id: ThingId,
    /// Who sends the command; enforcement checks it against the thing's policy.
    pub(super) auth: AuthContext,
    pub(super) mode: Mode,
    pub(super) reply: oneshot::Sender<Executed>,
}

/// The shard's settings, from [`super::EngineConfig`].
#[derive(Debug, Clone)]
pub(super) struct ShardConfig {
    /// Things kept in memory, parsed or compact.
    pub(super) max_things: NonZeroUsize,
    /// Of those, the most recently used kept parsed, ready to use.
    pub(super) max_parsed: NonZeroUsize,
    pub(super) snapshot_every: u64,
    pub(super) historical_headers: Arc<[String]>,
    /// The policies' enforcers, shared with the policy shards that keep them current.
    pub(super) enforcers: Arc<Enforcers>,
    /// Whether changes are published with the thing after them (someone enriches events).
    pub(super) thing_after_events: Arc<AtomicBool>,
    /// Where durable changes are handed on, in order; none when nothing subscribes.
    pub(super) publisher: Option<mpsc::Sender<Queued>>,
}

struct Cached {
    entity: ThingEntity,
    /// The shard's append sequence number of this thing's last append.
    last_append: u64,
}

/// A thing kept in memory as its snapshot bytes: about a tenth of its parsed size (a parsed
/// thing of Ditto's benchmark shape takes ~3.2 KB in `serde_json` maps, its bytes ~350).
struct Compact {
    revision: u64,
    last_append: u64,
    /// Whether the thing exists (not a missing or deleted ID's entry), for the in-memory gauge.
    exists: bool,
    data: Box<[u8]>,
}

impl Compact {
    fn of(cached: &Cached) -> Self {
        Compact {
            revision: cached.entity.revision,
            last_append: cached.last_append,
            exists: cached.entity.exists(),
            data: cached.entity.snapshot_data().into_boxed_slice(),
        }
    }
}

pub(super) struct Shard {
    appender: Appender,
    config: ShardConfig,
    /// The recently used things, parsed. When full, the least recently used is compacted.
    things: LruCache<ThingId, Cached>,
    /// The other things in memory, as bytes. When full, the least recently used is dropped: the
    /// journal has it.
    compact: LruCache<ThingId, Compact>,
    /// Changes made by signals of consumed messages, by thing and message key: a redelivered
    /// copy is answered from here instead of applied again (see
    /// [`Consumed`](crate::routing::Consumed)). In memory only: a restart forgets it.
    applied: LruCache<(ThingId, u64), Applied>,
    /// Existing things held in `things` and `compact` (entries of missing or deleted IDs are
    /// not counted), mirrored in the shard's `twinwire_things_in_memory` gauge.
    resident: Resident,
}

/// A shard's count of things in memory and its gauge. The gauge moves by steps rather than
/// being set, so that engines sharing a process (tests) add up; the handle is kept, so a change
/// costs no registry look-up.
struct Resident {
    count: usize,
    gauge: metrics::Gauge,
}

impl Resident {
    fn new(shard: usize) -> Self {
        Resident {
            count: 0,
            gauge: metrics::gauge!("twinwire_things_in_memory", "shard" => shard.to_string()),
        }
    }

    /// A thing came into memory (`true`) or left it (`false`).
    fn moved(&mut self, came: bool) {
        if came {
            self.count += 1;
            self.gauge.increment(1.0);
        } else if self.count > 0 {
            self.count -= 1;
            self.gauge.decrement(1.0);
        }
    }
}

impl Drop for Resident {
    /// A stopped shard's things leave memory with it.
    fn drop(&mut self) {
        self.gauge.decrement(self.count as f64);
    }
}

/// Changes remembered for redeliveries, per shard.
const APPLIED_MEMORY: NonZeroUsize = match NonZeroUsize::new(8_192) {
    Some(n) => n,
    None => NonZeroUsize::MIN,
};

/// What a keyed signal's change answered and published.
#[derive(Clone)]
struct Applied {
    status: u16,
    value: Option<Value>,
    event: Envelope,
}

/// The consumed message key a command carries, if any.
fn message_key(envelope: &Envelope) -> Option<u64> {
    envelope
        .headers
        .get_str(names::DITTO_MESSAGE_KEY)
        .and_then(|k| u64::from_str_radix(&k, 16).ok())
}

/// The journal key of a thing.
pub fn journal_key(id: &ThingId) -> String {
    format!("thing:{id}")
}

/// The event timestamp (ISO-8601, milliseconds) and the same instant in epoch milliseconds.
pub(crate) fn now() -> (String, i64) {
    let now = chrono::Utc::now();
    (
        now.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        now.timestamp_millis(),
    )
}

impl Shard {
    pub(super) fn new(journal: Journal, index: usize, config: ShardConfig) -> Self {
        Shard {
            appender: Appender::new(journal),
            things: crate::cache::lru(config.max_parsed),
            compact: crate::cache::lru(config.max_things),
            applied: crate::cache::lru(APPLIED_MEMORY),
            resident: Resident::new(index),
            config,
        }
    }

    pub(super) async fn run(mut self, mut inbox: mpsc::Receiver<Request>) {
        while let Some(request) = inbox.recv().await {
            if request.mode != Mode::Execute {
                let answer = self.look(&request);
                let _ = request.reply.send(answer);
                continue;
            }
            let executed = self
                .execute(request.envelope, request.id, &request.auth)
                .await;
            // A requester that went away no longer wants the answer; the change stands.
            let _ = request.reply.send(executed);
        }
    }

    /// Answers a probe or a policy look-up: 200 when the thing exists, else 404.
    fn look(&mut self, request: &Request) -> Executed {
        let enforcers = Arc::clone(&self.config.enforcers);
        let (exists, policy) = match self.load(&request.id) {
            Ok(cached) if cached.entity.exists() => {
                let policy = match request.mode {
                    Mode::Policy => {
                        let policy_id = cached
                            .entity
                            .thing
                            .as_ref()
                            .and_then(|t| t.policy_id())
                            .unwrap_or(request.id.as_str());
                        enforcers
                            .enforcer(policy_id, request.id.namespace())
                            .ok()
                            .flatten()
                    }
                    _ => None,
                };
                (true, policy)
            }
            _ => (false, None),
        };
        let status = if exists { 200 } else { 404 };
        let mut answer = Executed::answer(request.envelope.response(status, None), Durable::ok());
        answer.policy = policy;
        answer
    }

    async fn execute(&mut self, envelope: Envelope, id: ThingId, auth: &AuthContext) -> Executed {
        let command = match Command::from_envelope(&envelope) {
            Ok(c) => c,
            Err(e) => return fail(&envelope, e),
        };
        // Enforcement first: against the thing's current policy, whatever the command reads.
        let enforcers = Arc::clone(&self.config.enforcers);
        let (compiled, last_append) = {
            let cached = match self.load(&id) {
                Ok(c) => c,
                Err(e) => return fail(&envelope, e),
            };
            let compiled = match thing_policy(&enforcers, &cached.entity, command) {
                Ok(c) => c,
                Err(e) => return fail(&envelope, e),
            };
            let enforcer = compiled.as_deref().map(|c| &c.enforcer);
            if let Err(e) = enforce::authorize(enforcer, &cached.entity, command, auth) {
                return fail(&envelope, e);
            }
            (compiled, cached.last_append)
        };
        let key = message_key(&envelope);
        let redelivered =
            envelope.headers.get(names::DITTO_REDELIVERED) == Some(&Value::Bool(true));
        if let (Some(key), true) = (key, redelivered) {
            if let Some(applied) = self.applied.get(&(id.clone(), key)).cloned() {
                return self.replay(&envelope, &id, applied, compiled).await;
            }
        }
        let enforcer = compiled.as_deref().map(|c| &c.enforcer);
        let historical = envelope.headers.contains(names::AT_HISTORICAL_REVISION)
            || envelope.headers.contains(names::AT_HISTORICAL_TIMESTAMP);
        if command.action == twinwire_protocol::topic::CommandAction::Retrieve && historical {
            // History is read from the journal: first let this thing's queued changes reach it.
            if self
                .appender
                .durable_through(last_append)
                .await
                .await
                .is_err()
            {
                return fail(&envelope, exc::thing_unavailable(id.as_str()));
            }
            match historical_target(&envelope, self.appender.journal(), &id) {
                Ok(None) => {}
                Ok(Some(revision)) => {
                    let mut executed = self.retrieve_historical(&envelope, command, &id, revision);
                    if executed.response.status == Some(200) {
                        let value = executed.response.value.take();
                        executed.response.value =
                            value.map(|v| enforce::readable(enforcer, auth, &envelope.path, v));
                    }
                    return executed;
                }
                Err(e) => return fail(&envelope, e),
            }
        }
        let persisted_headers = self.persisted_headers(&envelope);
        let snapshot_every = self.config.snapshot_every;
        let sequence = self.appender.next_sequence();
        let want_thing = self.config.thing_after_events.load(Ordering::Relaxed);
        let publisher = self.config.publisher.clone();
        let cached = match self.load(&id) {
            Ok(c) => c,
            Err(e) => return fail(&envelope, e),
        };
        // A retrieve needs no timestamp; formatting one costs more than the retrieve's lookup.
        let (timestamp, millis) = match command.action {
            twinwire_protocol::topic::CommandAction::Retrieve => (String::new(), 0),
            _ => now(),
        };
        let (response, mut event) = match state::handle(&cached.entity, command, &timestamp) {
            Ok(Outcome::Retrieved(value)) => {
                let value = enforce::readable(enforcer, auth, &envelope.path, value);
                let mut response = envelope.response(200, Some(value));
                response.headers.insert("etag", cached.entity.etag());
                let stored_metadata = cached
                    .entity
                    .thing
                    .as_ref()
                    .and_then(|t| t.metadata.as_ref());
                if let Some(selected) = super::metadata::for_retrieve(&envelope, stored_metadata) {
                    response
                        .headers
                        .insert(twinwire_protocol::headers::names::DITTO_METADATA, selected);
                }
                match state::live_channel_condition(&cached.entity, command) {
                    Ok(None) => {}
                    Ok(Some(matched)) => {
                        response
                            .headers
                            .insert(names::LIVE_CHANNEL_CONDITION_MATCHED, matched);
                    }
                    Err(e) => return fail(&envelope, e),
                }
                let durable = self.appender.durable_through(last_append).await;
                let mut executed = Executed::answer(response, durable);
                executed.policy = compiled;
                return executed;
            }
            Ok(Outcome::Changed {
                status,
                value,
                event,
            }) => (envelope.response(status, value), event),
            Err(e) => return fail(&envelope, e),
        };
        event.headers = persisted_headers;
        let existed = cached.entity.exists();
        cached.entity.apply(&event);
        let exists = cached.entity.exists();
        cached.last_append = sequence;
        let mut response = response;
        response.headers.insert("etag", cached.entity.etag());
        let snapshot = (event.revision % snapshot_every == 0).then(|| StoredSnapshot {
            entity: journal_key(&id),
            revision: event.revision,
            timestamp_millis: millis,
            data: cached.entity.snapshot_data(),
        });
        let published = event.to_thing_envelope(&id, published_headers(&envelope));
        let stored = event.stored(journal_key(&id), millis);
        let policy = match compiled {
            Some(policy) => Some(policy),
            // A thing created under a policy it brings: the cache has it only now.
            None => thing_policy(&enforcers, &cached.entity, command)
                .ok()
                .flatten(),
        };
        let durable = match publisher {
            None => self.appender.append(vec![stored], snapshot).await,
            Some(publisher) => {
                let entity = &cached.entity;
                let thing = want_thing
                    .then(|| {
                        entity
                            .thing
                            .as_ref()
                            .map(|t| Arc::new(t.to_json(entity.revision, false)))
                    })
                    .flatten();
                let change = ThingChange {
                    events: vec![published.clone()],
                    policy: policy.clone(),
                    thing,
                };
                let (tell, told) = oneshot::channel();
                let durable = self
                    .appender
                    .append_telling(vec![stored], snapshot, Some(tell))
                    .await;
                let queued = Queued {
                    change,
                    durable: told,
                };
                if publisher.send(queued).await.is_err() {
                    tracing::warn!(thing = %id, "the event publisher stopped; event not published");
                }
                durable
            }
        };
        if existed != exists {
            // Created, or deleted: the entry stays, but as a missing thing.
            self.resident.moved(exists);
        }
        if let Some(key) = key {
            self.applied.put(
                (id.clone(), key),
                Applied {
                    status: response.status.unwrap_or(200),
                    value: response.value.clone(),
                    event: published.clone(),
                },
            );
        }
        Executed {
            response,
            events: vec![published],
            durable,
            policy,
        }
    }

    /// A redelivered signal whose change was made before: answered as then, its event
    /// published again (with this signal's headers: its requested acknowledgements), nothing
    /// applied or journaled.
    async fn replay(
        &mut self,
        envelope: &Envelope,
        id: &ThingId,
        applied: Applied,
        policy: Option<Arc<Compiled>>,
    ) -> Executed {
        let response = envelope.response(applied.status, applied.value);
        let mut event = applied.event;
        event.headers = published_headers(envelope);
        event.headers.insert(
            names::DITTO_REPLAY,
            uuid::Uuid::new_v4().simple().to_string(),
        );
        let want_thing = self.config.thing_after_events.load(Ordering::Relaxed);
        let publisher = self.config.publisher.clone();
        let (last_append, thing) = match self.load(id) {
            Ok(cached) => (
                cached.last_append,
                want_thing
                    .then(|| {
                        let entity = &cached.entity;
                        entity
                            .thing
                            .as_ref()
                            .map(|t| Arc::new(t.to_json(entity.revision, false)))
                    })
                    .flatten(),
            ),
            Err(e) => return fail(envelope, e),
        };
        tracing::debug!(thing = %id, revision = event.revision, "redelivered change answered from memory");
        let durable = self.appender.durable_through(last_append).await;
        if let Some(publisher) = publisher {
            // Durable already (the first delivery's answer waited for it); the publisher keeps
            // the thing's order.
            let (tell, told) = oneshot::channel();
            let _ = tell.send(true);
            let change = ThingChange {
                events: vec![event.clone()],
                policy: policy.clone(),
                thing,
            };
            if publisher
                .send(Queued {
                    change,
                    durable: told,
                })
                .await
                .is_err()
            {
                tracing::warn!(thing = %id, "the event publisher stopped; event not published");
            }
        }
        Executed {
            response,
            events: vec![event],
            durable,
            policy,
        }
    }

    /// The cached entity, or the one rebuilt from its snapshot and events.
    fn load(&mut self, id: &ThingId) -> Result<&mut Cached, DittoError> {
        if !self.things.contains(id) {
            let from = if self.compact.contains(id) {
                "compact"
            } else {
                "journal"
            };
            metrics::counter!("twinwire_things_loaded_total", "from" => from).increment(1);
            let cached = match self.compact.pop(id) {
                Some(compact) => Cached {
                    entity: ThingEntity::from_snapshot(id.clone(), compact.revision, &compact.data).map_err(|e| {
                        // The compact copy is gone: it no longer counts as in memory.
                        if compact.exists {
                            self.resident.moved(false);
                        }
                        tracing::error!(thing = %id, error = %e, "a compacted thing does not parse");
                        exc::thing_unavailable(id.as_str())
                    })?,
                    last_append: compact.last_append,
                },
                None => {
                    let entity = recover(self.appender.journal(), id, u64::MAX)?;
                    if entity.exists() {
                        self.resident.moved(true);
                    }
                    Cached { entity, last_append: 0 }
                }
            };
            if let Some((evicted_id, evicted)) = self.things.push(id.clone(), cached) {
                if &evicted_id != id {
                    metrics::counter!("twinwire_things_evicted_total", "to" => "compact")
                        .increment(1);
                    if let Some((_, dropped)) = self.compact.push(evicted_id, Compact::of(&evicted))
                    {
                        metrics::counter!("twinwire_things_evicted_total", "to" => "journal")
                            .increment(1);
                        if dropped.exists {
                            self.resident.moved(false);
                        }
                    }
                }
            }
        }
        self.things
            .get_mut(id)
            .ok_or_else(|| exc::thing_unavailable(id.as_str()))
    }

    fn retrieve_historical(
        &mut self,
        envelope: &Envelope,
        command: Command<'_>,
        id: &ThingId,
        revision: u64,
    ) -> Executed {
        let entity = match recover(self.appender.journal(), id, revision) {
            Ok(e) if e.revision == revision && e.exists() => e,
            Ok(_) => {
                return fail(
                    envelope,
                    exc::thing_history_not_found_at_revision(id.as_str(), revision),
                )
            }
            Err(e) => return fail(envelope, e),
        };
        let (timestamp, _) = now();
        match state::handle(&entity, command, &timestamp) {
            Ok(outcome) => {
                let mut response = outcome.response_to(envelope);
                if let Some(headers) = historical_headers(self.appender.journal(), id, revision) {
                    response
                        .headers
                        .insert("historical-headers", Value::Object(headers));
                }
                Executed::answer(response, Durable::ok())
            }
            Err(e) => fail(envelope, e),
        }
    }

    fn persisted_headers(&self, envelope: &Envelope) -> Option<Map<String, Value>> {
        let mut kept = Map::new();
        for name in self.config.historical_headers.iter() {
            if let Some(v) = envelope.headers.get(name) {
                kept.insert(name.clone(), v.clone());
            }
        }
        (!kept.is_empty()).then_some(kept)
    }
}

/// The compiled policy a command is enforced with: the thing's policy, or for a command that
/// creates the thing, the one it names (its own ID by default). `None`: that policy does not
/// exist; also for commands to a missing thing, which answer not found whatever the policy.
fn thing_policy(
    enforcers: &Enforcers,
    entity: &ThingEntity,
    command: Command<'_>,
) -> Result<Option<Arc<Compiled>>, DittoError> {
    let id = entity.id.as_str();
    let policy_id = match &entity.thing {
        Some(thing) => thing.policy_id().unwrap_or(id),
        None if command.resource == twinwire_protocol::signal::ThingResource::Thing
            && matches!(
                command.action,
                CommandAction::Create | CommandAction::Modify
            ) =>
        {
            command
                .envelope
                .value
                .as_ref()
                .and_then(|v| v.get("policyId"))
                .and_then(Value::as_str)
                .unwrap_or(id)
        }
        None => return Ok(None),
    };
    enforcers.enforcer(policy_id, entity.id.namespace())
}

/// The error response for a command, with nothing to publish and nothing to wait for.
pub(crate) fn fail(envelope: &Envelope, error: impl Into<DittoError>) -> Executed {
    Executed::answer(envelope.error_response(&error.into()), Durable::ok())
}

/// Rebuilds a thing at a revision (`u64::MAX`: its latest) from the journal.
fn recover(journal: &Journal, id: &ThingId, up_to: u64) -> Result<ThingEntity, DittoError> {
    let key = journal_key(id);
    let unavailable = |e: JournalError| {
        tracing::error!(thing = %id, error = %e, "cannot read the thing from the journal");
        exc::thing_unavailable(id.as_str())
    };
    let recovery = journal.recover(&key, up_to).map_err(unavailable)?;
    let mut entity = match &recovery.snapshot {
        Some(s) => ThingEntity::from_snapshot(id.clone(), s.revision, &s.data).map_err(|e| {
            tracing::error!(thing = %id, error = %e, "unreadable snapshot");
            exc::thing_unavailable(id.as_str())
        })?,
        None => ThingEntity::new(id.clone()),
    };
    for stored in &recovery.events {
        let event = ThingEvent::decode(&key, stored.revision, &stored.data).map_err(|e| {
            tracing::error!(thing = %id, error = %e, "unreadable event");
            exc::thing_unavailable(id.as_str())
        })?;
        entity.apply(&event);
    }
    Ok(entity)
}

/// The revision an `at-historical-revision` or `at-historical-timestamp` header asks for.
fn historical_target(
    envelope: &Envelope,
    journal: &Journal,
    id: &ThingId,
) -> Result<Option<u64>, DittoError> {
    let headers = &envelope.headers;
    if let Some(revision) = headers.at_historical_revision()? {
        return Ok(Some(revision));
    }
    let Some(timestamp) = headers.at_historical_timestamp()? else {
        return Ok(None);
    };
    let millis = chrono::DateTime::parse_from_rfc3339(timestamp)
        .map(|t| t.timestamp_millis())
        .map_err(|_| exc::thing_history_not_found_at_timestamp(id.as_str(), timestamp))?;
    match journal.store().revision_at(&journal_key(id), millis) {
        Ok(Some(revision)) => Ok(Some(revision)),
        Ok(None) => Err(exc::thing_history_not_found_at_timestamp(
            id.as_str(),
            timestamp,
        )),
        Err(e) => {
            tracing::error!(thing = %id, error = %e, "cannot read the thing's history");
            Err(exc::thing_unavailable(id.as_str()))
        }
    }
}

/// The headers persisted with the event of a revision, for `historical-headers`.
fn historical_headers(
    journal: &Journal,
    id: &ThingId,
    revision: u64,
) -> Option<Map<String, Value>> {
    let key = journal_key(id);
    let stored = journal
        .store()
        .read_events(&key, revision, revision)
        .ok()?
        .pop()?;
    ThingEvent::decode(&key, revision, &stored.data)
        .ok()?
        .headers
}
