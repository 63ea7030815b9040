//! The `ImplicitThingCreation` mapper (inbound only): every consumed message becomes a
//! createThing command built from the `thing` template.
//!
//! Every string of the template (keys too) may use `{{ header:<name> }}` (the transport
//! headers), `{{ request:subjectId }}` (the first subject of the source's authorization context,
//! given through [`Mapper::inbound_as`]) and `{{ time:now }}`/`{{ time:now_epoch_millis }}`; an
//! expression that does not resolve is a mapping error. `_policy` (an inline policy) and
//! `_copyPolicyFrom` (a policy ID, or `{{ ref:things/<id>/policyId }}`, kept as written for the
//! things service) go into the command's value as Ditto's protocol has them. The template needs
//! a `thingId`; a constant one (and a constant `policyId`) must be valid when the connection is
//! configured.
//!
//! The command's headers are the `commandHeaders` (default `{"If-None-Match": "*"}`: the command
//! fails if the thing exists; configured headers keep that default unless they set it), each
//! resolved with the same placeholders and left out when it does not resolve, plus
//! `allow-policy-lockout` (option `allowPolicyLockout`, default `true`).
//!
//! Outbound it maps nothing.

use super::options::{
    external_headers, placeholder_invalid, Blocklist, JsonTemplate, Options, Unresolvable,
};
use super::{mapper_config_invalid, ExternalMessage, Mapper};
use crate::placeholders::{Allowed, Resolved, SignalResolver, Template};
use serde_json::{Map, Value};
use twinwire_protocol::exceptions::connectivity::mapping_failed;
use twinwire_protocol::headers::names;
use twinwire_protocol::id::{parse_policy_id, parse_thing_id};
use twinwire_protocol::{DittoError, Envelope, Headers, JsonPointer, Topic};

const ALIAS: &str = "ImplicitThingCreation";

const THING: &str = "thing";
const COMMAND_HEADERS: &str = "commandHeaders";
const ALLOW_POLICY_LOCKOUT: &str = "allowPolicyLockout";

/// The header the lockout permission travels in.
pub const ALLOW_POLICY_LOCKOUT_HEADER: &str = "allow-policy-lockout";

#[derive(Debug, Clone)]
pub struct ImplicitThingCreationMapper {
    thing: JsonTemplate,
    command_headers: Vec<(String, Template)>,
    allow_policy_lockout: bool,
    blocklist: Blocklist,
}

impl ImplicitThingCreationMapper {
    /// From the mapping definition's options: `thing` (required), `commandHeaders`,
    /// `allowPolicyLockout`, `content-type-blocklist` (default: none).
    pub fn from_options(options: &Map<String, Value>) -> Result<Self, DittoError> {
        let options = Options::new(
            ALIAS,
            options,
            &[THING, COMMAND_HEADERS, ALLOW_POLICY_LOCKOUT],
        )?;
        let allowed = Allowed::mapper_options_with_request_and_time();
        let thing = options.object(THING)?.ok_or_else(|| {
            mapper_config_invalid(
                THING,
                "The ImplicitThingCreation mapper needs the option 'thing': the JSON of the thing \
                 to create, with at least a thingId.",
            )
        })?;
        match thing.get("thingId") {
            Some(Value::String(id)) if id.contains("{{") => {}
            Some(Value::String(id)) => {
                parse_thing_id(id).map_err(|e| {
                    mapper_config_invalid("thing/thingId", DittoError::from(e).message_or_code())
                })?;
            }
            _ => {
                return Err(mapper_config_invalid(
                    "thing/thingId",
                    "The thing template needs a thingId (a thing ID or a placeholder such as \
                     {{ header:device_id }}).",
                ))
            }
        }
        match thing.get("policyId") {
            None => {}
            Some(Value::String(id)) if id.contains("{{") => {}
            Some(Value::String(id)) => {
                parse_policy_id(id).map_err(|e| {
                    mapper_config_invalid("thing/policyId", DittoError::from(e).message_or_code())
                })?;
            }
            Some(_) => {
                return Err(mapper_config_invalid(
                    "thing/policyId",
                    "The policyId of the thing template must be a string.",
                ))
            }
        }
        let thing = JsonTemplate::compile(&Value::Object(thing), &allowed, true)
            .map_err(|e| placeholder_invalid(THING, &e))?;
        let mut command_headers = vec![(
            names::IF_NONE_MATCH.to_owned(),
            Template::compile("*", &allowed)?,
        )];
        for (name, value) in options.object(COMMAND_HEADERS)?.unwrap_or_default() {
            let text = match &value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            let template =
                options.template(&format!("{COMMAND_HEADERS}.{name}"), &text, &allowed)?;
            match command_headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(&name))
            {
                Some(slot) => *slot = (name, template),
                None => command_headers.push((name, template)),
            }
        }
        Ok(ImplicitThingCreationMapper {
            thing,
            command_headers,
            allow_policy_lockout: options.boolean(ALLOW_POLICY_LOCKOUT)?.unwrap_or(true),
            blocklist: options.blocklist(&[])?,
        })
    }
}

impl Mapper for ImplicitThingCreationMapper {
    fn alias(&self) -> &str {
        ALIAS
    }

    fn inbound(&self, message: &ExternalMessage) -> Result<Vec<Envelope>, DittoError> {
        self.inbound_as(message, None)
    }

    fn inbound_as(
        &self,
        message: &ExternalMessage,
        subject: Option<&str>,
    ) -> Result<Vec<Envelope>, DittoError> {
        if self.blocklist.blocks(message) {
            return Ok(Vec::new());
        }
        let fail = |reason: &str| mapping_failed(message.content_type(), reason);
        let external = external_headers(message);
        let mut resolver = SignalResolver::for_external(&external);
        if let Some(subject) = subject {
            resolver = resolver.request_subject(subject);
        }
        let thing = self
            .thing
            .resolve(&resolver, Unresolvable::Fail)
            .map_err(|expression| {
                fail(&format!(
                    "The placeholder {expression} of the ImplicitThingCreation thing template \
                     could not be resolved."
                ))
            })?;
        let thing_id = thing
            .get("thingId")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let id = parse_thing_id(thing_id).map_err(|e| {
            fail(&format!(
                "The thingId '{thing_id}' of the created thing is invalid: {}",
                DittoError::from(e).message_or_code()
            ))
        })?;
        if let Some(policy_id) = thing.get("policyId") {
            let policy_id = policy_id.as_str().unwrap_or_default();
            parse_policy_id(policy_id).map_err(|e| {
                fail(&format!(
                    "The policyId '{policy_id}' of the created thing is invalid: {}",
                    DittoError::from(e).message_or_code()
                ))
            })?;
        }
        let mut headers = Headers::new();
        for (name, template) in &self.command_headers {
            if let Resolved::Values(values) = template.resolve(&resolver) {
                if let Some(value) = values.into_iter().next() {
                    headers.insert(name.as_str(), value);
                }
            }
        }
        headers.insert(
            ALLOW_POLICY_LOCKOUT_HEADER,
            Value::Bool(self.allow_policy_lockout),
        );
        headers
            .validate()
            .map_err(|e| fail(DittoError::from(e).message_or_code()))?;
        let topic = Topic::parse(&format!(
            "{}/{}/things/twin/commands/create",
            id.namespace(),
            id.name()
        ))
        .map_err(|e| fail(DittoError::from(e).message_or_code()))?;
        let mut envelope = Envelope::new(topic, headers, JsonPointer::root());
        envelope.value = Some(thing);
        envelope
            .signal()
            .map_err(|e| fail(DittoError::from(e).message_or_code()))?;
        Ok(vec![envelope])
    }

    fn outbound(&self, _: &Envelope) -> Result<Vec<ExternalMessage>, DittoError> {
        // Inbound only.
        Ok(Vec::new())
    }
}
