//! Entity identifiers: namespaces, names and namespaced IDs (`namespace:name`) as
//! docs/basic-namespaces-and-names.md defines them, and connection IDs.

use crate::error::ProtocolError;
use std::fmt;

/// The longest namespaced ID Ditto accepts, in characters.
pub const MAX_ID_LENGTH: usize = 256;

/// The topic's stand-in for "no namespace" or "any entity" (`_/_/things/twin/search/...`).
pub const WILDCARD: &str = "_";

/// `(?:[a-zA-Z]\w*+)(?:[.-][a-zA-Z]\w*+)*+` or empty, as Ditto's `RegexPatterns#NAMESPACE_REGEX`.
pub fn is_valid_namespace(ns: &str) -> bool {
    if ns.is_empty() {
        return true;
    }
    ns.split(['.', '-']).all(|segment| {
        let mut chars = segment.chars();
        matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

/// `[^\x00-\x1F\x7F-\xFF/]++`, as Ditto's `RegexPatterns#ENTITY_NAME_REGEX`: not empty, no slash,
/// no control character and (a quirk of the Java regex kept for compatibility) no Latin-1
/// character U+007F..U+00FF; characters above U+00FF are allowed.
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| !(c <= '\u{1F}' || ('\u{7F}'..='\u{FF}').contains(&c) || c == '/'))
}

/// `[a-zA-Z0-9-_:]{1,100}`, Ditto's connection ID pattern.
pub fn is_valid_connection_id(id: &str) -> bool {
    (1..=100).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b':'))
}

/// A validated `namespace:name` identifier of a thing or policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NamespacedId {
    id: String,
    colon: usize,
}

impl NamespacedId {
    /// Joins a namespace and a name, or `None` when either is invalid or the ID is too long.
    pub fn new(namespace: &str, name: &str) -> Option<Self> {
        if !is_valid_namespace(namespace) || !is_valid_name(name) {
            return None;
        }
        let id = format!("{namespace}:{name}");
        (id.chars().count() <= MAX_ID_LENGTH).then_some(NamespacedId {
            id,
            colon: namespace.len(),
        })
    }

    /// Parses `namespace:name`; the namespace ends at the first colon (names may hold colons).
    pub fn parse(id: &str) -> Option<Self> {
        let (ns, name) = id.split_once(':')?;
        Self::new(ns, name)
    }

    pub fn namespace(&self) -> &str {
        &self.id[..self.colon]
    }

    pub fn name(&self) -> &str {
        &self.id[self.colon + 1..]
    }

    pub fn as_str(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for NamespacedId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

/// A thing's ID.
pub type ThingId = NamespacedId;
/// A policy's ID.
pub type PolicyId = NamespacedId;

/// Parses a thing ID, answering `things:id.invalid` when it is not one.
pub fn parse_thing_id(id: &str) -> Result<ThingId, ProtocolError> {
    NamespacedId::parse(id).ok_or_else(|| ProtocolError::ThingIdInvalid { id: id.to_owned() })
}

/// Parses a policy ID, answering `policies:id.invalid` when it is not one.
pub fn parse_policy_id(id: &str) -> Result<PolicyId, ProtocolError> {
    NamespacedId::parse(id).ok_or_else(|| ProtocolError::PolicyIdInvalid { id: id.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_follow_ditto_regex() {
        for ok in [
            "org.eclipse.ditto",
            "com.some-domain",
            "com.google",
            "foo.bar_42",
            "",
            "a",
            "a1_b",
        ] {
            assert!(is_valid_namespace(ok), "{ok}");
        }
        for bad in [
            "1abc", ".a", "a.", "a..b", "a.1b", "a b", "a/b", "_", "a-", "ä",
        ] {
            assert!(!is_valid_namespace(bad), "{bad}");
        }
    }

    #[test]
    fn names_follow_ditto_regex() {
        for ok in [
            "ditto",
            "smart-coffee-1",
            "foo%2Fbar",
            "foo bar",
            "foo+bar%20",
            "a:b",
            "€",
            "_",
        ] {
            assert!(is_valid_name(ok), "{ok}");
        }
        for bad in ["", "a/b", "a\u{0}", "tab\t", "ä", "\u{7F}"] {
            assert!(!is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn ids_split_at_first_colon_and_are_bounded() {
        let id = NamespacedId::parse("org.eclipse.ditto:fancy:thing").unwrap();
        assert_eq!(
            (id.namespace(), id.name()),
            ("org.eclipse.ditto", "fancy:thing")
        );
        assert!(NamespacedId::parse(":no-namespace").is_some());
        assert!(NamespacedId::parse("no-colon").is_none());
        let long = format!("ns:{}", "x".repeat(MAX_ID_LENGTH));
        assert!(NamespacedId::parse(&long).is_none());
        assert_eq!(
            parse_thing_id("a/b:c").unwrap_err().code(),
            "things:id.invalid"
        );
    }

    #[test]
    fn connection_ids() {
        assert!(is_valid_connection_id("the_connection_id"));
        assert!(!is_valid_connection_id(""));
        assert!(!is_valid_connection_id("a b"));
    }
}
