//! The twin engine's front door: a cheap, cloneable handle that routes each twin command to the
//! shard owning its thing (by a hash of the thing ID) over a bounded channel, so a busy shard
//! pushes back on its senders. Commands for one thing are applied in arrival order; different
//! things proceed in parallel on their shards.

use super::shard::{fail, Executed, Request, Shard, ShardConfig};
use crate::auth::AuthContext;
use crate::journal::{Durable, Journal, JournalError};
use serde_json::Value;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};
use twinwire_protocol::exceptions::things as exc;
use twinwire_protocol::topic::{Channel, CommandAction, Criterion, Group};
use twinwire_protocol::{Envelope, Headers, JsonPointer, ProtocolError, ThingId, Topic};

/// How the engine is sized.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Shard tasks. More shards than cores keep every core busy while one shard waits for a
    /// full journal queue.
    pub shards: usize,
    /// Things kept in memory across all shards; the least recently used beyond it are dropped
    /// and rebuilt from the journal when next addressed.
    pub max_things_in_memory: usize,
    /// Of those, the most recently used kept parsed; the others are kept as compact bytes and
    /// parsed again when addressed (about 3 µs). Bounds memory: a parsed thing of Ditto's
    /// benchmark shape takes ~3.2 KB, a compact one ~0.4 KB.
    pub max_parsed_things: usize,
    /// A snapshot every this many revisions of a thing bounds the events replayed to rebuild it.
    pub snapshot_every: u64,
    /// Commands queued per shard before senders wait.
    pub inbox_capacity: usize,
    /// Command headers stored with each event and answered as `historical-headers` (Ditto's
    /// `historical-headers-to-persist`; none by default, as in Ditto).
    pub historical_headers: Vec<String>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            shards: 16,
            max_things_in_memory: 1_000_000,
            max_parsed_things: 32_768,
            snapshot_every: 100,
            inbox_capacity: 1024,
            historical_headers: Vec::new(),
        }
    }
}

/// The handle to the running engine.
#[derive(Clone, Debug)]
pub struct ThingEngine {
    shards: Arc<[mpsc::Sender<Request>]>,
    journal: Journal,
}

impl ThingEngine {
    /// Starts the shard tasks on the current tokio runtime.
    pub fn start(journal: Journal, config: EngineConfig) -> Self {
        let shards = config.shards.max(1);
        let per_shard =
            |total: usize| NonZeroUsize::new((total / shards).max(1)).unwrap_or(NonZeroUsize::MIN);
        let parsed = config.max_parsed_things.min(config.max_things_in_memory);
        let shard_config = ShardConfig {
            max_things: per_shard(config.max_things_in_memory - parsed),
            max_parsed: per_shard(parsed),
            snapshot_every: config.snapshot_every.max(1),
            historical_headers: config.historical_headers.into(),
        };
        let senders: Vec<_> = (0..shards)
            .map(|_| {
                let (sender, inbox) = mpsc::channel(config.inbox_capacity.max(1));
                tokio::spawn(Shard::new(journal.clone(), shard_config.clone()).run(inbox));
                sender
            })
            .collect();
        ThingEngine {
            shards: senders.into(),
            journal,
        }
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// Executes a twin thing command: the response and events once the shard applied it, and
    /// a [`Durable`] for when it is on disk.
    pub async fn execute(&self, envelope: Envelope, auth: &AuthContext) -> Executed {
        self.submit(envelope, auth).await.await
    }

    /// Hands a command to its shard and returns what will answer it. Commands submitted one
    /// after the other reach their shard in that order, however their answers are awaited: a
    /// caller pipelining many commands submits in order and awaits concurrently.
    pub async fn submit(&self, envelope: Envelope, auth: &AuthContext) -> Submitted {
        let topic = &envelope.topic;
        let is_twin_command = topic.group == Group::Things
            && topic.channel == Channel::Twin
            && matches!(topic.criterion, Criterion::Commands(_));
        if !is_twin_command {
            let error = ProtocolError::UnknownSignal {
                kind: "command",
                name: format!("{topic} for the twin engine"),
            };
            return Submitted::ready(fail(&envelope, error));
        }
        if topic.criterion == Criterion::Commands(CommandAction::Retrieve) && topic.is_wildcard() {
            let engine = self.clone();
            let auth = auth.clone();
            return Submitted(State::Task(tokio::spawn(async move {
                engine.retrieve_things(envelope, auth).await
            })));
        }
        let id = match ThingId::parse(&topic.entity_id()) {
            Some(id) => id,
            None => {
                return Submitted::ready(fail(
                    &envelope,
                    ProtocolError::ThingIdInvalid {
                        id: topic.entity_id(),
                    },
                ))
            }
        };
        self.send(envelope, id, auth.clone()).await
    }

    async fn send(&self, envelope: Envelope, id: ThingId, auth: AuthContext) -> Submitted {
        let shard = &self.shards[shard_of(&id, self.shards.len())];
        let (reply, answer) = oneshot::channel();
        // Kept to answer should the shard drop the command unanswered. The error response
        // itself is built only then: built for every command, it cost more than the submit.
        let unanswered = Unanswered {
            id: id.clone(),
            correlation_id: envelope.headers.correlation_id().map(str::to_owned),
        };
        let request = Request {
            envelope,
            id,
            auth,
            reply,
        };
        if let Err(mpsc::error::SendError(request)) = shard.send(request).await {
            return Submitted::ready(fail(
                &request.envelope,
                exc::thing_unavailable(request.id.as_str()),
            ));
        }
        Submitted(State::Waiting(answer, unanswered))
    }

    /// `retrieveThings`: each thing from its shard, the found ones in the order asked for. The
    /// response leaves once every change it shows is durable.
    async fn retrieve_things(&self, envelope: Envelope, auth: AuthContext) -> Executed {
        let ids: Vec<ThingId> = match envelope
            .value
            .as_ref()
            .and_then(|v| v.get("thingIds"))
            .and_then(Value::as_array)
        {
            Some(ids) => ids
                .iter()
                .filter_map(|v| v.as_str().and_then(ThingId::parse))
                .collect(),
            None => {
                return fail(
                    &envelope,
                    ProtocolError::FieldMissing {
                        field: "value/thingIds",
                    },
                )
            }
        };
        let mut things = Vec::with_capacity(ids.len());
        for id in &ids {
            let mut single = Envelope::new(
                thing_topic(id, CommandAction::Retrieve),
                Headers::new(),
                JsonPointer::root(),
            );
            single.fields = envelope.fields.clone();
            let executed = self.send(single, id.clone(), auth.clone()).await.await;
            if executed.durable.await.is_err() {
                return fail(&envelope, exc::thing_unavailable(id.as_str()));
            }
            if executed.response.status == Some(200) {
                things.extend(executed.response.value);
            }
        }
        let mut response = envelope.response(200, Some(Value::Array(things)));
        let namespace = match ids.split_first() {
            Some((first, rest)) if rest.iter().all(|i| i.namespace() == first.namespace()) => {
                first.namespace()
            }
            _ => twinwire_protocol::id::WILDCARD,
        };
        response.topic.namespace = namespace.to_owned();
        Executed {
            response,
            events: Vec::new(),
            durable: Durable::ok(),
        }
    }

    /// Stops the shards and waits until everything they appended is durable.
    pub async fn shutdown(self) -> Result<(), JournalError> {
        let ThingEngine { shards, journal } = self;
        drop(shards);
        journal.flush().await
    }
}

/// The topic of a twin command to one thing.
fn thing_topic(id: &ThingId, action: CommandAction) -> Topic {
    Topic {
        namespace: id.namespace().to_owned(),
        name: id.name().to_owned(),
        group: Group::Things,
        channel: Channel::Twin,
        criterion: Criterion::Commands(action),
    }
}

/// The shard owning a thing: a fixed hash of its ID, stable across runs (SipHash with zero keys).
fn shard_of(id: &ThingId, shards: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.as_str().hash(&mut hasher);
    (hasher.finish() % shards as u64) as usize
}

/// The answer to a submitted command (see [`ThingEngine::submit`]).
pub struct Submitted(State);

enum State {
    /// Answered without a shard (refused, or the shard was gone): rare, so boxed to keep every
    /// `Submitted` small.
    Ready(Option<Box<Executed>>),
    /// The shard's reply, and what to answer if the shard is gone before it replies.
    Waiting(oneshot::Receiver<Executed>, Unanswered),
    Task(tokio::task::JoinHandle<Executed>),
}

/// A command a shard took: enough of it to answer `thing.unavailable` as the command's own error
/// response (its thing's topic, its correlation-id) should the shard never reply.
struct Unanswered {
    id: ThingId,
    correlation_id: Option<String>,
}

impl Unanswered {
    fn executed(&self) -> Executed {
        let mut headers = Headers::new();
        if let Some(correlation_id) = &self.correlation_id {
            headers.insert(
                twinwire_protocol::headers::names::CORRELATION_ID,
                correlation_id.as_str(),
            );
        }
        // Only twin commands reach a shard, and the error response keeps nothing of the
        // command's topic but namespace, name, group and channel.
        let command = Envelope::new(
            thing_topic(&self.id, CommandAction::Modify),
            headers,
            JsonPointer::root(),
        );
        fail(&command, exc::thing_unavailable(self.id.as_str()))
    }
}

impl Submitted {
    fn ready(executed: Executed) -> Self {
        Submitted(State::Ready(Some(Box::new(executed))))
    }
}

impl Future for Submitted {
    type Output = Executed;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Executed> {
        let gone = || -> Executed {
            let envelope = Envelope::new(thing_topic_any(), Headers::new(), JsonPointer::root());
            fail(&envelope, exc::thing_unavailable("_:_"))
        };
        match &mut self.get_mut().0 {
            State::Ready(executed) => Poll::Ready(executed.take().map_or_else(gone, |e| *e)),
            State::Waiting(answer, unavailable) => Pin::new(answer)
                .poll(cx)
                .map(|reply| reply.unwrap_or_else(|_| unavailable.executed())),
            State::Task(task) => Pin::new(task)
                .poll(cx)
                .map(|joined| joined.unwrap_or_else(|_| gone())),
        }
    }
}

fn thing_topic_any() -> Topic {
    Topic {
        namespace: twinwire_protocol::id::WILDCARD.to_owned(),
        name: twinwire_protocol::id::WILDCARD.to_owned(),
        group: Group::Things,
        channel: Channel::Twin,
        criterion: Criterion::Commands(CommandAction::Retrieve),
    }
}
