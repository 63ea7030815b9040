//! Entity events: what a successful modify command changed, for things and policies alike. The
//! one shape serves three uses: applied to the state (`ThingEntity::apply`,
//! `PolicyEntity::apply`), stored in the journal ([`EntityEvent::encode`]), and published as a
//! Ditto Protocol event ([`EntityEvent::to_thing_envelope`], [`EntityEvent::to_policy_envelope`]).

use serde_json::{Map, Value};
use twinwire_protocol::topic::{Channel, Criterion, EventAction, Group};
use twinwire_protocol::{Envelope, Headers, JsonPointer, NamespacedId, PolicyId, ThingId, Topic};

#[derive(Debug, Clone, PartialEq)]
pub struct EntityEvent {
    pub action: EventAction,
    pub path: JsonPointer,
    /// The new value (created, modified), the patch (merged), or none (deleted).
    pub value: Option<Value>,
    pub revision: u64,
    /// ISO-8601, millisecond precision.
    pub timestamp: String,
    /// A merge patch for `_metadata` from the `put-metadata` header.
    pub metadata: Option<Value>,
    /// The command's headers kept for history (`historical-headers`), as configured.
    pub headers: Option<Map<String, Value>>,
}

/// What a thing or policy command did.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A retrieve: answered with status 200 and this value.
    Retrieved(Value),
    /// A modify or delete: answered with 201 and the value (created) or 204, and this event to
    /// apply. The event is boxed: it is the large variant, and retrieves need not carry its room.
    Changed {
        status: u16,
        value: Option<Value>,
        event: Box<EntityEvent>,
    },
}

impl Outcome {
    /// The Ditto Protocol response to the command this is the outcome of.
    pub fn response_to(&self, command: &Envelope) -> Envelope {
        match self {
            Outcome::Retrieved(value) => command.response(200, Some(value.clone())),
            Outcome::Changed { status, value, .. } => command.response(*status, value.clone()),
        }
    }
}

/// The headers an event is published with: its command's correlation-id and originator, the
/// acknowledgements its subscribers are to issue, and (internal, never delivered) its origin.
pub fn published_headers(command: &Envelope) -> Headers {
    use twinwire_protocol::headers::names;
    let mut headers = Headers::new();
    for name in [
        names::CORRELATION_ID,
        names::DITTO_ORIGINATOR,
        names::REQUESTED_ACKS,
        names::DITTO_ORIGIN,
    ] {
        if let Some(v) = command.headers.get(name) {
            headers.insert(name, v.clone());
        }
    }
    headers
}

/// Why a journal entry could not be read back as an event.
#[derive(Debug, thiserror::Error)]
#[error("journal entry of {entity} at revision {revision} is not an event: {reason}")]
pub struct DecodeError {
    pub entity: String,
    pub revision: u64,
    pub reason: String,
}

impl EntityEvent {
    /// The thing event, `{ns}/{name}/things/twin/events/{action}`.
    pub fn to_thing_envelope(&self, id: &ThingId, headers: Headers) -> Envelope {
        self.to_envelope(id, Group::Things, Channel::Twin, headers)
    }

    /// The policy event, `{ns}/{name}/policies/events/{action}` (no channel).
    pub fn to_policy_envelope(&self, id: &PolicyId, headers: Headers) -> Envelope {
        self.to_envelope(id, Group::Policies, Channel::None, headers)
    }

    fn to_envelope(
        &self,
        id: &NamespacedId,
        group: Group,
        channel: Channel,
        headers: Headers,
    ) -> Envelope {
        let topic = Topic {
            namespace: id.namespace().to_owned(),
            name: id.name().to_owned(),
            group,
            channel,
            criterion: Criterion::Events(self.action),
        };
        let mut env = Envelope::new(topic, headers, self.path.clone());
        env.value = self.value.clone();
        env.revision = Some(self.revision);
        env.timestamp = Some(self.timestamp.clone());
        env
    }

    /// The event as the journal stores it under `entity` (a journal key such as `thing:ns:name`).
    pub fn stored(&self, entity: String, timestamp_millis: i64) -> crate::journal::StoredEvent {
        crate::journal::StoredEvent {
            entity,
            revision: self.revision,
            timestamp_millis,
            data: self.encode(),
        }
    }

    /// The journal's bytes for this event (the revision is the journal key, not repeated here).
    pub fn encode(&self) -> Vec<u8> {
        let mut obj = Map::new();
        obj.insert("action".into(), Value::from(self.action.as_str()));
        obj.insert("path".into(), Value::from(self.path.to_string()));
        if let Some(v) = &self.value {
            obj.insert("value".into(), v.clone());
        }
        obj.insert("timestamp".into(), Value::from(self.timestamp.as_str()));
        if let Some(m) = &self.metadata {
            obj.insert("metadata".into(), m.clone());
        }
        if let Some(h) = &self.headers {
            obj.insert("headers".into(), Value::Object(h.clone()));
        }
        Value::Object(obj).to_string().into_bytes()
    }

    /// Reads an event back from the journal.
    pub fn decode(entity: &str, revision: u64, data: &[u8]) -> Result<Self, DecodeError> {
        let fail = |reason: String| DecodeError {
            entity: entity.to_owned(),
            revision,
            reason,
        };
        let Value::Object(mut obj) =
            serde_json::from_slice(data).map_err(|e| fail(e.to_string()))?
        else {
            return Err(fail("not an object".into()));
        };
        let action = match obj.get("action").and_then(Value::as_str) {
            Some(a) => EventAction::ALL
                .into_iter()
                .find(|x| x.as_str() == a)
                .ok_or_else(|| fail(format!("unknown action {a}")))?,
            None => return Err(fail("no action".into())),
        };
        let path = obj
            .get("path")
            .and_then(Value::as_str)
            .map(JsonPointer::parse)
            .transpose()
            .map_err(|e| fail(e.to_string()))?
            .unwrap_or_default();
        let timestamp = obj
            .get("timestamp")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(EntityEvent {
            action,
            path,
            value: obj.remove("value"),
            revision,
            timestamp,
            metadata: obj.remove("metadata"),
            headers: match obj.remove("headers") {
                Some(Value::Object(h)) => Some(h),
                _ => None,
            },
        })
    }
}
