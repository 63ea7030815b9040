//! Thing events: [`crate::event::EntityEvent`] as things use it.

pub use crate::event::{DecodeError, EntityEvent as ThingEvent};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use serde_json::Map;
    use twinwire_protocol::topic::EventAction;
    use twinwire_protocol::{Headers, JsonPointer, ThingId};

    #[test]
    fn encodes_and_decodes() {
        let e = ThingEvent {
            action: EventAction::Merged,
            path: JsonPointer::parse("/attributes/a~1b").unwrap(),
            value: Some(json!({"x": null})),
            revision: 7,
            timestamp: "2026-01-01T00:00:00.000Z".into(),
            metadata: None,
            headers: Some(Map::from_iter([(
                "ditto-originator".to_owned(),
                json!("nginx:me"),
            )])),
        };
        assert_eq!(ThingEvent::decode("thing:a:b", 7, &e.encode()).unwrap(), e);
        assert!(ThingEvent::decode("thing:a:b", 7, b"garbage").is_err());
    }

    #[test]
    fn publishes_as_a_ditto_event() {
        let id = ThingId::parse("org.eclipse.ditto:fancy-thing").unwrap();
        let e = ThingEvent {
            action: EventAction::Modified,
            path: JsonPointer::parse("/attributes/location").unwrap(),
            value: Some(json!({"latitude": 44.673856})),
            revision: 1,
            timestamp: "2026-01-01T00:00:00.000Z".into(),
            metadata: None,
            headers: None,
        };
        let env = e.to_thing_envelope(&id, Headers::new());
        assert_eq!(
            env.topic.to_string(),
            "org.eclipse.ditto/fancy-thing/things/twin/events/modified"
        );
        assert_eq!(
            env.signal().unwrap().to_string(),
            "things.events:attributeModified"
        );
    }
}
