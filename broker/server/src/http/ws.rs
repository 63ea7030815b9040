//! `/ws/2` (docs/httpapi-protocol-bindings-websocket.md): Ditto Protocol JSON both ways, and the
//! plain-text control messages `START-SEND-*` / `STOP-SEND-*` (with `namespaces`, `filter` and
//! `extraFields` where the page allows them) answered with `…:ACK`, `JWT-TOKEN` to refresh a
//! token, `declared-acks` on the connect URL, acknowledgements and live responses sent by the
//! client.
//!
//! A session is two tasks: the reader hands what the client sends to the router in order (a twin
//! command reaches its shard before the next message is read, so commands apply in the order
//! sent while their answers come as they are done; policy commands and acks complete before the
//! next message); the writer sends the replies and the subscribed signals. Replies wait for room in the writer's queue. When the client does not
//! keep up, subscribed signals it is to acknowledge (a label it declared, a live command's or
//! message's response) wait for room, in order, at most their timeout; other events are dropped
//! and counted (`Publisher::stats`).

use super::error::ApiError;
use super::AppState;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Router};
use futures_util::{SinkExt, StreamExt};
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use twinwire_core::auth::AuthContext;
use twinwire_core::routing::acks::AckIssuer;
use twinwire_core::routing::pubsub::{Kind, SubscriberId, Subscription};
use twinwire_core::routing::Requester;
use twinwire_protocol::exceptions::gateway;
use twinwire_protocol::topic::{Channel, Criterion, Group};
use twinwire_protocol::{AckLabel, DittoError, Envelope, Headers, JsonPointer, Topic};

pub fn routes() -> Router<AppState> {
    Router::new().route("/ws/2", get(upgrade))
}

async fn upgrade(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    Query(query): Query<Vec<(String, String)>>,
    upgrade: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let limit = state.limits.max_websocket_sessions;
    if state.sessions.fetch_add(1, Ordering::AcqRel) >= limit {
        state.sessions.fetch_sub(1, Ordering::AcqRel);
        return Err(gateway::too_many_sessions(limit).into());
    }
    let session = uuid::Uuid::new_v4().to_string();
    let issuer = AckIssuer::WebSocket(session.clone());
    let declared = declared_acks(&query);
    let declared = match declared {
        Ok(labels) => state.router.declare_acks(&issuer, &labels),
        Err(e) => Err(e),
    };
    if let Err(error) = declared {
        state.sessions.fetch_sub(1, Ordering::AcqRel);
        return Err(error.into());
    }
    let max = state.limits.max_message_bytes;
    Ok(upgrade
        .max_message_size(max)
        .on_upgrade(move |socket| async move {
            run(socket, state.clone(), session, auth).await;
            state.router.leave(&issuer);
            state.sessions.fetch_sub(1, Ordering::AcqRel);
        })
        .into_response())
}

/// `declared-acks=a,b` or `declared-acks=["a","b"]` on the connect URL.
fn declared_acks(query: &[(String, String)]) -> Result<Vec<AckLabel>, DittoError> {
    let mut headers = Headers::new();
    for (name, value) in query {
        if name == "declared-acks" {
            headers.insert("requested-acks", value.as_str());
        }
    }
    // The same forms as `requested-acks`, so the same parser.
    Ok(headers.requested_acks()?.unwrap_or_default())
}

/// What the writer sends.
enum Outgoing {
    Signal(Box<Envelope>),
    Text(&'static str),
}

async fn run(socket: WebSocket, state: AppState, session: String, auth: AuthContext) {
    let (mut sink, mut stream) = socket.split();
    let queue = state.limits.session_queue.max(1);
    let (replies, mut reply_queue) = mpsc::channel::<Outgoing>(queue);
    let (signals, mut signal_queue) = mpsc::channel::<Envelope>(queue);
    let writer = tokio::spawn(async move {
        loop {
            let outgoing = tokio::select! {
                biased;
                reply = reply_queue.recv() => match reply {
                    Some(reply) => reply,
                    None => break,
                },
                signal = signal_queue.recv() => match signal {
                    Some(signal) => Outgoing::Signal(Box::new(signal)),
                    None => break,
                },
            };
            let text = match outgoing {
                Outgoing::Signal(envelope) => envelope.to_json_string(),
                Outgoing::Text(text) => text.to_owned(),
            };
            if sink
                .send(Message::Text(Utf8Bytes::from(text)))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    let mut session = Session {
        state,
        requester: Requester::websocket(session.clone(), auth.clone()),
        id: session,
        auth,
        replies,
        signals,
    };
    while let Some(Ok(message)) = stream.next().await {
        let text = match message {
            Message::Text(text) => text,
            Message::Binary(bytes) => match String::from_utf8(bytes.to_vec()) {
                Ok(text) => Utf8Bytes::from(text),
                Err(_) => continue,
            },
            Message::Close(_) => break,
            Message::Ping(_) | Message::Pong(_) => continue,
        };
        if !session.handle(text.as_str()).await {
            break;
        }
    }
    writer.abort();
}

struct Session {
    state: AppState,
    id: String,
    auth: AuthContext,
    requester: Requester,
    replies: mpsc::Sender<Outgoing>,
    signals: mpsc::Sender<Envelope>,
}

impl Session {
    /// Handles one text message; `false` when the session is to end.
    async fn handle(&mut self, text: &str) -> bool {
        let trimmed = text.trim();
        if let Some(control) = Control::parse(trimmed) {
            return self.control(control).await;
        }
        let envelope = match Envelope::from_slice(trimmed.as_bytes()) {
            Ok(envelope) => envelope,
            Err(error) => return self.error(&error.into(), None).await,
        };
        // Twin commands are handed to their shard here, in the order the client sent them, and
        // answered whenever they are done: the client may pipeline. Policy commands and acks
        // complete in order before the next message is read.
        let in_order = matches!(envelope.topic.group, Group::Policies)
            || matches!(envelope.topic.criterion, Criterion::Acks(_));
        let pending = self.state.router.submit(envelope, &self.requester).await;
        let replies = self.replies.clone();
        let answer = async move {
            match pending.await.reply {
                Some(reply) => replies
                    .send(Outgoing::Signal(Box::new(reply)))
                    .await
                    .is_ok(),
                None => true,
            }
        };
        if in_order {
            answer.await
        } else {
            tokio::spawn(answer);
            true
        }
    }

    async fn control(&mut self, control: Control) -> bool {
        match control {
            Control::Start { kind, query } => {
                let sub = match self.subscription(kind, &query) {
                    Ok(sub) => sub,
                    Err(error) => return self.error(&error, Some(kind)).await,
                };
                let issuer = Some(AckIssuer::WebSocket(self.id.clone()));
                if let Err(error) = self
                    .state
                    .router
                    .subscribe(sub, issuer, self.signals.clone())
                {
                    return self.error(&error, Some(kind)).await;
                }
                self.text(start_ack(kind)).await
            }
            Control::Stop { kind } => {
                self.state
                    .router
                    .unsubscribe(&SubscriberId::new(self.id.as_str(), control_name(kind)));
                self.text(stop_ack(kind)).await
            }
            Control::JwtToken { token } => {
                // A fresh token must name the same first subject; otherwise the session ends.
                let bearer = format!("Bearer {token}");
                match self.state.auth.authenticate(Some(&bearer), None, None) {
                    Ok(caller) if caller.auth.first() == self.auth.first() => true,
                    Ok(_) | Err(_) => {
                        let error = gateway::jwt_invalid(
                            "the new token names another subject or does not verify",
                        );
                        self.error(&error, None).await;
                        false
                    }
                }
            }
        }
    }

    fn subscription(
        &self,
        kind: Kind,
        query: &[(String, String)],
    ) -> Result<Subscription, DittoError> {
        let id = SubscriberId::new(self.id.as_str(), control_name(kind));
        let mut sub = Subscription::new(id, self.auth.clone(), kind);
        for (name, value) in query {
            match name.as_str() {
                "namespaces" => {
                    let namespaces: Vec<String> = value
                        .split(',')
                        .map(str::trim)
                        .filter(|n| !n.is_empty())
                        .map(str::to_owned)
                        .collect();
                    sub = sub.with_namespaces(namespaces);
                }
                // RQL filters: events and live events only, as the page says.
                "filter" if matches!(kind, Kind::TwinEvents | Kind::LiveEvents) => {
                    sub = sub.with_filter(value)?;
                }
                "extraFields" if kind != Kind::PolicyAnnouncements => {
                    sub = sub.with_extra_fields(value.as_str());
                }
                _ => {}
            }
        }
        Ok(sub)
    }

    async fn text(&self, text: &'static str) -> bool {
        self.replies.send(Outgoing::Text(text)).await.is_ok()
    }

    /// An error as Ditto sends it on the WebSocket: an error envelope (`…/errors`).
    async fn error(&self, error: &DittoError, kind: Option<Kind>) -> bool {
        let group = match kind {
            Some(Kind::PolicyAnnouncements) => Group::Policies,
            _ => Group::Things,
        };
        let topic = Topic {
            namespace: twinwire_protocol::id::WILDCARD.to_owned(),
            name: twinwire_protocol::id::WILDCARD.to_owned(),
            group,
            channel: if group == Group::Things {
                Channel::Twin
            } else {
                Channel::None
            },
            criterion: Criterion::Errors,
        };
        let mut envelope = Envelope::new(topic, Headers::new(), JsonPointer::root());
        envelope.status = Some(error.status);
        envelope.value = Some(error.to_json());
        self.replies
            .send(Outgoing::Signal(Box::new(envelope)))
            .await
            .is_ok()
    }
}

/// A control message.
#[derive(Debug, PartialEq)]
enum Control {
    Start {
        kind: Kind,
        query: Vec<(String, String)>,
    },
    Stop {
        kind: Kind,
    },
    JwtToken {
        token: String,
    },
}

const CONTROLS: [(&str, Kind); 5] = [
    ("EVENTS", Kind::TwinEvents),
    ("MESSAGES", Kind::LiveMessages),
    ("LIVE-COMMANDS", Kind::LiveCommands),
    ("LIVE-EVENTS", Kind::LiveEvents),
    ("POLICY-ANNOUNCEMENTS", Kind::PolicyAnnouncements),
];

fn control_name(kind: Kind) -> &'static str {
    CONTROLS
        .iter()
        .find(|(_, k)| *k == kind)
        .map_or("EVENTS", |(name, _)| name)
}

fn start_ack(kind: Kind) -> &'static str {
    match kind {
        Kind::TwinEvents => "START-SEND-EVENTS:ACK",
        Kind::LiveMessages => "START-SEND-MESSAGES:ACK",
        Kind::LiveCommands => "START-SEND-LIVE-COMMANDS:ACK",
        Kind::LiveEvents => "START-SEND-LIVE-EVENTS:ACK",
        Kind::PolicyAnnouncements | Kind::ConnectionAnnouncements => {
            "START-SEND-POLICY-ANNOUNCEMENTS:ACK"
        }
    }
}

fn stop_ack(kind: Kind) -> &'static str {
    match kind {
        Kind::TwinEvents => "STOP-SEND-EVENTS:ACK",
        Kind::LiveMessages => "STOP-SEND-MESSAGES:ACK",
        Kind::LiveCommands => "STOP-SEND-LIVE-COMMANDS:ACK",
        Kind::LiveEvents => "STOP-SEND-LIVE-EVENTS:ACK",
        Kind::PolicyAnnouncements | Kind::ConnectionAnnouncements => {
            "STOP-SEND-POLICY-ANNOUNCEMENTS:ACK"
        }
    }
}

impl Control {
    fn parse(text: &str) -> Option<Control> {
        if let Some(rest) = text.strip_prefix("JWT-TOKEN") {
            let query = parse_query(rest.strip_prefix('?').unwrap_or(""));
            let token = query
                .into_iter()
                .find(|(n, _)| n == "jwtToken")
                .map(|(_, v)| v)?;
            return Some(Control::JwtToken { token });
        }
        let (start, rest) = if let Some(rest) = text.strip_prefix("START-SEND-") {
            (true, rest)
        } else {
            (false, text.strip_prefix("STOP-SEND-")?)
        };
        let (name, query) = rest.split_once('?').unwrap_or((rest, ""));
        let kind = CONTROLS.iter().find(|(n, _)| *n == name)?.1;
        Some(if start {
            Control::Start {
                kind,
                query: parse_query(query),
            }
        } else {
            Control::Stop { kind }
        })
    }
}

/// `a=1&b=x%20y` → pairs, percent- and plus-decoded.
fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| {
                percent_encoding::percent_decode_str(&s.replace('+', " "))
                    .decode_utf8_lossy()
                    .into_owned()
            };
            (decode(name), decode(value))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_messages() {
        assert_eq!(
            Control::parse("START-SEND-EVENTS?namespaces=a,b&filter=eq(attributes%2Fx,1)"),
            Some(Control::Start {
                kind: Kind::TwinEvents,
                query: vec![
                    ("namespaces".into(), "a,b".into()),
                    ("filter".into(), "eq(attributes/x,1)".into())
                ]
            })
        );
        assert_eq!(
            Control::parse("STOP-SEND-LIVE-COMMANDS"),
            Some(Control::Stop {
                kind: Kind::LiveCommands
            })
        );
        assert_eq!(
            Control::parse("JWT-TOKEN?jwtToken=abc"),
            Some(Control::JwtToken {
                token: "abc".into()
            })
        );
        assert_eq!(Control::parse("START-SEND-NOTHING"), None);
        assert_eq!(Control::parse("{\"topic\":\"x\"}"), None);
        for (_, kind) in CONTROLS {
            assert!(start_ack(kind).starts_with("START-SEND-"));
            assert!(stop_ack(kind).ends_with(":ACK"));
        }
    }
}
