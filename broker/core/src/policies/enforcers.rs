//! The enforcer cache shared by all shards: every policy's current JSON and revision, and its
//! compiled [`Enforcer`] per namespace, rebuilt when the policy, a policy it imports, or the
//! next subject expiry says so. Policy shards write it after every change; thing shards read it
//! (and on a miss read the policy from the journal, which then holds the newest revision: a
//! policy with changes not yet on disk is always in the map). Also the rules for which policy
//! commands a subject may send.

use super::enforcer::{Enforcer, Permission};
use super::policy::PolicyEntity;
use super::shard::recover;
use super::state::PolicyCommand;
use crate::auth::AuthContext;
use crate::journal::Journal;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};
use twinwire_protocol::exceptions::policies as exc;
use twinwire_protocol::topic::CommandAction;
use twinwire_protocol::{DittoError, JsonPointer, PolicyId};

/// A policy compiled for one namespace, with what it was built from.
#[derive(Debug)]
pub struct Compiled {
    pub enforcer: Enforcer,
    revision: u64,
    /// The revisions of the imported policies it saw (0: missing).
    imports: Vec<(String, u64)>,
}

#[derive(Clone)]
struct Current {
    /// 0 with no JSON: the policy does not exist (never did, or was deleted).
    revision: u64,
    json: Option<Arc<Value>>,
}

/// The cache; shared as `Arc<Enforcers>`. Bounded: past `capacity` policies (and compiled
/// enforcers) some are dropped and read back from the journal when next needed. Dropping is by
/// the hash map's order, in effect at random, which keeps every read behind a shared lock. A
/// policy dropped in the moment between a change and its fsync would be read back one revision
/// old until the change is on disk (about a millisecond): like Ditto's enforcer caches, policy
/// changes reach enforcement eventually, not atomically.
pub struct Enforcers {
    journal: Journal,
    capacity: usize,
    policies: RwLock<HashMap<String, Current>>,
    compiled: RwLock<HashMap<(String, String), Arc<Compiled>>>,
}

/// Whether `auth` may send this policy command (Ditto's policy command enforcement), checked
/// with the policy's [`Enforcers::command_enforcer`]: a create needs nothing (lockout prevention
/// makes the new policy grant its writer); a retrieve needs READ at or below the path; a change
/// needs WRITE on the path and below.
pub fn authorize_policy_command(
    enforcer: Option<&Enforcer>,
    entity: &PolicyEntity,
    command: &PolicyCommand<'_>,
    auth: &AuthContext,
) -> Result<(), DittoError> {
    let Some(enforcer) = enforcer else {
        return Ok(());
    };
    if command.action == CommandAction::Create || auth.is_unrestricted() {
        return Ok(());
    }
    let id = entity.id.as_str();
    let subjects = auth.subjects();
    let path = &command.envelope.path;
    let may_read = enforcer.has_partial_permission(subjects, "policy", path, Permission::Read);
    match command.action {
        CommandAction::Retrieve if may_read => Ok(()),
        CommandAction::Retrieve => Err(refusal(id, command, false)),
        _ if enforcer.has_permission(subjects, "policy", path, Permission::Write) => Ok(()),
        _ => Err(refusal(id, command, may_read)),
    }
}

/// The part of a retrieved policy value at `path` that `auth` may READ.
pub fn readable_policy_part(
    enforcer: Option<&Enforcer>,
    path: &JsonPointer,
    value: Value,
    auth: &AuthContext,
) -> Value {
    match enforcer {
        Some(enforcer) if value.is_object() && !auth.is_unrestricted() => enforcer
            .filter_readable(auth.subjects(), "policy", path, &value)
            .unwrap_or_else(|| Value::Object(Default::default())),
        _ => value,
    }
}

/// The error a refused policy command answers with, naming its resource as Ditto does:
/// `*.notmodifiable` when the requester may read it, else `*.notfound`.
fn refusal(policy_id: &str, command: &PolicyCommand<'_>, may_read: bool) -> DittoError {
    use twinwire_protocol::signal::PolicyResource as R;
    let segments = command.envelope.path.segments();
    let label = segments.get(1).map(String::as_str).unwrap_or_default();
    // Resource keys and subject IDs may hold slashes: the rest of the path is the key.
    let key = segments
        .get(3..)
        .map(|rest| rest.join("/"))
        .unwrap_or_default();
    match (command.resource, may_read) {
        (R::PolicyEntry, true) => exc::entry_not_modifiable(policy_id, label),
        (R::PolicyEntry, false) => exc::entry_not_found(policy_id, label),
        (R::Resources, true) => exc::resources_not_modifiable(policy_id, label),
        (R::Resources, false) => exc::resources_not_found(policy_id, label),
        (R::Resource, true) => exc::resource_not_modifiable(policy_id, label, &key),
        (R::Resource, false) => exc::resource_not_found(policy_id, label, &key),
        (R::Subjects, true) => exc::subjects_not_modifiable(policy_id, label),
        (R::Subjects, false) => exc::subjects_not_found(policy_id, label),
        (R::Subject, true) => exc::subject_not_modifiable(policy_id, label, &key),
        (R::Subject, false) => exc::subject_not_found(policy_id, label, &key),
        (_, true) => exc::policy_not_modifiable(policy_id),
        (_, false) => exc::policy_not_found(policy_id),
    }
}

/// Drops about a hundredth of a full map (at least one entry) so one more fits.
fn make_room<K: Clone + std::hash::Hash + Eq, V>(map: &mut HashMap<K, V>, capacity: usize) {
    if map.len() < capacity {
        return;
    }
    let drop: Vec<K> = map.keys().take((capacity / 100).max(1)).cloned().collect();
    for key in drop {
        map.remove(&key);
    }
}

fn now_millis() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl std::fmt::Debug for Enforcers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let policies = self.policies.read().map(|p| p.len()).unwrap_or_default();
        f.debug_struct("Enforcers")
            .field("policies", &policies)
            .finish_non_exhaustive()
    }
}

impl Enforcers {
    pub fn new(journal: Journal, capacity: usize) -> Self {
        Enforcers {
            journal,
            capacity: capacity.max(1),
            policies: RwLock::default(),
            compiled: RwLock::default(),
        }
    }

    /// Called by a policy's shard after every change, before the change is answered.
    pub fn policy_changed(&self, entity: &PolicyEntity) {
        let current = Current {
            revision: entity.revision,
            json: entity
                .policy
                .as_ref()
                .map(|p| Arc::new(p.to_json(entity.revision, false))),
        };
        let mut policies = self
            .policies
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let newer = policies
            .get(entity.id.as_str())
            .is_none_or(|c| c.revision <= entity.revision);
        if newer {
            make_room(&mut policies, self.capacity);
            policies.insert(entity.id.as_str().to_owned(), current);
        }
    }

    /// The current JSON and revision of a policy, read from the journal the first time.
    fn current(&self, id: &str) -> Result<Current, DittoError> {
        if let Some(c) = self
            .policies
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
        {
            return Ok(c.clone());
        }
        let Some(policy_id) = PolicyId::parse(id) else {
            return Ok(Current {
                revision: 0,
                json: None,
            });
        };
        let entity = recover(&self.journal, &policy_id)?;
        self.policy_changed(&entity);
        Ok(Current {
            revision: entity.revision,
            json: entity
                .policy
                .as_ref()
                .map(|p| Arc::new(p.to_json(entity.revision, false))),
        })
    }

    /// The enforcer of a policy for an entity in `namespace`, or `None` when the policy does not
    /// exist (a thing whose policy is gone is inaccessible, as in Ditto).
    pub fn enforcer(
        &self,
        policy_id: &str,
        namespace: &str,
    ) -> Result<Option<Arc<Compiled>>, DittoError> {
        let current = self.current(policy_id)?;
        let Some(json) = current.json else {
            return Ok(None);
        };
        let key = (policy_id.to_owned(), namespace.to_owned());
        let now = now_millis();
        if let Some(compiled) = self
            .compiled
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&key)
        {
            if self.still_valid(compiled, current.revision, now)? {
                return Ok(Some(Arc::clone(compiled)));
            }
        }
        let resolve =
            |id: &str| -> Option<Value> { self.current(id).ok()?.json.map(|j| (*j).clone()) };
        let enforcer = Enforcer::compile(&json, Some(namespace), now, &resolve).map_err(|e| {
            tracing::warn!(policy = policy_id, error = %e, "the policy does not compile");
            exc::policy_unavailable(policy_id)
        })?;
        let mut imports = Vec::new();
        for id in enforcer.imported_policy_ids() {
            imports.push((id.clone(), self.current(id)?.revision));
        }
        let compiled = Arc::new(Compiled {
            enforcer,
            revision: current.revision,
            imports,
        });
        let mut all = self
            .compiled
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        make_room(&mut all, self.capacity);
        all.insert(key, Arc::clone(&compiled));
        drop(all);
        Ok(Some(compiled))
    }

    fn still_valid(
        &self,
        compiled: &Compiled,
        revision: u64,
        now: i64,
    ) -> Result<bool, DittoError> {
        if compiled.revision != revision
            || compiled
                .enforcer
                .next_expiry_millis()
                .is_some_and(|e| e <= now)
        {
            return Ok(false);
        }
        for (id, seen) in &compiled.imports {
            if self.current(id)?.revision != *seen {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Whether a policy exists now.
    pub fn exists(&self, policy_id: &str) -> Result<bool, DittoError> {
        Ok(self.current(policy_id)?.json.is_some())
    }

    /// The current JSON of a policy, for `_copyPolicyFrom`.
    pub fn policy_json(&self, policy_id: &str) -> Result<Option<Arc<Value>>, DittoError> {
        Ok(self.current(policy_id)?.json)
    }

    /// The policy compiled for checking its own commands (every entry, whatever namespace;
    /// `None` when the policy does not exist). Compiled once per command.
    pub fn command_enforcer(&self, entity: &PolicyEntity) -> Result<Option<Enforcer>, DittoError> {
        let Some(policy) = entity.policy.as_ref() else {
            return Ok(None);
        };
        let resolve = |other: &str| {
            self.current(other)
                .ok()
                .and_then(|c| c.json.map(|j| (*j).clone()))
        };
        Enforcer::compile(
            &policy.to_json(entity.revision, false),
            None,
            now_millis(),
            &resolve,
        )
        .map(Some)
        .map_err(|_| exc::policy_unavailable(entity.id.as_str()))
    }
}
