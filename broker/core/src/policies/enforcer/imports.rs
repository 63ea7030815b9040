//! Policy imports and entry references resolved into the one list of entries a policy enforces,
//! as Ditto's `Policy.withResolvedImports` and `PolicyImporter` resolve them (docs/basic-policy.md,
//! "Policy imports", "Entry references", "Transitive import resolution"). Pure: imported policies
//! come from the caller's loader; no trie, no checks, no namespace filter.
//!
//! - An import yields the imported policy's entries that are `importable: implicit`, plus the
//!   `explicit` ones its `entries` lists, never the `never` ones, under the label
//!   `imported-<policyId>-<label>` and without their references.
//! - Before that, the imported policy's own references are resolved, against its own entries
//!   and, when the import lists `transitiveImports`, against the entries of those of its imports
//!   (recursively, each level with its own `transitiveImports`; a visited set breaks cycles and
//!   more than [`MAX_TRANSITIVE_DEPTH`] levels is an error, as in Ditto).
//! - References resolve one level deep: an import reference finds the imported entry, a local
//!   one the raw entry of the same policy. Subjects (first one of an ID wins), resources (grants
//!   and revokes united) and namespaces add up; `allowedAdditions` of the referenced entries
//!   strip the referencing entry's own additions; `importable: never` targets are skipped.

use super::model::{
    parse_policy, Additions, Entry, Import, Importable, PolicyDoc, Resource, Subject,
};
use super::EnforcerError;
use serde_json::Value;
use std::collections::HashMap;
use std::rc::Rc;

/// Ditto's `PolicyImporter.MAX_TRANSITIVE_RESOLUTION_DEPTH`.
pub const MAX_TRANSITIVE_DEPTH: usize = 10;

/// Imports resolved while compiling one policy, counting every import of every level. Ditto has
/// no such cap: the visited set only grows along one chain, so with up to 10 imports a policy
/// and 10 levels a crafted graph could ask for 10^10 resolutions. Real graphs stay far below.
pub const MAX_IMPORT_RESOLUTIONS: usize = 10_000;

/// Loads and reads imported policies once each, and remembers which were asked for.
pub(super) struct Loader<'a> {
    load: &'a dyn Fn(&str) -> Option<Value>,
    now_millis: i64,
    /// The policy being compiled, named in errors.
    policy: String,
    cache: HashMap<String, Option<Rc<PolicyDoc>>>,
    resolutions: usize,
    /// Every policy ID asked for, in first-asked order: a change to any of them (including one
    /// that did not exist yet) changes the compiled result.
    pub(super) asked: Vec<String>,
}

impl<'a> Loader<'a> {
    pub(super) fn new(
        load: &'a dyn Fn(&str) -> Option<Value>,
        now_millis: i64,
        policy: &str,
    ) -> Self {
        Loader {
            load,
            now_millis,
            policy: policy.to_owned(),
            cache: HashMap::new(),
            resolutions: 0,
            asked: Vec::new(),
        }
    }

    fn get(&mut self, id: &str) -> Result<Option<Rc<PolicyDoc>>, EnforcerError> {
        if let Some(doc) = self.cache.get(id) {
            return Ok(doc.clone());
        }
        self.asked.push(id.to_owned());
        let doc = match (self.load)(id) {
            None => None,
            Some(value) => {
                let doc = parse_policy(&value, self.now_millis).map_err(|e| match e {
                    EnforcerError::Invalid {
                        policy,
                        location,
                        problem,
                    } => EnforcerError::Invalid {
                        policy: if policy.is_empty() {
                            id.to_owned()
                        } else {
                            policy
                        },
                        location,
                        problem,
                    },
                    other => other,
                })?;
                Some(Rc::new(doc))
            }
        };
        self.cache.insert(id.to_owned(), doc.clone());
        Ok(doc)
    }

    fn count_resolution(&mut self) -> Result<(), EnforcerError> {
        self.resolutions += 1;
        if self.resolutions > MAX_IMPORT_RESOLUTIONS {
            return Err(EnforcerError::TooManyImports {
                policy: self.policy.clone(),
                max: MAX_IMPORT_RESOLUTIONS,
            });
        }
        Ok(())
    }
}

/// The entries `policy` enforces: its own, with references resolved, then the imported ones.
pub(super) fn resolve(
    policy: &PolicyDoc,
    loader: &mut Loader,
) -> Result<Vec<Entry>, EnforcerError> {
    let resolved = if !policy.imports.is_empty() {
        let merged = merge_imported(policy.entries.clone(), &policy.imports, loader, 0, &[])?;
        resolve_references(policy, merged)
    } else if policy.entries.iter().any(|e| !e.references.is_empty()) {
        resolve_references(policy, policy.entries.clone())
    } else {
        return Ok(policy.entries.clone());
    };
    // Ditto: `policy.toBuilder().setAll(resolved)`: same label replaces, new labels are added.
    let mut entries = policy.entries.clone();
    for entry in resolved {
        match entries.iter_mut().find(|e| e.label == entry.label) {
            Some(existing) => *existing = entry,
            None => entries.push(entry),
        }
    }
    Ok(entries)
}

pub(super) fn imported_label(policy_id: &str, label: &str) -> String {
    format!("imported-{policy_id}-{label}")
}

/// `base` followed by the entries of each import; for a label seen twice the first one stays.
fn merge_imported(
    base: Vec<Entry>,
    imports: &[Import],
    loader: &mut Loader,
    depth: usize,
    visited: &[String],
) -> Result<Vec<Entry>, EnforcerError> {
    let mut result = base;
    for import in imports {
        for entry in resolve_import(import, loader, depth, visited)? {
            if !result.iter().any(|e| e.label == entry.label) {
                result.push(entry);
            }
        }
    }
    Ok(result)
}

fn resolve_import(
    import: &Import,
    loader: &mut Loader,
    depth: usize,
    visited: &[String],
) -> Result<Vec<Entry>, EnforcerError> {
    loader.count_resolution()?;
    let Some(imported) = loader.get(&import.policy_id)? else {
        // A missing imported policy contributes nothing, as in Ditto.
        return Ok(Vec::new());
    };
    let entries = if import.transitive.is_empty() {
        imported.entries.clone()
    } else {
        resolve_transitive(&imported, &import.transitive, loader, depth, visited)?
    };
    Ok(resolve_references(&imported, entries)
        .into_iter()
        .filter(|e| match e.importable {
            Importable::Implicit => true,
            Importable::Explicit => import.entries.contains(&e.label),
            Importable::Never => false,
        })
        .map(|e| Entry {
            label: imported_label(&import.policy_id, &e.label),
            references: Vec::new(),
            ..e
        })
        .collect())
}

/// The imported policy's entries plus those of its imports named in `transitive` (and not yet
/// visited on this chain), so its references can reach them.
fn resolve_transitive(
    imported: &PolicyDoc,
    transitive: &[String],
    loader: &mut Loader,
    depth: usize,
    visited: &[String],
) -> Result<Vec<Entry>, EnforcerError> {
    if depth >= MAX_TRANSITIVE_DEPTH {
        return Err(EnforcerError::ImportsTooDeep {
            policy: imported.id.clone(),
            max: MAX_TRANSITIVE_DEPTH,
        });
    }
    let mut next_visited = visited.to_vec();
    for id in transitive {
        if !next_visited.contains(id) {
            next_visited.push(id.clone());
        }
    }
    let fresh = &next_visited[visited.len()..];
    let imports: Vec<Import> = imported
        .imports
        .iter()
        .filter(|i| fresh.contains(&i.policy_id))
        .cloned()
        .collect();
    if imports.is_empty() {
        // IDs that match no import of the imported policy are ignored (forward references).
        return Ok(imported.entries.clone());
    }
    merge_imported(
        imported.entries.clone(),
        &imports,
        loader,
        depth + 1,
        &next_visited,
    )
}

/// Replaces each entry of `policy` that has references by its merge with what they point at.
fn resolve_references(policy: &PolicyDoc, resolved: Vec<Entry>) -> Vec<Entry> {
    let mut result = resolved.clone();
    for own in policy.entries.iter().filter(|e| !e.references.is_empty()) {
        let merged = resolve_entry_references(policy, &resolved, own);
        if let Some(at) = result.iter().position(|e| e == own) {
            result.remove(at);
        }
        result.push(merged);
    }
    result
}

fn resolve_entry_references(policy: &PolicyDoc, resolved: &[Entry], own: &Entry) -> Entry {
    let mut resources: Vec<Resource> = Vec::new();
    let mut subjects: Vec<Subject> = Vec::new();
    let mut namespaces: Vec<String> = Vec::new();
    // The strictest `allowedAdditions` among the referenced entries that declare one.
    let mut allowed: Option<Additions> = None;

    for reference in &own.references {
        let target = match &reference.import {
            Some(policy_id) => {
                let label = imported_label(policy_id, &reference.entry);
                resolved.iter().find(|e| e.label == label)
            }
            None => policy.entry(&reference.entry),
        };
        // A missing target is skipped (Ditto logs it); so is one that is never importable.
        let Some(target) = target.filter(|t| t.importable != Importable::Never) else {
            continue;
        };
        merge_resources(&mut resources, &target.resources);
        merge_namespaces(&mut namespaces, target.namespaces.as_deref().unwrap_or(&[]));
        merge_subjects(&mut subjects, &target.subjects);
        if let Some(additions) = target.allowed_additions {
            allowed = Some(allowed.map_or(additions, |a| a.intersect(additions)));
        }
    }

    let permit = allowed.unwrap_or(Additions {
        subjects: true,
        resources: true,
        namespaces: true,
    });
    if permit.resources {
        merge_resources(&mut resources, &own.resources);
    }
    if permit.subjects {
        merge_subjects(&mut subjects, &own.subjects);
    }
    if permit.namespaces {
        merge_namespaces(&mut namespaces, own.namespaces.as_deref().unwrap_or(&[]));
    }
    Entry {
        label: own.label.clone(),
        subjects,
        resources,
        namespaces: (!namespaces.is_empty()).then_some(namespaces),
        importable: own.importable,
        allowed_additions: allowed,
        references: own.references.clone(),
    }
}

/// Same resource key: grants and revokes united (a referenced revoke always survives).
fn merge_resources(into: &mut Vec<Resource>, more: &[Resource]) {
    for resource in more {
        match into.iter_mut().find(|r| r.same_key(resource)) {
            Some(existing) => {
                existing.grant = existing.grant.union(resource.grant);
                existing.revoke = existing.revoke.union(resource.revoke);
            }
            None => into.push(resource.clone()),
        }
    }
}

/// The first subject of an ID wins, with its expiry.
fn merge_subjects(into: &mut Vec<Subject>, more: &[Subject]) {
    for subject in more {
        if !into.iter().any(|s| s.id == subject.id) {
            into.push(subject.clone());
        }
    }
}

fn merge_namespaces(into: &mut Vec<String>, more: &[String]) {
    for namespace in more {
        if !into.contains(namespace) {
            into.push(namespace.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::cell::RefCell;

    fn resolve_with(policy: Value, others: &[Value]) -> Result<Vec<Entry>, EnforcerError> {
        let others: HashMap<String, Value> = others
            .iter()
            .map(|p| (p["policyId"].as_str().unwrap().to_owned(), p.clone()))
            .collect();
        let load = move |id: &str| others.get(id).cloned();
        let doc = parse_policy(&policy, 0)?;
        resolve(&doc, &mut Loader::new(&load, 0, &doc.id))
    }

    /// (label, subject IDs, resources as "type:/path +grants -revokes", namespaces)
    type Summary = (String, Vec<String>, Vec<String>, Option<Vec<String>>);

    fn summary(entries: &[Entry]) -> Vec<Summary> {
        entries
            .iter()
            .map(|e| {
                (
                    e.label.clone(),
                    e.subjects.iter().map(|s| s.id.clone()).collect(),
                    e.resources
                        .iter()
                        .map(|r| {
                            let perms = |p: super::super::model::Perms| {
                                (0..3)
                                    .filter(|i| p.contains(*i))
                                    .map(|i| &super::super::model::Perms::NAMES[i][..1])
                                    .collect::<String>()
                            };
                            format!(
                                "{}:/{} +{} -{}",
                                r.kind,
                                r.path.join("/"),
                                perms(r.grant),
                                perms(r.revoke)
                            )
                        })
                        .collect(),
                    e.namespaces.clone(),
                )
            })
            .collect()
    }

    fn labels(entries: &[Entry]) -> Vec<&str> {
        entries.iter().map(|e| e.label.as_str()).collect()
    }

    fn entry(subject: &str, resource: &str, extra: Value) -> Value {
        let mut e = json!({
            "subjects": {subject: {"type": "t"}},
            "resources": {resource: {"grant": ["READ"], "revoke": []}}
        });
        e.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        e
    }

    #[test]
    fn importable_implicit_explicit_never() {
        let imported = json!({"policyId": "ns:lib", "entries": {
            "DEFAULT": entry("a:default", "thing:/a", json!({})),
            "IMPLICIT": entry("a:implicit", "thing:/b", json!({"importable": "implicit"})),
            "EXPLICIT": entry("a:explicit", "thing:/c", json!({"importable": "explicit"})),
            "NEVER": entry("a:never", "thing:/d", json!({"importable": "never"}))
        }});
        let own = |import: Value| {
            json!({"policyId": "ns:own", "entries": {"owner": entry("a:owner", "policy:/", json!({}))},
                   "imports": {"ns:lib": import}})
        };
        let entries = resolve_with(own(json!({})), std::slice::from_ref(&imported)).unwrap();
        assert_eq!(
            labels(&entries),
            [
                "owner",
                "imported-ns:lib-DEFAULT",
                "imported-ns:lib-IMPLICIT"
            ]
        );
        let entries =
            resolve_with(own(json!({"entries": ["EXPLICIT", "NEVER"]})), &[imported]).unwrap();
        assert_eq!(
            labels(&entries),
            [
                "owner",
                "imported-ns:lib-DEFAULT",
                "imported-ns:lib-IMPLICIT",
                "imported-ns:lib-EXPLICIT"
            ]
        );
    }

    #[test]
    fn missing_import_contributes_nothing_and_invalid_one_fails() {
        let own = json!({"policyId": "ns:own", "entries": {}, "imports": {"ns:gone": {}}});
        assert!(resolve_with(own.clone(), &[]).unwrap().is_empty());
        let broken = json!({"policyId": "ns:gone", "entries": {"x": {"subjects": {"a:b": {}}}}});
        match resolve_with(own, &[broken]).unwrap_err() {
            EnforcerError::Invalid {
                policy, location, ..
            } => {
                assert_eq!(policy, "ns:gone");
                assert_eq!(location, "/entries/x/subjects/a:b/type");
            }
            other => panic!("{other:?}"),
        }
    }

    /// docs/basic-policy.md, "Example: role-based access template for a power plant", with an
    /// own resource on the operator entry that the template's `allowedAdditions` strips.
    #[test]
    fn references_with_allowed_additions() {
        let template = json!({"policyId": "energy-corp:power-plant-roles", "entries": {
            "operator": {"subjects": {}, "resources": {
                "thing:/features/reactor": {"grant": ["READ", "WRITE"], "revoke": []},
                "thing:/features/turbine": {"grant": ["READ", "WRITE"], "revoke": []}
            }, "importable": "implicit", "allowedAdditions": ["subjects"]},
            "safetyInspector": {"subjects": {}, "resources": {
                "thing:/features/reactor": {"grant": ["READ"], "revoke": []}
            }, "importable": "implicit", "allowedAdditions": ["subjects"]}
        }});
        let plant = json!({"policyId": "energy-corp:plant-42-policy",
        "imports": {"energy-corp:power-plant-roles": {}},
        "entries": {
            "operator": {
                "references": [{"import": "energy-corp:power-plant-roles", "entry": "operator"}],
                "subjects": {"integration:plant42-operators": {"type": "operator-group"}},
                "resources": {"thing:/features/secret": {"grant": ["READ"], "revoke": []}}
            },
            "safetyInspector": {
                "references": [{"import": "energy-corp:power-plant-roles", "entry": "safetyInspector"}],
                "subjects": {"oauth2:frank.grimes@energy-corp.com": {"type": "employee"}}
            },
            "admin": {
                "subjects": {"oauth2:plant-42-admin@energy-corp.com": {"type": "employee"}},
                "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}
            }
        }});
        let entries = resolve_with(plant, &[template]).unwrap();
        let s = summary(&entries);
        assert_eq!(
            s[0],
            (
                "operator".into(),
                vec!["integration:plant42-operators".into()],
                vec![
                    "thing:/features/reactor +RW -".into(),
                    "thing:/features/turbine +RW -".into()
                ],
                None
            ),
            "own resource stripped, own subject kept"
        );
        assert_eq!(
            s[1].1,
            ["oauth2:frank.grimes@energy-corp.com"],
            "safetyInspector subjects"
        );
        assert_eq!(s[1].2, ["thing:/features/reactor +R -"]);
        assert_eq!(s[2].0, "admin");
        // The template entries themselves come along (without subjects they grant nothing).
        assert_eq!(
            labels(&entries)[3..],
            [
                "imported-energy-corp:power-plant-roles-operator",
                "imported-energy-corp:power-plant-roles-safetyInspector"
            ]
        );
    }

    #[test]
    fn local_references_one_level_and_never_skipped() {
        let policy = json!({"policyId": "ns:p", "entries": {
            "a": {"references": [{"entry": "b"}], "subjects": {"x:a": {"type": "t"}},
                  "resources": {"thing:/a": {"grant": ["READ"], "revoke": ["WRITE"]}}},
            "b": {"references": [{"entry": "a"}], "subjects": {"x:b": {"type": "t"}},
                  "resources": {"thing:/a": {"grant": ["WRITE"], "revoke": []}},
                  "namespaces": ["com.b"]},
            "c": {"references": [{"entry": "hidden"}, {"entry": "nope"}], "subjects": {"x:c": {"type": "t"}}},
            "hidden": {"subjects": {"x:h": {"type": "t"}},
                       "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}, "importable": "never"}
        }});
        let s = summary(&resolve_with(policy, &[]).unwrap());
        // Each side sees only the other's raw content.
        assert_eq!(
            s[0],
            (
                "a".into(),
                vec!["x:b".into(), "x:a".into()],
                vec!["thing:/a +RW -W".into()],
                Some(vec!["com.b".into()])
            )
        );
        assert_eq!(
            s[1],
            (
                "b".into(),
                vec!["x:a".into(), "x:b".into()],
                vec!["thing:/a +RW -W".into()],
                Some(vec!["com.b".into()])
            )
        );
        assert_eq!(s[2], ("c".into(), vec!["x:c".into()], vec![], None));
    }

    fn fleet_roles() -> Value {
        json!({"policyId": "acme:fleet-roles", "entries": {"driver": {
            "subjects": {},
            "resources": {
                "thing:/features/location": {"grant": ["READ"], "revoke": []},
                "thing:/features/fuel": {"grant": ["READ"], "revoke": []},
                "message:/features/fuel/inbox": {"grant": ["WRITE"], "revoke": []}
            },
            "namespaces": ["acme.vehicle"], "allowedAdditions": ["subjects"], "importable": "implicit"
        }}})
    }

    fn fleet_west() -> Value {
        json!({"policyId": "acme:fleet-west", "imports": {"acme:fleet-roles": {}}, "entries": {"driver": {
            "references": [{"import": "acme:fleet-roles", "entry": "driver"}],
            "subjects": {"oauth2:alice@acme.com": {"type": "employee"}, "oauth2:bob@acme.com": {"type": "employee"}}
        }}})
    }

    fn truck(import: Value) -> Value {
        json!({"policyId": "acme.vehicle:truck-42", "imports": {"acme:fleet-west": import}, "entries": {
            "driver": {"references": [{"import": "acme:fleet-west", "entry": "driver"}],
                       "subjects": {"oauth2:charlie@acme.com": {"type": "temp-driver"}}},
            "owner": {"subjects": {"oauth2:fleet-admin@acme.com": {"type": "admin"}},
                      "resources": {"policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}}
        }})
    }

    /// docs/basic-policy.md, "Use case: template-based policy hierarchies".
    #[test]
    fn transitive_imports_reach_the_template() {
        let entries = resolve_with(
            truck(json!({"transitiveImports": ["acme:fleet-roles"]})),
            &[fleet_roles(), fleet_west()],
        )
        .unwrap();
        let s = summary(&entries);
        assert_eq!(
            s[0],
            (
                "driver".into(),
                vec![
                    "oauth2:alice@acme.com".into(),
                    "oauth2:bob@acme.com".into(),
                    "oauth2:charlie@acme.com".into()
                ],
                vec![
                    "thing:/features/location +R -".into(),
                    "thing:/features/fuel +R -".into(),
                    "message:/features/fuel/inbox +W -".into()
                ],
                Some(vec!["acme.vehicle".into()])
            )
        );
        assert_eq!(
            labels(&entries),
            [
                "driver",
                "owner",
                "imported-acme:fleet-west-imported-acme:fleet-roles-driver",
                // Resolving its references moved it behind (Ditto: remove, then add, to a set).
                "imported-acme:fleet-west-driver",
            ]
        );

        // Without transitiveImports fleet-west's reference cannot reach the template: the
        // driver gets the three subjects and no resources.
        let entries = resolve_with(truck(json!({})), &[fleet_roles(), fleet_west()]).unwrap();
        let s = summary(&entries);
        assert_eq!(s[0].1.len(), 3);
        assert!(s[0].2.is_empty());
        assert_eq!(s[0].3, None);
    }

    #[test]
    fn import_cycles_end_and_depth_is_bounded() {
        // a → b (transitive c), b → c (transitive b), c → b (transitive c): the visited set ends it.
        let b = json!({"policyId": "ns:b", "imports": {"ns:c": {"transitiveImports": ["ns:b"]}},
                       "entries": {"e": entry("x:b", "thing:/b", json!({}))}});
        let c = json!({"policyId": "ns:c", "imports": {"ns:b": {"transitiveImports": ["ns:c"]}},
                       "entries": {"e": entry("x:c", "thing:/c", json!({}))}});
        let a = json!({"policyId": "ns:a", "imports": {"ns:b": {"transitiveImports": ["ns:c"]}}, "entries": {}});
        let calls = RefCell::new(0);
        let others: HashMap<&str, Value> = [("ns:b", b), ("ns:c", c)].into_iter().collect();
        let load = |id: &str| {
            *calls.borrow_mut() += 1;
            others.get(id).cloned()
        };
        let doc = parse_policy(&a, 0).unwrap();
        let mut loader = Loader::new(&load, 0, "ns:a");
        let entries = resolve(&doc, &mut loader).unwrap();
        assert!(entries.iter().any(|e| e.label == "imported-ns:b-e"));
        assert_eq!(*calls.borrow(), 2, "each policy loaded once");
        assert_eq!(loader.asked, ["ns:b", "ns:c"]);

        // A chain p0 → p1 → … → p12, each import whitelisting the next level.
        let chain: Vec<Value> = (0..13)
            .map(|i| {
                json!({"policyId": format!("ns:p{i}"),
                       "imports": {format!("ns:p{}", i + 1): {"transitiveImports": [format!("ns:p{}", i + 2)]}},
                       "entries": {"e": entry("x:y", "thing:/", json!({}))}})
            })
            .collect();
        match resolve_with(chain[0].clone(), &chain[1..]).unwrap_err() {
            EnforcerError::ImportsTooDeep { max, .. } => assert_eq!(max, MAX_TRANSITIVE_DEPTH),
            other => panic!("{other:?}"),
        }
        // Nine levels below the first import are fine.
        let mut short = chain[..11].to_vec();
        short[10]["imports"] = json!({});
        assert!(resolve_with(short[0].clone(), &short[1..]).is_ok());
    }

    #[test]
    fn wide_graphs_hit_the_resolution_cap() {
        // Two policies a level, each importing both of the next level and whitelisting both of
        // the level after: the visited set only grows along a chain, so this takes about 2^11
        // resolutions, which Ditto would do too, and which stay below the cap.
        let name = |side: &str, level: usize| format!("ns:{side}{level}");
        let import = |level: usize| {
            let mut imports = serde_json::Map::new();
            for side in ["l", "r"] {
                imports.insert(
                    name(side, level),
                    json!({"transitiveImports": [name("l", level + 1), name("r", level + 1)]}),
                );
            }
            Value::Object(imports)
        };
        let policies: Vec<Value> = (0..10)
            .flat_map(|level| {
                ["l", "r"].map(|side| {
                    json!({"policyId": name(side, level), "imports": import(level + 1), "entries": {}})
                })
            })
            .collect();
        let root = json!({"policyId": "ns:root", "imports": import(0), "entries": {}});
        assert!(resolve_with(root, &policies).is_ok());

        // Four a level over seven levels: 4^7 resolutions, stopped by the cap.
        let load = |id: &str| {
            let (level, n) = id.trim_start_matches("ns:q").split_once('-')?;
            let (level, n): (usize, usize) = (level.parse().ok()?, n.parse().ok()?);
            let id_of = |level: usize, n: usize| format!("ns:q{level}-{n}");
            let children = |level: usize, n: usize| (1..=4).map(move |k| (level + 1, 4 * n + k));
            let mut imports = serde_json::Map::new();
            if level < 7 {
                for (l, c) in children(level, n) {
                    let deeper: Vec<String> = if l < 7 {
                        children(l, c).map(|(l2, c2)| id_of(l2, c2)).collect()
                    } else {
                        Vec::new()
                    };
                    imports.insert(id_of(l, c), json!({"transitiveImports": deeper}));
                }
            }
            Some(json!({"policyId": id, "imports": imports, "entries": {}}))
        };
        let top = json!({"policyId": "ns:top", "entries": {},
            "imports": {"ns:q0-0": {"transitiveImports": ["ns:q1-1", "ns:q1-2", "ns:q1-3", "ns:q1-4"]}}});
        let doc = parse_policy(&top, 0).unwrap();
        match resolve(&doc, &mut Loader::new(&load, 0, "ns:top")).unwrap_err() {
            EnforcerError::TooManyImports { policy, max } => {
                assert_eq!((policy.as_str(), max), ("ns:top", MAX_IMPORT_RESOLUTIONS));
            }
            other => panic!("{other:?}"),
        }
    }
}
