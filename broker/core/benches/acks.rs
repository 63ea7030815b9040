//! Acknowledgement round trip through the router (issue 5, item 7): a twin modify requesting a
//! custom label, its event published once durable to a subscribed connection, the
//! connection's ack sent back through the router, and the aggregated answer. Beside it, in the
//! same run and interleaved round by round: the baseline of the same modify answered at
//! `twin-persisted` (durable, no subscriber in the loop), and both labels together.
//!
//! `cargo bench -p twinwire-core --bench acks` (release, a journal with fsync in a temp
//! directory). Latency: one request at a time, p50 and p99 over `TWINWIRE_BENCH_ROUNDS` rounds
//! (default 5) of `TWINWIRE_BENCH_REQUESTS` requests per variant (default 1,000). Throughput:
//! `TWINWIRE_BENCH_IN_FLIGHT` requests in flight (default 64) on distinct things, four times as
//! many requests per round, the median of the rounds.

/// The allocator the `twinwire` binary uses, so the figures are the broker's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use twinwire_bench::{env_number, median, ms, percentile, report, Row};
use twinwire_core::auth::AuthContext;
use twinwire_core::journal::{Journal, JournalConfig, RedbStore};
use twinwire_core::routing::acks::AckIssuer;
use twinwire_core::routing::pubsub::{Kind, SubscriberId, Subscription};
use twinwire_core::routing::{Requester, Router};
use twinwire_core::things::EngineConfig;
use twinwire_protocol::Envelope;

const NS: &str = "org.eclipse.ditto";
const LABEL: &str = "c1:custom";

fn auth() -> AuthContext {
    AuthContext::new(["user:bench"]).expect("subject")
}

fn command(thing: &str, n: usize, labels: &[&str]) -> Envelope {
    Envelope::from_json(json!({
        "topic": format!("{NS}/{thing}/things/twin/commands/modify"),
        "headers": {"requested-acks": labels, "timeout": "10s"},
        "path": "/attributes/n", "value": n
    }))
    .expect("command")
}

/// The connection `c1`: subscribed to twin events, acknowledging `c1:custom` on each.
fn acknowledging_connection(router: &Router) {
    router
        .acks()
        .declared()
        .declare_connection("c1", &[LABEL])
        .expect("declared");
    let (sender, mut events) = mpsc::channel::<Envelope>(4096);
    let sub = Subscription::new(SubscriberId::new("c1", "target"), auth(), Kind::TwinEvents);
    router
        .subscribe(sub, Some(AckIssuer::Connection("c1".into())), sender)
        .expect("subscribed");
    let router = router.clone();
    tokio::spawn(async move {
        let from = Requester::connection("c1", auth());
        while let Some(event) = events.recv().await {
            let wanted = event
                .headers
                .requested_acks()
                .ok()
                .flatten()
                .is_some_and(|l| l.iter().any(|l| l.as_str() == LABEL));
            if !wanted {
                continue;
            }
            let ack = Envelope::from_json(json!({
                "topic": format!("{}/{}/things/twin/acks/{LABEL}", event.topic.namespace, event.topic.name),
                "headers": {"correlation-id": event.headers.correlation_id().unwrap_or_default()},
                "path": "/", "status": 200
            }))
            .expect("ack");
            router.handle(ack, &from).await;
        }
    });
}

async fn one(router: &Router, thing: &str, n: usize, labels: &[&str]) -> Duration {
    let started = Instant::now();
    let answer = router
        .handle(
            command(thing, n, labels),
            &Requester::connection("source", auth()),
        )
        .await;
    let elapsed = started.elapsed();
    let status = answer.reply.and_then(|r| r.status);
    assert!(matches!(status, Some(200 | 204)), "{labels:?}: {status:?}");
    elapsed
}

fn main() {
    let rounds = env_number("TWINWIRE_BENCH_ROUNDS", 5usize).max(1);
    let requests = env_number("TWINWIRE_BENCH_REQUESTS", 1_000usize).max(1);
    let in_flight = env_number("TWINWIRE_BENCH_IN_FLIGHT", 64usize).max(1);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = RedbStore::open(dir.path()).expect("store");
        let journal = Journal::start(Arc::new(store), JournalConfig::default()).expect("journal");
        let router = Router::start(journal, EngineConfig::default());
        let things: Vec<String> = (0..in_flight).map(|i| format!("bench-{i}")).collect();
        for thing in &things {
            let create = Envelope::from_json(json!({
                "topic": format!("{NS}/{thing}/things/twin/commands/create"),
                "path": "/", "value": {"attributes": {"n": 0}}
            }))
            .expect("create");
            let answer = router.handle(create, &Requester::http(auth())).await;
            assert_eq!(answer.reply.and_then(|r| r.status), Some(201));
        }
        acknowledging_connection(&router);

        let variants: [(&str, &[&str]); 3] = [
            ("baseline: twin-persisted (durable, no subscriber)", &["twin-persisted"]),
            ("custom label acked by a subscribed connection", &[LABEL]),
            ("twin-persisted + custom label", &["twin-persisted", LABEL]),
        ];
        let mut latencies: Vec<Vec<Duration>> = vec![Vec::new(); variants.len()];
        let mut throughput: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
        // Warm-up, then rounds with the variants interleaved.
        for (_, labels) in variants {
            for n in 0..100 {
                one(&router, &things[0], n, labels).await;
            }
        }
        for _ in 0..rounds {
            for (v, (_, labels)) in variants.iter().enumerate() {
                for n in 0..requests {
                    let elapsed = one(&router, &things[0], n, labels).await;
                    latencies[v].push(elapsed);
                }
                let started = Instant::now();
                let mut tasks = Vec::with_capacity(in_flight);
                for thing in &things {
                    let router = router.clone();
                    let thing = thing.clone();
                    let labels: Vec<&'static str> = labels.to_vec();
                    let per_task = (4 * requests).div_ceil(in_flight);
                    tasks.push(tokio::spawn(async move {
                        for n in 0..per_task {
                            one(&router, &thing, n, &labels).await;
                        }
                        per_task
                    }));
                }
                let mut done = 0;
                for task in tasks {
                    done += task.await.expect("task");
                }
                throughput[v].push(done as f64 / started.elapsed().as_secs_f64());
            }
        }
        println!(
            "acknowledgement round trip: modify → journal (fsync) → event to a connection → its ack → answer; \
             {rounds} rounds × {requests} sequential requests per variant, {in_flight} in flight for throughput"
        );
        println!();
        println!(
            "{:<52} | {:>9} | {:>9} | {:>12} | {:>7}",
            "variant", "p50 ms", "p99 ms", "requests/s", "x base"
        );
        println!("{}", "-".repeat(52 + 3 + 9 + 3 + 9 + 3 + 12 + 3 + 7));
        let base = median(&throughput[0]);
        let mut rows = Vec::new();
        for (v, (name, _)) in variants.iter().enumerate() {
            let mut sorted = latencies[v].clone();
            sorted.sort();
            let per_second = median(&throughput[v]);
            let (p50, p99) = (ms(percentile(&sorted, 0.5)), ms(percentile(&sorted, 0.99)));
            println!(
                "{:<52} | {:>9.3} | {:>9.3} | {:>12.0} | {:>7.2}",
                name,
                p50,
                p99,
                per_second,
                per_second / base
            );
            // The table's name for the two measured against the baseline.
            let row = ["", "modify acked by a subscribed connection", "modify, twin-persisted + connection ack"][v];
            if v > 0 {
                rows.push(
                    Row::new(row, "requests/s", per_second)
                        .baseline("requesting twin-persisted", base)
                        .latency_ms(p50, p99),
                );
            }
        }
        let stats = router.publisher().stats();
        println!();
        println!(
            "deliveries {} (dropped {}), requests still pending {}",
            stats.delivered,
            stats.dropped,
            router.acks().len()
        );
        report(&rows);
    });
}
