//! The compiled policy: a trie of resource keys (`thing`, then the path's keys) whose nodes hold
//! weighted grant and revoke relations, built as Ditto's `TrieBasedPolicyEnforcer` and
//! `PolicyTrie` build theirs. Answers a check by walking the path (one binary search per key)
//! and looking the subjects up at one node. Built once, then read-only: no I/O, no clock.
//!
//! Ditto's four tries, kept here as three indices per node of one trie:
//!
//! 1. raw: each entry adds its subjects, at weight 0, to the grants and revokes of the node of
//!    each of its resources. Several entries at one node add up.
//! 2. `inherited` (Ditto's transitive closure): a node takes its parent's relations one weight
//!    lower (-1 a level), then its own raw ones override them: an own grant adds the pair at
//!    weight 0 and removes it from the revokes, an own revoke removes it from the grants and adds
//!    it at 0. So a deeper grant re-grants below a revoke, and where one node grants and revokes
//!    the same permission to the same subject (two entries), the revoke wins.
//! 3. `up_grant` (partial permissions): `inherited` grants plus every descendant's grants one
//!    weight higher a level up; the revokes lose the pairs now granted.
//! 4. `up_revoke` (unrestricted permissions): `inherited` revokes plus every descendant's revokes
//!    one weight higher a level up; grants as inherited.
//!
//! A check for subjects S and permission P at an index: the highest weight of a grant of P to
//! any of S must exist and be strictly above the highest weight of a revoke of P from any of S
//! (`GrantRevokeIndex.hasPermissions`). With several subjects the nearest decision wins and a
//! revoke wins a tie. An unrestricted check uses `up_revoke` of the exact node, a partial one
//! `up_grant`; a path deeper than the trie uses `inherited` of its deepest node.

use super::model::Entry;
use std::collections::BTreeMap;

/// READ, WRITE, EXECUTE: the index of a permission in the per-permission arrays.
pub(super) const PERMISSIONS: usize = 3;
pub(super) const READ: usize = 0;

/// A subject's place in the sorted subject table.
pub(super) type SubjectId = u32;

pub(super) struct Trie {
    /// Subject IDs sorted by [`key_order`]; the position is the [`SubjectId`].
    subjects: Box<[Box<str>]>,
    /// `nodes[0]` is the root, above the resource types; a child's index is above its parent's.
    nodes: Box<[Node]>,
    /// The (subject, weight) pairs of every relation, each relation a sorted run.
    pairs: Box<[Pair]>,
}

struct Node {
    /// Sorted by [`key_order`] of the key.
    children: Box<[(Box<str>, u32)]>,
    inherited: Index,
    up_grant: Index,
    up_revoke: Index,
}

/// The grants and revokes of one node in one of the tries: a run of `pairs` per permission.
#[derive(Clone, Copy, Default)]
pub(super) struct Index {
    grant: [Run; PERMISSIONS],
    revoke: [Run; PERMISSIONS],
}

#[derive(Clone, Copy, Default)]
struct Run {
    start: u32,
    len: u32,
}

#[derive(Clone, Copy)]
struct Pair {
    subject: SubjectId,
    weight: i32,
}

/// Which question a check asks.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Scope {
    /// On the path and everything below it (`hasUnrestrictedPermissions`).
    Unrestricted,
    /// On the path or anything below it (`hasPartialPermissions`).
    Partial,
}

/// Where a path ends in the trie: its own node, or the deepest node on the way.
#[derive(Clone, Copy)]
pub(super) struct Position {
    node: u32,
    exact: bool,
}

impl Position {
    pub(super) fn node(self) -> u32 {
        self.node
    }

    /// False when the path goes below the trie (then [`node`](Self::node) is its deepest node).
    pub(super) fn is_exact(self) -> bool {
        self.exact
    }
}

impl Trie {
    /// Builds the trie of `entries` (already resolved, filtered to those with subjects and
    /// resources).
    pub(super) fn build(entries: &[&Entry]) -> Trie {
        let mut subjects: Vec<&str> = entries
            .iter()
            .flat_map(|e| e.subjects.iter().map(|s| s.id.as_str()))
            .collect();
        subjects.sort_unstable_by(|a, b| key_order(a, b));
        subjects.dedup();
        let id_of: BTreeMap<&str, SubjectId> = subjects
            .iter()
            .enumerate()
            .map(|(i, s)| (*s, i as SubjectId))
            .collect();

        // 1. raw
        let mut shape = vec![Shape::default()];
        let mut raw = vec![Relations::default()];
        for entry in entries {
            let ids: Vec<SubjectId> = entry
                .subjects
                .iter()
                .filter_map(|s| id_of.get(s.id.as_str()).copied())
                .collect();
            for resource in &entry.resources {
                let keys = std::iter::once(resource.kind.as_str())
                    .chain(resource.path.iter().map(String::as_str));
                let mut node = 0;
                for key in keys {
                    node = match shape[node].children.get(key) {
                        Some(&child) => child,
                        None => {
                            let child = shape.len();
                            shape[node].children.insert(key.to_owned(), child);
                            shape.push(Shape {
                                parent: node,
                                ..Shape::default()
                            });
                            raw.push(Relations::default());
                            child
                        }
                    };
                }
                for p in 0..PERMISSIONS {
                    if resource.grant.contains(p) {
                        raw[node].grant.add(p, &ids, 0);
                    }
                    if resource.revoke.contains(p) {
                        raw[node].revoke.add(p, &ids, 0);
                    }
                }
            }
        }

        // 2. inherited: parents come before their children.
        let mut inherited: Vec<Relations> = Vec::with_capacity(shape.len());
        for (i, own) in raw.iter().enumerate() {
            let mut node = if i == 0 {
                Relations::default()
            } else {
                inherited[shape[i].parent].shifted(-1)
            };
            node.grant.merge_max(&own.grant, 0);
            node.grant.remove_all(&own.revoke);
            node.revoke.remove_all(&own.grant);
            node.revoke.merge_max(&own.revoke, 0);
            inherited.push(node);
        }

        // 3. and 4.: children come after their parents, so walk backwards.
        let mut up_grant: Vec<Rel> = inherited.iter().map(|r| r.grant.clone()).collect();
        let mut up_revoke: Vec<Rel> = inherited.iter().map(|r| r.revoke.clone()).collect();
        for i in (1..shape.len()).rev() {
            let parent = shape[i].parent;
            let (grant, revoke) = (up_grant[i].clone(), up_revoke[i].clone());
            up_grant[parent].merge_max(&grant, 1);
            up_revoke[parent].merge_max(&revoke, 1);
        }

        let mut pairs = Vec::new();
        let nodes = shape
            .into_iter()
            .enumerate()
            .map(|(i, s)| {
                let mut partial_revoke = inherited[i].revoke.clone();
                partial_revoke.remove_all(&up_grant[i]);
                let inherited_index = Index {
                    grant: inherited[i].grant.flatten(&mut pairs),
                    revoke: inherited[i].revoke.flatten(&mut pairs),
                };
                let mut children: Vec<(Box<str>, u32)> = s
                    .children
                    .into_iter()
                    .map(|(k, v)| (k.into_boxed_str(), v as u32))
                    .collect();
                children.sort_unstable_by(|(a, _), (b, _)| key_order(a, b));
                Node {
                    children: children.into_boxed_slice(),
                    inherited: inherited_index,
                    up_grant: Index {
                        grant: up_grant[i].flatten(&mut pairs),
                        revoke: partial_revoke.flatten(&mut pairs),
                    },
                    up_revoke: Index {
                        grant: inherited_index.grant,
                        revoke: up_revoke[i].flatten(&mut pairs),
                    },
                }
            })
            .collect();

        Trie {
            subjects: subjects.into_iter().map(Box::from).collect(),
            nodes,
            pairs: pairs.into_boxed_slice(),
        }
    }

    /// The IDs of those of `subjects` the policy names, sorted; the others cannot matter.
    pub(super) fn resolve<S: AsRef<str>>(&self, subjects: &[S]) -> SubjectIds {
        let mut ids = SubjectIds::default();
        for s in subjects {
            if let Ok(i) = self.subjects.binary_search_by(|k| key_order(k, s.as_ref())) {
                ids.push(i as SubjectId);
            }
        }
        ids
    }

    pub(super) fn seek<'k>(&self, keys: impl IntoIterator<Item = &'k str>) -> Position {
        let mut node = 0;
        for key in keys {
            match self.child(node, key) {
                Some(child) => node = child,
                None => return Position { node, exact: false },
            }
        }
        Position { node, exact: true }
    }

    pub(super) fn child(&self, node: u32, key: &str) -> Option<u32> {
        let children = &self.nodes[node as usize].children;
        children
            .binary_search_by(|(k, _)| key_order(k, key))
            .ok()
            .map(|i| children[i].1)
    }

    pub(super) fn has_children(&self, node: u32) -> bool {
        !self.nodes[node as usize].children.is_empty()
    }

    /// The index a check of `scope` reads at `at`.
    pub(super) fn index(&self, at: Position, scope: Scope) -> &Index {
        let node = &self.nodes[at.node as usize];
        match (at.exact, scope) {
            (false, _) => &node.inherited,
            (true, Scope::Unrestricted) => &node.up_revoke,
            (true, Scope::Partial) => &node.up_grant,
        }
    }

    /// The grants and revokes that hold at `node` itself (what a JSON view reads).
    pub(super) fn inherited(&self, node: u32) -> &Index {
        &self.nodes[node as usize].inherited
    }

    /// Ditto's `GrantRevokeIndex.hasPermissions` for one permission.
    pub(super) fn allows(&self, index: &Index, subjects: &[SubjectId], permission: usize) -> bool {
        match self.max_weight(index.grant[permission], subjects) {
            None => false,
            Some(grant) => self
                .max_weight(index.revoke[permission], subjects)
                .is_none_or(|revoke| revoke < grant),
        }
    }

    /// `hasPermissions` for several permissions at once, exactly as Ditto computes it: every
    /// permission granted to one of the subjects, the highest of those grant weights above every
    /// revoke of any of the permissions. Not the same as checking each permission alone.
    #[cfg(test)]
    pub(super) fn allows_all(
        &self,
        index: &Index,
        subjects: &[SubjectId],
        permissions: &[usize],
    ) -> bool {
        let mut grant = None;
        for p in permissions {
            match self.max_weight(index.grant[*p], subjects) {
                None => return false,
                Some(w) => grant = grant.max(Some(w)),
            }
        }
        let revoke = permissions
            .iter()
            .filter_map(|p| self.max_weight(index.revoke[*p], subjects))
            .max();
        match (grant, revoke) {
            (Some(g), Some(r)) => r < g,
            (Some(_), None) => true,
            (None, _) => false,
        }
    }

    fn max_weight(&self, run: Run, subjects: &[SubjectId]) -> Option<i32> {
        if run.len == 0 {
            return None;
        }
        let pairs = &self.pairs[run.start as usize..(run.start + run.len) as usize];
        subjects
            .iter()
            .filter_map(|s| {
                pairs
                    .binary_search_by_key(s, |p| p.subject)
                    .ok()
                    .map(|i| pairs[i].weight)
            })
            .max()
    }

    pub(super) fn node_count(&self) -> usize {
        self.nodes.len()
    }
}

/// The order of subject IDs and of a node's children: by length, then by bytes. A lookup then
/// compares mostly lengths, and compares bytes only between keys of equal length.
/// Keys are short: comparing them byte by byte here beats a call into libc's `memcmp`.
#[inline]
fn key_order(a: &str, b: &str) -> std::cmp::Ordering {
    match a.len().cmp(&b.len()) {
        std::cmp::Ordering::Equal => {
            for (x, y) in a.bytes().zip(b.bytes()) {
                if x != y {
                    return x.cmp(&y);
                }
            }
            std::cmp::Ordering::Equal
        }
        unequal => unequal,
    }
}

/// The resolved subjects of one check, inline for up to eight (an authorization context rarely
/// has more), so a check does not allocate.
#[derive(Default)]
pub(super) struct SubjectIds {
    inline: [SubjectId; 8],
    len: usize,
    spilled: Vec<SubjectId>,
}

impl SubjectIds {
    fn push(&mut self, id: SubjectId) {
        if self.len < self.inline.len() {
            self.inline[self.len] = id;
            self.len += 1;
        } else {
            if self.spilled.is_empty() {
                self.spilled.extend_from_slice(&self.inline);
            }
            self.spilled.push(id);
        }
    }

    pub(super) fn as_slice(&self) -> &[SubjectId] {
        if self.spilled.is_empty() {
            &self.inline[..self.len]
        } else {
            &self.spilled
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A node while building: its children and parent.
#[derive(Default)]
struct Shape {
    parent: usize,
    children: BTreeMap<String, usize>,
}

/// Grants and revokes of one node while building.
#[derive(Clone, Default)]
struct Relations {
    grant: Rel,
    revoke: Rel,
}

impl Relations {
    fn shifted(&self, delta: i32) -> Relations {
        Relations {
            grant: self.grant.shifted(delta),
            revoke: self.revoke.shifted(delta),
        }
    }
}

/// Ditto's `PermissionSubjectsMap`: per permission, subject → weight.
#[derive(Clone, Default)]
struct Rel([BTreeMap<SubjectId, i32>; PERMISSIONS]);

impl Rel {
    fn add(&mut self, permission: usize, subjects: &[SubjectId], weight: i32) {
        for s in subjects {
            let w = self.0[permission].entry(*s).or_insert(weight);
            *w = (*w).max(weight);
        }
    }

    /// Adds every pair of `other` shifted by `delta`, keeping the higher weight of a pair.
    fn merge_max(&mut self, other: &Rel, delta: i32) {
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            for (s, w) in theirs {
                let w = w + delta;
                mine.entry(*s).and_modify(|m| *m = (*m).max(w)).or_insert(w);
            }
        }
    }

    /// Removes every (permission, subject) pair that `other` has.
    fn remove_all(&mut self, other: &Rel) {
        for (mine, theirs) in self.0.iter_mut().zip(&other.0) {
            for s in theirs.keys() {
                mine.remove(s);
            }
        }
    }

    fn shifted(&self, delta: i32) -> Rel {
        let mut out = Rel::default();
        out.merge_max(self, delta);
        out
    }

    fn flatten(&self, pairs: &mut Vec<Pair>) -> [Run; PERMISSIONS] {
        let mut runs = [Run::default(); PERMISSIONS];
        for (run, map) in runs.iter_mut().zip(&self.0) {
            if !map.is_empty() {
                *run = Run {
                    start: pairs.len() as u32,
                    len: map.len() as u32,
                };
                // BTreeMap iterates in subject order: each run is sorted for binary search.
                pairs.extend(map.iter().map(|(s, w)| Pair {
                    subject: *s,
                    weight: *w,
                }));
            }
        }
        runs
    }
}

#[cfg(test)]
mod tests {
    //! Ditto's enforcer scenarios (policies/model/src/test/…/enforcers/testbench/scenarios,
    //! groups 1 to 5), run against this trie with Ditto's expected answers.
    use super::*;
    use crate::policies::enforcer::model::parse_policy;
    use serde_json::{json, Value};

    const W: usize = 1;

    fn trie(policy: Value) -> Trie {
        let doc = parse_policy(&policy, 0).unwrap();
        let entries: Vec<&Entry> = doc.entries.iter().collect();
        Trie::build(&entries)
    }

    /// `google:<s>` for each subject, as Ditto's scenarios name them.
    fn check(
        trie: &Trie,
        subjects: &[&str],
        path: &str,
        permissions: &[usize],
        scope: Scope,
    ) -> bool {
        let subjects: Vec<String> = subjects.iter().map(|s| format!("google:{s}")).collect();
        let ids = trie.resolve(&subjects);
        let keys: Vec<&str> = std::iter::once("thing")
            .chain(path.split('/').filter(|k| !k.is_empty()))
            .collect();
        let at = trie.seek(keys);
        trie.allows_all(trie.index(at, scope), ids.as_slice(), permissions)
    }

    /// (thing path, grants, revokes)
    type Res<'a> = (&'a str, &'a [&'a str], &'a [&'a str]);

    /// A policy from `(label, subjects, resources)`.
    fn policy(entries: &[(&str, &[&str], &[Res])]) -> Value {
        let mut out = serde_json::Map::new();
        for (label, subjects, resources) in entries {
            let subjects: serde_json::Map<String, Value> = subjects
                .iter()
                .map(|s| (format!("google:{s}"), json!({"type": "t"})))
                .collect();
            let mut res = serde_json::Map::new();
            for (path, grant, revoke) in *resources {
                let key = format!("thing:{path}");
                let entry = res
                    .entry(key)
                    .or_insert_with(|| json!({"grant": [], "revoke": []}));
                for g in *grant {
                    entry["grant"].as_array_mut().unwrap().push(json!(g));
                }
                for r in *revoke {
                    entry["revoke"].as_array_mut().unwrap().push(json!(r));
                }
            }
            out.insert(
                label.to_string(),
                json!({"subjects": subjects, "resources": res}),
            );
        }
        json!({"policyId": "benchmark:scenario", "entries": out})
    }

    type Case<'a> = (&'a str, bool, &'a [&'a str], &'a str, &'a [usize], Scope);
    use Scope::{Partial as P, Unrestricted as U};

    fn run(trie: &Trie, cases: &[Case]) {
        for (name, expected, subjects, path, permissions, scope) in cases {
            assert_eq!(
                check(trie, subjects, path, permissions, *scope),
                *expected,
                "{name}"
            );
        }
    }

    #[test]
    fn scenario1_simple() {
        let t = trie(policy(&[
            (
                "all",
                &["sid_all", "sid_write_revoke"],
                &[("/", &["READ", "WRITE"], &[])],
            ),
            (
                "revokeWrite",
                &["sid_write_revoke"],
                &[("/", &[], &["WRITE"])],
            ),
        ]));
        run(
            &t,
            &[
                ("1", true, &["sid_all"], "/", &[READ, W], U),
                ("2", false, &["sid_none"], "/", &[READ], U),
                ("3", false, &["sid_write_revoke"], "/", &[W], U),
                ("4", true, &["sid_write_revoke"], "/", &[READ], U),
            ],
        );
    }

    #[test]
    fn scenario2_nested() {
        let t = trie(policy(&[
            (
                "attributes",
                &["sid_attributes_all"],
                &[("/attributes", &["READ", "WRITE"], &[])],
            ),
            (
                "features",
                &["sid_features_read"],
                &[("/features", &["READ"], &[])],
            ),
        ]));
        let a: &[&str] = &["sid_attributes_all"];
        let f: &[&str] = &["sid_features_read"];
        run(
            &t,
            &[
                ("1", true, a, "/", &[READ], P),
                ("2", false, a, "/", &[W], U),
                ("3", true, a, "/attributes", &[READ, W], U),
                ("4", true, a, "/attributes/foo", &[READ, W], U),
                ("5", true, a, "/attributes/foo/bar", &[W], U),
                ("6", false, f, "/", &[READ], U),
                ("7", false, f, "/attributes", &[READ], U),
                ("8", false, f, "/features", &[W], U),
                ("9", false, f, "/features/foo", &[W], U),
                ("10", true, f, "/features", &[READ], U),
                ("11", true, f, "/features/foo", &[READ], U),
            ],
        );
    }

    #[test]
    fn scenario3_revoke() {
        let (ar, fr, sp) = (
            "sid_all_attributes_revoked",
            "sid_features_read_firmware_read_revoke",
            "sid_feature_foo_all_granted_special_property_revoked",
        );
        let t = trie(policy(&[
            ("all", &[ar], &[("/", &["READ", "WRITE"], &[])]),
            (
                "attributes-revoked",
                &[ar],
                &[("/attributes", &[], &["READ", "WRITE"])],
            ),
            (
                "attributes-location-read-allowed",
                &[ar],
                &[("/attributes/location", &["READ"], &[])],
            ),
            (
                "features",
                &[fr],
                &[
                    ("/features", &["READ"], &[]),
                    ("/features/firmware", &[], &["READ"]),
                ],
            ),
            (
                "features-foo",
                &[sp],
                &[("/features/foo", &["READ", "WRITE"], &[])],
            ),
            (
                "features-foo-special-property-revoked",
                &[sp],
                &[("/features/foo/properties/special", &[], &["READ", "WRITE"])],
            ),
        ]));
        run(
            &t,
            &[
                ("1", false, &[ar], "/", &[READ, W], U),
                ("2", false, &[ar], "/attributes", &[READ, W], U),
                ("3", false, &[ar], "/attributes", &[W], U),
                ("4", true, &[ar], "/attributes", &[READ], P),
                ("5", true, &[ar], "/attributes/location", &[READ], U),
                ("6", false, &[ar], "/attributes/location", &[W], U),
                ("7", true, &[fr], "/", &[READ], P),
                ("8", false, &[fr], "/", &[W], U),
                ("9", false, &[fr], "/features", &[READ], U),
                ("10", false, &[fr], "/features", &[W], U),
                ("11", false, &[fr], "/features/firmware", &[READ], U),
                ("12", false, &[fr], "/features/firmware", &[READ], P),
                ("13", true, &[sp], "/features/foo", &[READ], P),
                ("14", false, &[sp], "/features/foo", &[W], U),
                (
                    "15",
                    false,
                    &[sp],
                    "/features/foo/properties/special",
                    &[READ],
                    P,
                ),
                (
                    "16",
                    false,
                    &[sp],
                    "/features/foo/properties/special/sub",
                    &[READ],
                    P,
                ),
                (
                    "17",
                    false,
                    &[sp],
                    "/features/foo/properties/special/sub",
                    &[W],
                    U,
                ),
                ("18", true, &[sp], "/features/foo/properties/some", &[W], U),
            ],
        );
    }

    #[test]
    fn scenario4_multiple_subjects() {
        let t = trie(policy(&[
            (
                "one",
                &["sid_1", "sid_2"],
                &[
                    ("/", &["READ", "WRITE"], &[]),
                    ("/attributes", &[], &["READ", "WRITE"]),
                ],
            ),
            ("two", &["gid_3"], &[("/", &[], &["WRITE"])]),
            (
                "three",
                &["gid_3"],
                &[
                    ("/attributes", &["READ", "WRITE"], &[]),
                    ("/features", &["READ", "WRITE"], &[]),
                    ("/features/foo1", &[], &["READ"]),
                    ("/features/foo2", &[], &["WRITE"]),
                    ("/features/foo3", &[], &["READ", "WRITE"]),
                ],
            ),
            (
                "four",
                &["gid_3", "gid_4"],
                &[
                    ("/attributes/nogo1", &[], &["READ", "WRITE"]),
                    ("/attributes/nogo2", &[], &["READ", "WRITE"]),
                    ("/attributes/nogo1/go1", &["READ", "WRITE"], &[]),
                    ("/attributes/nogo2/go2", &["READ"], &[]),
                ],
            ),
            (
                "five",
                &["rid_5"],
                &[
                    ("/features/public/properties/location", &["READ"], &[]),
                    ("/features/lamp/properties/config/on", &["WRITE"], &[]),
                ],
            ),
            (
                "six_read",
                &["rid_5", "rid_6"],
                &[("/attributes/read_write", &["READ"], &[])],
            ),
            (
                "six_write",
                &["rid_6", "gid_3"],
                &[("/attributes/read_write", &["WRITE"], &[])],
            ),
            (
                "seven_write",
                &["rid_7"],
                &[("/attributes", &["WRITE"], &[])],
            ),
            (
                "eight",
                &["uid_8"],
                &[("/attributes", &["READ", "WRITE"], &[])],
            ),
            (
                "nine_write_only",
                &["gid_9"],
                &[
                    ("/attribute/nogo2/go2", &["WRITE"], &[]),
                    ("/attribute/nogo2", &[], &["READ"]),
                ],
            ),
        ]));
        let s135: &[&str] = &["sid_1", "gid_3", "rid_5"];
        let s5: &[&str] = &["rid_5"];
        let s84: &[&str] = &["uid_8", "gid_4"];
        run(
            &t,
            &[
                ("1", true, s135, "/", &[READ], P),
                ("2", false, s135, "/", &[W], U),
                ("3", false, s135, "/attributes", &[W], U),
                ("4", true, s135, "/features", &[READ], P),
                ("5", false, s135, "/features/foo1", &[READ], P),
                ("6", true, s135, "/features/foo1", &[W], U),
                ("7", false, s135, "/features/foo3", &[READ], P),
                ("8", true, s135, "/attributes/nogo1", &[READ], P),
                ("9", false, s135, "/attributes/nogo2", &[W], P),
                ("10", true, s135, "/attributes/nogo2/go2", &[READ], P),
                (
                    "11",
                    true,
                    s135,
                    "/features/public/properties/location",
                    &[READ],
                    U,
                ),
                (
                    "12",
                    true,
                    s5,
                    "/features/public/properties/location",
                    &[READ],
                    U,
                ),
                (
                    "13",
                    false,
                    s5,
                    "/features/public/properties/location",
                    &[W],
                    U,
                ),
                ("14", true, s5, "/features/public", &[READ], P),
                ("15", false, s5, "/features/lamp/properties/config", &[W], U),
                (
                    "16",
                    false,
                    s5,
                    "/features/lamp/properties/config",
                    &[READ],
                    P,
                ),
                (
                    "17",
                    true,
                    s5,
                    "/features/lamp/properties/config/on",
                    &[W],
                    P,
                ),
                (
                    "18",
                    false,
                    s5,
                    "/features/lamp/properties/config/on",
                    &[READ],
                    P,
                ),
                (
                    "19",
                    true,
                    &["rid_6"],
                    "/attributes/read_write",
                    &[READ, W],
                    P,
                ),
                (
                    "20",
                    true,
                    &["gid_3", "rid_5"],
                    "/attributes/read_write",
                    &[READ, W],
                    P,
                ),
                ("21", false, &["rid_7", "gid_4"], "/attributes", &[W], U),
                ("22", true, s84, "/attributes", &[READ], P),
                ("23", true, s84, "/attributes/nogo2", &[READ], P),
                ("24", true, s84, "/attributes/nogo2/go2", &[READ], P),
                ("25", false, s84, "/attributes", &[W], U),
                ("26", true, s84, "/attributes/nogo1/go1", &[W], U),
                (
                    "27",
                    true,
                    &["gid_4", "gid_9"],
                    "/attributes/nogo1/go1",
                    &[READ, W],
                    U,
                ),
            ],
        );
    }

    #[test]
    fn scenario5_policy_path_in_thing() {
        let t = trie(policy(&[
            ("all", &["sid"], &[("/", &["READ"], &[])]),
            (
                "revokeWriteOnPolicy",
                &["sid"],
                &[("/policy", &[], &["WRITE"])],
            ),
        ]));
        run(&t, &[("1", true, &["sid"], "/policy", &[READ], P)]);
    }

    #[test]
    fn weights_decide_between_subjects() {
        // a granted at the root, b revoked one level deeper: b's revoke is nearer.
        let t = trie(policy(&[
            ("a", &["a"], &[("/", &["READ"], &[])]),
            ("b", &["b"], &[("/attributes", &[], &["READ"])]),
            ("c", &["c"], &[("/attributes/x", &["READ"], &[])]),
        ]));
        assert!(check(&t, &["a", "b"], "/features", &[READ], U));
        assert!(!check(&t, &["a", "b"], "/attributes/y", &[READ], U));
        // c's grant at /attributes/x is nearer than b's revoke at /attributes.
        assert!(check(&t, &["b", "c"], "/attributes/x/deep", &[READ], U));
        // Partial: c's grant below /attributes outweighs b's revoke there.
        assert!(check(&t, &["b", "c"], "/attributes", &[READ], P));
        assert!(!check(&t, &["b"], "/attributes", &[READ], P));
        // A grant and a revoke from two entries at one node: the revoke wins.
        let t = trie(policy(&[
            ("g", &["a", "b"], &[("/attributes", &["READ"], &[])]),
            ("r", &["b"], &[("/attributes", &[], &["READ"])]),
        ]));
        assert!(check(&t, &["a"], "/attributes", &[READ], U));
        assert!(!check(&t, &["b"], "/attributes", &[READ], U));
        assert!(
            !check(&t, &["a", "b"], "/attributes/x", &[READ], U),
            "tie: revoke wins"
        );
    }

    #[test]
    fn types_are_separate_and_unknown_types_deny() {
        let t = trie(
            json!({"entries": {"e": {"subjects": {"google:x": {"type": "t"}}, "resources": {
                "policy:/": {"grant": ["READ", "WRITE"], "revoke": []},
                "message:/features/fuel/inbox": {"grant": ["WRITE"], "revoke": []}
            }}}}),
        );
        let ids = t.resolve(&["google:x"]);
        let allows = |kind: &str, path: &[&str], p: usize, scope| {
            let at = t.seek(std::iter::once(kind).chain(path.iter().copied()));
            t.allows(t.index(at, scope), ids.as_slice(), p)
        };
        assert!(!allows("thing", &[], READ, P));
        assert!(allows("policy", &["entries", "x"], W, U));
        assert!(allows(
            "message",
            &["features", "fuel", "inbox", "messages", "m"],
            W,
            U
        ));
        assert!(!allows("message", &["features", "fuel"], W, U));
        assert!(allows("message", &["features", "fuel"], W, P));
        assert!(!allows("other", &[], READ, P));
        assert!(t.resolve(&["google:nobody"]).is_empty());
    }

    #[test]
    fn many_subjects_spill() {
        let mut ids = SubjectIds::default();
        for i in 0..20 {
            ids.push(i);
        }
        assert_eq!(ids.as_slice(), (0..20).collect::<Vec<_>>());
    }
}
