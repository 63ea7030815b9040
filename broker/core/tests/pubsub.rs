//! The pub/sub hub (issue 5, items 1 and 2) against a compiled policy: namespaces, kinds, origin
//! exclusion, READ-filtered delivery, RQL filters on thing fields, `topic:` and `resource:`
//! placeholders and extra fields, extra fields cut by READ, refused filters and selectors, and
//! the index keeping subscribers of other namespaces out of the work entirely, and why a
//! subscriber got nothing.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use twinwire_core::auth::AuthContext;
use twinwire_core::policies::enforcer::Enforcer;
use twinwire_core::routing::pubsub::{
    Hub, Kind, Kinds, PublishContext, Skipped, SubscriberId, Subscription,
};
use twinwire_protocol::Envelope;

const NS: &str = "org.eclipse.ditto";
const NOW: i64 = 1_767_229_200_000; // 2026-01-01T01:00:00Z

fn no_imports(_: &str) -> Option<Value> {
    None
}

/// `user:owner` reads and writes everything (messages too); `user:public` reads
/// `/attributes/public` only; `user:restricted` reads all but `/attributes/secret`;
/// `user:listener` may read the thing's messages but not the thing; `user:stranger` is in no
/// entry.
fn enforcer() -> Enforcer {
    let policy = json!({"policyId": format!("{NS}:fancy-thing"), "entries": {
        "owner": {"subjects": {"user:owner": {"type": "t"}}, "resources": {
            "thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
            "message:/": {"grant": ["READ", "WRITE"], "revoke": []}}},
        "public": {"subjects": {"user:public": {"type": "t"}}, "resources": {
            "thing:/attributes/public": {"grant": ["READ"], "revoke": []}}},
        "restricted": {"subjects": {"user:restricted": {"type": "t"}}, "resources": {
            "thing:/": {"grant": ["READ"], "revoke": []},
            "thing:/attributes/secret": {"grant": [], "revoke": ["READ"]}}},
        "listener": {"subjects": {"user:listener": {"type": "t"}}, "resources": {
            "message:/": {"grant": ["READ"], "revoke": []}}}
    }});
    Enforcer::compile(&policy, Some(NS), 0, &no_imports).expect("policy")
}

/// The thing as it is after the events below.
fn thing() -> Value {
    json!({
        "thingId": format!("{NS}:fancy-thing"),
        "policyId": format!("{NS}:fancy-thing"),
        "attributes": {
            "public": {"location": "Kitchen"},
            "secret": {"pin": 1234},
            "count": 43
        },
        "features": {
            "temperature": {"properties": {"value": 23.42, "unit": "Celsius"}},
            "humidity": {"properties": {"value": 45, "unit": "%"}}
        }
    })
}

fn auth(subject: &str) -> AuthContext {
    AuthContext::new([subject]).expect("subject")
}

fn id(origin: &str) -> SubscriberId {
    SubscriberId::new(origin, "events")
}

fn sub(origin: &str, subject: &str) -> Subscription {
    Subscription::new(id(origin), auth(subject), Kind::TwinEvents)
}

fn event(namespace: &str, action: &str, path: &str, value: Option<Value>) -> Envelope {
    let mut v = json!({
        "topic": format!("{namespace}/fancy-thing/things/twin/events/{action}"),
        "headers": {"correlation-id": "c-1"},
        "path": path,
        "revision": 34,
        "timestamp": "2026-01-01T00:00:00Z"
    });
    if let Some(value) = value {
        v["value"] = value;
    }
    Envelope::from_json(v).expect("event")
}

fn temperature_event() -> Envelope {
    event(
        NS,
        "modified",
        "/features/temperature/properties/value",
        Some(json!(23.42)),
    )
}

fn attributes_event() -> Envelope {
    event(
        NS,
        "modified",
        "/attributes",
        Some(thing()["attributes"].clone()),
    )
}

/// Publishes a twin event as the engine would (policy and thing at hand, fixed clock) and
/// answers what each origin received.
fn publish(hub: &Hub, signal: &Envelope, origin: Option<&str>) -> BTreeMap<String, Envelope> {
    let enforcer = enforcer();
    let thing = thing();
    let mut ctx = PublishContext::for_signal(signal)
        .expect("a published kind")
        .with_enforcer(&enforcer)
        .with_thing(&thing)
        .with_now_millis(NOW);
    ctx.origin = origin;
    let mut got = BTreeMap::new();
    let n = hub.publish(signal, &ctx, |id, env| {
        assert!(
            got.insert(id.origin().to_owned(), env).is_none(),
            "{id} twice"
        );
    });
    assert_eq!(n, got.len());
    got
}

fn receivers(hub: &Hub, signal: &Envelope) -> Vec<String> {
    publish(hub, signal, None).into_keys().collect()
}

fn hub_of(subs: impl IntoIterator<Item = Subscription>) -> Hub {
    let mut hub = Hub::new();
    for s in subs {
        hub.subscribe(s).expect("subscribe");
    }
    hub
}

#[test]
fn namespaces() {
    let hub = hub_of([
        sub("all", "user:owner"),
        sub("ditto", "user:owner").with_namespaces([NS]),
        sub("both", "user:owner").with_namespaces(["com.acme", NS]),
        sub("acme", "user:owner").with_namespaces(["com.acme"]),
        sub("empty-list", "user:owner").with_namespaces(Vec::<String>::new()),
    ]);
    assert_eq!(
        receivers(&hub, &temperature_event()),
        ["all", "both", "ditto", "empty-list"]
    );
    let acme = event("com.acme", "deleted", "/", None);
    assert_eq!(
        receivers(&hub, &acme),
        ["acme", "all", "both", "empty-list"]
    );
    assert_eq!(
        receivers(&hub, &event("org.other", "deleted", "/", None)),
        ["all", "empty-list"]
    );
}

#[test]
fn kinds() {
    let owner = || auth("user:owner");
    let hub = hub_of([
        Subscription::new(id("twin"), owner(), Kind::TwinEvents),
        Subscription::new(id("live"), owner(), Kind::LiveEvents),
        Subscription::new(
            id("live-all"),
            owner(),
            Kinds::from([Kind::LiveEvents, Kind::LiveCommands, Kind::LiveMessages]),
        ),
        Subscription::new(id("messages"), owner(), Kind::LiveMessages),
        Subscription::new(id("nothing"), owner(), Kinds::empty()),
    ]);
    assert_eq!(receivers(&hub, &temperature_event()), ["twin"]);
    let live_event = Envelope::from_json(json!({
        "topic": format!("{NS}/fancy-thing/things/live/events/modified"),
        "path": "/attributes/count", "value": 44
    }))
    .unwrap();
    assert_eq!(receivers(&hub, &live_event), ["live", "live-all"]);
    let live_command = Envelope::from_json(json!({
        "topic": format!("{NS}/fancy-thing/things/live/commands/modify"),
        "headers": {"correlation-id": "c-2"},
        "path": "/attributes/count", "value": 44
    }))
    .unwrap();
    assert_eq!(receivers(&hub, &live_command), ["live-all"]);
    let message = Envelope::from_json(json!({
        "topic": format!("{NS}/fancy-thing/things/live/messages/ask"),
        "headers": {"correlation-id": "c-3", "content-type": "text/plain"},
        "path": "/inbox/messages/ask", "value": "?"
    }))
    .unwrap();
    assert_eq!(receivers(&hub, &message), ["live-all", "messages"]);
}

#[test]
fn a_subscriber_never_receives_what_its_own_origin_caused() {
    let hub = hub_of([
        sub("ws-1", "user:owner"),
        Subscription::new(
            SubscriberId::new("ws-1", "live"),
            auth("user:owner"),
            Kinds::from([Kind::TwinEvents, Kind::LiveEvents]),
        ),
        sub("connection-a", "user:owner"),
    ]);
    let enforcer = enforcer();
    let ids = |origin: &str| {
        let ctx = PublishContext::new(Kind::TwinEvents)
            .with_enforcer(&enforcer)
            .with_origin(origin);
        let mut got = Vec::new();
        hub.publish(&temperature_event(), &ctx, |id, _| got.push(id.to_string()));
        got
    };
    assert_eq!(ids("ws-1"), ["connection-a/events"]);
    assert_eq!(ids("connection-a"), ["ws-1/events", "ws-1/live"]);
    assert_eq!(ids("ws-2").len(), 3);
}

#[test]
fn delivery_is_cut_to_what_the_subscriber_may_read() {
    let hub = hub_of([
        sub("owner", "user:owner"),
        sub("public", "user:public"),
        sub("restricted", "user:restricted"),
        sub("stranger", "user:stranger"),
        sub("listener", "user:listener"),
        Subscription::new(
            id("admin"),
            auth("local:admin").unrestricted(),
            Kind::TwinEvents,
        ),
    ]);
    let signal = attributes_event();
    let got = publish(&hub, &signal, None);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["admin", "owner", "public", "restricted"]
    );
    assert_eq!(got["owner"], signal);
    assert_eq!(got["admin"], signal);
    assert_eq!(
        got["public"].value,
        Some(json!({"public": {"location": "Kitchen"}}))
    );
    assert_eq!(
        got["restricted"].value,
        Some(json!({"public": {"location": "Kitchen"}, "count": 43}))
    );
    // Everything but the value is the event's.
    assert_eq!(got["public"].topic, signal.topic);
    assert_eq!(got["public"].revision, Some(34));

    // Nothing of a feature event is readable for `public`.
    assert_eq!(
        receivers(&hub, &temperature_event()),
        ["admin", "owner", "restricted"]
    );

    // A thing whose policy is gone reaches nobody, not even local administration.
    let ctx = PublishContext::new(Kind::TwinEvents);
    assert_eq!(hub.publish(&signal, &ctx, |_, _| panic!("delivered")), 0);
}

#[test]
fn live_signals_need_read_on_their_resource() {
    let mut hub = Hub::new();
    for subject in [
        "user:owner",
        "user:public",
        "user:restricted",
        "user:listener",
    ] {
        hub.subscribe(Subscription::new(
            id(subject),
            auth(subject),
            Kinds::from([Kind::LiveCommands, Kind::LiveMessages]),
        ))
        .unwrap();
    }
    let message = Envelope::from_json(json!({
        "topic": format!("{NS}/fancy-thing/things/live/messages/ask"),
        "headers": {"correlation-id": "c-3", "content-type": "text/plain"},
        "path": "/inbox/messages/ask", "value": "?"
    }))
    .unwrap();
    let got = publish(&hub, &message, None);
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        ["user:listener", "user:owner"]
    );
    assert_eq!(
        got["user:listener"], message,
        "a message is delivered whole"
    );

    let retrieve = Envelope::from_json(json!({
        "topic": format!("{NS}/fancy-thing/things/live/commands/retrieve"),
        "headers": {"correlation-id": "c-4"},
        "path": "/attributes"
    }))
    .unwrap();
    // `restricted` may not read /attributes/secret, so not all of /attributes.
    assert_eq!(receivers(&hub, &retrieve), ["user:owner"]);
    let public = Envelope::from_json(json!({
        "topic": format!("{NS}/fancy-thing/things/live/commands/modify"),
        "headers": {"correlation-id": "c-5"},
        "path": "/attributes/public/location", "value": "Hall"
    }))
    .unwrap();
    assert_eq!(
        receivers(&hub, &public),
        ["user:owner", "user:public", "user:restricted"]
    );
}

#[test]
fn announcements_reach_whom_they_address() {
    let mut hub = Hub::new();
    for (origin, subject) in [("conn-1", "user:owner"), ("conn-2", "user:public")] {
        hub.subscribe(Subscription::new(
            SubscriberId::new(origin, "target-0"),
            auth(subject),
            Kinds::from([Kind::PolicyAnnouncements, Kind::ConnectionAnnouncements]),
        ))
        .unwrap();
    }
    let deletion = Envelope::from_json(json!({
        "topic": format!("{NS}/fancy-thing/policies/announcements/subjectDeletion"),
        "headers": {"correlation-id": "c-6"},
        "path": "/",
        "value": {"deleteAt": "2026-01-02T00:00:00Z", "subjectIds": ["user:public"]}
    }))
    .unwrap();
    assert_eq!(receivers(&hub, &deletion), ["conn-2"]);
    let opened = Envelope::from_json(json!({
        "topic": "_/conn-1/connections/announcements/opened",
        "path": "/", "value": {"openedAt": "2026-01-01T00:00:00Z"}
    }))
    .unwrap();
    assert_eq!(receivers(&hub, &opened), ["conn-1"]);
}

#[test]
fn filters_on_the_changed_thing_fields() {
    let hub = hub_of([
        sub("hot", "user:owner")
            .with_filter("gt(features/temperature/properties/value,20)")
            .unwrap(),
        sub("cold", "user:owner")
            .with_filter("lt(features/temperature/properties/value,20)")
            .unwrap(),
        sub("by-id", "user:owner")
            .with_filter(
                r#"and(like(thingId,"org.eclipse.ditto:fancy*"),exists(features/temperature))"#,
            )
            .unwrap(),
        // Unchanged data is not in the event: without extra fields this never holds.
        sub("location", "user:owner")
            .with_filter(r#"eq(attributes/public/location,"Kitchen")"#)
            .unwrap(),
        sub("revision", "user:owner")
            .with_filter("and(eq(_revision,34),lt(_modified,time:now))")
            .unwrap(),
    ]);
    assert_eq!(
        receivers(&hub, &temperature_event()),
        ["by-id", "hot", "revision"]
    );
    assert_eq!(
        receivers(&hub, &attributes_event()),
        ["location", "revision"]
    );
}

#[test]
fn filters_on_topic_and_resource_placeholders() {
    let lifecycle = r#"and(in(topic:action,"created","deleted"),eq(resource:path,"/"))"#;
    let hub = hub_of([
        sub("lifecycle", "user:owner")
            .with_filter(lifecycle)
            .unwrap(),
        sub("features", "user:owner")
            .with_filter(r#"like(resource:path,"/features/*")"#)
            .unwrap(),
        sub("twin", "user:owner")
            .with_filter(r#"and(eq(topic:channel,"twin"),eq(resource:type,"thing"))"#)
            .unwrap(),
    ]);
    assert_eq!(receivers(&hub, &temperature_event()), ["features", "twin"]);
    assert_eq!(
        receivers(&hub, &event(NS, "deleted", "/", None)),
        ["lifecycle", "twin"]
    );
    assert_eq!(
        receivers(&hub, &event(NS, "deleted", "/attributes", None)),
        ["twin"]
    );
    let created = event(NS, "created", "/", Some(thing()));
    assert_eq!(receivers(&hub, &created), ["lifecycle", "twin"]);
}

#[test]
fn filters_see_the_extra_fields() {
    // docs/basic-enrichment.md: only temperature events of things in the kitchen.
    let kitchen = |origin: &str, location: &str| {
        sub(origin, "user:owner")
            .with_extra_fields("attributes/public/location")
            .with_filter(&format!(
                r#"and(exists(features/temperature),eq(attributes/public/location,"{location}"))"#
            ))
            .unwrap()
    };
    let hub = hub_of([kitchen("kitchen", "Kitchen"), kitchen("hall", "Hall")]);
    let got = publish(&hub, &temperature_event(), None);
    assert_eq!(got.keys().collect::<Vec<_>>(), ["kitchen"]);
    assert_eq!(
        got["kitchen"].extra,
        json!({"attributes": {"public": {"location": "Kitchen"}}})
            .as_object()
            .cloned()
    );
    assert_eq!(got["kitchen"].value, Some(json!(23.42)));

    // The event's own data wins over the extra fields (Ditto's mergeThingWithExtraFields).
    let hub = hub_of([sub("count", "user:owner")
        .with_extra_fields("attributes/count")
        .with_filter("eq(attributes/count,42)")
        .unwrap()]);
    let changed = event(NS, "modified", "/attributes/count", Some(json!(42)));
    assert_eq!(receivers(&hub, &changed), ["count"]);
}

#[test]
fn extra_fields_are_cut_to_what_the_subscriber_may_read() {
    let enriched = |origin: &str, subject: &str| {
        sub(origin, subject).with_extra_fields("thingId,attributes,features/*/properties/unit")
    };
    let hub = hub_of([
        enriched("owner", "user:owner"),
        enriched("restricted", "user:restricted"),
        sub("public", "user:public").with_extra_fields("attributes/secret,features"),
        sub("public-with-id", "user:public").with_extra_fields("thingId,attributes/secret"),
    ]);
    // An event everyone of them may see something of.
    let signal = attributes_event();
    let got = publish(&hub, &signal, None);
    let extra = |k: &str| got[k].extra.clone().map(Value::Object);
    let thing = thing();
    assert_eq!(
        extra("owner"),
        Some(json!({
            "thingId": thing["thingId"],
            "attributes": thing["attributes"],
            "features": {"temperature": {"properties": {"unit": "Celsius"}},
                         "humidity": {"properties": {"unit": "%"}}}
        }))
    );
    assert_eq!(
        extra("restricted"),
        Some(json!({
            "thingId": thing["thingId"],
            "attributes": {"public": {"location": "Kitchen"}, "count": 43},
            "features": {"temperature": {"properties": {"unit": "Celsius"}},
                         "humidity": {"properties": {"unit": "%"}}}
        }))
    );
    // Nothing readable selected: no `extra` at all.
    assert_eq!(extra("public"), None);
    assert_eq!(got["public"].to_json().get("extra"), None);
    // The identity fields stay for whoever may read something of the thing.
    assert_eq!(
        extra("public-with-id"),
        Some(json!({"thingId": thing["thingId"]}))
    );

    // A deleted thing has nothing to enrich with.
    let enforcer = enforcer();
    let deleted = event(NS, "deleted", "/", None);
    let ctx = PublishContext::new(Kind::TwinEvents).with_enforcer(&enforcer);
    let mut extras = Vec::new();
    hub.publish(&deleted, &ctx, |_, env| extras.push(env.extra));
    assert_eq!(extras, vec![None; 4]);
}

#[test]
fn a_filter_cannot_probe_what_the_subscriber_may_not_read() {
    let probe = |origin: &str, subject: &str| {
        sub(origin, subject)
            .with_extra_fields("attributes/secret")
            .with_filter("exists(attributes/secret/pin)")
            .unwrap()
    };
    let hub = hub_of([
        probe("owner", "user:owner"),
        probe("restricted", "user:restricted"),
    ]);
    // Neither in the event nor in the extra fields is the secret readable for `restricted`.
    assert_eq!(receivers(&hub, &attributes_event()), ["owner"]);
    assert_eq!(receivers(&hub, &temperature_event()), ["owner"]);
}

#[test]
fn invalid_filters_and_selectors_are_refused_with_dittos_errors() {
    let err = sub("a", "user:owner")
        .with_filter("eq(attributes/location,kitchen)")
        .unwrap_err();
    assert_eq!(err.status, 400);
    assert_eq!(err.code(), "rql.expression.invalid");
    assert_eq!(
        err.to_json()["message"],
        "Invalid RQL at position 23: expected a value (a number, a quoted string, true, false, \
         null or time:<placeholder>), found 'k'"
    );
    // An unknown property is an error too.
    let err = sub("a", "user:owner")
        .with_filter("eq(location,\"kitchen\")")
        .unwrap_err();
    assert_eq!(err.code(), "rql.expression.invalid");

    let mut hub = Hub::new();
    let err = hub
        .subscribe(sub("a", "user:owner").with_extra_fields("attributes(location"))
        .unwrap_err();
    assert_eq!(
        (err.status, err.code()),
        (400, "json.fieldselector.invalid")
    );
    let err = hub
        .subscribe(sub("a", "user:owner").with_extra_fields("attributes/{{ foo:bar }}"))
        .unwrap_err();
    assert_eq!((err.status, err.code()), (400, "placeholder:unresolved"));
    assert!(hub.is_empty());
}

#[test]
fn subscribers_elsewhere_are_never_evaluated() {
    let mut hub = Hub::new();
    for i in 0..1000 {
        hub.subscribe(
            sub(&format!("acme-{i}"), "user:owner")
                .with_namespaces(["com.acme"])
                .with_filter("gt(features/temperature/properties/value,0)")
                .unwrap(),
        )
        .unwrap();
        hub.subscribe(Subscription::new(
            SubscriberId::new(format!("live-{i}"), "live"),
            auth("user:owner"),
            Kind::LiveEvents,
        ))
        .unwrap();
    }
    hub.subscribe(sub("mine", "user:owner").with_namespaces([NS]))
        .unwrap();
    hub.subscribe(sub("everywhere", "user:stranger")).unwrap();
    let before = hub.stats();
    assert_eq!(
        receivers(&hub, &temperature_event()),
        ["mine"],
        "the stranger is evaluated and refused"
    );
    let after = hub.stats();
    assert_eq!(after.evaluated - before.evaluated, 2);
    assert_eq!(after.delivered - before.delivered, 1);
    assert_eq!(after.subscriptions, 2002);

    // The other namespace's subscribers are all there.
    let acme = event(
        "com.acme",
        "modified",
        "/features/temperature/properties/value",
        Some(json!(1)),
    );
    assert_eq!(receivers(&hub, &acme).len(), 1000);
    assert_eq!(hub.stats().evaluated - after.evaluated, 1001);
}

#[test]
fn publishing_tells_why_a_subscriber_got_nothing() {
    let hub = hub_of([
        sub("origin", "user:owner"),
        sub("stranger", "user:stranger"),
        sub("cold", "user:owner")
            .with_filter("lt(features/temperature/properties/value,20)")
            .unwrap(),
        sub("attributes", "user:owner")
            .with_filter(r#"like(resource:path,"/attributes*")"#)
            .unwrap(),
        sub("got-it", "user:owner"),
        sub("elsewhere", "user:owner").with_namespaces(["com.acme"]),
    ]);
    let enforcer = enforcer();
    let ctx = PublishContext::new(Kind::TwinEvents)
        .with_enforcer(&enforcer)
        .with_origin("origin");
    let mut outcomes = BTreeMap::new();
    let delivered = hub.publish_each(&temperature_event(), &ctx, |id, outcome| {
        outcomes.insert(id.origin().to_owned(), outcome.map(|_| ()));
    });
    assert_eq!(delivered, 1);
    let expected: BTreeMap<String, Result<(), Skipped>> = [
        ("origin", Err(Skipped::OwnOrigin)),
        ("stranger", Err(Skipped::NotReadable)),
        ("cold", Err(Skipped::FilteredOut)),
        ("attributes", Err(Skipped::FilteredOut)),
        ("got-it", Ok(())),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    assert_eq!(
        outcomes, expected,
        "the other namespace's subscriber is not looked at"
    );
}
