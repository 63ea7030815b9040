//! A target's outbound pipeline (checklist §5.3): the target's payload mappers (with outgoing
//! conditions; none: the signal is dropped), its header mapping over the signal's Ditto headers
//! (added to the mapper's headers), and its address resolved per signal (the first value of a
//! multi-valued placeholder; unresolved: dropped). Pure: compiled once per target.

use super::inbound::{mappers, ConditionalMapper, QOS_HEADER};
use super::message::ExternalMessage;
use super::model::{Connection, Target};
use super::target_ack::AckStatuses;
use super::validate::resolve_connection_id;
use crate::placeholders::{Allowed, SignalResolver, Template};
use twinwire_protocol::{DittoError, Envelope};

/// A target, compiled.
pub struct OutboundTarget {
    connection_id: String,
    index: usize,
    address: Template,
    header_mapping: Vec<(String, Template)>,
    mappers: Vec<ConditionalMapper>,
    /// The label this target issues once the adapter confirmed a send.
    pub issued_label: Option<String>,
    /// The statuses that label is issued with (the connection's binding).
    pub ack_statuses: AckStatuses,
    pub qos: Option<u8>,
}

/// What a signal became for a target.
#[derive(Debug, PartialEq)]
pub enum Outbound {
    /// Messages to publish.
    Publish(Vec<ExternalMessage>),
    /// Nothing to publish: no mapper produced a message, or the address did not resolve.
    Dropped(&'static str),
}

impl OutboundTarget {
    pub fn compile(
        connection: &Connection,
        index: usize,
        target: &Target,
    ) -> Result<Self, DittoError> {
        Ok(OutboundTarget {
            connection_id: connection.id.clone(),
            index,
            address: Template::compile(&target.address, &Allowed::target_address())?,
            header_mapping: target
                .header_mapping
                .iter()
                .map(|(k, v)| {
                    Ok((
                        k.clone(),
                        Template::compile(v, &Allowed::target_header_mapping())?,
                    ))
                })
                .collect::<Result<_, DittoError>>()?,
            mappers: mappers(connection, &target.payload_mapping)?,
            issued_label: target
                .issued_acknowledgement_label
                .as_deref()
                .map(|l| resolve_connection_id(l, &connection.id)),
            ack_statuses: AckStatuses::of(&connection.connection_type),
            qos: target.qos,
        })
    }

    pub fn index(&self) -> usize {
        self.index
    }

    /// The messages a signal becomes for this target.
    pub fn outbound(&self, signal: &Envelope) -> Result<Outbound, DittoError> {
        let resolver = SignalResolver::for_signal(signal).connection_id(&self.connection_id);
        let Some(address) = self.address.resolve(&resolver).into_first() else {
            return Ok(Outbound::Dropped("the address did not resolve"));
        };
        let mut out = Vec::new();
        for mapper in &self.mappers {
            let applies = mapper
                .outgoing
                .iter()
                .all(|c| c.resolve_with_input(&resolver, "true").is_resolved());
            if applies {
                out.extend(mapper.mapper.outbound(signal)?);
            }
        }
        if out.is_empty() {
            return Ok(Outbound::Dropped("no mapper produced a message"));
        }
        for message in &mut out {
            for (name, template) in &self.header_mapping {
                if let Some(value) = template.resolve(&resolver).into_first() {
                    message.set_header(name.as_str(), value);
                }
            }
            if let Some(qos) = self.qos {
                message.set_header(QOS_HEADER, qos.to_string());
            }
            message.address = address.clone();
        }
        Ok(Outbound::Publish(out))
    }

    /// Whether a signal requested this target's label (then the target acknowledges it once
    /// the adapter confirmed the send).
    pub fn must_acknowledge(&self, signal: &Envelope) -> bool {
        let Some(label) = &self.issued_label else {
            return false;
        };
        matches!(signal.headers.requested_acks(), Ok(Some(labels)) if labels.iter().any(|l| l.as_str() == label))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn target(extra: serde_json::Value) -> OutboundTarget {
        let mut target = json!({"address": "events/{{ thing:namespace }}/{{ thing:name }}", "topics": ["_/_/things/twin/events"], "authorizationContext": ["integration:c1"]});
        if let (Some(t), Some(e)) = (target.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                t.insert(k.clone(), v.clone());
            }
        }
        let connection: Connection = serde_json::from_value(json!({
            "id": "c1", "connectionType": "amqp-091", "connectionStatus": "open", "uri": "amqp://h:5672",
            "targets": [target],
            "mappingDefinitions": {"norm": {"mappingEngine": "Normalized", "options": {}, "outgoingConditions": {"only-kitchen": "fn:filter(header:room,'eq','kitchen')"}}}
        }))
        .unwrap();
        OutboundTarget::compile(&connection, 0, &connection.targets[0]).unwrap()
    }

    fn event(headers: serde_json::Value) -> Envelope {
        Envelope::from_json(json!({"topic": "org.eclipse.ditto/lamp/things/twin/events/modified", "headers": headers,
                                   "path": "/attributes/on", "value": true, "revision": 2})).unwrap()
    }

    #[test]
    fn address_headers_and_mapping() {
        let t = target(
            json!({"headerMapping": {"thing": "{{ thing:id }}", "missing": "{{ header:nope }}"}, "issuedAcknowledgementLabel": "{{connection:id}}:sent"}),
        );
        let Outbound::Publish(messages) = t
            .outbound(&event(
                json!({"correlation-id": "c-1", "requested-acks": ["c1:sent"]}),
            ))
            .unwrap()
        else {
            panic!()
        };
        assert_eq!(messages[0].address, "events/org.eclipse.ditto/lamp");
        assert_eq!(messages[0].header("thing"), Some("org.eclipse.ditto:lamp"));
        assert_eq!(
            messages[0].header("missing"),
            None,
            "unresolved: that header is skipped"
        );
        assert_eq!(
            messages[0].content_type(),
            Some("application/vnd.eclipse.ditto+json")
        );
        assert!(t.must_acknowledge(&event(json!({"requested-acks": ["c1:sent"]}))));
        assert!(!t.must_acknowledge(&event(json!({}))));
    }

    #[test]
    fn conditions_and_unresolved_addresses_drop() {
        let t = target(json!({"payloadMapping": ["norm"]}));
        assert_eq!(
            t.outbound(&event(json!({"room": "hall"}))).unwrap(),
            Outbound::Dropped("no mapper produced a message")
        );
        let Outbound::Publish(m) = t.outbound(&event(json!({"room": "kitchen"}))).unwrap() else {
            panic!()
        };
        assert_eq!(m[0].content_type(), Some("application/json"));
        let t = target(json!({"address": "x/{{ header:nope }}"}));
        assert_eq!(
            t.outbound(&event(json!({}))).unwrap(),
            Outbound::Dropped("the address did not resolve")
        );
    }
}
