//! Policy events: what a successful policy command changed. The one shape serves three uses:
//! applied to the state ([`super::policy::PolicyEntity::apply`]), stored in the journal
//! ([`PolicyEvent::encode`]), and published as a Ditto Protocol event
//! ([`PolicyEvent::to_envelope`], `policies.events:policyEntryModified` and the like).

use serde_json::{Map, Value};
use twinwire_protocol::topic::{Channel, Criterion, EventAction, Group};
use twinwire_protocol::{Envelope, Headers, JsonPointer, PolicyId, Topic};

#[derive(Debug, Clone, PartialEq)]
pub struct PolicyEvent {
    /// Created, modified or deleted (policies have no merge).
    pub action: EventAction,
    /// Where in the policy, as Ditto publishes it (`/entries/l/resources/thing:/features`).
    pub path: JsonPointer,
    /// The new value (created, modified), or none (deleted).
    pub value: Option<Value>,
    pub revision: u64,
    /// ISO-8601, millisecond precision.
    pub timestamp: String,
    /// A merge patch for `_metadata`; kept for the journal's shape, policies set none yet.
    pub metadata: Option<Value>,
    /// The command's headers kept for history (`historical-headers`), as configured.
    pub headers: Option<Map<String, Value>>,
}

/// Why a journal entry could not be read back as a policy event.
#[derive(Debug, thiserror::Error)]
#[error("journal entry of {entity} at revision {revision} is not a policy event: {reason}")]
pub struct DecodeError {
    pub entity: String,
    pub revision: u64,
    pub reason: String,
}

impl PolicyEvent {
    /// The Ditto Protocol event, `{ns}/{name}/policies/events/{action}` (no channel).
    pub fn to_envelope(&self, id: &PolicyId, headers: Headers) -> Envelope {
        let topic = Topic {
            namespace: id.namespace().to_owned(),
            name: id.name().to_owned(),
            group: Group::Policies,
            channel: Channel::None,
            criterion: Criterion::Events(self.action),
        };
        let mut env = Envelope::new(topic, headers, self.path.clone());
        env.value = self.value.clone();
        env.revision = Some(self.revision);
        env.timestamp = Some(self.timestamp.clone());
        env
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
        Ok(PolicyEvent {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(action: EventAction, path: &str, value: Option<Value>) -> PolicyEvent {
        PolicyEvent {
            action,
            path: JsonPointer::parse(path).unwrap(),
            value,
            revision: 7,
            timestamp: "2026-01-01T00:00:00.000Z".into(),
            metadata: None,
            headers: Some(Map::from_iter([(
                "ditto-originator".to_owned(),
                json!("nginx:me"),
            )])),
        }
    }

    #[test]
    fn encodes_and_decodes() {
        let e = event(
            EventAction::Created,
            "/entries/l/resources/thing:/features/f",
            Some(json!({"grant": ["READ"], "revoke": []})),
        );
        assert_eq!(
            PolicyEvent::decode("policy:a:b", 7, &e.encode()).unwrap(),
            e
        );
        assert!(PolicyEvent::decode("policy:a:b", 7, b"garbage").is_err());
        assert!(PolicyEvent::decode("policy:a:b", 7, br#"{"action": "exploded"}"#).is_err());
    }

    #[test]
    fn publishes_as_dittos_policy_events() {
        let id = PolicyId::parse("org.eclipse.ditto:the_policy_id").unwrap();
        let cases = [
            (
                EventAction::Created,
                "/",
                Some(json!({"policyId": "org.eclipse.ditto:the_policy_id", "entries": {}})),
                "policies.events:policyCreated",
            ),
            (
                EventAction::Modified,
                "/entries/the_label",
                Some(json!({"subjects": {}, "resources": {}})),
                "policies.events:policyEntryModified",
            ),
            (
                EventAction::Created,
                "/entries/the_label/subjects/google:the_subjectid",
                Some(json!({"type": "t"})),
                "policies.events:subjectCreated",
            ),
            (
                EventAction::Deleted,
                "/entries/the_label/resources/thing:/the_resource_path",
                None,
                "policies.events:resourceDeleted",
            ),
            (
                EventAction::Modified,
                "/entries/the_label/importable",
                Some(json!("never")),
                "policies.events:policyEntryImportableModified",
            ),
            (
                EventAction::Deleted,
                "/imports",
                None,
                "policies.events:policyImportsDeleted",
            ),
        ];
        for (action, path, value, name) in cases {
            let env = event(action, path, value).to_envelope(&id, Headers::new());
            assert_eq!(
                env.topic.to_string(),
                format!(
                    "org.eclipse.ditto/the_policy_id/policies/events/{}",
                    action.as_str()
                )
            );
            assert_eq!(env.signal().unwrap().to_string(), name, "{path}");
        }
    }
}
