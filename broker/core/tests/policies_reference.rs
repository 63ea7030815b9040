//! Every policy command of the Ditto reference, after the setup it needs, answers with the
//! reference response (status, topic, path, value), with revisions counting up; the events it
//! causes are Ditto policy events that, published, read back and applied to an empty policy,
//! rebuild the same policy. The errors twinwire answers policy commands with are the reference's
//! exceptions. This is the command handler alone, without the journal.

use serde_json::{json, Value};
use twinwire_core::policies::event::PolicyEvent;
use twinwire_core::policies::policy::PolicyEntity;
use twinwire_core::policies::state::{handle_with, PolicyCommand, PolicyConfig, PolicyOutcome};
use twinwire_protocol::signal::SignalKind;
use twinwire_protocol::topic::Criterion;
use twinwire_protocol::{Envelope, PolicyId};
use twinwire_tests::{policy_cases, protocol_examples, POLICY_CASES};

const NOW: &str = "2026-11-22T00:00:00.000Z";
const ID: &str = "org.eclipse.ditto:the_policy_id";

/// The reference's policy grants no one WRITE on `policy:/`: Ditto accepts it only with lockout
/// prevention off (see `twinwire_tests::policy_cases`).
fn reference_config() -> PolicyConfig {
    PolicyConfig {
        lockout_prevention: false,
        ..PolicyConfig::default()
    }
}

/// Runs one command; returns its response and, if it changed the policy, its event.
fn run(
    entity: &mut PolicyEntity,
    json: &Value,
    config: &PolicyConfig,
) -> (Envelope, Option<PolicyEvent>) {
    let env = Envelope::from_json(json.clone()).unwrap_or_else(|e| panic!("{json}: {e}"));
    let outcome =
        PolicyCommand::from_envelope(&env).and_then(|cmd| handle_with(entity, cmd, NOW, config));
    match outcome {
        Ok(outcome) => {
            let response = outcome.response_to(&env);
            let event = match outcome {
                PolicyOutcome::Changed { event, .. } => {
                    entity.apply(&event);
                    Some(*event)
                }
                PolicyOutcome::Retrieved(_) => None,
            };
            (response, event)
        }
        Err(e) => (env.error_response(&e), None),
    }
}

/// The event as a subscriber gets it: published, sent as JSON, read back, and checked to be a
/// Ditto policy event.
fn through_the_wire(id: &PolicyId, event: &PolicyEvent) -> Result<PolicyEvent, String> {
    let published = event.to_policy_envelope(id, Default::default()).to_json();
    let env = Envelope::from_json(published.clone()).map_err(|e| format!("{published}: {e}"))?;
    let signal = env.signal().map_err(|e| format!("{published}: {e}"))?;
    if signal.kind != SignalKind::Event || signal.prefix != "policies.events" {
        return Err(format!("{published} is a {signal}"));
    }
    let Criterion::Events(action) = env.topic.criterion else {
        return Err(format!("{published} has no event topic"));
    };
    Ok(PolicyEvent {
        action,
        path: env.path,
        value: env.value,
        revision: env.revision.unwrap_or_default(),
        timestamp: env.timestamp.unwrap_or_default(),
        metadata: None,
        headers: None,
    })
}

#[test]
fn every_reference_policy_command_answers_as_the_reference() {
    let cases = policy_cases();
    assert_eq!(
        cases.len(),
        POLICY_CASES,
        "the reference's policy commands changed"
    );
    let config = reference_config();
    let id = PolicyId::parse(ID).expect("id");
    let mut failures = Vec::new();
    for case in &cases {
        let mut entity = PolicyEntity::new(id.clone());
        let mut events = Vec::new();
        for setup in &case.setup {
            let (response, event) = run(&mut entity, setup, &config);
            if response.status.is_none_or(|s| s >= 300) {
                failures.push(format!(
                    "{}: setup {setup} answered {}",
                    case.name,
                    response.to_json()
                ));
            }
            events.extend(event);
        }
        let revision_before = entity.revision;
        let (response, event) = run(&mut entity, &case.command, &config);
        failures.extend(case.check(&response.to_json()));
        let changes = response.status.is_some_and(|s| s == 201 || s == 204);
        match &event {
            Some(e) if e.revision != revision_before + 1 => failures.push(format!(
                "{}: event revision {} after {revision_before}",
                case.name, e.revision
            )),
            None if changes => failures.push(format!("{}: no event", case.name)),
            _ => {}
        }
        events.extend(event);
        // Events are the state: what a subscriber and the journal see rebuilds the policy.
        let mut rebuilt = PolicyEntity::new(id.clone());
        let mut journaled = PolicyEntity::new(id.clone());
        for event in &events {
            match through_the_wire(&id, event) {
                Ok(e) => rebuilt.apply(&e),
                Err(e) => failures.push(format!("{}: {e}", case.name)),
            }
            let bytes = event.encode();
            match PolicyEvent::decode(ID, event.revision, &bytes) {
                Ok(e) => journaled.apply(&e),
                Err(e) => failures.push(format!("{}: {e}", case.name)),
            }
        }
        if rebuilt != entity || journaled != entity {
            failures.push(format!(
                "{}: events rebuild another policy:\n   live {:?}\n  wire {:?}\n  journal {:?}",
                case.name, entity.policy, rebuilt.policy, journaled.policy
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// The reference exception `policies_{name}.md`: its error object.
fn reference_error(name: &str) -> Value {
    let relative = format!("policies/exceptions/policies_{name}.md");
    protocol_examples()
        .into_iter()
        .find(|e| e.relative == relative)
        .map(|e| e.messages[0]["value"].clone())
        .unwrap_or_else(|| panic!("{relative}"))
}

fn command(action: &str, path: &str, value: Option<Value>) -> Value {
    let mut c = json!({
        "topic": format!("org.eclipse.ditto/the_policy_id/policies/commands/{action}"),
        "headers": {"correlation-id": "c"},
        "path": path,
    });
    if let Some(v) = value {
        c["value"] = v;
    }
    c
}

/// The reference policy, with lockout prevention satisfied by `the_label` itself granting its
/// subject WRITE on `policy:/` as well.
fn writable_reference_policy() -> Value {
    json!({"policyId": ID, "entries": {"the_label": {
        "subjects": {"google:the_subjectid": {"type": "yourSubjectTypeDescription"}},
        "resources": {
            "thing:/the_resource_path": {"grant": ["READ", "WRITE"], "revoke": []},
            "policy:/": {"grant": ["READ", "WRITE"], "revoke": []}
        }
    }}})
}

#[test]
fn refusals_are_the_reference_exceptions() {
    let create = command("create", "/", Some(writable_reference_policy()));
    let mut without_the_label = writable_reference_policy();
    let entry = without_the_label["entries"]["the_label"].take();
    without_the_label["entries"] = json!({"other": entry});
    let cases: Vec<(&str, Vec<Value>, Value)> = vec![
        (
            // Ditto's default: the reference policy itself locks its writers out.
            "policy_modificationinvalid",
            vec![],
            twinwire_tests::policy_cases()
                .into_iter()
                .find(|c| c.name.contains("createpolicy.md"))
                .expect("createpolicy case")
                .command,
        ),
        ("policy_conflict", vec![create.clone()], create.clone()),
        ("policy_notfound", vec![], command("retrieve", "/", None)),
        (
            "entry_notfound",
            vec![command("create", "/", Some(without_the_label))],
            command("retrieve", "/entries/the_label/subjects/google:x", None),
        ),
        (
            "subject_notfound",
            vec![
                create.clone(),
                command(
                    "modify",
                    "/entries/other",
                    Some(writable_reference_policy()["entries"]["the_label"].clone()),
                ),
                command(
                    "delete",
                    "/entries/the_label/subjects/google:the_subjectid",
                    None,
                ),
            ],
            command(
                "retrieve",
                "/entries/the_label/subjects/google:the_subjectid",
                None,
            ),
        ),
        (
            "entry_modificationinvalid",
            vec![create.clone()],
            command(
                "delete",
                "/entries/the_label/subjects/google:the_subjectid",
                None,
            ),
        ),
        (
            "subjectid_invalid",
            vec![create.clone()],
            command(
                "modify",
                "/entries/the_label/subjects/invalid subject",
                Some(json!({"type": "t"})),
            ),
        ),
        (
            "entry_invalid",
            vec![create.clone()],
            command(
                "modify",
                "/entries/the_label/resources/thing:/x",
                Some(json!({"grant": ["OWN"], "revoke": []})),
            ),
        ),
        (
            "id_invalid",
            vec![create.clone()],
            command("modify", "/imports/invalid id", Some(json!({}))),
        ),
    ];
    let config = PolicyConfig::default();
    let mut failures = Vec::new();
    for (name, setup, cmd) in cases {
        let mut entity = PolicyEntity::new(PolicyId::parse(ID).expect("id"));
        for s in &setup {
            let (response, _) = run(&mut entity, s, &config);
            assert!(
                response.status.is_some_and(|s| s < 300),
                "{name}: setup {s} answered {}",
                response.to_json()
            );
        }
        let (response, event) = run(&mut entity, &cmd, &config);
        let essentials = |v: &Value| json!({"status": v["status"], "error": v["error"], "message": v["message"], "description": v["description"]});
        let got = response.value.clone().unwrap_or_default();
        let want = reference_error(name);
        if essentials(&got) != essentials(&want) || event.is_some() {
            failures.push(format!(
                "{name}:\n   got {}\n  want {}",
                essentials(&got),
                essentials(&want)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
