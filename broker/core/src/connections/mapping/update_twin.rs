//! The `UpdateTwinWithLiveResponse` mapper (inbound only): a live thing-query response (a
//! successful `…/things/live/commands/retrieve` with a status) consumed from a device becomes a
//! twin mergeThing of the retrieved value at the response's path, so the twin catches up with
//! what the device reported. Every other message, also one that is not Ditto Protocol JSON,
//! maps to nothing: combine it with `Ditto` to also deliver the response.
//!
//! The merge's headers are `dittoHeadersForMerge` (default `response-required: false`,
//! `if-match: *`; a configured object replaces the default), their strings resolved with
//! `{{ header:<name> }}` (the transport headers), `{{ request:subjectId }}` (given through
//! [`Mapper::inbound_as`]) and `{{ time:… }}`; an expression that does not resolve stays as
//! written (Ditto's partial resolution). The correlation-id is the response's with
//! `-merge-into-twin` appended (a new one when it has none).

use super::options::{
    external_headers, placeholder_invalid, Blocklist, JsonTemplate, Options, Unresolvable,
    HONO_NOTIFICATIONS,
};
use super::{ExternalMessage, Mapper};
use crate::placeholders::{Allowed, SignalResolver};
use serde_json::{json, Map, Value};
use twinwire_protocol::headers::names;
use twinwire_protocol::topic::CommandAction;
use twinwire_protocol::{Channel, Criterion, DittoError, Envelope, Group, Headers, Topic};

const ALIAS: &str = "UpdateTwinWithLiveResponse";

const DITTO_HEADERS_FOR_MERGE: &str = "dittoHeadersForMerge";

/// Appended to the live response's correlation-id for the merge.
pub const CORRELATION_ID_SUFFIX: &str = "-merge-into-twin";

#[derive(Debug, Clone)]
pub struct UpdateTwinWithLiveResponseMapper {
    headers: Vec<(String, JsonTemplate)>,
    blocklist: Blocklist,
}

impl Default for UpdateTwinWithLiveResponseMapper {
    fn default() -> Self {
        UpdateTwinWithLiveResponseMapper::from_options(&Map::new()).expect("the defaults are valid")
    }
}

impl UpdateTwinWithLiveResponseMapper {
    /// From the mapping definition's options: `dittoHeadersForMerge`,
    /// `content-type-blocklist` (default: Hono's notifications).
    pub fn from_options(options: &Map<String, Value>) -> Result<Self, DittoError> {
        let options = Options::new(ALIAS, options, &[DITTO_HEADERS_FOR_MERGE])?;
        let configured = options.object(DITTO_HEADERS_FOR_MERGE)?;
        let configured = configured.unwrap_or_else(|| {
            json!({"response-required": false, "if-match": "*"})
                .as_object()
                .cloned()
                .unwrap_or_default()
        });
        let allowed = Allowed::mapper_options_with_request_and_time();
        let headers = configured
            .iter()
            .map(|(name, value)| {
                let template = JsonTemplate::compile(value, &allowed, false).map_err(|e| {
                    placeholder_invalid(&format!("{DITTO_HEADERS_FOR_MERGE}.{name}"), &e)
                })?;
                Ok((name.clone(), template))
            })
            .collect::<Result<_, DittoError>>()?;
        Ok(UpdateTwinWithLiveResponseMapper {
            headers,
            blocklist: options.blocklist(HONO_NOTIFICATIONS)?,
        })
    }
}

/// Whether a signal is a successful live thing-query response about one thing.
fn is_live_query_response(envelope: &Envelope) -> bool {
    let topic = &envelope.topic;
    topic.group == Group::Things
        && topic.channel == Channel::Live
        && topic.criterion == Criterion::Commands(CommandAction::Retrieve)
        && !topic.is_wildcard()
        && envelope.status.is_some_and(|s| (200..300).contains(&s))
        && envelope.value.is_some()
}

impl Mapper for UpdateTwinWithLiveResponseMapper {
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
        // Not Ditto Protocol, or not a live query response: nothing (as Ditto, no error).
        let Ok(response) = Envelope::from_slice(&message.payload) else {
            return Ok(Vec::new());
        };
        if !is_live_query_response(&response) || response.signal().is_err() {
            return Ok(Vec::new());
        }
        let external = external_headers(message);
        let mut resolver = SignalResolver::for_external(&external);
        if let Some(subject) = subject {
            resolver = resolver.request_subject(subject);
        }
        let mut headers = Headers::new();
        for (name, template) in &self.headers {
            if let Ok(value) = template.resolve(&resolver, Unresolvable::Keep) {
                headers.insert(name.as_str(), value);
            }
        }
        let correlation_id = response
            .headers
            .correlation_id()
            .map(str::to_owned)
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
        headers.insert(
            names::CORRELATION_ID,
            format!("{correlation_id}{CORRELATION_ID_SUFFIX}"),
        );
        let mut topic: Topic = response.topic.clone();
        topic.channel = Channel::Twin;
        topic.criterion = Criterion::Commands(CommandAction::Merge);
        let mut merge = Envelope::new(topic, headers, response.path.clone());
        merge.value = response.value;
        // A merge the router would refuse (a bad header after resolution, a value the path
        // cannot take) is the message's mapping error.
        let refuse = |e: twinwire_protocol::ProtocolError| {
            twinwire_protocol::exceptions::connectivity::mapping_failed(
                message.content_type(),
                DittoError::from(e).message_or_code(),
            )
        };
        merge.headers.validate().map_err(refuse)?;
        merge.signal().map_err(refuse)?;
        Ok(vec![merge])
    }

    fn outbound(&self, _: &Envelope) -> Result<Vec<ExternalMessage>, DittoError> {
        // Inbound only.
        Ok(Vec::new())
    }
}
