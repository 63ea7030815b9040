//! The Ditto Protocol envelope (docs/protocol-specification.md, jsonschema/protocol-envelope.json):
//! topic, headers, path, value, status, revision, timestamp, extra, fields and metadata, read from
//! and written to JSON. Reading checks the form of every field; what the signal needs of path and
//! value is checked by [`crate::signal`].

use crate::error::{DittoError, ProtocolError};
use crate::headers::{is_iso8601_instant, names, Headers};
use crate::pointer::JsonPointer;
use crate::signal::{self, SignalType};
use crate::topic::{Channel, Criterion, Group, Topic};
use serde_json::{Map, Value};

/// The default bound on an envelope's encoded size. Ditto bounds things and policies at 100 kB
/// and messages at 250 kB; the envelope bound sits above those so that they, not this, decide.
pub const DEFAULT_MAX_ENVELOPE_BYTES: usize = 1024 * 1024;

/// A Ditto Protocol message.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub topic: Topic,
    pub headers: Headers,
    pub path: JsonPointer,
    /// `Some(Value::Null)` is an explicit `"value": null` (a merge that deletes), `None` no value.
    pub value: Option<Value>,
    pub extra: Option<Map<String, Value>>,
    pub status: Option<u16>,
    pub revision: Option<u64>,
    pub timestamp: Option<String>,
    /// A field selector such as `thingId,attributes(location)`, kept as sent.
    pub fields: Option<String>,
    pub metadata: Option<Map<String, Value>>,
}

impl Envelope {
    pub fn new(topic: Topic, headers: Headers, path: JsonPointer) -> Self {
        Envelope {
            topic,
            headers,
            path,
            value: None,
            extra: None,
            status: None,
            revision: None,
            timestamp: None,
            fields: None,
            metadata: None,
        }
    }

    /// Reads an envelope from JSON bytes of at most [`DEFAULT_MAX_ENVELOPE_BYTES`].
    pub fn from_slice(bytes: &[u8]) -> Result<Self, ProtocolError> {
        Self::from_slice_limited(bytes, DEFAULT_MAX_ENVELOPE_BYTES)
    }

    /// Reads an envelope from JSON bytes of at most `max_bytes`. Nesting deeper than serde_json's
    /// recursion limit (128) is refused as invalid JSON, so hostile input cannot exhaust the stack.
    pub fn from_slice_limited(bytes: &[u8], max_bytes: usize) -> Result<Self, ProtocolError> {
        if bytes.len() > max_bytes {
            return Err(ProtocolError::TooLarge {
                size: bytes.len(),
                max: max_bytes,
            });
        }
        // Straight into the envelope's fields: no map is built for the top-level object.
        let fields: RawFields = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
            // Only the top level can mismatch (every field is read as whatever JSON it is), and
            // then the bytes may still be broken JSON: syntax errors take precedence.
            serde_json::error::Category::Data => {
                match serde_json::from_slice::<serde::de::IgnoredAny>(bytes) {
                    Ok(_) => ProtocolError::NotAnObject,
                    Err(e) => ProtocolError::JsonInvalid {
                        reason: e.to_string(),
                    },
                }
            }
            _ => ProtocolError::JsonInvalid {
                reason: e.to_string(),
            },
        })?;
        Self::from_fields(fields)
    }

    /// Reads an envelope from a JSON value.
    pub fn from_json(value: Value) -> Result<Self, ProtocolError> {
        let Value::Object(obj) = value else {
            return Err(ProtocolError::NotAnObject);
        };
        let mut fields = RawFields::default();
        for (key, value) in obj {
            if let Some(slot) = fields.slot(&key) {
                *slot = Some(value);
            }
        }
        Self::from_fields(fields)
    }

    /// Checks the form of every field and builds the envelope.
    fn from_fields(f: RawFields) -> Result<Self, ProtocolError> {
        let topic = match f.topic {
            Some(Value::String(t)) => Topic::parse(&t)?,
            Some(_) => {
                return Err(ProtocolError::FieldType {
                    field: "topic",
                    expected: "a string",
                })
            }
            None => return Err(ProtocolError::FieldMissing { field: "topic" }),
        };
        let headers = match f.headers {
            Some(Value::Object(h)) => Headers::from_map(h),
            Some(_) => {
                return Err(ProtocolError::FieldType {
                    field: "headers",
                    expected: "a JSON object",
                })
            }
            None => Headers::new(),
        };
        headers.validate()?;
        let path = match f.path {
            Some(Value::String(p)) => JsonPointer::parse(&p)?,
            Some(_) => {
                return Err(ProtocolError::FieldType {
                    field: "path",
                    expected: "a string",
                })
            }
            None => return Err(ProtocolError::FieldMissing { field: "path" }),
        };
        let mut env = Envelope::new(topic, headers, path);
        env.value = f.value;
        env.extra = take_object(f.extra, "extra")?;
        env.metadata = take_object(f.metadata, "metadata")?;
        env.status = match f.status {
            None => None,
            Some(v) => Some(
                v.as_u64()
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (100..=599).contains(s))
                    .ok_or_else(|| ProtocolError::StatusInvalid {
                        status: v.to_string(),
                    })?,
            ),
        };
        env.revision = match f.revision {
            None => None,
            Some(v) => Some(v.as_u64().ok_or(ProtocolError::FieldType {
                field: "revision",
                expected: "a non-negative integer",
            })?),
        };
        env.timestamp = match f.timestamp {
            None => None,
            Some(Value::String(ts)) if is_iso8601_instant(&ts) => Some(ts),
            Some(_) => {
                return Err(ProtocolError::FieldType {
                    field: "timestamp",
                    expected: "an ISO-8601 timestamp",
                })
            }
        };
        env.fields = match f.fields {
            None => None,
            Some(Value::String(f)) => {
                check_field_selector(&f)?;
                Some(f)
            }
            Some(_) => {
                return Err(ProtocolError::FieldType {
                    field: "fields",
                    expected: "a string",
                })
            }
        };
        // Like Ditto, unknown top-level fields are ignored.
        Ok(env)
    }

    /// The response to this command: same topic and path, the correlation-id carried over.
    pub fn response(&self, status: u16, value: Option<Value>) -> Envelope {
        let mut headers = Headers::new();
        if let Some(id) = self.headers.correlation_id() {
            headers.insert(names::CORRELATION_ID, id);
        }
        let mut env = Envelope::new(self.topic.clone(), headers, self.path.clone());
        env.value = value;
        env.status = Some(status);
        env
    }

    /// The error response to this message: `{ns}/{name}/{group}/{channel}/errors`, path `/`,
    /// the Ditto error as value and its status, the correlation-id carried over.
    pub fn error_response(&self, error: &DittoError) -> Envelope {
        let mut headers = Headers::new();
        if let Some(id) = self.headers.correlation_id() {
            headers.insert(names::CORRELATION_ID, id);
        }
        let mut topic = self.topic.clone();
        topic.criterion = Criterion::Errors;
        if topic.group == Group::Things && topic.channel == Channel::None {
            topic.channel = Channel::Twin;
        }
        let mut env = Envelope::new(topic, headers, JsonPointer::root());
        env.value = Some(error.to_json());
        env.status = Some(error.status);
        env
    }

    /// The envelope as JSON, in Ditto's field order.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("topic".into(), Value::String(self.topic.to_string()));
        obj.insert("headers".into(), self.headers.to_json());
        obj.insert("path".into(), Value::String(self.path.to_string()));
        if let Some(v) = &self.value {
            obj.insert("value".into(), v.clone());
        }
        if let Some(e) = &self.extra {
            obj.insert("extra".into(), Value::Object(e.clone()));
        }
        if let Some(s) = self.status {
            obj.insert("status".into(), Value::from(s));
        }
        if let Some(r) = self.revision {
            obj.insert("revision".into(), Value::from(r));
        }
        if let Some(t) = &self.timestamp {
            obj.insert("timestamp".into(), Value::String(t.clone()));
        }
        if let Some(f) = &self.fields {
            obj.insert("fields".into(), Value::String(f.clone()));
        }
        if let Some(m) = &self.metadata {
            obj.insert("metadata".into(), Value::Object(m.clone()));
        }
        Value::Object(obj)
    }

    /// The envelope as one line of JSON.
    pub fn to_json_string(&self) -> String {
        self.to_json().to_string()
    }

    /// What this message is, by Ditto's signal type name, after checking that its path and value
    /// are ones that signal has.
    pub fn signal(&self) -> Result<SignalType, ProtocolError> {
        signal::classify(self)
    }
}

fn take_object(
    value: Option<Value>,
    field: &'static str,
) -> Result<Option<Map<String, Value>>, ProtocolError> {
    match value {
        None => Ok(None),
        Some(Value::Object(o)) => Ok(Some(o)),
        Some(_) => Err(ProtocolError::FieldType {
            field,
            expected: "a JSON object",
        }),
    }
}

/// The envelope's top-level fields as read, before their form is checked. Unknown fields are
/// skipped, as Ditto skips them; a repeated field keeps its last value, as a JSON map would.
#[derive(Default)]
struct RawFields {
    topic: Option<Value>,
    headers: Option<Value>,
    path: Option<Value>,
    value: Option<Value>,
    extra: Option<Value>,
    status: Option<Value>,
    revision: Option<Value>,
    timestamp: Option<Value>,
    fields: Option<Value>,
    metadata: Option<Value>,
}

impl RawFields {
    fn slot(&mut self, key: &str) -> Option<&mut Option<Value>> {
        Some(match key {
            "topic" => &mut self.topic,
            "headers" => &mut self.headers,
            "path" => &mut self.path,
            "value" => &mut self.value,
            "extra" => &mut self.extra,
            "status" => &mut self.status,
            "revision" => &mut self.revision,
            "timestamp" => &mut self.timestamp,
            "fields" => &mut self.fields,
            "metadata" => &mut self.metadata,
            _ => return None,
        })
    }
}

impl<'de> serde::Deserialize<'de> for RawFields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl<'de> serde::de::Visitor<'de> for Visitor {
            type Value = RawFields;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a Ditto Protocol envelope object")
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<RawFields, A::Error> {
                let mut fields = RawFields::default();
                while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
                    match fields.slot(&key) {
                        Some(slot) => *slot = Some(map.next_value()?),
                        // Read, not skipped with `IgnoredAny`: that would let through what
                        // is not JSON serde_json reads (lone surrogates, numbers out of range,
                        // nesting past the recursion limit) when an unknown field holds it.
                        None => {
                            map.next_value::<Value>()?;
                        }
                    }
                }
                Ok(fields)
            }
        }
        deserializer.deserialize_map(Visitor)
    }
}

/// Checks a field selector's syntax: comma-separated JSON pointers, each optionally followed by
/// a parenthesised selector of its own, e.g. `thingId,attributes(location,model),features/f1`.
pub fn check_field_selector(fields: &str) -> Result<(), ProtocolError> {
    let invalid = |reason| ProtocolError::FieldSelectorInvalid {
        fields: fields.to_owned(),
        reason,
    };
    let mut depth = 0usize;
    let mut item_len = 0usize;
    for c in fields.chars() {
        match c {
            '(' => {
                if item_len == 0 {
                    return Err(invalid("'(' must follow a field name"));
                }
                depth += 1;
                item_len = 0;
            }
            ')' => {
                if depth == 0 {
                    return Err(invalid("unbalanced ')'"));
                }
                if item_len == 0 {
                    return Err(invalid("empty field inside parentheses"));
                }
                depth -= 1;
            }
            ',' => {
                if item_len == 0 {
                    return Err(invalid("empty field between commas"));
                }
                item_len = 0;
            }
            _ => item_len += 1,
        }
    }
    if depth != 0 {
        return Err(invalid("unbalanced '('"));
    }
    if item_len == 0 && !fields.ends_with(')') {
        return Err(invalid("empty field"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_and_writes_every_field() {
        let v = json!({
            "topic": "org.eclipse.ditto/fancy-thing/things/twin/events/modified",
            "headers": {"correlation-id": "c"},
            "path": "/attributes/location",
            "value": {"latitude": 44.673856},
            "extra": {"attributes": {"a": 1}},
            "status": 200,
            "revision": 1,
            "timestamp": "2021-03-03T16:05:55Z",
            "fields": "thingId,attributes(location)",
            "metadata": {"attributes": {"location": {"unit": "deg"}}}
        });
        let env = Envelope::from_json(v.clone()).unwrap();
        assert_eq!(env.to_json(), v);
        assert_eq!(env.path.segments(), ["attributes", "location"]);
    }

    #[test]
    fn responses_and_error_responses_keep_the_correlation_id() {
        let cmd = Envelope::from_json(json!({
            "topic": "org.eclipse.ditto/fancy-thing/things/twin/commands/modify",
            "headers": {"correlation-id": "c-1", "x-other": 1},
            "path": "/attributes/location",
            "value": 1
        }))
        .unwrap();
        let r = cmd.response(204, None);
        assert_eq!(
            r.to_json(),
            json!({"topic": "org.eclipse.ditto/fancy-thing/things/twin/commands/modify",
            "headers": {"correlation-id": "c-1"}, "path": "/attributes/location", "status": 204})
        );
        let e = cmd.error_response(&crate::exceptions::things::thing_not_found(
            "org.eclipse.ditto:fancy-thing",
        ));
        assert_eq!(
            e.topic.to_string(),
            "org.eclipse.ditto/fancy-thing/things/twin/errors"
        );
        assert_eq!(e.status, Some(404));
        assert_eq!(
            e.signal().unwrap().to_string(),
            "things.responses:errorResponse"
        );
    }

    #[test]
    fn null_value_is_kept_apart_from_no_value() {
        let v = json!({"topic": "ns/t/things/twin/commands/merge", "headers": {}, "path": "/attributes/a", "value": null});
        assert_eq!(
            Envelope::from_json(v.clone()).unwrap().value,
            Some(Value::Null)
        );
        assert_eq!(Envelope::from_json(v.clone()).unwrap().to_json(), v);
    }

    #[test]
    fn bad_envelopes_get_ditto_errors() {
        let code = |v: Value| Envelope::from_json(v).unwrap_err().code();
        assert_eq!(code(json!([])), "json.format.invalid");
        assert_eq!(code(json!({"path": "/"})), "json.field.missing");
        assert_eq!(
            code(json!({"topic": "ns/t/things/twin/commands/modify"})),
            "json.field.missing"
        );
        assert_eq!(
            code(json!({"topic": 1, "path": "/"})),
            "json.format.invalid"
        );
        assert_eq!(
            code(json!({"topic": "ns/t/things/twin/commands/modify", "path": "attributes"})),
            "json.pointer.invalid"
        );
        assert_eq!(
            code(json!({"topic": "ns/t/things/twin/commands/modify", "path": "/", "status": 99})),
            "json.format.invalid"
        );
        assert_eq!(
            code(json!({"topic": "ns/t/things/twin/commands/modify", "path": "/", "headers": []})),
            "json.format.invalid"
        );
        assert_eq!(
            code(
                json!({"topic": "ns/t/things/twin/commands/modify", "path": "/", "headers": {"timeout": "soon"}})
            ),
            "header.invalid"
        );
        assert_eq!(
            code(
                json!({"topic": "ns/t/things/twin/commands/modify", "path": "/", "fields": "a(b"})
            ),
            "json.fieldselector.invalid"
        );
        assert_eq!(
            code(
                json!({"topic": "ns/t/things/twin/commands/modify", "path": "/", "timestamp": "now"})
            ),
            "json.format.invalid"
        );
        assert_eq!(
            Envelope::from_slice(b"{").unwrap_err().code(),
            "json.invalid"
        );
        assert_eq!(
            Envelope::from_slice(&[0xff, 0xfe]).unwrap_err().code(),
            "json.invalid"
        );
        assert_eq!(
            Envelope::from_slice_limited(b"{}", 1).unwrap_err().status(),
            413
        );
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        let deep = "[".repeat(100_000);
        assert_eq!(
            Envelope::from_slice_limited(deep.as_bytes(), usize::MAX)
                .unwrap_err()
                .code(),
            "json.invalid"
        );
    }

    #[test]
    fn field_selectors() {
        for ok in [
            "thingId",
            "thingId,attributes(location)",
            "features(f1/properties(a,b)),_revision",
            "attributes/a/b",
        ] {
            check_field_selector(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        for bad in ["", ",", "a,", "a(", "a)", "(a)", "a()", "a((b))"] {
            assert!(check_field_selector(bad).is_err(), "{bad}");
        }
    }
}
