//! Ditto Protocol headers: case-insensitive lookup that keeps the sender's spelling and order,
//! typed access to the predefined headers of docs/protocol-specification.md, and the rule that
//! internal headers never leave the broker.

use crate::acks::AckLabel;
use crate::error::ProtocolError;
use serde_json::{Map, Value};
use std::time::Duration;

/// Header names, as Ditto spells them.
pub mod names {
    pub const CONTENT_TYPE: &str = "content-type";
    pub const CORRELATION_ID: &str = "correlation-id";
    pub const DITTO_ORIGINATOR: &str = "ditto-originator";
    /// Internal: the connection or session a signal came from, so that it is not published
    /// back to it.
    pub const DITTO_ORIGIN: &str = "ditto-origin";
    /// Internal (twinwire): the identity of the consumed message a connection's signal came
    /// of, and whether it may be a redelivery, so that the thing's shard applies it once.
    pub const DITTO_MESSAGE_KEY: &str = "ditto-twinwire-message-key";
    pub const DITTO_REDELIVERED: &str = "ditto-twinwire-redelivered";
    /// Internal (twinwire): set on an event published again for a redelivered command, so that
    /// a target that published the first one does not take this one for a repeat.
    pub const DITTO_REPLAY: &str = "ditto-twinwire-replay";
    pub const IF_MATCH: &str = "if-match";
    pub const IF_NONE_MATCH: &str = "if-none-match";
    pub const IF_EQUAL: &str = "if-equal";
    pub const RESPONSE_REQUIRED: &str = "response-required";
    pub const REQUESTED_ACKS: &str = "requested-acks";
    pub const DITTO_WEAK_ACK: &str = "ditto-weak-ack";
    pub const TIMEOUT: &str = "timeout";
    pub const VERSION: &str = "version";
    pub const PUT_METADATA: &str = "put-metadata";
    pub const GET_METADATA: &str = "get-metadata";
    pub const DELETE_METADATA: &str = "delete-metadata";
    pub const DITTO_METADATA: &str = "ditto-metadata";
    pub const CONDITION: &str = "condition";
    pub const LIVE_CHANNEL_CONDITION: &str = "live-channel-condition";
    pub const LIVE_CHANNEL_TIMEOUT_STRATEGY: &str = "live-channel-timeout-strategy";
    pub const LIVE_CHANNEL_CONDITION_MATCHED: &str = "live-channel-condition-matched";
    pub const AT_HISTORICAL_REVISION: &str = "at-historical-revision";
    pub const AT_HISTORICAL_TIMESTAMP: &str = "at-historical-timestamp";
    pub const HISTORICAL_HEADERS: &str = "historical-headers";
    pub const ETAG: &str = "etag";
    pub const CHANNEL: &str = "channel";
    pub const SUBJECT: &str = "subject";
}

/// The default of the `timeout` header.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// Headers Ditto uses internally (docs/protocol-specification.md, "Custom headers"): a client's
/// values are ignored and they are never delivered. `ditto-*` means every name with that prefix.
const INTERNAL_EXACT: [&str; 5] = [
    "channel",
    "raw-request-url",
    "read-subjects",
    "subject",
    "timeout-access",
];
const INTERNAL_PREFIX: &str = "ditto-";
/// `ditto-*` headers that the broker itself sets on what it sends (originator, weak acks,
/// retrieved metadata); they leave the broker, but a client cannot set them.
const BROKER_SET_PUBLIC: [&str; 3] = [
    names::DITTO_ORIGINATOR,
    names::DITTO_WEAK_ACK,
    names::DITTO_METADATA,
];

fn is_internal(name: &str) -> bool {
    INTERNAL_EXACT.iter().any(|n| n.eq_ignore_ascii_case(name))
        || name
            .get(..INTERNAL_PREFIX.len())
            .is_some_and(|p| p.eq_ignore_ascii_case(INTERNAL_PREFIX))
}

/// `if-equal`: what a modify does when the new value equals the current one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum IfEqual {
    #[default]
    Update,
    Skip,
    SkipMinimizingMerge,
}

/// `live-channel-timeout-strategy`: what a live command does when the device does not answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LiveChannelTimeoutStrategy {
    #[default]
    Fail,
    UseTwin,
}

/// An entity tag of `if-match`/`if-none-match`/`etag`, e.g. `"rev:3"` or `W/"rev:3"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntityTag {
    pub weak: bool,
    pub opaque: String,
}

/// The value of `if-match` or `if-none-match`: `*` or a list of entity tags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntityTagMatchers {
    Any,
    Tags(Vec<EntityTag>),
}

impl EntityTagMatchers {
    /// Parses `*` or `"a", W/"b"` (RFC 7232).
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s == "*" {
            return Some(EntityTagMatchers::Any);
        }
        let mut tags = Vec::new();
        for part in s.split(',') {
            let part = part.trim();
            let (weak, quoted) = match part.strip_prefix("W/") {
                Some(rest) => (true, rest),
                None => (false, part),
            };
            let opaque = quoted.strip_prefix('"')?.strip_suffix('"')?;
            if opaque.contains('"') {
                return None;
            }
            tags.push(EntityTag {
                weak,
                opaque: opaque.to_owned(),
            });
        }
        (!tags.is_empty()).then_some(EntityTagMatchers::Tags(tags))
    }
}

/// Headers in the sender's order and spelling; names compare case-insensitively.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Headers {
    entries: Vec<(String, Value)>,
}

impl Headers {
    pub fn new() -> Self {
        Headers::default()
    }

    /// Reads a JSON headers object; values may be strings, booleans, numbers, arrays or objects
    /// (`requested-acks` is an array, `response-required` a boolean).
    pub fn from_json(value: &Value) -> Result<Self, ProtocolError> {
        let obj = value.as_object().ok_or(ProtocolError::FieldType {
            field: "headers",
            expected: "a JSON object",
        })?;
        Ok(Headers {
            entries: obj.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
        })
    }

    /// Takes the entries of a JSON headers object without copying them.
    pub fn from_map(map: Map<String, Value>) -> Self {
        Headers {
            entries: map.into_iter().collect(),
        }
    }

    pub fn to_json(&self) -> Value {
        let mut obj = Map::with_capacity(self.entries.len());
        for (k, v) in &self.entries {
            obj.insert(k.clone(), v.clone());
        }
        Value::Object(obj)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &Value)> {
        self.entries.iter().map(|(k, v)| (k.as_str(), v))
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.entries
            .iter()
            .position(|(k, _)| k.eq_ignore_ascii_case(name))
    }

    /// The raw JSON value of a header, whatever the spelling of its name.
    pub fn get(&self, name: &str) -> Option<&Value> {
        self.position(name).map(|i| &self.entries[i].1)
    }

    /// A header's value as a string: strings as they are, other JSON as its text.
    pub fn get_str(&self, name: &str) -> Option<std::borrow::Cow<'_, str>> {
        self.get(name).map(|v| match v {
            Value::String(s) => std::borrow::Cow::Borrowed(s.as_str()),
            other => std::borrow::Cow::Owned(other.to_string()),
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// Sets a header; an existing header of the same name keeps its place and spelling.
    pub fn insert(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        let name = name.into();
        let value = value.into();
        match self.position(&name) {
            Some(i) => self.entries[i].1 = value,
            None => self.entries.push((name, value)),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Value> {
        self.position(name).map(|i| self.entries.remove(i).1)
    }

    /// Drops every internal header a client may have set: they are ignored, not trusted.
    pub fn strip_internal_from_client(&mut self) {
        self.entries.retain(|(k, _)| !is_internal(k));
    }

    /// Drops the internal headers before a signal leaves the broker, keeping the `ditto-*`
    /// headers the broker sets for its receivers.
    pub fn strip_internal_for_delivery(&mut self) {
        self.entries.retain(|(k, _)| {
            !is_internal(k) || BROKER_SET_PUBLIC.iter().any(|p| p.eq_ignore_ascii_case(k))
        });
    }

    fn invalid(&self, name: &str, expected: &'static str) -> ProtocolError {
        ProtocolError::HeaderInvalid {
            name: name.to_owned(),
            value: self
                .get_str(name)
                .map(|v| v.into_owned())
                .unwrap_or_default(),
            expected,
        }
    }

    fn string_header(&self, name: &str) -> Result<Option<&str>, ProtocolError> {
        match self.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.invalid(name, "string")),
        }
    }

    fn bool_header(&self, name: &str, default: bool) -> Result<bool, ProtocolError> {
        match self.get(name) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
            Some(_) => Err(self.invalid(name, "boolean")),
        }
    }

    pub fn correlation_id(&self) -> Option<&str> {
        self.string_header(names::CORRELATION_ID).ok().flatten()
    }

    pub fn content_type(&self) -> Option<&str> {
        self.string_header(names::CONTENT_TYPE).ok().flatten()
    }

    pub fn ditto_originator(&self) -> Option<&str> {
        self.string_header(names::DITTO_ORIGINATOR).ok().flatten()
    }

    /// `timeout`: `42s`, `250ms`, `1m` or a bare number of seconds; 60 s when absent.
    pub fn timeout(&self) -> Result<Duration, ProtocolError> {
        match self.get_str(names::TIMEOUT) {
            None => Ok(DEFAULT_TIMEOUT),
            Some(v) => parse_timeout(&v).ok_or_else(|| self.invalid(names::TIMEOUT, "duration")),
        }
    }

    /// `response-required`, true when absent.
    pub fn response_required(&self) -> Result<bool, ProtocolError> {
        self.bool_header(names::RESPONSE_REQUIRED, true)
    }

    /// `ditto-weak-ack`, false when absent.
    pub fn ditto_weak_ack(&self) -> Result<bool, ProtocolError> {
        self.bool_header(names::DITTO_WEAK_ACK, false)
    }

    /// `requested-acks`: `None` when absent (the caller applies the default `twin-persisted`),
    /// else the labels. A JSON array, a string holding one, or a comma-separated list (HTTP).
    pub fn requested_acks(&self) -> Result<Option<Vec<AckLabel>>, ProtocolError> {
        let labels: Vec<String> = match self.get(names::REQUESTED_ACKS) {
            None => return Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| self.invalid(names::REQUESTED_ACKS, "JSON array of strings"))?,
            Some(Value::String(s)) if s.trim_start().starts_with('[') => serde_json::from_str(s)
                .map_err(|_| self.invalid(names::REQUESTED_ACKS, "JSON array of strings"))?,
            Some(Value::String(s)) => s
                .split(',')
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            Some(_) => return Err(self.invalid(names::REQUESTED_ACKS, "JSON array of strings")),
        };
        labels
            .iter()
            .map(|l| AckLabel::parse(l))
            .collect::<Result<_, _>>()
            .map(Some)
    }

    pub fn if_match(&self) -> Result<Option<EntityTagMatchers>, ProtocolError> {
        self.entity_tag_header(names::IF_MATCH)
    }

    pub fn if_none_match(&self) -> Result<Option<EntityTagMatchers>, ProtocolError> {
        self.entity_tag_header(names::IF_NONE_MATCH)
    }

    fn entity_tag_header(&self, name: &str) -> Result<Option<EntityTagMatchers>, ProtocolError> {
        match self.string_header(name)? {
            None => Ok(None),
            Some(v) => EntityTagMatchers::parse(v)
                .map(Some)
                .ok_or_else(|| self.invalid(name, "entity-tag")),
        }
    }

    /// `if-equal`, `update` when absent.
    pub fn if_equal(&self) -> Result<IfEqual, ProtocolError> {
        match self.string_header(names::IF_EQUAL)? {
            None => Ok(IfEqual::Update),
            Some(v) if v.eq_ignore_ascii_case("update") => Ok(IfEqual::Update),
            Some(v) if v.eq_ignore_ascii_case("skip") => Ok(IfEqual::Skip),
            Some(v) if v.eq_ignore_ascii_case("skip-minimizing-merge") => {
                Ok(IfEqual::SkipMinimizingMerge)
            }
            Some(_) => Err(self.invalid(
                names::IF_EQUAL,
                "if-equal option (update, skip, skip-minimizing-merge)",
            )),
        }
    }

    /// `condition`: an RQL expression, parsed by the engine.
    pub fn condition(&self) -> Result<Option<&str>, ProtocolError> {
        self.string_header(names::CONDITION)
    }

    pub fn live_channel_condition(&self) -> Result<Option<&str>, ProtocolError> {
        self.string_header(names::LIVE_CHANNEL_CONDITION)
    }

    /// `live-channel-timeout-strategy`, `fail` when absent.
    pub fn live_channel_timeout_strategy(
        &self,
    ) -> Result<LiveChannelTimeoutStrategy, ProtocolError> {
        match self.string_header(names::LIVE_CHANNEL_TIMEOUT_STRATEGY)? {
            None | Some("fail") => Ok(LiveChannelTimeoutStrategy::Fail),
            Some("use-twin") => Ok(LiveChannelTimeoutStrategy::UseTwin),
            Some(_) => Err(self.invalid(
                names::LIVE_CHANNEL_TIMEOUT_STRATEGY,
                "timeout strategy (fail, use-twin)",
            )),
        }
    }

    /// `at-historical-revision`: a revision number.
    pub fn at_historical_revision(&self) -> Result<Option<u64>, ProtocolError> {
        match self.get(names::AT_HISTORICAL_REVISION) {
            None => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(Some)
                .ok_or_else(|| self.invalid(names::AT_HISTORICAL_REVISION, "long")),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| self.invalid(names::AT_HISTORICAL_REVISION, "long")),
            Some(_) => Err(self.invalid(names::AT_HISTORICAL_REVISION, "long")),
        }
    }

    /// `at-historical-timestamp`: an ISO-8601 instant.
    pub fn at_historical_timestamp(&self) -> Result<Option<&str>, ProtocolError> {
        match self.string_header(names::AT_HISTORICAL_TIMESTAMP)? {
            Some(ts) if !is_iso8601_instant(ts) => {
                Err(self.invalid(names::AT_HISTORICAL_TIMESTAMP, "ISO-8601 timestamp"))
            }
            other => Ok(other),
        }
    }

    /// `historical-headers`: the persisted headers of a historical request, a JSON object.
    pub fn historical_headers(&self) -> Result<Option<&Map<String, Value>>, ProtocolError> {
        match self.get(names::HISTORICAL_HEADERS) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o)),
            Some(_) => Err(self.invalid(names::HISTORICAL_HEADERS, "JSON object")),
        }
    }

    /// `put-metadata`: a JSON array of `{"key": ..., "value": ...}` objects (or a string holding one).
    pub fn put_metadata(&self) -> Result<Option<Vec<Value>>, ProtocolError> {
        let items = match self.get(names::PUT_METADATA) {
            None => return Ok(None),
            Some(Value::Array(a)) => a.clone(),
            Some(Value::String(s)) => serde_json::from_str::<Vec<Value>>(s)
                .map_err(|_| self.invalid(names::PUT_METADATA, "JSON array of objects"))?,
            Some(_) => return Err(self.invalid(names::PUT_METADATA, "JSON array of objects")),
        };
        let well_formed = items.iter().all(|i| {
            i.as_object().is_some_and(|o| {
                o.get("key").is_some_and(Value::is_string) && o.contains_key("value")
            })
        });
        if well_formed {
            Ok(Some(items))
        } else {
            Err(self.invalid(
                names::PUT_METADATA,
                "JSON array of objects with key and value",
            ))
        }
    }

    /// `get-metadata`: comma-separated metadata paths.
    pub fn get_metadata(&self) -> Result<Option<Vec<&str>>, ProtocolError> {
        Ok(self.string_header(names::GET_METADATA)?.map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect()
        }))
    }

    /// `version`: the schema version; only 2 is served, 2 when absent.
    pub fn version(&self) -> Result<u8, ProtocolError> {
        match self.get_str(names::VERSION) {
            None => Ok(2),
            Some(v) if v.trim() == "2" => Ok(2),
            Some(_) => Err(self.invalid(names::VERSION, "schema version (2)")),
        }
    }

    /// Checks every predefined header that is present, so a bad one is refused on arrival rather
    /// than when some later stage first reads it.
    pub fn validate(&self) -> Result<(), ProtocolError> {
        self.string_header(names::CORRELATION_ID)?;
        self.string_header(names::CONTENT_TYPE)?;
        self.timeout()?;
        self.response_required()?;
        self.ditto_weak_ack()?;
        self.requested_acks()?;
        self.if_match()?;
        self.if_none_match()?;
        self.if_equal()?;
        self.condition()?;
        self.live_channel_condition()?;
        self.live_channel_timeout_strategy()?;
        self.at_historical_revision()?;
        self.at_historical_timestamp()?;
        self.historical_headers()?;
        self.put_metadata()?;
        self.get_metadata()?;
        self.version()?;
        Ok(())
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Headers {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        let mut h = Headers::new();
        for (k, v) in iter {
            h.insert(k, v);
        }
        h
    }
}

/// Parses `42s`, `250ms`, `1m` or `60` (seconds).
pub fn parse_timeout(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => s.split_at(i),
        None => (s, "s"),
    };
    if digits.is_empty() || digits.len() > 12 {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        _ => None,
    }
}

/// Formats a timeout the way Ditto writes it: whole seconds as `Ns`, else `Nms`.
pub fn format_timeout(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// An RFC 3339 / ISO-8601 instant: `2021-03-03T16:05:55Z`, with optional fraction and offset.
pub fn is_iso8601_instant(s: &str) -> bool {
    let b = s.as_bytes();
    let digits =
        |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    let number = |r: std::ops::Range<usize>| -> u32 {
        b.get(r).map_or(0, |d| {
            d.iter().fold(0, |acc, x| acc * 10 + u32::from(x - b'0'))
        })
    };
    if !(digits(0..4)
        && b.get(4) == Some(&b'-')
        && digits(5..7)
        && b.get(7) == Some(&b'-')
        && digits(8..10))
    {
        return false;
    }
    if !(matches!(b.get(10), Some(b'T' | b't'))
        && digits(11..13)
        && b.get(13) == Some(&b':')
        && digits(14..16))
    {
        return false;
    }
    let (month, day, hour, minute) = (number(5..7), number(8..10), number(11..13), number(14..16));
    if !((1..=12).contains(&month) && (1..=31).contains(&day) && hour < 24 && minute < 60) {
        return false;
    }
    let mut i = 16;
    if b.get(i) == Some(&b':') {
        if !digits(i + 1..i + 3) || number(i + 1..i + 3) > 60 {
            return false;
        }
        i += 3;
        if b.get(i) == Some(&b'.') {
            let start = i + 1;
            i = start;
            while b.get(i).is_some_and(u8::is_ascii_digit) {
                i += 1;
            }
            if i == start {
                return false;
            }
        }
    }
    match b.get(i) {
        Some(b'Z' | b'z') => i + 1 == b.len(),
        Some(b'+' | b'-') => {
            digits(i + 1..i + 3)
                && b.get(i + 3) == Some(&b':')
                && digits(i + 4..i + 6)
                && i + 6 == b.len()
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(v: Value) -> Headers {
        Headers::from_json(&v).unwrap()
    }

    #[test]
    fn lookup_is_case_insensitive_and_keeps_spelling_and_order() {
        let mut h =
            headers(json!({"Correlation-ID": "c1", "X-Custom": "a", "content-type": "text/plain"}));
        assert_eq!(h.correlation_id(), Some("c1"));
        assert_eq!(h.get_str("x-custom").as_deref(), Some("a"));
        h.insert("CORRELATION-id", "c2");
        assert_eq!(
            h.to_json().to_string(),
            r#"{"Correlation-ID":"c2","X-Custom":"a","content-type":"text/plain"}"#
        );
        assert_eq!(h.remove("X-CUSTOM"), Some(json!("a")));
        assert_eq!(h.len(), 2);
    }

    #[test]
    fn timeouts() {
        assert_eq!(Headers::new().timeout().unwrap(), Duration::from_secs(60));
        for (s, d) in [
            ("42s", 42_000),
            ("250ms", 250),
            ("1m", 60_000),
            ("60", 60_000),
        ] {
            assert_eq!(
                headers(json!({"timeout": s})).timeout().unwrap(),
                Duration::from_millis(d),
                "{s}"
            );
        }
        for bad in ["", "s", "1h", "-1s", "1.5s", "99999999999999999999"] {
            let e = headers(json!({"timeout": bad})).timeout().unwrap_err();
            assert_eq!(e.code(), "header.invalid", "{bad}");
        }
        assert_eq!(format_timeout(Duration::from_millis(250)), "250ms");
        assert_eq!(format_timeout(Duration::from_secs(60)), "60s");
    }

    #[test]
    fn booleans_and_acks() {
        let h = headers(
            json!({"response-required": false, "requested-acks": ["twin-persisted", "custom-ack"]}),
        );
        assert!(!h.response_required().unwrap());
        assert_eq!(h.requested_acks().unwrap().unwrap().len(), 2);
        let h = headers(
            json!({"response-required": "TRUE", "requested-acks": "twin-persisted, live-response"}),
        );
        assert!(h.response_required().unwrap());
        assert_eq!(
            h.requested_acks().unwrap().unwrap()[1].as_str(),
            "live-response"
        );
        let h = headers(json!({"requested-acks": "[\"twin-persisted\"]"}));
        assert_eq!(h.requested_acks().unwrap().unwrap().len(), 1);
        assert_eq!(
            headers(json!({"requested-acks": ["ab"]}))
                .requested_acks()
                .unwrap_err()
                .code(),
            "acknowledgement:label.invalid"
        );
        assert_eq!(
            headers(json!({"response-required": "yes"}))
                .response_required()
                .unwrap_err()
                .code(),
            "header.invalid"
        );
        assert!(!Headers::new().ditto_weak_ack().unwrap());
    }

    #[test]
    fn conditional_headers() {
        let h = headers(
            json!({"If-Match": "\"rev:1\", W/\"rev:2\"", "if-none-match": "*", "if-equal": "skip"}),
        );
        let EntityTagMatchers::Tags(tags) = h.if_match().unwrap().unwrap() else {
            panic!("tags")
        };
        assert_eq!(
            tags,
            vec![
                EntityTag {
                    weak: false,
                    opaque: "rev:1".into()
                },
                EntityTag {
                    weak: true,
                    opaque: "rev:2".into()
                }
            ]
        );
        assert_eq!(h.if_none_match().unwrap(), Some(EntityTagMatchers::Any));
        assert_eq!(h.if_equal().unwrap(), IfEqual::Skip);
        assert!(headers(json!({"if-match": "rev:1"})).if_match().is_err());
        assert!(headers(json!({"if-equal": "maybe"})).if_equal().is_err());
    }

    #[test]
    fn live_and_history_headers() {
        let h = headers(json!({
            "live-channel-timeout-strategy": "use-twin",
            "at-historical-revision": 42,
            "at-historical-timestamp": "2022-10-24T03:11:15.123Z",
            "historical-headers": {"foo": "bar"},
            "put-metadata": [{"key": "/attributes/x/unit", "value": "C"}],
            "version": 2
        }));
        assert_eq!(
            h.live_channel_timeout_strategy().unwrap(),
            LiveChannelTimeoutStrategy::UseTwin
        );
        assert_eq!(h.at_historical_revision().unwrap(), Some(42));
        assert!(h.at_historical_timestamp().unwrap().is_some());
        assert!(h.historical_headers().unwrap().is_some());
        assert_eq!(h.put_metadata().unwrap().unwrap().len(), 1);
        h.validate().unwrap();
        assert!(headers(json!({"at-historical-timestamp": "yesterday"}))
            .validate()
            .is_err());
        assert!(headers(json!({"put-metadata": [{"value": 1}]}))
            .validate()
            .is_err());
        assert!(headers(json!({"version": 1})).validate().is_err());
    }

    #[test]
    fn internal_headers_never_leave() {
        let mut h = headers(json!({
            "correlation-id": "c", "channel": "live", "Ditto-Auth-Context": "x", "ditto-originator": "nginx:me",
            "raw-request-url": "u", "read-subjects": [], "subject": "s", "timeout-access": "t", "my-app-header": 1
        }));
        let mut delivered = h.clone();
        delivered.strip_internal_for_delivery();
        assert_eq!(
            delivered.to_json(),
            json!({"correlation-id": "c", "ditto-originator": "nginx:me", "my-app-header": 1})
        );
        h.strip_internal_from_client();
        assert_eq!(
            h.to_json(),
            json!({"correlation-id": "c", "my-app-header": 1})
        );
    }

    #[test]
    fn iso8601() {
        for ok in [
            "2021-03-03T16:05:55Z",
            "2021-03-03T16:05:55.123456Z",
            "2021-03-03T16:05Z",
            "2021-03-03T16:05:55+01:00",
        ] {
            assert!(is_iso8601_instant(ok), "{ok}");
        }
        for bad in [
            "",
            "2021-03-03",
            "2021-13-03T16:05:55Z",
            "2021-03-03T16:05:55",
            "2021-03-03T16:05:55.Z",
            "x",
        ] {
            assert!(!is_iso8601_instant(bad), "{bad}");
        }
    }
}
