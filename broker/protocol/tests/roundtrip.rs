//! Property tests: whatever the protocol model can hold is formatted and read back unchanged
//! (topics, headers, JSON pointers, envelopes), and no input, however malformed, makes a parser
//! panic.

use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{select, Index};
use proptest::test_runner::Config;
use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::time::Duration;
use twinwire_protocol::headers::{format_timeout, names, parse_timeout};
use twinwire_protocol::id::MAX_ID_LENGTH;
use twinwire_protocol::topic::{CommandAction, EventAction, SearchAction, StreamingAction};
use twinwire_protocol::{
    AckLabel, Channel, Criterion, Envelope, Group, Headers, JsonPointer, ProtocolError, Topic,
};

/// Enough cases to be meaningful, few enough for CI on two cores. No regression files are
/// written next to the sources; a failure prints its minimal input.
fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

// The composite strategies (topic, headers, pointer, JSON values, envelope, ...) return
// `BoxedStrategy`: unboxed, their value trees nest so deeply that generating the envelope-like
// inputs overflowed the 2 MiB stack of a test thread in debug builds.

/// `parse_timeout` reads at most 12 digits, so timeouts are generated below 10^12 of the unit
/// `format_timeout` writes them in (about 31 years in milliseconds).
const TIMEOUT_DIGITS_BOUND: u64 = 1_000_000_000_000;

// ---------------------------------------------------------------------------------------------
// Identifiers and topics
// ---------------------------------------------------------------------------------------------

/// A namespace as Ditto's `[a-zA-Z]\w*([.-][a-zA-Z]\w*)*`, empty, or the wildcard `_`.
fn namespace() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just(String::new()),
        1 => Just("_".to_owned()),
        6 => "[a-zA-Z][a-zA-Z0-9_]{0,8}([.-][a-zA-Z][a-zA-Z0-9_]{0,8}){0,3}",
    ]
}

/// A character an entity name may hold: printable ASCII but `/`, or anything above U+00FF.
fn name_char() -> impl Strategy<Value = char> {
    prop_oneof![
        1 => proptest::char::range(' ', '.'),
        2 => proptest::char::range('0', '~'),
        1 => select(vec![' ', ':', '%', '€', '~', '_', '"', '\\']),
        1 => proptest::char::range('\u{100}', char::MAX),
    ]
}

/// A name: usually short, sometimes long enough to reach the ID length bound.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => vec(name_char(), 1..24),
        1 => vec(name_char(), 200..=MAX_ID_LENGTH),
    ]
    .prop_map(|chars| chars.into_iter().collect())
}

/// A namespace and name whose `namespace:name` is at most [`MAX_ID_LENGTH`] characters.
fn entity() -> impl Strategy<Value = (String, String)> {
    (namespace(), name()).prop_map(|(ns, name)| {
        let room = MAX_ID_LENGTH - ns.chars().count() - 1;
        let name = name.chars().take(room).collect();
        (ns, name)
    })
}

fn connection_id() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_:-]{1,100}"
}

fn ack_label() -> impl Strategy<Value = String> {
    "[a-zA-Z0-9_:-]{3,100}"
}

/// An RFC 3986 message subject: URI characters, slashes among them, and `%XX` escapes.
fn subject() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        6 => "[a-zA-Z0-9]{1,6}",
        3 => Just("/".to_owned()),
        3 => select("-._~:?#[]@!$&'()*+,;=".chars().collect::<Vec<_>>()).prop_map(String::from),
        2 => "%[0-9a-fA-F]{2}",
    ];
    vec(piece, 1..8).prop_map(|pieces| pieces.concat())
}

/// An announcement name: the documented ones, or anything without a slash.
fn announcement_name() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec!["subjectDeletion", "opened", "closed"]).prop_map(String::from),
        "[^/]{1,20}",
    ]
}

fn twin_or_live() -> impl Strategy<Value = Channel> {
    select(vec![Channel::Twin, Channel::Live])
}

fn command_action() -> impl Strategy<Value = CommandAction> {
    select(CommandAction::ALL.to_vec())
}

fn event_action() -> impl Strategy<Value = EventAction> {
    select(EventAction::ALL.to_vec())
}

fn label(s: &str) -> AckLabel {
    AckLabel::parse(s).expect("generated ack labels are valid")
}

/// Channel and criterion of a `things` topic, every combination `Topic::check_form` allows.
fn thing_channel_and_criterion() -> impl Strategy<Value = (Channel, Criterion)> {
    prop_oneof![
        (twin_or_live(), command_action()).prop_map(|(c, a)| (c, Criterion::Commands(a))),
        (twin_or_live(), event_action()).prop_map(|(c, a)| (c, Criterion::Events(a))),
        twin_or_live().prop_map(|c| (c, Criterion::Errors)),
        (twin_or_live(), option::of(ack_label()))
            .prop_map(|(c, l)| (c, Criterion::Acks(l.as_deref().map(label)))),
        (
            select(vec![Channel::Twin, Channel::None]),
            select(SearchAction::ALL.to_vec())
        )
            .prop_map(|(c, a)| (c, Criterion::Search(a))),
        select(StreamingAction::ALL.to_vec())
            .prop_map(|a| (Channel::Twin, Criterion::Streaming(a))),
        subject().prop_map(|s| (Channel::Live, Criterion::Messages(s))),
    ]
}

fn policy_criterion() -> impl Strategy<Value = Criterion> {
    prop_oneof![
        command_action().prop_map(Criterion::Commands),
        event_action().prop_map(Criterion::Events),
        Just(Criterion::Errors),
        announcement_name().prop_map(Criterion::Announcements),
    ]
}

fn connection_criterion() -> impl Strategy<Value = Criterion> {
    prop_oneof![
        announcement_name().prop_map(Criterion::Announcements),
        Just(Criterion::Errors),
    ]
}

/// Any valid topic of any group.
fn topic() -> BoxedStrategy<Topic> {
    prop_oneof![
        5 => (entity(), thing_channel_and_criterion()).prop_map(
            |((namespace, name), (channel, criterion))| Topic {
                namespace,
                name,
                group: Group::Things,
                channel,
                criterion,
            }
        ),
        2 => (entity(), policy_criterion()).prop_map(|((namespace, name), criterion)| Topic {
            namespace,
            name,
            group: Group::Policies,
            channel: Channel::None,
            criterion,
        }),
        1 => (connection_id(), connection_criterion()).prop_map(|(name, criterion)| Topic {
            namespace: "_".to_owned(),
            name,
            group: Group::Connections,
            channel: Channel::None,
            criterion,
        }),
    ]
    .boxed()
}

/// Pieces from which near-topics are assembled.
fn topic_token() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => select(vec![
            "", "_", "ns", "org.eclipse.ditto", "1ns", "a..b", "things", "policies",
            "connections", "twin", "live", "none", "commands", "events", "errors", "acks",
            "search", "streaming", "messages", "announcements", "modify", "created", "merge",
            "subscribe", "error", "request", "opened", "subjectDeletion", "abc", "ab", "a b",
            "%2", "%20", "€", "ä", "\u{1}", "\u{7f}", ":", "~",
        ])
        .prop_map(String::from),
        1 => "[a-z_:%-]{0,6}",
        1 => "x{250,260}",
    ]
}

#[derive(Debug, Clone)]
enum Edit {
    Remove,
    Insert(char),
    Truncate,
}

fn edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        Just(Edit::Remove),
        select(vec!['/', '_', 'a', ' ', '%', '~', '\0', 'ä', '€', ':']).prop_map(Edit::Insert),
        Just(Edit::Truncate),
    ]
}

/// `s` with each edit applied at its (char) position.
fn mutate(s: &str, edits: &[(Index, Edit)]) -> String {
    let mut chars: Vec<char> = s.chars().collect();
    for (at, edit) in edits {
        let i = at.index(chars.len() + 1);
        match edit {
            Edit::Remove if i < chars.len() => {
                chars.remove(i);
            }
            Edit::Remove => {}
            Edit::Insert(c) => chars.insert(i, *c),
            Edit::Truncate => chars.truncate(i),
        }
    }
    chars.into_iter().collect()
}

/// Strings that are sometimes topics: arbitrary text, tokens joined by slashes, and valid
/// topics with a few characters removed, inserted or cut off.
fn topic_like_string() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        vec(topic_token(), 0..9).prop_map(|tokens| tokens.join("/")),
        (topic(), vec((any::<Index>(), edit()), 1..4))
            .prop_map(|(t, edits)| mutate(&t.to_string(), &edits)),
    ]
}

// ---------------------------------------------------------------------------------------------
// JSON values and headers
// ---------------------------------------------------------------------------------------------

/// A finite float of at most 13 significant digits (a multiple of 1/8). The workspace builds
/// serde_json without its `float_roundtrip` feature, whose default parser reads some longer
/// floats back one ULP off (`900725.2919921875` as `900725.2919921876`); with that feature
/// enabled this can be any finite `f64`.
fn exact_float() -> impl Strategy<Value = f64> {
    any::<i32>().prop_map(|n| f64::from(n) / 8.0)
}

fn json_leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        exact_float().prop_map(Value::from),
        any::<String>().prop_map(Value::from),
    ]
}

fn json_value() -> BoxedStrategy<Value> {
    json_leaf()
        .prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                vec(inner.clone(), 0..4).prop_map(Value::Array),
                vec((any::<String>(), inner), 0..4)
                    .prop_map(|entries| Value::Object(entries.into_iter().collect())),
            ]
        })
        .boxed()
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    vec((any::<String>(), json_value()), 0..4).prop_map(|entries| entries.into_iter().collect())
}

/// `name` with the case of its ASCII letters flipped where `bits` has a one.
fn recase(name: &str, bits: u64) -> String {
    name.chars()
        .enumerate()
        .map(|(i, c)| {
            if (bits >> (i % 64)) & 1 == 1 {
                if c.is_ascii_uppercase() {
                    c.to_ascii_lowercase()
                } else {
                    c.to_ascii_uppercase()
                }
            } else {
                c
            }
        })
        .collect()
}

const PREDEFINED: [&str; 24] = [
    names::CONTENT_TYPE,
    names::CORRELATION_ID,
    names::DITTO_ORIGINATOR,
    names::IF_MATCH,
    names::IF_NONE_MATCH,
    names::IF_EQUAL,
    names::RESPONSE_REQUIRED,
    names::REQUESTED_ACKS,
    names::DITTO_WEAK_ACK,
    names::TIMEOUT,
    names::VERSION,
    names::PUT_METADATA,
    names::GET_METADATA,
    names::DELETE_METADATA,
    names::DITTO_METADATA,
    names::CONDITION,
    names::LIVE_CHANNEL_CONDITION,
    names::LIVE_CHANNEL_TIMEOUT_STRATEGY,
    names::AT_HISTORICAL_REVISION,
    names::AT_HISTORICAL_TIMESTAMP,
    names::HISTORICAL_HEADERS,
    names::ETAG,
    names::CHANNEL,
    names::SUBJECT,
];

/// A header name in random case (`Correlation-ID`, `correlation-id`), predefined or not.
fn header_name() -> impl Strategy<Value = String> {
    prop_oneof![
        (select(PREDEFINED.to_vec()), any::<u64>()).prop_map(|(n, bits)| recase(n, bits)),
        "[a-zA-Z][a-zA-Z0-9-]{0,20}",
        "[a-zA-Z0-9_.:€ä -]{1,12}",
    ]
}

/// A header value: a string, boolean, number, array or object.
fn header_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        4 => any::<String>().prop_map(Value::from),
        1 => any::<bool>().prop_map(Value::from),
        1 => any::<i64>().prop_map(Value::from),
        1 => exact_float().prop_map(Value::from),
        1 => vec(json_leaf(), 0..4).prop_map(Value::Array),
        1 => json_object().prop_map(Value::Object),
    ]
}

/// Keeps the first of names that are equal case-insensitively.
fn unique_names(entries: Vec<(String, Value)>) -> Vec<(String, Value)> {
    let mut seen = HashSet::new();
    entries
        .into_iter()
        .filter(|(name, _)| seen.insert(name.to_ascii_lowercase()))
        .collect()
}

fn header_entries() -> impl Strategy<Value = Vec<(String, Value)>> {
    vec((header_name(), header_value()), 0..10).prop_map(unique_names)
}

fn timeout_duration() -> impl Strategy<Value = Duration> {
    prop_oneof![
        (0..TIMEOUT_DIGITS_BOUND).prop_map(Duration::from_millis),
        (0..TIMEOUT_DIGITS_BOUND).prop_map(Duration::from_secs),
        (0u64..100_000).prop_map(Duration::from_millis),
    ]
}

/// `*`, or a list of strong and weak entity tags.
fn entity_tags() -> impl Strategy<Value = String> {
    let tag = (any::<bool>(), "[a-zA-Z0-9:-]{0,10}").prop_map(|(weak, opaque)| {
        if weak {
            format!("W/\"{opaque}\"")
        } else {
            format!("\"{opaque}\"")
        }
    });
    prop_oneof![
        1 => Just("*".to_owned()),
        3 => vec(tag, 1..4).prop_map(|tags| tags.join(", ")),
    ]
}

/// An ISO-8601 instant as `is_iso8601_instant` accepts it: `2021-03-03T16:05:55.123Z`, with
/// optional seconds and fraction, `T` or `t`, and `Z`, `z` or an offset.
fn timestamp() -> BoxedStrategy<String> {
    let zone = prop_oneof![
        Just("Z".to_owned()),
        Just("z".to_owned()),
        "[+-](0[0-9]|1[0-4]):[0-5][0-9]",
    ];
    let seconds = option::of((0u32..=60, option::of("[0-9]{1,9}"))).prop_map(|s| match s {
        None => String::new(),
        Some((ss, None)) => format!(":{ss:02}"),
        Some((ss, Some(fraction))) => format!(":{ss:02}.{fraction}"),
    });
    (
        (0u32..10_000, 1u32..=12, 1u32..=31),
        select(vec!['T', 't']),
        (0u32..24, 0u32..60),
        seconds,
        zone,
    )
        .prop_map(|((y, mo, d), t, (h, mi), seconds, zone)| {
            format!("{y:04}-{mo:02}-{d:02}{t}{h:02}:{mi:02}{seconds}{zone}")
        })
        .boxed()
}

/// A predefined header with a value its typed accessor accepts.
fn predefined_header() -> BoxedStrategy<(&'static str, Value)> {
    prop_oneof![
        any::<String>().prop_map(|s| (names::CORRELATION_ID, Value::from(s))),
        "[a-z]{1,11}/[a-z0-9+.-]{1,20}".prop_map(|s| (names::CONTENT_TYPE, Value::from(s))),
        timeout_duration().prop_map(|d| (names::TIMEOUT, Value::from(format_timeout(d)))),
        any::<bool>().prop_map(|b| (names::RESPONSE_REQUIRED, Value::from(b))),
        select(vec!["true", "TRUE", "False", "false"])
            .prop_map(|b| (names::RESPONSE_REQUIRED, Value::from(b))),
        any::<bool>().prop_map(|b| (names::DITTO_WEAK_ACK, Value::from(b))),
        vec(ack_label(), 0..4).prop_map(|l| (names::REQUESTED_ACKS, Value::from(l))),
        vec(ack_label(), 0..4).prop_map(|l| (names::REQUESTED_ACKS, Value::from(l.join(", ")))),
        entity_tags().prop_map(|t| (names::IF_MATCH, Value::from(t))),
        entity_tags().prop_map(|t| (names::IF_NONE_MATCH, Value::from(t))),
        select(vec!["update", "skip", "skip-minimizing-merge", "SKIP"])
            .prop_map(|v| (names::IF_EQUAL, Value::from(v))),
        any::<String>().prop_map(|s| (names::CONDITION, Value::from(s))),
        any::<String>().prop_map(|s| (names::LIVE_CHANNEL_CONDITION, Value::from(s))),
        select(vec!["fail", "use-twin"])
            .prop_map(|v| (names::LIVE_CHANNEL_TIMEOUT_STRATEGY, Value::from(v))),
        any::<u64>().prop_map(|r| (names::AT_HISTORICAL_REVISION, Value::from(r))),
        any::<u64>().prop_map(|r| (names::AT_HISTORICAL_REVISION, Value::from(r.to_string()))),
        timestamp().prop_map(|t| (names::AT_HISTORICAL_TIMESTAMP, Value::from(t))),
        json_object().prop_map(|o| (names::HISTORICAL_HEADERS, Value::Object(o))),
        vec((pointer(), json_value()), 0..3).prop_map(|items| {
            let items = items
                .into_iter()
                .map(|(key, value)| json!({"key": key.to_string(), "value": value}))
                .collect();
            (names::PUT_METADATA, Value::Array(items))
        }),
        vec(pointer(), 0..3).prop_map(|ps| {
            let paths: Vec<String> = ps.iter().map(ToString::to_string).collect();
            (names::GET_METADATA, Value::from(paths.join(",")))
        }),
        select(vec![Value::from(2), Value::from("2")]).prop_map(|v| (names::VERSION, v)),
    ]
    .boxed()
}

/// Headers that `Headers::validate` accepts: predefined ones with valid values in random case,
/// and custom `x-` headers with any value.
fn valid_headers() -> BoxedStrategy<Headers> {
    let header = prop_oneof![
        (predefined_header(), any::<u64>()).prop_map(|((n, v), bits)| (recase(n, bits), v)),
        ("[xX]-[a-zA-Z0-9-]{1,16}", header_value()),
    ];
    vec(header, 0..8)
        .prop_map(|entries| unique_names(entries).into_iter().collect())
        .boxed()
}

// ---------------------------------------------------------------------------------------------
// Pointers and envelopes
// ---------------------------------------------------------------------------------------------

/// A non-empty pointer segment, slashes and tildes included.
fn pointer_segment() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z~/01]{1,6}",
        "(?s:.){1,10}",
        select(vec![
            "attributes",
            "features",
            "properties",
            "desiredProperties",
            "definition",
            "policyId",
            "inbox",
            "outbox",
            "messages",
            "entries",
            "subjects",
            "resources",
        ])
        .prop_map(String::from),
    ]
}

fn pointer() -> BoxedStrategy<JsonPointer> {
    vec(pointer_segment(), 0..6)
        .prop_map(JsonPointer::from_segments)
        .boxed()
}

/// A field selector as `check_field_selector` accepts it: comma-separated pointers, each
/// optionally followed by a parenthesised selector, e.g. `thingId,features(f1/properties(a,b))`.
fn field_selector() -> BoxedStrategy<String> {
    const FIELD: &str = "[a-zA-Z_][a-zA-Z0-9_]{0,8}(/[a-zA-Z0-9_]{1,8}){0,2}";
    let item = FIELD.prop_recursive(3, 16, 3, |inner| {
        (FIELD, vec(inner, 1..4)).prop_map(|(name, sub)| format!("{name}({})", sub.join(",")))
    });
    vec(item, 1..4).prop_map(|items| items.join(",")).boxed()
}

fn envelope() -> BoxedStrategy<Envelope> {
    (
        (topic(), valid_headers(), pointer()),
        option::of(json_value()),
        option::of(json_object()),
        option::of(100u16..=599),
        option::of(any::<u64>()),
        option::of(timestamp()),
        option::of(field_selector()),
        option::of(json_object()),
    )
        .prop_map(
            |((topic, headers, path), value, extra, status, revision, timestamp, fields, meta)| {
                let mut env = Envelope::new(topic, headers, path);
                env.value = value;
                env.extra = extra;
                env.status = status;
                env.revision = revision;
                env.timestamp = timestamp;
                env.fields = fields;
                env.metadata = meta;
                env
            },
        )
        .boxed()
}

/// Paths built from the segments `signal()` looks at.
fn signal_path() -> impl Strategy<Value = String> {
    let segment = select(vec![
        "attributes",
        "features",
        "f1",
        "properties",
        "desiredProperties",
        "definition",
        "policyId",
        "inbox",
        "outbox",
        "messages",
        "claim",
        "entries",
        "label",
        "resources",
        "subjects",
        "imports",
        "import",
        "transitiveImports",
        "importable",
        "allowedAdditions",
        "namespaces",
        "references",
        "x",
    ]);
    vec(segment, 0..5).prop_map(|s| JsonPointer::from_segments(s).to_string())
}

/// Values with the fields `signal()` reads, of the right type or not.
fn signal_value() -> BoxedStrategy<Value> {
    let key = select(vec![
        "thingIds",
        "deleteAt",
        "subjectIds",
        "openedAt",
        "closedAt",
        "subscriptionId",
        "demand",
        "items",
        "error",
        "status",
        "message",
        "description",
        "href",
    ]);
    let field = prop_oneof![
        json_leaf(),
        (0u64..700).prop_map(Value::from),
        "[a-z]{0,3}:[a-z/]{0,3}".prop_map(Value::from),
        vec("[a-z.]{0,3}:[a-z/]{0,3}", 0..3).prop_map(Value::from),
        Just(json!({"status": 400, "error": "things:thing.notfound", "message": "m"})),
    ];
    prop_oneof![
        json_value(),
        vec((key, field), 0..5).prop_map(|entries| {
            Value::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (k.to_owned(), v))
                    .collect(),
            )
        }),
    ]
    .boxed()
}

/// Mostly `Some`: for the fields an envelope cannot do without.
fn usually<S: Strategy>(s: S) -> impl Strategy<Value = Option<S::Value>> {
    option::weighted(0.9, s)
}

/// A JSON object around the envelope's fields, each missing, valid, or of a wrong type.
fn envelope_like_json() -> BoxedStrategy<Value> {
    (
        usually(prop_oneof![
            9 => topic().prop_map(|t| Value::from(t.to_string())),
            1 => json_leaf(),
        ]),
        option::of(prop_oneof![
            9 => valid_headers().prop_map(|h| h.to_json()),
            1 => json_value(),
        ]),
        usually(prop_oneof![9 => signal_path().prop_map(Value::from), 1 => json_leaf()]),
        usually(signal_value()),
        option::of(prop_oneof![(0u64..700).prop_map(Value::from), json_leaf()]),
        option::of(prop_oneof![any::<u64>().prop_map(Value::from), json_leaf()]),
        option::of(prop_oneof![timestamp().prop_map(Value::from), json_leaf()]),
        option::of(prop_oneof![
            field_selector().prop_map(Value::from),
            json_leaf()
        ]),
        option::of(json_value()),
    )
        .prop_map(
            |(topic, headers, path, value, status, revision, timestamp, fields, extra)| {
                let fields = [
                    ("topic", topic),
                    ("headers", headers),
                    ("path", path),
                    ("value", value),
                    ("status", status),
                    ("revision", revision),
                    ("timestamp", timestamp),
                    ("fields", fields),
                    ("extra", extra),
                ];
                Value::Object(
                    fields
                        .into_iter()
                        .filter_map(|(k, v)| Some((k.to_owned(), v?)))
                        .collect(),
                )
            },
        )
        .boxed()
}

/// JSON texts that follow JSON's grammar but that serde_json cannot read into a value: lone
/// surrogate escapes, numbers out of range, nesting beyond its recursion limit (128); and, for
/// contrast, nesting just within it.
fn unreadable_json() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            r#""\ud800""#,
            r#""\udc00x""#,
            r#""a\ud800\u0041""#,
            "1e999",
            "-1e400"
        ])
        .prop_map(String::from),
        (100usize..300).prop_map(|n| format!("{}{}", "[".repeat(n), "]".repeat(n))),
    ]
}

/// Envelope-like JSON text with one more field in front: a field it also holds (the last one
/// counts), or an unknown or known field holding JSON serde_json cannot read.
fn prefixed_field_json() -> impl Strategy<Value = Vec<u8>> {
    let repeated = (
        select(vec![
            "topic", "headers", "path", "value", "status", "fields",
        ]),
        json_leaf().prop_map(|v| v.to_string()),
    );
    let unreadable = (select(vec!["x", "_links", "value"]), unreadable_json());
    (envelope_like_json(), prop_oneof![repeated, unreadable]).prop_map(|(v, (field, raw))| {
        let text = v.to_string();
        let rest = &text[1..];
        let separator = if rest == "}" { "" } else { "," };
        format!("{{{}:{raw}{separator}{rest}", Value::from(field)).into_bytes()
    })
}

/// A valid envelope's text with a few bytes overwritten, or cut short.
fn damaged_envelope() -> impl Strategy<Value = Vec<u8>> {
    (
        envelope(),
        vec((any::<Index>(), any::<u8>()), 1..4),
        any::<bool>(),
    )
        .prop_map(|(env, edits, cut)| {
            let mut bytes = env.to_json_string().into_bytes();
            if cut {
                bytes.truncate(edits[0].0.index(bytes.len()));
            } else {
                for (at, byte) in edits {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
            }
            bytes
        })
}

/// Bytes that are sometimes envelopes: arbitrary bytes, JSON that is not an object,
/// envelope-like JSON (some with a field in front), valid envelopes, and damaged ones.
fn envelope_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        2 => vec(any::<u8>(), 0..256),
        1 => json_value().prop_map(|v| v.to_string().into_bytes()),
        6 => envelope_like_json().prop_map(|v| v.to_string().into_bytes()),
        3 => prefixed_field_json(),
        1 => unreadable_json().prop_map(String::into_bytes),
        2 => envelope().prop_map(|env| env.to_json_string().into_bytes()),
        2 => damaged_envelope(),
    ]
}

// ---------------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    /// 1. A valid topic formats to a string that parses back to it, and formats the same again.
    #[test]
    fn topics_round_trip(t in topic()) {
        let s = t.to_string();
        let parsed = Topic::parse(&s);
        prop_assert_eq!(parsed.as_ref(), Ok(&t), "topic {:?}", s);
        prop_assert_eq!(parsed.map(|p| p.to_string()), Ok(s));
    }

    /// IDs one or more characters over the bound are refused.
    #[test]
    fn overlong_ids_are_refused(ns in namespace(), extra in 1usize..40, c in name_char()) {
        let room = MAX_ID_LENGTH - ns.chars().count() - 1;
        let name = c.to_string().repeat(room + extra);
        let s = format!("{ns}/{name}/things/twin/commands/modify");
        prop_assert_eq!(
            Topic::parse(&s).map_err(|e| e.code()),
            Err("things:id.invalid")
        );
    }

    /// No string makes `Topic::parse` panic, and what it accepts formats back to that string.
    #[test]
    fn any_string_parses_without_panic_and_formats_back(s in topic_like_string()) {
        if let Ok(t) = Topic::parse(&s) {
            prop_assert_eq!(t.to_string(), s.clone());
            prop_assert_eq!(Topic::parse(&s), Ok(t));
        }
    }

    /// 2. Headers keep order and spelling through JSON, and are found under any casing.
    #[test]
    fn headers_round_trip(
        entries in header_entries(),
        casings in vec(any::<u64>(), 10),
        probe in header_name(),
    ) {
        let h: Headers = entries.iter().cloned().collect();
        let kept: Vec<(String, Value)> =
            h.iter().map(|(k, v)| (k.to_owned(), v.clone())).collect();
        prop_assert_eq!(&kept, &entries);

        let json = h.to_json();
        let expected: Map<String, Value> = entries.iter().cloned().collect();
        prop_assert_eq!(json.to_string(), Value::Object(expected).to_string());

        let back = Headers::from_json(&json);
        prop_assert_eq!(back.as_ref(), Ok(&h));
        prop_assert_eq!(back.map(|b| b.to_json().to_string()), Ok(json.to_string()));

        let text: Value = serde_json::from_str(&json.to_string()).expect("headers are JSON");
        prop_assert_eq!(Headers::from_json(&text), Ok(h.clone()));

        for ((name, value), bits) in entries.iter().zip(&casings) {
            let spelled = recase(name, *bits);
            prop_assert_eq!(h.get(&spelled), Some(value), "looked up as {:?}", spelled);
            prop_assert!(h.contains(&spelled));
        }
        let present = entries.iter().any(|(n, _)| n.eq_ignore_ascii_case(&probe));
        prop_assert_eq!(h.get(&probe).is_some(), present);
    }

    /// A timeout of whole milliseconds is written and read back exactly.
    #[test]
    fn timeouts_round_trip(d in timeout_duration(), bits in any::<u64>()) {
        let text = format_timeout(d);
        prop_assert_eq!(parse_timeout(&text), Some(d), "{}", text);
        let h: Headers = [(recase(names::TIMEOUT, bits), text)].into_iter().collect();
        prop_assert_eq!(h.timeout(), Ok(d));
    }

    /// Requested acks are read as given, whether a JSON array, a string holding one, or a
    /// comma-separated list.
    #[test]
    fn requested_acks_round_trip(
        labels in vec(ack_label(), 0..6),
        separators in vec(select(vec![",", ", ", " , ", " ,"]), 6),
        bits in any::<u64>(),
    ) {
        let mut comma_separated = String::new();
        for (i, l) in labels.iter().enumerate() {
            if i > 0 {
                comma_separated.push_str(separators[i]);
            }
            comma_separated.push_str(l);
        }
        let json_text = format!(" {}", serde_json::to_string(&labels).expect("labels are JSON"));
        let name = recase(names::REQUESTED_ACKS, bits);
        for form in [Value::from(labels.clone()), Value::from(comma_separated), Value::from(json_text)] {
            let h: Headers = [(name.clone(), form.clone())].into_iter().collect();
            let read = h
                .requested_acks()
                .map(|acks| acks.map(|a| a.iter().map(|l| l.as_str().to_owned()).collect::<Vec<_>>()));
            prop_assert_eq!(read, Ok(Some(labels.clone())), "form {}", form);
            prop_assert_eq!(h.validate(), Ok(()));
        }
    }

    /// 3. A pointer of any non-empty segments formats to a string that parses back to it.
    #[test]
    fn pointers_round_trip(segments in vec(pointer_segment(), 0..6)) {
        let p = JsonPointer::from_segments(segments.clone());
        prop_assert_eq!(p.segments(), &segments[..]);
        let s = p.to_string();
        let parsed = JsonPointer::parse(&s);
        prop_assert_eq!(parsed.as_ref(), Ok(&p), "pointer {:?}", s);
        prop_assert_eq!(parsed.map(|q| q.to_string()), Ok(s));
    }

    /// 4. An envelope is read back from its JSON value and from its JSON text unchanged.
    #[test]
    fn envelopes_round_trip(env in envelope()) {
        prop_assert_eq!(Envelope::from_json(env.to_json()), Ok(env.clone()));
        let text = env.to_json_string();
        let reread = Envelope::from_slice(text.as_bytes());
        prop_assert_eq!(reread.as_ref(), Ok(&env));
        prop_assert_eq!(reread.map(|e| e.to_json_string()), Ok(text));
    }

    /// No bytes make `Envelope::from_slice` or `signal()` panic, and what is accepted is
    /// written and read back as itself.
    #[test]
    fn any_bytes_read_without_panic(bytes in envelope_bytes()) {
        if let Ok(env) = Envelope::from_slice(&bytes) {
            let _ = env.signal();
            prop_assert_eq!(Envelope::from_json(env.to_json()), Ok(env.clone()));
        }
    }

    /// `from_slice` reads the fields straight from the bytes. On bytes serde_json reads into a
    /// JSON value it answers as `from_json` does on that value; bytes serde_json cannot read
    /// (bad escapes, numbers out of range, nesting past the recursion limit) are never
    /// accepted, only refused as invalid JSON or as not an object.
    #[test]
    fn reading_bytes_agrees_with_reading_a_value(bytes in envelope_bytes()) {
        let direct = Envelope::from_slice(&bytes);
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(value) => prop_assert_eq!(direct, Envelope::from_json(value)),
            Err(e) => prop_assert!(
                matches!(direct, Err(ProtocolError::JsonInvalid { .. } | ProtocolError::NotAnObject)),
                "from_slice answered {:?}, though serde_json says: {}",
                direct,
                e
            ),
        }
    }
}
