//! Evaluating a [`Predicate`] against what an [`RqlContext`] offers, as Ditto's
//! `ThingPredicateVisitor` (rql/query) does in memory for conditions and change-notification
//! filters: how a property is looked up (arrays along the way are flattened), which values of it
//! are compared, and how missing fields, `null`s and placeholders behave.

use super::ast::{Comparison, Placeholder, Predicate, Property, RqlValue};
use super::java::{self, JavaNumber, JavaObject};
use super::{like, time};
use crate::envelope::Envelope;
use crate::pointer::JsonPointer;
use crate::topic::{Criterion, Group, Topic};
use serde_json::Value;
use std::cmp::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

/// What an expression is evaluated against.
///
/// The evaluator, not the context, walks the thing: Ditto flattens arrays of objects met along a
/// property's path (`attributes/rooms/name` reads `name` from every room), which a context
/// returning one `&Value` per pointer could not express.
pub trait RqlContext {
    /// The thing JSON that thing properties are read from: the twin for a condition, the thing
    /// an event describes for a change-notification filter. `Value::Null` when there is none.
    fn thing(&self) -> &Value;

    /// The value of a `topic:<name>` or `resource:<name>` placeholder for the filtered message;
    /// `None` when it has none (`topic:action` of a live message).
    fn placeholder(&self, placeholder: Placeholder) -> Option<String>;

    /// The current time, in milliseconds since the Unix epoch, for `time:now…` values.
    fn now_millis(&self) -> i64;
}

/// An [`RqlContext`] over a thing's JSON, optionally with the message that placeholders read.
#[derive(Debug, Clone, Copy)]
pub struct ThingContext<'a> {
    thing: &'a Value,
    topic: Option<&'a Topic>,
    resource: Option<(&'a str, &'a JsonPointer)>,
    now_millis: Option<i64>,
}

impl<'a> ThingContext<'a> {
    /// A thing without a message: placeholders resolve to nothing, "now" is the system clock.
    pub fn new(thing: &'a Value) -> Self {
        ThingContext {
            thing,
            topic: None,
            resource: None,
            now_millis: None,
        }
    }

    /// The message's topic, for `topic:*`.
    pub fn with_topic(mut self, topic: &'a Topic) -> Self {
        self.topic = Some(topic);
        self
    }

    /// The affected resource, for `resource:type` (`thing`, `policy`, `message`, `connection`)
    /// and `resource:path` (the Ditto Protocol path).
    pub fn with_resource(mut self, resource_type: &'a str, path: &'a JsonPointer) -> Self {
        self.resource = Some((resource_type, path));
        self
    }

    /// Topic and resource of an envelope; the resource type follows from the topic as Ditto's
    /// signals declare it (a thing's messages are `message`, its other signals `thing`).
    pub fn with_envelope(self, envelope: &'a Envelope) -> Self {
        let resource_type = match (envelope.topic.group, &envelope.topic.criterion) {
            (Group::Things, Criterion::Messages(_)) => "message",
            (Group::Things, _) => "thing",
            (Group::Policies, _) => "policy",
            (Group::Connections, _) => "connection",
        };
        self.with_topic(&envelope.topic)
            .with_resource(resource_type, &envelope.path)
    }

    /// A fixed "now" instead of the system clock.
    pub fn with_now_millis(mut self, now_millis: i64) -> Self {
        self.now_millis = Some(now_millis);
        self
    }
}

impl RqlContext for ThingContext<'_> {
    fn thing(&self) -> &Value {
        self.thing
    }

    /// Ditto's `TopicPathPlaceholder` and `ResourcePlaceholder`.
    fn placeholder(&self, placeholder: Placeholder) -> Option<String> {
        match placeholder.prefix() {
            "topic" => {
                let topic = self.topic?;
                let action = match &topic.criterion {
                    Criterion::Commands(a) => Some(a.as_str()),
                    Criterion::Events(a) => Some(a.as_str()),
                    _ => None,
                };
                let subject = match &topic.criterion {
                    Criterion::Messages(s) | Criterion::Announcements(s) => Some(s.as_str()),
                    Criterion::Acks(label) => label.as_ref().map(|l| l.as_str()),
                    _ => None,
                };
                Some(match placeholder.name() {
                    "full" => topic.to_string(),
                    "namespace" => topic.namespace.clone(),
                    "entityName" => topic.name.clone(),
                    "group" => topic.group.as_str().to_owned(),
                    "channel" => topic.channel.as_str().to_owned(),
                    "criterion" => topic.criterion.name().to_owned(),
                    "action" => action?.to_owned(),
                    "subject" => subject?.to_owned(),
                    "action-subject" => subject.or(action)?.to_owned(),
                    _ => return None,
                })
            }
            "resource" => {
                let (resource_type, path) = self.resource?;
                match placeholder.name() {
                    "type" => Some(resource_type.to_owned()),
                    "path" => Some(path.to_string()),
                    _ => None,
                }
            }
            _ => None,
        }
    }

    fn now_millis(&self) -> i64 {
        self.now_millis.unwrap_or_else(system_now_millis)
    }
}

fn system_now_millis() -> i64 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |ms| -ms),
    }
}

impl Predicate {
    /// Whether the expression holds in `ctx`.
    pub fn matches(&self, ctx: &(impl RqlContext + ?Sized)) -> bool {
        match self {
            Predicate::And(children) => children.iter().all(|c| c.matches(ctx)),
            Predicate::Or(children) => children.iter().any(|c| c.matches(ctx)),
            Predicate::Not(child) => !child.matches(ctx),
            Predicate::Compare {
                op,
                property,
                value,
            } => {
                let resolved = resolve_value(value, ctx);
                let value = java_value(value, resolved.as_deref());
                let any = |test: &dyn Fn(JavaObject<'_>) -> bool| {
                    Field::read(property, ctx, true).is_some_and(|f| f.any_scalar(test))
                };
                match op {
                    Comparison::Eq => any(&|obj| equals(value, obj)),
                    // Ditto's ne is "not eq": a missing field, or an array without the value,
                    // matches.
                    Comparison::Ne => !any(&|obj| equals(value, obj)),
                    Comparison::Gt => {
                        any(&|obj| java::compare(value, obj) == Some(Ordering::Greater))
                    }
                    Comparison::Ge => any(&|obj| {
                        matches!(
                            java::compare(value, obj),
                            Some(Ordering::Greater | Ordering::Equal)
                        )
                    }),
                    Comparison::Lt => any(&|obj| java::compare(value, obj) == Some(Ordering::Less)),
                    Comparison::Le => any(&|obj| {
                        matches!(
                            java::compare(value, obj),
                            Some(Ordering::Less | Ordering::Equal)
                        )
                    }),
                }
            }
            Predicate::In { property, values } => {
                let resolved: Vec<Option<String>> =
                    values.iter().map(|v| resolve_value(v, ctx)).collect();
                let values: Vec<JavaObject<'_>> = values
                    .iter()
                    .zip(&resolved)
                    .map(|(v, r)| java_value(v, r.as_deref()))
                    .collect();
                // A `null` among the values never matches: Ditto compares it with
                // `compare(null, obj)` and fails with a NullPointerException.
                Field::read(property, ctx, true).is_some_and(|f| {
                    f.any_scalar(&|obj| {
                        values
                            .iter()
                            .any(|v| java::compare(*v, obj) == Some(Ordering::Equal))
                    })
                })
            }
            Predicate::Like {
                property,
                pattern,
                ignore_case,
            } => Field::read(property, ctx, true).is_some_and(|f| {
                f.any_scalar(&|obj| match obj.to_java_string() {
                    Some(text) => like::matches(pattern, &text, *ignore_case),
                    // Java matches `java.lang.Object@<hash>` for a null; of all patterns only
                    // the ones that match anything match that reliably.
                    None => !pattern.is_empty() && pattern.chars().all(|c| c == '*'),
                })
            }),
            Predicate::Exists(property) => {
                Field::read_for_exists(property, ctx).is_some_and(|f| f.exists())
            }
            Predicate::Empty(property) => {
                Field::read_for_exists(property, ctx).is_none_or(|f| f.is_empty())
            }
        }
    }
}

/// `eq`'s test: a `null` value matches a `null` field, otherwise `compare` is `Equal`.
fn equals(value: JavaObject<'_>, obj: JavaObject<'_>) -> bool {
    match (value, obj) {
        (JavaObject::Null, JavaObject::Null) => true,
        _ => java::compare(value, obj) == Some(Ordering::Equal),
    }
}

/// A `time:` value's string, resolved once per evaluation.
fn resolve_value(value: &RqlValue, ctx: &(impl RqlContext + ?Sized)) -> Option<String> {
    match value {
        RqlValue::Time(name) => time::resolve(name, ctx.now_millis()),
        _ => None,
    }
}

/// An expression value as Ditto's visitor holds it; an unresolved placeholder is Java `null`.
fn java_value<'v>(value: &'v RqlValue, resolved: Option<&'v str>) -> JavaObject<'v> {
    match value {
        RqlValue::Null => JavaObject::Null,
        RqlValue::Bool(b) => JavaObject::Bool(*b),
        RqlValue::Long(n) => JavaObject::Num(JavaNumber::Long(*n)),
        RqlValue::Double(d) => JavaObject::Num(JavaNumber::Double(*d)),
        RqlValue::String(s) => JavaObject::Str(s),
        RqlValue::Time(_) => resolved.map_or(JavaObject::Null, JavaObject::Str),
    }
}

/// Ditto hides these thing fields from `thing.toJson()`, which its `exists` and `empty` read for
/// top-level fields, so there `exists(_revision)` never holds and `empty(_revision)` always
/// does; comparisons read `thing.toJson(p -> true)` and see them.
const HIDDEN_FIELDS: [&str; 5] = [
    "_namespace",
    "_revision",
    "_modified",
    "_created",
    "_metadata",
];

/// What a property reads.
enum Field<'a> {
    /// Values found in the thing. `collected` when the path went through an array: Ditto then
    /// gathers the values into a new JSON array, which is never empty.
    Thing {
        values: Vec<&'a Value>,
        collected: bool,
    },
    /// A placeholder's value, a JSON string in Ditto.
    Placeholder(String),
}

impl<'a> Field<'a> {
    /// `getThingField`: the property's values, flattening arrays along the path if `flatten`.
    fn read(
        property: &Property,
        ctx: &'a (impl RqlContext + ?Sized),
        flatten: bool,
    ) -> Option<Field<'a>> {
        match property {
            Property::Placeholder(p) => ctx.placeholder(*p).map(Field::Placeholder),
            Property::Thing(pointer) if flatten => lookup_flattening(ctx.thing(), pointer),
            Property::Thing(pointer) => pointer.get(ctx.thing()).map(|v| Field::Thing {
                values: vec![v],
                collected: false,
            }),
        }
    }

    /// The lookup Ditto's `ExistsThingPredicateVisitor` and `EmptyThingPredicateVisitor` make:
    /// flattening except below `_metadata`, and blind to hidden top-level fields.
    fn read_for_exists(
        property: &Property,
        ctx: &'a (impl RqlContext + ?Sized),
    ) -> Option<Field<'a>> {
        if let Property::Thing(pointer) = property {
            match pointer.segments() {
                [field] if HIDDEN_FIELDS.contains(&field.as_str()) => return None,
                [first, ..] if first == "_metadata" => return Field::read(property, ctx, false),
                _ => {}
            }
        }
        Field::read(property, ctx, true)
    }

    fn exists(&self) -> bool {
        match self {
            Field::Thing { values, .. } => !values.is_empty(),
            Field::Placeholder(_) => true,
        }
    }

    /// `null`, `""`, `[]` or `{}`; a placeholder resolving to `""` is empty too.
    fn is_empty(&self) -> bool {
        match self {
            Field::Thing {
                collected: true, ..
            } => false,
            Field::Thing { values, .. } => values.first().is_none_or(|v| match v {
                Value::Null => true,
                Value::String(s) => s.is_empty(),
                Value::Array(a) => a.is_empty(),
                Value::Object(o) => o.is_empty(),
                Value::Bool(_) | Value::Number(_) => false,
            }),
            Field::Placeholder(s) => s.is_empty(),
        }
    }

    /// Whether `test` holds for any scalar of the field, arrays flattened at any depth and
    /// objects skipped (`mapJsonValueToJava`).
    fn any_scalar(&self, test: &dyn Fn(JavaObject<'_>) -> bool) -> bool {
        let values = match self {
            Field::Placeholder(s) => return test(JavaObject::Str(s)),
            Field::Thing { values, .. } => values,
        };
        // An explicit stack: nested arrays must not recurse on the call stack.
        let mut stack: Vec<&Value> = values.iter().rev().copied().collect();
        while let Some(value) = stack.pop() {
            let obj = match value {
                Value::Array(items) => {
                    stack.extend(items.iter().rev());
                    continue;
                }
                Value::Object(_) => continue,
                Value::Null => JavaObject::Null,
                Value::Bool(b) => JavaObject::Bool(*b),
                Value::Number(n) => JavaObject::Num(JavaNumber::from_json(n)),
                Value::String(s) => JavaObject::Str(s),
            };
            if test(obj) {
                return true;
            }
        }
        false
    }
}

/// Ditto's `JsonObject.getValueFlatteningArrays`: follow the pointer's keys; where a key (not
/// the last) holds an array, continue in each of its objects and gather what they hold.
fn lookup_flattening<'a>(thing: &'a Value, pointer: &JsonPointer) -> Option<Field<'a>> {
    let Some((last, path)) = pointer.segments().split_last() else {
        return Some(Field::Thing {
            values: vec![thing],
            collected: false,
        });
    };
    let mut objects = vec![thing];
    let mut collected = false;
    for key in path {
        let mut next = Vec::new();
        for object in objects {
            match object.as_object().and_then(|o| o.get(key)) {
                Some(child @ Value::Object(_)) => next.push(child),
                Some(Value::Array(items)) => {
                    collected = true;
                    next.extend(items.iter().filter(|i| i.is_object()));
                }
                _ => {}
            }
        }
        objects = next;
    }
    let values: Vec<&Value> = objects
        .into_iter()
        .filter_map(|o| o.as_object()?.get(last))
        .collect();
    (!values.is_empty()).then_some(Field::Thing { values, collected })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rql::{parse, parse_condition};
    use serde_json::json;

    fn thing() -> Value {
        json!({
            "thingId": "org.eclipse.ditto:fancy-thing",
            "policyId": "org.eclipse.ditto:fancy-thing",
            "_revision": 3,
            "_modified": "2021-08-10T15:07:20.398Z",
            "_metadata": {"attributes": {"location": {"issuedAt": "x"}}},
            "attributes": {
                "location": "kitchen",
                "count": 42,
                "ratio": 0.5,
                "tags": ["a", "b", ["c"]],
                "rooms": [{"name": "hall", "size": 10}, {"name": "attic"}, 5],
                "nothing": null,
                "emptyString": "",
                "emptyList": [],
                "emptyObject": {},
                "flag": false
            },
            "features": {
                "lamp": {"properties": {"on": true}}
            }
        })
    }

    fn check(expr: &str) -> bool {
        let thing = thing();
        parse(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .matches(&ThingContext::new(&thing).with_now_millis(1_704_551_022_123))
    }

    #[test]
    fn arrays_on_the_path_are_flattened() {
        assert!(check("eq(attributes/rooms/name,\"attic\")"));
        assert!(check("gt(attributes/rooms/size,9)"));
        assert!(!check("exists(attributes/rooms/color)"));
        assert!(check("exists(attributes/rooms/size)"));
        // The gathered values form a new array, which is never empty.
        assert!(!check("empty(attributes/rooms/size)"));
    }

    #[test]
    fn arrays_at_the_end_match_any_element() {
        assert!(check("eq(attributes/tags,\"b\")"));
        assert!(check("eq(attributes/tags,\"c\")"), "nested arrays too");
        assert!(!check("ne(attributes/tags,\"a\")"));
        assert!(check("ne(attributes/tags,\"z\")"));
        assert!(check("in(attributes/tags,\"x\",\"a\")"));
    }

    #[test]
    fn hidden_fields_neither_exist_nor_have_content_for_exists_and_empty() {
        assert!(check("eq(_revision,3)"));
        assert!(!check("exists(_revision)"));
        assert!(check("empty(_modified)"));
        assert!(check("exists(_metadata/attributes/location)"));
        assert!(check("exists(thingId)"));
    }

    #[test]
    fn null_only_equals_null() {
        assert!(check("eq(attributes/nothing,null)"));
        assert!(!check("ne(attributes/nothing,null)"));
        assert!(!check("eq(attributes/missing,null)"));
        assert!(check("ne(attributes/location,null)"));
        assert!(!check("gt(attributes/nothing,null)"));
        assert!(!check("in(attributes/nothing,null)"));
        assert!(check("like(attributes/nothing,\"*\")"));
        assert!(!check("like(attributes/nothing,\"n*\")"));
        // An unsupported time placeholder is null.
        assert!(check("eq(attributes/nothing,time:tomorrow)"));
    }

    #[test]
    fn time_values() {
        assert!(check("lt(_modified,time:now)"));
        assert!(check("lt(_revision,time:now_epoch_millis)"));
        assert!(check("gt(_modified,time:now-3y[y])"));
    }

    #[test]
    fn topic_and_resource_placeholders() {
        let thing = json!({"thingId": "org.eclipse.ditto:t"});
        let env = Envelope::from_json(json!({
            "topic": "org.eclipse.ditto/t/things/live/messages/hello.world",
            "headers": {"content-type": "text/plain"},
            "path": "/inbox/messages/hello.world",
            "value": "hi"
        }))
        .unwrap();
        let ctx = ThingContext::new(&thing).with_envelope(&env);
        let holds = |e: &str| parse(e).unwrap().matches(&ctx);
        assert!(holds("eq(topic:subject,\"hello.world\")"));
        assert!(holds("eq(topic:action-subject,\"hello.world\")"));
        assert!(holds("eq(topic:channel,\"live\")"));
        assert!(holds("eq(topic:criterion,\"messages\")"));
        assert!(holds(
            "eq(topic:full,\"org.eclipse.ditto/t/things/live/messages/hello.world\")"
        ));
        assert!(holds("eq(topic:namespace,\"org.eclipse.ditto\")"));
        assert!(holds("eq(topic:entityName,\"t\")"));
        assert!(holds("eq(topic:group,\"things\")"));
        assert!(!holds("exists(topic:action)"));
        assert!(holds("empty(topic:action)"));
        assert!(holds("ne(topic:action,\"created\")"));
        assert!(holds("eq(resource:type,\"message\")"));
        assert!(holds("eq(resource:path,\"/inbox/messages/hello.world\")"));
        assert!(holds("like(resource:path,\"/inbox/*\")"));
        // Without a message, placeholders resolve to nothing.
        let bare = ThingContext::new(&thing);
        assert!(!parse("exists(topic:channel)").unwrap().matches(&bare));
    }

    #[test]
    fn conditions_refuse_placeholders() {
        assert!(parse_condition("eq(topic:action,\"created\")").is_err());
        assert!(parse_condition("eq(attributes/a,time:now)").is_ok());
    }

    #[test]
    fn evaluates_through_a_trait_object() {
        let thing = thing();
        let ctx: &dyn RqlContext = &ThingContext::new(&thing);
        assert!(parse("exists(features/lamp)").unwrap().matches(ctx));
    }
}
