//! Classification of an envelope into its signal, named with Ditto's own signal type names
//! (`things.commands:modifyAttribute`, `things.events:thingMerged`, `policies.responses:errorResponse`,
//! `messages.commands:thingMessage`, `acknowledgement`, ...), after checking that the path is one
//! the signal has and that the value has the type the signal needs.
//!
//! Names are derived as Ditto's protocol adapter derives them: a command is its action followed
//! by the resource its path addresses (`modify` + `FeatureProperty`), an event the resource
//! followed by its action (`featureProperty` + `Modified`); merges are `mergeThing`/`thingMerged`
//! at every path. A response is a command envelope with a `status`.

use crate::envelope::Envelope;
use crate::error::{DittoError, ProtocolError};
use crate::id::{parse_policy_id, parse_thing_id};
use crate::pointer::JsonPointer;
use crate::topic::{CommandAction, Criterion, EventAction, Group, SearchAction, StreamingAction};
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// The broad kind of a signal, for dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SignalKind {
    Command,
    CommandResponse,
    Event,
    ErrorResponse,
    MessageCommand,
    MessageResponse,
    Acknowledgement,
    Acknowledgements,
    Announcement,
    SearchCommand,
    SearchEvent,
    StreamingCommand,
    StreamingEvent,
}

/// The part of a thing a path addresses (Ditto's `ThingResource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThingResource {
    Thing,
    PolicyId,
    Definition,
    Attributes,
    Attribute,
    Features,
    Feature,
    FeatureDefinition,
    FeatureProperties,
    FeatureProperty,
    FeatureDesiredProperties,
    FeatureDesiredProperty,
}

impl ThingResource {
    /// Resolves a thing path: `/`, `/policyId`, `/definition`, `/attributes[/any/depth]`,
    /// `/features[/{id}[/definition|/properties[/..]|/desiredProperties[/..]]]`.
    pub fn from_path(path: &JsonPointer) -> Option<Self> {
        let s: Vec<&str> = path.segments().iter().map(String::as_str).collect();
        Some(match s.as_slice() {
            [] => ThingResource::Thing,
            ["policyId"] => ThingResource::PolicyId,
            ["definition"] => ThingResource::Definition,
            ["attributes"] => ThingResource::Attributes,
            ["attributes", ..] => ThingResource::Attribute,
            ["features"] => ThingResource::Features,
            ["features", _] => ThingResource::Feature,
            ["features", _, "definition"] => ThingResource::FeatureDefinition,
            ["features", _, "properties"] => ThingResource::FeatureProperties,
            ["features", _, "properties", ..] => ThingResource::FeatureProperty,
            ["features", _, "desiredProperties"] => ThingResource::FeatureDesiredProperties,
            ["features", _, "desiredProperties", ..] => ThingResource::FeatureDesiredProperty,
            _ => return None,
        })
    }

    /// Ditto's resource name, the second part of a command name.
    pub fn name(self) -> &'static str {
        match self {
            ThingResource::Thing => "thing",
            ThingResource::PolicyId => "policyId",
            ThingResource::Definition => "definition",
            ThingResource::Attributes => "attributes",
            ThingResource::Attribute => "attribute",
            ThingResource::Features => "features",
            ThingResource::Feature => "feature",
            ThingResource::FeatureDefinition => "featureDefinition",
            ThingResource::FeatureProperties => "featureProperties",
            ThingResource::FeatureProperty => "featureProperty",
            ThingResource::FeatureDesiredProperties => "featureDesiredProperties",
            ThingResource::FeatureDesiredProperty => "featureDesiredProperty",
        }
    }

    /// The JSON type a full (modify, create, event) value at this resource must have.
    fn value_rule(self) -> ValueRule {
        match self {
            ThingResource::Thing
            | ThingResource::Attributes
            | ThingResource::Features
            | ThingResource::Feature
            | ThingResource::FeatureProperties
            | ThingResource::FeatureDesiredProperties => ValueRule::Object,
            ThingResource::PolicyId => ValueRule::PolicyId,
            ThingResource::Definition => ValueRule::StringOrNull,
            ThingResource::FeatureDefinition => ValueRule::FeatureDefinition,
            ThingResource::Attribute
            | ThingResource::FeatureProperty
            | ThingResource::FeatureDesiredProperty => ValueRule::Any,
        }
    }
}

/// The part of a policy a path addresses (Ditto's `PolicyResource`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyResource {
    Policy,
    PolicyImports,
    PolicyImport,
    PolicyImportEntries,
    PolicyImportTransitiveImports,
    PolicyEntries,
    PolicyEntry,
    Resources,
    Resource,
    Subjects,
    Subject,
    PolicyEntryImportable,
    PolicyEntryAllowedAdditions,
    PolicyEntryNamespaces,
    PolicyEntryReferences,
}

impl PolicyResource {
    /// Resolves a policy path. `/import/{id}` is read as `/imports/{id}`: Ditto's documentation
    /// examples for deleting an import spell it so.
    pub fn from_path(path: &JsonPointer) -> Option<Self> {
        let s: Vec<&str> = path.segments().iter().map(String::as_str).collect();
        Some(match s.as_slice() {
            [] => PolicyResource::Policy,
            ["imports"] => PolicyResource::PolicyImports,
            ["imports" | "import", _] => PolicyResource::PolicyImport,
            ["imports", _, "entries"] => PolicyResource::PolicyImportEntries,
            ["imports", _, "transitiveImports"] => PolicyResource::PolicyImportTransitiveImports,
            ["entries"] => PolicyResource::PolicyEntries,
            ["entries", _] => PolicyResource::PolicyEntry,
            ["entries", _, "resources"] => PolicyResource::Resources,
            ["entries", _, "resources", _, ..] => PolicyResource::Resource,
            ["entries", _, "subjects"] => PolicyResource::Subjects,
            ["entries", _, "subjects", _, ..] => PolicyResource::Subject,
            ["entries", _, "importable"] => PolicyResource::PolicyEntryImportable,
            ["entries", _, "allowedAdditions"] => PolicyResource::PolicyEntryAllowedAdditions,
            ["entries", _, "namespaces"] => PolicyResource::PolicyEntryNamespaces,
            ["entries", _, "references"] => PolicyResource::PolicyEntryReferences,
            _ => return None,
        })
    }

    /// Ditto's resource name, the second part of a command name.
    pub fn name(self) -> &'static str {
        match self {
            PolicyResource::Policy => "policy",
            PolicyResource::PolicyImports => "policyImports",
            PolicyResource::PolicyImport => "policyImport",
            PolicyResource::PolicyImportEntries => "policyImportEntries",
            PolicyResource::PolicyImportTransitiveImports => "policyImportTransitiveImports",
            PolicyResource::PolicyEntries => "policyEntries",
            PolicyResource::PolicyEntry => "policyEntry",
            PolicyResource::Resources => "resources",
            PolicyResource::Resource => "resource",
            PolicyResource::Subjects => "subjects",
            PolicyResource::Subject => "subject",
            PolicyResource::PolicyEntryImportable => "policyEntryImportable",
            PolicyResource::PolicyEntryAllowedAdditions => "policyEntryAllowedAdditions",
            PolicyResource::PolicyEntryNamespaces => "policyEntryNamespaces",
            PolicyResource::PolicyEntryReferences => "policyEntryReferences",
        }
    }

    fn value_rule(self) -> ValueRule {
        match self {
            PolicyResource::PolicyImportEntries
            | PolicyResource::PolicyImportTransitiveImports
            | PolicyResource::PolicyEntryAllowedAdditions
            | PolicyResource::PolicyEntryNamespaces
            | PolicyResource::PolicyEntryReferences => ValueRule::Array,
            PolicyResource::PolicyEntryImportable => ValueRule::String,
            _ => ValueRule::Object,
        }
    }

    /// Which actions Ditto has for this resource: every resource can be retrieved and modified;
    /// only these can be deleted.
    fn deletable(self) -> bool {
        matches!(
            self,
            PolicyResource::Policy
                | PolicyResource::PolicyImports
                | PolicyResource::PolicyImport
                | PolicyResource::PolicyEntry
                | PolicyResource::Resource
                | PolicyResource::Subject
                | PolicyResource::PolicyEntryAllowedAdditions
                | PolicyResource::PolicyEntryReferences
        )
    }
}

/// The resource a thing or policy signal addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    Thing(ThingResource),
    Policy(PolicyResource),
}

/// A signal's type: its kind, and its name as Ditto writes it (`prefix:name`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SignalType {
    pub kind: SignalKind,
    /// `things.commands`, `policies.responses`, `messages.commands`, ... or empty for acks.
    pub prefix: &'static str,
    pub name: Cow<'static, str>,
    pub resource: Option<Resource>,
}

impl SignalType {
    fn new(kind: SignalKind, prefix: &'static str, name: impl Into<Cow<'static, str>>) -> Self {
        SignalType {
            kind,
            prefix,
            name: name.into(),
            resource: None,
        }
    }

    fn with_resource(mut self, resource: Resource) -> Self {
        self.resource = Some(resource);
        self
    }
}

impl fmt::Display for SignalType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.prefix.is_empty() {
            f.write_str(&self.name)
        } else {
            write!(f, "{}:{}", self.prefix, self.name)
        }
    }
}

/// What a value must be.
#[derive(Debug, Clone, Copy)]
enum ValueRule {
    Any,
    Object,
    Array,
    String,
    StringOrNull,
    PolicyId,
    FeatureDefinition,
    ObjectOrNull,
}

impl ValueRule {
    fn expected(self) -> &'static str {
        match self {
            ValueRule::Any => "present",
            ValueRule::Object => "a JSON object",
            ValueRule::Array => "a JSON array",
            ValueRule::String => "a string",
            ValueRule::StringOrNull => "a string or null",
            ValueRule::PolicyId => "a policy ID string",
            ValueRule::FeatureDefinition => "a non-empty array of definition identifier strings",
            ValueRule::ObjectOrNull => "a JSON object or null",
        }
    }

    fn check(self, signal: &str, value: &Value) -> Result<(), ProtocolError> {
        let ok = match self {
            ValueRule::Any => true,
            ValueRule::Object => value.is_object(),
            ValueRule::Array => value.is_array(),
            ValueRule::String => value.is_string(),
            ValueRule::StringOrNull => value.is_string() || value.is_null(),
            ValueRule::ObjectOrNull => value.is_object() || value.is_null(),
            ValueRule::PolicyId => match value.as_str() {
                Some(id) => {
                    parse_policy_id(id)?;
                    true
                }
                None => false,
            },
            ValueRule::FeatureDefinition => value.as_array().is_some_and(|a| {
                !a.is_empty() && a.iter().all(|d| d.as_str().is_some_and(|s| !s.is_empty()))
            }),
        };
        if ok {
            Ok(())
        } else {
            Err(ProtocolError::ValueType {
                signal: signal.to_owned(),
                expected: self.expected(),
            })
        }
    }

    /// What a merge patch at a resource may be: null deletes, containers merge objects.
    fn for_merge(self) -> ValueRule {
        match self {
            ValueRule::Object => ValueRule::ObjectOrNull,
            ValueRule::PolicyId => ValueRule::PolicyId,
            ValueRule::FeatureDefinition => ValueRule::Any,
            other => other,
        }
    }
}

fn upper_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(first) => first.to_uppercase().chain(c).collect(),
        None => String::new(),
    }
}

fn require_value<'e>(
    env: &'e Envelope,
    signal: &str,
    rule: ValueRule,
) -> Result<&'e Value, ProtocolError> {
    let value = env
        .value
        .as_ref()
        .ok_or(ProtocolError::FieldMissing { field: "value" })?;
    rule.check(signal, value)?;
    Ok(value)
}

fn require_status(env: &Envelope) -> Result<u16, ProtocolError> {
    env.status
        .ok_or(ProtocolError::FieldMissing { field: "status" })
}

fn require_revision(env: &Envelope) -> Result<(), ProtocolError> {
    env.revision
        .map(|_| ())
        .ok_or(ProtocolError::FieldMissing { field: "revision" })
}

fn unknown_path(env: &Envelope) -> ProtocolError {
    ProtocolError::UnknownPath {
        path: env.path.to_string(),
    }
}

/// Classifies an envelope; see the module documentation.
pub fn classify(env: &Envelope) -> Result<SignalType, ProtocolError> {
    let topic = &env.topic;
    match (&topic.group, &topic.criterion) {
        (Group::Things, Criterion::Commands(action)) => thing_command(env, *action),
        (Group::Things, Criterion::Events(action)) => thing_event(env, *action),
        (Group::Policies, Criterion::Commands(action)) => policy_command(env, *action),
        (Group::Policies, Criterion::Events(action)) => policy_event(env, *action),
        (group, Criterion::Errors) => {
            require_status(env)?;
            let value = require_value(env, "errorResponse", ValueRule::Object)?;
            DittoError::from_json(value)?;
            let prefix = match group {
                Group::Things => "things.responses",
                Group::Policies => "policies.responses",
                Group::Connections => "connectivity.responses",
            };
            Ok(SignalType::new(
                SignalKind::ErrorResponse,
                prefix,
                "errorResponse",
            ))
        }
        (Group::Things, Criterion::Messages(subject)) => message(env, subject),
        (Group::Things, Criterion::Acks(label)) => {
            require_status(env)?;
            match label {
                Some(_) => Ok(SignalType::new(
                    SignalKind::Acknowledgement,
                    "",
                    "acknowledgement",
                )),
                None => {
                    require_value(env, "acknowledgements", ValueRule::Object)?;
                    Ok(SignalType::new(
                        SignalKind::Acknowledgements,
                        "",
                        "acknowledgements",
                    ))
                }
            }
        }
        (Group::Things, Criterion::Search(action)) => search(env, *action),
        (Group::Things, Criterion::Streaming(action)) => streaming(env, *action),
        (Group::Policies, Criterion::Announcements(name)) if name == "subjectDeletion" => {
            let value = require_value(env, "subjectDeletion", ValueRule::Object)?;
            require_fields(
                value,
                "subjectDeletion",
                &[
                    ("deleteAt", Value::is_string),
                    ("subjectIds", Value::is_array),
                ],
            )?;
            Ok(SignalType::new(
                SignalKind::Announcement,
                "policies.announcements",
                "subjectDeletion",
            ))
        }
        (Group::Connections, Criterion::Announcements(name))
            if name == "opened" || name == "closed" =>
        {
            let field = if name == "opened" {
                "openedAt"
            } else {
                "closedAt"
            };
            let value = require_value(env, name, ValueRule::Object)?;
            require_fields(value, name, &[(field, Value::is_string)])?;
            Ok(SignalType::new(
                SignalKind::Announcement,
                "connectivity.announcements",
                name.clone(),
            ))
        }
        (_, Criterion::Announcements(name)) => Err(ProtocolError::UnknownSignal {
            kind: "announcement",
            name: name.clone(),
        }),
        _ => Err(ProtocolError::UnknownTopic {
            topic: topic.to_string(),
            reason: "No signal has this topic.".into(),
        }),
    }
}

/// A required field of a value and the JSON type it must have.
type FieldCheck = (&'static str, fn(&Value) -> bool);

fn require_fields(value: &Value, signal: &str, fields: &[FieldCheck]) -> Result<(), ProtocolError> {
    for (field, is_type) in fields {
        match value.get(field) {
            Some(v) if is_type(v) => {}
            Some(_) => {
                return Err(ProtocolError::ValueType {
                    signal: signal.to_owned(),
                    expected: "fields of the documented types",
                })
            }
            None => return Err(ProtocolError::FieldMissing { field }),
        }
    }
    Ok(())
}

fn thing_command(env: &Envelope, action: CommandAction) -> Result<SignalType, ProtocolError> {
    let response = env.status.is_some();
    let (kind, prefix) = if response {
        (SignalKind::CommandResponse, "things.responses")
    } else {
        (SignalKind::Command, "things.commands")
    };
    if action == CommandAction::Retrieve && env.topic.is_wildcard() {
        if !env.path.is_root() {
            return Err(unknown_path(env));
        }
        if response {
            require_value(env, "retrieveThings", ValueRule::Array)?;
        } else {
            let value = require_value(env, "retrieveThings", ValueRule::Object)?;
            let ids = value.get("thingIds").and_then(Value::as_array).ok_or(
                ProtocolError::FieldMissing {
                    field: "value/thingIds",
                },
            )?;
            for id in ids {
                parse_thing_id(id.as_str().unwrap_or_default())?;
            }
        }
        return Ok(SignalType::new(kind, prefix, "retrieveThings"));
    }
    let resource = ThingResource::from_path(&env.path).ok_or_else(|| unknown_path(env))?;
    let name: Cow<'static, str> = match action {
        CommandAction::Merge => "mergeThing".into(),
        CommandAction::Migrate if resource == ThingResource::Thing => {
            "migrateThingDefinition".into()
        }
        CommandAction::Create if resource != ThingResource::Thing => {
            return Err(ProtocolError::UnknownSignal {
                kind: "command",
                name: format!("create{}", upper_first(resource.name())),
            })
        }
        CommandAction::Delete if resource == ThingResource::PolicyId => {
            return Err(ProtocolError::UnknownSignal {
                kind: "command",
                name: "deletePolicyId".into(),
            })
        }
        CommandAction::Migrate => {
            return Err(ProtocolError::UnknownSignal {
                kind: "command",
                name: "migrateThingDefinition".into(),
            })
        }
        _ => format!("{}{}", action.as_str(), upper_first(resource.name())).into(),
    };
    let rule = resource.value_rule();
    match (action, response) {
        (CommandAction::Create | CommandAction::Modify, false) => {
            require_value(env, &name, rule)?;
        }
        (CommandAction::Merge, false) => {
            let rule = if resource == ThingResource::Thing {
                ValueRule::Object
            } else {
                rule.for_merge()
            };
            require_value(env, &name, rule)?;
        }
        (CommandAction::Migrate, false) => {
            require_value(env, &name, ValueRule::Object)?;
        }
        (CommandAction::Retrieve, true) => {
            require_value(env, &name, ValueRule::Any)?;
        }
        (CommandAction::Create | CommandAction::Modify, true) if env.status == Some(201) => {
            require_value(env, &name, rule)?;
        }
        _ => {}
    }
    Ok(SignalType::new(kind, prefix, name).with_resource(Resource::Thing(resource)))
}

fn thing_event(env: &Envelope, action: EventAction) -> Result<SignalType, ProtocolError> {
    let resource = ThingResource::from_path(&env.path).ok_or_else(|| unknown_path(env))?;
    let name: Cow<'static, str> = match action {
        EventAction::Merged => "thingMerged".into(),
        EventAction::Migrated if resource == ThingResource::Thing => {
            "ThingDefinitionMigrated".into()
        }
        EventAction::Deleted if resource == ThingResource::PolicyId => {
            return Err(ProtocolError::UnknownSignal {
                kind: "event",
                name: "policyIdDeleted".into(),
            })
        }
        EventAction::Migrated => {
            return Err(ProtocolError::UnknownSignal {
                kind: "event",
                name: "ThingDefinitionMigrated".into(),
            })
        }
        _ => format!("{}{}", resource.name(), upper_first(action.as_str())).into(),
    };
    require_revision(env)?;
    match action {
        EventAction::Created | EventAction::Modified => {
            require_value(env, &name, resource.value_rule())?;
        }
        EventAction::Merged => {
            let rule = if resource == ThingResource::Thing {
                ValueRule::Object
            } else {
                resource.value_rule().for_merge()
            };
            require_value(env, &name, rule)?;
        }
        EventAction::Migrated => {
            require_value(env, &name, ValueRule::Object)?;
        }
        EventAction::Deleted => {}
    }
    Ok(SignalType::new(SignalKind::Event, "things.events", name)
        .with_resource(Resource::Thing(resource)))
}

fn policy_command(env: &Envelope, action: CommandAction) -> Result<SignalType, ProtocolError> {
    let response = env.status.is_some();
    let (kind, prefix) = if response {
        (SignalKind::CommandResponse, "policies.responses")
    } else {
        (SignalKind::Command, "policies.commands")
    };
    let resource = PolicyResource::from_path(&env.path).ok_or_else(|| unknown_path(env))?;
    let supported = match action {
        CommandAction::Create => resource == PolicyResource::Policy,
        CommandAction::Retrieve | CommandAction::Modify => true,
        CommandAction::Delete => resource.deletable(),
        CommandAction::Merge | CommandAction::Migrate => false,
    };
    let name = format!("{}{}", action.as_str(), upper_first(resource.name()));
    if !supported {
        return Err(ProtocolError::UnknownSignal {
            kind: if response { "response" } else { "command" },
            name,
        });
    }
    match (action, response) {
        (CommandAction::Create | CommandAction::Modify, false) => {
            require_value(env, &name, resource.value_rule())?;
        }
        (CommandAction::Retrieve, true) => {
            require_value(env, &name, ValueRule::Any)?;
        }
        _ => {}
    }
    Ok(SignalType::new(kind, prefix, name).with_resource(Resource::Policy(resource)))
}

fn policy_event(env: &Envelope, action: EventAction) -> Result<SignalType, ProtocolError> {
    let resource = PolicyResource::from_path(&env.path).ok_or_else(|| unknown_path(env))?;
    if matches!(action, EventAction::Merged | EventAction::Migrated) {
        return Err(ProtocolError::UnknownSignal {
            kind: "event",
            name: format!("{}{}", resource.name(), upper_first(action.as_str())),
        });
    }
    let name = format!("{}{}", resource.name(), upper_first(action.as_str()));
    require_revision(env)?;
    if action != EventAction::Deleted {
        require_value(env, &name, resource.value_rule())?;
    }
    Ok(SignalType::new(SignalKind::Event, "policies.events", name)
        .with_resource(Resource::Policy(resource)))
}

/// Live messages: `[/features/{id}]/(inbox|outbox)/messages/{subject}`; the subject `claim`
/// makes a claim message. With a `status` the message is a response.
fn message(env: &Envelope, subject: &str) -> Result<SignalType, ProtocolError> {
    let segments = env.path.segments();
    let (feature, mailbox) = match segments {
        [f, _id, rest @ ..] if f == "features" => (true, rest),
        rest => (false, rest),
    };
    let well_formed = match mailbox {
        [mb, kind, ..] => {
            (mb == "inbox" || mb == "outbox") && (kind == "messages" || kind == "claim")
        }
        [mb] => mb == "inbox" || mb == "outbox",
        [] => false,
    };
    if !well_formed {
        return Err(unknown_path(env));
    }
    let response = env.status.is_some();
    let base = if subject == "claim" && !feature {
        "claim"
    } else if feature {
        "feature"
    } else {
        "thing"
    };
    let (kind, prefix, name) = if response {
        (
            SignalKind::MessageResponse,
            "messages.responses",
            format!("{base}ResponseMessage"),
        )
    } else {
        (
            SignalKind::MessageCommand,
            "messages.commands",
            format!("{base}Message"),
        )
    };
    Ok(SignalType::new(kind, prefix, name))
}

fn search(env: &Envelope, action: SearchAction) -> Result<SignalType, ProtocolError> {
    let subscription_id: &[FieldCheck] = &[("subscriptionId", Value::is_string)];
    let (kind, prefix, name) = match action {
        SearchAction::Subscribe => {
            if let Some(v) = &env.value {
                ValueRule::Object.check("subscribe", v)?;
            }
            (
                SignalKind::SearchCommand,
                "thing-search.commands",
                "subscribe",
            )
        }
        SearchAction::Request => {
            let v = require_value(env, "request", ValueRule::Object)?;
            require_fields(
                v,
                "request",
                &[
                    ("subscriptionId", Value::is_string),
                    ("demand", Value::is_i64),
                ],
            )?;
            (
                SignalKind::SearchCommand,
                "thing-search.commands",
                "request",
            )
        }
        SearchAction::Cancel => {
            require_fields(
                require_value(env, "cancel", ValueRule::Object)?,
                "cancel",
                subscription_id,
            )?;
            (SignalKind::SearchCommand, "thing-search.commands", "cancel")
        }
        SearchAction::Created | SearchAction::Complete => {
            let name = action.as_str();
            require_fields(
                require_value(env, name, ValueRule::Object)?,
                name,
                subscription_id,
            )?;
            (
                SignalKind::SearchEvent,
                "thing-search.subscription.events",
                name,
            )
        }
        SearchAction::Next => {
            let v = require_value(env, "next", ValueRule::Object)?;
            require_fields(
                v,
                "next",
                &[
                    ("subscriptionId", Value::is_string),
                    ("items", Value::is_array),
                ],
            )?;
            (
                SignalKind::SearchEvent,
                "thing-search.subscription.events",
                "next",
            )
        }
        SearchAction::Failed => {
            let v = require_value(env, "failed", ValueRule::Object)?;
            require_fields(
                v,
                "failed",
                &[
                    ("subscriptionId", Value::is_string),
                    ("error", Value::is_object),
                ],
            )?;
            if let Some(e) = v.get("error") {
                DittoError::from_json(e)?;
            }
            (
                SignalKind::SearchEvent,
                "thing-search.subscription.events",
                "failed",
            )
        }
        SearchAction::Error | SearchAction::Errors => {
            require_status(env)?;
            DittoError::from_json(require_value(env, "errorResponse", ValueRule::Object)?)?;
            (
                SignalKind::ErrorResponse,
                "thing-search.responses",
                "errorResponse",
            )
        }
    };
    Ok(SignalType::new(kind, prefix, name))
}

fn streaming(env: &Envelope, action: StreamingAction) -> Result<SignalType, ProtocolError> {
    let (kind, prefix) = match action {
        StreamingAction::SubscribeForPersistedEvents
        | StreamingAction::Request
        | StreamingAction::Cancel => (
            SignalKind::StreamingCommand,
            "streaming.subscription.commands",
        ),
        StreamingAction::Error => {
            require_status(env)?;
            (
                SignalKind::ErrorResponse,
                "streaming.subscription.responses",
            )
        }
        _ => (SignalKind::StreamingEvent, "streaming.subscription.events"),
    };
    if action != StreamingAction::SubscribeForPersistedEvents {
        require_value(env, action.as_str(), ValueRule::Object)?;
    }
    let name = if action == StreamingAction::Error {
        "errorResponse"
    } else {
        action.as_str()
    };
    Ok(SignalType::new(kind, prefix, name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn classify_json(v: Value) -> Result<String, ProtocolError> {
        Ok(Envelope::from_json(v)?.signal()?.to_string())
    }

    fn cmd(topic: &str, path: &str, value: Option<Value>) -> Value {
        let mut v = json!({"topic": topic, "headers": {"correlation-id": "c"}, "path": path});
        if let Some(value) = value {
            v["value"] = value;
        }
        v
    }

    const T: &str = "org.eclipse.ditto/fancy-thing/things/twin/commands";

    #[test]
    fn thing_commands_are_named_like_ditto() {
        let cases = [
            (
                "modify",
                "/attributes/location",
                Some(json!(1)),
                "things.commands:modifyAttribute",
            ),
            (
                "modify",
                "/features/f/properties/a/b",
                Some(json!(1)),
                "things.commands:modifyFeatureProperty",
            ),
            (
                "modify",
                "/definition",
                Some(json!("a:b:1")),
                "things.commands:modifyDefinition",
            ),
            (
                "modify",
                "/policyId",
                Some(json!("a:b")),
                "things.commands:modifyPolicyId",
            ),
            (
                "create",
                "/",
                Some(json!({})),
                "things.commands:createThing",
            ),
            (
                "merge",
                "/features/f/desiredProperties/x",
                Some(Value::Null),
                "things.commands:mergeThing",
            ),
            (
                "retrieve",
                "/features/f/definition",
                None,
                "things.commands:retrieveFeatureDefinition",
            ),
            (
                "delete",
                "/features/f/desiredProperties",
                None,
                "things.commands:deleteFeatureDesiredProperties",
            ),
        ];
        for (action, path, value, expected) in cases {
            let got = classify_json(cmd(&format!("{T}/{action}"), path, value)).unwrap();
            assert_eq!(got, expected, "{action} {path}");
        }
    }

    #[test]
    fn signals_refuse_paths_and_values_they_do_not_have() {
        let code = |v: Value| classify_json(v).unwrap_err().code();
        assert_eq!(
            code(cmd(&format!("{T}/modify"), "/nonsense", Some(json!(1)))),
            "protocoladapter:unknown.path"
        );
        assert_eq!(
            code(cmd(
                &format!("{T}/modify"),
                "/features/f/definition/x",
                Some(json!(1))
            )),
            "protocoladapter:unknown.path"
        );
        assert_eq!(
            code(cmd(&format!("{T}/create"), "/attributes", Some(json!({})))),
            "protocoladapter:unknown.command"
        );
        assert_eq!(
            code(cmd(&format!("{T}/delete"), "/policyId", None)),
            "protocoladapter:unknown.command"
        );
        assert_eq!(
            code(cmd(&format!("{T}/modify"), "/attributes", None)),
            "json.field.missing"
        );
        assert_eq!(
            code(cmd(&format!("{T}/modify"), "/", Some(json!(42)))),
            "json.format.invalid"
        );
        assert_eq!(
            code(cmd(&format!("{T}/modify"), "/attributes", Some(json!([1])))),
            "json.format.invalid"
        );
        assert_eq!(
            code(cmd(
                &format!("{T}/modify"),
                "/policyId",
                Some(json!("no colon"))
            )),
            "policies:id.invalid"
        );
        assert_eq!(
            code(cmd(
                &format!("{T}/modify"),
                "/features/f/definition",
                Some(json!([]))
            )),
            "json.format.invalid"
        );
        assert_eq!(
            code(cmd(&format!("{T}/merge"), "/", Some(Value::Null))),
            "json.format.invalid"
        );
    }

    #[test]
    fn responses_events_and_errors() {
        let mut v = cmd(&format!("{T}/modify"), "/attributes/a", Some(json!(1)));
        v["status"] = json!(201);
        assert_eq!(
            classify_json(v).unwrap(),
            "things.responses:modifyAttribute"
        );
        let v = json!({"topic": "org.eclipse.ditto/t/things/twin/events/created", "headers": {}, "path": "/policyId", "value": "a:b", "revision": 1});
        assert_eq!(classify_json(v).unwrap(), "things.events:policyIdCreated");
        let v = json!({"topic": "org.eclipse.ditto/t/things/twin/events/modified", "headers": {}, "path": "/attributes/a", "value": 1});
        assert_eq!(classify_json(v).unwrap_err().code(), "json.field.missing");
        let v = json!({"topic": "org.eclipse.ditto/t/things/twin/errors", "headers": {}, "path": "/", "status": 404,
            "value": {"status": 404, "error": "things:thing.notfound", "message": "m"}});
        assert_eq!(classify_json(v).unwrap(), "things.responses:errorResponse");
    }

    #[test]
    fn messages_acks_and_announcements() {
        let v = json!({"topic": "org.eclipse.ditto/t/things/live/messages/ask", "headers": {}, "path": "/features/f/inbox/messages/ask", "value": "x"});
        assert_eq!(
            classify_json(v).unwrap(),
            "messages.commands:featureMessage"
        );
        let v = json!({"topic": "org.eclipse.ditto/t/things/live/messages/claim", "headers": {}, "path": "/inbox/claim", "status": 200});
        assert_eq!(
            classify_json(v).unwrap(),
            "messages.responses:claimResponseMessage"
        );
        let v = json!({"topic": "org.eclipse.ditto/t/things/live/messages/ask", "headers": {}, "path": "/attributes"});
        assert_eq!(
            classify_json(v).unwrap_err().code(),
            "protocoladapter:unknown.path"
        );
        let v = json!({"topic": "org.eclipse.ditto/t/things/twin/acks/my-ack", "headers": {}, "path": "/", "status": 200});
        assert_eq!(classify_json(v).unwrap(), "acknowledgement");
        let v = json!({"topic": "org.eclipse.ditto/t/things/twin/acks", "headers": {}, "path": "/", "status": 424, "value": {}});
        assert_eq!(classify_json(v).unwrap(), "acknowledgements");
        let v = json!({"topic": "org.eclipse.ditto/t/things/twin/acks/my-ack", "headers": {}, "path": "/"});
        assert_eq!(classify_json(v).unwrap_err().code(), "json.field.missing");
        let v = json!({"topic": "org.eclipse.ditto/p/policies/announcements/other", "headers": {}, "path": "/"});
        assert_eq!(
            classify_json(v).unwrap_err().code(),
            "protocoladapter:unknown.command"
        );
    }

    #[test]
    fn policy_commands() {
        let p = "org.eclipse.ditto/p/policies/commands";
        let v = cmd(
            &format!("{p}/modify"),
            "/entries/l/resources/thing:/a",
            Some(json!({"grant": ["READ"]})),
        );
        assert_eq!(
            classify_json(v).unwrap(),
            "policies.commands:modifyResource"
        );
        let v = cmd(&format!("{p}/delete"), "/entries", None);
        assert_eq!(
            classify_json(v).unwrap_err().code(),
            "protocoladapter:unknown.command"
        );
        let v = cmd(
            &format!("{p}/modify"),
            "/entries/l/importable",
            Some(json!(1)),
        );
        assert_eq!(classify_json(v).unwrap_err().code(), "json.format.invalid");
    }
}
