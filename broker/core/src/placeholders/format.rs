//! `fn:format(template)`: each input value, a JSON object, formatted with field references that
//! stay correlated within the object (docs/basic-placeholders.md "Correlated field extraction").
//!
//! - `{field}` is a field of the object, `{/a/b}` a JSON pointer into it (a name with `/` is a
//!   pointer too). Arrays of primitives give one result per element (Cartesian product with the
//!   other parts). Missing or `null` fields give `""`.
//! - `{#arr}…{/arr}` repeats its body for every element of the array `arr`: objects resolve the
//!   body's references against the element, primitives are `{.}`. Sections nest.
//! - `\{` and `\}` are literal braces; `{}` and an unmatched `{` are literal too.
//!
//! The template is parsed when the function is compiled.

use serde_json::Value;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Part {
    Text(String),
    /// `{field}` or `{/pointer}`: the pointer's segments.
    Field(Vec<String>),
    /// `{.}`: the current primitive element.
    Dot,
    Section(Vec<String>, Vec<Part>),
}

/// Parses a format template; the error says which section is not closed.
pub(crate) fn parse(template: &str) -> Result<Vec<Part>, String> {
    let mut pos = 0;
    let parts = parse_until(template, &mut pos, None)?;
    Ok(parts)
}

fn parse_until(t: &str, pos: &mut usize, section: Option<&str>) -> Result<Vec<Part>, String> {
    let mut parts = Vec::new();
    let mut text = String::new();
    while *pos < t.len() {
        let rest = &t[*pos..];
        if let Some(after) = rest.strip_prefix('\\') {
            if let Some(c @ ('{' | '}')) = after.chars().next() {
                text.push(c);
                *pos += 2;
                continue;
            }
        }
        if rest.starts_with('{') {
            if let Some(close) = rest.find('}') {
                let inner = &rest[1..close];
                if !inner.is_empty() {
                    *pos += close + 1;
                    if let Some(name) = inner.strip_prefix('#') {
                        flush(&mut text, &mut parts);
                        let body = parse_until(t, pos, Some(name))?;
                        parts.push(Part::Section(segments(name), body));
                        continue;
                    }
                    if let Some(name) = inner.strip_prefix('/') {
                        if section == Some(name) {
                            flush(&mut text, &mut parts);
                            return Ok(parts);
                        }
                    }
                    flush(&mut text, &mut parts);
                    parts.push(if inner == "." {
                        Part::Dot
                    } else {
                        Part::Field(segments(inner))
                    });
                    continue;
                }
            }
        }
        let c = rest.chars().next().unwrap_or_default();
        text.push(c);
        *pos += c.len_utf8().max(1);
    }
    if let Some(name) = section {
        return Err(format!(
            "the section {{#{name}}} is not closed with {{/{name}}}"
        ));
    }
    flush(&mut text, &mut parts);
    Ok(parts)
}

fn flush(text: &mut String, parts: &mut Vec<Part>) {
    if !text.is_empty() {
        parts.push(Part::Text(std::mem::take(text)));
    }
}

fn segments(reference: &str) -> Vec<String> {
    reference
        .trim_start_matches('/')
        .split('/')
        .filter(|s| !s.is_empty())
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn lookup<'v>(obj: &'v Value, segments: &[String]) -> Option<&'v Value> {
    segments
        .iter()
        .try_fold(obj, |v, key| v.as_object()?.get(key))
}

fn text_of(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Formats one input value; `None` if it is not a JSON object (Ditto skips such values).
pub(crate) fn format_value(parts: &[Part], input: &str) -> Option<Vec<String>> {
    let value: Value = serde_json::from_str(input).ok()?;
    value.is_object().then(|| format_object(parts, &value))
}

fn format_object(parts: &[Part], obj: &Value) -> Vec<String> {
    product(parts.iter().map(|part| match part {
        Part::Text(s) => vec![s.clone()],
        // `{.}` outside a primitive element looks up the key "." as Ditto does.
        Part::Dot => field(obj, &[".".to_owned()]),
        Part::Field(segs) => field(obj, segs),
        Part::Section(segs, body) => section(obj, segs, body),
    }))
}

fn field(obj: &Value, segs: &[String]) -> Vec<String> {
    match lookup(obj, segs) {
        None | Some(Value::Null) => vec![String::new()],
        Some(Value::Array(items)) if items.is_empty() => vec![String::new()],
        Some(Value::Array(items)) => items.iter().map(text_of).collect(),
        Some(v) => vec![text_of(v)],
    }
}

fn section(obj: &Value, segs: &[String], body: &[Part]) -> Vec<String> {
    match lookup(obj, segs) {
        None | Some(Value::Null) => vec![String::new()],
        Some(Value::Array(items)) if items.is_empty() => vec![String::new()],
        Some(Value::Array(items)) => items.iter().flat_map(|e| element(e, body)).collect(),
        Some(v) => element(v, body),
    }
}

fn element(e: &Value, body: &[Part]) -> Vec<String> {
    if e.is_object() {
        return format_object(body, e);
    }
    let text = text_of(e);
    product(body.iter().map(|part| match part {
        Part::Text(s) => vec![s.clone()],
        Part::Dot => vec![text.clone()],
        Part::Field(_) | Part::Section(..) => vec![String::new()],
    }))
}

fn product(parts: impl Iterator<Item = Vec<String>>) -> Vec<String> {
    let mut results = vec![String::new()];
    for values in parts {
        if values.len() == 1 {
            for r in &mut results {
                r.push_str(&values[0]);
            }
            continue;
        }
        let mut next = Vec::with_capacity(results.len() * values.len());
        for r in &results {
            for v in &values {
                next.push(format!("{r}{v}"));
            }
        }
        results = next;
    }
    results
}
