//! Topic paths, `{namespace}/{name}/{group}/{channel}/{criterion}/{action}`, as
//! docs/protocol-specification-topic.md describes them: parsed into their parts, validated, and
//! formatted back exactly.

use crate::acks::AckLabel;
use crate::error::ProtocolError;
use crate::id::{
    is_valid_connection_id, is_valid_name, is_valid_namespace, MAX_ID_LENGTH, WILDCARD,
};
use std::fmt;

/// The entity type a topic addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Group {
    Things,
    Policies,
    Connections,
}

impl Group {
    pub fn as_str(self) -> &'static str {
        match self {
            Group::Things => "things",
            Group::Policies => "policies",
            Group::Connections => "connections",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "things" => Group::Things,
            "policies" => Group::Policies,
            "connections" => Group::Connections,
            _ => return None,
        })
    }
}

/// Twin (the persisted twin), live (the device) or none (policies, connections, search errors).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Channel {
    Twin,
    Live,
    None,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Twin => "twin",
            Channel::Live => "live",
            Channel::None => "none",
        }
    }
}

/// The action of a `commands` topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandAction {
    Create,
    Retrieve,
    Modify,
    Merge,
    Delete,
    Migrate,
}

impl CommandAction {
    pub const ALL: [CommandAction; 6] = [
        CommandAction::Create,
        CommandAction::Retrieve,
        CommandAction::Modify,
        CommandAction::Merge,
        CommandAction::Delete,
        CommandAction::Migrate,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CommandAction::Create => "create",
            CommandAction::Retrieve => "retrieve",
            CommandAction::Modify => "modify",
            CommandAction::Merge => "merge",
            CommandAction::Delete => "delete",
            CommandAction::Migrate => "migrate",
        }
    }
}

/// The action of an `events` topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventAction {
    Created,
    Modified,
    Merged,
    Deleted,
    Migrated,
}

impl EventAction {
    pub const ALL: [EventAction; 5] = [
        EventAction::Created,
        EventAction::Modified,
        EventAction::Merged,
        EventAction::Deleted,
        EventAction::Migrated,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventAction::Created => "created",
            EventAction::Modified => "modified",
            EventAction::Merged => "merged",
            EventAction::Deleted => "deleted",
            EventAction::Migrated => "migrated",
        }
    }
}

/// The action of a `search` topic (docs/protocol-specification-things-search.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchAction {
    Subscribe,
    Request,
    Cancel,
    Created,
    Next,
    Complete,
    Failed,
    /// `error`, as Ditto's code writes a search error's topic.
    Error,
    /// `errors`, as Ditto's documentation examples spell it; read and written back as received.
    Errors,
}

impl SearchAction {
    pub const ALL: [SearchAction; 9] = [
        SearchAction::Subscribe,
        SearchAction::Request,
        SearchAction::Cancel,
        SearchAction::Created,
        SearchAction::Next,
        SearchAction::Complete,
        SearchAction::Failed,
        SearchAction::Error,
        SearchAction::Errors,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SearchAction::Subscribe => "subscribe",
            SearchAction::Request => "request",
            SearchAction::Cancel => "cancel",
            SearchAction::Created => "created",
            SearchAction::Next => "next",
            SearchAction::Complete => "complete",
            SearchAction::Failed => "failed",
            SearchAction::Error => "error",
            SearchAction::Errors => "errors",
        }
    }
}

/// The action of a `streaming` topic (docs/protocol-specification-streaming-subscription.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamingAction {
    SubscribeForPersistedEvents,
    Request,
    Cancel,
    Created,
    Next,
    Complete,
    Failed,
    Error,
}

impl StreamingAction {
    pub const ALL: [StreamingAction; 8] = [
        StreamingAction::SubscribeForPersistedEvents,
        StreamingAction::Request,
        StreamingAction::Cancel,
        StreamingAction::Created,
        StreamingAction::Next,
        StreamingAction::Complete,
        StreamingAction::Failed,
        StreamingAction::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StreamingAction::SubscribeForPersistedEvents => "subscribeForPersistedEvents",
            StreamingAction::Request => "request",
            StreamingAction::Cancel => "cancel",
            StreamingAction::Created => "created",
            StreamingAction::Next => "next",
            StreamingAction::Complete => "complete",
            StreamingAction::Failed => "failed",
            StreamingAction::Error => "error",
        }
    }
}

/// What the message does, with the action that belongs to that criterion.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Criterion {
    Commands(CommandAction),
    Events(EventAction),
    Search(SearchAction),
    Streaming(StreamingAction),
    /// A live message; the action is its subject, which may contain slashes.
    Messages(String),
    Errors,
    /// A single acknowledgement (with its label) or aggregated acknowledgements (without).
    Acks(Option<AckLabel>),
    /// An announcement, with its name (`subjectDeletion`, `opened`, `closed`).
    Announcements(String),
}

impl Criterion {
    pub fn name(&self) -> &'static str {
        match self {
            Criterion::Commands(_) => "commands",
            Criterion::Events(_) => "events",
            Criterion::Search(_) => "search",
            Criterion::Streaming(_) => "streaming",
            Criterion::Messages(_) => "messages",
            Criterion::Errors => "errors",
            Criterion::Acks(_) => "acks",
            Criterion::Announcements(_) => "announcements",
        }
    }

    /// The action segment(s), if the criterion has one.
    pub fn action(&self) -> Option<&str> {
        match self {
            Criterion::Commands(a) => Some(a.as_str()),
            Criterion::Events(a) => Some(a.as_str()),
            Criterion::Search(a) => Some(a.as_str()),
            Criterion::Streaming(a) => Some(a.as_str()),
            Criterion::Messages(s) | Criterion::Announcements(s) => Some(s),
            Criterion::Acks(label) => label.as_ref().map(AckLabel::as_str),
            Criterion::Errors => None,
        }
    }
}

/// A parsed topic path.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Topic {
    /// The namespace, or `_` for none (search, retrieveThings, connections).
    pub namespace: String,
    /// The entity name, or `_` for "any" (search, retrieveThings); a connection's ID for connections.
    pub name: String,
    pub group: Group,
    pub channel: Channel,
    pub criterion: Criterion,
}

impl Topic {
    /// Parses and validates a topic path.
    pub fn parse(topic: &str) -> Result<Topic, ProtocolError> {
        let unknown = |reason: String| ProtocolError::UnknownTopic {
            topic: topic.to_owned(),
            reason,
        };
        let mut parts = topic.splitn(4, '/');
        let namespace = parts.next().unwrap_or_default();
        let name = parts
            .next()
            .ok_or_else(|| unknown("The topic path has no entity name part.".into()))?;
        let group_name = parts
            .next()
            .ok_or_else(|| unknown("The topic path has no group part.".into()))?;
        let rest = parts
            .next()
            .ok_or_else(|| unknown("The topic path has no criterion part.".into()))?;
        let group = Group::parse(group_name)
            .ok_or_else(|| unknown(format!("Group name <{group_name}> is unknown.")))?;

        let (channel, rest) = match (group, rest.split_once('/')) {
            (Group::Things, Some(("twin", rest))) => (Channel::Twin, rest),
            (Group::Things, Some(("live", rest))) => (Channel::Live, rest),
            (Group::Things, None) if rest == "twin" || rest == "live" => {
                return Err(unknown("The topic path has no criterion part.".into()))
            }
            _ => (Channel::None, rest),
        };
        let (criterion_name, action) = match rest.split_once('/') {
            Some((c, a)) => (c, Some(a)),
            None => (rest, None),
        };
        let need_action = |what: &str| {
            action
                .filter(|a| !a.is_empty())
                .ok_or_else(|| unknown(format!("The topic path has no {what} part.")))
        };
        let criterion = match criterion_name {
            "commands" => {
                let a = need_action("action")?;
                Criterion::Commands(
                    CommandAction::ALL
                        .into_iter()
                        .find(|c| c.as_str() == a)
                        .ok_or_else(|| unknown(format!("Action name <{a}> is unknown.")))?,
                )
            }
            "events" => {
                let a = need_action("action")?;
                Criterion::Events(
                    EventAction::ALL
                        .into_iter()
                        .find(|c| c.as_str() == a)
                        .ok_or_else(|| unknown(format!("Action name <{a}> is unknown.")))?,
                )
            }
            "search" => {
                let a = need_action("search action")?;
                Criterion::Search(
                    SearchAction::ALL
                        .into_iter()
                        .find(|c| c.as_str() == a)
                        .ok_or_else(|| unknown(format!("Search action name <{a}> is unknown.")))?,
                )
            }
            "streaming" => {
                let a = need_action("streaming action")?;
                Criterion::Streaming(
                    StreamingAction::ALL
                        .into_iter()
                        .find(|c| c.as_str() == a)
                        .ok_or_else(|| {
                            unknown(format!("Streaming action name <{a}> is unknown."))
                        })?,
                )
            }
            "errors" if action.is_none() => Criterion::Errors,
            "errors" => return Err(unknown("An errors topic has no action.".into())),
            "messages" => {
                let subject = need_action("message subject")?;
                if !is_valid_subject(subject) {
                    return Err(ProtocolError::SubjectInvalid {
                        subject: subject.to_owned(),
                    });
                }
                Criterion::Messages(subject.to_owned())
            }
            "acks" => Criterion::Acks(match action {
                None => None,
                Some(label) => Some(AckLabel::parse(label)?),
            }),
            "announcements" => {
                let name = need_action("announcement name")?;
                if name.contains('/') {
                    return Err(unknown(format!("Announcement name <{name}> is invalid.")));
                }
                Criterion::Announcements(name.to_owned())
            }
            other => return Err(unknown(format!("Criterion name <{other}> is unknown."))),
        };
        let parsed = Topic {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
            group,
            channel,
            criterion,
        };
        parsed.check_form().map_err(unknown)?;
        parsed.check_entity()?;
        Ok(parsed)
    }

    /// Which criteria go with which group and channel.
    fn check_form(&self) -> Result<(), String> {
        let allowed = match (self.group, &self.criterion) {
            (
                Group::Things,
                Criterion::Commands(_)
                | Criterion::Events(_)
                | Criterion::Errors
                | Criterion::Acks(_),
            ) => self.channel != Channel::None,
            (Group::Things, Criterion::Search(_)) => self.channel != Channel::Live,
            (Group::Things, Criterion::Streaming(_)) => self.channel == Channel::Twin,
            (Group::Things, Criterion::Messages(_)) => self.channel == Channel::Live,
            (Group::Things, Criterion::Announcements(_)) => false,
            (
                Group::Policies,
                Criterion::Commands(_)
                | Criterion::Events(_)
                | Criterion::Errors
                | Criterion::Announcements(_),
            ) => true,
            // Acknowledgements of announcements that request them (docs/basic-policy.md).
            (Group::Policies, Criterion::Acks(_)) => self.channel == Channel::None,
            (Group::Connections, Criterion::Announcements(_) | Criterion::Errors) => true,
            _ => false,
        };
        if allowed {
            Ok(())
        } else {
            let channel = match self.channel {
                Channel::None => "no channel".to_owned(),
                c => format!("the {} channel", c.as_str()),
            };
            Err(format!(
                "The criterion <{}> is not supported for the group <{}> with {channel}.",
                self.criterion.name(),
                self.group.as_str()
            ))
        }
    }

    /// Namespace and name: a namespaced ID for things and policies, `_/<connection ID>` for connections.
    fn check_entity(&self) -> Result<(), ProtocolError> {
        let id = || format!("{}:{}", self.namespace, self.name);
        match self.group {
            Group::Connections => {
                if self.namespace != WILDCARD || !is_valid_connection_id(&self.name) {
                    return Err(ProtocolError::ConnectionIdInvalid {
                        id: self.name.clone(),
                    });
                }
            }
            Group::Things | Group::Policies => {
                let ns_ok = self.namespace == WILDCARD || is_valid_namespace(&self.namespace);
                let name_ok = is_valid_name(&self.name);
                if !ns_ok || !name_ok || id().chars().count() > MAX_ID_LENGTH {
                    return Err(if self.group == Group::Things {
                        ProtocolError::ThingIdInvalid { id: id() }
                    } else {
                        ProtocolError::PolicyIdInvalid { id: id() }
                    });
                }
            }
        }
        Ok(())
    }

    /// True for `_` entity names: search, retrieveThings and other signals about many entities.
    pub fn is_wildcard(&self) -> bool {
        self.name == WILDCARD
    }

    /// The `namespace:name` entity ID the topic addresses.
    pub fn entity_id(&self) -> String {
        format!("{}:{}", self.namespace, self.name)
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}/{}/{}",
            self.namespace,
            self.name,
            self.group.as_str()
        )?;
        if self.channel != Channel::None {
            write!(f, "/{}", self.channel.as_str())?;
        }
        write!(f, "/{}", self.criterion.name())?;
        if let Some(action) = self.criterion.action() {
            write!(f, "/{action}")?;
        }
        Ok(())
    }
}

/// A message subject conforms to RFC 3986: non-empty, only URI characters, `%` followed by two
/// hex digits.
pub fn is_valid_subject(subject: &str) -> bool {
    let bytes = subject.as_bytes();
    if bytes.is_empty() {
        return false;
    }
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            if !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
            {
                return false;
            }
            i += 3;
            continue;
        }
        if !(b.is_ascii_alphanumeric() || b"-._~:/?#[]@!$&'()*+,;=".contains(&b)) {
            return false;
        }
        i += 1;
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(s: &str) -> Topic {
        let t = Topic::parse(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        assert_eq!(t.to_string(), s);
        t
    }

    #[test]
    fn every_documented_form_parses_and_formats_back() {
        for s in [
            "org.eclipse.ditto/fancy-car-1/things/twin/commands/create",
            "org.eclipse.ditto/fancy-car-23/things/twin/commands/merge",
            "org.eclipse.ditto/fancy-car-0815/things/live/events/modified",
            "org.eclipse.ditto/fancy-car-42/things/live/messages/hello.world",
            "org.eclipse.ditto/fancy-policy-1/policies/commands/create",
            "org.eclipse.ditto/fancy-policy-1/policies/commands/delete",
            "org.eclipse.ditto/fancy-policy-1/policies/announcements/subjectDeletion",
            "org.eclipse.ditto/fancy-policy-1/policies/errors",
            "org.eclipse.ditto/thing/things/twin/errors",
            "org.eclipse.ditto/thing/things/live/acks/my-custom-ack",
            "org.eclipse.ditto/thing/things/twin/acks",
            "org.eclipse.ditto/thing/things/live/messages/ask/question",
            "_/_/things/twin/search/subscribe",
            "_/_/things/search/errors",
            "_/_/things/search/error",
            "_/_/things/twin/commands/retrieve",
            "org.eclipse.ditto/thing/things/twin/streaming/subscribeForPersistedEvents",
            "_/the_connection_id/connections/announcements/opened",
        ] {
            round_trip(s);
        }
    }

    #[test]
    fn parts_are_typed() {
        let t = round_trip("org.eclipse.ditto/fancy-car-42/things/live/messages/hello.world");
        assert_eq!(t.group, Group::Things);
        assert_eq!(t.channel, Channel::Live);
        assert_eq!(t.criterion, Criterion::Messages("hello.world".into()));
        assert_eq!(t.entity_id(), "org.eclipse.ditto:fancy-car-42");
        let t = round_trip("org.eclipse.ditto/p/policies/commands/modify");
        assert_eq!(
            (t.channel, t.criterion),
            (Channel::None, Criterion::Commands(CommandAction::Modify))
        );
    }

    #[test]
    fn bad_topics_are_refused_with_the_right_code() {
        let code = |s: &str| Topic::parse(s).unwrap_err().code();
        assert_eq!(
            code("ns/name/widgets/twin/commands/modify"),
            "protocoladapter:unknown.topicpath"
        );
        assert_eq!(
            code("ns/name/things/twin/commands/explode"),
            "protocoladapter:unknown.topicpath"
        );
        assert_eq!(
            code("ns/name/things/twin/commands"),
            "protocoladapter:unknown.topicpath"
        );
        assert_eq!(
            code("ns/name/things/twin"),
            "protocoladapter:unknown.topicpath"
        );
        assert_eq!(code("ns/name"), "protocoladapter:unknown.topicpath");
        assert_eq!(code(""), "protocoladapter:unknown.topicpath");
        assert_eq!(
            code("ns/name/things/commands/modify"),
            "protocoladapter:unknown.topicpath"
        );
        assert_eq!(
            code("ns/name/things/twin/messages/hi"),
            "protocoladapter:unknown.topicpath"
        );
        assert_eq!(
            code("ns/name/policies/twin/commands/modify"),
            "protocoladapter:unknown.topicpath"
        );
        assert_eq!(
            code("1ns/name/things/twin/commands/modify"),
            "things:id.invalid"
        );
        assert_eq!(
            code("ns/n\u{1}/policies/commands/modify"),
            "policies:id.invalid"
        );
        assert_eq!(
            code("ns/name/things/twin/acks/ab"),
            "acknowledgement:label.invalid"
        );
        assert_eq!(
            code("ns/name/things/live/messages/a b"),
            "messages:subject.invalid"
        );
        assert_eq!(
            code("x/conn/connections/announcements/opened"),
            "connectivity:connection.id.invalid"
        );
    }

    #[test]
    fn subjects_follow_rfc_3986() {
        assert!(is_valid_subject("ask/question"));
        assert!(is_valid_subject("a%20b"));
        assert!(!is_valid_subject("a%2"));
        assert!(!is_valid_subject("a b"));
        assert!(!is_valid_subject(""));
    }
}
