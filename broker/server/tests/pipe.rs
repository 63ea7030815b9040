//! `twinwire pipe` as a user runs it: the real binary, a real journal in a temp directory.
//! Every thing command of the reference answers as the reference; things persist across runs;
//! history answers earlier revisions; and a process killed with SIGKILL under load loses no
//! command it had answered with success, half-applies none, and goes on without a revision gap.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use twinwire_tests::{policy_cases, thing_cases, POLICY_CASES, THING_CASES};

fn pipe(data_dir: &std::path::Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_twinwire"));
    c.args(["pipe", "--data-dir"]).arg(data_dir);
    c
}

/// Runs the pipe over `lines` and returns its output lines as JSON.
fn run_pipe(data_dir: &std::path::Path, lines: &[Value]) -> Vec<Value> {
    run_pipe_with(data_dir, &[], lines)
}

/// [`run_pipe`] with more command-line arguments.
fn run_pipe_with(data_dir: &std::path::Path, args: &[&str], lines: &[Value]) -> Vec<Value> {
    let mut child = pipe(data_dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn twinwire pipe");
    let mut stdin = child.stdin.take().expect("stdin");
    let input: String = lines.iter().map(|l| format!("{l}\n")).collect();
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("pipe runs");
    writer.join().expect("writer").expect("write stdin");
    assert!(
        output.status.success(),
        "pipe exited with {}",
        output.status
    );
    String::from_utf8(output.stdout)
        .expect("UTF-8")
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON: {l}: {e}")))
        .collect()
}

fn correlation(v: &Value) -> &str {
    v["headers"]["correlation-id"].as_str().unwrap_or_default()
}

fn is_event(v: &Value) -> bool {
    v["topic"].as_str().is_some_and(|t| t.contains("/events/"))
}

/// The JSON with every `fancy-thing` renamed, so each case has a thing of its own.
fn renamed(v: &Value, name: &str, correlation_id: &str) -> Value {
    let mut v: Value =
        serde_json::from_str(&v.to_string().replace("fancy-thing", name)).expect("JSON");
    v["headers"]["correlation-id"] = json!(correlation_id);
    v
}

#[test]
fn every_reference_thing_command_answers_as_the_reference_through_the_pipe() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = thing_cases();
    assert_eq!(cases.len(), THING_CASES);
    // The reference's things name the policy `org.eclipse.ditto:the_policy_id`: it must exist
    // and let the pipe's subject do everything.
    let mut input = vec![json!({
        "topic": "org.eclipse.ditto/the_policy_id/policies/commands/create",
        "headers": {"correlation-id": "policy"}, "path": "/",
        "value": {"entries": {"all": {
            "subjects": {"pre-authenticated:twinwire-pipe": {"type": "test"}},
            "resources": {"thing:/": {"grant": ["READ", "WRITE"], "revoke": []},
                          "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}}
        }}}
    })];
    let mut renamed_cases = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        let name = format!("fancy-thing-{i}");
        for (k, setup) in case.setup.iter().enumerate() {
            input.push(renamed(setup, &name, &format!("c{i}-setup-{k}")));
        }
        input.push(renamed(&case.command, &name, &format!("c{i}-command")));
        let mut case = case.clone();
        case.command = renamed(&case.command, &name, "");
        case.response = renamed(&case.response, &name, "");
        case.event = case.event.as_ref().map(|e| renamed(e, &name, ""));
        renamed_cases.push(case);
    }
    let output = run_pipe(dir.path(), &input);
    let mut by_correlation: HashMap<&str, Vec<&Value>> = HashMap::new();
    for line in &output {
        by_correlation
            .entry(correlation(line))
            .or_default()
            .push(line);
    }
    let mut failures = Vec::new();
    for (i, case) in renamed_cases.iter().enumerate() {
        let mut revision_before = 0;
        for k in 0..case.setup.len() {
            let lines = by_correlation
                .get(format!("c{i}-setup-{k}").as_str())
                .cloned()
                .unwrap_or_default();
            match lines.iter().find(|l| !is_event(l)) {
                Some(r) if r["status"].as_u64().is_some_and(|s| s < 300) => {}
                other => failures.push(format!("{}: setup {k} answered {other:?}", case.name)),
            }
            revision_before += lines.iter().filter(|l| is_event(l)).count() as u64;
        }
        let lines = by_correlation
            .get(format!("c{i}-command").as_str())
            .cloned()
            .unwrap_or_default();
        let Some(response) = lines.iter().find(|l| !is_event(l)) else {
            failures.push(format!("{}: no response", case.name));
            continue;
        };
        let event = lines.iter().find(|l| is_event(l)).copied();
        failures.extend(case.check(response, event, revision_before));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Ditto's generated policy examples assume no enforcement and no lockout prevention (their
/// policy grants nobody `policy:/`): the pipe runs them `--unrestricted` with lockout prevention
/// off, each case on a policy of its own.
#[test]
fn every_reference_policy_command_answers_as_the_reference_through_the_pipe() {
    let dir = tempfile::tempdir().expect("temp dir");
    let cases = policy_cases();
    assert_eq!(cases.len(), POLICY_CASES);
    let rename = |v: &Value, i: usize, id: &str| -> Value {
        let mut v: Value = serde_json::from_str(
            &v.to_string()
                .replace("the_policy_id", &format!("the_policy_id-{i}")),
        )
        .expect("JSON");
        v["headers"]["correlation-id"] = json!(id);
        v
    };
    let mut input = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        for (k, setup) in case.setup.iter().enumerate() {
            input.push(rename(setup, i, &format!("p{i}-setup-{k}")));
        }
        input.push(rename(&case.command, i, &format!("p{i}-command")));
    }
    let output = run_pipe_with(
        dir.path(),
        &["--unrestricted", "--policy-lockout-prevention", "false"],
        &input,
    );
    let answer = |id: &str| {
        output
            .iter()
            .find(|l| correlation(l) == id && !is_event(l))
            .cloned()
    };
    let mut failures = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        for k in 0..case.setup.len() {
            match answer(&format!("p{i}-setup-{k}")) {
                Some(r) if r["status"].as_u64().is_some_and(|s| s < 300) => {}
                other => failures.push(format!("{}: setup {k} answered {other:?}", case.name)),
            }
        }
        let Some(response) = answer(&format!("p{i}-command")) else {
            failures.push(format!("{}: no response", case.name));
            continue;
        };
        let mut expected = case.clone();
        expected.response = rename(&case.response, i, "");
        failures.extend(expected.check(&response));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn things_persist_across_runs_and_history_answers_earlier_revisions() {
    let dir = tempfile::tempdir().expect("temp dir");
    let t = "org.eclipse.ditto/persistent/things/twin/commands";
    let first = run_pipe(
        dir.path(),
        &[
            json!({"topic": format!("{t}/create"), "headers": {"correlation-id": "1"}, "path": "/", "value": {"attributes": {"v": 1}}}),
            json!({"topic": format!("{t}/modify"), "headers": {"correlation-id": "2"}, "path": "/attributes/v", "value": 2}),
        ],
    );
    assert_eq!(first.len(), 4, "two responses and two events: {first:#?}");
    let second = run_pipe(
        dir.path(),
        &[
            json!({"topic": format!("{t}/retrieve"), "headers": {"correlation-id": "3"}, "path": "/attributes/v"}),
            json!({"topic": format!("{t}/retrieve"), "headers": {"correlation-id": "4", "at-historical-revision": 1}, "path": "/attributes/v"}),
            json!({"topic": format!("{t}/modify"), "headers": {"correlation-id": "5"}, "path": "/attributes/v", "value": 3}),
            json!({"topic": format!("{t}/retrieve"), "headers": {"correlation-id": "6", "at-historical-revision": 9}, "path": "/"}),
        ],
    );
    assert_eq!(second[0]["value"], 2);
    assert_eq!(second[0]["headers"]["etag"], "\"rev:2\"");
    assert_eq!(second[1]["value"], 1);
    assert_eq!(
        (second[2]["status"].clone(), second[3]["revision"].clone()),
        (json!(204), json!(3))
    );
    assert_eq!(second[4]["value"]["error"], "things:thing.history.notfound");
}

#[test]
fn bad_lines_get_error_responses_and_the_rest_goes_on() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = pipe(dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(
            concat!(
                "not json\n",
                r#"{"topic":"org.eclipse.ditto/x/things/twin/commands/modify","headers":{"correlation-id":"bad-path"},"path":"/colour","value":1}"#,
                "\n",
                r#"{"topic":"org.eclipse.ditto/x/things/twin/commands/retrieve","headers":{"correlation-id":"missing"},"path":"/"}"#,
                "\n",
                r#"{"topic":"org.eclipse.ditto/p/policies/commands/retrieve","headers":{"correlation-id":"policy"},"path":"/"}"#,
                "\n",
            )
            .as_bytes(),
        )
        .expect("write");
    drop(stdin);
    let output = child.wait_with_output().expect("run");
    assert!(output.status.success());
    let lines: Vec<Value> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let codes: Vec<&str> = lines
        .iter()
        .map(|l| l["value"]["error"].as_str().unwrap_or("-"))
        .collect();
    assert_eq!(
        codes,
        [
            "json.invalid",
            "protocoladapter:unknown.path",
            "things:thing.notfound",
            "policies:policy.notfound"
        ]
    );
    assert_eq!(correlation(&lines[1]), "bad-path");
    assert_eq!(lines[3]["topic"], "org.eclipse.ditto/p/policies/errors");
}

/// Modifies `things` things round-robin, each command setting an attribute to its sequence
/// number, from a writer thread; returns the child and the reader of its stdout.
fn loaded_pipe(
    data_dir: &std::path::Path,
    things: usize,
) -> (std::process::Child, std::thread::JoinHandle<()>) {
    let mut child = pipe(data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn pipe");
    let mut stdin = child.stdin.take().expect("stdin");
    let writer = std::thread::spawn(move || {
        for n in 0..things {
            let create = json!({"topic": format!("org.eclipse.ditto/crash-{n}/things/twin/commands/create"),
                "headers": {"correlation-id": format!("create-{n}")}, "path": "/", "value": {"attributes": {"seq": 0}}});
            if writeln!(stdin, "{create}").is_err() {
                return;
            }
        }
        for seq in 1.. {
            let n = seq % things;
            let modify = json!({"topic": format!("org.eclipse.ditto/crash-{n}/things/twin/commands/modify"),
                "headers": {"correlation-id": format!("m-{n}-{seq}")}, "path": "/attributes/seq", "value": seq});
            // The pipe is killed under this loop: a failed write ends it.
            if writeln!(stdin, "{modify}").is_err() {
                return;
            }
        }
    });
    (child, writer)
}

#[test]
fn a_sigkill_under_load_loses_no_answered_command_and_leaves_no_gap() {
    const THINGS: usize = 50;
    const ANSWERED_BEFORE_KILL: usize = 3_000;
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut child, writer) = loaded_pipe(dir.path(), THINGS);
    let stdout = child.stdout.take().expect("stdout");
    // For every thing: the highest sequence answered with success, and its revision then.
    let mut acknowledged: HashMap<usize, (u64, u64)> = HashMap::new();
    let mut answered = 0;
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut lines = BufReader::new(stdout).lines();
    let mut pending_revision: HashMap<String, u64> = HashMap::new();
    while answered < ANSWERED_BEFORE_KILL && Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        let v: Value = serde_json::from_str(&line).expect("JSON line");
        let id = correlation(&v).to_owned();
        if is_event(&v) {
            // A command's event follows its response; remember the revision it was given.
            if let Some(rev) = v["revision"].as_u64() {
                pending_revision.insert(id.clone(), rev);
                if let Some(rest) = id.strip_prefix("m-") {
                    let (n, seq) = rest.split_once('-').expect("m-N-SEQ");
                    let (n, seq): (usize, u64) = (n.parse().expect("n"), seq.parse().expect("seq"));
                    let entry = acknowledged.entry(n).or_insert((0, 0));
                    if seq > entry.0 {
                        *entry = (seq, rev);
                    }
                }
            }
            continue;
        }
        assert!(
            v["status"].as_u64().is_some_and(|s| s < 300),
            "a command failed under load: {v}"
        );
        answered += 1;
    }
    assert!(
        answered >= ANSWERED_BEFORE_KILL,
        "only {answered} answers before the deadline"
    );
    child.kill().expect("SIGKILL"); // Child::kill sends SIGKILL on Unix
    let _ = child.wait();
    let _ = writer.join();

    // After the restart every answered modify is there, and the next revision follows on.
    let mut check = Vec::new();
    for n in 0..THINGS {
        check.push(json!({"topic": format!("org.eclipse.ditto/crash-{n}/things/twin/commands/retrieve"),
            "headers": {"correlation-id": format!("r-{n}")}, "path": "/", "fields": "attributes,_revision"}));
        check.push(json!({"topic": format!("org.eclipse.ditto/crash-{n}/things/twin/commands/modify"),
            "headers": {"correlation-id": format!("after-{n}")}, "path": "/attributes/after", "value": true}));
    }
    let output = run_pipe(dir.path(), &check);
    let find = |id: &str| {
        output
            .iter()
            .filter(|l| correlation(l) == id)
            .cloned()
            .collect::<Vec<_>>()
    };
    let mut verified = 0;
    for n in 0..THINGS {
        let retrieved = &find(&format!("r-{n}"))[0];
        assert_eq!(retrieved["status"], 200, "thing {n} lost: {retrieved}");
        let seq = retrieved["value"]["attributes"]["seq"]
            .as_u64()
            .expect("seq");
        let revision = retrieved["value"]["_revision"].as_u64().expect("_revision");
        if let Some((acked_seq, acked_rev)) = acknowledged.get(&n) {
            assert!(
                seq >= *acked_seq,
                "thing {n}: answered seq {acked_seq} but recovered {seq}"
            );
            assert!(
                revision >= *acked_rev,
                "thing {n}: answered revision {acked_rev} but recovered {revision}"
            );
            verified += 1;
        }
        // One command, one event, one revision: the recovered state is whole, never half a
        // command: the value is the create's 0 or one of this thing's own modifies.
        assert!(
            seq == 0 || seq % THINGS as u64 == n as u64,
            "thing {n} holds another thing's value {seq}"
        );
        let after = find(&format!("after-{n}"));
        let event = after
            .iter()
            .find(|l| is_event(l))
            .expect("the modify after restart has an event");
        assert_eq!(
            event["revision"].as_u64(),
            Some(revision + 1),
            "thing {n}: revision gap after restart"
        );
    }
    assert!(
        verified >= THINGS / 2,
        "too few things had answered modifies: {verified}"
    );
}

/// History reads the journal: a historical retrieve right behind the changes it asks about, in
/// the same run, must still see them (it waits until they are on disk).
#[test]
fn history_sees_changes_made_just_before_in_the_same_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let examples =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/lamp.jsonl");
    let lines: Vec<Value> = std::fs::read_to_string(examples)
        .expect("examples/lamp.jsonl")
        .lines()
        .map(|l| serde_json::from_str(l).expect("JSON"))
        .collect();
    let output = run_pipe(dir.path(), &lines);
    let answer = |id: &str| {
        output
            .iter()
            .find(|l| correlation(l) == id && !is_event(l))
            .cloned()
            .expect(id)
    };
    assert_eq!(
        answer("as-created")["value"],
        json!({"on": false, "brightness": 0})
    );
    assert_eq!(answer("only-if-on")["status"], 204, "the condition held");
    assert_eq!(
        answer("read")["value"],
        json!({"thingId": "org.eclipse.ditto:lamp-1", "features": {"light": {"properties": {"on": true, "brightness": 80}}}, "_revision": 4})
    );
}

/// `--subject` is who the commands act as, repeatable: a thing created by one subject (with its
/// default policy) is invisible to another, and visible to a pipe acting as both.
#[test]
fn the_pipe_enforces_its_subjects() {
    let dir = tempfile::tempdir().expect("temp dir");
    let t = "org.eclipse.ditto/guarded/things/twin/commands";
    let create = json!({"topic": format!("{t}/create"), "headers": {"correlation-id": "c"}, "path": "/", "value": {"attributes": {"x": 1}}});
    let retrieve = json!({"topic": format!("{t}/retrieve"), "headers": {"correlation-id": "r"}, "path": "/attributes/x"});
    let out = run_pipe_with(dir.path(), &["--subject", "nginx:alice"], &[create]);
    assert_eq!(out[0]["status"], 201);
    assert_eq!(out[1]["headers"]["ditto-originator"], "nginx:alice");
    let out = run_pipe_with(
        dir.path(),
        &["--subject", "nginx:bob"],
        std::slice::from_ref(&retrieve),
    );
    assert_eq!(
        (out[0]["status"].clone(), out[0]["value"]["error"].clone()),
        (json!(404), json!("things:attribute.notfound"))
    );
    let out = run_pipe_with(
        dir.path(),
        &["--subject", "nginx:bob", "--subject", "nginx:alice"],
        &[retrieve],
    );
    assert_eq!(
        (out[0]["status"].clone(), out[0]["value"].clone()),
        (json!(200), json!(1))
    );
    let status = pipe(dir.path())
        .args(["--subject", "no-colon"])
        .stdin(Stdio::null())
        .status()
        .expect("run");
    assert_eq!(
        status.code(),
        Some(2),
        "a malformed subject is a usage error"
    );
}

/// Policies live in the journal too: after a restart the policy is there at its revision, and
/// it still decides who may do what.
#[test]
fn policies_persist_across_runs_and_keep_enforcing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let p = "org.eclipse.ditto/kept/policies/commands";
    let rw = json!({"grant": ["READ", "WRITE"], "revoke": []});
    let first = run_pipe_with(
        dir.path(),
        &["--subject", "nginx:owner"],
        &[
            json!({"topic": format!("{p}/create"), "headers": {"correlation-id": "p"}, "path": "/",
                "value": {"entries": {"OWNER": {"subjects": {"nginx:owner": {"type": "t"}},
                    "resources": {"policy:/": rw, "thing:/": rw}}}}}),
            json!({"topic": format!("{p}/modify"), "headers": {"correlation-id": "e"}, "path": "/entries/GUEST",
                "value": {"subjects": {"nginx:guest": {"type": "t"}}, "resources": {"thing:/attributes": {"grant": ["READ"], "revoke": []}}}}),
            json!({"topic": "org.eclipse.ditto/kept-thing/things/twin/commands/create", "headers": {"correlation-id": "t"}, "path": "/",
                "value": {"policyId": "org.eclipse.ditto:kept", "attributes": {"a": 1}, "features": {"f": {"properties": {"p": 2}}}}}),
        ],
    );
    let statuses: Vec<Value> = first
        .iter()
        .filter(|l| !is_event(l))
        .map(|l| l["status"].clone())
        .collect();
    assert_eq!(statuses, [json!(201), json!(201), json!(201)], "{first:#?}");
    let second = run_pipe_with(
        dir.path(),
        &["--subject", "nginx:guest"],
        &[
            json!({"topic": "org.eclipse.ditto/kept-thing/things/twin/commands/retrieve", "headers": {"correlation-id": "r"}, "path": "/"}),
        ],
    );
    assert_eq!(second[0]["status"], 200);
    assert_eq!(second[0]["value"]["attributes"], json!({"a": 1}));
    assert!(
        second[0]["value"].get("features").is_none(),
        "the guest reads attributes only"
    );
    let third = run_pipe_with(
        dir.path(),
        &["--subject", "nginx:owner"],
        &[
            json!({"topic": format!("{p}/retrieve"), "headers": {"correlation-id": "q"}, "path": "/"}),
        ],
    );
    assert_eq!(third[0]["headers"]["etag"], "\"rev:2\"");
    assert!(third[0]["value"]["entries"].get("GUEST").is_some());
}
