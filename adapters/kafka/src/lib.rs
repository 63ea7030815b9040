//! twinwire's Kafka adapter (connection type `kafka`), at least once end to end, on rdkafka
//! (librdkafka).
//!
//! - Sources consume their topics in the connection's consumer group, with automatic commits and
//!   offset storing off. For each partition the adapter commits only the contiguous watermark
//!   below which every message is settled ([`offsets`]); a message handed back for redelivery
//!   rewinds (seeks) its partition to it, and what follows is consumed again, marked
//!   redelivered, so the broker applies a twin change once. A permanent outcome counts as
//!   settled (after its error response). `qos: 0` sources commit on consumption (Ditto's
//!   at-most-once). At most `maxInFlight` messages are unsettled: then the consumer stops
//!   fetching. On rebalance and shutdown the messages of the released partitions get
//!   `drainTimeout` to settle, then their watermark is committed.
//! - Targets produce with `acks=all` to `topic`, `topic/key` or `topic#partition`; a send
//!   completes on the delivery report, and only then does the broker issue the target's
//!   acknowledgement label. A full producer queue makes the send wait (up to `publishTimeout`).
//! - librdkafka reconnects by itself; the adapter reports the cluster reachable or not by asking
//!   it for metadata, and each partition's consumer lag (`kafka_consumer_lag`) to the
//!   connection's metrics.
//!
//! Headers: [`headers`]. Settings: [`config`].

pub mod config;
pub mod headers;
pub mod offsets;

mod consumer;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::future_producer::Delivery;
use rdkafka::producer::{FutureProducer, FutureRecord, Producer};
use rdkafka::util::Timeout;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use twinwire_plugin::{
    async_trait, Adapter, ConnectionStatus, Host, LogLevel, Message, Outcome, Plugin, Receipt,
    SendError,
};

pub use config::Config;
use headers::Outgoing;
use offsets::{Partition, Settled, Tracker};

/// What the consumer thread and the settlements share.
struct State {
    tracker: Tracker,
    /// Partitions to seek back to an offset, by the consumer thread.
    rewinds: Vec<(Partition, i64)>,
}

struct Shared {
    config: Config,
    host: Host,
    state: Mutex<State>,
    /// Notified on every settlement (the consumer waits on it for room and when draining).
    settled: Condvar,
    tokens: AtomicU64,
    stopping: AtomicBool,
}

impl Shared {
    fn log(&self, level: LogLevel, text: &str) {
        self.host
            .log(level, &format!("kafka {}: {text}", self.config.id));
    }

    /// A log line of librdkafka's (either client), at the host's nearest level.
    fn librdkafka_log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        let level = match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => LogLevel::Warn,
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => LogLevel::Info,
            RDKafkaLogLevel::Debug => LogLevel::Debug,
        };
        self.log(level, &format!("librdkafka {facility}: {message}"));
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The clients' context: librdkafka's logs and errors go to the host.
struct Context {
    shared: Arc<Shared>,
}

impl ClientContext for Context {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        self.shared.librdkafka_log(level, facility, message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.shared
            .log(LogLevel::Warn, &format!("librdkafka: {error}: {reason}"));
    }
}

/// A Kafka adapter instance.
pub struct Kafka {
    shared: Arc<Shared>,
    producer: FutureProducer<Context>,
    stop: watch::Sender<bool>,
    consumer: Mutex<Option<std::thread::JoinHandle<()>>>,
    monitor: Mutex<Option<JoinHandle<()>>>,
}

impl Kafka {
    /// Starts an instance: the producer, the consumer (when there are sources) on a thread of
    /// its own, and the cluster monitor. Needs a tokio runtime (the plugin runtime, when loaded
    /// as a plugin).
    pub fn start(config: Config, host: Host) -> Result<Kafka, String> {
        let shared = Arc::new(Shared {
            config,
            host,
            state: Mutex::new(State {
                tracker: Tracker::default(),
                rewinds: Vec::new(),
            }),
            settled: Condvar::new(),
            tokens: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
        });
        shared
            .host
            .status(ConnectionStatus::Disconnected, "connecting");
        let producer: FutureProducer<Context> = client_config(&shared.config.producer_properties())
            .create_with_context(Context {
                shared: Arc::clone(&shared),
            })
            .map_err(|e| format!("kafka: cannot create the producer: {e}"))?;
        let consumer = if shared.config.topics().is_empty() {
            None
        } else {
            Some(consumer::start(Arc::clone(&shared))?)
        };
        let (stop, stopped) = watch::channel(false);
        let monitor = tokio::spawn(monitor(Arc::clone(&shared), producer.clone(), stopped));
        Ok(Kafka {
            shared,
            producer,
            stop,
            consumer: Mutex::new(consumer),
            monitor: Mutex::new(Some(monitor)),
        })
    }
}

/// librdkafka's configuration of `properties`.
fn client_config(properties: &[(String, String)]) -> ClientConfig {
    let mut config = ClientConfig::new();
    for (key, value) in properties {
        config.set(key, value);
    }
    config.set_log_level(RDKafkaLogLevel::Warning);
    config
}

/// Reports the cluster reachable or not: asks it for metadata, with backoff while it cannot be
/// reached (librdkafka reconnects by itself; this only tells the broker).
async fn monitor(
    shared: Arc<Shared>,
    producer: FutureProducer<Context>,
    mut stop: watch::Receiver<bool>,
) {
    let mut failures: u32 = 0;
    let mut connected = false;
    loop {
        let client = producer.clone();
        let asked = tokio::task::spawn_blocking(move || {
            client
                .client()
                .fetch_metadata(None, Duration::from_secs(3))
                .map(|m| m.brokers().len())
        });
        let wait = match asked.await {
            Ok(Ok(brokers)) => {
                if !connected {
                    shared.host.status(
                        ConnectionStatus::Connected,
                        &format!("connected, the cluster has {brokers} brokers"),
                    );
                    connected = true;
                }
                failures = 0;
                Duration::from_secs(5)
            }
            Ok(Err(e)) => {
                connected = false;
                shared.host.status(
                    ConnectionStatus::Disconnected,
                    &format!("the cluster cannot be reached: {e}"),
                );
                let wait = twinwire_plugin::settings::backoff(
                    shared.config.reconnect_min_delay,
                    shared.config.reconnect_max_delay,
                    failures,
                );
                failures = failures.saturating_add(1);
                wait
            }
            Err(_) => return, // the runtime is shutting down
        };
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            () = tokio::time::sleep(wait) => {}
        }
    }
}

/// Kafka's `RecordMetadata` of a produced record, as Ditto puts it into the target's
/// acknowledgement with `debugEnabled`.
fn record_metadata(out: &Outgoing, value_size: usize, delivery: &Delivery) -> String {
    let mut metadata = serde_json::Map::new();
    if let Some(timestamp) = delivery.timestamp.to_millis() {
        metadata.insert("timestamp".to_owned(), timestamp.into());
    }
    // -1 for no key, as Kafka's producer reports it.
    let key_size = out.key.as_ref().map_or(-1, |k| k.len() as i64);
    metadata.insert("serializedKeySize".to_owned(), key_size.into());
    metadata.insert("serializedValueSize".to_owned(), value_size.into());
    metadata.insert("topic".to_owned(), out.topic.clone().into());
    metadata.insert("partition".to_owned(), delivery.partition.into());
    if delivery.offset >= 0 {
        metadata.insert("offset".to_owned(), delivery.offset.into());
    }
    serde_json::Value::Object(metadata).to_string()
}

/// Whether a produce error may succeed when tried again.
fn send_error(error: KafkaError) -> SendError {
    let code = error.rdkafka_error_code();
    let permanent = matches!(
        code,
        Some(
            RDKafkaErrorCode::MessageSizeTooLarge
                | RDKafkaErrorCode::InvalidMessageSize
                | RDKafkaErrorCode::InvalidMessage
                | RDKafkaErrorCode::InvalidRecord
                | RDKafkaErrorCode::UnknownTopic
                | RDKafkaErrorCode::UnknownPartition
                | RDKafkaErrorCode::UnknownTopicOrPartition
                | RDKafkaErrorCode::InvalidTopic
                | RDKafkaErrorCode::InvalidPartitions
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
        )
    );
    if permanent {
        SendError::Rejected(format!("producing failed: {error}"))
    } else {
        SendError::Retryable(format!("producing failed: {error}"))
    }
}

#[async_trait]
impl Adapter for Kafka {
    async fn send(&self, message: Message) -> Result<Receipt, SendError> {
        if self.shared.stopping.load(Ordering::Acquire) {
            return Err(SendError::Closed);
        }
        let out = Outgoing::from_message(&message, &self.shared.config.id)?;
        let mut headers = OwnedHeaders::new_with_capacity(out.headers.len());
        for (name, value) in &out.headers {
            headers = headers.insert(Header {
                key: name,
                value: Some(value.as_str()),
            });
        }
        let mut record: FutureRecord<'_, str, [u8]> = FutureRecord::to(&out.topic)
            .payload(message.payload())
            .headers(headers);
        if let Some(key) = &out.key {
            record = record.key(key.as_str());
        }
        if let Some(partition) = out.partition {
            record = record.partition(partition);
        }
        // Waits while the producer queue is full (backpressure), then for the delivery report.
        match self
            .producer
            .send(record, Timeout::After(self.shared.config.publish_timeout))
            .await
        {
            Ok(delivery) if self.shared.config.debug_enabled => Ok(Receipt::with_metadata(
                record_metadata(&out, message.payload().len(), &delivery),
            )),
            Ok(_) => Ok(Receipt::default()),
            Err((error, _)) => Err(send_error(error)),
        }
    }

    async fn settle(&self, settle_token: u64, outcome: Outcome) {
        let shared = &self.shared;
        let redeliver = outcome == Outcome::Retryable;
        {
            let mut state = shared.state();
            if let Settled::Rewind(partition, offset) =
                state.tracker.settled(settle_token, redeliver)
            {
                state.rewinds.push((partition, offset));
            }
        }
        shared.settled.notify_all();
    }

    async fn close(&self) {
        let shared = &self.shared;
        shared.stopping.store(true, Ordering::Release);
        shared.settled.notify_all();
        self.stop.send_replace(true);
        let monitor = self
            .monitor
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(monitor) = monitor {
            let _ = monitor.await;
        }
        // The consumer drains, commits and leaves the group on its own thread.
        let consumer = self
            .consumer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(consumer) = consumer {
            let _ = tokio::task::spawn_blocking(move || consumer.join()).await;
        }
        let producer = self.producer.clone();
        let timeout = shared.config.drain_timeout;
        let _ = tokio::task::spawn_blocking(move || producer.flush(timeout)).await;
        shared.host.status(ConnectionStatus::Disconnected, "closed");
    }
}

#[async_trait]
impl Plugin for Kafka {
    const NAME: &'static str = "kafka";
    const CONNECTION_TYPES: &'static [&'static str] = &["kafka"];

    async fn create(config: &[u8], host: Host) -> Result<Self, String> {
        Kafka::start(Config::from_json(config)?, host)
    }
}

twinwire_plugin::export_adapter!(Kafka);
