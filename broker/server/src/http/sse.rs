//! Server-sent events (docs/httpapi-sse.md): `GET /api/2/things` with `Accept:
//! text/event-stream` streams the change notifications the caller may READ as partial thing
//! JSON, narrowed by `ids`, `namespaces` and an RQL `filter`, enriched by `extraFields`, cut by
//! `fields` (which may select `_context`: the event's topic, path, value and headers);
//! `/api/2/things/{id}[/path]` streams one thing's changes (the value at the path); the inbox and
//! outbox paths stream a thing's or feature's messages, optionally of one subject.
//!
//! The stream holds a subscription; it ends when the client goes, and the subscription with it.
//! A client that does not keep up loses events (counted), never the broker's memory: an SSE
//! stream acknowledges nothing, so nothing it receives is waited for.

use super::request::QueryParts;
use super::AppState;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::stream;
use serde_json::{Map, Value};
use std::convert::Infallible;
use std::time::Duration;
use tokio::sync::mpsc;
use twinwire_core::auth::AuthContext;
use twinwire_core::routing::pubsub::{Kind, SubscriberId, Subscription};
use twinwire_core::routing::Router;
use twinwire_core::things::json;
use twinwire_protocol::topic::{Criterion, EventAction};
use twinwire_protocol::{DittoError, Envelope, JsonPointer};

/// What one stream watches.
pub struct Watch {
    /// Only these things (`ids`, or the thing of a single-thing URL).
    pub ids: Option<Vec<String>>,
    /// Only changes at or below (or above) this path of the thing; the data is the value there.
    pub path: Option<JsonPointer>,
    /// Messages instead of change notifications: the mailbox path prefix
    /// (`/inbox/messages`, `/features/f/outbox/messages/subject`).
    pub messages: Option<JsonPointer>,
}

/// Whether a request asks for an event stream.
pub fn wanted(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"))
}

/// Opens the stream.
pub fn stream(
    state: &AppState,
    auth: AuthContext,
    parts: QueryParts,
    watch: Watch,
) -> Result<Response, DittoError> {
    let kind = if watch.messages.is_some() {
        Kind::LiveMessages
    } else {
        Kind::TwinEvents
    };
    let id = SubscriberId::new(format!("sse-{}", uuid::Uuid::new_v4()), "events");
    let mut sub = Subscription::new(id.clone(), auth, kind);
    if let Some(namespaces) = &parts.namespaces {
        sub = sub.with_namespaces(
            namespaces
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty()),
        );
    }
    if let Some(filter) = &parts.filter {
        sub = sub.with_filter(filter)?;
    }
    if let Some(extra) = &parts.extra_fields {
        sub = sub.with_extra_fields(extra.as_str());
    }
    let (sender, receiver) = mpsc::channel(state.limits.session_queue.max(1));
    state.router.subscribe(sub, None, sender)?;
    let guard = Unsubscribe {
        router: state.router.clone(),
        id,
    };
    let fields = parts.fields.as_deref().map(json::selector_pointers);
    let events = stream::unfold(
        (receiver, guard, watch, fields),
        |(mut receiver, guard, watch, fields)| async move {
            loop {
                let signal = receiver.recv().await?;
                if let Some(data) = data_of(&signal, &watch, fields.as_deref()) {
                    let event = Event::default().data(data);
                    return Some((Ok::<_, Infallible>(event), (receiver, guard, watch, fields)));
                }
            }
        },
    );
    Ok(Sse::new(events)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(30)))
        .into_response())
}

/// Ends the subscription when the stream is dropped (the client went away).
struct Unsubscribe {
    router: Router,
    id: SubscriberId,
}

impl Drop for Unsubscribe {
    fn drop(&mut self) {
        self.router.unsubscribe(&self.id);
    }
}

/// The text of one SSE event for a signal, or `None` when the stream does not watch it.
fn data_of(signal: &Envelope, watch: &Watch, fields: Option<&[JsonPointer]>) -> Option<String> {
    let thing_id = signal.topic.entity_id();
    if watch
        .ids
        .as_ref()
        .is_some_and(|ids| !ids.contains(&thing_id))
    {
        return None;
    }
    if let Some(mailbox) = &watch.messages {
        if !starts_with(&signal.path, mailbox) {
            return None;
        }
        return Some(match &signal.value {
            Some(Value::String(text)) => text.clone(),
            Some(value) => value.to_string(),
            None => String::new(),
        });
    }
    let mut thing = partial_thing(signal, &thing_id)?;
    if let Some(path) = &watch.path {
        if !starts_with(&signal.path, path) && !starts_with(path, &signal.path) {
            return None;
        }
        return path.get(&thing).map(Value::to_string);
    }
    if let Some(pointers) = fields {
        let mut context = Map::new();
        context.insert("topic".into(), Value::from(signal.topic.to_string()));
        context.insert("path".into(), Value::from(signal.path.to_string()));
        context.insert("value".into(), signal.value.clone().unwrap_or(Value::Null));
        context.insert("headers".into(), signal.headers.to_json());
        if let Value::Object(map) = &mut thing {
            map.insert("_context".into(), Value::Object(context));
        }
        thing = json::select(&thing, pointers);
    }
    Some(thing.to_string())
}

/// The change as a partial thing: its ID, the changed value at its path, and the extra fields.
fn partial_thing(event: &Envelope, thing_id: &str) -> Option<Value> {
    let Criterion::Events(action) = event.topic.criterion else {
        return None;
    };
    let mut thing = Map::new();
    thing.insert("thingId".into(), Value::from(thing_id));
    if let Some(extra) = &event.extra {
        for (key, value) in extra {
            thing.insert(key.clone(), value.clone());
        }
    }
    let changed = matches!(
        action,
        EventAction::Created | EventAction::Modified | EventAction::Merged
    );
    match &event.value {
        Some(Value::Object(map)) if changed && event.path.is_root() => {
            for (key, value) in map {
                thing.insert(key.clone(), value.clone());
            }
        }
        Some(value) if changed && !event.path.is_root() => {
            json::set(&mut thing, &event.path, value.clone());
        }
        _ => {}
    }
    Some(Value::Object(thing))
}

fn starts_with(path: &JsonPointer, prefix: &JsonPointer) -> bool {
    path.segments().starts_with(prefix.segments())
}
