//! RQL against the reference: every expression of docs/basic-rql.md, basic-conditional-requests.md,
//! basic-changenotifications.md (and the array examples of basic-search.md) parsed and evaluated
//! against the things those pages show; every operator; Ditto's treatment of mixed types, missing
//! fields, `null` and placeholders; errors with their positions; hostile input.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{json, Value};
use std::time::{Duration, Instant};
use twinwire_protocol::rql::{
    self, Predicate, Property, RqlErrorKind, RqlValue, ThingContext, MAX_EXPRESSION_BYTES,
    MAX_NESTING_DEPTH,
};
use twinwire_protocol::{Envelope, JsonPointer, ProtocolError};

/// 2024-01-06T14:23:42.123Z.
const NOW_MS: i64 = 1_704_551_022_123;

fn holds(expr: &str, thing: &Value) -> bool {
    rql::parse(expr)
        .unwrap_or_else(|e| panic!("{expr}: {e}"))
        .matches(&ThingContext::new(thing).with_now_millis(NOW_MS))
}

fn refused(expr: &str) -> (usize, RqlErrorKind) {
    match rql::parse(expr) {
        Err(ProtocolError::RqlInvalid { position, kind }) => (position, kind),
        other => panic!("{expr}: expected an RQL error, got {other:?}"),
    }
}

fn expected(expected: &'static str, found: Option<char>) -> RqlErrorKind {
    RqlErrorKind::Expected { expected, found }
}

// ---------------------------------------------------------------------------------------------
// docs/basic-rql.md
// ---------------------------------------------------------------------------------------------

fn living_room_lamp() -> Value {
    json!({
        "thingId": "org.eclipse.ditto:AB00",
        "policyId": "org.eclipse.ditto:AB00",
        "attributes": {
            "location": "living-room",
            "floor": "upper floor",
            "owner": "SID123",
            "key1": "just-some-chars-unknown-known-chars-at-end",
            "tags": []
        },
        "features": {
            "lamp": {"properties": {"on": true}},
            "feature_1": {}
        }
    })
}

#[test]
fn basic_rql_examples() {
    let thing = living_room_lamp();
    for (expr, expected) in [
        ("eq(attributes/location,\"kitchen\")", false),
        ("eq(/attributes/location,\"living-room\")", true),
        ("eq(attributes/owner,\"SID123\")", true),
        ("ne(attributes/owner,\"SID123\")", false),
        ("gt(thingId,\"A000\")", true),
        ("ge(thingId,\"A000\")", true),
        ("lt(thingId,\"A000\")", false),
        ("le(thingId,\"A000\")", false),
        ("in(thingId,\"A000\",\"AB00\",\"AZ99\")", false),
        ("in(thingId,\"A000\",\"org.eclipse.ditto:AB00\")", true),
        ("like(attributes/key1,\"*known-chars-at-end\")", true),
        ("like(attributes/key1,\"known-chars-at-start*\")", false),
        ("like(attributes/key1,\"*known-chars-in-between*\")", false),
        ("like(attributes/key1,\"just-som?-char?-unkn?wn\")", false),
        ("like(attributes/key1,\"just-som?-char?-unkn?wn*\")", true),
        ("ilike(attributes/key1,\"*known-CHARS-at-end\")", true),
        ("ilike(attributes/key1,\"known-chars-AT-start*\")", false),
        ("ilike(attributes/key1,\"*KNOWN-CHARS-IN-BETWEEN*\")", false),
        ("ilike(attributes/key1,\"JUST-som?-char?-unkn?wn*\")", true),
        ("ilike(attributes/key1,\"just-som?-char?-unkn?wn\")", false),
        ("exists(features/feature_1)", true),
        (
            "and(exists(features/lamp),eq(attributes/location,\"living-room\"))",
            true,
        ),
        ("empty(attributes/tags)", true),
        ("not(empty(attributes/tags))", false),
        (
            "or(empty(attributes/tags),eq(attributes/tags,\"default\"))",
            true,
        ),
        (
            "and(eq(attributes/floor,\"upper floor\"),eq(attributes/location,\"living-room\"))",
            true,
        ),
        (
            "or(eq(attributes/floor,\"lower floor\"),eq(attributes/location,\"living-room\"))",
            true,
        ),
        ("not(like(thingId,\"org.eclipse.ditto:blocked*\"))", true),
        // httpapi-concepts.md, with a leading slash.
        ("not(exists(/features/thermostat))", true),
    ] {
        assert_eq!(holds(expr, &thing), expected, "{expr}");
    }
}

/// The overview's `and(eq(foo,"ditto"),lt(bar,10))` only illustrates the syntax: `foo` is no
/// thing field, and Ditto answers "Unknown property name: foo" for it too.
#[test]
fn basic_rql_overview_uses_no_thing_fields() {
    assert_eq!(
        refused("and(eq(foo,\"ditto\"),lt(bar,10))"),
        (7, RqlErrorKind::UnknownProperty { name: "foo".into() })
    );
    // The normalized form of the note, likewise.
    assert!(rql::parse("eq(foo,3)").is_err());
    // Sorting is an option, not a filter.
    assert_eq!(
        refused("sort(+thingId)").1,
        RqlErrorKind::UnknownOperator {
            name: "sort".into()
        }
    );
}

#[test]
fn empty_as_documented() {
    let thing = json!({"attributes": {
        "null": null, "list": [], "object": {}, "string": "", "zero": 0, "false": false,
        "full": ["x"], "blank": " "
    }});
    for (field, empty) in [
        ("missing", true),
        ("null", true),
        ("list", true),
        ("object", true),
        ("string", true),
        ("zero", false),
        ("false", false),
        ("full", false),
        ("blank", false),
    ] {
        assert_eq!(
            holds(&format!("empty(attributes/{field})"), &thing),
            empty,
            "{field}"
        );
    }
    assert!(holds("empty(features/lamp)", &thing));
    assert!(holds("empty(features/lamp/properties)", &thing));
}

// ---------------------------------------------------------------------------------------------
// docs/basic-conditional-requests.md
// ---------------------------------------------------------------------------------------------

fn fancy_thing() -> Value {
    json!({
        "thingId": "org.eclipse.ditto:fancy-thing",
        "policyId": "org.eclipse.ditto:fancy-thing",
        "attributes": {"location": "kitchen"},
        "features": {
            "temperature": {
                "properties": {
                    "value": 23.42,
                    "unit": "Celcius",
                    "lastModified": "2021-08-10T15:07:20.398Z"
                }
            }
        }
    })
}

#[test]
fn conditional_request_examples() {
    let thing = fancy_thing();
    for (expr, expected) in [
        ("ne(attributes/value,42)", true),
        (
            "gt(features/temperature/properties/lastModified,'2021-08-10T15:10:02.592Z')",
            false,
        ),
        (
            "gt(features/temperature/properties/lastModified,\"2021-08-10T15:10:02.592Z\")",
            false,
        ),
        (
            "lt(features/temperature/properties/lastModified,\"2021-08-10T15:10:02.592Z\")",
            true,
        ),
        ("eq(attributes/useLiveChannel,true)", false),
        ("lt(_modified,\"2021-12-24T12:23:42Z\")", false),
    ] {
        assert_eq!(holds(expr, &thing), expected, "{expr}");
        let condition = rql::parse_condition(expr).unwrap();
        assert_eq!(condition, rql::parse(expr).unwrap());
    }
    let with_modified = json!({"_modified": "2021-12-01T00:00:00Z"});
    assert!(holds(
        "lt(_modified,\"2021-12-24T12:23:42Z\")",
        &with_modified
    ));
}

/// The page's Ditto Protocol example writes the timestamp unquoted. Ditto's grammar reads
/// `2021` as a number and then wants `)`, so Ditto refuses this condition; so does twinwire.
#[test]
fn conditional_request_protocol_example_needs_quotes() {
    let expr = "gt(features/temperature/properties/lastModified,2021-08-10T15:10:02.592Z)";
    assert_eq!(refused(expr), (52, expected("')'", Some('-'))));
    let e = rql::parse_condition(expr).unwrap_err().to_ditto_error();
    assert_eq!((e.status, e.code()), (400, "rql.expression.invalid"));
    assert_eq!(
        e.message.as_deref(),
        Some("Invalid RQL at position 52: expected ')', found '-'")
    );
    assert_eq!(
        e.description.as_deref(),
        Some("Ensure that all opening parentheses have also closing ones and that the RQL expression is valid.")
    );
}

#[test]
fn merge_patch_condition_examples() {
    let thing = json!({
        "thingId": "org.eclipse.ditto:fancy-thing",
        "attributes": {"location": "kitchen", "manufacturer": "ACME Corp"},
        "features": {
            "temperature": {"properties": {"value": 15, "unit": "celsius"}},
            "humidity": {"properties": {"value": 90, "unit": "percent"}},
            "status": {"properties": {"state": "active", "mode": "automatic"}},
            "temp": {"properties": {"value": 15}},
            "hum": {"properties": {"value": 70}}
        }
    });
    for (expr, expected) in [
        ("gt(features/temperature/properties/value,20)", false),
        ("lt(features/humidity/properties/value,80)", false),
        ("gt(features/temp/properties/value,30)", false),
        ("lt(features/hum/properties/value,50)", false),
        ("gt(features/temperature/properties/value,10)", true),
    ] {
        assert_eq!(holds(expr, &thing), expected, "{expr}");
    }
}

#[test]
fn conditions_refuse_placeholder_properties() {
    for expr in [
        "eq(topic:action,\"modified\")",
        "exists(resource:path)",
        "eq(time:now,\"x\")",
    ] {
        let Err(ProtocolError::RqlInvalid { position, kind }) = rql::parse_condition(expr) else {
            panic!("{expr}");
        };
        assert!(
            matches!(kind, RqlErrorKind::UnknownProperty { .. }),
            "{expr}"
        );
        assert!(position > 0);
    }
}

// ---------------------------------------------------------------------------------------------
// docs/basic-changenotifications.md
// ---------------------------------------------------------------------------------------------

fn event(topic: &str, path: &str, value: Value) -> Envelope {
    Envelope::from_json(json!({
        "topic": topic,
        "headers": {},
        "path": path,
        "value": value,
        "revision": 1
    }))
    .unwrap()
}

#[test]
fn change_notification_examples() {
    let created = event(
        "org.eclipse.ditto/myThing-1/things/twin/events/created",
        "/",
        json!({"thingId": "org.eclipse.ditto:myThing-1"}),
    );
    let modified = event(
        "org.eclipse.ditto/myThing-1/things/twin/events/modified",
        "/attributes/count",
        json!(43),
    );
    // The thing of an event: for `modified`, the changed part at its place.
    let created_thing = json!({"thingId": "org.eclipse.ditto:myThing-1"});
    let modified_thing =
        json!({"thingId": "org.eclipse.ditto:myThing-1", "attributes": {"count": 43}});
    let lamp_thing = json!({
        "thingId": "org.eclipse.ditto:myThing-2",
        "attributes": {"manufacturer": "ACME & Sons Ltd."},
        "features": {"lamp": {"properties": {"on": true}}}
    });
    let check = |expr: &str, thing: &Value, envelope: &Envelope| {
        rql::parse(expr)
            .unwrap_or_else(|e| panic!("{expr}: {e}"))
            .matches(&ThingContext::new(thing).with_envelope(envelope))
    };
    assert!(check("gt(attributes/count,42)", &modified_thing, &modified));
    assert!(!check("gt(attributes/count,42)", &created_thing, &created));
    let lamp = "and(like(thingId,\"org.eclipse.ditto:myThing*\"),exists(features/lamp))";
    assert!(check(lamp, &lamp_thing, &modified));
    assert!(!check(lamp, &modified_thing, &modified));
    // The `&` arrives URL-decoded; the encoded form is just other characters.
    assert!(check(
        "like(attributes/manufacturer,\"ACME & Sons*\")",
        &lamp_thing,
        &modified
    ));
    assert!(!check(
        "like(attributes/manufacturer,\"ACME %26 Sons*\")",
        &lamp_thing,
        &modified
    ));
    let lifecycle = "and(in(topic:action,'created','deleted'),eq(resource:path,'/'))";
    assert!(check(lifecycle, &created_thing, &created));
    assert!(!check(lifecycle, &modified_thing, &modified));
}

// ---------------------------------------------------------------------------------------------
// docs/basic-search.md "Querying JSON arrays", evaluated in memory
// ---------------------------------------------------------------------------------------------

#[test]
fn array_examples() {
    let thing = json!({
        "thingId": "org.eclipse.ditto:tagged-thing-1",
        "attributes": {"tags": [
            "misc", "no-due-date", "high-priority", 2, 3, 5, false,
            {"room": "kitchen", "floor": 2}
        ]}
    });
    for (expr, expected) in [
        ("eq(attributes/tags,\"high-priority\")", true),
        ("ne(attributes/tags,\"high-priority\")", false),
        (
            "in(attributes/tags,\"misc\",\"something-non-matching\")",
            true,
        ),
        ("like(attributes/tags,\"*-priority\")", true),
        ("ne(attributes/tags,1)", true),
        ("exists(attributes/tags/room)", true),
        ("eq(attributes/tags/room,\"kitchen\")", true),
        ("ge(attributes/tags/floor,2)", true),
        // The search index compares numbers with numbers only ("no match"); Ditto's in-memory
        // evaluation, which conditions and filters use, compares "misc" with 6 as the strings
        // "misc" and "6", and 'm' sorts after '6'.
        ("gt(attributes/tags,6)", true),
        ("gt(attributes/tags,\"zzz\")", false),
    ] {
        assert_eq!(holds(expr, &thing), expected, "{expr}");
    }
}

// ---------------------------------------------------------------------------------------------
// Operators, types, missing fields
// ---------------------------------------------------------------------------------------------

fn sample() -> Value {
    json!({
        "thingId": "org.eclipse.ditto:sample",
        "attributes": {
            "n": 10,
            "d": 2.5,
            "s": "m",
            "numeric": "10",
            "b": true,
            "nothing": null,
            "list": [1, "x", [null]],
            "obj": {"k": "v"}
        }
    })
}

#[test]
fn every_operator() {
    let thing = sample();
    for (expr, expected) in [
        ("eq(attributes/n,10)", true),
        ("eq(attributes/n,11)", false),
        ("ne(attributes/n,11)", true),
        ("ne(attributes/n,10)", false),
        ("gt(attributes/n,9)", true),
        ("gt(attributes/n,10)", false),
        ("ge(attributes/n,10)", true),
        ("ge(attributes/n,11)", false),
        ("lt(attributes/n,11)", true),
        ("lt(attributes/n,10)", false),
        ("le(attributes/n,10)", true),
        ("le(attributes/n,9)", false),
        ("in(attributes/n,1,10)", true),
        ("in(attributes/n,1,2)", false),
        ("like(attributes/s,\"?\")", true),
        ("like(attributes/s,\"M\")", false),
        ("ilike(attributes/s,\"M\")", true),
        ("exists(attributes/n)", true),
        ("exists(attributes/zzz)", false),
        ("empty(attributes/zzz)", true),
        ("empty(attributes/n)", false),
        ("and(exists(attributes/n),exists(attributes/s))", true),
        ("and(exists(attributes/n),exists(attributes/zzz))", false),
        ("or(exists(attributes/zzz),exists(attributes/s))", true),
        ("or(exists(attributes/zzz),exists(attributes/yyy))", false),
        ("not(exists(attributes/zzz))", true),
        ("not(exists(attributes/n))", false),
        ("and(eq(attributes/n,10))", true),
        ("or(eq(attributes/n,1))", false),
    ] {
        assert_eq!(holds(expr, &thing), expected, "{expr}");
    }
}

#[test]
fn numbers_compare_by_value_across_kinds() {
    let thing = sample();
    assert!(holds("eq(attributes/n,10.0)", &thing));
    assert!(holds("gt(attributes/d,2)", &thing));
    assert!(holds("lt(attributes/d,2.75)", &thing));
    assert!(holds("eq(attributes/n,+10)", &thing));
    assert!(holds(
        "lt(attributes/n,9223372036854775807)",
        &json!({"attributes": {"n": 9_223_372_036_854_775_806i64}})
    ));
}

/// Ditto reads a string as a number when the other side is a number, and otherwise compares
/// values of different types by their string forms (ThingPredicatePredicateVisitor.compare).
#[test]
fn mixed_types_compare_as_ditto_does() {
    let thing = sample();
    for (expr, expected) in [
        ("eq(attributes/numeric,10)", true),
        ("eq(attributes/n,\"10\")", true),
        ("eq(attributes/n,\"1e1\")", true),
        ("gt(attributes/numeric,9.5)", true),
        ("eq(attributes/b,\"true\")", true),
        ("eq(attributes/b,true)", true),
        ("eq(attributes/b,1)", false),
        ("eq(attributes/s,1)", false),
        // "m" against 1: the strings "m" and "1"
        ("gt(attributes/s,1)", true),
        // true against 1: "true" and "1"
        ("gt(attributes/b,1)", true),
        // 10 against "abc": "10" and "abc"
        ("lt(attributes/n,\"abc\")", true),
        // An object is no value: no comparison matches it, ne always does.
        ("eq(attributes/obj,\"v\")", false),
        ("ne(attributes/obj,\"v\")", true),
        ("exists(attributes/obj)", true),
    ] {
        assert_eq!(holds(expr, &thing), expected, "{expr}");
    }
}

#[test]
fn missing_fields() {
    let thing = sample();
    for (expr, expected) in [
        ("eq(attributes/missing,1)", false),
        // Ditto's ne is the negation of eq: a missing field is "not equal".
        ("ne(attributes/missing,1)", true),
        ("gt(attributes/missing,1)", false),
        ("le(attributes/missing,1)", false),
        ("in(attributes/missing,1)", false),
        ("like(attributes/missing,\"*\")", false),
        ("exists(attributes/missing)", false),
        ("empty(attributes/missing)", true),
        ("eq(attributes/missing,null)", false),
        ("ne(attributes/missing,null)", true),
        ("eq(attributes/n/deeper,1)", false),
        ("exists(features/missing/properties/x)", false),
    ] {
        assert_eq!(holds(expr, &thing), expected, "{expr}");
    }
    // A missing thing: nothing exists.
    assert!(!holds("exists(thingId)", &Value::Null));
    assert!(holds("ne(thingId,\"x\")", &Value::Null));
}

#[test]
fn nulls_and_arrays() {
    let thing = sample();
    for (expr, expected) in [
        ("eq(attributes/nothing,null)", true),
        ("ne(attributes/nothing,null)", false),
        ("eq(attributes/n,null)", false),
        ("ne(attributes/n,null)", true),
        ("gt(attributes/nothing,1)", false),
        ("eq(attributes/list,1)", true),
        ("eq(attributes/list,\"x\")", true),
        ("eq(attributes/list,null)", true),
        ("ne(attributes/list,1)", false),
        ("in(attributes/list,\"y\",\"x\")", true),
        ("like(attributes/list,\"x\")", true),
        ("like(attributes/list,\"1\")", true),
    ] {
        assert_eq!(holds(expr, &thing), expected, "{expr}");
    }
}

#[test]
fn like_patterns() {
    let thing = json!({"attributes": {
        "name": "Thing-42.example",
        "multi": "line one\nline two",
        "n": 5.5,
        "big": 12345678.9,
        "flag": true
    }});
    for (expr, expected) in [
        ("like(attributes/name,\"Thing*\")", true),
        ("like(attributes/name,\"*example\")", true),
        ("like(attributes/name,\"*42*\")", true),
        ("like(attributes/name,\"Th?ng-??.example\")", true),
        ("like(attributes/name,\"Th?ng-?.example\")", false),
        ("like(attributes/name,\"thing*\")", false),
        ("ilike(attributes/name,\"thing*\")", true),
        ("ilike(attributes/name,\"*EXAMPLE\")", true),
        ("like(attributes/name,\"Thing-42.example\")", true),
        ("like(attributes/name,\"Thing-42?example\")", true),
        ("like(attributes/name,\"Thing-42\")", false),
        ("like(attributes/name,\"*\")", true),
        ("like(attributes/name,\"\")", false),
        // No regex syntax: a dot is a dot.
        ("like(attributes/name,\"Thing-42.*\")", true),
        ("like(attributes/name,\"Thing-42\\\\.example\")", false),
        // Java's `.` stops at line ends, so do the wildcards.
        ("like(attributes/multi,\"line*two\")", false),
        ("like(attributes/multi,\"line*\\n*two\")", true),
        // Numbers and booleans match as Java prints them.
        ("like(attributes/n,\"5.5\")", true),
        ("like(attributes/big,\"1.23456789E7\")", true),
        ("like(attributes/flag,\"tr*\")", true),
    ] {
        assert_eq!(holds(expr, &thing), expected, "{expr}");
    }
}

#[test]
fn time_placeholders_as_values() {
    let thing = json!({
        "_modified": "2024-01-06T14:00:00Z",
        "attributes": {"lastSeen": 1_704_551_000_000i64, "seen": "2024-01-06T14:23:42.123Z"}
    });
    for (expr, expected) in [
        ("lt(_modified,time:now)", true),
        ("gt(_modified,time:now-1h)", true),
        ("ge(_modified,time:now[h])", true),
        ("gt(_modified,time:now[h])", false),
        ("lt(attributes/lastSeen,time:now_epoch_millis)", true),
        ("gt(attributes/lastSeen,time:now_epoch_millis-1m)", true),
        ("eq(attributes/seen,time:now)", true),
        ("in(attributes/seen,\"x\",time:now)", true),
    ] {
        assert_eq!(holds(expr, &thing), expected, "{expr}");
    }
}

// ---------------------------------------------------------------------------------------------
// The syntax tree and what it reads
// ---------------------------------------------------------------------------------------------

#[test]
fn properties_are_the_fields_to_check_read_permission_on() {
    let p = rql::parse(
        "and(eq(attributes/a,1),or(exists(features/f),not(eq(topic:action,'created'))),gt(/attributes/a,2),lt(_modified,time:now))",
    )
    .unwrap();
    let fields: Vec<String> = p.properties().iter().map(|p| p.to_string()).collect();
    assert_eq!(fields, ["/attributes/a", "/features/f", "/_modified"]);
}

#[test]
fn the_tree_reads_as_written() {
    let p = rql::parse("not(in(features/f/properties/x,1,2.5,'a',true,null,time:now))").unwrap();
    let Predicate::Not(inner) = &p else { panic!() };
    assert_eq!(
        **inner,
        Predicate::In {
            property: Property::Thing(JsonPointer::parse("/features/f/properties/x").unwrap()),
            values: vec![
                RqlValue::Long(1),
                RqlValue::Double(2.5),
                RqlValue::String("a".into()),
                RqlValue::Bool(true),
                RqlValue::Null,
                RqlValue::Time("now".into()),
            ],
        }
    );
    assert_eq!(
        p.to_string(),
        "not(in(features/f/properties/x,1,2.5,\"a\",true,null,time:now))"
    );
}

// ---------------------------------------------------------------------------------------------
// Errors and hostile input
// ---------------------------------------------------------------------------------------------

#[test]
fn malformed_expressions_say_where_and_what() {
    for (expr, position, kind) in [
        // unbalanced parentheses
        ("eq(attributes/a,1", 17, expected("')'", None)),
        (
            "and(eq(attributes/a,1),eq(attributes/b,2)",
            41,
            expected("',' or ')'", None),
        ),
        (
            "eq(attributes/a,1))",
            18,
            expected("the end of the expression", Some(')')),
        ),
        // unknown operator
        (
            "equals(attributes/a,1)",
            0,
            RqlErrorKind::UnknownOperator {
                name: "equals".into(),
            },
        ),
        (
            "and(eq(attributes/a,1),foo(attributes/b))",
            23,
            RqlErrorKind::UnknownOperator { name: "foo".into() },
        ),
        // missing value, missing property
        (
            "eq(attributes/a,)",
            16,
            expected(
                "a value (a number, a quoted string, true, false, null or time:<placeholder>)",
                Some(')'),
            ),
        ),
        ("eq(attributes/a)", 15, expected("','", Some(')'))),
        (
            "eq(,1)",
            3,
            RqlErrorKind::UnknownProperty { name: "".into() },
        ),
        // bad string escapes
        (
            "eq(attributes/a,\"x\\y\")",
            18,
            RqlErrorKind::InvalidEscape { found: Some('y') },
        ),
        (
            "eq(attributes/a,'\\",
            17,
            RqlErrorKind::InvalidEscape { found: None },
        ),
        // trailing garbage
        (
            "eq(attributes/a,1)eq(attributes/b,2)",
            18,
            expected("the end of the expression", Some('e')),
        ),
        ("eq(attributes/a,1)  ", 18, expected("the end of the expression", Some(' '))),
        ("eq(attributes/a,1x)", 17, expected("')'", Some('x'))),
        // empty input
        (
            "",
            0,
            expected(
                "an operator (eq, ne, gt, ge, lt, le, like, ilike, in, exists, empty, and, or, not)",
                None,
            ),
        ),
    ] {
        assert_eq!(refused(expr), (position, kind), "{expr}");
    }
}

#[test]
fn error_messages_read_well() {
    let e = rql::parse("and(eq(attributes/a,1) xx)").unwrap_err();
    assert_eq!(
        e.to_string(),
        "Invalid RQL at position 22: expected ',' or ')', found ' '"
    );
    assert_eq!(e.code(), "rql.expression.invalid");
    assert_eq!(e.status(), 400);
}

#[test]
fn hostile_nesting_is_refused_quickly() {
    for opener in ["not(", "and(", "or("] {
        let start = Instant::now();
        // 100,000 levels are longer than any expression may be...
        let (_, kind) = refused(&opener.repeat(100_000));
        assert!(matches!(kind, RqlErrorKind::TooLong { .. }));
        // ...and as many as fit are far deeper than the parser goes.
        let (position, kind) = refused(&opener.repeat(MAX_EXPRESSION_BYTES / opener.len()));
        assert_eq!(
            kind,
            RqlErrorKind::TooDeep {
                max: MAX_NESTING_DEPTH
            }
        );
        assert_eq!(position, opener.len() * MAX_NESTING_DEPTH);
        assert!(start.elapsed() < Duration::from_secs(1));
    }
    // Within the bound, deep trees parse, evaluate and print.
    let deep = format!(
        "{}exists(attributes/a){}",
        "not(".repeat(MAX_NESTING_DEPTH),
        ")".repeat(MAX_NESTING_DEPTH)
    );
    let p = rql::parse(&deep).unwrap();
    assert!(p.matches(&ThingContext::new(&json!({"attributes": {"a": 1}}))));
    assert_eq!(p.to_string(), deep);
}

#[test]
fn hostile_length_is_refused() {
    let expr = format!("in(attributes/a{})", ",1".repeat(MAX_EXPRESSION_BYTES));
    assert_eq!(
        refused(&expr),
        (
            0,
            RqlErrorKind::TooLong {
                length: expr.len(),
                max: MAX_EXPRESSION_BYTES
            }
        )
    );
    // Just below the bound, a long flat expression is fine.
    let values = ",1".repeat((MAX_EXPRESSION_BYTES - 20) / 2);
    let expr = format!("in(attributes/a{values})");
    assert!(expr.len() <= MAX_EXPRESSION_BYTES);
    assert!(holds(&expr, &json!({"attributes": {"a": 1}})));
}

#[test]
fn hostile_like_patterns_stay_linear() {
    let text = "a".repeat(100_000);
    let thing = json!({"attributes": {"s": text}});
    let pattern = format!("{}b", "*a".repeat(5_000));
    let start = Instant::now();
    assert!(!holds(&format!("like(attributes/s,\"{pattern}\")"), &thing));
    let pattern = format!("*{}b*", "a?".repeat(10_000));
    assert!(!holds(&format!("like(attributes/s,\"{pattern}\")"), &thing));
    assert!(start.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------------------------------------
// Properties: printing reads back, and no input panics
// ---------------------------------------------------------------------------------------------

fn config() -> Config {
    Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    }
}

fn arb_property() -> BoxedStrategy<Property> {
    prop_oneof![
        prop::collection::vec("[^/]{1,8}", 1..3).prop_map(|keys| {
            Property::Thing(JsonPointer::from_segments(
                std::iter::once("attributes".to_owned()).chain(keys),
            ))
        }),
        prop::sample::select(vec![
            "thingId",
            "policyId",
            "_modified",
            "features/f/properties/x",
            "features/f/definition",
            "topic:action",
            "resource:path",
        ])
        .prop_map(|s| rql::parse(&format!("exists({s})"))
            .unwrap()
            .property()
            .unwrap()
            .clone()),
    ]
    .boxed()
}

fn arb_value() -> BoxedStrategy<RqlValue> {
    prop_oneof![
        Just(RqlValue::Null),
        any::<bool>().prop_map(RqlValue::Bool),
        any::<i64>().prop_map(RqlValue::Long),
        any::<f64>()
            .prop_filter("finite", |d| d.is_finite())
            .prop_map(RqlValue::Double),
        ".{0,10}".prop_map(RqlValue::String),
        prop::sample::select(vec!["now", "now_epoch_millis", "now-1h[m]", "later"])
            .prop_map(|s| RqlValue::Time(s.to_owned())),
    ]
    .boxed()
}

fn arb_predicate() -> BoxedStrategy<Predicate> {
    use twinwire_protocol::rql::Comparison::*;
    let leaf = prop_oneof![
        (
            prop::sample::select(vec![Eq, Ne, Gt, Ge, Lt, Le]),
            arb_property(),
            arb_value()
        )
            .prop_map(|(op, property, value)| Predicate::Compare {
                op,
                property,
                value
            }),
        (arb_property(), prop::collection::vec(arb_value(), 1..4))
            .prop_map(|(property, values)| Predicate::In { property, values }),
        (arb_property(), ".{0,6}", any::<bool>()).prop_map(|(property, pattern, ignore_case)| {
            Predicate::Like {
                property,
                pattern,
                ignore_case,
            }
        }),
        arb_property().prop_map(Predicate::Exists),
        arb_property().prop_map(Predicate::Empty),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 1..4).prop_map(Predicate::And),
            prop::collection::vec(inner.clone(), 1..4).prop_map(Predicate::Or),
            inner.prop_map(|p| Predicate::Not(Box::new(p))),
        ]
    })
    .boxed()
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn printed_predicates_parse_back(p in arb_predicate()) {
        let printed = p.to_string();
        prop_assert_eq!(rql::parse(&printed).map_err(|e| e.to_string()), Ok(p), "{}", printed);
    }

    #[test]
    fn arbitrary_input_never_panics(s in "[a-z(),\"'\\\\/:*?0-9. \\-+]{0,40}") {
        if let Ok(p) = rql::parse(&s) {
            let _ = p.matches(&ThingContext::new(&json!({"attributes": {"a": [1, "x"]}})));
            prop_assert_eq!(rql::parse(&p.to_string()).ok(), Some(p));
        }
    }

    #[test]
    fn arbitrary_unicode_never_panics(s in "\\PC{0,40}") {
        let _ = rql::parse(&s);
        let _ = rql::parse(&format!("eq(attributes/{s},\"{s}\")"));
        let _ = rql::parse(&format!("like(attributes/a,\"{s}\")"))
            .map(|p| p.matches(&ThingContext::new(&json!({"attributes": {"a": s}}))));
    }
}
