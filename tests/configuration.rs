//! docs/configuration.md against the code: every key of a connection file with its default,
//! read by the broker's own loader. (Each adapter's `specificConfig` table is checked in the
//! adapter's crate: one test binary cannot link two adapter plugins.)

use serde_json::{json, Value};
use std::path::Path;
use twinwire_core::connections::load::load_file;
use twinwire_tests::config_reference::{check_keys, configuration_page, key_rows, table};

/// A document as a connection file (JSON is YAML), read by the broker's loader.
fn parse(doc: &Value) -> Result<String, String> {
    let loaded = load_file(Path::new("c.yaml"), &doc.to_string(), &|_| None);
    match loaded.connection {
        Some(connection) => Ok(format!("{connection:?}")),
        None => Err(loaded
            .problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")),
    }
}

#[test]
fn every_key_of_a_connection_file_is_documented_with_its_default() {
    let rows = table(&configuration_page(), "## Connection files");
    let subjects = json!(["integration:c1"]);
    let examples = [
        ("id", json!("c1")),
        ("connectionType", json!("mqtt")),
        ("connectionStatus", json!("open")),
        ("uri", json!("tcp://127.0.0.1:1883")),
        ("sources[].addresses", json!(["a/#"])),
        ("sources[].authorizationContext", subjects.clone()),
        (
            "sources[].enforcement.input",
            json!("{{ header:device_id }}"),
        ),
        (
            "sources[].acknowledgementRequests.includes",
            json!(["twin-persisted"]),
        ),
        ("targets[].address", json!("b")),
        ("targets[].topics", json!(["_/_/things/twin/events"])),
        ("targets[].authorizationContext", subjects),
        ("mappingDefinitions.<id>.mappingEngine", json!("Normalized")),
    ];
    let problems = check_keys(&key_rows(&rows), &examples, &parse);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
