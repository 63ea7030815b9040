//! Which property names an expression may use and what they address: Ditto's field expression
//! rules (rql/query `ThingsFieldExpressionFactoryImpl`, `FieldExpressionUtil.FeatureField`,
//! `ModelBasedThingsFieldExpressionFactory`), checked when parsing as Ditto checks them when it
//! turns the syntax tree into criteria.

use super::ast::{Placeholder, Property};
use super::error::RqlErrorKind;
use crate::pointer::JsonPointer;

/// Where an expression is used, which decides whether placeholders are properties.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Scope {
    /// A condition on the stored thing: thing fields only.
    Condition,
    /// A filter on Ditto Protocol messages: thing fields, `topic:*` and `resource:*`.
    SignalFilter,
}

/// Ditto resolves a property differently for comparisons (`filterBy`) than for `exists` and
/// `empty` (`existsBy`): only the latter accept a whole feature or its properties object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum PropertyUse {
    Compare,
    Exists,
}

/// The top-level thing fields Ditto's `ModelBasedThingsFieldExpressionFactory` maps.
const SIMPLE_FIELDS: [&str; 8] = [
    "thingId",
    "_namespace",
    "policyId",
    "_revision",
    "_created",
    "_modified",
    "definition",
    "_metadata",
];

/// The characters Java's `.` does not match (no DOTALL flag), which matter where Ditto's
/// patterns use `.+`.
pub(super) const JAVA_LINE_TERMINATORS: [char; 5] = ['\n', '\r', '\u{85}', '\u{2028}', '\u{2029}'];

/// Resolves a property as written (escapes already decoded), with or without a leading slash.
pub(super) fn resolve(
    raw: &str,
    usage: PropertyUse,
    scope: Scope,
) -> Result<Property, RqlErrorKind> {
    let name = raw.strip_prefix('/').unwrap_or(raw);
    let is_field = is_feature_field(name, usage)
        || name.starts_with("attributes/")
        || name.starts_with("_metadata/")
        || SIMPLE_FIELDS.contains(&name);
    if is_field {
        return thing_pointer(name).map(Property::Thing);
    }
    if scope == Scope::SignalFilter {
        if let Some(placeholder) = Placeholder::parse(name) {
            return Ok(Property::Placeholder(placeholder));
        }
    }
    Err(RqlErrorKind::UnknownProperty {
        name: name.to_owned(),
    })
}

/// `FeatureField`'s patterns, tried in Ditto's order; `[^/]++` is the feature ID up to the
/// first slash and `.+` a non-empty rest on one line.
fn is_feature_field(name: &str, usage: PropertyUse) -> bool {
    let Some(rest) = name.strip_prefix("features/") else {
        return false;
    };
    let (id, after) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    if id.is_empty() {
        return false;
    }
    let one_line_rest = |s: &str| !s.is_empty() && !s.contains(JAVA_LINE_TERMINATORS);
    let (single_value, whole_object) = match after {
        _ if after
            .strip_prefix("/properties/")
            .is_some_and(one_line_rest) =>
        {
            (true, false)
        }
        _ if after
            .strip_prefix("/desiredProperties/")
            .is_some_and(one_line_rest) =>
        {
            (true, false)
        }
        "/definition" | "/definition/" => (true, false),
        "/properties" | "/properties/" | "/desiredProperties" | "/desiredProperties/" | "" => {
            (false, true)
        }
        _ => (false, false),
    };
    single_value || (whole_object && usage == PropertyUse::Exists)
}

/// The pointer Ditto builds from the name (`JsonPointer.of`): empty segments are dropped, only
/// `~0` is decoded (to `~`; `~1` stays as written), and consecutive slashes are refused. Ditto
/// refuses those only when it evaluates; twinwire refuses them when parsing.
fn thing_pointer(name: &str) -> Result<JsonPointer, RqlErrorKind> {
    if name.contains("//") {
        return Err(RqlErrorKind::PropertyInvalid {
            name: name.to_owned(),
            reason: "consecutive slashes are not supported in JSON pointers",
        });
    }
    Ok(JsonPointer::from_segments(
        name.split('/')
            .filter(|s| !s.is_empty())
            .map(|s| s.replace("~0", "~")),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn thing(name: &str, usage: PropertyUse) -> Option<String> {
        match resolve(name, usage, Scope::Condition) {
            Ok(Property::Thing(p)) => Some(p.to_string()),
            _ => None,
        }
    }

    #[test]
    fn comparisons_address_values() {
        let c = PropertyUse::Compare;
        for (name, pointer) in [
            ("attributes/location", "/attributes/location"),
            ("/attributes/location", "/attributes/location"),
            ("attributes/a b/c", "/attributes/a b/c"),
            ("attributes/x/", "/attributes/x"),
            (
                "features/lamp/properties/on",
                "/features/lamp/properties/on",
            ),
            (
                "features/lamp/properties/a/b",
                "/features/lamp/properties/a/b",
            ),
            (
                "features/lamp/desiredProperties/on",
                "/features/lamp/desiredProperties/on",
            ),
            ("features/lamp/definition", "/features/lamp/definition"),
            ("thingId", "/thingId"),
            ("_modified", "/_modified"),
            ("_metadata/attributes/x", "/_metadata/attributes/x"),
            ("attributes/a~0b", "/attributes/a~0b"),
            ("attributes/a~1b", "/attributes/a~01b"),
        ] {
            assert_eq!(thing(name, c).as_deref(), Some(pointer), "{name}");
        }
        for unknown in [
            "",
            "attributes",
            "features",
            "features/lamp",
            "features/lamp/properties",
            "features/lamp/properties/",
            "features/lamp/foo",
            "features//properties/x",
            "foo",
            "namespace",
            " attributes/x",
            "//attributes/x",
            "features/lamp/properties/a\nb",
            "topic:action",
            "time:now",
        ] {
            assert_eq!(
                resolve(unknown, c, Scope::Condition),
                Err(RqlErrorKind::UnknownProperty {
                    name: unknown.strip_prefix('/').unwrap_or(unknown).to_owned()
                }),
                "{unknown:?}"
            );
        }
    }

    #[test]
    fn exists_also_addresses_features_and_their_objects() {
        let e = PropertyUse::Exists;
        for (name, pointer) in [
            ("features/lamp", "/features/lamp"),
            ("features/lamp/properties", "/features/lamp/properties"),
            ("features/lamp/properties/", "/features/lamp/properties"),
            (
                "features/lamp/desiredProperties",
                "/features/lamp/desiredProperties",
            ),
            ("features/lamp/definition/", "/features/lamp/definition"),
            ("attributes/x", "/attributes/x"),
        ] {
            assert_eq!(thing(name, e).as_deref(), Some(pointer), "{name}");
        }
        for unknown in ["features", "attributes", "features/lamp/other"] {
            assert_eq!(thing(unknown, e), None, "{unknown}");
        }
    }

    #[test]
    fn placeholders_only_in_signal_filters() {
        for name in ["topic:action", "/topic:action", "resource:path"] {
            assert!(matches!(
                resolve(name, PropertyUse::Compare, Scope::SignalFilter),
                Ok(Property::Placeholder(_))
            ));
            assert!(resolve(name, PropertyUse::Compare, Scope::Condition).is_err());
        }
        assert!(resolve("time:now", PropertyUse::Compare, Scope::SignalFilter).is_err());
    }

    #[test]
    fn consecutive_slashes_are_refused() {
        assert!(matches!(
            resolve("attributes/a//b", PropertyUse::Compare, Scope::Condition),
            Err(RqlErrorKind::PropertyInvalid { .. })
        ));
    }
}
