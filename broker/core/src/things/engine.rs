//! The twin engine's front door: a cheap, cloneable handle that routes each twin command to the
//! shard owning its thing (by a hash of the thing ID) over a bounded channel, so a busy shard
//! pushes back on its senders. Commands for one thing are applied in arrival order; different
//! things proceed in parallel on their shards.

#[cfg(doc)]
use super::publish::ThingChange;
use super::publish::{self, EventSink};
use super::shard::{fail, Executed, Mode, Request, Shard, ShardConfig};
use crate::auth::AuthContext;
use crate::journal::{Durable, Journal, JournalError};
use crate::policies::enforcers::{Compiled, Enforcers};
use crate::policies::shard::{PolicyRequest, PolicyShard};
use crate::policies::state::PolicyConfig;
use serde_json::Value;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::num::NonZeroUsize;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::{mpsc, oneshot};
use twinwire_protocol::exceptions::things as exc;
use twinwire_protocol::topic::{Channel, CommandAction, Criterion, Group};
use twinwire_protocol::{
    DittoError, Envelope, Headers, JsonPointer, PolicyId, ProtocolError, ThingId, Topic,
};

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
    /// Policy shard tasks; policies are few beside things.
    pub policy_shards: usize,
    /// Policies kept in memory per policy shard.
    pub policies_per_shard: usize,
    /// Policies (and compiled enforcers) kept for enforcement across all shards.
    pub max_enforcers_in_memory: usize,
    /// The operator's policy rules (lockout prevention, expiry granularity).
    pub policy_rules: PolicyConfig,
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
            policy_shards: 4,
            policies_per_shard: 25_000,
            max_enforcers_in_memory: 100_000,
            policy_rules: PolicyConfig::default(),
        }
    }
}

/// The handle to the running engine.
#[derive(Clone, Debug)]
pub struct ThingEngine {
    shards: Arc<[mpsc::Sender<Request>]>,
    policy_shards: Arc<[mpsc::Sender<PolicyRequest>]>,
    enforcers: Arc<Enforcers>,
    journal: Journal,
    thing_after_events: Arc<AtomicBool>,
}

impl ThingEngine {
    /// Starts the shard tasks on the current tokio runtime, publishing nothing.
    pub fn start(journal: Journal, config: EngineConfig) -> Self {
        Self::start_publishing(journal, config, None)
    }

    /// Starts the shard tasks, handing every durable change (in order per thing) and every
    /// policy announcement to `sink`.
    pub fn start_publishing(
        journal: Journal,
        config: EngineConfig,
        sink: Option<Arc<dyn EventSink>>,
    ) -> Self {
        let shards = config.shards.max(1);
        let enforcers = Arc::new(Enforcers::new(
            journal.clone(),
            config.max_enforcers_in_memory,
        ));
        let policy_capacity =
            NonZeroUsize::new(config.policies_per_shard.max(1)).unwrap_or(NonZeroUsize::MIN);
        let policy_senders: Vec<_> = (0..config.policy_shards.max(1))
            .map(|_| {
                let (sender, inbox) = mpsc::channel(config.inbox_capacity.max(1));
                let shard = PolicyShard::new(
                    journal.clone(),
                    policy_capacity,
                    config.policy_rules.clone(),
                    config.snapshot_every.max(1),
                    Arc::clone(&enforcers),
                    sink.clone(),
                );
                tokio::spawn(shard.run(inbox));
                sender
            })
            .collect();
        let per_shard =
            |total: usize| NonZeroUsize::new((total / shards).max(1)).unwrap_or(NonZeroUsize::MIN);
        let parsed = config.max_parsed_things.min(config.max_things_in_memory);
        let thing_after_events = Arc::new(AtomicBool::new(false));
        let shard_config = ShardConfig {
            max_things: per_shard(config.max_things_in_memory - parsed),
            max_parsed: per_shard(parsed),
            snapshot_every: config.snapshot_every.max(1),
            historical_headers: config.historical_headers.into(),
            enforcers: Arc::clone(&enforcers),
            thing_after_events: Arc::clone(&thing_after_events),
            publisher: None,
        };
        let senders: Vec<_> = (0..shards)
            .map(|index| {
                let (sender, inbox) = mpsc::channel(config.inbox_capacity.max(1));
                let mut shard_config = shard_config.clone();
                shard_config.publisher = sink
                    .as_ref()
                    .map(|sink| publish::spawn(Arc::clone(sink), config.inbox_capacity));
                tokio::spawn(Shard::new(journal.clone(), index, shard_config).run(inbox));
                sender
            })
            .collect();
        ThingEngine {
            shards: senders.into(),
            policy_shards: policy_senders.into(),
            enforcers,
            journal,
            thing_after_events,
        }
    }

    /// Whether published changes carry the thing as it is after them ([`ThingChange::thing`]): on
    /// while some subscriber enriches events with extra fields, off otherwise, since copying
    /// the thing costs every change.
    pub fn set_thing_after_events(&self, on: bool) {
        self.thing_after_events.store(on, Ordering::Relaxed);
    }

    /// Whether a thing exists, and its compiled policy (for live signals, which the engine
    /// does not execute but whose sender and receivers its policy decides). Asked of the
    /// thing's shard, in order with its commands.
    pub async fn thing_policy(&self, id: &ThingId) -> (bool, Option<Arc<Compiled>>) {
        let answer = self.look(id, Mode::Policy).await;
        (answer.response.status == Some(200), answer.policy)
    }

    async fn look(&self, id: &ThingId, mode: Mode) -> Executed {
        let shard = &self.shards[shard_of(id, self.shards.len())];
        let (reply, answer) = oneshot::channel();
        let probe = Envelope::new(
            thing_topic(id, CommandAction::Retrieve),
            Headers::new(),
            JsonPointer::root(),
        );
        let unavailable = || fail(&probe, exc::thing_unavailable(id.as_str()));
        let request = Request {
            envelope: probe.clone(),
            id: id.clone(),
            auth: AuthContext::none(),
            mode,
            reply,
        };
        if shard.send(request).await.is_err() {
            return unavailable();
        }
        answer.await.unwrap_or_else(|_| unavailable())
    }

    /// Requests queued for each thing shard and not yet taken (its backlog).
    pub fn shard_queue_depths(&self) -> Vec<usize> {
        self.shards
            .iter()
            .map(|s| s.max_capacity() - s.capacity())
            .collect()
    }

    pub fn journal(&self) -> &Journal {
        &self.journal
    }

    /// The compiled policies, for filtering what subscribers see of events.
    pub fn enforcers(&self) -> &Arc<Enforcers> {
        &self.enforcers
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
        if topic.group == Group::Policies && matches!(topic.criterion, Criterion::Commands(_)) {
            return self.send_policy_command(envelope, auth.clone()).await;
        }
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
        let creates_or_replaces = envelope.path.is_root()
            && matches!(
                topic.criterion,
                Criterion::Commands(CommandAction::Create | CommandAction::Modify)
            );
        // A new thing needs its policy first (Ditto's thing creation): only then may the
        // thing's shard check the command against it. The common case, an existing policy
        // named by `policyId`, needs no look at the thing: its shard does the rest.
        if creates_or_replaces
            && !self.names_existing_policy(&envelope)
            && !self.thing_exists(&id).await
        {
            if let Err(e) = self.prepare_policy(&envelope, &id, auth).await {
                return Submitted::ready(fail(&envelope, e));
            }
        }
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
            mode: Mode::Execute,
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

    /// Whether a thing JSON names an existing policy and brings none of its own.
    fn names_existing_policy(&self, envelope: &Envelope) -> bool {
        let Some(value) = envelope.value.as_ref().and_then(Value::as_object) else {
            return false;
        };
        if value.contains_key("_policy") || value.contains_key("_copyPolicyFrom") {
            return false;
        }
        value
            .get("policyId")
            .and_then(Value::as_str)
            .is_some_and(|id| self.enforcers.exists(id).unwrap_or(false))
    }

    /// Whether a thing exists now, asked of its shard (in order with its commands).
    async fn thing_exists(&self, id: &ThingId) -> bool {
        self.look(id, Mode::Probe).await.response.status == Some(200)
    }

    /// Makes sure the policy a new thing will have exists (Ditto's thing creation): a copy of
    /// another policy (`_copyPolicyFrom`: a policy ID or `{{ ref:things/<id>/policyId }}`), an
    /// inline `_policy`, an existing `policyId`, or else a default policy with the thing's ID
    /// granting the first subject READ and WRITE on `thing:/`, `policy:/` and `message:/`.
    async fn prepare_policy(
        &self,
        envelope: &Envelope,
        id: &ThingId,
        auth: &AuthContext,
    ) -> Result<(), DittoError> {
        let Some(value) = envelope.value.as_ref().and_then(Value::as_object) else {
            return Ok(()); // the thing's shard answers the invalid value
        };
        let named = value.get("policyId").and_then(Value::as_str);
        let target = named.unwrap_or(id.as_str()).to_owned();
        if PolicyId::parse(&target).is_none() {
            return Err(ProtocolError::PolicyIdInvalid { id: target }.into());
        }
        let new_policy = if let Some(source) = value.get("_copyPolicyFrom") {
            let source = source.as_str().ok_or(ProtocolError::ValueType {
                signal: "createThing".into(),
                expected: "_copyPolicyFrom as a policy ID or {{ ref:things/<id>/policyId }}",
            })?;
            let source_id = match thing_reference(source) {
                Some(thing) => self.policy_id_of(&thing, auth).await?,
                None => source.to_owned(),
            };
            let mut json = self.readable_policy(&source_id, auth).await?;
            json["policyId"] = Value::from(target.as_str());
            Some(json)
        } else if let Some(inline) = value.get("_policy") {
            let mut json = inline.clone();
            if !json.is_object() {
                return Err(ProtocolError::ValueType {
                    signal: "createThing".into(),
                    expected: "_policy as a policy object",
                }
                .into());
            }
            json["policyId"] = Value::from(target.as_str());
            Some(json)
        } else if self.enforcers.exists(&target)? {
            None
        } else if named.is_some() {
            return Err(exc::thing_not_creatable(id.as_str(), &target));
        } else {
            Some(
                default_policy(&target, auth)
                    .ok_or_else(|| exc::thing_not_creatable(id.as_str(), &target))?,
            )
        };
        if let Some(json) = new_policy {
            let topic = policy_topic(&target, CommandAction::Create);
            let mut create = Envelope::new(topic, envelope.headers.clone(), JsonPointer::root());
            create.value = Some(json);
            let created = self.send_policy_command(create, auth.clone()).await.await;
            if created.response.status != Some(201) {
                return Err(error_of(&created.response));
            }
        }
        Ok(())
    }

    /// The policy ID of a thing, read as the requester.
    async fn policy_id_of(&self, thing: &str, auth: &AuthContext) -> Result<String, DittoError> {
        let id = ThingId::parse(thing).ok_or_else(|| ProtocolError::ThingIdInvalid {
            id: thing.to_owned(),
        })?;
        let mut retrieve = Envelope::new(
            thing_topic(&id, CommandAction::Retrieve),
            Headers::new(),
            JsonPointer::root(),
        );
        retrieve.path = JsonPointer::from_segments(["policyId"]);
        let executed = self.send(retrieve, id, auth.clone()).await.await;
        match (executed.response.status, executed.response.value) {
            (Some(200), Some(Value::String(policy_id))) => Ok(policy_id),
            _ => Err(exc::thing_not_found(thing)),
        }
    }

    /// A policy as the requester may read it.
    async fn readable_policy(
        &self,
        policy_id: &str,
        auth: &AuthContext,
    ) -> Result<Value, DittoError> {
        let retrieve = Envelope::new(
            policy_topic(policy_id, CommandAction::Retrieve),
            Headers::new(),
            JsonPointer::root(),
        );
        let executed = self.send_policy_command(retrieve, auth.clone()).await.await;
        match (executed.response.status, &executed.response.value) {
            (Some(200), Some(json)) => Ok(json.clone()),
            _ => Err(error_of(&executed.response)),
        }
    }

    /// Hands a policy command to the shard owning the policy and waits until it is applied.
    async fn send_policy_command(&self, envelope: Envelope, auth: AuthContext) -> Submitted {
        let Some(id) = PolicyId::parse(&envelope.topic.entity_id()) else {
            let error = ProtocolError::PolicyIdInvalid {
                id: envelope.topic.entity_id(),
            };
            return Submitted::ready(fail(&envelope, error));
        };
        let shard = &self.policy_shards[shard_index(id.as_str(), self.policy_shards.len())];
        let (reply, answer) = oneshot::channel();
        let unavailable = fail(
            &envelope,
            twinwire_protocol::exceptions::policies::policy_unavailable(id.as_str()),
        );
        if shard
            .send(PolicyRequest {
                envelope,
                id,
                auth,
                reply,
            })
            .await
            .is_err()
        {
            return Submitted::ready(unavailable);
        }
        // Waits until the policy shard applied the command (not until it is durable): every
        // command submitted after it, to any thing, is then enforced with its effect. Policy
        // commands are rare, so the wait costs little.
        Submitted::ready(answer.await.unwrap_or(unavailable))
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
        Executed::answer(response, Durable::ok())
    }

    /// Stops the shards and waits until everything they appended is durable.
    pub async fn shutdown(self) -> Result<(), JournalError> {
        let ThingEngine {
            shards,
            policy_shards,
            journal,
            ..
        } = self;
        drop(shards);
        drop(policy_shards);
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
    shard_index(id.as_str(), shards)
}

fn shard_index(id: &str, shards: usize) -> usize {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    id.hash(&mut hasher);
    (hasher.finish() % shards as u64) as usize
}

/// The topic of a command to one policy.
fn policy_topic(id: &str, action: CommandAction) -> Topic {
    let (namespace, name) = id.split_once(':').unwrap_or(("", id));
    Topic {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        group: Group::Policies,
        channel: Channel::None,
        criterion: Criterion::Commands(action),
    }
}

/// `{{ ref:things/<thing ID>/policyId }}` → the thing ID.
fn thing_reference(placeholder: &str) -> Option<String> {
    let inner = placeholder
        .trim()
        .strip_prefix("{{")?
        .strip_suffix("}}")?
        .trim();
    let thing = inner
        .strip_prefix("ref:things/")?
        .strip_suffix("/policyId")?;
    Some(thing.to_owned())
}

/// Ditto's default policy for a new thing: entry `DEFAULT` granting the first subject READ and
/// WRITE on the thing, the policy and the thing's messages.
fn default_policy(policy_id: &str, auth: &AuthContext) -> Option<Value> {
    let subject = auth.first()?;
    let all = serde_json::json!({"grant": ["READ", "WRITE"], "revoke": []});
    Some(serde_json::json!({
        "policyId": policy_id,
        "entries": {"DEFAULT": {
            "subjects": {subject: {"type": "generated"}},
            "resources": {"thing:/": all, "policy:/": all, "message:/": all}
        }}
    }))
}

/// The Ditto error an error response carries.
fn error_of(response: &Envelope) -> DittoError {
    response
        .value
        .as_ref()
        .and_then(|v| DittoError::from_json(v).ok())
        .unwrap_or_else(|| exc::thing_unavailable(&response.topic.entity_id()))
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
