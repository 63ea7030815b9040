//! `/api/2/things`: every thing resource (the URL below the thing ID is the Ditto Protocol
//! path: `attributes/…`, `features/{id}/properties/…`, `definition`, `policyId`, …), the
//! `channel=live` variants, `?ids=` retrieval, creation with a generated ID, and messages to a
//! thing's or a feature's inbox and outbox and claim messages.

use super::error::ApiError;
use super::reply::{is_json, respond};
use super::request::{json_body, pointer, segments, signal_headers};
use super::{migrate, sse, AppState};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, Uri};
use axum::response::Response;
use axum::routing::{any, get};
use axum::{Extension, Router};
use base64::Engine as _;
use serde_json::{json, Value};
use twinwire_core::auth::AuthContext;
use twinwire_core::routing::Requester;
use twinwire_protocol::exceptions::gateway;
use twinwire_protocol::headers::names;
use twinwire_protocol::topic::{Channel, CommandAction, Criterion, Group};
use twinwire_protocol::{Envelope, Headers, JsonPointer, ProtocolError, ThingId, Topic};

const PREFIX: &str = "/api/2/things/";

/// How long an HTTP message waits for its response without a `timeout` (Ditto's default).
const MESSAGE_TIMEOUT: &str = "10s";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/2/things", get(list).post(create))
        .route("/api/2/things/{*rest}", any(resource))
}

type Params = Query<Vec<(String, String)>>;

/// `GET /api/2/things?ids=a,b`: the things asked for that the caller may read, in that order.
async fn list(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    headers: HeaderMap,
    Query(query): Params,
) -> Result<Response, ApiError> {
    let (mut signal_headers, parts) = signal_headers(&headers, &query)?;
    if sse::wanted(&headers) {
        let ids = parts.ids.as_deref().map(|ids| {
            ids.split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect()
        });
        let watch = sse::Watch {
            ids,
            path: None,
            messages: None,
        };
        return Ok(sse::stream(&state, auth, parts, watch)?);
    }
    let ids: Vec<Value> = parts
        .ids
        .as_deref()
        .ok_or(ProtocolError::FieldMissing { field: "ids" })?
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(Value::from)
        .collect();
    signal_headers.insert(names::RESPONSE_REQUIRED, true);
    let topic = topic(
        "_",
        "_",
        Channel::Twin,
        Criterion::Commands(CommandAction::Retrieve),
    );
    let mut envelope = Envelope::new(topic, signal_headers, JsonPointer::root());
    envelope.value = Some(json!({ "thingIds": ids }));
    envelope.fields = parts.fields;
    let answer = state.router.handle(envelope, &Requester::http(auth)).await;
    Ok(respond(answer, None))
}

/// `POST /api/2/things`: a new thing with a generated ID in the default namespace.
async fn create(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    headers: HeaderMap,
    Query(query): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let (signal_headers, parts) = signal_headers(&headers, &query)?;
    let mut value = if body.is_empty() {
        json!({})
    } else {
        json_body(&body)?
    };
    if value.get("thingId").is_some() {
        return Err(twinwire_protocol::exceptions::things::id_not_settable().into());
    }
    let name = uuid::Uuid::new_v4().to_string();
    let namespace: &str = &state.default_namespace;
    if let Value::Object(map) = &mut value {
        map.insert("thingId".into(), Value::from(format!("{namespace}:{name}")));
    }
    let topic = topic(
        namespace,
        &name,
        Channel::Twin,
        Criterion::Commands(CommandAction::Create),
    );
    let mut envelope = Envelope::new(topic, signal_headers, JsonPointer::root());
    envelope.value = Some(value);
    envelope.fields = parts.fields;
    let answer = state.router.handle(envelope, &Requester::http(auth)).await;
    let location = format!("{PREFIX}{namespace}:{name}");
    Ok(respond(answer, Some(&location)))
}

/// Any method on `/api/2/things/{thingId}/…`.
async fn resource(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    Query(query): Params,
    body: Bytes,
) -> Result<Response, ApiError> {
    let path = uri.path();
    let segments = segments(path, PREFIX).ok_or_else(|| gateway::not_found(path))?;
    let (thing, rest) = segments
        .split_first()
        .ok_or_else(|| gateway::not_found(path))?;
    let id =
        ThingId::parse(thing).ok_or_else(|| ProtocolError::ThingIdInvalid { id: thing.clone() })?;
    let (signal_headers, parts) = signal_headers(&headers, &query)?;
    if method == Method::GET && sse::wanted(&headers) {
        let is_mailbox = rest.iter().any(|s| s == "inbox" || s == "outbox");
        let watch = sse::Watch {
            ids: Some(vec![id.as_str().to_owned()]),
            path: (!is_mailbox && !rest.is_empty()).then(|| pointer(rest)),
            messages: is_mailbox.then(|| pointer(rest)),
        };
        return Ok(sse::stream(&state, auth, parts, watch)?);
    }
    if rest.len() == 1 && rest[0] == "migrateDefinition" {
        if method != Method::POST {
            return Err(gateway::method_not_allowed(method.as_str(), path).into());
        }
        let dry_run = query.iter().any(|(n, v)| n == "dry-run" && v == "true")
            || signal_headers
                .get_str("dry-run")
                .is_some_and(|v| v == "true");
        return migrate::run(&state, auth, &id, signal_headers, dry_run, &body).await;
    }
    let envelope = match message_subject(rest) {
        Some(subject) => {
            if method != Method::POST {
                return Err(gateway::method_not_allowed(method.as_str(), path).into());
            }
            message(&id, rest, subject, signal_headers, &body)?
        }
        None => {
            let action = match method {
                Method::GET => CommandAction::Retrieve,
                Method::PUT => CommandAction::Modify,
                Method::PATCH => CommandAction::Merge,
                Method::DELETE => CommandAction::Delete,
                _ => return Err(gateway::method_not_allowed(method.as_str(), path).into()),
            };
            let channel = if parts.live {
                Channel::Live
            } else {
                Channel::Twin
            };
            let topic = topic(
                id.namespace(),
                id.name(),
                channel,
                Criterion::Commands(action),
            );
            let mut envelope = Envelope::new(topic, signal_headers, pointer(rest));
            if matches!(action, CommandAction::Modify | CommandAction::Merge) {
                envelope.value = Some(json_body(&body)?);
            }
            envelope.fields = parts.fields;
            envelope
        }
    };
    let answer = state.router.handle(envelope, &Requester::http(auth)).await;
    Ok(respond(answer, Some(path)))
}

/// The message subject of an inbox/outbox path (`inbox/messages/{subject}`,
/// `features/{id}/outbox/messages/{subject}`, `inbox/claim`), if it is one.
fn message_subject(rest: &[String]) -> Option<String> {
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let mailbox = match rest.as_slice() {
        ["features", _, tail @ ..] => tail,
        all => all,
    };
    match mailbox {
        ["inbox", "claim"] => Some("claim".to_owned()),
        ["inbox" | "outbox", "messages", subject @ ..] if !subject.is_empty() => {
            Some(subject.join("/"))
        }
        _ => None,
    }
}

/// A live message from an HTTP body: JSON for a JSON content type, text for text, anything
/// else base64 as Ditto carries binary payloads.
fn message(
    id: &ThingId,
    rest: &[String],
    subject: String,
    mut headers: Headers,
    body: &[u8],
) -> Result<Envelope, ApiError> {
    if !headers.contains(names::TIMEOUT) {
        headers.insert(names::TIMEOUT, MESSAGE_TIMEOUT);
    }
    let content_type = headers.content_type().map(str::to_owned);
    let value = match content_type.as_deref() {
        _ if body.is_empty() => None,
        Some(c) if is_json(c) => Some(json_body(body)?),
        _ => Some(match std::str::from_utf8(body) {
            Ok(text) => Value::from(text),
            Err(_) => Value::from(base64::engine::general_purpose::STANDARD.encode(body)),
        }),
    };
    if !twinwire_protocol::topic::is_valid_subject(&subject) {
        return Err(ProtocolError::SubjectInvalid { subject }.into());
    }
    let topic = topic(
        id.namespace(),
        id.name(),
        Channel::Live,
        Criterion::Messages(subject),
    );
    let mut envelope = Envelope::new(topic, headers, pointer(rest));
    envelope.value = value;
    Ok(envelope)
}

fn topic(namespace: &str, name: &str, channel: Channel, criterion: Criterion) -> Topic {
    Topic {
        namespace: namespace.to_owned(),
        name: name.to_owned(),
        group: Group::Things,
        channel,
        criterion,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(parts: &[&str]) -> Vec<String> {
        parts.iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn message_paths() {
        assert_eq!(
            message_subject(&s(&["inbox", "messages", "on"])).as_deref(),
            Some("on")
        );
        assert_eq!(
            message_subject(&s(&["outbox", "messages", "a", "b"])).as_deref(),
            Some("a/b")
        );
        assert_eq!(
            message_subject(&s(&["features", "lamp", "inbox", "messages", "toggle"])).as_deref(),
            Some("toggle")
        );
        assert_eq!(
            message_subject(&s(&["inbox", "claim"])).as_deref(),
            Some("claim")
        );
        assert_eq!(message_subject(&s(&["attributes", "inbox"])), None);
        assert_eq!(message_subject(&s(&["inbox", "messages"])), None);
    }
}
