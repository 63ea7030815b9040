//! The compiled policy enforcer as a permission matrix (issue 4): grants and revokes at the root,
//! on attributes, one attribute, features, one feature and properties; READ versus WRITE;
//! several subjects; an expired subject; imports (implicit, explicit, never, the entries list,
//! transitive); entry namespaces; and the example policy of docs/basic-policy.md. Each case
//! states what `has_permission` and `has_partial_permission` answer and exactly what
//! `filter_readable` leaves of a thing.

use serde_json::{json, Value};
use twinwire_core::policies::enforcer::{Enforcer, EnforcerError, Permission};
use twinwire_protocol::JsonPointer;

const NAMESPACE: &str = "org.eclipse.ditto";
/// 2026-01-01T00:00:00Z
const NOW: i64 = 1_767_225_600_000;

fn no_imports(_: &str) -> Option<Value> {
    None
}

fn pointer(path: &str) -> JsonPointer {
    JsonPointer::parse(path).expect("pointer")
}

/// Two characters: READ then WRITE, each `R`/`W` when granted on the path and everything
/// below (`has_permission`), `r`/`w` when only on something at or below it
/// (`has_partial_permission`), `-` when neither.
fn rights(e: &Enforcer, subjects: &[&str], resource_type: &str, path: &str) -> String {
    let path = pointer(path);
    [(Permission::Read, 'R', 'r'), (Permission::Write, 'W', 'w')]
        .into_iter()
        .map(|(permission, full, partial)| {
            let unrestricted = e.has_permission(subjects, resource_type, &path, permission);
            let some = e.has_partial_permission(subjects, resource_type, &path, permission);
            assert!(!unrestricted || some, "unrestricted implies partial");
            match (unrestricted, some) {
                (true, _) => full,
                (false, true) => partial,
                (false, false) => '-',
            }
        })
        .collect()
}

/// `rights` at each of `paths` of the thing, space-separated.
fn row(e: &Enforcer, subjects: &[&str], paths: &[&str]) -> String {
    paths
        .iter()
        .map(|p| rights(e, subjects, "thing", p))
        .collect::<Vec<_>>()
        .join(" ")
}

fn filtered(e: &Enforcer, subjects: &[&str], path: &str, value: &Value) -> Option<Value> {
    e.filter_readable(subjects, "thing", &pointer(path), value)
}

/// The filtered thing as a string, so key order is checked too.
fn filtered_text(e: &Enforcer, subjects: &[&str], value: &Value) -> Option<String> {
    filtered(e, subjects, "/", value).map(|v| v.to_string())
}

fn grant(permissions: &[&str]) -> Value {
    json!({"grant": permissions, "revoke": []})
}

fn revoke(permissions: &[&str]) -> Value {
    json!({"grant": [], "revoke": permissions})
}

fn entry(subjects: &[&str], resources: Value) -> Value {
    let subjects: serde_json::Map<String, Value> = subjects
        .iter()
        .map(|s| ((*s).to_owned(), json!({"type": "test"})))
        .collect();
    json!({"subjects": subjects, "resources": resources})
}

fn matrix_policy() -> Value {
    json!({
        "policyId": "org.eclipse.ditto:matrix",
        "entries": {
            "owner": entry(&["nginx:root-rw"], json!({
                "thing:/": grant(&["READ", "WRITE"]),
                "policy:/": grant(&["READ", "WRITE"]),
                "message:/": grant(&["READ", "WRITE"])})),
            "reader": entry(&["nginx:root-r"], json!({"thing:/": grant(&["READ"])})),
            "no-attributes": entry(&["nginx:no-attributes"], json!({
                "thing:/": grant(&["READ", "WRITE"]),
                "thing:/attributes": revoke(&["READ", "WRITE"])})),
            "attributes": entry(&["nginx:attributes"], json!({"thing:/attributes": grant(&["READ", "WRITE"])})),
            "serial": entry(&["nginx:serial"], json!({"thing:/attributes/serial": grant(&["READ"])})),
            "no-secret": entry(&["nginx:no-secret"], json!({
                "thing:/": grant(&["READ"]),
                "thing:/attributes/secret": revoke(&["READ"])})),
            "features": entry(&["nginx:features"], json!({"thing:/features": grant(&["READ"])})),
            "lamp": entry(&["nginx:lamp"], json!({"thing:/features/lamp": grant(&["READ", "WRITE"])})),
            "no-lamp": entry(&["nginx:no-lamp"], json!({
                "thing:/": grant(&["READ", "WRITE"]),
                "thing:/features/lamp": revoke(&["READ", "WRITE"])})),
            "lamp-properties": entry(&["nginx:lamp-properties"],
                json!({"thing:/features/lamp/properties": grant(&["READ", "WRITE"])})),
            "regrant": entry(&["nginx:regrant"], json!({
                "thing:/": grant(&["READ"]),
                "thing:/features": revoke(&["READ"]),
                "thing:/features/fuel/properties/level": grant(&["READ"])})),
            "write-only": entry(&["nginx:write-only"], json!({"thing:/attributes": grant(&["WRITE"])})),
            "team": entry(&["integration:granted", "integration:revoked"], json!({"thing:/": grant(&["READ"])})),
            "team-revoke": entry(&["integration:revoked"], json!({"thing:/attributes": revoke(&["READ"])})),
            "team-grant": entry(&["integration:granted"], json!({"thing:/attributes/location": grant(&["READ"])})),
            "temporary": {
                "subjects": {
                    "google:expired": {"type": "test", "expiry": "2025-12-31T23:00:00Z"},
                    "google:valid": {"type": "test", "expiry": "2099-12-31T23:59:59Z"}
                },
                "resources": {"thing:/": grant(&["READ", "WRITE"])}
            }
        }
    })
}

fn matrix_thing() -> Value {
    json!({
        "thingId": "org.eclipse.ditto:matrix",
        "policyId": "org.eclipse.ditto:matrix",
        "attributes": {"location": {"lat": 1, "lon": 2}, "serial": "A-1", "secret": "s3cr3t"},
        "features": {
            "lamp": {"properties": {"on": true, "color": "red"}, "desiredProperties": {"on": false}},
            "fuel": {"properties": {"level": 40, "unit": "%"}}
        }
    })
}

const PATHS: [&str; 11] = [
    "/",
    "/attributes",
    "/attributes/location",
    "/attributes/serial",
    "/attributes/secret",
    "/features",
    "/features/lamp",
    "/features/lamp/properties",
    "/features/lamp/properties/on",
    "/features/fuel",
    "/features/fuel/properties/level",
];

#[test]
fn permission_matrix() {
    let e =
        Enforcer::compile(&matrix_policy(), Some(NAMESPACE), NOW, &no_imports).expect("compile");
    let all_rw = ["RW"; 11].join(" ");
    let all_r = ["R-"; 11].join(" ");
    let none = ["--"; 11].join(" ");
    #[rustfmt::skip]
    let expected: &[(&[&str], &str)] = &[
        //                                      /  attrs loc serial secret feats lamp props on fuel level
        (&["nginx:root-rw"], &all_rw),
        (&["nginx:root-r"], &all_r),
        (&["nginx:no-attributes"],             "rw -- -- -- -- RW RW RW RW RW RW"),
        (&["nginx:attributes"],                "rw RW RW RW RW -- -- -- -- -- --"),
        (&["nginx:serial"],                    "r- r- -- R- -- -- -- -- -- -- --"),
        (&["nginx:no-secret"],                 "r- r- R- R- -- R- R- R- R- R- R-"),
        (&["nginx:features"],                  "r- -- -- -- -- R- R- R- R- R- R-"),
        (&["nginx:lamp"],                      "rw -- -- -- -- rw RW RW RW -- --"),
        (&["nginx:no-lamp"],                   "rw RW RW RW RW rw -- -- -- RW RW"),
        (&["nginx:lamp-properties"],           "rw -- -- -- -- rw rw RW RW -- --"),
        // Revoked on /features, granted again deeper on fuel's level.
        (&["nginx:regrant"],                   "r- R- R- R- R- r- -- -- -- r- R-"),
        // WRITE does not imply READ.
        (&["nginx:write-only"],                "-w -W -W -W -W -- -- -- -- -- --"),
        // Several subjects: the nearest grant or revoke among them decides, a revoke wins a tie.
        (&["integration:granted"], &all_r),
        (&["integration:revoked"],             "r- -- -- -- -- R- R- R- R- R- R-"),
        (&["integration:granted", "integration:revoked"],
                                               "r- r- R- -- -- R- R- R- R- R- R-"),
        // root-r's grant comes from the root, revoked's revoke from /attributes: nearer.
        (&["integration:revoked", "nginx:root-r"],
                                               "r- -- -- -- -- R- R- R- R- R- R-"),
        // An expired subject counts as deleted.
        (&["google:expired"], &none),
        (&["google:valid"], &all_rw),
        (&["nginx:nobody"], &none),
    ];
    for (subjects, rights) in expected {
        assert_eq!(&row(&e, subjects, &PATHS), rights, "{subjects:?}");
    }
    assert_eq!(
        e.next_expiry_millis(),
        Some(4_102_444_799_000),
        "2099-12-31T23:59:59Z"
    );
}

#[test]
fn permission_matrix_filtered_views() {
    let e =
        Enforcer::compile(&matrix_policy(), Some(NAMESPACE), NOW, &no_imports).expect("compile");
    let thing = matrix_thing();
    let full = thing.to_string();
    let view = |subjects: &[&str]| filtered_text(&e, subjects, &thing);
    let text = |v: Value| Some(v.to_string());

    assert_eq!(view(&["nginx:root-rw"]), Some(full.clone()));
    assert_eq!(view(&["nginx:root-r"]), Some(full.clone()));
    assert_eq!(
        view(&["nginx:no-attributes"]),
        text(
            json!({"thingId": "org.eclipse.ditto:matrix", "policyId": "org.eclipse.ditto:matrix",
                    "features": thing["features"]})
        )
    );
    // READ only below the root: the thingId stays (and comes first), the policyId goes.
    assert_eq!(
        view(&["nginx:attributes"]),
        text(json!({"thingId": "org.eclipse.ditto:matrix", "attributes": thing["attributes"]}))
    );
    assert_eq!(
        view(&["nginx:serial"]),
        text(json!({"thingId": "org.eclipse.ditto:matrix", "attributes": {"serial": "A-1"}}))
    );
    assert_eq!(
        view(&["nginx:no-secret"]),
        text(
            json!({"thingId": "org.eclipse.ditto:matrix", "policyId": "org.eclipse.ditto:matrix",
                    "attributes": {"location": {"lat": 1, "lon": 2}, "serial": "A-1"},
                    "features": thing["features"]})
        )
    );
    assert_eq!(
        view(&["nginx:features"]),
        text(json!({"thingId": "org.eclipse.ditto:matrix", "features": thing["features"]}))
    );
    assert_eq!(
        view(&["nginx:lamp"]),
        text(json!({"thingId": "org.eclipse.ditto:matrix",
                    "features": {"lamp": thing["features"]["lamp"]}}))
    );
    assert_eq!(
        view(&["nginx:no-lamp"]),
        text(
            json!({"thingId": "org.eclipse.ditto:matrix", "policyId": "org.eclipse.ditto:matrix",
                    "attributes": thing["attributes"],
                    "features": {"fuel": thing["features"]["fuel"]}})
        )
    );
    assert_eq!(
        view(&["nginx:lamp-properties"]),
        text(json!({"thingId": "org.eclipse.ditto:matrix",
                    "features": {"lamp": {"properties": {"on": true, "color": "red"}}}}))
    );
    assert_eq!(
        view(&["nginx:regrant"]),
        text(
            json!({"thingId": "org.eclipse.ditto:matrix", "policyId": "org.eclipse.ditto:matrix",
                    "attributes": thing["attributes"],
                    "features": {"fuel": {"properties": {"level": 40}}}})
        )
    );
    assert_eq!(
        view(&["nginx:write-only"]),
        None,
        "WRITE does not imply READ"
    );
    assert_eq!(view(&["integration:granted"]), Some(full.clone()));
    assert_eq!(
        view(&["integration:revoked"]),
        text(
            json!({"thingId": "org.eclipse.ditto:matrix", "policyId": "org.eclipse.ditto:matrix",
                    "features": thing["features"]})
        )
    );
    assert_eq!(
        view(&["integration:granted", "integration:revoked"]),
        text(
            json!({"thingId": "org.eclipse.ditto:matrix", "policyId": "org.eclipse.ditto:matrix",
                    "attributes": {"location": {"lat": 1, "lon": 2}},
                    "features": thing["features"]})
        )
    );
    assert_eq!(view(&["google:expired"]), None);
    assert_eq!(view(&["google:valid"]), Some(full));
    assert_eq!(view(&["nginx:nobody"]), None);

    // Below the root: no identity fields, the value at the path is cut the same way.
    assert_eq!(
        filtered(&e, &["nginx:regrant"], "/features", &thing["features"]),
        Some(json!({"fuel": {"properties": {"level": 40}}}))
    );
    assert_eq!(
        filtered(
            &e,
            &["nginx:no-secret"],
            "/attributes",
            &thing["attributes"]
        ),
        Some(json!({"location": {"lat": 1, "lon": 2}, "serial": "A-1"}))
    );
    assert_eq!(
        filtered(
            &e,
            &["nginx:lamp-properties"],
            "/features/lamp",
            &thing["features"]["lamp"]
        ),
        Some(json!({"properties": {"on": true, "color": "red"}}))
    );
    assert_eq!(
        filtered(&e, &["nginx:serial"], "/attributes/serial", &json!("A-1")),
        Some(json!("A-1"))
    );
    assert_eq!(
        filtered(
            &e,
            &["nginx:no-secret"],
            "/attributes/secret",
            &json!("s3cr3t")
        ),
        None
    );
    assert_eq!(
        filtered(&e, &["nginx:attributes"], "/features", &thing["features"]),
        None
    );
}

#[test]
fn policy_and_message_resources() {
    let e =
        Enforcer::compile(&matrix_policy(), Some(NAMESPACE), NOW, &no_imports).expect("compile");
    assert_eq!(rights(&e, &["nginx:root-rw"], "policy", "/"), "RW");
    assert_eq!(
        rights(&e, &["nginx:root-rw"], "policy", "/entries/owner/subjects"),
        "RW"
    );
    assert_eq!(
        rights(&e, &["nginx:root-rw"], "message", "/inbox/messages/open"),
        "RW"
    );
    // A grant on thing:/ says nothing about the policy or the messages.
    assert_eq!(rights(&e, &["nginx:root-r"], "policy", "/"), "--");
    assert_eq!(rights(&e, &["nginx:root-r"], "message", "/"), "--");
    assert!(!e.has_permission(
        &["nginx:root-rw"],
        "policy",
        &pointer("/"),
        Permission::Execute
    ));
    let policy = json!({"policyId": "org.eclipse.ditto:matrix", "entries": {}, "_revision": 3});
    assert_eq!(
        e.filter_readable(&["nginx:root-rw"], "policy", &pointer("/"), &policy),
        Some(policy.clone())
    );
    assert_eq!(
        e.filter_readable(&["nginx:root-r"], "policy", &pointer("/"), &policy),
        None
    );
}

fn shared_policy() -> Value {
    json!({
        "policyId": "org.eclipse.ditto:shared",
        "entries": {
            "IMPLICIT": entry(&["integration:implicit"], json!({"thing:/attributes": grant(&["READ"])})),
            "DENY-SECRET": {
                "subjects": {"integration:implicit": {"type": "test"}},
                "resources": {"thing:/attributes/secret": revoke(&["READ"])},
                "importable": "implicit"
            },
            "EXPLICIT": {
                "subjects": {"integration:explicit": {"type": "test"}},
                "resources": {"thing:/features": grant(&["READ"])},
                "importable": "explicit"
            },
            "NEVER": {
                "subjects": {"integration:never": {"type": "test"}},
                "resources": {"thing:/": grant(&["READ", "WRITE"])},
                "importable": "never"
            }
        }
    })
}

fn importing_policy(import: Value) -> Value {
    json!({
        "policyId": "org.eclipse.ditto:importing",
        "imports": {"org.eclipse.ditto:shared": import},
        "entries": {
            "owner": entry(&["nginx:owner"], json!({"policy:/": grant(&["READ", "WRITE"])})),
            // Evaluated together with the imported entries, as if in one policy.
            "own": entry(&["integration:implicit"], json!({"thing:/features/fuel": grant(&["READ"])}))
        }
    })
}

#[test]
fn imports_implicit_explicit_never() {
    let load = |id: &str| (id == "org.eclipse.ditto:shared").then(shared_policy);
    let thing = matrix_thing();
    let paths = [
        "/",
        "/attributes",
        "/attributes/secret",
        "/features",
        "/features/fuel",
    ];

    // No entries listed: the implicit ones only.
    let e = Enforcer::compile(&importing_policy(json!({})), Some(NAMESPACE), NOW, &load)
        .expect("compile");
    assert_eq!(e.imported_policy_ids(), ["org.eclipse.ditto:shared"]);
    assert_eq!(row(&e, &["integration:implicit"], &paths), "r- r- -- r- R-");
    assert_eq!(row(&e, &["integration:explicit"], &paths), "-- -- -- -- --");
    assert_eq!(row(&e, &["integration:never"], &paths), "-- -- -- -- --");
    assert_eq!(
        filtered_text(&e, &["integration:implicit"], &thing),
        Some(
            json!({"thingId": "org.eclipse.ditto:matrix",
                   "attributes": {"location": {"lat": 1, "lon": 2}, "serial": "A-1"},
                   "features": {"fuel": thing["features"]["fuel"]}})
            .to_string()
        )
    );
    assert_eq!(filtered_text(&e, &["integration:explicit"], &thing), None);

    // Listed: the explicit one joins; "never" stays out even when listed.
    let e = Enforcer::compile(
        &importing_policy(json!({"entries": ["EXPLICIT", "NEVER"]})),
        Some(NAMESPACE),
        NOW,
        &load,
    )
    .expect("compile");
    assert_eq!(row(&e, &["integration:implicit"], &paths), "r- r- -- r- R-");
    assert_eq!(row(&e, &["integration:explicit"], &paths), "r- -- -- R- R-");
    assert_eq!(row(&e, &["integration:never"], &paths), "-- -- -- -- --");
    assert_eq!(
        filtered_text(&e, &["integration:explicit"], &thing),
        Some(
            json!({"thingId": "org.eclipse.ditto:matrix", "features": thing["features"]})
                .to_string()
        )
    );

    // The imported policy gone: its entries with it; the own ones stay.
    let e = Enforcer::compile(
        &importing_policy(json!({})),
        Some(NAMESPACE),
        NOW,
        &no_imports,
    )
    .expect("compile");
    assert_eq!(row(&e, &["integration:implicit"], &paths), "r- -- -- r- R-");
    assert_eq!(rights(&e, &["nginx:owner"], "policy", "/"), "RW");
}

#[test]
fn imports_transitive_template_hierarchy() {
    // docs/basic-policy.md, "Use case: template-based policy hierarchies".
    let fleet_roles = json!({"policyId": "acme:fleet-roles", "entries": {"driver": {
        "subjects": {},
        "resources": {
            "thing:/features/location": grant(&["READ"]),
            "thing:/features/fuel": grant(&["READ"]),
            "message:/features/fuel/inbox": grant(&["WRITE"])
        },
        "namespaces": ["acme.vehicle"], "allowedAdditions": ["subjects"], "importable": "implicit"
    }}});
    let fleet_west = json!({"policyId": "acme:fleet-west", "imports": {"acme:fleet-roles": {}}, "entries": {
        "driver": {
            "references": [{"import": "acme:fleet-roles", "entry": "driver"}],
            "subjects": {"oauth2:alice@acme.com": {"type": "employee"}, "oauth2:bob@acme.com": {"type": "employee"}}
        }
    }});
    let truck = |import: Value| {
        json!({"policyId": "acme.vehicle:truck-42", "imports": {"acme:fleet-west": import}, "entries": {
            "driver": {
                "references": [{"import": "acme:fleet-west", "entry": "driver"}],
                "subjects": {"oauth2:charlie@acme.com": {"type": "temp-driver"}},
                // Stripped: the template allows subjects to be added, nothing else.
                "resources": {"thing:/": grant(&["READ", "WRITE"])}
            },
            "owner": {
                "subjects": {"oauth2:fleet-admin@acme.com": {"type": "admin"}},
                "resources": {"policy:/": grant(&["READ", "WRITE"])}
            }
        }})
    };
    let load = |id: &str| match id {
        "acme:fleet-roles" => Some(fleet_roles.clone()),
        "acme:fleet-west" => Some(fleet_west.clone()),
        _ => None,
    };
    let paths = ["/", "/attributes", "/features/location", "/features/fuel"];

    let e = Enforcer::compile(
        &truck(json!({"transitiveImports": ["acme:fleet-roles"]})),
        Some("acme.vehicle"),
        NOW,
        &load,
    )
    .expect("compile");
    assert_eq!(
        e.imported_policy_ids(),
        ["acme:fleet-west", "acme:fleet-roles"]
    );
    for driver in [
        "oauth2:alice@acme.com",
        "oauth2:bob@acme.com",
        "oauth2:charlie@acme.com",
    ] {
        assert_eq!(row(&e, &[driver], &paths), "r- -- R- R-", "{driver}");
        assert_eq!(
            rights(&e, &[driver], "message", "/features/fuel/inbox"),
            "-W"
        );
        assert_eq!(rights(&e, &[driver], "policy", "/"), "--");
    }
    assert_eq!(
        rights(&e, &["oauth2:fleet-admin@acme.com"], "policy", "/"),
        "RW"
    );
    let thing = json!({"thingId": "acme.vehicle:truck-42", "features": {
        "location": {"properties": {"lat": 1}}, "fuel": {"properties": {"level": 9}}, "engine": {}}});
    assert_eq!(
        filtered_text(&e, &["oauth2:charlie@acme.com"], &thing),
        Some(
            json!({"thingId": "acme.vehicle:truck-42", "features": {
                "location": {"properties": {"lat": 1}}, "fuel": {"properties": {"level": 9}}}})
            .to_string()
        )
    );

    // The template's entry is restricted to the namespace acme.vehicle.
    let e = Enforcer::compile(
        &truck(json!({"transitiveImports": ["acme:fleet-roles"]})),
        Some("acme.trailer"),
        NOW,
        &load,
    )
    .expect("compile");
    assert_eq!(row(&e, &["oauth2:charlie@acme.com"], &paths), "-- -- -- --");
    assert_eq!(
        rights(&e, &["oauth2:fleet-admin@acme.com"], "policy", "/"),
        "RW"
    );

    // Without transitiveImports the intermediate policy cannot reach the template: the driver
    // entry has subjects but no resources of the template; its own resource is not stripped
    // either, as nothing restricts it.
    let e =
        Enforcer::compile(&truck(json!({})), Some("acme.vehicle"), NOW, &load).expect("compile");
    assert_eq!(e.imported_policy_ids(), ["acme:fleet-west"]);
    assert_eq!(row(&e, &["oauth2:charlie@acme.com"], &paths), "RW RW RW RW");
    assert_eq!(row(&e, &["oauth2:alice@acme.com"], &paths), "RW RW RW RW");
}

#[test]
fn imports_cycles_and_depth() {
    // a imports b (transitively c), b imports c (transitively b), c imports b: resolves.
    let policies = [
        json!({"policyId": "ns:b", "imports": {"ns:c": {"transitiveImports": ["ns:b"]}},
               "entries": {"e": entry(&["x:b"], json!({"thing:/b": grant(&["READ"])}))}}),
        json!({"policyId": "ns:c", "imports": {"ns:b": {"transitiveImports": ["ns:c"]}},
               "entries": {"e": entry(&["x:c"], json!({"thing:/c": grant(&["READ"])}))}}),
    ];
    let load = |id: &str| policies.iter().find(|p| p["policyId"] == id).cloned();
    let a = json!({"policyId": "ns:a", "imports": {"ns:b": {"transitiveImports": ["ns:c"]}}, "entries": {}});
    let e = Enforcer::compile(&a, None, NOW, &load).expect("compile");
    assert_eq!(rights(&e, &["x:b"], "thing", "/b"), "R-");
    // c's entry reached a through b's resolved entries.
    assert_eq!(rights(&e, &["x:c"], "thing", "/c"), "R-");

    // An endless chain of fresh policies, each whitelisting the next: refused at depth 10.
    let chain = |id: &str| {
        let n: u32 = id.trim_start_matches("ns:chain").parse().ok()?;
        Some(json!({"policyId": id, "entries": {},
            "imports": {format!("ns:chain{}", n + 1): {"transitiveImports": [format!("ns:chain{}", n + 2)]}}}))
    };
    let top = json!({"policyId": "ns:top", "entries": {},
                     "imports": {"ns:chain0": {"transitiveImports": ["ns:chain1"]}}});
    assert!(matches!(
        Enforcer::compile(&top, None, NOW, &chain),
        Err(EnforcerError::ImportsTooDeep { max: 10, .. })
    ));
}

#[test]
fn entry_namespaces() {
    let policy = json!({"policyId": "com.acme:tenants", "entries": {
        "TENANT_READER": {
            "subjects": {"test:bob": {"type": "pre-authenticated"}},
            "resources": {"thing:/": grant(&["READ"])},
            "namespaces": ["com.acme", "com.acme.*"]
        },
        "BASE_ONLY": {"subjects": {"test:alice": {"type": "t"}}, "resources": {"thing:/": grant(&["READ"])},
                      "namespaces": ["com.acme"]},
        "BELOW_ONLY": {"subjects": {"test:carol": {"type": "t"}}, "resources": {"thing:/": grant(&["READ"])},
                       "namespaces": ["com.acme.*"]},
        "EVERYWHERE": {"subjects": {"test:dave": {"type": "t"}}, "resources": {"thing:/": grant(&["READ"])}},
        "EMPTY_LIST": {"subjects": {"test:erin": {"type": "t"}}, "resources": {"thing:/": grant(&["READ"])},
                       "namespaces": []},
        "REVOKE_BELOW": {"subjects": {"test:dave": {"type": "t"}},
                         "resources": {"thing:/attributes": revoke(&["READ"])}, "namespaces": ["com.acme.*"]}
    }});
    let subjects = [
        "test:bob",
        "test:alice",
        "test:carol",
        "test:dave",
        "test:erin",
    ];
    #[rustfmt::skip]
    let expected = [
        // namespace                    bob   alice carol dave  erin   (READ on thing:/)
        (Some("com.acme"),              [true,  true,  false, true,  true]),
        (Some("com.acme.vehicles"),     [true,  false, true,  false, true]),
        (Some("com.acme.vehicles.eu"),  [true,  false, true,  false, true]),
        (Some("com.acmex"),             [false, false, false, true,  true]),
        (Some("org.eclipse.ditto"),     [false, false, false, true,  true]),
        // No namespace (a policy command): every entry counts.
        (None,                          [true,  true,  true,  false, true]),
    ];
    for (namespace, reads) in expected {
        let e = Enforcer::compile(&policy, namespace, NOW, &no_imports).expect("compile");
        for (subject, read) in subjects.iter().zip(reads) {
            assert_eq!(
                e.has_permission(&[*subject], "thing", &pointer("/"), Permission::Read),
                read,
                "{subject} in {namespace:?}"
            );
        }
    }
    // dave below com.acme: READ on the thing except its attributes.
    let e =
        Enforcer::compile(&policy, Some("com.acme.vehicles"), NOW, &no_imports).expect("compile");
    assert_eq!(
        filtered(
            &e,
            &["test:dave"],
            "/",
            &json!({"thingId": "com.acme.vehicles:t", "attributes": {"a": 1}, "features": {}})
        ),
        Some(json!({"thingId": "com.acme.vehicles:t", "features": {}}))
    );
}

/// The example at the end of docs/basic-policy.md.
#[test]
fn example_policy_of_the_docs() {
    let as_documented = json!({
      "policyId": "my.namespace:policy-a",
      "entries": {
        "owner": {
          "subjects": {"nginx:ditto": {"type": "nginx basic auth user"}},
          "resources": {
            "thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
            "policy:/": {"grant": ["READ", "WRITE"], "revoke": []},
            "message:/": {"grant": ["READ", "WRITE"], "revoke": []}
          }
        },
        "observer": {
          "subjects": {
            "nginx:observer-client": {"type": "technical client"},
            "nginx:some-users": {"type": "a group of users"}
          },
          "resources": {
            "thing:/features/featureX": {"grant": ["READ"], "revoke": []},
            "thing:/features/featureY": {"grant": ["READ"], "revoke": []}
          }
        },
        "private": {
          "subjects": {
            "nginx:some-users": {"type": "a group of users"},
            "resources": {
              "thing:/features/featureX/properties/location/city": {"grant": [], "revoke": ["READ"]}
            }
          }
        }
      }
    });
    // As printed, "resources" sits inside "subjects" of "private": a subject without a type,
    // which Ditto refuses.
    assert_eq!(
        Enforcer::compile(&as_documented, Some("my.namespace"), NOW, &no_imports).unwrap_err(),
        EnforcerError::Invalid {
            policy: "my.namespace:policy-a".into(),
            location: "/entries/private/subjects/resources/type".into(),
            problem: "the 'type' of the subject is missing",
        }
    );

    // As meant: "resources" one level up.
    let mut policy = as_documented;
    let private = &mut policy["entries"]["private"];
    let resources = private["subjects"]
        .as_object_mut()
        .and_then(|s| s.remove("resources"))
        .expect("nested resources");
    private["resources"] = resources;
    let e = Enforcer::compile(&policy, Some("my.namespace"), NOW, &no_imports).expect("compile");

    let paths = [
        "/",
        "/attributes",
        "/features/featureX",
        "/features/featureX/properties/location",
        "/features/featureX/properties/location/city",
        "/features/featureY",
        "/features/featureZ",
    ];
    assert_eq!(row(&e, &["nginx:ditto"], &paths), ["RW"; 7].join(" "));
    assert_eq!(rights(&e, &["nginx:ditto"], "policy", "/"), "RW");
    assert_eq!(
        rights(&e, &["nginx:ditto"], "message", "/features/featureX/inbox"),
        "RW"
    );
    assert_eq!(
        row(&e, &["nginx:observer-client"], &paths),
        "r- -- R- R- R- R- --"
    );
    assert_eq!(
        row(&e, &["nginx:some-users"], &paths),
        "r- -- r- r- -- R- --"
    );
    // Together, the revoke of some-users at the city is nearer than observer-client's grant.
    assert_eq!(
        row(&e, &["nginx:observer-client", "nginx:some-users"], &paths),
        "r- -- r- r- -- R- --"
    );
    assert_eq!(rights(&e, &["nginx:observer-client"], "policy", "/"), "--");

    let thing = json!({
        "thingId": "my.namespace:thing-0123",
        "policyId": "my.namespace:policy-a",
        "attributes": {"manufacturer": "ACME"},
        "features": {
            "featureX": {"properties": {"location": {"city": "Berlin", "street": "Unter den Linden"}, "on": true}},
            "featureY": {"properties": {"location": {"city": "Munich"}}},
            "featureZ": {"properties": {"level": 1}}
        }
    });
    assert_eq!(
        filtered_text(&e, &["nginx:ditto"], &thing),
        Some(thing.to_string())
    );
    assert_eq!(
        filtered_text(&e, &["nginx:observer-client"], &thing),
        Some(
            json!({"thingId": "my.namespace:thing-0123", "features": {
                "featureX": thing["features"]["featureX"], "featureY": thing["features"]["featureY"]}})
            .to_string()
        )
    );
    assert_eq!(
        filtered_text(&e, &["nginx:some-users"], &thing),
        Some(
            json!({"thingId": "my.namespace:thing-0123", "features": {
                "featureX": {"properties": {"location": {"street": "Unter den Linden"}, "on": true}},
                "featureY": thing["features"]["featureY"]}})
            .to_string()
        )
    );
}
