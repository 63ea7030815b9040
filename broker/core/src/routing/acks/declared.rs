//! `DeclaredAcks`: which subscriber may issue which acknowledgement label. A label belongs to
//! one subscriber at a time; connections' labels carry their ID as prefix. Also decides which
//! requested labels get a weak ack after a fan-out. No I/O, no await.
//!
//! Ditto's rules, and where they come from:
//! - A label declared by another subscriber is refused with `acknowledgement:label.not.unique`
//!   (409), and the whole declaration with it (pubsub `DistributedAcks`, StreamingSessionActor
//!   closes the WebSocket; docs/basic-acknowledgements.md "Issuing ACKs via WebSocket").
//! - A connection's labels are `{connectionId}:suffix`, written as is or with the
//!   `{{connection:id}}` placeholder; `live-response` may be issued by a target without being
//!   declared (connectivity `ConnectionValidator.validateDeclaredAndIssuedAcknowledgements`).
//! - An ack from outside with a built-in label is refused (protocol `AcknowledgementAdapter`:
//!   `acknowledgement:ditto.acklabel.forbidden`); one whose label its issuer did not declare too
//!   (`acknowledgement:label.not.declared`, StreamingSessionActor / InboundDispatchingSink).
//! - A requested label that no subscriber declared gets no weak ack: the request waits for it
//!   until its timeout (pubsub `AckExtractor.getRequestedAndDeclaredCustomAcks`, `Publisher`).

use super::request::is_built_in;
use super::AckError;
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use twinwire_protocol::acks::LIVE_RESPONSE;
use twinwire_protocol::headers::names;
use twinwire_protocol::{AckLabel, Acknowledgement, Headers};

/// The payload of a weak acknowledgement (Ditto's pubsub `AckExtractor.weakAck`).
pub const WEAK_ACK_PAYLOAD: &str = "Acknowledgement was issued automatically as weak ack, because the signal is not relevant for the subscriber. Possible reasons are: the subscriber was not authorized, or the subscriber did not subscribe for the signal type.";

/// A subscriber that declares labels and issues acknowledgements.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AckIssuer {
    /// A connection, by ID. All its clients, sources and targets share its labels.
    Connection(String),
    /// A WebSocket session, by a session ID unique in the broker.
    WebSocket(String),
}

impl AckIssuer {
    /// The connection ID or session ID: the origin of what this subscriber sends.
    pub fn id(&self) -> &str {
        match self {
            AckIssuer::Connection(id) | AckIssuer::WebSocket(id) => id,
        }
    }
}

/// The declared labels of every subscriber: a cheap, cloneable handle.
///
/// A std mutex, not a tokio one: every critical section is a few map operations and never
/// awaits, and declarations are rare next to the lookups of every acknowledgement.
#[derive(Debug, Clone, Default)]
pub struct DeclaredAcks {
    owners: Arc<Mutex<HashMap<AckLabel, AckIssuer>>>,
}

impl DeclaredAcks {
    pub fn new() -> Self {
        DeclaredAcks::default()
    }

    fn owners(&self) -> MutexGuard<'_, HashMap<AckLabel, AckIssuer>> {
        // The map stays consistent even if a holder panicked: every update is one insert/remove.
        self.owners.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Declares the labels of a WebSocket session (its `declared-acks`), all or none. Built-in
    /// labels are skipped: only the broker issues them. Declaring a label the same subscriber
    /// already holds is a no-op.
    pub fn declare(&self, issuer: &AckIssuer, labels: &[AckLabel]) -> Result<(), AckError> {
        let mut owners = self.owners();
        if let Some(taken) = labels
            .iter()
            .find(|l| owners.get(*l).is_some_and(|owner| owner != issuer))
        {
            return Err(AckError::LabelNotUnique {
                label: taken.clone(),
            });
        }
        for label in labels.iter().filter(|l| !is_built_in(l.as_str())) {
            owners.insert(label.clone(), issuer.clone());
        }
        Ok(())
    }

    /// Declares a connection's labels (its sources' `declaredAcks` and its targets'
    /// `issuedAcknowledgementLabel`), all or none, after replacing `{{connection:id}}`. Every
    /// label must start with `{connection_id}:`, except `live-response`, which a target may
    /// issue undeclared. Returns the labels declared.
    pub fn declare_connection(
        &self,
        connection_id: &str,
        labels: &[&str],
    ) -> Result<Vec<AckLabel>, AckError> {
        let prefix = format!("{connection_id}:");
        let mut declared = Vec::with_capacity(labels.len());
        for raw in labels {
            let resolved = resolve_connection_id(raw, connection_id);
            if resolved == LIVE_RESPONSE {
                continue;
            }
            if !resolved.starts_with(&prefix) {
                return Err(AckError::LabelNotPrefixed {
                    label: resolved,
                    connection_id: connection_id.to_owned(),
                });
            }
            let label = AckLabel::parse(&resolved)?;
            if !declared.contains(&label) {
                declared.push(label);
            }
        }
        self.declare(&AckIssuer::Connection(connection_id.to_owned()), &declared)?;
        Ok(declared)
    }

    /// Releases every label of a subscriber: its WebSocket closed, its connection closed or was
    /// deleted.
    pub fn withdraw(&self, issuer: &AckIssuer) {
        self.owners().retain(|_, owner| owner != issuer);
    }

    /// Who declared a label.
    pub fn declarer(&self, label: &AckLabel) -> Option<AckIssuer> {
        self.owners().get(label).cloned()
    }

    /// The labels a subscriber declared, sorted.
    pub fn labels_of(&self, issuer: &AckIssuer) -> Vec<AckLabel> {
        let mut labels: Vec<_> = self
            .owners()
            .iter()
            .filter(|(_, owner)| *owner == issuer)
            .map(|(label, _)| label.clone())
            .collect();
        labels.sort();
        labels
    }

    /// Checks that `issuer` may send this acknowledgement: not a built-in label, and one it
    /// declared.
    pub fn check_issued(&self, issuer: &AckIssuer, ack: &Acknowledgement) -> Result<(), AckError> {
        if is_built_in(ack.label.as_str()) {
            return Err(AckError::BuiltInLabel {
                label: ack.label.clone(),
            });
        }
        match self.owners().get(&ack.label) {
            Some(owner) if owner == issuer => Ok(()),
            _ => Err(AckError::LabelNotDeclared {
                label: ack.label.clone(),
            }),
        }
    }

    /// The requested labels that get a weak ack after a fan-out: custom labels declared by a
    /// subscriber that did not receive the signal (filtered out, not subscribed, or not allowed
    /// to READ it). `received_by` are the subscribers the signal was delivered to. Labels nobody
    /// declared are not among them: they time out.
    ///
    /// A subscriber skipped because it caused the signal (origin exclusion) gets no weak ack in
    /// Ditto (connectivity `OutboundDispatchingActor.handleSignal` drops it before issuing any):
    /// to match, count it in `received_by`.
    pub fn weak_ack_labels<'a>(
        &self,
        requested: impl IntoIterator<Item = &'a AckLabel>,
        received_by: &[AckIssuer],
    ) -> Vec<AckLabel> {
        let owners = self.owners();
        requested
            .into_iter()
            .filter(|label| !is_built_in(label.as_str()))
            .filter(|label| {
                owners
                    .get(*label)
                    .is_some_and(|owner| !received_by.contains(owner))
            })
            .cloned()
            .collect()
    }
}

/// A weak acknowledgement (`ditto-weak-ack: true`, status 200) the broker issues for a label whose
/// subscriber will not see the signal. It counts as received and causes no redelivery.
pub fn weak_ack(label: AckLabel, entity_id: &str, correlation_id: &str) -> Acknowledgement {
    let mut headers = Headers::new();
    headers.insert(names::CORRELATION_ID, correlation_id);
    headers.insert(names::DITTO_WEAK_ACK, true);
    Acknowledgement {
        label,
        entity_id: entity_id.to_owned(),
        status: 200,
        headers,
        value: Some(Value::from(WEAK_ACK_PAYLOAD)),
    }
}

/// Replaces the `{{connection:id}}` placeholder (spaces inside the braces allowed).
fn resolve_connection_id(label: &str, connection_id: &str) -> String {
    let mut out = String::with_capacity(label.len());
    let mut rest = label;
    while let Some(start) = rest.find("{{") {
        let Some(len) = rest[start..].find("}}") else {
            break;
        };
        let inner = rest[start + 2..start + len].trim();
        out.push_str(&rest[..start]);
        if inner == "connection:id" {
            out.push_str(connection_id);
        } else {
            // Unknown placeholders stay, and make the label invalid.
            out.push_str(&rest[start..start + len + 2]);
        }
        rest = &rest[start + len + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(s: &str) -> AckLabel {
        AckLabel::parse(s).unwrap()
    }

    #[test]
    fn placeholders_resolve() {
        assert_eq!(
            resolve_connection_id("{{connection:id}}:ack", "c1"),
            "c1:ack"
        );
        assert_eq!(
            resolve_connection_id("{{ connection:id }}:ack", "c1"),
            "c1:ack"
        );
        assert_eq!(resolve_connection_id("c1:ack", "c1"), "c1:ack");
        assert_eq!(
            resolve_connection_id("{{thing:id}}:ack", "c1"),
            "{{thing:id}}:ack"
        );
        assert_eq!(
            resolve_connection_id("{{connection:id", "c1"),
            "{{connection:id"
        );
    }

    #[test]
    fn a_subscriber_redeclares_its_own_labels() {
        let declared = DeclaredAcks::new();
        let ws = AckIssuer::WebSocket("s1".into());
        declared.declare(&ws, &[label("my:ack")]).unwrap();
        declared
            .declare(&ws, &[label("my:ack"), label("my:other")])
            .unwrap();
        assert_eq!(
            declared.labels_of(&ws),
            [label("my:ack"), label("my:other")]
        );
        declared.withdraw(&ws);
        assert!(declared.labels_of(&ws).is_empty());
    }

    #[test]
    fn built_in_labels_are_never_declared() {
        let declared = DeclaredAcks::new();
        let ws = AckIssuer::WebSocket("s1".into());
        declared.declare(&ws, &[label("twin-persisted")]).unwrap();
        assert_eq!(declared.declarer(&label("twin-persisted")), None);
    }
}
