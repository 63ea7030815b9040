//! Signal enrichment (docs/basic-enrichment.md): a subscriber's extra fields, read from the thing
//! as it is after the signal and cut to what the subscriber may READ, become the signal's
//! `extra`. Pure: the caller hands over the thing's JSON; nothing here fetches it.
//!
//! A selector is compiled once when subscribing. Its pointers may hold Ditto's feature ID
//! wildcard (`features/*/properties/unit`, as `ThingsModelFactory.expandFeatureIdWildcard`
//! expands it) and placeholders (`features/{{ feature:id }}/properties/unit`, resolved per signal
//! as Ditto's `SessionedSignal.retrieveExtraFields` resolves them). Supported placeholders:
//! `thing:` and `entity:` `id|namespace|name`, `feature:id`, `header:<name>`, and every `topic:`
//! and `resource:` name. A pointer whose placeholder has no value for a signal (`feature:id` of
//! a thing-level event, a missing header) is left out for that signal, as Ditto leaves it out.
//! Unlike Ditto, placeholder functions (`{{ thing:id | fn:… }}`) are refused when subscribing.

use crate::auth::AuthContext;
use crate::policies::enforcer::{Enforcer, Permission};
use crate::things::json;
use serde_json::{Map, Value};
use std::borrow::Cow;
use twinwire_protocol::envelope::check_field_selector;
use twinwire_protocol::rql::{Placeholder, RqlContext, ThingContext};
use twinwire_protocol::{DittoError, Envelope, JsonPointer};

const THING: &str = "thing";

/// A compiled extraFields selector.
#[derive(Debug, Clone)]
pub(super) struct ExtraFields {
    /// The pointers when no wildcard or placeholder needs the signal or the thing.
    fixed: Option<Vec<JsonPointer>>,
    templates: Vec<Vec<Segment>>,
}

#[derive(Debug, Clone)]
enum Segment {
    Key(String),
    /// `*` where Ditto expands it to every feature ID of the thing.
    FeatureWildcard,
    /// A key with placeholders in it.
    Template(Vec<Part>),
}

#[derive(Debug, Clone)]
enum Part {
    Text(String),
    Value(Source),
}

/// What a placeholder reads.
#[derive(Debug, Clone)]
enum Source {
    /// `thing:`/`entity:` `id`, `namespace`, `name`.
    EntityId,
    EntityNamespace,
    EntityName,
    /// `feature:id`: the feature the signal's path is about.
    FeatureId,
    /// `topic:*` and `resource:*`, resolved as RQL filters resolve them.
    Signal(Placeholder),
    /// `header:<name>`.
    Header(String),
}

impl ExtraFields {
    /// Checks and compiles a selector; an invalid one is `json.fieldselector.invalid` (400), an
    /// unknown placeholder `placeholder:unresolved` (400).
    pub(super) fn compile(selector: &str) -> Result<ExtraFields, DittoError> {
        check_field_selector(selector).map_err(DittoError::from)?;
        let mut templates = Vec::new();
        for pointer in json::selector_pointers(selector) {
            let segments = pointer.segments();
            let mut template = Vec::with_capacity(segments.len());
            for (i, key) in segments.iter().enumerate() {
                let wildcard_at = match segments.first().map(String::as_str) {
                    Some("features") => 1,
                    Some("_metadata") if segments.get(1).is_some_and(|s| s == "features") => 2,
                    _ => usize::MAX,
                };
                template.push(if key.contains("{{") {
                    Segment::Template(parse_template(key)?)
                } else if i == wildcard_at && key == "*" {
                    Segment::FeatureWildcard
                } else {
                    Segment::Key(key.clone())
                });
            }
            templates.push(template);
        }
        let fixed = templates
            .iter()
            .map(|t| {
                t.iter()
                    .map(|s| match s {
                        Segment::Key(k) => Some(k.clone()),
                        _ => None,
                    })
                    .collect::<Option<Vec<String>>>()
                    .map(JsonPointer::from_segments)
            })
            .collect();
        Ok(ExtraFields { fixed, templates })
    }

    /// The pointers the selector names for this signal and thing.
    pub(super) fn pointers<'s>(
        &'s self,
        signal: &Envelope,
        thing: &Value,
    ) -> Cow<'s, [JsonPointer]> {
        if let Some(fixed) = &self.fixed {
            return Cow::Borrowed(fixed);
        }
        let mut out = Vec::new();
        for template in &self.templates {
            expand(template, signal, thing, &mut out);
        }
        Cow::Owned(out)
    }

    /// The `extra` for a subscriber acting as `auth`: the selected parts of `thing` it may READ;
    /// `None` when that is nothing (then Ditto sends no `extra`).
    ///
    /// What Ditto's retrieve of the partial thing as the subscriber answers: the selection cut
    /// by [`Enforcer::filter_readable`] at the root, which keeps the identity fields for whoever
    /// may read something of the thing. When READ holds on all of it, the selection is the
    /// answer and is not cloned a second time.
    pub(super) fn extra(
        &self,
        signal: &Envelope,
        thing: &Value,
        enforcer: &Enforcer,
        auth: &AuthContext,
    ) -> Option<Map<String, Value>> {
        let pointers = self.pointers(signal, thing);
        if pointers.is_empty() {
            return None;
        }
        let selected = json::select(thing, &pointers);
        let root = JsonPointer::root();
        let readable = if auth.is_unrestricted()
            || enforcer.has_permission(auth.subjects(), THING, &root, Permission::Read)
        {
            selected
        } else {
            enforcer.filter_readable(auth.subjects(), THING, &root, &selected)?
        };
        match readable {
            Value::Object(map) if !map.is_empty() => Some(map),
            _ => None,
        }
    }
}

fn expand(template: &[Segment], signal: &Envelope, thing: &Value, out: &mut Vec<JsonPointer>) {
    // Each segment may widen (a wildcard) or, through a placeholder's value, add slashes.
    let mut prefixes: Vec<Vec<String>> = vec![Vec::new()];
    for segment in template {
        match segment {
            Segment::Key(k) => prefixes.iter_mut().for_each(|p| p.push(k.clone())),
            Segment::FeatureWildcard => {
                let ids: Vec<&String> = thing
                    .get("features")
                    .and_then(Value::as_object)
                    .map(|f| f.keys().collect())
                    .unwrap_or_default();
                prefixes = prefixes
                    .into_iter()
                    .flat_map(|p| {
                        ids.iter().map(move |id| {
                            let mut p = p.clone();
                            p.push((*id).clone());
                            p
                        })
                    })
                    .collect();
            }
            Segment::Template(parts) => {
                let mut text = String::new();
                for part in parts {
                    match part {
                        Part::Text(t) => text.push_str(t),
                        Part::Value(source) => match resolve(source, signal) {
                            Some(v) => text.push_str(&v),
                            None => return,
                        },
                    }
                }
                let keys: Vec<&str> = text.split('/').filter(|s| !s.is_empty()).collect();
                prefixes
                    .iter_mut()
                    .for_each(|p| p.extend(keys.iter().map(|k| (*k).to_owned())));
            }
        }
    }
    out.extend(prefixes.into_iter().map(JsonPointer::from_segments));
}

fn resolve(source: &Source, signal: &Envelope) -> Option<String> {
    let topic = &signal.topic;
    match source {
        Source::EntityId => Some(topic.entity_id()),
        Source::EntityNamespace => Some(topic.namespace.clone()),
        Source::EntityName => Some(topic.name.clone()),
        Source::FeatureId => match signal.path.segments() {
            [first, id, ..] if first == "features" => Some(id.clone()),
            _ => None,
        },
        Source::Signal(p) => ThingContext::new(&Value::Null)
            .with_envelope(signal)
            .placeholder(*p),
        Source::Header(name) => signal.headers.get_str(name).map(Cow::into_owned),
    }
}

/// Splits `a{{ thing:id }}b` into text and placeholders.
fn parse_template(key: &str) -> Result<Vec<Part>, DittoError> {
    let mut parts = Vec::new();
    let mut rest = key;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            parts.push(Part::Text(rest[..open].to_owned()));
        }
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| unresolved(key))?;
        parts.push(Part::Value(source(after[..close].trim())?));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        parts.push(Part::Text(rest.to_owned()));
    }
    Ok(parts)
}

fn source(expression: &str) -> Result<Source, DittoError> {
    let (prefix, name) = expression
        .split_once(':')
        .ok_or_else(|| unresolved(expression))?;
    Ok(match (prefix, name) {
        ("thing" | "entity", "id") => Source::EntityId,
        ("thing" | "entity", "namespace") => Source::EntityNamespace,
        ("thing" | "entity", "name") => Source::EntityName,
        ("feature", "id") => Source::FeatureId,
        ("header", name) if !name.is_empty() && !name.contains('|') => {
            Source::Header(name.to_owned())
        }
        ("topic" | "resource", _) => {
            Source::Signal(Placeholder::parse(expression).ok_or_else(|| unresolved(expression))?)
        }
        _ => return Err(unresolved(expression)),
    })
}

/// Ditto's `UnresolvedPlaceholderException`.
fn unresolved(placeholder: &str) -> DittoError {
    DittoError::new(
        400,
        "placeholder:unresolved",
        format!("The placeholder '{placeholder}' could not be resolved."),
    )
    .with_description(
        "Some placeholders could not be resolved. Check the spelling of the placeholder and \
         make sure all required headers are set.",
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn signal(path: &str) -> Envelope {
        Envelope::from_json(json!({
            "topic": "org.eclipse.ditto/fancy-thing/things/twin/events/modified",
            "headers": {"x-unit-key": "unit"},
            "path": path,
            "value": 1
        }))
        .unwrap()
    }

    fn thing() -> Value {
        json!({
            "thingId": "org.eclipse.ditto:fancy-thing",
            "attributes": {"location": "Kitchen"},
            "features": {
                "temperature": {"properties": {"value": 23.42, "unit": "Celsius"}},
                "humidity": {"properties": {"value": 45, "unit": "%"}}
            }
        })
    }

    fn pointers(selector: &str, path: &str) -> Vec<String> {
        ExtraFields::compile(selector)
            .unwrap()
            .pointers(&signal(path), &thing())
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn fixed_selectors() {
        assert_eq!(
            pointers("attributes,features/temperature/properties/unit", "/"),
            ["/attributes", "/features/temperature/properties/unit"]
        );
        assert_eq!(
            pointers("attributes(location,x)", "/"),
            ["/attributes/location", "/attributes/x"]
        );
    }

    #[test]
    fn feature_wildcards_expand_to_the_things_features() {
        assert_eq!(
            pointers("features/*/properties/unit", "/"),
            [
                "/features/temperature/properties/unit",
                "/features/humidity/properties/unit"
            ]
        );
        // Only the feature ID position is a wildcard.
        assert_eq!(pointers("attributes/*", "/"), ["/attributes/*"]);
    }

    #[test]
    fn placeholders_resolve_per_signal() {
        let sel = "features/{{ feature:id }}/properties/unit";
        assert_eq!(
            pointers(sel, "/features/humidity/properties/value"),
            ["/features/humidity/properties/unit"]
        );
        // No feature: the pointer is left out.
        assert!(pointers(sel, "/attributes/location").is_empty());
        assert_eq!(
            pointers("attributes/{{header:x-unit-key}}", "/"),
            ["/attributes/unit"]
        );
        assert_eq!(
            pointers("attributes/{{ thing:name }}-{{topic:action}}", "/"),
            ["/attributes/fancy-thing-modified"]
        );
        assert_eq!(
            pointers("{{ resource:path }}", "/features/humidity"),
            ["/features/humidity"]
        );
    }

    #[test]
    fn refusals() {
        for (selector, code) in [
            ("attributes(", "json.fieldselector.invalid"),
            ("attributes/{{ policy:id }}", "placeholder:unresolved"),
            (
                "attributes/{{ thing:id | fn:lower }}",
                "placeholder:unresolved",
            ),
            ("attributes/{{ topic:nope }}", "placeholder:unresolved"),
            ("attributes/{{ thing:id", "placeholder:unresolved"),
        ] {
            let err = ExtraFields::compile(selector).unwrap_err();
            assert_eq!((err.status, err.code()), (400, code), "{selector}");
        }
    }

    /// Random policies, things and selectors: the shortcut for READ on all gives what cutting
    /// the selection at the root gives.
    #[test]
    fn extra_is_the_readable_selection() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let paths = [
            "/",
            "/thingId",
            "/attributes",
            "/attributes/a",
            "/attributes/a/b",
            "/features/f",
            "/features/f/properties/p",
        ];
        let selectors = [
            "thingId",
            "attributes",
            "attributes/a,thingId",
            "attributes/a/b,features",
            "features/*/properties/p,_revision",
            "attributes(a,b),features/f/properties",
        ];
        let thing = json!({
            "thingId": "ns:t", "_revision": 3, "policyId": "ns:p",
            "attributes": {"a": {"b": 1, "c": [1, 2]}, "b": "x"},
            "features": {"f": {"properties": {"p": 1, "q": 2}}, "g": {"properties": {"p": 3}}}
        });
        let no_imports = |_: &str| None;
        for _ in 0..2000 {
            let mut resources = Map::new();
            for _ in 0..1 + next(3) {
                let (grant, revoke) = match next(3) {
                    0 => (json!(["READ"]), json!([])),
                    1 => (json!([]), json!(["READ"])),
                    _ => (json!(["READ"]), json!(["READ"])),
                };
                resources.insert(
                    format!("thing:{}", paths[next(paths.len() as u64) as usize]),
                    json!({"grant": grant, "revoke": revoke}),
                );
            }
            let policy = json!({"entries": {"e": {
                "subjects": {"s:a": {"type": "t"}}, "resources": resources}}});
            let enforcer = Enforcer::compile(&policy, None, 0, &no_imports).unwrap();
            let auth = AuthContext::new(["s:a"]).unwrap();
            let selector = selectors[next(selectors.len() as u64) as usize];
            let fields = ExtraFields::compile(selector).unwrap();
            let sig = signal("/");
            let pointers = fields.pointers(&sig, &thing);
            let reference = enforcer
                .filter_readable(
                    &["s:a"],
                    THING,
                    &JsonPointer::root(),
                    &json::select(&thing, &pointers),
                )
                .and_then(|v| match v {
                    Value::Object(m) if !m.is_empty() => Some(m),
                    _ => None,
                });
            assert_eq!(
                fields.extra(&sig, &thing, &enforcer, &auth),
                reference,
                "{selector} under {policy}"
            );
        }
    }
}
