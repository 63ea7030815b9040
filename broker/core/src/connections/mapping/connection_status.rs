//! The `ConnectionStatus` mapper (inbound only): Eclipse Hono's `creation-time` (milliseconds
//! since the epoch) and `ttd` (time until disconnect, seconds) headers as a twin modify of the
//! feature `ConnectionStatus` (option `featureId`) of the thing `thingId` (required; both may use
//! `{{ header:<name> }}`), so the twin tells until when the device can be reached:
//!
//! - `ttd = -1` (connected until further notice): the feature, with definition
//!   `org.eclipse.ditto:ConnectionStatus:1.0.0`, `properties.status.readySince` the creation
//!   time and `readyUntil` `9999-12-31T23:59:59Z`;
//! - `ttd = 0` (disconnected): only the property `status/readyUntil`, set to the creation time;
//! - `ttd > 0`: the feature, `readyUntil` the creation time plus `ttd` seconds.
//!
//! Times are ISO-8601 UTC as Java's `Instant` writes them (`2019-10-29T14:16:18Z`, milliseconds
//! only when there are some). The command requires no response and requests no
//! acknowledgements. A message without `ttd` is no notification and maps to nothing (the mapper
//! usually runs next to `Ditto` on every message); a `ttd` without `creation-time`, a value that
//! is not an integer, `creation-time < 0`, `ttd < -1`, a time out of range or a thing ID or
//! feature ID that does not resolve to a valid one is a mapping error.

use super::options::{external_headers, Blocklist, Options};
use super::{mapper_config_invalid, ExternalMessage, Mapper};
use crate::placeholders::{Allowed, Resolved, SignalResolver, Template};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use twinwire_protocol::exceptions::connectivity::mapping_failed;
use twinwire_protocol::headers::names;
use twinwire_protocol::id::parse_thing_id;
use twinwire_protocol::{DittoError, Envelope, Headers, JsonPointer, Topic};

const ALIAS: &str = "ConnectionStatus";

const THING_ID: &str = "thingId";
const FEATURE_ID: &str = "featureId";

/// The default feature.
pub const DEFAULT_FEATURE_ID: &str = "ConnectionStatus";
/// The feature's definition.
pub const FEATURE_DEFINITION: &str = "org.eclipse.ditto:ConnectionStatus:1.0.0";
/// `readyUntil` of a device connected until further notice (`ttd = -1`).
pub const DISTANT_FUTURE: &str = "9999-12-31T23:59:59Z";

const HEADER_TTD: &str = "ttd";
const HEADER_CREATION_TIME: &str = "creation-time";

#[derive(Debug, Clone)]
pub struct ConnectionStatusMapper {
    thing_id: Template,
    feature_id: Template,
    blocklist: Blocklist,
}

impl ConnectionStatusMapper {
    /// From the mapping definition's options: `thingId` (required), `featureId`,
    /// `content-type-blocklist` (default: none).
    pub fn from_options(options: &Map<String, Value>) -> Result<Self, DittoError> {
        let options = Options::new(ALIAS, options, &[THING_ID, FEATURE_ID])?;
        let allowed = Allowed::mapper_options();
        let thing_id = options.required_string(THING_ID)?;
        let thing_id_template = options.template(THING_ID, thing_id, &allowed)?;
        if thing_id_template.is_constant() {
            parse_thing_id(thing_id).map_err(|e| {
                mapper_config_invalid(THING_ID, DittoError::from(e).message_or_code())
            })?;
        }
        let feature_id = options.string(FEATURE_ID)?.unwrap_or(DEFAULT_FEATURE_ID);
        let feature_id_template = options.template(FEATURE_ID, feature_id, &allowed)?;
        if feature_id_template.is_constant() && !is_valid_feature_id(feature_id) {
            return Err(mapper_config_invalid(
                FEATURE_ID,
                "A feature ID must not be empty and must not contain '/'.",
            ));
        }
        Ok(ConnectionStatusMapper {
            thing_id: thing_id_template,
            feature_id: feature_id_template,
            blocklist: options.blocklist(&[])?,
        })
    }
}

fn is_valid_feature_id(id: &str) -> bool {
    !id.is_empty() && !id.contains('/') && !id.chars().any(char::is_control)
}

/// An instant as Java's `Instant.toString` writes it (whole seconds without fraction).
fn iso_instant(millis: i64) -> Option<String> {
    let time = DateTime::<Utc>::from_timestamp_millis(millis)?;
    let format = if millis % 1000 == 0 {
        "%Y-%m-%dT%H:%M:%SZ"
    } else {
        "%Y-%m-%dT%H:%M:%S%.3fZ"
    };
    Some(time.format(format).to_string())
}

impl Mapper for ConnectionStatusMapper {
    fn alias(&self) -> &str {
        ALIAS
    }

    fn inbound(&self, message: &ExternalMessage) -> Result<Vec<Envelope>, DittoError> {
        if self.blocklist.blocks(message) {
            return Ok(Vec::new());
        }
        let Some(ttd) = message.header(HEADER_TTD) else {
            return Ok(Vec::new());
        };
        let fail = |reason: String| mapping_failed(message.content_type(), &reason);
        let integer = |name: &str, value: &str| {
            value.parse::<i64>().map_err(|_| {
                fail(format!(
                    "The header <{name}> ('{value}') is not an integer. Make sure that the header \
                     is in the right format."
                ))
            })
        };
        let ttd = integer(HEADER_TTD, ttd)?;
        let creation_time = match message.header(HEADER_CREATION_TIME) {
            Some(value) => integer(HEADER_CREATION_TIME, value)?,
            None => {
                return Err(fail(format!(
                    "The header <{HEADER_CREATION_TIME}> is not set. Make sure to include the \
                     header or only activate the mapping for messages containing the header."
                )))
            }
        };
        if creation_time < 0 {
            return Err(fail(format!(
                "Invalid value in header <{HEADER_CREATION_TIME}>: {creation_time}. The \
                 creation-time in milliseconds since Epoch has to be a positive number."
            )));
        }
        if ttd < -1 {
            return Err(fail(format!(
                "Invalid value in header <{HEADER_TTD}>: {ttd}. The time until disconnect in \
                 seconds has to be -1, 0 or greater than 0."
            )));
        }

        let external = external_headers(message);
        let resolver = SignalResolver::for_external(&external);
        let resolve = |template: &Template, option: &str| match template.resolve(&resolver) {
            Resolved::Values(values) => Ok(values.into_iter().next().unwrap_or_default()),
            _ => Err(fail(format!(
                "The option {option} '{}' of the ConnectionStatus mapper could not be resolved.",
                template.source()
            ))),
        };
        let thing_id = resolve(&self.thing_id, THING_ID)?;
        let thing_id = parse_thing_id(&thing_id).map_err(|e| {
            fail(format!(
                "The thingId '{thing_id}' is invalid: {}",
                DittoError::from(e).message_or_code()
            ))
        })?;
        let feature_id = resolve(&self.feature_id, FEATURE_ID)?;
        if !is_valid_feature_id(&feature_id) {
            return Err(fail(format!("The featureId '{feature_id}' is invalid.")));
        }

        let out_of_range = || {
            fail(format!(
                "The time from <{HEADER_CREATION_TIME}> {creation_time} and <{HEADER_TTD}> {ttd} \
                 is out of range."
            ))
        };
        let ready_since = iso_instant(creation_time).ok_or_else(out_of_range)?;
        let mut path = JsonPointer::from_segments(["features", feature_id.as_str()]);
        let value = match ttd {
            0 => {
                for segment in ["properties", "status", "readyUntil"] {
                    path.push(segment);
                }
                Value::String(ready_since)
            }
            _ => {
                let ready_until = if ttd == -1 {
                    DISTANT_FUTURE.to_owned()
                } else {
                    ttd.checked_mul(1000)
                        .and_then(|ms| creation_time.checked_add(ms))
                        .and_then(iso_instant)
                        .ok_or_else(out_of_range)?
                };
                json!({
                    "definition": [FEATURE_DEFINITION],
                    "properties": {"status": {"readySince": ready_since, "readyUntil": ready_until}}
                })
            }
        };
        let topic = Topic::parse(&format!(
            "{}/{}/things/twin/commands/modify",
            thing_id.namespace(),
            thing_id.name()
        ))
        .map_err(|e| fail(DittoError::from(e).message_or_code().to_owned()))?;
        let headers = Headers::from_iter([
            (names::RESPONSE_REQUIRED, Value::Bool(false)),
            (names::REQUESTED_ACKS, Value::Array(Vec::new())),
        ]);
        let mut envelope = Envelope::new(topic, headers, path);
        envelope.value = Some(value);
        envelope
            .signal()
            .map_err(|e| fail(DittoError::from(e).message_or_code().to_owned()))?;
        Ok(vec![envelope])
    }

    fn outbound(&self, _: &Envelope) -> Result<Vec<ExternalMessage>, DittoError> {
        // Inbound only.
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instants_as_java_writes_them() {
        assert_eq!(
            iso_instant(1_572_358_578_000).as_deref(),
            Some("2019-10-29T14:16:18Z")
        );
        assert_eq!(
            iso_instant(1_572_358_578_042).as_deref(),
            Some("2019-10-29T14:16:18.042Z")
        );
        assert_eq!(iso_instant(0).as_deref(), Some("1970-01-01T00:00:00Z"));
        assert_eq!(iso_instant(i64::MAX), None);
    }
}
