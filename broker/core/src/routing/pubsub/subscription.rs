//! What a subscriber asks for: the kinds of signal, the namespaces, the RQL filter and the extra
//! fields (docs/basic-changenotifications.md, docs/basic-enrichment.md), as a WebSocket
//! `START-SEND-*`, an SSE request or a connection target declares them. Plain data: checked and
//! compiled when the [`Hub`](super::Hub) takes it.

use crate::auth::AuthContext;
use std::fmt;
use std::sync::Arc;
use twinwire_protocol::rql::{self, Predicate};
use twinwire_protocol::topic::{Channel, Criterion, Group};
use twinwire_protocol::{DittoError, Envelope};

/// Who receives: the origin it belongs to (a connection ID, a WebSocket session's ID) and a
/// name that tells its subscriptions apart (a target's address, `events`, `messages`). Cheap to
/// clone.
///
/// The origin is what Ditto's `origin` header carries: a signal whose
/// [`PublishContext::origin`](super::PublishContext::origin) is this origin never reaches any
/// subscriber of the origin (docs/basic-signals.md: "not published to the same origin").
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SubscriberId {
    origin: Arc<str>,
    name: Arc<str>,
}

impl SubscriberId {
    pub fn new(origin: impl Into<Arc<str>>, name: impl Into<Arc<str>>) -> Self {
        SubscriberId {
            origin: origin.into(),
            name: name.into(),
        }
    }

    /// The connection or session this subscriber belongs to.
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The subscription's name within its origin.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Display for SubscriberId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.origin, self.name)
    }
}

/// The kinds of signal one subscribes to: Ditto's connection target topics (connectivity
/// `Topic`), which the WebSocket's `START-SEND-*` and SSE map onto too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `_/_/things/twin/events`: change notifications of twins.
    TwinEvents,
    /// `_/_/things/live/events`: events a device emits on the live channel.
    LiveEvents,
    /// `_/_/things/live/commands`: live commands for the device to answer.
    LiveCommands,
    /// `_/_/things/live/messages`: messages to and from things and features.
    LiveMessages,
    /// `_/_/policies/announcements`: subject deletion announcements.
    PolicyAnnouncements,
    /// `_/_/connections/announcements`: a connection's opened and closed announcements.
    ConnectionAnnouncements,
}

impl Kind {
    pub const ALL: [Kind; 6] = [
        Kind::TwinEvents,
        Kind::LiveEvents,
        Kind::LiveCommands,
        Kind::LiveMessages,
        Kind::PolicyAnnouncements,
        Kind::ConnectionAnnouncements,
    ];

    /// The topic a connection target names this kind by.
    pub fn target_topic(self) -> &'static str {
        match self {
            Kind::TwinEvents => "_/_/things/twin/events",
            Kind::LiveEvents => "_/_/things/live/events",
            Kind::LiveCommands => "_/_/things/live/commands",
            Kind::LiveMessages => "_/_/things/live/messages",
            Kind::PolicyAnnouncements => "_/_/policies/announcements",
            Kind::ConnectionAnnouncements => "_/_/connections/announcements",
        }
    }

    /// The kind a connection target's topic (without its `?filter…` part) names.
    pub fn from_target_topic(topic: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.target_topic() == topic)
    }

    /// The kind of a published signal, from its topic (Ditto's `SignalFilter.topicFromSignal`);
    /// `None` for what no one subscribes to (twin commands, responses, errors, acks, search).
    pub fn of(signal: &Envelope) -> Option<Kind> {
        let topic = &signal.topic;
        match (topic.group, topic.channel, &topic.criterion) {
            (Group::Things, Channel::Twin, Criterion::Events(_)) => Some(Kind::TwinEvents),
            (Group::Things, Channel::Live, Criterion::Events(_)) => Some(Kind::LiveEvents),
            (Group::Things, Channel::Live, Criterion::Commands(_)) => Some(Kind::LiveCommands),
            (Group::Things, Channel::Live, Criterion::Messages(_)) => Some(Kind::LiveMessages),
            (Group::Policies, _, Criterion::Announcements(_)) => Some(Kind::PolicyAnnouncements),
            (Group::Connections, _, Criterion::Announcements(_)) => {
                Some(Kind::ConnectionAnnouncements)
            }
            _ => None,
        }
    }

    pub(super) fn index(self) -> usize {
        self as usize
    }

    /// Whether signals of this kind are about a thing, so that its policy decides who sees them
    /// and extra fields can be read from it.
    pub(super) fn is_thing_signal(self) -> bool {
        matches!(
            self,
            Kind::TwinEvents | Kind::LiveEvents | Kind::LiveCommands | Kind::LiveMessages
        )
    }
}

/// A set of [`Kind`]s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Kinds(u8);

impl Kinds {
    pub const fn empty() -> Self {
        Kinds(0)
    }

    pub fn with(self, kind: Kind) -> Self {
        Kinds(self.0 | 1 << kind.index())
    }

    pub fn contains(self, kind: Kind) -> bool {
        self.0 & 1 << kind.index() != 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Kind> {
        Kind::ALL.into_iter().filter(move |k| self.contains(*k))
    }
}

impl From<Kind> for Kinds {
    fn from(kind: Kind) -> Self {
        Kinds::empty().with(kind)
    }
}

impl FromIterator<Kind> for Kinds {
    fn from_iter<I: IntoIterator<Item = Kind>>(iter: I) -> Self {
        iter.into_iter().fold(Kinds::empty(), Kinds::with)
    }
}

impl<const N: usize> From<[Kind; N]> for Kinds {
    fn from(kinds: [Kind; N]) -> Self {
        kinds.into_iter().collect()
    }
}

/// One subscription: who, acting as whom, for which kinds, narrowed by namespaces and an RQL
/// filter, enriched with extra fields.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: SubscriberId,
    /// The subjects the subscriber acts as: the policy of each thing decides what of it they see.
    pub auth: AuthContext,
    pub kinds: Kinds,
    /// Only signals of entities in these namespaces; `None` (or an empty list, as Ditto reads
    /// `namespaces=`) for every namespace.
    pub namespaces: Option<Vec<String>>,
    /// Thing fields (of the event's change and the extra fields), `topic:*` and `resource:*`
    /// placeholders, `time:*` values; see [`Subscription::with_filter`].
    pub filter: Option<Predicate>,
    /// A field selector of the thing (`attributes/location,features/*/properties/unit`,
    /// placeholders as `{{ feature:id }}`) whose values, as READ allows, go into `extra`.
    /// Checked when subscribing.
    pub extra_fields: Option<String>,
}

impl Subscription {
    /// Every signal of `kinds` that `auth` may read, unfiltered and not enriched.
    pub fn new(id: SubscriberId, auth: AuthContext, kinds: impl Into<Kinds>) -> Self {
        Subscription {
            id,
            auth,
            kinds: kinds.into(),
            namespaces: None,
            filter: None,
            extra_fields: None,
        }
    }

    pub fn with_namespaces<I, S>(mut self, namespaces: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.namespaces = Some(namespaces.into_iter().map(Into::into).collect());
        self
    }

    /// Filters by an RQL expression (docs/basic-rql.md), parsed as a filter for Ditto Protocol
    /// messages; a malformed one is refused with Ditto's `rql.expression.invalid` (400).
    pub fn with_filter(mut self, expression: &str) -> Result<Self, DittoError> {
        self.filter = Some(parse_filter(expression)?);
        Ok(self)
    }

    /// Enriches with the extra fields a field selector names (checked by
    /// [`Hub::subscribe`](super::Hub::subscribe)).
    pub fn with_extra_fields(mut self, selector: impl Into<String>) -> Self {
        self.extra_fields = Some(selector.into());
        self
    }

    /// The namespaces a subscription is restricted to, `None` for all.
    pub(super) fn namespace_list(&self) -> Option<&[String]> {
        self.namespaces.as_deref().filter(|ns| !ns.is_empty())
    }
}

/// Parses a subscription's filter as Ditto's `StreamingSessionActor.parseCriteria` does: RQL for
/// Ditto Protocol messages. Errors are `rql.expression.invalid` (400).
pub fn parse_filter(expression: &str) -> Result<Predicate, DittoError> {
    rql::parse(expression).map_err(DittoError::from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_of_signals() {
        let kind = |topic: &str| {
            let env = Envelope::from_json(json!({"topic": topic, "path": "/"})).unwrap();
            Kind::of(&env)
        };
        assert_eq!(
            kind("ns/t/things/twin/events/modified"),
            Some(Kind::TwinEvents)
        );
        assert_eq!(
            kind("ns/t/things/live/events/modified"),
            Some(Kind::LiveEvents)
        );
        assert_eq!(
            kind("ns/t/things/live/commands/modify"),
            Some(Kind::LiveCommands)
        );
        assert_eq!(
            kind("ns/t/things/live/messages/ask"),
            Some(Kind::LiveMessages)
        );
        assert_eq!(
            kind("ns/p/policies/announcements/subjectDeletion"),
            Some(Kind::PolicyAnnouncements)
        );
        assert_eq!(
            kind("_/conn-1/connections/announcements/opened"),
            Some(Kind::ConnectionAnnouncements)
        );
        assert_eq!(kind("ns/t/things/twin/commands/modify"), None);
        for k in Kind::ALL {
            assert_eq!(Kind::from_target_topic(k.target_topic()), Some(k));
        }
    }

    #[test]
    fn kind_sets() {
        let set = Kinds::from([Kind::LiveMessages, Kind::TwinEvents]);
        assert!(set.contains(Kind::TwinEvents));
        assert!(!set.contains(Kind::LiveEvents));
        assert_eq!(
            set.iter().collect::<Vec<_>>(),
            [Kind::TwinEvents, Kind::LiveMessages]
        );
        assert!(Kinds::empty().is_empty());
    }

    #[test]
    fn an_invalid_filter_is_a_ditto_error() {
        let sub = Subscription::new(
            SubscriberId::new("ws-1", "events"),
            AuthContext::none(),
            Kind::TwinEvents,
        );
        let err = sub.with_filter("eq(attributes/x").unwrap_err();
        assert_eq!((err.status, err.code()), (400, "rql.expression.invalid"));
    }
}
