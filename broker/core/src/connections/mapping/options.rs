//! What the built-in mappers share: reading a mapping definition's `options` (unknown or
//! malformed ones are refused with `connectivity:message.mapper.config.invalid`), the
//! `content-type-blocklist` every mapper accepts, how a content type's payload is read (text,
//! JSON or binary, as Ditto's `ContentType`), and templates inside JSON option values.
//!
//! JSON templates (`ImplicitThingCreation.thing`, `UpdateTwinWithLiveResponse`
//! `dittoHeadersForMerge`) resolve every string (keys too) on its own, each `{{ … }}` expression
//! separately, so a header value never breaks the JSON around it. `{{ ref:… }}` expressions (the
//! things service resolves `_copyPolicyFrom: "{{ ref:things/<id>/policyId }}"`) are kept as
//! written when the template asks for it.

use super::ExternalMessage;
use crate::placeholders::{Allowed, Resolved, Resolver, Template};
use serde_json::{Map, Value};
use twinwire_protocol::{DittoError, Headers};

/// The error code of a refused mapper configuration (Ditto's
/// `MessageMapperConfigurationInvalidException`).
pub const MAPPER_CONFIG_INVALID: &str = "connectivity:message.mapper.config.invalid";

/// A mapper option is missing, unknown or malformed (400).
pub fn mapper_config_invalid(property: &str, description: &str) -> DittoError {
    DittoError::new(
        400,
        MAPPER_CONFIG_INVALID,
        format!(
            "The message mapper configuration failed due to an invalid or missing property \
             <{property}>."
        ),
    )
    .with_description(description)
}

/// Hono's device notifications, which mappers that read Ditto Protocol skip by default
/// (Ditto's `DittoMessageMapper.DEFAULT_OPTIONS`).
pub(crate) const HONO_NOTIFICATIONS: &[&str] = &[
    "application/vnd.eclipse-hono-empty-notification",
    "application/vnd.eclipse-hono-device-provisioning-notification",
    "application/vnd.eclipse-hono-dc-notification+json",
    "application/vnd.eclipse-hono-delivery-failure-notification+json",
];

/// The option every mapper accepts: content types it does not map (comma-separated).
pub(crate) const CONTENT_TYPE_BLOCKLIST: &str = "content-type-blocklist";

/// A mapping definition's options, checked against the keys a mapper knows.
pub(crate) struct Options<'a> {
    alias: &'static str,
    map: &'a Map<String, Value>,
}

impl<'a> Options<'a> {
    /// Refuses keys the mapper does not know (`content-type-blocklist` is always known).
    pub(crate) fn new(
        alias: &'static str,
        map: &'a Map<String, Value>,
        known: &[&str],
    ) -> Result<Self, DittoError> {
        if let Some(unknown) = map
            .keys()
            .find(|k| k.as_str() != CONTENT_TYPE_BLOCKLIST && !known.contains(&k.as_str()))
        {
            let mut accepted: Vec<&str> = known.to_vec();
            accepted.push(CONTENT_TYPE_BLOCKLIST);
            return Err(mapper_config_invalid(
                unknown,
                &format!(
                    "The {alias} mapper has no option '{unknown}'. Its options are: {}.",
                    accepted.join(", ")
                ),
            ));
        }
        Ok(Options { alias, map })
    }

    fn invalid(&self, key: &str, expected: &str) -> DittoError {
        mapper_config_invalid(
            key,
            &format!(
                "The option '{key}' of the {} mapper must be {expected}.",
                self.alias
            ),
        )
    }

    /// A string option.
    pub(crate) fn string(&self, key: &str) -> Result<Option<&'a str>, DittoError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(self.invalid(key, "a string")),
        }
    }

    /// A required string option.
    pub(crate) fn required_string(&self, key: &str) -> Result<&'a str, DittoError> {
        self.string(key)?.ok_or_else(|| {
            mapper_config_invalid(
                key,
                &format!("The {} mapper needs the option '{key}'.", self.alias),
            )
        })
    }

    /// A JSON object option, also written as a string holding a JSON object.
    pub(crate) fn object(&self, key: &str) -> Result<Option<Map<String, Value>>, DittoError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Object(o)) => Ok(Some(o.clone())),
            Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
                Ok(Value::Object(o)) => Ok(Some(o)),
                _ => Err(self.invalid(key, "a JSON object")),
            },
            Some(_) => Err(self.invalid(key, "a JSON object")),
        }
    }

    /// A boolean option: `true`/`false`, also as strings.
    pub(crate) fn boolean(&self, key: &str) -> Result<Option<bool>, DittoError> {
        match self.map.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(Some(true)),
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(Some(false)),
            Some(_) => Err(self.invalid(key, "true or false")),
        }
    }

    /// `content-type-blocklist`: a comma-separated string (or an array of strings); `default`
    /// when absent.
    pub(crate) fn blocklist(&self, default: &[&str]) -> Result<Blocklist, DittoError> {
        let entries: Vec<String> = match self.map.get(CONTENT_TYPE_BLOCKLIST) {
            None => default.iter().map(|s| (*s).to_owned()).collect(),
            Some(Value::String(s)) => s.split(',').map(str::to_owned).collect(),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| i.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| {
                    self.invalid(
                        CONTENT_TYPE_BLOCKLIST,
                        "a comma-separated list of content types",
                    )
                })?,
            Some(_) => {
                return Err(self.invalid(
                    CONTENT_TYPE_BLOCKLIST,
                    "a comma-separated list of content types",
                ))
            }
        };
        Ok(Blocklist(
            entries
                .iter()
                .map(|e| media_type(e))
                .filter(|e| !e.is_empty())
                .collect(),
        ))
    }

    /// Compiles a string option as a template; a bad placeholder is a configuration error.
    pub(crate) fn template(
        &self,
        key: &str,
        text: &str,
        allowed: &Allowed,
    ) -> Result<Template, DittoError> {
        Template::compile(text, allowed).map_err(|e| placeholder_invalid(key, &e))
    }
}

/// A placeholder error of an option, as a configuration error naming the option.
pub(crate) fn placeholder_invalid(key: &str, error: &DittoError) -> DittoError {
    mapper_config_invalid(
        key,
        &format!(
            "{} {}",
            error.message_or_code(),
            error.description.as_deref().unwrap_or_default()
        ),
    )
}

/// The content types a mapper skips inbound (it maps such a message to nothing).
#[derive(Debug, Clone, Default)]
pub(crate) struct Blocklist(Vec<String>);

impl Blocklist {
    pub(crate) fn blocks(&self, message: &ExternalMessage) -> bool {
        message
            .content_type()
            .is_some_and(|c| self.0.contains(&media_type(c)))
    }
}

/// The media type of a content type: before any `;`, trimmed, lower case.
pub(crate) fn media_type(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// How a payload of a content type is read (Ditto's `ContentType` parsing strategies).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PayloadKind {
    /// `text/*`, `application/[…+]javascript|ecmascript`: a JSON string.
    Text,
    /// `application/json`, `application/…+json`: JSON.
    Json,
    /// Anything else: bytes, as a base64 string.
    Binary,
}

impl PayloadKind {
    pub(crate) fn of(content_type: &str) -> PayloadKind {
        let media = media_type(content_type);
        if media.starts_with("text/") {
            return PayloadKind::Text;
        }
        let Some(sub) = media.strip_prefix("application/") else {
            return PayloadKind::Binary;
        };
        let suffixed = |name: &str| {
            sub == name
                || sub
                    .strip_suffix(name)
                    .and_then(|s| s.strip_suffix('+'))
                    .is_some_and(|s| !s.is_empty())
        };
        if suffixed("javascript") || suffixed("ecmascript") {
            PayloadKind::Text
        } else if suffixed("json") {
            // Includes application/merge-patch+json, which Ditto's ContentType (oddly) reads
            // as binary.
            PayloadKind::Json
        } else {
            PayloadKind::Binary
        }
    }

    pub(crate) fn is_text_or_json(self) -> bool {
        self != PayloadKind::Binary
    }
}

/// The transport headers as Ditto headers (case-insensitive), for `header:` placeholders.
pub(crate) fn external_headers(message: &ExternalMessage) -> Headers {
    message
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

/// What an expression that does not resolve becomes in a [`TextTemplate`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unresolvable {
    /// The whole resolution fails, naming the expression.
    Fail,
    /// The expression stays as written (Ditto's partial resolution).
    Keep,
}

#[derive(Debug, Clone)]
enum Part {
    Literal(String),
    Expression(String, Template),
}

/// A string with placeholders, each `{{ … }}` expression resolved on its own: an expression's
/// first value, nothing for a deleted one, and for an unresolved one what [`Unresolvable`] says.
#[derive(Debug, Clone)]
pub(crate) struct TextTemplate {
    parts: Vec<Part>,
}

impl TextTemplate {
    /// Compiles `text`; with `keep_refs`, `{{ ref:… }}` expressions stay literal text.
    pub(crate) fn compile(
        text: &str,
        allowed: &Allowed,
        keep_refs: bool,
    ) -> Result<TextTemplate, DittoError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Literal(rest[..open].to_owned()));
            }
            let Some(close) = closing(&rest[open + 2..]) else {
                // Let the template compiler describe what is wrong.
                Template::compile(&rest[open..], allowed)?;
                parts.push(Part::Literal(rest[open..].to_owned()));
                rest = "";
                break;
            };
            let end = open + 2 + close + 2;
            let expression = &rest[open..end];
            let body = rest[open + 2..open + 2 + close].trim_start();
            if keep_refs && body.starts_with("ref:") {
                parts.push(Part::Literal(expression.to_owned()));
            } else {
                parts.push(Part::Expression(
                    expression.to_owned(),
                    Template::compile(expression, allowed)?,
                ));
            }
            rest = &rest[end..];
        }
        if !rest.is_empty() {
            parts.push(Part::Literal(rest.to_owned()));
        }
        Ok(TextTemplate { parts })
    }

    pub(crate) fn is_constant(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
    }

    /// The resolved text, or the unresolved expression as written.
    pub(crate) fn resolve(
        &self,
        resolver: &dyn Resolver,
        unresolvable: Unresolvable,
    ) -> Result<String, String> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Literal(s) => out.push_str(s),
                Part::Expression(source, template) => match template.resolve(resolver) {
                    Resolved::Values(values) => {
                        out.push_str(values.first().map(String::as_str).unwrap_or_default())
                    }
                    Resolved::Deleted => {}
                    Resolved::Unresolved => match unresolvable {
                        Unresolvable::Fail => return Err(source.clone()),
                        Unresolvable::Keep => out.push_str(source),
                    },
                },
            }
        }
        Ok(out)
    }
}

/// The offset of the `}}` closing an expression body; quotes may hold braces.
fn closing(body: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (i, c) in body.char_indices() {
        match quote {
            Some(q) => {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = body[i + 1..].starts_with(q);
                } else if c == q {
                    quote = None;
                }
            }
            None if body[i..].starts_with("}}") => return Some(i),
            None if c == '\'' || c == '"' => quote = Some(c),
            None => {}
        }
    }
    None
}

/// A JSON value whose strings (values and keys) may hold placeholders.
#[derive(Debug, Clone)]
pub(crate) enum JsonTemplate {
    Constant(Value),
    Text(TextTemplate),
    Array(Vec<JsonTemplate>),
    Object(Vec<(TextTemplate, JsonTemplate)>),
}

impl JsonTemplate {
    pub(crate) fn compile(
        value: &Value,
        allowed: &Allowed,
        keep_refs: bool,
    ) -> Result<JsonTemplate, DittoError> {
        Ok(match value {
            Value::String(s) => {
                let text = TextTemplate::compile(s, allowed, keep_refs)?;
                if text.is_constant() {
                    JsonTemplate::Constant(value.clone())
                } else {
                    JsonTemplate::Text(text)
                }
            }
            Value::Array(items) => JsonTemplate::Array(
                items
                    .iter()
                    .map(|i| JsonTemplate::compile(i, allowed, keep_refs))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => JsonTemplate::Object(
                map.iter()
                    .map(|(k, v)| {
                        Ok((
                            TextTemplate::compile(k, allowed, keep_refs)?,
                            JsonTemplate::compile(v, allowed, keep_refs)?,
                        ))
                    })
                    .collect::<Result<_, DittoError>>()?,
            ),
            other => JsonTemplate::Constant(other.clone()),
        })
    }

    /// The JSON with every placeholder resolved, or the first expression that did not resolve.
    pub(crate) fn resolve(
        &self,
        resolver: &dyn Resolver,
        unresolvable: Unresolvable,
    ) -> Result<Value, String> {
        Ok(match self {
            JsonTemplate::Constant(v) => v.clone(),
            JsonTemplate::Text(t) => Value::String(t.resolve(resolver, unresolvable)?),
            JsonTemplate::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| i.resolve(resolver, unresolvable))
                    .collect::<Result<_, _>>()?,
            ),
            JsonTemplate::Object(fields) => {
                let mut map = Map::with_capacity(fields.len());
                for (key, value) in fields {
                    map.insert(
                        key.resolve(resolver, unresolvable)?,
                        value.resolve(resolver, unresolvable)?,
                    );
                }
                Value::Object(map)
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::placeholders::SignalResolver;
    use serde_json::json;

    #[test]
    fn payload_kinds_follow_dittos_content_types() {
        for (ct, kind) in [
            ("text/plain; charset=UTF-8", PayloadKind::Text),
            ("application/javascript", PayloadKind::Text),
            ("application/vnd.x+ecmascript", PayloadKind::Text),
            ("application/json", PayloadKind::Json),
            ("Application/Vnd.Eclipse.Ditto+JSON", PayloadKind::Json),
            ("application/+json", PayloadKind::Binary),
            ("application/jsonx", PayloadKind::Binary),
            ("application/octet-stream", PayloadKind::Binary),
            ("image/png", PayloadKind::Binary),
        ] {
            assert_eq!(PayloadKind::of(ct), kind, "{ct}");
        }
    }

    #[test]
    fn json_templates_resolve_each_string_and_keep_refs() {
        let headers: Headers = [("device_id", "ns:d1"), ("q", "a\"b")]
            .into_iter()
            .collect();
        let resolver = SignalResolver::for_external(&headers);
        let template = JsonTemplate::compile(
            &json!({"thingId": "{{ header:device_id }}", "{{ header:q }}": ["x-{{header:q}}", 1, true],
                    "_copyPolicyFrom": "{{ ref:things/ns:other/policyId }}"}),
            &Allowed::mapper_options(),
            true,
        )
        .unwrap();
        assert_eq!(
            template.resolve(&resolver, Unresolvable::Fail).unwrap(),
            json!({"thingId": "ns:d1", "a\"b": ["x-a\"b", 1, true],
                   "_copyPolicyFrom": "{{ ref:things/ns:other/policyId }}"})
        );
        let missing = JsonTemplate::compile(
            &json!({"a": "x{{ header:nope }}y"}),
            &Allowed::mapper_options(),
            false,
        )
        .unwrap();
        assert_eq!(
            missing.resolve(&resolver, Unresolvable::Fail).unwrap_err(),
            "{{ header:nope }}"
        );
        assert_eq!(
            missing.resolve(&resolver, Unresolvable::Keep).unwrap(),
            json!({"a": "x{{ header:nope }}y"})
        );
        // Without keep_refs, ref: is an unknown placeholder.
        assert!(TextTemplate::compile(
            "{{ ref:things/a:b/policyId }}",
            &Allowed::mapper_options(),
            false
        )
        .is_err());
        assert!(TextTemplate::compile("{{ header:a", &Allowed::mapper_options(), false).is_err());
    }
}
