//! A policy shard: the one task that owns a share of the policies (by ID hash). Like a thing
//! shard it applies its policies' commands in order, journals their events and answers with a
//! [`Durable`]; after every change it hands the new policy to the enforcer cache, so thing shards
//! enforce the new rules from the next command on. Policy shards never wait on other shards
//! (thing shards read policies through the cache), so shards cannot deadlock.

use super::announce::{self, SubjectAnnouncement};
use super::enforcers::{authorize_policy_command, readable_policy_part, Enforcers};
use super::event::PolicyEvent;
use super::policy::PolicyEntity;
use super::rules::format_instant;
use super::state::{self, PolicyCommand, PolicyConfig, PolicyOutcome};
use crate::auth::AuthContext;
use crate::event::published_headers;
use crate::journal::appender::Appender;
use crate::journal::{Journal, StoredSnapshot};
use crate::routing::announcements::subject_deletion;
use crate::things::shard::{fail, now};
use crate::things::EventSink;
use crate::things::Executed;
use lru::LruCache;
use std::collections::{BTreeSet, HashSet};
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use twinwire_protocol::exceptions::policies as exc;
use twinwire_protocol::headers::names;
use twinwire_protocol::topic::CommandAction;
use twinwire_protocol::JsonPointer;
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
    /// When a subject of a policy in memory expires or is to be announced, earliest first.
    expiries: BTreeSet<(i64, PolicyId)>,
    rules: PolicyConfig,
    snapshot_every: u64,
    enforcers: Arc<Enforcers>,
    /// Where subject deletion announcements go; none: nobody listens.
    sink: Option<Arc<dyn EventSink>>,
    /// Subjects announced ahead of their expiry: (policy, subject, expiry ms).
    announced: HashSet<(PolicyId, String, i64)>,
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
        sink: Option<Arc<dyn EventSink>>,
    ) -> Self {
        PolicyShard {
            appender: Appender::new(journal),
            policies: crate::cache::lru(capacity),
            expiries: BTreeSet::new(),
            rules,
            snapshot_every,
            enforcers,
            sink,
            announced: HashSet::new(),
        }
    }

    pub(crate) async fn run(mut self, mut inbox: mpsc::Receiver<PolicyRequest>) {
        loop {
            // Sleep until the next subject expiry of a policy in memory, or the next request.
            let next_expiry = self.expiries.first().map(|(at, _)| *at);
            let wait = next_expiry
                .map(|at| Duration::from_millis(u64::try_from(at - now().1).unwrap_or(0)));
            tokio::select! {
                request = inbox.recv() => {
                    let Some(request) = request else { break };
                    let rules = self.rules.clone();
                    let executed = self.execute(request.envelope, request.id, &request.auth, &rules).await;
                    let _ = request.reply.send(executed);
                }
                () = tokio::time::sleep(wait.unwrap_or(Duration::MAX)), if wait.is_some() => {
                    self.announce_before_expiry();
                    self.remove_expired_subjects().await;
                }
            }
        }
    }

    /// The subjects announced so far, when announcements are published at all.
    fn announcing(&self) -> Option<&HashSet<(PolicyId, String, i64)>> {
        self.sink.as_ref().map(|_| &self.announced)
    }

    /// Announces the subjects whose `beforeExpiry` has come, once each, grouped per policy.
    fn announce_before_expiry(&mut self) {
        if self.sink.is_none() {
            return;
        }
        let (_, now_millis) = now();
        let due: Vec<PolicyId> = self
            .expiries
            .iter()
            .take_while(|(at, _)| *at <= now_millis)
            .map(|(_, id)| id.clone())
            .collect();
        for id in due {
            let Some(cached) = self.policies.peek(&id) else {
                continue;
            };
            let ahead: Vec<SubjectAnnouncement> = announce::announced_subjects(&cached.entity)
                .into_iter()
                .filter(|a| a.announce_at().is_some_and(|at| at <= now_millis))
                .filter(|a| {
                    let expiry = a.expiry_ms.unwrap_or_default();
                    self.announced
                        .insert((id.clone(), a.subject.clone(), expiry))
                })
                .collect();
            self.announce(&id, &ahead, None);
        }
    }

    /// Publishes subject deletion announcements: one per deletion time and acknowledgement
    /// request. `deleted_at`: the subjects are gone (`whenDeleted`), else they expire.
    fn announce(&self, id: &PolicyId, subjects: &[SubjectAnnouncement], deleted_at: Option<i64>) {
        let Some(sink) = &self.sink else {
            return;
        };
        for group in announce::group(subjects, deleted_at) {
            let delete_at = chrono::DateTime::from_timestamp_millis(group.delete_at_ms)
                .map(|t| format_instant(&t))
                .unwrap_or_default();
            let mut headers = Headers::new();
            headers.insert(names::CORRELATION_ID, uuid::Uuid::new_v4().to_string());
            if !group.labels.is_empty() {
                headers.insert(names::REQUESTED_ACKS, group.labels.clone());
                if let Some(timeout) = group.timeout {
                    headers.insert(names::TIMEOUT, format!("{}ms", timeout.as_millis()));
                }
            }
            let subjects = &group.subject_ids;
            tracing::debug!(policy = %id, ?subjects, delete_at, "subject deletion announced");
            let announcement = subject_deletion(id, &delete_at, subjects, headers);
            Arc::clone(sink).policy_announcement(announcement);
        }
    }

    /// Deletes the subjects whose expiry has come from the policies due, as Ditto does: one
    /// `subjectDeleted` event each, past lockout prevention (an expiry is not a user's change).
    async fn remove_expired_subjects(&mut self) {
        let (_, now_millis) = now();
        while let Some((at, id)) = self.expiries.first().cloned() {
            if at > now_millis {
                break;
            }
            self.expiries.remove(&(at, id.clone()));
            let Some(cached) = self.policies.peek(&id) else {
                continue;
            };
            let expired: Vec<(String, String)> = expired_subjects(&cached.entity, now_millis);
            let rules = PolicyConfig {
                lockout_prevention: false,
                ..self.rules.clone()
            };
            for (label, subject) in expired {
                let path = JsonPointer::from_segments([
                    "entries",
                    label.as_str(),
                    "subjects",
                    subject.as_str(),
                ]);
                let topic = twinwire_protocol::Topic {
                    namespace: id.namespace().to_owned(),
                    name: id.name().to_owned(),
                    group: twinwire_protocol::Group::Policies,
                    channel: twinwire_protocol::Channel::None,
                    criterion: twinwire_protocol::Criterion::Commands(CommandAction::Delete),
                };
                let delete = Envelope::new(topic, Headers::new(), path);
                let executed = self
                    .execute(
                        delete,
                        id.clone(),
                        &AuthContext::none().unrestricted(),
                        &rules,
                    )
                    .await;
                if executed.response.status != Some(204) {
                    tracing::warn!(policy = %id, subject, "an expired subject could not be deleted");
                }
            }
            // The policy's next expiry or announcement, now that these are done.
            if let Some(cached) = self.policies.peek(&id) {
                let next = next_time(&cached.entity, self.announcing());
                if let Some(at) = next.filter(|at| *at > now_millis) {
                    self.expiries.insert((at, id.clone()));
                }
            }
        }
    }

    async fn execute(
        &mut self,
        envelope: Envelope,
        id: PolicyId,
        auth: &AuthContext,
        rules: &PolicyConfig,
    ) -> Executed {
        let command = match PolicyCommand::from_envelope(&envelope) {
            Ok(c) => c,
            Err(e) => return fail(&envelope, e),
        };
        let sequence = self.appender.next_sequence();
        let snapshot_every = self.snapshot_every;
        let rules = rules.clone();
        let loaded_now = !self.policies.contains(&id);
        let announcing = self.sink.as_ref().map(|_| &self.announced);
        let cached = match load(&mut self.policies, self.appender.journal(), &id) {
            Ok(c) => c,
            Err(e) => return fail(&envelope, e),
        };
        if loaded_now {
            if let Some(at) = next_time(&cached.entity, announcing) {
                self.expiries.insert((at, id.clone()));
            }
        }
        let enforcer = match self.enforcers.command_enforcer(&cached.entity) {
            Ok(e) => e,
            Err(e) => return fail(&envelope, e),
        };
        if let Err(e) = authorize_policy_command(enforcer.as_ref(), &cached.entity, &command, auth)
        {
            return fail(&envelope, e);
        }
        let (timestamp, millis) = now();
        let (mut response, event) =
            match state::handle_with(&cached.entity, command, &timestamp, &rules) {
                Ok(PolicyOutcome::Retrieved(value)) => {
                    let value =
                        readable_policy_part(enforcer.as_ref(), &envelope.path, value, auth);
                    let mut response = envelope.response(200, Some(value));
                    response.headers.insert("etag", cached.entity.etag());
                    let last_append = cached.last_append;
                    let durable = self.appender.durable_through(last_append).await;
                    return Executed::answer(response, durable);
                }
                Ok(PolicyOutcome::Changed {
                    status,
                    value,
                    event,
                }) => (envelope.response(status, value), event),
                Err(e) => return fail(&envelope, e),
            };
        let before = match self.sink {
            Some(_) => announce::announced_subjects(&cached.entity),
            None => Vec::new(),
        };
        cached.entity.apply(&event);
        cached.last_append = sequence;
        response.headers.insert("etag", cached.entity.etag());
        self.enforcers.policy_changed(&cached.entity);
        let deleted = announce::deleted(&before, &cached.entity);
        if let Some(at) = next_time(&cached.entity, announcing) {
            self.expiries.insert((at, id.clone()));
        }
        let snapshot = (event.revision % snapshot_every == 0).then(|| StoredSnapshot {
            entity: journal_key(&id),
            revision: event.revision,
            timestamp_millis: millis,
            data: cached.entity.snapshot_data(),
        });
        let published = event.to_policy_envelope(&id, published_headers(&envelope));
        let stored = event.stored(journal_key(&id), millis);
        let durable = self.appender.append(vec![stored], snapshot).await;
        if !deleted.is_empty() {
            // Announced ahead of their expiry already: not again.
            let unannounced: Vec<SubjectAnnouncement> = deleted
                .into_iter()
                .filter(|a| {
                    let key = (
                        id.clone(),
                        a.subject.clone(),
                        a.expiry_ms.unwrap_or_default(),
                    );
                    !self.announced.remove(&key)
                })
                .collect();
            self.announce(&id, &unannounced, Some(millis));
        }
        let mut executed = Executed::answer(response, durable);
        executed.events.push(published);
        executed
    }
}

/// The policy's next subject expiry or unannounced `beforeExpiry` (when `announcing`: the
/// subjects announced already).
fn next_time(
    entity: &PolicyEntity,
    announcing: Option<&HashSet<(PolicyId, String, i64)>>,
) -> Option<i64> {
    let expiry = subject_expiries(entity).map(|(_, _, at)| at).min();
    let Some(announced) = announcing else {
        return expiry;
    };
    let announcement = announce::announced_subjects(entity)
        .into_iter()
        .filter(|a| {
            let key = (
                entity.id.clone(),
                a.subject.clone(),
                a.expiry_ms.unwrap_or_default(),
            );
            !announced.contains(&key)
        })
        .filter_map(|a| a.announce_at())
        .min();
    match (expiry, announcement) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// Every subject of a policy that has an expiry: (entry label, subject ID, expiry in epoch ms).
fn subject_expiries(entity: &PolicyEntity) -> impl Iterator<Item = (String, String, i64)> + '_ {
    entity
        .policy
        .iter()
        .flat_map(|p| p.entries())
        .flat_map(|(label, entry)| {
            entry
                .get("subjects")
                .and_then(serde_json::Value::as_object)
                .into_iter()
                .flatten()
                .filter_map(move |(subject, body)| {
                    let expiry = body.get("expiry")?.as_str()?;
                    let at = chrono::DateTime::parse_from_rfc3339(expiry)
                        .ok()?
                        .timestamp_millis();
                    Some((label.to_owned(), subject.clone(), at))
                })
        })
}

fn expired_subjects(entity: &PolicyEntity, now_millis: i64) -> Vec<(String, String)> {
    subject_expiries(entity)
        .filter(|(_, _, at)| *at <= now_millis)
        .map(|(l, s, _)| (l, s))
        .collect()
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
