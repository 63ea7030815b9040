//! Shared helpers of twinwire's end-to-end and conformance tests: where the Ditto reference
//! lives and how to read its protocol examples; docs/configuration.md held to the code
//! ([`config_reference`]).

use std::path::{Path, PathBuf};

pub mod config_reference;

/// The Ditto reference folder: `$TWINWIRE_DITTO_REFERENCE`, else `../shared/ditto-reference`
/// beside the repository.
pub fn reference_dir() -> PathBuf {
    match std::env::var_os("TWINWIRE_DITTO_REFERENCE") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/ditto-reference"),
    }
}

/// One protocol example file and the JSON messages of its ```json blocks.
pub struct Example {
    /// The path below `protocol-examples/`, e.g. `things/events/attributecreated.md`.
    pub relative: String,
    pub messages: Vec<serde_json::Value>,
}

/// Every file of `protocol-examples`, sorted by path. Panics (a test helper) when the folder
/// or a block cannot be read, so a missing reference fails loudly.
pub fn protocol_examples() -> Vec<Example> {
    let root = reference_dir().join("protocol-examples");
    let mut files = Vec::new();
    collect_markdown(&root, &mut files);
    files.sort();
    assert!(
        !files.is_empty(),
        "no protocol examples under {}",
        root.display()
    );
    files
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let messages = json_blocks(&text)
                .into_iter()
                .map(|b| {
                    serde_json::from_str(&b).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
                })
                .collect();
            let relative = path
                .strip_prefix(&root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            Example { relative, messages }
        })
        .collect()
}

fn collect_markdown(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_markdown(&path, out);
        } else if path.extension().is_some_and(|e| e == "md") {
            out.push(path);
        }
    }
}

/// The contents of the ```json blocks of a Markdown text, without Liquid `{% raw %}` tags.
pub fn json_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match current.as_mut() {
            None if line.trim_start().starts_with("```json") => current = Some(String::new()),
            None => {}
            Some(_) if line.trim_start().starts_with("```") => blocks.extend(current.take()),
            Some(block) => {
                block.push_str(&line.replace("{% raw %}", "").replace("{% endraw %}", ""));
                block.push('\n');
            }
        }
    }
    blocks
}

/// One thing command of the reference with the setup it needs and the response and event the
/// reference gives for it. The reference's examples name one thing both `fancy-thing` and
/// `fancy-thing_53`; the cases use `fancy-thing` throughout.
#[derive(Debug, Clone)]
pub struct ThingCase {
    /// The command file and the response file, e.g. `modifyattribute.md -> modifyattributeresponsecreated.md`.
    pub name: String,
    /// Commands to run first, each of which must succeed.
    pub setup: Vec<serde_json::Value>,
    pub command: serde_json::Value,
    pub response: serde_json::Value,
    pub event: Option<serde_json::Value>,
}

/// Cases skipped, with why: they need what the twin engine issue does not build.
pub const SKIPPED_THING_CASES: &[(&str, &str)] = &[
    (
        "createthingalternatives.md",
        "_copyPolicyFrom needs policies (the policies issue)",
    ),
    (
        "modifythingalternatives.md",
        "_copyPolicyFrom needs policies (the policies issue)",
    ),
    (
        "modifypolicyidresponsecreated.md",
        "a thing always has a policy ID in API 2; this response cannot happen",
    ),
    (
        "retrievethings.md",
        "the reference response holds things the reference never creates",
    ),
    (
        "retrievethings-withfieldselector.md",
        "the reference response holds things the reference never creates",
    ),
    (
        "retrievething-withsnapshotrevision.md",
        "a plain retrieve; its response file is the plain retrieve's",
    ),
    (
        "retrievething-withfieldselector.md",
        "its response file shows the unselected thing; selection has its own tests",
    ),
    (
        "retrieveattributes-selectedfields.md",
        "its response file shows the unselected attributes",
    ),
    (
        "retrievefeatureproperties-selectedfields.md",
        "its response file shows the unselected properties",
    ),
    (
        "retrievefeaturedesiredproperties-selectedfields.md",
        "its response file shows the unselected properties",
    ),
];

fn normalize(value: &mut serde_json::Value) {
    use serde_json::Value;
    match value {
        Value::String(s) => *s = s.replace("fancy-thing_53", "fancy-thing"),
        Value::Array(a) => a.iter_mut().for_each(normalize),
        Value::Object(o) => o.values_mut().for_each(normalize),
        _ => {}
    }
}

/// Every thing command of the reference (modify, merge, query) paired with each of its
/// responses, and the event each must cause.
pub fn thing_cases() -> Vec<ThingCase> {
    use serde_json::{json, Value};
    let examples = protocol_examples();
    let find = |relative: &str| -> Option<Value> {
        examples.iter().find(|e| e.relative == relative).map(|e| {
            let mut v = e.messages[0].clone();
            normalize(&mut v);
            v
        })
    };
    let base = find("things/commands/modify/creatething.md").expect("creatething.md");
    let at = |cmd: &Value, action: &str, value: Option<&Value>| -> Value {
        let mut c = json!({
            "topic": cmd["topic"].as_str().unwrap_or_default().rsplit_once('/').map(|(t, _)| t).unwrap_or_default().to_owned() + "/" + action,
            "headers": {"correlation-id": "setup"},
            "path": cmd["path"].clone(),
        });
        if let Some(v) = value {
            c["value"] = v.clone();
        }
        c
    };
    // A thing that has a feature definition as well, so that every resource exists.
    let full_setup = || {
        vec![
            base.clone(),
            find("things/commands/modify/modifyfeaturedefinition.md")
                .expect("modifyfeaturedefinition.md"),
        ]
    };
    let mut cases = Vec::new();
    for example in &examples {
        let rel = &example.relative;
        let Some(file) = rel.strip_prefix("things/commands/") else {
            continue;
        };
        let (dir, stem) = file.split_once('/').expect("dir/file");
        let stem = stem.trim_end_matches(".md");
        if stem.contains("response")
            || SKIPPED_THING_CASES
                .iter()
                .any(|(f, _)| *f == format!("{stem}.md"))
        {
            continue;
        }
        let mut command = example.messages[0].clone();
        normalize(&mut command);
        let base_stem = stem.split('-').next().unwrap_or(stem);
        let responses: Vec<&Example> = examples
            .iter()
            .filter(|e| {
                e.relative
                    .starts_with(&format!("things/commands/{dir}/{base_stem}response"))
                    && !SKIPPED_THING_CASES
                        .iter()
                        .any(|(f, _)| e.relative.ends_with(f))
            })
            .collect();
        let path = command["path"].as_str().unwrap_or("/").to_owned();
        let modify_sibling = || {
            let resource = base_stem
                .trim_start_matches("delete")
                .trim_start_matches("mergedelete")
                .trim_start_matches("merge");
            find(&format!("things/commands/modify/modify{resource}.md"))
        };
        for response_example in responses {
            let mut response = response_example.messages[0].clone();
            normalize(&mut response);
            let variant = response_example
                .relative
                .rsplit("response")
                .next()
                .unwrap_or_default()
                .trim_end_matches(".md");
            let thing_level = path == "/";
            let (setup, event_file) = match dir {
                "query" => {
                    let mut setup = full_setup();
                    if !base_stem.ends_with("policyid") {
                        setup.push(at(&command, "modify", response.get("value")));
                    }
                    (setup, None)
                }
                "merge" => {
                    let mut setup = full_setup();
                    if base_stem.starts_with("mergedelete") {
                        if let Some(m) = modify_sibling() {
                            setup.push(m);
                        }
                    }
                    (
                        setup,
                        Some(format!(
                            "things/events/merged{}.md",
                            &base_stem["merge".len()..]
                        )),
                    )
                }
                _ => {
                    let (action, resource) = ["create", "modify", "delete"]
                        .iter()
                        .find_map(|a| base_stem.strip_prefix(a).map(|r| (*a, r)))
                        .expect("modify commands start with their action");
                    let event_action = match (action, variant) {
                        ("create", _) | (_, "created") => "created",
                        ("delete", _) => "deleted",
                        _ => "modified",
                    };
                    let setup = match (action, variant, thing_level) {
                        ("create", _, _) | (_, "created", true) => vec![],
                        (_, "created", false) => {
                            let mut s = full_setup();
                            s.push(at(&command, "delete", None));
                            s
                        }
                        ("delete", _, _) => {
                            let mut s = full_setup();
                            if let Some(m) = modify_sibling() {
                                s.push(m);
                            }
                            s
                        }
                        _ => {
                            let mut s = full_setup();
                            s.push(command.clone());
                            s
                        }
                    };
                    let resource = if resource == "thing" {
                        "thing".to_owned()
                    } else {
                        resource.to_owned()
                    };
                    (
                        setup,
                        Some(format!("things/events/{resource}{event_action}.md")),
                    )
                }
            };
            cases.push(ThingCase {
                name: format!("{rel} -> {}", response_example.relative),
                setup,
                command: command.clone(),
                response,
                event: event_file.and_then(|f| find(&f)),
            });
        }
    }
    cases
}

/// The number of [`thing_cases`]: 35 modify, 22 merge and 12 query command/response pairs
/// (see [`SKIPPED_THING_CASES`]).
pub const THING_CASES: usize = 69;

/// Cases whose reference response or event shows another value than the command sent (the
/// reference's examples were generated from different things). Ditto answers with the command's
/// own value, and so does twinwire: for these the value is compared with the command's.
const REFERENCE_VALUE_MISMATCHES: &[(&str, &str)] = &[
    ("things/commands/merge/mergething.md -> things/commands/merge/mergethingresponse.md", "event"),
    ("things/commands/modify/creatething.md -> things/commands/modify/createthingresponse.md", "event"),
    ("things/commands/modify/modifything.md -> things/commands/modify/modifythingresponse.md", "event"),
    ("things/commands/modify/modifything.md -> things/commands/modify/modifythingresponsecreated.md", "event"),
    (
        "things/commands/modify/modifyfeaturedesiredproperties.md -> things/commands/modify/modifyfeaturedesiredpropertiesresponsecreated.md",
        "response",
    ),
];

/// `expected` with its value replaced by the command's where the reference is inconsistent.
fn expected_with_command_value(
    case_name: &str,
    part: &str,
    reference: &serde_json::Value,
    command: &serde_json::Value,
) -> serde_json::Value {
    let mut expected = reference.clone();
    if REFERENCE_VALUE_MISMATCHES.contains(&(case_name, part)) {
        expected["value"] = command["value"].clone();
    }
    expected
}

fn essentials(env: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({"topic": env["topic"], "path": env["path"], "value": env.get("value"), "status": env.get("status")})
}

fn event_essentials(env: &serde_json::Value) -> serde_json::Value {
    serde_json::json!({"topic": env["topic"], "path": env["path"], "value": env.get("value")})
}

impl ThingCase {
    /// What differs between the reference and what twinwire answered (status, topic, path and
    /// value of the response; topic, path and value of the event; the event's revision one
    /// above `revision_before`). Empty when it answered as the reference.
    pub fn check(
        &self,
        response: &serde_json::Value,
        event: Option<&serde_json::Value>,
        revision_before: u64,
    ) -> Vec<String> {
        let mut failures = Vec::new();
        let want =
            expected_with_command_value(&self.name, "response", &self.response, &self.command);
        let (got, want) = (essentials(response), essentials(&want));
        if got != want {
            failures.push(format!("{}:\n   got {got}\n  want {want}", self.name));
        }
        match (&self.event, event) {
            (Some(want), Some(got)) => {
                let want = expected_with_command_value(&self.name, "event", want, &self.command);
                if event_essentials(got) != event_essentials(&want) {
                    failures.push(format!(
                        "{} event:\n   got {}\n  want {}",
                        self.name,
                        event_essentials(got),
                        event_essentials(&want)
                    ));
                }
                if got["revision"] != revision_before + 1 {
                    failures.push(format!(
                        "{}: event revision {} after {revision_before}",
                        self.name, got["revision"]
                    ));
                }
            }
            (Some(_), None) => failures.push(format!("{}: no event", self.name)),
            (None, Some(e)) => failures.push(format!("{}: unexpected event {e}", self.name)),
            (None, None) => {}
        }
        failures
    }
}

// ---------------------------------------------------------------------------------------------
// Policy commands.

/// One policy command of the reference with the setup it needs and the response the reference
/// gives for it. The reference has no policy event examples: the runner checks the events it
/// sees itself (they classify as Ditto policy events and rebuild the same policy).
#[derive(Debug, Clone)]
pub struct PolicyCase {
    /// The command file (with `#2` for its second example) and the response file.
    pub name: String,
    /// Commands to run first, each of which must succeed.
    pub setup: Vec<serde_json::Value>,
    pub command: serde_json::Value,
    pub response: serde_json::Value,
}

/// Policy command examples not paired with a response, with why.
pub const SKIPPED_POLICY_CASES: &[(&str, &str)] = &[(
    "retrievepolicy-withfieldselector.md",
    "no response file of its own; selection has its own tests",
)];

/// Every policy command of the reference (create, modify, delete, retrieve of the policy and its
/// parts) paired with each of its responses, after the setup it needs: the reference policy of
/// `createpolicy.md` (the policy `org.eclipse.ditto:the_policy_id` with the entry `the_label`),
/// minus the part a "created" response creates, plus the imports and entries a command refers to.
///
/// The reference policy grants no one WRITE on `policy:/`, so Ditto accepts it only with its
/// lockout prevention switched off (`policy-lockout-prevention-enabled = false`); run these cases
/// the same way.
pub fn policy_cases() -> Vec<PolicyCase> {
    use serde_json::{json, Value};
    let examples = protocol_examples();
    let message = |relative: &str, index: usize| -> Value {
        examples
            .iter()
            .find(|e| e.relative == relative)
            .and_then(|e| e.messages.get(index).cloned())
            .unwrap_or_else(|| panic!("{relative} #{index}"))
    };
    const DIR: &str = "policies/commands";
    const TOPIC: &str = "org.eclipse.ditto/the_policy_id/policies/commands";
    let setup_cmd = |action: &str, path: &str, value: Option<Value>| -> Value {
        let mut c = json!({
            "topic": format!("{TOPIC}/{action}"),
            "headers": {"correlation-id": "setup"},
            "path": path,
        });
        if let Some(v) = value {
            c["value"] = v;
        }
        c
    };
    let create = message(&format!("{DIR}/modify/createpolicy.md"), 0);
    // What references.md's reference list needs: the import it names and the local entry.
    let references_targets = || {
        vec![
            setup_cmd(
                "modify",
                "/imports/org.eclipse.ditto:imported-policy",
                Some(json!({"entries": ["IMPORTED_ENTRY"]})),
            ),
            setup_cmd(
                "modify",
                "/entries/LOCAL_ENTRY",
                Some(json!({"subjects": {"google:local": {"type": "local"}},
                    "resources": {"thing:/": {"grant": ["READ"], "revoke": []}}})),
            ),
        ]
    };
    let mut cases = Vec::new();
    for example in &examples {
        let rel = &example.relative;
        let Some(file) = rel.strip_prefix(&format!("{DIR}/")) else {
            continue;
        };
        let (dir, stem) = file.split_once('/').expect("dir/file");
        let stem = stem.trim_end_matches(".md");
        if stem.contains("response")
            || SKIPPED_POLICY_CASES
                .iter()
                .any(|(f, _)| *f == format!("{stem}.md"))
        {
            continue;
        }
        let responses: Vec<&Example> = examples
            .iter()
            .filter(|e| {
                e.relative
                    .starts_with(&format!("{DIR}/{dir}/{stem}response"))
            })
            .collect();
        for (index, command) in example.messages.iter().enumerate() {
            let path = command["path"].as_str().unwrap_or("/").to_owned();
            for response_example in &responses {
                let response = response_example.messages[0].clone();
                let created = response["status"] == 201;
                if index > 0 && created {
                    // The created response shows the first example's value only.
                    continue;
                }
                let mut setup = Vec::new();
                let reference_policy =
                    stem != "createpolicy" && !(stem == "modifypolicy" && created);
                if reference_policy {
                    setup.push(create.clone());
                }
                match stem {
                    "modifypolicyentry" | "modifyresource" | "modifysubject" if created => {
                        setup.push(setup_cmd("delete", &path, None));
                    }
                    "modifyimport" if !created => setup.push(command.clone()),
                    "deleteimport" => setup.push(setup_cmd(
                        "modify",
                        &path.replacen("/import/", "/imports/", 1),
                        Some(json!({"entries": ["IMPORTED_ENTRY"]})),
                    )),
                    "modifyreferences" => {
                        setup.extend(references_targets());
                        // Modified: the entry has these references already.
                        setup.push(command.clone());
                    }
                    "deletereferences" => {
                        setup.extend(references_targets());
                        setup.push(message(&format!("{DIR}/modify/modifyreferences.md"), 0));
                    }
                    "retrievereferences" => {
                        setup.extend(references_targets());
                        setup.push(setup_cmd("modify", &path, response.get("value").cloned()));
                    }
                    "retrieveimport" | "retrieveimports" | "retrievepolicyentries" => {
                        setup.push(setup_cmd("modify", &path, response.get("value").cloned()));
                    }
                    _ => {}
                }
                let suffix = if index > 0 {
                    format!("#{}", index + 1)
                } else {
                    String::new()
                };
                cases.push(PolicyCase {
                    name: format!("{rel}{suffix} -> {}", response_example.relative),
                    setup,
                    command: command.clone(),
                    response,
                });
            }
        }
    }
    cases
}

/// The number of [`policy_cases`]: 23 modify and 10 query command/response pairs (see
/// [`SKIPPED_POLICY_CASES`]).
pub const POLICY_CASES: usize = 33;

impl PolicyCase {
    /// What differs between the reference and what twinwire answered (status, topic, path and
    /// value of the response). Empty when it answered as the reference.
    pub fn check(&self, response: &serde_json::Value) -> Vec<String> {
        let (got, want) = (essentials(response), essentials(&self.response));
        if got == want {
            Vec::new()
        } else {
            vec![format!("{}:\n   got {got}\n  want {want}", self.name)]
        }
    }
}

/// Builds the cdylib of workspace package `package` and returns its file: by cargo itself
/// (`$CARGO`, the one running the tests) with `--message-format=json`, which names the file,
/// into `target_dir` (give each plugin test crate its own, under its `CARGO_TARGET_TMPDIR`: a
/// cdylib's file name carries no hash, so a build of the shared target directory with other
/// features could replace it while a test loads it). Release when the tests are. Panics (a test
/// helper) when the build fails.
pub fn build_plugin(package: &str, target_dir: &Path) -> PathBuf {
    use std::process::Command;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .args([
            "build",
            "--message-format=json-render-diagnostics",
            "-p",
            package,
        ])
        .arg("--target-dir")
        .arg(target_dir);
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    let started = std::time::Instant::now();
    let output = command.output().expect("run cargo to build a plugin");
    assert!(
        output.status.success(),
        "building {package} failed ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    let file = output
        .stdout
        .split(|b| *b == b'\n')
        .filter_map(|line| serde_json::from_slice::<serde_json::Value>(line).ok())
        .filter(|msg| msg["reason"] == "compiler-artifact")
        .filter(|msg| {
            msg["target"]["kind"]
                .as_array()
                .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"))
        })
        .filter(|msg| {
            msg["package_id"].as_str().is_some_and(|id| {
                id.contains(&format!("#{package}@")) || id.starts_with(&format!("{package} "))
            })
        })
        .find_map(|msg| {
            msg["filenames"].as_array()?.iter().find_map(|f| {
                f.as_str()
                    .filter(|f| f.ends_with(std::env::consts::DLL_SUFFIX))
                    .map(PathBuf::from)
            })
        })
        .unwrap_or_else(|| panic!("cargo named no cdylib of {package}"));
    eprintln!(
        "{package} built in {:?}: {}",
        started.elapsed(),
        file.display()
    );
    file
}

/// The Mosquitto server binary: on the PATH, or where Debian puts it (/usr/sbin, which is not on
/// every user's PATH).
pub fn mosquitto_binary() -> PathBuf {
    let on_path = std::env::var_os("PATH").is_some_and(|path| {
        std::env::split_paths(&path).any(|dir| dir.join("mosquitto").is_file())
    });
    if on_path {
        PathBuf::from("mosquitto")
    } else {
        PathBuf::from("/usr/sbin/mosquitto")
    }
}
