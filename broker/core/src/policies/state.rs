//! Policy shard state: applies one policy command to one policy entity and answers with what the
//! command reads or the event it causes, as Ditto's `PolicyCommandStrategies` do. Synchronous
//! and pure (no I/O, no await, no clock: the caller passes the time), so every rule of the
//! policy commands is tested here without a journal. It does not check the requester's
//! permissions (the enforcer does, before).

use crate::conditional;

use super::event::PolicyEvent;
use super::policy::PolicyEntity;
use super::rules as model;
use crate::things::json;
use conditional::PreconditionErrors;
use serde_json::{Map, Value};
use twinwire_protocol::exceptions::policies as exc;
use twinwire_protocol::signal::{PolicyResource, Resource, SignalKind};
use twinwire_protocol::topic::{CommandAction, Criterion, EventAction};
use twinwire_protocol::{DittoError, Envelope, JsonPointer, ProtocolError};

const PRECONDITION_ERRORS: PreconditionErrors = PreconditionErrors {
    failed: exc::precondition_failed,
    not_modified: exc::precondition_not_modified,
};

/// A classified policy command: the envelope with its action and the resource its path addresses.
#[derive(Debug, Clone, Copy)]
pub struct PolicyCommand<'a> {
    pub envelope: &'a Envelope,
    pub action: CommandAction,
    pub resource: PolicyResource,
}

impl<'a> PolicyCommand<'a> {
    /// Classifies a policy command envelope (`{ns}/{name}/policies/commands/{action}`).
    pub fn from_envelope(envelope: &'a Envelope) -> Result<Self, DittoError> {
        let signal = envelope.signal()?;
        match (&envelope.topic.criterion, signal.resource) {
            (Criterion::Commands(action), Some(Resource::Policy(resource)))
                if signal.kind == SignalKind::Command =>
            {
                Ok(PolicyCommand {
                    envelope,
                    action: *action,
                    resource,
                })
            }
            _ => Err(ProtocolError::UnknownSignal {
                kind: "command",
                name: signal.to_string(),
            }
            .into()),
        }
    }
}

/// What a policy command did: the outcome things and policies share.
pub use crate::event::Outcome as PolicyOutcome;

/// The operator's settings of the policy rules (Ditto's `policies.conf` and feature toggles).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyConfig {
    /// Refuse a change that leaves no permanent subject with WRITE on `policy:/`
    /// (`ditto.devops.feature.policy-lockout-prevention-enabled`, on by default).
    pub lockout_prevention: bool,
    /// A subject's `expiry` is rounded up to a multiple of this many seconds
    /// (`policy.subject-expiry-granularity`, 1h by default); 0 keeps it as written.
    pub subject_expiry_granularity_secs: u64,
}

impl Default for PolicyConfig {
    fn default() -> Self {
        PolicyConfig {
            lockout_prevention: true,
            subject_expiry_granularity_secs: 3600,
        }
    }
}

/// Handles one command against the entity as it is, with Ditto's default rules. `now` is the
/// event timestamp to use (ISO-8601), also the instant expiries are compared with.
pub fn handle(
    entity: &PolicyEntity,
    cmd: PolicyCommand<'_>,
    now: &str,
) -> Result<PolicyOutcome, DittoError> {
    handle_with(entity, cmd, now, &PolicyConfig::default())
}

/// [`handle`] with the operator's rules.
pub fn handle_with(
    entity: &PolicyEntity,
    cmd: PolicyCommand<'_>,
    now: &str,
    config: &PolicyConfig,
) -> Result<PolicyOutcome, DittoError> {
    let env = cmd.envelope;
    conditional::check_entity_tag(
        &env.headers,
        &entity.etag(),
        entity.exists(),
        cmd.action == CommandAction::Retrieve,
        &PRECONDITION_ERRORS,
    )?;
    let (resource, keys) = model::locate(&env.path).ok_or_else(|| ProtocolError::UnknownPath {
        path: env.path.to_string(),
    })?;
    let ctx = Context {
        entity,
        env,
        resource,
        keys,
        now,
        config,
    };
    let change = match (cmd.action, resource) {
        (CommandAction::Retrieve, _) => return ctx.retrieve().map(PolicyOutcome::Retrieved),
        (CommandAction::Create, _) if entity.exists() => {
            return Err(exc::policy_conflict(entity.id.as_str()))
        }
        (CommandAction::Create | CommandAction::Modify, PolicyResource::Policy) => {
            ctx.write_policy()?
        }
        (CommandAction::Modify, _) => ctx.modify()?,
        (CommandAction::Delete, _) => ctx.delete()?,
        (CommandAction::Create | CommandAction::Merge | CommandAction::Migrate, _) => {
            return Err(ProtocolError::UnknownSignal {
                kind: "command",
                name: format!("{} of a policy", cmd.action.as_str()),
            }
            .into())
        }
    };
    Ok(PolicyOutcome::Changed {
        status: change.status,
        value: change.response,
        event: Box::new(ctx.event(change.action, change.value)),
    })
}

/// What a modify or delete changes: the event's action and value, the answer's status and value.
struct Change {
    status: u16,
    response: Option<Value>,
    action: EventAction,
    value: Option<Value>,
}

impl Change {
    /// 201 with the value when nothing was there, else 204.
    fn created_or_modified(existed: bool, value: Value) -> Self {
        if existed {
            Change::modified(value)
        } else {
            Change {
                status: 201,
                response: Some(value.clone()),
                action: EventAction::Created,
                value: Some(value),
            }
        }
    }

    fn modified(value: Value) -> Self {
        Change {
            status: 204,
            response: None,
            action: EventAction::Modified,
            value: Some(value),
        }
    }

    fn deleted() -> Self {
        Change {
            status: 204,
            response: None,
            action: EventAction::Deleted,
            value: None,
        }
    }
}

/// The error a lockout-prevention refusal answers with: the policy's or the entry's.
#[derive(Clone, Copy)]
enum Lockout<'k> {
    Policy,
    Entry(&'k str),
}

struct Context<'c> {
    entity: &'c PolicyEntity,
    env: &'c Envelope,
    resource: PolicyResource,
    /// The JSON keys the path leads to ([`model::locate`]).
    keys: Vec<String>,
    now: &'c str,
    config: &'c PolicyConfig,
}

impl Context<'_> {
    fn id(&self) -> &str {
        self.entity.id.as_str()
    }

    /// The entry label, import ID, subject ID or resource key at `keys[i]`.
    fn key(&self, i: usize) -> &str {
        self.keys.get(i).map(String::as_str).unwrap_or_default()
    }

    fn event(&self, action: EventAction, value: Option<Value>) -> PolicyEvent {
        PolicyEvent {
            action,
            path: model::event_path(self.resource, &self.keys),
            value,
            revision: self.entity.revision + 1,
            timestamp: self.now.to_owned(),
            metadata: None,
            headers: None,
        }
    }

    fn policy(&self) -> Result<&Map<String, Value>, DittoError> {
        self.entity
            .policy
            .as_ref()
            .map(|p| &p.json)
            .ok_or_else(|| exc::policy_not_found(self.id()))
    }

    /// The policy's entries (a policy written without any has an empty `entries`).
    fn entries(&self) -> Result<&Map<String, Value>, DittoError> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        Ok(self
            .policy()?
            .get("entries")
            .and_then(Value::as_object)
            .unwrap_or_else(|| EMPTY.get_or_init(Map::new)))
    }

    fn imports(&self) -> Result<Option<&Map<String, Value>>, DittoError> {
        Ok(self.policy()?.get("imports").and_then(Value::as_object))
    }

    /// The entry the path names, or `policies:entry.notfound`.
    fn entry(&self) -> Result<&Map<String, Value>, DittoError> {
        let label = self.key(1);
        self.entries()?
            .get(label)
            .and_then(Value::as_object)
            .ok_or_else(|| exc::entry_not_found(self.id(), label))
    }

    /// The import the path names, or `policies:import.notfound`.
    fn import(&self) -> Result<&Value, DittoError> {
        let imported = self.key(1);
        self.imports()?
            .and_then(|i| i.get(imported))
            .ok_or_else(|| exc::import_not_found(self.id(), imported))
    }

    /// What is at the path now.
    fn current(&self) -> Option<&Value> {
        let policy = &self.entity.policy.as_ref()?.json;
        json::get_in(
            policy,
            &JsonPointer::from_segments(self.keys.iter().cloned()),
        )
    }

    fn value(&self) -> Result<&Value, DittoError> {
        self.env
            .value
            .as_ref()
            .ok_or_else(|| ProtocolError::FieldMissing { field: "value" }.into())
    }

    /// `if-equal: skip` refuses writing what is already there.
    fn refuse_if_equal(&self, new: &Value) -> Result<(), DittoError> {
        if !conditional::skip_requested(&self.env.headers)? {
            return Ok(());
        }
        let same = match (&self.entity.policy, self.keys.is_empty()) {
            (Some(p), true) => new.as_object() == Some(&p.json),
            _ => self.current() == Some(new),
        };
        if same {
            return Err(exc::precondition_failed_equal());
        }
        Ok(())
    }

    /// The policy JSON the change would leave. It is the state `apply` will produce, so the
    /// rules below check exactly what would be stored; cloning a policy costs little next to
    /// the journal write the change is headed for.
    fn after(&self, change: &Change) -> Map<String, Value> {
        let mut next = self.entity.clone();
        next.apply(&self.event(change.action, change.value.clone()));
        next.policy.map(|p| p.json).unwrap_or_default()
    }

    fn check_lockout(
        &self,
        after: &Map<String, Value>,
        lockout: Lockout<'_>,
    ) -> Result<(), DittoError> {
        if !self.config.lockout_prevention || model::keeps_a_policy_writer(after) {
            return Ok(());
        }
        Err(match lockout {
            Lockout::Policy => exc::policy_modification_invalid(self.id()),
            Lockout::Entry(label) => exc::entry_modification_invalid(self.id(), label),
        })
    }

    fn check_references(&self, after: &Map<String, Value>) -> Result<(), DittoError> {
        let entries = after
            .get("entries")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        model::validate_references(
            self.id(),
            &entries,
            after.get("imports").and_then(Value::as_object),
        )
    }

    /// Rounds up every subject `expiry` in `value` (a part of the kind `resource`) to the
    /// configured granularity and refuses one that has passed, as Ditto's
    /// `potentiallyAdjustPolicyEntries` and `checkForAlreadyExpiredSubject` do.
    fn adjust_expiries(
        &self,
        resource: PolicyResource,
        value: &mut Value,
    ) -> Result<(), DittoError> {
        let now = model::parse_instant(self.now);
        let granularity = self.config.subject_expiry_granularity_secs;
        visit_subjects(resource, value, &mut |subject| {
            let Some(at) = subject
                .get("expiry")
                .and_then(Value::as_str)
                .and_then(model::parse_instant)
            else {
                return Ok(());
            };
            let rounded = round_up(at, granularity);
            let text = model::format_instant(&rounded);
            if now.is_some_and(|now| rounded < now) {
                return Err(exc::subject_expiry_in_the_past(&text));
            }
            subject.insert("expiry".into(), Value::from(text));
            Ok(())
        })
    }

    /// CreatePolicy, and ModifyPolicy (which creates a policy that does not exist).
    fn write_policy(&self) -> Result<Change, DittoError> {
        let mut value = Value::Object(model::normalize_policy(&self.entity.id, self.value()?)?);
        self.adjust_expiries(PolicyResource::Policy, &mut value)?;
        let existed = self.entity.exists();
        if existed {
            self.refuse_if_equal(&value)?;
        }
        let Value::Object(json) = &value else {
            return Err(ProtocolError::NotAnObject.into());
        };
        self.check_references(json)?;
        self.check_lockout(json, Lockout::Policy)?;
        Ok(Change::created_or_modified(existed, value))
    }

    fn modify(&self) -> Result<Change, DittoError> {
        use PolicyResource as R;
        self.policy()?;
        let given = self.value()?;
        let id = self.id();
        let label = self.key(1);
        // The normalized value, whether something was there, and which checks the result needs.
        let (value, existed, references, lockout) = match self.resource {
            R::Policy => return self.write_policy(),
            R::PolicyEntries => {
                let mut v = Value::Object(model::normalize_entries(given)?);
                self.adjust_expiries(R::PolicyEntries, &mut v)?;
                (v, true, true, Some(Lockout::Policy))
            }
            R::PolicyEntry => {
                let mut v = model::normalize_entry(label, given)?;
                self.adjust_expiries(R::PolicyEntry, &mut v)?;
                let existed = self.entries()?.contains_key(label);
                (v, existed, true, Some(Lockout::Entry(label)))
            }
            R::Subjects => {
                self.entry()?;
                let mut v = Value::Object(model::normalize_subjects(given)?);
                self.adjust_expiries(R::Subjects, &mut v)?;
                (v, true, false, Some(Lockout::Entry(label)))
            }
            R::Subject => {
                self.entry()?;
                let mut v = model::normalize_subject(self.key(3), given)?;
                self.adjust_expiries(R::Subject, &mut v)?;
                let existed = self.current().is_some();
                (v, existed, false, Some(Lockout::Entry(label)))
            }
            R::Resources => {
                self.entry()?;
                let v = Value::Object(model::normalize_resources(given)?);
                (v, true, false, Some(Lockout::Entry(label)))
            }
            R::Resource => {
                self.entry()?;
                model::normalize_resource_key(self.key(3))?;
                let v = model::normalize_resource(given)?;
                let existed = self.current().is_some();
                (v, existed, false, Some(Lockout::Entry(label)))
            }
            R::PolicyImports => {
                let imports = model::normalize_imports(id, given)?;
                self.check_imports_keep_references(&imports)?;
                (Value::Object(imports), true, false, None)
            }
            R::PolicyImport => {
                let imported = self.key(1);
                let v = model::normalize_import(id, imported, given)?;
                let imports = self.imports()?;
                let existing = imports.and_then(|i| i.get(imported));
                match existing {
                    None if imports.map_or(0, Map::len) >= model::MAX_IMPORTS => {
                        return Err(exc::imports_too_large(id, model::MAX_IMPORTS));
                    }
                    None => {}
                    Some(old) => self.check_narrowing(imported, old, &v)?,
                }
                (v, existing.is_some(), false, None)
            }
            R::PolicyImportEntries => {
                let imported = self.key(1);
                let old = self.import()?;
                let v = model::normalize_import_entries(given)?;
                let new = serde_json::json!({ "entries": v });
                self.check_narrowing(imported, old, &new)?;
                (v, true, false, None)
            }
            R::PolicyImportTransitiveImports => {
                self.import()?;
                (
                    model::normalize_transitive_imports(id, given)?,
                    true,
                    false,
                    None,
                )
            }
            R::PolicyEntryImportable => {
                self.entry()?;
                let v = model::normalize_importable(given)?;
                if v == model::ImportableType::Never.as_str() {
                    let mut others = self.entries()?.clone();
                    others.shift_remove(label);
                    if let Some(other) = model::entry_referencing_locally(&others, label) {
                        return Err(exc::entry_never_importable_conflict(id, label, other));
                    }
                }
                (v, true, false, None)
            }
            R::PolicyEntryAllowedAdditions => {
                self.entry()?;
                (
                    model::normalize_allowed_additions(given)?,
                    true,
                    false,
                    None,
                )
            }
            R::PolicyEntryNamespaces => {
                self.entry()?;
                (model::normalize_namespaces(given)?, true, false, None)
            }
            R::PolicyEntryReferences => {
                self.entry()?;
                let v = model::normalize_references(given)?;
                // Ditto answers 201 when references appear on an entry that had none; the
                // event is a modification either way.
                let had_none = self.current().is_none();
                let appear = v.as_array().is_some_and(|a| !a.is_empty());
                self.refuse_if_equal(&v)?;
                let change = Change {
                    status: if had_none && appear { 201 } else { 204 },
                    response: (had_none && appear).then(|| v.clone()),
                    action: EventAction::Modified,
                    value: Some(v),
                };
                self.check_references(&self.after(&change))?;
                return Ok(change);
            }
        };
        self.refuse_if_equal(&value)?;
        let change = match self.resource {
            R::PolicyEntry | R::Subject | R::Resource | R::PolicyImport => {
                Change::created_or_modified(existed, value)
            }
            _ => Change::modified(value),
        };
        if references || lockout.is_some() {
            let after = self.after(&change);
            if references {
                self.check_references(&after)?;
            }
            if let Some(lockout) = lockout {
                self.check_lockout(&after, lockout)?;
            }
        }
        Ok(change)
    }

    /// ModifyPolicyImports must not drop an import (or a label of one) an entry references.
    fn check_imports_keep_references(&self, new: &Map<String, Value>) -> Result<(), DittoError> {
        let id = self.id();
        let entries = self.entries()?;
        for (imported, old) in self.imports()?.into_iter().flatten() {
            match new.get(imported) {
                None => {
                    if model::entry_referencing_import(entries, Some(imported)).is_some() {
                        return Err(exc::import_reference_conflict(id, imported));
                    }
                }
                Some(import) => self.check_narrowing(imported, old, import)?,
            }
        }
        Ok(())
    }

    /// An import's `entries` must keep the labels entries reference.
    fn check_narrowing(&self, imported: &str, old: &Value, new: &Value) -> Result<(), DittoError> {
        let (old, new) = (
            model::import_labels(Some(old)),
            model::import_labels(Some(new)),
        );
        match model::orphaned_by_narrowing(self.entries()?, imported, &old, &new) {
            Some((entry, label)) => Err(exc::import_label_orphan_conflict(
                self.id(),
                imported,
                label,
                entry,
            )),
            None => Ok(()),
        }
    }

    fn delete(&self) -> Result<Change, DittoError> {
        use PolicyResource as R;
        self.policy()?;
        let id = self.id();
        let label = self.key(1);
        let lockout = match self.resource {
            R::Policy => None,
            R::PolicyImports => {
                if model::entry_referencing_import(self.entries()?, None).is_some() {
                    return Err(exc::imports_reference_conflict(id));
                }
                None
            }
            R::PolicyImport => {
                self.import()?;
                if model::entry_referencing_import(self.entries()?, Some(label)).is_some() {
                    return Err(exc::import_reference_conflict(id, label));
                }
                None
            }
            R::PolicyEntry => {
                self.entry()?;
                if let Some(other) = model::entry_referencing_locally(self.entries()?, label) {
                    return Err(exc::entry_reference_conflict(id, label, other));
                }
                Some(Lockout::Entry(label))
            }
            R::Resource => {
                self.entry()?;
                let key = model::normalize_resource_key(self.key(3))?;
                if self.current().is_none() {
                    return Err(exc::resource_not_found(id, label, &key));
                }
                Some(Lockout::Entry(label))
            }
            R::Subject => {
                self.entry()?;
                if self.current().is_none() {
                    return Err(exc::subject_not_found(id, label, self.key(3)));
                }
                Some(Lockout::Entry(label))
            }
            // Ditto answers 204 for an entry without them; twinwire records the delete as an
            // event all the same (the outcome always carries one).
            R::PolicyEntryAllowedAdditions | R::PolicyEntryReferences => {
                self.entry()?;
                None
            }
            other => {
                return Err(ProtocolError::UnknownSignal {
                    kind: "command",
                    name: format!("delete{}", other.name()),
                }
                .into())
            }
        };
        let change = Change::deleted();
        if let Some(lockout) = lockout {
            self.check_lockout(&self.after(&change), lockout)?;
        }
        Ok(change)
    }

    fn retrieve(&self) -> Result<Value, DittoError> {
        use PolicyResource as R;
        let policy = self
            .entity
            .policy
            .as_ref()
            .ok_or_else(|| exc::policy_not_found(self.id()))?;
        let id = self.id();
        let label = self.key(1);
        let fields = self.env.fields.as_deref().map(json::selector_pointers);
        let or = |default: Value| Ok(self.current().cloned().unwrap_or(default));
        let value = match self.resource {
            R::Policy => {
                let wants_special = fields.as_ref().is_some_and(|f| {
                    f.iter()
                        .any(|p| p.first().is_some_and(|k| k.starts_with('_')))
                });
                let whole = policy.to_json(self.entity.revision, wants_special);
                return Ok(match &fields {
                    Some(f) => json::select(&whole, f),
                    None => whole,
                });
            }
            R::PolicyEntries | R::PolicyImports => or(Value::Object(Map::new())),
            R::PolicyImport => self.import().cloned(),
            R::PolicyImportEntries | R::PolicyImportTransitiveImports => {
                self.import()?;
                or(Value::Array(vec![]))
            }
            R::PolicyEntry => self.entry().map(|e| Value::Object(e.clone())),
            R::Subjects | R::Resources => {
                self.entry()?;
                or(Value::Object(Map::new()))
            }
            R::Subject => {
                self.entry()?;
                self.current()
                    .cloned()
                    .ok_or_else(|| exc::subject_not_found(id, label, self.key(3)))
            }
            R::Resource => {
                self.entry()?;
                let key = model::normalize_resource_key(self.key(3))?;
                self.current()
                    .cloned()
                    .ok_or_else(|| exc::resource_not_found(id, label, &key))
            }
            R::PolicyEntryImportable => {
                self.entry()?;
                or(Value::from(model::ImportableType::Implicit.as_str()))
            }
            R::PolicyEntryAllowedAdditions | R::PolicyEntryReferences => {
                self.entry()?;
                or(Value::Array(vec![]))
            }
            // Ditto answers an entry without namespaces as not found.
            R::PolicyEntryNamespaces => {
                self.entry()?;
                self.current()
                    .cloned()
                    .ok_or_else(|| exc::entry_not_found(id, label))
            }
        }?;
        Ok(match &fields {
            Some(f) if value.is_object() => json::select(&value, f),
            _ => value,
        })
    }
}

/// What [`visit_subjects`] does to one subject object.
type SubjectVisitor<'f> = dyn FnMut(&mut Map<String, Value>) -> Result<(), DittoError> + 'f;

/// Calls `f` on every subject object inside `value`, a part of the kind `resource`.
fn visit_subjects(
    resource: PolicyResource,
    value: &mut Value,
    f: &mut SubjectVisitor<'_>,
) -> Result<(), DittoError> {
    use PolicyResource as R;
    match resource {
        R::Policy => {
            if let Some(entries) = value.get_mut("entries") {
                visit_subjects(R::PolicyEntries, entries, f)?;
            }
        }
        R::PolicyEntries => {
            for entry in value
                .as_object_mut()
                .into_iter()
                .flat_map(|e| e.values_mut())
            {
                visit_subjects(R::PolicyEntry, entry, f)?;
            }
        }
        R::PolicyEntry => {
            if let Some(subjects) = value.get_mut("subjects") {
                visit_subjects(R::Subjects, subjects, f)?;
            }
        }
        R::Subjects => {
            for subject in value
                .as_object_mut()
                .into_iter()
                .flat_map(|s| s.values_mut())
            {
                visit_subjects(R::Subject, subject, f)?;
            }
        }
        R::Subject => {
            if let Some(subject) = value.as_object_mut() {
                f(subject)?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Rounds `at` up to the next multiple of `granularity_secs` (counted from the epoch, which for
/// granularities dividing a day is Ditto's rounding within the day, hour or minute).
fn round_up(
    at: chrono::DateTime<chrono::Utc>,
    granularity_secs: u64,
) -> chrono::DateTime<chrono::Utc> {
    let Ok(g) = i64::try_from(granularity_secs) else {
        return at;
    };
    if g == 0 {
        return at;
    }
    let secs = at.timestamp();
    if at.timestamp_subsec_nanos() == 0 && secs.rem_euclid(g) == 0 {
        return at;
    }
    let rounded = (secs.div_euclid(g) + 1).saturating_mul(g);
    chrono::DateTime::from_timestamp(rounded, 0).unwrap_or(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use twinwire_protocol::PolicyId;

    const NOW: &str = "2026-11-22T10:00:00.000Z";
    const T: &str = "org.eclipse.ditto/the_policy_id/policies/commands";
    const ID: &str = "org.eclipse.ditto:the_policy_id";

    fn entity() -> PolicyEntity {
        PolicyEntity::new(PolicyId::parse(ID).unwrap())
    }

    fn cmd(action: &str, path: &str, value: Option<Value>, headers: Value) -> Envelope {
        let mut v = json!({"topic": format!("{T}/{action}"), "headers": headers, "path": path});
        if let Some(value) = value {
            v["value"] = value;
        }
        Envelope::from_json(v).unwrap()
    }

    /// Runs a command with `config`, applying its event (after checking that it classifies as a
    /// policy event); the response or error response as JSON.
    fn run_with(entity: &mut PolicyEntity, env: &Envelope, config: &PolicyConfig) -> Value {
        match PolicyCommand::from_envelope(env).and_then(|c| handle_with(entity, c, NOW, config)) {
            Ok(outcome) => {
                if let PolicyOutcome::Changed { event, .. } = &outcome {
                    let published = event.to_policy_envelope(&entity.id, Default::default());
                    published
                        .signal()
                        .unwrap_or_else(|e| panic!("{e}: {published:?}"));
                    entity.apply(event);
                }
                outcome.response_to(env).to_json()
            }
            Err(e) => env.error_response(&e).to_json(),
        }
    }

    fn run(entity: &mut PolicyEntity, env: &Envelope) -> Value {
        run_with(entity, env, &PolicyConfig::default())
    }

    fn error(response: &Value) -> (Value, Value) {
        (
            response["status"].clone(),
            response["value"]["error"].clone(),
        )
    }

    fn admin_policy() -> Value {
        json!({"entries": {
            "admin": {"subjects": {"nginx:admin": {"type": "admin"}},
                "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []},
                    "thing:/": {"grant": ["READ", "WRITE"], "revoke": []}}},
            "reader": {"subjects": {"google:reader": {"type": "user"}},
                "resources": {"thing:/attributes": {"grant": ["READ"], "revoke": []}}}
        }})
    }

    fn created() -> PolicyEntity {
        let mut e = entity();
        let r = run(&mut e, &cmd("create", "/", Some(admin_policy()), json!({})));
        assert_eq!(r["status"], 201, "{r}");
        e
    }

    #[test]
    fn create_answers_the_stored_policy_and_refuses_a_second_create() {
        let mut e = entity();
        let r = run(&mut e, &cmd("create", "/", Some(admin_policy()), json!({})));
        assert_eq!(r["value"]["policyId"], ID);
        assert_eq!(r["value"]["entries"], admin_policy()["entries"]);
        let again = run(&mut e, &cmd("create", "/", Some(admin_policy()), json!({})));
        assert_eq!(
            error(&again),
            (json!(409), json!("policies:policy.conflict"))
        );
        let mut fresh = entity();
        let foreign = run(
            &mut fresh,
            &cmd("create", "/", Some(json!({"policyId": "a:b"})), json!({})),
        );
        assert_eq!(foreign["value"]["error"], "policies:id.notsettable");
        let r = run(
            &mut fresh,
            &cmd("modify", "/", Some(admin_policy()), json!({})),
        );
        assert_eq!(
            r["status"], 201,
            "modify creates a policy that is not there"
        );
        let r = run(
            &mut fresh,
            &cmd("modify", "/", Some(admin_policy()), json!({})),
        );
        assert_eq!((r["status"].clone(), r.get("value")), (json!(204), None));
        assert_eq!(fresh.revision, 2);
    }

    #[test]
    fn every_part_answers_its_not_found() {
        let mut e = created();
        let code = |e: &mut PolicyEntity, action: &str, path: &str| {
            let value = (action == "modify").then(|| json!({"type": "t"}));
            run(e, &cmd(action, path, value, json!({})))["value"]["error"].clone()
        };
        for (action, path, expected) in [
            ("retrieve", "/entries/none", "policies:entry.notfound"),
            (
                "retrieve",
                "/entries/none/subjects",
                "policies:entry.notfound",
            ),
            (
                "modify",
                "/entries/none/subjects/google:x",
                "policies:entry.notfound",
            ),
            ("delete", "/entries/none", "policies:entry.notfound"),
            (
                "retrieve",
                "/entries/admin/subjects/google:none",
                "policies:subject.notfound",
            ),
            (
                "delete",
                "/entries/admin/subjects/google:none",
                "policies:subject.notfound",
            ),
            (
                "retrieve",
                "/entries/admin/resources/message:/",
                "policies:resource.notfound",
            ),
            (
                "delete",
                "/entries/admin/resources/message:/",
                "policies:resource.notfound",
            ),
            ("retrieve", "/imports/a:b", "policies:import.notfound"),
            ("delete", "/import/a:b", "policies:import.notfound"),
            (
                "retrieve",
                "/imports/a:b/entries",
                "policies:import.notfound",
            ),
            (
                "retrieve",
                "/entries/admin/namespaces",
                "policies:entry.notfound",
            ),
        ] {
            assert_eq!(code(&mut e, action, path), expected, "{action} {path}");
        }
        let r = run(
            &mut e,
            &cmd(
                "retrieve",
                "/entries/admin/resources/message:/",
                None,
                json!({}),
            ),
        );
        assert_eq!(r["value"]["message"], "The Resource 'message:/' of the PolicyEntry with Label 'admin' on the Policy with ID 'org.eclipse.ditto:the_policy_id' could not be found or requester had insufficient permissions to access it.");
        let mut none = entity();
        assert_eq!(
            code(&mut none, "retrieve", "/entries"),
            "policies:policy.notfound"
        );
        assert_eq!(
            code(&mut none, "modify", "/entries/admin/subjects/google:x"),
            "policies:policy.notfound"
        );
        assert_eq!(code(&mut none, "delete", "/"), "policies:policy.notfound");
        assert_eq!(e.revision, 1);
    }

    #[test]
    fn unset_optional_fields_retrieve_as_dittos_defaults() {
        let mut e = created();
        let get = |e: &mut PolicyEntity, path: &str| {
            run(e, &cmd("retrieve", path, None, json!({})))["value"].clone()
        };
        assert_eq!(get(&mut e, "/entries/admin/importable"), "implicit");
        assert_eq!(get(&mut e, "/entries/admin/allowedAdditions"), json!([]));
        assert_eq!(get(&mut e, "/entries/admin/references"), json!([]));
        assert_eq!(get(&mut e, "/imports"), json!({}));
        run(
            &mut e,
            &cmd("modify", "/imports/a:b", Some(json!({})), json!({})),
        );
        assert_eq!(get(&mut e, "/imports/a:b/entries"), json!([]));
        assert_eq!(get(&mut e, "/imports/a:b/transitiveImports"), json!([]));
    }

    #[test]
    fn entry_fields_are_modified_and_deleted_one_by_one() {
        let mut e = created();
        for (path, value) in [
            ("/entries/reader/importable", json!("explicit")),
            ("/entries/reader/allowedAdditions", json!(["subjects"])),
            (
                "/entries/reader/namespaces",
                json!(["com.acme", "com.acme.*"]),
            ),
        ] {
            let r = run(&mut e, &cmd("modify", path, Some(value.clone()), json!({})));
            assert_eq!(r["status"], 204, "{path}: {r}");
            let r = run(&mut e, &cmd("retrieve", path, None, json!({})));
            assert_eq!(r["value"], value, "{path}");
        }
        let r = run(
            &mut e,
            &cmd(
                "delete",
                "/entries/reader/allowedAdditions",
                None,
                json!({}),
            ),
        );
        assert_eq!(r["status"], 204);
        let reader =
            run(&mut e, &cmd("retrieve", "/entries/reader", None, json!({})))["value"].clone();
        assert_eq!(
            reader,
            json!({"subjects": {"google:reader": {"type": "user"}},
                "resources": {"thing:/attributes": {"grant": ["READ"], "revoke": []}},
                "namespaces": ["com.acme", "com.acme.*"], "importable": "explicit"})
        );
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/reader/importable",
                Some(json!("always")),
                json!({}),
            ),
        );
        assert_eq!(error(&r), (json!(400), json!("policies:entry.invalid")));
    }

    #[test]
    fn imports_are_created_narrowed_and_deleted_with_their_references_in_mind() {
        let mut e = created();
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/imports/a:tpl",
                Some(json!({"entries": ["ROLE", "OTHER"]})),
                json!({}),
            ),
        );
        assert_eq!(
            (r["status"].clone(), r["value"].clone()),
            (json!(201), json!({"entries": ["ROLE", "OTHER"]}))
        );
        let refs = json!([{"import": "a:tpl", "entry": "ROLE"}]);
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/reader/references",
                Some(refs.clone()),
                json!({}),
            ),
        );
        assert_eq!(
            (r["status"].clone(), r["value"].clone()),
            (json!(201), refs.clone())
        );
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/reader/references",
                Some(refs.clone()),
                json!({}),
            ),
        );
        assert_eq!(r["status"], 204);
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/imports/a:tpl/entries",
                Some(json!(["OTHER"])),
                json!({}),
            ),
        );
        assert_eq!(
            error(&r),
            (json!(409), json!("policies:import.referenceconflict"))
        );
        assert_eq!(r["value"]["description"], "Removing label 'ROLE' from this import's filter would orphan the reference from entry 'reader'.");
        let r = run(&mut e, &cmd("delete", "/imports/a:tpl", None, json!({})));
        assert_eq!(r["value"]["error"], "policies:import.referenceconflict");
        let r = run(&mut e, &cmd("delete", "/imports", None, json!({})));
        assert_eq!(r["value"]["message"], "The imports of Policy 'org.eclipse.ditto:the_policy_id' cannot be removed because entry references still point to them.");
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/imports",
                Some(json!({"a:other": {}})),
                json!({}),
            ),
        );
        assert_eq!(r["value"]["error"], "policies:import.referenceconflict");
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/reader/references",
                Some(json!([{"import": "a:nope", "entry": "X"}])),
                json!({}),
            ),
        );
        assert_eq!(r["value"]["error"], "policies:entry.invalid");
        assert_eq!(
            r["value"]["description"],
            "Import reference targets policy 'a:nope' which is not declared in imports."
        );
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/imports/a:tpl/transitiveImports",
                Some(json!(["a:deeper"])),
                json!({}),
            ),
        );
        assert_eq!(r["status"], 204);
        assert_eq!(
            run(&mut e, &cmd("retrieve", "/imports/a:tpl", None, json!({})))["value"],
            json!({"entries": ["ROLE", "OTHER"], "transitiveImports": ["a:deeper"]})
        );
        assert_eq!(
            run(
                &mut e,
                &cmd("delete", "/entries/reader/references", None, json!({}))
            )["status"],
            204
        );
        assert_eq!(
            run(&mut e, &cmd("delete", "/import/a:tpl", None, json!({})))["status"],
            204
        );
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/imports/org.eclipse.ditto:the_policy_id",
                Some(json!({})),
                json!({}),
            ),
        );
        assert_eq!(r["value"]["error"], "policies:import.invalid");
        for i in 0..model::MAX_IMPORTS {
            let r = run(
                &mut e,
                &cmd(
                    "modify",
                    &format!("/imports/a:p{i}"),
                    Some(json!({})),
                    json!({}),
                ),
            );
            assert_eq!(r["status"], 201);
        }
        let r = run(
            &mut e,
            &cmd("modify", "/imports/a:p99", Some(json!({})), json!({})),
        );
        assert_eq!(error(&r), (json!(400), json!("policies:imports.toolarge")));
    }

    #[test]
    fn local_references_protect_their_targets() {
        let mut e = created();
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/reader/references",
                Some(json!([{"entry": "admin"}])),
                json!({}),
            ),
        );
        assert_eq!(r["status"], 201);
        let r = run(&mut e, &cmd("delete", "/entries/admin", None, json!({})));
        assert_eq!(
            error(&r),
            (json!(409), json!("policies:entry.referenceconflict"))
        );
        assert_eq!(r["value"]["message"], "The entry 'admin' of Policy 'org.eclipse.ditto:the_policy_id' cannot be removed because a local reference from entry 'reader' still points to it.");
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/admin/importable",
                Some(json!("never")),
                json!({}),
            ),
        );
        assert_eq!(r["value"]["error"], "policies:entry.referenceconflict");
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/reader/references",
                Some(json!([{"entry": "reader"}])),
                json!({}),
            ),
        );
        assert_eq!(
            r["value"]["description"],
            "Entry must not reference itself."
        );
    }

    #[test]
    fn no_change_may_lock_the_policy_writers_out() {
        let mut e = created();
        let expect = |r: &Value, code: &str, message: &str| {
            assert_eq!(error(r), (json!(403), json!(code)), "{r}");
            assert_eq!(r["value"]["message"], message);
        };
        let entry_msg = "The PolicyEntry with Label 'admin' on the Policy with ID 'org.eclipse.ditto:the_policy_id' could not be modified as the resulting Policy would be invalid.";
        let policy_msg = "The Policy with ID 'org.eclipse.ditto:the_policy_id' could not be modified as the resulting Policy would be invalid.";
        let r = run(&mut e, &cmd("delete", "/entries/admin", None, json!({})));
        expect(&r, "policies:entry.modificationinvalid", entry_msg);
        let r = run(
            &mut e,
            &cmd(
                "delete",
                "/entries/admin/subjects/nginx:admin",
                None,
                json!({}),
            ),
        );
        expect(&r, "policies:entry.modificationinvalid", entry_msg);
        let r = run(
            &mut e,
            &cmd(
                "delete",
                "/entries/admin/resources/policy:/",
                None,
                json!({}),
            ),
        );
        expect(&r, "policies:entry.modificationinvalid", entry_msg);
        let read_only = json!({"grant": ["READ"], "revoke": []});
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/admin/resources/policy:/",
                Some(read_only.clone()),
                json!({}),
            ),
        );
        expect(&r, "policies:entry.modificationinvalid", entry_msg);
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/admin/resources",
                Some(json!({"thing:/": read_only})),
                json!({}),
            ),
        );
        expect(&r, "policies:entry.modificationinvalid", entry_msg);
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/admin/subjects",
                Some(json!({})),
                json!({}),
            ),
        );
        expect(&r, "policies:entry.modificationinvalid", entry_msg);
        let expiring = json!({"type": "admin", "expiry": "2099-01-01T00:00:00Z"});
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/admin/subjects/nginx:admin",
                Some(expiring),
                json!({}),
            ),
        );
        expect(&r, "policies:entry.modificationinvalid", entry_msg);
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries",
                Some(json!({"reader": admin_policy()["entries"]["reader"]})),
                json!({}),
            ),
        );
        expect(&r, "policies:policy.modificationinvalid", policy_msg);
        let r = run(
            &mut e,
            &cmd("modify", "/", Some(json!({"entries": {}})), json!({})),
        );
        expect(&r, "policies:policy.modificationinvalid", policy_msg);
        assert_eq!(e.revision, 1, "nothing was applied");
        // Without lockout prevention (an operator's choice in Ditto) the same change passes.
        let off = PolicyConfig {
            lockout_prevention: false,
            ..PolicyConfig::default()
        };
        let r = run_with(
            &mut e,
            &cmd("delete", "/entries/admin", None, json!({})),
            &off,
        );
        assert_eq!(r["status"], 204);
        // A policy with imports is not checked: its imports may hold the writer.
        let mut imported = entity();
        let p = json!({"imports": {"a:tpl": {}}, "entries": {}});
        assert_eq!(
            run(&mut imported, &cmd("create", "/", Some(p), json!({})))["status"],
            201
        );
    }

    #[test]
    fn entity_tags_and_if_equal_guard_changes() {
        let mut e = created(); // revision 1
        let subject = json!({"type": "user"});
        let path = "/entries/reader/subjects/google:reader";
        let r = run(
            &mut e,
            &cmd(
                "modify",
                path,
                Some(subject.clone()),
                json!({"if-match": "\"rev:7\""}),
            ),
        );
        assert_eq!(
            error(&r),
            (json!(412), json!("policies:precondition.failed"))
        );
        assert_eq!(r["value"]["message"], "The comparison of precondition header 'if-match' for the requested Policy resource evaluated to false. Header value: '\"rev:7\"', actual entity-tag: '\"rev:1\"'.");
        let r = run(
            &mut e,
            &cmd(
                "modify",
                path,
                Some(subject.clone()),
                json!({"if-equal": "skip"}),
            ),
        );
        assert_eq!(
            error(&r),
            (json!(412), json!("policies:precondition.failed"))
        );
        assert_eq!(
            run(
                &mut e,
                &cmd(
                    "modify",
                    path,
                    Some(subject),
                    json!({"if-match": "\"rev:1\""})
                )
            )["status"],
            204
        );
        let r = run(
            &mut e,
            &cmd("retrieve", "/", None, json!({"if-none-match": "\"rev:2\""})),
        );
        assert_eq!(
            error(&r),
            (json!(304), json!("policies:precondition.notmodified"))
        );
        let r = run(
            &mut e,
            &cmd(
                "create",
                "/",
                Some(admin_policy()),
                json!({"if-none-match": "*"}),
            ),
        );
        assert_eq!(r["value"]["error"], "policies:precondition.failed");
        let skip = json!({"if-equal": "skip"});
        let r = run(
            &mut e,
            &cmd("modify", "/", Some(admin_policy()), skip.clone()),
        );
        assert_eq!(r["value"]["message"], "The previous value was equal to the new value and the 'if-equal' header was set to 'skip'.");
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries",
                Some(admin_policy()["entries"].clone()),
                skip,
            ),
        );
        assert_eq!(r["status"], 412);
        assert_eq!(e.revision, 2);
        let mut none = entity();
        let r = run(
            &mut none,
            &cmd(
                "modify",
                "/",
                Some(admin_policy()),
                json!({"if-match": "*"}),
            ),
        );
        assert_eq!(r["value"]["error"], "policies:precondition.failed");
    }

    #[test]
    fn subject_expiries_round_up_and_must_lie_ahead() {
        let mut e = created();
        let path = "/entries/reader/subjects/google:temp";
        let r = run(
            &mut e,
            &cmd(
                "modify",
                path,
                Some(json!({"type": "t", "expiry": "2099-12-31T23:10:00+00:00"})),
                json!({}),
            ),
        );
        assert_eq!(
            r["value"],
            json!({"type": "t", "expiry": "2100-01-01T00:00:00Z"})
        );
        let aligned = json!({"type": "t", "expiry": "2099-06-01T10:00:00Z"});
        let r = run(
            &mut e,
            &cmd("modify", path, Some(aligned.clone()), json!({})),
        );
        assert_eq!(r["status"], 204);
        assert_eq!(
            run(&mut e, &cmd("retrieve", path, None, json!({})))["value"],
            aligned
        );
        let r = run(
            &mut e,
            &cmd(
                "modify",
                path,
                Some(json!({"type": "t", "expiry": "2020-01-01T00:00:00Z"})),
                json!({}),
            ),
        );
        assert_eq!(
            (
                r["value"]["error"].clone(),
                r["value"]["description"].clone()
            ),
            (
                json!("policies:subjectexpiry.invalid"),
                json!("It must not be in the past, please adjust to a timestamp in the future.")
            )
        );
        // An expiry this hour rounds up to the next full hour and so still lies ahead.
        let r = run(
            &mut e,
            &cmd(
                "modify",
                path,
                Some(json!({"type": "t", "expiry": "2026-11-22T09:59:00Z"})),
                json!({}),
            ),
        );
        assert_eq!(r["status"], 204, "{r}");
        let fine = PolicyConfig {
            subject_expiry_granularity_secs: 1,
            ..PolicyConfig::default()
        };
        let r = run_with(
            &mut e,
            &cmd(
                "modify",
                path,
                Some(json!({"type": "t", "expiry": "2026-11-22T09:59:00Z"})),
                json!({}),
            ),
            &fine,
        );
        assert_eq!(r["value"]["error"], "policies:subjectexpiry.invalid");
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/reader/subjects/not-an-id",
                Some(json!({"type": "t"})),
                json!({}),
            ),
        );
        assert_eq!(error(&r), (json!(400), json!("policies:subjectid.invalid")));
    }

    #[test]
    fn retrieves_select_fields_and_special_fields() {
        let mut e = created();
        let mut env = cmd("retrieve", "/", None, json!({}));
        env.fields = Some("policyId,_revision,_namespace,entries/reader/subjects".into());
        assert_eq!(
            run(&mut e, &env)["value"],
            json!({"policyId": ID, "_revision": 1, "_namespace": "org.eclipse.ditto",
                "entries": {"reader": {"subjects": {"google:reader": {"type": "user"}}}}})
        );
        let mut env = cmd("retrieve", "/entries/admin", None, json!({}));
        env.fields = Some("subjects".into());
        assert_eq!(
            run(&mut e, &env)["value"],
            json!({"subjects": {"nginx:admin": {"type": "admin"}}})
        );
    }

    #[test]
    fn resource_keys_are_normalized_on_the_way_in() {
        let mut e = created();
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/reader/resources/thing:/features/",
                Some(json!({"grant": ["READ"], "revoke": []})),
                json!({}),
            ),
        );
        assert_eq!(r["status"], 201);
        let resources = run(
            &mut e,
            &cmd("retrieve", "/entries/reader/resources", None, json!({})),
        )["value"]
            .clone();
        assert!(resources.get("thing:/features").is_some(), "{resources}");
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/reader/resources/device:/x",
                Some(json!({"grant": ["READ"], "revoke": []})),
                json!({}),
            ),
        );
        assert_eq!(r["value"]["error"], "policies:entry.invalid");
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/entries/reader/resources/thing:/x",
                Some(json!({"grant": ["SING"], "revoke": []})),
                json!({}),
            ),
        );
        assert_eq!(
            r["value"]["description"],
            "Policy entry does not contain any known permission like 'READ' or 'WRITE'"
        );
        assert_eq!(
            run(
                &mut e,
                &cmd("delete", "/entries/admin/resources/thing:", None, json!({}))
            )["status"],
            204
        );
    }

    #[test]
    fn rounding_keeps_aligned_instants() {
        let at = model::parse_instant("2026-01-01T10:00:00Z").unwrap();
        assert_eq!(round_up(at, 3600), at);
        let at = model::parse_instant("2026-01-01T10:00:00.001Z").unwrap();
        assert_eq!(
            model::format_instant(&round_up(at, 3600)),
            "2026-01-01T11:00:00Z"
        );
        assert_eq!(
            model::format_instant(&round_up(at, 30)),
            "2026-01-01T10:00:30Z"
        );
        assert_eq!(round_up(at, 0), at);
    }
}
