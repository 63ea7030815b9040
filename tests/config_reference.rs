//! Holding docs/configuration.md to the code: its tables are read here, and each table of keys
//! is checked against a parser of the documents it describes (`twinwire.yaml`, a connection
//! file). Every documented key must be accepted with its documented default, every required key
//! must be refused when missing, and every key the parser knows (serde's `deny_unknown_fields`
//! lists them when it refuses one) must be documented. An adapter's `specificConfig` table must
//! be its `SPECIFIC_CONFIG`, every key of which its parser must read. Panics (a test helper)
//! when the page cannot be read.

use serde_json::{json, Map, Value};
use std::fmt::Debug;
use std::path::Path;
use twinwire_plugin::settings::{Setting, SettingDefault};

/// The text of docs/configuration.md.
pub fn configuration_page() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/configuration.md");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The cells of each row of the first table after the line `heading`, without its header and
/// separator. Panics when there is no such heading or table.
pub fn table(page: &str, heading: &str) -> Vec<Vec<String>> {
    let mut lines = page.lines().skip_while(|l| l.trim_end() != heading);
    assert!(
        lines.next().is_some(),
        "docs/configuration.md has no heading {heading}"
    );
    let rows: Vec<Vec<String>> = lines
        .take_while(|l| !l.starts_with('#'))
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .map(|l| {
            l.trim()
                .trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_owned())
                .collect()
        })
        .skip(2)
        .collect();
    assert!(!rows.is_empty(), "no table under {heading}");
    rows
}

/// The text of a cell that is one code span: "`listen`" is `listen`.
pub fn code(cell: &str) -> Option<&str> {
    let inner = cell.strip_prefix('`')?.strip_suffix('`')?;
    (!inner.contains('`')).then_some(inner)
}

/// A default as the tables write it.
#[derive(Debug, Clone, PartialEq)]
pub enum Default {
    Required,
    /// `none`, maybe followed by what that means in brackets: the key may be absent or null.
    None,
    /// A value in backticks: JSON if it reads as JSON, else a string.
    Value(Value),
    /// Anything else: words for a default derived from elsewhere.
    Words(String),
}

impl Default {
    pub fn of(cell: &str) -> Default {
        if cell == "required" {
            Default::Required
        } else if cell == "none" || cell.starts_with("none (") {
            Default::None
        } else if let Some(literal) = code(cell) {
            Default::Value(serde_json::from_str(literal).unwrap_or_else(|_| Value::from(literal)))
        } else {
            Default::Words(cell.to_owned())
        }
    }
}

/// A key path: `a.b`, `a[].b` (every element of the list `a`), `a.<id>.b` (any name).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    /// The first element of a list of mappings.
    Element(String),
    /// A name of the user's choosing.
    Any,
}

fn steps(key: &str) -> Vec<Step> {
    key.split('.')
        .map(|s| match s {
            "<id>" => Step::Any,
            s => match s.strip_suffix("[]") {
                Some(list) => Step::Element(list.to_owned()),
                None => Step::Key(s.to_owned()),
            },
        })
        .collect()
}

/// The mapping at `path` in `doc`, made (empty) where missing.
fn mapping<'a>(doc: &'a mut Value, path: &[Step]) -> &'a mut Map<String, Value> {
    let mut at = doc;
    for step in path {
        let object = ensure_object(at);
        at = match step {
            Step::Key(k) => object
                .entry(k.clone())
                .or_insert_with(|| Value::Object(Map::new())),
            Step::Any => object
                .entry("example".to_owned())
                .or_insert_with(|| Value::Object(Map::new())),
            Step::Element(k) => {
                let list = object
                    .entry(k.clone())
                    .or_insert_with(|| Value::Array(vec![Value::Object(Map::new())]));
                if !matches!(list, Value::Array(l) if !l.is_empty()) {
                    *list = Value::Array(vec![Value::Object(Map::new())]);
                }
                &mut list[0]
            }
        };
    }
    ensure_object(at)
}

fn ensure_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(map) => map,
        _ => unreachable!("made an object above"),
    }
}

fn last_name(step: &Step) -> String {
    match step {
        Step::Key(k) | Step::Element(k) => k.clone(),
        Step::Any => "example".to_owned(),
    }
}

/// `doc` with `key` set to `value` (`None`: removed).
fn with(doc: &Value, key: &[Step], value: Option<Value>) -> Value {
    let mut doc = doc.clone();
    let (last, parent) = key.split_last().expect("a key has a step");
    let map = mapping(&mut doc, parent);
    match value {
        Some(v) => {
            map.insert(last_name(last), v);
        }
        None => {
            map.remove(&last_name(last));
        }
    }
    doc
}

/// The names in backticks after "expected" in serde's refusal of an unknown field.
fn expected_fields(error: &str) -> Vec<String> {
    let Some(at) = error.find("expected") else {
        return Vec::new();
    };
    error[at..]
        .split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// A key no parser knows, to make one list the keys it does.
const UNKNOWN: &str = "zz_not_a_key";

/// What is wrong between a table of `(key, default)` rows and `parse`, which reads a document
/// (as JSON; the YAML files are read by the same serde types) into the Debug text of what it
/// read, or its error. `examples` give the values of required keys.
pub fn check_keys(
    rows: &[(String, Default)],
    examples: &[(&str, Value)],
    parse: &dyn Fn(&Value) -> Result<String, String>,
) -> Vec<String> {
    let mut problems = Vec::new();
    let keys: Vec<(Vec<Step>, &Default, &str)> = rows
        .iter()
        .map(|(k, d)| (steps(k), d, k.as_str()))
        .collect();
    // The smallest document: every mapping a key lies in, and the required keys.
    let mut minimal = Value::Object(Map::new());
    for (path, default, name) in &keys {
        mapping(&mut minimal, &path[..path.len() - 1]);
        if **default == Default::Required {
            match examples.iter().find(|(k, _)| k == name) {
                Some((_, example)) => minimal = with(&minimal, path, Some(example.clone())),
                None => problems.push(format!("{name}: required, but the test has no example")),
            }
        }
    }
    if let Err(e) = parse(&minimal) {
        problems.push(format!("the smallest document {minimal} is refused: {e}"));
        return problems;
    }
    for (path, default, name) in &keys {
        let absent = parse(&with(&minimal, path, None));
        let given = match default {
            Default::Required => {
                match absent {
                    Ok(_) => problems.push(format!(
                        "{name}: documented as required, but may be left out"
                    )),
                    Err(e) if !e.contains(&last_name(&path[path.len() - 1])) => {
                        problems.push(format!("{name}: left out, refused for another reason: {e}"))
                    }
                    Err(_) => {}
                }
                continue;
            }
            Default::None => Value::Null,
            Default::Value(v) => v.clone(),
            Default::Words(w) => {
                problems.push(format!("{name}: a default in words ({w}) cannot be checked; write it in backticks or none"));
                continue;
            }
        };
        match (absent, parse(&with(&minimal, path, Some(given.clone())))) {
            (_, Err(e)) => problems.push(format!("{name}: {given} is refused: {e}")),
            (Err(e), _) => problems.push(format!("{name}: cannot be left out: {e}")),
            (Ok(absent), Ok(set)) if absent != set => problems.push(format!(
                "{name}: the documented default {given} is not the code's ({})",
                difference(&absent, &set)
            )),
            _ => {}
        }
    }
    // Every mapping of named keys lists what it accepts when it refuses an unknown one.
    let mut containers: Vec<Vec<Step>> = vec![Vec::new()];
    for (path, _, _) in &keys {
        for end in 1..path.len() {
            let prefix = path[..end].to_vec();
            if path[end] != Step::Any && !containers.contains(&prefix) {
                containers.push(prefix);
            }
        }
    }
    for container in &containers {
        let mut probe = container.clone();
        probe.push(Step::Key(UNKNOWN.to_owned()));
        let shown = if container.is_empty() {
            "the top level".to_owned()
        } else {
            join(container)
        };
        let error = match parse(&with(&minimal, &probe, Some(Value::from(0)))) {
            Ok(_) => {
                problems.push(format!(
                    "{shown} takes any key: document it as one row, not its keys"
                ));
                continue;
            }
            Err(e) if !e.contains(UNKNOWN) => {
                problems.push(format!(
                    "{shown}: an unknown key is refused for another reason: {e}"
                ));
                continue;
            }
            Err(e) => e,
        };
        for field in expected_fields(&error) {
            let mut key = container.clone();
            key.push(Step::Key(field.clone()));
            let documented = keys.iter().any(|(path, _, _)| {
                path.len() >= key.len()
                    && path[..key.len() - 1] == key[..key.len() - 1]
                    && last_name(&path[key.len() - 1]) == field
                    && path[key.len() - 1] != Step::Any
            });
            if !documented {
                problems.push(format!(
                    "{}: read by the code, not in the reference",
                    join(&key)
                ));
            }
        }
    }
    problems
}

/// Where two Debug texts part: a little of each from there.
fn difference(absent: &str, set: &str) -> String {
    let from = absent
        .char_indices()
        .zip(set.chars())
        .find(|((_, a), b)| a != b)
        .map_or(absent.len().min(set.len()), |((i, _), _)| i);
    let start = absent[..from].rfind(' ').map_or(0, |i| i + 1);
    let part = |text: &str| text[start..].chars().take(60).collect::<String>();
    format!("left out: …{}; set: …{}", part(absent), part(set))
}

fn join(path: &[Step]) -> String {
    path.iter()
        .map(|s| match s {
            Step::Key(k) => k.clone(),
            Step::Element(k) => format!("{k}[]"),
            Step::Any => "<id>".to_owned(),
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// The `(key, default)` rows of a table whose first column is the key in backticks and whose
/// second is the default. Panics on a key cell that is not one code span.
pub fn key_rows(rows: &[Vec<String>]) -> Vec<(String, Default)> {
    rows.iter()
        .map(|cells| {
            let key = code(&cells[0])
                .unwrap_or_else(|| panic!("a key cell is one `key`: {}", cells[0]))
                .to_owned();
            (key, Default::of(&cells[1]))
        })
        .collect()
}

/// Panics, listing what is wrong, unless the `specificConfig` table under `heading` is the
/// adapter's `settings` and its `parse` reads every one of them (see [`unread`]). `base` is a
/// connection the adapter accepts that sets what makes the others be read (a Last Will topic,
/// a login).
pub fn assert_specific_config<C: PartialEq + Debug>(
    heading: &str,
    settings: &[Setting],
    base: &Value,
    parse: fn(&[u8]) -> Result<C, String>,
) {
    let mut problems = Vec::new();
    let documented: Vec<(String, String)> = table(&configuration_page(), heading)
        .iter()
        .map(|cells| {
            (
                code(&cells[0]).unwrap_or(&cells[0]).to_owned(),
                cells[1].clone(),
            )
        })
        .collect();
    let written: Vec<(String, String)> = settings
        .iter()
        .map(|s| (documented_key(s), s.default.to_string()))
        .collect();
    for row in &documented {
        if !written.contains(row) {
            problems.push(format!(
                "documented, not among the adapter's settings: {row:?}"
            ));
        }
    }
    for row in &written {
        if !documented.contains(row) {
            problems.push(format!(
                "a setting of the adapter, not documented so: {row:?}"
            ));
        }
    }
    if problems.is_empty() && documented != written {
        problems.push("the documented order is not the adapter's".to_owned());
    }
    match unread(settings, base, parse) {
        Ok(keys) => problems.extend(
            keys.iter()
                .map(|key| format!("a setting the adapter's parser does not read: {key}")),
        ),
        Err(e) => problems.push(format!("the connection {base} is refused: {e}")),
    }
    assert!(problems.is_empty(), "{heading}:\n{}", problems.join("\n"));
}

/// How the reference writes a setting's key: a prefix as `prefix<property>`.
fn documented_key(setting: &Setting) -> String {
    match setting.default {
        SettingDefault::Prefix => format!("{}<property>", setting.key),
        _ => setting.key.to_owned(),
    }
}

/// The settings `parse` does not read: set to a value no setting takes, one must be refused
/// naming its key, or change what is read from `base`. An error when `base` is refused.
pub fn unread<C: PartialEq + Debug>(
    settings: &[Setting],
    base: &Value,
    parse: fn(&[u8]) -> Result<C, String>,
) -> Result<Vec<String>, String> {
    let read = |doc: &Value| parse(doc.to_string().as_bytes());
    let before = read(base)?;
    let mut unread = Vec::new();
    for setting in settings {
        let key = match setting.default {
            SettingDefault::Prefix => format!("{}some.property", setting.key),
            _ => setting.key.to_owned(),
        };
        let mut doc = base.clone();
        doc["specificConfig"][&key] = json!("not-a-value");
        let noticed = match read(&doc) {
            Err(e) => e.contains(&format!("specificConfig.{}", setting.key)),
            Ok(after) => after != before,
        };
        if !noticed {
            unread.push(key);
        }
    }
    Ok(unread)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_defaults_and_paths() {
        assert_eq!(Default::of("`1`"), Default::Value(Value::from(1)));
        assert_eq!(
            Default::of("`127.0.0.1:8080`"),
            Default::Value(Value::from("127.0.0.1:8080"))
        );
        assert_eq!(Default::of("none (any)"), Default::None);
        assert_eq!(Default::of("required"), Default::Required);
        assert_eq!(
            Default::of("the connection ID"),
            Default::Words("the connection ID".into())
        );
        let doc = with(&Value::Null, &steps("a[].b.<id>.c"), Some(Value::from(1)));
        assert_eq!(
            doc,
            serde_json::json!({"a": [{"b": {"example": {"c": 1}}}]})
        );
        assert_eq!(
            expected_fields("unknown field `zz`, expected one of `a`, `b` at line 1"),
            vec!["a", "b"]
        );
        assert_eq!(
            expected_fields("unknown field `zz`, expected `a` or `b`"),
            vec!["a", "b"]
        );
    }
}
