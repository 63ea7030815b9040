//! A connection's targets as pub/sub subscriptions: one per topic of a target, acting as the
//! target's subjects, with the topic's namespaces, filter and extra fields
//! (docs/basic-connections.md "Targets", checklist §2). The subscriptions of a target share its
//! queue; [`FirstMatch`] keeps a signal that matches several topics of one target from going out
//! twice ("the first matching topic wins").

use super::model::{Connection, Target};
use super::validate::{parse_topic, resolve_connection_id, Problem};
use crate::auth::AuthContext;
use crate::routing::acks::AckIssuer;
use crate::routing::pubsub::{SubscriberId, Subscription};
use std::collections::hash_map::{Entry, RandomState};
use std::collections::{HashMap, VecDeque};
use std::hash::BuildHasher;
use twinwire_protocol::Envelope;

/// The subscriber ID of a target's topic: the connection is the origin (so its own signals do
/// not come back to it), the name tells target and topic apart.
pub fn subscriber_id(connection_id: &str, target: usize, topic: usize) -> SubscriberId {
    SubscriberId::new(connection_id, format!("target-{target}/topic-{topic}"))
}

/// The connection as an issuer of acknowledgements.
pub fn issuer(connection: &Connection) -> AckIssuer {
    AckIssuer::Connection(connection.id.clone())
}

/// The subscriptions of one target, topics with extra fields first (Ditto orders them so).
pub fn target_subscriptions(
    connection: &Connection,
    index: usize,
    target: &Target,
) -> Result<Vec<Subscription>, Problem> {
    let auth = AuthContext::new(target.authorization_context.iter().cloned()).map_err(|e| {
        Problem::error(
            format!("targets[{index}].authorizationContext"),
            e.to_string(),
            "Write issuer:subject.",
        )
    })?;
    let mut subscriptions = Vec::with_capacity(target.topics.len());
    for (j, text) in target.topics.iter().enumerate() {
        let topic = parse_topic(text).map_err(|p| Problem {
            field: format!("targets[{index}].topics[{j}]"),
            ..p
        })?;
        let mut sub = Subscription::new(
            subscriber_id(&connection.id, index, j),
            auth.clone(),
            topic.kind,
        );
        if let Some(namespaces) = topic.namespaces {
            sub = sub.with_namespaces(namespaces);
        }
        if let Some(filter) = &topic.filter {
            sub = sub.with_filter(filter).map_err(|e| {
                Problem::error(
                    format!("targets[{index}].topics[{j}]"),
                    e.to_string(),
                    "Fix the RQL filter.",
                )
            })?;
        }
        if let Some(extra) = topic.extra_fields {
            sub = sub.with_extra_fields(extra);
        }
        subscriptions.push(sub);
    }
    subscriptions.sort_by_key(|s| s.extra_fields.is_none());
    Ok(subscriptions)
}

/// The labels a connection declares: its sources' `declaredAcks` and its targets'
/// `issuedAcknowledgementLabel`s, `{{connection:id}}` resolved.
pub fn declared_labels(connection: &Connection) -> Vec<String> {
    let sources = connection
        .sources
        .iter()
        .flat_map(|s| s.declared_acks.iter());
    let targets = connection
        .targets
        .iter()
        .filter_map(|t| t.issued_acknowledgement_label.as_ref());
    sources
        .chain(targets)
        .map(|l| resolve_connection_id(l, &connection.id))
        .collect()
}

/// Topic and path, revision, correlation-id, replay mark.
type SignalKey = (String, Option<u64>, Option<String>, Option<String>);

/// Remembers the signals a target sent lately, so that one arriving again through another of
/// its topics is recognised. A signal is known by its topic, path, revision and correlation-id
/// (and the replay mark of an event published again for a redelivered command).
///
/// A hash set finds a candidate in constant time; only a hash seen before is compared in full
/// (a linear scan over 1,024 keys per event cost ~4% of a connection's CPU).
#[derive(Debug)]
pub struct FirstMatch {
    /// Hashes of the keys in `order`, with how often each occurs there.
    hashes: HashMap<u64, u32>,
    order: VecDeque<(u64, SignalKey)>,
    capacity: usize,
    state: RandomState,
}

impl FirstMatch {
    pub fn new(capacity: usize) -> Self {
        FirstMatch {
            hashes: HashMap::with_capacity(capacity),
            order: VecDeque::with_capacity(capacity),
            capacity: capacity.max(1),
            state: RandomState::new(),
        }
    }

    /// `true` the first time a signal is offered, `false` for its repeats.
    pub fn first(&mut self, signal: &Envelope) -> bool {
        let key: SignalKey = (
            format!("{}{}", signal.topic, signal.path),
            signal.revision,
            signal.headers.correlation_id().map(str::to_owned),
            signal
                .headers
                .get_str(twinwire_protocol::headers::names::DITTO_REPLAY)
                .map(|r| r.into_owned()),
        );
        let hash = self.state.hash_one(&key);
        if self.hashes.contains_key(&hash)
            && self.order.iter().any(|(h, k)| *h == hash && *k == key)
        {
            return false;
        }
        if self.order.len() == self.capacity {
            if let Some((old, _)) = self.order.pop_front() {
                if let Entry::Occupied(mut count) = self.hashes.entry(old) {
                    *count.get_mut() -= 1;
                    if *count.get() == 0 {
                        count.remove();
                    }
                }
            }
        }
        *self.hashes.entry(hash).or_insert(0) += 1;
        self.order.push_back((hash, key));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::pubsub::Kind;
    use serde_json::json;

    fn connection() -> Connection {
        serde_json::from_value(json!({
            "id": "c1", "connectionType": "amqp-091", "connectionStatus": "open", "uri": "amqp://h:5672",
            "sources": [{"addresses": ["q"], "authorizationContext": ["integration:c1"], "declaredAcks": ["{{connection:id}}:seen"]}],
            "targets": [{"address": "x", "authorizationContext": ["integration:c1"],
                         "issuedAcknowledgementLabel": "{{ connection:id }}:sent",
                         "topics": ["_/_/things/twin/events?namespaces=a,b&filter=eq(attributes%2Fx,1)",
                                    "_/_/things/live/messages?extraFields=attributes/location"]}]
        }))
        .unwrap()
    }

    #[test]
    fn topics_become_subscriptions() {
        let c = connection();
        let subs = target_subscriptions(&c, 0, &c.targets[0]).unwrap();
        assert_eq!(subs.len(), 2);
        // Extra fields first.
        assert_eq!(subs[0].kinds, Kind::LiveMessages.into());
        assert_eq!(subs[0].extra_fields.as_deref(), Some("attributes/location"));
        assert_eq!(
            subs[1].namespaces,
            Some(vec!["a".to_owned(), "b".to_owned()])
        );
        assert!(subs[1].filter.is_some());
        assert_eq!(subs[1].id.origin(), "c1");
        assert_eq!(declared_labels(&c), ["c1:seen", "c1:sent"]);
    }

    #[test]
    fn a_signal_goes_out_once_per_target() {
        let event = Envelope::from_json(json!({"topic": "a/t/things/twin/events/modified", "path": "/x", "revision": 3, "value": 1})).unwrap();
        let mut first = FirstMatch::new(2);
        assert!(first.first(&event));
        assert!(!first.first(&event));
        let mut next = event.clone();
        next.revision = Some(4);
        assert!(first.first(&next));
    }

    #[test]
    fn an_event_replayed_for_a_redelivered_command_goes_out_again() {
        let event = Envelope::from_json(json!({"topic": "a/t/things/twin/events/modified", "path": "/x", "revision": 3, "value": 1})).unwrap();
        let mut first = FirstMatch::new(4);
        assert!(first.first(&event));
        let mut replayed = event.clone();
        replayed.headers.insert(
            twinwire_protocol::headers::names::DITTO_REPLAY,
            "r1".to_owned(),
        );
        assert!(first.first(&replayed));
        assert!(!first.first(&replayed));
    }

    #[test]
    fn a_signal_out_of_the_window_counts_as_new() {
        let event = |revision: u64| {
            Envelope::from_json(json!({"topic": "a/t/things/twin/events/modified", "path": "/x", "revision": revision, "value": 1})).unwrap()
        };
        let mut first = FirstMatch::new(3);
        for revision in 1..=3 {
            assert!(first.first(&event(revision)));
        }
        assert!(!first.first(&event(1)), "still remembered");
        assert!(first.first(&event(4)), "pushes 1 out");
        assert!(first.first(&event(1)), "forgotten");
        assert!(!first.first(&event(4)));
        assert_eq!(first.order.len(), 3);
        assert_eq!(first.hashes.values().sum::<u32>(), 3);
    }
}
