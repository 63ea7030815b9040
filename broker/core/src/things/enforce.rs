//! Which thing commands a subject may send, and what of a thing it may see (Ditto's thing
//! command enforcement, docs/basic-policy.md): a retrieve needs READ at or below its path and
//! answers only the readable parts; a change needs WRITE on everything it touches (for a merge,
//! every path its patch sets or deletes). A refusal is `*.notmodifiable` (403) when the subject
//! may read the resource, else `*.notfound` (404), so that nobody learns of what they may not
//! read. A thing whose policy is gone is not found by anyone. Pure: no I/O.

use super::errors;
use super::state::Command;
use super::thing::ThingEntity;
use crate::auth::AuthContext;
use crate::policies::enforcer::{Enforcer, Permission};
use serde_json::{Map, Value};
use twinwire_protocol::exceptions::things as exc;
use twinwire_protocol::signal::ThingResource;
use twinwire_protocol::topic::CommandAction;
use twinwire_protocol::{DittoError, JsonPointer};

const THING: &str = "thing";

/// Checks a command against the thing's policy (`None`: the policy does not exist).
pub fn authorize(
    enforcer: Option<&Enforcer>,
    entity: &ThingEntity,
    cmd: Command<'_>,
    auth: &AuthContext,
) -> Result<(), DittoError> {
    if auth.is_unrestricted() {
        return Ok(());
    }
    let id = entity.id.as_str();
    let creates = cmd.resource == ThingResource::Thing
        && matches!(cmd.action, CommandAction::Create | CommandAction::Modify);
    if !entity.exists() && !creates {
        // Nothing to protect: the command answers that the thing is not found.
        return Ok(());
    }
    let Some(enforcer) = enforcer else {
        let policy_id = entity
            .thing
            .as_ref()
            .and_then(|t| t.policy_id())
            .unwrap_or(id);
        return Err(if entity.exists() {
            exc::thing_not_found(id)
        } else {
            exc::thing_not_creatable(id, policy_id)
        });
    };
    check(enforcer, id, entity.exists(), cmd, auth)
}

/// Checks a live command against the policy of the existing thing it addresses, as its twin
/// counterpart is checked (Ditto's `LiveSignalEnforcement`).
pub fn authorize_existing(
    enforcer: &Enforcer,
    thing_id: &str,
    cmd: Command<'_>,
    auth: &AuthContext,
) -> Result<(), DittoError> {
    if auth.is_unrestricted() {
        return Ok(());
    }
    check(enforcer, thing_id, true, cmd, auth)
}

/// Whether `auth` may send a message at `path` (WRITE on `message:<path>`).
pub fn may_send_message(enforcer: &Enforcer, auth: &AuthContext, path: &JsonPointer) -> bool {
    auth.is_unrestricted()
        || enforcer.has_permission(auth.subjects(), "message", path, Permission::Write)
}

/// Whether `auth` may write the thing at `path` and everything below (a live event's sender).
pub fn may_write(enforcer: &Enforcer, auth: &AuthContext, path: &JsonPointer) -> bool {
    auth.is_unrestricted()
        || enforcer.has_permission(auth.subjects(), THING, path, Permission::Write)
}

fn check(
    enforcer: &Enforcer,
    id: &str,
    exists: bool,
    cmd: Command<'_>,
    auth: &AuthContext,
) -> Result<(), DittoError> {
    let path = &cmd.envelope.path;
    let creates = cmd.resource == ThingResource::Thing
        && matches!(cmd.action, CommandAction::Create | CommandAction::Modify);
    let subjects = auth.subjects();
    // A condition may only read what the requester may read (Ditto checks this first).
    if let Ok(Some(condition)) = cmd.envelope.headers.condition() {
        if let Ok(predicate) = twinwire_protocol::rql::parse_condition(condition) {
            let unreadable = predicate
                .properties()
                .into_iter()
                .any(|p| !enforcer.has_permission(subjects, THING, p, Permission::Read));
            if unreadable {
                return Err(exc::condition_failed_permission());
            }
        }
    }
    let may_read =
        |p: &JsonPointer| enforcer.has_partial_permission(subjects, THING, p, Permission::Read);
    let may_write =
        |p: &JsonPointer| enforcer.has_permission(subjects, THING, p, Permission::Write);
    let refuse = |p: &JsonPointer| {
        if exists && may_read(p) {
            errors::not_modifiable(id, cmd.resource, p)
        } else if exists {
            errors::not_found(id, cmd.resource, p)
        } else {
            exc::thing_not_modifiable(id)
        }
    };
    match cmd.action {
        CommandAction::Retrieve if may_read(path) => Ok(()),
        CommandAction::Retrieve => Err(errors::not_found(id, cmd.resource, path)),
        CommandAction::Merge => {
            let patch = cmd.envelope.value.as_ref().unwrap_or(&Value::Null);
            let mut touched = Vec::new();
            leaves(path, patch, &mut touched);
            match touched.iter().find(|p| !may_write(p)) {
                Some(_) => Err(refuse(path)),
                None => Ok(()),
            }
        }
        _ if creates && !exists => {
            // Creating a thing: WRITE on the whole thing under the policy it will have.
            if may_write(&JsonPointer::root()) {
                Ok(())
            } else {
                Err(exc::thing_not_modifiable(id))
            }
        }
        _ if may_write(path) => Ok(()),
        _ => Err(refuse(path)),
    }
}

/// The paths a merge patch at `path` sets or deletes: its leaves (scalars, arrays, nulls and
/// empty objects), each joined to `path`.
fn leaves(path: &JsonPointer, patch: &Value, out: &mut Vec<JsonPointer>) {
    match patch {
        Value::Object(members) if !members.is_empty() => {
            for (key, value) in members {
                let mut child = path.clone();
                child.push(key.clone());
                leaves(&child, value, out);
            }
        }
        _ => out.push(path.clone()),
    }
}

/// The readable part of a retrieved value at `path`. An object keeps what READ allows; a
/// scalar or array passes whole once the retrieve was allowed, as Ditto answers.
pub fn readable(
    enforcer: Option<&Enforcer>,
    auth: &AuthContext,
    path: &JsonPointer,
    value: Value,
) -> Value {
    if auth.is_unrestricted() {
        return value;
    }
    match (enforcer, &value) {
        (Some(enforcer), Value::Object(_)) => enforcer
            .filter_readable(auth.subjects(), THING, path, &value)
            .unwrap_or_else(|| Value::Object(Map::new())),
        _ => value,
    }
}

/// What a subscriber acting as `auth` may see of a thing event: `None` when nothing (no READ at
/// or below the event's path), else the event with its value cut to the readable parts. The
/// routing issue's pub/sub filters every published event through this.
pub fn event_view(
    enforcer: &Enforcer,
    auth: &AuthContext,
    event: &twinwire_protocol::Envelope,
) -> Option<twinwire_protocol::Envelope> {
    if auth.is_unrestricted() {
        return Some(event.clone());
    }
    if !enforcer.has_partial_permission(auth.subjects(), THING, &event.path, Permission::Read) {
        return None;
    }
    let value = match &event.value {
        None => None,
        // Readable below the path but nothing of this value: nothing to tell.
        Some(value) => {
            Some(enforcer.filter_readable(auth.subjects(), THING, &event.path, value)?)
        }
    };
    // The envelope without its value, so the value is copied once (filtered), not twice.
    let mut visible = twinwire_protocol::Envelope::new(
        event.topic.clone(),
        event.headers.clone(),
        event.path.clone(),
    );
    visible.value = value;
    visible.extra = event.extra.clone();
    visible.status = event.status;
    visible.revision = event.revision;
    visible.timestamp = event.timestamp.clone();
    visible.fields = event.fields.clone();
    visible.metadata = event.metadata.clone();
    Some(visible)
}
