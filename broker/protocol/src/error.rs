//! Ditto errors: the `{status, error, message, description, href}` object every failure becomes on
//! the wire, and `ProtocolError`, the typed reasons a Ditto Protocol message is refused.
//!
//! Every `ProtocolError` maps to its Ditto error code and HTTP status here, once, so that the
//! command line, HTTP, WebSocket and adapters all answer a bad message the same way.

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::fmt;

/// A Ditto error as it appears in an error response's `value` and in HTTP error bodies.
///
/// `message` is optional because Ditto itself sends errors without one (the search
/// `thing-search:search.option.invalid` example); twinwire always sets it on errors it creates.
#[derive(Debug, Clone, PartialEq)]
pub struct DittoError {
    pub status: u16,
    pub error: Cow<'static, str>,
    pub message: Option<String>,
    pub description: Option<String>,
    pub href: Option<String>,
    /// Additional error information (the schema's `additionalProperties`), kept for round
    /// trips. Boxed because it is rare and errors travel in every `Result` of the hot path.
    pub extra: Option<Box<Map<String, Value>>>,
}

impl DittoError {
    /// An error with a code, status and message.
    pub fn new(
        status: u16,
        error: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        DittoError {
            status,
            error: error.into(),
            message: Some(message.into()),
            description: None,
            href: None,
            extra: None,
        }
    }

    pub fn with_description(mut self, description: impl Into<String>) -> Self {
        self.description = Some(description.into());
        self
    }

    /// Adds a field beyond the standard ones (the schema's additional error information).
    pub fn with_extra(mut self, key: impl Into<String>, value: Value) -> Self {
        self.extra
            .get_or_insert_with(Default::default)
            .insert(key.into(), value);
        self
    }

    pub fn with_href(mut self, href: impl Into<String>) -> Self {
        self.href = Some(href.into());
        self
    }

    /// The error code, e.g. `things:attribute.notfound`.
    pub fn code(&self) -> &str {
        &self.error
    }

    /// The message, or the code when the error carries none.
    pub fn message_or_code(&self) -> &str {
        self.message.as_deref().unwrap_or(&self.error)
    }

    /// Reads an error object (an error response's `value`, an HTTP error body).
    pub fn from_json(value: &Value) -> Result<Self, ProtocolError> {
        let obj = value.as_object().ok_or_else(|| ProtocolError::ValueType {
            signal: "errorResponse".into(),
            expected: "an object with status, error and message",
        })?;
        let status = obj
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (100..=599).contains(s))
            .ok_or(ProtocolError::FieldMissing {
                field: "value/status",
            })?;
        let error = obj
            .get("error")
            .and_then(Value::as_str)
            .filter(|e| !e.is_empty())
            .ok_or(ProtocolError::FieldMissing {
                field: "value/error",
            })?;
        let text = |key: &str| -> Result<Option<String>, ProtocolError> {
            match obj.get(key) {
                None => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ProtocolError::FieldType {
                    field: "value",
                    expected: "string fields in the error",
                }),
            }
        };
        let mut extra = Map::new();
        for (k, v) in obj {
            if !matches!(
                k.as_str(),
                "status" | "error" | "message" | "description" | "href"
            ) {
                extra.insert(k.clone(), v.clone());
            }
        }
        Ok(DittoError {
            status,
            error: Cow::Owned(error.to_owned()),
            message: text("message")?,
            description: text("description")?,
            href: text("href")?,
            extra: (!extra.is_empty()).then(|| Box::new(extra)),
        })
    }

    /// The error object, keys in Ditto's order.
    pub fn to_json(&self) -> Value {
        let mut obj = Map::new();
        obj.insert("status".into(), Value::from(self.status));
        obj.insert("error".into(), Value::from(self.error.as_ref()));
        if let Some(m) = &self.message {
            obj.insert("message".into(), Value::from(m.as_str()));
        }
        if let Some(d) = &self.description {
            obj.insert("description".into(), Value::from(d.as_str()));
        }
        if let Some(h) = &self.href {
            obj.insert("href".into(), Value::from(h.as_str()));
        }
        for (k, v) in self.extra.iter().flat_map(|e| e.iter()) {
            obj.insert(k.clone(), v.clone());
        }
        Value::Object(obj)
    }
}

impl fmt::Display for DittoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status,
            self.error,
            self.message_or_code()
        )
    }
}

impl std::error::Error for DittoError {}

/// Why a Ditto Protocol message was refused. Each variant names its Ditto error code and status
/// in [`ProtocolError::to_ditto_error`].
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ProtocolError {
    #[error("the message is not valid JSON: {reason}")]
    JsonInvalid { reason: String },
    #[error("the message is {size} bytes, more than the limit of {max} bytes")]
    TooLarge { size: usize, max: usize },
    #[error("a Ditto Protocol message must be a JSON object")]
    NotAnObject,
    #[error("JSON did not include required <{field}> field!")]
    FieldMissing { field: &'static str },
    #[error("the field <{field}> must be {expected}")]
    FieldType {
        field: &'static str,
        expected: &'static str,
    },
    #[error("The topic path '{topic}' is not supported.")]
    UnknownTopic { topic: String, reason: String },
    #[error("Thing ID '{id}' is not valid!")]
    ThingIdInvalid { id: String },
    #[error("Policy ID '{id}' is not valid!")]
    PolicyIdInvalid { id: String },
    #[error("The Connection ID '{id}' is not valid.")]
    ConnectionIdInvalid { id: String },
    #[error("Acknowledgement label <{label}> is invalid.")]
    AckLabelInvalid { label: String },
    #[error("Subject '{subject}' is not valid!")]
    SubjectInvalid { subject: String },
    #[error("JSON pointer <{pointer}> is invalid: {reason}")]
    PointerInvalid {
        pointer: String,
        reason: &'static str,
    },
    #[error("The path '{path}' does not correspond to any known command, response or event.")]
    UnknownPath { path: String },
    #[error("The {kind} '{name}' is not supported by the adapter.")]
    UnknownSignal { kind: &'static str, name: String },
    #[error("The value of '{signal}' must be {expected}.")]
    ValueType {
        signal: String,
        expected: &'static str,
    },
    #[error("The value '{value}' of the header '{name}' is not a valid {expected}.")]
    HeaderInvalid {
        name: String,
        value: String,
        expected: &'static str,
    },
    #[error("The timeout <{value}> is not valid: {reason}")]
    TimeoutInvalid { value: String, reason: &'static str },
    #[error("The field selector <{fields}> is invalid: {reason}")]
    FieldSelectorInvalid {
        fields: String,
        reason: &'static str,
    },
    #[error("The status <{status}> is not a valid HTTP status code.")]
    StatusInvalid { status: String },
    /// An RQL expression (condition, filter) that does not parse; `position` counts characters
    /// from 0.
    #[error("Invalid RQL at position {position}: {kind}")]
    RqlInvalid {
        position: usize,
        kind: crate::rql::RqlErrorKind,
    },
}

impl ProtocolError {
    /// The HTTP status Ditto answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            ProtocolError::TooLarge { .. } => 413,
            _ => 400,
        }
    }

    /// The Ditto error code of this error.
    pub fn code(&self) -> &'static str {
        match self {
            ProtocolError::JsonInvalid { .. } => "json.invalid",
            ProtocolError::TooLarge { .. } => "protocoladapter:message.toolarge",
            ProtocolError::NotAnObject
            | ProtocolError::FieldType { .. }
            | ProtocolError::ValueType { .. }
            | ProtocolError::StatusInvalid { .. } => "json.format.invalid",
            ProtocolError::FieldMissing { .. } => "json.field.missing",
            ProtocolError::UnknownTopic { .. } => "protocoladapter:unknown.topicpath",
            ProtocolError::ThingIdInvalid { .. } => "things:id.invalid",
            ProtocolError::PolicyIdInvalid { .. } => "policies:id.invalid",
            ProtocolError::ConnectionIdInvalid { .. } => "connectivity:connection.id.invalid",
            ProtocolError::AckLabelInvalid { .. } => "acknowledgement:label.invalid",
            ProtocolError::SubjectInvalid { .. } => "messages:subject.invalid",
            ProtocolError::PointerInvalid { .. } => "json.pointer.invalid",
            ProtocolError::UnknownPath { .. } => "protocoladapter:unknown.path",
            ProtocolError::UnknownSignal { kind: "event", .. } => "protocoladapter:unknown.event",
            ProtocolError::UnknownSignal {
                kind: "response", ..
            } => "protocoladapter:unknown.response",
            ProtocolError::UnknownSignal { .. } => "protocoladapter:unknown.command",
            ProtocolError::HeaderInvalid { .. } => "header.invalid",
            ProtocolError::TimeoutInvalid { .. } => "timeout.invalid",
            ProtocolError::FieldSelectorInvalid { .. } => "json.fieldselector.invalid",
            ProtocolError::RqlInvalid { .. } => "rql.expression.invalid",
        }
    }

    fn description(&self) -> Cow<'static, str> {
        match self {
            ProtocolError::JsonInvalid { .. } | ProtocolError::NotAnObject => Cow::Borrowed(
                "Check if the JSON was valid (e.g. on https://jsonlint.com) and if it was in required format.",
            ),
            ProtocolError::TooLarge { .. } => Cow::Borrowed("Reduce the message size in the bounds of the limit."),
            ProtocolError::FieldMissing { .. } => Cow::Borrowed("Check if all required JSON fields were set."),
            ProtocolError::UnknownTopic { reason, .. } => Cow::Owned(reason.clone()),
            ProtocolError::ThingIdInvalid { .. }
            | ProtocolError::PolicyIdInvalid { .. } => Cow::Borrowed(
                "It must conform to the namespaced entity ID notation (see Ditto documentation)",
            ),
            ProtocolError::ConnectionIdInvalid { .. } => {
                Cow::Borrowed("It must be conform to the regular expression: <[a-zA-Z0-9-_:]{1,100}>.")
            }
            ProtocolError::AckLabelInvalid { .. } => Cow::Borrowed(
                "An acknowledgement label must conform to the regular expression of Ditto documentation.",
            ),
            ProtocolError::SubjectInvalid { .. } => Cow::Borrowed(
                "It must not be empty and conform to RFC-3986 (URI) - check here if it does (select 'path' in the list): https://www.w3.org/2011/04/XMLHttpRequest-test/urltest.php",
            ),
            ProtocolError::PointerInvalid { .. } => {
                Cow::Borrowed("Check, for example, if the JSON Pointer is not empty.")
            }
            ProtocolError::UnknownPath { .. } => Cow::Borrowed("Check if the path is correct."),
            ProtocolError::UnknownSignal { .. } => {
                Cow::Borrowed("Check if the topic, path and status of the message are correct.")
            }
            ProtocolError::HeaderInvalid { .. } => {
                Cow::Borrowed("Verify that the header has the correct syntax and try again.")
            }
            ProtocolError::TimeoutInvalid { .. } => Cow::Borrowed("Please choose a valid timeout."),
            ProtocolError::FieldSelectorInvalid { .. } => Cow::Borrowed(
                "Check, for example, if the amount of opening parentheses '(' matches the amount of closing ones ')'.",
            ),
            ProtocolError::FieldType { .. }
            | ProtocolError::ValueType { .. }
            | ProtocolError::StatusInvalid { .. } => {
                Cow::Borrowed("Check if the JSON fields of the message have the types the Ditto Protocol requires.")
            }
            ProtocolError::RqlInvalid { .. } => Cow::Borrowed(
                "Ensure that all opening parentheses have also closing ones and that the RQL expression is valid.",
            ),
        }
    }

    /// The Ditto error this protocol error answers with.
    pub fn to_ditto_error(&self) -> DittoError {
        DittoError::new(self.status(), self.code(), self.to_string())
            .with_description(self.description())
    }
}

impl From<ProtocolError> for DittoError {
    fn from(e: ProtocolError) -> Self {
        e.to_ditto_error()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reference_error_round_trips() {
        let v = json!({
            "status": 404,
            "error": "things:attribute.notfound",
            "message": "The attribute with key '/location' on the thing with ID 'org.eclipse.ditto:fancy-thing' could not be found or the requester had insufficient permissions to access it.",
            "description": "Check if the ID of the thing and the key of your requested attribute was correct and you have sufficient permissions."
        });
        let e = DittoError::from_json(&v).unwrap();
        assert_eq!(e.status, 404);
        assert_eq!(e.code(), "things:attribute.notfound");
        assert_eq!(e.to_json(), v);
    }

    #[test]
    fn error_without_message_keeps_its_shape() {
        let v = json!({"status": 400, "error": "thing-search:search.option.invalid", "description": "x"});
        let e = DittoError::from_json(&v).unwrap();
        assert_eq!(e.message, None);
        assert_eq!(e.message_or_code(), "thing-search:search.option.invalid");
        assert_eq!(e.to_json(), v);
    }

    #[test]
    fn error_object_needs_status_and_code() {
        assert!(DittoError::from_json(&json!({"error": "x"})).is_err());
        assert!(DittoError::from_json(&json!({"status": 404})).is_err());
        assert!(DittoError::from_json(&json!({"status": 1000, "error": "x"})).is_err());
        assert!(DittoError::from_json(&json!("x")).is_err());
    }

    #[test]
    fn protocol_errors_map_to_ditto_codes() {
        let e = ProtocolError::ThingIdInvalid { id: "a/b:c".into() }.to_ditto_error();
        assert_eq!((e.status, e.code()), (400, "things:id.invalid"));
        assert_eq!(e.message.as_deref(), Some("Thing ID 'a/b:c' is not valid!"));
        let e = ProtocolError::TooLarge { size: 10, max: 5 }.to_ditto_error();
        assert_eq!(
            (e.status, e.code()),
            (413, "protocoladapter:message.toolarge")
        );
        let e = ProtocolError::UnknownSignal {
            kind: "event",
            name: "x".into(),
        }
        .to_ditto_error();
        assert_eq!(e.code(), "protocoladapter:unknown.event");
    }
}
