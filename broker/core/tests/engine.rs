//! The twin engine with a real journal in a temp directory: bounded memory with eviction and
//! reload, retrieveThings across shards, history by timestamp, per-thing ordering under
//! concurrency, and read-your-writes only once durable.

use serde_json::{json, Value};
use std::sync::Arc;
use twinwire_core::auth::AuthContext;
use twinwire_core::journal::{Journal, JournalConfig, RedbStore};
use twinwire_core::things::{EngineConfig, ThingEngine};
use twinwire_protocol::Envelope;

fn engine(dir: &std::path::Path, config: EngineConfig) -> ThingEngine {
    let store = RedbStore::open(dir).expect("open store");
    let journal = Journal::start(Arc::new(store), JournalConfig::default()).expect("journal");
    ThingEngine::start(journal, config)
}

fn command(
    thing: &str,
    action: &str,
    path: &str,
    value: Option<Value>,
    headers: Value,
) -> Envelope {
    let mut v = json!({"topic": format!("org.eclipse.ditto/{thing}/things/twin/commands/{action}"), "headers": headers, "path": path});
    if let Some(value) = value {
        v["value"] = value;
    }
    Envelope::from_json(v).expect("envelope")
}

fn auth() -> AuthContext {
    AuthContext::new(["pre-authenticated:engine-test"]).expect("subject")
}

/// Executes and waits until durable; the response as JSON.
async fn run(engine: &ThingEngine, envelope: Envelope) -> Value {
    let executed = engine.execute(envelope, &auth()).await;
    executed.durable.await.expect("durable");
    executed.response.to_json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn things_beyond_the_memory_bound_are_evicted_and_reloaded() {
    // Only 4 things in memory: the others come back from snapshots and events. Then 4 parsed
    // and the rest compact in memory: they come back from their bytes.
    for (max_things, max_parsed) in [(4, 4), (100, 4)] {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = EngineConfig {
            shards: 2,
            max_things_in_memory: max_things,
            max_parsed_things: max_parsed,
            snapshot_every: 3,
            ..EngineConfig::default()
        };
        let engine = engine(dir.path(), config);
        for n in 0..40 {
            let thing = format!("evict-{n}");
            let r = run(
                &engine,
                command(
                    &thing,
                    "create",
                    "/",
                    Some(json!({"attributes": {"n": n}})),
                    json!({}),
                ),
            )
            .await;
            assert_eq!(r["status"], 201);
            for k in 0..4 {
                run(
                    &engine,
                    command(&thing, "modify", "/attributes/k", Some(json!(k)), json!({})),
                )
                .await;
            }
        }
        for n in 0..40 {
            let r = run(
                &engine,
                command(&format!("evict-{n}"), "retrieve", "/", None, json!({})),
            )
            .await;
            assert_eq!(
                r["value"]["attributes"],
                json!({"n": n, "k": 3}),
                "thing {n} with {max_things}/{max_parsed}"
            );
            assert_eq!(r["headers"]["etag"], "\"rev:5\"");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrieve_things_answers_the_found_ones_in_order() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine(dir.path(), EngineConfig::default());
    for n in ["a", "b", "c"] {
        run(
            &engine,
            command(
                n,
                "create",
                "/",
                Some(json!({"attributes": {"name": n, "x": 1}})),
                json!({}),
            ),
        )
        .await;
    }
    let mut env = Envelope::from_json(json!({
        "topic": "_/_/things/twin/commands/retrieve", "headers": {"correlation-id": "many"}, "path": "/",
        "value": {"thingIds": ["org.eclipse.ditto:c", "org.eclipse.ditto:missing", "org.eclipse.ditto:a"]}
    }))
    .expect("envelope");
    env.fields = Some("thingId,attributes(name)".into());
    let r = run(&engine, env).await;
    assert_eq!(
        r["topic"],
        "org.eclipse.ditto/_/things/twin/commands/retrieve"
    );
    assert_eq!(
        r["value"],
        json!([{"thingId": "org.eclipse.ditto:c", "attributes": {"name": "c"}}, {"thingId": "org.eclipse.ditto:a", "attributes": {"name": "a"}}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_by_timestamp_and_persisted_headers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = EngineConfig {
        historical_headers: vec!["ditto-originator".into()],
        ..EngineConfig::default()
    };
    let engine = engine(dir.path(), config);
    run(
        &engine,
        command(
            "h",
            "create",
            "/",
            Some(json!({"attributes": {"v": 1}})),
            json!({"ditto-originator": "nginx:alice"}),
        ),
    )
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    let between = chrono::Utc::now()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    run(
        &engine,
        command(
            "h",
            "modify",
            "/attributes/v",
            Some(json!(2)),
            json!({"ditto-originator": "nginx:bob"}),
        ),
    )
    .await;
    let r = run(
        &engine,
        command(
            "h",
            "retrieve",
            "/attributes/v",
            None,
            json!({"at-historical-timestamp": between}),
        ),
    )
    .await;
    assert_eq!(r["value"], 1);
    assert_eq!(
        r["headers"]["historical-headers"],
        json!({"ditto-originator": "nginx:alice"})
    );
    let r = run(
        &engine,
        command(
            "h",
            "retrieve",
            "/",
            None,
            json!({"at-historical-timestamp": "2000-01-01T00:00:00Z"}),
        ),
    )
    .await;
    assert_eq!(r["value"]["error"], "things:thing.history.notfound");
    let r = run(
        &engine,
        command("h", "retrieve", "/attributes/v", None, json!({})),
    )
    .await;
    assert_eq!(r["value"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_things_commands_apply_in_submission_order_while_others_run_alongside() {
    let dir = tempfile::tempdir().expect("temp dir");
    let engine = engine(
        dir.path(),
        EngineConfig {
            shards: 4,
            ..EngineConfig::default()
        },
    );
    for t in 0..8 {
        run(
            &engine,
            command(
                &format!("order-{t}"),
                "create",
                "/",
                Some(json!({})),
                json!({}),
            ),
        )
        .await;
    }
    // Submit in order, await all at once: each thing's revisions follow its submissions.
    let mut pending = Vec::new();
    for i in 0..400u64 {
        let t = i % 8;
        let env = command(
            &format!("order-{t}"),
            "modify",
            "/attributes/i",
            Some(json!(i)),
            json!({}),
        );
        pending.push((t, i, engine.submit(env, &auth()).await));
    }
    let mut last: Vec<(u64, u64)> = vec![(0, 1); 8];
    for (t, i, submitted) in pending {
        let executed = submitted.await;
        executed.durable.await.expect("durable");
        let revision = executed.events[0].revision.expect("revision");
        let (_, last_revision) = last[t as usize];
        assert_eq!(revision, last_revision + 1, "thing {t}, command {i}");
        last[t as usize] = (i, revision);
    }
    for t in 0..8u64 {
        let r = run(
            &engine,
            command(
                &format!("order-{t}"),
                "retrieve",
                "/attributes/i",
                None,
                json!({}),
            ),
        )
        .await;
        assert_eq!(r["value"], json!(392 + t), "the last submitted value wins");
    }
    engine.shutdown().await.expect("flush on shutdown");
}
