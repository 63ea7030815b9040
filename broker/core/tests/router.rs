//! The router end to end, with the real engine and journal in a temp directory: the three
//! header-interaction tables of docs/basic-acknowledgements.md driven through real twin
//! modifies with a subscriber that acknowledges, aggregation, weak acks, labels declared twice,
//! timeouts, live commands and messages with their responses and timeouts, the
//! live-channel-condition with `use-twin`, origin exclusion, filters on extra fields, READ-cut
//! delivery, per-thing event order, connection announcements, and policy subject deletion
//! announcements (beforeExpiry, whenDeleted, requested acks with retries).

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;
use twinwire_core::auth::AuthContext;
use twinwire_core::journal::{Journal, JournalConfig, RedbStore};
use twinwire_core::policies::state::PolicyConfig;
use twinwire_core::routing::acks::{AckIssuer, Origin};
use twinwire_core::routing::pubsub::{Kind, SubscriberId, Subscription};
use twinwire_core::routing::settlement::OutcomeKind;
use twinwire_core::routing::{Answer, Requester, Router};
use twinwire_core::things::EngineConfig;
use twinwire_protocol::{AckLabel, Envelope};

const NS: &str = "org.eclipse.ditto";

struct Broker {
    router: Router,
    _dir: tempfile::TempDir,
}

fn broker() -> Broker {
    broker_with(EngineConfig {
        shards: 2,
        ..EngineConfig::default()
    })
}

fn broker_with(config: EngineConfig) -> Broker {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = RedbStore::open(dir.path()).expect("open store");
    let journal = Journal::start(Arc::new(store), JournalConfig::default()).expect("journal");
    Broker {
        router: Router::start(journal, config),
        _dir: dir,
    }
}

fn auth(subject: &str) -> AuthContext {
    AuthContext::new([subject]).expect("subject")
}

fn envelope(value: Value) -> Envelope {
    Envelope::from_json(value).expect("envelope")
}

fn twin(thing: &str, action: &str, path: &str, value: Value, headers: Value) -> Envelope {
    envelope(json!({
        "topic": format!("{NS}/{thing}/things/twin/commands/{action}"),
        "headers": headers, "path": path, "value": value
    }))
}

/// `user:owner` may do everything; `user:reader` reads everything but `/attributes/secret`;
/// `user:sensor` may only write `/features`; `user:stranger` is in no entry.
fn policy() -> Value {
    json!({"entries": {
        "owner": {"subjects": {"user:owner": {"type": "t"}}, "resources": {
            "thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
            "policy:/": {"grant": ["READ", "WRITE"], "revoke": []},
            "message:/": {"grant": ["READ", "WRITE"], "revoke": []}}},
        "reader": {"subjects": {"user:reader": {"type": "t"}}, "resources": {
            "thing:/": {"grant": ["READ"], "revoke": []},
            "thing:/attributes/secret": {"grant": [], "revoke": ["READ"]},
            "message:/": {"grant": ["READ"], "revoke": []}}},
        "sensor": {"subjects": {"user:sensor": {"type": "t"}}, "resources": {
            "thing:/features": {"grant": ["WRITE"], "revoke": []}}}
    }})
}

/// Creates a thing under [`policy`] as `user:owner` (with attributes `n` and `x` besides
/// `attributes`), and waits until its `created` event is
/// published (events leave after the response), so that later subscribers do not see it.
async fn create(router: &Router, thing: &str, attributes: Value) {
    let probe_id = SubscriberId::new(format!("probe-{thing}"), "created");
    let probe = Subscription::new(
        probe_id.clone(),
        AuthContext::none().unrestricted(),
        Kind::TwinEvents,
    )
    .with_filter(&format!("eq(thingId,\"{NS}:{thing}\")"))
    .expect("filter");
    let mut created = subscribe(router, probe, None);
    // `n` and `x` exist, so that modifying them answers 204 (not 201).
    let mut attributes = attributes;
    attributes["n"] = json!(0);
    attributes["x"] = json!(0);
    let command = twin(
        thing,
        "create",
        "/",
        json!({"_policy": policy(), "attributes": attributes,
               "features": {"lamp": {"properties": {"on": false}}}}),
        json!({"correlation-id": format!("create-{thing}")}),
    );
    let answer = as_owner(router, command).await;
    let reply = answer.reply.expect("a reply");
    assert_eq!(reply.status, Some(201), "{}", reply.to_json());
    assert!(next(&mut created)
        .await
        .topic
        .to_string()
        .ends_with("/events/created"));
    router.unsubscribe(&probe_id);
}

/// A subscription to twin events of `origin`, named `name`, acting as `subject`.
fn twin_events(origin: &str, name: &str, subject: &str) -> Subscription {
    Subscription::new(
        SubscriberId::new(origin, name),
        auth(subject),
        Kind::TwinEvents,
    )
}

/// Sends a signal as `user:owner` over HTTP.
async fn as_owner(router: &Router, signal: Envelope) -> Answer {
    router
        .handle(signal, &Requester::http(auth("user:owner")))
        .await
}

/// A subscriber: its queue's receiving end.
fn subscribe(
    router: &Router,
    sub: Subscription,
    issuer: Option<AckIssuer>,
) -> mpsc::Receiver<Envelope> {
    let (sender, receiver) = mpsc::channel(1024);
    router.subscribe(sub, issuer, sender).expect("subscribed");
    receiver
}

async fn next(receiver: &mut mpsc::Receiver<Envelope>) -> Envelope {
    tokio::time::timeout(Duration::from_secs(5), receiver.recv())
        .await
        .expect("a delivery within 5 s")
        .expect("queue open")
}

/// Nothing arrives within a short while.
async fn nothing(receiver: &mut mpsc::Receiver<Envelope>) {
    let got = tokio::time::timeout(Duration::from_millis(200), receiver.recv()).await;
    assert!(
        got.is_err(),
        "unexpected delivery: {:?}",
        got.map(|e| e.map(|e| e.to_json()))
    );
}

/// The acknowledgement a subscriber sends for a signal it received.
fn ack_for(signal: &Envelope, label: &str, status: u16) -> Envelope {
    envelope(json!({
        "topic": format!("{}/{}/things/twin/acks/{label}", signal.topic.namespace, signal.topic.name),
        "headers": {"correlation-id": signal.headers.correlation_id().expect("correlation-id")},
        "path": "/", "status": status, "value": {"by": label}
    }))
}

/// A connection `c1` subscribed to twin events that acknowledges `c1:custom` with `status`
/// for every event requesting it.
fn acknowledging_connection(router: &Router, status: u16) -> tokio::task::JoinHandle<usize> {
    let issuer = AckIssuer::Connection("c1".into());
    router
        .acks()
        .declared()
        .declare_connection("c1", &["c1:custom"])
        .expect("declared");
    let sub = twin_events("c1", "target", "user:owner");
    let mut events = subscribe(router, sub, Some(issuer));
    let router = router.clone();
    tokio::spawn(async move {
        let mut acked = 0;
        while let Some(event) = events.recv().await {
            let requested = event
                .headers
                .requested_acks()
                .ok()
                .flatten()
                .unwrap_or_default();
            if requested.iter().any(|l| l.as_str() == "c1:custom") {
                let from = Requester::connection("c1", auth("user:owner"));
                let answer = router
                    .handle(ack_for(&event, "c1:custom", status), &from)
                    .await;
                assert_eq!(answer.reply, None, "the ack is taken");
                acked += 1;
            }
        }
        acked
    })
}

fn requester(origin: Origin) -> Requester {
    match origin {
        Origin::Http => Requester::http(auth("user:owner")),
        Origin::WebSocket => Requester::websocket("ws-requester", auth("user:owner")),
        Origin::Connection => Requester::connection("c-requester", auth("user:owner")),
    }
}

// ---------------------------------------------------------------------------------------------
// The three header-interaction tables, each row through a real modify.
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// No reply (HTTP 202; WebSocket nothing; connection nothing published) and settled at once.
    Nothing,
    /// No reply, but only once the subscriber's ack is in.
    NothingAfterAcks,
    /// The command's own response (204).
    Response,
    /// The aggregated response: 200 with both acks.
    Aggregated,
    /// A 400 `header.invalid`, settled negatively without redelivery.
    Error,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_three_header_interaction_tables_end_to_end() {
    use Expect::*;
    // (response-required, requested-acks non-empty, timeout zero) in the tables' order.
    let rows = [
        (false, false, true),
        (false, false, false),
        (false, true, true),
        (false, true, false),
        (true, false, true),
        (true, false, false),
        (true, true, true),
        (true, true, false),
    ];
    let tables = [
        (
            Origin::Http,
            [
                Nothing,
                Nothing,
                Error,
                NothingAfterAcks,
                Error,
                Response,
                Error,
                Aggregated,
            ],
        ),
        (
            Origin::WebSocket,
            [
                Nothing, Nothing, Error, Error, Error, Response, Error, Aggregated,
            ],
        ),
        (
            Origin::Connection,
            [
                Nothing,
                Nothing,
                Error,
                NothingAfterAcks,
                Error,
                Response,
                Error,
                Aggregated,
            ],
        ),
    ];
    let b = broker();
    let router = &b.router;
    create(router, "tables", json!({"n": 0})).await;
    let acker = acknowledging_connection(router, 200);
    let mut expected_acks = 0;
    for (origin, expectations) in tables {
        for (row, expect) in rows.into_iter().zip(expectations) {
            let (response_required, acks, timeout_zero) = row;
            let name = format!("{origin:?} {row:?} -> {expect:?}");
            let requested: Vec<&str> = if acks {
                vec!["twin-persisted", "c1:custom"]
            } else {
                vec![]
            };
            let command = twin(
                "tables",
                "modify",
                "/attributes/n",
                json!(name.len()),
                json!({
                    "correlation-id": format!("row-{name}"),
                    "response-required": response_required,
                    "requested-acks": requested,
                    "timeout": if timeout_zero { "0s" } else { "5s" },
                }),
            );
            let acked_before = router.acks().len();
            let answer: Answer = router.handle(command, &requester(origin)).await;
            assert_eq!(
                router.acks().len(),
                acked_before,
                "{name}: nothing left pending"
            );
            match expect {
                Nothing | NothingAfterAcks => {
                    assert_eq!(answer.reply, None, "{name}");
                    assert_eq!(answer.settlement.kind(), OutcomeKind::Delivered, "{name}");
                }
                Response => {
                    let reply = answer.reply.expect(&name);
                    assert_eq!(reply.status, Some(204), "{name}");
                    assert!(reply
                        .topic
                        .to_string()
                        .ends_with("/things/twin/commands/modify"));
                    assert_eq!(answer.settlement.kind(), OutcomeKind::Delivered, "{name}");
                }
                Aggregated => {
                    let reply = answer.reply.expect(&name);
                    assert_eq!(reply.status, Some(200), "{name}: {}", reply.to_json());
                    assert!(
                        reply.topic.to_string().ends_with("/things/twin/acks"),
                        "{name}"
                    );
                    let value = reply.value.expect("acks");
                    assert_eq!(value["twin-persisted"]["status"], json!(204), "{name}");
                    assert_eq!(value["c1:custom"]["status"], json!(200), "{name}");
                    assert_eq!(value["c1:custom"]["payload"], json!({"by": "c1:custom"}));
                    assert_eq!(answer.settlement.kind(), OutcomeKind::Delivered, "{name}");
                }
                Error => {
                    let reply = answer.reply.expect(&name);
                    assert_eq!(reply.status, Some(400), "{name}");
                    assert_eq!(
                        reply.value.expect("error")["error"],
                        json!("header.invalid")
                    );
                    assert_eq!(answer.settlement.kind(), OutcomeKind::Permanent, "{name}");
                }
            }
            if matches!(expect, NothingAfterAcks | Aggregated) {
                expected_acks += 1;
            }
        }
    }
    // Every awaited ack was the subscriber's, and refused or unawaited rows asked for none
    // (events of rows that awaited nothing carry no requested-acks).
    router.unsubscribe(&SubscriberId::new("c1", "target"));
    let acked = acker.await.expect("acker");
    assert_eq!(acked, expected_acks);
}

// ---------------------------------------------------------------------------------------------
// Aggregation, weak acks, labels, timeouts.
// ---------------------------------------------------------------------------------------------

async fn modify_with_acks(router: &Router, thing: &str, labels: &[&str], timeout: &str) -> Answer {
    let command = twin(
        thing,
        "modify",
        "/attributes/n",
        json!(1),
        json!({"requested-acks": labels, "timeout": timeout}),
    );
    router
        .handle(
            command,
            &Requester::connection("source", auth("user:owner")),
        )
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aggregation_rules_decide_the_reply_and_the_settlement() {
    for (status, labels, reply_status, settlement) in [
        // A single requested ack passes its status through.
        (409, vec!["c1:custom"], 409, OutcomeKind::Permanent),
        (200, vec!["c1:custom"], 200, OutcomeKind::Delivered),
        // Every ack successful: 200.
        (
            200,
            vec!["twin-persisted", "c1:custom"],
            200,
            OutcomeKind::Delivered,
        ),
        // One failed: 424 with every ack; a 5xx member is retried, a 4xx member is not.
        (
            503,
            vec!["twin-persisted", "c1:custom"],
            424,
            OutcomeKind::Retryable,
        ),
        (
            400,
            vec!["twin-persisted", "c1:custom"],
            424,
            OutcomeKind::Permanent,
        ),
    ] {
        let b = broker();
        create(&b.router, "agg", json!({})).await;
        let acker = acknowledging_connection(&b.router, status);
        let answer = modify_with_acks(&b.router, "agg", &labels, "5s").await;
        let reply = answer.reply.expect("reply");
        let case = format!("{status} {labels:?}: {}", reply.to_json());
        assert_eq!(reply.status, Some(reply_status), "{case}");
        assert_eq!(answer.settlement.kind(), settlement, "{case}");
        if reply_status == 424 {
            let value = reply.value.expect("acks");
            assert_eq!(value["twin-persisted"]["status"], json!(204), "{case}");
            assert_eq!(value["c1:custom"]["status"], json!(status), "{case}");
        }
        b.router.unsubscribe(&SubscriberId::new("c1", "target"));
        assert_eq!(acker.await.expect("acker"), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_ack_times_out_with_408_and_is_redelivered() {
    let b = broker();
    create(&b.router, "slow", json!({})).await;
    b.router
        .acks()
        .declared()
        .declare_connection("c1", &["c1:custom"])
        .expect("declared");
    // Subscribed, but never acknowledging.
    let sub = twin_events("c1", "t", "user:owner");
    let mut events = subscribe(&b.router, sub, Some(AckIssuer::Connection("c1".into())));
    let started = tokio::time::Instant::now();
    let answer = modify_with_acks(&b.router, "slow", &["twin-persisted", "c1:custom"], "1s").await;
    assert!(started.elapsed() >= Duration::from_secs(1));
    let reply = answer.reply.expect("reply");
    assert_eq!(reply.status, Some(424), "{}", reply.to_json());
    let value = reply.value.expect("acks");
    assert_eq!(value["c1:custom"]["status"], json!(408));
    assert_eq!(
        value["c1:custom"]["payload"]["error"],
        json!("acknowledgement:request.timeout")
    );
    assert_eq!(answer.settlement.kind(), OutcomeKind::Retryable);
    // The event itself was delivered, with the labels to issue.
    let event = next(&mut events).await;
    let labels = event
        .headers
        .requested_acks()
        .expect("valid")
        .expect("present");
    assert!(labels.iter().any(|l| l.as_str() == "c1:custom"));
    // A late ack finds no request.
    let late = b
        .router
        .handle(
            ack_for(&event, "c1:custom", 200),
            &Requester::connection("c1", auth("user:owner")),
        )
        .await;
    let error = late.reply.expect("refused").value.expect("error");
    assert_eq!(error["status"], json!(400), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn declarers_a_signal_does_not_reach_issue_weak_acks() {
    let b = broker();
    let router = &b.router;
    create(router, "weak", json!({"secret": 1})).await;
    // c-filter filters the event out; c-blind may not read it; c-absent subscribes to nothing.
    for connection in ["c-filter", "c-blind", "c-absent"] {
        let label = format!("{connection}:ack");
        router
            .acks()
            .declared()
            .declare_connection(connection, &[label.as_str()])
            .expect("declared");
    }
    let filtered = twin_events("c-filter", "t", "user:owner")
        .with_filter("eq(attributes/n,999)")
        .expect("filter");
    let mut f = subscribe(
        router,
        filtered,
        Some(AckIssuer::Connection("c-filter".into())),
    );
    let blind = twin_events("c-blind", "t", "user:stranger");
    let mut s = subscribe(router, blind, Some(AckIssuer::Connection("c-blind".into())));
    let answer = modify_with_acks(
        router,
        "weak",
        &["c-filter:ack", "c-blind:ack", "c-absent:ack"],
        "5s",
    )
    .await;
    let reply = answer.reply.expect("reply");
    assert_eq!(reply.status, Some(200), "{}", reply.to_json());
    let value = reply.value.expect("acks");
    for label in ["c-filter:ack", "c-blind:ack", "c-absent:ack"] {
        assert_eq!(value[label]["status"], json!(200), "{label}");
        assert_eq!(
            value[label]["headers"]["ditto-weak-ack"],
            json!(true),
            "{label}"
        );
    }
    assert_eq!(answer.settlement.kind(), OutcomeKind::Delivered);
    nothing(&mut f).await;
    nothing(&mut s).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_label_declared_twice_is_refused() {
    let b = broker();
    let label = AckLabel::parse("mine").expect("label");
    let first = AckIssuer::WebSocket("ws-1".into());
    let second = AckIssuer::WebSocket("ws-2".into());
    b.router
        .declare_acks(&first, std::slice::from_ref(&label))
        .expect("first");
    let error = b
        .router
        .declare_acks(&second, std::slice::from_ref(&label))
        .unwrap_err();
    assert_eq!(
        (error.status, error.code()),
        (409, "acknowledgement:label.not.unique")
    );
    // Once the first session leaves, the label is free.
    b.router.leave(&first);
    b.router
        .declare_acks(&second, &[label])
        .expect("free again");
}

// ---------------------------------------------------------------------------------------------
// Pub/sub through the engine.
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_never_receives_what_it_caused_itself() {
    let b = broker();
    let router = &b.router;
    create(router, "origin", json!({})).await;
    let own = twin_events("ws-a", "events", "user:owner");
    let mut a = subscribe(router, own, Some(AckIssuer::WebSocket("ws-a".into())));
    let other = twin_events("ws-b", "events", "user:owner");
    let mut other_rx = subscribe(router, other, Some(AckIssuer::WebSocket("ws-b".into())));
    let command = twin("origin", "modify", "/attributes/x", json!(1), json!({}));
    let answer = router
        .handle(command, &Requester::websocket("ws-a", auth("user:owner")))
        .await;
    assert_eq!(answer.reply.expect("response").status, Some(204));
    let event = next(&mut other_rx).await;
    assert_eq!(event.path.to_string(), "/attributes/x");
    // The internal origin header never leaves the broker.
    assert!(!event.headers.contains("ditto-origin"));
    nothing(&mut a).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn filters_see_extra_fields_read_from_the_thing_after_the_event() {
    let b = broker();
    let router = &b.router;
    create(
        router,
        "kitchen-lamp",
        json!({"location": "kitchen", "secret": 7}),
    )
    .await;
    create(
        router,
        "garage-lamp",
        json!({"location": "garage", "secret": 8}),
    )
    .await;
    let sub = twin_events("ws-r", "events", "user:reader")
        .with_extra_fields("attributes/location,attributes/secret")
        .with_filter("eq(attributes/location,\"kitchen\")")
        .expect("filter");
    let mut rx = subscribe(router, sub, Some(AckIssuer::WebSocket("ws-r".into())));
    for thing in ["garage-lamp", "kitchen-lamp"] {
        let command = twin(
            thing,
            "modify",
            "/features/lamp/properties/on",
            json!(true),
            json!({}),
        );
        as_owner(router, command).await;
    }
    let event = next(&mut rx).await;
    assert_eq!(event.topic.name, "kitchen-lamp");
    // Enriched from the thing, cut to what the reader may read (no secret).
    assert_eq!(
        event.extra.map(Value::Object),
        Some(json!({"attributes": {"location": "kitchen"}}))
    );
    nothing(&mut rx).await;
    // The location changes: the next event is enriched with the new value, so it no longer
    // passes the filter.
    let moved = twin(
        "kitchen-lamp",
        "modify",
        "/attributes/location",
        json!("hall"),
        json!({}),
    );
    as_owner(router, moved).await;
    nothing(&mut rx).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_receive_only_what_they_may_read() {
    let b = broker();
    let router = &b.router;
    create(router, "cut", json!({})).await;
    let reader = twin_events("ws-r", "e", "user:reader");
    let mut r = subscribe(router, reader, None);
    let owner = twin_events("ws-o", "e", "user:owner");
    let mut o = subscribe(router, owner, None);
    let stranger = twin_events("ws-s", "e", "user:stranger");
    let mut s = subscribe(router, stranger, None);
    let command = twin(
        "cut",
        "modify",
        "/attributes",
        json!({"open": 1, "secret": 2}),
        json!({}),
    );
    as_owner(router, command).await;
    assert_eq!(
        next(&mut o).await.value,
        Some(json!({"open": 1, "secret": 2}))
    );
    assert_eq!(next(&mut r).await.value, Some(json!({"open": 1})));
    nothing(&mut s).await;
    // Only the secret changes: the reader gets nothing at all.
    let command = twin("cut", "modify", "/attributes/secret", json!(3), json!({}));
    as_owner(router, command).await;
    assert_eq!(next(&mut o).await.value, Some(json!(3)));
    nothing(&mut r).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_one_thing_arrive_in_revision_order_under_concurrency() {
    let b = broker();
    let router = &b.router;
    create(router, "ordered", json!({})).await;
    let sub = twin_events("ws-o", "e", "user:owner");
    let mut rx = subscribe(router, sub, None);
    let mut tasks = Vec::new();
    for n in 0..200 {
        let router = router.clone();
        tasks.push(tokio::spawn(async move {
            let command = twin("ordered", "modify", "/attributes/n", json!(n), json!({}));
            as_owner(&router, command).await
        }));
    }
    for task in tasks {
        assert_eq!(
            task.await.expect("task").reply.expect("reply").status,
            Some(204)
        );
    }
    let mut last = 0;
    for _ in 0..200 {
        let revision = next(&mut rx).await.revision.expect("revision");
        assert!(revision > last, "{revision} after {last}");
        last = revision;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_announcements_reach_only_that_connection() {
    let b = broker();
    let mut own = subscribe(
        &b.router,
        Subscription::new(
            SubscriberId::new("conn-1", "t"),
            auth("user:owner"),
            Kind::ConnectionAnnouncements,
        ),
        None,
    );
    let mut other = subscribe(
        &b.router,
        Subscription::new(
            SubscriberId::new("conn-2", "t"),
            auth("user:owner"),
            Kind::ConnectionAnnouncements,
        ),
        None,
    );
    let opened =
        twinwire_core::routing::announcements::connection_opened("conn-1", "2026-11-22T10:00:00Z");
    b.router.announce_connection(&opened);
    let got = next(&mut own).await;
    assert_eq!(
        got.to_json(),
        json!({
            "topic": "_/conn-1/connections/announcements/opened",
            "headers": {"content-type": "application/json"},
            "path": "/", "value": {"openedAt": "2026-11-22T10:00:00Z"}
        })
    );
    nothing(&mut other).await;
}

// ---------------------------------------------------------------------------------------------
// The live channel.
// ---------------------------------------------------------------------------------------------

fn live(
    thing: &str,
    criterion: &str,
    path: &str,
    headers: Value,
    value: Option<Value>,
) -> Envelope {
    let mut v = json!({
        "topic": format!("{NS}/{thing}/things/live/{criterion}"),
        "headers": headers, "path": path
    });
    if let Some(value) = value {
        v["value"] = value;
    }
    envelope(v)
}

/// A device: subscribed to live commands and messages of its thing as `user:owner`, answering
/// each with `status` and `value` (or never, with `None`).
fn device(
    router: &Router,
    name: &str,
    answer: Option<(u16, Value)>,
) -> tokio::task::JoinHandle<Vec<Envelope>> {
    let sub = Subscription::new(
        SubscriberId::new(name, "live"),
        auth("user:owner"),
        [Kind::LiveCommands, Kind::LiveMessages],
    );
    let issuer = AckIssuer::Connection(name.to_owned());
    let mut rx = subscribe(router, sub, Some(issuer));
    let router = router.clone();
    let name = name.to_owned();
    tokio::spawn(async move {
        let mut seen = Vec::new();
        while let Some(command) = rx.recv().await {
            if let Some((status, value)) = &answer {
                let mut response = command.response(*status, Some(value.clone()));
                response.headers = command.headers.clone();
                response.headers.remove("requested-acks");
                let from = Requester::connection(name.clone(), auth("user:owner"));
                router.handle(response, &from).await;
            }
            seen.push(command);
        }
        seen
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_commands_and_messages_get_the_devices_response() {
    let b = broker();
    let router = &b.router;
    create(router, "device-1", json!({"secret": 1})).await;
    let dev = device(
        router,
        "dev",
        Some((200, json!({"secret": 42, "temperature": 21}))),
    );
    // A live retrieve by a reader: the device's answer, cut to what the reader may read.
    let retrieve = live(
        "device-1",
        "commands/retrieve",
        "/attributes",
        json!({"correlation-id": "live-1"}),
        None,
    );
    let answer = router
        .handle(
            retrieve,
            &Requester::websocket("ws-app", auth("user:reader")),
        )
        .await;
    let reply = answer.reply.expect("response");
    assert_eq!(reply.status, Some(200), "{}", reply.to_json());
    assert_eq!(reply.value, Some(json!({"temperature": 21})));
    assert_eq!(reply.headers.correlation_id(), Some("live-1"));
    // A message to the thing's inbox, by the owner.
    let message = live(
        "device-1",
        "messages/switch",
        "/inbox/messages/switch",
        json!({"correlation-id": "msg-1", "content-type": "application/json"}),
        Some(json!({"on": true})),
    );
    let answer = as_owner(router, message).await;
    let reply = answer.reply.expect("response");
    assert_eq!(reply.status, Some(200));
    assert_eq!(answer.settlement.kind(), OutcomeKind::Delivered);
    router.unsubscribe(&SubscriberId::new("dev", "live"));
    let seen = dev.await.expect("device");
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[1].value, Some(json!({"on": true})));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_command_without_a_response_times_out_with_408() {
    let b = broker();
    let router = &b.router;
    create(router, "mute", json!({})).await;
    let dev = device(router, "mute-dev", None);
    for headers in [
        // Awaited as the live-response acknowledgement.
        json!({"correlation-id": "t-1", "timeout": "1s"}),
        // Awaited by correlation-id alone (no acks requested).
        json!({"correlation-id": "t-2", "timeout": "1s", "requested-acks": [], "response-required": true}),
    ] {
        let command = live(
            "mute",
            "commands/modify",
            "/attributes/x",
            headers.clone(),
            Some(json!(1)),
        );
        let started = tokio::time::Instant::now();
        let answer = router
            .handle(command, &Requester::connection("app", auth("user:owner")))
            .await;
        assert!(started.elapsed() >= Duration::from_secs(1));
        let reply = answer.reply.expect("timeout error");
        let error = reply.value.clone().expect("error");
        assert_eq!(reply.status, Some(408), "{headers}: {error}");
        assert_eq!(error["error"], json!("command.timeout"), "{headers}");
        assert_eq!(
            error["message"],
            json!("The Command reached the specified timeout of 1,000ms.")
        );
        assert!(router.acks().is_empty());
    }
    router.unsubscribe(&SubscriberId::new("mute-dev", "live"));
    assert_eq!(dev.await.expect("device").len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_signals_are_enforced_against_the_things_policy() {
    let b = broker();
    let router = &b.router;
    create(router, "guarded", json!({})).await;
    let mut watcher = subscribe(
        router,
        Subscription::new(
            SubscriberId::new("w", "m"),
            auth("user:owner"),
            [Kind::LiveMessages, Kind::LiveEvents],
        ),
        None,
    );
    let stranger = Requester::http(auth("user:stranger"));
    // A message without WRITE on message:/ is refused.
    let message = live(
        "guarded",
        "messages/open",
        "/inbox/messages/open",
        json!({"correlation-id": "m-1", "timeout": "1s"}),
        Some(json!(1)),
    );
    let answer = router.handle(message, &stranger).await;
    let error = answer.reply.expect("error").value.expect("error");
    assert_eq!(
        (error["status"].clone(), error["error"].clone()),
        (json!(403), json!("messages:send.notallowed"))
    );
    // A claim message needs no permission: it reaches the thing's claim subscribers.
    let claim = live(
        "guarded",
        "messages/claim",
        "/inbox/claim",
        json!({"correlation-id": "c-1", "response-required": false}),
        Some(json!("me")),
    );
    let answer = router.handle(claim, &stranger).await;
    assert_eq!(answer.reply, None);
    assert_eq!(next(&mut watcher).await.path.to_string(), "/inbox/claim");
    // A live event needs WRITE on its path: the sensor may write features, not attributes.
    let sensor = Requester::connection("sensor-conn", auth("user:sensor"));
    let event = live(
        "guarded",
        "events/modified",
        "/features/lamp/properties/on",
        json!({}),
        Some(json!(true)),
    );
    assert_eq!(router.handle(event, &sensor).await.reply, None);
    assert_eq!(
        next(&mut watcher).await.path.to_string(),
        "/features/lamp/properties/on"
    );
    let event = live(
        "guarded",
        "events/modified",
        "/attributes/x",
        json!({}),
        Some(json!(1)),
    );
    let error = router
        .handle(event, &sensor)
        .await
        .reply
        .expect("error")
        .value
        .expect("error");
    assert_eq!(error["error"], json!("things:event.notallowed"));
    // A live command to a thing that does not exist.
    let command = live(
        "nowhere",
        "commands/retrieve",
        "/",
        json!({"correlation-id": "n-1"}),
        None,
    );
    let error = router
        .handle(command, &stranger)
        .await
        .reply
        .expect("error")
        .value
        .expect("error");
    assert_eq!(error["error"], json!("things:thing.notfound"));
    nothing(&mut watcher).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_channel_condition_switches_to_the_device_and_use_twin_falls_back() {
    let b = broker();
    let router = &b.router;
    create(router, "smart", json!({"useLive": true, "v": "twin"})).await;
    create(router, "plain", json!({"useLive": false, "v": "twin"})).await;
    let retrieve = |thing: &str, strategy: &str| {
        twin(
            thing,
            "retrieve",
            "/attributes/v",
            Value::Null,
            json!({
                "correlation-id": format!("smart-{thing}-{strategy}"),
                "live-channel-condition": "eq(attributes/useLive,true)",
                "live-channel-timeout-strategy": strategy,
                "timeout": "1s"
            }),
        )
    };
    let owner = Requester::http(auth("user:owner"));
    // Condition false: the twin answers.
    let reply = router
        .handle(retrieve("plain", "fail"), &owner)
        .await
        .reply
        .expect("reply");
    assert_eq!(reply.value, Some(json!("twin")));
    assert_eq!(
        reply.headers.get("live-channel-condition-matched"),
        Some(&json!(false))
    );
    // Condition true, no device, use-twin: after the timeout, the twin answers.
    let reply = router
        .handle(retrieve("smart", "use-twin"), &owner)
        .await
        .reply
        .expect("reply");
    assert_eq!(
        (reply.status, reply.value.clone()),
        (Some(200), Some(json!("twin"))),
        "{}",
        reply.to_json()
    );
    assert_eq!(reply.headers.get("channel"), Some(&json!("twin")));
    // Condition true, no device, fail: 408.
    let reply = router
        .handle(retrieve("smart", "fail"), &owner)
        .await
        .reply
        .expect("reply");
    assert_eq!(reply.status, Some(408), "{}", reply.to_json());
    // Condition true, a device answers: its value.
    let dev = device(router, "smart-dev", Some((200, json!("device"))));
    let reply = router
        .handle(retrieve("smart", "use-twin"), &owner)
        .await
        .reply
        .expect("reply");
    assert_eq!(reply.value, Some(json!("device")), "{}", reply.to_json());
    assert_eq!(
        reply.headers.get("live-channel-condition-matched"),
        Some(&json!(true))
    );
    assert_eq!(reply.headers.get("channel"), Some(&json!("live")));
    router.unsubscribe(&SubscriberId::new("smart-dev", "live"));
    assert_eq!(dev.await.expect("device").len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Policy announcements.
// ---------------------------------------------------------------------------------------------

/// A broker keeping subject expiries as written (no rounding up to the hour).
fn exact_expiry_broker() -> Broker {
    broker_with(EngineConfig {
        shards: 2,
        policy_rules: PolicyConfig {
            subject_expiry_granularity_secs: 0,
            ..PolicyConfig::default()
        },
        ..EngineConfig::default()
    })
}

fn in_millis(ms: i64) -> String {
    (chrono::Utc::now() + chrono::Duration::milliseconds(ms))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Creates policy `ns:announcing` with an admin entry and an entry holding `subjects`.
async fn create_policy(router: &Router, subjects: Value) {
    let command = envelope(json!({
        "topic": format!("{NS}/announcing/policies/commands/create"),
        "headers": {"correlation-id": "create-policy"},
        "path": "/",
        "value": {"entries": {
            "admin": {"subjects": {"user:owner": {"type": "t"}}, "resources": {
                "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}},
            "guests": {"subjects": subjects, "resources": {
                "thing:/": {"grant": ["READ"], "revoke": []}}}
        }}
    }));
    let reply = as_owner(router, command).await.reply.expect("reply");
    assert_eq!(reply.status, Some(201), "{}", reply.to_json());
}

fn announcements_for(router: &Router, origin: &str, subject: &str) -> mpsc::Receiver<Envelope> {
    let sub = Subscription::new(
        SubscriberId::new(origin, "announcements"),
        auth(subject),
        Kind::PolicyAnnouncements,
    );
    subscribe(router, sub, Some(AckIssuer::Connection(origin.to_owned())))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subject_is_announced_before_it_expires_and_not_again_when_deleted() {
    let b = exact_expiry_broker();
    let router = &b.router;
    let mut temp = announcements_for(router, "temp-conn", "user:temp");
    let mut owner = announcements_for(router, "owner-conn", "user:owner");
    let expiry = in_millis(2_000);
    create_policy(
        router,
        json!({"user:temp": {"type": "t", "expiry": expiry,
        "announcement": {"beforeExpiry": "1s", "whenDeleted": true}}}),
    )
    .await;
    let started = tokio::time::Instant::now();
    let got = next(&mut temp).await;
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(700) && waited < Duration::from_millis(1_900),
        "announced after {waited:?}"
    );
    assert_eq!(
        got.topic.to_string(),
        format!("{NS}/announcing/policies/announcements/subjectDeletion")
    );
    assert_eq!(
        got.value,
        Some(json!({"deleteAt": expiry, "subjectIds": ["user:temp"]}))
    );
    assert!(got.headers.correlation_id().is_some());
    // Announced to the subject only; and once: its deletion at the expiry is not announced again.
    nothing(&mut owner).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let retrieve = envelope(json!({
        "topic": format!("{NS}/announcing/policies/commands/retrieve"),
        "path": "/entries/guests/subjects"
    }));
    let subjects = as_owner(router, retrieve).await.reply.expect("reply");
    assert_eq!(
        subjects.value,
        Some(json!({})),
        "the expired subject is deleted"
    );
    nothing(&mut temp).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_subject_is_announced_when_asked_to() {
    let b = exact_expiry_broker();
    let router = &b.router;
    let mut gone = announcements_for(router, "gone-conn", "user:gone");
    let mut quiet = announcements_for(router, "quiet-conn", "user:quiet");
    create_policy(
        router,
        json!({
            "user:gone": {"type": "t", "announcement": {"whenDeleted": true}},
            "user:quiet": {"type": "t"}
        }),
    )
    .await;
    for subject in ["user:gone", "user:quiet"] {
        let delete = envelope(json!({
            "topic": format!("{NS}/announcing/policies/commands/delete"),
            "path": format!("/entries/guests/subjects/{subject}")
        }));
        assert_eq!(
            as_owner(router, delete).await.reply.expect("reply").status,
            Some(204)
        );
    }
    let got = next(&mut gone).await;
    let value = got.value.expect("value");
    assert_eq!(value["subjectIds"], json!(["user:gone"]));
    let delete_at =
        chrono::DateTime::parse_from_rfc3339(value["deleteAt"].as_str().expect("deleteAt"))
            .expect("instant");
    assert!(
        (chrono::Utc::now() - delete_at.with_timezone(&chrono::Utc))
            .num_seconds()
            .abs()
            < 5
    );
    nothing(&mut quiet).await;
    nothing(&mut gone).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_announcement_requesting_acks_is_published_again_until_acknowledged() {
    let b = exact_expiry_broker();
    let router = &b.router;
    router
        .acks()
        .declared()
        .declare_connection("ack-conn", &["ack-conn:seen"])
        .expect("declared");
    let mut rx = announcements_for(router, "ack-conn", "user:acker");
    create_policy(router, json!({"user:acker": {"type": "t", "expiry": in_millis(60_000), "announcement": {
        "beforeExpiry": "59s", "requestedAcks": {"labels": ["ack-conn:seen"], "timeout": "500ms"}}}})).await;
    // First attempt: not acknowledged. After its timeout it comes again; acknowledged then.
    let first = next(&mut rx).await;
    assert_eq!(
        first.headers.requested_acks().expect("valid"),
        Some(vec![AckLabel::parse("ack-conn:seen").expect("label")])
    );
    let second = next(&mut rx).await;
    assert_eq!(second.value, first.value);
    let ack = envelope(json!({
        "topic": format!("{NS}/announcing/policies/acks/ack-conn:seen"),
        "headers": {"correlation-id": second.headers.correlation_id().expect("correlation-id")},
        "path": "/", "status": 200
    }));
    let answer = router
        .handle(ack, &Requester::connection("ack-conn", auth("user:acker")))
        .await;
    assert_eq!(answer.reply, None, "the ack is taken");
    // Acknowledged: no more attempts.
    tokio::time::sleep(Duration::from_millis(800)).await;
    nothing(&mut rx).await;
    assert!(router.acks().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_subscriber_loses_unacknowledged_events_but_keeps_those_it_acknowledges() {
    let b = broker();
    let router = &b.router;
    create(router, "slow-reader", json!({})).await;
    router
        .acks()
        .declared()
        .declare_connection("c1", &["c1:custom"])
        .expect("declared");
    // A queue of one, not read for now.
    let (sender, mut queue) = mpsc::channel(1);
    let sub = twin_events("c1", "target", "user:owner");
    router
        .subscribe(sub, Some(AckIssuer::Connection("c1".into())), sender)
        .expect("subscribed");
    // QoS 0: the first fits, the next two are dropped and counted.
    for n in 1..=3 {
        let command = twin(
            "slow-reader",
            "modify",
            "/attributes/n",
            json!(n),
            json!({"requested-acks": []}),
        );
        as_owner(router, command).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(router.publisher().stats().dropped, 2);
    assert_eq!(next(&mut queue).await.value, Some(json!(1)));
    // Events the subscriber is to acknowledge wait for room, in order, and none is lost.
    let mut requests = Vec::new();
    for n in 10..15 {
        let router = router.clone();
        let command = twin(
            "slow-reader",
            "modify",
            "/attributes/n",
            json!(n),
            json!({"requested-acks": ["c1:custom"], "timeout": "10s"}),
        );
        requests.push(tokio::spawn(async move {
            router
                .handle(
                    command,
                    &Requester::connection("source", auth("user:owner")),
                )
                .await
        }));
        // In order: each is submitted before the next.
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut seen = Vec::new();
    for _ in 10..15 {
        let event = next(&mut queue).await;
        seen.push(event.value.clone().expect("value"));
        let ack = ack_for(&event, "c1:custom", 200);
        router
            .handle(ack, &Requester::connection("c1", auth("user:owner")))
            .await;
    }
    assert_eq!(
        seen,
        [json!(10), json!(11), json!(12), json!(13), json!(14)]
    );
    for request in requests {
        let answer = request.await.expect("task");
        assert_eq!(answer.reply.expect("reply").status, Some(200));
    }
    assert_eq!(router.publisher().stats().dropped, 2);
}
