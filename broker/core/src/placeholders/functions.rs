//! The function library (checklist §3.3): parsing `fn:name(args)` against each function's
//! signature, and applying a function to the pipeline value.
//!
//! The pipeline value is *empty* (nothing resolved, and what a function in the first position
//! gets), one or more strings, *removed* (by `fn:filter`: later functions see it as empty, so
//! `fn:default` applies, and at the end of the pipeline it counts as deleted) or *deleted* (by
//! `fn:delete`: later functions are ignored). Functions that transform strings leave empty and
//! removed values as they are. A resolved empty string `""` is a value, not *empty*.

use super::allowed::Allowed;
use super::error;
use super::filter::Op;
use super::format::{self, Part};
use super::placeholder::{Placeholder, Resolver, Values};
use base64::Engine as _;
use std::borrow::Cow;
use twinwire_protocol::DittoError;

/// A function argument: a quoted constant or a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Arg {
    Const(String),
    Placeholder(Placeholder),
}

impl Arg {
    fn values<'r>(&'r self, resolver: &'r dyn Resolver) -> Values<'r> {
        match self {
            Arg::Const(c) => Values::from(c.as_str()),
            Arg::Placeholder(p) => p.resolve(resolver),
        }
    }

    pub(crate) fn placeholder(&self) -> Option<&Placeholder> {
        match self {
            Arg::Placeholder(p) => Some(p),
            Arg::Const(_) => None,
        }
    }
}

/// `fn:filter` in one of its forms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filter {
    /// The value tested; `None` tests the pipeline value itself.
    subject: Option<Arg>,
    op: Op,
    /// The compared value; `None` only for the `exists` forms without one.
    compared: Option<Arg>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Function {
    Default(Arg),
    SubstringBefore(String),
    SubstringAfter(String),
    Lower,
    Upper,
    Trim,
    UrlEncode,
    UrlDecode,
    Base64Encode,
    Base64Decode,
    Delete,
    Replace(Arg, Arg),
    Filter(Filter),
    Split(String),
    Join(String),
    Format(Vec<Part>),
}

const NAMES: &[&str] = &[
    "filter",
    "default",
    "substring-before",
    "substring-after",
    "lower",
    "upper",
    "trim",
    "url-encode",
    "url-decode",
    "base64-encode",
    "base64-decode",
    "delete",
    "replace",
    "split",
    "join",
    "format",
];

fn signature(name: &str) -> &'static str {
    match name {
        "default" => "fn:default('defaultValue') or fn:default(placeholder)",
        "substring-before" => "fn:substring-before('givenString')",
        "substring-after" => "fn:substring-after('givenString')",
        "lower" => "fn:lower()",
        "upper" => "fn:upper()",
        "trim" => "fn:trim()",
        "url-encode" => "fn:url-encode()",
        "url-decode" => "fn:url-decode()",
        "base64-encode" => "fn:base64-encode()",
        "base64-decode" => "fn:base64-decode()",
        "delete" => "fn:delete()",
        "replace" => "fn:replace('from', 'to') (each may also be a placeholder)",
        "filter" => {
            "fn:filter(filterValue, 'eq'|'ne'|'like'|'exists', comparedValue), \
             fn:filter('eq'|'ne'|'like'|'exists', comparedValue), fn:filter(filterValue, \
             'exists') or fn:filter('exists')"
        }
        "split" => "fn:split('separator') on a jwt: placeholder",
        "join" => "fn:join('delimiter')",
        "format" => "fn:format('template')",
        _ => "",
    }
}

/// A raw argument before the signature gives it a meaning.
enum Raw {
    Quoted(String),
    Bare(String),
}

/// Parses one `fn:…` stage (already trimmed, starting with `fn:`).
pub(crate) fn parse(stage: &str, allowed: &Allowed) -> Result<Function, DittoError> {
    let body = &stage[3..];
    let name_len = body
        .find(|c: char| c == '(' || c.is_whitespace())
        .unwrap_or(body.len());
    let name = &body[..name_len];
    let after_name = body[name_len..].trim_start();
    let Some(args_text) = after_name.strip_prefix('(') else {
        let hint = if NAMES.contains(&name) {
            format!("Function calls need parentheses, even without arguments: fn:{name}(…).")
        } else {
            format!(
                "Ensure to only use supported functions: {}.",
                NAMES
                    .iter()
                    .map(|n| format!("fn:{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        return Err(error::function_unknown(stage, hint));
    };
    if !NAMES.contains(&name) {
        return Err(error::function_unknown(
            stage,
            format!(
                "Ensure to only use supported functions: {}.",
                NAMES
                    .iter()
                    .map(|n| format!("fn:{n}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ));
    }
    let sig = signature(name);
    let invalid = |why: &str| error::signature_invalid(stage, sig, why);
    let raw = parse_args(args_text).map_err(|why| invalid(&why))?;

    let constant = |raw: Raw| -> Result<String, DittoError> {
        match raw {
            Raw::Quoted(s) => Ok(s),
            Raw::Bare(b) => Err(invalid(&format!(
                "the argument '{b}' must be a 'quoted' constant"
            ))),
        }
    };
    let arg = |raw: Raw| -> Result<Arg, DittoError> {
        match raw {
            Raw::Quoted(s) => Ok(Arg::Const(s)),
            Raw::Bare(b) if b.contains(':') => {
                Ok(Arg::Placeholder(Placeholder::parse(&b, allowed)?))
            }
            Raw::Bare(b) => Err(invalid(&format!(
                "the argument '{b}' is neither a 'quoted' constant nor a placeholder"
            ))),
        }
    };
    let count = |n: usize| -> Result<(), DittoError> {
        if raw.len() == n {
            Ok(())
        } else {
            Err(invalid(&format!(
                "it takes {n} argument{}, not {}",
                if n == 1 { "" } else { "s" },
                raw.len()
            )))
        }
    };

    let simple = |f: Function| -> Result<Function, DittoError> {
        count(0)?;
        Ok(f)
    };
    match name {
        "lower" => simple(Function::Lower),
        "upper" => simple(Function::Upper),
        "trim" => simple(Function::Trim),
        "url-encode" => simple(Function::UrlEncode),
        "url-decode" => simple(Function::UrlDecode),
        "base64-encode" => simple(Function::Base64Encode),
        "base64-decode" => simple(Function::Base64Decode),
        "delete" => simple(Function::Delete),
        "default" => {
            count(1)?;
            Ok(Function::Default(arg(one(raw))?))
        }
        "substring-before" | "substring-after" => {
            count(1)?;
            let s = constant(one(raw))?;
            Ok(if name == "substring-before" {
                Function::SubstringBefore(s)
            } else {
                Function::SubstringAfter(s)
            })
        }
        "replace" => {
            count(2)?;
            let mut it = raw.into_iter();
            let (Some(from), Some(to)) = (it.next(), it.next()) else {
                return Err(invalid("it takes 2 arguments"));
            };
            Ok(Function::Replace(arg(from)?, arg(to)?))
        }
        "split" => {
            count(1)?;
            let sep = constant(one(raw))?;
            if sep.is_empty() {
                return Err(invalid("the separator must not be empty"));
            }
            Ok(Function::Split(sep))
        }
        "join" => {
            count(1)?;
            Ok(Function::Join(constant(one(raw))?))
        }
        "format" => {
            count(1)?;
            let template = constant(one(raw))?;
            Ok(Function::Format(
                format::parse(&template).map_err(|why| invalid(&why))?,
            ))
        }
        _ => parse_filter(raw, &invalid, &arg).map(Function::Filter),
    }
}

fn one(raw: Vec<Raw>) -> Raw {
    raw.into_iter().next().unwrap_or(Raw::Quoted(String::new()))
}

fn parse_filter(
    raw: Vec<Raw>,
    invalid: &dyn Fn(&str) -> DittoError,
    arg: &dyn Fn(Raw) -> Result<Arg, DittoError>,
) -> Result<Filter, DittoError> {
    let op_of = |raw: &Raw| match raw {
        Raw::Quoted(s) => Op::parse(s),
        Raw::Bare(_) => None,
    };
    let unknown_op = |raw: &Raw| {
        let text = match raw {
            Raw::Quoted(s) => format!("'{s}'"),
            Raw::Bare(b) => b.clone(),
        };
        invalid(&format!(
            "{text} is not a filter operator (use 'eq', 'ne', 'like' or 'exists')"
        ))
    };
    let mut it = raw.into_iter();
    match (it.next(), it.next(), it.next(), it.next()) {
        (Some(op), None, None, None) => match op_of(&op) {
            Some(Op::Exists) => Ok(Filter {
                subject: None,
                op: Op::Exists,
                compared: None,
            }),
            Some(_) => Err(invalid(
                "only 'exists' may stand alone; the other operators need a compared value",
            )),
            None => Err(unknown_op(&op)),
        },
        (Some(first), Some(second), None, None) => {
            if op_of(&second) == Some(Op::Exists) {
                Ok(Filter {
                    subject: Some(arg(first)?),
                    op: Op::Exists,
                    compared: None,
                })
            } else {
                let op = op_of(&first).ok_or_else(|| unknown_op(&first))?;
                let compared = arg(second)?;
                check_exists_flag(op, &compared, invalid)?;
                Ok(Filter {
                    subject: None,
                    op,
                    compared: Some(compared),
                })
            }
        }
        (Some(subject), Some(op), Some(compared), None) => {
            let op_value = op_of(&op).ok_or_else(|| unknown_op(&op))?;
            let compared = arg(compared)?;
            check_exists_flag(op_value, &compared, invalid)?;
            Ok(Filter {
                subject: Some(arg(subject)?),
                op: op_value,
                compared: Some(compared),
            })
        }
        (None, ..) => Err(invalid("it takes 1 to 3 arguments, not 0")),
        _ => Err(invalid("it takes 1 to 3 arguments")),
    }
}

/// `exists` compares with `'true'` or `'false'`; a constant other than those is a mistake.
fn check_exists_flag(
    op: Op,
    compared: &Arg,
    invalid: &dyn Fn(&str) -> DittoError,
) -> Result<(), DittoError> {
    match (op, compared) {
        (Op::Exists, Arg::Const(c))
            if !c.eq_ignore_ascii_case("true") && !c.eq_ignore_ascii_case("false") =>
        {
            Err(invalid(&format!(
                "'exists' is compared with 'true' or 'false', not '{c}'"
            )))
        }
        _ => Ok(()),
    }
}

/// Splits the text after `(` into arguments; the closing `)` must end the stage.
fn parse_args(text: &str) -> Result<Vec<Raw>, String> {
    let mut args = Vec::new();
    let mut chars = text.char_indices().peekable();
    let skip_ws = |chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>| {
        while chars.next_if(|(_, c)| c.is_whitespace()).is_some() {}
    };
    skip_ws(&mut chars);
    if chars.next_if(|(_, c)| *c == ')').is_some() {
        return finish(text, chars.peek().map(|(i, _)| *i)).map(|()| args);
    }
    loop {
        skip_ws(&mut chars);
        match chars.peek().copied() {
            None => return Err("the closing ')' is missing".to_owned()),
            Some((_, q @ ('\'' | '"'))) => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err(format!("the quote {q} is not closed")),
                        Some((_, '\\')) if chars.peek().map(|(_, c)| *c) == Some(q) => {
                            chars.next();
                            s.push(q);
                        }
                        Some((_, c)) if c == q => break,
                        Some((_, c)) => s.push(c),
                    }
                }
                args.push(Raw::Quoted(s));
            }
            Some((start, _)) => {
                let mut end = text.len();
                while let Some((i, c)) = chars.peek().copied() {
                    if c == ',' || c == ')' {
                        end = i;
                        break;
                    }
                    chars.next();
                }
                let bare = text[start..end].trim();
                if bare.is_empty() {
                    return Err("an argument is missing".to_owned());
                }
                if bare.contains(char::is_whitespace) || bare.contains(['\'', '"', '(']) {
                    return Err(format!("the argument '{bare}' is malformed"));
                }
                args.push(Raw::Bare(bare.to_owned()));
            }
        }
        skip_ws(&mut chars);
        match chars.next() {
            Some((_, ',')) => continue,
            Some((_, ')')) => return finish(text, chars.peek().map(|(i, _)| *i)).map(|()| args),
            Some((_, c)) => return Err(format!("unexpected '{c}' between arguments")),
            None => return Err("the closing ')' is missing".to_owned()),
        }
    }
}

fn finish(text: &str, rest: Option<usize>) -> Result<(), String> {
    match rest.map(|i| text[i..].trim()) {
        None | Some("") => Ok(()),
        Some(extra) => Err(format!("unexpected '{extra}' after ')'")),
    }
}

/// The value flowing through a pipeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Val<'r> {
    /// Never `Values::None`.
    Values(Values<'r>),
    Empty,
    Removed,
    Deleted,
}

impl<'r> Val<'r> {
    pub(crate) fn from_values(values: Values<'r>) -> Self {
        if values.is_none() {
            Val::Empty
        } else {
            Val::Values(values)
        }
    }

    /// Maps every value; values the function cannot produce are dropped.
    fn map(self, f: impl Fn(Cow<'r, str>) -> Option<Cow<'r, str>>) -> Self {
        match self {
            Val::Values(Values::One(v)) => f(v).map_or(Val::Empty, |v| Val::Values(Values::One(v))),
            Val::Values(values) => {
                Val::from_values(values.into_vec().into_iter().filter_map(f).collect())
            }
            other => other,
        }
    }
}

/// A slice of a value, borrowed when the value is.
fn slice(v: Cow<'_, str>, start: usize, end: usize) -> Cow<'_, str> {
    match v {
        Cow::Borrowed(b) => Cow::Borrowed(&b[start..end]),
        Cow::Owned(o) if start == 0 && end == o.len() => Cow::Owned(o),
        Cow::Owned(o) => Cow::Owned(o[start..end].to_owned()),
    }
}

impl Function {
    pub(crate) fn is_split(&self) -> bool {
        matches!(self, Function::Split(_))
    }

    /// The placeholders among the arguments.
    pub(crate) fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        let args: [Option<&Arg>; 3] = match self {
            Function::Default(a) => [Some(a), None, None],
            Function::Replace(a, b) => [Some(a), Some(b), None],
            Function::Filter(f) => [f.subject.as_ref(), f.compared.as_ref(), None],
            _ => [None, None, None],
        };
        args.into_iter().flatten().filter_map(Arg::placeholder)
    }

    pub(crate) fn apply<'r>(&'r self, input: Val<'r>, resolver: &'r dyn Resolver) -> Val<'r> {
        if input == Val::Deleted {
            return Val::Deleted;
        }
        match self {
            Function::Delete => Val::Deleted,
            Function::Default(arg) => match input {
                Val::Empty | Val::Removed => Val::from_values(arg.values(resolver)),
                other => other,
            },
            Function::Lower => input.map(|v| Some(Cow::Owned(v.to_lowercase()))),
            Function::Upper => input.map(|v| Some(Cow::Owned(v.to_uppercase()))),
            Function::Trim => input.map(|v| {
                let start = v.len() - v.trim_start().len();
                let end = v.trim_end().len();
                Some(slice(v, start, end.max(start)))
            }),
            Function::SubstringBefore(s) => {
                input.map(|v| v.find(s.as_str()).map(|i| slice(v, 0, i)))
            }
            Function::SubstringAfter(s) => input.map(|v| {
                v.find(s.as_str()).map(|i| {
                    let len = v.len();
                    slice(v, i + s.len(), len)
                })
            }),
            Function::UrlEncode => input.map(|v| Some(url_encode(v))),
            Function::UrlDecode => input.map(url_decode),
            Function::Base64Encode => input.map(|v| {
                Some(Cow::Owned(
                    base64::engine::general_purpose::STANDARD.encode(v.as_bytes()),
                ))
            }),
            Function::Base64Decode => input.map(|v| {
                BASE64_DECODER
                    .decode(v.as_bytes())
                    .ok()
                    .map(|bytes| Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()))
            }),
            Function::Replace(from, to) => {
                if !matches!(input, Val::Values(_)) {
                    return input;
                }
                let (from, to) = (from.values(resolver), to.values(resolver));
                let (Some(from), Some(to)) = (from.first(), to.first()) else {
                    return Val::Empty;
                };
                input.map(|v| {
                    Some(if v.contains(from) {
                        Cow::Owned(v.replace(from, to))
                    } else {
                        v
                    })
                })
            }
            Function::Split(sep) => match input {
                Val::Values(values) => Val::from_values(
                    values
                        .into_vec()
                        .into_iter()
                        .flat_map(|v| split(v, sep))
                        .collect(),
                ),
                other => other,
            },
            Function::Join(delim) => match input {
                Val::Values(Values::Many(values)) => {
                    Val::Values(Values::from(values.join(delim.as_str())))
                }
                other => other,
            },
            Function::Format(parts) => match input {
                Val::Values(values) => {
                    let mut out: Vec<Cow<'r, str>> = Vec::new();
                    for v in values.iter() {
                        if let Some(formatted) = format::format_value(parts, v) {
                            out.extend(formatted.into_iter().map(Cow::Owned));
                        }
                    }
                    if out.is_empty() {
                        out.push(Cow::Borrowed(""));
                    }
                    Val::from_values(Values::many(out))
                }
                other => other,
            },
            Function::Filter(filter) => filter.apply(input, resolver),
        }
    }
}

const BASE64_DECODER: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    base64::engine::GeneralPurposeConfig::new()
        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
);

fn split<'r>(v: Cow<'r, str>, sep: &str) -> Vec<Cow<'r, str>> {
    match v {
        Cow::Borrowed(b) => b
            .split(sep)
            .filter(|s| !s.is_empty())
            .map(Cow::Borrowed)
            .collect(),
        Cow::Owned(o) => o
            .split(sep)
            .filter(|s| !s.is_empty())
            .map(|s| Cow::Owned(s.to_owned()))
            .collect(),
    }
}

impl Filter {
    fn apply<'r>(&'r self, input: Val<'r>, resolver: &'r dyn Resolver) -> Val<'r> {
        let Val::Values(values) = input else {
            return input;
        };
        let compared = self.compared.as_ref().map(|c| c.values(resolver));
        let keep_value = |v: &str| match &compared {
            Some(c) => c.iter().any(|c| self.op.test(v, c)),
            None => self.op.test_alone(v),
        };
        match &self.subject {
            // Test the pipeline value(s): keep those that pass.
            None => {
                let kept: Vec<Cow<'r, str>> = values
                    .into_vec()
                    .into_iter()
                    .filter(|v| keep_value(v))
                    .collect();
                if kept.is_empty() {
                    Val::Removed
                } else {
                    Val::Values(Values::many(kept))
                }
            }
            // Test another value: keep all pipeline values or none. A value that does not
            // resolve is tested as "" (so `exists` is false and `ne` against a constant holds).
            Some(subject) => {
                let subject = subject.values(resolver);
                let subjects: Vec<&str> = if subject.is_none() {
                    vec![""]
                } else {
                    subject.iter().collect()
                };
                let keep = match &compared {
                    Some(c) if c.is_none() => subjects.iter().any(|s| self.op.test(s, "")),
                    Some(c) => subjects
                        .iter()
                        .any(|s| c.iter().any(|c| self.op.test(s, c))),
                    None => subjects.iter().any(|s| self.op.test_alone(s)),
                };
                if keep {
                    Val::Values(values)
                } else {
                    Val::Removed
                }
            }
        }
    }
}

/// `application/x-www-form-urlencoded` as Java's `URLEncoder` writes it: letters, digits and
/// `.-*_` stay, space becomes `+`, every other byte of the UTF-8 is `%XX`.
fn url_encode(v: Cow<'_, str>) -> Cow<'_, str> {
    let keep = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'*' | b'_');
    if v.bytes().all(keep) {
        return v;
    }
    let mut out = String::with_capacity(v.len() * 3);
    for b in v.bytes() {
        match b {
            b' ' => out.push('+'),
            b if keep(b) => out.push(char::from(b)),
            b => {
                const HEX: &[u8; 16] = b"0123456789ABCDEF";
                out.push('%');
                out.push(char::from(HEX[usize::from(b >> 4)]));
                out.push(char::from(HEX[usize::from(b & 0xF)]));
            }
        }
    }
    Cow::Owned(out)
}

/// Java's `URLDecoder`: `+` is a space, `%XX` a byte; the bytes are read as UTF-8. A malformed
/// `%` escape does not decode (the value is dropped).
fn url_decode(v: Cow<'_, str>) -> Option<Cow<'_, str>> {
    if !v.contains(['%', '+']) {
        return Some(v);
    }
    let bytes = v.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let hex = bytes.get(i + 1..i + 3)?;
                if !hex.iter().all(u8::is_ascii_hexdigit) {
                    return None;
                }
                out.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    Some(Cow::Owned(String::from_utf8_lossy(&out).into_owned()))
}
