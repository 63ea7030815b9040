//! Acknowledgements against docs/basic-acknowledgements.md and docs/protocol-specification-acks.md:
//! every row of the three header-interaction tables and of the defaults table, each aggregation
//! rule, weak acks, declared labels, refused acks, timeouts with Ditto's exact 408 bodies, and
//! `twin-persisted` hanging on the journal's `Durable`.

use serde_json::{json, Value};
use std::time::{Duration, Instant};
use twinwire_core::journal::{Durable, JournalError};
use twinwire_core::routing::acks::{
    acks_from_envelope, AckError, AckIssuer, AckKey, AckRequest, AckTable, DeclaredAcks, Origin,
    Outcome, PendingAcks, RequestKind, MAX_TIMEOUT, WEAK_ACK_PAYLOAD,
};
use twinwire_protocol::{AckLabel, Acknowledgement, Envelope, Headers};

const THING: &str = "org.eclipse.ditto:thing-1";

fn envelope(topic: &str, headers: Value, extra: Value) -> Envelope {
    let mut v = json!({"topic": format!("org.eclipse.ditto/thing-1/things/{topic}"), "headers": headers, "path": "/"});
    if let (Some(v), Some(extra)) = (v.as_object_mut(), extra.as_object()) {
        v.extend(extra.clone());
    }
    Envelope::from_json(v).expect("envelope")
}

/// A twin modify with these headers and a correlation-id.
fn modify(correlation_id: &str, headers: Value) -> Envelope {
    let mut h = json!({"correlation-id": correlation_id});
    if let (Some(h), Some(extra)) = (h.as_object_mut(), headers.as_object()) {
        h.extend(extra.clone());
    }
    envelope(
        "twin/commands/modify",
        h,
        json!({"path": "/attributes/on", "value": true}),
    )
}

fn live_command(correlation_id: &str, headers: Value) -> Envelope {
    let mut h = json!({"correlation-id": correlation_id});
    if let (Some(h), Some(extra)) = (h.as_object_mut(), headers.as_object()) {
        h.extend(extra.clone());
    }
    envelope("live/commands/retrieve", h, json!({"path": "/attributes"}))
}

fn resolve(command: &Envelope, origin: Origin) -> Result<AckRequest, AckError> {
    AckRequest::resolve(&command.headers, RequestKind::of(command), origin)
}

fn label(s: &str) -> AckLabel {
    AckLabel::parse(s).expect("label")
}

fn ack(correlation_id: &str, l: &str, status: u16, value: Option<Value>) -> Acknowledgement {
    Acknowledgement {
        label: label(l),
        entity_id: THING.into(),
        status,
        headers: [("correlation-id", correlation_id)].into_iter().collect(),
        value,
    }
}

/// The engine's response to a modify: 204 with the correlation-id.
fn modified(command: &Envelope, status: u16, value: Option<Value>) -> Envelope {
    command.response(status, value)
}

fn ws(id: &str) -> AckIssuer {
    AckIssuer::WebSocket(id.into())
}

fn conn(id: &str) -> AckIssuer {
    AckIssuer::Connection(id.into())
}

// ---------------------------------------------------------------------------------------------
// The three header-interaction tables ("Interaction between headers"), one case per row.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum Expect {
    /// The outcome and whether acks are awaited (settled after acks / 202 after acks).
    Ok(Outcome, bool),
    /// A 400 `header.invalid` naming the offending header.
    Error(&'static str),
}

struct Row {
    name: &'static str,
    response_required: bool,
    acks: bool,
    timeout_zero: bool,
    expect: Expect,
}

const fn row(
    name: &'static str,
    response_required: bool,
    acks: bool,
    timeout_zero: bool,
    expect: Expect,
) -> Row {
    Row {
        name,
        response_required,
        acks,
        timeout_zero,
        expect,
    }
}

fn run_table(origin: Origin, rows: &[Row]) {
    for row in rows {
        let requested: Vec<&str> = if row.acks {
            vec!["twin-persisted", "c1:custom"]
        } else {
            vec![]
        };
        let command = modify(
            "row",
            json!({
                "response-required": row.response_required,
                "requested-acks": requested,
                "timeout": if row.timeout_zero { "0s" } else { "10s" },
            }),
        );
        let got = resolve(&command, origin);
        match (row.expect, got) {
            (Expect::Ok(outcome, awaits), Ok(request)) => {
                assert_eq!(request.outcome, outcome, "{}", row.name);
                assert_eq!(request.awaits_acks(), awaits, "{}", row.name);
                assert_eq!(
                    request.response_required, row.response_required,
                    "{}",
                    row.name
                );
                let timeout = if row.timeout_zero { 0 } else { 10 };
                assert_eq!(
                    request.timeout,
                    Duration::from_secs(timeout),
                    "{}",
                    row.name
                );
            }
            (Expect::Error(header), Err(error)) => {
                let e = error.to_ditto_error();
                assert_eq!(
                    (e.status, e.code()),
                    (400, "header.invalid"),
                    "{}",
                    row.name
                );
                assert_eq!(
                    e.to_json()["invalidHeaderKey"],
                    json!(header),
                    "{}",
                    row.name
                );
                assert!(error.is_request_error(), "{}", row.name);
            }
            (expect, got) => panic!("{}: expected {expect:?}, got {got:?}", row.name),
        }
    }
}

#[test]
fn http_table() {
    use Outcome::*;
    run_table(
        Origin::Http,
        &[
            row(
                "http: false/empty/zero -> 202 Accepted immediately",
                false,
                false,
                true,
                Expect::Ok(NoResponse, false),
            ),
            row(
                "http: false/empty/non-zero -> 202 Accepted immediately",
                false,
                false,
                false,
                Expect::Ok(NoResponse, false),
            ),
            row(
                "http: false/non-empty/zero -> 400 Bad Request",
                false,
                true,
                true,
                Expect::Error("timeout"),
            ),
            row(
                "http: false/non-empty/non-zero -> 202 Accepted after receiving acks",
                false,
                true,
                false,
                Expect::Ok(NoResponseAfterAcks, true),
            ),
            row(
                "http: true/empty/zero -> 400 Bad Request",
                true,
                false,
                true,
                Expect::Error("timeout"),
            ),
            row(
                "http: true/empty/non-zero -> Response",
                true,
                false,
                false,
                Expect::Ok(Response, false),
            ),
            row(
                "http: true/non-empty/zero -> 400 Bad Request",
                true,
                true,
                true,
                Expect::Error("timeout"),
            ),
            row(
                "http: true/non-empty/non-zero -> Aggregated response and acks",
                true,
                true,
                false,
                Expect::Ok(AggregatedResponse, true),
            ),
        ],
    );
}

#[test]
fn websocket_table() {
    use Outcome::*;
    run_table(
        Origin::WebSocket,
        &[
            row(
                "ws: false/empty/zero -> No response",
                false,
                false,
                true,
                Expect::Ok(NoResponse, false),
            ),
            row(
                "ws: false/empty/non-zero -> No response",
                false,
                false,
                false,
                Expect::Ok(NoResponse, false),
            ),
            row(
                "ws: false/non-empty/zero -> Error",
                false,
                true,
                true,
                Expect::Error("timeout"),
            ),
            row(
                "ws: false/non-empty/non-zero -> Error: cannot send acks without response",
                false,
                true,
                false,
                Expect::Error("requested-acks"),
            ),
            row(
                "ws: true/empty/zero -> Error",
                true,
                false,
                true,
                Expect::Error("timeout"),
            ),
            row(
                "ws: true/empty/non-zero -> Response",
                true,
                false,
                false,
                Expect::Ok(Response, false),
            ),
            row(
                "ws: true/non-empty/zero -> Error",
                true,
                true,
                true,
                Expect::Error("timeout"),
            ),
            row(
                "ws: true/non-empty/non-zero -> Aggregated response and acks",
                true,
                true,
                false,
                Expect::Ok(AggregatedResponse, true),
            ),
        ],
    );
}

#[test]
fn connectivity_table() {
    use Outcome::*;
    run_table(
        Origin::Connection,
        &[
            row("conn: false/empty/zero -> Nothing published; settled immediately", false, false, true, Expect::Ok(NoResponse, false)),
            row("conn: false/empty/non-zero -> Nothing published; settled immediately", false, false, false, Expect::Ok(NoResponse, false)),
            row("conn: false/non-empty/zero -> Error; settled negatively", false, true, true, Expect::Error("timeout")),
            row("conn: false/non-empty/non-zero -> Nothing published; settled after acks", false, true, false, Expect::Ok(NoResponseAfterAcks, true)),
            row("conn: true/empty/zero -> Error; settled negatively", true, false, true, Expect::Error("timeout")),
            row("conn: true/empty/non-zero -> Response published; settled immediately", true, false, false, Expect::Ok(Response, false)),
            row("conn: true/non-empty/zero -> Error; settled negatively", true, true, true, Expect::Error("timeout")),
            row("conn: true/non-empty/non-zero -> Aggregated response and acks published; settled after acks", true, true, false, Expect::Ok(AggregatedResponse, true)),
        ],
    );
}

#[test]
fn table_errors_carry_dittos_texts() {
    let zero = resolve(
        &modify("z", json!({"timeout": "0", "response-required": true})),
        Origin::Http,
    )
    .unwrap_err();
    assert_eq!(
        zero.to_ditto_error().to_json(),
        json!({"status": 400, "error": "header.invalid",
            "message": "The value of the header 'timeout' must not be zero if response or acknowledgements are requested.",
            "description": "Please provide a positive timeout.", "invalidHeaderKey": "timeout"})
    );
    let ws = resolve(
        &modify(
            "w",
            json!({"response-required": false, "requested-acks": ["twin-persisted"]}),
        ),
        Origin::WebSocket,
    )
    .unwrap_err();
    assert_eq!(
        ws.to_ditto_error().to_json(),
        json!({"status": 400, "error": "header.invalid",
            "message": "For WebSocket, it is forbidden to request acknowledgements while 'response-required' is set to false.",
            "description": "Please set 'requested-acks' to [] or 'response-required' to true.", "invalidHeaderKey": "requested-acks"})
    );
}

/// The "Not settled until acks" row through the collector: nothing is answered, but the
/// completion is there for the 202 / the settlement.
#[tokio::test]
async fn acks_without_response_still_complete() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    acks.declared()
        .declare_connection("c1", &["c1:custom"])
        .unwrap();
    let command = modify(
        "quiet",
        json!({"response-required": false, "requested-acks": ["c1:custom"]}),
    );
    let request = resolve(&command, Origin::Connection).unwrap();
    let waiter = acks
        .register(&command, request)
        .unwrap()
        .expect("awaits acks");
    acks.acknowledge(&conn("c1"), ack("quiet", "c1:custom", 500, None))
        .unwrap();
    let done = waiter.completion().await;
    assert!(!done.respond);
    assert_eq!(done.outcome, Outcome::NoResponseAfterAcks);
    assert_eq!(done.status(), 500, "the settlement still sees the failure");
}

// ---------------------------------------------------------------------------------------------
// "Default header values": each default, and all unset per channel.
// ---------------------------------------------------------------------------------------------

#[test]
fn defaults_table() {
    let labels = |r: &AckRequest| r.labels.iter().map(|l| l.to_string()).collect::<Vec<_>>();
    let twin = |h: Value| resolve(&modify("d", h), Origin::Http).unwrap();

    // All unset: response-required true, the channel's built-in label, 60 s.
    let r = twin(json!({}));
    assert_eq!(
        (r.response_required, labels(&r), r.timeout),
        (
            true,
            vec!["twin-persisted".to_owned()],
            Duration::from_secs(60)
        )
    );
    assert_eq!(r.outcome, Outcome::AggregatedResponse);
    let r = resolve(&live_command("d", json!({})), Origin::WebSocket).unwrap();
    assert_eq!(
        (r.response_required, labels(&r), r.timeout),
        (
            true,
            vec!["live-response".to_owned()],
            Duration::from_secs(60)
        )
    );
    let retrieve = envelope(
        "twin/commands/retrieve",
        json!({"correlation-id": "d"}),
        json!({}),
    );
    let r = resolve(&retrieve, Origin::Http).unwrap();
    assert_eq!(
        (r.response_required, labels(&r)),
        (true, Vec::<String>::new())
    );
    assert_eq!(r.outcome, Outcome::Response);

    // response-required: false if timeout is zero …
    let r = twin(json!({"timeout": "0ms"}));
    assert_eq!((r.response_required, labels(&r)), (false, vec![]));
    assert_eq!(r.outcome, Outcome::NoResponse);
    // … or requested-acks is empty; true otherwise.
    let r = twin(json!({"requested-acks": []}));
    assert_eq!(
        (r.response_required, r.outcome),
        (false, Outcome::NoResponse)
    );
    let r = twin(json!({"requested-acks": ["c1:custom"], "timeout": "5s"}));
    assert_eq!(
        (r.response_required, labels(&r)),
        (true, vec!["c1:custom".to_owned()])
    );

    // requested-acks: empty if timeout is zero (above) or response-required is false …
    let r = twin(json!({"response-required": false}));
    assert_eq!((labels(&r), r.outcome), (vec![], Outcome::NoResponse));
    // … the channel default otherwise.
    let r = twin(json!({"response-required": true, "timeout": "1s"}));
    assert_eq!(labels(&r), ["twin-persisted"]);
    let r = resolve(
        &live_command("d", json!({"response-required": true})),
        Origin::Connection,
    )
    .unwrap();
    assert_eq!(labels(&r), ["live-response"]);

    // timeout: 60s, and never more.
    assert_eq!(
        twin(json!({"timeout": "42s"})).timeout,
        Duration::from_secs(42)
    );
    assert_eq!(MAX_TIMEOUT, Duration::from_secs(60));
}

// ---------------------------------------------------------------------------------------------
// Aggregation (docs/protocol-specification-acks.md, "Combined status code").
// ---------------------------------------------------------------------------------------------

fn table_with(command: &Envelope, t0: Instant) -> AckTable {
    let mut table = AckTable::new();
    table
        .register(command, resolve(command, Origin::Http).unwrap(), t0)
        .unwrap();
    table
}

#[test]
fn a_single_custom_ack_passes_its_status_through() {
    let command = modify("one", json!({"requested-acks": ["c1:only"]}));
    let mut table = table_with(&command, Instant::now());
    let done = table
        .accept(ack(
            "one",
            "c1:only",
            400,
            Some(json!("You better try harder")),
        ))
        .unwrap()
        .expect("complete");
    assert_eq!(done.status(), 400);
    assert_eq!(
        done.reply.topic.to_string(),
        "org.eclipse.ditto/thing-1/things/twin/acks"
    );
    assert_eq!(
        done.reply.value.unwrap(),
        json!({"c1:only": {"status": 400, "payload": "You better try harder", "headers": {"correlation-id": "one"}}})
    );
}

#[test]
fn a_single_built_in_ack_answers_with_the_response_itself() {
    let command = modify("builtin", json!({}));
    let mut table = table_with(&command, Instant::now());
    let response = modified(&command, 201, Some(json!({"thingId": THING})));
    let done = table.accept_response(&response).unwrap().expect("complete");
    assert_eq!(
        done.reply, response,
        "Ditto answers with the response, not an acks message"
    );
    assert_eq!(done.status(), 201);
    assert_eq!(done.acks.len(), 1);
    assert_eq!(done.acks[0].label.as_str(), "twin-persisted");
}

#[test]
fn all_successful_acks_give_200() {
    let command = modify(
        "ok",
        json!({"requested-acks": ["twin-persisted", "c1:custom"]}),
    );
    let mut table = table_with(&command, Instant::now());
    let response = modified(&command, 201, Some(json!({"thingId": THING})));
    assert_eq!(table.accept_response(&response).unwrap(), None);
    let done = table
        .accept(ack(
            "ok",
            "c1:custom",
            200,
            Some(json!({"outcome": "green"})),
        ))
        .unwrap()
        .expect("complete");
    assert_eq!(done.status(), 200);
    assert_eq!(
        done.reply.value.unwrap(),
        json!({
            "twin-persisted": {"status": 201, "payload": {"thingId": THING}, "headers": {"correlation-id": "ok"}},
            "c1:custom": {"status": 200, "payload": {"outcome": "green"}, "headers": {"correlation-id": "ok"}}
        })
    );
    assert_eq!(done.reply.headers.correlation_id(), Some("ok"));
}

#[test]
fn a_failed_ack_gives_424_with_every_ack() {
    let command = modify(
        "mixed",
        json!({"requested-acks": ["twin-persisted", "c1:a", "c1:b"]}),
    );
    let mut table = table_with(&command, Instant::now());
    table
        .accept_response(&modified(&command, 204, None))
        .unwrap();
    table.accept(ack("mixed", "c1:b", 503, None)).unwrap();
    let done = table
        .accept(ack("mixed", "c1:a", 200, None))
        .unwrap()
        .expect("complete");
    assert_eq!(done.status(), 424);
    let value = done.reply.value.unwrap();
    let statuses: Vec<_> = ["twin-persisted", "c1:a", "c1:b"]
        .iter()
        .map(|l| value[l]["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [204, 200, 503]);
}

/// The doc's own example: twin-persisted arrived, my-custom-ack timed out after 42 s.
#[test]
fn timeout_gives_424_with_the_exact_408_entry() {
    let t0 = Instant::now();
    let command = modify(
        "db878735-4957-4fd9-92dc-6f09bb12a093",
        json!({"requested-acks": ["twin-persisted", "my-custom-ack"], "timeout": "42s"}),
    );
    let mut table = table_with(&command, t0);
    table
        .accept_response(&modified(&command, 201, Some(json!({"thingId": THING}))))
        .unwrap();
    assert!(table.expire(t0 + Duration::from_millis(41_999)).is_empty());
    let [done] = table
        .expire(t0 + Duration::from_secs(42))
        .try_into()
        .expect("one");
    assert!(done.timed_out);
    assert_eq!(done.status(), 424);
    assert_eq!(
        done.reply.value.unwrap()["my-custom-ack"],
        json!({
            "status": 408,
            "payload": {
                "status": 408,
                "error": "acknowledgement:request.timeout",
                "message": "The acknowledgement request reached the specified timeout of 42,000ms.",
                "description": "Try increasing the timeout and make sure that the requested acknowledgement is sent back in time."
            },
            "headers": {"correlation-id": "db878735-4957-4fd9-92dc-6f09bb12a093"}
        })
    );
}

#[test]
fn a_single_timed_out_custom_ack_is_a_408_acks_message() {
    let t0 = Instant::now();
    let command = modify(
        "t1",
        json!({"requested-acks": ["c1:x"], "timeout": "1337ms"}),
    );
    let mut table = table_with(&command, t0);
    let [done] = table
        .expire(t0 + Duration::from_secs(2))
        .try_into()
        .expect("one");
    assert_eq!(done.status(), 408);
    assert_eq!(
        done.reply.value.unwrap()["c1:x"]["payload"]["message"],
        "The acknowledgement request reached the specified timeout of 1,337ms."
    );
}

#[test]
fn a_timed_out_built_in_ack_is_a_command_timeout() {
    let t0 = Instant::now();
    let command = modify("t2", json!({"timeout": "42s"}));
    let mut table = table_with(&command, t0);
    let [done] = table
        .expire(t0 + Duration::from_secs(42))
        .try_into()
        .expect("one");
    assert_eq!(
        done.reply.topic.to_string(),
        "org.eclipse.ditto/thing-1/things/twin/errors"
    );
    assert_eq!(
        done.reply.value.unwrap(),
        json!({"status": 408, "error": "command.timeout",
            "message": "The Command reached the specified timeout of 42,000ms.",
            "description": "Try increasing the command timeout."})
    );
    assert_eq!(done.reply.headers.correlation_id(), Some("t2"));
}

#[test]
fn an_error_response_ends_the_request_with_it() {
    let command = modify("err", json!({"requested-acks": ["twin-persisted", "c1:x"]}));
    let mut table = table_with(&command, Instant::now());
    let error = command.error_response(&twinwire_protocol::exceptions::things::thing_not_found(
        "org.eclipse.ditto:thing-1",
    ));
    let done = table.accept_response(&error).unwrap().expect("complete");
    assert_eq!(done.reply, error);
    assert_eq!(done.status(), 404);
    assert!(done.acks.is_empty());
}

// ---------------------------------------------------------------------------------------------
// twin-persisted from the journal's Durable.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn twin_persisted_is_issued_once_durable() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    let command = modify("durable", json!({}));
    let waiter = acks
        .register(&command, resolve(&command, Origin::WebSocket).unwrap())
        .unwrap()
        .expect("awaits twin-persisted");
    let response = modified(&command, 204, None);
    acks.twin_persisted(response.clone(), Durable::ok())
        .await
        .unwrap();
    let done = waiter.completion().await;
    assert_eq!(done.reply, response);
    assert!(acks.is_empty());
}

#[tokio::test]
async fn twin_persisted_fails_when_the_journal_does() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    let command = modify(
        "lost",
        json!({"requested-acks": ["twin-persisted", "c1:x"]}),
    );
    let waiter = acks
        .register(&command, resolve(&command, Origin::Connection).unwrap())
        .unwrap()
        .expect("awaits");
    let failed = Durable::spawn(async { Err(JournalError::Closed) });
    acks.twin_persisted(modified(&command, 204, None), failed)
        .await
        .unwrap();
    let done = waiter.completion().await;
    assert_eq!(done.status(), 503);
    assert_eq!(
        done.reply.topic.to_string(),
        "org.eclipse.ditto/thing-1/things/twin/errors"
    );
    assert_eq!(
        done.reply.value.unwrap()["error"],
        "things:thing.unavailable"
    );
}

#[tokio::test]
async fn twin_persisted_carries_the_response_into_the_aggregate() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    acks.declared()
        .declare(&ws("s1"), &[label("my-custom-ack")])
        .unwrap();
    let command = modify(
        "agg",
        json!({"requested-acks": ["twin-persisted", "my-custom-ack"]}),
    );
    let waiter = acks
        .register(&command, resolve(&command, Origin::Http).unwrap())
        .unwrap()
        .expect("awaits");
    let mut response = modified(
        &command,
        201,
        Some(json!({"thingId": THING, "policyId": THING})),
    );
    response.headers.insert("etag", "\"rev:1\"");
    acks.twin_persisted(response, Durable::ok()).await.unwrap();
    acks.acknowledge(
        &ws("s1"),
        ack(
            "agg",
            "my-custom-ack",
            200,
            Some(json!({"outcome": "green"})),
        ),
    )
    .unwrap();
    let done = waiter.completion().await;
    assert_eq!(done.status(), 200);
    let value = done.reply.value.unwrap();
    assert_eq!(
        value["twin-persisted"],
        json!({"status": 201, "payload": {"thingId": THING, "policyId": THING},
            "headers": {"correlation-id": "agg", "etag": "\"rev:1\""}})
    );
}

// ---------------------------------------------------------------------------------------------
// Live responses.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_live_response_fulfils_live_response() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    acks.declared()
        .declare_connection("c1", &["c1:seen"])
        .unwrap();
    let command = live_command("live", json!({"requested-acks": ["c1:seen"]}));
    let request = resolve(&command, Origin::Connection).unwrap();
    assert_eq!(
        request.labels,
        [label("c1:seen"), label("live-response")],
        "response-required adds live-response"
    );
    let waiter = acks.register(&command, request).unwrap().expect("awaits");
    let response = command.response(200, Some(json!({"on": true})));
    acks.respond(&response).unwrap();
    acks.acknowledge(&conn("c1"), ack("live", "c1:seen", 204, None))
        .unwrap();
    let done = waiter.completion().await;
    assert_eq!(done.status(), 200);
    assert_eq!(
        done.reply.topic.to_string(),
        "org.eclipse.ditto/thing-1/things/live/acks"
    );
    assert_eq!(
        done.reply.value.unwrap()["live-response"]["payload"],
        json!({"on": true})
    );
    // A second response for the same request is refused.
    assert!(matches!(
        acks.respond(&response),
        Err(AckError::UnknownRequest { .. })
    ));
}

#[tokio::test]
async fn a_live_command_with_only_live_response_gets_the_response() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    let command = live_command("only", json!({}));
    let waiter = acks
        .register(&command, resolve(&command, Origin::WebSocket).unwrap())
        .unwrap()
        .expect("awaits live-response");
    let response = command.response(200, Some(json!({"on": false})));
    acks.respond(&response).unwrap();
    assert_eq!(waiter.completion().await.reply, response);
}

// ---------------------------------------------------------------------------------------------
// Weak acks.
// ---------------------------------------------------------------------------------------------

#[test]
fn weak_acks_go_to_declared_labels_whose_subscriber_did_not_get_the_signal() {
    let declared = DeclaredAcks::new();
    declared.declare_connection("c1", &["c1:ack"]).unwrap();
    declared.declare(&ws("s1"), &[label("s1-ack")]).unwrap();
    let requested = [
        label("c1:ack"),
        label("s1-ack"),
        label("nobody:ack"),
        label("twin-persisted"),
    ];
    // s1 got the event, c1 filtered it out; nobody declared nobody:ack; built-ins never.
    assert_eq!(
        declared.weak_ack_labels(&requested, &[ws("s1")]),
        [label("c1:ack")]
    );
    assert!(declared
        .weak_ack_labels(&requested, &[ws("s1"), conn("c1")])
        .is_empty());
}

#[tokio::test]
async fn weak_acks_count_as_received() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    acks.declared()
        .declare_connection("c1", &["{{connection:id}}:ack"])
        .unwrap();
    acks.declared()
        .declare(&ws("s1"), &[label("s1-ack")])
        .unwrap();
    let command = modify(
        "weak",
        json!({"requested-acks": ["twin-persisted", "c1:ack", "s1-ack"]}),
    );
    let mut request = resolve(&command, Origin::Http).unwrap();
    let waiter = acks
        .register(&command, request.clone())
        .unwrap()
        .expect("awaits");
    // The event carries the request's labels; c1 filtered it out (or may not READ it).
    let mut event_headers: Headers = [("correlation-id", "weak")].into_iter().collect();
    request.write_headers(&mut event_headers);
    request.labels.clear();
    let event = envelope(
        "twin/events/modified",
        event_headers.to_json(),
        json!({"path": "/attributes/on", "value": true, "revision": 2}),
    );
    assert_eq!(acks.issue_weak_acks(&event, &[ws("s1")]), [label("c1:ack")]);
    // Issuing again changes nothing: the label is acknowledged already.
    assert!(acks.issue_weak_acks(&event, &[ws("s1")]).is_empty());
    acks.acknowledge(&ws("s1"), ack("weak", "s1-ack", 200, None))
        .unwrap();
    acks.twin_persisted(modified(&command, 204, None), Durable::ok())
        .await
        .unwrap();
    let done = waiter.completion().await;
    assert_eq!(done.status(), 200, "a weak ack is a successful one");
    assert_eq!(
        done.reply.value.unwrap()["c1:ack"],
        json!({"status": 200, "payload": WEAK_ACK_PAYLOAD,
            "headers": {"correlation-id": "weak", "ditto-weak-ack": true}})
    );
}

#[tokio::test]
async fn an_undeclared_label_gets_no_weak_ack_and_times_out() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    let command = modify(
        "undeclared",
        json!({"requested-acks": ["nobody:ack"], "timeout": "50ms"}),
    );
    let waiter = acks
        .register(&command, resolve(&command, Origin::Http).unwrap())
        .unwrap()
        .expect("awaits");
    let event = envelope(
        "twin/events/modified",
        json!({"correlation-id": "undeclared", "requested-acks": ["nobody:ack"]}),
        json!({"path": "/attributes/on", "value": true}),
    );
    assert!(acks.issue_weak_acks(&event, &[]).is_empty());
    let done = waiter.completion().await;
    assert!(done.timed_out);
    assert_eq!(done.status(), 408);
    assert_eq!(
        done.reply.value.unwrap()["nobody:ack"]["payload"]["message"],
        "The acknowledgement request reached the specified timeout of 50ms."
    );
    assert!(acks.is_empty());
}

// ---------------------------------------------------------------------------------------------
// Declared labels.
// ---------------------------------------------------------------------------------------------

#[test]
fn a_label_declared_twice_is_refused() {
    let declared = DeclaredAcks::new();
    declared.declare(&ws("s1"), &[label("my:ack")]).unwrap();
    let e = declared
        .declare(&ws("s2"), &[label("other:ack"), label("my:ack")])
        .unwrap_err();
    assert_eq!(
        e,
        AckError::LabelNotUnique {
            label: label("my:ack")
        }
    );
    assert_eq!(
        e.to_ditto_error().to_json(),
        json!({"status": 409, "error": "acknowledgement:label.not.unique",
            "message": "One or more declared acknowledgement labels are taken by other subscribers.",
            "description": "Please ensure all other subscribers with the declared acknowledgement labels are offline."})
    );
    assert_eq!(
        declared.declarer(&label("other:ack")),
        None,
        "all or nothing"
    );
    // Free again once the first subscriber is gone.
    declared.withdraw(&ws("s1"));
    declared.declare(&ws("s2"), &[label("my:ack")]).unwrap();
    assert_eq!(declared.declarer(&label("my:ack")), Some(ws("s2")));
}

#[test]
fn a_connection_conflicting_with_a_websocket_issues_nothing() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    acks.declared()
        .declare(&ws("s1"), &[label("c2:ack")])
        .unwrap();
    let e = acks
        .declared()
        .declare_connection("c2", &["c2:ack", "c2:other"])
        .unwrap_err();
    assert_eq!(e.code(), "acknowledgement:label.not.unique");
    let command = modify("conflict", json!({"requested-acks": ["c2:other"]}));
    let _waiter = acks
        .register(&command, resolve(&command, Origin::Connection).unwrap())
        .unwrap();
    let e = acks
        .acknowledge(&conn("c2"), ack("conflict", "c2:other", 200, None))
        .unwrap_err();
    assert_eq!(e.code(), "acknowledgement:label.not.declared");
    // Until the WebSocket is gone.
    acks.declared().withdraw(&ws("s1"));
    acks.declared()
        .declare_connection("c2", &["c2:ack", "c2:other"])
        .unwrap();
    acks.acknowledge(&conn("c2"), ack("conflict", "c2:other", 200, None))
        .unwrap();
    assert!(acks.is_empty(), "answered");
}

#[test]
fn connection_labels_carry_the_connection_id() {
    let declared = DeclaredAcks::new();
    assert_eq!(
        declared
            .declare_connection(
                "c1",
                &[
                    "{{connection:id}}:a",
                    "{{ connection:id }}:b",
                    "c1:c",
                    "live-response"
                ]
            )
            .unwrap(),
        [label("c1:a"), label("c1:b"), label("c1:c")],
        "live-response may be issued by a target undeclared"
    );
    for bad in ["c2:ack", "ack", "twin-persisted"] {
        let e = declared.declare_connection("c1", &[bad]).unwrap_err();
        assert_eq!(
            e.to_ditto_error().to_json(),
            json!({"status": 400, "error": "acknowledgement:label.invalid",
                "message": format!("Acknowledgement label <{bad}> is invalid."),
                "description": "Declared acknowledgement labels of a connection must have the form c1:<alphanumeric-suffix>"}),
            "{bad}"
        );
    }
    let e = declared
        .declare_connection("c1", &["c1:bad label"])
        .unwrap_err();
    assert_eq!(e.code(), "acknowledgement:label.invalid");
    // A connection re-declaring its own labels (another of its clients) is fine.
    declared.declare_connection("c1", &["c1:a"]).unwrap();
}

// ---------------------------------------------------------------------------------------------
// Refused acks: each goes back to its sender.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn unknown_and_duplicate_acks_are_refused() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    acks.declared()
        .declare_connection("c1", &["c1:a", "c1:b", "c1:c"])
        .unwrap();
    let command = modify("dup", json!({"requested-acks": ["c1:a", "c1:b"]}));
    let request = resolve(&command, Origin::Connection).unwrap();
    let waiter = acks
        .register(&command, request.clone())
        .unwrap()
        .expect("awaits");
    let issuer = conn("c1");

    let e = acks
        .acknowledge(&issuer, ack("other", "c1:a", 200, None))
        .unwrap_err();
    assert_eq!(
        (e.status(), e.code().as_str()),
        (400, "acknowledgement:request.unknown")
    );
    let mut other_thing = ack("dup", "c1:a", 200, None);
    other_thing.entity_id = "org.eclipse.ditto:thing-2".into();
    assert_eq!(
        acks.acknowledge(&issuer, other_thing).unwrap_err().code(),
        "acknowledgement:request.unknown"
    );

    let e = acks
        .acknowledge(&issuer, ack("dup", "c1:c", 200, None))
        .unwrap_err();
    assert_eq!(e.code(), "acknowledgement:label.not.requested");

    acks.acknowledge(&issuer, ack("dup", "c1:a", 204, None))
        .unwrap();
    let e = acks
        .acknowledge(&issuer, ack("dup", "c1:a", 500, None))
        .unwrap_err();
    assert_eq!(
        (e.status(), e.code().as_str()),
        (409, "acknowledgement:label.duplicate")
    );

    let e = acks
        .acknowledge(&conn("c9"), ack("dup", "c1:b", 200, None))
        .unwrap_err();
    assert_eq!(
        e.to_ditto_error().to_json(),
        json!({"status": 400, "error": "acknowledgement:label.not.declared",
            "message": "Cannot send acknowledgement with label <c1:b>, which is not declared.",
            "description": "Each connection may only send acknowledgements whose label matches one declared for the connection."})
    );
    let e = acks
        .acknowledge(&issuer, ack("dup", "twin-persisted", 200, None))
        .unwrap_err();
    assert_eq!(
        e.to_ditto_error().to_json(),
        json!({"status": 400, "error": "acknowledgement:ditto.acklabel.forbidden",
            "message": "The Ditto internal Acknowledgement label <twin-persisted> is not allowed to be issued externally!",
            "description": "Make sure to not issue an Ditto internal Acknowledgement label."})
    );
    let mut no_id = ack("dup", "c1:b", 200, None);
    no_id.headers = Headers::new();
    assert_eq!(
        acks.acknowledge(&issuer, no_id).unwrap_err().code(),
        "acknowledgement:correlation-id.missing"
    );

    // The same correlation-id may not await acks twice for one thing.
    let e = acks.register(&command, request).unwrap_err();
    assert_eq!(
        e.to_ditto_error().to_json(),
        json!({"status": 409, "error": "acknowledgement:request.duplicate.correlation-id",
            "message": "Correlation-id <dup> for acknowledgement request was already used very recently.",
            "description": "Please provide unique correlation-ids when requesting acknowledgements, at least unique within at least several minutes."})
    );
    let no_correlation = envelope(
        "twin/commands/modify",
        json!({}),
        json!({"path": "/attributes/on", "value": 1}),
    );
    let e = acks
        .register(
            &no_correlation,
            resolve(&no_correlation, Origin::Http).unwrap(),
        )
        .unwrap_err();
    assert_eq!(e.code(), "json.field.missing");

    acks.acknowledge(&issuer, ack("dup", "c1:b", 200, None))
        .unwrap();
    let done = waiter.completion().await;
    assert_eq!(done.acks[0].status, 204, "the first ack stands");
}

#[tokio::test]
async fn subscribers_may_send_aggregated_acks() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    acks.declared()
        .declare_connection("c1", &["c1:a", "c1:b"])
        .unwrap();
    let command = modify("many", json!({"requested-acks": ["c1:a", "c1:b"]}));
    let waiter = acks
        .register(&command, resolve(&command, Origin::Connection).unwrap())
        .unwrap()
        .expect("awaits");
    let sent = envelope(
        "twin/acks",
        json!({"correlation-id": "many"}),
        json!({"status": 200, "value": {"c1:a": {"status": 200}, "c1:b": {"status": 201, "payload": 1}}}),
    );
    assert_eq!(acks_from_envelope(&sent).unwrap().len(), 2);
    acks.acknowledge_envelope(&conn("c1"), &sent).unwrap();
    let done = waiter.completion().await;
    assert_eq!(done.status(), 200);
    assert_eq!(done.reply.value.unwrap()["c1:b"]["payload"], 1);

    // A single ack envelope, as in the protocol examples.
    let single = envelope(
        "twin/acks/c1:a",
        json!({"correlation-id": "x"}),
        json!({"status": 202}),
    );
    let [one] = acks_from_envelope(&single)
        .unwrap()
        .try_into()
        .expect("one");
    assert_eq!(
        (one.label.as_str(), one.status, one.entity_id.as_str()),
        ("c1:a", 202, THING)
    );
    let no_status = envelope("twin/acks/c1:a", json!({"correlation-id": "x"}), json!({}));
    assert_eq!(
        acks_from_envelope(&no_status).unwrap_err().code(),
        "json.field.missing"
    );
}

// ---------------------------------------------------------------------------------------------
// The async wrapper's timeout.
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn the_waiter_times_out_with_the_missing_acks_as_408() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    acks.declared()
        .declare_connection("c1", &["c1:a", "c1:b"])
        .unwrap();
    let command = modify(
        "slow",
        json!({"requested-acks": ["c1:a", "c1:b"], "timeout": "250ms"}),
    );
    let started = tokio::time::Instant::now();
    let waiter = acks
        .register(&command, resolve(&command, Origin::Connection).unwrap())
        .unwrap()
        .expect("awaits");
    let key = waiter.key().clone();
    assert_eq!(
        key,
        AckKey {
            correlation_id: "slow".into(),
            entity_id: THING.into()
        }
    );
    acks.acknowledge(&conn("c1"), ack("slow", "c1:a", 200, None))
        .unwrap();
    let done = waiter.completion().await;
    assert!(started.elapsed() >= Duration::from_millis(250));
    assert!(done.timed_out);
    assert_eq!(done.status(), 424);
    assert_eq!(
        done.reply.value.unwrap()["c1:b"],
        json!({"status": 408, "payload": {"status": 408, "error": "acknowledgement:request.timeout",
            "message": "The acknowledgement request reached the specified timeout of 250ms.",
            "description": "Try increasing the timeout and make sure that the requested acknowledgement is sent back in time."},
            "headers": {"correlation-id": "slow"}})
    );
    // Late acks are refused: the request is gone.
    let e = acks
        .acknowledge(&conn("c1"), ack("slow", "c1:b", 200, None))
        .unwrap_err();
    assert_eq!(e.code(), "acknowledgement:request.unknown");
}

#[tokio::test]
async fn a_dropped_waiter_forgets_its_request() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    let command = modify("gone", json!({}));
    let waiter = acks
        .register(&command, resolve(&command, Origin::Http).unwrap())
        .unwrap();
    assert_eq!(acks.len(), 1);
    drop(waiter);
    assert!(acks.is_empty());
    let e = acks
        .twin_persisted(modified(&command, 204, None), Durable::ok())
        .await
        .unwrap_err();
    assert!(matches!(e, AckError::UnknownRequest { .. }));
}

#[tokio::test]
async fn nothing_requested_needs_no_waiter() {
    let acks = PendingAcks::new(DeclaredAcks::new());
    let command = modify("none", json!({"requested-acks": []}));
    let request = resolve(&command, Origin::Http).unwrap();
    assert!(acks.register(&command, request).unwrap().is_none());
    assert!(acks.is_empty());
}
