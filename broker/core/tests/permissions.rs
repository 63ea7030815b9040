//! The permission matrix of issue 4 through the engine, with a real journal: grants and revokes
//! at the root, attributes, one attribute, features, one feature and properties; READ versus
//! WRITE; several subjects; an expired subject; imports; a deleted policy; default, inline and
//! copied policies. Each command is allowed or refused with Ditto's error, and each retrieve and
//! event is cut to exactly the readable parts.

use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use twinwire_core::auth::AuthContext;
use twinwire_core::journal::{Journal, JournalConfig, RedbStore};
use twinwire_core::policies::state::PolicyConfig;
use twinwire_core::things::enforce::event_view;
use twinwire_core::things::{EngineConfig, ThingEngine};
use twinwire_protocol::Envelope;

const NS: &str = "org.eclipse.ditto";

fn engine(dir: &std::path::Path) -> ThingEngine {
    let store = RedbStore::open(dir).expect("store");
    let journal = Journal::start(Arc::new(store), JournalConfig::default()).expect("journal");
    // Expiries kept as written (no rounding up to the hour), so a test can wait for one.
    let rules = PolicyConfig {
        subject_expiry_granularity_secs: 0,
        ..PolicyConfig::default()
    };
    ThingEngine::start(
        journal,
        EngineConfig {
            policy_rules: rules,
            ..EngineConfig::default()
        },
    )
}

fn auth(subjects: &[&str]) -> AuthContext {
    AuthContext::new(subjects.iter().copied()).expect("subjects")
}

fn envelope(group: &str, name: &str, action: &str, path: &str, value: Option<Value>) -> Envelope {
    let topic = match group {
        "things" => format!("{NS}/{name}/things/twin/commands/{action}"),
        _ => format!("{NS}/{name}/policies/commands/{action}"),
    };
    let mut v = json!({"topic": topic, "headers": {"correlation-id": "c"}, "path": path});
    if let Some(value) = value {
        v["value"] = value;
    }
    Envelope::from_json(v).expect("envelope")
}

/// Runs a command as `who` and waits until durable: (status, value, the event if any).
async fn run(engine: &ThingEngine, who: &[&str], env: Envelope) -> (u64, Value, Option<Envelope>) {
    let executed = engine.execute(env, &auth(who)).await;
    executed.durable.await.expect("durable");
    let r = executed.response.to_json();
    (
        r["status"].as_u64().unwrap_or(0),
        r.get("value").cloned().unwrap_or(Value::Null),
        executed.events.into_iter().next(),
    )
}

async fn thing(
    engine: &ThingEngine,
    who: &[&str],
    action: &str,
    path: &str,
    value: Option<Value>,
) -> (u64, Value) {
    let (status, value, _) =
        run(engine, who, envelope("things", "lamp", action, path, value)).await;
    (status, value)
}

fn error(value: &Value) -> &str {
    value["error"].as_str().unwrap_or("-")
}

const ADMIN: &str = "nginx:admin";
const READER: &str = "nginx:reader";
const ATTR: &str = "nginx:attr-writer";
const FEAT: &str = "nginx:lamp-reader";
const PROPS: &str = "nginx:props-writer";
const NOBODY: &str = "nginx:nobody";
const IMPORTED: &str = "nginx:imported";
const SOON_GONE: &str = "nginx:soon-gone";

fn rw() -> Value {
    json!({"grant": ["READ", "WRITE"], "revoke": []})
}

fn read() -> Value {
    json!({"grant": ["READ"], "revoke": []})
}

fn entry(subject: &str, resources: Value) -> Value {
    json!({"subjects": {subject: {"type": "test"}}, "resources": resources})
}

async fn setup(engine: &ThingEngine, expiry: &str) {
    let shared = json!({"entries": {"SHARED": {
        "subjects": {IMPORTED: {"type": "test"}},
        "resources": {"thing:/attributes/public": read()},
        "importable": "explicit"
    }, "OWNER": entry(ADMIN, json!({"policy:/": rw()}))}});
    let (s, v, _) = run(
        engine,
        &[ADMIN],
        envelope("policies", "shared", "create", "/", Some(shared)),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let policy = json!({
        "imports": {format!("{NS}:shared"): {"entries": ["SHARED"]}},
        "entries": {
            "ADMIN": entry(ADMIN, json!({"thing:/": rw(), "policy:/": rw(), "message:/": rw()})),
            "READER": entry(READER, json!({"thing:/": read(), "thing:/attributes/secret": {"grant": [], "revoke": ["READ"]}})),
            "ATTR": entry(ATTR, json!({"thing:/attributes": rw()})),
            "FEAT": entry(FEAT, json!({"thing:/features/lamp": read()})),
            "PROPS": entry(PROPS, json!({"thing:/features/lamp/properties": rw()})),
            "EXPIRING": {"subjects": {SOON_GONE: {"type": "test", "expiry": expiry}}, "resources": {"thing:/": read()}}
        }
    });
    let (s, v, _) = run(
        engine,
        &[ADMIN],
        envelope("policies", "lamp-policy", "create", "/", Some(policy)),
    )
    .await;
    assert_eq!(s, 201, "{v}");
    let lamp = json!({"policyId": format!("{NS}:lamp-policy"),
        "attributes": {"public": 1, "secret": 2},
        "features": {"lamp": {"properties": {"on": true}, "desiredProperties": {"on": false}}, "fan": {"properties": {"rpm": 1}}}});
    let (s, v) = thing(engine, &[ADMIN], "create", "/", Some(lamp)).await;
    assert_eq!(s, 201, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_permission_matrix() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine(dir.path());
    let expiry = (chrono::Utc::now() + chrono::Duration::milliseconds(1500))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    setup(&engine, &expiry).await;

    // The admin reads and writes everything.
    let (s, v) = thing(&engine, &[ADMIN], "retrieve", "/", None).await;
    assert_eq!(
        (s, v["attributes"].clone()),
        (200, json!({"public": 1, "secret": 2}))
    );

    // READ at the root with a revoke on one attribute: that attribute is cut out.
    let (s, v) = thing(&engine, &[READER], "retrieve", "/", None).await;
    assert_eq!(s, 200);
    assert_eq!(v["attributes"], json!({"public": 1}));
    assert_eq!(v["features"]["fan"], json!({"properties": {"rpm": 1}}));
    let (s, v) = thing(&engine, &[READER], "retrieve", "/attributes/secret", None).await;
    assert_eq!((s, error(&v)), (404, "things:attribute.notfound"));
    // READ without WRITE: a change is not modifiable, because the subject may see it.
    let (s, v) = thing(
        &engine,
        &[READER],
        "modify",
        "/attributes/public",
        Some(json!(5)),
    )
    .await;
    assert_eq!((s, error(&v)), (403, "things:attribute.notmodifiable"));
    // ...and for the revoked attribute it is not found: nobody learns what they may not read.
    let (s, v) = thing(
        &engine,
        &[READER],
        "modify",
        "/attributes/secret",
        Some(json!(5)),
    )
    .await;
    assert_eq!((s, error(&v)), (404, "things:attribute.notfound"));

    // WRITE on the attributes only.
    let (s, _) = thing(
        &engine,
        &[ATTR],
        "modify",
        "/attributes/public",
        Some(json!(3)),
    )
    .await;
    assert_eq!(s, 204);
    let (s, v) = thing(&engine, &[ATTR], "retrieve", "/", None).await;
    assert_eq!(
        (s, v["attributes"].clone(), v.get("features")),
        (200, json!({"public": 3, "secret": 2}), None)
    );
    assert_eq!(
        v["thingId"],
        format!("{NS}:lamp"),
        "the thing ID is always readable"
    );
    let (s, v) = thing(&engine, &[ATTR], "retrieve", "/features", None).await;
    assert_eq!((s, error(&v)), (404, "things:features.notfound"));
    let (s, v) = thing(&engine, &[ATTR], "delete", "/features/fan", None).await;
    assert_eq!((s, error(&v)), (404, "things:feature.notfound"));

    // READ on one feature.
    let (s, v) = thing(&engine, &[FEAT], "retrieve", "/features", None).await;
    assert_eq!(
        (s, v.clone()),
        (
            200,
            json!({"lamp": {"properties": {"on": true}, "desiredProperties": {"on": false}}})
        )
    );
    let (s, v) = thing(
        &engine,
        &[FEAT],
        "modify",
        "/features/lamp/properties/on",
        Some(json!(false)),
    )
    .await;
    assert_eq!(
        (s, error(&v)),
        (403, "things:feature.property.notmodifiable")
    );

    // READ and WRITE on one feature's properties: a merge touching more than that is refused whole.
    let (s, _) = thing(
        &engine,
        &[PROPS],
        "modify",
        "/features/lamp/properties/on",
        Some(json!(false)),
    )
    .await;
    assert_eq!(s, 204);
    let patch = json!({"properties": {"on": true}, "desiredProperties": {"on": true}});
    let (s, v) = thing(&engine, &[PROPS], "merge", "/features/lamp", Some(patch)).await;
    assert_eq!((s, error(&v)), (403, "things:feature.notmodifiable"));
    let (s, _) = thing(
        &engine,
        &[PROPS],
        "merge",
        "/features/lamp",
        Some(json!({"properties": {"on": true}})),
    )
    .await;
    assert_eq!(s, 204);

    // A condition may only read what the requester may read.
    let secret = envelope(
        "things",
        "lamp",
        "modify",
        "/attributes/public",
        Some(json!(3)),
    );
    let mut conditional = secret.clone();
    conditional
        .headers
        .insert("condition", "eq(attributes/secret,2)");
    let (s, v, _) = run(&engine, &[ATTR], conditional.clone()).await;
    assert_eq!((s, error(&v)), (204, "-"), "ATTR may read the secret: {v}");
    // A revoke for one of the subjects wins over a grant for another, as in Ditto.
    let (s, v, _) = run(&engine, &[READER, ATTR], conditional).await;
    assert_eq!((s, error(&v)), (412, "things:condition.failed"));
    let mut conditional = secret;
    conditional
        .headers
        .insert("condition", "eq(attributes/secret,2)");
    let (s, v, _) = run(&engine, &[READER], conditional).await;
    assert_eq!((s, error(&v)), (412, "things:condition.failed"));
    assert!(v["message"]
        .as_str()
        .unwrap_or_default()
        .contains("insufficient permissions"));

    // Nobody: everything is not found.
    let (s, v) = thing(&engine, &[NOBODY], "retrieve", "/", None).await;
    assert_eq!((s, error(&v)), (404, "things:thing.notfound"));
    let (s, v) = thing(
        &engine,
        &[NOBODY],
        "modify",
        "/attributes/public",
        Some(json!(1)),
    )
    .await;
    assert_eq!((s, error(&v)), (404, "things:attribute.notfound"));

    // Several subjects: the rights of any of them.
    let (s, v) = thing(
        &engine,
        &[NOBODY, READER],
        "retrieve",
        "/attributes/public",
        None,
    )
    .await;
    assert_eq!((s, v), (200, json!(3)));

    // An imported entry.
    let (s, v) = thing(&engine, &[IMPORTED], "retrieve", "/", None).await;
    assert_eq!((s, v["attributes"].clone()), (200, json!({"public": 3})));

    // An expiring subject reads until its expiry, then nothing.
    let (s, _) = thing(
        &engine,
        &[SOON_GONE],
        "retrieve",
        "/attributes/public",
        None,
    )
    .await;
    assert_eq!(s, 200);
    tokio::time::sleep(Duration::from_millis(1700)).await;
    let (s, v) = thing(
        &engine,
        &[SOON_GONE],
        "retrieve",
        "/attributes/public",
        None,
    )
    .await;
    assert_eq!((s, error(&v)), (404, "things:attribute.notfound"));

    // ...and the policy no longer has it: it was deleted at its expiry.
    let subjects = envelope(
        "policies",
        "lamp-policy",
        "retrieve",
        "/entries/EXPIRING/subjects",
        None,
    );
    let (s, v, _) = run(&engine, &[ADMIN], subjects).await;
    assert_eq!((s, v), (200, json!({})));

    // Events: each subscriber sees exactly what it may read.
    let (_, _, event) = run(
        &engine,
        &[ADMIN],
        envelope(
            "things",
            "lamp",
            "modify",
            "/attributes",
            Some(json!({"public": 7, "secret": 8})),
        ),
    )
    .await;
    let event = event.expect("an event");
    let compiled = engine
        .enforcers()
        .enforcer(&format!("{NS}:lamp-policy"), NS)
        .expect("policy")
        .expect("exists");
    let seen = |who: &str| {
        event_view(&compiled.enforcer, &auth(&[who]), &event)
            .map(|e| e.value.unwrap_or(Value::Null))
    };
    assert_eq!(seen(ADMIN), Some(json!({"public": 7, "secret": 8})));
    assert_eq!(seen(READER), Some(json!({"public": 7})));
    assert_eq!(seen(ATTR), Some(json!({"public": 7, "secret": 8})));
    assert_eq!(seen(FEAT), None);
    assert_eq!(seen(NOBODY), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_things_get_default_inline_or_copied_policies_and_lose_access_with_their_policy() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine(dir.path());
    let creator = "nginx:creator";
    // No policy given: a default policy with the thing's ID for the creating subject.
    let create = envelope(
        "things",
        "auto",
        "create",
        "/",
        Some(json!({"attributes": {"a": 1}})),
    );
    let (s, v, _) = run(&engine, &[creator, READER], create).await;
    assert_eq!(
        (s, v["policyId"].clone()),
        (201, json!(format!("{NS}:auto")))
    );
    let (s, v, _) = run(
        &engine,
        &[creator],
        envelope(
            "policies",
            "auto",
            "retrieve",
            "/entries/DEFAULT/subjects",
            None,
        ),
    )
    .await;
    assert_eq!(
        (s, v),
        (200, json!({creator: {"type": "generated"}})),
        "the first subject only"
    );
    let (s, _, _) = run(
        &engine,
        &[READER],
        envelope("things", "auto", "retrieve", "/", None),
    )
    .await;
    assert_eq!(s, 404);

    // An inline policy.
    let inline = json!({"_policy": {"entries": {"ALL": entry(READER, json!({"thing:/": rw(), "policy:/": rw()}))}}});
    let (s, v, _) = run(
        &engine,
        &[READER],
        envelope("things", "inline", "create", "/", Some(inline)),
    )
    .await;
    assert_eq!(
        (s, v["policyId"].clone()),
        (201, json!(format!("{NS}:inline"))),
        "{v}"
    );
    assert!(v.get("_policy").is_none());

    // A copy of that policy, through a reference to the thing, under the thing's own ID.
    let copy = json!({"_copyPolicyFrom": format!("{{{{ ref:things/{NS}:inline/policyId }}}}")});
    let (s, v, _) = run(
        &engine,
        &[READER],
        envelope("things", "copy", "create", "/", Some(copy)),
    )
    .await;
    assert_eq!(
        (s, v["policyId"].clone()),
        (201, json!(format!("{NS}:copy"))),
        "{v}"
    );
    let (s, _, _) = run(
        &engine,
        &[READER],
        envelope("policies", "copy", "retrieve", "/entries/ALL", None),
    )
    .await;
    assert_eq!(s, 200);

    // A policyId that does not exist: the thing cannot be created.
    let missing = json!({"policyId": format!("{NS}:missing")});
    let (s, v, _) = run(
        &engine,
        &[creator],
        envelope("things", "orphan", "create", "/", Some(missing)),
    )
    .await;
    assert_eq!((s, error(&v)), (400, "things:thing.notcreatable"));

    // Policy commands are enforced on `policy:/` and refused naming their resource.
    let (s, v, _) = run(
        &engine,
        &[READER],
        envelope("policies", "auto", "retrieve", "/entries/DEFAULT", None),
    )
    .await;
    assert_eq!((s, error(&v)), (404, "policies:entry.notfound"));
    let subject = format!("/entries/DEFAULT/subjects/{creator}");
    let (s, v, _) = run(
        &engine,
        &[READER],
        envelope("policies", "auto", "delete", &subject, None),
    )
    .await;
    assert_eq!((s, error(&v)), (404, "policies:subject.notfound"));

    // Deleting a thing's policy makes the thing inaccessible, as in Ditto.
    let (s, _, _) = run(
        &engine,
        &[creator],
        envelope("policies", "auto", "delete", "/", None),
    )
    .await;
    assert_eq!(s, 204);
    let (s, v, _) = run(
        &engine,
        &[creator],
        envelope("things", "auto", "retrieve", "/", None),
    )
    .await;
    assert_eq!((s, error(&v)), (404, "things:thing.notfound"));
}

/// A policy change applies to every command submitted after it, even before either is awaited:
/// a revoke submitted just before a modify refuses that modify.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_applies_to_the_very_next_command() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine(dir.path());
    let policy = json!({"entries": {
        "ADMIN": entry(ADMIN, json!({"thing:/": rw(), "policy:/": rw()})),
        "WRITER": entry(ATTR, json!({"thing:/attributes": rw()}))
    }});
    let (s, _, _) = run(
        &engine,
        &[ADMIN],
        envelope("policies", "order", "create", "/", Some(policy)),
    )
    .await;
    assert_eq!(s, 201);
    let thing = json!({"policyId": format!("{NS}:order"), "attributes": {"a": 1}});
    let (s, _, _) = run(
        &engine,
        &[ADMIN],
        envelope("things", "ordered", "create", "/", Some(thing)),
    )
    .await;
    assert_eq!(s, 201);
    let revoke = envelope("policies", "order", "delete", "/entries/WRITER", None);
    let modify = envelope(
        "things",
        "ordered",
        "modify",
        "/attributes/a",
        Some(json!(2)),
    );
    let revoked = engine.submit(revoke, &auth(&[ADMIN])).await;
    let modified = engine.submit(modify, &auth(&[ATTR])).await;
    let (revoked, modified) = (revoked.await, modified.await);
    assert_eq!(revoked.response.status, Some(204));
    assert_eq!(
        modified.response.status,
        Some(404),
        "{}",
        modified.response.to_json()
    );
}
