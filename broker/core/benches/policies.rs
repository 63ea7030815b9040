//! The compiled policy enforcer (issue 4, item 7): permission checks per second at path depths
//! 1, 3 and 6 against a policy of 10 entries × 10 resources; the cost of a READ-filtered
//! retrieve of a thing with 100 attributes beside an unfiltered one (a clone of the same value,
//! which is what an unfiltered retrieve does) in the same run; and compile time per policy.
//!
//! `cargo bench -p twinwire-core --bench policies` (release). Every figure is the median of
//! `TWINWIRE_BENCH_ROUNDS` rounds (default 9); a round runs `TWINWIRE_BENCH_CHECKS` checks
//! (default 2,000,000), 20,000 retrieves or 2,000 compiles. Single-threaded.

/// The allocator the `twinwire` binary uses, so the figures are the broker's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use serde_json::{json, Map, Value};
use std::hint::black_box;
use std::time::{Duration, Instant};
use twinwire_bench::{env_number, median, report, Row};
use twinwire_core::policies::enforcer::{Enforcer, Permission};
use twinwire_protocol::JsonPointer;

const RETRIEVES: usize = 20_000;
const COMPILES: usize = 2_000;

fn no_imports(_: &str) -> Option<Value> {
    None
}

fn grant_revoke(grant: &[&str], revoke: &[&str]) -> Value {
    json!({"grant": grant, "revoke": revoke})
}

/// 10 entries × 10 resources: entry i holds two subjects; resource j of entry i is
/// `/features/f{j}/properties/p{i}/x/y` cut to depth 1 + (i + j) % 6, READ granted (WRITE too
/// for even j), WRITE revoked where j is a multiple of 3. Plus nothing else: 100 resources.
fn wide_policy() -> Value {
    let mut entries = Map::new();
    for i in 0..10 {
        let mut resources = Map::new();
        for j in 0..10 {
            let full = [
                "features".to_owned(),
                format!("f{j}"),
                "properties".to_owned(),
                format!("p{i}"),
                "x".to_owned(),
                "y".to_owned(),
            ];
            let depth = 1 + (i + j) % 6;
            let key = format!("thing:/{}", full[..depth].join("/"));
            let grant: &[&str] = if j % 2 == 0 {
                &["READ", "WRITE"]
            } else {
                &["READ"]
            };
            let revoke: &[&str] = if j % 3 == 0 { &["WRITE"] } else { &[] };
            resources.insert(key, grant_revoke(grant, revoke));
        }
        entries.insert(
            format!("entry-{i}"),
            json!({"subjects": {
                    format!("nginx:user-{i}"): {"type": "user"},
                    format!("integration:conn-{i}"): {"type": "connection"}},
                   "resources": resources}),
        );
    }
    json!({"policyId": "org.eclipse.ditto:bench-wide", "entries": entries})
}

/// READ and WRITE on the thing for one subject, READ revoked on every tenth of 100 attributes.
fn retrieve_policy() -> Value {
    let mut hidden = Map::new();
    for k in (0..100).step_by(10) {
        hidden.insert(
            format!("thing:/attributes/a{k:03}"),
            grant_revoke(&[], &["READ"]),
        );
    }
    json!({"policyId": "org.eclipse.ditto:bench-retrieve", "entries": {
        "owner": {"subjects": {"nginx:owner": {"type": "user"}},
                  "resources": {"thing:/": grant_revoke(&["READ", "WRITE"], &[]),
                                "policy:/": grant_revoke(&["READ", "WRITE"], &[])}},
        "reader": {"subjects": {"nginx:reader": {"type": "user"}},
                   "resources": {"thing:/": grant_revoke(&["READ"], &[])}},
        "hidden": {"subjects": {"nginx:reader": {"type": "user"}}, "resources": hidden}
    }})
}

/// 100 attributes (numbers, strings and small objects by turns) and three features.
fn thing_with_100_attributes() -> Value {
    let mut attributes = Map::new();
    for k in 0..100 {
        let value = match k % 3 {
            0 => json!(k * 7),
            1 => json!(format!("value-{k}")),
            _ => json!({"x": k, "unit": "mm", "ok": true}),
        };
        attributes.insert(format!("a{k:03}"), value);
    }
    json!({
        "thingId": "org.eclipse.ditto:bench-thing",
        "policyId": "org.eclipse.ditto:bench-retrieve",
        "definition": "org.eclipse.ditto:bench:1.0.0",
        "attributes": attributes,
        "features": {
            "lamp": {"properties": {"on": true, "color": {"r": 255, "g": 0, "b": 0}}},
            "fuel": {"properties": {"level": 40.5, "unit": "%"}},
            "location": {"properties": {"lat": 47.1, "lon": 8.5}}
        }
    })
}

/// The median over `rounds` of `per_round` runs of `f`: (runs per second, ns per run).
fn measure(rounds: usize, per_round: usize, mut f: impl FnMut()) -> (f64, f64) {
    let mut rates = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        for _ in 0..per_round {
            f();
        }
        rates.push(per_round as f64 / start.elapsed().max(Duration::from_nanos(1)).as_secs_f64());
    }
    let rate = median(&rates);
    (rate, 1e9 / rate)
}

fn main() {
    let rounds = env_number("TWINWIRE_BENCH_ROUNDS", 9usize).max(1);
    let checks = env_number("TWINWIRE_BENCH_CHECKS", 2_000_000usize).max(1);
    let mut reported = Vec::new();

    let wide = wide_policy();
    let enforcer =
        Enforcer::compile(&wide, Some("org.eclipse.ditto"), 0, &no_imports).expect("compile");
    let subjects = ["nginx:user-4", "integration:someone-else"];
    println!(
        "policy: 10 entries x 10 resources ({enforcer:?}); {} subjects a check, one of them in the policy; median of {rounds} rounds",
        subjects.len()
    );
    println!();
    println!(
        "{:<64} | {:>14} | {:>8} | {:>7}",
        "check", "checks/s", "ns/check", "answer"
    );
    let cases: [(&str, &str, bool); 5] = [
        ("has_permission READ, depth 1", "/features", false),
        (
            "has_permission READ, depth 3",
            "/features/f3/properties",
            false,
        ),
        (
            "has_permission READ, depth 6",
            "/features/f1/properties/p4/x/y",
            false,
        ),
        (
            "has_permission WRITE, depth 6",
            "/features/f7/properties/p4/x/y",
            false,
        ),
        (
            "has_partial_permission READ, depth 3",
            "/features/f3/properties",
            true,
        ),
    ];
    for (name, path, partial) in cases {
        let pointer = JsonPointer::parse(path).expect("pointer");
        let permission = if name.contains("WRITE") {
            Permission::Write
        } else {
            Permission::Read
        };
        let check = || {
            if partial {
                enforcer.has_partial_permission(
                    black_box(&subjects),
                    "thing",
                    black_box(&pointer),
                    permission,
                )
            } else {
                enforcer.has_permission(
                    black_box(&subjects),
                    "thing",
                    black_box(&pointer),
                    permission,
                )
            }
        };
        let answer = check();
        let (rate, ns) = measure(rounds, checks, || {
            black_box(check());
        });
        reported.push(Row::new(name, "checks/s", rate));
        println!(
            "{:<64} | {:>14.0} | {:>8.1} | {:>7}",
            format!("{name} ({path})"),
            rate,
            ns,
            answer
        );
    }

    let thing = thing_with_100_attributes();
    let retrieve = retrieve_policy();
    let enforcer =
        Enforcer::compile(&retrieve, Some("org.eclipse.ditto"), 0, &no_imports).expect("compile");
    let root = JsonPointer::root();
    let reader_view = enforcer
        .filter_readable(&["nginx:reader"], "thing", &root, &thing)
        .expect("view");
    assert_eq!(
        reader_view["attributes"].as_object().map(Map::len),
        Some(90),
        "10 attributes revoked"
    );
    assert_eq!(
        enforcer.filter_readable(&["nginx:owner"], "thing", &root, &thing),
        Some(thing.clone())
    );
    println!();
    println!(
        "retrieve of a thing with 100 attributes ({} bytes as JSON), one retrieve = the whole thing",
        thing.to_string().len()
    );
    println!(
        "{:<64} | {:>14} | {:>8} | {:>7}",
        "retrieve", "retrieves/s", "µs", "x clone"
    );
    let (_, clone_ns) = measure(rounds, RETRIEVES, || {
        black_box(black_box(&thing).clone());
    });
    let rows: [(&str, &str); 2] = [
        ("filter_readable, READ on all (owner)", "nginx:owner"),
        (
            "filter_readable, 10 of 100 attributes revoked (reader)",
            "nginx:reader",
        ),
    ];
    println!(
        "{:<64} | {:>14.0} | {:>8.2} | {:>7.2}",
        "unfiltered (clone of the thing)",
        1e9 / clone_ns,
        clone_ns / 1000.0,
        1.0
    );
    for (name, subject) in rows {
        let (rate, ns) = measure(rounds, RETRIEVES, || {
            black_box(enforcer.filter_readable(&[subject], "thing", &root, black_box(&thing)));
        });
        println!(
            "{:<64} | {:>14.0} | {:>8.2} | {:>7.2}",
            name,
            rate,
            ns / 1000.0,
            ns / clone_ns
        );
        reported.push(
            Row::new(format!("retrieve, {name}"), "retrieves/s", rate)
                .baseline("clone of the thing", 1e9 / clone_ns),
        );
    }

    println!();
    println!("{:<64} | {:>14} | {:>8}", "compile", "compiles/s", "µs");
    for (name, policy) in [
        ("10 entries x 10 resources", &wide),
        ("retrieve policy (3 entries, 12 resources)", &retrieve),
    ] {
        let (rate, ns) = measure(rounds, COMPILES, || {
            black_box(
                Enforcer::compile(black_box(policy), Some("org.eclipse.ditto"), 0, &no_imports)
                    .expect("compile"),
            );
        });
        println!("{:<64} | {:>14.0} | {:>8.2}", name, rate, ns / 1000.0);
        reported.push(Row::new(format!("compile, {name}"), "compiles/s", rate));
    }
    report(&reported);
}
