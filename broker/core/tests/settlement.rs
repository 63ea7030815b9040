//! Settlement of a consumed signal across its copies: a signal fanned out to three targets settles
//! once, after the last target, with the worst outcome, whatever order the targets finish in;
//! dropped, panicked and aborted copies count as retryable; statuses and aggregated acks of the
//! real protocol envelopes classify as Ditto redelivers; and many settlements raced across tasks
//! and threads each settle exactly once, within a time bound.

use serde_json::json;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{mpsc as std_mpsc, Arc, Barrier, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use twinwire_core::routing::settlement::{Outcome, OutcomeKind, Settlement, DROPPED};
use twinwire_protocol::acks::{aggregated_envelope, AckLabel, Acknowledgement, TWIN_PERSISTED};
use twinwire_protocol::{Envelope, Headers, Topic};

/// splitmix64: a seeded generator, so a failing iteration names the seed that reproduces it.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One of the three outcomes, its reason naming the target that reported it.
fn build_outcome(kind: u64, target: usize) -> Outcome {
    match kind {
        0 => Outcome::Delivered,
        1 => Outcome::permanent(format!("target {target}: status 400")),
        _ => Outcome::retryable(format!("target {target}: status 503")),
    }
}

/// What a sink saw: how often it was called, with what, and how many targets had finished then.
#[derive(Default)]
struct Probe {
    calls: AtomicUsize,
    finished_when_called: AtomicUsize,
    outcome: Mutex<Option<Outcome>>,
}

/// A settlement reporting to a probe; `finished` counts the targets that have begun settling.
fn build_probed(finished: Arc<AtomicUsize>) -> (Settlement, Arc<Probe>) {
    let probe = Arc::new(Probe::default());
    let seen = Arc::clone(&probe);
    let settlement = Settlement::new(move |outcome| {
        seen.finished_when_called
            .store(finished.load(Ordering::SeqCst), Ordering::SeqCst);
        seen.calls.fetch_add(1, Ordering::SeqCst);
        *seen.outcome.lock().unwrap() = Some(outcome);
    });
    (settlement, probe)
}

/// The fan-out the router does: one copy per target, the original going to the last.
fn fan_out(settlement: Settlement, targets: usize) -> Vec<Settlement> {
    let mut copies: Vec<Settlement> = (1..targets).map(|_| settlement.split()).collect();
    copies.push(settlement);
    copies
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_fanned_out_to_three_targets_settles_once_after_the_last_with_the_worst_outcome() {
    const ITERATIONS: u64 = 1_000;
    let mut orders_seen = std::collections::HashSet::new();
    for seed in 0..ITERATIONS {
        let mut rng = Rng(seed);
        let finished = Arc::new(AtomicUsize::new(0));
        let (settlement, probe) = build_probed(Arc::clone(&finished));
        let early_calls = Arc::new(AtomicUsize::new(0));
        let order = Arc::new(Mutex::new(Vec::new()));
        let kinds: Vec<u64> = (0..3).map(|_| rng.below(3)).collect();

        let mut tasks = Vec::new();
        for (target, copy) in fan_out(settlement, 3).into_iter().enumerate() {
            let (yields, sleeps) = (rng.below(16), rng.below(8) == 0);
            let outcome = build_outcome(kinds[target], target);
            let (probe, finished, early_calls, order) = (
                Arc::clone(&probe),
                Arc::clone(&finished),
                Arc::clone(&early_calls),
                Arc::clone(&order),
            );
            tasks.push(tokio::spawn(async move {
                // The target's delivery, taking a random while.
                for _ in 0..yields {
                    tokio::task::yield_now().await;
                }
                if sleeps {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                // No target may see the source told before it settles itself.
                if probe.calls.load(Ordering::SeqCst) != 0 {
                    early_calls.fetch_add(1, Ordering::SeqCst);
                }
                order.lock().unwrap().push(target);
                finished.fetch_add(1, Ordering::SeqCst);
                copy.settle(outcome);
            }));
        }
        for task in tasks {
            task.await.expect("target task");
        }

        let worst = kinds.iter().max().copied().unwrap_or(0);
        let outcome = probe.outcome.lock().unwrap().clone().expect("settled");
        assert_eq!(probe.calls.load(Ordering::SeqCst), 1, "seed {seed}");
        assert_eq!(early_calls.load(Ordering::SeqCst), 0, "seed {seed}");
        assert_eq!(
            probe.finished_when_called.load(Ordering::SeqCst),
            3,
            "seed {seed}"
        );
        assert_eq!(
            outcome.kind(),
            build_outcome(worst, 0).kind(),
            "seed {seed}: {kinds:?}"
        );
        // The reason is that of a target which reported the worst kind.
        let named = (0..3).any(|t| kinds[t] == worst && build_outcome(worst, t) == outcome);
        assert!(named, "seed {seed}: {outcome:?} for {kinds:?}");
        orders_seen.insert(order.lock().unwrap().clone());
    }
    // The targets really did finish in varying orders (all six are checked one by one below).
    assert!(orders_seen.len() >= 3, "orders seen: {orders_seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_completion_order_and_outcome_mix_settles_after_the_last() {
    const ORDERS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    for order in ORDERS {
        for mix in 0..27u64 {
            let kinds = [mix % 3, mix / 3 % 3, mix / 9];
            let (settlement, probe) = build_probed(Arc::new(AtomicUsize::new(0)));
            let mut go = Vec::new();
            let mut done = Vec::new();
            for (target, copy) in fan_out(settlement, 3).into_iter().enumerate() {
                let (go_tx, go_rx) = oneshot::channel::<()>();
                let (done_tx, done_rx) = oneshot::channel::<()>();
                let outcome = build_outcome(kinds[target], target);
                tokio::spawn(async move {
                    go_rx.await.expect("go");
                    copy.settle(outcome);
                    done_tx.send(()).expect("done");
                });
                go.push(Some(go_tx));
                done.push(Some(done_rx));
            }
            for (step, &target) in order.iter().enumerate() {
                assert_eq!(probe.calls.load(Ordering::SeqCst), 0, "{order:?} {kinds:?}");
                go[target].take().unwrap().send(()).unwrap();
                done[target].take().unwrap().await.unwrap();
                let expected_calls = usize::from(step == 2);
                assert_eq!(
                    probe.calls.load(Ordering::SeqCst),
                    expected_calls,
                    "{order:?} {kinds:?} after step {step}"
                );
            }
            // Worst kind, with the reason of the first target (in completion order) to report it.
            let worst = kinds.iter().max().copied().unwrap_or(0);
            let first_worst = order.iter().copied().find(|&t| kinds[t] == worst).unwrap();
            assert_eq!(
                probe.outcome.lock().unwrap().clone(),
                Some(build_outcome(worst, first_worst)),
                "{order:?} {kinds:?}"
            );
        }
    }
}

#[test]
fn a_dropped_copy_counts_as_retryable() {
    let (settlement, probe) = build_probed(Arc::new(AtomicUsize::new(0)));
    let mut copies = fan_out(settlement, 3);
    let dropped = copies.pop().unwrap();
    for copy in copies {
        copy.settle(Outcome::Delivered);
    }
    assert_eq!(probe.calls.load(Ordering::SeqCst), 0);
    drop(dropped);
    assert_eq!(probe.calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        probe.outcome.lock().unwrap().clone(),
        Some(Outcome::retryable(DROPPED))
    );
}

#[test]
fn a_dropped_copy_outweighs_a_permanent_failure_and_an_unsettled_signal_is_retryable() {
    let (settlement, probe) = build_probed(Arc::new(AtomicUsize::new(0)));
    let copy = settlement.split();
    settlement.settle(Outcome::permanent("status 404: client error"));
    drop(copy);
    assert_eq!(
        probe.outcome.lock().unwrap().clone(),
        Some(Outcome::retryable(DROPPED))
    );

    // Nobody settled anything: the source must get the message back.
    let (settlement, probe) = build_probed(Arc::new(AtomicUsize::new(0)));
    drop(fan_out(settlement, 4));
    assert_eq!(probe.calls.load(Ordering::SeqCst), 1);
    assert_eq!(
        probe.outcome.lock().unwrap().clone(),
        Some(Outcome::retryable(DROPPED))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copies_lost_to_a_panic_an_abort_or_a_closed_queue_count_as_retryable() {
    // A target task that panics while holding its copy.
    let (settlement, mut rx) = Settlement::channel();
    let copy = settlement.split();
    settlement.settle(Outcome::Delivered);
    let panicked = tokio::spawn(async move {
        let _held = copy;
        panic!("target failed on purpose");
    });
    assert!(panicked.await.unwrap_err().is_panic());
    assert_eq!(rx.try_recv().unwrap(), Outcome::retryable(DROPPED));

    // A target task aborted while it waits (as a timeout of the ack collector may do).
    let (settlement, rx) = Settlement::channel();
    let waiting = tokio::spawn(async move {
        let _held = settlement;
        std::future::pending::<()>().await;
    });
    tokio::task::yield_now().await;
    waiting.abort();
    assert!(waiting.await.unwrap_err().is_cancelled());
    assert_eq!(rx.await.unwrap(), Outcome::retryable(DROPPED));

    // A queue closed with copies still in it.
    let (settlement, rx) = Settlement::channel();
    let (tx, queue) = mpsc::channel(4);
    for copy in fan_out(settlement, 3) {
        tx.send(copy).await.unwrap();
    }
    drop(queue);
    drop(tx);
    assert_eq!(rx.await.unwrap(), Outcome::retryable(DROPPED));
}

#[test]
fn statuses_classify_as_delivered_retryable_or_permanent() {
    let delivered = [200, 201, 202, 204];
    let retryable = [408, 424, 429, 500, 502, 503, 504];
    let permanent = [400, 401, 403, 404, 405, 409, 413, 415];
    for (statuses, kind) in [
        (&delivered[..], OutcomeKind::Delivered),
        (&retryable[..], OutcomeKind::Retryable),
        (&permanent[..], OutcomeKind::Permanent),
    ] {
        for &status in statuses {
            assert_eq!(Outcome::from_status(status).kind(), kind, "{status}");
        }
    }
    // Ditto settles a failed precondition positively: the sender's condition said no.
    assert_eq!(Outcome::from_status(412), Outcome::Delivered);
}

fn build_ack(label: &str, status: u16) -> Acknowledgement {
    Acknowledgement {
        label: AckLabel::parse(label).unwrap(),
        entity_id: "org.eclipse.ditto:thing-1".into(),
        status,
        headers: Headers::new(),
        value: None,
    }
}

/// The aggregated acks envelope as it travels: built by the protocol crate, written and read back.
fn build_aggregated(acks: &[Acknowledgement]) -> Envelope {
    let topic = Topic::parse("org.eclipse.ditto/thing-1/things/twin/commands/modify").unwrap();
    let envelope = aggregated_envelope(&topic, Headers::new(), acks);
    Envelope::from_slice(envelope.to_json_string().as_bytes()).expect("aggregated acks")
}

#[test]
fn a_424_is_retryable_if_a_member_is_else_permanent_and_a_200_is_delivered() {
    let mixed = build_aggregated(&[
        build_ack(TWIN_PERSISTED, 204),
        build_ack("conn-1:rejecting", 400),
        build_ack("conn-1:slow", 408),
    ]);
    assert_eq!(mixed.status, Some(424));
    let value = mixed.value.as_ref().unwrap();
    assert_eq!(
        Outcome::from_aggregated_acks(value),
        Outcome::retryable("conn-1:slow: status 408: request timeout")
    );

    let server_error = build_aggregated(&[
        build_ack("conn-1:rejecting", 403),
        build_ack("conn-1:backend", 503),
    ]);
    assert_eq!(
        Outcome::from_aggregated_acks(server_error.value.as_ref().unwrap()).kind(),
        OutcomeKind::Retryable
    );

    let permanent_only = build_aggregated(&[
        build_ack(TWIN_PERSISTED, 201),
        build_ack("conn-1:rejecting", 404),
    ]);
    assert_eq!(permanent_only.status, Some(424));
    assert_eq!(
        Outcome::from_aggregated_acks(permanent_only.value.as_ref().unwrap()),
        Outcome::permanent("conn-1:rejecting: status 404: client error")
    );

    let all_ok = build_aggregated(&[build_ack(TWIN_PERSISTED, 204), build_ack("conn-1:ok", 200)]);
    assert_eq!(all_ok.status, Some(200));
    assert_eq!(
        Outcome::from_aggregated_acks(all_ok.value.as_ref().unwrap()),
        Outcome::Delivered
    );

    // Ditto's own shape: acks sharing a label in an array, a weak ack (200) among them.
    let ditto = json!({
        "conn-1:custom": [
            {"status": 200, "payload": "filtered", "headers": {"ditto-weak-ack": true}},
            {"status": 500, "headers": {}}
        ],
        "twin-persisted": {"status": 204, "headers": {}}
    });
    assert_eq!(
        Outcome::from_aggregated_acks(&ditto),
        Outcome::retryable("conn-1:custom: status 500: server error")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_settlements_raced_across_tasks_each_settle_exactly_once() {
    const SETTLEMENTS: usize = 20_000;
    const WORKERS: usize = 4;
    let run = async {
        let calls: Arc<Vec<AtomicU8>> =
            Arc::new((0..SETTLEMENTS).map(|_| AtomicU8::new(0)).collect());
        let expected: Arc<Vec<AtomicU8>> =
            Arc::new((0..SETTLEMENTS).map(|_| AtomicU8::new(0)).collect());
        let wrong = Arc::new(AtomicUsize::new(0));

        let mut queues = Vec::new();
        let mut workers = Vec::new();
        for _ in 0..WORKERS {
            let (tx, mut rx) = mpsc::channel::<(Settlement, Outcome)>(64);
            queues.push(tx);
            workers.push(tokio::spawn(async move {
                while let Some((copy, outcome)) = rx.recv().await {
                    copy.settle(outcome);
                }
            }));
        }

        let mut rng = Rng(0x005e_771e);
        for id in 0..SETTLEMENTS {
            let (calls_of, expected_of, wrong_of) = (
                Arc::clone(&calls),
                Arc::clone(&expected),
                Arc::clone(&wrong),
            );
            let settlement = Settlement::new(move |outcome| {
                calls_of[id].fetch_add(1, Ordering::SeqCst);
                if outcome.kind() as u8 != expected_of[id].load(Ordering::SeqCst) {
                    wrong_of.fetch_add(1, Ordering::SeqCst);
                }
            });
            let copies = 1 + rng.below(8) as usize;
            let kinds: Vec<u64> = (0..copies).map(|_| rng.below(3)).collect();
            let worst = build_outcome(kinds.iter().copied().max().unwrap_or(0), 0).kind();
            expected[id].store(worst as u8, Ordering::SeqCst);
            for (n, copy) in fan_out(settlement, copies).into_iter().enumerate() {
                let queue = &queues[rng.below(WORKERS as u64) as usize];
                queue
                    .send((copy, build_outcome(kinds[n], n)))
                    .await
                    .unwrap();
            }
        }
        drop(queues);
        for worker in workers {
            worker.await.unwrap();
        }
        for (id, count) in calls.iter().enumerate() {
            assert_eq!(count.load(Ordering::SeqCst), 1, "settlement {id}");
        }
        assert_eq!(wrong.load(Ordering::SeqCst), 0);
    };
    tokio::time::timeout(Duration::from_secs(60), run)
        .await
        .expect("20,000 settlements within 60 s");
}

#[test]
fn copies_settled_at_the_same_instant_on_many_threads_settle_exactly_once() {
    const ROUNDS: usize = 500;
    const THREADS: usize = 4;
    const COPIES_PER_THREAD: usize = 16;
    let (done_tx, done_rx) = std_mpsc::channel();
    let driver = std::thread::spawn(move || {
        for round in 0..ROUNDS {
            let calls = Arc::new(AtomicUsize::new(0));
            let outcome = Arc::new(Mutex::new(None));
            let (calls_of, outcome_of) = (Arc::clone(&calls), Arc::clone(&outcome));
            let settlement = Settlement::new(move |o| {
                calls_of.fetch_add(1, Ordering::SeqCst);
                *outcome_of.lock().unwrap() = Some(o);
            });
            let start = Arc::new(Barrier::new(THREADS));
            let threads: Vec<_> = (0..THREADS)
                .map(|thread| {
                    let copies: Vec<Settlement> =
                        (0..COPIES_PER_THREAD).map(|_| settlement.split()).collect();
                    let start = Arc::clone(&start);
                    std::thread::spawn(move || {
                        start.wait();
                        // Every copy fails retryably, each with its own reason: one must win.
                        for (n, copy) in copies.into_iter().enumerate() {
                            copy.settle(Outcome::retryable(format!("{thread}/{n}")));
                        }
                    })
                })
                .collect();
            settlement.settle(Outcome::permanent("the original"));
            for thread in threads {
                thread.join().unwrap();
            }
            assert_eq!(calls.load(Ordering::SeqCst), 1, "round {round}");
            let outcome = outcome.lock().unwrap().clone().unwrap();
            let reason = outcome.reason().unwrap_or("");
            assert!(
                outcome.kind() == OutcomeKind::Retryable && reason.contains('/'),
                "round {round}: {outcome:?}"
            );
        }
        done_tx.send(()).unwrap();
    });
    done_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("500 rounds within 60 s");
    driver.join().unwrap();
}
