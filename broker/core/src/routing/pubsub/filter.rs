//! The thing a subscription's RQL filter is evaluated against, as Ditto builds it
//! (things/model `ThingEventToThingConverter.mergeThingWithExtraFields`, used by the gateway's
//! `StreamingSession.mergeThingWithExtra` and connectivity's `OutboundMappingProcessorActor`):
//!
//! - a twin or live event becomes a thing holding only what changed: `thingId`, `_namespace`,
//!   `_revision` and `_modified` (the event's timestamp), plus the event's value at its path
//!   (a merge's `null`s left out; a deletion adds nothing), so "the filter applies to the
//!   modified data" (docs/basic-changenotifications.md);
//! - the extra fields are merged in, the event's data winning where both have a field, so
//!   unchanged data can be filtered on once it is enriched (docs/basic-enrichment.md);
//! - any other signal (live commands and messages, announcements) is filtered against its
//!   extra fields alone, or an empty thing.
//!
//! Ditto evaluates the filter on the whole event and cuts it for READ afterwards
//! (gateway `WebSocketRoute.postprocess`); twinwire builds the filter's thing from the event as
//! the subscriber may see it, so that a filter cannot tell a subscriber anything about values
//! it may not read.

use super::subscription::Kind;
use serde_json::{Map, Value};
use twinwire_protocol::topic::{Criterion, EventAction};
use twinwire_protocol::{Envelope, JsonPointer};

/// The thing the filter of a subscriber sees: `view` is the signal as it may see it, `extra`
/// its enrichment, `reads` the thing fields the filter reads ([`Predicate::properties`]
/// (twinwire_protocol::rql::Predicate::properties)).
///
/// Only what lies along `reads` is copied: the evaluator follows a property's keys (through
/// arrays, which are copied whole, and scalars, where it stops) and looks at nothing else, so
/// the filter answers as it would on the whole thing, without cloning all of an event's value
/// and extra fields for every subscriber.
pub(super) fn filter_thing(
    kind: Kind,
    view: &Envelope,
    extra: Option<&Map<String, Value>>,
    reads: &[JsonPointer],
) -> Value {
    let mut thing = match kind {
        Kind::TwinEvents | Kind::LiveEvents => event_thing(view, reads),
        _ => None,
    };
    if let Some(extra) = extra.filter(|e| !e.is_empty()) {
        let extra = extra_along(extra, reads);
        match &mut thing {
            // The event's data wins.
            Some(base) => merge_into(base, extra),
            None => return Value::Object(extra),
        }
    }
    Value::Object(thing.unwrap_or_default())
}

/// `ThingEventToThingConverter.thingEventToThing`, along `reads`.
fn event_thing(event: &Envelope, reads: &[JsonPointer]) -> Option<Map<String, Value>> {
    let Criterion::Events(action) = event.topic.criterion else {
        return None;
    };
    let merged = action == EventAction::Merged;
    let mut thing = Map::new();
    let value = match (action, &event.value) {
        (EventAction::Deleted, _) | (_, None) => None,
        (_, Some(v)) => Some(v),
    };
    if let Some(value) = value {
        let at = event.path.segments();
        for read in reads {
            let read = read.segments();
            let part = if let Some(rest) = read.strip_prefix(at) {
                // The field lies within the value.
                nest(at, along(value, rest, merged))
            } else if at.starts_with(read) {
                // The whole value lies within the field.
                nest(at, whole(value, merged))
            } else {
                // They part ways: what the field meets are the objects down to there.
                let shared = at.iter().zip(read).take_while(|(a, b)| a == b).count();
                nest(&at[..shared], Value::Object(Map::new()))
            };
            union(&mut thing, part);
        }
    }
    // Ditto's builder sets these; a created thing's own fields take their place.
    for key in ["_revision", "_modified", "_namespace", "thingId"] {
        if thing.contains_key(key) || !reads.iter().any(|r| r.first() == Some(key)) {
            continue;
        }
        let value = match key {
            "_revision" => event.revision.map(Value::from),
            "_modified" => event.timestamp.clone().map(Value::String),
            "_namespace" => Some(Value::String(event.topic.namespace.clone())),
            _ => Some(Value::String(event.topic.entity_id())),
        };
        if let Some(value) = value {
            thing.insert(key.to_owned(), value);
        }
    }
    Some(thing)
}

/// The part of `value` along `path`: the objects down to the end of the path, or to the first
/// array or scalar on the way (copied whole). An object stays even where the path's key is
/// missing in it, since in a merge with the extra fields it still wins over what they hold
/// there. A merge's `null` members do not exist, and its `null` value is an empty object.
fn along(value: &Value, path: &[String], merged: bool) -> Value {
    let Some((key, rest)) = path.split_first() else {
        return whole(value, merged);
    };
    match value {
        Value::Object(members) => {
            let mut out = Map::new();
            match members.get(key) {
                Some(Value::Null) if merged => {}
                Some(child) => {
                    out.insert(key.clone(), along(child, rest, merged));
                }
                None => {}
            }
            Value::Object(out)
        }
        Value::Null if merged => Value::Object(Map::new()),
        other => other.clone(),
    }
}

fn whole(value: &Value, merged: bool) -> Value {
    if merged {
        without_nulls(value)
    } else {
        value.clone()
    }
}

/// `value` placed at `path` (the root: `value`'s own fields).
fn nest(path: &[String], value: Value) -> Map<String, Value> {
    let mut value = value;
    for key in path.iter().rev() {
        let mut wrapper = Map::new();
        wrapper.insert(key.clone(), value);
        value = Value::Object(wrapper);
    }
    match value {
        Value::Object(map) => map,
        _ => Map::new(),
    }
}

/// Adds `more`, a part of the same thing as `into`, to it.
fn union(into: &mut Map<String, Value>, more: Map<String, Value>) {
    for (key, value) in more {
        match (into.get_mut(&key), value) {
            (Some(Value::Object(a)), Value::Object(b)) => union(a, b),
            (Some(_), _) => {}
            (None, value) => {
                into.insert(key, value);
            }
        }
    }
}

/// The parts of the extra fields along `reads`.
fn extra_along(extra: &Map<String, Value>, reads: &[JsonPointer]) -> Map<String, Value> {
    let mut out = Map::new();
    for read in reads {
        let Some((key, rest)) = read.segments().split_first() else {
            continue;
        };
        let Some(child) = extra.get(key) else {
            continue;
        };
        let part = along(child, rest, false);
        let mut one = Map::new();
        one.insert(key.clone(), part);
        union(&mut out, one);
    }
    out
}

/// `filterNullValuesInJsonValue`: `null` members dropped at any depth of objects, a `null`
/// itself becomes `{}`, arrays stay as they are.
fn without_nulls(value: &Value) -> Value {
    match value {
        Value::Null => Value::Object(Map::new()),
        Value::Object(members) => Value::Object(
            members
                .iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k.clone(), without_nulls(v)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `JsonObjectMerger.mergeJsonObjects(base, extra)`: objects merge recursively, anything else
/// (arrays included) keeps `base`'s value.
fn merge_into(base: &mut Map<String, Value>, extra: Map<String, Value>) {
    for (key, value) in extra {
        match (base.get_mut(&key), value) {
            (None, value) => {
                base.insert(key, value);
            }
            (Some(Value::Object(b)), Value::Object(e)) => merge_into(b, e),
            (Some(_), _) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use twinwire_protocol::rql::{self, ThingContext};

    /// Ditto's whole thing, as `mergeThingWithExtraFields` builds it: the reference that
    /// [`filter_thing`] must answer the same filters as.
    fn full(kind: Kind, view: &Envelope, extra: Option<&Map<String, Value>>) -> Value {
        let every_field: Vec<JsonPointer> = ["_revision", "_modified", "_namespace", "thingId"]
            .into_iter()
            .map(|k| JsonPointer::from_segments([k]))
            .chain(std::iter::once(JsonPointer::root()))
            .collect();
        let base = match kind {
            Kind::TwinEvents | Kind::LiveEvents => {
                let Criterion::Events(action) = view.topic.criterion else {
                    unreachable!()
                };
                let mut thing = event_thing(view, &every_field[..4]).unwrap();
                let merged = action == EventAction::Merged;
                if let (false, Some(v)) = (action == EventAction::Deleted, &view.value) {
                    let v = whole(v, merged);
                    match (&v, view.path.is_root()) {
                        (Value::Object(fields), true) => {
                            for (k, f) in fields {
                                thing.insert(k.clone(), f.clone());
                            }
                        }
                        _ => {
                            crate::things::json::set(&mut thing, &view.path, v);
                        }
                    }
                }
                Some(thing)
            }
            _ => None,
        };
        match (base, extra.filter(|e| !e.is_empty())) {
            (Some(mut base), Some(extra)) => {
                merge_into(&mut base, extra.clone());
                Value::Object(base)
            }
            (Some(base), None) => Value::Object(base),
            (None, Some(extra)) => Value::Object(extra.clone()),
            (None, None) => Value::Object(Map::new()),
        }
    }

    fn event(topic: &str, path: &str, value: Option<Value>) -> Envelope {
        let mut env = json!({"topic": topic, "path": path, "revision": 7,
                             "timestamp": "2026-01-01T00:00:00Z"});
        if let Some(v) = value {
            env["value"] = v;
        }
        Envelope::from_json(env).unwrap()
    }

    fn p(s: &str) -> JsonPointer {
        JsonPointer::parse(s).unwrap()
    }

    #[test]
    fn an_event_becomes_the_thing_it_changed() {
        let e = event(
            "ns/t/things/twin/events/modified",
            "/features/f/properties/p",
            Some(json!(42)),
        );
        assert_eq!(
            full(Kind::TwinEvents, &e, None),
            json!({"_revision": 7, "_modified": "2026-01-01T00:00:00Z", "_namespace": "ns",
                   "thingId": "ns:t", "features": {"f": {"properties": {"p": 42}}}})
        );
        // Only what the filter reads.
        assert_eq!(
            filter_thing(
                Kind::TwinEvents,
                &e,
                None,
                &[p("/thingId"), p("/features/f")]
            ),
            json!({"features": {"f": {"properties": {"p": 42}}}, "thingId": "ns:t"})
        );
        assert_eq!(
            filter_thing(Kind::TwinEvents, &e, None, &[p("/features/g/properties/p")]),
            json!({"features": {}}),
            "the objects on the way, which win over extra fields"
        );
        let created = event(
            "ns/t/things/twin/events/created",
            "/",
            Some(json!({"thingId": "ns:t", "policyId": "ns:p", "attributes": {"a": 1, "b": 2}})),
        );
        assert_eq!(
            filter_thing(
                Kind::TwinEvents,
                &created,
                None,
                &[p("/policyId"), p("/attributes/a")]
            ),
            json!({"policyId": "ns:p", "attributes": {"a": 1}})
        );
        let deleted = event("ns/t/things/twin/events/deleted", "/attributes/a", None);
        assert_eq!(
            full(Kind::TwinEvents, &deleted, None)
                .as_object()
                .map(Map::len),
            Some(4)
        );
    }

    #[test]
    fn merges_leave_out_nulls() {
        let e = event(
            "ns/t/things/twin/events/merged",
            "/attributes",
            Some(json!({"a": null, "b": {"c": null, "d": 1}, "e": [null]})),
        );
        assert_eq!(
            full(Kind::TwinEvents, &e, None)["attributes"],
            json!({"b": {"d": 1}, "e": [null]})
        );
        assert_eq!(
            filter_thing(
                Kind::TwinEvents,
                &e,
                None,
                &[p("/attributes/a"), p("/attributes/b")]
            ),
            json!({"attributes": {"b": {"d": 1}}})
        );
        let e = event(
            "ns/t/things/twin/events/merged",
            "/attributes/a",
            Some(Value::Null),
        );
        assert_eq!(
            full(Kind::TwinEvents, &e, None)["attributes"],
            json!({"a": {}})
        );
    }

    #[test]
    fn the_event_wins_over_extra_fields() {
        let e = event(
            "ns/t/things/twin/events/modified",
            "/attributes/a",
            Some(json!({"x": 1, "list": [1]})),
        );
        let extra = json!({"attributes": {"a": {"x": 2, "y": 3, "list": [2]}, "b": true},
                           "thingId": "other"});
        let thing = full(Kind::TwinEvents, &e, extra.as_object());
        assert_eq!(
            thing["attributes"],
            json!({"a": {"x": 1, "list": [1], "y": 3}, "b": true})
        );
        assert_eq!(thing["thingId"], "ns:t");
        let reads = [p("/attributes/a/y"), p("/attributes/a/list"), p("/thingId")];
        assert_eq!(
            filter_thing(Kind::TwinEvents, &e, extra.as_object(), &reads),
            json!({"attributes": {"a": {"list": [1], "y": 3}}, "thingId": "ns:t"})
        );
    }

    #[test]
    fn other_signals_see_only_their_extra_fields() {
        let msg = event("ns/t/things/live/messages/ask", "/inbox/messages/ask", None);
        let reads = [p("/attributes/room")];
        assert_eq!(
            filter_thing(Kind::LiveMessages, &msg, None, &reads),
            json!({})
        );
        let extra = json!({"attributes": {"room": "hall", "other": 1}});
        assert_eq!(
            filter_thing(Kind::LiveMessages, &msg, extra.as_object(), &reads),
            json!({"attributes": {"room": "hall"}})
        );
    }

    /// Random events, extra fields and filters: the filter answers the same on the thing built
    /// along its fields as on Ditto's whole thing.
    #[test]
    fn filters_answer_as_on_the_whole_thing() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        fn value(next: &mut dyn FnMut(u64) -> u64, depth: u32) -> Value {
            match if depth == 0 { next(3) } else { next(6) } {
                0 => json!(next(5)),
                1 => Value::Null,
                2 => json!("s"),
                3 => json!([value(next, depth - 1), {"a": next(5)}]),
                _ => {
                    let mut m = Map::new();
                    for k in ["a", "b", "c"] {
                        if next(3) != 0 {
                            m.insert(k.into(), value(next, depth - 1));
                        }
                    }
                    Value::Object(m)
                }
            }
        }
        let fields = [
            "attributes/a",
            "attributes/a/b",
            "attributes/a/a",
            "attributes/b/c/a",
            "attributes/c",
            "thingId",
            "_revision",
            "_namespace",
            "policyId",
        ];
        let paths = [
            "/",
            "/attributes",
            "/attributes/a",
            "/attributes/a/b",
            "/policyId",
        ];
        let actions = ["created", "modified", "merged", "deleted"];
        let mut checked = 0;
        for _ in 0..3000 {
            let path = paths[next(paths.len() as u64) as usize];
            let action = actions[next(4) as usize];
            let v = match path {
                "/" => json!({"attributes": value(&mut next, 3), "policyId": "ns:p"}),
                "/policyId" => json!("ns:p"),
                _ => value(&mut next, 3),
            };
            let e = event(
                &format!("ns/t/things/twin/events/{action}"),
                path,
                (action != "deleted").then_some(v),
            );
            let extra = json!({"attributes": value(&mut next, 3), "thingId": "x:y"});
            let extra = (next(2) == 0).then(|| extra.as_object().cloned().unwrap());
            let field =
                |next: &mut dyn FnMut(u64) -> u64| fields[next(fields.len() as u64) as usize];
            let expression = match next(5) {
                0 => format!("exists({})", field(&mut next)),
                1 => format!("empty({})", field(&mut next)),
                2 => format!("eq({},{})", field(&mut next), next(5)),
                3 => format!("ne({},\"s\")", field(&mut next)),
                _ => format!(
                    "and(exists({}),not(eq({},null)))",
                    field(&mut next),
                    field(&mut next)
                ),
            };
            let filter = rql::parse(&expression).unwrap();
            let reads: Vec<JsonPointer> = filter.properties().into_iter().cloned().collect();
            let whole = full(Kind::TwinEvents, &e, extra.as_ref());
            let part = filter_thing(Kind::TwinEvents, &e, extra.as_ref(), &reads);
            let ctx = |t| ThingContext::new(t).with_envelope(&e).with_now_millis(0);
            assert_eq!(
                filter.matches(&ctx(&whole)),
                filter.matches(&ctx(&part)),
                "{expression} on {whole} vs {part}, event {}, extra {extra:?}",
                e.to_json()
            );
            checked += usize::from(filter.matches(&ctx(&whole)));
        }
        assert!(checked > 300, "enough filters hold: {checked}");
    }
}
