//! One placeholder, `prefix:name`, checked against a location, and the [`Resolver`] that gives it
//! its values.

use super::allowed::{Allowed, Prefix};
use super::error;
use super::time::TimeSpec;
use std::borrow::Cow;
use std::fmt;
use twinwire_protocol::DittoError;

/// A compiled placeholder: its prefix, its name, and what the name means (a JSON pointer for
/// `thing-json:`/`jwt:`, a time specification for `time:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placeholder {
    prefix: Prefix,
    name: String,
    kind: Kind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    Plain,
    Pointer(Vec<String>),
    Time(TimeSpec),
}

impl Placeholder {
    /// Parses `prefix:name` (no braces, surrounding whitespace ignored), as RQL filters and
    /// function arguments write placeholders, and checks it is allowed at `allowed`'s location.
    ///
    /// Unknown prefixes and names, and placeholders the location does not allow, give
    /// `placeholder:unresolved` (400).
    pub fn parse(text: &str, allowed: &Allowed) -> Result<Placeholder, DittoError> {
        let text = text.trim();
        let Some((prefix_text, name)) = text.split_once(':') else {
            return Err(error::unresolved(
                text,
                format!(
                    "A placeholder is written prefix:name. Available in {}: {}.",
                    allowed.location(),
                    allowed.describe()
                ),
            ));
        };
        let (prefix_text, name) = (prefix_text.trim(), name.trim());
        let prefix = Prefix::parse(prefix_text).ok_or_else(|| {
            error::unresolved(
                text,
                format!(
                    "The prefix '{prefix_text}' is unknown. Available in {}: {}.",
                    allowed.location(),
                    allowed.describe()
                ),
            )
        })?;
        if !allowed.allows(prefix) {
            let hint = if prefix == Prefix::Policy && allowed.allows(Prefix::Entity) {
                " Use entity:id, entity:namespace or entity:name instead."
            } else {
                ""
            };
            return Err(error::unresolved(
                text,
                format!(
                    "'{prefix}:' placeholders are not available in {}. Available there: {}.{hint}",
                    allowed.location(),
                    allowed.describe()
                ),
            ));
        }
        if name.is_empty() {
            return Err(error::unresolved(
                text,
                format!("The placeholder has no name. Use {}.", prefix.forms()),
            ));
        }
        let kind = match prefix {
            Prefix::Time => Kind::Time(TimeSpec::parse(name).map_err(|why| {
                error::unresolved(
                    text,
                    format!("Invalid time placeholder: {why}. Use {}.", prefix.forms()),
                )
            })?),
            Prefix::ThingJson | Prefix::Jwt => Kind::Pointer(pointer_segments(name)),
            Prefix::Header => {
                if let Some(names) = allowed.header_names() {
                    if !names.iter().any(|n| n.eq_ignore_ascii_case(name)) {
                        return Err(error::unresolved(
                            text,
                            format!(
                                "The header '{name}' is not available in {}. Available there: {}.",
                                allowed.location(),
                                allowed.describe()
                            ),
                        ));
                    }
                }
                Kind::Plain
            }
            _ => {
                if !prefix.names().unwrap_or_default().contains(&name) {
                    return Err(error::unresolved(
                        text,
                        format!(
                            "The placeholder '{prefix}:{name}' is unknown. Use {}.",
                            prefix.forms()
                        ),
                    ));
                }
                Kind::Plain
            }
        };
        Ok(Placeholder {
            prefix,
            name: name.to_owned(),
            kind,
        })
    }

    pub fn prefix(&self) -> Prefix {
        self.prefix
    }

    /// The name after the `:`, e.g. `id`, `correlation-id`, `attributes/location`, `now-1h[m]`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// For `thing-json:` and `jwt:`, the JSON pointer's segments (a leading `/` is optional,
    /// `~1` and `~0` are unescaped); empty for the other prefixes.
    pub fn pointer(&self) -> &[String] {
        match &self.kind {
            Kind::Pointer(segments) => segments,
            _ => &[],
        }
    }

    /// The placeholder's values: `time:` from the resolver's clock, everything else from the
    /// resolver.
    pub fn resolve<'r>(&self, resolver: &'r dyn Resolver) -> Values<'r> {
        match &self.kind {
            Kind::Time(spec) => spec
                .evaluate(resolver.now_millis())
                .map(Values::from)
                .unwrap_or_default(),
            _ => resolver.resolve(self),
        }
    }
}

impl fmt::Display for Placeholder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.prefix, self.name)
    }
}

fn pointer_segments(name: &str) -> Vec<String> {
    name.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            if s.contains('~') {
                s.replace("~1", "/").replace("~0", "~")
            } else {
                s.to_owned()
            }
        })
        .collect()
}

/// The values of a placeholder: none (it does not resolve), one, or several (`feature:id` on a
/// `/features` change, JWT arrays). Borrowed from the resolver where possible.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Values<'a> {
    #[default]
    None,
    One(Cow<'a, str>),
    /// Two or more values ([`Values::many`] normalises shorter lists).
    Many(Vec<Cow<'a, str>>),
}

impl<'a> Values<'a> {
    /// Values from a list: none, one, or many.
    pub fn many(mut values: Vec<Cow<'a, str>>) -> Self {
        match values.len() {
            0 => Values::None,
            1 => Values::One(values.remove(0)),
            _ => Values::Many(values),
        }
    }

    pub fn is_none(&self) -> bool {
        matches!(self, Values::None)
    }

    pub fn len(&self) -> usize {
        match self {
            Values::None => 0,
            Values::One(_) => 1,
            Values::Many(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.is_none()
    }

    pub fn first(&self) -> Option<&str> {
        match self {
            Values::None => None,
            Values::One(v) => Some(v),
            Values::Many(v) => v.first().map(|v| v.as_ref()),
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> {
        let (one, many): (Option<&Cow<'a, str>>, &[Cow<'a, str>]) = match self {
            Values::None => (None, &[]),
            Values::One(v) => (Some(v), &[]),
            Values::Many(v) => (None, v),
        };
        one.into_iter().chain(many).map(|v| v.as_ref())
    }

    pub(crate) fn into_vec(self) -> Vec<Cow<'a, str>> {
        match self {
            Values::None => Vec::new(),
            Values::One(v) => vec![v],
            Values::Many(v) => v,
        }
    }
}

impl<'a> From<&'a str> for Values<'a> {
    fn from(v: &'a str) -> Self {
        Values::One(Cow::Borrowed(v))
    }
}

impl From<String> for Values<'_> {
    fn from(v: String) -> Self {
        Values::One(Cow::Owned(v))
    }
}

impl<'a> From<Cow<'a, str>> for Values<'a> {
    fn from(v: Cow<'a, str>) -> Self {
        Values::One(v)
    }
}

impl<'a, T: Into<Values<'a>>> From<Option<T>> for Values<'a> {
    fn from(v: Option<T>) -> Self {
        v.map(Into::into).unwrap_or_default()
    }
}

impl<'a> FromIterator<Cow<'a, str>> for Values<'a> {
    fn from_iter<I: IntoIterator<Item = Cow<'a, str>>>(iter: I) -> Self {
        Values::many(iter.into_iter().collect())
    }
}

/// Answers placeholders for one evaluation: a signal, an external message, a JWT.
///
/// `resolve` is asked for every prefix except `time:`, which the engine computes from
/// [`Resolver::now_millis`]. A placeholder without a value answers [`Values::None`].
pub trait Resolver {
    fn resolve(&self, placeholder: &Placeholder) -> Values<'_>;

    /// The current time in milliseconds since the epoch; the system clock unless overridden
    /// (tests fix it).
    fn now_millis(&self) -> i64 {
        system_now_millis()
    }
}

/// Milliseconds since the epoch by the system clock.
pub(crate) fn system_now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}
