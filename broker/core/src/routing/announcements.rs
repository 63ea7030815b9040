//! Announcements (docs/basic-signals.md, "Announcements"): signals that something is about to
//! happen, never persisted. Connections announce being opened and closed
//! (docs/protocol-specification-connections.md); policies announce subject deletions
//! (docs/protocol-specification-policies.md). Builders only: the connection issue emits the
//! connection ones through [`Router::announce_connection`](super::Router::announce_connection),
//! the policy shards the subject deletions.

use serde_json::{json, Value};
use twinwire_protocol::headers::names;
use twinwire_protocol::id::WILDCARD;
use twinwire_protocol::topic::{Channel, Criterion, Group};
use twinwire_protocol::{Envelope, Headers, JsonPointer, PolicyId, Topic};

/// `_/<connection>/connections/announcements/opened` with `openedAt` (ISO-8601).
pub fn connection_opened(connection_id: &str, opened_at: &str) -> Envelope {
    connection(connection_id, "opened", json!({"openedAt": opened_at}))
}

/// `_/<connection>/connections/announcements/closed` with `closedAt` (ISO-8601).
pub fn connection_closed(connection_id: &str, closed_at: &str) -> Envelope {
    connection(connection_id, "closed", json!({"closedAt": closed_at}))
}

fn connection(connection_id: &str, name: &str, value: Value) -> Envelope {
    let topic = Topic {
        namespace: WILDCARD.to_owned(),
        name: connection_id.to_owned(),
        group: Group::Connections,
        channel: Channel::None,
        criterion: Criterion::Announcements(name.to_owned()),
    };
    let mut headers = Headers::new();
    headers.insert(names::CONTENT_TYPE, "application/json");
    let mut envelope = Envelope::new(topic, headers, JsonPointer::root());
    envelope.value = Some(value);
    envelope
}

/// `<ns>/<policy>/policies/announcements/subjectDeletion` with `deleteAt` and `subjectIds`.
pub fn subject_deletion(
    policy_id: &PolicyId,
    delete_at: &str,
    subject_ids: &[String],
    headers: Headers,
) -> Envelope {
    let topic = Topic {
        namespace: policy_id.namespace().to_owned(),
        name: policy_id.name().to_owned(),
        group: Group::Policies,
        channel: Channel::None,
        criterion: Criterion::Announcements("subjectDeletion".to_owned()),
    };
    let mut envelope = Envelope::new(topic, headers, JsonPointer::root());
    envelope.value = Some(json!({"deleteAt": delete_at, "subjectIds": subject_ids}));
    envelope
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announcements_match_dittos_examples() {
        let opened = connection_opened("the_connection_id", "2021-03-03T16:05:55Z");
        assert_eq!(
            opened.to_json(),
            json!({
                "topic": "_/the_connection_id/connections/announcements/opened",
                "headers": {"content-type": "application/json"},
                "path": "/", "value": {"openedAt": "2021-03-03T16:05:55Z"}
            })
        );
        assert_eq!(
            connection_closed("c", "2021-03-03T16:05:55Z")
                .topic
                .to_string(),
            "_/c/connections/announcements/closed"
        );
        let mut headers = Headers::new();
        headers.insert(names::CORRELATION_ID, "<some-correlation-id>");
        let policy = PolicyId::parse("org.eclipse.ditto:the_policy_id").unwrap();
        let subjects = [
            "integration:some-label:my-aud-1".to_owned(),
            "integration:some-label:my-aud-2".to_owned(),
        ];
        let deletion = subject_deletion(&policy, "2021-03-03T16:05:55Z", &subjects, headers);
        assert_eq!(
            deletion.to_json(),
            json!({
                "topic": "org.eclipse.ditto/the_policy_id/policies/announcements/subjectDeletion",
                "headers": {"correlation-id": "<some-correlation-id>"},
                "path": "/",
                "value": {"deleteAt": "2021-03-03T16:05:55Z", "subjectIds": subjects}
            })
        );
        assert!(deletion.signal().is_ok());
        assert!(opened.signal().is_ok());
    }
}
