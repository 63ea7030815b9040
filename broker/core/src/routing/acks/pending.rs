//! `PendingAcks`: the broker's cheap handle to the requests awaiting acknowledgements, and
//! `AckWaiter`, the requester's future that ends with the answer or at the deadline. The only
//! async part of acknowledgement handling: the decisions are in collector.rs.
//!
//! Design: an `AckTable` behind a std mutex, plus one oneshot sender per request. Whoever
//! completes a request (the last ack, the command's response, an error) removes it and sends its
//! completion under the same lock, so a request is answered once. The timer is the waiter's own:
//! at the deadline it takes the lock and ends the request if nobody did meanwhile. No background
//! task, and no timer once the request is answered. Dropping the waiter forgets the request; acks
//! that arrive later are refused as unknown.

use super::collector::{acks_from_envelope, AckCompletion, AckKey, AckTable};
use super::declared::{weak_ack, AckIssuer, DeclaredAcks};
use super::request::AckRequest;
use super::AckError;
use crate::journal::Durable;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;
use tokio::sync::oneshot;
use twinwire_protocol::exceptions::things as exc;
use twinwire_protocol::{AckLabel, Acknowledgement, Envelope};

struct State {
    table: AckTable,
    waiters: HashMap<AckKey, oneshot::Sender<AckCompletion>>,
}

impl State {
    /// Hands a completion to its waiter. Every path that ends a request goes through here.
    fn deliver(&mut self, completion: AckCompletion) {
        if let Some(waiter) = self.waiters.remove(&completion.key) {
            // A waiter dropped since has forgotten the request already; nothing to tell.
            let _ = waiter.send(completion);
        }
    }
}

struct Shared {
    /// A std mutex: every critical section is a few map operations and never awaits.
    state: Mutex<State>,
    declared: DeclaredAcks,
}

/// The requests awaiting acknowledgements: a cheap, cloneable handle whose methods are the
/// broker's verbs (register, acknowledge, respond, issue weak acks).
#[derive(Clone)]
pub struct PendingAcks {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for PendingAcks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingAcks")
            .field("pending", &self.len())
            .finish_non_exhaustive()
    }
}

impl PendingAcks {
    /// Pending acks checked against the labels subscribers declared in `declared`.
    pub fn new(declared: DeclaredAcks) -> Self {
        PendingAcks {
            shared: Arc::new(Shared {
                state: Mutex::new(State {
                    table: AckTable::new(),
                    waiters: HashMap::new(),
                }),
                declared,
            }),
        }
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Every update leaves the table consistent, so a panic elsewhere does not poison it.
        self.shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The declared labels acks are checked against.
    pub fn declared(&self) -> &DeclaredAcks {
        &self.shared.declared
    }

    /// How many requests await acks.
    pub fn len(&self) -> usize {
        self.state().table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Starts awaiting a command's acks; `None` when it awaits none (answer it with its
    /// response, or not at all, as [`AckRequest::outcome`] says). Register before the command
    /// is applied or published, so that no ack can arrive before its request.
    pub fn register(
        &self,
        command: &Envelope,
        request: AckRequest,
    ) -> Result<Option<AckWaiter>, AckError> {
        if !request.awaits_acks() {
            return Ok(None);
        }
        let now = tokio::time::Instant::now().into_std();
        let mut state = self.state();
        let (key, deadline) = {
            let collector = state.table.register(command, request, now)?;
            (collector.key().clone(), collector.deadline())
        };
        let (sender, receiver) = oneshot::channel();
        state.waiters.insert(key.clone(), sender);
        metrics::counter!("twinwire_ack_requests_total").increment(1);
        Ok(Some(AckWaiter {
            receiver,
            deadline,
            guard: Forget {
                key,
                acks: self.clone(),
            },
        }))
    }

    /// An acknowledgement a subscriber sent. Refused (the error goes back to `issuer`) when its
    /// label is built-in or not declared by `issuer`, has no correlation-id, or matches no
    /// awaited label of a pending request.
    pub fn acknowledge(&self, issuer: &AckIssuer, ack: Acknowledgement) -> Result<(), AckError> {
        self.shared.declared.check_issued(issuer, &ack)?;
        let mut state = self.state();
        let accepted = state.table.accept(ack);
        count_received(accepted.is_ok());
        if let Some(completion) = accepted? {
            state.deliver(completion);
        }
        Ok(())
    }

    /// A subscriber's `…/acks/<label>` or aggregated `…/acks` envelope. An aggregated one is
    /// refused whole when one label is not the issuer's (as Ditto's connectivity does); otherwise
    /// each ack is taken and the first refusal is returned.
    pub fn acknowledge_envelope(
        &self,
        issuer: &AckIssuer,
        envelope: &Envelope,
    ) -> Result<(), AckError> {
        let acks = acks_from_envelope(envelope)?;
        for ack in &acks {
            self.shared.declared.check_issued(issuer, ack)?;
        }
        let mut first_error = None;
        let mut state = self.state();
        for ack in acks {
            let accepted = state.table.accept(ack);
            count_received(accepted.is_ok());
            match accepted {
                Ok(Some(completion)) => state.deliver(completion),
                Ok(None) => {}
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// The response to a command awaiting acks: a live command's or message's response
    /// (`live-response`), or a twin command's once durable (use [`PendingAcks::twin_persisted`]).
    /// An error response ends the request with it.
    pub fn respond(&self, response: &Envelope) -> Result<(), AckError> {
        let mut state = self.state();
        if let Some(completion) = state.table.accept_response(response)? {
            state.deliver(completion);
        }
        Ok(())
    }

    /// Issues `twin-persisted` for a twin command once its events are durable: the response
    /// becomes the ack (status, headers and value). When the journal could not write them, the
    /// request fails with 503 `things:thing.unavailable`, which a connection redelivers.
    pub async fn twin_persisted(
        &self,
        response: Envelope,
        durable: Durable,
    ) -> Result<(), AckError> {
        let response = match durable.await {
            Ok(()) => response,
            Err(error) => {
                let thing_id = response.topic.entity_id();
                tracing::warn!(thing = %thing_id, error = %error, "events not persisted, failing the acknowledgement request");
                response.error_response(&exc::thing_unavailable(&thing_id))
            }
        };
        self.respond(&response)
    }

    /// Issues weak acks after a signal (an event, live command or message carrying the
    /// request's `requested-acks` and correlation-id) was fanned out: for each requested custom
    /// label declared by a subscriber not among `received_by` (it filtered the signal out, may
    /// not READ it, or did not subscribe). Returns the labels weakly acknowledged. A request
    /// that is gone, or a label acknowledged already, is skipped: the broker is the issuer here,
    /// there is nobody to tell.
    pub fn issue_weak_acks(&self, signal: &Envelope, received_by: &[AckIssuer]) -> Vec<AckLabel> {
        let (Ok(Some(requested)), Some(key)) =
            (signal.headers.requested_acks(), AckKey::of(signal))
        else {
            return Vec::new();
        };
        let labels = self
            .shared
            .declared
            .weak_ack_labels(&requested, received_by);
        let mut issued = Vec::with_capacity(labels.len());
        let mut state = self.state();
        for label in labels {
            let ack = weak_ack(label.clone(), &key.entity_id, &key.correlation_id);
            match state.table.accept(ack) {
                Ok(done) => {
                    metrics::counter!("twinwire_acks_weak_total").increment(1);
                    issued.push(label);
                    if let Some(completion) = done {
                        state.deliver(completion);
                    }
                }
                Err(error) => tracing::trace!(%label, %error, "weak ack not needed"),
            }
        }
        issued
    }

    /// Ends a request at its deadline, unless it was answered meanwhile.
    fn expire(&self, key: &AckKey) {
        let mut state = self.state();
        if let Some(completion) = state.table.expire_key(key) {
            metrics::counter!("twinwire_ack_requests_timed_out_total").increment(1);
            tracing::debug!(
                correlation_id = %key.correlation_id,
                entity = %key.entity_id,
                missing = completion.acks.iter().filter(|a| a.status == 408).count(),
                "acknowledgement request timed out"
            );
            state.deliver(completion);
        }
    }

    fn forget(&self, key: &AckKey) {
        let mut state = self.state();
        state.table.forget(key);
        state.waiters.remove(key);
    }

    /// The deadline of a pending request, for tests and diagnostics.
    pub fn deadline(&self, key: &AckKey) -> Option<Instant> {
        self.state().table.get(key).map(|c| c.deadline())
    }
}

/// Counts an acknowledgement a subscriber sent, taken or refused by the pending requests.
fn count_received(accepted: bool) {
    metrics::counter!(
        "twinwire_acks_received_total",
        "outcome" => if accepted { "accepted" } else { "refused" },
    )
    .increment(1);
}

/// Forgets the request when its waiter is dropped unanswered.
struct Forget {
    key: AckKey,
    acks: PendingAcks,
}

impl Drop for Forget {
    fn drop(&mut self) {
        self.acks.forget(&self.key);
    }
}

/// The requester's side of a request awaiting acks: resolves with its answer, at the latest at
/// its deadline. Dropping it forgets the request.
#[must_use = "the request is forgotten when its waiter is dropped"]
pub struct AckWaiter {
    receiver: oneshot::Receiver<AckCompletion>,
    deadline: Instant,
    guard: Forget,
}

impl std::fmt::Debug for AckWaiter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckWaiter")
            .field("key", &self.guard.key)
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl AckWaiter {
    pub fn key(&self) -> &AckKey {
        &self.guard.key
    }

    /// Waits for the answer: every ack received, an error, or the deadline with the missing
    /// acks timed out.
    pub async fn completion(self) -> AckCompletion {
        let AckWaiter {
            mut receiver,
            deadline,
            guard,
        } = self;
        tokio::select! {
            biased;
            done = &mut receiver => {
                if let Ok(completion) = done {
                    return completion;
                }
            }
            () = tokio::time::sleep_until(tokio::time::Instant::from_std(deadline)) => {}
        }
        guard.acks.expire(&guard.key);
        // Every path that removes a pending request sends its completion under the lock
        // (`State::deliver`), and only this waiter's own drop forgets it unanswered; so after
        // `expire` the completion is in the channel.
        receiver
            .try_recv()
            .expect("a pending request is answered before it is removed")
    }
}
