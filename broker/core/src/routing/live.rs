//! Live commands and messages (docs/protocol-twinlive.md, docs/basic-messages.md): the requests
//! waiting for a device's response, matched by correlation-id, answered by Ditto's 408
//! `command.timeout` when none comes in time, or with `live-channel-timeout-strategy: use-twin`
//! handed back to be answered from the twin. Pure: the caller passes the time and delivers.

use std::collections::{BTreeSet, HashMap};
use std::time::Duration;
use twinwire_protocol::exceptions::things::command_timeout;
use twinwire_protocol::headers::LiveChannelTimeoutStrategy;
use twinwire_protocol::topic::{Channel, Criterion};
use twinwire_protocol::{DittoError, Envelope, ProtocolError};

/// A live request waiting for its response; `R` is whoever asked (a session, a connection).
#[derive(Debug)]
struct Pending<R> {
    requester: R,
    command: Envelope,
    deadline_ms: i64,
    timeout_ms: u64,
    strategy: LiveChannelTimeoutStrategy,
}

/// What became of a live request whose time ran out.
#[derive(Debug)]
pub enum Expired<R> {
    /// Answer the requester with this error response (408 `command.timeout`).
    TimedOut { requester: R, response: Envelope },
    /// `use-twin`: answer the requester with this command run against the twin instead.
    UseTwin {
        requester: R,
        twin_command: Envelope,
    },
}

/// The live requests waiting for responses, by correlation-id.
#[derive(Debug)]
pub struct LiveRequests<R> {
    pending: HashMap<String, Pending<R>>,
    deadlines: BTreeSet<(i64, String)>,
}

impl<R> Default for LiveRequests<R> {
    fn default() -> Self {
        LiveRequests {
            pending: HashMap::new(),
            deadlines: BTreeSet::new(),
        }
    }
}

impl<R> LiveRequests<R> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Starts waiting for the response to a live command or message. Its correlation-id must be
    /// set and not already waiting (a response could not tell two requests apart).
    pub fn register(
        &mut self,
        command: &Envelope,
        requester: R,
        now_ms: i64,
    ) -> Result<(), DittoError> {
        let correlation_id = command
            .headers
            .correlation_id()
            .ok_or(ProtocolError::FieldMissing {
                field: "headers/correlation-id",
            })?
            .to_owned();
        if self.pending.contains_key(&correlation_id) {
            return Err(ProtocolError::HeaderInvalid {
                name: "correlation-id".into(),
                value: correlation_id,
                expected: "correlation-id not used by another live request still waiting",
            }
            .into());
        }
        let timeout_ms = u64::try_from(command.headers.timeout()?.as_millis()).unwrap_or(u64::MAX);
        let strategy = command.headers.live_channel_timeout_strategy()?;
        let deadline_ms = now_ms.saturating_add(i64::try_from(timeout_ms).unwrap_or(i64::MAX));
        self.deadlines.insert((deadline_ms, correlation_id.clone()));
        self.pending.insert(
            correlation_id,
            Pending {
                requester,
                command: command.clone(),
                deadline_ms,
                timeout_ms,
                strategy,
            },
        );
        Ok(())
    }

    /// A response from a device: the requester it answers and the response to give it, when it
    /// answers a waiting request of the same thing. Anything else is unsolicited (`None`).
    pub fn respond(&mut self, response: &Envelope) -> Option<(R, Envelope)> {
        let correlation_id = response.headers.correlation_id()?;
        let pending = self.pending.get(correlation_id)?;
        if pending.command.topic.entity_id() != response.topic.entity_id() {
            return None;
        }
        let pending = self.pending.remove(correlation_id)?;
        self.deadlines
            .remove(&(pending.deadline_ms, correlation_id.to_owned()));
        Some((pending.requester, response.clone()))
    }

    /// The earliest deadline, for the caller's timer.
    pub fn next_deadline_ms(&self) -> Option<i64> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// The requests whose deadline has passed, each with what to answer.
    pub fn expire(&mut self, now_ms: i64) -> Vec<Expired<R>> {
        let mut expired = Vec::new();
        while let Some((at, correlation_id)) = self.deadlines.first().cloned() {
            if at > now_ms {
                break;
            }
            self.deadlines.remove(&(at, correlation_id.clone()));
            let Some(pending) = self.pending.remove(&correlation_id) else {
                continue;
            };
            expired.push(match pending.strategy {
                LiveChannelTimeoutStrategy::UseTwin if is_twin_answerable(&pending.command) => {
                    let mut twin_command = pending.command;
                    twin_command.topic.channel = Channel::Twin;
                    Expired::UseTwin {
                        requester: pending.requester,
                        twin_command,
                    }
                }
                _ => Expired::TimedOut {
                    response: pending.command.error_response(&command_timeout(
                        Duration::from_millis(pending.timeout_ms),
                    )),
                    requester: pending.requester,
                },
            });
        }
        expired
    }
}

/// Only live commands (not messages) have a twin to fall back to.
fn is_twin_answerable(command: &Envelope) -> bool {
    matches!(command.topic.criterion, Criterion::Commands(_))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn live(correlation: &str, headers: serde_json::Value) -> Envelope {
        let mut h = json!({"correlation-id": correlation});
        if let (Some(h), Some(extra)) = (h.as_object_mut(), headers.as_object()) {
            h.extend(extra.clone());
        }
        Envelope::from_json(json!({"topic": "org.eclipse.ditto/lamp/things/live/commands/retrieve", "headers": h, "path": "/attributes"}))
            .unwrap()
    }

    fn response(correlation: &str, thing: &str) -> Envelope {
        Envelope::from_json(json!({"topic": format!("org.eclipse.ditto/{thing}/things/live/commands/retrieve"),
            "headers": {"correlation-id": correlation}, "path": "/attributes", "value": {"on": true}, "status": 200}))
        .unwrap()
    }

    #[test]
    fn a_response_goes_back_to_its_requester_once() {
        let mut live_requests = LiveRequests::new();
        live_requests
            .register(&live("c1", json!({})), "session-1", 0)
            .unwrap();
        live_requests
            .register(&live("c2", json!({})), "session-2", 0)
            .unwrap();
        assert!(
            live_requests
                .respond(&response("c1", "other-thing"))
                .is_none(),
            "another thing's response"
        );
        let (requester, answer) = live_requests.respond(&response("c1", "lamp")).unwrap();
        assert_eq!((requester, answer.status), ("session-1", Some(200)));
        assert!(
            live_requests.respond(&response("c1", "lamp")).is_none(),
            "answered once"
        );
        assert!(live_requests
            .respond(&response("unknown", "lamp"))
            .is_none());
        assert_eq!(live_requests.len(), 1);
    }

    #[test]
    fn no_response_in_time_is_a_408_or_the_twin() {
        let mut live_requests = LiveRequests::new();
        live_requests
            .register(&live("slow", json!({"timeout": "250ms"})), "s", 1_000)
            .unwrap();
        live_requests
            .register(
                &live(
                    "twin",
                    json!({"timeout": "1s", "live-channel-timeout-strategy": "use-twin"}),
                ),
                "t",
                1_000,
            )
            .unwrap();
        assert_eq!(live_requests.next_deadline_ms(), Some(1_250));
        assert!(live_requests.expire(1_249).is_empty());
        let expired = live_requests.expire(1_250);
        let [Expired::TimedOut {
            requester,
            response,
        }] = expired.as_slice()
        else {
            panic!("{expired:?}")
        };
        assert_eq!(*requester, "s");
        assert_eq!(
            response.topic.to_string(),
            "org.eclipse.ditto/lamp/things/live/errors"
        );
        assert_eq!(
            response.value.clone().unwrap(),
            json!({"status": 408, "error": "command.timeout",
                "message": "The Command reached the specified timeout of 250ms.", "description": "Try increasing the command timeout."})
        );
        let expired = live_requests.expire(2_000);
        let [Expired::UseTwin {
            requester,
            twin_command,
        }] = expired.as_slice()
        else {
            panic!("{expired:?}")
        };
        assert_eq!(*requester, "t");
        assert_eq!(
            twin_command.topic.to_string(),
            "org.eclipse.ditto/lamp/things/twin/commands/retrieve"
        );
        assert!(live_requests.is_empty());
    }

    #[test]
    fn a_correlation_id_waits_once() {
        let mut live_requests = LiveRequests::new();
        live_requests.register(&live("c", json!({})), 1, 0).unwrap();
        assert_eq!(
            live_requests
                .register(&live("c", json!({})), 2, 0)
                .unwrap_err()
                .code(),
            "header.invalid"
        );
        let no_id = Envelope::from_json(json!({"topic": "org.eclipse.ditto/lamp/things/live/messages/ask", "path": "/inbox/messages/ask"})).unwrap();
        assert_eq!(
            live_requests.register(&no_id, 3, 0).unwrap_err().code(),
            "json.field.missing"
        );
    }
}
