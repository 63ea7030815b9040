//! One MQTT client connection at work: it connects (and connects again, with backoff, for as
//! long as the instance is open), subscribes the sources, hands consumed messages to the broker
//! and acknowledges them in order as they are settled, and publishes with confirmation.
//!
//! Three tasks share the state under one lock (never held across an await):
//! - the poller drives rumqttc's event loop, which must never be cancelled mid-poll (it is not
//!   cancel-safe), and applies each event: connection changes, consumed messages, written and
//!   acknowledged publishes;
//! - the ticker retries deliveries the broker pushed back, fails publishes past their deadline,
//!   and starts the reconnection a withheld outcome asks for;
//! - callers of [`Session::publish`] and [`Session::settle`].
//!
//! Consumed messages beyond the in-flight bound wait in `held`, unacknowledged: the server sends
//! no more than its own window of unacknowledged messages (MQTT 5: the receive maximum we
//! announce, which is the bound), so `held` stays small; acknowledgements are never blocked
//! behind it, so a route whose settlement waits for one of our own publishes cannot deadlock.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch, Semaphore};
use tokio::task::JoinHandle;
use twinwire_plugin::{Delivery, Host, LogLevel, Message, Outcome, SendError};

use crate::client::{self, Client, Event, EventLoop};
use crate::config::Config;
use crate::headers::{Incoming, Outgoing};
use crate::inflight::{AckHandle, InFlight};
use crate::outbox::Outbox;
use crate::status::StatusBoard;

/// Publishes of one session waiting for the server at a time.
const PUBLISH_WINDOW: usize = 1_000;
/// How often the ticker looks at deadlines and pushed-back deliveries.
const TICK: Duration = Duration::from_millis(20);

#[derive(Default)]
struct State {
    connected: bool,
    subscribed: bool,
    inflight: InFlight,
    held: VecDeque<(Incoming, AckHandle)>,
    outbox: Outbox,
    /// When to reconnect for the redelivery a withheld outcome asks for.
    redeliver_at: Option<Instant>,
    /// Our DISCONNECT is queued (closing, or reconnecting for redelivery).
    disconnecting: bool,
}

struct Shared {
    config: Arc<Config>,
    name: String,
    /// Subscribes the sources (else it only publishes).
    consume: bool,
    client: Client,
    host: Host,
    board: Arc<StatusBoard>,
    state: Mutex<State>,
    connected: watch::Sender<bool>,
    window: Semaphore,
    tokens: AtomicU64,
    closing: AtomicBool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn log(&self, level: LogLevel, text: &str) {
        self.host.log(
            level,
            &format!("mqtt {} ({}): {text}", self.config.id, self.name),
        );
    }
}

/// A running client connection.
pub struct Session {
    shared: Arc<Shared>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    stop: watch::Sender<bool>,
}

impl Session {
    /// Starts a session with client ID `client_id`, reporting its status on `board` under
    /// `name`; `consume`: it subscribes the sources. Needs a tokio runtime.
    pub fn start(
        config: Arc<Config>,
        client_id: &str,
        name: &str,
        consume: bool,
        host: Host,
        board: Arc<StatusBoard>,
    ) -> Result<Session, String> {
        let requests = config.max_in_flight + PUBLISH_WINDOW + 64;
        let (client, eventloop) = client::new(&config, client_id, requests)?;
        let shared = Arc::new(Shared {
            name: name.to_owned(),
            consume,
            client,
            host,
            board,
            state: Mutex::new(State::default()),
            connected: watch::channel(false).0,
            window: Semaphore::new(PUBLISH_WINDOW),
            tokens: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            config,
        });
        shared.board.set(name, false, "connecting");
        let (stop, stopped) = watch::channel(false);
        let tasks = vec![
            tokio::spawn(poll_loop(Arc::clone(&shared), eventloop, stopped.clone())),
            tokio::spawn(tick_loop(Arc::clone(&shared), stopped)),
        ];
        Ok(Session {
            shared,
            tasks: Mutex::new(tasks),
            stop,
        })
    }

    /// Publishes `message`; resolves when the server acknowledged it (qos 1, 2) or it was
    /// written (qos 0).
    pub async fn publish(&self, message: &Message) -> Result<(), SendError> {
        let shared = &self.shared;
        let out = Outgoing::from_message(message)?;
        let deadline = tokio::time::Instant::now() + shared.config.publish_timeout;
        // The first poll must hand the publish over when it can (sends polled in order go out
        // in order): the tokio primitives only when the fast path fails, as they may yield.
        let _permit = match shared.window.try_acquire() {
            Ok(permit) => permit,
            Err(_) => tokio::time::timeout_at(deadline, shared.window.acquire())
                .await
                .map_err(|_| SendError::Retryable("too many publishes wait for the server".into()))?
                .map_err(|_| SendError::Closed)?,
        };
        let mut connected = shared.connected.subscribe();
        let (done, result) = oneshot::channel();
        let mut done = Some(done);
        loop {
            if shared.closing.load(Ordering::Acquire) {
                return Err(SendError::Closed);
            }
            if !*connected.borrow()
                && tokio::time::timeout_at(deadline, connected.wait_for(|c| *c))
                    .await
                    .is_err()
            {
                return Err(SendError::Retryable(format!(
                    "not connected to {}:{}",
                    shared.config.host, shared.config.port
                )));
            }
            // Handed over only while connected, under the lock the poller changes the
            // connection under: see `outbox` for why the orders must agree.
            let handed = {
                let mut state = shared.state();
                if !state.connected || state.disconnecting {
                    None
                } else {
                    shared.client.publish(&out).map_err(SendError::Retryable)?;
                    if let Some(done) = done.take() {
                        state.outbox.queued(out.qos, deadline.into_std(), done);
                    }
                    Some(())
                }
            };
            match handed {
                Some(()) => break,
                None => tokio::time::sleep(TICK).await,
            }
        }
        result
            .await
            .unwrap_or_else(|_| Err(SendError::Retryable("the session ended".into())))
    }

    /// The broker's outcome for a consumed message.
    pub fn settle(&self, token: u64, outcome: Outcome) {
        let shared = &self.shared;
        let mut state = shared.state();
        let released =
            state
                .inflight
                .settle(token, outcome, shared.config.reconnect_for_redelivery);
        if !released.known {
            return; // of an earlier connection: the server sends it again
        }
        if outcome == Outcome::Retryable && !shared.config.reconnect_for_redelivery {
            shared.log(
                LogLevel::Warn,
                "a message failed and may succeed later, but reconnectForRedelivery is false: \
                 it is acknowledged and will not be redelivered",
            );
        }
        for ack in released.acks {
            if let Err(e) = shared.client.ack(ack) {
                shared.log(LogLevel::Error, &format!("acknowledging failed: {e}"));
            }
        }
        if released.redeliver && state.redeliver_at.is_none() {
            state.redeliver_at =
                Some(Instant::now() + shared.config.reconnect_for_redelivery_delay);
        }
        deliver_held(shared, &mut state);
    }

    /// Disconnects (a DISCONNECT, so no Last Will) and ends the tasks. Unsettled messages are
    /// not acknowledged: the server sends them again to the next session.
    pub async fn close(&self) {
        let shared = &self.shared;
        shared.closing.store(true, Ordering::Release);
        {
            let mut state = shared.state();
            if state.connected {
                state.disconnecting = true;
                let _ = shared.client.disconnect();
            }
            state.outbox.fail_all("the connection is closing");
        }
        let tasks: Vec<JoinHandle<()>> =
            std::mem::take(&mut *self.tasks.lock().unwrap_or_else(PoisonError::into_inner));
        // Give the DISCONNECT a moment to go out, then stop.
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            let mut connected = shared.connected.subscribe();
            let _ = connected.wait_for(|c| !*c).await;
        })
        .await;
        self.stop.send_replace(true);
        for task in tasks {
            let _ = task.await;
        }
        shared.board.set(&shared.name, false, "closed");
    }
}

/// Drives the event loop until stopped.
async fn poll_loop(shared: Arc<Shared>, mut eventloop: EventLoop, mut stop: watch::Receiver<bool>) {
    let mut failures: u32 = 0;
    loop {
        let polled = tokio::select! {
            biased;
            _ = stop.wait_for(|s| *s) => break,
            polled = eventloop.poll() => polled,
        };
        match polled {
            Ok(Event::Connected { session_present }) => {
                failures = 0;
                connected(&shared, session_present);
            }
            Ok(Event::DisconnectSent) => {
                let closing = shared.closing.load(Ordering::Acquire);
                lost(
                    &shared,
                    &mut eventloop,
                    if closing {
                        "closed"
                    } else {
                        "reconnecting so that the server redelivers what was not acknowledged"
                    },
                );
                if closing {
                    break;
                }
                pause(&mut stop, shared.config.reconnect_for_redelivery_delay).await;
            }
            Ok(Event::Publish(incoming, ack)) => {
                let mut state = shared.state();
                state.held.push_back((incoming, ack));
                deliver_held(&shared, &mut state);
            }
            Ok(Event::Written(pkid)) => shared.state().outbox.written(pkid),
            Ok(Event::Acknowledged(pkid, failure)) => {
                shared.state().outbox.acknowledged(pkid, failure);
            }
            Ok(Event::SubscribeRefused(why)) => {
                shared.log(LogLevel::Error, &why);
                shared.board.set(&shared.name, false, &why);
            }
            Ok(Event::Refused(why)) => shared.log(LogLevel::Warn, &why),
            Ok(Event::Other) => {}
            Err(error) => {
                if shared.closing.load(Ordering::Acquire) {
                    lost(&shared, &mut eventloop, "closed");
                    break;
                }
                let why = format!(
                    "connection to {}:{} lost or refused: {error}",
                    shared.config.host, shared.config.port
                );
                lost(&shared, &mut eventloop, &why);
                let wait = backoff(&shared.config, failures);
                failures = failures.saturating_add(1);
                pause(&mut stop, wait).await;
            }
        }
    }
}

/// Sleeps, unless stopped first.
async fn pause(stop: &mut watch::Receiver<bool>, wait: Duration) {
    tokio::select! {
        _ = stop.wait_for(|s| *s) => {}
        () = tokio::time::sleep(wait) => {}
    }
}

fn connected(shared: &Shared, session_present: bool) {
    let mut state = shared.state();
    state.connected = true;
    state.disconnecting = false;
    state.redeliver_at = None;
    if !session_present {
        // The client dropped what it had not sent: those publishes fail (retryable).
        state
            .outbox
            .fail_all("the server kept no session: the publish was dropped");
    }
    if shared.consume && (!session_present || !state.subscribed) {
        for source in &shared.config.sources {
            for filter in &source.addresses {
                if let Err(e) = shared.client.subscribe(filter, source.qos) {
                    shared.log(
                        LogLevel::Error,
                        &format!("subscribing {filter} failed: {e}"),
                    );
                }
            }
        }
        state.subscribed = true;
    }
    shared.connected.send_replace(true);
    drop(state);
    shared.board.set(
        &shared.name,
        true,
        &format!(
            "connected to {}:{} (session {})",
            shared.config.host,
            shared.config.port,
            if session_present { "resumed" } else { "new" }
        ),
    );
}

/// The network connection is gone: forget its window (the server redelivers what was not
/// acknowledged), and drop acknowledgements still queued for it (their packet IDs will mean
/// other messages).
fn lost(shared: &Shared, eventloop: &mut EventLoop, why: &str) {
    let mut state = shared.state();
    let was = state.connected;
    state.connected = false;
    let unacknowledged = state.inflight.reset();
    state.redeliver_at = None;
    // Held messages were never handed over: the server sends them again too.
    state.held.clear();
    eventloop.clean();
    shared.connected.send_replace(false);
    drop(state);
    if was && unacknowledged > 0 {
        shared.log(
            LogLevel::Info,
            &format!("{unacknowledged} consumed messages were not acknowledged: the server redelivers them"),
        );
    }
    shared.board.set(&shared.name, false, why);
}

/// Hands held messages to the broker while the window has room.
fn deliver_held(shared: &Shared, state: &mut State) {
    while state.inflight.unsettled() < shared.config.max_in_flight {
        let Some((incoming, ack)) = state.held.pop_front() else {
            return;
        };
        let token = shared.tokens.fetch_add(1, Ordering::Relaxed) + 1;
        let source = shared.config.source_of(&incoming.topic);
        match shared.host.deliver(incoming.to_message(source), token) {
            Delivery::Accepted => state.inflight.push(token, ack),
            Delivery::Backpressure => {
                state.held.push_front((incoming, ack));
                return; // the ticker tries again
            }
            // The broker is closing the connection: not acknowledged, so redelivered later.
            Delivery::Refused => {}
        }
    }
}

async fn tick_loop(shared: Arc<Shared>, mut stop: watch::Receiver<bool>) {
    let mut ticks = tokio::time::interval(TICK);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = ticks.tick() => {}
        }
        let now = Instant::now();
        let mut state = shared.state();
        state.outbox.expire(now);
        if !state.held.is_empty() {
            deliver_held(&shared, &mut state);
        }
        let due = state.redeliver_at.is_some_and(|at| at <= now);
        if due && state.connected && !state.disconnecting {
            state.redeliver_at = None;
            state.disconnecting = true;
            if let Err(e) = shared.client.disconnect() {
                state.disconnecting = false;
                shared.log(
                    LogLevel::Error,
                    &format!("reconnecting for redelivery failed: {e}"),
                );
            }
        }
    }
}

/// The wait before reconnection attempt `failures` (0-based).
fn backoff(config: &Config, failures: u32) -> Duration {
    twinwire_plugin::settings::backoff(
        config.reconnect_min_delay,
        config.reconnect_max_delay,
        failures,
    )
}
