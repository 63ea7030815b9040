//! The compiled enforcer of one policy (docs/basic-policy.md, issue 4 items 3, 5 and 7): the
//! policy's imports and references resolved, its entries filtered to a namespace, compiled once
//! into a trie that answers "may these subjects have permission P on resource type T at path X"
//! in time proportional to the depth of X, and that cuts a JSON value down to what they may
//! READ. Pure and synchronous: no I/O, no clock (the caller passes `now_millis`), no locks. An
//! [`Enforcer`] is immutable and `Send + Sync`: build it once per policy revision (and
//! namespace), share it through an `Arc`, rebuild it at [`Enforcer::next_expiry_millis`] and
//! when one of [`Enforcer::imported_policy_ids`] changes.
//!
//! - [`model`]: the policy JSON read into entries and imports; expired subjects left out.
//! - [`imports`]: imports, transitive imports and entry references resolved into entries.
//! - [`trie`]: the weighted grant/revoke trie and its unrestricted and partial checks.
//! - [`view`]: the READ view of a JSON value.
//!
//! It mirrors Ditto's default enforcer, `TrieBasedPolicyEnforcer` with `PolicyTrie`,
//! `GrantRevokeIndex` and `PermissionSubjectsMap` (policies/model/…/enforcers/trie), fed the
//! way `PolicyEnforcer` feeds it: `Policy.withResolvedImports` and `PolicyImporter` for imports
//! and references, `forNamespace` for entry namespaces, `PolicyEnforcers.defaultEvaluator`
//! dropping entries without subjects or resources. Where it differs from Ditto on purpose, the
//! item says so (look for "Ditto").

mod imports;
mod model;
mod trie;
mod view;

use serde_json::{Map, Value};
use std::fmt;
use trie::{Scope, Trie};
use twinwire_protocol::JsonPointer;

pub use imports::{MAX_IMPORT_RESOLUTIONS, MAX_TRANSITIVE_DEPTH};

/// A permission a policy grants or revokes on a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Permission {
    Read,
    Write,
    /// Policy actions (`policy:/entries/{label}/actions/{action}`) and live messages.
    Execute,
}

impl Permission {
    /// The name a policy uses: `READ`, `WRITE`, `EXECUTE`.
    pub fn as_str(self) -> &'static str {
        model::Perms::NAMES[self.index()]
    }

    /// The permission a policy names, exactly as written (`READ`, not `read`).
    pub fn from_name(name: &str) -> Option<Permission> {
        [Permission::Read, Permission::Write, Permission::Execute]
            .into_iter()
            .find(|p| p.as_str() == name)
    }

    fn index(self) -> usize {
        match self {
            Permission::Read => 0,
            Permission::Write => 1,
            Permission::Execute => 2,
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Top-level fields of a retrieved thing that anyone with READ somewhere in it sees, whatever
/// the policy says of them: the identity and audit fields (Ditto's
/// `THING_QUERY_COMMAND_RESPONSE_ALLOWLIST` in `ThingCommandEnforcement`).
pub const THING_ALLOWLIST: [&str; 5] = [
    "thingId",
    "_namespace",
    "_revision",
    "_modified",
    "_created",
];

/// The same for a retrieved policy (`POLICY_QUERY_COMMAND_RESPONSE_ALLOWLIST`).
pub const POLICY_ALLOWLIST: [&str; 1] = ["policyId"];

/// Why a policy does not compile. A policy that does not compile grants nothing: the owner of
/// the entity should answer as Ditto does for an entity whose policy cannot be enforced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnforcerError {
    /// The policy, or one it imports, is not a policy Ditto would store.
    #[error("policy '{policy}' is invalid at {location}: {problem}")]
    Invalid {
        /// The `policyId` of the faulty policy (an imported one's ID when the fault is there).
        policy: String,
        /// A JSON pointer into that policy.
        location: String,
        problem: &'static str,
    },

    /// The transitive imports go deeper than Ditto's limit (Ditto answers
    /// `policies:import.invalid`).
    #[error("the transitive imports of policy '{policy}' go deeper than {max} levels")]
    ImportsTooDeep { policy: String, max: usize },

    /// Resolving the import graph took more imports than [`MAX_IMPORT_RESOLUTIONS`].
    #[error("resolving the imports of policy '{policy}' took more than {max} imports")]
    TooManyImports { policy: String, max: usize },
}

/// A policy compiled for permission checks and READ filtering.
pub struct Enforcer {
    trie: Trie,
    policy_id: String,
    next_expiry_millis: Option<i64>,
    imported_policy_ids: Vec<String>,
}

impl Enforcer {
    /// Compiles `policy` (its JSON as Ditto writes it).
    ///
    /// - `namespace`: the namespace of the thing to enforce for: entries whose `namespaces`
    ///   match none of it are left out. `None` keeps every entry, as Ditto does for policy
    ///   commands (it filters by namespace only when enforcing things).
    /// - `now_millis`: subjects whose `expiry` is at or before it are left out, as if Ditto had
    ///   already deleted them.
    /// - `imports`: the current JSON of a policy by ID (`None`: it does not exist), asked once
    ///   per imported policy, transitive ones included.
    pub fn compile(
        policy: &Value,
        namespace: Option<&str>,
        now_millis: i64,
        imports: &dyn Fn(&str) -> Option<Value>,
    ) -> Result<Enforcer, EnforcerError> {
        let doc = model::parse_policy(policy, now_millis)?;
        let mut loader = imports::Loader::new(imports, now_millis, &doc.id);
        let entries = imports::resolve(&doc, &mut loader)?;
        let effective: Vec<&model::Entry> = entries
            .iter()
            .filter(|e| namespace.is_none_or(|ns| e.applies_to_namespace(ns)))
            .filter(|e| !e.subjects.is_empty() && !e.resources.is_empty())
            .collect();
        let next_expiry_millis = effective
            .iter()
            .flat_map(|e| e.subjects.iter().filter_map(|s| s.expiry_millis))
            .min();
        Ok(Enforcer {
            trie: Trie::build(&effective),
            policy_id: doc.id,
            next_expiry_millis,
            imported_policy_ids: loader.asked,
        })
    }

    /// Whether one of `subjects` has `permission` on `path` of `resource_type` (`thing`,
    /// `policy`, `message`) and on everything below it: granted there or above, not revoked
    /// there, above below a grant, or anywhere below (Ditto's `hasUnrestrictedPermissions`).
    /// What a modify command needs.
    pub fn has_permission<S: AsRef<str>>(
        &self,
        subjects: &[S],
        resource_type: &str,
        path: &JsonPointer,
        permission: Permission,
    ) -> bool {
        self.check(
            subjects,
            resource_type,
            path,
            permission,
            Scope::Unrestricted,
        )
    }

    /// Whether one of `subjects` has `permission` on `path` or on something below it (Ditto's
    /// `hasPartialPermissions`). What a retrieve needs before [`filter_readable`]
    /// (Self::filter_readable), and what decides whether a subscriber sees an event at all.
    pub fn has_partial_permission<S: AsRef<str>>(
        &self,
        subjects: &[S],
        resource_type: &str,
        path: &JsonPointer,
        permission: Permission,
    ) -> bool {
        self.check(subjects, resource_type, path, permission, Scope::Partial)
    }

    /// The parts of `value`, which sits at `path` of `resource_type`, that `subjects` may READ,
    /// or `None` when nothing (Ditto's `buildJsonView`, which answers an empty object there).
    ///
    /// At the root of a thing, the fields of [`THING_ALLOWLIST`] (of a policy:
    /// [`POLICY_ALLOWLIST`]) stay whenever the subjects may READ something of it, and come
    /// first, in that list's order, as in Ditto's responses.
    ///
    /// Ditto passes a retrieve's non-object value through unfiltered once the retrieve was
    /// allowed; this filters scalars and arrays as well (a scalar stays when READ holds on its
    /// path), which is what an event's value needs. For Ditto's retrieve answer: check
    /// [`has_partial_permission`](Self::has_partial_permission), then filter objects only.
    pub fn filter_readable<S: AsRef<str>>(
        &self,
        subjects: &[S],
        resource_type: &str,
        path: &JsonPointer,
        value: &Value,
    ) -> Option<Value> {
        let ids = self.trie.resolve(subjects);
        let at = self.trie.seek(keys(resource_type, path));
        // READ on the path and everything below: all of it, as the walk would find too.
        let viewed = if self.trie.allows(
            self.trie.index(at, Scope::Unrestricted),
            ids.as_slice(),
            trie::READ,
        ) {
            Some(value.clone())
        } else {
            view::View {
                trie: &self.trie,
                subjects: ids.as_slice(),
            }
            .filter(at, value)
        };

        let allowlist: &[&str] = match resource_type {
            _ if !path.is_root() => &[],
            "thing" => &THING_ALLOWLIST,
            "policy" => &POLICY_ALLOWLIST,
            _ => &[],
        };
        let Some(input) = value.as_object().filter(|_| !allowlist.is_empty()) else {
            return viewed;
        };
        let root = self.trie.seek([resource_type]);
        if !self.trie.allows(
            self.trie.index(root, Scope::Partial),
            ids.as_slice(),
            trie::READ,
        ) {
            return viewed;
        }
        // Ditto merges the allowlisted fields (first) with the filtered view.
        let present = allowlist.iter().filter(|k| input.contains_key(**k));
        // Already first, in order, unchanged (the usual thing): nothing to move.
        let in_place = match &viewed {
            Some(Value::Object(viewed)) => {
                present.clone().count() <= viewed.len()
                    && present
                        .clone()
                        .zip(viewed.iter())
                        .all(|(key, (k, v))| *key == k && input.get(k) == Some(v))
            }
            _ => false,
        };
        if in_place {
            return viewed;
        }
        let mut out = Map::new();
        for key in present {
            if let Some(v) = input.get(*key) {
                out.insert((*key).to_owned(), v.clone());
            }
        }
        if let Some(Value::Object(rest)) = viewed {
            for (k, v) in rest {
                if !out.contains_key(&k) {
                    out.insert(k, v);
                }
            }
        } else if out.is_empty() {
            return viewed;
        }
        Some(Value::Object(out))
    }

    /// The earliest `expiry` among the subjects that take part: the owner should recompile at
    /// that moment, when the subject is deleted.
    pub fn next_expiry_millis(&self) -> Option<i64> {
        self.next_expiry_millis
    }

    /// Every policy the imports asked for, transitive ones and missing ones included: when one
    /// of them changes (or appears), this enforcer is stale.
    pub fn imported_policy_ids(&self) -> &[String] {
        &self.imported_policy_ids
    }

    /// The `policyId` of the compiled policy (empty if it had none).
    pub fn policy_id(&self) -> &str {
        &self.policy_id
    }

    fn check<S: AsRef<str>>(
        &self,
        subjects: &[S],
        resource_type: &str,
        path: &JsonPointer,
        permission: Permission,
        scope: Scope,
    ) -> bool {
        let ids = self.trie.resolve(subjects);
        if ids.is_empty() {
            return false;
        }
        let at = self.trie.seek(keys(resource_type, path));
        self.trie.allows(
            self.trie.index(at, scope),
            ids.as_slice(),
            permission.index(),
        )
    }
}

fn keys<'a>(resource_type: &'a str, path: &'a JsonPointer) -> impl Iterator<Item = &'a str> {
    std::iter::once(resource_type).chain(path.segments().iter().map(String::as_str))
}

impl fmt::Debug for Enforcer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Enforcer")
            .field("policy_id", &self.policy_id)
            .field("nodes", &self.trie.node_count())
            .field("next_expiry_millis", &self.next_expiry_millis)
            .field("imported_policy_ids", &self.imported_policy_ids)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> JsonPointer {
        JsonPointer::parse(s).unwrap()
    }

    fn no_imports(_: &str) -> Option<Value> {
        None
    }

    fn compile(policy: Value) -> Enforcer {
        Enforcer::compile(&policy, Some("org.eclipse.ditto"), 0, &no_imports).unwrap()
    }

    #[test]
    fn is_send_and_sync() {
        fn shared<T: Send + Sync + 'static>() {}
        shared::<Enforcer>();
        shared::<EnforcerError>();
    }

    #[test]
    fn permission_names() {
        for p in [Permission::Read, Permission::Write, Permission::Execute] {
            assert_eq!(Permission::from_name(p.as_str()), Some(p));
        }
        assert_eq!(Permission::from_name("read"), None);
        assert_eq!(Permission::Execute.to_string(), "EXECUTE");
    }

    #[test]
    fn subjects_the_policy_does_not_name_have_nothing() {
        let e = compile(json!({"entries": {"e": {
            "subjects": {"nginx:ditto": {"type": "t"}},
            "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}}}}));
        let none: [&str; 0] = [];
        assert!(!e.has_partial_permission(&none, "thing", &p("/"), Permission::Read));
        assert!(!e.has_partial_permission(&["nginx:other"], "thing", &p("/"), Permission::Read));
        assert!(e.has_permission(
            &["nginx:other", "nginx:ditto"],
            "thing",
            &p("/a/b"),
            Permission::Read
        ));
        let owned = vec!["nginx:ditto".to_owned()];
        assert!(e.has_permission(&owned, "thing", &p("/"), Permission::Read));
        assert_eq!(
            e.filter_readable(&none, "thing", &p("/"), &json!({"thingId": "a:b"})),
            None
        );
    }

    #[test]
    fn next_expiry_and_expired_subjects() {
        let policy = json!({"entries": {
            "e": {"subjects": {
                    "a:soon": {"type": "t", "expiry": "2030-01-01T00:00:00Z"},
                    "a:later": {"type": "t", "expiry": "2031-01-01T00:00:00Z"},
                    "a:gone": {"type": "t", "expiry": "2020-01-01T00:00:00Z"}},
                  "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}},
            "no-resources": {"subjects": {"a:x": {"type": "t", "expiry": "2029-01-01T00:00:00Z"}}}
        }});
        let now = 1_767_225_600_000; // 2026-01-01T00:00:00Z
        let e = Enforcer::compile(&policy, None, now, &no_imports).unwrap();
        assert_eq!(e.next_expiry_millis(), Some(1_893_456_000_000)); // 2030-01-01
        assert!(e.has_permission(&["a:soon"], "thing", &p("/"), Permission::Read));
        assert!(!e.has_partial_permission(&["a:gone"], "thing", &p("/"), Permission::Read));
        let e = Enforcer::compile(&policy, None, 1_893_456_000_000, &no_imports).unwrap();
        assert!(!e.has_permission(&["a:soon"], "thing", &p("/"), Permission::Read));
        assert_eq!(e.next_expiry_millis(), Some(1_924_992_000_000)); // 2031-01-01
    }

    #[test]
    fn allowlist_at_the_root_only() {
        let e = compile(json!({"entries": {"e": {
            "subjects": {"a:b": {"type": "t"}},
            "resources": {
                "thing:/attributes/x": {"grant": ["READ"], "revoke": []},
                "policy:/entries": {"grant": ["READ"], "revoke": []}}}}}));
        let thing = json!({"policyId": "ns:p", "attributes": {"x": 1, "thingId": 2, "y": 3},
                           "_revision": 3, "thingId": "ns:t", "_created": "then"});
        assert_eq!(
            e.filter_readable(&["a:b"], "thing", &p("/"), &thing)
                .map(|v| serde_json::to_string(&v).unwrap()),
            Some(
                r#"{"thingId":"ns:t","_revision":3,"_created":"then","attributes":{"x":1}}"#.into()
            )
        );
        // Not at a deeper path: an attribute called thingId is not an identity field.
        assert_eq!(
            e.filter_readable(&["a:b"], "thing", &p("/attributes"), &thing["attributes"]),
            Some(json!({"x": 1}))
        );
        assert_eq!(
            e.filter_readable(&["a:c"], "thing", &p("/"), &thing),
            None,
            "nothing readable: not even the thingId"
        );
        let policy = json!({"policyId": "ns:p", "entries": {"owner": {}}, "imports": {}});
        assert_eq!(
            e.filter_readable(&["a:b"], "policy", &p("/"), &policy)
                .map(|v| serde_json::to_string(&v).unwrap()),
            Some(r#"{"policyId":"ns:p","entries":{"owner":{}}}"#.into())
        );
    }

    #[test]
    fn namespace_filter_only_when_asked() {
        let policy = json!({"entries": {"tenant": {
            "subjects": {"test:bob": {"type": "pre-authenticated"}},
            "resources": {"thing:/": {"grant": ["READ"], "revoke": []}},
            "namespaces": ["com.acme", "com.acme.*"]}}});
        let read = |ns: Option<&str>| {
            Enforcer::compile(&policy, ns, 0, &no_imports)
                .unwrap()
                .has_permission(&["test:bob"], "thing", &p("/"), Permission::Read)
        };
        assert!(read(Some("com.acme")));
        assert!(read(Some("com.acme.vehicles")));
        assert!(!read(Some("com.acmex")));
        assert!(!read(Some("org.eclipse.ditto")));
        assert!(read(None));
    }

    /// Random policies and values: the shortcut of `filter_readable` (all of it when READ holds
    /// unrestricted) gives what the walk gives, and the walk finds something only where a
    /// partial READ holds.
    #[test]
    fn shortcut_and_walk_agree() {
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed % n
        };
        let subjects = ["s:a", "s:b", "s:c"];
        let names = ["a", "b", "c"];
        for _ in 0..300 {
            let mut entries = Map::new();
            for label in 0..5 {
                let mut subs = Map::new();
                for s in subjects {
                    if next(2) == 0 {
                        subs.insert(s.into(), json!({"type": "t"}));
                    }
                }
                let mut resources = Map::new();
                for _ in 0..1 + next(3) {
                    let path: Vec<&str> = (0..next(4)).map(|_| names[next(3) as usize]).collect();
                    let (grant, revoke) = match next(3) {
                        0 => (json!(["READ"]), json!([])),
                        1 => (json!([]), json!(["READ"])),
                        _ => (json!(["READ"]), json!(["READ"])),
                    };
                    resources.insert(
                        format!("x:/{}", path.join("/")),
                        json!({"grant": grant, "revoke": revoke}),
                    );
                }
                entries.insert(
                    format!("e{label}"),
                    json!({"subjects": subs, "resources": resources}),
                );
            }
            let e = Enforcer::compile(&json!({"entries": entries}), None, 0, &no_imports).unwrap();
            fn value(next: &mut dyn FnMut(u64) -> u64, depth: u32) -> Value {
                match if depth == 0 { 0 } else { next(4) } {
                    0 => json!(next(10)),
                    1 => json!([value(next, depth - 1), value(next, depth - 1)]),
                    _ => {
                        let mut m = Map::new();
                        for k in ["a", "b", "c", "d"] {
                            if next(3) != 0 {
                                m.insert(k.into(), value(next, depth - 1));
                            }
                        }
                        Value::Object(m)
                    }
                }
            }
            let v = value(&mut next, 4);
            let who: Vec<&str> = subjects.iter().copied().filter(|_| next(2) == 0).collect();
            let path: Vec<&str> = (0..next(3)).map(|_| names[next(3) as usize]).collect();
            let pointer = JsonPointer::from_segments(path.iter().copied());
            let ids = e.trie.resolve(&who);
            let at = e.trie.seek(keys("x", &pointer));
            let walked = view::View {
                trie: &e.trie,
                subjects: ids.as_slice(),
            }
            .filter(at, &v);
            assert_eq!(e.filter_readable(&who, "x", &pointer, &v), walked);
            if walked.is_some() {
                assert!(e.has_partial_permission(&who, "x", &pointer, Permission::Read));
            }
        }
    }

    #[test]
    fn imported_policy_ids_and_errors() {
        let policy = json!({"policyId": "ns:p", "entries": {},
                            "imports": {"ns:a": {}, "ns:missing": {}}});
        let load = |id: &str| {
            (id == "ns:a").then(|| {
                json!({"policyId": "ns:a", "entries": {"e": {
                "subjects": {"a:b": {"type": "t"}},
                "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}}}})
            })
        };
        let e = Enforcer::compile(&policy, None, 0, &load).unwrap();
        assert_eq!(e.imported_policy_ids(), ["ns:a", "ns:missing"]);
        assert_eq!(e.policy_id(), "ns:p");
        assert!(e.has_permission(&["a:b"], "thing", &p("/"), Permission::Read));
        assert!(format!("{e:?}").contains("ns:p"));

        let err = Enforcer::compile(
            &json!({"policyId": "ns:p", "entries": []}),
            None,
            0,
            &no_imports,
        )
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "policy 'ns:p' is invalid at /entries: must be an object"
        );
    }
}
