//! The READ view of a JSON value: the parts of it the subjects may read, built as Ditto's
//! `PolicyTrie.buildJsonView` builds it. Pure: reads the trie, copies the value, prunes the copy.
//!
//! A value is walked beside the trie, each object key to the child of that name, or, where the
//! trie has none, onward with the grants and revokes of the last node (a key the policy does
//! not name inherits). A scalar stays when READ holds at its node; an object or array stays
//! when something in it stays, or, emptied, when READ holds at its own node. Array elements are
//! judged at the array's node. Below the last node of the trie everything inherits alike, so a
//! whole subtree is either kept or dropped in one step.
//!
//! A value at a path the trie does not reach is judged with its deepest node's grants and
//! revokes and none of that node's children. Ditto starts there with the node's children too
//! (`seekToLeastAncestor`), matching the value's keys against children one level off: a
//! revoke on `/attributes/a/b` would then hide `a/b` inside the value of `/attributes/x`.

use super::trie::{Position, SubjectId, Trie, READ};
use serde_json::Value;

/// Where the walk stands: a trie node, or below the trie with the index of its deepest node.
#[derive(Clone, Copy)]
enum Cursor {
    Node(u32),
    /// Below node `.0`: its grants and revokes, none of its children.
    Below(u32),
}

pub(super) struct View<'t> {
    pub(super) trie: &'t Trie,
    pub(super) subjects: &'t [SubjectId],
}

impl View<'_> {
    /// The readable part of `value`, which sits at `at`; `None` when nothing of it is.
    ///
    /// Copies `value` and prunes the copy in place: cheaper than building new objects, whose
    /// every key would be hashed again, as long as most of a value is readable, and never more
    /// than twice a plain copy when little is.
    pub(super) fn filter(&self, at: Position, value: &Value) -> Option<Value> {
        let cursor = if at.is_exact() {
            Cursor::Node(at.node())
        } else {
            Cursor::Below(at.node())
        };
        let mut copy = value.clone();
        self.prune(cursor, &mut copy).then_some(copy)
    }

    fn readable(&self, node: u32) -> bool {
        self.trie
            .allows(self.trie.inherited(node), self.subjects, READ)
    }

    /// Removes what may not be read from `value`; false when nothing of it may be read.
    fn prune(&self, cursor: Cursor, value: &mut Value) -> bool {
        let node = match cursor {
            Cursor::Node(node) if self.trie.has_children(node) => node,
            Cursor::Node(node) | Cursor::Below(node) => return self.readable(node),
        };
        match value {
            Value::Object(map) => {
                // Keys the trie does not name all read at this node: decide that once.
                let mut here = None;
                map.retain(|key, field| match self.trie.child(node, key) {
                    Some(child) => self.prune(Cursor::Node(child), field),
                    None => *here.get_or_insert_with(|| self.readable(node)),
                });
                !map.is_empty() || here.unwrap_or_else(|| self.readable(node))
            }
            Value::Array(items) => {
                items.retain_mut(|item| self.prune(Cursor::Node(node), item));
                !items.is_empty() || self.readable(node)
            }
            _ => self.readable(node),
        }
    }
}

#[cfg(test)]
mod tests {
    //! Ditto's JSON view scenarios (…/enforcers/testbench/scenarios/jsonview, 1 to 13), with
    //! Ditto's expected views. Ditto answers an empty object where this answers `None`.
    use super::*;
    use crate::policies::enforcer::model::{parse_policy, Entry};
    use serde_json::{json, Map};

    fn thing() -> Value {
        json!({
            "attributes": {"attr1": 1, "attr2": "string", "attr3": false,
                           "location": {"latitude": 47.123, "longitude": 42.547}},
            "features": {
                "firmware": {"properties": {"version": "2.0.5", "updated": "2016-11-11T08:39:05Z",
                                            "modulesVersions": {"a": "3.2.0", "b": "42"}}},
                "foo": {"properties": {"ordinary": 123456, "special": "secret"}}
            }
        })
    }

    fn scenario_policy() -> Value {
        let g = |s: &str| format!("google:{s}");
        let e = |subjects: &[&str], resources: Value| {
            let subjects: Map<String, Value> = subjects
                .iter()
                .map(|s| (g(s), json!({"type": "t"})))
                .collect();
            json!({"subjects": subjects, "resources": resources})
        };
        let grant = |p: &[&str]| json!({"grant": p, "revoke": []});
        let revoke = |p: &[&str]| json!({"grant": [], "revoke": p});
        json!({"policyId": "benchmark:JsonViewScenario", "entries": {
            "all": e(&["sid_all", "sid_all_attributes_revoked"], json!({"thing:/": grant(&["READ", "WRITE"])})),
            "all-attributes": e(&["sid_all_attributes"], json!({"thing:/attributes": grant(&["READ", "WRITE"])})),
            "attributes-revoked": e(&["sid_all_attributes_revoked"], json!({"thing:/attributes": revoke(&["READ", "WRITE"])})),
            "attributes-location-read-allowed": e(&["sid_all_attributes_revoked"],
                json!({"thing:/attributes/location": grant(&["READ"])})),
            "features-read": e(&["sid_features_read"], json!({"thing:/features": grant(&["READ"])})),
            "features": e(&["sid_features_read_firmware_read_revoke"], json!({
                "thing:/features": grant(&["READ"]), "thing:/features/firmware": revoke(&["READ"])})),
            "features-foo": e(&["sid_feature_foo_all_granted_special_property_revoked"],
                json!({"thing:/features/foo": grant(&["READ", "WRITE"])})),
            "features-foo-special-property-revoked": e(&["sid_feature_foo_all_granted_special_property_revoked"],
                json!({"thing:/features/foo/properties/special": revoke(&["READ", "WRITE"])})),
            "features-revoked": e(&["sid_all_features_revoked"], json!({"thing:/features": revoke(&["READ"])})),
            "some-granted-of-each": e(&["sid_some_granted"], json!({
                "thing:/attributes/attr2": grant(&["READ"]),
                "thing:/attributes/location": grant(&["READ"]),
                "thing:/features/firmware/properties/modulesVersions/b": grant(&["READ"]),
                "thing:/features/foo/properties/special": grant(&["READ"])})),
            "some-revoked-of-each": e(&["sid_some_revoked"], json!({
                "thing:/attributes/location/latitude": revoke(&["READ"]),
                "thing:/features/firmware/properties/modulesVersions": revoke(&["READ"]),
                "thing:/features/foo/properties/special": revoke(&["READ"])})),
            "nonexistent-attribute-granted": e(&["sid_nonexistent_attribute_granted"],
                json!({"thing:/attributes/location/nonexistentAttribute": grant(&["READ"])}))
        }})
    }

    fn view(policy: &Value, subjects: &[&str], path: &[&str], value: &Value) -> Option<Value> {
        let doc = parse_policy(policy, 0).unwrap();
        let entries: Vec<&Entry> = doc.entries.iter().collect();
        let trie = Trie::build(&entries);
        let subjects: Vec<String> = subjects.iter().map(|s| format!("google:{s}")).collect();
        let ids = trie.resolve(&subjects);
        let at = trie.seek(std::iter::once("thing").chain(path.iter().copied()));
        View {
            trie: &trie,
            subjects: ids.as_slice(),
        }
        .filter(at, value)
    }

    fn root_view(subjects: &[&str]) -> Option<Value> {
        view(&scenario_policy(), subjects, &[], &thing())
    }

    #[test]
    fn scenarios_1_to_8() {
        let t = thing();
        // 1: READ on /attributes.
        assert_eq!(
            root_view(&["sid_all_attributes"]),
            Some(json!({"attributes": t["attributes"]}))
        );
        // 2: READ on /features.
        assert_eq!(
            root_view(&["sid_features_read"]),
            Some(json!({"features": t["features"]}))
        );
        // 3: READ on /, revoked on /attributes, granted again on /attributes/location.
        assert_eq!(
            root_view(&["sid_all_attributes_revoked"]),
            Some(
                json!({"attributes": {"location": t["attributes"]["location"]}, "features": t["features"]})
            )
        );
        // 4: READ on /features, revoked on /features/firmware.
        assert_eq!(
            root_view(&["sid_features_read_firmware_read_revoke"]),
            Some(json!({"features": {"foo": t["features"]["foo"]}}))
        );
        // 5: READ on /features/foo, revoked on its property "special".
        assert_eq!(
            root_view(&["sid_feature_foo_all_granted_special_property_revoked"]),
            Some(json!({"features": {"foo": {"properties": {"ordinary": 123456}}}}))
        );
        // 6: as 5, plus another subject with READ on /attributes.
        assert_eq!(
            root_view(&[
                "sid_feature_foo_all_granted_special_property_revoked",
                "sid_all_attributes"
            ]),
            Some(json!({"attributes": t["attributes"],
                        "features": {"foo": {"properties": {"ordinary": 123456}}}}))
        );
        // 7: one subject with READ on /, another with READ revoked on /features.
        assert_eq!(
            root_view(&["sid_all_features_revoked", "sid_all"]),
            Some(json!({"attributes": t["attributes"]}))
        );
        // 8: granted and revoked on /features by two subjects: the revoke wins; Ditto: {}.
        assert_eq!(
            root_view(&["sid_all_features_revoked", "sid_features_read"]),
            None
        );
    }

    #[test]
    fn scenarios_9_to_12() {
        // 9: only some leaves granted.
        assert_eq!(
            root_view(&["sid_some_granted"]),
            Some(json!({
                "attributes": {"attr2": "string", "location": {"latitude": 47.123, "longitude": 42.547}},
                "features": {"firmware": {"properties": {"modulesVersions": {"b": "42"}}},
                             "foo": {"properties": {"special": "secret"}}}
            }))
        );
        // 10: the grants of one subject minus the revokes of another.
        assert_eq!(
            root_view(&["sid_some_granted", "sid_some_revoked"]),
            Some(json!({
                "attributes": {"attr2": "string", "location": {"longitude": 42.547}},
                "features": {"firmware": {"properties": {"modulesVersions": {"b": "42"}}}}
            }))
        );
        // 11: the same, viewed at /features/firmware.
        let firmware = thing()["features"]["firmware"].clone();
        assert_eq!(
            view(
                &scenario_policy(),
                &["sid_some_granted", "sid_some_revoked"],
                &["features", "firmware"],
                &firmware
            ),
            Some(json!({"properties": {"modulesVersions": {"b": "42"}}}))
        );
        // 12: READ only on an attribute the thing does not have; Ditto: {}.
        let attributes = thing()["attributes"].clone();
        assert_eq!(
            view(
                &scenario_policy(),
                &["sid_nonexistent_attribute_granted"],
                &["attributes"],
                &attributes
            ),
            None
        );
    }

    #[test]
    fn scenario_13_feature_of_a_client() {
        let policy = json!({"policyId": "org.eclipse.ditto:JsonViewScenario13", "entries": {
            "owner": {"subjects": {"google:owner": {"type": "generated"}}, "resources": {
                "policy:/": {"grant": ["READ", "WRITE"], "revoke": []},
                "thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                "message:/": {"grant": ["READ", "WRITE"], "revoke": []}}},
            "client": {"subjects": {"google:client": {"type": "generated"}}, "resources": {
                "thing:/features/Gyroscope.0": {"grant": ["READ", "WRITE"], "revoke": []}}}
        }});
        let gyroscope = json!({"properties": {"status": {
            "minRangeValue": -2000, "xValue": -0.05071427300572395, "units": "Deg/s",
            "yValue": -0.4192921817302704, "zValue": 0.20766231417655945, "maxRangeValue": 2000}}});
        assert_eq!(
            view(
                &policy,
                &["client"],
                &["features", "Gyroscope.0"],
                &gyroscope
            ),
            Some(gyroscope.clone())
        );
    }

    #[test]
    fn arrays_empty_objects_and_paths_below_the_trie() {
        let policy = json!({"entries": {"e": {"subjects": {"google:s": {"type": "t"}}, "resources": {
            "thing:/attributes": {"grant": ["READ"], "revoke": []},
            "thing:/attributes/list/secret": {"grant": [], "revoke": ["READ"]},
            "thing:/attributes/hidden": {"grant": [], "revoke": ["READ"]},
            "thing:/attributes/hidden/shown": {"grant": ["READ"], "revoke": []}
        }}}});
        let value = json!({
            "list": [1, {"secret": 2, "open": 3}, [4]],
            "hidden": {"shown": [], "other": 5},
            "empty": {},
            "x": {"secret": 6}
        });
        // Array elements are judged at the array's node, so the object inside the list meets
        // "secret" as a child; an emptied object stays where READ holds on its own node.
        assert_eq!(
            view(&policy, &["s"], &["attributes"], &value),
            Some(json!({
                "list": [1, {"open": 3}, [4]],
                "hidden": {"shown": []},
                "empty": {},
                "x": {"secret": 6}
            }))
        );
        // A path the trie does not reach inherits from its deepest node, and its own keys are
        // not matched against that node's children ("secret" below /attributes/x is readable).
        assert_eq!(
            view(
                &policy,
                &["s"],
                &["attributes", "x"],
                &json!({"secret": 6, "list": {"secret": 7}})
            ),
            Some(json!({"secret": 6, "list": {"secret": 7}}))
        );
        assert_eq!(
            view(
                &policy,
                &["s"],
                &["attributes", "hidden", "other"],
                &json!(5)
            ),
            None
        );
        assert_eq!(
            view(
                &policy,
                &["s"],
                &["attributes", "hidden"],
                &json!({"other": 5})
            ),
            None
        );
        assert_eq!(
            view(&policy, &["nobody"], &[], &json!({"attributes": {}})),
            None
        );
    }
}
