//! JSON surgery on a thing: read, set and remove at a pointer, RFC 7396 merge patches, and field
//! selectors. Pure functions over `serde_json` values; no thing semantics here.

use serde_json::{Map, Value};
use twinwire_protocol::JsonPointer;

/// The value at `pointer`, following object keys.
pub fn get<'v>(value: &'v Value, pointer: &JsonPointer) -> Option<&'v Value> {
    pointer.get(value)
}

/// The value at `pointer` (not the root) inside an object.
pub fn get_in<'m>(root: &'m Map<String, Value>, pointer: &JsonPointer) -> Option<&'m Value> {
    let (first, rest) = pointer.segments().split_first()?;
    rest.iter()
        .try_fold(root.get(first)?, |v, key| v.as_object()?.get(key))
}

/// The value at `pointer` (not the root) inside an object, for changing it in place.
pub fn get_mut<'m>(
    root: &'m mut Map<String, Value>,
    pointer: &JsonPointer,
) -> Option<&'m mut Value> {
    let (first, rest) = pointer.segments().split_first()?;
    rest.iter().try_fold(root.get_mut(first)?, |v, key| {
        v.as_object_mut()?.get_mut(key)
    })
}

/// Sets `new` at `pointer` (not the root) inside `root`, creating missing or non-object
/// intermediate objects. Returns the value that was there.
pub fn set(root: &mut Map<String, Value>, pointer: &JsonPointer, new: Value) -> Option<Value> {
    let (last, parents) = pointer.segments().split_last()?;
    let mut map = root;
    for key in parents {
        let slot = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if !slot.is_object() {
            *slot = Value::Object(Map::new());
        }
        map = match slot {
            Value::Object(m) => m,
            _ => unreachable!("made an object just above"),
        };
    }
    map.insert(last.clone(), new)
}

/// Removes the value at `pointer` (not the root). Returns it, or `None` when there was none.
pub fn remove(root: &mut Map<String, Value>, pointer: &JsonPointer) -> Option<Value> {
    let (last, parents) = pointer.segments().split_last()?;
    let mut map = root;
    for key in parents {
        map = map.get_mut(key)?.as_object_mut()?;
    }
    map.shift_remove(last)
}

/// Applies an RFC 7396 merge patch to `target`: objects merge key by key, `null` deletes,
/// anything else replaces.
pub fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(target_map) = target {
        for (key, value) in patch_map {
            if value.is_null() {
                target_map.shift_remove(key);
            } else {
                merge_patch(target_map.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
    }
}

/// Merges `patch` into the value at `path` inside `root` (RFC 7396): at the root the whole
/// object is patched; a `null` patch removes the value at the path; missing parents are created.
pub fn merge_at(root: &mut Map<String, Value>, path: &JsonPointer, patch: &Value) {
    if path.is_root() {
        if !patch.is_object() {
            // A thing is an object: only an object patch can apply at its root (checked earlier).
            return;
        }
        let mut whole = Value::Object(std::mem::take(root));
        merge_patch(&mut whole, patch);
        if let Value::Object(o) = whole {
            *root = o;
        }
        return;
    }
    if patch.is_null() {
        remove(root, path);
        return;
    }
    match get_mut(root, path) {
        Some(current) => merge_patch(current, patch),
        None => {
            set(root, path, merged(None, patch));
        }
    }
}

/// The result of merging `patch` into `target` without changing `target`, with `null` members
/// removed as RFC 7396 requires of a patch applied to nothing.
pub fn merged(target: Option<&Value>, patch: &Value) -> Value {
    let mut result = target.cloned().unwrap_or(Value::Null);
    merge_patch(&mut result, patch);
    result
}

/// Expands a field selector such as `thingId,attributes(location,model),features/f1` into the
/// pointers it selects. The syntax has been checked when the envelope was read.
pub fn selector_pointers(fields: &str) -> Vec<JsonPointer> {
    let mut out = Vec::new();
    expand(fields, &JsonPointer::root(), &mut out);
    out
}

fn expand(fields: &str, prefix: &JsonPointer, out: &mut Vec<JsonPointer>) {
    let mut depth = 0usize;
    let mut start = 0;
    let bytes = fields.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        match b {
            b'(' => depth += 1,
            b')' => depth = depth.saturating_sub(1),
            b',' if depth == 0 => {
                expand_one(&fields[start..i], prefix, out);
                start = i + 1;
            }
            _ => {}
        }
    }
    expand_one(&fields[start..], prefix, out);
}

fn expand_one(item: &str, prefix: &JsonPointer, out: &mut Vec<JsonPointer>) {
    let item = item.trim();
    if item.is_empty() {
        return;
    }
    let (head, inner) = match item.find('(') {
        Some(open) if item.ends_with(')') => (&item[..open], Some(&item[open + 1..item.len() - 1])),
        _ => (item, None),
    };
    let head = JsonPointer::from_segments(head.split('/').filter(|s| !s.is_empty()));
    let base = prefix.join(&head);
    match inner {
        Some(inner) => expand(inner, &base, out),
        None => out.push(base),
    }
}

/// The parts of `value` the selector's pointers address, in selector order, keeping nesting.
/// Pointers that address nothing are left out.
pub fn select(value: &Value, pointers: &[JsonPointer]) -> Value {
    let mut out = Map::new();
    for pointer in pointers {
        if pointer.is_root() {
            return value.clone();
        }
        if let Some(v) = pointer.get(value) {
            set(&mut out, pointer, v.clone());
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> JsonPointer {
        JsonPointer::parse(s).unwrap()
    }

    #[test]
    fn set_and_remove_create_and_clean_up() {
        let mut m = Map::new();
        assert_eq!(set(&mut m, &p("/attributes/a/b"), json!(1)), None);
        assert_eq!(
            Value::Object(m.clone()),
            json!({"attributes": {"a": {"b": 1}}})
        );
        assert_eq!(set(&mut m, &p("/attributes/a/b"), json!(2)), Some(json!(1)));
        assert_eq!(remove(&mut m, &p("/attributes/a/b")), Some(json!(2)));
        assert_eq!(remove(&mut m, &p("/attributes/x/y")), None);
        assert_eq!(Value::Object(m), json!({"attributes": {"a": {}}}));
    }

    #[test]
    fn merge_patch_follows_rfc_7396() {
        // The examples of RFC 7396, appendix A.
        let cases = [
            (json!({"a": "b"}), json!({"a": "c"}), json!({"a": "c"})),
            (
                json!({"a": "b"}),
                json!({"b": "c"}),
                json!({"a": "b", "b": "c"}),
            ),
            (json!({"a": "b"}), json!({"a": null}), json!({})),
            (
                json!({"a": "b", "b": "c"}),
                json!({"a": null}),
                json!({"b": "c"}),
            ),
            (json!({"a": ["b"]}), json!({"a": "c"}), json!({"a": "c"})),
            (json!({"a": "c"}), json!({"a": ["b"]}), json!({"a": ["b"]})),
            (
                json!({"a": {"b": "c"}}),
                json!({"a": {"b": "d", "c": null}}),
                json!({"a": {"b": "d"}}),
            ),
            (
                json!({"a": [{"b": "c"}]}),
                json!({"a": [1]}),
                json!({"a": [1]}),
            ),
            (json!(["a", "b"]), json!(["c", "d"]), json!(["c", "d"])),
            (json!({"a": "b"}), json!(["c"]), json!(["c"])),
            (json!({"a": "foo"}), json!(null), json!(null)),
            (json!({"a": "foo"}), json!("bar"), json!("bar")),
            (
                json!({"e": null}),
                json!({"a": 1}),
                json!({"e": null, "a": 1}),
            ),
            (
                json!([1, 2]),
                json!({"a": "b", "c": null}),
                json!({"a": "b"}),
            ),
            (
                json!({}),
                json!({"a": {"bb": {"ccc": null}}}),
                json!({"a": {"bb": {}}}),
            ),
        ];
        for (target, patch, expected) in cases {
            assert_eq!(
                merged(Some(&target), &patch),
                expected,
                "{target} + {patch}"
            );
        }
    }

    #[test]
    fn field_selectors_pick_nested_parts() {
        let thing = json!({"thingId": "a:b", "policyId": "a:b", "attributes": {"location": 1, "model": 2, "x": 3},
            "features": {"f1": {"properties": {"a": 1, "b": 2}}}});
        let sel =
            selector_pointers("thingId,attributes(location,model),features/f1/properties(b),nope");
        assert_eq!(
            select(&thing, &sel),
            json!({"thingId": "a:b", "attributes": {"location": 1, "model": 2}, "features": {"f1": {"properties": {"b": 2}}}})
        );
    }
}
