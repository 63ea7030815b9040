//! Policy events: [`crate::event::EntityEvent`] as policies use it (created, modified or
//! deleted; policies have no merge), published as `policies.events:policyEntryModified` and
//! the like.

pub use crate::event::{DecodeError, EntityEvent as PolicyEvent};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};
    use twinwire_protocol::topic::EventAction;
    use twinwire_protocol::{Headers, JsonPointer, PolicyId};

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
            let env = event(action, path, value).to_policy_envelope(&id, Headers::new());
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
