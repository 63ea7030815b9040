//! The `Normalized` mapper (outbound only): a twin event as a sparse thing JSON — `thingId`, the
//! changed value at its path, `_context` with the event's topic, path, value and headers —
//! with `content-type: application/json`. A deleted thing gets `_deleted` (the event's
//! timestamp); with `includeDeletedFields`, a deleted part gets its timestamp at its path in
//! `_deletedFields`, as do the nulls of a merge. `fields` selects what to keep. Every other
//! signal maps to nothing.

use super::{ExternalMessage, Mapper};
use crate::things::json;
use serde_json::{Map, Value};
use twinwire_protocol::topic::{Channel, Criterion, EventAction, Group};
use twinwire_protocol::{DittoError, Envelope, JsonPointer};

#[derive(Debug, Clone, Default)]
pub struct NormalizedMapper {
    /// A field selector (`thingId,attributes,_context/topic`); all fields when none.
    pub fields: Option<Vec<JsonPointer>>,
    pub include_deleted_fields: bool,
}

impl NormalizedMapper {
    /// From the mapping definition's options (`fields`, `includeDeletedFields`).
    pub fn from_options(options: &Map<String, Value>) -> Self {
        NormalizedMapper {
            fields: options
                .get("fields")
                .and_then(Value::as_str)
                .map(json::selector_pointers),
            include_deleted_fields: options
                .get("includeDeletedFields")
                .is_some_and(|v| v == &Value::Bool(true) || v == &Value::from("true")),
        }
    }
}

impl Mapper for NormalizedMapper {
    fn alias(&self) -> &str {
        "Normalized"
    }

    fn inbound(&self, _: &ExternalMessage) -> Result<Vec<Envelope>, DittoError> {
        // Outbound only: nothing comes in through it.
        Ok(Vec::new())
    }

    fn outbound(&self, signal: &Envelope) -> Result<Vec<ExternalMessage>, DittoError> {
        let topic = &signal.topic;
        let Criterion::Events(action) = topic.criterion else {
            return Ok(Vec::new());
        };
        if topic.group != Group::Things || topic.channel != Channel::Twin {
            return Ok(Vec::new());
        }
        let timestamp = signal.timestamp.clone().unwrap_or_default();
        let mut thing = Map::new();
        thing.insert("thingId".into(), Value::from(topic.entity_id()));
        match (action, &signal.value) {
            (EventAction::Deleted, _) if signal.path.is_root() => {
                thing.insert("_deleted".into(), Value::from(timestamp.as_str()));
            }
            (EventAction::Deleted, _) => {
                if self.include_deleted_fields {
                    let mut deleted = Map::new();
                    json::set(&mut deleted, &signal.path, Value::from(timestamp.as_str()));
                    thing.insert("_deletedFields".into(), Value::Object(deleted));
                }
            }
            (_, Some(value)) => {
                let mut changed = Map::new();
                if signal.path.is_root() {
                    if let Value::Object(map) = value {
                        changed = map.clone();
                    }
                } else {
                    json::set(&mut changed, &signal.path, value.clone());
                }
                if action == EventAction::Merged {
                    let mut deleted = Map::new();
                    strip_nulls(&mut changed, &JsonPointer::root(), &timestamp, &mut deleted);
                    if self.include_deleted_fields && !deleted.is_empty() {
                        thing.insert("_deletedFields".into(), Value::Object(deleted));
                    }
                }
                for (key, value) in changed {
                    if key != "thingId" {
                        thing.insert(key, value);
                    }
                }
            }
            (_, None) => {}
        }
        let mut context = Map::new();
        context.insert("topic".into(), Value::from(topic.to_string()));
        context.insert("path".into(), Value::from(signal.path.to_string()));
        context.insert("value".into(), signal.value.clone().unwrap_or(Value::Null));
        context.insert("headers".into(), signal.headers.to_json());
        thing.insert("_context".into(), Value::Object(context));
        let mut normalized = Value::Object(thing);
        if let Some(fields) = &self.fields {
            normalized = json::select(&normalized, fields);
        }
        let mut message = ExternalMessage::new(String::new(), normalized.to_string().into_bytes())
            .with_header("content-type", "application/json");
        if let Some(id) = signal.headers.correlation_id() {
            message.set_header("correlation-id", id);
        }
        Ok(vec![message])
    }
}

/// Removes a merge patch's nulls (deletions), recording each deleted path's timestamp.
fn strip_nulls(
    map: &mut Map<String, Value>,
    at: &JsonPointer,
    timestamp: &str,
    deleted: &mut Map<String, Value>,
) {
    let keys: Vec<String> = map.keys().cloned().collect();
    for key in keys {
        let mut path = at.clone();
        path.push(key.clone());
        match map.get_mut(&key) {
            Some(Value::Null) => {
                map.remove(&key);
                json::set(deleted, &path, Value::from(timestamp));
            }
            Some(Value::Object(inner)) => strip_nulls(inner, &path, timestamp, deleted),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(action: &str, path: &str, value: Option<Value>) -> Envelope {
        let mut v = json!({"topic": format!("thing/id/things/twin/events/{action}"), "path": path,
                           "headers": {"content-type": "application/json"}, "revision": 5,
                           "timestamp": "2023-12-01T10:30:00Z"});
        if let Some(value) = value {
            v["value"] = value;
        }
        Envelope::from_json(v).unwrap()
    }

    fn out(mapper: &NormalizedMapper, signal: &Envelope) -> Value {
        let messages = mapper.outbound(signal).unwrap();
        assert_eq!(messages[0].content_type(), Some("application/json"));
        serde_json::from_slice(&messages[0].payload).unwrap()
    }

    #[test]
    fn the_documented_examples() {
        let mapper = NormalizedMapper::default();
        let got = out(
            &mapper,
            &event(
                "modified",
                "/features/sensors/properties/temperature/value",
                Some(json!(42)),
            ),
        );
        assert_eq!(got["thingId"], "thing:id");
        assert_eq!(
            got["features"],
            json!({"sensors": {"properties": {"temperature": {"value": 42}}}})
        );
        assert_eq!(
            got["_context"]["topic"],
            "thing/id/things/twin/events/modified"
        );
        assert_eq!(got["_context"]["value"], 42);
        let deleted = out(&mapper, &event("deleted", "/", None));
        assert_eq!(deleted["_deleted"], "2023-12-01T10:30:00Z");
        assert_eq!(deleted["_context"]["value"], Value::Null);
    }

    #[test]
    fn deleted_fields_and_selection() {
        let mapper = NormalizedMapper::from_options(
            json!({"includeDeletedFields": "true", "fields": "thingId,attributes,_deletedFields"})
                .as_object()
                .unwrap(),
        );
        let merged = out(
            &mapper,
            &event(
                "merged",
                "/attributes",
                Some(json!({"location": {"mountedOn": null}, "x": 1})),
            ),
        );
        assert_eq!(
            merged,
            json!({
                "thingId": "thing:id",
                "attributes": {"location": {}, "x": 1},
                "_deletedFields": {"attributes": {"location": {"mountedOn": "2023-12-01T10:30:00Z"}}}
            })
        );
        let gone = out(&mapper, &event("deleted", "/features/myFeature", None));
        assert_eq!(
            gone["_deletedFields"],
            json!({"features": {"myFeature": "2023-12-01T10:30:00Z"}})
        );
        // Other signals: nothing.
        let command = Envelope::from_json(json!({"topic": "thing/id/things/twin/commands/modify", "path": "/attributes/x", "value": 1})).unwrap();
        assert!(mapper.outbound(&command).unwrap().is_empty());
    }
}
