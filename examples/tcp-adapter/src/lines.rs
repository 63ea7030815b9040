//! The wire format: one JSON object per line (`\n`-terminated; a trailing `\r` is ignored).
//!
//! Both ways, a message is `{"address": "...", "headers": {"name": "value", ...}, "payload": "..."}`
//! (`headers` and `payload` may be left out; a payload that is a JSON value other than a string is
//! taken as its JSON text; header values that are not strings are taken as their JSON text).
//!
//! To the peer only:
//! - `{"settled": <token>, "outcome": "delivered" | "retryable" | "permanent"}`: the broker's
//!   outcome for the message the peer sent as the `<token>`th line of messages since the adapter
//!   started (1, 2, 3...; refused lines do not count);
//! - `{"refused": "<reason>"}`: a line that is not a message (not JSON, no address...).

use serde_json::{Map, Value};
use twinwire_plugin::{Message, Outcome};

use crate::config::Config;

/// The header naming the source of a consumed message (its index in the connection's
/// `sources`), as the broker reads it.
pub const SOURCE_HEADER: &str = "twinwire-source";

/// A line from the peer as the message to deliver, with [`SOURCE_HEADER`] set to the index of
/// the source whose addresses contain the line's address (the first source if none does; a
/// `twinwire-source` header of the peer's is replaced).
pub fn decode_message(line: &str, config: &Config) -> Result<Message, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}"))?;
    let Value::Object(mut fields) = value else {
        return Err("not a JSON object".to_owned());
    };
    let address = match fields.remove("address") {
        Some(Value::String(address)) => address,
        Some(_) => return Err("\"address\" is not a string".to_owned()),
        None => return Err("no \"address\"".to_owned()),
    };
    let mut headers: Vec<(String, String)> = match fields.remove("headers") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Object(headers)) => headers
            .into_iter()
            .filter(|(name, _)| !name.eq_ignore_ascii_case(SOURCE_HEADER))
            .map(|(name, value)| (name, text(value)))
            .collect(),
        Some(_) => return Err("\"headers\" is not an object".to_owned()),
    };
    headers.push((
        SOURCE_HEADER.to_owned(),
        config.source_of(&address).to_string(),
    ));
    let payload = match fields.remove("payload") {
        None | Some(Value::Null) => String::new(),
        Some(payload) => text(payload),
    };
    Ok(Message::new(address, &headers, payload))
}

/// A message as its line (without the newline). Every part must be UTF-8: this transport
/// carries text. Of headers with the same name, the last one wins.
pub fn encode_message(message: &Message) -> Result<String, String> {
    let utf8 = |what: &str, bytes: &[u8]| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| format!("tcp-lines carries text: the {what} is not UTF-8"))
    };
    let mut headers = Map::new();
    for (name, value) in message.headers() {
        headers.insert(
            utf8("header name", name)?,
            Value::String(utf8("header value", value)?),
        );
    }
    let mut line = Map::new();
    line.insert(
        "address".to_owned(),
        Value::String(utf8("address", message.address())?),
    );
    line.insert("headers".to_owned(), Value::Object(headers));
    line.insert(
        "payload".to_owned(),
        Value::String(utf8("payload", message.payload())?),
    );
    Ok(Value::Object(line).to_string())
}

/// The line telling the peer how the message of `token` was settled.
pub fn settled_line(token: u64, outcome: Outcome) -> String {
    let outcome = match outcome {
        Outcome::Delivered => "delivered",
        Outcome::Retryable => "retryable",
        Outcome::Permanent => "permanent",
    };
    serde_json::json!({"settled": token, "outcome": outcome}).to_string()
}

/// The line telling the peer that a line of its was not a message.
pub fn refused_line(reason: &str) -> String {
    serde_json::json!({ "refused": reason }).to_string()
}

fn text(value: Value) -> String {
    match value {
        Value::String(s) => s,
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config() -> Config {
        Config::from_json(
            json!({"uri": "tcp://h:1", "sources": [{"addresses": ["a"]}, {"addresses": ["b"]}]})
                .to_string()
                .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn lines_round_trip() {
        let line =
            r#"{"address":"b","headers":{"k":"v","n":1,"twinwire-source":"7"},"payload":"p\nq"}"#;
        let message = decode_message(line, &config()).unwrap();
        assert_eq!(message.address(), b"b");
        assert_eq!(message.header("k"), Some(&b"v"[..]));
        assert_eq!(message.header("n"), Some(&b"1"[..]));
        assert_eq!(message.header(SOURCE_HEADER), Some(&b"1"[..]));
        assert_eq!(message.payload(), b"p\nq");
        let encoded = encode_message(&message).unwrap();
        assert!(!encoded.contains('\n'));
        let back: Value = serde_json::from_str(&encoded).unwrap();
        assert_eq!(
            back,
            json!({"address": "b", "headers": {"k": "v", "n": "1", "twinwire-source": "1"}, "payload": "p\nq"})
        );
        // A JSON payload is taken as its text; an unknown address is the first source's.
        let message = decode_message(r#"{"address":"x","payload":{"a":1}}"#, &config()).unwrap();
        assert_eq!(message.payload(), br#"{"a":1}"#);
        assert_eq!(message.header(SOURCE_HEADER), Some(&b"0"[..]));
    }

    #[test]
    fn bad_lines_are_refused() {
        for line in [
            "nope",
            "[]",
            "{}",
            r#"{"address":1}"#,
            r#"{"address":"a","headers":[]}"#,
        ] {
            assert!(decode_message(line, &config()).is_err(), "{line}");
        }
        let binary = Message::new("a", &[] as &[(&str, &str)], [0xff]);
        assert!(encode_message(&binary).unwrap_err().contains("payload"));
        assert_eq!(
            settled_line(3, Outcome::Permanent),
            r#"{"settled":3,"outcome":"permanent"}"#
        );
    }
}
