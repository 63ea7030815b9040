//! `twinwire protocol check` as a user runs it: the real binary over the 320 reference files,
//! every kind of bad input, and hostile bytes (binary, invalid UTF-8, deep nesting, 50 MB lines).

use std::io::Write;
use std::process::{Command, Output, Stdio};
use twinwire_tests::reference_dir;

fn twinwire() -> Command {
    Command::new(env!("CARGO_BIN_EXE_twinwire"))
}

fn check_stdin(input: &[u8]) -> Output {
    let mut child = twinwire()
        .args(["protocol", "check"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn twinwire");
    let mut stdin = child.stdin.take().expect("stdin");
    let input = input.to_vec();
    // Write from a thread: the child answers while it reads, and a full pipe would block both.
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().expect("twinwire runs");
    writer.join().expect("writer thread").expect("write stdin");
    output
}

fn lines(output: &Output) -> Vec<String> {
    String::from_utf8(output.stdout.clone())
        .expect("UTF-8 output")
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_reference_file_is_ok_with_its_signal_type() {
    let mut files: Vec<_> = walk(&reference_dir().join("protocol-examples"));
    files.sort();
    assert_eq!(files.len(), 320);
    let output = twinwire()
        .args(["protocol", "check"])
        .args(&files)
        .output()
        .expect("run");
    assert!(
        output.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = lines(&output);
    assert_eq!(
        lines.len(),
        323,
        "one line per message (three files hold two)"
    );
    assert!(lines.iter().all(|l| l.starts_with("ok ")), "{lines:?}");
    let text = lines.join("\n");
    for expected in [
        "ok things.commands:modifyAttribute",
        "ok things.responses:retrieveFeatureProperty",
        "ok things.events:attributeModified",
        "ok things.commands:mergeThing",
        "ok things.events:thingMerged",
        "ok things.responses:errorResponse things:thing.notfound",
        "ok policies.commands:modifyPolicyEntry",
        "ok policies.commands:modifyPolicyImport",
        "ok policies.commands:modifyPolicyEntryReferences",
        "ok policies.responses:errorResponse policies:policy.notfound",
        "ok policies.announcements:subjectDeletion",
        "ok connectivity.announcements:opened",
        "ok thing-search.commands:subscribe",
        "ok thing-search.subscription.events:next",
        "ok thing-search.responses:errorResponse thing-search:search.option.invalid",
    ] {
        assert!(text.contains(expected), "missing `{expected}`");
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("reference folder").flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Each kind of bad input answers with its Ditto error, and the good message after it is still
/// checked: one line per message, in order.
#[test]
fn each_kind_of_bad_input_gets_its_ditto_error() {
    let t = "org.eclipse.ditto/thing/things/twin/commands";
    let cases: Vec<(String, &str)> = vec![
        (r#"{"topic": "#.into(), "400 json.invalid"),
        ("[1,2,3]".into(), "400 json.format.invalid"),
        ("\"just a string\"".into(), "400 json.format.invalid"),
        (r#"{"headers":{},"path":"/"}"#.into(), "400 json.field.missing"),
        (r#"{"topic":"org.eclipse.ditto/thing/gadgets/twin/commands/modify","path":"/"}"#.into(), "400 protocoladapter:unknown.topicpath"),
        (r#"{"topic":"org.eclipse.ditto/thing/things/twin/commands/explode","path":"/"}"#.into(), "400 protocoladapter:unknown.topicpath"),
        (r#"{"topic":"org.eclipse.ditto/thing/things/twin/messages/hello","path":"/inbox/messages/hello"}"#.into(), "400 protocoladapter:unknown.topicpath"),
        (r#"{"topic":"9org/thing/things/twin/commands/retrieve","path":"/"}"#.into(), "400 things:id.invalid"),
        (r#"{"topic":"org.eclipse.ditto/th\u0001ng/things/twin/commands/retrieve","path":"/"}"#.into(), "400 things:id.invalid"),
        (r#"{"topic":"org..x/p/policies/commands/retrieve","path":"/"}"#.into(), "400 policies:id.invalid"),
        (format!(r#"{{"topic":"{t}/modify","path":"attributes/a","value":1}}"#), "400 json.pointer.invalid"),
        (format!(r#"{{"topic":"{t}/modify","path":"/attributes//a","value":1}}"#), "400 json.pointer.invalid"),
        (format!(r#"{{"topic":"{t}/modify","path":"/colour","value":1}}"#), "400 protocoladapter:unknown.path"),
        (format!(r#"{{"topic":"{t}/modify","path":"/","value":[1]}}"#), "400 json.format.invalid"),
        (format!(r#"{{"topic":"{t}/modify","path":"/attributes","value":"x"}}"#), "400 json.format.invalid"),
        (format!(r#"{{"topic":"{t}/modify","path":"/attributes/a"}}"#), "400 json.field.missing"),
        (format!(r#"{{"topic":"{t}/create","path":"/features","value":{{}}}}"#), "400 protocoladapter:unknown.command"),
        (r#"{"topic":"org.eclipse.ditto/thing/things/twin/acks/ok","path":"/","status":200}"#.into(), "400 acknowledgement:label.invalid"),
        (format!(r#"{{"topic":"{t}/modify","headers":{{"requested-acks":["twin-persisted","no"]}},"path":"/attributes/a","value":1}}"#), "400 acknowledgement:label.invalid"),
        (format!(r#"{{"topic":"{t}/modify","headers":{{"timeout":"soon"}},"path":"/attributes/a","value":1}}"#), "400 header.invalid"),
        (r#"{"topic":"org.eclipse.ditto/thing/things/live/messages/a b","path":"/inbox/messages/x"}"#.into(), "400 messages:subject.invalid"),
    ];
    let good = format!(r#"{{"topic":"{t}/modify","path":"/attributes/a","value":1}}"#);
    let mut input = String::new();
    for (bad, _) in &cases {
        input.push_str(bad);
        input.push('\n');
        input.push_str(&good);
        input.push('\n');
    }
    let output = check_stdin(input.as_bytes());
    assert_eq!(output.status.code(), Some(1));
    let lines = lines(&output);
    assert_eq!(lines.len(), cases.len() * 2, "{lines:#?}");
    for (i, (bad, expected)) in cases.iter().enumerate() {
        let line = &lines[2 * i];
        assert!(
            line.starts_with(&format!("error {expected}: ")),
            "input {bad}\n  answered {line}\n  expected {expected}"
        );
        assert_eq!(lines[2 * i + 1], "ok things.commands:modifyAttribute");
    }
}

#[test]
fn hostile_bytes_get_error_lines_and_never_crash() {
    let mut input = Vec::new();
    input.extend_from_slice(&[0x00, 0xff, 0xfe, 0x80, b'\n']); // binary
    input.extend_from_slice(b"{\"topic\":\"\xc3\x28\",\"path\":\"/\"}\n"); // invalid UTF-8 in a string
    input.extend_from_slice(&b"[".repeat(100_000)); // deep but balanced: JSON, not an object
    input.extend_from_slice(&b"]".repeat(100_000));
    input.push(b'\n');
    input.extend_from_slice(&b"[".repeat(100_000)); // deep and never closed
    input.push(b'\n');
    input.extend_from_slice(
        br#"{"topic":"ns/t/things/twin/commands/modify","path":"/attributes/a","value":"#,
    );
    input.extend_from_slice(&b"[".repeat(100_000)); // deep inside a field
    input.extend_from_slice(&b"]".repeat(100_000));
    input.extend_from_slice(b"}\n");
    input.push(b'{');
    input.extend_from_slice(b"\"a\":\"");
    input.extend_from_slice(&vec![b'x'; 50 * 1024 * 1024]);
    input.extend_from_slice(b"\"}\n");
    input.extend_from_slice(
        br#"{"topic":"org.eclipse.ditto/thing/things/twin/commands/retrieve","path":"/"}"#,
    );
    input.push(b'\n');
    let output = check_stdin(&input);
    assert_eq!(
        output.status.code(),
        Some(1),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines = lines(&output);
    let expected = [
        "error 400 json.invalid",
        "error 400 json.invalid",
        "error 400 json.format.invalid",
        "error 400 json.invalid",
        "error 400 json.invalid",
        "error 413 protocoladapter:message.toolarge",
        "ok things.commands:retrieveThing",
    ];
    assert_eq!(lines.len(), expected.len(), "{lines:?}");
    for (line, expected) in lines.iter().zip(expected) {
        assert!(line.starts_with(expected), "{line}\n  expected {expected}");
    }
}

#[test]
fn reads_whole_documents_markdown_and_dash_for_stdin() {
    let pretty = "{\n  \"topic\": \"org.eclipse.ditto/t/things/twin/commands/delete\",\n  \"headers\": {},\n  \"path\": \"/attributes\"\n}\n";
    let output = check_stdin(format!("{pretty}{pretty}").as_bytes());
    assert!(output.status.success());
    assert_eq!(
        lines(&output),
        vec!["ok things.commands:deleteAttributes"; 2]
    );
    let markdown = format!(
        "## An example\n\nSome text.\n\n```json\n{pretty}```\n\n```bash\nnot checked\n```\n"
    );
    let output = check_stdin(markdown.as_bytes());
    assert!(output.status.success());
    assert_eq!(lines(&output), vec!["ok things.commands:deleteAttributes"]);
    let output = twinwire()
        .args(["protocol", "check", "-"])
        .stdin(Stdio::null())
        .output()
        .expect("run");
    assert!(output.status.success());
    assert!(lines(&output).is_empty());
}

#[test]
fn a_missing_file_is_an_error_of_its_own() {
    let output = twinwire()
        .args(["protocol", "check", "/nonexistent/file.json"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("/nonexistent/file.json"));
}

#[test]
fn version_and_help() {
    let output = twinwire().arg("--version").output().expect("run");
    assert!(output.status.success());
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("twinwire "));
    let output = twinwire()
        .args(["protocol", "check", "--help"])
        .output()
        .expect("run");
    assert!(String::from_utf8_lossy(&output.stdout).contains("signal-type"));
}
