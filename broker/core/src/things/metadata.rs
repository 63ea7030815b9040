//! Thing metadata headers (docs/basic-metadata.md): `put-metadata` and `delete-metadata` on a
//! modify become a merge patch for `_metadata`; `get-metadata` on a retrieve selects from it.
//! Keys are relative to the command's path; a `*` segment stands for every key of one level.
//! Pure functions, no I/O.

use super::json;
use serde_json::{Map, Value};
use twinwire_protocol::headers::names;
use twinwire_protocol::{DittoError, Envelope, JsonPointer, ProtocolError};

/// Refuses a request that carries more than one metadata header, as Ditto does.
pub fn check_single_header(env: &Envelope) -> Result<(), DittoError> {
    let present = [
        names::PUT_METADATA,
        names::GET_METADATA,
        names::DELETE_METADATA,
    ]
    .iter()
    .filter(|h| env.headers.contains(h))
    .count();
    if present > 1 {
        return Err(ProtocolError::HeaderInvalid {
            name: "put-metadata/get-metadata/delete-metadata".into(),
            value: "more than one".into(),
            expected: "single metadata header per request",
        }
        .into());
    }
    Ok(())
}

/// The `_metadata` merge patch of a modify: `put-metadata` entries set, `delete-metadata` paths
/// null. `new_value` is the value written at the command's path (for `*` expansion of puts);
/// `current` the thing's metadata (for `*` expansion of deletes).
pub fn patch_for_modify(
    env: &Envelope,
    new_value: Option<&Value>,
    current: Option<&Value>,
) -> Option<Value> {
    let mut patch = Map::new();
    if let Ok(Some(entries)) = env.headers.put_metadata() {
        for entry in entries {
            let Some(key) = entry.get("key").and_then(Value::as_str) else {
                continue;
            };
            let value = entry.get("value").cloned().unwrap_or(Value::Null);
            for pointer in expand(&env.path, key, new_value, true) {
                json::set(&mut patch, &pointer, value.clone());
            }
        }
    }
    if let Some(paths) = env.headers.get_str(names::DELETE_METADATA) {
        let at_path = current.and_then(|m| env.path.get(m));
        for key in paths.split(',').map(str::trim).filter(|k| !k.is_empty()) {
            for pointer in expand(&env.path, key, at_path, false) {
                json::set(&mut patch, &pointer, Value::Null);
            }
        }
    }
    (!patch.is_empty()).then_some(Value::Object(patch))
}

/// The `ditto-metadata` answer to `get-metadata`: the selected metadata, nested as in `_metadata`.
pub fn for_retrieve(env: &Envelope, metadata: Option<&Value>) -> Option<Value> {
    let keys = env.headers.get_metadata().ok().flatten()?;
    let metadata = metadata?;
    let at_path = env.path.get(metadata);
    let mut out = Map::new();
    for key in keys {
        for pointer in expand(&env.path, key, at_path, false) {
            if let Some(v) = pointer.get(metadata) {
                json::set(&mut out, &pointer, v.clone());
            }
        }
    }
    Some(Value::Object(out))
}

/// The absolute metadata pointers a key names: `base` joined with the key's segments, each `*`
/// replaced by every key at that level of `tree` (the JSON under `base`). With `last_is_new`, the
/// last segment need not exist in `tree` (a metadata key being added).
fn expand(
    base: &JsonPointer,
    key: &str,
    tree: Option<&Value>,
    last_is_new: bool,
) -> Vec<JsonPointer> {
    let segments: Vec<&str> = key.split('/').filter(|s| !s.is_empty()).collect();
    let mut out = Vec::new();
    walk(base.clone(), &segments, tree, last_is_new, &mut out);
    out
}

fn walk(
    prefix: JsonPointer,
    rest: &[&str],
    tree: Option<&Value>,
    last_is_new: bool,
    out: &mut Vec<JsonPointer>,
) {
    let Some((first, tail)) = rest.split_first() else {
        if !prefix.is_root() {
            out.push(prefix);
        }
        return;
    };
    if *first == "*" {
        if let Some(Value::Object(level)) = tree {
            for (k, v) in level {
                let mut next = prefix.clone();
                next.push(k.clone());
                walk(next, tail, Some(v), last_is_new, out);
            }
        }
        return;
    }
    let mut next = prefix;
    next.push(*first);
    let child = tree.and_then(|t| t.get(*first));
    if child.is_none() && !(tail.is_empty() && last_is_new) && tail.contains(&"*") {
        return;
    }
    walk(next, tail, child, last_is_new, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn env(path: &str, headers: Value) -> Envelope {
        Envelope::from_json(json!({"topic": "ns/t/things/twin/commands/modify", "headers": headers, "path": path, "value": 1}))
            .unwrap()
    }

    #[test]
    fn put_with_wildcards_marks_every_leaf() {
        let e = env(
            "/features/lamp/properties",
            json!({"put-metadata": [{"key": "*/unit", "value": "C"}, {"key": "/all", "value": true}]}),
        );
        let patch = patch_for_modify(&e, Some(&json!({"a": 1, "b": 2})), None).unwrap();
        assert_eq!(
            patch,
            json!({"features": {"lamp": {"properties": {"a": {"unit": "C"}, "b": {"unit": "C"}, "all": true}}}})
        );
    }

    #[test]
    fn get_and_delete_select_with_wildcards() {
        let metadata = json!({"features": {"lamp": {"properties": {
            "color": {"description": "RGB", "unit": "x"}, "status": {"description": "on/off"}}}}});
        let e = env(
            "/",
            json!({"get-metadata": "features/lamp/properties/*/description"}),
        );
        assert_eq!(
            for_retrieve(&e, Some(&metadata)).unwrap(),
            json!({"features": {"lamp": {"properties": {"color": {"description": "RGB"}, "status": {"description": "on/off"}}}}})
        );
        let e = env(
            "/features/lamp",
            json!({"delete-metadata": "properties/color"}),
        );
        assert_eq!(
            patch_for_modify(&e, None, Some(&metadata)).unwrap(),
            json!({"features": {"lamp": {"properties": {"color": null}}}})
        );
        let both = env("/", json!({"get-metadata": "a", "put-metadata": []}));
        assert!(check_single_header(&both).is_err());
    }
}
