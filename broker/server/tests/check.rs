//! `twinwire check`: each kind of mistake in a connection file is reported with its file, line
//! and field; a good file passes; the exit code says whether every connection is usable.

use std::process::Command;

fn check(dir: &std::path::Path) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_twinwire"))
        .arg("check")
        .arg(dir)
        .env("TWINWIRE_TEST_SECRET", "from-the-environment")
        .output()
        .expect("twinwire check");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

const GOOD: &str = "\
id: good
connectionType: amqp-091
connectionStatus: open
uri: amqp://user:${TWINWIRE_TEST_SECRET}@127.0.0.1:5672/
sources:
  - addresses: [commands]
    authorizationContext: [integration:good]
targets:
  - address: events/{{ thing:id }}
    topics: [_/_/things/twin/events]
    authorizationContext: [integration:good]
";

#[test]
fn every_kind_of_mistake_is_reported_with_file_line_and_field() {
    let dir = tempfile::tempdir().expect("temp dir");
    let write =
        |name: &str, text: &str| std::fs::write(dir.path().join(name), text).expect("write");
    write("good.yaml", GOOD);
    write("not-yaml.yaml", "id: [unclosed\n");
    write("typo.yml", &GOOD.replace("sources:", "sorces:"));
    write(
        "missing-env.yaml",
        &GOOD.replace("TWINWIRE_TEST_SECRET", "TWINWIRE_NOT_SET_ANYWHERE"),
    );
    write(
        "bad-values.yaml",
        &GOOD
            .replace("amqp-091", "mqtt")
            .replace("addresses: [commands]", "addresses: [commands]\n    qos: 5")
            .replace("[_/_/things/twin/events]", "[_/_/things/twin/nothing]")
            .replace("events/{{ thing:id }}", "events/{{ thing:nmae }}")
            .replace(
                "authorizationContext: [integration:good]\ntargets",
                "authorizationContext: [no-subject]\ntargets",
            ),
    );
    write("ignored.txt", "not a connection");
    let (code, out) = check(dir.path());
    assert_eq!(code, 1, "{out}");
    let expect = |needle: &str| assert!(out.contains(needle), "missing {needle:?} in:\n{out}");
    expect("good.yaml: ok: connection good (amqp-091)");
    expect("not-yaml.yaml:1: error:");
    expect("typo.yml:5: error: unknown field `sorces`");
    expect(
        "missing-env.yaml:4: error: the environment variable TWINWIRE_NOT_SET_ANYWHERE is not set",
    );
    expect("bad-values.yaml:4: error: uri: scheme 'amqp' is not allowed for mqtt");
    expect("bad-values.yaml:7: error: sources[0].qos: qos 5");
    expect("bad-values.yaml:8: error: sources[0].authorizationContext[0]: 'no-subject' is not a subject");
    expect(
        "bad-values.yaml:11: error: targets[0].topics[0]: unknown topic '_/_/things/twin/nothing'",
    );
    expect("bad-values.yaml:10: error: targets[0].qos: MQTT targets need a qos");
    expect("bad-values.yaml:10: error: targets[0].address:");
    expect("thing:nmae");
    expect("5 files, ");
    assert!(!out.contains("ignored.txt"));
    assert!(
        !out.contains("from-the-environment"),
        "a secret is never printed"
    );
    // Only the good file: exit 0.
    let good = tempfile::tempdir().expect("temp dir");
    std::fs::write(good.path().join("good.yaml"), GOOD).expect("write");
    let (code, out) = check(good.path());
    assert_eq!(code, 0, "{out}");
}

#[test]
fn the_example_connection_is_valid() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/connections");
    let (code, out) = check(std::path::Path::new(dir));
    assert_eq!(code, 0, "{out}");
}

#[test]
fn with_the_plugin_directory_missing_adapters_are_warned_of() {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("good.yaml"), GOOD).expect("write");
    let plugins = tempfile::tempdir().expect("temp dir");
    let output = Command::new(env!("CARGO_BIN_EXE_twinwire"))
        .arg("check")
        .arg(dir.path())
        .arg("--plugins")
        .arg(plugins.path())
        .env("TWINWIRE_TEST_SECRET", "x")
        .output()
        .expect("twinwire check");
    let out = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "warnings do not fail: {out}");
    assert!(
        out.contains(
            "warning: connectionType: no adapter in the plugin directory serves 'amqp-091'"
        ),
        "{out}"
    );
}
