//! A policy's JSON as Ditto writes it (docs/basic-policy.md, jsonschema/policy.json), read into
//! what enforcement needs: entries (subjects, resources, namespaces, importable, allowed
//! additions, references) and imports. Reading only: no import resolution, no trie, no clock
//! beyond dropping subjects whose expiry has passed.
//!
//! Refuses what Ditto's `ImmutablePolicyEntry.fromJson` and friends refuse (a subject without
//! `type`, a resource without `grant` or `revoke`, a bad namespace pattern or importable type),
//! so a policy Ditto would not store never compiles to something that grants.

use super::EnforcerError;
use serde_json::{Map, Value};

/// READ, WRITE and EXECUTE as bits; other permission strings a policy may carry grant nothing
/// that can be checked, so they are dropped (Ditto keeps them as strings no check asks for).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Perms(u8);

impl Perms {
    pub(super) const NAMES: [&'static str; 3] = ["READ", "WRITE", "EXECUTE"];

    pub(super) fn contains(self, permission: usize) -> bool {
        self.0 & (1 << permission) != 0
    }

    pub(super) fn union(self, other: Perms) -> Perms {
        Perms(self.0 | other.0)
    }

    fn insert(&mut self, name: &str) {
        if let Some(i) = Self::NAMES.iter().position(|n| *n == name) {
            self.0 |= 1 << i;
        }
    }
}

/// One policy: its own entries in document order, and what it imports.
#[derive(Debug, Clone)]
pub(super) struct PolicyDoc {
    /// `policyId`, empty when the document has none.
    pub(super) id: String,
    pub(super) entries: Vec<Entry>,
    pub(super) imports: Vec<Import>,
}

impl PolicyDoc {
    pub(super) fn entry(&self, label: &str) -> Option<&Entry> {
        self.entries.iter().find(|e| e.label == label)
    }
}

/// `imports/{policyId}`: the labels listed for import and the `transitiveImports` whitelist.
#[derive(Debug, Clone)]
pub(super) struct Import {
    pub(super) policy_id: String,
    pub(super) entries: Vec<String>,
    pub(super) transitive: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Entry {
    pub(super) label: String,
    /// Unique by ID, in document order; expired ones already left out.
    pub(super) subjects: Vec<Subject>,
    /// Unique by resource key, in document order.
    pub(super) resources: Vec<Resource>,
    /// `None` (field absent) and an empty list both mean "every namespace".
    pub(super) namespaces: Option<Vec<String>>,
    pub(super) importable: Importable,
    /// `None` when the field is absent: no restriction on referencing entries.
    pub(super) allowed_additions: Option<Additions>,
    pub(super) references: Vec<Reference>,
}

impl Entry {
    /// Ditto's `PolicyEntry.appliesToNamespace`: no patterns, or one that matches.
    pub(super) fn applies_to_namespace(&self, namespace: &str) -> bool {
        match &self.namespaces {
            None => true,
            Some(patterns) => {
                patterns.is_empty() || patterns.iter().any(|p| namespace_matches(p, namespace))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(super) struct Subject {
    pub(super) id: String,
    pub(super) expiry_millis: Option<i64>,
}

/// `type:path` with its grants and revokes; the path already split into keys.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Resource {
    pub(super) kind: String,
    pub(super) path: Vec<String>,
    pub(super) grant: Perms,
    pub(super) revoke: Perms,
}

impl Resource {
    pub(super) fn same_key(&self, other: &Resource) -> bool {
        self.kind == other.kind && self.path == other.path
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Importable {
    Implicit,
    Explicit,
    Never,
}

/// `allowedAdditions`: which of a referencing entry's own parts survive.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Additions {
    pub(super) subjects: bool,
    pub(super) resources: bool,
    pub(super) namespaces: bool,
}

impl Additions {
    pub(super) fn intersect(self, other: Additions) -> Additions {
        Additions {
            subjects: self.subjects && other.subjects,
            resources: self.resources && other.resources,
            namespaces: self.namespaces && other.namespaces,
        }
    }
}

/// `{"import": id, "entry": label}`, or `{"entry": label}` for an entry of the same policy.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Reference {
    pub(super) import: Option<String>,
    pub(super) entry: String,
}

/// Reads a policy document. Subjects whose `expiry` is at or before `now_millis` are left out:
/// Ditto deletes them at their expiry, after which they grant and revoke nothing.
pub(super) fn parse_policy(value: &Value, now_millis: i64) -> Result<PolicyDoc, EnforcerError> {
    let id = value
        .get("policyId")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let invalid = |location: String, problem: &'static str| EnforcerError::Invalid {
        policy: id.clone(),
        location,
        problem,
    };
    let root = value
        .as_object()
        .ok_or_else(|| invalid("/".into(), "a policy must be a JSON object"))?;

    let mut entries = Vec::new();
    match root.get("entries") {
        None => {}
        Some(Value::Object(map)) => {
            for (label, entry) in map {
                let at = |rest: &str| format!("/entries/{}{rest}", escape(label));
                entries.push(
                    parse_entry(label, entry, now_millis, &at)
                        .map_err(|(location, problem)| invalid(location, problem))?,
                );
            }
        }
        Some(_) => return Err(invalid("/entries".into(), "must be an object")),
    }

    let mut imports = Vec::new();
    match root.get("imports") {
        None | Some(Value::Null) => {}
        Some(Value::Object(map)) => {
            for (policy_id, import) in map {
                let at = format!("/imports/{}", escape(policy_id));
                imports.push(
                    parse_import(policy_id, import)
                        .map_err(|(rest, problem)| invalid(format!("{at}{rest}"), problem))?,
                );
            }
        }
        Some(_) => return Err(invalid("/imports".into(), "must be an object")),
    }

    Ok(PolicyDoc {
        id,
        entries,
        imports,
    })
}

type Problem = (String, &'static str);

fn parse_entry(
    label: &str,
    value: &Value,
    now_millis: i64,
    at: &dyn Fn(&str) -> String,
) -> Result<Entry, Problem> {
    let map = value
        .as_object()
        .ok_or_else(|| (at(""), "a policy entry must be an object"))?;

    let mut subjects = Vec::new();
    if let Some(v) = map.get("subjects") {
        let v = v
            .as_object()
            .ok_or_else(|| (at("/subjects"), "must be an object"))?;
        for (id, subject) in v {
            let here = |rest: &str| at(&format!("/subjects/{}{rest}", escape(id)));
            let subject = subject
                .as_object()
                .ok_or_else(|| (here(""), "a subject must be an object"))?;
            if !matches!(subject.get("type"), Some(Value::String(_))) {
                return Err((here("/type"), "the 'type' of the subject is missing"));
            }
            let expiry_millis = match subject.get("expiry") {
                None => None,
                Some(Value::String(s)) => Some(
                    parse_timestamp(s)
                        .ok_or_else(|| (here("/expiry"), "not an ISO-8601 timestamp"))?,
                ),
                Some(_) => return Err((here("/expiry"), "not an ISO-8601 timestamp")),
            };
            if expiry_millis.is_some_and(|expiry| expiry <= now_millis) {
                continue;
            }
            subjects.push(Subject {
                id: id.clone(),
                expiry_millis,
            });
        }
    }

    let mut resources: Vec<Resource> = Vec::new();
    if let Some(v) = map.get("resources") {
        let v = v
            .as_object()
            .ok_or_else(|| (at("/resources"), "must be an object"))?;
        for (key, permissions) in v {
            let here = |rest: &str| at(&format!("/resources/{}{rest}", escape(key)));
            let (kind, path) = parse_resource_key(key).ok_or_else(|| {
                (
                    here(""),
                    "a resource key must be 'type:path' with a non-empty type",
                )
            })?;
            let permissions = permissions.as_object().ok_or_else(|| {
                (
                    here(""),
                    "the grant and revoke of a resource must be an object",
                )
            })?;
            let resource = Resource {
                kind,
                path,
                grant: parse_perms(permissions, "grant")
                    .ok_or_else(|| (here("/grant"), "missing or not an array"))?,
                revoke: parse_perms(permissions, "revoke")
                    .ok_or_else(|| (here("/revoke"), "missing or not an array"))?,
            };
            // Keys that differ only in spelling ("thing:/a" and "thing:a") are one resource in
            // Ditto's map; the later one replaces the earlier.
            match resources.iter_mut().find(|r| r.same_key(&resource)) {
                Some(existing) => *existing = resource,
                None => resources.push(resource),
            }
        }
    }

    let namespaces = match map.get("namespaces") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut patterns = Vec::with_capacity(items.len());
            for item in items {
                match item.as_str() {
                    Some(p) if is_valid_namespace_pattern(p) => patterns.push(p.to_owned()),
                    Some(_) => return Err((at("/namespaces"), "not a valid namespace pattern")),
                    None => return Err((at("/namespaces"), "must only contain strings")),
                }
            }
            Some(patterns)
        }
        Some(_) => return Err((at("/namespaces"), "must be an array")),
    };

    let importable = match map.get("importable") {
        None | Some(Value::Null) => Importable::Implicit,
        Some(Value::String(s)) if s == "implicit" => Importable::Implicit,
        Some(Value::String(s)) if s == "explicit" => Importable::Explicit,
        Some(Value::String(s)) if s == "never" => Importable::Never,
        Some(_) => {
            return Err((
                at("/importable"),
                "must be 'implicit', 'explicit' or 'never'",
            ))
        }
    };

    let allowed_additions = match map.get("allowedAdditions") {
        None | Some(Value::Null) => None,
        Some(Value::Array(items)) => {
            let mut additions = Additions::default();
            for item in items {
                match item.as_str() {
                    Some("subjects") => additions.subjects = true,
                    Some("resources") => additions.resources = true,
                    Some("namespaces") => additions.namespaces = true,
                    _ => {
                        return Err((
                            at("/allowedAdditions"),
                            "must only contain 'subjects', 'resources' or 'namespaces'",
                        ))
                    }
                }
            }
            Some(additions)
        }
        Some(_) => return Err((at("/allowedAdditions"), "must be an array")),
    };

    let mut references = Vec::new();
    match map.get("references") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for item in items {
                references.push(parse_reference(item).map_err(|p| (at("/references"), p))?);
            }
        }
        Some(_) => return Err((at("/references"), "must be an array")),
    }

    Ok(Entry {
        label: label.to_owned(),
        subjects,
        resources,
        namespaces,
        importable,
        allowed_additions,
        references,
    })
}

fn parse_reference(item: &Value) -> Result<Reference, &'static str> {
    let map = item
        .as_object()
        .ok_or("a reference must be an object with an 'entry'")?;
    let entry = match map.get("entry") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        _ => return Err("a reference must name its 'entry'"),
    };
    let import = match map.get("import") {
        None => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(_) => return Err("the 'import' of a reference must be a non-empty string"),
    };
    Ok(Reference { import, entry })
}

fn parse_import(policy_id: &str, value: &Value) -> Result<Import, Problem> {
    let map = value
        .as_object()
        .ok_or_else(|| (String::new(), "a policy import must be an object"))?;
    // Ditto reads `entries` leniently (non-strings skipped) and `transitiveImports` strictly.
    let entries = match map.get("entries") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect(),
        Some(_) => return Err(("/entries".into(), "must be an array")),
    };
    let transitive = match map.get("transitiveImports") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => {
            let mut ids = Vec::with_capacity(items.len());
            for item in items {
                ids.push(
                    item.as_str()
                        .ok_or_else(|| {
                            (
                                "/transitiveImports".to_owned(),
                                "must only contain policy IDs",
                            )
                        })?
                        .to_owned(),
                );
            }
            ids
        }
        Some(_) => return Err(("/transitiveImports".into(), "must be an array")),
    };
    Ok(Import {
        policy_id: policy_id.to_owned(),
        entries,
        transitive,
    })
}

fn parse_perms(permissions: &Map<String, Value>, field: &str) -> Option<Perms> {
    let mut perms = Perms::default();
    // Ditto requires the array and skips elements that are not strings.
    for name in permissions
        .get(field)?
        .as_array()?
        .iter()
        .filter_map(Value::as_str)
    {
        perms.insert(name);
    }
    Some(perms)
}

/// `thing:/features/lamp` → ("thing", ["features", "lamp"]). Like Ditto's resource keys: the
/// type ends at the first ':', the leading '/' is optional, "/" alone is the root, doubled
/// slashes are refused. Keys are unescaped as twinwire's `JsonPointer` unescapes them (`~1` is
/// '/', `~0` is '~'), so a resource names exactly the keys a request pointer names.
pub(super) fn parse_resource_key(key: &str) -> Option<(String, Vec<String>)> {
    let (kind, path) = key.split_once(':')?;
    if kind.is_empty() {
        return None;
    }
    let path = path.strip_prefix('/').unwrap_or(path);
    let path = path.strip_suffix('/').unwrap_or(path);
    let mut keys = Vec::new();
    if !path.is_empty() {
        for raw in path.split('/') {
            if raw.is_empty() {
                return None;
            }
            keys.push(unescape(raw));
        }
    }
    Some((kind.to_owned(), keys))
}

fn unescape(raw: &str) -> String {
    if raw.contains('~') {
        raw.replace("~1", "/").replace("~0", "~")
    } else {
        raw.to_owned()
    }
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

/// Ditto's `Instant.parse` of an `expiry`; RFC 3339 with any offset.
fn parse_timestamp(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// `com.acme` matches only `com.acme`; `com.acme.*` matches `com.acme.x` (and deeper) but not
/// `com.acme` itself (Ditto's `PolicyEntryNamespaces.matchesPattern`).
pub(super) fn namespace_matches(pattern: &str, namespace: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(prefix) => namespace
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.')),
        None => namespace == pattern,
    }
}

/// A namespace (`[a-zA-Z]\w*` segments joined by `.` or `-`), optionally followed by `.*`.
fn is_valid_namespace_pattern(pattern: &str) -> bool {
    let namespace = pattern.strip_suffix(".*").unwrap_or(pattern);
    is_namespace(namespace)
}

fn is_namespace(s: &str) -> bool {
    let mut at_segment_start = true;
    for c in s.chars() {
        if at_segment_start {
            if !c.is_ascii_alphabetic() {
                return false;
            }
            at_segment_start = false;
        } else if c == '.' || c == '-' {
            at_segment_start = true;
        } else if !(c.is_ascii_alphanumeric() || c == '_') {
            return false;
        }
    }
    !s.is_empty() && !at_segment_start
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<PolicyDoc, EnforcerError> {
        parse_policy(&v, 0)
    }

    fn problem(v: Value) -> (String, &'static str) {
        match parse(v).unwrap_err() {
            EnforcerError::Invalid {
                location, problem, ..
            } => (location, problem),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reads_entries_subjects_resources() {
        let doc = parse(json!({
            "policyId": "ns:p",
            "entries": {"owner": {
                "subjects": {"nginx:ditto": {"type": "user"}},
                "resources": {
                    "thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                    "message:/inbox": {"grant": ["EXECUTE", "WHATEVER", 3], "revoke": ["READ"]}
                }
            }}
        }))
        .unwrap();
        assert_eq!(doc.id, "ns:p");
        let e = &doc.entries[0];
        assert_eq!(e.label, "owner");
        assert_eq!(e.subjects[0].id, "nginx:ditto");
        assert_eq!(e.importable, Importable::Implicit);
        assert_eq!(e.allowed_additions, None);
        let thing = &e.resources[0];
        assert_eq!((thing.kind.as_str(), thing.path.len()), ("thing", 0));
        assert!(thing.grant.contains(0) && thing.grant.contains(1) && !thing.grant.contains(2));
        let msg = &e.resources[1];
        assert_eq!(msg.path, ["inbox"]);
        assert_eq!(msg.grant, Perms(4));
        assert_eq!(msg.revoke, Perms(1));
    }

    #[test]
    fn resource_keys_as_ditto_splits_them() {
        let k = |s| parse_resource_key(s);
        assert_eq!(k("thing:/"), Some(("thing".into(), vec![])));
        assert_eq!(k("thing:"), Some(("thing".into(), vec![])));
        assert_eq!(
            k("thing:attributes/a"),
            Some(("thing".into(), vec!["attributes".into(), "a".into()]))
        );
        assert_eq!(
            k("thing:/attributes/a~1b~0c/"),
            Some(("thing".into(), vec!["attributes".into(), "a/b~c".into()]))
        );
        assert_eq!(
            k("policy:/entries/x:y"),
            Some(("policy".into(), vec!["entries".into(), "x:y".into()]))
        );
        assert_eq!(k("thing:/a//b"), None);
        assert_eq!(k(":/a"), None);
        assert_eq!(k("thing"), None);
    }

    #[test]
    fn refuses_what_ditto_refuses() {
        // The last example of docs/basic-policy.md nests "resources" inside "subjects": Ditto
        // reads it as a subject called "resources" without a type and refuses the policy.
        let (location, why) = problem(json!({"entries": {"private": {"subjects": {
            "nginx:some-users": {"type": "a group of users"},
            "resources": {"thing:/x": {"grant": [], "revoke": ["READ"]}}
        }}}}));
        assert_eq!(location, "/entries/private/subjects/resources/type");
        assert_eq!(why, "the 'type' of the subject is missing");

        let (location, _) = problem(json!({"entries": {"e": {
            "resources": {"thing:/": {"grant": ["READ"]}}}}}));
        assert_eq!(location, "/entries/e/resources/thing:~1/revoke");
        let (location, _) = problem(
            json!({"entries": {"e": {"resources": {"/attributes": {"grant": [], "revoke": []}}}}}),
        );
        assert_eq!(location, "/entries/e/resources/~1attributes");
        let (location, _) = problem(json!({"entries": {"e": {"namespaces": ["com.acme.", "x"]}}}));
        assert_eq!(location, "/entries/e/namespaces");
        let (location, _) = problem(json!({"entries": {"e": {"importable": "sometimes"}}}));
        assert_eq!(location, "/entries/e/importable");
        let (location, _) = problem(json!({"entries": {"e": {"allowedAdditions": ["policies"]}}}));
        assert_eq!(location, "/entries/e/allowedAdditions");
        let (location, _) =
            problem(json!({"entries": {"e": {"references": [{"import": 3, "entry": "x"}]}}}));
        assert_eq!(location, "/entries/e/references");
        let (location, _) = problem(json!({"entries": {"e": {"subjects": {
            "x:y": {"type": "t", "expiry": "tomorrow"}}}}}));
        assert_eq!(location, "/entries/e/subjects/x:y/expiry");
        let (location, _) =
            problem(json!({"entries": {}, "imports": {"ns:other": {"transitiveImports": [1]}}}));
        assert_eq!(location, "/imports/ns:other/transitiveImports");
        assert!(parse(json!([])).is_err());
    }

    #[test]
    fn expired_subjects_are_left_out() {
        let v = json!({"entries": {"e": {"subjects": {
            "a:past": {"type": "t", "expiry": "2020-01-01T00:00:00Z"},
            "a:now": {"type": "t", "expiry": "2025-01-01T00:00:00Z"},
            "a:now-offset": {"type": "t", "expiry": "2025-01-01T01:00:00+01:00"},
            "a:later": {"type": "t", "expiry": "2025-01-01T00:00:00.001Z"},
            "a:never": {"type": "t"}
        }}}});
        let now = 1_735_689_600_000; // 2025-01-01T00:00:00Z
        let doc = parse_policy(&v, now).unwrap();
        let kept: Vec<_> = doc.entries[0]
            .subjects
            .iter()
            .map(|s| (s.id.as_str(), s.expiry_millis))
            .collect();
        assert_eq!(
            kept,
            [("a:later", Some(now + 1)), ("a:never", None)],
            "expired at or before now: gone"
        );
    }

    #[test]
    fn imports_and_references() {
        let doc = parse(json!({"entries": {"e": {
            "references": [{"import": "ns:t", "entry": "driver"}, {"entry": "local"}],
            "allowedAdditions": ["subjects"], "importable": "explicit", "namespaces": ["com.acme", "com.acme.*"]
        }}, "imports": {"ns:t": {"entries": ["A", 1], "transitiveImports": ["ns:u"]}, "ns:v": {}}}))
        .unwrap();
        let e = &doc.entries[0];
        assert_eq!(
            e.references,
            [
                Reference {
                    import: Some("ns:t".into()),
                    entry: "driver".into()
                },
                Reference {
                    import: None,
                    entry: "local".into()
                }
            ]
        );
        assert_eq!(
            e.allowed_additions,
            Some(Additions {
                subjects: true,
                ..Additions::default()
            })
        );
        assert_eq!(e.importable, Importable::Explicit);
        assert_eq!(doc.imports[0].entries, ["A"]);
        assert_eq!(doc.imports[0].transitive, ["ns:u"]);
        assert!(doc.imports[1].entries.is_empty());
    }

    #[test]
    fn namespace_patterns() {
        assert!(namespace_matches("com.acme", "com.acme"));
        assert!(!namespace_matches("com.acme", "com.acme.x"));
        assert!(namespace_matches("com.acme.*", "com.acme.x"));
        assert!(namespace_matches("com.acme.*", "com.acme.x.y"));
        assert!(!namespace_matches("com.acme.*", "com.acme"));
        assert!(!namespace_matches("com.acme.*", "com.acmex"));
        for ok in ["com.acme", "com.acme.*", "a", "a-b.c_1.*"] {
            assert!(is_valid_namespace_pattern(ok), "{ok}");
        }
        for bad in [
            "",
            ".*",
            "*",
            "com..acme",
            "com.acme.",
            "1com",
            "com.*.x",
            "com.acme.**",
        ] {
            assert!(!is_valid_namespace_pattern(bad), "{bad}");
        }
    }
}
