//! The echo adapter (shared, by path, with the ABI-v2 test crate).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use twinwire_plugin::{
    async_trait, Adapter, ConnectionStatus, Delivery, Host, Inbound, LogLevel, Message, Outcome,
    Plugin, Receipt, RuntimeConfig, SendError,
};

/// Echoes every sent message back to the host as an inbound message (same address, headers and
/// payload), with settle tokens 1, 2, 3...
///
/// Configuration: `key=value` items separated by commas or newlines:
/// - `inline=0`: no inline first poll (every send hops to the plugin runtime);
/// - `workers=N`, `shutdown_ms=N`, `thread=NAME`: the plugin runtime;
/// - `hop=1`: every send yields once before echoing (so it completes on the plugin runtime);
/// - `fail=1`: `create` fails; `panic=1`: `create` panics.
///
/// Payloads that misbehave: `panic...` panics in `send`; `reject...` fails the send (rejected);
/// `batch...` echoes three copies through one batch delivery; `block...` starts a blocking task
/// sleeping 2 s (longer than a short `shutdown_ms`: `close` then reports leaked threads); `hang...`
/// never completes (until `close` drops it).
///
/// Settles are logged at info level as `echo: settled TOKEN OUTCOME`.
pub struct Echo {
    host: Host,
    hop: bool,
    next_settle: AtomicU64,
}

fn config_value<'a>(config: &'a str, key: &str) -> Option<&'a str> {
    config
        .split([',', '\n'])
        .filter_map(|item| item.trim().split_once('='))
        .find(|(k, _)| k.trim() == key)
        .map(|(_, v)| v.trim())
}

impl Echo {
    fn next_token(&self) -> u64 {
        self.next_settle.fetch_add(1, Ordering::Relaxed)
    }

    fn echo(&self, message: Message) -> Result<(), SendError> {
        if message.payload().starts_with(b"batch") {
            let batch = (0..3)
                .map(|_| Inbound {
                    message: message.clone(),
                    settle_token: self.next_token(),
                })
                .collect();
            let answer = self.host.deliver_batch(batch);
            return match answer.rest {
                Delivery::Accepted => Ok(()),
                Delivery::Backpressure => Err(SendError::Backpressure),
                Delivery::Refused => Err(SendError::Rejected(
                    "echo: the host refused the batch".to_owned(),
                )),
            };
        }
        match self.host.deliver(message, self.next_token()) {
            Delivery::Accepted => Ok(()),
            Delivery::Backpressure => Err(SendError::Backpressure),
            Delivery::Refused => Err(SendError::Rejected(
                "echo: the host refused the echo".to_owned(),
            )),
        }
    }
}

#[async_trait]
impl Adapter for Echo {
    async fn send(&self, message: Message) -> Result<Receipt, SendError> {
        let payload = message.payload();
        // A receipt with metadata, to carry across the boundary.
        let receipt = if payload.starts_with(b"receipt") {
            Receipt::with_metadata(r#"{"echoed":true}"#)
        } else {
            Receipt::default()
        };
        if payload.starts_with(b"panic") {
            panic!(
                "echo: panic requested by payload {:?}",
                message.payload_lossy()
            );
        }
        if payload.starts_with(b"reject") {
            return Err(SendError::Rejected("echo: rejected by payload".to_owned()));
        }
        if payload.starts_with(b"block") {
            drop(twinwire_plugin::tokio::task::spawn_blocking(|| {
                std::thread::sleep(Duration::from_secs(2))
            }));
        }
        if payload.starts_with(b"hang") {
            std::future::pending::<()>().await;
        }
        if self.hop {
            twinwire_plugin::tokio::task::yield_now().await;
        }
        self.echo(message).map(|()| receipt)
    }

    async fn settle(&self, settle_token: u64, outcome: Outcome) {
        self.host.log(
            LogLevel::Info,
            &format!("echo: settled {settle_token} {outcome:?}"),
        );
    }

    async fn close(&self) {
        self.host
            .status(ConnectionStatus::Disconnected, "echo closed");
    }
}

#[async_trait]
impl Plugin for Echo {
    const NAME: &'static str = "echo";
    const CONNECTION_TYPES: &'static [&'static str] = &["echo", "loopback"];

    fn runtime_config(config: &[u8]) -> RuntimeConfig {
        let config = String::from_utf8_lossy(config);
        let mut runtime = RuntimeConfig::default();
        if config_value(&config, "inline") == Some("0") {
            runtime.inline_first_poll = false;
        }
        if let Some(workers) = config_value(&config, "workers").and_then(|w| w.parse().ok()) {
            runtime.worker_threads = workers;
        }
        if let Some(ms) = config_value(&config, "shutdown_ms").and_then(|w| w.parse().ok()) {
            runtime.shutdown_timeout = Duration::from_millis(ms);
        }
        if let Some(name) = config_value(&config, "thread") {
            runtime.thread_name = name.to_owned();
        }
        runtime
    }

    async fn create(config: &[u8], host: Host) -> Result<Self, String> {
        let config = String::from_utf8_lossy(config);
        if config_value(&config, "fail") == Some("1") {
            return Err(format!("echo: configuration asks to fail ({config})"));
        }
        if config_value(&config, "panic") == Some("1") {
            panic!("echo: configuration asks to panic in create");
        }
        host.status(ConnectionStatus::Connected, "echo ready");
        if let Some(value) = config_value(&config, "metric").and_then(|v| v.parse().ok()) {
            host.metric("echo_gauge", &[("kind", "test")], value);
        }
        Ok(Echo {
            host,
            hop: config_value(&config, "hop") == Some("1"),
            next_settle: AtomicU64::new(1),
        })
    }
}
