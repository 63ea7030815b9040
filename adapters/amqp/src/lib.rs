//! twinwire's AMQP 0.9.1 adapter (connection type `amqp-091`, RabbitMQ), at least once end to
//! end, on lapin.
//!
//! - Sources consume their queues (declared passively: a missing queue keeps the connection
//!   down, with the reason, until it exists), `consumerCount` consumers each, with manual
//!   acknowledgements on one channel whose prefetch (`basic.qos`, global) is `maxInFlight`: a
//!   slow pipeline pushes back on RabbitMQ instead of growing memory. The broker's outcome
//!   settles each delivery: delivered → `basic.ack`; retryable → `basic.nack` with requeue;
//!   permanent → `basic.reject` without requeue (after its error response), so a dead-letter
//!   exchange configured on the queue catches it.
//! - Targets publish to `exchange/routingKey` with `mandatory` on a channel in confirm mode; a
//!   send completes when RabbitMQ confirmed it; a returned (unroutable) or nacked publish fails.
//!   Only then does the broker issue the target's acknowledgement label.
//! - lapin does not reconnect by itself here: when the connection or a channel fails, the
//!   instance drops it, connects again with backoff and jitter, and consumes again. RabbitMQ
//!   requeues what was not acknowledged (marked redelivered, so the broker applies a twin change
//!   once); acknowledgements for deliveries of a lost channel are dropped, never sent on the
//!   new one.
//!
//! Headers: [`headers`]. Settings: [`config`].

pub mod config;
pub mod headers;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::stream::{select_all, StreamExt};
use lapin::options::{
    BasicAckOptions, BasicConsumeOptions, BasicNackOptions, BasicPublishOptions, BasicQosOptions,
    BasicRejectOptions, ConfirmSelectOptions, QueueDeclareOptions,
};
use lapin::types::FieldTable;
use lapin::Acker;
use lapin::{Channel, Confirmation, Connection, ConnectionProperties};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use twinwire_plugin::{
    async_trait, Adapter, ConnectionStatus, Delivery, Host, LogLevel, Message, Outcome, Plugin,
    Receipt, SendError,
};

pub use config::Config;
use headers::Outgoing;

struct Shared {
    config: Config,
    host: Host,
    /// The channel publishes go on (confirm mode), while connected. A plain lock, never held
    /// across an await: a send hands its frames to lapin in its first poll, so sends polled in
    /// order go out in order.
    publisher: Mutex<Option<Channel>>,
    connected: watch::Sender<bool>,
    /// Deliveries handed to the broker and not settled, by settle token.
    unsettled: Mutex<HashMap<u64, Acker>>,
    tokens: AtomicU64,
    closing: AtomicBool,
    /// A publish failed on the channel (RabbitMQ closes a channel on e.g. a missing exchange):
    /// the publishing channel is opened again.
    broken: tokio::sync::Notify,
    /// The publishing channel was replaced (or dropped): sends waiting for it look again.
    replaced: tokio::sync::Notify,
}

impl Shared {
    fn log(&self, level: LogLevel, text: &str) {
        self.host
            .log(level, &format!("amqp-091 {}: {text}", self.config.id));
    }

    fn publisher(&self) -> std::sync::MutexGuard<'_, Option<Channel>> {
        self.publisher
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn set_publisher(&self, channel: Option<Channel>) {
        *self.publisher() = channel;
        self.replaced.notify_waiters();
    }

    fn unsettled(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Acker>> {
        self.unsettled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// An AMQP 0.9.1 adapter instance.
pub struct Amqp {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Amqp {
    /// Starts an instance. Needs a tokio runtime (the plugin runtime, when loaded as a plugin).
    pub fn start(config: Config, host: Host) -> Amqp {
        let shared = Arc::new(Shared {
            config,
            host,
            publisher: Mutex::new(None),
            connected: watch::channel(false).0,
            unsettled: Mutex::new(HashMap::new()),
            tokens: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            broken: tokio::sync::Notify::new(),
            replaced: tokio::sync::Notify::new(),
        });
        shared
            .host
            .status(ConnectionStatus::Disconnected, "connecting");
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(run(Arc::clone(&shared), stopped));
        Amqp {
            shared,
            stop,
            task: Mutex::new(Some(task)),
        }
    }
}

#[async_trait]
impl Adapter for Amqp {
    async fn send(&self, message: Message) -> Result<Receipt, SendError> {
        let shared = &self.shared;
        let out = Outgoing::from_message(&message)?;
        let deadline = tokio::time::Instant::now() + shared.config.publish_timeout;
        let mut connected = shared.connected.subscribe();
        let channel = loop {
            if shared.closing.load(Ordering::Acquire) {
                return Err(SendError::Closed);
            }
            // Registered before the channel is looked at, so a replacement is not missed.
            let replaced = shared.replaced.notified();
            tokio::pin!(replaced);
            replaced.as_mut().enable();
            let current = shared.publisher().clone();
            let waited = match current {
                Some(channel) if channel.status().connected() => break channel,
                // Closed by RabbitMQ after an earlier failed publish: wait for its successor.
                Some(_) => {
                    shared.broken.notify_one();
                    tokio::time::timeout_at(deadline, replaced).await.is_ok()
                }
                None => tokio::time::timeout_at(deadline, connected.wait_for(|c| *c))
                    .await
                    .is_ok(),
            };
            if !waited {
                return Err(SendError::Retryable(
                    "not connected to the AMQP broker".to_owned(),
                ));
            }
        };
        let confirm = channel
            .basic_publish(
                out.exchange.as_str().into(),
                out.routing_key.as_str().into(),
                BasicPublishOptions {
                    mandatory: true,
                    immediate: false,
                },
                message.payload(),
                out.properties.clone(),
            )
            .await
            .map_err(|e| {
                shared.broken.notify_one();
                SendError::Retryable(format!("publishing failed: {e}"))
            })?;
        match tokio::time::timeout_at(deadline, confirm).await {
            Err(_) => Err(SendError::Retryable(
                "RabbitMQ did not confirm the publish in time".to_owned(),
            )),
            Ok(Err(e)) => {
                shared.broken.notify_one();
                Err(SendError::Retryable(format!("publishing failed: {e}")))
            }
            Ok(Ok(Confirmation::Ack(None) | Confirmation::NotRequested)) => Ok(Receipt::default()),
            Ok(Ok(Confirmation::Ack(Some(returned)) | Confirmation::Nack(Some(returned)))) => {
                Err(SendError::Rejected(format!(
                    "Received basic.return from exchange '{}' with routing key '{}': {} {}",
                    out.exchange, out.routing_key, returned.reply_code, returned.reply_text
                )))
            }
            Ok(Ok(Confirmation::Nack(None))) => Err(SendError::Retryable(
                "RabbitMQ did not take the publish (nack)".to_owned(),
            )),
        }
    }

    async fn settle(&self, settle_token: u64, outcome: Outcome) {
        let Some(acker) = self.shared.unsettled().remove(&settle_token) else {
            return; // of a lost channel: RabbitMQ requeued it
        };
        let settled = match outcome {
            Outcome::Delivered => acker.ack(BasicAckOptions::default()).await,
            Outcome::Retryable => {
                acker
                    .nack(BasicNackOptions {
                        multiple: false,
                        requeue: true,
                    })
                    .await
            }
            Outcome::Permanent => acker.reject(BasicRejectOptions { requeue: false }).await,
        };
        if let Err(e) = settled {
            self.shared.log(
                LogLevel::Warn,
                &format!("settling a delivery failed ({e}); RabbitMQ redelivers it"),
            );
        }
    }

    async fn close(&self) {
        self.shared.closing.store(true, Ordering::Release);
        self.stop.send_replace(true);
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

#[async_trait]
impl Plugin for Amqp {
    const NAME: &'static str = "amqp-091";
    const CONNECTION_TYPES: &'static [&'static str] = &["amqp-091"];

    async fn create(config: &[u8], host: Host) -> Result<Self, String> {
        Ok(Amqp::start(Config::from_json(config)?, host))
    }
}

twinwire_plugin::export_adapter!(Amqp);

/// Why a connection ended.
enum Ended {
    Stopped,
    Lost(String),
}

/// Connects, serves, reconnects with backoff, until stopped.
async fn run(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut failures: u32 = 0;
    loop {
        let mut served = false;
        let ended = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => Ended::Stopped,
            ended = serve(&shared, &mut served) => ended,
        };
        // Whatever was not settled goes back to the queue with the channel.
        shared.set_publisher(None);
        shared.connected.send_replace(false);
        let dropped = std::mem::take(&mut *shared.unsettled()).len();
        match ended {
            Ended::Stopped => {
                shared.host.status(ConnectionStatus::Disconnected, "closed");
                return;
            }
            Ended::Lost(why) => {
                if dropped > 0 {
                    shared.log(
                        LogLevel::Info,
                        &format!("{dropped} deliveries were not settled: RabbitMQ requeues them"),
                    );
                }
                shared.host.status(ConnectionStatus::Disconnected, &why);
                if served {
                    failures = 0;
                }
                let wait = twinwire_plugin::settings::backoff(
                    shared.config.reconnect_min_delay,
                    shared.config.reconnect_max_delay,
                    failures,
                );
                failures = failures.saturating_add(1);
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => {
                        shared.host.status(ConnectionStatus::Disconnected, "closed");
                        return;
                    }
                    () = tokio::time::sleep(wait) => {}
                }
            }
        }
    }
}

/// One connection: set up, then consume until it fails. `served`: it got as far as consuming.
async fn serve(shared: &Shared, served: &mut bool) -> Ended {
    let config = &shared.config;
    let properties = ConnectionProperties::default()
        .with_connection_name(format!("twinwire {}", config.id).into());
    let connection = match connect(config, properties).await {
        Ok(c) => c,
        Err(why) => return Ended::Lost(why),
    };
    let mut events = connection.events_listener();
    let setup = async {
        let publisher = connection.create_channel().await?;
        publisher
            .confirm_select(ConfirmSelectOptions::default())
            .await?;
        let mut consumers = Vec::new();
        if !config.sources.is_empty() {
            let channel = connection.create_channel().await?;
            channel
                .basic_qos(config.max_in_flight, BasicQosOptions { global: true })
                .await?;
            for source in &config.sources {
                for queue in &source.queues {
                    channel
                        .queue_declare(
                            queue.as_str().into(),
                            QueueDeclareOptions {
                                passive: true,
                                ..QueueDeclareOptions::default()
                            },
                            FieldTable::default(),
                        )
                        .await?;
                    for n in 0..source.consumers {
                        let consumer = channel
                            .basic_consume(
                                queue.as_str().into(),
                                format!("twinwire-{}-{queue}-{n}", config.id).into(),
                                BasicConsumeOptions::default(),
                                FieldTable::default(),
                            )
                            .await?;
                        let queue = queue.clone();
                        consumers.push(consumer.map(move |d| (queue.clone(), d)).boxed());
                    }
                }
            }
            // Kept alive by its consumers.
            drop(channel);
        }
        Ok::<_, lapin::Error>((publisher, consumers))
    };
    let (publisher, consumers) = match setup.await {
        Ok(set) => set,
        Err(e) => {
            let _ = connection.close(200, "setup failed".into()).await;
            return Ended::Lost(format!("setting up the channels failed: {e}"));
        }
    };
    shared.set_publisher(Some(publisher));
    shared.connected.send_replace(true);
    *served = true;
    shared.host.status(
        ConnectionStatus::Connected,
        &format!("connected, consuming {} queue consumers", consumers.len()),
    );
    let mut deliveries = select_all(consumers);
    let consuming = !deliveries.is_empty();
    let ended = loop {
        tokio::select! {
            () = shared.broken.notified() => {
                if let Err(e) = reopen_publisher(shared, &connection).await {
                    break Ended::Lost(format!("reopening the publishing channel failed: {e}"));
                }
            }
            event = events.next() => match event {
                // A channel's error (e.g. a publish to a missing exchange) is reported here too:
                // only a failed connection ends it.
                Some(lapin::Event::Error(e)) if !connection.status().connected() => {
                    break Ended::Lost(format!("the connection failed: {e}"));
                }
                Some(_) => {}
                None => break Ended::Lost("the connection ended".to_owned()),
            },
            delivery = deliveries.next(), if consuming => match delivery {
                Some((queue, Ok(delivery))) => deliver(shared, &queue, delivery).await,
                Some((_, Err(e))) => break Ended::Lost(format!("consuming failed: {e}")),
                None => break Ended::Lost("the consumers were cancelled".to_owned()),
            },
        }
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(1),
        connection.close(200, "reconnecting".into()),
    )
    .await;
    ended
}

/// Opens a new publishing channel when the current one was closed (by a failed publish).
async fn reopen_publisher(shared: &Shared, connection: &Connection) -> Result<(), lapin::Error> {
    let closed = shared
        .publisher()
        .as_ref()
        .is_none_or(|c| !c.status().connected());
    if !closed {
        return Ok(());
    }
    let publisher = connection.create_channel().await?;
    publisher
        .confirm_select(ConfirmSelectOptions::default())
        .await?;
    shared.log(
        LogLevel::Info,
        "the publishing channel was closed; opened a new one",
    );
    shared.set_publisher(Some(publisher));
    Ok(())
}

async fn connect(config: &Config, properties: ConnectionProperties) -> Result<Connection, String> {
    let connecting = async {
        match &config.tls {
            None => Connection::connect(&config.uri, properties).await,
            Some(tls) => {
                let runtime = lapin::runtime::default_runtime()?;
                let tls = lapin::tcp::OwnedTLSConfig {
                    identity: tls.client_cert.as_ref().map(|(cert, key)| {
                        lapin::tcp::OwnedIdentity::PKCS8 {
                            pem: cert.as_bytes().to_vec(),
                            key: key.as_bytes().to_vec(),
                        }
                    }),
                    cert_chain: tls.ca.clone(),
                };
                Connection::connect_with_config(&config.uri, properties, tls, runtime).await
            }
        }
    };
    match tokio::time::timeout(Duration::from_secs(10), connecting).await {
        Ok(Ok(connection)) => Ok(connection),
        Ok(Err(e)) => Err(format!("cannot connect: {e}")),
        Err(_) => Err("cannot connect within 10s".to_owned()),
    }
}

/// Hands a delivery to the broker, waiting while it answers backpressure.
async fn deliver(shared: &Shared, queue: &str, delivery: lapin::message::Delivery) {
    let token = shared.tokens.fetch_add(1, Ordering::Relaxed) + 1;
    let source = shared.config.source_of(queue);
    let message = headers::inbound(
        queue,
        &delivery.properties,
        &delivery.data,
        delivery.redelivered,
        source,
    );
    shared.unsettled().insert(token, delivery.acker);
    let mut wait = Duration::from_millis(1);
    loop {
        match shared.host.deliver(message.clone(), token) {
            Delivery::Accepted => return,
            Delivery::Backpressure => {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(Duration::from_millis(100));
            }
            // The broker is closing the connection: not acknowledged, so requeued later.
            Delivery::Refused => {
                shared.unsettled().remove(&token);
                return;
            }
        }
    }
}
