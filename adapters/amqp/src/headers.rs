//! AMQP 0.9.1 messages and the broker's messages, both ways (Ditto's binding, checklist §4.1).
//!
//! Inbound: every entry of the headers table, as text; `reply-to`, `correlation-id` and
//! `content-type` from their properties; `twinwire-source` (the index of the source consuming
//! the queue) and `twinwire-redelivered` when RabbitMQ says the message was delivered before.
//!
//! Outbound: the address is `exchange/routingKey` (`/key`: the default exchange); `content-type`,
//! `correlation-id` and `reply-to` set their properties, and every header (but the broker's
//! `twinwire-*`) goes into the headers table too, as Ditto does.

use lapin::types::{AMQPValue, FieldTable, LongString, ShortString};
use lapin::BasicProperties;
use twinwire_plugin::{Message, SendError};

/// The header naming the consumed message's source, as the broker reads it.
pub const SOURCE_HEADER: &str = "twinwire-source";
/// Set (`true`) on a message RabbitMQ marks as redelivered: the broker does not apply a twin
/// change of it twice.
pub const REDELIVERED_HEADER: &str = "twinwire-redelivered";

const CONTENT_TYPE: &str = "content-type";
const CORRELATION_ID: &str = "correlation-id";
const REPLY_TO: &str = "reply-to";

/// A table value as text.
fn value_text(value: &AMQPValue) -> String {
    match value {
        AMQPValue::LongString(s) => String::from_utf8_lossy(s.as_bytes()).into_owned(),
        AMQPValue::ShortString(s) => s.as_str().to_owned(),
        AMQPValue::Boolean(b) => b.to_string(),
        AMQPValue::ShortShortInt(n) => n.to_string(),
        AMQPValue::ShortShortUInt(n) => n.to_string(),
        AMQPValue::ShortInt(n) => n.to_string(),
        AMQPValue::ShortUInt(n) => n.to_string(),
        AMQPValue::LongInt(n) => n.to_string(),
        AMQPValue::LongUInt(n) => n.to_string(),
        AMQPValue::LongLongInt(n) => n.to_string(),
        AMQPValue::Float(n) => n.to_string(),
        AMQPValue::Double(n) => n.to_string(),
        AMQPValue::Timestamp(n) => n.to_string(),
        AMQPValue::Void => String::new(),
        other => format!("{other:?}"),
    }
}

/// The message to deliver for a consumed one.
pub fn inbound(
    queue: &str,
    properties: &BasicProperties,
    payload: &[u8],
    redelivered: bool,
    source: usize,
) -> Message {
    let mut headers: Vec<(String, String)> = Vec::new();
    if let Some(table) = properties.headers() {
        for (name, value) in table.inner() {
            let lower = name.as_str().to_ascii_lowercase();
            if !lower.starts_with("twinwire-") {
                headers.push((name.as_str().to_owned(), value_text(value)));
            }
        }
    }
    let mut set = |name: &str, value: &Option<ShortString>| {
        if let Some(value) = value {
            headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            headers.push((name.to_owned(), value.as_str().to_owned()));
        }
    };
    set(REPLY_TO, properties.reply_to());
    set(CORRELATION_ID, properties.correlation_id());
    set(CONTENT_TYPE, properties.content_type());
    headers.push((SOURCE_HEADER.to_owned(), source.to_string()));
    if redelivered {
        headers.push((REDELIVERED_HEADER.to_owned(), "true".to_owned()));
    }
    Message::new(queue, &headers, payload)
}

/// A publish to make of a message.
#[derive(Debug)]
pub struct Outgoing {
    pub exchange: String,
    pub routing_key: String,
    pub properties: BasicProperties,
}

impl Outgoing {
    /// The publish for `message`; an address that is not `exchange/routingKey` refuses it.
    pub fn from_message(message: &Message) -> Result<Outgoing, SendError> {
        let address = message
            .address_str()
            .map_err(|_| SendError::Rejected("the AMQP address is not UTF-8".to_owned()))?;
        let (exchange, routing_key) = match address.split_once('/') {
            Some((exchange, key)) if !key.is_empty() && !key.contains('/') => (exchange, key),
            _ => {
                return Err(SendError::Rejected(format!(
                    "'{address}' is not an AMQP target address (exchange/routingKey): no routing key, dropping message"
                )))
            }
        };
        let mut table = FieldTable::default();
        let mut properties = BasicProperties::default();
        for (name, value) in message.headers_lossy() {
            let lower = name.to_ascii_lowercase();
            if lower.starts_with("twinwire-") {
                continue;
            }
            match lower.as_str() {
                CONTENT_TYPE => {
                    properties = properties.with_content_type(ShortString::from(value.as_ref()));
                }
                CORRELATION_ID => {
                    properties = properties.with_correlation_id(ShortString::from(value.as_ref()));
                }
                REPLY_TO => {
                    properties = properties.with_reply_to(ShortString::from(value.as_ref()))
                }
                _ => {}
            }
            table.insert(
                ShortString::from(name.as_ref()),
                AMQPValue::LongString(LongString::from(value.into_owned())),
            );
        }
        Ok(Outgoing {
            exchange: exchange.to_owned(),
            routing_key: routing_key.to_owned(),
            properties: properties.with_headers(table),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_headers() {
        let mut table = FieldTable::default();
        table.insert("device".into(), AMQPValue::LongString("t1".into()));
        table.insert("count".into(), AMQPValue::LongInt(3));
        table.insert("twinwire-source".into(), AMQPValue::LongString("9".into()));
        let properties = BasicProperties::default()
            .with_headers(table)
            .with_reply_to("replies".into())
            .with_correlation_id("c-1".into())
            .with_content_type("application/json".into());
        let m = inbound("commands", &properties, b"{}", true, 1);
        assert_eq!(m.address(), b"commands");
        assert_eq!(m.header("device"), Some(&b"t1"[..]));
        assert_eq!(m.header("count"), Some(&b"3"[..]));
        assert_eq!(m.header(REPLY_TO), Some(&b"replies"[..]));
        assert_eq!(m.header(CORRELATION_ID), Some(&b"c-1"[..]));
        assert_eq!(m.header(SOURCE_HEADER), Some(&b"1"[..]));
        assert_eq!(m.header(REDELIVERED_HEADER), Some(&b"true"[..]));
        assert_eq!(
            m.headers()
                .filter(|(n, _)| *n == b"twinwire-source")
                .count(),
            1
        );
    }

    #[test]
    fn outbound_publish() {
        let m = Message::new(
            "events/thing.created",
            &[
                ("content-type", "application/json"),
                ("correlation-id", "c-2"),
                ("x", "y"),
                ("twinwire-qos", "1"),
            ],
            b"{}",
        );
        let out = Outgoing::from_message(&m).unwrap();
        assert_eq!(
            (out.exchange.as_str(), out.routing_key.as_str()),
            ("events", "thing.created")
        );
        assert_eq!(
            out.properties.content_type().as_ref().map(|s| s.as_str()),
            Some("application/json")
        );
        assert_eq!(
            out.properties.correlation_id().as_ref().map(|s| s.as_str()),
            Some("c-2")
        );
        let table = out.properties.headers().as_ref().unwrap();
        assert!(table.inner().contains_key("x"));
        assert!(!table.inner().contains_key("twinwire-qos"));
        let default_exchange =
            Outgoing::from_message(&Message::new("/queue", &[] as &[(&str, &str)], b"")).unwrap();
        assert_eq!(default_exchange.exchange, "");
        for bad in ["events", "events/", "a/b/c"] {
            assert!(
                Outgoing::from_message(&Message::new(bad, &[] as &[(&str, &str)], b"")).is_err(),
                "{bad}"
            );
        }
    }
}
