//! `/api/2/policies/{policyId}/…`: every policy resource; the URL below the policy ID is the
//! Ditto Protocol path (`entries/{label}/subjects/{subjectId}`, `imports/{id}`, …).

use super::error::ApiError;
use super::reply::respond;
use super::request::{json_body, pointer, segments, signal_headers};
use super::{actions, AppState};
use crate::auth::Caller;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::any;
use axum::{Extension, Router};
use twinwire_core::routing::Requester;
use twinwire_protocol::exceptions::gateway;
use twinwire_protocol::topic::{Channel, CommandAction, Criterion, Group};
use twinwire_protocol::{Envelope, PolicyId, ProtocolError, Topic};

const PREFIX: &str = "/api/2/policies/";

pub fn routes() -> Router<AppState> {
    Router::new().route("/api/2/policies/{*rest}", any(resource))
}

async fn resource(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Query<Vec<(String, String)>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let path = uri.path();
    let segments = segments(path, PREFIX).ok_or_else(|| gateway::not_found(path))?;
    let (policy, rest) = segments
        .split_first()
        .ok_or_else(|| gateway::not_found(path))?;
    let id = PolicyId::parse(policy)
        .ok_or_else(|| ProtocolError::PolicyIdInvalid { id: policy.clone() })?;
    let rest_str: Vec<&str> = rest.iter().map(String::as_str).collect();
    let policy_action = match rest_str.as_slice() {
        ["actions", action] => Some((None, *action)),
        ["entries", label, "actions", action] => Some((Some(*label), *action)),
        _ => None,
    };
    if let Some((label, action)) = policy_action {
        if method != Method::POST {
            return Err(gateway::method_not_allowed(method.as_str(), path).into());
        }
        return actions::run(&state, &caller, &id, label, action, &body).await;
    }
    let action = match method {
        Method::GET => CommandAction::Retrieve,
        Method::PUT => CommandAction::Modify,
        Method::DELETE => CommandAction::Delete,
        _ => return Err(gateway::method_not_allowed(method.as_str(), path).into()),
    };
    let (signal_headers, parts) = signal_headers(&headers, &query)?;
    let topic = Topic {
        namespace: id.namespace().to_owned(),
        name: id.name().to_owned(),
        group: Group::Policies,
        channel: Channel::None,
        criterion: Criterion::Commands(action),
    };
    let mut envelope = Envelope::new(topic, signal_headers, pointer(rest));
    if action == CommandAction::Modify {
        envelope.value = Some(json_body(&body)?);
    }
    envelope.fields = parts.fields;
    let answer = state
        .router
        .handle(envelope, &Requester::http(caller.auth))
        .await;
    Ok(respond(answer, Some(path)))
}
