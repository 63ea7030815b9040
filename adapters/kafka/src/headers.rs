//! Kafka records and the broker's messages, both ways (Ditto's binding, checklist §4.2).
//!
//! Inbound: every record header as text (a repeated name keeps its first value), plus
//! `kafka.topic`, `kafka.key` (when the record has one) and `kafka.timestamp`; `twinwire-source`
//! (the index of the source consuming the topic) and `twinwire-redelivered` for a record consumed
//! again after a rewind.
//!
//! Outbound: the address is `topic`, `topic/key` or `topic#partition` (the key is split off
//! first, so `t/k#1` has the key `k#1`); every header but the broker's `twinwire-*` becomes a
//! record header, and `ditto-connection-id` names the connection.

use twinwire_plugin::{Message, SendError};

use crate::config::valid_topic;

/// The header naming the consumed message's source, as the broker reads it.
pub const SOURCE_HEADER: &str = "twinwire-source";
/// Set (`true`) on a record consumed again after a rewind: the broker does not apply a twin
/// change of it twice.
pub const REDELIVERED_HEADER: &str = "twinwire-redelivered";
/// Added to every produced record (as Ditto does).
pub const CONNECTION_ID_HEADER: &str = "ditto-connection-id";

/// A consumed record's parts the message is made of.
pub struct Record<'a> {
    pub topic: &'a str,
    pub key: Option<&'a [u8]>,
    pub timestamp: Option<i64>,
    pub headers: Vec<(&'a str, Option<&'a [u8]>)>,
    pub payload: &'a [u8],
}

/// What became of a record's headers: the message, and the names given more than once.
pub struct Inbound {
    pub message: Message,
    pub repeated: Vec<String>,
}

/// The message to deliver for a consumed record.
pub fn inbound(record: &Record<'_>, source: usize, redelivered: bool) -> Inbound {
    let mut headers: Vec<(String, String)> = Vec::with_capacity(record.headers.len() + 5);
    let mut repeated = Vec::new();
    for (name, value) in &record.headers {
        if name.to_ascii_lowercase().starts_with("twinwire-") {
            continue;
        }
        if headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
            repeated.push((*name).to_owned());
            continue;
        }
        let value = value.map(String::from_utf8_lossy).unwrap_or_default();
        headers.push(((*name).to_owned(), value.into_owned()));
    }
    headers.push(("kafka.topic".to_owned(), record.topic.to_owned()));
    if let Some(key) = record.key {
        headers.push((
            "kafka.key".to_owned(),
            String::from_utf8_lossy(key).into_owned(),
        ));
    }
    if let Some(timestamp) = record.timestamp {
        headers.push(("kafka.timestamp".to_owned(), timestamp.to_string()));
    }
    headers.push((SOURCE_HEADER.to_owned(), source.to_string()));
    if redelivered {
        headers.push((REDELIVERED_HEADER.to_owned(), "true".to_owned()));
    }
    Inbound {
        message: Message::new(record.topic, &headers, record.payload),
        repeated,
    }
}

/// Whether a record carrying `creation-time` (epoch ms) and `ttl` (ms) has expired at `now`.
pub fn expired(message: &Message, now_millis: i64) -> bool {
    let number = |name: &str| {
        message
            .header(name)
            .and_then(|v| std::str::from_utf8(v).ok())
            .and_then(|v| v.trim().parse::<i64>().ok())
    };
    match (number("creation-time"), number("ttl")) {
        (Some(created), Some(ttl)) => now_millis.saturating_sub(created) >= ttl,
        _ => false,
    }
}

/// A record to produce for a message.
#[derive(Debug, PartialEq, Eq)]
pub struct Outgoing {
    pub topic: String,
    pub key: Option<String>,
    pub partition: Option<i32>,
    pub headers: Vec<(String, String)>,
}

impl Outgoing {
    /// The record for `message` of connection `connection_id`; an address that is not a target
    /// address refuses it.
    pub fn from_message(message: &Message, connection_id: &str) -> Result<Outgoing, SendError> {
        let address = message
            .address_str()
            .map_err(|_| SendError::Rejected("the Kafka address is not UTF-8".to_owned()))?;
        let (topic, key, partition) = parse_address(address).map_err(SendError::Rejected)?;
        let mut headers: Vec<(String, String)> = message
            .headers_lossy()
            .filter(|(name, _)| !name.to_ascii_lowercase().starts_with("twinwire-"))
            .filter(|(name, _)| !name.eq_ignore_ascii_case(CONNECTION_ID_HEADER))
            .map(|(n, v)| (n.into_owned(), v.into_owned()))
            .collect();
        headers.push((CONNECTION_ID_HEADER.to_owned(), connection_id.to_owned()));
        Ok(Outgoing {
            topic,
            key,
            partition,
            headers,
        })
    }
}

/// `topic`, `topic/key` or `topic#partition`.
pub fn parse_address(address: &str) -> Result<(String, Option<String>, Option<i32>), String> {
    let (topic, key, partition) = if let Some((topic, key)) = address.split_once('/') {
        if key.is_empty() {
            return Err(format!("'{address}': the key after '/' is empty"));
        }
        (topic, Some(key.to_owned()), None)
    } else if let Some((topic, partition)) = address.split_once('#') {
        let partition = partition
            .parse::<i32>()
            .ok()
            .filter(|p| *p >= 0)
            .ok_or_else(|| format!("'{address}': the partition after '#' is not a number"))?;
        (topic, None, Some(partition))
    } else {
        (address, None, None)
    };
    if !valid_topic(topic) {
        return Err(format!(
            "'{address}' is not a Kafka target address (topic, topic/key or topic#partition; a topic has a-z, A-Z, 0-9, '.', '_', '-')"
        ));
    }
    Ok((topic.to_owned(), key, partition))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inbound_headers() {
        let record = Record {
            topic: "commands",
            key: Some(b"device-1"),
            timestamp: Some(1700),
            headers: vec![
                ("correlation-id", Some(b"c-1")),
                ("Correlation-Id", Some(b"c-2")),
                ("twinwire-source", Some(b"9")),
                ("empty", None),
            ],
            payload: b"{}",
        };
        let inbound = inbound(&record, 2, true);
        let m = inbound.message;
        assert_eq!(m.address(), b"commands");
        assert_eq!(m.header("correlation-id"), Some(&b"c-1"[..]));
        assert_eq!(inbound.repeated, vec!["Correlation-Id"]);
        assert_eq!(m.header("empty"), Some(&b""[..]));
        assert_eq!(m.header("kafka.topic"), Some(&b"commands"[..]));
        assert_eq!(m.header("kafka.key"), Some(&b"device-1"[..]));
        assert_eq!(m.header("kafka.timestamp"), Some(&b"1700"[..]));
        assert_eq!(m.header(SOURCE_HEADER), Some(&b"2"[..]));
        assert_eq!(m.header(REDELIVERED_HEADER), Some(&b"true"[..]));
        assert_eq!(
            m.headers()
                .filter(|(n, _)| *n == b"twinwire-source")
                .count(),
            1
        );
    }

    #[test]
    fn expiry_needs_both_headers() {
        let m = |headers: &[(&str, &str)]| Message::new("t", headers, b"");
        assert!(expired(
            &m(&[("creation-time", "1000"), ("ttl", "500")]),
            1500
        ));
        assert!(!expired(
            &m(&[("creation-time", "1000"), ("ttl", "500")]),
            1499
        ));
        assert!(!expired(&m(&[("creation-time", "1000")]), 99_999));
        assert!(!expired(&m(&[("ttl", "1")]), 99_999));
    }

    #[test]
    fn target_addresses() {
        assert_eq!(parse_address("events"), Ok(("events".into(), None, None)));
        assert_eq!(
            parse_address("events/k-1"),
            Ok(("events".into(), Some("k-1".into()), None))
        );
        assert_eq!(
            parse_address("events#3"),
            Ok(("events".into(), None, Some(3)))
        );
        // The key is split off first: `#1` belongs to it.
        assert_eq!(
            parse_address("t/k#1"),
            Ok(("t".into(), Some("k#1".into()), None))
        );
        for bad in ["", "/k", "t/", "t#", "t#x", "t#-1", "a b", "#1"] {
            assert!(parse_address(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn outbound_record() {
        let m = Message::new(
            "events/thing-1",
            &[
                ("content-type", "application/json"),
                ("twinwire-qos", "1"),
                ("ditto-connection-id", "spoofed"),
            ],
            b"{}",
        );
        let out = Outgoing::from_message(&m, "k1").unwrap();
        assert_eq!(out.topic, "events");
        assert_eq!(out.key.as_deref(), Some("thing-1"));
        assert_eq!(
            out.headers,
            vec![
                ("content-type".to_owned(), "application/json".to_owned()),
                ("ditto-connection-id".to_owned(), "k1".to_owned()),
            ]
        );
        assert!(matches!(
            Outgoing::from_message(&Message::new("a b", &[] as &[(&str, &str)], b""), "k1"),
            Err(SendError::Rejected(_))
        ));
    }
}
