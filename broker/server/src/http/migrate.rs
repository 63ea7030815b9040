//! `POST /api/2/things/{thingId}/migrateDefinition`: a thing's new `definition` and a
//! migration payload (attributes and features) merged into it in one merge command, as the
//! caller (WRITE on everything it touches). String values of the payload may be
//! `{{ thing-json:<pointer> }}` (or `${ thing-json:<pointer> }`) placeholders taking the thing's
//! current value, type and all; a missing value fails the request. `patchConditions` maps
//! `thing:/<path>` to an RQL condition on the thing: a part whose condition does not hold is left
//! out. `dry-run=true` answers 202 with the patch without applying it.
//!
//! `initializeMissingPropertiesFromDefaults` needs the Thing Model behind the definition URL;
//! twinwire fetches no models, so it refuses that flag instead of silently ignoring it.

use super::error::ApiError;
use super::reply::respond;
use super::AppState;
use serde_json::{json, Map, Value};
use twinwire_core::auth::AuthContext;
use twinwire_core::routing::Requester;
use twinwire_core::things::json as thing_json;
use twinwire_protocol::topic::{Channel, CommandAction, Criterion, Group};
use twinwire_protocol::{
    DittoError, Envelope, Headers, JsonPointer, ProtocolError, ThingId, Topic,
};

pub async fn run(
    state: &AppState,
    auth: AuthContext,
    id: &ThingId,
    headers: Headers,
    dry_run: bool,
    body: &[u8],
) -> Result<axum::response::Response, ApiError> {
    let request = super::request::json_body(body)?;
    let url = request
        .get("thingDefinitionUrl")
        .and_then(Value::as_str)
        .ok_or(ProtocolError::FieldMissing {
            field: "thingDefinitionUrl",
        })?;
    if request
        .get("initializeMissingPropertiesFromDefaults")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return Err(invalid(
            "initializeMissingPropertiesFromDefaults needs the Thing Model behind the definition URL, which twinwire does not fetch.",
        )
        .into());
    }
    let requester = Requester::http(auth);
    let retrieve = envelope(id, CommandAction::Retrieve, Headers::new(), None);
    let current = state.router.handle(retrieve, &requester).await;
    let thing = match current.reply {
        Some(reply) if reply.status == Some(200) => reply.value.unwrap_or(json!({})),
        _ => return Ok(respond(current, None)),
    };
    let mut patch = Map::new();
    patch.insert("definition".into(), Value::from(url));
    if let Some(payload) = request.get("migrationPayload") {
        let payload = payload
            .as_object()
            .ok_or_else(|| invalid("migrationPayload must be an object."))?;
        for (key, value) in payload {
            if key != "attributes" && key != "features" {
                return Err(invalid("migrationPayload holds only attributes and features.").into());
            }
            patch.insert(key.clone(), resolve(value, &thing)?);
        }
    }
    if let Some(conditions) = request.get("patchConditions").and_then(Value::as_object) {
        for (resource, condition) in conditions {
            let path = resource
                .strip_prefix("thing:")
                .ok_or_else(|| invalid("patchConditions keys are thing:/<path> resources."))?;
            let path = JsonPointer::parse(path)?;
            let condition = condition
                .as_str()
                .ok_or_else(|| invalid("patchConditions values are RQL conditions."))?;
            let predicate = twinwire_protocol::rql::parse_condition(condition).map_err(|e| {
                twinwire_protocol::exceptions::things::condition_invalid(condition, &e.to_string())
            })?;
            if !predicate.matches(&twinwire_protocol::rql::ThingContext::new(&thing)) {
                thing_json::remove(&mut patch, &path);
            }
        }
    }
    let patch = Value::Object(patch);
    let result =
        |status: &str| json!({"thingId": id.as_str(), "patch": patch, "mergeStatus": status});
    if dry_run {
        return Ok(super::error::json_response(202, &result("DRY_RUN")));
    }
    let merge = envelope(id, CommandAction::Merge, headers, Some(patch.clone()));
    let answer = state.router.handle(merge, &requester).await;
    match answer.reply.as_ref().and_then(|r| r.status) {
        Some(200..=299) => Ok(super::error::json_response(200, &result("APPLIED"))),
        _ => Ok(respond(answer, None)),
    }
}

fn invalid(description: &str) -> DittoError {
    DittoError::new(
        400,
        "things:definition.migration.invalid",
        "The thing definition migration request is invalid.",
    )
    .with_description(description)
}

/// The payload with its `thing-json` placeholders replaced by the thing's values.
fn resolve(value: &Value, thing: &Value) -> Result<Value, DittoError> {
    Ok(match value {
        Value::String(text) => match placeholder(text) {
            Some(pointer) => {
                let pointer = JsonPointer::parse(&format!("/{}", pointer.trim_start_matches('/')))?;
                pointer.get(thing).cloned().ok_or_else(|| {
                    invalid(&format!(
                        "The placeholder '{text}' names nothing in the thing."
                    ))
                })?
            }
            None => value.clone(),
        },
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), resolve(v, thing)?)))
                .collect::<Result<_, DittoError>>()?,
        ),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| resolve(v, thing))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

/// `{{ thing-json:<pointer> }}` or `${ thing-json:<pointer> }` (the whole string) → the pointer.
fn placeholder(text: &str) -> Option<&str> {
    let inner = text
        .trim()
        .strip_prefix("{{")
        .and_then(|t| t.strip_suffix("}}"))
        .or_else(|| {
            text.trim()
                .strip_prefix("${")
                .and_then(|t| t.strip_suffix('}'))
        })?;
    inner.trim().strip_prefix("thing-json:").map(str::trim)
}

fn envelope(
    id: &ThingId,
    action: CommandAction,
    headers: Headers,
    value: Option<Value>,
) -> Envelope {
    let topic = Topic {
        namespace: id.namespace().to_owned(),
        name: id.name().to_owned(),
        group: Group::Things,
        channel: Channel::Twin,
        criterion: Criterion::Commands(action),
    };
    let mut envelope = Envelope::new(topic, headers, JsonPointer::root());
    envelope.value = value;
    envelope
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_take_the_things_values() {
        let thing = json!({"attributes": {"location": "Berlin", "floor": 2}});
        let payload = json!({"attributes": {"where": "{{ thing-json:attributes/location }}", "level": "${ thing-json:/attributes/floor }", "plain": "x"}});
        assert_eq!(
            resolve(&payload, &thing).unwrap(),
            json!({"attributes": {"where": "Berlin", "level": 2, "plain": "x"}})
        );
        let missing = json!({"a": "{{ thing-json:attributes/nope }}"});
        assert_eq!(resolve(&missing, &thing).unwrap_err().status, 400);
    }
}
