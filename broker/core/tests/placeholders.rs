//! Placeholders and functions against checklist §3 (syntax, catalogue, function library,
//! `fn:filter` operators, locations) and docs/basic-placeholders.md, through the public API.

use serde_json::{json, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use twinwire_core::placeholders::{
    Allowed, JwtResolver, Pipeline, Placeholder, Prefix, Resolved, Resolver, SignalResolver,
    Template, Values, FUNCTION_UNKNOWN, MAX_FUNCTIONS, NOT_RESOLVABLE, SIGNATURE_INVALID,
    TOO_COMPLEX, UNRESOLVED,
};
use twinwire_core::protocol::{DittoError, Envelope, Headers};

/// 2024-01-06T14:23:42.123Z, the `now` of the documentation's time examples.
const NOW: i64 = 1_704_551_022_123;

/// A resolver from a table, with a fixed clock.
#[derive(Default)]
struct Table {
    values: HashMap<String, Vec<String>>,
}

impl Table {
    fn with(mut self, placeholder: &str, values: &[&str]) -> Self {
        self.values.insert(
            placeholder.to_owned(),
            values.iter().map(|v| (*v).to_owned()).collect(),
        );
        self
    }
}

impl Resolver for Table {
    fn resolve(&self, placeholder: &Placeholder) -> Values<'_> {
        self.values
            .get(&placeholder.to_string())
            .map(|v| v.iter().map(|s| Cow::Borrowed(s.as_str())).collect())
            .unwrap_or_default()
    }

    fn now_millis(&self) -> i64 {
        NOW
    }
}

fn table() -> Table {
    Table::default()
        .with("thing:id", &["org.eclipse.ditto:device-123"])
        .with("thing:name", &["device-123"])
        .with("thing:namespace", &["org.eclipse.ditto"])
        .with("header:x", &["abc"])
        .with("header:empty", &[""])
        .with("header:qos", &["1"])
        .with("header:spaced", &["  padded value \t"])
        .with("header:true", &["true"])
        .with("feature:id", &["lamp", "heater"])
        .with(
            "jwt:roles",
            &["administrator", "super-moderator", "moderator"],
        )
        .with("jwt:scope", &["openid email"])
}

fn compile(text: &str) -> Template {
    Template::compile(text, &Allowed::everything()).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn resolve_with(text: &str, resolver: &dyn Resolver) -> Resolved {
    compile(text).resolve(resolver)
}

fn resolve(text: &str) -> Resolved {
    resolve_with(text, &table())
}

fn one(text: &str) -> String {
    match resolve(text) {
        Resolved::Values(v) if v.len() == 1 => v.into_iter().next().unwrap_or_default(),
        other => panic!("{text}: expected one value, got {other:?}"),
    }
}

fn values(v: &[&str]) -> Resolved {
    Resolved::Values(v.iter().map(|s| (*s).to_owned()).collect())
}

fn compile_error(text: &str, allowed: &Allowed) -> DittoError {
    match Template::compile(text, allowed) {
        Ok(t) => panic!("{text}: expected an error, compiled to {t:?}"),
        Err(e) => {
            assert_eq!(e.status, 400, "{text}: {e}");
            e
        }
    }
}

fn code(text: &str) -> String {
    compile_error(text, &Allowed::everything())
        .error
        .into_owned()
}

fn envelope(value: Value) -> Envelope {
    Envelope::from_json(value).unwrap_or_else(|e| panic!("envelope: {e}"))
}

// ---------------------------------------------------------------------------------------------
// Syntax (§3.1)

#[test]
fn literal_text_and_expressions_mix() {
    assert_eq!(resolve(""), values(&[""]));
    assert_eq!(resolve("plain text"), values(&["plain text"]));
    assert_eq!(one("{{thing:id}}"), "org.eclipse.ditto:device-123");
    assert_eq!(one("{{   thing:id   }}"), "org.eclipse.ditto:device-123");
    assert_eq!(
        one("a/{{ thing:namespace }}/b/{{thing:name}}:c"),
        "a/org.eclipse.ditto/b/device-123:c"
    );
    assert!(compile("no placeholders").is_constant());
    assert!(!compile("{{ thing:id }}").is_constant());
    assert_eq!(compile("x{{ thing:id }}y").source(), "x{{ thing:id }}y");
}

#[test]
fn a_closing_pair_alone_is_literal_text() {
    assert_eq!(one(r#"{"a":{"b":1}}"#), r#"{"a":{"b":1}}"#);
}

#[test]
fn malformed_braces_are_refused() {
    assert_eq!(code("{{ thing:id"), NOT_RESOLVABLE);
    assert_eq!(code("a {{ }} b"), NOT_RESOLVABLE);
    assert_eq!(code("{{ {{ thing:id }} }}"), NOT_RESOLVABLE);
    assert_eq!(code("{{ thing:id | }}"), NOT_RESOLVABLE);
    assert_eq!(code("{{ thing:id || fn:lower() }}"), NOT_RESOLVABLE);
    assert_eq!(code("{{ fn:default('x) }}"), NOT_RESOLVABLE);
}

#[test]
fn quotes_protect_pipes_and_braces() {
    assert_eq!(one("{{ fn:default('a|b') }}"), "a|b");
    assert_eq!(one("{{ fn:default('}}') }}"), "}}");
    assert_eq!(one(r#"{{ fn:default("it's") }}"#), "it's");
    assert_eq!(one(r"{{ fn:default('it\'s') }}"), "it's");
    assert_eq!(one(r#"{{ fn:default("say \"hi\"") }}"#), "say \"hi\"");
    assert_eq!(one("{{ fn:default( 'spaced' ) }}"), "spaced");
    assert_eq!(one("{{ fn:default ('x') }}"), "x");
}

#[test]
fn a_function_in_first_position_gets_empty() {
    assert_eq!(one("{{ fn:default('fallback') }}"), "fallback");
    assert_eq!(resolve("{{ fn:upper() }}"), Resolved::Unresolved);
    assert_eq!(one("{{ fn:default('x') | fn:upper() }}"), "X");
}

#[test]
fn the_documented_pipeline_example() {
    let t = table().with("thing:name", &["device-123"]);
    let r = resolve_with(
        "{{ thing:name | fn:substring-before('-') | fn:default('x') | fn:upper() }}",
        &t,
    );
    assert_eq!(r, values(&["DEVICE"]));
    let t = table().with("thing:name", &["device"]);
    let r = resolve_with(
        "{{ thing:name | fn:substring-before('-') | fn:default('x') | fn:upper() }}",
        &t,
    );
    assert_eq!(r, values(&["X"]));
}

#[test]
fn at_most_ten_functions() {
    let ten = format!("{{{{ thing:id{} }}}}", " | fn:lower()".repeat(10));
    assert_eq!(resolve(&ten), values(&["org.eclipse.ditto:device-123"]));
    assert_eq!(MAX_FUNCTIONS, 10);
    let eleven = format!("{{{{ thing:id{} }}}}", " | fn:lower()".repeat(11));
    let e = compile_error(&eleven, &Allowed::everything());
    assert_eq!(e.error, TOO_COMPLEX);
    assert!(e.description.unwrap_or_default().contains("'10'"));
    // A function in the first position counts as one of the ten.
    let ten_fns = format!("{{{{ fn:default('a'){} }}}}", " | fn:upper()".repeat(9));
    assert_eq!(one(&ten_fns), "A");
    let eleven_fns = format!("{{{{ fn:default('a'){} }}}}", " | fn:upper()".repeat(10));
    assert_eq!(code(&eleven_fns), TOO_COMPLEX);
}

#[test]
fn unknown_functions_are_refused() {
    assert_eq!(code("{{ thing:id | fn:explode() }}"), FUNCTION_UNKNOWN);
    assert_eq!(code("{{ fn:nope('x') }}"), FUNCTION_UNKNOWN);
    let e = compile_error("{{ thing:id | fn:lower }}", &Allowed::everything());
    assert_eq!(e.error, FUNCTION_UNKNOWN);
    assert!(e.description.unwrap_or_default().contains("parentheses"));
    // Only the first stage may be a placeholder.
    assert_eq!(code("{{ thing:id | header:x }}"), FUNCTION_UNKNOWN);
    assert_eq!(code("{{ thing:id | lower() }}"), FUNCTION_UNKNOWN);
}

#[test]
fn bad_arguments_are_signature_errors() {
    for bad in [
        "{{ thing:id | fn:lower('x') }}",
        "{{ thing:id | fn:upper(thing:id) }}",
        "{{ thing:id | fn:trim('') }}",
        "{{ thing:id | fn:url-encode('a') }}",
        "{{ thing:id | fn:url-decode('a') }}",
        "{{ thing:id | fn:base64-encode('a') }}",
        "{{ thing:id | fn:base64-decode('a') }}",
        "{{ thing:id | fn:delete('a') }}",
        "{{ thing:id | fn:default() }}",
        "{{ thing:id | fn:default('a','b') }}",
        "{{ thing:id | fn:default(fallback) }}",
        "{{ thing:id | fn:substring-before() }}",
        "{{ thing:id | fn:substring-before(thing:name) }}",
        "{{ thing:id | fn:substring-after('a', 'b') }}",
        "{{ thing:id | fn:replace('a') }}",
        "{{ thing:id | fn:replace('a','b','c') }}",
        "{{ jwt:scope | fn:split() }}",
        "{{ jwt:scope | fn:split('') }}",
        "{{ jwt:scope | fn:split(header:x) }}",
        "{{ thing:id | fn:join() }}",
        "{{ thing:id | fn:join(header:x) }}",
        "{{ thing:id | fn:format() }}",
        "{{ thing:id | fn:format('{#a}x') }}",
        "{{ thing:id | fn:filter() }}",
        "{{ thing:id | fn:filter('eq') }}",
        "{{ thing:id | fn:filter('gt','1') }}",
        "{{ thing:id | fn:filter(header:x,'gt','1') }}",
        "{{ thing:id | fn:filter(header:x,'eq') }}",
        "{{ thing:id | fn:filter(header:x,'eq','1','2') }}",
        "{{ thing:id | fn:filter(header:x,'exists','maybe') }}",
        "{{ thing:id | fn:default('a') x }}",
        "{{ thing:id | fn:default('a' 'b') }}",
        "{{ thing:id | fn:default('a',) }}",
        "{{ thing:id | fn:default('a' }}",
    ] {
        let e = compile_error(bad, &Allowed::everything());
        assert_eq!(e.error, SIGNATURE_INVALID, "{bad}: {e}");
        assert!(e.description.is_some(), "{bad}");
    }
}

#[test]
fn signature_errors_say_what_to_write() {
    let e = compile_error(
        "{{ thing:id | fn:substring-before(thing:name) }}",
        &Allowed::everything(),
    );
    assert!(e.message_or_code().contains("quoted"), "{e}");
    assert!(e
        .description
        .unwrap_or_default()
        .contains("fn:substring-before('givenString')"));
}

#[test]
fn unknown_placeholders_are_refused_as_unresolved() {
    for bad in [
        "{{ nothing:id }}",
        "{{ thing:color }}",
        "{{ thingid }}",
        "{{ thing: }}",
        "{{ topic:everything }}",
        "{{ time:later }}",
        "{{ time:now+5x }}",
        "{{ time:now[q] }}",
        "{{ time:now+ }}",
        "{{ time:now[h }}",
        "{{ time:now[h]x }}",
        "{{ Thing:id }}",
        "{{ fn:default(nothing:id) }}",
    ] {
        let e = compile_error(bad, &Allowed::everything());
        assert_eq!(e.error, UNRESOLVED, "{bad}: {e}");
    }
    let e = compile_error("{{ thing:color }}", &Allowed::everything());
    assert_eq!(
        e.message_or_code(),
        "The placeholder 'thing:color' could not be resolved."
    );
    assert!(e.description.unwrap_or_default().contains("thing:id"));
}

// ---------------------------------------------------------------------------------------------
// Catalogue (§3.2) through SignalResolver

fn create_thing() -> Envelope {
    envelope(json!({
        "topic": "org.eclipse.ditto/device-123/things/twin/commands/create",
        "headers": {"correlation-id": "c-1", "Content-Type": "application/json", "response-required": true},
        "path": "/",
        "value": {"thingId": "org.eclipse.ditto:device-123",
                  "features": {"lamp": {}, "heater": {}}}
    }))
}

fn live_message() -> Envelope {
    envelope(json!({
        "topic": "org.eclipse.ditto/device-123/things/live/messages/hello.world",
        "headers": {"content-type": "text/plain"},
        "path": "/inbox/messages/hello.world",
        "value": "hi"
    }))
}

fn sig(text: &str, resolver: &SignalResolver<'_>) -> Resolved {
    resolve_with(text, resolver)
}

#[test]
fn topic_placeholders_of_a_create_command() {
    let env = create_thing();
    let r = SignalResolver::for_signal(&env);
    for (p, v) in [
        (
            "full",
            "org.eclipse.ditto/device-123/things/twin/commands/create",
        ),
        ("namespace", "org.eclipse.ditto"),
        ("entityName", "device-123"),
        ("group", "things"),
        ("channel", "twin"),
        ("criterion", "commands"),
        ("action", "create"),
        ("action-subject", "create"),
    ] {
        assert_eq!(
            sig(&format!("{{{{ topic:{p} }}}}"), &r),
            values(&[v]),
            "{p}"
        );
    }
    assert_eq!(sig("{{ topic:subject }}", &r), Resolved::Unresolved);
}

#[test]
fn topic_placeholders_of_a_live_message() {
    let env = live_message();
    let r = SignalResolver::for_signal(&env);
    for (p, v) in [
        (
            "full",
            "org.eclipse.ditto/device-123/things/live/messages/hello.world",
        ),
        ("namespace", "org.eclipse.ditto"),
        ("entityName", "device-123"),
        ("group", "things"),
        ("channel", "live"),
        ("criterion", "messages"),
        ("subject", "hello.world"),
        ("action-subject", "hello.world"),
    ] {
        assert_eq!(
            sig(&format!("{{{{ topic:{p} }}}}"), &r),
            values(&[v]),
            "{p}"
        );
    }
    assert_eq!(sig("{{ topic:action }}", &r), Resolved::Unresolved);
    assert_eq!(sig("{{ resource:type }}", &r), values(&["message"]));
    assert_eq!(
        sig("{{ resource:path }}", &r),
        values(&["/inbox/messages/hello.world"])
    );
}

#[test]
fn topic_placeholders_of_other_criteria() {
    let ack = envelope(json!({
        "topic": "org.eclipse.ditto/thing/things/live/acks/my-custom-ack",
        "headers": {}, "path": "/", "status": 200
    }));
    let r = SignalResolver::for_signal(&ack);
    assert_eq!(sig("{{ topic:subject }}", &r), values(&["my-custom-ack"]));
    assert_eq!(sig("{{ topic:action }}", &r), Resolved::Unresolved);
    let event = envelope(json!({
        "topic": "org.eclipse.ditto/fancy-policy-1/policies/events/modified",
        "headers": {}, "path": "/entries", "value": {}
    }));
    let r = SignalResolver::for_signal(&event);
    assert_eq!(sig("{{ topic:channel }}", &r), values(&["none"]));
    assert_eq!(sig("{{ topic:action-subject }}", &r), values(&["modified"]));
    assert_eq!(
        sig("{{ topic:full }}", &r),
        values(&["org.eclipse.ditto/fancy-policy-1/policies/events/modified"])
    );
}

#[test]
fn entity_thing_and_policy_placeholders() {
    let env = create_thing();
    let r = SignalResolver::for_signal(&env);
    assert_eq!(
        sig("{{ entity:id }}", &r),
        values(&["org.eclipse.ditto:device-123"])
    );
    assert_eq!(
        sig("{{ entity:namespace }}", &r),
        values(&["org.eclipse.ditto"])
    );
    assert_eq!(sig("{{ entity:name }}", &r), values(&["device-123"]));
    assert_eq!(
        sig("{{ thing:id }}", &r),
        values(&["org.eclipse.ditto:device-123"])
    );
    assert_eq!(
        sig("{{ thing:namespace }}", &r),
        values(&["org.eclipse.ditto"])
    );
    assert_eq!(sig("{{ thing:name }}", &r), values(&["device-123"]));
    assert_eq!(sig("{{ policy:id }}", &r), Resolved::Unresolved);
    assert_eq!(sig("{{ resource:type }}", &r), values(&["thing"]));
    assert_eq!(sig("{{ resource:path }}", &r), values(&["/"]));

    let policy = envelope(json!({
        "topic": "org.eclipse.ditto/fancy-policy-1/policies/commands/delete",
        "headers": {}, "path": "/"
    }));
    let r = SignalResolver::for_signal(&policy);
    assert_eq!(
        sig("{{ entity:id }}", &r),
        values(&["org.eclipse.ditto:fancy-policy-1"])
    );
    assert_eq!(
        sig("{{ policy:id }}", &r),
        values(&["org.eclipse.ditto:fancy-policy-1"])
    );
    assert_eq!(
        sig("{{ policy:namespace }}", &r),
        values(&["org.eclipse.ditto"])
    );
    assert_eq!(sig("{{ policy:name }}", &r), values(&["fancy-policy-1"]));
    assert_eq!(sig("{{ thing:id }}", &r), Resolved::Unresolved);
    assert_eq!(sig("{{ feature:id }}", &r), Resolved::Unresolved);
    assert_eq!(sig("{{ resource:type }}", &r), values(&["policy"]));

    let search = envelope(json!({
        "topic": "_/_/things/twin/search/subscribe",
        "headers": {}, "path": "/", "value": {"filter": "eq(a,1)"}
    }));
    let r = SignalResolver::for_signal(&search);
    assert_eq!(sig("{{ entity:id }}", &r), Resolved::Unresolved);
    assert_eq!(sig("{{ thing:id }}", &r), Resolved::Unresolved);
    assert_eq!(sig("{{ topic:action }}", &r), values(&["subscribe"]));

    let announcement = envelope(json!({
        "topic": "_/the_connection_id/connections/announcements/opened",
        "headers": {}, "path": "/"
    }));
    let r = SignalResolver::for_signal(&announcement);
    assert_eq!(sig("{{ entity:id }}", &r), Resolved::Unresolved);
    assert_eq!(sig("{{ resource:type }}", &r), values(&["connection"]));
    assert_eq!(sig("{{ topic:subject }}", &r), values(&["opened"]));
}

#[test]
fn feature_id_placeholder() {
    let at = |path: &str, value: Value| {
        envelope(json!({
            "topic": "org.eclipse.ditto/thing/things/twin/events/modified",
            "headers": {}, "path": path, "value": value
        }))
    };
    let one_feature = at("/features/lamp/properties/on", json!(true));
    let r = SignalResolver::for_signal(&one_feature);
    assert_eq!(sig("{{ feature:id }}", &r), values(&["lamp"]));
    let feature = at("/features/lamp", json!({}));
    assert_eq!(
        sig("{{ feature:id }}", &SignalResolver::for_signal(&feature)),
        values(&["lamp"])
    );
    // A change at /features concerns every feature in the value.
    let all = at("/features", json!({"lamp": {}, "heater": {}}));
    let r = SignalResolver::for_signal(&all);
    assert_eq!(sig("{{ feature:id }}", &r), values(&["lamp", "heater"]));
    assert_eq!(
        sig("features/{{ feature:id }}/x", &r),
        values(&["features/lamp/x", "features/heater/x"])
    );
    // A whole thing: its features.
    let env = create_thing();
    assert_eq!(
        sig("{{ feature:id }}", &SignalResolver::for_signal(&env)),
        values(&["lamp", "heater"])
    );
    // Not about a feature: empty.
    let attribute = at("/attributes/location", json!("kitchen"));
    let r = SignalResolver::for_signal(&attribute);
    assert_eq!(sig("{{ feature:id }}", &r), Resolved::Unresolved);
    assert_eq!(
        sig("{{ feature:id | fn:default('none') }}", &r),
        values(&["none"])
    );
    let deleted = envelope(json!({
        "topic": "org.eclipse.ditto/thing/things/twin/events/deleted",
        "headers": {}, "path": "/features"
    }));
    assert_eq!(
        sig("{{ feature:id }}", &SignalResolver::for_signal(&deleted)),
        Resolved::Unresolved
    );
    // A message to a feature.
    let message = envelope(json!({
        "topic": "org.eclipse.ditto/thing/things/live/messages/ask",
        "headers": {}, "path": "/features/lamp/inbox/messages/ask"
    }));
    assert_eq!(
        sig("{{ feature:id }}", &SignalResolver::for_signal(&message)),
        values(&["lamp"])
    );
}

#[test]
fn header_placeholders_are_case_insensitive() {
    let env = create_thing();
    let r = SignalResolver::for_signal(&env);
    assert_eq!(sig("{{ header:correlation-id }}", &r), values(&["c-1"]));
    assert_eq!(sig("{{ header:CORRELATION-ID }}", &r), values(&["c-1"]));
    assert_eq!(
        sig("{{ header:content-type }}", &r),
        values(&["application/json"])
    );
    assert_eq!(sig("{{ header:response-required }}", &r), values(&["true"]));
    assert_eq!(sig("{{ header:missing }}", &r), Resolved::Unresolved);
    // Inbound: the transport headers, not the Ditto headers.
    let mut external = Headers::new();
    external.insert("Device_Id", "d-7");
    let r = SignalResolver::for_signal(&env).external_headers(&external);
    assert_eq!(sig("{{ header:device_id }}", &r), values(&["d-7"]));
    assert_eq!(sig("{{ header:correlation-id }}", &r), Resolved::Unresolved);
    let r = SignalResolver::for_external(&external);
    assert_eq!(sig("{{ header:DEVICE_ID }}", &r), values(&["d-7"]));
    assert_eq!(sig("{{ thing:id }}", &r), Resolved::Unresolved);
}

#[test]
fn connection_request_source_and_thing_json_placeholders() {
    let env = create_thing();
    let thing = json!({
        "thingId": "org.eclipse.ditto:device-123",
        "attributes": {"location": "Kitchen", "floor": 2, "tags": ["a", "b"], "geo": {"x": 1},
                       "a/b": "slash", "nothing": null},
        "features": {"temperature": {"properties": {"value": 21.5}}}
    });
    let r = SignalResolver::for_signal(&env)
        .connection_id("my-connection")
        .request_subject("integration:ditto")
        .source_address("telemetry/device-123")
        .thing_json(&thing);
    assert_eq!(sig("{{ connection:id }}", &r), values(&["my-connection"]));
    assert_eq!(
        sig("{{ request:subjectId }}", &r),
        values(&["integration:ditto"])
    );
    assert_eq!(
        sig("{{ source:address }}", &r),
        values(&["telemetry/device-123"])
    );
    assert_eq!(
        sig("{{ thing-json:attributes/location }}", &r),
        values(&["Kitchen"])
    );
    assert_eq!(
        sig("{{ thing-json:/attributes/location }}", &r),
        values(&["Kitchen"])
    );
    assert_eq!(sig("{{ thing-json:attributes/floor }}", &r), values(&["2"]));
    assert_eq!(
        sig("{{ thing-json:features/temperature/properties/value }}", &r),
        values(&["21.5"])
    );
    assert_eq!(
        sig("{{ thing-json:attributes/tags }}", &r),
        values(&["a", "b"])
    );
    assert_eq!(
        sig("{{ thing-json:attributes/geo }}", &r),
        values(&[r#"{"x":1}"#])
    );
    assert_eq!(
        sig("{{ thing-json:attributes/a~1b }}", &r),
        values(&["slash"])
    );
    assert_eq!(
        sig("{{ thing-json:attributes/nothing }}", &r),
        values(&["null"])
    );
    assert_eq!(
        sig("{{ thing-json:attributes/missing }}", &r),
        Resolved::Unresolved
    );
    // Nothing set: nothing resolves.
    let bare = SignalResolver::for_signal(&env);
    for p in [
        "connection:id",
        "request:subjectId",
        "source:address",
        "thing-json:thingId",
    ] {
        assert_eq!(
            sig(&format!("{{{{ {p} }}}}"), &bare),
            Resolved::Unresolved,
            "{p}"
        );
    }
    // JWT and policy-entry placeholders are not part of a signal.
    assert_eq!(sig("{{ jwt:sub }}", &bare), Resolved::Unresolved);
    assert_eq!(sig("{{ policy-entry:label }}", &bare), Resolved::Unresolved);
}

#[test]
fn policy_entry_label_resolves_through_a_resolver() {
    let t = Table::default().with("policy-entry:label", &["DEFAULT"]);
    assert_eq!(
        resolve_with("{{ policy-entry:label }}-x", &t),
        values(&["DEFAULT-x"])
    );
}

#[test]
fn jwt_placeholders_expand_arrays() {
    let claims = json!({
        "sub": "u123456789",
        "aud": "client-id-0815",
        "scopes": "openid email",
        "exp": 1490922820,
        "extra": {"roles": ["administrator", "super-moderator", "moderator"]},
        "groups": [{"name": "a"}, {"name": "b"}, {"name": "a"}]
    });
    let r = JwtResolver::new(&claims);
    let jwt = |t: &str| {
        Template::compile(t, &Allowed::jwt_subjects())
            .unwrap_or_else(|e| panic!("{t}: {e}"))
            .resolve(&r)
    };
    assert_eq!(jwt("{{ jwt:sub }}"), values(&["u123456789"]));
    assert_eq!(
        jwt("{{ jwt:sub }}@{{ jwt:aud }}"),
        values(&["u123456789@client-id-0815"])
    );
    assert_eq!(jwt("{{ jwt:exp }}"), values(&["1490922820"]));
    assert_eq!(
        jwt("{{ jwt:extra/roles }}"),
        values(&["administrator", "super-moderator", "moderator"])
    );
    assert_eq!(
        jwt("{{ jwt:scopes | fn:split(' ') }}"),
        values(&["openid", "email"])
    );
    assert_eq!(
        jwt("{{ jwt:extra/roles | fn:filter('like','*moderator') }}@{{ jwt:aud }}"),
        values(&["super-moderator@client-id-0815", "moderator@client-id-0815"])
    );
    // Pointers walk through arrays; duplicates are dropped.
    assert_eq!(jwt("{{ jwt:groups/name }}"), values(&["a", "b"]));
    assert_eq!(jwt("{{ jwt:missing }}"), Resolved::Unresolved);
    assert_eq!(
        jwt("{{ jwt:extra/roles | fn:join(',') }}"),
        values(&["administrator,super-moderator,moderator"])
    );
}

// ---------------------------------------------------------------------------------------------
// Functions (§3.3)

#[test]
fn fn_default() {
    assert_eq!(
        one("{{ header:missing | fn:default('fallback') }}"),
        "fallback"
    );
    assert_eq!(
        one(r#"{{ header:missing | fn:default("fallback") }}"#),
        "fallback"
    );
    assert_eq!(
        one("{{ header:missing | fn:default(thing:id) }}"),
        "org.eclipse.ditto:device-123"
    );
    assert_eq!(one("{{ header:x | fn:default('fallback') }}"), "abc");
    // A resolved empty string is a value; default does not replace it.
    assert_eq!(one("{{ header:empty | fn:default('fallback') }}"), "");
    // The default itself may not resolve.
    assert_eq!(
        resolve("{{ header:missing | fn:default(header:also-missing) }}"),
        Resolved::Unresolved
    );
    assert_eq!(
        one("{{ header:missing | fn:default(header:also-missing) | fn:default('last') }}"),
        "last"
    );
    // A deleted value stays deleted.
    assert_eq!(
        resolve("{{ header:x | fn:delete() | fn:default('x') }}"),
        Resolved::Deleted
    );
    // Multi-valued default.
    assert_eq!(
        resolve("{{ header:missing | fn:default(feature:id) }}"),
        values(&["lamp", "heater"])
    );
}

#[test]
fn fn_substring_before_and_after() {
    let t = table().with("header:id", &["ns:name:rest"]);
    let r = |s: &str| resolve_with(s, &t);
    assert_eq!(
        r("{{ header:id | fn:substring-before(':') }}"),
        values(&["ns"])
    );
    assert_eq!(
        r("{{ header:id | fn:substring-after(':') }}"),
        values(&["name:rest"])
    );
    assert_eq!(
        r(r#"{{ header:id | fn:substring-after(":") }}"#),
        values(&["name:rest"])
    );
    assert_eq!(
        r("{{ header:id | fn:substring-before('name') }}"),
        values(&["ns:"])
    );
    // Absent: empty.
    assert_eq!(
        r("{{ header:id | fn:substring-before('#') }}"),
        Resolved::Unresolved
    );
    assert_eq!(
        r("{{ header:id | fn:substring-after('#') }}"),
        Resolved::Unresolved
    );
    assert_eq!(
        r("{{ header:id | fn:substring-after('#') | fn:default('none') }}"),
        values(&["none"])
    );
    // Empty input stays empty.
    assert_eq!(r("{{ fn:substring-before(':') }}"), Resolved::Unresolved);
    assert_eq!(
        r("{{ header:missing | fn:substring-after(':') }}"),
        Resolved::Unresolved
    );
    // At the edges.
    assert_eq!(
        r("{{ header:id | fn:substring-before('ns') }}"),
        values(&[""])
    );
    assert_eq!(
        r("{{ header:id | fn:substring-after('rest') }}"),
        values(&[""])
    );
}

#[test]
fn fn_lower_upper_trim() {
    let t = table().with("header:mixed", &["MiXeD Ünïcode"]);
    assert_eq!(
        resolve_with("{{ header:mixed | fn:lower() }}", &t),
        values(&["mixed ünïcode"])
    );
    assert_eq!(
        resolve_with("{{ header:mixed | fn:upper() }}", &t),
        values(&["MIXED ÜNÏCODE"])
    );
    assert_eq!(one("{{ header:spaced | fn:trim() }}"), "padded value");
    assert_eq!(one("{{ header:empty | fn:trim() }}"), "");
    let t = table().with("header:blank", &["   "]);
    assert_eq!(
        resolve_with("{{ header:blank | fn:trim() }}", &t),
        values(&[""])
    );
    assert_eq!(resolve("{{ fn:lower() }}"), Resolved::Unresolved);
    assert_eq!(
        resolve("{{ header:missing | fn:upper() }}"),
        Resolved::Unresolved
    );
    assert_eq!(
        resolve("{{ header:missing | fn:trim() }}"),
        Resolved::Unresolved
    );
}

#[test]
fn fn_url_encode_and_decode() {
    let t = table()
        .with("header:raw", &["a b&c/ä*~.-_"])
        .with("header:encoded", &["a+b%26c%2F%C3%A4*%7E"])
        .with("header:broken", &["100%"])
        .with("header:broken2", &["%zz"]);
    let r = |s: &str| resolve_with(s, &t);
    assert_eq!(
        r("{{ header:raw | fn:url-encode() }}"),
        values(&["a+b%26c%2F%C3%A4*%7E.-_"])
    );
    assert_eq!(
        r("{{ header:encoded | fn:url-decode() }}"),
        values(&["a b&c/ä*~"])
    );
    assert_eq!(
        r("{{ header:raw | fn:url-encode() | fn:url-decode() }}"),
        values(&["a b&c/ä*~.-_"])
    );
    assert_eq!(r("{{ header:x | fn:url-decode() }}"), values(&["abc"]));
    // Malformed escapes do not decode.
    assert_eq!(
        r("{{ header:broken | fn:url-decode() }}"),
        Resolved::Unresolved
    );
    assert_eq!(
        r("{{ header:broken2 | fn:url-decode() }}"),
        Resolved::Unresolved
    );
    assert_eq!(
        r("{{ header:broken2 | fn:url-decode() | fn:default('bad') }}"),
        values(&["bad"])
    );
    assert_eq!(
        r("{{ header:missing | fn:url-encode() }}"),
        Resolved::Unresolved
    );
    assert_eq!(r("{{ header:empty | fn:url-encode() }}"), values(&[""]));
}

#[test]
fn fn_base64_encode_and_decode() {
    let t = table()
        .with("header:text", &["hällo wörld"])
        .with("header:b64", &["aMOkbGxvIHfDtnJsZA=="])
        .with("header:unpadded", &["aMOkbGxvIHfDtnJsZA"])
        .with("header:junk", &["not base64!"]);
    let r = |s: &str| resolve_with(s, &t);
    assert_eq!(
        r("{{ header:text | fn:base64-encode() }}"),
        values(&["aMOkbGxvIHfDtnJsZA=="])
    );
    assert_eq!(
        r("{{ header:b64 | fn:base64-decode() }}"),
        values(&["hällo wörld"])
    );
    assert_eq!(
        r("{{ header:unpadded | fn:base64-decode() }}"),
        values(&["hällo wörld"])
    );
    assert_eq!(
        r("{{ header:junk | fn:base64-decode() }}"),
        Resolved::Unresolved
    );
    assert_eq!(r("{{ header:empty | fn:base64-encode() }}"), values(&[""]));
    assert_eq!(r("{{ fn:base64-encode() }}"), Resolved::Unresolved);
}

#[test]
fn fn_replace() {
    let t = table()
        .with("header:path", &["a.b.c"])
        .with("header:dot", &["."]);
    let r = |s: &str| resolve_with(s, &t);
    assert_eq!(
        r("{{ header:path | fn:replace('.', '/') }}"),
        values(&["a/b/c"])
    );
    // Literal, not a regular expression.
    assert_eq!(
        r("{{ header:path | fn:replace('a.b', 'x') }}"),
        values(&["x.c"])
    );
    assert_eq!(
        r("{{ header:path | fn:replace('.*', 'x') }}"),
        values(&["a.b.c"])
    );
    assert_eq!(
        r("{{ header:path | fn:replace(header:dot, '') }}"),
        values(&["abc"])
    );
    assert_eq!(
        r("{{ header:path | fn:replace('.', header:x) }}"),
        values(&["aabcbabcc"])
    );
    assert_eq!(
        r("{{ header:path | fn:replace('.', header:missing) }}"),
        Resolved::Unresolved
    );
    assert_eq!(
        r("{{ header:missing | fn:replace('.', '/') }}"),
        Resolved::Unresolved
    );
}

#[test]
fn fn_delete() {
    assert_eq!(resolve("{{ header:x | fn:delete() }}"), Resolved::Deleted);
    assert_eq!(resolve("{{ fn:delete() }}"), Resolved::Deleted);
    assert_eq!(
        resolve("{{ header:missing | fn:delete() }}"),
        Resolved::Deleted
    );
    // Later stages are ignored.
    assert_eq!(
        resolve("{{ header:x | fn:delete() | fn:default('x') | fn:upper() }}"),
        Resolved::Deleted
    );
    // Several deleted expressions: deleted; with literal text, the text stays.
    assert_eq!(
        resolve("{{ fn:delete() }}{{ header:x | fn:delete() }}"),
        Resolved::Deleted
    );
    assert_eq!(resolve("prefix-{{ fn:delete() }}"), values(&["prefix-"]));
    // Unresolved wins over deleted.
    assert_eq!(
        resolve("{{ fn:delete() }}{{ header:missing }}"),
        Resolved::Unresolved
    );
}

#[test]
fn fn_split_only_on_jwt() {
    let t = table().with("jwt:scope", &["openid  email,profile"]);
    assert_eq!(
        resolve_with("{{ jwt:scope | fn:split(' ') }}", &t),
        values(&["openid", "email,profile"])
    );
    assert_eq!(
        resolve_with("{{ jwt:scope | fn:split(',') | fn:split(' ') }}", &t),
        values(&["openid", "email", "profile"])
    );
    assert_eq!(
        resolve_with("{{ jwt:scope | fn:split(' ') | fn:join('+') }}", &t),
        values(&["openid+email,profile"])
    );
    assert_eq!(
        resolve_with("{{ jwt:scope | fn:upper() | fn:split(' ') }}", &t),
        values(&["OPENID", "EMAIL,PROFILE"])
    );
    assert_eq!(
        resolve_with("{{ jwt:nothing | fn:split(' ') }}", &t),
        Resolved::Unresolved
    );
    for bad in [
        "{{ header:x | fn:split(' ') }}",
        "{{ fn:split(' ') }}",
        "{{ thing:id | fn:lower() | fn:split(':') }}",
    ] {
        let e = compile_error(bad, &Allowed::everything());
        assert_eq!(e.error, SIGNATURE_INVALID, "{bad}");
        assert!(e.message_or_code().contains("jwt:"), "{e}");
    }
}

#[test]
fn fn_join() {
    assert_eq!(one("{{ feature:id | fn:join(',') }}"), "lamp,heater");
    assert_eq!(one("{{ feature:id | fn:join('') }}"), "lampheater");
    assert_eq!(one("{{ header:x | fn:join(',') }}"), "abc");
    assert_eq!(
        resolve("{{ header:missing | fn:join(',') }}"),
        Resolved::Unresolved
    );
}

#[test]
fn fn_format_keeps_fields_correlated() {
    let claims = json!({
        "authz": [
            {"reseller": "io.test", "service_provider": "acme", "roles": ["op"]},
            {"reseller": "io.test", "service_provider": "", "roles": ["resellerAdmin"]}
        ],
        "nested": [{
            "reseller": "io.test",
            "service_provider": "acme",
            "permissions": [
                {"resource": "things", "actions": ["read", "write"]},
                {"resource": "policies", "actions": ["read"]}
            ]
        }],
        "misc": {"a": {"b": "deep"}, "n": null, "num": 3, "empty": [], "prims": [1, 2]}
    });
    let r = JwtResolver::new(&claims);
    let jwt = |t: &str| compile(t).resolve(&r);
    assert_eq!(
        jwt("{{ jwt:authz/reseller }}#{{ jwt:authz/service_provider }}#{{ jwt:authz/roles }}"),
        // Separate placeholders combine wrongly, as the documentation warns.
        values(&[
            "io.test#acme#op",
            "io.test#acme#resellerAdmin",
            "io.test##op",
            "io.test##resellerAdmin"
        ])
    );
    assert_eq!(
        jwt("{{ jwt:authz | fn:format('{reseller}#{service_provider}#{roles}') }}"),
        values(&["io.test#acme#op", "io.test##resellerAdmin"])
    );
    assert_eq!(
        jwt("{{ jwt:nested | fn:format('{reseller}:{service_provider}:{#permissions}{resource}:{#actions}{.}{/actions}{/permissions}') }}"),
        values(&["io.test:acme:things:read", "io.test:acme:things:write", "io.test:acme:policies:read"])
    );
    assert_eq!(
        jwt("{{ jwt:misc | fn:format('{/a/b}|{missing}|{n}|{num}|{empty}|{prims}') }}"),
        values(&["deep|||3||1", "deep|||3||2"])
    );
    assert_eq!(
        jwt(r"{{ jwt:misc | fn:format('\{{num}\}') }}"),
        values(&["{3}"])
    );
    assert_eq!(
        jwt("{{ jwt:misc | fn:format('{#prims}<{.}>{/prims}') }}"),
        values(&["<1>", "<2>"])
    );
    assert_eq!(
        jwt("{{ jwt:misc | fn:format('{#missing}x{/missing}!') }}"),
        values(&["!"])
    );
    // Values that are not JSON objects are skipped; if none is one, the result is "".
    assert_eq!(jwt("{{ jwt:misc/a/b | fn:format('{x}') }}"), values(&[""]));
    assert_eq!(
        jwt("{{ jwt:nothing | fn:format('{x}') }}"),
        Resolved::Unresolved
    );
}

// ---------------------------------------------------------------------------------------------
// fn:filter (§3.4)

#[test]
fn filter_with_three_arguments_tests_the_first() {
    assert_eq!(
        one("{{ header:x | fn:filter(header:qos,'eq','1') }}"),
        "abc"
    );
    assert_eq!(
        resolve("{{ header:x | fn:filter(header:qos,'eq','0') }}"),
        Resolved::Deleted
    );
    assert_eq!(
        one("{{ header:x | fn:filter(header:qos,'ne','0') }}"),
        "abc"
    );
    assert_eq!(
        resolve("{{ header:x | fn:filter(header:qos,'ne','1') }}"),
        Resolved::Deleted
    );
    // A missing header is tested as "": it is not equal to '0'.
    assert_eq!(
        one("{{ header:x | fn:filter(header:missing,'ne','0') }}"),
        "abc"
    );
    assert_eq!(
        resolve("{{ header:x | fn:filter(header:missing,'eq','0') }}"),
        Resolved::Deleted
    );
    // Placeholders on both sides.
    assert_eq!(
        one("{{ header:x | fn:filter(header:x,'eq',header:x) }}"),
        "abc"
    );
    assert_eq!(
        one("{{ header:x | fn:filter('1','eq',header:qos) }}"),
        "abc"
    );
    assert_eq!(
        one("{{ header:x | fn:filter(thing:name,'like','device-*') }}"),
        "abc"
    );
    assert_eq!(
        resolve("{{ header:x | fn:filter(thing:name,'like','sensor-*') }}"),
        Resolved::Deleted
    );
    // Any of several values.
    assert_eq!(
        one("{{ header:x | fn:filter(feature:id,'eq','heater') }}"),
        "abc"
    );
}

#[test]
fn filter_with_two_arguments_tests_the_pipeline_value() {
    assert_eq!(one("{{ header:qos | fn:filter('eq','1') }}"), "1");
    assert_eq!(
        resolve("{{ header:qos | fn:filter('eq','0') }}"),
        Resolved::Deleted
    );
    assert_eq!(one("{{ header:qos | fn:filter('ne','0') }}"), "1");
    assert_eq!(one("{{ header:qos | fn:filter('eq',header:qos) }}"), "1");
    assert_eq!(
        resolve("{{ header:qos | fn:filter('eq',header:missing) }}"),
        Resolved::Deleted
    );
    // Multi-valued: keeps those that pass.
    assert_eq!(one("{{ feature:id | fn:filter('eq','heater') }}"), "heater");
    assert_eq!(
        resolve("{{ jwt:roles | fn:filter('like','*moderator') }}"),
        values(&["super-moderator", "moderator"])
    );
    assert_eq!(
        resolve("{{ jwt:roles | fn:filter('like','admin*|moderator') }}"),
        values(&["administrator", "moderator"])
    );
    // Empty input stays empty.
    assert_eq!(
        resolve("{{ header:missing | fn:filter('ne','0') }}"),
        Resolved::Unresolved
    );
    assert_eq!(resolve("{{ fn:filter('ne','0') }}"), Resolved::Unresolved);
}

#[test]
fn filter_exists_forms() {
    // (x, 'exists'): x exists.
    assert_eq!(
        one("{{ header:x | fn:filter(header:qos,'exists') }}"),
        "abc"
    );
    assert_eq!(
        resolve("{{ header:x | fn:filter(header:missing,'exists') }}"),
        Resolved::Deleted
    );
    assert_eq!(
        resolve("{{ header:x | fn:filter(header:empty,'exists') }}"),
        Resolved::Deleted
    );
    // (x, 'exists', 'true'|'false').
    assert_eq!(
        one("{{ header:x | fn:filter(header:qos,'exists','true') }}"),
        "abc"
    );
    assert_eq!(
        resolve("{{ header:x | fn:filter(header:qos,'exists','false') }}"),
        Resolved::Deleted
    );
    assert_eq!(
        one("{{ header:x | fn:filter(header:missing,'exists','false') }}"),
        "abc"
    );
    assert_eq!(
        resolve("{{ header:x | fn:filter(header:missing,'exists','true') }}"),
        Resolved::Deleted
    );
    assert_eq!(
        one("{{ header:x | fn:filter(header:missing,'exists','FALSE') }}"),
        "abc"
    );
    assert_eq!(
        one("{{ header:x | fn:filter(header:missing,'exists',header:missing) }}"),
        "abc"
    );
    // ('exists', 'true'|'false') on the pipeline value.
    assert_eq!(one("{{ header:x | fn:filter('exists','true') }}"), "abc");
    assert_eq!(
        resolve("{{ header:x | fn:filter('exists','false') }}"),
        Resolved::Deleted
    );
    assert_eq!(one("{{ header:empty | fn:filter('exists','false') }}"), "");
    assert_eq!(
        resolve("{{ header:empty | fn:filter('exists','true') }}"),
        Resolved::Deleted
    );
    // ('exists'): keeps a value that is there.
    assert_eq!(one("{{ header:true | fn:filter('exists') }}"), "true");
    assert_eq!(one("{{ header:x | fn:filter('exists') }}"), "abc");
    assert_eq!(
        resolve("{{ header:empty | fn:filter('exists') }}"),
        Resolved::Deleted
    );
}

#[test]
fn filter_like_globs() {
    let t = |v: &str, pattern: &str| {
        let r = table().with("header:v", &[v]);
        resolve_with(
            &format!("{{{{ header:v | fn:filter('like','{pattern}') }}}}"),
            &r,
        )
        .is_resolved()
    };
    assert!(t("moderator", "*moderator"));
    assert!(t("super-moderator", "*moderator"));
    assert!(!t("moderators", "*moderator"));
    assert!(t("abc", "a?c"));
    assert!(!t("ac", "a?c"));
    assert!(!t("abbc", "a?c"));
    assert!(t("abc", "*"));
    assert!(t("", "*"));
    assert!(t("foobar", "allowlist1|foobar|include"));
    assert!(t("include", "allowlist1|foobar|include"));
    assert!(!t("foo", "allowlist1|foobar|include"));
    assert!(t("a.b", "a.b"));
    assert!(!t("axb", "a.b"));
    assert!(t("prefix-x-suffix", "prefix*suffix"));
    assert!(t("ä-ö", "?-?"));
}

#[test]
fn a_removed_value_lets_default_apply() {
    assert_eq!(
        one("{{ header:qos | fn:filter('eq','0') | fn:default('zero') }}"),
        "zero"
    );
    assert_eq!(
        one("{{ header:qos | fn:filter('eq','0') | fn:upper() | fn:default('z') }}"),
        "z"
    );
    assert_eq!(
        resolve("{{ header:qos | fn:filter('eq','0') | fn:upper() }}"),
        Resolved::Deleted
    );
    assert_eq!(
        resolve("{{ header:qos | fn:filter('eq','0') | fn:delete() }}"),
        Resolved::Deleted
    );
}

#[test]
fn a_removed_value_deletes_the_whole_template() {
    assert_eq!(
        one("prefix-{{ header:x | fn:filter('eq','abc') }}"),
        "prefix-abc"
    );
    assert_eq!(
        resolve("prefix-{{ header:x | fn:filter('eq','zzz') }}-{{ thing:name }}"),
        Resolved::Deleted
    );
    assert_eq!(
        resolve("{{ header:missing }}{{ header:x | fn:filter('eq','zzz') }}"),
        Resolved::Unresolved
    );
    assert_eq!(
        resolve("{{ jwt:roles | fn:filter('like','*moderator') }}/{{ header:x }}"),
        values(&["super-moderator/abc", "moderator/abc"])
    );
}

#[test]
fn conditions_and_acknowledgement_filters() {
    let allowed = Allowed::conditions_inbound();
    let cond = Pipeline::compile_functions("fn:filter(header:x,'eq','true')", &allowed)
        .unwrap_or_else(|e| panic!("{e}"));
    let mut h = Headers::new();
    h.insert("x", "true");
    let holds = |headers: &Headers| {
        cond.resolve_with_input(&SignalResolver::for_external(headers), "true")
            .is_resolved()
    };
    assert!(holds(&h));
    h.insert("x", "false");
    assert!(!holds(&h));
    assert!(!holds(&Headers::new()));
    // Without an input, a function pipeline starts empty.
    assert_eq!(
        cond.resolve(&SignalResolver::for_external(&h)),
        Resolved::Unresolved
    );

    let acks = Pipeline::compile_functions(
        "fn:filter(header:mqtt.qos,'ne','0')",
        &Allowed::acknowledgement_request_filter(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut h = Headers::new();
    h.insert("mqtt.qos", "1");
    let r = SignalResolver::for_external(&h);
    assert_eq!(
        acks.resolve_with_input(&r, "[\"twin-persisted\"]"),
        values(&["[\"twin-persisted\"]"])
    );
    h.insert("mqtt.qos", "0");
    let r = SignalResolver::for_external(&h);
    assert_eq!(
        acks.resolve_with_input(&r, "[\"twin-persisted\"]"),
        Resolved::Deleted
    );
    let delete =
        Pipeline::compile_functions("fn:delete()", &Allowed::acknowledgement_request_filter())
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(delete.resolve_with_input(&r, "[]"), Resolved::Deleted);
    // Conditions are functions only.
    let e = Pipeline::compile_functions("header:x", &allowed).err();
    assert_eq!(
        e.map(|e| e.error.into_owned()),
        Some(FUNCTION_UNKNOWN.to_owned())
    );
    // A pipeline starting with a placeholder ignores the input.
    let p = Pipeline::compile("header:x | fn:upper()", &allowed).unwrap_or_else(|e| panic!("{e}"));
    let mut h = Headers::new();
    h.insert("x", "v");
    assert_eq!(
        p.resolve_with_input(&SignalResolver::for_external(&h), "ignored"),
        values(&["V"])
    );
    assert_eq!(p.source(), "header:x | fn:upper()");
    assert_eq!(p.function_count(), 1);
    assert_eq!(p.input().map(Placeholder::prefix), Some(Prefix::Header));
}

// ---------------------------------------------------------------------------------------------
// Multi-valued placeholders

#[test]
fn multi_valued_placeholders_give_every_combination() {
    assert_eq!(
        resolve("f/{{ feature:id }}"),
        values(&["f/lamp", "f/heater"])
    );
    assert_eq!(
        resolve("{{ feature:id }}-{{ feature:id | fn:upper() }}"),
        values(&["lamp-LAMP", "lamp-HEATER", "heater-LAMP", "heater-HEATER"])
    );
    // Target addresses use the first.
    assert_eq!(
        resolve("events/{{ feature:id }}").first(),
        Some("events/lamp")
    );
    assert_eq!(
        resolve("events/{{ feature:id }}").into_first(),
        Some("events/lamp".to_owned())
    );
    assert_eq!(resolve("{{ header:missing }}").first(), None);
    assert!(resolve("{{ header:missing }}").into_values().is_empty());
    assert_eq!(
        resolve("{{ feature:id | fn:upper() | fn:substring-before('H') }}"),
        values(&[""])
    );
}

// ---------------------------------------------------------------------------------------------
// Time placeholders

#[test]
fn time_placeholders_follow_the_documented_examples() {
    for (p, v) in [
        ("time:now", "2024-01-06T14:23:42.123Z"),
        ("time:now+1h", "2024-01-06T15:23:42.123Z"),
        ("time:now-7d", "2023-12-30T14:23:42.123Z"),
        ("time:now[h]", "2024-01-06T14:00:00.000Z"),
        ("time:now[d]", "2024-01-06T00:00:00.000Z"),
        ("time:now-25m[m]", "2024-01-06T13:58:00.000Z"),
        ("time:now+3d[s]", "2024-01-09T14:23:42.000Z"),
        ("time:now[ms]", "2024-01-06T14:23:42.123Z"),
        ("time:now[s]", "2024-01-06T14:23:42.000Z"),
        ("time:now[m]", "2024-01-06T14:23:00.000Z"),
        // 2024-01-06 is a Saturday: the week began on Monday the 1st.
        ("time:now[w]", "2024-01-01T00:00:00.000Z"),
        ("time:now[mo]", "2024-01-01T00:00:00.000Z"),
        ("time:now[y]", "2024-01-01T00:00:00.000Z"),
        ("time:now+1w", "2024-01-13T14:23:42.123Z"),
        ("time:now+1mo", "2024-02-06T14:23:42.123Z"),
        ("time:now-1y", "2023-01-06T14:23:42.123Z"),
        ("time:now+500ms", "2024-01-06T14:23:42.623Z"),
        ("time:now+30s", "2024-01-06T14:24:12.123Z"),
        // Without a unit, seconds (as Ditto).
        ("time:now+30", "2024-01-06T14:24:12.123Z"),
        ("time:now+1mo[mo]", "2024-02-01T00:00:00.000Z"),
        ("time:now_epoch_millis", "1704551022123"),
        ("time:now_epoch_millis+1s", "1704551023123"),
        ("time:now_epoch_millis-1h", "1704547422123"),
        ("time:now_epoch_millis[d]", "1704499200000"),
        ("time:now_epoch_millis-1d[y]", "1704067200000"),
    ] {
        assert_eq!(one(&format!("{{{{ {p} }}}}")), v, "{p}");
    }
}

#[test]
fn the_documentation_example_minus_seven_days() {
    // The documentation writes "2023-12-31T14:23:42.123Z" for now-7d from 2024-01-06, which is
    // six days; seven days before is 2023-12-30.
    assert_eq!(one("{{ time:now-7d }}"), "2023-12-30T14:23:42.123Z");
}

#[test]
fn month_offsets_are_calendar_months() {
    struct At(i64);
    impl Resolver for At {
        fn resolve(&self, _: &Placeholder) -> Values<'_> {
            Values::None
        }
        fn now_millis(&self) -> i64 {
            self.0
        }
    }
    // 2024-03-31T10:00:00Z
    let r = At(1_711_879_200_000);
    assert_eq!(
        resolve_with("{{ time:now-1mo }}", &r),
        values(&["2024-02-29T10:00:00.000Z"])
    );
    assert_eq!(
        resolve_with("{{ time:now+1y }}", &r),
        values(&["2025-03-31T10:00:00.000Z"])
    );
    assert_eq!(
        resolve_with("{{ time:now-1y[w] }}", &r),
        values(&["2023-03-27T00:00:00.000Z"])
    );
    // Out of range: unresolved.
    let far = At(i64::MAX);
    assert_eq!(resolve_with("{{ time:now }}", &far), Resolved::Unresolved);
    assert_eq!(
        resolve_with("{{ time:now | fn:default('never') }}", &far),
        values(&["never"])
    );
}

#[test]
fn signal_resolver_clock_can_be_fixed() {
    let env = create_thing();
    let r = SignalResolver::for_signal(&env).at_time(NOW);
    assert_eq!(
        sig("{{ time:now }}", &r),
        values(&["2024-01-06T14:23:42.123Z"])
    );
    let live = SignalResolver::for_signal(&env);
    let now = sig("{{ time:now_epoch_millis }}", &live)
        .into_first()
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or_default();
    assert!(now > NOW, "the system clock is used by default");
}

#[test]
fn time_in_function_arguments() {
    assert_eq!(
        one("{{ header:missing | fn:default(time:now[d]) }}"),
        "2024-01-06T00:00:00.000Z"
    );
}

// ---------------------------------------------------------------------------------------------
// Locations (§3.5)

fn refused(text: &str, allowed: &Allowed) {
    let e = compile_error(text, allowed);
    assert_eq!(e.error, UNRESOLVED, "{text} at {}: {e}", allowed.location());
    assert!(
        e.description
            .unwrap_or_default()
            .contains(allowed.location()),
        "{text}: the error names the location"
    );
}

fn accepted(text: &str, allowed: &Allowed) {
    if let Err(e) = Template::compile(text, allowed) {
        panic!("{text} at {}: {e}", allowed.location());
    }
}

const CONNECTION_PLACEHOLDERS: &[&str] = &[
    "header:x",
    "entity:id",
    "thing:id",
    "thing-json:attributes/a",
    "feature:id",
    "topic:full",
    "resource:path",
    "time:now",
    "request:subjectId",
    "connection:id",
];

#[test]
fn connection_locations_allow_the_connection_placeholders() {
    for allowed in [
        Allowed::source_header_mapping(),
        Allowed::reply_target(),
        Allowed::target_address(),
        Allowed::target_header_mapping(),
        Allowed::extra_fields(),
        Allowed::conditions_inbound(),
        Allowed::conditions_outbound(),
    ] {
        for p in CONNECTION_PLACEHOLDERS {
            accepted(&format!("{{{{ {p} }}}}"), &allowed);
        }
        for p in [
            "policy:id",
            "jwt:sub",
            "policy-entry:label",
            "source:address",
        ] {
            refused(&format!("{{{{ {p} }}}}"), &allowed);
        }
    }
    let e = compile_error("{{ policy:id }}", &Allowed::target_address());
    assert!(e.description.unwrap_or_default().contains("entity:id"));
}

#[test]
fn header_only_locations() {
    for allowed in [
        Allowed::source_authorization_context(),
        Allowed::enforcement_input(),
        Allowed::acknowledgement_request_filter(),
        Allowed::mapper_options(),
    ] {
        accepted("{{ header:device-id }}", &allowed);
        for p in [
            "thing:id",
            "connection:id",
            "time:now",
            "source:address",
            "request:subjectId",
        ] {
            refused(&format!("{{{{ {p} }}}}"), &allowed);
        }
    }
    let with_more = Allowed::mapper_options_with_request_and_time();
    for p in [
        "header:x",
        "request:subjectId",
        "time:now",
        "time:now_epoch_millis",
    ] {
        accepted(&format!("{{{{ {p} }}}}"), &with_more);
    }
    refused("{{ thing:id }}", &with_more);
}

#[test]
fn enforcement_locations() {
    let mqtt3 = Allowed::enforcement_input_mqtt3();
    accepted("{{ source:address }}", &mqtt3);
    refused("{{ header:x }}", &mqtt3);
    let mqtt5 = Allowed::enforcement_input_mqtt5();
    accepted("{{ source:address }}", &mqtt5);
    accepted("{{ header:x }}", &mqtt5);
    refused("{{ thing:id }}", &mqtt5);
    let filters = Allowed::enforcement_filters();
    for p in [
        "thing:id",
        "thing:name",
        "entity:id",
        "policy:id",
        "policy:namespace",
    ] {
        accepted(&format!("{{{{ {p} }}}}"), &filters);
    }
    refused("{{ feature:id }}", &filters);
    refused("{{ header:x }}", &filters);
    accepted(
        "{{ feature:id }}",
        &Allowed::enforcement_filters_with_feature(),
    );
}

#[test]
fn acknowledgement_labels_allow_only_the_connection_id() {
    let labels = Allowed::acknowledgement_label();
    accepted("{{connection:id}}:my-ack", &labels);
    accepted("plain-ack", &labels);
    for p in ["thing:id", "header:x", "time:now", "connection:name"] {
        let e = compile_error(&format!("{{{{{p}}}}}:ack"), &labels);
        assert_eq!(e.error, UNRESOLVED);
    }
    accepted("{{ connection:id }}", &Allowed::kafka_group_id());
    refused("{{ thing:id }}", &Allowed::kafka_group_id());
}

#[test]
fn mqtt3_header_mapping_allows_only_the_mqtt_headers() {
    let mqtt3 = Allowed::source_header_mapping_mqtt3();
    for h in ["mqtt.topic", "mqtt.qos", "mqtt.retain", "MQTT.QOS"] {
        accepted(&format!("{{{{ header:{h} }}}}"), &mqtt3);
    }
    accepted("constant", &mqtt3);
    refused("{{ header:correlation-id }}", &mqtt3);
    refused("{{ thing:id }}", &mqtt3);
}

#[test]
fn placeholders_in_arguments_are_checked_too() {
    refused(
        "{{ header:x | fn:default(thing:id) }}",
        &Allowed::source_authorization_context(),
    );
    refused(
        "{{ fn:default('a') | fn:filter(thing:id,'eq','x') }}",
        &Allowed::acknowledgement_request_filter(),
    );
    let t = compile("{{ header:x | fn:default(thing:id) | fn:filter(feature:id,'eq',header:y) }}");
    let names: Vec<String> = t.placeholders().map(|p| p.to_string()).collect();
    assert_eq!(names, ["header:x", "thing:id", "feature:id", "header:y"]);
}

#[test]
fn rql_filters_use_bare_placeholders() {
    let allowed = Allowed::topic_filter();
    for p in [
        "topic:action",
        "resource:path",
        "resource:type",
        "time:now",
        "thing:id",
        "entity:id",
        "feature:id",
    ] {
        if let Err(e) = Placeholder::parse(p, &allowed) {
            panic!("{p}: {e}");
        }
    }
    let e = Placeholder::parse("header:x", &allowed).err();
    assert_eq!(e.map(|e| e.error.into_owned()), Some(UNRESOLVED.to_owned()));
    let env = create_thing();
    let r = SignalResolver::for_signal(&env);
    let action = Placeholder::parse(" topic:action ", &allowed).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(action.resolve(&r).first(), Some("create"));
    assert_eq!(action.to_string(), "topic:action");
    let pointer = Placeholder::parse("thing-json:/a/b~1c", &Allowed::everything())
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(pointer.pointer(), ["a", "b/c"]);
}

#[test]
fn other_scopes() {
    accepted("{{ jwt:sub }}", &Allowed::jwt_subjects());
    refused("{{ header:x }}", &Allowed::jwt_subjects());
    for p in ["header:x", "jwt:sub", "policy-entry:label", "time:now"] {
        accepted(&format!("{{{{ {p} }}}}"), &Allowed::policy_actions());
    }
    refused("{{ thing:id }}", &Allowed::policy_actions());
    accepted("{{ request:subjectId }}", &Allowed::entity_creation());
    refused("{{ header:x }}", &Allowed::entity_creation());
    accepted("{{ policy:id }}", &Allowed::signal_enrichment());
    refused("{{ connection:id }}", &Allowed::signal_enrichment());
    let nothing = Allowed::nothing("a constant field");
    accepted("constant {{ fn:default('x') }}", &nothing);
    refused("{{ header:x }}", &nothing);
    let custom = Allowed::new("custom", &[Prefix::Topic]);
    assert!(custom.allows(Prefix::Topic));
    assert!(!custom.allows(Prefix::Header));
    assert_eq!(custom.prefixes().collect::<Vec<_>>(), [Prefix::Topic]);
}

// ---------------------------------------------------------------------------------------------
// Strict resolution and errors

#[test]
fn strict_resolution_names_the_unresolved_placeholder() {
    let t = Template::compile(
        "ditto:{{ header:subject }}",
        &Allowed::source_authorization_context(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let mut h = Headers::new();
    h.insert("subject", "alice");
    assert_eq!(
        t.resolve_strict(&SignalResolver::for_external(&h)),
        Ok(vec!["ditto:alice".to_owned()])
    );
    let e = t.resolve_strict(&SignalResolver::for_external(&Headers::new()));
    let e = e.err().unwrap_or_else(|| panic!("expected an error"));
    assert_eq!((e.status, e.error.as_ref()), (400, UNRESOLVED));
    assert!(e.message_or_code().contains("header:subject"), "{e}");
    let deleted = compile("{{ fn:delete() }}");
    assert_eq!(deleted.resolve_strict(&table()), Ok(vec![]));
}

#[test]
fn every_error_is_a_400_with_a_placeholder_code() {
    for text in [
        "{{ thing:id",
        "{{ nothing:x }}",
        "{{ thing:id | fn:nope() }}",
        "{{ thing:id | fn:lower('x') }}",
        &format!("{{{{ thing:id{} }}}}", " | fn:lower()".repeat(11)),
    ] {
        let e = compile_error(text, &Allowed::everything());
        assert!(e.error.starts_with("placeholder:"), "{text}: {e}");
        assert!(e.message.is_some() && e.description.is_some(), "{text}");
        assert_eq!(e.to_json()["status"], 400);
    }
}

/// A rough figure for the hot path: `cargo nextest run -p twinwire-core --release --test
/// placeholders --run-ignored only rough_resolution_cost`.
#[test]
#[ignore = "timing, run by hand in release mode"]
fn rough_resolution_cost() {
    let env = create_thing();
    let r = SignalResolver::for_signal(&env).connection_id("c");
    let t = Template::compile(
        "telemetry/{{ thing:namespace }}/{{ thing:name | fn:upper() }}/{{ header:missing | fn:default(connection:id) }}",
        &Allowed::target_address(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let n = 1_000_000u32;
    let start = std::time::Instant::now();
    let mut len = 0;
    for _ in 0..n {
        len += t.resolve(&r).first().map_or(0, str::len);
    }
    let per = start.elapsed() / n;
    println!("{per:?} per resolution ({len})");
}
