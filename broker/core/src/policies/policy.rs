//! A policy's state (docs/basic-policy.md): its JSON in Ditto's shape and the bookkeeping Ditto
//! exposes as `_revision`, `_created` and `_modified`, changed only by applying events so that a
//! live policy and one recovered from the journal are the same. The model's rules are in
//! [`super::rules`]. No I/O here.

use super::event::PolicyEvent;
use crate::things::json;
use serde_json::{Map, Value};
use twinwire_protocol::id::parse_policy_id;
use twinwire_protocol::signal::PolicyResource;
use twinwire_protocol::topic::EventAction;
use twinwire_protocol::{JsonPointer, PolicyId};

use super::rules::*;

/// What a policy shard keeps for one policy ID: the last revision and, unless it never existed
/// or was deleted, the policy. Revisions go on counting across a delete and a re-create.
#[derive(Debug, Clone, PartialEq)]
pub struct PolicyEntity {
    pub id: PolicyId,
    pub revision: u64,
    pub policy: Option<Policy>,
}

/// An existing policy.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy {
    /// `policyId`, `imports` (when it has any), `entries`, in Ditto's order and form: each entry
    /// with `subjects`, `resources`, then `namespaces`, `importable`, `allowedAdditions`,
    /// `references` where written.
    pub json: Map<String, Value>,
    /// `_created` and `_modified`, ISO-8601.
    pub created: String,
    pub modified: String,
}

impl PolicyEntity {
    pub fn new(id: PolicyId) -> Self {
        PolicyEntity {
            id,
            revision: 0,
            policy: None,
        }
    }

    pub fn exists(&self) -> bool {
        self.policy.is_some()
    }

    /// The entity tag of the policy's current state, `"rev:N"` with its quotes.
    pub fn etag(&self) -> String {
        format!("\"rev:{}\"", self.revision)
    }

    /// Applies one event. Events come from this policy's own commands or from the journal, so
    /// they are trusted to fit; one that does not (a corrupt journal) leaves the JSON as close
    /// to it as it can get and never panics.
    pub fn apply(&mut self, event: &PolicyEvent) {
        self.revision = event.revision;
        if event.path.is_root() {
            match event.action {
                EventAction::Deleted => self.policy = None,
                EventAction::Created | EventAction::Modified => {
                    let json = match &event.value {
                        Some(Value::Object(o)) => o.clone(),
                        _ => Map::new(),
                    };
                    let created = match (&self.policy, event.action) {
                        (Some(p), EventAction::Modified) => p.created.clone(),
                        _ => event.timestamp.clone(),
                    };
                    self.policy = Some(Policy {
                        json,
                        created,
                        modified: event.timestamp.clone(),
                    });
                }
                // Policies have neither merges nor migrations.
                EventAction::Merged | EventAction::Migrated => {}
            }
            return;
        }
        let Some(policy) = self.policy.as_mut() else {
            return;
        };
        let Some((resource, keys)) = locate(&event.path) else {
            return;
        };
        policy.modified = event.timestamp.clone();
        let pointer = JsonPointer::from_segments(keys.iter().cloned());
        match event.action {
            EventAction::Created | EventAction::Modified => {
                let value = event.value.clone().unwrap_or(Value::Null);
                let empty_references = resource == PolicyResource::PolicyEntryReferences
                    && value.as_array().is_some_and(Vec::is_empty);
                if empty_references {
                    // Ditto keeps no `references` field for an entry without references.
                    json::remove(&mut policy.json, &pointer);
                } else {
                    json::set(&mut policy.json, &pointer, value);
                }
            }
            EventAction::Deleted => {
                json::remove(&mut policy.json, &pointer);
            }
            EventAction::Merged | EventAction::Migrated => {}
        }
        if keys.len() > 2 {
            let part = JsonPointer::from_segments(keys[..2].iter().cloned());
            if let Some(Value::Object(o)) = json::get_mut(&mut policy.json, &part) {
                match keys[0].as_str() {
                    "entries" => reorder(o, &ENTRY_FIELDS),
                    _ => tidy_import(o),
                }
            }
        }
        reorder(&mut policy.json, &POLICY_FIELDS);
    }

    /// The journal snapshot of this entity: the policy (or `null` when deleted) with its
    /// bookkeeping. The revision is the snapshot's key, not repeated here.
    pub fn snapshot_data(&self) -> Vec<u8> {
        let policy = match &self.policy {
            None => Value::Null,
            Some(p) => {
                let mut o = Map::new();
                o.insert("json".into(), Value::Object(p.json.clone()));
                o.insert("created".into(), Value::from(p.created.as_str()));
                o.insert("modified".into(), Value::from(p.modified.as_str()));
                Value::Object(o)
            }
        };
        policy.to_string().into_bytes()
    }

    /// Rebuilds an entity from a snapshot written by [`PolicyEntity::snapshot_data`].
    pub fn from_snapshot(
        id: PolicyId,
        revision: u64,
        data: &[u8],
    ) -> Result<Self, serde_json::Error> {
        let text = |o: &Map<String, Value>, key: &str| {
            o.get(key)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let policy = match serde_json::from_slice::<Value>(data)? {
            Value::Object(mut o) => Some(Policy {
                created: text(&o, "created"),
                modified: text(&o, "modified"),
                json: match o.remove("json") {
                    Some(Value::Object(j)) => j,
                    _ => Map::new(),
                },
            }),
            _ => None,
        };
        Ok(PolicyEntity {
            id,
            revision,
            policy,
        })
    }
}

impl Policy {
    /// The policy's JSON, with the underscore fields added when a field selector asks for them.
    pub fn to_json(&self, revision: u64, with_special_fields: bool) -> Value {
        let mut json = self.json.clone();
        if with_special_fields {
            json.insert("_revision".into(), Value::from(revision));
            json.insert("_created".into(), Value::from(self.created.as_str()));
            json.insert("_modified".into(), Value::from(self.modified.as_str()));
            if let Some(id) = self.policy_id().and_then(|id| parse_policy_id(id).ok()) {
                json.insert("_namespace".into(), Value::from(id.namespace()));
            }
        }
        Value::Object(json)
    }

    pub fn policy_id(&self) -> Option<&str> {
        self.json.get("policyId").and_then(Value::as_str)
    }

    /// The entries as written, each an object: label and entry.
    pub fn entries(&self) -> impl Iterator<Item = (&str, &Map<String, Value>)> {
        objects(self.json.get("entries"))
    }

    pub fn entry(&self, label: &str) -> Option<&Map<String, Value>> {
        self.json
            .get("entries")
            .and_then(|e| e.get(label))
            .and_then(Value::as_object)
    }

    /// The imports: imported policy ID and import (`entries`, `transitiveImports`).
    pub fn imports(&self) -> impl Iterator<Item = (&str, &Map<String, Value>)> {
        objects(self.json.get("imports"))
    }

    pub fn has_imports(&self) -> bool {
        self.imports().next().is_some()
    }
}

pub(crate) fn objects(value: Option<&Value>) -> impl Iterator<Item = (&str, &Map<String, Value>)> {
    value
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.as_str(), v.as_object()?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use twinwire_protocol::exceptions::policies as exc;
    use twinwire_protocol::DittoError;

    fn id() -> PolicyId {
        parse_policy_id("org.eclipse.ditto:the_policy_id").unwrap()
    }

    fn code(r: Result<impl std::fmt::Debug, DittoError>) -> String {
        r.unwrap_err().code().to_owned()
    }

    #[test]
    fn a_written_policy_takes_dittos_form() {
        let written = json!({
            "entries": {"owner": {
                "references": [],
                "__schemaVersion": 2,
                "resources": {"thing:": {"revoke": [], "grant": ["READ", "WRITE", "READ"]}},
                "subjects": {"nginx:ditto": {"type": "user", "__schemaVersion": 2, "expiry": "2099-12-31T23:59:59+01:00"}},
                "unknown": 1
            }},
            "imports": {"org.eclipse.ditto:other": {}},
            "_revision": 3
        });
        let json = normalize_policy(&id(), &written).unwrap();
        assert_eq!(
            Value::Object(json),
            json!({
                "policyId": "org.eclipse.ditto:the_policy_id",
                "imports": {"org.eclipse.ditto:other": {}},
                "entries": {"owner": {
                    "subjects": {"nginx:ditto": {"type": "user", "expiry": "2099-12-31T22:59:59Z"}},
                    "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []}}
                }}
            })
        );
    }

    #[test]
    fn the_policy_id_in_the_json_must_be_the_topics() {
        let e = normalize_policy(&id(), &json!({"policyId": "org.eclipse.ditto:other"}));
        assert_eq!(code(e), "policies:id.notsettable");
    }

    #[test]
    fn subjects_need_an_issuer_a_type_and_a_real_expiry() {
        assert_eq!(
            code(normalize_subject("nocolon", &json!({"type": "x"}))),
            "policies:subjectid.invalid"
        );
        assert_eq!(
            code(normalize_subject("google:", &json!({"type": "x"}))),
            "policies:subjectid.invalid"
        );
        assert!(normalize_subject("integration:a:b", &json!({"type": "x"})).is_ok());
        assert_eq!(
            code(normalize_subject("google:x", &json!({}))),
            "json.field.missing"
        );
        let e =
            normalize_subject("google:x", &json!({"type": "x", "expiry": "tomorrow"})).unwrap_err();
        assert_eq!(
            (e.code(), e.message.as_deref()),
            (
                "policies:subjectexpiry.invalid",
                Some("Subject expiry timestamp 'tomorrow' is not valid.")
            )
        );
        let e = normalize_subject(
            "google:x",
            &json!({"type": "x", "announcement": {"beforeExpiry": "soon"}}),
        );
        assert_eq!(code(e), "policies:subjectannouncement.invalid");
        assert!(normalize_subject(
            "google:x",
            &json!({"type": "x", "announcement": {"beforeExpiry": "1h", "whenDeleted": true}})
        )
        .is_ok());
    }

    #[test]
    fn resources_are_thing_policy_or_message_with_known_permissions() {
        assert_eq!(normalize_resource_key("thing:").unwrap(), "thing:/");
        assert_eq!(
            normalize_resource_key("message:/features/f/").unwrap(),
            "message:/features/f"
        );
        assert_eq!(
            code(normalize_resource_key("feature:/x")),
            "policies:entry.invalid"
        );
        assert_eq!(code(normalize_resource_key("/x")), "policies:entry.invalid");
        let e = normalize_resource(&json!({"grant": ["READ", "DANCE"], "revoke": []})).unwrap_err();
        assert_eq!(e, exc::entry_invalid());
        assert_eq!(
            code(normalize_resource(&json!({"grant": ["READ"]}))),
            "json.field.missing"
        );
        assert_eq!(
            code(normalize_resource(&json!({"grant": "READ", "revoke": []}))),
            "json.format.invalid"
        );
        assert!(normalize_resource(&json!({"grant": ["EXECUTE"], "revoke": ["WRITE"]})).is_ok());
    }

    #[test]
    fn entries_check_labels_and_optional_fields() {
        assert_eq!(
            code(normalize_entry("imported-x", &json!({}))),
            "policies:label.invalid"
        );
        assert_eq!(
            code(normalize_entry("a\u{1}", &json!({}))),
            "policies:entry.invalid"
        );
        assert_eq!(
            normalize_entry("only-refs", &json!({"references": [{"entry": "x"}]})).unwrap(),
            json!({"subjects": {}, "resources": {}, "references": [{"entry": "x"}]})
        );
        for (field, bad) in [
            ("namespaces", json!(["com.acme", "*"])),
            ("namespaces", json!([1])),
            ("importable", json!("sometimes")),
            ("allowedAdditions", json!(["friends"])),
            ("references", json!(["x"])),
        ] {
            let e = normalize_entry("l", &json!({ field: bad }));
            assert_eq!(code(e), "policies:entry.invalid", "{field}");
        }
        assert_eq!(
            code(normalize_entry("l", &json!({"subjects": []}))),
            "json.format.invalid"
        );
        let full = json!({"allowedAdditions": ["subjects", "subjects"], "importable": "never",
            "namespaces": ["com.acme", "com.acme.*"], "resources": {}, "subjects": {},
            "references": [{"entry": "x", "import": "a:b"}]});
        assert_eq!(
            normalize_entry("l", &full).unwrap(),
            json!({"subjects": {}, "resources": {}, "namespaces": ["com.acme", "com.acme.*"],
                "importable": "never", "allowedAdditions": ["subjects"],
                "references": [{"import": "a:b", "entry": "x"}]})
        );
    }

    #[test]
    fn imports_refuse_the_policy_itself_and_too_many() {
        let me = "org.eclipse.ditto:the_policy_id";
        assert_eq!(
            code(normalize_import(me, me, &json!({}))),
            "policies:import.invalid"
        );
        assert_eq!(
            code(normalize_import(
                me,
                "a:b",
                &json!({"transitiveImports": [me]})
            )),
            "policies:import.invalid"
        );
        assert_eq!(
            code(normalize_import(
                me,
                "a:b",
                &json!({"transitiveImports": [1]})
            )),
            "policies:import.invalid"
        );
        assert_eq!(
            code(normalize_import(me, "no id", &json!({}))),
            "policies:id.invalid"
        );
        assert_eq!(
            normalize_import(me, "a:b", &json!({"transitiveImports": ["c:d"]})).unwrap(),
            json!({"entries": [], "transitiveImports": ["c:d"]})
        );
        let many: Map<String, Value> = (0..11).map(|i| (format!("a:p{i}"), json!({}))).collect();
        let e = normalize_imports(me, &Value::Object(many)).unwrap_err();
        assert_eq!(e.code(), "policies:imports.toolarge");
    }

    #[test]
    fn namespace_patterns() {
        assert!(namespace_pattern_matches("com.acme", "com.acme"));
        assert!(!namespace_pattern_matches("com.acme", "com.acme.x"));
        assert!(namespace_pattern_matches("com.acme.*", "com.acme.x"));
        assert!(!namespace_pattern_matches("com.acme.*", "com.acme"));
        assert!(!namespace_pattern_matches("com.acme.*", "com.acmex"));
        let entry = json!({"namespaces": ["com.acme"]});
        assert!(entry_applies_to_namespace(
            entry.as_object().unwrap(),
            "com.acme"
        ));
        assert!(!entry_applies_to_namespace(
            entry.as_object().unwrap(),
            "org.x"
        ));
        assert!(entry_applies_to_namespace(&Map::new(), "org.x"));
    }

    fn policy(entries: Value) -> Map<String, Value> {
        json!({"policyId": "a:b", "entries": entries})
            .as_object()
            .unwrap()
            .clone()
    }

    #[test]
    fn lockout_prevention_wants_a_permanent_unrevoked_writer() {
        let writer = json!({"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}});
        let ok =
            policy(json!({"admin": {"subjects": {"nginx:a": {"type": "t"}}, "resources": writer}}));
        assert!(keeps_a_policy_writer(&ok));
        let expiring = policy(
            json!({"admin": {"subjects": {"nginx:a": {"type": "t", "expiry": "2099-01-01T00:00:00Z"}},
            "resources": writer}}),
        );
        assert!(!keeps_a_policy_writer(&expiring));
        let revoked = policy(json!({
            "admin": {"subjects": {"nginx:a": {"type": "t"}}, "resources": writer},
            "deny": {"subjects": {"nginx:a": {"type": "other"}},
                "resources": {"policy:/": {"grant": [], "revoke": ["WRITE"]}}}}));
        assert!(!keeps_a_policy_writer(&revoked));
        let readers = policy(json!({"r": {"subjects": {"nginx:a": {"type": "t"}},
            "resources": {"policy:/": {"grant": ["READ"], "revoke": []}}}}));
        assert!(!keeps_a_policy_writer(&readers));
        let mut imports = readers.clone();
        imports.insert("imports".into(), json!({"a:c": {}}));
        assert!(
            keeps_a_policy_writer(&imports),
            "imports may bring the writer"
        );
        // The admin subject and the WRITE grant split over two entries linked by a reference.
        let split = policy(json!({
            "grants": {"subjects": {}, "resources": writer},
            "admins": {"subjects": {"nginx:a": {"type": "t"}}, "resources": {},
                "references": [{"entry": "grants"}]}}));
        assert!(keeps_a_policy_writer(&split));
        let restricted = policy(json!({
            "grants": {"subjects": {}, "resources": writer, "allowedAdditions": ["resources"]},
            "admins": {"subjects": {"nginx:a": {"type": "t"}}, "resources": {},
                "references": [{"entry": "grants"}]}}));
        assert!(
            !keeps_a_policy_writer(&restricted),
            "own subjects stripped by allowedAdditions"
        );
    }

    #[test]
    fn references_must_point_somewhere_allowed() {
        let check = |entries: Value, imports: Option<Value>| {
            let entries = entries.as_object().unwrap().clone();
            validate_references("a:b", &entries, imports.as_ref().and_then(Value::as_object))
                .err()
                .and_then(|e| e.description)
        };
        assert_eq!(
            check(json!({"a": {"references": [{"entry": "a"}]}}), None).as_deref(),
            Some("Entry must not reference itself.")
        );
        assert_eq!(
            check(
                json!({"a": {"references": [{"entry": "b"}, {"entry": "b"}]}, "b": {}}),
                None
            )
            .as_deref(),
            Some("Duplicate reference to entry 'b'.")
        );
        assert!(check(json!({"a": {"references": [{"entry": "c"}]}}), None)
            .unwrap()
            .contains("does not exist"));
        assert!(check(
            json!({"a": {"references": [{"entry": "b"}]}, "b": {"importable": "never"}}),
            None
        )
        .unwrap()
        .contains("importable=never"));
        assert!(check(
            json!({"a": {"references": [{"import": "x:y", "entry": "b"}]}}),
            None
        )
        .unwrap()
        .contains("not declared in imports"));
        assert_eq!(
            check(
                json!({"a": {"references": [{"import": "x:y", "entry": "b"}]}}),
                Some(json!({"x:y": {}}))
            ),
            None
        );
    }

    #[test]
    fn events_rebuild_the_policy_and_snapshots_keep_it() {
        let mut e = PolicyEntity::new(id());
        let event = |action, path: &str, value: Option<Value>, revision| PolicyEvent {
            action,
            path: JsonPointer::parse(path).unwrap(),
            value,
            revision,
            timestamp: format!("2026-01-01T00:00:0{revision}.000Z"),
            metadata: None,
            headers: None,
        };
        e.apply(&event(
            EventAction::Created,
            "/",
            Some(json!({"policyId": "org.eclipse.ditto:the_policy_id", "entries": {"l": {"subjects": {}, "resources": {}}}})),
            1,
        ));
        e.apply(&event(
            EventAction::Created,
            "/entries/l/resources/thing:/features/f",
            Some(json!({"grant": ["READ"], "revoke": []})),
            2,
        ));
        e.apply(&event(
            EventAction::Modified,
            "/entries/l/namespaces",
            Some(json!(["com.acme"])),
            3,
        ));
        e.apply(&event(
            EventAction::Modified,
            "/entries/l/allowedAdditions",
            Some(json!([])),
            4,
        ));
        e.apply(&event(
            EventAction::Created,
            "/imports/a:b",
            Some(json!({})),
            5,
        ));
        let p = e.policy.as_ref().unwrap();
        assert_eq!(
            Value::Object(p.json.clone()),
            json!({"policyId": "org.eclipse.ditto:the_policy_id", "imports": {"a:b": {}},
                "entries": {"l": {"subjects": {}, "resources": {"thing:/features/f": {"grant": ["READ"], "revoke": []}},
                    "namespaces": ["com.acme"], "allowedAdditions": []}}})
        );
        assert_eq!(
            (p.created.as_str(), p.modified.as_str()),
            ("2026-01-01T00:00:01.000Z", "2026-01-01T00:00:05.000Z")
        );
        assert_eq!(e.etag(), "\"rev:5\"");
        let back = PolicyEntity::from_snapshot(id(), 5, &e.snapshot_data()).unwrap();
        assert_eq!(back, e);
        e.apply(&event(EventAction::Deleted, "/", None, 6));
        assert!(!e.exists());
        assert_eq!(
            PolicyEntity::from_snapshot(id(), 6, &e.snapshot_data()).unwrap(),
            e
        );
        // A corrupt event does not panic and changes nothing but the revision.
        e.apply(&event(EventAction::Merged, "/entries/x", Some(json!(1)), 7));
        e.apply(&event(
            EventAction::Modified,
            "/nonsense",
            Some(json!(1)),
            8,
        ));
        assert!(!e.exists());
        assert_eq!(e.revision, 8);
    }

    #[test]
    fn paths_locate_keys_and_publish_with_slashes() {
        let p = JsonPointer::parse("/entries/l/resources/thing:/a/b").unwrap();
        let (resource, keys) = locate(&p).unwrap();
        assert_eq!(resource, PolicyResource::Resource);
        assert_eq!(keys, ["entries", "l", "resources", "thing:/a/b"]);
        assert_eq!(event_path(resource, &keys), p);
        let root_key = JsonPointer::parse("/entries/l/resources/thing:/").unwrap();
        let (resource, keys) = locate(&root_key).unwrap();
        assert_eq!(keys[3], "thing:/");
        assert_eq!(
            event_path(resource, &keys).to_string(),
            "/entries/l/resources/thing:/"
        );
        let (_, keys) = locate(&JsonPointer::parse("/import/a:b").unwrap()).unwrap();
        assert_eq!(keys, ["imports", "a:b"]);
    }
}
