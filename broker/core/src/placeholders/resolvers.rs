//! Ready-made [`Resolver`]s: [`SignalResolver`] for a Ditto Protocol signal in a connection (plus
//! the external message around it), [`JwtResolver`] for JWT claims.

use super::allowed::Prefix;
use super::placeholder::{system_now_millis, Placeholder, Resolver, Values};
use serde_json::Value;
use std::borrow::Cow;
use twinwire_protocol::{Criterion, Envelope, Group, Headers};

/// Resolves the connection placeholders for a signal and/or an external message.
///
/// - `header:` reads the external (transport) headers if set, otherwise the signal's Ditto
///   headers; names are case-insensitive.
/// - `entity:`, `thing:`, `policy:`, `topic:`, `resource:`, `feature:` come from the envelope.
///   `entity:` is the thing or policy of the topic (not `_` wildcards, not connections);
///   `thing:` only for things, `policy:` only for policies.
/// - `feature:id` is the feature of a path `/features/<id>/…` (also messages to a feature); for a
///   change at `/features` every key of the object value, and for a whole thing (path `/`) every
///   feature of its `features` (multi-valued). Other signals have none.
/// - `topic:action` is the action of commands, events, search and streaming; `topic:subject` is
///   the subject of messages, the label of acknowledgements and the name of announcements (as
///   Ditto's topic path has them); `topic:action-subject` is the subject if there is one, else
///   the action. `topic:channel` of policies and connections is `none`, as in Ditto.
/// - `resource:type` is `message` for thing messages, else `thing`, `policy` or `connection`;
///   `resource:path` the envelope path (`/` for the root).
/// - `connection:id`, `request:subjectId`, `source:address` and `thing-json:` from what was set.
/// - `time:` uses the system clock, or the time fixed with [`SignalResolver::at_time`].
#[derive(Debug, Clone, Copy, Default)]
pub struct SignalResolver<'a> {
    envelope: Option<&'a Envelope>,
    connection_id: Option<&'a str>,
    request_subject: Option<&'a str>,
    external_headers: Option<&'a Headers>,
    source_address: Option<&'a str>,
    thing_json: Option<&'a Value>,
    now_millis: Option<i64>,
}

impl<'a> SignalResolver<'a> {
    /// A resolver that resolves nothing yet (but `time:`).
    pub fn new() -> Self {
        SignalResolver::default()
    }

    /// A resolver for a signal.
    pub fn for_signal(envelope: &'a Envelope) -> Self {
        SignalResolver::new().envelope(envelope)
    }

    /// A resolver for an external message before it became a signal (authorization context,
    /// enforcement input, acknowledgement filter, incoming conditions).
    pub fn for_external(headers: &'a Headers) -> Self {
        SignalResolver::new().external_headers(headers)
    }

    pub fn envelope(mut self, envelope: &'a Envelope) -> Self {
        self.envelope = Some(envelope);
        self
    }

    pub fn connection_id(mut self, id: &'a str) -> Self {
        self.connection_id = Some(id);
        self
    }

    /// The first authenticated subject of the request, for `request:subjectId`.
    pub fn request_subject(mut self, subject: &'a str) -> Self {
        self.request_subject = Some(subject);
        self
    }

    /// The transport headers; `header:` then reads these instead of the Ditto headers.
    pub fn external_headers(mut self, headers: &'a Headers) -> Self {
        self.external_headers = Some(headers);
        self
    }

    pub fn source_address(mut self, address: &'a str) -> Self {
        self.source_address = Some(address);
        self
    }

    /// The thing for `thing-json:` (in connections, the thing rebuilt from event and extra).
    pub fn thing_json(mut self, thing: &'a Value) -> Self {
        self.thing_json = Some(thing);
        self
    }

    /// Fixes the clock of `time:` placeholders (milliseconds since the epoch).
    pub fn at_time(mut self, now_millis: i64) -> Self {
        self.now_millis = Some(now_millis);
        self
    }

    fn entity(&self, group_wanted: Option<Group>, name: &str) -> Values<'a> {
        let Some(env) = self.envelope else {
            return Values::None;
        };
        let topic = &env.topic;
        let group_ok = match group_wanted {
            Some(g) => topic.group == g,
            None => matches!(topic.group, Group::Things | Group::Policies),
        };
        if !group_ok || topic.is_wildcard() {
            return Values::None;
        }
        match name {
            "id" => Values::from(topic.entity_id()),
            "namespace" => Values::from(topic.namespace.as_str()),
            "name" => Values::from(topic.name.as_str()),
            _ => Values::None,
        }
    }

    fn topic(&self, name: &str) -> Values<'a> {
        let Some(env) = self.envelope else {
            return Values::None;
        };
        let topic = &env.topic;
        let action = match &topic.criterion {
            Criterion::Commands(_)
            | Criterion::Events(_)
            | Criterion::Search(_)
            | Criterion::Streaming(_) => topic.criterion.action(),
            _ => None,
        };
        let subject = match &topic.criterion {
            Criterion::Messages(_) | Criterion::Acks(_) | Criterion::Announcements(_) => {
                topic.criterion.action()
            }
            _ => None,
        };
        match name {
            "full" => Values::from(topic.to_string()),
            "namespace" => Values::from(topic.namespace.as_str()),
            "entityName" => Values::from(topic.name.as_str()),
            "group" => Values::from(topic.group.as_str()),
            "channel" => Values::from(topic.channel.as_str()),
            "criterion" => Values::from(topic.criterion.name()),
            "action" => Values::from(action),
            "subject" => Values::from(subject),
            "action-subject" => Values::from(subject.or(action)),
            _ => Values::None,
        }
    }

    fn resource(&self, name: &str) -> Values<'a> {
        let Some(env) = self.envelope else {
            return Values::None;
        };
        match name {
            "type" => Values::from(match (env.topic.group, &env.topic.criterion) {
                (Group::Things, Criterion::Messages(_)) => "message",
                (Group::Things, _) => "thing",
                (Group::Policies, _) => "policy",
                (Group::Connections, _) => "connection",
            }),
            "path" => Values::from(env.path.to_string()),
            _ => Values::None,
        }
    }

    fn features(&self) -> Values<'a> {
        let Some(env) = self.envelope else {
            return Values::None;
        };
        if env.topic.group != Group::Things {
            return Values::None;
        }
        let keys = |v: Option<&'a Value>| -> Values<'a> {
            v.and_then(Value::as_object)
                .map(|o| o.keys().map(|k| Cow::Borrowed(k.as_str())).collect())
                .unwrap_or_default()
        };
        let segments = env.path.segments();
        match segments {
            [] => keys(env.value.as_ref().and_then(|v| v.get("features"))),
            [first] if first == "features" => keys(env.value.as_ref()),
            [first, id, ..] if first == "features" => Values::from(id.as_str()),
            _ => Values::None,
        }
    }

    fn header(&self, name: &str) -> Values<'a> {
        let headers = match (self.external_headers, self.envelope) {
            (Some(h), _) => h,
            (None, Some(env)) => &env.headers,
            (None, None) => return Values::None,
        };
        Values::from(headers.get_str(name))
    }
}

impl Resolver for SignalResolver<'_> {
    fn resolve(&self, placeholder: &Placeholder) -> Values<'_> {
        let name = placeholder.name();
        match placeholder.prefix() {
            Prefix::Header => self.header(name),
            Prefix::Entity => self.entity(None, name),
            Prefix::Thing => self.entity(Some(Group::Things), name),
            Prefix::Policy => self.entity(Some(Group::Policies), name),
            Prefix::Feature => self.features(),
            Prefix::Topic => self.topic(name),
            Prefix::Resource => self.resource(name),
            Prefix::Connection => Values::from(self.connection_id),
            Prefix::Request => Values::from(self.request_subject),
            Prefix::Source => Values::from(self.source_address),
            Prefix::ThingJson => self
                .thing_json
                .map(|thing| json_values(thing, placeholder.pointer(), false))
                .unwrap_or_default(),
            Prefix::Time | Prefix::Jwt | Prefix::PolicyEntry => Values::None,
        }
    }

    fn now_millis(&self) -> i64 {
        self.now_millis.unwrap_or_else(system_now_millis)
    }
}

/// Resolves `jwt:<claim-pointer>` against the claims (the JWT body) as Ditto does: the pointer
/// walks through arrays (each element), a final array gives each element, strings are given
/// bare and other JSON as its text, duplicates are dropped.
#[derive(Debug, Clone, Copy)]
pub struct JwtResolver<'a> {
    claims: &'a Value,
    now_millis: Option<i64>,
}

impl<'a> JwtResolver<'a> {
    pub fn new(claims: &'a Value) -> Self {
        JwtResolver {
            claims,
            now_millis: None,
        }
    }

    /// Fixes the clock of `time:` placeholders (milliseconds since the epoch).
    pub fn at_time(mut self, now_millis: i64) -> Self {
        self.now_millis = Some(now_millis);
        self
    }
}

impl Resolver for JwtResolver<'_> {
    fn resolve(&self, placeholder: &Placeholder) -> Values<'_> {
        match placeholder.prefix() {
            Prefix::Jwt => json_values(self.claims, placeholder.pointer(), true),
            _ => Values::None,
        }
    }

    fn now_millis(&self) -> i64 {
        self.now_millis.unwrap_or_else(system_now_millis)
    }
}

/// The string values at `pointer`: an array gives its elements, strings are bare, other JSON is
/// its text. With `through_arrays`, arrays met on the way are walked element by element and
/// duplicates are dropped (JWT claims).
fn json_values<'v>(root: &'v Value, pointer: &[String], through_arrays: bool) -> Values<'v> {
    let mut out: Vec<Cow<'v, str>> = Vec::new();
    collect(root, pointer, through_arrays, &mut out);
    if through_arrays {
        let mut seen: Vec<Cow<'v, str>> = Vec::with_capacity(out.len());
        for v in out {
            if !seen.contains(&v) {
                seen.push(v);
            }
        }
        out = seen;
    }
    Values::many(out)
}

fn collect<'v>(v: &'v Value, pointer: &[String], through: bool, out: &mut Vec<Cow<'v, str>>) {
    match (pointer.split_first(), v) {
        (None, Value::Array(items)) => out.extend(items.iter().map(text)),
        (None, v) => out.push(text(v)),
        (Some((key, rest)), Value::Object(o)) => {
            if let Some(next) = o.get(key) {
                collect(next, rest, through, out);
            }
        }
        (Some(_), Value::Array(items)) if through => {
            for item in items {
                collect(item, pointer, through, out);
            }
        }
        (Some(_), _) => {}
    }
}

fn text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(s) => Cow::Borrowed(s),
        other => Cow::Owned(other.to_string()),
    }
}
