//! Shard state: applies one thing command to one thing entity and answers with what the command
//! reads or the event it causes. Synchronous and pure (no I/O, no await, no clock: the caller
//! passes the time), so every rule of the thing commands is tested here without a journal.

use super::event::ThingEvent;
use super::json;
use super::metadata;
use super::thing::ThingEntity;
use crate::conditional;
use serde_json::{Map, Value};
use twinwire_protocol::exceptions::things as exc;
use twinwire_protocol::signal::{Resource, SignalKind, ThingResource};
use twinwire_protocol::topic::{CommandAction, Criterion, EventAction};
use twinwire_protocol::{DittoError, Envelope, ProtocolError};

/// A classified thing command: the envelope with its action and the resource its path addresses.
#[derive(Debug, Clone, Copy)]
pub struct Command<'a> {
    pub envelope: &'a Envelope,
    pub action: CommandAction,
    pub resource: ThingResource,
}

impl<'a> Command<'a> {
    /// Classifies a thing command envelope (a twin command with a thing resource).
    pub fn from_envelope(envelope: &'a Envelope) -> Result<Self, DittoError> {
        let signal = envelope.signal()?;
        match (&envelope.topic.criterion, signal.resource) {
            (Criterion::Commands(action), Some(Resource::Thing(resource)))
                if signal.kind == SignalKind::Command =>
            {
                Ok(Command {
                    envelope,
                    action: *action,
                    resource,
                })
            }
            _ => Err(ProtocolError::UnknownSignal {
                kind: "command",
                name: signal.to_string(),
            }
            .into()),
        }
    }
}

pub use crate::event::Outcome;

/// Handles one command against the entity as it is. `now` is the event timestamp to use.
pub fn handle(entity: &ThingEntity, cmd: Command<'_>, now: &str) -> Result<Outcome, DittoError> {
    metadata::check_single_header(cmd.envelope)?;
    check_preconditions(entity, cmd)?;
    let id = entity.id.as_str();
    let env = cmd.envelope;
    let revision = entity.revision + 1;
    let current_metadata = entity.thing.as_ref().and_then(|t| t.metadata.as_ref());
    let event = |action, value: Option<Value>| {
        Box::new(ThingEvent {
            action,
            path: env.path.clone(),
            metadata: metadata::patch_for_modify(env, value.as_ref(), current_metadata),
            value,
            revision,
            timestamp: now.to_owned(),
            headers: None,
        })
    };
    match cmd.action {
        CommandAction::Retrieve => retrieve(entity, cmd).map(Outcome::Retrieved),
        CommandAction::Create => {
            if entity.exists() {
                return Err(exc::thing_conflict(id));
            }
            let json = new_thing_json(entity, env.value.as_ref())?;
            let value = Value::Object(json);
            Ok(Outcome::Changed {
                status: 201,
                value: Some(value.clone()),
                event: event(EventAction::Created, Some(value)),
            })
        }
        CommandAction::Modify if cmd.resource == ThingResource::Thing => {
            let mut json = new_thing_json(entity, env.value.as_ref())?;
            match &entity.thing {
                None => {
                    let value = Value::Object(json);
                    Ok(Outcome::Changed {
                        status: 201,
                        value: Some(value.clone()),
                        event: event(EventAction::Created, Some(value)),
                    })
                }
                Some(thing) => {
                    if env.value.as_ref().and_then(|v| v.get("policyId")).is_none() {
                        // A thing always has a policy: without one in the new JSON it keeps its own.
                        if let Some(policy_id) = thing.policy_id() {
                            json.insert("policyId".into(), Value::from(policy_id));
                        }
                    }
                    if skip_requested(env)? && json == thing.json {
                        return Err(exc::precondition_failed_equal());
                    }
                    Ok(Outcome::Changed {
                        status: 204,
                        value: None,
                        event: event(EventAction::Modified, Some(Value::Object(json))),
                    })
                }
            }
        }
        CommandAction::Modify => {
            let thing = entity
                .thing
                .as_ref()
                .ok_or_else(|| exc::thing_not_found(id))?;
            require_feature(entity, cmd)?;
            let value = env
                .value
                .clone()
                .ok_or(ProtocolError::FieldMissing { field: "value" })?;
            check_value(cmd.resource, &value)?;
            let current = json::get_in(&thing.json, &env.path);
            if skip_requested(env)? && current == Some(&value) {
                return Err(exc::precondition_failed_equal());
            }
            if current.is_some() {
                Ok(Outcome::Changed {
                    status: 204,
                    value: None,
                    event: event(EventAction::Modified, Some(value)),
                })
            } else {
                Ok(Outcome::Changed {
                    status: 201,
                    value: Some(value.clone()),
                    event: event(EventAction::Created, Some(value)),
                })
            }
        }
        CommandAction::Merge => {
            let thing = entity
                .thing
                .as_ref()
                .ok_or_else(|| exc::thing_not_found(id))?;
            let patch = env
                .value
                .clone()
                .ok_or(ProtocolError::FieldMissing { field: "value" })?;
            let mut result = thing.json.clone();
            json::merge_at(&mut result, &env.path, &patch);
            if skip_requested(env)? && result == thing.json {
                return Err(exc::precondition_failed_equal());
            }
            validate_thing(entity, &Value::Object(result))?;
            Ok(Outcome::Changed {
                status: 204,
                value: None,
                event: event(EventAction::Merged, Some(patch)),
            })
        }
        CommandAction::Delete => {
            let thing = entity
                .thing
                .as_ref()
                .ok_or_else(|| exc::thing_not_found(id))?;
            if cmd.resource != ThingResource::Thing {
                require_feature(entity, cmd)?;
                if json::get_in(&thing.json, &env.path).is_none() {
                    return Err(not_found(entity, cmd));
                }
            }
            Ok(Outcome::Changed {
                status: 204,
                value: None,
                event: event(EventAction::Deleted, None),
            })
        }
        CommandAction::Migrate => Err(ProtocolError::UnknownSignal {
            kind: "command",
            name: "migrateThingDefinition (WoT thing model migration is not supported)".into(),
        }
        .into()),
    }
}

/// The things group's answers to a failed precondition.
const PRECONDITION_ERRORS: conditional::PreconditionErrors = conditional::PreconditionErrors {
    failed: exc::precondition_failed,
    not_modified: exc::precondition_not_modified,
};

/// `if-match`, then `if-none-match` (RFC 7232 with the thing's `"rev:N"` entity tag), then the
/// RQL `condition`, in the order Ditto evaluates them.
fn check_preconditions(entity: &ThingEntity, cmd: Command<'_>) -> Result<(), DittoError> {
    let headers = &cmd.envelope.headers;
    conditional::check_entity_tag(
        headers,
        &entity.etag(),
        entity.exists(),
        cmd.action == CommandAction::Retrieve,
        &PRECONDITION_ERRORS,
    )?;
    if let Some(condition) = headers.condition()? {
        let thing = entity
            .thing
            .as_ref()
            .ok_or_else(|| exc::thing_not_found(entity.id.as_str()))?;
        let mut json = thing.to_json(entity.revision, true);
        if let Value::Object(o) = &mut json {
            o.insert("_namespace".into(), Value::from(entity.id.namespace()));
        }
        if !condition_holds(condition, &json)? {
            return Err(exc::condition_failed());
        }
    }
    Ok(())
}

/// A retrieve's `live-channel-condition` (docs/basic-conditional-requests.md): whether it holds
/// for the thing as it is (then the retrieve goes to the device on the live channel), or `None`
/// when the retrieve has none. Evaluated like `condition`; an invalid one is
/// `things:condition.invalid` (400). A thing that does not exist answers its 404 before this.
pub fn live_channel_condition(
    entity: &ThingEntity,
    cmd: Command<'_>,
) -> Result<Option<bool>, DittoError> {
    if cmd.action != CommandAction::Retrieve {
        return Ok(None);
    }
    let Some(condition) = cmd.envelope.headers.live_channel_condition()? else {
        return Ok(None);
    };
    let Some(thing) = entity.thing.as_ref() else {
        return Ok(None);
    };
    let mut json = thing.to_json(entity.revision, true);
    if let Value::Object(o) = &mut json {
        o.insert("_namespace".into(), Value::from(entity.id.namespace()));
    }
    condition_holds(condition, &json).map(Some)
}

/// Evaluates the RQL `condition` header against the thing's JSON (with its `_` fields, as
/// Ditto evaluates conditions).
fn condition_holds(condition: &str, thing: &Value) -> Result<bool, DittoError> {
    let predicate = twinwire_protocol::rql::parse_condition(condition)
        .map_err(|e| exc::condition_invalid(condition, &e.to_string()))?;
    Ok(predicate.matches(&twinwire_protocol::rql::ThingContext::new(thing)))
}

/// Whether `if-equal` asks to refuse a change to what is already there.
fn skip_requested(env: &Envelope) -> Result<bool, DittoError> {
    conditional::skip_requested(&env.headers)
}

/// The JSON of a thing created or replaced by `value`: the topic's thing ID first (one in the
/// JSON must equal it), the policy ID (the thing's own ID when none is given, as Ditto's default
/// policy has), then the rest; fields starting with `_` are not part of a thing's JSON.
fn new_thing_json(
    entity: &ThingEntity,
    value: Option<&Value>,
) -> Result<Map<String, Value>, DittoError> {
    let given = value
        .and_then(Value::as_object)
        .ok_or(ProtocolError::ValueType {
            signal: "thing".into(),
            expected: "a JSON object",
        })?;
    if let Some(id) = given.get("thingId") {
        if id.as_str() != Some(entity.id.as_str()) {
            return Err(exc::id_not_settable_in_protocol());
        }
    }
    let mut json = Map::new();
    json.insert("thingId".into(), Value::from(entity.id.as_str()));
    let policy_id = given
        .get("policyId")
        .cloned()
        .unwrap_or_else(|| Value::from(entity.id.as_str()));
    json.insert("policyId".into(), policy_id);
    for (k, v) in given {
        if k != "thingId" && k != "policyId" && !k.starts_with('_') {
            json.insert(k.clone(), v.clone());
        }
    }
    validate_thing(entity, &Value::Object(json.clone()))?;
    Ok(json)
}

/// Checks the structure a thing must have (docs/basic-thing.md, basic-feature.md).
fn validate_thing(entity: &ThingEntity, thing: &Value) -> Result<(), DittoError> {
    let invalid = |expected| -> DittoError {
        ProtocolError::ValueType {
            signal: "thing".into(),
            expected,
        }
        .into()
    };
    let obj = thing.as_object().ok_or_else(|| invalid("a JSON object"))?;
    match obj.get("thingId").and_then(Value::as_str) {
        None => return Err(exc::id_not_deletable()),
        Some(id) if id != entity.id.as_str() => return Err(exc::id_not_settable_in_protocol()),
        Some(_) => {}
    }
    match obj.get("policyId") {
        Some(Value::String(p)) => {
            twinwire_protocol::id::parse_policy_id(p)?;
        }
        None => return Err(exc::policy_id_not_deletable()),
        Some(_) => return Err(invalid("a thing whose policyId is a string")),
    }
    if let Some(d) = obj.get("definition") {
        check_value(ThingResource::Definition, d)?;
    }
    if let Some(a) = obj.get("attributes") {
        check_value(ThingResource::Attributes, a)?;
    }
    if let Some(f) = obj.get("features") {
        check_value(ThingResource::Features, f)?;
    }
    Ok(())
}

/// Checks a value against the resource it is written to, deeper than the protocol check does.
fn check_value(resource: ThingResource, value: &Value) -> Result<(), DittoError> {
    let invalid = |expected| -> DittoError {
        ProtocolError::ValueType {
            signal: resource.name().into(),
            expected,
        }
        .into()
    };
    match resource {
        ThingResource::Attributes
        | ThingResource::FeatureProperties
        | ThingResource::FeatureDesiredProperties
            if !value.is_object() =>
        {
            return Err(invalid("a JSON object"));
        }
        ThingResource::Features => {
            let features = value
                .as_object()
                .ok_or_else(|| invalid("a JSON object of features"))?;
            for feature in features.values() {
                check_value(ThingResource::Feature, feature)?;
            }
        }
        ThingResource::Feature => {
            let feature = value.as_object().ok_or_else(|| invalid("a JSON object"))?;
            if let Some(d) = feature.get("definition") {
                check_value(ThingResource::FeatureDefinition, d)?;
            }
            for key in ["properties", "desiredProperties"] {
                if feature.get(key).is_some_and(|p| !p.is_object()) {
                    return Err(invalid("a feature whose properties are JSON objects"));
                }
            }
        }
        ThingResource::FeatureDefinition => {
            let ids = value
                .as_array()
                .ok_or_else(|| invalid("an array of definition identifiers"))?;
            if ids.is_empty() {
                return Err(exc::feature_definition_empty());
            }
            for id in ids {
                match id.as_str() {
                    Some(s) if is_definition_identifier(s) => {}
                    _ => return Err(exc::feature_definition_identifier_invalid(&id.to_string())),
                }
            }
        }
        ThingResource::Definition
            if !(value.is_null() || value.as_str().is_some_and(is_definition_identifier)) =>
        {
            return Err(invalid(
                "a definition identifier (namespace:name:version or a URL) or null",
            ));
        }
        _ => {}
    }
    Ok(())
}

/// `namespace:name:version` or an http(s) URL, as Ditto's definition identifiers.
fn is_definition_identifier(s: &str) -> bool {
    if s.starts_with("http://") || s.starts_with("https://") {
        return s.len() > "https://".len() && !s.contains(char::is_whitespace);
    }
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 3
        && twinwire_protocol::id::is_valid_namespace(parts[0])
        && !parts[0].is_empty()
        && parts[1..].iter().all(|p| {
            !p.is_empty()
                && p.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
        })
}

/// The feature a feature sub-resource belongs to must exist.
fn require_feature(entity: &ThingEntity, cmd: Command<'_>) -> Result<(), DittoError> {
    use ThingResource::*;
    if !matches!(
        cmd.resource,
        FeatureDefinition
            | FeatureProperties
            | FeatureProperty
            | FeatureDesiredProperties
            | FeatureDesiredProperty
    ) {
        return Ok(());
    }
    let feature_id = cmd
        .envelope
        .path
        .segments()
        .get(1)
        .map(String::as_str)
        .unwrap_or_default();
    let exists = entity
        .thing
        .as_ref()
        .and_then(|t| t.json.get("features"))
        .and_then(|f| f.get(feature_id))
        .is_some();
    if exists {
        Ok(())
    } else {
        Err(exc::feature_not_found(entity.id.as_str(), feature_id))
    }
}

fn retrieve(entity: &ThingEntity, cmd: Command<'_>) -> Result<Value, DittoError> {
    let id = entity.id.as_str();
    let thing = entity
        .thing
        .as_ref()
        .ok_or_else(|| exc::thing_not_found(id))?;
    let env = cmd.envelope;
    let fields = env.fields.as_deref().map(json::selector_pointers);
    if cmd.resource == ThingResource::Thing {
        let wants_special = fields.as_ref().is_some_and(|f| {
            f.iter()
                .any(|p| p.first().is_some_and(|k| k.starts_with('_')))
        });
        let whole = thing.to_json(entity.revision, wants_special);
        return Ok(match &fields {
            Some(f) => json::select(&whole, f),
            None => whole,
        });
    }
    require_feature(entity, cmd)?;
    let value = json::get_in(&thing.json, &env.path).ok_or_else(|| not_found(entity, cmd))?;
    Ok(match &fields {
        Some(f) if value.is_object() => json::select(value, f),
        _ => value.clone(),
    })
}

/// The not-found error of the resource a command addresses.
fn not_found(entity: &ThingEntity, cmd: Command<'_>) -> DittoError {
    super::errors::not_found(entity.id.as_str(), cmd.resource, &cmd.envelope.path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use twinwire_protocol::ThingId;

    const NOW: &str = "2026-11-22T10:00:00.000Z";
    const T: &str = "org.eclipse.ditto/fancy-thing/things/twin/commands";

    fn entity() -> ThingEntity {
        ThingEntity::new(ThingId::parse("org.eclipse.ditto:fancy-thing").unwrap())
    }

    fn cmd(action: &str, path: &str, value: Option<Value>, headers: Value) -> Envelope {
        let mut v = json!({"topic": format!("{T}/{action}"), "headers": headers, "path": path});
        if let Some(value) = value {
            v["value"] = value;
        }
        Envelope::from_json(v).unwrap()
    }

    /// Runs a command, applying its event; the response or error response as JSON.
    fn run(entity: &mut ThingEntity, env: &Envelope) -> Value {
        match Command::from_envelope(env).and_then(|c| handle(entity, c, NOW)) {
            Ok(outcome) => {
                if let Outcome::Changed { event, .. } = &outcome {
                    entity.apply(event);
                }
                outcome.response_to(env).to_json()
            }
            Err(e) => env.error_response(&e).to_json(),
        }
    }

    fn created() -> ThingEntity {
        let mut e = entity();
        let thing = json!({"attributes": {"location": "kitchen", "model": "x1", "n": 1},
            "features": {"lamp": {"properties": {"on": true, "color": {"r": 1, "g": 2}}}}});
        assert_eq!(
            run(&mut e, &cmd("create", "/", Some(thing), json!({})))["status"],
            201
        );
        e
    }

    #[test]
    fn create_fills_in_ids_and_refuses_a_second_create_or_a_foreign_id() {
        let mut e = created();
        let thing = &e.thing.as_ref().unwrap().json;
        assert_eq!(thing["thingId"], "org.eclipse.ditto:fancy-thing");
        assert_eq!(
            thing["policyId"], "org.eclipse.ditto:fancy-thing",
            "default policy has the thing's ID"
        );
        let again = run(&mut e, &cmd("create", "/", Some(json!({})), json!({})));
        assert_eq!(
            (again["status"].clone(), again["value"]["error"].clone()),
            (json!(409), json!("things:thing.conflict"))
        );
        let mut fresh = entity();
        let foreign = run(
            &mut fresh,
            &cmd("create", "/", Some(json!({"thingId": "a:b"})), json!({})),
        );
        assert_eq!(foreign["value"]["error"], "things:id.notsettable");
        assert!(!fresh.exists());
    }

    #[test]
    fn field_selectors_select_and_add_underscore_fields() {
        let mut e = created();
        let mut env = cmd("retrieve", "/", None, json!({}));
        env.fields = Some("thingId,attributes(location,n),_revision,_created".into());
        let r = run(&mut e, &env);
        assert_eq!(
            r["value"],
            json!({"thingId": "org.eclipse.ditto:fancy-thing", "attributes": {"location": "kitchen", "n": 1},
                "_revision": 1, "_created": NOW})
        );
        let mut env = cmd("retrieve", "/features/lamp/properties", None, json!({}));
        env.fields = Some("color/r".into());
        assert_eq!(run(&mut e, &env)["value"], json!({"color": {"r": 1}}));
    }

    #[test]
    fn not_found_errors_name_the_resource() {
        let mut e = created();
        let code = |e: &mut ThingEntity, action: &str, path: &str| {
            run(e, &cmd(action, path, None, json!({})))["value"]["error"].clone()
        };
        assert_eq!(
            code(&mut e, "retrieve", "/attributes/nope/deeper"),
            "things:attribute.notfound"
        );
        assert_eq!(
            code(&mut e, "delete", "/features/none"),
            "things:feature.notfound"
        );
        assert_eq!(
            code(&mut e, "retrieve", "/features/none/properties/x"),
            "things:feature.notfound"
        );
        assert_eq!(
            code(&mut e, "retrieve", "/features/lamp/properties/none"),
            "things:feature.property.notfound"
        );
        assert_eq!(
            code(&mut e, "retrieve", "/features/lamp/desiredProperties"),
            "things:feature.desiredProperties.notfound"
        );
        assert_eq!(
            code(&mut e, "retrieve", "/definition"),
            "things:definition.notfound"
        );
        let r = run(
            &mut e,
            &cmd("retrieve", "/attributes/nope", None, json!({})),
        );
        assert_eq!(r["value"]["message"], "The attribute with key '/nope' on the thing with ID 'org.eclipse.ditto:fancy-thing' could not be found or the requester had insufficient permissions to access it.");
        let mut none = entity();
        assert_eq!(
            code(&mut none, "retrieve", "/attributes"),
            "things:thing.notfound"
        );
        assert_eq!(code(&mut none, "merge", "/"), "json.field.missing");
        let merge = run(
            &mut none,
            &cmd("merge", "/attributes", Some(json!({})), json!({})),
        );
        assert_eq!(merge["value"]["error"], "things:thing.notfound");
    }

    #[test]
    fn modify_answers_created_or_modified_and_merge_deletes_with_null() {
        let mut e = created();
        let r = run(
            &mut e,
            &cmd("modify", "/attributes/new/deep", Some(json!(5)), json!({})),
        );
        assert_eq!(
            (r["status"].clone(), r["value"].clone()),
            (json!(201), json!(5))
        );
        let r = run(
            &mut e,
            &cmd("modify", "/attributes/new/deep", Some(json!(6)), json!({})),
        );
        assert_eq!((r["status"].clone(), r.get("value")), (json!(204), None));
        run(
            &mut e,
            &cmd(
                "merge",
                "/attributes",
                Some(json!({"model": null, "n": 2})),
                json!({}),
            ),
        );
        let attrs = run(&mut e, &cmd("retrieve", "/attributes", None, json!({})))["value"].clone();
        assert_eq!(
            attrs,
            json!({"location": "kitchen", "n": 2, "new": {"deep": 6}})
        );
        run(
            &mut e,
            &cmd(
                "merge",
                "/features/lamp/properties/color",
                Some(Value::Null),
                json!({}),
            ),
        );
        let lamp =
            run(&mut e, &cmd("retrieve", "/features/lamp", None, json!({})))["value"].clone();
        assert_eq!(lamp, json!({"properties": {"on": true}}));
        assert_eq!(e.revision, 5);
    }

    #[test]
    fn revisions_go_on_across_delete_and_recreate() {
        let mut e = created();
        assert_eq!(
            run(&mut e, &cmd("delete", "/", None, json!({})))["status"],
            204
        );
        assert!(!e.exists());
        assert_eq!(
            run(&mut e, &cmd("retrieve", "/", None, json!({})))["value"]["error"],
            "things:thing.notfound"
        );
        assert_eq!(
            run(&mut e, &cmd("modify", "/", Some(json!({})), json!({})))["status"],
            201
        );
        assert_eq!(e.revision, 3);
    }

    #[test]
    fn entity_tags_guard_changes() {
        let mut e = created(); // revision 1
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/attributes/n",
                Some(json!(2)),
                json!({"if-match": "\"rev:7\""}),
            ),
        );
        assert_eq!(
            (r["status"].clone(), r["value"]["error"].clone()),
            (json!(412), json!("things:precondition.failed"))
        );
        assert_eq!(r["value"]["message"], "The comparison of precondition header 'if-match' for the requested Thing resource evaluated to false. Header value: '\"rev:7\"', actual entity-tag: '\"rev:1\"'.");
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/attributes/n",
                Some(json!(2)),
                json!({"if-match": "\"rev:1\""}),
            ),
        );
        assert_eq!(r["status"], 204);
        let r = run(
            &mut e,
            &cmd("retrieve", "/", None, json!({"if-none-match": "\"rev:2\""})),
        );
        assert_eq!(
            (r["status"].clone(), r["value"]["error"].clone()),
            (json!(304), json!("things:precondition.notmodified"))
        );
        let r = run(
            &mut e,
            &cmd(
                "create",
                "/",
                Some(json!({})),
                json!({"if-none-match": "*"}),
            ),
        );
        assert_eq!(r["value"]["error"], "things:precondition.failed");
        let mut none = entity();
        let r = run(
            &mut none,
            &cmd("modify", "/", Some(json!({})), json!({"if-match": "*"})),
        );
        assert_eq!(r["value"]["error"], "things:precondition.failed");
        let r = run(
            &mut none,
            &cmd(
                "modify",
                "/",
                Some(json!({})),
                json!({"if-none-match": "*"}),
            ),
        );
        assert_eq!(r["status"], 201);
    }

    #[test]
    fn conditions_decide_whether_a_command_applies() {
        let mut e = created();
        let when = |c: &str| json!({"condition": c});
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/attributes/n",
                Some(json!(2)),
                when("eq(attributes/location,\"hall\")"),
            ),
        );
        assert_eq!(
            (r["status"].clone(), r["value"]["error"].clone()),
            (json!(412), json!("things:condition.failed"))
        );
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/attributes/n",
                Some(json!(2)),
                when("and(eq(attributes/location,\"kitchen\"),lt(attributes/n,2))"),
            ),
        );
        assert_eq!(r["status"], 204);
        let r = run(
            &mut e,
            &cmd("retrieve", "/attributes", None, when("eq(_revision,2)")),
        );
        assert_eq!(r["status"], 200);
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/attributes/n",
                Some(json!(3)),
                when("eq(attributes/n,2"),
            ),
        );
        assert_eq!(
            (r["status"].clone(), r["value"]["error"].clone()),
            (json!(400), json!("things:condition.invalid"))
        );
        assert!(
            r["value"]["description"]
                .as_str()
                .unwrap()
                .contains("position"),
            "{r}"
        );
        assert_eq!(e.revision, 2);
    }

    #[test]
    fn if_equal_skip_refuses_a_change_to_the_same_value() {
        let mut e = created();
        let skip = json!({"if-equal": "skip"});
        let r = run(
            &mut e,
            &cmd(
                "modify",
                "/attributes/location",
                Some(json!("kitchen")),
                skip.clone(),
            ),
        );
        assert_eq!(
            (r["status"].clone(), r["value"]["error"].clone()),
            (json!(412), json!("things:precondition.failed"))
        );
        let r = run(
            &mut e,
            &cmd("merge", "/attributes", Some(json!({"n": 1})), skip.clone()),
        );
        assert_eq!(r["status"], 412);
        assert_eq!(
            run(
                &mut e,
                &cmd("modify", "/attributes/location", Some(json!("hall")), skip)
            )["status"],
            204
        );
        assert_eq!(
            run(
                &mut e,
                &cmd(
                    "modify",
                    "/attributes/location",
                    Some(json!("hall")),
                    json!({})
                )
            )["status"],
            204
        );
        assert_eq!(e.revision, 3);
    }

    #[test]
    fn put_metadata_lands_in_metadata() {
        let mut e = created();
        let headers = json!({"put-metadata": [{"key": "/unit", "value": "celsius"}]});
        run(
            &mut e,
            &cmd(
                "modify",
                "/features/lamp/properties/temp",
                Some(json!(21)),
                headers,
            ),
        );
        let mut env = cmd("retrieve", "/", None, json!({}));
        env.fields = Some("_metadata".into());
        assert_eq!(
            run(&mut e, &env)["value"],
            json!({"_metadata": {"features": {"lamp": {"properties": {"temp": {"unit": "celsius"}}}}}})
        );
    }

    #[test]
    fn values_are_checked_against_their_resource() {
        let mut e = created();
        let code = |e: &mut ThingEntity, path: &str, v: Value| {
            run(e, &cmd("modify", path, Some(v), json!({})))["value"]["error"].clone()
        };
        assert_eq!(
            code(&mut e, "/features/lamp/definition", json!(["not an id"])),
            "things:feature.definition.identifier.invalid"
        );
        assert_eq!(
            code(&mut e, "/features", json!({"f": 1})),
            "json.format.invalid"
        );
        assert_eq!(
            code(&mut e, "/definition", json!("nope")),
            "json.format.invalid"
        );
        assert_eq!(
            run(
                &mut e,
                &cmd("merge", "/", Some(json!({"policyId": null})), json!({}))
            )["value"]["error"],
            "things:policyId.notdeletable"
        );
        let r = run(
            &mut e,
            &cmd("merge", "/", Some(json!({"thingId": null})), json!({})),
        );
        assert_eq!(r["value"]["error"], "things:id.notdeletable");
        assert_eq!(e.revision, 1, "nothing was applied");
    }
}
