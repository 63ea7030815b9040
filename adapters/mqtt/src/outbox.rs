//! Publishes waiting for the server's acknowledgement.
//!
//! rumqttc assigns the packet ID when it writes a publish and reports it as
//! `Outgoing::Publish(pkid)`, in the order the requests were queued. So each request joins a
//! queue of unsent publishes when it is handed to the client (under the same lock as the
//! hand-over, so both orders agree), moves to the map by packet ID when its `Outgoing::Publish`
//! comes, and completes on PUBACK (qos 1) or PUBCOMP (qos 2); qos 0 completes once written.
//! A publish the client sends again after a reconnection reports a packet ID the map already
//! holds, and is not mistaken for a new one. When the server did not keep the session, the
//! client drops what it had not sent: every waiting publish fails as retryable.

use std::collections::{HashMap, VecDeque};
use std::time::Instant;

use tokio::sync::oneshot;
use twinwire_plugin::SendError;

/// Who waits for a publish.
pub type Waiter = oneshot::Sender<Result<(), SendError>>;

struct Waiting {
    qos: u8,
    deadline: Instant,
    done: Waiter,
}

/// The publishes of one client.
#[derive(Default)]
pub struct Outbox {
    unsent: VecDeque<Waiting>,
    sent: HashMap<u16, Waiting>,
}

impl Outbox {
    /// Publishes handed to the client and not acknowledged yet.
    pub fn len(&self) -> usize {
        self.unsent.len() + self.sent.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A publish was handed to the client.
    pub fn queued(&mut self, qos: u8, deadline: Instant, done: Waiter) {
        self.unsent.push_back(Waiting {
            qos,
            deadline,
            done,
        });
    }

    /// The client wrote a publish with packet ID `pkid` (0 for qos 0).
    pub fn written(&mut self, pkid: u16) {
        if pkid != 0 && self.sent.contains_key(&pkid) {
            return; // sent again after a reconnection
        }
        let Some(waiting) = self.unsent.pop_front() else {
            return; // not ours (cannot happen: only the adapter publishes)
        };
        if waiting.qos == 0 || pkid == 0 {
            let _ = waiting.done.send(Ok(()));
        } else {
            self.sent.insert(pkid, waiting);
        }
    }

    /// The server acknowledged `pkid` (PUBACK for qos 1, PUBCOMP for qos 2); `failure` is the
    /// reason code's text when an MQTT 5 server refused it.
    pub fn acknowledged(&mut self, pkid: u16, failure: Option<String>) {
        if let Some(waiting) = self.sent.remove(&pkid) {
            let _ = waiting.done.send(match failure {
                None => Ok(()),
                Some(reason) => Err(SendError::Rejected(reason)),
            });
        }
    }

    /// The server kept no session: fail everything (the client dropped it).
    pub fn fail_all(&mut self, reason: &str) {
        for waiting in self
            .unsent
            .drain(..)
            .chain(self.sent.drain().map(|(_, w)| w))
        {
            let _ = waiting
                .done
                .send(Err(SendError::Retryable(reason.to_owned())));
        }
    }

    /// Fails the publishes whose deadline passed (they may still arrive: at least once).
    pub fn expire(&mut self, now: Instant) {
        let late: Vec<u16> = self
            .sent
            .iter()
            .filter(|(_, w)| w.deadline <= now)
            .map(|(pkid, _)| *pkid)
            .collect();
        for pkid in late {
            if let Some(waiting) = self.sent.remove(&pkid) {
                let _ = waiting.done.send(Err(SendError::Retryable(
                    "the server did not acknowledge the publish in time".to_owned(),
                )));
            }
        }
        // Unsent ones keep their place (the order matters); only their waiter gives up.
        for waiting in &mut self.unsent {
            if waiting.deadline <= now && !waiting.done.is_closed() {
                let (closed, _) = oneshot::channel();
                let done = std::mem::replace(&mut waiting.done, closed);
                let _ = done.send(Err(SendError::Retryable(
                    "the publish was not sent in time".to_owned(),
                )));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn waiter() -> (Waiter, oneshot::Receiver<Result<(), SendError>>) {
        oneshot::channel()
    }

    #[test]
    fn matches_acknowledgements_by_packet_id() {
        let later = Instant::now() + Duration::from_secs(60);
        let mut out = Outbox::default();
        let (a, mut ra) = waiter();
        let (b, mut rb) = waiter();
        let (c, mut rc) = waiter();
        out.queued(1, later, a);
        out.queued(0, later, b);
        out.queued(2, later, c);
        out.written(5);
        out.written(0);
        assert_eq!(rb.try_recv(), Ok(Ok(())), "qos 0: done once written");
        out.written(6);
        // Sent again after a reconnection: still the same publish.
        out.written(5);
        assert_eq!(out.len(), 2);
        out.acknowledged(6, None);
        assert_eq!(rc.try_recv(), Ok(Ok(())));
        assert!(ra.try_recv().is_err(), "5 is not acknowledged yet");
        out.acknowledged(5, Some("quota exceeded".to_owned()));
        assert!(matches!(ra.try_recv(), Ok(Err(SendError::Rejected(_)))));
        assert!(out.is_empty());
    }

    #[test]
    fn fails_what_the_server_forgot_or_never_acknowledged() {
        let now = Instant::now();
        let mut out = Outbox::default();
        let (a, mut ra) = waiter();
        let (b, mut rb) = waiter();
        out.queued(1, now, a);
        out.written(1);
        out.queued(1, now + Duration::from_secs(60), b);
        out.expire(now);
        assert!(matches!(ra.try_recv(), Ok(Err(SendError::Retryable(_)))));
        assert!(rb.try_recv().is_err());
        out.fail_all("session lost");
        assert!(matches!(rb.try_recv(), Ok(Err(SendError::Retryable(_)))));
        assert!(out.is_empty());
    }
}
