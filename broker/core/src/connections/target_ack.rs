//! The acknowledgement a target issues for a signal it published (`issuedAcknowledgementLabel`),
//! with the statuses of its binding (checklist §4): Kafka answers a produced record with 204,
//! or 200 and the record metadata with `debugEnabled`, and a failure with 400 when Kafka will
//! not take the record and 500 when trying again may help; the other bindings answer 200 and
//! 503.

use super::model::ConnectionType;
use twinwire_plugin::{Receipt, SendError};
use twinwire_protocol::exceptions::connectivity::sending_failed;
use twinwire_protocol::headers::names;
use twinwire_protocol::topic::{Channel, Criterion, Group};
use twinwire_protocol::{DittoError, Envelope, Headers, JsonPointer, Topic};

/// What became of a signal a target was to publish.
#[derive(Debug)]
pub enum Sent {
    /// Every message of it was sent; the transport's receipt of the last one.
    Published(Receipt),
    /// Nothing was to be sent (dropped by mapping or filtering): a weak acknowledgement.
    Nothing,
}

/// The acknowledgement statuses of a binding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AckStatuses {
    /// Kafka: 204 (200 with record metadata), 400, 500.
    Kafka,
    /// AMQP 0.9.1, MQTT and plugin types: 200, 503.
    Confirmed,
}

impl AckStatuses {
    pub fn of(connection_type: &ConnectionType) -> AckStatuses {
        match connection_type {
            ConnectionType::Kafka => AckStatuses::Kafka,
            _ => AckStatuses::Confirmed,
        }
    }

    /// The error a failed send acknowledges with.
    pub fn failure(self, error: &SendError) -> DittoError {
        let mut failure = sending_failed(&error.to_string());
        if self == AckStatuses::Kafka {
            failure.status = match error {
                SendError::Rejected(_) => 400,
                _ => 500,
            };
        }
        failure
    }

    /// The target's acknowledgement `label` of `signal`.
    pub fn acknowledgement(
        self,
        signal: &Envelope,
        label: &str,
        sent: &Result<Sent, DittoError>,
    ) -> Envelope {
        let topic = Topic {
            namespace: signal.topic.namespace.clone(),
            name: signal.topic.name.clone(),
            group: Group::Things,
            channel: if signal.topic.channel == Channel::Live {
                Channel::Live
            } else {
                Channel::Twin
            },
            criterion: Criterion::Acks(twinwire_protocol::AckLabel::parse(label).ok()),
        };
        let mut headers = Headers::new();
        if let Some(id) = signal.headers.correlation_id() {
            headers.insert(names::CORRELATION_ID, id);
        }
        let mut ack = Envelope::new(topic, headers, JsonPointer::root());
        match sent {
            Ok(Sent::Published(receipt)) => {
                let metadata = Some(receipt.metadata.as_str())
                    .filter(|m| !m.is_empty())
                    .and_then(|m| serde_json::from_str::<serde_json::Value>(m).ok());
                match (self, metadata) {
                    (_, Some(metadata)) => {
                        ack.status = Some(200);
                        ack.value = Some(metadata);
                    }
                    (AckStatuses::Kafka, None) => ack.status = Some(204),
                    (AckStatuses::Confirmed, None) => ack.status = Some(200),
                }
            }
            Ok(Sent::Nothing) => {
                ack.status = Some(200);
                ack.headers.insert(names::DITTO_WEAK_ACK, true);
            }
            Err(error) => {
                ack.status = Some(error.status);
                ack.value = Some(error.to_json());
            }
        }
        ack
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use twinwire_protocol::Envelope;

    fn event() -> Envelope {
        Envelope::from_slice(
            br#"{"topic":"org.eclipse.ditto/lamp/things/twin/events/modified","headers":{"correlation-id":"c-1"},"path":"/attributes/on","value":true,"revision":2}"#,
        )
        .expect("a valid event")
    }

    fn ack(statuses: AckStatuses, sent: Result<Sent, DittoError>) -> Envelope {
        statuses.acknowledgement(&event(), "conn:sent", &sent)
    }

    #[test]
    fn kafka_answers_204_or_200_with_the_record_metadata() {
        let plain = ack(AckStatuses::Kafka, Ok(Sent::Published(Receipt::default())));
        assert_eq!(plain.status, Some(204));
        assert_eq!(plain.value, None);
        assert_eq!(plain.headers.correlation_id(), Some("c-1"));
        assert_eq!(
            plain.topic.to_string(),
            "org.eclipse.ditto/lamp/things/twin/acks/conn:sent"
        );
        let metadata = r#"{"serializedKeySize":-1,"serializedValueSize":3,"topic":"t","partition":0,"offset":7}"#;
        let debug = ack(
            AckStatuses::Kafka,
            Ok(Sent::Published(Receipt::with_metadata(metadata))),
        );
        assert_eq!(debug.status, Some(200));
        assert_eq!(
            debug.value,
            Some(
                serde_json::json!({"serializedKeySize":-1,"serializedValueSize":3,"topic":"t","partition":0,"offset":7})
            )
        );
    }

    #[test]
    fn other_bindings_answer_200_and_503() {
        let sent = ack(
            AckStatuses::Confirmed,
            Ok(Sent::Published(Receipt::default())),
        );
        assert_eq!(sent.status, Some(200));
        let failure = AckStatuses::Confirmed.failure(&SendError::Rejected("no route".into()));
        assert_eq!(failure.status, 503);
        assert_eq!(failure.code(), "connectivity:message.sending.failed");
    }

    #[test]
    fn kafka_failures_are_400_for_good_and_500_when_worth_retrying() {
        let rejected = AckStatuses::Kafka.failure(&SendError::Rejected("too large".into()));
        assert_eq!(rejected.status, 400);
        let retryable = AckStatuses::Kafka.failure(&SendError::Retryable("timed out".into()));
        assert_eq!(retryable.status, 500);
        let acked = ack(AckStatuses::Kafka, Err(retryable));
        assert_eq!(acked.status, Some(500));
        assert_eq!(
            acked.value.as_ref().and_then(|v| v.get("error")),
            Some(&serde_json::json!("connectivity:message.sending.failed"))
        );
    }

    #[test]
    fn nothing_sent_is_a_weak_200() {
        let weak = ack(AckStatuses::Kafka, Ok(Sent::Nothing));
        assert_eq!(weak.status, Some(200));
        assert_eq!(
            weak.headers.get(names::DITTO_WEAK_ACK),
            Some(&serde_json::json!(true))
        );
    }
}
