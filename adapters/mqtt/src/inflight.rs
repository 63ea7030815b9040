//! Consumed messages not yet acknowledged to the server, in the order they arrived.
//!
//! MQTT requires a client to send PUBACKs (and PUBRECs) in the order the PUBLISH packets came
//! (3.1.1 §4.6, 5.0 §4.6), so an outcome releases an acknowledgement only when every earlier
//! message of the connection has been released too. A retryable outcome withholds its
//! acknowledgement (and so all later ones): the adapter reconnects and the server sends every
//! unacknowledged message again. The window belongs to one network connection: a new one
//! starts empty, and outcomes for messages of an earlier one are ignored (their packet IDs may
//! be in use again).

use std::collections::VecDeque;

use twinwire_plugin::Outcome;

/// What acknowledges a consumed message: its packet ID and qos (qos 0 needs nothing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AckHandle {
    pub pkid: u16,
    pub qos: u8,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Pending,
    Done,
    Withheld,
}

#[derive(Debug)]
struct Entry {
    token: u64,
    ack: AckHandle,
    state: State,
}

/// What an outcome changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Released {
    /// Acknowledgements to send now, in order.
    pub acks: Vec<AckHandle>,
    /// A retryable outcome was withheld: reconnect so that the server redelivers.
    pub redeliver: bool,
    /// The token was one of this window (not of an earlier connection, not settled twice).
    pub known: bool,
}

/// The window of one connection.
#[derive(Debug, Default)]
pub struct InFlight {
    entries: VecDeque<Entry>,
    /// Entries not settled yet (the bound on unsettled messages counts these).
    pending: usize,
    /// A retryable outcome is withheld in this window.
    withheld: bool,
}

impl InFlight {
    /// Messages consumed and not settled yet.
    pub fn unsettled(&self) -> usize {
        self.pending
    }

    /// Whether a withheld outcome waits for a reconnection.
    pub fn withheld(&self) -> bool {
        self.withheld
    }

    /// Adds a consumed message; `token` must be larger than every token added before.
    pub fn push(&mut self, token: u64, ack: AckHandle) {
        debug_assert!(self.entries.back().is_none_or(|e| e.token < token));
        self.entries.push_back(Entry {
            token,
            ack,
            state: State::Pending,
        });
        self.pending += 1;
    }

    /// Records the outcome of `token`. `redeliver`: whether a retryable outcome withholds the
    /// acknowledgement (else it is acknowledged like any other, and the message is lost to
    /// redelivery).
    pub fn settle(&mut self, token: u64, outcome: Outcome, redeliver: bool) -> Released {
        let Ok(at) = self.entries.binary_search_by_key(&token, |e| e.token) else {
            return Released::default();
        };
        let entry = &mut self.entries[at];
        if entry.state != State::Pending {
            return Released::default();
        }
        self.pending -= 1;
        let mut released = Released {
            known: true,
            ..Released::default()
        };
        // A qos 0 message is never redelivered: nothing to withhold.
        if outcome == Outcome::Retryable && redeliver && entry.ack.qos > 0 {
            entry.state = State::Withheld;
            self.withheld = true;
            released.redeliver = true;
        } else {
            entry.state = State::Done;
        }
        while self.entries.front().is_some_and(|e| e.state == State::Done) {
            if let Some(entry) = self.entries.pop_front() {
                if entry.ack.qos > 0 {
                    released.acks.push(entry.ack);
                }
            }
        }
        released
    }

    /// A new connection: forgets the window (the server redelivers what was not acknowledged).
    /// Returns how many messages were unacknowledged.
    pub fn reset(&mut self) -> usize {
        let n = self.entries.len();
        self.entries.clear();
        self.pending = 0;
        self.withheld = false;
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ack(pkid: u16) -> AckHandle {
        AckHandle { pkid, qos: 1 }
    }

    #[test]
    fn acknowledges_in_arrival_order() {
        let mut w = InFlight::default();
        for t in 1..=3 {
            w.push(t, ack(t as u16 + 10));
        }
        assert_eq!(w.unsettled(), 3);
        // 2 and 3 finish first: nothing goes out before 1.
        assert!(w.settle(3, Outcome::Delivered, true).acks.is_empty());
        assert!(w.settle(2, Outcome::Permanent, true).acks.is_empty());
        let r = w.settle(1, Outcome::Delivered, true);
        assert_eq!(r.acks, vec![ack(11), ack(12), ack(13)]);
        assert!(r.known && !r.redeliver);
        assert_eq!(w.unsettled(), 0);
        // Settling again, or a token of nobody, changes nothing.
        assert_eq!(w.settle(1, Outcome::Delivered, true), Released::default());
    }

    #[test]
    fn a_retryable_outcome_withholds_the_rest() {
        let mut w = InFlight::default();
        for t in 1..=3 {
            w.push(t, ack(t as u16));
        }
        assert_eq!(w.settle(1, Outcome::Delivered, true).acks, vec![ack(1)]);
        let r = w.settle(2, Outcome::Retryable, true);
        assert!(r.redeliver && r.acks.is_empty());
        assert!(w.settle(3, Outcome::Delivered, true).acks.is_empty());
        assert!(w.withheld());
        assert_eq!(w.reset(), 2);
        assert!(!w.withheld());
        // Without redelivery a retryable outcome is acknowledged like the others.
        w.push(4, ack(4));
        assert_eq!(w.settle(4, Outcome::Retryable, false).acks, vec![ack(4)]);
    }

    #[test]
    fn qos_0_needs_no_acknowledgement() {
        let mut w = InFlight::default();
        w.push(1, AckHandle { pkid: 0, qos: 0 });
        w.push(2, ack(7));
        let r = w.settle(1, Outcome::Retryable, true);
        assert!(!r.redeliver && r.acks.is_empty());
        assert_eq!(w.settle(2, Outcome::Delivered, true).acks, vec![ack(7)]);
    }
}
