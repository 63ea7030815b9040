//! One rumqttc client, MQTT 3.1.1 or 5, behind one small interface: the session code above it
//! does not care which version it speaks.

use std::sync::Arc;

use rumqttc::v5 as r5;
use rumqttc::v5::mqttbytes::v5 as p5;

use crate::config::{Config, Version};
use crate::headers::{Incoming, Outgoing, Properties};
use crate::inflight::AckHandle;

/// What the event loop reports, whichever the version.
#[derive(Debug)]
pub enum Event {
    /// Connected; `session_present`: the server kept our session (subscriptions, unacknowledged
    /// messages both ways).
    Connected { session_present: bool },
    /// The server refused the connection.
    Refused(String),
    /// A publish from the server.
    Publish(Incoming, AckHandle),
    /// A publish of ours was written with this packet ID (0 for qos 0).
    Written(u16),
    /// The server acknowledged a publish of ours (PUBACK, PUBCOMP), or refused it (MQTT 5).
    Acknowledged(u16, Option<String>),
    /// The server refused a subscription.
    SubscribeRefused(String),
    /// Our DISCONNECT was written.
    DisconnectSent,
    /// Nothing the adapter acts on (pings, our acknowledgements...).
    Other,
}

/// The request side of a client. Every method queues a request without waiting: the channel is
/// sized for the adapter's windows, so a full one is a bug, reported as an error.
#[derive(Clone)]
pub enum Client {
    V3(rumqttc::AsyncClient),
    V5(r5::AsyncClient),
}

/// The event loop side.
pub enum EventLoop {
    V3(Box<rumqttc::EventLoop>),
    V5(Box<r5::EventLoop>),
}

fn qos3(q: u8) -> rumqttc::QoS {
    match q {
        0 => rumqttc::QoS::AtMostOnce,
        1 => rumqttc::QoS::AtLeastOnce,
        _ => rumqttc::QoS::ExactlyOnce,
    }
}

fn qos5(q: u8) -> r5::mqttbytes::QoS {
    match q {
        0 => r5::mqttbytes::QoS::AtMostOnce,
        1 => r5::mqttbytes::QoS::AtLeastOnce,
        _ => r5::mqttbytes::QoS::ExactlyOnce,
    }
}

/// A client with ID `client_id`; `requests`: the request channel's capacity.
pub fn new(
    config: &Config,
    client_id: &str,
    requests: usize,
) -> Result<(Client, EventLoop), String> {
    let transport = match &config.tls {
        None => rumqttc::Transport::Tcp,
        Some(tls) => rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(
            Arc::new(crate::tls::client_config(tls)?),
        )),
    };
    let connect_timeout = config.connect_timeout.as_secs().max(1);
    match config.version {
        Version::V311 => {
            let mut o = rumqttc::MqttOptions::new(client_id, &config.host, config.port);
            o.set_keep_alive(config.keep_alive.max(std::time::Duration::from_secs(1)))
                .set_clean_session(config.clean_session)
                .set_manual_acks(true)
                .set_request_channel_capacity(requests)
                .set_transport(transport);
            if let Some((user, password)) = &config.login {
                o.set_credentials(user, password);
            }
            if let Some(will) = &config.last_will {
                o.set_last_will(rumqttc::LastWill::new(
                    &will.topic,
                    will.message.as_bytes().to_vec(),
                    qos3(will.qos),
                    will.retain,
                ));
            }
            let (client, mut eventloop) = rumqttc::AsyncClient::new(o, requests);
            let mut network = rumqttc::NetworkOptions::new();
            network.set_connection_timeout(connect_timeout);
            eventloop.set_network_options(network);
            Ok((Client::V3(client), EventLoop::V3(Box::new(eventloop))))
        }
        Version::V5 => {
            let mut o = r5::MqttOptions::new(client_id, &config.host, config.port);
            o.set_keep_alive(config.keep_alive.max(std::time::Duration::from_secs(1)))
                .set_clean_start(config.clean_session)
                .set_manual_acks(true)
                .set_request_channel_capacity(requests)
                .set_transport(transport)
                .set_receive_maximum(Some(config.max_in_flight.min(65_535) as u16));
            let expiry = u32::try_from(config.session_expiry.as_secs()).unwrap_or(u32::MAX);
            o.set_session_expiry_interval((expiry > 0).then_some(expiry));
            if let Some((user, password)) = &config.login {
                o.set_credentials(user, password);
            }
            if let Some(will) = &config.last_will {
                o.set_last_will(p5::LastWill::new(
                    &will.topic,
                    will.message.as_bytes().to_vec(),
                    qos5(will.qos),
                    will.retain,
                    None,
                ));
            }
            let (client, mut eventloop) = r5::AsyncClient::new(o, requests);
            let mut network = rumqttc::NetworkOptions::new();
            network.set_connection_timeout(connect_timeout);
            eventloop.options.set_network_options(network);
            Ok((Client::V5(client), EventLoop::V5(Box::new(eventloop))))
        }
    }
}

impl Client {
    pub fn publish(&self, out: &Outgoing) -> Result<(), String> {
        match self {
            Client::V3(c) => c
                .try_publish(&out.topic, qos3(out.qos), out.retain, out.payload.clone())
                .map_err(|e| e.to_string()),
            Client::V5(c) => {
                let p = &out.properties;
                let properties = p5::PublishProperties {
                    message_expiry_interval: p.message_expiry,
                    response_topic: p.response_topic.clone(),
                    correlation_data: p.correlation_data.clone().map(bytes::Bytes::from),
                    user_properties: p.user.clone(),
                    content_type: p.content_type.clone(),
                    ..Default::default()
                };
                c.try_publish_with_properties(
                    out.topic.clone(),
                    qos5(out.qos),
                    out.retain,
                    out.payload.clone(),
                    properties,
                )
                .map_err(|e| e.to_string())
            }
        }
    }

    pub fn ack(&self, ack: AckHandle) -> Result<(), String> {
        match self {
            Client::V3(c) => {
                let mut publish = rumqttc::Publish::new("", qos3(ack.qos), Vec::new());
                publish.pkid = ack.pkid;
                c.try_ack(&publish).map_err(|e| e.to_string())
            }
            Client::V5(c) => {
                let mut publish = p5::Publish::new("", qos5(ack.qos), Vec::new(), None);
                publish.pkid = ack.pkid;
                c.try_ack(&publish).map_err(|e| e.to_string())
            }
        }
    }

    pub fn subscribe(&self, filter: &str, qos: u8) -> Result<(), String> {
        match self {
            Client::V3(c) => c
                .try_subscribe(filter, qos3(qos))
                .map_err(|e| e.to_string()),
            Client::V5(c) => c
                .try_subscribe(filter, qos5(qos))
                .map_err(|e| e.to_string()),
        }
    }

    pub fn disconnect(&self) -> Result<(), String> {
        match self {
            Client::V3(c) => c.try_disconnect().map_err(|e| e.to_string()),
            Client::V5(c) => c.try_disconnect().map_err(|e| e.to_string()),
        }
    }
}

impl EventLoop {
    /// The next event; an error means the connection is gone (the next poll connects again).
    pub async fn poll(&mut self) -> Result<Event, String> {
        match self {
            EventLoop::V3(e) => e.poll().await.map(event3).map_err(|e| e.to_string()),
            EventLoop::V5(e) => e.poll().await.map(event5).map_err(|e| e.to_string()),
        }
    }

    /// Drops the network connection (after our DISCONNECT): the next poll connects again.
    pub fn clean(&mut self) {
        match self {
            EventLoop::V3(e) => e.clean(),
            EventLoop::V5(e) => e.clean(),
        }
    }
}

fn event3(event: rumqttc::Event) -> Event {
    use rumqttc::{ConnectReturnCode, Event as E, Outgoing as O, Packet};
    match event {
        E::Incoming(Packet::ConnAck(ack)) => match ack.code {
            ConnectReturnCode::Success => Event::Connected {
                session_present: ack.session_present,
            },
            code => Event::Refused(format!("{code:?}")),
        },
        E::Incoming(Packet::Publish(p)) => Event::Publish(
            Incoming {
                topic: p.topic.clone(),
                qos: p.qos as u8,
                retain: p.retain,
                dup: p.dup,
                payload: p.payload.to_vec(),
                properties: None,
            },
            AckHandle {
                pkid: p.pkid,
                qos: p.qos as u8,
            },
        ),
        E::Incoming(Packet::PubAck(ack)) => Event::Acknowledged(ack.pkid, None),
        E::Incoming(Packet::PubComp(comp)) => Event::Acknowledged(comp.pkid, None),
        E::Incoming(Packet::SubAck(ack)) => {
            if ack
                .return_codes
                .iter()
                .any(|c| matches!(c, rumqttc::SubscribeReasonCode::Failure))
            {
                Event::SubscribeRefused("the server refused a subscription".to_owned())
            } else {
                Event::Other
            }
        }
        E::Outgoing(O::Publish(pkid)) => Event::Written(pkid),
        E::Outgoing(O::Disconnect) => Event::DisconnectSent,
        _ => Event::Other,
    }
}

fn event5(event: r5::Event) -> Event {
    use p5::{ConnectReturnCode, Packet};
    use r5::Event as E;
    use rumqttc::Outgoing as O;
    match event {
        E::Incoming(Packet::ConnAck(ack)) => match ack.code {
            ConnectReturnCode::Success => Event::Connected {
                session_present: ack.session_present,
            },
            code => Event::Refused(format!("{code:?}")),
        },
        E::Incoming(Packet::Publish(p)) => {
            let properties = p.properties.as_ref().map(|pp| Properties {
                correlation_data: pp.correlation_data.as_ref().map(|d| d.to_vec()),
                response_topic: pp.response_topic.clone(),
                content_type: pp.content_type.clone(),
                message_expiry: pp.message_expiry_interval,
                user: pp.user_properties.clone(),
            });
            Event::Publish(
                Incoming {
                    topic: String::from_utf8_lossy(&p.topic).into_owned(),
                    qos: p.qos as u8,
                    retain: p.retain,
                    dup: p.dup,
                    payload: p.payload.to_vec(),
                    properties: Some(properties.unwrap_or_default()),
                },
                AckHandle {
                    pkid: p.pkid,
                    qos: p.qos as u8,
                },
            )
        }
        E::Incoming(Packet::PubAck(ack)) => Event::Acknowledged(
            ack.pkid,
            match ack.reason {
                p5::PubAckReason::Success | p5::PubAckReason::NoMatchingSubscribers => None,
                other => Some(format!("the server refused the publish: {other:?}")),
            },
        ),
        E::Incoming(Packet::PubRec(rec)) => match rec.reason {
            p5::PubRecReason::Success | p5::PubRecReason::NoMatchingSubscribers => Event::Other,
            other => Event::Acknowledged(
                rec.pkid,
                Some(format!("the server refused the publish: {other:?}")),
            ),
        },
        E::Incoming(Packet::PubComp(comp)) => Event::Acknowledged(
            comp.pkid,
            match comp.reason {
                p5::PubCompReason::Success => None,
                other => Some(format!("the server refused the publish: {other:?}")),
            },
        ),
        E::Incoming(Packet::SubAck(ack)) => match ack
            .return_codes
            .iter()
            .find(|c| !matches!(c, p5::SubscribeReasonCode::Success(_)))
        {
            Some(code) => {
                Event::SubscribeRefused(format!("the server refused a subscription: {code:?}"))
            }
            None => Event::Other,
        },
        E::Incoming(Packet::Disconnect(d)) => {
            Event::Refused(format!("the server disconnected: {:?}", d.reason_code))
        }
        E::Outgoing(O::Publish(pkid)) => Event::Written(pkid),
        E::Outgoing(O::Disconnect) => Event::DisconnectSent,
        _ => Event::Other,
    }
}
