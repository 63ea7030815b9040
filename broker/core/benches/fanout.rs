//! Event fan-out through the pub/sub hub (issue 5, item 7): one twin event published to 1,000
//! subscribers with mixed filters (a third none, a third on a thing field, a third on
//! `topic:`/`resource:` placeholders) and extra fields on half, each cut to what it may READ
//! through a compiled policy; beside, in the same run, the baseline of unfiltered fan-out (the
//! envelope cloned to 1,000 subscribers), the hub with 1,000 plain subscribers, and 1,000
//! subscribers in another namespace (the index should make them cost nothing).
//!
//! `cargo bench -p twinwire-core --bench fanout` (release). Every figure is the median of
//! `TWINWIRE_BENCH_ROUNDS` rounds (default 9) of `TWINWIRE_BENCH_EVENTS` events each (default
//! 200). Single-threaded; the sink drops each delivery (through `black_box`), in the baseline
//! too.

/// The allocator the `twinwire` binary uses, so the figures are the broker's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use serde_json::{json, Value};
use std::hint::black_box;
use std::time::{Duration, Instant};
use twinwire_bench::{env_number, median, report, Row};
use twinwire_core::auth::AuthContext;
use twinwire_core::policies::enforcer::Enforcer;
use twinwire_core::routing::pubsub::{Hub, Kind, PublishContext, SubscriberId, Subscription};
use twinwire_protocol::Envelope;

const NS: &str = "org.eclipse.ditto";
const OTHER_NS: &str = "com.acme";
const SUBSCRIBERS: usize = 1_000;

fn no_imports(_: &str) -> Option<Value> {
    None
}

/// Three roles: `role:full` reads everything; `role:restricted` everything but the secret
/// attributes and the raw temperature; `role:public` the public attributes and the
/// temperature feature.
fn policy() -> Value {
    let read = json!({"grant": ["READ"], "revoke": []});
    let revoke = json!({"grant": [], "revoke": ["READ"]});
    json!({"policyId": format!("{NS}:bench"), "entries": {
        "full": {"subjects": {"role:full": {"type": "role"}},
                 "resources": {"thing:/": read}},
        "restricted": {"subjects": {"role:restricted": {"type": "role"}},
                       "resources": {"thing:/": read,
                                     "thing:/attributes/secret": revoke,
                                     "thing:/features/temperature/properties/raw": revoke}},
        "public": {"subjects": {"role:public": {"type": "role"}},
                   "resources": {"thing:/attributes/public": read,
                                 "thing:/features/temperature": read}}
    }})
}

/// The thing after the event: 10 attributes, 3 features.
fn thing() -> Value {
    let mut attributes = serde_json::Map::new();
    for i in 0..7 {
        attributes.insert(format!("a{i}"), json!(format!("value {i}")));
    }
    attributes.insert("public".into(), json!({"location": "Kitchen", "floor": 2}));
    attributes.insert("secret".into(), json!({"pin": 1234}));
    attributes.insert("count".into(), json!(42));
    json!({
        "thingId": format!("{NS}:bench"),
        "policyId": format!("{NS}:bench"),
        "attributes": attributes,
        "features": {
            "temperature": {"properties": {
                "value": 23.42, "unit": "Celsius", "raw": 2342, "status": "ok"}},
            "humidity": {"properties": {"value": 45, "unit": "%"}},
            "lamp": {"properties": {"on": true}}
        }
    })
}

fn event(namespace: &str) -> Envelope {
    Envelope::from_json(json!({
        "topic": format!("{namespace}/bench/things/twin/events/modified"),
        "headers": {"correlation-id": "bench-1", "content-type": "application/json"},
        "path": "/features/temperature/properties",
        "value": {"value": 23.42, "unit": "Celsius", "raw": 2342, "status": "ok"},
        "revision": 34,
        "timestamp": "2026-01-01T00:00:00Z"
    }))
    .expect("event")
}

/// Subscriber `i` acts as its own subject plus a role (half full, a quarter restricted, a
/// quarter public), so no two share an authorization context; its filter is none, a thing
/// field (matching for every other one) or placeholders by `i % 3`; every other one asks for
/// extra fields (a fixed selector or a feature wildcard, alternately).
fn mixed(i: usize, namespace: &str) -> Subscription {
    let role = match i % 4 {
        0 | 1 => "role:full",
        2 => "role:restricted",
        _ => "role:public",
    };
    let auth = AuthContext::new([format!("integration:sub-{i}"), role.to_owned()]).expect("auth");
    let mut sub = Subscription::new(
        SubscriberId::new(format!("conn-{i}"), "target"),
        auth,
        Kind::TwinEvents,
    )
    .with_namespaces([namespace]);
    sub = match i % 3 {
        0 => sub,
        1 => {
            let threshold = if (i / 3).is_multiple_of(2) { 20 } else { 30 };
            sub.with_filter(&format!(
                "gt(features/temperature/properties/value,{threshold})"
            ))
            .expect("filter")
        }
        _ => sub
            .with_filter(r#"and(eq(topic:action,"modified"),like(resource:path,"/features/*"))"#)
            .expect("filter"),
    };
    if i.is_multiple_of(2) {
        sub = sub.with_extra_fields(if (i / 2).is_multiple_of(2) {
            "attributes/public,attributes/count"
        } else {
            "features/*/properties/unit"
        });
    }
    sub
}

fn plain(i: usize) -> Subscription {
    let auth =
        AuthContext::new([format!("integration:sub-{i}"), "role:full".to_owned()]).expect("auth");
    Subscription::new(
        SubscriberId::new(format!("conn-{i}"), "target"),
        auth,
        Kind::TwinEvents,
    )
    .with_namespaces([NS])
}

fn hub_of(subs: impl IntoIterator<Item = Subscription>) -> Hub {
    let mut hub = Hub::new();
    for s in subs {
        hub.subscribe(s).expect("subscribe");
    }
    hub
}

/// Events per second of each case: the median over `rounds` rounds, each of which runs every
/// case for `events` events in turn, so that a busy moment of the machine falls on all of them
/// alike rather than on one.
fn measure_interleaved(rounds: usize, events: usize, cases: &mut [&mut dyn FnMut()]) -> Vec<f64> {
    let mut rates = vec![Vec::with_capacity(rounds); cases.len()];
    for _ in 0..rounds {
        for (case, rates) in cases.iter_mut().zip(&mut rates) {
            let start = Instant::now();
            for _ in 0..events {
                case();
            }
            rates.push(events as f64 / start.elapsed().max(Duration::from_nanos(1)).as_secs_f64());
        }
    }
    rates.iter().map(|r| median(r)).collect()
}

fn main() {
    let rounds = env_number("TWINWIRE_BENCH_ROUNDS", 9usize).max(1);
    let events = env_number("TWINWIRE_BENCH_EVENTS", 200usize).max(1);

    let enforcer = Enforcer::compile(&policy(), Some(NS), 0, &no_imports).expect("policy");
    let thing = thing();
    let signal = event(NS);
    let ctx = PublishContext::new(Kind::TwinEvents)
        .with_enforcer(&enforcer)
        .with_thing(&thing)
        .with_origin("conn-nobody")
        .with_now_millis(1_767_225_600_000);

    let mixed_hub = hub_of((0..SUBSCRIBERS).map(|i| mixed(i, NS)));
    let crowded_hub = hub_of(
        (0..SUBSCRIBERS)
            .map(|i| mixed(i, NS))
            .chain((SUBSCRIBERS..2 * SUBSCRIBERS).map(|i| mixed(i, OTHER_NS))),
    );
    let elsewhere_hub = hub_of((0..SUBSCRIBERS).map(|i| mixed(i, OTHER_NS)));
    let plain_hub = hub_of((0..SUBSCRIBERS).map(plain));
    let ids: Vec<SubscriberId> = (0..SUBSCRIBERS)
        .map(|i| SubscriberId::new(format!("conn-{i}"), "target"))
        .collect();

    // What one event does to the mixed subscribers, checked once.
    let mut with_extra = 0;
    let delivered = mixed_hub.publish(&signal, &ctx, |_, env| {
        with_extra += usize::from(env.extra.is_some());
    });
    println!(
        "one twin event ({} bytes) to {SUBSCRIBERS} subscribers through a 3-role policy: \
         {delivered} deliveries, {with_extra} with extra; median of {rounds} rounds of {events} events",
        signal.to_json_string().len()
    );
    println!();
    println!(
        "{:<70} | {:>10} | {:>13} | {:>9} | {:>6} | {:>7}",
        "fan-out", "events/s", "deliveries/s", "µs/event", "deliv.", "x base"
    );

    let sink = |id: &SubscriberId, env: Envelope| {
        black_box((id, env));
    };
    let hubs: [(&str, &Hub); 4] = [
        (
            "hub: 1,000 plain (READ all, no filter, no extra)",
            &plain_hub,
        ),
        (
            "hub: 1,000 mixed (READ-cut, filters, extra on half)",
            &mixed_hub,
        ),
        (
            "hub: 1,000 mixed + 1,000 in another namespace",
            &crowded_hub,
        ),
        ("hub: only 1,000 in another namespace", &elsewhere_hub),
    ];
    let mut names = vec!["baseline: clone the envelope to 1,000".to_owned()];
    let mut per_event = vec![SUBSCRIBERS];
    for (name, hub) in hubs {
        per_event.push(hub.publish(&signal, &ctx, sink));
        let before = hub.stats().evaluated;
        hub.publish(&signal, &ctx, sink);
        names.push(format!(
            "{name} [{} evaluated]",
            hub.stats().evaluated - before
        ));
    }

    let mut baseline = || {
        for id in &ids {
            sink(id, black_box(&signal).clone());
        }
    };
    let (signal, ctx) = (&signal, &ctx);
    let mut publishers: Vec<Box<dyn FnMut()>> = hubs
        .iter()
        .map(|(_, hub)| {
            let publish = move || {
                hub.publish(black_box(signal), ctx, sink);
            };
            Box::new(publish) as Box<dyn FnMut()>
        })
        .collect();
    let mut cases: Vec<&mut dyn FnMut()> = vec![&mut baseline];
    cases.extend(
        publishers
            .iter_mut()
            .map(|p| p.as_mut() as &mut dyn FnMut()),
    );
    let rates = measure_interleaved(rounds, events, &mut cases);

    for ((name, rate), per_event) in names.iter().zip(&rates).zip(per_event) {
        println!(
            "{:<70} | {:>10.0} | {:>13.0} | {:>9.3} | {:>6} | {:>7.3}",
            name,
            rate,
            rate * per_event as f64,
            1e6 / rate,
            per_event,
            rates[0] / rate
        );
    }
    let rows: Vec<Row> = hubs
        .iter()
        .zip(&rates[1..])
        .map(|((name, _), rate)| {
            Row::new(name.trim_start_matches("hub: "), "events/s", *rate)
                .baseline("clone to 1,000", rates[0])
        })
        .collect();
    report(&rows);
}
