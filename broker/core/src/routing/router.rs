//! The router: where every signal a client, session or connection sends enters, and where it
//! is answered. It ties the twin engine, the [`Publisher`], the acknowledgement collection and
//! the live channel together; the gateway and the connections only translate transports.
//!
//! - Twin commands go to the engine. A modify's acknowledgement request (its
//!   `requested-acks`, `response-required` and `timeout`, after the header-interaction table of
//!   the requester's [`Origin`]) is registered before the command runs, its events are published
//!   by the engine's publisher once durable (with weak acks for declarers they did not reach),
//!   and `twin-persisted` is issued from its response. A retrieve with `live-channel-condition`
//!   that holds goes on to the live channel.
//! - Live commands and messages are checked against the thing's policy, published to the
//!   thing's live subscribers, and wait for the device's response (correlated by
//!   correlation-id) and any custom acks, at most `timeout`; then Ditto's 408.
//! - Responses from devices and acknowledgements from subscribers are matched to the waiting
//!   requests.
//!
//! Every answer carries the [`settlement::Outcome`] a connection settles the consumed message
//! with.

use super::acks::{self, AckCompletion, AckIssuer, AckRequest, AckWaiter, Origin, RequestKind};
use super::live::{Expired, LiveRequests};
use super::publisher::{Outlet, Publisher};
use super::pubsub::{Kind, PublishContext, SubscriberId, Subscription};
use super::settlement;
use crate::auth::AuthContext;
use crate::journal::Journal;
use crate::policies::enforcers::Compiled;
use crate::things::enforce;
use crate::things::{Command, EngineConfig, EventSink, Submitted, ThingEngine};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot};
use twinwire_protocol::exceptions::things as exc;
use twinwire_protocol::headers::{names, LiveChannelTimeoutStrategy};
use twinwire_protocol::topic::Criterion;
use twinwire_protocol::{AckLabel, Channel, DittoError, Envelope, Group, ProtocolError, ThingId};

/// Who sends a signal: the channel it came by, the subscriber it is (its acks and the origin
/// its own events are not published back to), and the subjects it acts as.
#[derive(Debug, Clone)]
pub struct Requester {
    pub origin: Origin,
    pub issuer: Option<AckIssuer>,
    pub auth: AuthContext,
    /// The consumed message a connection's signal came of, so that a redelivered copy of it
    /// is applied once (see [`Consumed`]).
    pub consumed: Option<Consumed>,
}

/// The identity of a consumed message's signal: a key (the message's, and the signal's place
/// among those it mapped to) and whether the message may have been handled before (the
/// transport says it is redelivered, or the connection settled it as retryable before).
///
/// The thing's shard remembers the outcome of every twin change made by a keyed signal; a
/// redelivered one whose key it remembers is not applied again: it is answered as the first
/// time and its events are published again (for the acknowledgements the redelivery requests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Consumed {
    pub key: u64,
    pub redelivered: bool,
}

impl Requester {
    /// A request of the HTTP API: no subscriber of its own.
    pub fn http(auth: AuthContext) -> Self {
        Requester {
            origin: Origin::Http,
            issuer: None,
            auth,
            consumed: None,
        }
    }

    /// A WebSocket session, by an ID unique in the broker.
    pub fn websocket(session: impl Into<String>, auth: AuthContext) -> Self {
        Requester {
            origin: Origin::WebSocket,
            issuer: Some(AckIssuer::WebSocket(session.into())),
            auth,
            consumed: None,
        }
    }

    /// A connection's source, by connection ID.
    pub fn connection(id: impl Into<String>, auth: AuthContext) -> Self {
        Requester {
            origin: Origin::Connection,
            issuer: Some(AckIssuer::Connection(id.into())),
            auth,
            consumed: None,
        }
    }

    /// The same requester, for a signal of the consumed message `consumed`.
    pub fn consumed(mut self, consumed: Consumed) -> Self {
        self.consumed = Some(consumed);
        self
    }

    fn origin_id(&self) -> Option<&str> {
        self.issuer.as_ref().map(AckIssuer::id)
    }
}

/// What a signal gets: the reply for the requester, if any, and how a connection settles the
/// message it came in.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    /// The response, error, or aggregated acknowledgements; `None`: nothing to send (HTTP
    /// answers 202).
    pub reply: Option<Envelope>,
    pub settlement: settlement::Outcome,
}

impl Answer {
    fn none() -> Self {
        Answer {
            reply: None,
            settlement: settlement::Outcome::Delivered,
        }
    }

    fn refused(signal: &Envelope, error: &DittoError) -> Self {
        Answer {
            reply: Some(signal.error_response(error)),
            settlement: settlement::Outcome::from_status(error.status),
        }
    }
}

/// The answer to a submitted signal (see [`Router::submit`]).
pub type Pending = std::pin::Pin<Box<dyn std::future::Future<Output = Answer> + Send>>;

/// What a live request waits for when no acknowledgement carries its response.
#[derive(Debug)]
enum LiveAnswer {
    Response(Envelope),
    TimedOut(Envelope),
}

/// The broker's routing: a cheap, cloneable handle.
#[derive(Clone)]
pub struct Router {
    engine: ThingEngine,
    publisher: Arc<Publisher>,
    live: Arc<Mutex<LiveRequests<oneshot::Sender<LiveAnswer>>>>,
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field("publisher", &self.publisher.stats())
            .finish_non_exhaustive()
    }
}

impl Router {
    /// Starts the engine with this router's publisher as its event sink.
    pub fn start(journal: Journal, config: EngineConfig) -> Self {
        let acks = acks::PendingAcks::new(acks::DeclaredAcks::new());
        let publisher = Arc::new(Publisher::new(acks));
        let sink: Arc<dyn EventSink> = publisher.clone();
        let engine = ThingEngine::start_publishing(journal, config, Some(sink));
        Router {
            engine,
            publisher,
            live: Arc::new(Mutex::new(LiveRequests::new())),
        }
    }

    pub fn engine(&self) -> &ThingEngine {
        &self.engine
    }

    pub fn publisher(&self) -> &Publisher {
        &self.publisher
    }

    pub fn acks(&self) -> &acks::PendingAcks {
        self.publisher.acks()
    }

    fn live(&self) -> MutexGuard<'_, LiveRequests<oneshot::Sender<LiveAnswer>>> {
        self.live.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Subscribes; deliveries go to `sender`. `issuer` is the subscriber as an issuer of acks
    /// (a session or connection): it gets weak acks counted and its own signals not echoed.
    pub fn subscribe(
        &self,
        sub: Subscription,
        issuer: Option<AckIssuer>,
        sender: mpsc::Sender<Envelope>,
    ) -> Result<(), DittoError> {
        let enriching = self.publisher.subscribe(sub, Outlet::new(sender, issuer))?;
        self.engine.set_thing_after_events(enriching);
        Ok(())
    }

    pub fn unsubscribe(&self, id: &SubscriberId) {
        let enriching = self.publisher.unsubscribe(id);
        self.engine.set_thing_after_events(enriching);
    }

    /// A session closed or a connection stopped: its subscriptions and declared labels go.
    pub fn leave(&self, issuer: &AckIssuer) {
        let enriching = self.publisher.unsubscribe_origin(issuer.id());
        self.engine.set_thing_after_events(enriching);
        self.acks().declared().withdraw(issuer);
    }

    /// Declares the labels a WebSocket session issues (`declared-acks`); a label another
    /// subscriber declared is refused (`acknowledgement:label.not.unique`, 409).
    pub fn declare_acks(&self, issuer: &AckIssuer, labels: &[AckLabel]) -> Result<(), DittoError> {
        self.acks()
            .declared()
            .declare(issuer, labels)
            .map_err(DittoError::from)
    }

    /// Publishes a connection announcement (`_/<id>/connections/announcements/opened|closed`):
    /// only that connection's own subscribers receive it.
    pub fn announce_connection(&self, announcement: &Envelope) {
        self.publisher.publish(
            announcement,
            &PublishContext::new(Kind::ConnectionAnnouncements),
        );
    }

    /// Handles one signal from a requester and answers it.
    pub async fn handle(&self, signal: Envelope, from: &Requester) -> Answer {
        self.submit(signal, from).await.await
    }

    /// Hands a signal over and returns what will answer it. A twin command is handed to its
    /// thing's shard before this returns, so a requester that submits one signal after the
    /// other (a session, a source) has its commands applied in that order, however it awaits
    /// the answers: it can pipeline.
    pub async fn submit(&self, signal: Envelope, from: &Requester) -> Pending {
        use tracing::Instrument;
        // Every log line of the signal's way carries its correlation-id.
        let span = tracing::info_span!(
            "signal",
            correlation_id = signal.headers.correlation_id().unwrap_or(""),
            topic = %signal.topic,
        );
        let pending = self
            .submit_in_span(signal, from)
            .instrument(span.clone())
            .await;
        Box::pin(pending.instrument(span))
    }

    async fn submit_in_span(&self, mut signal: Envelope, from: &Requester) -> Pending {
        let received = std::time::Instant::now();
        let origin = origin_label(from.origin);
        metrics::counter!(
            "twinwire_signals_received_total",
            "group" => signal.topic.group.as_str(),
            "channel" => signal.topic.channel.as_str(),
            "criterion" => signal.topic.criterion.name(),
            "origin" => origin,
        )
        .increment(1);
        signal.headers.strip_internal_from_client();
        if let Some(origin) = from.origin_id() {
            signal.headers.insert(names::DITTO_ORIGIN, origin);
        }
        if let Some(consumed) = from.consumed {
            signal
                .headers
                .insert(names::DITTO_MESSAGE_KEY, format!("{:016x}", consumed.key));
            if consumed.redelivered {
                signal.headers.insert(names::DITTO_REDELIVERED, true);
            }
        }
        let is_twin_command = signal.topic.group == Group::Things
            && signal.topic.channel == Channel::Twin
            && matches!(signal.topic.criterion, Criterion::Commands(_));
        let router = self.clone();
        let from = from.clone();
        if !is_twin_command {
            return Box::pin(async move { router.dispatch(signal, &from).await });
        }
        let mut command = signal;
        let (request, waiter) = match self.register(&mut command, &from) {
            Ok(registered) => registered,
            Err(error) => {
                let answer = Answer::refused(&command, &error.to_ditto_error());
                return Box::pin(async move { answer });
            }
        };
        let live_copy = (request.kind == RequestKind::Live).then(|| command.clone());
        let submitted = self.engine.submit(command, &from.auth).await;
        Box::pin(async move {
            let answer = router
                .twin_command(submitted, request, waiter, live_copy, &from, received)
                .await;
            metrics::histogram!("twinwire_command_seconds", "stage" => "answered", "origin" => origin)
                .record(received.elapsed().as_secs_f64());
            answer
        })
    }

    async fn dispatch(&self, signal: Envelope, from: &Requester) -> Answer {
        let topic = &signal.topic;
        match (topic.group, topic.channel, &topic.criterion) {
            (_, _, Criterion::Acks(_)) => self.acknowledge(&signal, from),
            (Group::Policies, _, Criterion::Commands(_)) => self.policy_command(signal, from).await,
            (Group::Things, Channel::Live, Criterion::Commands(_) | Criterion::Messages(_))
                if signal.status.is_some() =>
            {
                self.live_response(&signal);
                Answer::none()
            }
            (Group::Things, Channel::Live, Criterion::Errors) => {
                self.live_response(&signal);
                Answer::none()
            }
            (Group::Things, Channel::Live, Criterion::Commands(_) | Criterion::Messages(_)) => {
                self.live_request(signal, from).await
            }
            (Group::Things, Channel::Live, Criterion::Events(_)) => {
                self.live_event(signal, from).await
            }
            _ => {
                let error = ProtocolError::UnknownSignal {
                    kind: "signal",
                    name: format!("{} sent to the broker", signal.topic),
                };
                Answer::refused(&signal, &error.into())
            }
        }
    }

    /// A policy command: no acknowledgements, its response once durable.
    async fn policy_command(&self, mut command: Envelope, from: &Requester) -> Answer {
        let (request, _) = match self.register(&mut command, from) {
            Ok(registered) => registered,
            Err(error) => return Answer::refused(&command, &error.to_ditto_error()),
        };
        let executed = self.engine.execute(command, &from.auth).await;
        let mut response = executed.response;
        if executed.durable.await.is_err() {
            let id = response.topic.entity_id();
            response = response
                .error_response(&twinwire_protocol::exceptions::policies::policy_unavailable(&id));
        }
        finish_without_acks(&request, response)
    }

    /// An acknowledgement (or aggregated acks) a subscriber sends.
    fn acknowledge(&self, ack: &Envelope, from: &Requester) -> Answer {
        let Some(issuer) = &from.issuer else {
            // Only subscribers declare labels; an HTTP request has none to issue.
            let label = match &ack.topic.criterion {
                Criterion::Acks(Some(label)) => label.as_str().to_owned(),
                _ => String::new(),
            };
            return Answer::refused(ack, &exc::ack_label_not_declared(&label));
        };
        match self.acks().acknowledge_envelope(issuer, ack) {
            Ok(()) => Answer::none(),
            Err(error) => {
                tracing::debug!(issuer = issuer.id(), %error, "acknowledgement refused");
                Answer::refused(ack, &error.to_ditto_error())
            }
        }
    }

    /// Resolves and registers a command's acknowledgement request.
    fn register(
        &self,
        command: &mut Envelope,
        from: &Requester,
    ) -> Result<(AckRequest, Option<AckWaiter>), acks::AckError> {
        let request = AckRequest::resolve(&command.headers, RequestKind::of(command), from.origin)?;
        let needs_id = request.awaits_acks() || request.kind == RequestKind::Live;
        if needs_id && command.headers.correlation_id().is_none() {
            let id = uuid::Uuid::new_v4().to_string();
            command.headers.insert(names::CORRELATION_ID, id);
        }
        if request.awaits_acks() {
            request.write_headers(&mut command.headers);
        } else {
            command.headers.remove(names::REQUESTED_ACKS);
        }
        let waiter = self.acks().register(command, request.clone())?;
        Ok((request, waiter))
    }

    async fn twin_command(
        &self,
        submitted: Submitted,
        request: AckRequest,
        waiter: Option<AckWaiter>,
        live_copy: Option<Envelope>,
        from: &Requester,
        received: std::time::Instant,
    ) -> Answer {
        let executed = submitted.await;
        let mut response = executed.response;
        let durable = executed.durable.await;
        metrics::histogram!("twinwire_command_seconds", "stage" => "durable", "origin" => origin_label(from.origin))
            .record(received.elapsed().as_secs_f64());
        if durable.is_err() {
            response =
                response.error_response(&exc::thing_unavailable(&response.topic.entity_id()));
        }
        if let Some(command) = live_copy {
            let matched = response
                .headers
                .get(names::LIVE_CHANNEL_CONDITION_MATCHED)
                .and_then(serde_json::Value::as_bool);
            if matched == Some(true) {
                return self
                    .smart_channel(command, response, executed.policy, request, waiter, from)
                    .await;
            }
            response.headers.insert(names::CHANNEL, "twin");
            // Not matched (or failed): the twin answers, and nothing waits for a device.
            drop(waiter);
            return finish_without_acks(&request, response);
        }
        let Some(waiter) = waiter else {
            return finish_without_acks(&request, response);
        };
        // twin-persisted: the response, now that it is durable (or the error ending the request).
        if let Err(error) = self.acks().respond(&response) {
            tracing::debug!(%error, "response not taken by its acknowledgement request");
        }
        let completion = waiter.completion().await;
        finish(&request, completion)
    }

    /// A twin retrieve whose `live-channel-condition` holds: asked of the device instead; on
    /// timeout with `use-twin`, the twin's answer.
    async fn smart_channel(
        &self,
        mut command: Envelope,
        twin_response: Envelope,
        policy: Option<Arc<Compiled>>,
        request: AckRequest,
        waiter: Option<AckWaiter>,
        from: &Requester,
    ) -> Answer {
        command.topic.channel = Channel::Live;
        let strategy = command
            .headers
            .live_channel_timeout_strategy()
            .unwrap_or_default();
        let Some(policy) = policy else {
            return Answer::refused(&command, &exc::thing_not_found(&command.topic.entity_id()));
        };
        let outcome = self
            .publish_live(command, Kind::LiveCommands, &policy, &request, waiter, from)
            .await;
        let mut answer = match outcome {
            LiveOutcome::TimedOut(_) if strategy == LiveChannelTimeoutStrategy::UseTwin => {
                let mut response = twin_response;
                response.headers.insert(names::CHANNEL, "twin");
                return finish_without_acks(&request, response);
            }
            LiveOutcome::TimedOut(answer) | LiveOutcome::Answered(answer) => answer,
        };
        if let Some(reply) = &mut answer.reply {
            reply
                .headers
                .insert(names::LIVE_CHANNEL_CONDITION_MATCHED, true);
            reply.headers.insert(names::CHANNEL, "live");
        }
        answer
    }

    /// A live command or message from a requester.
    async fn live_request(&self, mut command: Envelope, from: &Requester) -> Answer {
        let kind = match command.topic.criterion {
            Criterion::Messages(_) => Kind::LiveMessages,
            _ => Kind::LiveCommands,
        };
        let policy = match self.live_policy(&command, from, kind).await {
            Ok(policy) => policy,
            Err(error) => return Answer::refused(&command, &error),
        };
        let (request, waiter) = match self.register(&mut command, from) {
            Ok(registered) => registered,
            Err(error) => return Answer::refused(&command, &error.to_ditto_error()),
        };
        match self
            .publish_live(command, kind, &policy, &request, waiter, from)
            .await
        {
            LiveOutcome::TimedOut(answer) | LiveOutcome::Answered(answer) => answer,
        }
    }

    /// A live event a device emits: WRITE on the event's path, then to the live event
    /// subscribers.
    async fn live_event(&self, event: Envelope, from: &Requester) -> Answer {
        let policy = match self.live_policy(&event, from, Kind::LiveEvents).await {
            Ok(policy) => policy,
            Err(error) => return Answer::refused(&event, &error),
        };
        let mut ctx = PublishContext::new(Kind::LiveEvents).with_enforcer(&policy.enforcer);
        if let Some(origin) = from.origin_id() {
            ctx = ctx.with_origin(origin);
        }
        self.publisher.publish(&event, &ctx);
        Answer::none()
    }

    /// The policy of the thing a live signal addresses, once the requester may send it:
    /// `things:thing.notfound` when the thing or its policy does not exist; Ditto's refusals
    /// (live commands as their twin counterparts; messages `messages:send.notallowed`, except
    /// claim messages, which anyone may send; live events `things:event.notallowed`).
    async fn live_policy(
        &self,
        signal: &Envelope,
        from: &Requester,
        kind: Kind,
    ) -> Result<Arc<Compiled>, DittoError> {
        let entity_id = signal.topic.entity_id();
        let id = ThingId::parse(&entity_id).ok_or_else(|| ProtocolError::ThingIdInvalid {
            id: entity_id.clone(),
        })?;
        let (exists, policy) = self.engine.thing_policy(&id).await;
        let policy = match policy {
            Some(policy) if exists => policy,
            _ => return Err(exc::thing_not_found(&entity_id)),
        };
        if from.auth.is_unrestricted() {
            return Ok(policy);
        }
        match kind {
            Kind::LiveMessages => {
                let claim = matches!(&signal.topic.criterion, Criterion::Messages(subject) if subject == "claim")
                    && signal.path.to_string() == "/inbox/claim";
                if !claim && !enforce::may_send_message(&policy.enforcer, &from.auth, &signal.path)
                {
                    return Err(exc::message_send_not_allowed(&entity_id));
                }
            }
            Kind::LiveEvents => {
                if !enforce::may_write(&policy.enforcer, &from.auth, &signal.path) {
                    return Err(exc::event_send_not_allowed(&entity_id));
                }
            }
            _ => {
                let command = Command::from_envelope(signal)?;
                enforce::authorize_existing(&policy.enforcer, &entity_id, command, &from.auth)?;
            }
        }
        Ok(policy)
    }

    /// Publishes a live command or message and waits for its response and acks.
    async fn publish_live(
        &self,
        command: Envelope,
        kind: Kind,
        policy: &Compiled,
        request: &AckRequest,
        waiter: Option<AckWaiter>,
        from: &Requester,
    ) -> LiveOutcome {
        // Without acks, a wanted response is awaited by correlation-id alone.
        let direct = match (&waiter, request.response_required) {
            (None, true) => {
                let (sender, receiver) = oneshot::channel();
                if let Err(error) = self.live().register(&command, sender, now_millis()) {
                    return LiveOutcome::Answered(Answer::refused(&command, &error));
                }
                Some(receiver)
            }
            _ => None,
        };
        let mut ctx = PublishContext::new(kind).with_enforcer(&policy.enforcer);
        if let Some(origin) = from.origin_id() {
            ctx = ctx.with_origin(origin);
        }
        self.publisher.publish_acknowledged(&command, &ctx);
        let view = |mut reply: Envelope| {
            // A device's answer to a retrieve shows the requester only what it may read.
            if kind == Kind::LiveCommands && reply.topic.criterion != Criterion::Errors {
                if let Some(value) = reply.value.take() {
                    reply.value = Some(enforce::readable(
                        Some(&policy.enforcer),
                        &from.auth,
                        &reply.path,
                        value,
                    ));
                }
            }
            reply
        };
        if let Some(waiter) = waiter {
            let completion = waiter.completion().await;
            let timed_out = completion.timed_out;
            let mut answer = finish(request, completion);
            answer.reply = answer.reply.map(view);
            return if timed_out {
                LiveOutcome::TimedOut(answer)
            } else {
                LiveOutcome::Answered(answer)
            };
        }
        let Some(receiver) = direct else {
            return LiveOutcome::Answered(Answer::none());
        };
        match self.await_live(receiver, &command).await {
            LiveAnswer::Response(response) => LiveOutcome::Answered(Answer {
                settlement: settlement::Outcome::Delivered,
                reply: Some(view(response)),
            }),
            LiveAnswer::TimedOut(error) => LiveOutcome::TimedOut(Answer {
                settlement: settlement::Outcome::Delivered,
                reply: Some(error),
            }),
        }
    }

    /// Waits for a live response by correlation-id, at most the command's timeout; at the
    /// deadline it also answers every other request whose time is up.
    async fn await_live(
        &self,
        mut receiver: oneshot::Receiver<LiveAnswer>,
        command: &Envelope,
    ) -> LiveAnswer {
        let timeout = command
            .headers
            .timeout()
            .unwrap_or(twinwire_protocol::headers::DEFAULT_TIMEOUT)
            .min(acks::MAX_TIMEOUT);
        let timed_out =
            || LiveAnswer::TimedOut(command.error_response(&exc::command_timeout(timeout)));
        tokio::select! {
            answer = &mut receiver => return answer.unwrap_or_else(|_| timed_out()),
            () = tokio::time::sleep(timeout + Duration::from_millis(1)) => {}
        }
        let expired = self.live().expire(now_millis());
        for expired in expired {
            let (requester, answer) = match expired {
                Expired::TimedOut {
                    requester,
                    response,
                } => (requester, LiveAnswer::TimedOut(response)),
                Expired::UseTwin {
                    requester,
                    twin_command,
                } => {
                    let error = exc::command_timeout(timeout);
                    (
                        requester,
                        LiveAnswer::TimedOut(twin_command.error_response(&error)),
                    )
                }
            };
            let _ = requester.send(answer);
        }
        receiver.try_recv().unwrap_or_else(|_| timed_out())
    }

    /// A device's response to a live command or message: to the request waiting for it.
    /// Unsolicited responses (nobody waits, or the time is up) are dropped, as Ditto does.
    fn live_response(&self, response: &Envelope) {
        if self.acks().respond(response).is_ok() {
            return;
        }
        let Some((requester, response)) = self.live().respond(response) else {
            tracing::debug!(topic = %response.topic, "unsolicited live response dropped");
            return;
        };
        let _ = requester.send(LiveAnswer::Response(response));
    }
}

/// How a live request ended.
enum LiveOutcome {
    Answered(Answer),
    TimedOut(Answer),
}

/// A command's answer when it awaited no acks: its response, if the requester wants one.
fn finish_without_acks(request: &AckRequest, response: Envelope) -> Answer {
    match request.outcome {
        acks::Outcome::NoResponse | acks::Outcome::NoResponseAfterAcks => Answer::none(),
        acks::Outcome::Response | acks::Outcome::AggregatedResponse => Answer {
            reply: Some(response),
            settlement: settlement::Outcome::Delivered,
        },
    }
}

/// A command's answer once its acks are in (or timed out).
fn finish(request: &AckRequest, completion: AckCompletion) -> Answer {
    let status = completion.status();
    let settlement = if completion.reply.topic.criterion == Criterion::Acks(None) && status == 424 {
        completion.reply.value.as_ref().map_or_else(
            || settlement::Outcome::from_status(status),
            settlement::Outcome::from_aggregated_acks,
        )
    } else if request.kind == RequestKind::Live
        && completion.reply.topic.criterion != Criterion::Errors
    {
        settlement::Outcome::from_live_response_status(status)
    } else {
        settlement::Outcome::from_status(status)
    };
    Answer {
        reply: completion.respond.then_some(completion.reply),
        settlement,
    }
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The `origin` label of the router's metrics.
fn origin_label(origin: Origin) -> &'static str {
    match origin {
        Origin::Http => "http",
        Origin::WebSocket => "websocket",
        Origin::Connection => "connection",
    }
}
