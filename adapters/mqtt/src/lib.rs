//! twinwire's MQTT adapter: connection types `mqtt` (3.1.1) and `mqtt-5`, at least once end to
//! end.
//!
//! - Sources subscribe their topic filters with their qos. A consumed message is acknowledged
//!   (PUBACK, or PUBREC for qos 2) only when the broker settles it, in the order the messages
//!   came; a retryable outcome withholds the acknowledgement and the instance reconnects after
//!   `reconnectForRedeliveryDelay`, so that the server redelivers (Ditto's
//!   `reconnectForRedelivery`, on by default here); a permanent one is acknowledged after its
//!   error response went out.
//! - Targets and reply targets publish; a send completes when the server acknowledged the
//!   publish (PUBACK for qos 1, PUBCOMP for qos 2, matched by packet ID) or, for qos 0, when it
//!   was written. Only then does the broker issue the target's acknowledgement label.
//! - It connects again after a lost connection with backoff, resumes its session
//!   (`cleanSession: false`, the default) and subscribes again when the server kept none.
//! - At most `maxInFlight` consumed messages are unsettled at a time (see [`config::Config`]).
//!
//! Headers and properties: [`headers`]. Settings: [`config`]. Built as a plugin
//! (`libtwinwire_adapter_mqtt.so`) and as a library a host may link statically.

pub mod client;
pub mod config;
pub mod headers;
pub mod inflight;
pub mod outbox;
pub mod session;
pub mod status;
mod tls;

use std::sync::Arc;

use twinwire_plugin::{async_trait, Adapter, Host, Message, Outcome, Plugin, Receipt, SendError};

pub use config::Config;
use session::Session;
use status::StatusBoard;

/// An MQTT adapter instance: one client, or a consumer and a separate publisher
/// (`separatePublisherClient`).
pub struct Mqtt {
    consumer: Option<Session>,
    /// `None`: the consumer publishes too.
    publisher: Option<Session>,
}

impl Mqtt {
    /// Starts an instance. Needs a tokio runtime (the plugin runtime, when loaded as a plugin).
    pub fn start(config: Config, host: Host) -> Result<Mqtt, String> {
        let config = Arc::new(config);
        let board = Arc::new(StatusBoard::new(host.clone()));
        let consumes = !config.sources.is_empty();
        let separate = config.publisher_id.clone();
        let consumer = (consumes || separate.is_none())
            .then(|| {
                Session::start(
                    Arc::clone(&config),
                    &config.client_id,
                    "client",
                    consumes,
                    host.clone(),
                    Arc::clone(&board),
                )
            })
            .transpose()?;
        let publisher = separate
            .map(|id| {
                Session::start(
                    Arc::clone(&config),
                    &id,
                    "publisher",
                    false,
                    host.clone(),
                    Arc::clone(&board),
                )
            })
            .transpose()?;
        Ok(Mqtt {
            consumer,
            publisher,
        })
    }

    fn publishing(&self) -> Option<&Session> {
        self.publisher.as_ref().or(self.consumer.as_ref())
    }
}

#[async_trait]
impl Adapter for Mqtt {
    async fn send(&self, message: Message) -> Result<Receipt, SendError> {
        match self.publishing() {
            Some(session) => session.publish(&message).await.map(|()| Receipt::default()),
            None => Err(SendError::Closed),
        }
    }

    async fn settle(&self, settle_token: u64, outcome: Outcome) {
        if let Some(consumer) = &self.consumer {
            consumer.settle(settle_token, outcome);
        }
    }

    async fn close(&self) {
        if let Some(consumer) = &self.consumer {
            consumer.close().await;
        }
        if let Some(publisher) = &self.publisher {
            publisher.close().await;
        }
    }
}

#[async_trait]
impl Plugin for Mqtt {
    const NAME: &'static str = "mqtt";
    const CONNECTION_TYPES: &'static [&'static str] = &["mqtt", "mqtt-5"];

    async fn create(config: &[u8], host: Host) -> Result<Self, String> {
        Mqtt::start(Config::from_json(config)?, host)
    }
}

twinwire_plugin::export_adapter!(Mqtt);
