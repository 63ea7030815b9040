//! The policy model's rules (docs/basic-policy.md, jsonschema/policy.json): functions that turn
//! a written part of a policy (entry, subject, resource, import, reference, …) into the form
//! Ditto stores or into Ditto's error for it, where a policy path points, and lockout
//! prevention. Pure; no permission checks (those are the enforcer's).

use serde_json::{Map, Value};
use std::collections::HashSet;
use twinwire_protocol::exceptions::policies as exc;
use twinwire_protocol::id::{is_valid_namespace, parse_policy_id};
use twinwire_protocol::signal::PolicyResource;
use twinwire_protocol::{DittoError, JsonPointer, PolicyId, ProtocolError};

use super::policy::objects;

/// Ditto's `ditto.limits.policy.imports-limit`: at most this many imports per policy.
pub const MAX_IMPORTS: usize = 10;

/// Ditto ignores this field wherever a policy part is read (`JsonSchemaVersion.getJsonKey()`).
const SCHEMA_VERSION_KEY: &str = "__schemaVersion";

/// Labels starting with these are Ditto's for imported entries (`ImmutableImportedLabel`).
const RESERVED_LABEL_PREFIXES: [&str; 2] = ["imported", "nsimported"];

/// What a subject may do on a resource: the enforcer's permission, one type for both.
pub use super::enforcer::Permission;

/// The kinds of resources a policy controls, the part of a resource key before the colon.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    Thing,
    Policy,
    Message,
}

impl ResourceType {
    pub const ALL: [ResourceType; 3] = [
        ResourceType::Thing,
        ResourceType::Policy,
        ResourceType::Message,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Thing => "thing",
            ResourceType::Policy => "policy",
            ResourceType::Message => "message",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ResourceType::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

/// An entry's `importable`: whether importing policies get it without (implicit) or only with
/// (explicit) naming it, or never. Absent means implicit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ImportableType {
    #[default]
    Implicit,
    Explicit,
    Never,
}

impl ImportableType {
    pub const ALL: [ImportableType; 3] = [
        ImportableType::Implicit,
        ImportableType::Explicit,
        ImportableType::Never,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ImportableType::Implicit => "implicit",
            ImportableType::Explicit => "explicit",
            ImportableType::Never => "never",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        ImportableType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The `importable` of an entry's JSON (absent or unreadable: implicit).
    pub fn of_entry(entry: &Map<String, Value>) -> Self {
        entry
            .get("importable")
            .and_then(Value::as_str)
            .and_then(ImportableType::parse)
            .unwrap_or_default()
    }
}

/// What an entry's `allowedAdditions` lets a referencing entry add of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AllowedAddition {
    Subjects,
    Resources,
    Namespaces,
}

impl AllowedAddition {
    pub const ALL: [AllowedAddition; 3] = [
        AllowedAddition::Subjects,
        AllowedAddition::Resources,
        AllowedAddition::Namespaces,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AllowedAddition::Subjects => "subjects",
            AllowedAddition::Resources => "resources",
            AllowedAddition::Namespaces => "namespaces",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        AllowedAddition::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

// ---------------------------------------------------------------------------------------------
// Where a policy path points in the policy's JSON.

/// The resource a policy path addresses and the JSON keys leading to it. Resource keys and
/// subject IDs contain slashes (`thing:/features`), so the path's tail after `resources/` or
/// `subjects/` is one key; `/import/{id}` is read as `/imports/{id}`.
pub fn locate(path: &JsonPointer) -> Option<(PolicyResource, Vec<String>)> {
    let resource = PolicyResource::from_path(path)?;
    let s = path.segments();
    let seg = |i: usize| s.get(i).cloned().unwrap_or_default();
    let entry = |field: &str| vec!["entries".to_owned(), seg(1), field.to_owned()];
    let keys = match resource {
        PolicyResource::Policy => vec![],
        PolicyResource::PolicyImports => vec!["imports".to_owned()],
        PolicyResource::PolicyImport => vec!["imports".to_owned(), seg(1)],
        PolicyResource::PolicyImportEntries => {
            vec!["imports".to_owned(), seg(1), "entries".to_owned()]
        }
        PolicyResource::PolicyImportTransitiveImports => {
            vec!["imports".to_owned(), seg(1), "transitiveImports".to_owned()]
        }
        PolicyResource::PolicyEntries => vec!["entries".to_owned()],
        PolicyResource::PolicyEntry => vec!["entries".to_owned(), seg(1)],
        PolicyResource::Resources => entry("resources"),
        PolicyResource::Resource => {
            let raw = s[3..].join("/");
            let mut keys = entry("resources");
            keys.push(normalize_resource_key(&raw).unwrap_or(raw));
            keys
        }
        PolicyResource::Subjects => entry("subjects"),
        PolicyResource::Subject => {
            let mut keys = entry("subjects");
            keys.push(s[3..].join("/"));
            keys
        }
        PolicyResource::PolicyEntryImportable => entry("importable"),
        PolicyResource::PolicyEntryAllowedAdditions => entry("allowedAdditions"),
        PolicyResource::PolicyEntryNamespaces => entry("namespaces"),
        PolicyResource::PolicyEntryReferences => entry("references"),
    };
    Some((resource, keys))
}

/// The path under which a change at `keys` is published: the keys as path segments, with a
/// resource key or subject ID split at its slashes as Ditto writes it
/// (`/entries/l/resources/thing:/features`).
pub fn event_path(resource: PolicyResource, keys: &[String]) -> JsonPointer {
    let mut segments: Vec<String> = Vec::with_capacity(keys.len() + 2);
    for (i, key) in keys.iter().enumerate() {
        let last = i + 1 == keys.len();
        if last && matches!(resource, PolicyResource::Resource | PolicyResource::Subject) {
            segments.extend(key.split('/').map(str::to_owned));
        } else {
            segments.push(key.clone());
        }
    }
    JsonPointer::from_segments(segments)
}

// ---------------------------------------------------------------------------------------------
// The model's rules: each `normalize_*` checks a written part and returns it as Ditto stores it
// (known fields only, in Ditto's order, `__schemaVersion` dropped), or Ditto's error.

pub(crate) const POLICY_FIELDS: [&str; 3] = ["policyId", "imports", "entries"];
pub(crate) const ENTRY_FIELDS: [&str; 6] = [
    "subjects",
    "resources",
    "namespaces",
    "importable",
    "allowedAdditions",
    "references",
];
const IMPORT_FIELDS: [&str; 2] = ["entries", "transitiveImports"];

/// Puts the known fields of `o` in `order` (unknown ones after them).
pub(crate) fn reorder(o: &mut Map<String, Value>, order: &[&str]) {
    let in_order = o
        .keys()
        .map(String::as_str)
        .filter(|k| order.contains(k))
        .eq(order.iter().copied().filter(|k| o.contains_key(*k)));
    if in_order {
        return;
    }
    let mut rest = std::mem::take(o);
    for key in order {
        if let Some(v) = rest.shift_remove(*key) {
            o.insert((*key).to_owned(), v);
        }
    }
    o.extend(rest);
}

/// An import changed in one of its fields keeps Ditto's form: `entries` whenever it has any
/// field, no empty `transitiveImports`.
pub(crate) fn tidy_import(o: &mut Map<String, Value>) {
    if o.get("transitiveImports")
        .and_then(Value::as_array)
        .is_some_and(Vec::is_empty)
    {
        o.shift_remove("transitiveImports");
    }
    if !o.is_empty() && !o.contains_key("entries") {
        o.insert("entries".into(), Value::Array(vec![]));
    }
    reorder(o, &IMPORT_FIELDS);
}

fn value_type(what: impl Into<String>, expected: &'static str) -> DittoError {
    ProtocolError::ValueType {
        signal: what.into(),
        expected,
    }
    .into()
}

/// The members of a JSON object other than `__schemaVersion`.
fn members<'v>(
    value: &'v Value,
    what: &str,
) -> Result<impl Iterator<Item = (&'v String, &'v Value)>, DittoError> {
    let obj = value
        .as_object()
        .ok_or_else(|| value_type(what, "a JSON object"))?;
    Ok(obj.iter().filter(|(k, _)| *k != SCHEMA_VERSION_KEY))
}

fn has_control_chars(s: &str) -> bool {
    s.chars().any(char::is_control)
}

/// A whole policy written under `policy_id`: a `policyId` in it must be that ID.
pub fn normalize_policy(
    policy_id: &PolicyId,
    value: &Value,
) -> Result<Map<String, Value>, DittoError> {
    let given = value
        .as_object()
        .ok_or_else(|| value_type("policy", "a JSON object"))?;
    match given.get("policyId") {
        None => {}
        Some(Value::String(id)) if id == policy_id.as_str() => {}
        Some(_) => return Err(exc::id_not_settable()),
    }
    let mut json = Map::new();
    json.insert("policyId".into(), Value::from(policy_id.as_str()));
    if let Some(imports) = given.get("imports") {
        json.insert(
            "imports".into(),
            Value::Object(normalize_imports(policy_id.as_str(), imports)?),
        );
    }
    let entries = match given.get("entries") {
        Some(e) => normalize_entries(e)?,
        None => Map::new(),
    };
    json.insert("entries".into(), Value::Object(entries));
    Ok(json)
}

/// A policy's `imports`: one import per imported policy ID, at most [`MAX_IMPORTS`].
pub fn normalize_imports(policy_id: &str, value: &Value) -> Result<Map<String, Value>, DittoError> {
    let mut out = Map::new();
    for (imported, import) in members(value, "imports")? {
        out.insert(
            imported.clone(),
            normalize_import(policy_id, imported, import)?,
        );
    }
    if out.len() > MAX_IMPORTS {
        return Err(exc::imports_too_large(policy_id, MAX_IMPORTS));
    }
    Ok(out)
}

/// One import of `imported_policy_id`: `{}` (implicit entries only) or `entries` (labels to
/// import as well) and `transitiveImports`.
pub fn normalize_import(
    policy_id: &str,
    imported_policy_id: &str,
    value: &Value,
) -> Result<Value, DittoError> {
    parse_policy_id(imported_policy_id)?;
    if imported_policy_id == policy_id {
        return Err(exc::import_invalid());
    }
    let given = value
        .as_object()
        .ok_or_else(|| value_type(format!("import of '{imported_policy_id}'"), "a JSON object"))?;
    let mut out = Map::new();
    if given.keys().all(|k| k == SCHEMA_VERSION_KEY) {
        return Ok(Value::Object(out));
    }
    let entries = match given.get("entries") {
        Some(e) => normalize_import_entries(e)?,
        None => Value::Array(vec![]),
    };
    out.insert("entries".into(), entries);
    if let Some(t) = given.get("transitiveImports") {
        let t = normalize_transitive_imports(policy_id, t)?;
        if t.as_array().is_some_and(|a| !a.is_empty()) {
            out.insert("transitiveImports".into(), t);
        }
    }
    Ok(Value::Object(out))
}

/// An import's `entries`: the labels of the imported policy's entries to import explicitly.
pub fn normalize_import_entries(value: &Value) -> Result<Value, DittoError> {
    let labels = value
        .as_array()
        .ok_or_else(|| value_type("import entries", "an array of entry labels"))?;
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for label in labels {
        let label = label
            .as_str()
            .filter(|l| !l.is_empty())
            .ok_or_else(|| value_type("import entries", "an array of entry labels"))?;
        if seen.insert(label) {
            out.push(Value::from(label));
        }
    }
    Ok(Value::Array(out))
}

/// An import's `transitiveImports`: policy IDs, never the importing policy's own.
pub fn normalize_transitive_imports(policy_id: &str, value: &Value) -> Result<Value, DittoError> {
    let ids = value
        .as_array()
        .ok_or_else(|| value_type("transitiveImports", "an array of policy IDs"))?;
    let mut out = Vec::new();
    for id in ids {
        let Some(id) = id.as_str() else {
            return Err(exc::import_invalid_because(
                &format!("The 'transitiveImports' array contains a non-string element: {id}"),
                "Every element in 'transitiveImports' must be a string representing a valid policy ID.",
            ));
        };
        parse_policy_id(id)?;
        if id == policy_id {
            return Err(exc::import_transitive_self(policy_id));
        }
        out.push(Value::from(id));
    }
    Ok(Value::Array(out))
}

/// A policy's `entries`: one entry per label.
pub fn normalize_entries(value: &Value) -> Result<Map<String, Value>, DittoError> {
    let mut out = Map::new();
    for (label, entry) in members(value, "entries")? {
        out.insert(label.clone(), normalize_entry(label, entry)?);
    }
    Ok(out)
}

/// A label: not empty, no slash or control character, not one of Ditto's import prefixes.
pub fn validate_label(label: &str) -> Result<(), DittoError> {
    if RESERVED_LABEL_PREFIXES.iter().any(|p| label.starts_with(p)) {
        return Err(exc::label_invalid(label));
    }
    if label.is_empty() || label.contains('/') || has_control_chars(label) {
        return Err(exc::entry_invalid_because(
            &format!("The Policy Label {label} is invalid"),
            "Neither slashes nor any control characters are allowed.",
        ));
    }
    Ok(())
}

/// One entry: `subjects` and `resources` (empty when not written, as Ditto allows an entry that
/// gets them through `references`), then the optional `namespaces`, `importable`,
/// `allowedAdditions` and `references`.
pub fn normalize_entry(label: &str, value: &Value) -> Result<Value, DittoError> {
    validate_label(label)?;
    let given = value
        .as_object()
        .ok_or_else(|| value_type(format!("policy entry '{label}'"), "a JSON object"))?;
    let mut out = Map::new();
    let subjects = match given.get("subjects") {
        Some(s) => normalize_subjects(s)?,
        None => Map::new(),
    };
    out.insert("subjects".into(), Value::Object(subjects));
    let resources = match given.get("resources") {
        Some(r) => normalize_resources(r)?,
        None => Map::new(),
    };
    out.insert("resources".into(), Value::Object(resources));
    if let Some(n) = given.get("namespaces") {
        out.insert("namespaces".into(), normalize_namespaces(n)?);
    }
    if let Some(i) = given.get("importable") {
        out.insert("importable".into(), normalize_importable(i)?);
    }
    if let Some(a) = given.get("allowedAdditions") {
        out.insert("allowedAdditions".into(), normalize_allowed_additions(a)?);
    }
    if let Some(r) = given.get("references") {
        let r = normalize_references(r)?;
        if r.as_array().is_some_and(|a| !a.is_empty()) {
            out.insert("references".into(), r);
        }
    }
    Ok(Value::Object(out))
}

/// An entry's `subjects`: one subject per subject ID.
pub fn normalize_subjects(value: &Value) -> Result<Map<String, Value>, DittoError> {
    let mut out = Map::new();
    for (id, subject) in members(value, "subjects")? {
        out.insert(id.clone(), normalize_subject(id, subject)?);
    }
    Ok(out)
}

/// A subject ID: `issuer:subject` (`nginx:ditto`, `google:…`), or a placeholder.
pub fn validate_subject_id(subject_id: &str) -> Result<(), DittoError> {
    let is_placeholder = subject_id.contains("{{");
    let well_formed = match subject_id.split_once(':') {
        Some((_, subject)) => !subject.is_empty(),
        None => is_placeholder,
    };
    if !well_formed || has_control_chars(subject_id) {
        return Err(exc::subject_id_invalid(subject_id));
    }
    Ok(())
}

/// One subject: its `type`, and optionally its `expiry` (ISO-8601, kept in the form Java's
/// `Instant` prints) and `announcement`.
pub fn normalize_subject(subject_id: &str, value: &Value) -> Result<Value, DittoError> {
    validate_subject_id(subject_id)?;
    let given = value
        .as_object()
        .ok_or_else(|| value_type(format!("subject '{subject_id}'"), "a JSON object"))?;
    let subject_type = match given.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(_) => return Err(value_type("subject type", "a string")),
        None => return Err(ProtocolError::FieldMissing { field: "type" }.into()),
    };
    let mut out = Map::new();
    out.insert("type".into(), Value::from(subject_type));
    if let Some(expiry) = given.get("expiry") {
        let text = expiry
            .as_str()
            .ok_or_else(|| exc::subject_expiry_invalid(&expiry.to_string()))?;
        let at = parse_instant(text).ok_or_else(|| exc::subject_expiry_invalid(text))?;
        out.insert("expiry".into(), Value::from(format_instant(&at)));
    }
    if let Some(announcement) = given.get("announcement") {
        out.insert("announcement".into(), normalize_announcement(announcement)?);
    }
    Ok(Value::Object(out))
}

/// A subject's `announcement` (docs/basic-policy.md, "Subject deletion announcements"): kept as
/// written once its durations read as durations.
fn normalize_announcement(value: &Value) -> Result<Value, DittoError> {
    let given = value
        .as_object()
        .ok_or_else(|| value_type("subject announcement", "a JSON object"))?;
    if let Some(before) = given.get("beforeExpiry") {
        match before.as_str() {
            Some(d) if is_duration(d) => {}
            _ => {
                let shown = before
                    .as_str()
                    .map(str::to_owned)
                    .unwrap_or_else(|| before.to_string());
                return Err(exc::subject_announcement_invalid(&shown));
            }
        }
    }
    if given.get("whenDeleted").is_some_and(|w| !w.is_boolean()) {
        return Err(value_type("announcement whenDeleted", "a boolean"));
    }
    if let Some(acks) = given.get("requestedAcks") {
        let ok = acks.as_object().is_some_and(|a| {
            a.get("labels")
                .is_none_or(|l| l.as_array().is_some_and(|l| l.iter().all(Value::is_string)))
                && a.get("timeout")
                    .is_none_or(|t| t.as_str().is_some_and(is_duration))
        });
        if !ok {
            return Err(value_type(
                "announcement requestedAcks",
                "an object with an array of labels and a timeout duration",
            ));
        }
    }
    let mut out = given.clone();
    out.shift_remove(SCHEMA_VERSION_KEY);
    Ok(Value::Object(out))
}

/// `10ms`, `30s`, `5m`, `1h`: Ditto's durations.
fn is_duration(s: &str) -> bool {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    digits > 0 && matches!(&s[digits..], "ms" | "s" | "m" | "h")
}

/// Parses an ISO-8601 instant (`2099-12-31T23:59:59Z`, offsets allowed).
pub fn parse_instant(s: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

/// An instant as Java's `Instant.toString` prints it: UTC, `Z`, seconds always, fractions only
/// when there are any (in groups of three digits).
pub fn format_instant(at: &chrono::DateTime<chrono::Utc>) -> String {
    at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// An entry's `resources`: one resource per resource key.
pub fn normalize_resources(value: &Value) -> Result<Map<String, Value>, DittoError> {
    let mut out = Map::new();
    for (key, resource) in members(value, "resources")? {
        out.insert(normalize_resource_key(key)?, normalize_resource(resource)?);
    }
    Ok(out)
}

/// A resource key `type:path` with a type of [`ResourceType`], its path in JSON pointer form as
/// Ditto keeps it (`thing:` is `thing:/`, `thing:/a/` is `thing:/a`).
pub fn normalize_resource_key(key: &str) -> Result<String, DittoError> {
    let invalid = |description: &str| {
        exc::entry_invalid_because(
            &format!("The Policy Resource {key} is invalid"),
            description,
        )
    };
    if has_control_chars(key) {
        return Err(invalid("Control characters are not allowed."));
    }
    let (resource_type, path) = key
        .split_once(':')
        .ok_or_else(|| invalid("The provided string was not in the expected format 'type:path'"))?;
    if ResourceType::parse(resource_type).is_none() {
        return Err(invalid(
            "The resource type must be one of 'thing', 'policy' or 'message'.",
        ));
    }
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    Ok(format!("{resource_type}:/{}", segments.join("/")))
}

/// One resource's permissions: `grant` and `revoke`, both required, each a list of
/// [`Permission`]s (duplicates dropped).
pub fn normalize_resource(value: &Value) -> Result<Value, DittoError> {
    let given = value
        .as_object()
        .ok_or_else(|| value_type("resource", "a JSON object with grant and revoke"))?;
    let mut out = Map::new();
    for effect in ["grant", "revoke"] {
        let list = given.get(effect).ok_or(ProtocolError::FieldMissing {
            field: if effect == "grant" { "grant" } else { "revoke" },
        })?;
        let list = list
            .as_array()
            .ok_or_else(|| value_type(effect, "an array of permissions"))?;
        let mut permissions: Vec<Value> = Vec::new();
        for p in list {
            let permission = p
                .as_str()
                .and_then(Permission::from_name)
                .ok_or_else(exc::entry_invalid)?;
            let p = Value::from(permission.as_str());
            if !permissions.contains(&p) {
                permissions.push(p);
            }
        }
        out.insert(effect.into(), Value::Array(permissions));
    }
    Ok(Value::Object(out))
}

/// `com.acme` or `com.acme.*` (docs/basic-policy.md, "Namespaces").
pub fn is_namespace_pattern(pattern: &str) -> bool {
    let namespace = pattern.strip_suffix(".*").unwrap_or(pattern);
    !namespace.is_empty() && is_valid_namespace(namespace)
}

/// Whether one namespace pattern matches a namespace: `com.acme` exactly, `com.acme.*` the
/// namespaces below it (not `com.acme` itself).
pub fn namespace_pattern_matches(pattern: &str, namespace: &str) -> bool {
    match pattern.strip_suffix(".*") {
        Some(prefix) => namespace
            .strip_prefix(prefix)
            .is_some_and(|rest| rest.starts_with('.')),
        None => namespace == pattern,
    }
}

/// Whether an entry applies to an entity of `namespace`: it has no `namespaces` (or an empty
/// list), or one of them matches.
pub fn entry_applies_to_namespace(entry: &Map<String, Value>, namespace: &str) -> bool {
    let patterns: Vec<&str> = entry
        .get("namespaces")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    patterns.is_empty()
        || patterns
            .iter()
            .any(|p| namespace_pattern_matches(p, namespace))
}

/// An entry's `namespaces`: namespace patterns.
pub fn normalize_namespaces(value: &Value) -> Result<Value, DittoError> {
    let list = value
        .as_array()
        .ok_or_else(|| value_type("namespaces", "an array of namespace patterns"))?;
    for n in list {
        let Some(pattern) = n.as_str() else {
            return Err(exc::entry_invalid_because(
                "The Policy Entry is invalid.",
                &format!(
                    "The 'namespaces' array must only contain string values, but contained: {n}."
                ),
            ));
        };
        if !is_namespace_pattern(pattern) {
            return Err(exc::entry_invalid_because(
                "The Policy Entry is invalid.",
                &format!("The value '{pattern}' is not a valid namespace pattern. Valid patterns are namespaces like 'com.acme' or wildcard patterns like 'com.acme.*'."),
            ));
        }
    }
    Ok(value.clone())
}

/// An entry's `importable`: `implicit`, `explicit` or `never`.
pub fn normalize_importable(value: &Value) -> Result<Value, DittoError> {
    match value.as_str().and_then(ImportableType::parse) {
        Some(t) => Ok(Value::from(t.as_str())),
        None => {
            let shown = value
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| value.to_string());
            Err(exc::entry_invalid_because(
                "The Policy Entry is invalid.",
                &format!("The value '{shown}' of field '/importable' is not valid. Valid values are: [implicit, explicit, never]"),
            ))
        }
    }
}

/// An entry's `allowedAdditions`: `subjects`, `resources`, `namespaces` (duplicates dropped).
pub fn normalize_allowed_additions(value: &Value) -> Result<Value, DittoError> {
    let list = value
        .as_array()
        .ok_or_else(|| value_type("allowedAdditions", "an array of addition kinds"))?;
    let mut out: Vec<Value> = Vec::new();
    for (index, a) in list.iter().enumerate() {
        let Some(name) = a.as_str() else {
            return Err(exc::entry_invalid_because(
                "The Policy Entry is invalid.",
                &format!("The 'allowedAdditions' array contains a non-string element at index {index}: {a}. Every element must be a string from [subjects, resources, namespaces]."),
            ));
        };
        let addition = AllowedAddition::parse(name).ok_or_else(|| {
            exc::entry_invalid_because(
                "The Policy Entry is invalid.",
                &format!("The value '{name}' is not a valid allowedAddition. Valid values are: [subjects, resources, namespaces]."),
            )
        })?;
        let v = Value::from(addition.as_str());
        if !out.contains(&v) {
            out.push(v);
        }
    }
    Ok(Value::Array(out))
}

/// An entry's `references`: `{"import": policyId, "entry": label}` (an entry of an imported
/// policy) or `{"entry": label}` (an entry of the same policy).
pub fn normalize_references(value: &Value) -> Result<Value, DittoError> {
    let list = value
        .as_array()
        .ok_or_else(|| value_type("references", "an array of entry references"))?;
    let mut out = Vec::with_capacity(list.len());
    for (index, r) in list.iter().enumerate() {
        let Some(r) = r.as_object() else {
            return Err(exc::entry_invalid_because(
                "The Policy Entry is invalid.",
                &format!("The 'references' array contains a non-object element at index {index}: {r}. Every element must be a JSON object with at least an 'entry' field."),
            ));
        };
        let entry = match r.get("entry") {
            Some(Value::String(e)) => e,
            Some(_) => return Err(value_type("reference entry", "a label string")),
            None => return Err(ProtocolError::FieldMissing { field: "entry" }.into()),
        };
        validate_label(entry)?;
        let mut reference = Map::new();
        if let Some(import) = r.get("import") {
            let import = import.as_str().filter(|i| !i.is_empty()).ok_or_else(|| {
                value_type(
                    "reference import",
                    "a non-empty policy ID (omit 'import' for a local reference)",
                )
            })?;
            parse_policy_id(import)?;
            reference.insert("import".into(), Value::from(import));
        }
        reference.insert("entry".into(), Value::from(entry.as_str()));
        out.push(Value::Object(reference));
    }
    Ok(Value::Array(out))
}

// ---------------------------------------------------------------------------------------------
// Rules over a whole policy.

/// One reference of an entry: the imported policy (none for a local reference) and the label.
fn references_of(entry: &Map<String, Value>) -> impl Iterator<Item = (Option<&str>, &str)> {
    entry
        .get("references")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| {
            let label = r.get("entry")?.as_str()?;
            Some((r.get("import").and_then(Value::as_str), label))
        })
}

/// The first entry (label) other than `label` itself whose local reference points at `label`.
pub fn entry_referencing_locally<'p>(
    entries: &'p Map<String, Value>,
    label: &str,
) -> Option<&'p str> {
    objects_of(entries).find_map(|(l, e)| {
        references_of(e)
            .any(|(import, target)| import.is_none() && target == label)
            .then_some(l)
    })
}

/// Whether any entry references an entry of `imported_policy_id` (or, with `None`, of any
/// imported policy); the referencing entry's label and the referenced label.
pub fn entry_referencing_import<'p>(
    entries: &'p Map<String, Value>,
    imported_policy_id: Option<&str>,
) -> Option<(&'p str, &'p str)> {
    objects_of(entries).find_map(|(l, e)| {
        references_of(e).find_map(|(import, target)| match (import, imported_policy_id) {
            (Some(i), Some(wanted)) if i == wanted => Some((l, target)),
            (Some(_), None) => Some((l, target)),
            _ => None,
        })
    })
}

fn objects_of(map: &Map<String, Value>) -> impl Iterator<Item = (&str, &Map<String, Value>)> {
    map.iter()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_object()?)))
}

/// Ditto's `validateReferencesIntegrity`: no duplicate or self reference, local references to
/// existing entries that are not `importable: never`, import references to declared imports.
pub fn validate_references(
    policy_id: &str,
    entries: &Map<String, Value>,
    imports: Option<&Map<String, Value>>,
) -> Result<(), DittoError> {
    for (label, entry) in objects_of(entries) {
        let mut seen = HashSet::new();
        for (import, target) in references_of(entry) {
            let invalid = |d: String| exc::entry_references_invalid(policy_id, label, &d);
            if !seen.insert((import, target)) {
                return Err(invalid(format!("Duplicate reference to entry '{target}'.")));
            }
            match import {
                None if target == label => {
                    return Err(invalid("Entry must not reference itself.".into()));
                }
                None => match entries.get(target).and_then(Value::as_object) {
                    None => {
                        return Err(invalid(format!(
                            "Local reference targets entry '{target}' which does not exist in the policy."
                        )))
                    }
                    Some(t) if ImportableType::of_entry(t) == ImportableType::Never => {
                        return Err(invalid(format!(
                            "Local reference targets entry '{target}' which is marked importable=never and cannot be referenced."
                        )))
                    }
                    Some(_) => {}
                },
                Some(import) => {
                    if !imports.is_some_and(|i| i.contains_key(import)) {
                        return Err(invalid(format!(
                            "Import reference targets policy '{import}' which is not declared in imports."
                        )));
                    }
                }
            }
        }
    }
    Ok(())
}

/// The labels an import lists in `entries`.
pub fn import_labels(import: Option<&Value>) -> Vec<&str> {
    import
        .and_then(|i| i.get("entries"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect()
}

/// Ditto's `checkLabelNarrowingDoesNotOrphan`: when an import's `entries` lose a label that an
/// entry's import reference names, the referencing entry and the label.
pub fn orphaned_by_narrowing<'p>(
    entries: &'p Map<String, Value>,
    imported_policy_id: &str,
    old: &[&str],
    new: &[&str],
) -> Option<(&'p str, &'p str)> {
    let removed: Vec<&&str> = old.iter().filter(|l| !new.contains(l)).collect();
    if removed.is_empty() {
        return None;
    }
    objects_of(entries).find_map(|(l, e)| {
        references_of(e).find_map(|(import, target)| {
            (import == Some(imported_policy_id) && removed.iter().any(|r| **r == target))
                .then_some((l, target))
        })
    })
}

/// The entries with their local references resolved one level deep, as Ditto's
/// `PolicyImporter.resolveReferences` does for the entries of the policy itself: the referenced
/// entries' subjects, resources (grants and revokes united) and namespaces are merged in, the
/// entry's own additions only as far as the strictest `allowedAdditions` of its references
/// allows; references to `importable: never` entries are skipped. Import references contribute
/// nothing here (they need the imported policy).
pub fn resolve_local_references(entries: &Map<String, Value>) -> Map<String, Value> {
    let mut out = entries.clone();
    for (label, own) in objects_of(entries) {
        let refs: Vec<&str> = references_of(own)
            .filter(|(import, _)| import.is_none())
            .map(|(_, t)| t)
            .collect();
        if refs.is_empty() {
            continue;
        }
        let mut subjects = Map::new();
        let mut resources = Map::new();
        let mut namespaces: Vec<Value> = Vec::new();
        let mut allowed: Option<Vec<AllowedAddition>> = None;
        for target in refs {
            let Some(t) = entries.get(target).and_then(Value::as_object) else {
                continue;
            };
            if ImportableType::of_entry(t) == ImportableType::Never {
                continue;
            }
            merge_subjects(&mut subjects, t.get("subjects"));
            merge_resources(&mut resources, t.get("resources"));
            merge_namespaces(&mut namespaces, t.get("namespaces"));
            if let Some(list) = t.get("allowedAdditions").and_then(Value::as_array) {
                let kinds: Vec<AllowedAddition> = list
                    .iter()
                    .filter_map(|a| a.as_str().and_then(AllowedAddition::parse))
                    .collect();
                allowed = Some(match allowed {
                    None => kinds,
                    Some(prev) => prev.into_iter().filter(|k| kinds.contains(k)).collect(),
                });
            }
        }
        let may = |kind| allowed.as_ref().is_none_or(|a| a.contains(&kind));
        if may(AllowedAddition::Subjects) {
            merge_subjects(&mut subjects, own.get("subjects"));
        }
        if may(AllowedAddition::Resources) {
            merge_resources(&mut resources, own.get("resources"));
        }
        if may(AllowedAddition::Namespaces) {
            merge_namespaces(&mut namespaces, own.get("namespaces"));
        }
        let mut resolved = own.clone();
        resolved.insert("subjects".into(), Value::Object(subjects));
        resolved.insert("resources".into(), Value::Object(resources));
        if namespaces.is_empty() {
            resolved.shift_remove("namespaces");
        } else {
            resolved.insert("namespaces".into(), Value::Array(namespaces));
        }
        if let Some(a) = allowed {
            resolved.insert(
                "allowedAdditions".into(),
                Value::Array(a.into_iter().map(|k| Value::from(k.as_str())).collect()),
            );
        }
        out.insert(label.to_owned(), Value::Object(resolved));
    }
    out
}

/// Adds the subjects not yet present (the first one of an ID wins).
fn merge_subjects(into: &mut Map<String, Value>, from: Option<&Value>) {
    for (id, s) in from.and_then(Value::as_object).into_iter().flatten() {
        if !into.contains_key(id) {
            into.insert(id.clone(), s.clone());
        }
    }
}

/// Adds resources, uniting the grants and the revokes of a key present in both.
fn merge_resources(into: &mut Map<String, Value>, from: Option<&Value>) {
    for (key, r) in from.and_then(Value::as_object).into_iter().flatten() {
        match into.get_mut(key) {
            None => {
                into.insert(key.clone(), r.clone());
            }
            Some(existing) => {
                for effect in ["grant", "revoke"] {
                    let add: Vec<Value> = r
                        .get(effect)
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    if let Some(Value::Array(list)) = existing.get_mut(effect) {
                        for p in add {
                            if !list.contains(&p) {
                                list.push(p);
                            }
                        }
                    }
                }
            }
        }
    }
}

fn merge_namespaces(into: &mut Vec<Value>, from: Option<&Value>) {
    for n in from.and_then(Value::as_array).into_iter().flatten() {
        if !into.contains(n) {
            into.push(n.clone());
        }
    }
}

/// Ditto's lockout prevention (`PoliciesValidator`): some subject without an `expiry` keeps
/// WRITE on `policy:/` — granted in one entry (local references resolved) and revoked in none.
/// A policy with imports passes, as in Ditto, since its imports may supply the writer. Subjects
/// are compared by ID (Ditto compares whole subjects, so a revoke naming the subject with
/// another `type` would not count there).
pub fn keeps_a_policy_writer(policy: &Map<String, Value>) -> bool {
    let has_imports = policy
        .get("imports")
        .and_then(Value::as_object)
        .is_some_and(|i| !i.is_empty());
    if has_imports {
        return true;
    }
    let entries = match policy.get("entries").and_then(Value::as_object) {
        Some(e) => resolve_local_references(e),
        None => return false,
    };
    let on_policy_root = |entry: &Map<String, Value>, effect: &str| {
        entry
            .get("resources")
            .and_then(|r| r.get("policy:/"))
            .and_then(|r| r.get(effect))
            .and_then(Value::as_array)
            .is_some_and(|l| l.iter().any(|p| p == Permission::Write.as_str()))
    };
    let subjects = |entry: &Map<String, Value>| -> Vec<(String, bool)> {
        objects(entry.get("subjects"))
            .map(|(id, s)| (id.to_owned(), s.contains_key("expiry")))
            .collect()
    };
    let mut granted = HashSet::new();
    let mut revoked = HashSet::new();
    for (_, entry) in objects_of(&entries) {
        if on_policy_root(entry, "grant") {
            granted.extend(
                subjects(entry)
                    .into_iter()
                    .filter(|(_, expiring)| !expiring)
                    .map(|(id, _)| id),
            );
        }
        if on_policy_root(entry, "revoke") {
            revoked.extend(subjects(entry).into_iter().map(|(id, _)| id));
        }
    }
    granted.difference(&revoked).next().is_some()
}
