//! The host side against the echo test plugin loaded through the C ABI: round trips, settles,
//! panics, ABI refusals, close.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{plugin, threads_named, wait_until, Mode, Recorder, ECHO, ECHO_ABI2};
use twinwire_plugin::host::{create_static, LoadError, PluginAdapter, PluginLibrary};
use twinwire_plugin::{Adapter, ConnectionStatus, LogLevel, Message, Outcome, Receipt, SendError};

const WAIT: Duration = Duration::from_secs(10);

fn echo_library() -> PluginLibrary {
    PluginLibrary::load(plugin(ECHO)).expect("load the echo plugin")
}

async fn echo_instance(config: &str) -> (PluginAdapter, Arc<Recorder>) {
    let sink = Recorder::new();
    let adapter = echo_library()
        .create(config.as_bytes(), sink.clone())
        .await
        .expect("create an echo instance");
    (adapter, sink)
}

fn sample_messages() -> Vec<Message> {
    let many: Vec<(String, Vec<u8>)> = (0..12)
        .map(|i| (format!("h{i}"), vec![i as u8, 0xff, 0]))
        .collect();
    vec![
        Message::new(
            "telemetry/thing-1",
            &[
                ("content-type", "application/json"),
                ("correlation-id", "c-1"),
                ("dup", "1"),
                ("dup", "2"),
            ],
            br#"{"temperature":21.5}"#,
        ),
        // Bytes, not UTF-8, everywhere; a NUL in the payload.
        Message::new(
            b"\xff\xfeaddr".as_slice(),
            &[(b"bin\x00name".as_slice(), b"\x80\x81".as_slice())],
            [0u8, 1, 2, 0, 255, 254],
        ),
        // No headers, empty everything.
        Message::new("", &[] as &[(&str, &str)], b""),
        // More headers than the view keeps on the stack; a larger payload.
        Message::new("many/headers", &many, vec![7u8; 64 * 1024]),
    ]
}

#[test]
fn load_reads_name_and_connection_types() {
    let library = echo_library();
    assert_eq!(library.name(), "echo");
    assert_eq!(library.connection_types(), ["echo", "loopback"]);
    assert!(
        library.settles(),
        "Plugin::SETTLES defaults to true and crosses as FLAG_SETTLES"
    );
    assert!(library.path().ends_with(format!(
        "libtwinwire_plugin_echo{}",
        std::env::consts::DLL_SUFFIX
    )));
    // Loading again is fine (the same library, never unloaded).
    assert_eq!(echo_library().name(), "echo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_trip_keeps_address_headers_and_binary_payload() {
    for config in ["", "inline=0", "hop=1", "inline=0,workers=2,hop=1"] {
        let (adapter, sink) = echo_instance(config).await;
        assert!(
            wait_until(WAIT, || sink
                .statuses()
                .contains(&(ConnectionStatus::Connected, "echo ready".into())))
            .await
        );
        // The transport's receipt crosses the boundary with the send's result.
        let asks_receipt = Message::new("r", &[] as &[(&str, &str)], "receipt please");
        assert_eq!(
            adapter.send(asks_receipt).await,
            Ok(Receipt::with_metadata(r#"{"echoed":true}"#)),
            "config {config:?}"
        );
        assert!(wait_until(WAIT, || sink.inbound_count() == 1).await);
        sink.take_inbound();
        let messages = sample_messages();
        for message in &messages {
            assert_eq!(
                adapter.send(message.clone()).await,
                Ok(Receipt::default()),
                "config {config:?}"
            );
        }
        assert!(wait_until(WAIT, || sink.inbound_count() == messages.len()).await);
        let inbound = sink.take_inbound();
        let echoed: Vec<Message> = inbound.iter().map(|i| i.message.clone()).collect();
        assert_eq!(echoed, messages, "config {config:?}");
        let mut tokens: Vec<u64> = inbound.iter().map(|i| i.settle_token).collect();
        tokens.sort_unstable();
        tokens.dedup();
        assert_eq!(tokens.len(), messages.len(), "settle tokens are distinct");

        // A batch across the boundary, both ways: `send_batch`, and a `batch` payload echoed
        // three times through one `on_inbound_batch`.
        let mut batch = messages.clone();
        batch.push(Message::new("b", &[("k", "v")], "batch please"));
        let results = adapter.send_batch(&batch).await;
        assert_eq!(
            results,
            vec![Ok(Receipt::default()); batch.len()],
            "config {config:?}"
        );
        assert!(wait_until(WAIT, || sink.inbound_count() == messages.len() + 3).await);
        let echoed: Vec<Message> = sink.take_inbound().into_iter().map(|i| i.message).collect();
        let mut expected = messages.clone();
        expected.extend(std::iter::repeat_n(batch[batch.len() - 1].clone(), 3));
        if config.contains("inline=0") || config.contains("hop") {
            // Completed on the plugin runtime: same messages, order not guaranteed.
            assert_eq!(echoed.len(), expected.len());
            for message in &expected {
                assert!(
                    echoed.contains(message),
                    "config {config:?}: {message:?} missing"
                );
            }
        } else {
            assert_eq!(echoed, expected, "config {config:?}");
        }

        assert_eq!(adapter.unknown_send_results(), 0);
        assert_eq!(adapter.pending_sends(), 0);
        adapter.close().await.expect("close");
        assert!(sink
            .statuses()
            .contains(&(ConnectionStatus::Disconnected, "echo closed".into())));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_sends_all_come_back() {
    let (adapter, sink) = echo_instance("inline=0,workers=2").await;
    let tasks: Vec<_> = (0..4)
        .map(|task| {
            let adapter = adapter.clone();
            tokio::spawn(async move {
                let sends: Vec<_> = (0..2_000)
                    .map(|i| {
                        adapter.send(Message::new(
                            format!("t/{task}"),
                            &[("i", i.to_string())],
                            [task as u8; 16],
                        ))
                    })
                    .collect();
                for send in sends {
                    send.await.expect("send");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    assert!(wait_until(WAIT, || sink.inbound_count() == 8_000).await);
    assert_eq!(adapter.unknown_send_results(), 0);
    adapter.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settle_outcomes_reach_the_plugin() {
    let (adapter, sink) = echo_instance("").await;
    for _ in 0..3 {
        adapter
            .send(Message::new("a", &[("k", "v")], "x"))
            .await
            .expect("send");
    }
    let inbound = sink.take_inbound();
    assert_eq!(inbound.len(), 3);
    let outcomes = [Outcome::Delivered, Outcome::Retryable, Outcome::Permanent];
    for (inbound, outcome) in inbound.iter().zip(outcomes) {
        adapter
            .settle(inbound.settle_token, outcome)
            .expect("settle");
    }
    for (inbound, outcome) in inbound.iter().zip(outcomes) {
        let line = format!("echo: settled {} {outcome:?}", inbound.settle_token);
        assert!(
            wait_until(WAIT, || sink.has_log(&line)).await,
            "{line} not in {:?}",
            sink.logs()
        );
    }
    // Through the `dyn Adapter` face too.
    let dynamic: Arc<dyn Adapter> = Arc::new(adapter.clone());
    dynamic.settle(99, Outcome::Retryable).await;
    assert!(wait_until(WAIT, || sink.has_log("echo: settled 99 Retryable")).await);
    adapter.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_in_send_is_a_failed_send_and_the_instance_keeps_working() {
    for config in ["", "inline=0", "hop=1"] {
        let (adapter, sink) = echo_instance(config).await;
        let result = adapter
            .send(Message::new("a", &[] as &[(&str, &str)], "panic now"))
            .await;
        match result {
            Err(SendError::Panicked(text)) => {
                assert!(text.contains("echo: panic requested by payload"), "{text}")
            }
            other => panic!("config {config:?}: expected a panic result, got {other:?}"),
        }
        // The plugin's panic hook forwarded the panic to the host's log.
        assert!(
            wait_until(WAIT, || sink
                .logs()
                .iter()
                .any(|(level, l)| *level == LogLevel::Error
                    && l.contains("plugin echo: thread")
                    && l.contains("panicked at")))
            .await,
            "config {config:?}: {:?}",
            sink.logs()
        );
        // The same instance keeps echoing, many times.
        for i in 0..100 {
            adapter
                .send(Message::new("after", &[("i", i.to_string())], "fine"))
                .await
                .expect("send after the panic");
        }
        assert!(wait_until(WAIT, || sink.inbound_count() == 100).await);
        // And panics again, and again reports it.
        assert!(matches!(
            adapter
                .send(Message::new("a", &[] as &[(&str, &str)], "panic again"))
                .await,
            Err(SendError::Panicked(_))
        ));
        // A panic inside a batch fails that message only.
        let results = adapter
            .send_batch(&[
                Message::new("x", &[] as &[(&str, &str)], "ok"),
                Message::new("x", &[] as &[(&str, &str)], "panic in batch"),
                Message::new("x", &[] as &[(&str, &str)], "ok"),
            ])
            .await;
        assert_eq!(results[0], Ok(Receipt::default()));
        assert!(matches!(&results[1], Err(SendError::Panicked(t)) if t.contains("panic in batch")));
        assert_eq!(results[2], Ok(Receipt::default()));
        adapter.close().await.expect("close");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_errors_and_inbound_backpressure_come_back_as_results() {
    let (adapter, sink) = echo_instance("").await;
    assert!(matches!(
        adapter.send(Message::new("a", &[] as &[(&str, &str)], "reject this")).await,
        Err(SendError::Rejected(t)) if t == "echo: rejected by payload"
    ));
    sink.set_mode(Mode::Backpressure);
    assert_eq!(
        adapter.send(Message::new("a", &[("k", "v")], "x")).await,
        Err(SendError::Backpressure)
    );
    sink.set_mode(Mode::Refuse);
    assert!(matches!(
        adapter.send(Message::new("a", &[("k", "v")], "x")).await,
        Err(SendError::Rejected(t)) if t.contains("refused")
    ));
    sink.set_mode(Mode::Accept);
    adapter
        .send(Message::new("a", &[("k", "v")], "x"))
        .await
        .expect("send");
    assert_eq!(sink.inbound_count(), 1);
    adapter.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_adapter_gauge_crosses_the_boundary_with_its_labels() {
    let (adapter, sink) = echo_instance("metric=7.5").await;
    assert_eq!(
        *sink.metrics.lock().unwrap(),
        vec![(
            "echo_gauge".to_owned(),
            vec![("kind".to_owned(), "test".to_owned())],
            7.5
        )]
    );
    adapter.close().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_errors_cross_the_boundary_and_the_library_stays_usable() {
    let library = echo_library();
    let err = library
        .create(b"fail=1", Recorder::new())
        .await
        .expect_err("create fails");
    assert!(
        err.contains("echo: configuration asks to fail (fail=1)"),
        "{err}"
    );
    let err = library
        .create(b"panic=1", Recorder::new())
        .await
        .expect_err("create panics");
    assert!(
        err.contains("plugin echo panicked in create: echo: configuration asks to panic in create"),
        "{err}"
    );
    let (adapter, sink) = echo_instance("").await;
    adapter
        .send(Message::new("a", &[("k", "v")], "x"))
        .await
        .expect("send");
    assert_eq!(sink.inbound_count(), 1);
    adapter.close().await.expect("close");
}

#[test]
fn a_plugin_built_for_another_abi_version_is_refused() {
    let path = plugin(ECHO_ABI2);
    let err = PluginLibrary::load(&path).expect_err("ABI v2 must be refused");
    assert_eq!(
        err,
        LoadError::AbiMismatch {
            path: path.clone(),
            plugin: 2,
            host: 1
        }
    );
    let text = err.to_string();
    assert_eq!(
        text,
        format!(
            "plugin {} was built for twinwire plugin ABI v2, but this host speaks ABI v1; refusing to load it \
             (rebuild it against twinwire-plugin with ABI v1)",
            path.display()
        )
    );
    assert!(text.contains("libtwinwire_plugin_echo_abi2"));
}

#[test]
fn a_plugin_built_with_panic_abort_is_refused() {
    let path = common::echo_built_with_panic_abort();
    let err = PluginLibrary::load(&path).expect_err("panic = abort must be refused");
    assert_eq!(err, LoadError::NoPanicUnwind { path: path.clone() });
    assert_eq!(
        err.to_string(),
        format!(
            "plugin {} was built with panic = \"abort\"; refusing to load it, since any panic in it \
             would abort the host (rebuild it with panic = \"unwind\")",
            path.display()
        )
    );
}

#[test]
fn a_library_that_is_not_a_plugin_is_refused() {
    // Any shared library without the entry symbol: the C math library.
    let err = PluginLibrary::load("libm.so.6").expect_err("libm is no plugin");
    assert!(matches!(err, LoadError::NotAPlugin { .. }), "{err:?}");
    assert_eq!(
        err.to_string(),
        "libm.so.6 is not a twinwire plugin: no twinwire_adapter_v1 entry symbol"
    );
    let missing = std::env::temp_dir().join("no-such-twinwire-plugin.so");
    let err = PluginLibrary::load(&missing).expect_err("missing file");
    assert!(matches!(err, LoadError::Open { .. }), "{err:?}");
    assert!(
        err.to_string()
            .starts_with(&format!("cannot load plugin {}: ", missing.display())),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_joins_the_plugin_threads_and_fails_every_send_afterwards() {
    let (adapter, sink) = echo_instance("thread=tw-echo-close,workers=3,hop=1").await;
    adapter
        .send(Message::new("a", &[("k", "v")], "x"))
        .await
        .expect("send");
    // (A thread names itself once it runs: wait for that.)
    assert!(
        wait_until(WAIT, || threads_named("tw-echo-close") >= 3).await,
        "the plugin runtime's workers run"
    );
    // Sends still in the plugin at close time resolve to Closed.
    let hanging: Vec<_> = (0..50)
        .map(|_| adapter.send(Message::new("a", &[] as &[(&str, &str)], "hang")))
        .collect();
    assert!(wait_until(WAIT, || adapter.pending_sends() == 50).await);
    adapter.close().await.expect("close");
    assert!(adapter.is_closed());
    assert_eq!(
        threads_named("tw-echo-close"),
        0,
        "close joined every plugin runtime thread"
    );
    for send in hanging {
        assert_eq!(send.await, Err(SendError::Closed));
    }
    assert_eq!(
        adapter.send(Message::new("a", &[("k", "v")], "x")).await,
        Err(SendError::Closed)
    );
    assert_eq!(
        adapter
            .send_batch(&[Message::new("a", &[("k", "v")], "x")])
            .await,
        vec![Err(SendError::Closed)]
    );
    assert_eq!(
        adapter.settle(1, Outcome::Delivered),
        Err(SendError::Closed)
    );
    // Closing again is a no-op; nothing else arrived.
    adapter.close().await.expect("close again");
    assert_eq!(sink.inbound_count(), 1);
    assert_eq!(adapter.pending_sends(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_reports_threads_it_could_not_join() {
    let (adapter, _sink) = echo_instance("thread=tw-echo-leak,shutdown_ms=100").await;
    // Starts a blocking task sleeping 2 s: longer than the 100 ms shutdown timeout.
    adapter
        .send(Message::new("a", &[] as &[(&str, &str)], "block"))
        .await
        .expect("send");
    let err = adapter
        .close()
        .await
        .expect_err("close must report the leaked thread");
    assert!(err.contains("close left threads running"), "{err}");
    assert!(err.contains("still running after 100ms"), "{err}");
    assert_eq!(
        adapter.send(Message::new("a", &[("k", "v")], "x")).await,
        Err(SendError::Closed)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_an_open_instance_closes_it() {
    let (adapter, _sink) = echo_instance("thread=tw-echo-drop,workers=2").await;
    adapter
        .send(Message::new("a", &[("k", "v")], "x"))
        .await
        .expect("send");
    assert!(wait_until(WAIT, || threads_named("tw-echo-drop") >= 2).await);
    drop(adapter);
    assert!(wait_until(WAIT, || threads_named("tw-echo-drop") == 0).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn static_and_loaded_adapters_are_driven_alike() {
    let static_sink = Recorder::new();
    let loaded_sink = Recorder::new();
    let adapters: Vec<(Arc<dyn Adapter>, Arc<Recorder>)> = vec![
        (
            create_static::<twinwire_plugin_echo::Echo>(b"", static_sink.clone())
                .await
                .expect("static echo"),
            static_sink,
        ),
        (
            Arc::new(
                echo_library()
                    .create(b"", loaded_sink.clone())
                    .await
                    .expect("loaded echo"),
            ),
            loaded_sink,
        ),
    ];
    for (adapter, sink) in adapters {
        for message in sample_messages() {
            adapter.send(message).await.expect("send");
        }
        let inbound = sink.take_inbound();
        let echoed: Vec<Message> = inbound.iter().map(|i| i.message.clone()).collect();
        assert_eq!(echoed, sample_messages());
        adapter
            .settle(inbound[0].settle_token, Outcome::Delivered)
            .await;
        let line = format!("echo: settled {} Delivered", inbound[0].settle_token);
        assert!(wait_until(WAIT, || sink.has_log(&line)).await);
        adapter.close().await;
        assert!(sink
            .statuses()
            .contains(&(ConnectionStatus::Disconnected, "echo closed".into())));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_racing_sends_and_settles_is_safe() {
    for config in ["", "inline=0,workers=2", "hop=1"] {
        let (adapter, sink) = echo_instance(config).await;
        let tasks: Vec<_> = (0..4)
            .map(|task| {
                let adapter = adapter.clone();
                tokio::spawn(async move {
                    let (mut ok, mut closed) = (0u64, 0u64);
                    loop {
                        let sends: Vec<_> = (0..16)
                            .map(|i| {
                                adapter.send(Message::new(
                                    "r",
                                    &[("t", task.to_string())],
                                    [i as u8],
                                ))
                            })
                            .collect();
                        let _ = adapter.settle(1, Outcome::Delivered);
                        for send in sends {
                            match send.await {
                                Ok(_) => ok += 1,
                                Err(SendError::Closed) => closed += 1,
                                Err(other) => panic!("unexpected {other:?}"),
                            }
                        }
                        if closed > 0 {
                            return (ok, closed);
                        }
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(30)).await;
        adapter.close().await.expect("close");
        let mut total_ok = 0;
        for task in tasks {
            let (ok, closed) = task.await.expect("task");
            assert!(closed > 0);
            total_ok += ok;
        }
        assert!(
            total_ok > 0,
            "config {config:?}: some sends went through before close"
        );
        // Every successful send was echoed (its result came after the echo).
        assert!(sink.inbound_count() as u64 >= total_ok);
        assert_eq!(adapter.pending_sends(), 0);
    }
}
