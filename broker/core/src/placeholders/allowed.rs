//! The placeholder prefixes of the catalogue (checklist §3.2) and the sets of them each location of
//! a connection allows (checklist §3.5).

use std::borrow::Cow;
use std::fmt;

/// A placeholder prefix, the part before the `:`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Prefix {
    /// `entity:id|namespace|name`: the thing or policy of the signal.
    Entity,
    /// `thing:id|namespace|name`.
    Thing,
    /// `thing-json:<json-pointer>`: a value of the thing JSON.
    ThingJson,
    /// `feature:id`: the feature(s) of the signal.
    Feature,
    /// `policy:id|namespace|name` (enforcement filters only in connections).
    Policy,
    /// `policy-entry:label` (policy actions only).
    PolicyEntry,
    /// `connection:id`.
    Connection,
    /// `header:<name>`, case-insensitive.
    Header,
    /// `topic:full|namespace|entityName|group|channel|criterion|action|subject|action-subject`.
    Topic,
    /// `resource:type|path`.
    Resource,
    /// `request:subjectId`.
    Request,
    /// `time:now` and `time:now_epoch_millis`, with optional offset and truncation.
    Time,
    /// `source:address`.
    Source,
    /// `jwt:<claim-pointer>`.
    Jwt,
}

const ID_PARTS: &[&str] = &["id", "namespace", "name"];
const TOPIC_NAMES: &[&str] = &[
    "full",
    "namespace",
    "entityName",
    "group",
    "channel",
    "criterion",
    "action",
    "subject",
    "action-subject",
];

impl Prefix {
    /// Every prefix of the catalogue.
    pub const ALL: [Prefix; 14] = [
        Prefix::Entity,
        Prefix::Thing,
        Prefix::ThingJson,
        Prefix::Feature,
        Prefix::Policy,
        Prefix::PolicyEntry,
        Prefix::Connection,
        Prefix::Header,
        Prefix::Topic,
        Prefix::Resource,
        Prefix::Request,
        Prefix::Time,
        Prefix::Source,
        Prefix::Jwt,
    ];

    /// The prefix as written before the `:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Prefix::Entity => "entity",
            Prefix::Thing => "thing",
            Prefix::ThingJson => "thing-json",
            Prefix::Feature => "feature",
            Prefix::Policy => "policy",
            Prefix::PolicyEntry => "policy-entry",
            Prefix::Connection => "connection",
            Prefix::Header => "header",
            Prefix::Topic => "topic",
            Prefix::Resource => "resource",
            Prefix::Request => "request",
            Prefix::Time => "time",
            Prefix::Source => "source",
            Prefix::Jwt => "jwt",
        }
    }

    /// The prefix written `s`, if it is one of the catalogue (case-sensitive, as Ditto).
    pub fn parse(s: &str) -> Option<Prefix> {
        Prefix::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// The fixed names of the prefix, or `None` when any name is accepted (`header:`,
    /// `thing-json:`, `jwt:`). For `time:` these are the base names; an offset and a truncation
    /// may follow them.
    pub fn names(self) -> Option<&'static [&'static str]> {
        Some(match self {
            Prefix::Entity | Prefix::Thing | Prefix::Policy => ID_PARTS,
            Prefix::Feature | Prefix::Connection => &["id"],
            Prefix::PolicyEntry => &["label"],
            Prefix::Topic => TOPIC_NAMES,
            Prefix::Resource => &["type", "path"],
            Prefix::Request => &["subjectId"],
            Prefix::Time => &["now", "now_epoch_millis"],
            Prefix::Source => &["address"],
            Prefix::Header | Prefix::ThingJson | Prefix::Jwt => return None,
        })
    }

    /// What the name after the prefix is, for messages: `header:<name>`, `thing:id`, ….
    pub(crate) fn forms(self) -> String {
        match self {
            Prefix::Header => "header:<name>".to_owned(),
            Prefix::ThingJson => "thing-json:<json-pointer>".to_owned(),
            Prefix::Jwt => "jwt:<claim-pointer>".to_owned(),
            Prefix::Time => "time:now, time:now_epoch_millis (optionally followed by \
                             ±<n><unit> and [<unit>], units ms s m h d w mo y)"
                .to_owned(),
            p => p
                .names()
                .unwrap_or_default()
                .iter()
                .map(|n| format!("{}:{n}", p.as_str()))
                .collect::<Vec<_>>()
                .join(", "),
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The placeholders connections offer in general (docs "Scope: Connections" as the code
/// registers them, checklist §3.5 "all connection placeholders"): `policy:` is not among them,
/// `entity:` stands for it.
const CONNECTION: &[Prefix] = &[
    Prefix::Header,
    Prefix::Entity,
    Prefix::Thing,
    Prefix::ThingJson,
    Prefix::Feature,
    Prefix::Topic,
    Prefix::Resource,
    Prefix::Time,
    Prefix::Request,
    Prefix::Connection,
];

/// The MQTT 3.1.1 headers, the only ones that protocol has.
const MQTT3_HEADERS: &[&str] = &["mqtt.topic", "mqtt.qos", "mqtt.retain"];

/// The placeholders a location allows: a set of prefixes, optionally with the header names
/// restricted, and the location's name for error messages.
///
/// The constructors are the locations of checklist §3.5; [`Allowed::new`] builds others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    location: Cow<'static, str>,
    prefixes: u16,
    header_names: Option<&'static [&'static str]>,
}

impl Allowed {
    /// The prefixes `prefixes` at the location called `location` (used in error messages).
    pub fn new(location: impl Into<Cow<'static, str>>, prefixes: &[Prefix]) -> Self {
        Allowed {
            location: location.into(),
            prefixes: prefixes.iter().fold(0, |bits, p| bits | p.bit()),
            header_names: None,
        }
    }

    /// Only these header names (compared case-insensitively) for `header:`.
    pub fn with_header_names(mut self, names: &'static [&'static str]) -> Self {
        self.header_names = Some(names);
        self
    }

    /// Every prefix of the catalogue, anywhere.
    pub fn everything() -> Self {
        Allowed::new("any location", &Prefix::ALL)
    }

    /// Nothing: only constants and functions without placeholders.
    pub fn nothing(location: impl Into<Cow<'static, str>>) -> Self {
        Allowed::new(location, &[])
    }

    /// `sources[].authorizationContext`: the transport headers.
    pub fn source_authorization_context() -> Self {
        Allowed::new("sources[].authorizationContext", &[Prefix::Header])
    }

    /// `sources[].enforcement.input` of AMQP 0.9.1, AMQP 1.0, Kafka and HTTP: the transport
    /// headers.
    pub fn enforcement_input() -> Self {
        Allowed::new("sources[].enforcement.input", &[Prefix::Header])
    }

    /// `sources[].enforcement.input` of MQTT 3.1.1: `source:address` only.
    pub fn enforcement_input_mqtt3() -> Self {
        Allowed::new(
            "sources[].enforcement.input (MQTT 3.1.1)",
            &[Prefix::Source],
        )
    }

    /// `sources[].enforcement.input` of MQTT 5: `source:address` and the headers.
    pub fn enforcement_input_mqtt5() -> Self {
        Allowed::new(
            "sources[].enforcement.input (MQTT 5)",
            &[Prefix::Source, Prefix::Header],
        )
    }

    /// `sources[].enforcement.filters`: `thing:`, `entity:` and `policy:`.
    pub fn enforcement_filters() -> Self {
        Allowed::new(
            "sources[].enforcement.filters",
            &[Prefix::Thing, Prefix::Entity, Prefix::Policy],
        )
    }

    /// `sources[].enforcement.filters` of AMQP 0.9.1 and Kafka: also `feature:id`.
    pub fn enforcement_filters_with_feature() -> Self {
        Allowed::new(
            "sources[].enforcement.filters",
            &[
                Prefix::Thing,
                Prefix::Entity,
                Prefix::Policy,
                Prefix::Feature,
            ],
        )
    }

    /// `sources[].headerMapping` values: all connection placeholders.
    pub fn source_header_mapping() -> Self {
        Allowed::new("sources[].headerMapping", CONNECTION)
    }

    /// `sources[].headerMapping` values of MQTT 3.1.1: constants, or `header:mqtt.topic`,
    /// `header:mqtt.qos`, `header:mqtt.retain`.
    pub fn source_header_mapping_mqtt3() -> Self {
        Allowed::new("sources[].headerMapping (MQTT 3.1.1)", &[Prefix::Header])
            .with_header_names(MQTT3_HEADERS)
    }

    /// `sources[].acknowledgementRequests.filter`: the external headers.
    pub fn acknowledgement_request_filter() -> Self {
        Allowed::new(
            "sources[].acknowledgementRequests.filter",
            &[Prefix::Header],
        )
    }

    /// `sources[].declaredAcks`, `targets[].issuedAcknowledgementLabel` and
    /// `acknowledgementRequests.includes`: `connection:id` only.
    pub fn acknowledgement_label() -> Self {
        Allowed::new("acknowledgement labels", &[Prefix::Connection])
    }

    /// `sources[].replyTarget.address` and `.headerMapping`: all connection placeholders, over
    /// the response.
    pub fn reply_target() -> Self {
        Allowed::new("sources[].replyTarget", CONNECTION)
    }

    /// `targets[].address`: all connection placeholders.
    pub fn target_address() -> Self {
        Allowed::new("targets[].address", CONNECTION)
    }

    /// `targets[].headerMapping` values: all connection placeholders. (For MQTT 3.1.1 the keys
    /// are limited, which is the caller's check; the values may use any of these.)
    pub fn target_header_mapping() -> Self {
        Allowed::new("targets[].headerMapping", CONNECTION)
    }

    /// `targets[].topics` `extraFields`: all connection placeholders.
    pub fn extra_fields() -> Self {
        Allowed::new("targets[].topics extraFields", CONNECTION)
    }

    /// `targets[].topics` `filter` (RQL, placeholders without braces): `topic:`, `resource:`,
    /// `time:`, `thing:`, `entity:`, `feature:`.
    pub fn topic_filter() -> Self {
        Allowed::new(
            "targets[].topics filter",
            &[
                Prefix::Topic,
                Prefix::Resource,
                Prefix::Time,
                Prefix::Thing,
                Prefix::Entity,
                Prefix::Feature,
            ],
        )
    }

    /// Kafka `specificConfig.groupId`: `connection:id`.
    pub fn kafka_group_id() -> Self {
        Allowed::new("specificConfig.groupId", &[Prefix::Connection])
    }

    /// Mapper options (`ConnectionStatus.thingId`/`featureId`, `RawMessage`
    /// `incomingMessageHeaders`): the headers.
    pub fn mapper_options() -> Self {
        Allowed::new("mapping options", &[Prefix::Header])
    }

    /// Mapper options of `ImplicitThingCreation` and `UpdateTwinWithLiveResponse`: the headers,
    /// `request:subjectId` and `time:`.
    pub fn mapper_options_with_request_and_time() -> Self {
        Allowed::new(
            "mapping options",
            &[Prefix::Header, Prefix::Request, Prefix::Time],
        )
    }

    /// `incomingConditions`: the external headers and the connection placeholders.
    pub fn conditions_inbound() -> Self {
        Allowed::new("incomingConditions", CONNECTION)
    }

    /// `outgoingConditions`: the placeholders of the outbound signal.
    pub fn conditions_outbound() -> Self {
        Allowed::new("outgoingConditions", CONNECTION)
    }

    /// OpenID Connect subject templates: `jwt:`.
    pub fn jwt_subjects() -> Self {
        Allowed::new("OpenID Connect subjects", &[Prefix::Jwt])
    }

    /// Policy actions: `header:`, `jwt:`, `policy-entry:`, `time:`.
    pub fn policy_actions() -> Self {
        Allowed::new(
            "policy actions",
            &[
                Prefix::Header,
                Prefix::Jwt,
                Prefix::PolicyEntry,
                Prefix::Time,
            ],
        )
    }

    /// Creating or modifying things and policies: `request:` and `time:`.
    pub fn entity_creation() -> Self {
        Allowed::new(
            "entity creation/modification",
            &[Prefix::Request, Prefix::Time],
        )
    }

    /// Signal enrichment of WebSocket and SSE (`extraFields`).
    pub fn signal_enrichment() -> Self {
        Allowed::new(
            "signal enrichment",
            &[
                Prefix::Entity,
                Prefix::Thing,
                Prefix::Policy,
                Prefix::Feature,
                Prefix::Header,
                Prefix::Request,
                Prefix::Resource,
                Prefix::Topic,
                Prefix::Time,
            ],
        )
    }

    /// The location's name, as error messages give it.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// True if the prefix may be used here.
    pub fn allows(&self, prefix: Prefix) -> bool {
        self.prefixes & prefix.bit() != 0
    }

    /// The header names `header:` is limited to, if it is.
    pub fn header_names(&self) -> Option<&'static [&'static str]> {
        self.header_names
    }

    /// The prefixes allowed here, in catalogue order.
    pub fn prefixes(&self) -> impl Iterator<Item = Prefix> + '_ {
        Prefix::ALL.into_iter().filter(|p| self.allows(*p))
    }

    /// The allowed placeholders in words, for error descriptions.
    pub(crate) fn describe(&self) -> String {
        let mut forms: Vec<String> = Vec::new();
        for p in self.prefixes() {
            match (p, self.header_names) {
                (Prefix::Header, Some(names)) => {
                    forms.extend(names.iter().map(|n| format!("header:{n}")))
                }
                _ => forms.push(p.forms()),
            }
        }
        if forms.is_empty() {
            "no placeholders (only constants)".to_owned()
        } else {
            forms.join(", ")
        }
    }
}
