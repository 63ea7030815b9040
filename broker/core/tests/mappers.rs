//! The built-in payload mappers RawMessage, ImplicitThingCreation, UpdateTwinWithLiveResponse and
//! ConnectionStatus against docs/connectivity-mapping.md and checklist §5.4, through the public
//! API: the documentation's examples, their options and option errors, and the fall-through of
//! RawMessage to the Ditto mapper.

use serde_json::{json, Map, Value};
use twinwire_core::connections::inbound::{mappers, Inbound, InboundSource};
use twinwire_core::connections::mapping::{
    ConnectionStatusMapper, ImplicitThingCreationMapper, Mapper, RawMessageMapper,
    UpdateTwinWithLiveResponseMapper, DITTO_CONTENT_TYPE, MAPPER_CONFIG_INVALID,
};
use twinwire_core::connections::{Connection, ExternalMessage};
use twinwire_core::protocol::{DittoError, Envelope};

const MAPPING_FAILED: &str = "connectivity:message.mapping.failed";

fn options(value: Value) -> Map<String, Value> {
    value.as_object().cloned().expect("options are an object")
}

fn message(payload: &[u8], headers: &[(&str, &str)]) -> ExternalMessage {
    let mut m = ExternalMessage::new("in", payload.to_vec());
    for (k, v) in headers {
        m.set_header(*k, *v);
    }
    m
}

fn one(result: Result<Vec<Envelope>, DittoError>) -> Value {
    let mut signals = result.expect("mapped");
    assert_eq!(signals.len(), 1, "one signal");
    signals.remove(0).to_json()
}

fn mapping_error(result: Result<Vec<Envelope>, DittoError>) -> DittoError {
    let error = result.expect_err("a mapping error");
    assert_eq!(
        (error.status, error.code()),
        (400, MAPPING_FAILED),
        "{error:?}"
    );
    error
}

fn config_error<T>(result: Result<T, DittoError>) -> DittoError {
    let Err(error) = result else {
        panic!("expected a configuration error")
    };
    assert_eq!(
        (error.status, error.code()),
        (400, MAPPER_CONFIG_INVALID),
        "{error:?}"
    );
    error
}

fn is_iso_instant(s: &str) -> bool {
    chrono::DateTime::parse_from_rfc3339(s).is_ok() && s.ends_with('Z')
}

// --- RawMessage ---------------------------------------------------------------------------

/// The documentation's heatUp response, as Ditto Protocol.
fn heat_up() -> Value {
    json!({
        "topic": "org.eclipse.ditto/smartcoffee/things/live/messages/heatUp",
        "headers": {"content-type": "application/octet-stream"},
        "path": "/features/water-tank/inbox/messages/heatUp",
        "value": "AQIDBAUG",
        "status": 200
    })
}

/// The documentation's transport headers of the heatUp example.
const HEAT_UP_HEADERS: [(&str, &str); 6] = [
    ("content-type", "application/octet-stream"),
    ("status", "200"),
    ("ditto-message-subject", "heatUp"),
    ("ditto-message-direction", "TO"),
    ("ditto-message-thing-id", "org.eclipse.ditto:smartcoffee"),
    ("ditto-message-feature-id", "water-tank"),
];

#[test]
fn raw_message_heat_up_binary_both_ways() {
    let mapper = RawMessageMapper::default();
    assert_eq!(mapper.alias(), "RawMessage");
    let inbound = message(&[1, 2, 3, 4, 5, 6], &HEAT_UP_HEADERS);
    assert_eq!(one(mapper.inbound(&inbound)), heat_up());

    let out = mapper
        .outbound(&Envelope::from_json(heat_up()).unwrap())
        .unwrap();
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].payload, [1, 2, 3, 4, 5, 6]);
    let headers: Vec<(&str, &str)> = out[0]
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(headers, HEAT_UP_HEADERS);
}

#[test]
fn raw_message_text_and_json_both_ways() {
    let mapper = RawMessageMapper::default();
    // A thing-level message command in text: no feature, no status.
    let text = message(
        "hello wörld".as_bytes(),
        &[
            ("content-type", "text/plain; charset=UTF-8"),
            ("ditto-message-subject", "greet"),
            ("ditto-message-thing-id", "org.eclipse.ditto:smartcoffee"),
        ],
    );
    let signal = one(mapper.inbound(&text));
    assert_eq!(
        signal,
        json!({"topic": "org.eclipse.ditto/smartcoffee/things/live/messages/greet",
               "headers": {"content-type": "text/plain; charset=UTF-8"},
               "path": "/inbox/messages/greet", "value": "hello wörld"})
    );
    let out = mapper
        .outbound(&Envelope::from_json(signal).unwrap())
        .unwrap();
    assert_eq!(out[0].text(), Some("hello wörld"));
    assert_eq!(out[0].content_type(), Some("text/plain; charset=UTF-8"));
    assert_eq!(out[0].header("ditto-message-direction"), Some("TO"));
    assert_eq!(out[0].header("status"), None);
    assert_eq!(out[0].header("ditto-message-feature-id"), None);

    // JSON is parsed inbound and written as JSON text outbound; FROM is the outbox.
    let json_message = message(
        br#"{"temperature": 90}"#,
        &[
            ("content-type", "application/json"),
            ("ditto-message-subject", "state"),
            ("ditto-message-direction", "FROM"),
            ("ditto-message-thing-id", "org.eclipse.ditto:smartcoffee"),
            ("ditto-message-feature-id", "water-tank"),
        ],
    );
    let signal = one(mapper.inbound(&json_message));
    assert_eq!(signal["path"], "/features/water-tank/outbox/messages/state");
    assert_eq!(signal["value"], json!({"temperature": 90}));
    let out = mapper
        .outbound(&Envelope::from_json(signal).unwrap())
        .unwrap();
    assert_eq!(
        serde_json::from_slice::<Value>(&out[0].payload).unwrap(),
        json!({"temperature": 90})
    );
    assert_eq!(out[0].header("ditto-message-direction"), Some("FROM"));

    // Without a content-type the message is binary (the default template's fallback).
    let bare = message(
        b"\xff\x00",
        &[
            ("ditto-message-subject", "raw"),
            ("ditto-message-thing-id", "a:b"),
        ],
    );
    let signal = one(mapper.inbound(&bare));
    assert_eq!(
        signal["headers"]["content-type"],
        "application/octet-stream"
    );
    assert_eq!(signal["value"], "/wA=");

    // Outbound without a content-type: outgoingContentType, text by default.
    let command = Envelope::from_json(json!({
        "topic": "a/b/things/live/messages/ask", "headers": {"correlation-id": "c-1"},
        "path": "/inbox/messages/ask", "value": {"q": 1}
    }))
    .unwrap();
    let out = mapper.outbound(&command).unwrap();
    assert_eq!(out[0].content_type(), Some("text/plain; charset=UTF-8"));
    assert_eq!(out[0].text(), Some(r#"{"q":1}"#));
    // With a binary outgoingContentType, the value must be base64.
    let binary = RawMessageMapper::from_options(&options(
        json!({"outgoingContentType": "application/octet-stream"}),
    ))
    .unwrap();
    let error = binary.outbound(&command).unwrap_err();
    assert_eq!(error.code(), MAPPING_FAILED);
    let mut base64 = command.clone();
    base64.value = Some(json!("AQID"));
    assert_eq!(binary.outbound(&base64).unwrap()[0].payload, [1, 2, 3]);
    // No value: an empty payload.
    base64.value = None;
    assert!(binary.outbound(&base64).unwrap()[0].payload.is_empty());
}

#[test]
fn raw_message_configured_incoming_headers() {
    // The documentation's example configuration.
    let mapper = RawMessageMapper::from_options(&options(json!({
        "outgoingContentType": "application/octet-stream",
        "incomingMessageHeaders": {
            "content-type": "{{ header:content-type | fn:default('application/octet-stream') }}",
            "status": "{{ header:status }}",
            "ditto-message-subject": "{{ header:ditto-message-subject | fn:default('fallback-subject') }}",
            "ditto-message-direction": "TO",
            "ditto-message-thing-id": "{{ header:ditto-message-thing-id | fn:default('ns:fallback-thing') }}",
            "ditto-message-feature-id": "{{ header:ditto-message-feature-id }}"
        }
    })))
    .unwrap();
    let signal = one(mapper.inbound(&message(&[7], &[])));
    assert_eq!(
        signal,
        json!({"topic": "ns/fallback-thing/things/live/messages/fallback-subject",
               "headers": {"content-type": "application/octet-stream"},
               "path": "/inbox/messages/fallback-subject", "value": "Bw=="})
    );
    // Direction is a constant here: FROM from the transport is ignored.
    let signal = one(mapper.inbound(&message(
        &[7],
        &[("ditto-message-direction", "FROM"), ("status", "204")],
    )));
    assert_eq!(signal["path"], "/inbox/messages/fallback-subject");
    assert_eq!(signal["status"], 204);
    // Configured headers override only what they name: the others keep their defaults.
    let partial = RawMessageMapper::from_options(&options(json!({
        "incomingMessageHeaders": {"ditto-message-thing-id": "org.eclipse.ditto:{{ header:device }}"}
    })))
    .unwrap();
    let signal = one(partial.inbound(&message(
        b"x",
        &[
            ("device", "d1"),
            ("ditto-message-subject", "s"),
            ("content-type", "text/plain"),
        ],
    )));
    assert_eq!(
        signal["topic"],
        "org.eclipse.ditto/d1/things/live/messages/s"
    );
}

#[test]
fn raw_message_inbound_failures() {
    let mapper = RawMessageMapper::default();
    let base = [
        ("ditto-message-subject", "heatUp"),
        ("ditto-message-thing-id", "org.eclipse.ditto:smartcoffee"),
    ];
    let with = |extra: &[(&str, &str)], without: &str| {
        let mut headers: Vec<(&str, &str)> = base
            .iter()
            .copied()
            .filter(|(k, _)| *k != without)
            .collect();
        headers.extend_from_slice(extra);
        mapper.inbound(&message(b"x", &headers))
    };
    mapping_error(with(&[], "ditto-message-subject"));
    mapping_error(with(&[], "ditto-message-thing-id"));
    mapping_error(with(&[("ditto-message-thing-id", "no-namespace")], ""));
    mapping_error(with(&[("ditto-message-direction", "SIDEWAYS")], ""));
    mapping_error(with(&[("ditto-message-subject", "a b")], ""));
    mapping_error(with(&[("status", "twohundred")], ""));
    mapping_error(with(&[("status", "42")], ""));
    mapping_error(with(&[("content-type", "application/json")], ""));
    // A content-type template that does not resolve.
    let strict = RawMessageMapper::from_options(&options(
        json!({"incomingMessageHeaders": {"content-type": "{{ header:content-type }}"}}),
    ))
    .unwrap();
    mapping_error(strict.inbound(&message(b"x", &base)));
    // Hono's notifications are skipped (the default content-type-blocklist).
    let hono = message(
        b"",
        &[(
            "content-type",
            "application/vnd.eclipse-hono-empty-notification",
        )],
    );
    assert!(mapper.inbound(&hono).unwrap().is_empty());
}

#[test]
fn raw_message_falls_through_to_ditto() {
    let mapper = RawMessageMapper::default();
    // Inbound Ditto Protocol content.
    let protocol = json!({"topic": "org.eclipse.ditto/t/things/twin/commands/modify",
                          "headers": {"correlation-id": "c-1"}, "path": "/attributes/a", "value": 1});
    let inbound = message(
        protocol.to_string().as_bytes(),
        &[("content-type", DITTO_CONTENT_TYPE)],
    );
    let signal = one(mapper.inbound(&inbound));
    assert_eq!(signal["topic"], protocol["topic"]);
    assert_eq!(signal["value"], 1);
    // Outbound non-message signals: the Ditto mapper's output.
    let event = Envelope::from_json(
        json!({"topic": "org.eclipse.ditto/t/things/twin/events/modified",
        "headers": {"correlation-id": "c-2"}, "path": "/attributes/a", "value": 2, "revision": 3}),
    )
    .unwrap();
    let out = mapper.outbound(&event).unwrap();
    assert_eq!(out[0].content_type(), Some(DITTO_CONTENT_TYPE));
    assert_eq!(out[0].header("correlation-id"), Some("c-2"));
    let back: Value = serde_json::from_slice(&out[0].payload).unwrap();
    assert_eq!(
        back["topic"],
        "org.eclipse.ditto/t/things/twin/events/modified"
    );
    // A live command that is not a message, too.
    let live = Envelope::from_json(
        json!({"topic": "org.eclipse.ditto/t/things/live/commands/retrieve",
        "headers": {}, "path": "/attributes"}),
    )
    .unwrap();
    assert_eq!(
        mapper.outbound(&live).unwrap()[0].content_type(),
        Some(DITTO_CONTENT_TYPE)
    );
    // A message whose content type is Ditto Protocol.
    let mut protocol_message = Envelope::from_json(heat_up()).unwrap();
    protocol_message
        .headers
        .insert("content-type", DITTO_CONTENT_TYPE);
    let out = mapper.outbound(&protocol_message).unwrap();
    let back: Value = serde_json::from_slice(&out[0].payload).unwrap();
    assert_eq!(back["path"], "/features/water-tank/inbox/messages/heatUp");
}

#[test]
fn raw_message_option_errors() {
    config_error(RawMessageMapper::from_options(&options(
        json!({"outgoingContentTyp": "x"}),
    )));
    config_error(RawMessageMapper::from_options(&options(
        json!({"outgoingContentType": 5}),
    )));
    config_error(RawMessageMapper::from_options(&options(
        json!({"incomingMessageHeaders": "not an object"}),
    )));
    // Only header: placeholders in RawMessage options.
    config_error(RawMessageMapper::from_options(&options(
        json!({"incomingMessageHeaders": {"ditto-message-thing-id": "{{ thing:id }}"}}),
    )));
    config_error(RawMessageMapper::from_options(&options(
        json!({"incomingMessageHeaders": {"ditto-message-subject": "{{ header:a"}}),
    )));
    // The option every mapper knows.
    let open =
        RawMessageMapper::from_options(&options(json!({"content-type-blocklist": ""}))).unwrap();
    let hono = message(
        b"",
        &[
            (
                "content-type",
                "application/vnd.eclipse-hono-empty-notification",
            ),
            ("ditto-message-subject", "s"),
            ("ditto-message-thing-id", "a:b"),
        ],
    );
    let signal = one(open.inbound(&hono));
    assert!(signal.get("value").is_none());
}

// --- ImplicitThingCreation ----------------------------------------------------------------

/// The documentation's example configuration.
fn implicit_options(thing_extra: Value) -> Map<String, Value> {
    let mut thing = json!({
        "thingId": "{{ header:device_id }}",
        "attributes": {"CreatedBy": "ImplicitThingCreation"}
    });
    for (k, v) in thing_extra.as_object().unwrap() {
        thing[k] = v.clone();
    }
    options(json!({
        "thing": thing,
        "commandHeaders": {
            "If-None-Match": "*",
            "correlation-id": "{{ header:correlation-id }}"
        },
        "allowPolicyLockout": true
    }))
}

#[test]
fn implicit_thing_creation_documented_example() {
    let mapper = ImplicitThingCreationMapper::from_options(&implicit_options(json!({
        "_policy": {"entries": {"DEFAULT": {
            "subjects": {"{{ request:subjectId }}": {"type": "creator"}},
            "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []}}
        }}},
        "attributes": {"CreatedBy": "ImplicitThingCreation", "createdAt": "{{ time:now }}",
                       "gateway": "{{ header:gateway_id | fn:default('none') }}"}
    })))
    .unwrap();
    assert_eq!(mapper.alias(), "ImplicitThingCreation");
    let hono = message(
        b"{\"temp\": 1}",
        &[
            ("device_id", "org.eclipse.ditto:device-1"),
            ("correlation-id", "c-42"),
            ("content-type", "application/json"),
        ],
    );
    let signal = one(mapper.inbound_as(&hono, Some("integration:hono")));
    assert_eq!(
        signal["topic"],
        "org.eclipse.ditto/device-1/things/twin/commands/create"
    );
    assert_eq!(signal["path"], "/");
    assert_eq!(
        signal["headers"],
        json!({"If-None-Match": "*", "correlation-id": "c-42", "allow-policy-lockout": true})
    );
    let thing = &signal["value"];
    assert_eq!(thing["thingId"], "org.eclipse.ditto:device-1");
    assert_eq!(thing["attributes"]["CreatedBy"], "ImplicitThingCreation");
    assert_eq!(thing["attributes"]["gateway"], "none");
    assert!(is_iso_instant(
        thing["attributes"]["createdAt"].as_str().unwrap()
    ));
    assert_eq!(
        thing["_policy"]["entries"]["DEFAULT"]["subjects"],
        json!({"integration:hono": {"type": "creator"}})
    );
    // Without a subject, request:subjectId does not resolve: a mapping error.
    mapping_error(mapper.inbound(&hono));
    // A missing header as well.
    mapping_error(mapper.inbound_as(&message(b"", &[]), Some("integration:hono")));
    // A header that resolves to an invalid thing ID.
    mapping_error(mapper.inbound_as(
        &message(b"", &[("device_id", "no-namespace")]),
        Some("integration:hono"),
    ));
}

#[test]
fn implicit_thing_creation_copy_policy_from_and_defaults() {
    let mapper = ImplicitThingCreationMapper::from_options(&options(json!({
        "thing": {
            "thingId": "{{ header:device_id }}",
            "policyId": "{{ header:device_id }}",
            "_copyPolicyFrom": "{{ ref:things/org.eclipse.ditto:template/policyId }}",
            "attributes": {"createdAtMillis": "{{ time:now_epoch_millis }}"}
        }
    })))
    .unwrap();
    let signal = one(mapper.inbound(&message(
        b"",
        &[("device_id", "org.eclipse.ditto:device-2")],
    )));
    // The ref placeholder is kept for the things service.
    assert_eq!(
        signal["value"]["_copyPolicyFrom"],
        "{{ ref:things/org.eclipse.ditto:template/policyId }}"
    );
    assert_eq!(signal["value"]["policyId"], "org.eclipse.ditto:device-2");
    assert!(signal["value"]["attributes"]["createdAtMillis"]
        .as_str()
        .unwrap()
        .parse::<i64>()
        .is_ok());
    // Default command headers, default allowPolicyLockout.
    assert_eq!(
        signal["headers"],
        json!({"if-none-match": "*", "allow-policy-lockout": true})
    );
    // A policy ID given by copy: a plain policy ID is fine too, and lockout can be refused.
    let mapper = ImplicitThingCreationMapper::from_options(&options(json!({
        "thing": {"thingId": "org.eclipse.ditto:fixed", "_copyPolicyFrom": "org.eclipse.ditto:template"},
        "allowPolicyLockout": "false",
        "commandHeaders": {"if-none-match": "{{ header:x | fn:delete() }}", "response-required": false}
    })))
    .unwrap();
    let signal = one(mapper.inbound(&message(b"", &[])));
    assert_eq!(
        signal["value"]["_copyPolicyFrom"],
        "org.eclipse.ditto:template"
    );
    assert_eq!(
        signal["headers"],
        json!({"response-required": "false", "allow-policy-lockout": false})
    );
    // Outbound it maps nothing.
    let event = Envelope::from_json(
        json!({"topic": "a/b/things/twin/events/created", "path": "/", "value": {}}),
    )
    .unwrap();
    assert!(mapper.outbound(&event).unwrap().is_empty());
}

#[test]
fn implicit_thing_creation_option_errors() {
    let bad = |o: Value| config_error(ImplicitThingCreationMapper::from_options(&options(o)));
    bad(json!({}));
    bad(json!({"thing": {"attributes": {}}}));
    bad(json!({"thing": {"thingId": 5}}));
    bad(json!({"thing": {"thingId": "no-namespace"}}));
    bad(json!({"thing": {"thingId": "a:b", "policyId": "no-namespace"}}));
    bad(json!({"thing": "not json"}));
    bad(json!({"thing": {"thingId": "a:b"}, "allowPolicyLockout": "maybe"}));
    bad(json!({"thing": {"thingId": "a:b"}, "commandHeaders": ["x"]}));
    bad(json!({"thing": {"thingId": "a:b"}, "extra": 1}));
    // Placeholders the location does not allow.
    bad(json!({"thing": {"thingId": "{{ thing:id }}"}}));
    bad(json!({"thing": {"thingId": "a:b"}, "commandHeaders": {"x": "{{ connection:id }}"}}));
    // The thing may also be given as a string holding JSON.
    ImplicitThingCreationMapper::from_options(&options(
        json!({"thing": "{\"thingId\": \"{{ header:device_id }}\"}"}),
    ))
    .unwrap();
}

// --- UpdateTwinWithLiveResponse -----------------------------------------------------------

fn live_response(topic: &str, status: Option<u16>) -> ExternalMessage {
    let mut v = json!({"topic": topic, "headers": {"correlation-id": "c-7"},
                       "path": "/attributes", "value": {"location": "kitchen"}});
    if let Some(status) = status {
        v["status"] = json!(status);
    }
    message(
        v.to_string().as_bytes(),
        &[
            ("content-type", DITTO_CONTENT_TYPE),
            ("some-custom-hint", "hint-1"),
        ],
    )
}

#[test]
fn update_twin_with_live_response_merges_a_live_retrieve_response() {
    let mapper = UpdateTwinWithLiveResponseMapper::default();
    assert_eq!(mapper.alias(), "UpdateTwinWithLiveResponse");
    let response = live_response(
        "org.eclipse.ditto/t/things/live/commands/retrieve",
        Some(200),
    );
    assert_eq!(
        one(mapper.inbound(&response)),
        json!({"topic": "org.eclipse.ditto/t/things/twin/commands/merge",
               "headers": {"response-required": false, "if-match": "*",
                           "correlation-id": "c-7-merge-into-twin"},
               "path": "/attributes", "value": {"location": "kitchen"}})
    );
}

#[test]
fn update_twin_with_live_response_documented_headers() {
    let mapper = UpdateTwinWithLiveResponseMapper::from_options(&options(json!({
        "dittoHeadersForMerge": {
            "if-match": "*",
            "response-required": false,
            "put-metadata": [
                {"key": "*/updated-by", "value": "{{ request:subjectId }}"},
                {"key": "*/updated-via", "value": "device-live-response"},
                {"key": "*/update-hint", "value": "{{ header:some-custom-hint }}"},
                {"key": "*/updated-at", "value": "{{ time:now }}"},
                {"key": "*/missing", "value": "{{ header:not-there }}"}
            ]
        }
    })))
    .unwrap();
    let response = live_response(
        "org.eclipse.ditto/t/things/live/commands/retrieve",
        Some(200),
    );
    let merge = one(mapper.inbound_as(&response, Some("integration:device")));
    let headers = &merge["headers"];
    assert_eq!(headers["if-match"], "*");
    assert_eq!(headers["response-required"], false);
    assert_eq!(headers["correlation-id"], "c-7-merge-into-twin");
    let metadata = headers["put-metadata"].as_array().unwrap();
    assert_eq!(metadata[0]["value"], "integration:device");
    assert_eq!(metadata[1]["value"], "device-live-response");
    assert_eq!(metadata[2]["value"], "hint-1");
    assert!(is_iso_instant(metadata[3]["value"].as_str().unwrap()));
    // What does not resolve stays as written (Ditto's partial resolution).
    assert_eq!(metadata[4]["value"], "{{ header:not-there }}");
    let merge = one(mapper.inbound(&response));
    assert_eq!(
        merge["headers"]["put-metadata"][0]["value"],
        "{{ request:subjectId }}"
    );
}

#[test]
fn update_twin_with_live_response_ignores_other_signals() {
    let mapper = UpdateTwinWithLiveResponseMapper::default();
    for (topic, status) in [
        // A twin response.
        (
            "org.eclipse.ditto/t/things/twin/commands/retrieve",
            Some(200),
        ),
        // A live command, not a response.
        ("org.eclipse.ditto/t/things/live/commands/retrieve", None),
        // A live modify response.
        ("org.eclipse.ditto/t/things/live/commands/modify", Some(204)),
        // A live event.
        ("org.eclipse.ditto/t/things/live/events/modified", None),
    ] {
        assert!(
            mapper
                .inbound(&live_response(topic, status))
                .unwrap()
                .is_empty(),
            "{topic}"
        );
    }
    let error = json!({"topic": "org.eclipse.ditto/t/things/live/errors", "headers": {},
                       "path": "/", "value": {"status": 404, "error": "things:thing.notfound", "message": "m"},
                       "status": 404});
    assert!(mapper
        .inbound(&message(error.to_string().as_bytes(), &[]))
        .unwrap()
        .is_empty());
    // Not Ditto Protocol at all: nothing either.
    assert!(mapper
        .inbound(&message(
            b"\x01\x02",
            &[("content-type", "application/octet-stream")]
        ))
        .unwrap()
        .is_empty());
    // A response without a correlation-id gets a new one with the suffix.
    let bare = json!({"topic": "org.eclipse.ditto/t/things/live/commands/retrieve", "headers": {},
                      "path": "/", "value": {"thingId": "org.eclipse.ditto:t", "attributes": {"a": 1}},
                      "status": 200});
    let merge = one(mapper.inbound(&message(bare.to_string().as_bytes(), &[])));
    assert!(merge["headers"]["correlation-id"]
        .as_str()
        .unwrap()
        .ends_with("-merge-into-twin"));
    assert_eq!(merge["path"], "/");
    // Outbound it maps nothing.
    let event = Envelope::from_json(
        json!({"topic": "a/b/things/twin/events/created", "path": "/", "value": {}}),
    )
    .unwrap();
    assert!(mapper.outbound(&event).unwrap().is_empty());
}

#[test]
fn update_twin_with_live_response_option_errors() {
    let bad = |o: Value| config_error(UpdateTwinWithLiveResponseMapper::from_options(&options(o)));
    bad(json!({"dittoHeadersForMerge": 1}));
    bad(json!({"dittoHeadersForMerge": {"x": "{{ thing:id }}"}}));
    bad(json!({"headersForMerge": {}}));
}

// --- ConnectionStatus ---------------------------------------------------------------------

/// 2019-10-29T14:16:18Z, the documentation's readySince.
const CREATION_TIME: &str = "1572358578000";

fn hono(ttd: &str) -> ExternalMessage {
    message(
        b"",
        &[
            (
                "content-type",
                "application/vnd.eclipse-hono-empty-notification",
            ),
            ("device_id", "eclipse:ditto"),
            ("creation-time", CREATION_TIME),
            ("ttd", ttd),
        ],
    )
}

fn status_mapper(extra: Value) -> ConnectionStatusMapper {
    let mut o = json!({"thingId": "{{ header:device_id }}"});
    for (k, v) in extra.as_object().unwrap() {
        o[k] = v.clone();
    }
    ConnectionStatusMapper::from_options(&options(o)).unwrap()
}

#[test]
fn connection_status_for_each_ttd() {
    let mapper = status_mapper(json!({}));
    assert_eq!(mapper.alias(), "ConnectionStatus");
    let headers = json!({"response-required": false, "requested-acks": []});
    // ttd > 0: ready for ttd seconds (the documentation's example: 5 minutes).
    assert_eq!(
        one(mapper.inbound(&hono("300"))),
        json!({"topic": "eclipse/ditto/things/twin/commands/modify", "headers": headers,
               "path": "/features/ConnectionStatus",
               "value": {"definition": ["org.eclipse.ditto:ConnectionStatus:1.0.0"],
                         "properties": {"status": {"readySince": "2019-10-29T14:16:18Z",
                                                   "readyUntil": "2019-10-29T14:21:18Z"}}}})
    );
    // ttd = -1: until further notice.
    let signal = one(mapper.inbound(&hono("-1")));
    assert_eq!(
        signal["value"]["properties"]["status"],
        json!({"readySince": "2019-10-29T14:16:18Z", "readyUntil": "9999-12-31T23:59:59Z"})
    );
    // ttd = 0: disconnected now, only readyUntil.
    assert_eq!(
        one(mapper.inbound(&hono("0"))),
        json!({"topic": "eclipse/ditto/things/twin/commands/modify", "headers": headers,
               "path": "/features/ConnectionStatus/properties/status/readyUntil",
               "value": "2019-10-29T14:16:18Z"})
    );
    // Milliseconds are written when there are some.
    let mut precise = hono("1");
    precise.set_header("creation-time", "1572358578042");
    let signal = one(mapper.inbound(&precise));
    assert_eq!(
        signal["value"]["properties"]["status"]["readyUntil"],
        "2019-10-29T14:16:19.042Z"
    );
    // A message without ttd is no notification: nothing.
    let telemetry = message(b"{}", &[("device_id", "eclipse:ditto")]);
    assert!(mapper.inbound(&telemetry).unwrap().is_empty());
    // Outbound: nothing.
    let event = Envelope::from_json(
        json!({"topic": "a/b/things/twin/events/created", "path": "/", "value": {}}),
    )
    .unwrap();
    assert!(mapper.outbound(&event).unwrap().is_empty());
}

#[test]
fn connection_status_feature_id_option() {
    let mapper =
        status_mapper(json!({"featureId": "status-{{ header:adapter | fn:default('mqtt') }}"}));
    let signal = one(mapper.inbound(&hono("-1")));
    assert_eq!(signal["path"], "/features/status-mqtt");
    let fixed = ConnectionStatusMapper::from_options(&options(
        json!({"thingId": "org.eclipse.ditto:fixed", "featureId": "Connectivity"}),
    ))
    .unwrap();
    let signal = one(fixed.inbound(&hono("0")));
    assert_eq!(
        signal["topic"],
        "org.eclipse.ditto/fixed/things/twin/commands/modify"
    );
    assert_eq!(
        signal["path"],
        "/features/Connectivity/properties/status/readyUntil"
    );
}

#[test]
fn connection_status_invalid_values() {
    let mapper = status_mapper(json!({}));
    for ttd in [
        "-2",
        "abc",
        "1.5",
        "",
        "99999999999999999999",
        "9223372036854775807",
    ] {
        mapping_error(mapper.inbound(&hono(ttd)));
    }
    for creation_time in ["-1", "now", ""] {
        let mut m = hono("10");
        m.set_header("creation-time", creation_time);
        mapping_error(mapper.inbound(&m));
    }
    // A ttd without creation-time.
    let m = message(b"", &[("device_id", "eclipse:ditto"), ("ttd", "10")]);
    mapping_error(mapper.inbound(&m));
    // A thing ID that does not resolve, or not to a thing ID.
    let m = message(b"", &[("creation-time", CREATION_TIME), ("ttd", "10")]);
    mapping_error(mapper.inbound(&m));
    let mut m = hono("10");
    m.set_header("device_id", "no-namespace");
    mapping_error(mapper.inbound(&m));
    // A feature ID that resolves to an invalid one.
    let slashed = status_mapper(json!({"featureId": "{{ header:feature }}"}));
    let mut m = hono("10");
    m.set_header("feature", "a/b");
    mapping_error(slashed.inbound(&m));
}

#[test]
fn connection_status_option_errors() {
    let bad = |o: Value| config_error(ConnectionStatusMapper::from_options(&options(o)));
    bad(json!({}));
    bad(json!({"thingId": 1}));
    bad(json!({"thingId": "no-namespace"}));
    bad(json!({"thingId": "{{ request:subjectId }}"}));
    bad(json!({"thingId": "a:b", "featureId": "a/b"}));
    bad(json!({"thingId": "a:b", "featureId": ""}));
    bad(json!({"thingId": "a:b", "feature": "x"}));
}

// --- Through a connection -----------------------------------------------------------------

fn connection(source: Value, definitions: Value) -> Connection {
    serde_json::from_value(json!({
        "id": "c1", "connectionType": "amqp-091", "connectionStatus": "open", "uri": "amqp://h:5672",
        "sources": [source], "mappingDefinitions": definitions
    }))
    .unwrap()
}

#[test]
fn mappers_are_built_from_definitions_and_bare_aliases() {
    let c = connection(
        json!({"addresses": ["q"], "authorizationContext": ["integration:hono"]}),
        json!({
            "status": {"mappingEngine": "ConnectionStatus", "options": {"thingId": "{{ header:device_id }}"}},
            "implicit": {"mappingEngine": "ImplicitThingCreation", "options": {"thing": {"thingId": "{{ header:device_id }}"}}},
            "raw": {"mappingEngine": "RawMessage", "options": {"outgoingContentType": "application/octet-stream"}},
            "broken": {"mappingEngine": "ConnectionStatus", "options": {"thingId": "{{ header:device_id }}", "unknown": 1}}
        }),
    );
    let names = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let built = mappers(
        &c,
        &names(&[
            "status",
            "implicit",
            "raw",
            "RawMessage",
            "UpdateTwinWithLiveResponse",
        ]),
    )
    .unwrap();
    let aliases: Vec<&str> = built.iter().map(|m| m.mapper.alias()).collect();
    assert_eq!(
        aliases,
        [
            "ConnectionStatus",
            "ImplicitThingCreation",
            "RawMessage",
            "RawMessage",
            "UpdateTwinWithLiveResponse"
        ]
    );
    // Bare aliases of mappers whose configuration is mandatory, and bad options.
    for name in ["ConnectionStatus", "ImplicitThingCreation", "broken"] {
        let Err(error) = mappers(&c, &names(&[name])) else {
            panic!("{name} needs options")
        };
        assert_eq!(error.code(), MAPPER_CONFIG_INVALID, "{name}");
    }
}

#[test]
fn connection_status_next_to_ditto_in_a_source() {
    let c = connection(
        json!({"addresses": ["q"], "authorizationContext": ["integration:hono"],
               "payloadMapping": ["Ditto", "status"]}),
        json!({"status": {"mappingEngine": "ConnectionStatus",
                          "options": {"thingId": "{{ header:device_id }}"}}}),
    );
    let source = InboundSource::compile(&c, 0, &c.sources[0]).unwrap();
    // Hono's empty notification: Ditto skips it, ConnectionStatus maps it.
    let Inbound::Signals(signals) = source.inbound(&hono("-1")) else {
        panic!("signals")
    };
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].0.path.to_string(), "/features/ConnectionStatus");
    // Telemetry without ttd: Ditto maps it, ConnectionStatus adds nothing.
    let telemetry = json!({"topic": "eclipse/ditto/things/twin/commands/modify", "headers": {},
                           "path": "/attributes/t", "value": 21});
    let Inbound::Signals(signals) = source.inbound(&message(
        telemetry.to_string().as_bytes(),
        &[("device_id", "eclipse:ditto")],
    )) else {
        panic!("signals")
    };
    assert_eq!(signals.len(), 1);
    assert_eq!(signals[0].0.path.to_string(), "/attributes/t");
    // An invalid ttd refuses the message.
    assert!(matches!(
        source.inbound(&hono("-5")),
        Inbound::Refused(e) if e.code() == MAPPING_FAILED
    ));
}
