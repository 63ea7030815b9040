//! `AckCollector`: one request's requested labels, the acks received for them and its deadline;
//! `AckTable`: the collectors by correlation-id and entity. Pure: the caller passes the time,
//! delivers the completions and runs the timers (pending.rs does, with tokio).
//!
//! Design, after Ditto's `AcknowledgementAggregator` and `AcknowledgementAggregatorActor`:
//! - Every requested label has a slot; an ack fills it once. An ack for an unknown request, a
//!   label not requested or a filled slot is an [`AckError`] for its sender (Ditto drops those
//!   silently; STYLE.md wants the sender told).
//! - The command's own response fills the built-in slot (`twin-persisted` for a twin modify,
//!   once its events are durable; `live-response` for a live command). An error response
//!   (`…/errors`) ends the request at once with that error, as Ditto's aggregator does on a
//!   `DittoRuntimeException`.
//! - When every slot is filled, or at the deadline, the request completes. When the only
//!   requested label is the built-in one, the reply is the command's response, or on timeout
//!   Ditto's 408 `command.timeout`. Otherwise it is the aggregated acks
//!   (docs/protocol-specification-acks.md: a single ack's status, else 200 when all are 2xx,
//!   else 424), each missing label as a 408 `acknowledgement:request.timeout` ack.

use super::request::{is_built_in, AckRequest, Outcome, RequestKind};
use super::AckError;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;
use twinwire_protocol::acks::aggregated_envelope;
use twinwire_protocol::exceptions::things as exc;
use twinwire_protocol::headers::names;
use twinwire_protocol::{
    AckLabel, Acknowledgement, Criterion, Envelope, Headers, ProtocolError, Topic,
};

/// A request awaiting acks is known by its correlation-id and the entity it addresses.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AckKey {
    pub correlation_id: String,
    /// `namespace:name` of the thing.
    pub entity_id: String,
}

impl AckKey {
    /// The key of a command, response, event or acknowledgement envelope.
    pub fn of(envelope: &Envelope) -> Option<AckKey> {
        Some(AckKey {
            correlation_id: envelope.headers.correlation_id()?.to_owned(),
            entity_id: envelope.topic.entity_id(),
        })
    }

    fn unknown(&self) -> AckError {
        AckError::UnknownRequest {
            correlation_id: self.correlation_id.clone(),
            entity_id: self.entity_id.clone(),
        }
    }
}

/// How a request ended, and what answers it.
#[derive(Debug, Clone, PartialEq)]
pub struct AckCompletion {
    pub key: AckKey,
    /// The command's response, an error response, or the aggregated acks envelope.
    pub reply: Envelope,
    /// Whether `reply` goes to the requester (`response-required`). When false it only decides
    /// the HTTP 202 and the settlement of a connection's message.
    pub respond: bool,
    pub outcome: Outcome,
    /// One ack per requested label, in request order, missing ones as 408 timeout acks. Empty
    /// when the request failed with an error response.
    pub acks: Vec<Acknowledgement>,
    /// True when the deadline passed before every label was acknowledged.
    pub timed_out: bool,
}

impl AckCompletion {
    /// The status of the reply: the response's, the error's, or the combined status.
    pub fn status(&self) -> u16 {
        self.reply.status.unwrap_or(200)
    }
}

#[derive(Debug, Clone)]
struct Slot {
    label: AckLabel,
    ack: Option<Acknowledgement>,
}

/// One request's acknowledgements.
#[derive(Debug, Clone)]
pub struct AckCollector {
    key: AckKey,
    command: Envelope,
    request: AckRequest,
    deadline: Instant,
    slots: Vec<Slot>,
    /// The command's response, once it filled the built-in slot.
    response: Option<Envelope>,
    /// An error response that ended the request.
    failure: Option<Envelope>,
}

impl AckCollector {
    /// Starts collecting for a command: its labels, its deadline (`now` plus its timeout). The
    /// command needs a correlation-id.
    pub fn new(
        command: &Envelope,
        request: AckRequest,
        now: Instant,
    ) -> Result<AckCollector, AckError> {
        let key = AckKey::of(command).ok_or(AckError::RequestCorrelationIdMissing)?;
        let slots = request
            .labels
            .iter()
            .map(|label| Slot {
                label: label.clone(),
                ack: None,
            })
            .collect();
        let mut command = command.clone();
        command.headers.strip_internal_for_delivery();
        // The command's value is not needed to answer it, and may be large.
        command.value = None;
        Ok(AckCollector {
            key,
            deadline: now + request.timeout,
            command,
            request,
            slots,
            response: None,
            failure: None,
        })
    }

    pub fn key(&self) -> &AckKey {
        &self.key
    }

    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn request(&self) -> &AckRequest {
        &self.request
    }

    /// The topic of the command this collector answers.
    pub fn topic(&self) -> &Topic {
        &self.command.topic
    }

    pub fn kind(&self) -> RequestKind {
        self.request.kind
    }

    /// Labels still awaited, in request order.
    pub fn missing(&self) -> impl Iterator<Item = &AckLabel> {
        self.slots
            .iter()
            .filter(|s| s.ack.is_none())
            .map(|s| &s.label)
    }

    /// True when nothing more is awaited: every slot filled, or an error ended the request.
    pub fn is_complete(&self) -> bool {
        self.failure.is_some() || self.slots.iter().all(|s| s.ack.is_some())
    }

    /// Takes an acknowledgement (from a subscriber, or a weak ack from the broker). Returns
    /// whether the request is now complete.
    pub fn accept(&mut self, ack: Acknowledgement) -> Result<bool, AckError> {
        let correlation_id = &self.key.correlation_id;
        let slot = self
            .slots
            .iter_mut()
            .find(|s| s.label == ack.label)
            .ok_or_else(|| AckError::LabelNotRequested {
                label: ack.label.clone(),
                correlation_id: correlation_id.clone(),
            })?;
        if slot.ack.is_some() {
            return Err(AckError::AlreadyAcknowledged {
                label: ack.label,
                correlation_id: correlation_id.clone(),
            });
        }
        let mut ack = ack;
        ack.headers.strip_internal_for_delivery();
        slot.ack = Some(ack);
        Ok(self.is_complete())
    }

    /// Takes the command's response: a twin modify's once its events are durable, a live
    /// command's from its device. It fills the built-in slot if that was requested (a response
    /// nobody asked an ack of is ignored, as Ditto does); an error response ends the request.
    /// Returns whether the request is now complete.
    pub fn accept_response(&mut self, response: &Envelope) -> Result<bool, AckError> {
        if response.topic.criterion == Criterion::Errors {
            self.failure = Some(response.clone());
            return Ok(true);
        }
        let Some(built_in) = self.request.kind.built_in_label() else {
            return Ok(self.is_complete());
        };
        if !self.slots.iter().any(|s| s.label.as_str() == built_in) {
            return Ok(self.is_complete());
        }
        let mut headers = response.headers.clone();
        headers.strip_internal_for_delivery();
        let ack = Acknowledgement {
            label: AckLabel::parse(built_in)?,
            entity_id: self.key.entity_id.clone(),
            status: response.status.unwrap_or(200),
            headers,
            value: response.value.clone(),
        };
        let complete = self.accept(ack)?;
        self.response = Some(response.clone());
        Ok(complete)
    }

    /// Ends the request with an error response (the command failed, or its events could not be
    /// persisted).
    pub fn fail(&mut self, error_response: Envelope) {
        self.failure = Some(error_response);
    }

    /// The answer to the request: complete, or at its deadline with the missing acks timed out.
    pub fn finish(self) -> AckCompletion {
        let timed_out = !self.is_complete();
        let respond = self.request.response_required;
        let outcome = self.request.outcome;
        if let Some(reply) = self.failure {
            return AckCompletion {
                key: self.key,
                reply,
                respond,
                outcome,
                acks: Vec::new(),
                timed_out: false,
            };
        }
        let timeout = self.request.timeout;
        let correlation_id = self.key.correlation_id.clone();
        let entity_id = self.key.entity_id.clone();
        let acks: Vec<Acknowledgement> = self
            .slots
            .into_iter()
            .map(|slot| {
                slot.ack.unwrap_or_else(|| {
                    timeout_ack(slot.label, &entity_id, &correlation_id, timeout)
                })
            })
            .collect();
        let built_in_only = matches!(acks.as_slice(), [one] if is_built_in(one.label.as_str()));
        let reply = match (built_in_only, self.response) {
            (true, Some(response)) => response,
            (true, None) => self.command.error_response(&exc::command_timeout(timeout)),
            (false, _) => {
                aggregated_envelope(&self.command.topic, self.command.headers.clone(), &acks)
            }
        };
        AckCompletion {
            key: self.key,
            reply,
            respond,
            outcome,
            acks,
            timed_out,
        }
    }
}

/// The 408 ack standing in for a label that was not acknowledged in time.
pub fn timeout_ack(
    label: AckLabel,
    entity_id: &str,
    correlation_id: &str,
    timeout: std::time::Duration,
) -> Acknowledgement {
    let error = exc::ack_request_timeout(timeout);
    let mut headers = Headers::new();
    headers.insert(names::CORRELATION_ID, correlation_id);
    Acknowledgement {
        label,
        entity_id: entity_id.to_owned(),
        status: error.status,
        headers,
        value: Some(error.to_json()),
    }
}

/// The requests awaiting acknowledgements.
#[derive(Debug, Default)]
pub struct AckTable {
    pending: HashMap<AckKey, AckCollector>,
    deadlines: BTreeSet<(Instant, AckKey)>,
}

impl AckTable {
    pub fn new() -> Self {
        AckTable::default()
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn contains(&self, key: &AckKey) -> bool {
        self.pending.contains_key(key)
    }

    pub fn get(&self, key: &AckKey) -> Option<&AckCollector> {
        self.pending.get(key)
    }

    /// Starts awaiting a command's acks. Its correlation-id must not be awaiting acks for the
    /// same entity already (acks could not tell the two apart).
    pub fn register(
        &mut self,
        command: &Envelope,
        request: AckRequest,
        now: Instant,
    ) -> Result<&AckCollector, AckError> {
        let collector = AckCollector::new(command, request, now)?;
        let key = collector.key().clone();
        if self.pending.contains_key(&key) {
            return Err(AckError::DuplicateCorrelationId {
                correlation_id: key.correlation_id,
                entity_id: key.entity_id,
            });
        }
        self.deadlines.insert((collector.deadline(), key.clone()));
        Ok(self.pending.entry(key).or_insert(collector))
    }

    /// Takes an acknowledgement; returns the completion when it was the last one awaited.
    pub fn accept(&mut self, ack: Acknowledgement) -> Result<Option<AckCompletion>, AckError> {
        let correlation_id = ack
            .headers
            .correlation_id()
            .ok_or(AckError::CorrelationIdMissing)?
            .to_owned();
        let key = AckKey {
            correlation_id,
            entity_id: ack.entity_id.clone(),
        };
        let collector = self.pending.get_mut(&key).ok_or_else(|| key.unknown())?;
        if collector.accept(ack)? {
            Ok(self.remove(&key))
        } else {
            Ok(None)
        }
    }

    /// Takes a command's response (see [`AckCollector::accept_response`]); returns the
    /// completion when that ended the request.
    pub fn accept_response(
        &mut self,
        response: &Envelope,
    ) -> Result<Option<AckCompletion>, AckError> {
        let key = AckKey::of(response).ok_or(AckError::CorrelationIdMissing)?;
        let collector = self.pending.get_mut(&key).ok_or_else(|| key.unknown())?;
        if collector.accept_response(response)? {
            Ok(self.remove(&key))
        } else {
            Ok(None)
        }
    }

    /// Ends a request with an error response.
    pub fn fail(&mut self, key: &AckKey, error_response: Envelope) -> Option<AckCompletion> {
        self.pending.get_mut(key)?.fail(error_response);
        self.remove(key)
    }

    /// Ends one request now, whatever is missing (its timer fired).
    pub fn expire_key(&mut self, key: &AckKey) -> Option<AckCompletion> {
        self.remove(key)
    }

    /// Ends every request whose deadline is at or before `now`.
    pub fn expire(&mut self, now: Instant) -> Vec<AckCompletion> {
        let mut expired = Vec::new();
        while let Some((at, key)) = self.deadlines.first().cloned() {
            if at > now {
                break;
            }
            expired.extend(self.remove(&key));
        }
        expired
    }

    /// The earliest deadline, for the caller's timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    /// Drops a request without answering it (its requester is gone).
    pub fn forget(&mut self, key: &AckKey) -> bool {
        self.take(key).is_some()
    }

    fn take(&mut self, key: &AckKey) -> Option<AckCollector> {
        let collector = self.pending.remove(key)?;
        self.deadlines.remove(&(collector.deadline(), key.clone()));
        Some(collector)
    }

    fn remove(&mut self, key: &AckKey) -> Option<AckCompletion> {
        self.take(key).map(AckCollector::finish)
    }
}

/// The acknowledgements of an `…/acks/<label>` or aggregated `…/acks` envelope a subscriber
/// sent. An aggregated one's acks inherit its correlation-id when they carry none.
pub fn acks_from_envelope(envelope: &Envelope) -> Result<Vec<Acknowledgement>, AckError> {
    let entity_id = envelope.topic.entity_id();
    let correlation_id = envelope
        .headers
        .correlation_id()
        .ok_or(AckError::CorrelationIdMissing)?;
    match &envelope.topic.criterion {
        Criterion::Acks(Some(label)) => Ok(vec![Acknowledgement {
            label: label.clone(),
            entity_id,
            status: envelope
                .status
                .ok_or(ProtocolError::FieldMissing { field: "status" })?,
            headers: envelope.headers.clone(),
            value: envelope.value.clone(),
        }]),
        Criterion::Acks(None) => {
            let items = envelope
                .value
                .as_ref()
                .and_then(serde_json::Value::as_object)
                .ok_or(ProtocolError::FieldType {
                    field: "value",
                    expected: "an object of acknowledgements by label",
                })?;
            items
                .iter()
                .map(|(label, item)| {
                    let status = item
                        .get("status")
                        .and_then(serde_json::Value::as_u64)
                        .and_then(|s| u16::try_from(s).ok())
                        .ok_or(ProtocolError::FieldMissing {
                            field: "value/status",
                        })?;
                    let mut headers = match item.get("headers") {
                        Some(h) => Headers::from_json(h)?,
                        None => Headers::new(),
                    };
                    if headers.correlation_id().is_none() {
                        headers.insert(names::CORRELATION_ID, correlation_id);
                    }
                    Ok(Acknowledgement {
                        label: AckLabel::parse(label)?,
                        entity_id: entity_id.clone(),
                        status,
                        headers,
                        value: item.get("payload").cloned(),
                    })
                })
                .collect()
        }
        _ => Err(ProtocolError::UnknownTopic {
            topic: envelope.topic.to_string(),
            reason: "An acknowledgement's topic ends with /acks or /acks/<label>.".into(),
        }
        .into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::acks::request::Origin;
    use serde_json::json;
    use std::time::Duration;

    fn modify(correlation_id: &str, headers: serde_json::Value) -> (Envelope, AckRequest) {
        let mut h = json!({"correlation-id": correlation_id});
        if let (Some(h), Some(extra)) = (h.as_object_mut(), headers.as_object()) {
            h.extend(extra.clone());
        }
        let env = Envelope::from_json(
            json!({"topic": "org.eclipse.ditto/lamp/things/twin/commands/modify",
            "headers": h, "path": "/attributes/on", "value": true}),
        )
        .unwrap();
        let request =
            AckRequest::resolve(&env.headers, RequestKind::of(&env), Origin::Connection).unwrap();
        (env, request)
    }

    fn ack(correlation_id: &str, label: &str, status: u16) -> Acknowledgement {
        Acknowledgement {
            label: AckLabel::parse(label).unwrap(),
            entity_id: "org.eclipse.ditto:lamp".into(),
            status,
            headers: [("correlation-id", correlation_id)].into_iter().collect(),
            value: None,
        }
    }

    #[test]
    fn deadlines_expire_in_order_without_a_clock() {
        let t0 = Instant::now();
        let mut table = AckTable::new();
        let (a, ra) = modify("a", json!({"requested-acks": ["c:x"], "timeout": "2s"}));
        let (b, rb) = modify("b", json!({"requested-acks": ["c:x"], "timeout": "1s"}));
        table.register(&a, ra, t0).unwrap();
        table.register(&b, rb, t0).unwrap();
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(1)));
        assert!(table.expire(t0 + Duration::from_millis(999)).is_empty());
        let expired = table.expire(t0 + Duration::from_secs(1));
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].key.correlation_id, "b");
        assert!(expired[0].timed_out);
        assert_eq!(table.next_deadline(), Some(t0 + Duration::from_secs(2)));
        assert_eq!(table.expire(t0 + Duration::from_secs(5)).len(), 1);
        assert!(table.is_empty() && table.next_deadline().is_none());
    }

    #[test]
    fn the_last_ack_completes_and_removes_the_request() {
        let t0 = Instant::now();
        let mut table = AckTable::new();
        let (env, request) = modify("c", json!({"requested-acks": ["c:x", "c:y"]}));
        table.register(&env, request, t0).unwrap();
        assert_eq!(table.accept(ack("c", "c:y", 204)).unwrap(), None);
        assert_eq!(
            table
                .get(&AckKey::of(&env).unwrap())
                .unwrap()
                .missing()
                .map(AckLabel::as_str)
                .collect::<Vec<_>>(),
            ["c:x"]
        );
        let done = table.accept(ack("c", "c:x", 200)).unwrap().unwrap();
        assert_eq!(done.status(), 200);
        assert!(!done.timed_out);
        assert_eq!(
            done.acks
                .iter()
                .map(|a| a.label.as_str())
                .collect::<Vec<_>>(),
            ["c:x", "c:y"]
        );
        assert!(table.is_empty());
        assert_eq!(
            table.accept(ack("c", "c:x", 200)).unwrap_err().code(),
            "acknowledgement:request.unknown"
        );
    }

    #[test]
    fn forgetting_drops_the_deadline_too() {
        let t0 = Instant::now();
        let mut table = AckTable::new();
        let (env, request) = modify("f", json!({}));
        table.register(&env, request, t0).unwrap();
        assert!(table.forget(&AckKey::of(&env).unwrap()));
        assert!(table.next_deadline().is_none());
        assert!(table.expire(t0 + Duration::from_secs(120)).is_empty());
    }
}
