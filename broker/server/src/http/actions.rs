//! Policy actions (docs/basic-policy.md, "Actions"): `activateTokenIntegration` and
//! `deactivateTokenIntegration`, for a whole policy or one entry. A caller authenticated with a
//! JWT, granted `EXECUTE` on `policy:/entries/{label}/actions/{action}` of entries that name one
//! of its subjects (and, to activate, grant READ on some `thing:` resource), injects into those
//! entries the token integration subject (by default `integration:{{policy-entry:label}}:{{jwt:aud}}`)
//! expiring with the token, or removes it. No WRITE on the policy is needed: the broker applies
//! the change itself once EXECUTE is established.

use super::error::ApiError;
use super::reply::respond;
use super::AppState;
use crate::auth::Caller;
use serde_json::{json, Map, Value};
use twinwire_core::auth::AuthContext;
use twinwire_core::policies::enforcer::Permission;
use twinwire_core::routing::{Answer, Requester};
use twinwire_protocol::exceptions::policies as exc;
use twinwire_protocol::topic::{Channel, CommandAction, Criterion, Group};
use twinwire_protocol::{DittoError, Envelope, Headers, JsonPointer, PolicyId, Topic};

pub const ACTIVATE: &str = "activateTokenIntegration";
pub const DEACTIVATE: &str = "deactivateTokenIntegration";

/// Runs an action on the policy (`label`: only that entry).
pub async fn run(
    state: &AppState,
    caller: &Caller,
    policy: &PolicyId,
    label: Option<&str>,
    action: &str,
    body: &[u8],
) -> Result<axum::response::Response, ApiError> {
    if action != ACTIVATE && action != DEACTIVATE {
        return Err(twinwire_protocol::exceptions::gateway::not_found(action).into());
    }
    let claims = caller.jwt.as_deref().ok_or_else(|| {
        failed(
            action,
            400,
            "Policy action is only possible with JWT authentication.",
        )
    })?;
    let announcement = match body.iter().all(u8::is_ascii_whitespace) {
        true => None,
        false => super::request::json_body(body)?
            .get("announcement")
            .cloned(),
    };
    let admin = AuthContext::none().unrestricted();
    let json = retrieve(state, policy, &admin).await?;
    let compiled = state
        .router
        .engine()
        .enforcers()
        .enforcer(policy.as_str(), policy.namespace())?
        .ok_or_else(|| exc::policy_not_found(policy.as_str()))?;
    let subjects = caller.auth.subjects();
    let entries: Vec<(&String, &Value)> = json
        .get("entries")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter(|(l, _)| label.is_none_or(|wanted| wanted == l.as_str()))
        .collect();
    if label.is_some() && entries.is_empty() {
        return Err(exc::entry_not_found(policy.as_str(), label.unwrap_or_default()).into());
    }
    let executable: Vec<&(&String, &Value)> = entries
        .iter()
        .filter(|(l, _)| {
            let path = JsonPointer::from_segments(["entries", l.as_str(), "actions", action]);
            compiled
                .enforcer
                .has_permission(subjects, "policy", &path, Permission::Execute)
        })
        .collect();
    if executable.is_empty() {
        return Err(failed(
            action,
            403,
            "The requester has no EXECUTE permission for this action on any entry of the policy.",
        )
        .into());
    }
    let matched: Vec<&String> = executable
        .iter()
        .filter(|(_, entry)| names_one_of(entry, subjects))
        .filter(|(_, entry)| action == DEACTIVATE || grants_thing_read(entry))
        .map(|(l, _)| *l)
        .collect();
    if matched.is_empty() {
        return Err(failed(
            action,
            404,
            "No policy entry found for which the top level action could be applied.",
        )
        .into());
    }
    let expiry = claims
        .get("exp")
        .and_then(Value::as_i64)
        .and_then(|exp| chrono::DateTime::from_timestamp(exp, 0))
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    for label in matched {
        let injected = crate::jwt::resolve(&state.token_integration_subject, claims, |p| {
            (p == "policy-entry:label").then(|| label.clone())
        })
        .ok_or_else(|| {
            failed(
                action,
                400,
                "The token lacks a claim the token integration subject names.",
            )
        })?;
        for subject in injected {
            let path = JsonPointer::from_segments([
                "entries",
                label.as_str(),
                "subjects",
                subject.as_str(),
            ]);
            let answer = if action == ACTIVATE {
                let mut body = Map::new();
                body.insert("type".into(), Value::from("jwt"));
                if let Some(expiry) = &expiry {
                    body.insert("expiry".into(), Value::from(expiry.as_str()));
                }
                if let Some(announcement) = &announcement {
                    body.insert("announcement".into(), announcement.clone());
                }
                command(
                    state,
                    policy,
                    CommandAction::Modify,
                    path,
                    Some(Value::Object(body)),
                    &admin,
                )
                .await
            } else {
                command(state, policy, CommandAction::Delete, path, None, &admin).await
            };
            let status = answer.reply.as_ref().and_then(|r| r.status).unwrap_or(500);
            let absent = action == DEACTIVATE && status == 404;
            if !(200..300).contains(&status) && !absent {
                return Ok(respond(answer, None));
            }
        }
    }
    Ok(axum::http::StatusCode::NO_CONTENT.into_response())
}

use axum::response::IntoResponse;

fn failed(action: &str, status: u16, description: &str) -> DittoError {
    DittoError::new(
        status,
        "policies:action.failed",
        format!("Failed to execute action '{action}'."),
    )
    .with_description(description)
}

/// Whether an entry's subjects include one of the caller's.
fn names_one_of(entry: &Value, subjects: &[String]) -> bool {
    entry
        .get("subjects")
        .and_then(Value::as_object)
        .is_some_and(|s| subjects.iter().any(|subject| s.contains_key(subject)))
}

/// Whether an entry grants READ on some `thing:` resource.
fn grants_thing_read(entry: &Value) -> bool {
    entry
        .get("resources")
        .and_then(Value::as_object)
        .is_some_and(|resources| {
            resources.iter().any(|(key, resource)| {
                key.starts_with("thing:")
                    && resource
                        .get("grant")
                        .and_then(Value::as_array)
                        .is_some_and(|g| g.iter().any(|p| p == "READ"))
            })
        })
}

async fn retrieve(
    state: &AppState,
    policy: &PolicyId,
    admin: &AuthContext,
) -> Result<Value, ApiError> {
    let answer = command(
        state,
        policy,
        CommandAction::Retrieve,
        JsonPointer::root(),
        None,
        admin,
    )
    .await;
    match answer.reply {
        Some(reply) if reply.status == Some(200) => Ok(reply.value.unwrap_or(json!({}))),
        Some(reply) => Err(reply
            .value
            .as_ref()
            .and_then(|v| DittoError::from_json(v).ok())
            .unwrap_or_else(|| exc::policy_not_found(policy.as_str()))
            .into()),
        None => Err(exc::policy_not_found(policy.as_str()).into()),
    }
}

async fn command(
    state: &AppState,
    policy: &PolicyId,
    action: CommandAction,
    path: JsonPointer,
    value: Option<Value>,
    admin: &AuthContext,
) -> Answer {
    let topic = Topic {
        namespace: policy.namespace().to_owned(),
        name: policy.name().to_owned(),
        group: Group::Policies,
        channel: Channel::None,
        criterion: Criterion::Commands(action),
    };
    let mut envelope = Envelope::new(topic, Headers::new(), path);
    envelope.value = value;
    state
        .router
        .handle(envelope, &Requester::http(admin.clone()))
        .await
}
