//! A policy shard: the one task that owns a share of the policies (by ID hash). Like a thing
//! shard it applies its policies' commands in order, journals their events and answers with a
//! [`Durable`]; after every change it hands the new policy to the enforcer cache, so thing shards
//! enforce the new rules from the next command on. Policy shards never wait on other shards
//! (thing shards read policies through the cache), so shards cannot deadlock.

use super::enforcers::Enforcers;
use super::event::PolicyEvent;
use super::policy::PolicyEntity;
use super::state::{self, PolicyCommand, PolicyConfig, PolicyOutcome};
use crate::auth::AuthContext;
use crate::journal::appender::Appender;
use crate::journal::{Journal, StoredEvent, StoredSnapshot};
use crate::things::shard::{fail, now};
use crate::things::Executed;
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use twinwire_protocol::exceptions::policies as exc;
use twinwire_protocol::{DittoError, Envelope, Headers, PolicyId};

pub(crate) struct PolicyRequest {
    pub(crate) envelope: Envelope,
    pub(crate) id: PolicyId,
    pub(crate) auth: AuthContext,
    pub(crate) reply: oneshot::Sender<Executed>,
}

struct Cached {
    entity: PolicyEntity,
    last_append: u64,
}

pub(crate) struct PolicyShard {
    appender: Appender,
    policies: LruCache<PolicyId, Cached>,
    rules: PolicyConfig,
    snapshot_every: u64,
    enforcers: Arc<Enforcers>,
}

/// The journal key of a policy.
pub fn journal_key(id: &PolicyId) -> String {
    format!("policy:{id}")
}

impl PolicyShard {
    pub(crate) fn new(
        journal: Journal,
        capacity: NonZeroUsize,
        rules: PolicyConfig,
        snapshot_every: u64,
        enforcers: Arc<Enforcers>,
    ) -> Self {
        PolicyShard {
            appender: Appender::new(journal),
            policies: LruCache::new(capacity),
            rules,
            snapshot_every,
            enforcers,
        }
    }

    pub(crate) async fn run(mut self, mut inbox: mpsc::Receiver<PolicyRequest>) {
        while let Some(request) = inbox.recv().await {
            let executed = self
                .execute(request.envelope, request.id, &request.auth)
                .await;
            let _ = request.reply.send(executed);
        }
    }

    async fn execute(&mut self, envelope: Envelope, id: PolicyId, auth: &AuthContext) -> Executed {
        let command = match PolicyCommand::from_envelope(&envelope) {
            Ok(c) => c,
            Err(e) => return fail(&envelope, e),
        };
        let sequence = self.appender.next_sequence();
        let snapshot_every = self.snapshot_every;
        let rules = self.rules.clone();
        let cached = match load(&mut self.policies, self.appender.journal(), &id) {
            Ok(c) => c,
            Err(e) => return fail(&envelope, e),
        };
        if let Err(e) = self
            .enforcers
            .authorize_policy_command(&cached.entity, &command, auth)
        {
            return fail(&envelope, e);
        }
        let (timestamp, millis) = now();
        let (mut response, event) =
            match state::handle_with(&cached.entity, command, &timestamp, &rules) {
                Ok(PolicyOutcome::Retrieved(value)) => {
                    let value = match self.enforcers.readable_policy_part(
                        &cached.entity,
                        &envelope.path,
                        value,
                        auth,
                    ) {
                        Ok(v) => v,
                        Err(e) => return fail(&envelope, e),
                    };
                    let mut response = envelope.response(200, Some(value));
                    response.headers.insert("etag", cached.entity.etag());
                    let last_append = cached.last_append;
                    let durable = self.appender.durable_through(last_append).await;
                    return Executed {
                        response,
                        events: Vec::new(),
                        durable,
                    };
                }
                Ok(PolicyOutcome::Changed {
                    status,
                    value,
                    event,
                }) => (envelope.response(status, value), event),
                Err(e) => return fail(&envelope, e),
            };
        cached.entity.apply(&event);
        cached.last_append = sequence;
        response.headers.insert("etag", cached.entity.etag());
        self.enforcers.policy_changed(&cached.entity);
        let snapshot = (event.revision % snapshot_every == 0).then(|| StoredSnapshot {
            entity: journal_key(&id),
            revision: event.revision,
            timestamp_millis: millis,
            data: cached.entity.snapshot_data(),
        });
        let published = event.to_envelope(&id, event_headers(&envelope));
        let stored = StoredEvent {
            entity: journal_key(&id),
            revision: event.revision,
            timestamp_millis: millis,
            data: event.encode(),
        };
        let durable = self.appender.append(vec![stored], snapshot).await;
        Executed {
            response,
            events: vec![published],
            durable,
        }
    }
}

fn event_headers(envelope: &Envelope) -> Headers {
    let mut headers = Headers::new();
    for name in ["correlation-id", "ditto-originator"] {
        if let Some(v) = envelope.headers.get(name) {
            headers.insert(name, v.clone());
        }
    }
    headers
}

fn load<'c>(
    cache: &'c mut LruCache<PolicyId, Cached>,
    journal: &Journal,
    id: &PolicyId,
) -> Result<&'c mut Cached, DittoError> {
    if !cache.contains(id) {
        let entity = recover(journal, id)?;
        cache.push(
            id.clone(),
            Cached {
                entity,
                last_append: 0,
            },
        );
    }
    cache
        .get_mut(id)
        .ok_or_else(|| exc::policy_unavailable(id.as_str()))
}

/// Rebuilds a policy from its newest snapshot and the events after it.
pub(crate) fn recover(journal: &Journal, id: &PolicyId) -> Result<PolicyEntity, DittoError> {
    let key = journal_key(id);
    let unavailable = |what: &str, e: &dyn std::fmt::Display| {
        tracing::error!(policy = %id, error = %e, "{what}");
        exc::policy_unavailable(id.as_str())
    };
    let recovery = journal
        .recover(&key, u64::MAX)
        .map_err(|e| unavailable("cannot read the policy from the journal", &e))?;
    let mut entity = match &recovery.snapshot {
        Some(s) => PolicyEntity::from_snapshot(id.clone(), s.revision, &s.data)
            .map_err(|e| unavailable("unreadable policy snapshot", &e))?,
        None => PolicyEntity::new(id.clone()),
    };
    for stored in &recovery.events {
        let event = PolicyEvent::decode(&key, stored.revision, &stored.data)
            .map_err(|e| unavailable("unreadable policy event", &e))?;
        entity.apply(&event);
    }
    Ok(entity)
}
