//! Acknowledgement labels and the acknowledgement envelopes of
//! docs/protocol-specification-acks.md: a single ack (`.../acks/<label>`) and aggregated acks
//! (`.../acks`) with their combined status.

use crate::envelope::Envelope;
use crate::error::ProtocolError;
use crate::headers::Headers;
use crate::pointer::JsonPointer;
use crate::topic::{Channel, Criterion, Group, Topic};
use serde_json::{Map, Value};
use std::fmt;

/// The built-in label issued when a twin change is durable.
pub const TWIN_PERSISTED: &str = "twin-persisted";
/// The built-in label issued when a live command got its response.
pub const LIVE_RESPONSE: &str = "live-response";
/// The built-in label issued when search has indexed a change.
pub const SEARCH_PERSISTED: &str = "search-persisted";

/// An acknowledgement label matching `[a-zA-Z0-9-_:]{3,100}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckLabel(String);

impl AckLabel {
    pub fn parse(label: &str) -> Result<AckLabel, ProtocolError> {
        let ok = (3..=100).contains(&label.len())
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'));
        if ok {
            Ok(AckLabel(label.to_owned()))
        } else {
            Err(ProtocolError::AckLabelInvalid {
                label: label.to_owned(),
            })
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for AckLabel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One acknowledgement: a label's outcome for the signal with the same correlation-id.
#[derive(Debug, Clone, PartialEq)]
pub struct Acknowledgement {
    pub label: AckLabel,
    pub entity_id: String,
    pub status: u16,
    pub headers: Headers,
    pub value: Option<Value>,
}

impl Acknowledgement {
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `.../things/<channel>/acks/<label>` envelope.
    pub fn to_envelope(&self, topic_of: &Topic) -> Envelope {
        let mut topic = topic_of.clone();
        topic.group = Group::Things;
        topic.criterion = Criterion::Acks(Some(self.label.clone()));
        if topic.channel == Channel::None {
            topic.channel = Channel::Twin;
        }
        let mut env = Envelope::new(topic, self.headers.clone(), JsonPointer::root());
        env.value = self.value.clone();
        env.status = Some(self.status);
        env
    }
}

/// The combined status of several acknowledgements: the single one's own status, else 200 when
/// all succeeded and 424 (failed dependency) when one did not.
pub fn combined_status(statuses: &[u16]) -> u16 {
    match statuses {
        [one] => *one,
        many if many.iter().all(|s| (200..300).contains(s)) => 200,
        _ => 424,
    }
}

/// The `.../things/<channel>/acks` envelope aggregating several acknowledgements: each is keyed
/// by its label and carries its status, headers and optional payload.
pub fn aggregated_envelope(
    topic_of: &Topic,
    headers: Headers,
    acks: &[Acknowledgement],
) -> Envelope {
    let mut topic = topic_of.clone();
    topic.criterion = Criterion::Acks(None);
    if topic.channel == Channel::None {
        topic.channel = Channel::Twin;
    }
    let mut value = Map::new();
    for ack in acks {
        let mut one = Map::new();
        one.insert("status".into(), Value::from(ack.status));
        if let Some(v) = &ack.value {
            one.insert("payload".into(), v.clone());
        }
        one.insert("headers".into(), ack.headers.to_json());
        value.insert(ack.label.to_string(), Value::Object(one));
    }
    let statuses: Vec<u16> = acks.iter().map(|a| a.status).collect();
    let mut env = Envelope::new(topic, headers, JsonPointer::root());
    env.value = Some(Value::Object(value));
    env.status = Some(combined_status(&statuses));
    env
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_follow_the_pattern() {
        for ok in [
            "twin-persisted",
            "live-response",
            "abc",
            "conn:my_ack-1",
            &"a".repeat(100),
        ] {
            assert!(AckLabel::parse(ok).is_ok(), "{ok}");
        }
        for bad in [
            "ab",
            "",
            "with space",
            "slash/x",
            "ümlaut",
            &"a".repeat(101),
        ] {
            assert_eq!(
                AckLabel::parse(bad).unwrap_err().code(),
                "acknowledgement:label.invalid",
                "{bad}"
            );
        }
    }

    #[test]
    fn combined_status_follows_the_spec() {
        assert_eq!(combined_status(&[204]), 204);
        assert_eq!(combined_status(&[408]), 408);
        assert_eq!(combined_status(&[200, 201, 204]), 200);
        assert_eq!(combined_status(&[200, 408]), 424);
    }

    #[test]
    fn aggregated_acks_carry_each_label() {
        let topic = Topic::parse("org.eclipse.ditto/thing/things/twin/commands/modify").unwrap();
        let acks = [
            Acknowledgement {
                label: AckLabel::parse(TWIN_PERSISTED).unwrap(),
                entity_id: "org.eclipse.ditto:thing".into(),
                status: 204,
                headers: Headers::new(),
                value: None,
            },
            Acknowledgement {
                label: AckLabel::parse("custom").unwrap(),
                entity_id: "org.eclipse.ditto:thing".into(),
                status: 408,
                headers: Headers::new(),
                value: Some(Value::from("timeout")),
            },
        ];
        let env = aggregated_envelope(&topic, Headers::new(), &acks);
        assert_eq!(
            env.topic.to_string(),
            "org.eclipse.ditto/thing/things/twin/acks"
        );
        assert_eq!(env.status, Some(424));
        let value = env.value.unwrap();
        assert_eq!(value["twin-persisted"]["status"], 204);
        assert_eq!(value["custom"]["payload"], "timeout");
        let single = acks[0].to_envelope(&topic);
        assert_eq!(
            single.topic.to_string(),
            "org.eclipse.ditto/thing/things/twin/acks/twin-persisted"
        );
        assert_eq!(single.status, Some(204));
    }
}
