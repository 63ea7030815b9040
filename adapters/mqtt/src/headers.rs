//! MQTT packets and the broker's messages, both ways (Ditto's bindings: checklist §4.3, §4.4).
//!
//! Inbound, every message carries the pseudo-headers `mqtt.topic`, `mqtt.qos` and
//! `mqtt.retain`, and `twinwire-source` (the index of the source whose filter matched). MQTT 5
//! adds its user properties (except `correlation-id`, `reply-to`, `content-type` and `mqtt.*`),
//! `correlation-id` from the correlation data, `reply-to` from the response topic,
//! `content-type`, and `mqtt.message-expiry-interval`.
//!
//! Outbound, `mqtt.topic` overrides the address, `mqtt.qos` the qos (else the broker's
//! `twinwire-qos`: the target's or source's qos; else 0) and `mqtt.retain` the retain flag. MQTT 5
//! maps `correlation-id`, `reply-to`, `content-type` and `mqtt.message-expiry-interval` to their
//! properties and every other non-blank header to a user property; MQTT 3.1.1 has no headers.

use twinwire_plugin::{Message, SendError};

/// The header naming the consumed message's source, as the broker reads it.
pub const SOURCE_HEADER: &str = "twinwire-source";
/// The qos the broker asks for (the target's, or the source's for a reply).
pub const QOS_HEADER: &str = "twinwire-qos";
/// Set (`true`) on a message the server sent with the DUP flag: it may have been delivered
/// before, and the broker does not apply a twin change of it twice.
pub const REDELIVERED_HEADER: &str = "twinwire-redelivered";

pub const TOPIC: &str = "mqtt.topic";
pub const QOS: &str = "mqtt.qos";
pub const RETAIN: &str = "mqtt.retain";
pub const EXPIRY: &str = "mqtt.message-expiry-interval";
pub const CORRELATION_ID: &str = "correlation-id";
pub const REPLY_TO: &str = "reply-to";
pub const CONTENT_TYPE: &str = "content-type";

/// The MQTT 5 properties of a publish, as far as the bindings map them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Properties {
    pub correlation_data: Option<Vec<u8>>,
    pub response_topic: Option<String>,
    pub content_type: Option<String>,
    pub message_expiry: Option<u32>,
    pub user: Vec<(String, String)>,
}

/// A consumed publish, whichever the protocol version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Incoming {
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    /// The DUP flag: sent before, on an earlier connection.
    pub dup: bool,
    pub payload: Vec<u8>,
    /// MQTT 5 only.
    pub properties: Option<Properties>,
}

impl Incoming {
    /// The message to deliver, from source `source`.
    pub fn to_message(&self, source: usize) -> Message {
        let mut headers: Vec<(String, String)> = Vec::new();
        if let Some(p) = &self.properties {
            for (name, value) in &p.user {
                let lower = name.to_ascii_lowercase();
                let reserved = [
                    CORRELATION_ID,
                    REPLY_TO,
                    CONTENT_TYPE,
                    SOURCE_HEADER,
                    QOS_HEADER,
                ]
                .contains(&lower.as_str())
                    || lower.starts_with("mqtt.");
                if !reserved {
                    headers.push((name.clone(), value.clone()));
                }
            }
            if let Some(data) = &p.correlation_data {
                headers.push((
                    CORRELATION_ID.to_owned(),
                    String::from_utf8_lossy(data).into_owned(),
                ));
            }
            if let Some(topic) = &p.response_topic {
                headers.push((REPLY_TO.to_owned(), topic.clone()));
            }
            if let Some(content_type) = &p.content_type {
                headers.push((CONTENT_TYPE.to_owned(), content_type.clone()));
            }
            if let Some(expiry) = p.message_expiry {
                headers.push((EXPIRY.to_owned(), expiry.to_string()));
            }
        }
        headers.push((TOPIC.to_owned(), self.topic.clone()));
        headers.push((QOS.to_owned(), self.qos.to_string()));
        headers.push((RETAIN.to_owned(), self.retain.to_string()));
        headers.push((SOURCE_HEADER.to_owned(), source.to_string()));
        if self.dup {
            headers.push((REDELIVERED_HEADER.to_owned(), "true".to_owned()));
        }
        Message::new(&self.topic, &headers, &self.payload)
    }
}

/// A publish to make of a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub topic: String,
    pub qos: u8,
    pub retain: bool,
    pub payload: Vec<u8>,
    /// Filled for MQTT 5 (ignored by 3.1.1).
    pub properties: Properties,
}

impl Outgoing {
    /// The publish for `message`; a topic that is empty or has wildcards, or a bad `mqtt.qos`,
    /// refuses it for good.
    pub fn from_message(message: &Message) -> Result<Outgoing, SendError> {
        let header = |name: &str| {
            message
                .headers()
                .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        };
        let topic = match header(TOPIC) {
            Some(topic) => topic,
            None => String::from_utf8(message.address().to_vec())
                .map_err(|_| SendError::Rejected("the MQTT topic is not UTF-8".to_owned()))?,
        };
        if topic.is_empty() || topic.contains(['+', '#', '\0']) {
            return Err(SendError::Rejected(format!(
                "'{topic}' is not an MQTT topic to publish to (empty or with wildcards)"
            )));
        }
        let qos = match header(QOS).or_else(|| header(QOS_HEADER)) {
            None => 0,
            Some(q) => match q.trim() {
                "0" => 0,
                "1" => 1,
                "2" => 2,
                other => {
                    return Err(SendError::Rejected(format!(
                        "mqtt.qos must be 0, 1 or 2, not '{other}'"
                    )))
                }
            },
        };
        let retain = header(RETAIN).is_some_and(|r| r.trim().eq_ignore_ascii_case("true"));
        let mut properties = Properties::default();
        for (name, value) in message.headers_lossy() {
            let lower = name.to_ascii_lowercase();
            if value.trim().is_empty() || lower.starts_with("twinwire-") {
                continue;
            }
            match lower.as_str() {
                CORRELATION_ID => properties.correlation_data = Some(value.as_bytes().to_vec()),
                REPLY_TO => properties.response_topic = Some(value.into_owned()),
                CONTENT_TYPE => properties.content_type = Some(value.into_owned()),
                EXPIRY => {
                    let seconds: u32 = value.trim().parse().map_err(|_| {
                        SendError::Rejected(format!(
                            "{EXPIRY} must be a number of seconds, not '{value}'"
                        ))
                    })?;
                    properties.message_expiry = (seconds > 0).then_some(seconds);
                }
                _ if lower.starts_with("mqtt.") => {}
                _ => properties
                    .user
                    .push((name.into_owned(), value.into_owned())),
            }
        }
        Ok(Outgoing {
            topic,
            qos,
            retain,
            payload: message.payload().to_vec(),
            properties,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_headers() {
        let incoming = Incoming {
            topic: "devices/t1".to_owned(),
            qos: 1,
            retain: false,
            dup: true,
            payload: b"{}".to_vec(),
            properties: Some(Properties {
                correlation_data: Some(b"c-1".to_vec()),
                response_topic: Some("replies/t1".to_owned()),
                content_type: Some("application/json".to_owned()),
                message_expiry: Some(30),
                user: vec![
                    ("device".to_owned(), "t1".to_owned()),
                    ("mqtt.topic".to_owned(), "forged".to_owned()),
                    ("twinwire-source".to_owned(), "9".to_owned()),
                ],
            }),
        };
        let m = incoming.to_message(1);
        assert_eq!(m.address(), b"devices/t1");
        assert_eq!(m.header("device"), Some(&b"t1"[..]));
        assert_eq!(m.header(CORRELATION_ID), Some(&b"c-1"[..]));
        assert_eq!(m.header(REPLY_TO), Some(&b"replies/t1"[..]));
        assert_eq!(m.header(EXPIRY), Some(&b"30"[..]));
        assert_eq!(m.header(TOPIC), Some(&b"devices/t1"[..]));
        assert_eq!(m.header(QOS), Some(&b"1"[..]));
        assert_eq!(m.header(SOURCE_HEADER), Some(&b"1"[..]));
        assert_eq!(m.header(REDELIVERED_HEADER), Some(&b"true"[..]));
        assert_eq!(m.headers().filter(|(n, _)| *n == b"mqtt.topic").count(), 1);
        // MQTT 3.1.1: only the pseudo-headers.
        let plain = Incoming {
            properties: None,
            dup: false,
            ..incoming
        };
        assert_eq!(plain.to_message(0).header_count(), 4);
    }

    #[test]
    fn outbound_publish() {
        let m = Message::new(
            "events/t1",
            &[
                ("twinwire-qos", "1"),
                ("mqtt.retain", "true"),
                ("correlation-id", "c-2"),
                ("reply-to", "replies"),
                ("content-type", "application/json"),
                ("mqtt.message-expiry-interval", "0"),
                ("x-thing", "t1"),
                ("blank", " "),
            ],
            b"{}",
        );
        let out = Outgoing::from_message(&m).unwrap();
        assert_eq!(out.topic, "events/t1");
        assert_eq!((out.qos, out.retain), (1, true));
        assert_eq!(
            out.properties.correlation_data.as_deref(),
            Some(&b"c-2"[..])
        );
        assert_eq!(out.properties.response_topic.as_deref(), Some("replies"));
        assert_eq!(out.properties.message_expiry, None);
        assert_eq!(
            out.properties.user,
            vec![("x-thing".to_owned(), "t1".to_owned())]
        );
        // mqtt.topic and mqtt.qos override the address and the broker's qos.
        let m = Message::new(
            "a",
            &[
                ("twinwire-qos", "1"),
                ("mqtt.qos", "2"),
                ("mqtt.topic", "b"),
            ],
            b"",
        );
        let out = Outgoing::from_message(&m).unwrap();
        assert_eq!((out.topic.as_str(), out.qos), ("b", 2));
        for bad in [
            Message::new("a/#", &[] as &[(&str, &str)], b""),
            Message::new("", &[] as &[(&str, &str)], b""),
            Message::new("a", &[("mqtt.qos", "3")], b""),
            Message::new("a", &[("mqtt.message-expiry-interval", "soon")], b""),
        ] {
            assert!(
                matches!(Outgoing::from_message(&bad), Err(SendError::Rejected(_))),
                "{bad:?}"
            );
        }
    }
}
