//! The `RawMessage` mapper: live message payloads to and from raw transport messages.
//!
//! Inbound, the `incomingMessageHeaders` templates (over the transport headers) give the
//! message's content type, thing, subject, direction, feature and status; the payload becomes
//! the message's `value`: a string for text content types, JSON for JSON ones, base64 for
//! anything else. The signal carries only the content type as header (the source's header
//! mapping adds the rest). A content type that resolves to `application/vnd.eclipse.ditto+json`
//! hands the message to the Ditto mapper.
//!
//! Outbound, a live message command or response publishes its `value`: text and JSON content
//! types as text, others as the bytes of the base64 string (anything else is a mapping error),
//! with the content type (or `outgoingContentType`) and the message headers
//! `ditto-message-subject`, `-direction`, `-thing-id`, `-feature-id` and `status`. Every
//! other signal, and messages with the Ditto Protocol content type, go through the Ditto mapper.

use super::options::{external_headers, Blocklist, Options, PayloadKind, HONO_NOTIFICATIONS};
use super::{DittoMapper, ExternalMessage, Mapper, DITTO_CONTENT_TYPE};
use crate::placeholders::{Allowed, Resolved, SignalResolver, Template};
use base64::Engine as _;
use serde_json::{Map, Value};
use twinwire_protocol::exceptions::connectivity::mapping_failed;
use twinwire_protocol::headers::names;
use twinwire_protocol::id::parse_thing_id;
use twinwire_protocol::topic::is_valid_subject;
use twinwire_protocol::{Criterion, DittoError, Envelope, Group, Headers, JsonPointer, Topic};

const ALIAS: &str = "RawMessage";

const OUTGOING_CONTENT_TYPE: &str = "outgoingContentType";
const INCOMING_MESSAGE_HEADERS: &str = "incomingMessageHeaders";

/// The default of `outgoingContentType`.
pub const DEFAULT_OUTGOING_CONTENT_TYPE: &str = "text/plain; charset=UTF-8";

const SUBJECT: &str = "ditto-message-subject";
const DIRECTION: &str = "ditto-message-direction";
const THING_ID: &str = "ditto-message-thing-id";
const FEATURE_ID: &str = "ditto-message-feature-id";
const STATUS: &str = "status";

/// The default `incomingMessageHeaders` (Ditto's: the direction from the header, else `TO`).
const DEFAULT_INCOMING_HEADERS: [(&str, &str); 6] = [
    (
        names::CONTENT_TYPE,
        "{{ header:content-type | fn:default('application/octet-stream') }}",
    ),
    (SUBJECT, "{{ header:ditto-message-subject }}"),
    (THING_ID, "{{ header:ditto-message-thing-id }}"),
    (
        DIRECTION,
        "{{ header:ditto-message-direction | fn:default('TO') }}",
    ),
    (FEATURE_ID, "{{ header:ditto-message-feature-id }}"),
    (STATUS, "{{ header:status }}"),
];

/// Base64 as Java's basic decoder reads it: the standard alphabet, padding optional.
const BASE64: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

#[derive(Debug, Clone)]
pub struct RawMessageMapper {
    outgoing_content_type: String,
    /// Header name (lower case) and template, defaults first, configured ones over them.
    incoming_headers: Vec<(String, Template)>,
    blocklist: Blocklist,
    ditto: DittoMapper,
}

impl Default for RawMessageMapper {
    fn default() -> Self {
        RawMessageMapper::from_options(&Map::new()).expect("the defaults are valid")
    }
}

impl RawMessageMapper {
    /// From the mapping definition's options: `outgoingContentType`, `incomingMessageHeaders`
    /// (merged over the defaults), `content-type-blocklist` (default: Hono's notifications).
    pub fn from_options(options: &Map<String, Value>) -> Result<Self, DittoError> {
        let options = Options::new(
            ALIAS,
            options,
            &[OUTGOING_CONTENT_TYPE, INCOMING_MESSAGE_HEADERS],
        )?;
        let outgoing_content_type = options
            .string(OUTGOING_CONTENT_TYPE)?
            .unwrap_or(DEFAULT_OUTGOING_CONTENT_TYPE);
        if outgoing_content_type.trim().is_empty() {
            return Err(super::mapper_config_invalid(
                OUTGOING_CONTENT_TYPE,
                "The outgoing content type must not be empty.",
            ));
        }
        let allowed = Allowed::mapper_options();
        let mut incoming_headers = Vec::new();
        for (name, text) in DEFAULT_INCOMING_HEADERS {
            incoming_headers.push((name.to_owned(), Template::compile(text, &allowed)?));
        }
        for (name, value) in options
            .object(INCOMING_MESSAGE_HEADERS)?
            .unwrap_or_default()
        {
            let text = match &value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let key = format!("{INCOMING_MESSAGE_HEADERS}.{name}");
            let template = options.template(&key, &text, &allowed)?;
            let name = name.to_ascii_lowercase();
            match incoming_headers.iter_mut().find(|(n, _)| *n == name) {
                Some(slot) => slot.1 = template,
                None => incoming_headers.push((name, template)),
            }
        }
        Ok(RawMessageMapper {
            outgoing_content_type: outgoing_content_type.to_owned(),
            incoming_headers,
            blocklist: options.blocklist(HONO_NOTIFICATIONS)?,
            ditto: DittoMapper::default(),
        })
    }

    fn template(&self, name: &str) -> Option<&Template> {
        self.incoming_headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t)
    }
}

/// The message headers of an inbound message, resolved.
struct MessageHeaders {
    content_type: String,
    thing_id: String,
    subject: String,
    inbox: bool,
    feature_id: Option<String>,
    status: Option<u16>,
}

impl Mapper for RawMessageMapper {
    fn alias(&self) -> &str {
        ALIAS
    }

    fn inbound(&self, message: &ExternalMessage) -> Result<Vec<Envelope>, DittoError> {
        if self.blocklist.blocks(message) {
            return Ok(Vec::new());
        }
        let external = external_headers(message);
        let resolver = SignalResolver::for_external(&external);
        let resolve = |name: &str| -> Option<String> {
            match self.template(name)?.resolve(&resolver) {
                Resolved::Values(values) => values.into_iter().next(),
                Resolved::Unresolved | Resolved::Deleted => None,
            }
        };
        let fail = |reason: &str| mapping_failed(message.content_type(), reason);
        let Some(content_type) = resolve(names::CONTENT_TYPE) else {
            return Err(fail(&format!(
                "The RawMessage mapper failed to resolve the content-type of an incoming message: \
                 make sure 'content-type' is defined and resolvable in '{INCOMING_MESSAGE_HEADERS}'."
            )));
        };
        if super::options::media_type(&content_type) == DITTO_CONTENT_TYPE {
            return self.ditto.inbound(message);
        }
        let required = |name: &str| {
            resolve(name).filter(|v| !v.is_empty()).ok_or_else(|| {
                fail(&format!(
                    "The message header '{name}' did not resolve: set it on the message or in \
                     '{INCOMING_MESSAGE_HEADERS}'."
                ))
            })
        };
        let thing_id = required(THING_ID)?;
        parse_thing_id(&thing_id).map_err(|e| {
            fail(&format!(
                "'{thing_id}' ({THING_ID}) is not a thing ID: {}",
                DittoError::from(e).message_or_code()
            ))
        })?;
        let subject = required(SUBJECT)?;
        if !is_valid_subject(&subject) {
            return Err(fail(&format!(
                "The message subject '{subject}' is not valid: it must be a URI path (RFC 3986)."
            )));
        }
        let direction = required(DIRECTION)?;
        let inbox = if direction.eq_ignore_ascii_case("TO") {
            true
        } else if direction.eq_ignore_ascii_case("FROM") {
            false
        } else {
            return Err(fail(&format!(
                "The message direction '{direction}' ({DIRECTION}) must be TO or FROM."
            )));
        };
        let status = match resolve(STATUS).filter(|s| !s.is_empty()) {
            None => None,
            Some(s) => Some(
                s.trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|s| (100..=599).contains(s))
                    .ok_or_else(|| {
                        fail(&format!("The status '{s}' is not an HTTP status code."))
                    })?,
            ),
        };
        let headers = MessageHeaders {
            content_type,
            thing_id,
            subject,
            inbox,
            feature_id: resolve(FEATURE_ID).filter(|f| !f.is_empty()),
            status,
        };
        let envelope =
            message_envelope(&headers, &message.payload).map_err(|reason| fail(&reason))?;
        Ok(vec![envelope])
    }

    fn outbound(&self, signal: &Envelope) -> Result<Vec<ExternalMessage>, DittoError> {
        let Criterion::Messages(subject) = &signal.topic.criterion else {
            return self.ditto.outbound(signal);
        };
        if signal.topic.group != Group::Things {
            return self.ditto.outbound(signal);
        }
        let content_type = signal
            .headers
            .content_type()
            .unwrap_or(&self.outgoing_content_type)
            .to_owned();
        if super::options::media_type(&content_type) == DITTO_CONTENT_TYPE {
            return self.ditto.outbound(signal);
        }
        let fail = |reason: &str| mapping_failed(Some(&content_type), reason);
        let segments = signal.path.segments();
        let (feature_id, mailbox) = match segments {
            [first, id, rest @ ..] if first == "features" => (Some(id.as_str()), rest.first()),
            rest => (None, rest.first()),
        };
        let direction = match mailbox.map(String::as_str) {
            Some("inbox") => "TO",
            Some("outbox") => "FROM",
            _ => {
                return Err(fail(&format!(
                    "The path '{}' of the message is not a message path.",
                    signal.path
                )))
            }
        };
        let payload = match &signal.value {
            None => Vec::new(),
            Some(value) if PayloadKind::of(&content_type).is_text_or_json() => match value {
                Value::String(s) => s.clone().into_bytes(),
                other => other.to_string().into_bytes(),
            },
            Some(value) => value
                .as_str()
                .and_then(|s| BASE64.decode(s.trim()).ok())
                .ok_or_else(|| {
                    fail(&format!(
                        "Expected the payload of a message of content-type <{content_type}> to be \
                         a base64 encoded string. Make sure the message has the correct \
                         content-type."
                    ))
                })?,
        };
        let mut message = ExternalMessage::new(String::new(), payload)
            .with_header(names::CONTENT_TYPE, content_type.as_str());
        if let Some(status) = signal.status {
            message.set_header(STATUS, status.to_string());
        }
        message.set_header(SUBJECT, subject.as_str());
        message.set_header(DIRECTION, direction);
        message.set_header(THING_ID, signal.topic.entity_id());
        if let Some(feature_id) = feature_id {
            message.set_header(FEATURE_ID, feature_id);
        }
        Ok(vec![message])
    }
}

/// The live message envelope for resolved message headers and a payload.
fn message_envelope(headers: &MessageHeaders, payload: &[u8]) -> Result<Envelope, String> {
    let (namespace, name) = headers
        .thing_id
        .split_once(':')
        .ok_or_else(|| format!("'{}' is not a thing ID.", headers.thing_id))?;
    let topic = Topic::parse(&format!(
        "{namespace}/{name}/things/live/messages/{}",
        headers.subject
    ))
    .map_err(|e| DittoError::from(e).message_or_code().to_owned())?;
    let mut path = match &headers.feature_id {
        Some(id) => JsonPointer::from_segments(["features", id.as_str()]),
        None => JsonPointer::root(),
    };
    path.push(if headers.inbox { "inbox" } else { "outbox" });
    path.push("messages");
    let subject_path = JsonPointer::parse(&format!("/{}", headers.subject))
        .map_err(|e| DittoError::from(e).message_or_code().to_owned())?;
    let path = path.join(&subject_path);
    let value = if payload.is_empty() {
        None
    } else {
        Some(match PayloadKind::of(&headers.content_type) {
            PayloadKind::Text => Value::String(String::from_utf8_lossy(payload).into_owned()),
            PayloadKind::Json => serde_json::from_slice(payload)
                .map_err(|e| format!("The payload is not JSON: {e}"))?,
            PayloadKind::Binary => Value::String(BASE64.encode(payload)),
        })
    };
    let mut envelope = Envelope::new(
        topic,
        Headers::from_iter([(names::CONTENT_TYPE, headers.content_type.as_str())]),
        path,
    );
    envelope.value = value;
    envelope.status = headers.status;
    envelope
        .signal()
        .map_err(|e| DittoError::from(e).message_or_code().to_owned())?;
    Ok(envelope)
}
