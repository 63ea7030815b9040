//! `AckRequest`: what a command requests (labels, response, timeout) once the defaults and rules
//! of docs/basic-acknowledgements.md ("Interaction between headers") are applied for the channel
//! it entered by. Pure: headers in, a decision or an [`AckError`] out.
//!
//! Design: the steps are Ditto's, in Ditto's order.
//! 1. HTTP only: a `timeout` above 60 s is refused (gateway `AbstractRoute.validateCommandTimeout`);
//!    elsewhere it is capped at 60 s, as Ditto's aggregator caps it.
//! 2. Defaults ("Default header values" table, computed in parallel from the headers as sent):
//!    `requested-acks` absent → the kind's built-in label, or nothing when `timeout` is zero or
//!    `response-required` is false; `response-required` absent → false when `timeout` is zero or
//!    `requested-acks` is explicitly empty, else true.
//! 3. Ditto's ack request setters (edge/…/acknowledgements/things/ThingModifyCommandAckRequestSetter,
//!    ThingLiveCommandAckRequestSetter, message/MessageCommandAckRequestSetter): twin modifies drop
//!    `live-response`; live commands and messages drop `twin-persisted` and `search-persisted`,
//!    and bind `live-response` to `response-required` (added to a non-empty explicit list when
//!    true, removed when false). Other commands (retrieves, policies) request no acks.
//! 4. Checks: `timeout` zero with a response or acks → 400 (AcknowledgementAggregatorActorStarter);
//!    WebSocket: acks without response → 400 (StreamingSessionActor.checkForAcksWithoutResponse).

use super::AckError;
use std::time::Duration;
use twinwire_protocol::acks::{LIVE_RESPONSE, SEARCH_PERSISTED, TWIN_PERSISTED};
use twinwire_protocol::headers::names;
use twinwire_protocol::topic::{CommandAction, Criterion};
use twinwire_protocol::{AckLabel, Channel, Envelope, Group, Headers};

/// The longest `timeout` (docs/basic-acknowledgements.md: "default and max: 60s").
pub const MAX_TIMEOUT: Duration = Duration::from_secs(60);

/// The channel a command entered by: each has its own header-interaction table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The HTTP API.
    Http,
    /// A WebSocket session.
    WebSocket,
    /// A connection source (AMQP, MQTT, Kafka, ...).
    Connection,
}

/// What a command can request acknowledgements for, which decides its built-in label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// A twin command that modifies (create, modify, merge, delete): `twin-persisted`.
    TwinModify,
    /// A live command, a live message, or a twin retrieve with `live-channel-condition` (smart
    /// channel): `live-response`.
    Live,
    /// Anything else (twin retrieves, policy commands): no acknowledgements; `requested-acks`
    /// is ignored, as Ditto starts no aggregator for them.
    Other,
}

impl RequestKind {
    /// The kind of a command envelope.
    pub fn of(command: &Envelope) -> RequestKind {
        let topic = &command.topic;
        if topic.group != Group::Things {
            return RequestKind::Other;
        }
        match (&topic.criterion, topic.channel) {
            (Criterion::Messages(_), _) | (Criterion::Commands(_), Channel::Live) => {
                RequestKind::Live
            }
            (Criterion::Commands(CommandAction::Retrieve), _)
                if command.headers.contains(names::LIVE_CHANNEL_CONDITION) =>
            {
                RequestKind::Live
            }
            (
                Criterion::Commands(
                    CommandAction::Create
                    | CommandAction::Modify
                    | CommandAction::Merge
                    | CommandAction::Delete,
                ),
                Channel::Twin,
            ) => RequestKind::TwinModify,
            _ => RequestKind::Other,
        }
    }

    /// The label requested when `requested-acks` is absent, fulfilled by the command's response.
    pub fn built_in_label(self) -> Option<&'static str> {
        match self {
            RequestKind::TwinModify => Some(TWIN_PERSISTED),
            RequestKind::Live => Some(LIVE_RESPONSE),
            RequestKind::Other => None,
        }
    }

    /// Built-in labels this kind ignores when requested (Ditto's "negated" labels).
    fn ignored(self, label: &str) -> bool {
        match self {
            RequestKind::TwinModify => label == LIVE_RESPONSE,
            RequestKind::Live => label == TWIN_PERSISTED || label == SEARCH_PERSISTED,
            RequestKind::Other => true,
        }
    }
}

/// What the requester gets: one variant per outcome of the header-interaction tables (the
/// error rows are [`AckError`]s).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// No response and nothing to wait for. HTTP: `202 Accepted immediately`; WebSocket: `No
    /// response`; connections: `Nothing published; settled immediately`.
    NoResponse,
    /// No response, but the acks are awaited. HTTP: `202 Accepted after receiving acks`;
    /// connections: `Nothing published; settled after acks`. Never for the WebSocket.
    NoResponseAfterAcks,
    /// The command's own response. HTTP and WebSocket: `Response`; connections: `Response
    /// published; settled immediately`.
    Response,
    /// The aggregated acks (or, when the only requested label is the built-in one, the command's
    /// response, as Ditto answers). `Aggregated response and acks`; connections: `… published;
    /// settled after acks`.
    AggregatedResponse,
}

/// A command's acknowledgement request, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckRequest {
    pub kind: RequestKind,
    /// The labels awaited, in request order, without duplicates.
    pub labels: Vec<AckLabel>,
    /// Whether the requester gets a response (the command's, or the aggregated acks).
    pub response_required: bool,
    /// How long to wait for the labels, at most [`MAX_TIMEOUT`].
    pub timeout: Duration,
    pub outcome: Outcome,
}

impl AckRequest {
    /// Resolves what a command requests from its headers, its kind and where it came from.
    pub fn resolve(
        headers: &Headers,
        kind: RequestKind,
        origin: Origin,
    ) -> Result<AckRequest, AckError> {
        let sent_timeout = headers.timeout()?;
        if origin == Origin::Http && sent_timeout > MAX_TIMEOUT {
            return Err(AckError::TimeoutTooLong {
                timeout: sent_timeout,
                max: MAX_TIMEOUT,
            });
        }
        let timeout = sent_timeout.min(MAX_TIMEOUT);
        let timeout_zero = timeout.is_zero();
        let response_required_sent = headers
            .contains(names::RESPONSE_REQUIRED)
            .then(|| headers.response_required())
            .transpose()?;
        let requested = headers.requested_acks()?;

        // Defaults, computed from the headers as sent ("in parallel", as Ditto's setter does).
        let response_required = response_required_sent
            .unwrap_or_else(|| !(timeout_zero || requested.as_ref().is_some_and(Vec::is_empty)));
        let mut labels: Vec<AckLabel> = Vec::new();
        match (&requested, kind.built_in_label()) {
            (Some(explicit), built_in) => {
                for label in explicit {
                    if !labels.contains(label) {
                        labels.push(label.clone());
                    }
                }
                // Live: `response-required` adds or removes `live-response` from an explicit list.
                if let (RequestKind::Live, Some(built_in)) = (kind, built_in) {
                    let built_in = built_in_label(built_in)?;
                    if response_required_sent.unwrap_or(true) {
                        if !labels.is_empty() && !labels.contains(&built_in) {
                            labels.push(built_in);
                        }
                    } else {
                        labels.retain(|l| *l != built_in);
                    }
                }
            }
            (None, Some(built_in)) => {
                if !timeout_zero && response_required_sent.unwrap_or(true) {
                    labels.push(built_in_label(built_in)?);
                }
            }
            (None, None) => {}
        }
        labels.retain(|l| !kind.ignored(l.as_str()));

        let awaits_acks = !labels.is_empty();
        if timeout_zero && (response_required || awaits_acks) {
            return Err(AckError::TimeoutZero);
        }
        let outcome = match (response_required, awaits_acks) {
            (false, false) => Outcome::NoResponse,
            (false, true) if origin == Origin::WebSocket => {
                return Err(AckError::AcksWithoutResponse)
            }
            (false, true) => Outcome::NoResponseAfterAcks,
            (true, false) => Outcome::Response,
            (true, true) => Outcome::AggregatedResponse,
        };
        Ok(AckRequest {
            kind,
            labels,
            response_required,
            timeout,
            outcome,
        })
    }

    /// Whether anything is awaited: the request needs an [`AckCollector`](super::AckCollector),
    /// and a connection's message is settled after the acks rather than at once.
    pub fn awaits_acks(&self) -> bool {
        !self.labels.is_empty()
    }

    /// The requested labels subscribers issue: every one but the built-ins.
    pub fn custom_labels(&self) -> impl Iterator<Item = &AckLabel> {
        self.labels.iter().filter(|l| !is_built_in(l.as_str()))
    }

    /// Writes the resolved `requested-acks` and `response-required` into the command's headers,
    /// as Ditto's setter does, so that its events show subscribers which labels to issue.
    pub fn write_headers(&self, headers: &mut Headers) {
        let labels: Vec<_> = self
            .labels
            .iter()
            .map(|l| serde_json::Value::from(l.as_str()))
            .collect();
        headers.insert(names::REQUESTED_ACKS, labels);
        headers.insert(names::RESPONSE_REQUIRED, self.response_required);
    }
}

/// Whether a label is one only the broker issues.
pub fn is_built_in(label: &str) -> bool {
    matches!(label, TWIN_PERSISTED | LIVE_RESPONSE | SEARCH_PERSISTED)
}

fn built_in_label(label: &str) -> Result<AckLabel, AckError> {
    Ok(AckLabel::parse(label)?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn headers(v: serde_json::Value) -> Headers {
        Headers::from_json(&v).unwrap()
    }

    fn labels(r: &AckRequest) -> Vec<&str> {
        r.labels.iter().map(AckLabel::as_str).collect()
    }

    #[test]
    fn kinds_follow_the_topic() {
        let kind = |topic: &str, h: serde_json::Value| {
            let env =
                Envelope::from_json(json!({"topic": topic, "headers": h, "path": "/"})).unwrap();
            RequestKind::of(&env)
        };
        let t = "org.eclipse.ditto/lamp/things";
        assert_eq!(
            kind(&format!("{t}/twin/commands/modify"), json!({})),
            RequestKind::TwinModify
        );
        assert_eq!(
            kind(&format!("{t}/twin/commands/create"), json!({})),
            RequestKind::TwinModify
        );
        assert_eq!(
            kind(&format!("{t}/twin/commands/merge"), json!({})),
            RequestKind::TwinModify
        );
        assert_eq!(
            kind(&format!("{t}/twin/commands/delete"), json!({})),
            RequestKind::TwinModify
        );
        assert_eq!(
            kind(&format!("{t}/twin/commands/retrieve"), json!({})),
            RequestKind::Other
        );
        assert_eq!(
            kind(
                &format!("{t}/twin/commands/retrieve"),
                json!({"live-channel-condition": "eq(attributes/on,true)"})
            ),
            RequestKind::Live
        );
        assert_eq!(
            kind(&format!("{t}/live/commands/modify"), json!({})),
            RequestKind::Live
        );
        assert_eq!(
            kind(&format!("{t}/live/commands/retrieve"), json!({})),
            RequestKind::Live
        );
        assert_eq!(
            kind(&format!("{t}/live/messages/ask"), json!({})),
            RequestKind::Live
        );
        assert_eq!(
            kind("org.eclipse.ditto/lamp/policies/commands/modify", json!({})),
            RequestKind::Other
        );
    }

    #[test]
    fn twin_modifies_drop_live_response_and_keep_search_persisted() {
        let r = AckRequest::resolve(
            &headers(json!({"requested-acks": ["twin-persisted", "live-response", "search-persisted", "twin-persisted"]})),
            RequestKind::TwinModify,
            Origin::WebSocket,
        )
        .unwrap();
        assert_eq!(labels(&r), ["twin-persisted", "search-persisted"]);
        assert_eq!(r.outcome, Outcome::AggregatedResponse);
    }

    #[test]
    fn live_binds_live_response_to_response_required() {
        let live =
            |h| AckRequest::resolve(&headers(h), RequestKind::Live, Origin::Connection).unwrap();
        // Added to a non-empty explicit list when a response is required.
        let r = live(json!({"requested-acks": ["conn:custom"]}));
        assert_eq!(labels(&r), ["conn:custom", "live-response"]);
        // Not added to an explicitly empty list.
        let r = live(json!({"requested-acks": [], "response-required": true}));
        assert_eq!(labels(&r), Vec::<&str>::new());
        assert_eq!(r.outcome, Outcome::Response);
        // Removed when no response is required.
        let r = live(
            json!({"requested-acks": ["live-response", "conn:custom"], "response-required": false}),
        );
        assert_eq!(labels(&r), ["conn:custom"]);
        assert_eq!(r.outcome, Outcome::NoResponseAfterAcks);
        // twin-persisted and search-persisted mean nothing on the live channel; the list was
        // non-empty as sent, so live-response is added first (Ditto adds, then filters).
        let r = live(json!({"requested-acks": ["twin-persisted", "search-persisted"]}));
        assert_eq!(labels(&r), ["live-response"]);
    }

    #[test]
    fn retrieves_request_nothing() {
        let r = AckRequest::resolve(
            &headers(json!({"requested-acks": ["twin-persisted", "conn:custom"]})),
            RequestKind::Other,
            Origin::Http,
        )
        .unwrap();
        assert!(!r.awaits_acks());
        assert_eq!(r.outcome, Outcome::Response);
    }

    #[test]
    fn timeouts_are_bounded() {
        let h = headers(json!({"timeout": "2m"}));
        let e = AckRequest::resolve(&h, RequestKind::TwinModify, Origin::Http).unwrap_err();
        assert_eq!(e.code(), "gateway:timeout.invalid");
        assert_eq!(
            e.to_ditto_error().message.as_deref(),
            Some("The timeout <120,000ms> is not inside its allowed bounds <0ms - 60,000ms>")
        );
        for origin in [Origin::WebSocket, Origin::Connection] {
            let r = AckRequest::resolve(&h, RequestKind::TwinModify, origin).unwrap();
            assert_eq!(r.timeout, MAX_TIMEOUT);
        }
        let e = AckRequest::resolve(
            &headers(json!({"timeout": "soon"})),
            RequestKind::TwinModify,
            Origin::Http,
        )
        .unwrap_err();
        assert_eq!(e.code(), "header.invalid");
    }

    #[test]
    fn resolved_headers_are_written_back() {
        let r =
            AckRequest::resolve(&Headers::new(), RequestKind::TwinModify, Origin::Http).unwrap();
        let mut h = Headers::new();
        r.write_headers(&mut h);
        assert_eq!(
            h.to_json(),
            json!({"requested-acks": ["twin-persisted"], "response-required": true})
        );
        assert_eq!(r.custom_labels().count(), 0);
    }
}
