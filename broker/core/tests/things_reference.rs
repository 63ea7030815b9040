//! Every thing command of the Ditto reference, after the setup it needs, answers with the
//! reference response and causes the reference event (status, topic, path, value), with
//! revisions counting up. This is the command handler alone; `twinwire pipe` repeats it with
//! the journal.

use serde_json::{json, Value};
use twinwire_core::things::{handle, Command, Outcome, ThingEntity};
use twinwire_protocol::{Envelope, ThingId};
use twinwire_tests::thing_cases;

const NOW: &str = "2026-11-22T00:00:00.000Z";

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
fn expected(case_name: &str, part: &str, reference: &Value, command: &Value) -> Value {
    let mut expected = reference.clone();
    if REFERENCE_VALUE_MISMATCHES.contains(&(case_name, part)) {
        expected["value"] = command["value"].clone();
    }
    expected
}

/// Runs one command; returns its response and, if it changed the thing, its event envelope.
fn run(entity: &mut ThingEntity, json: &Value) -> (Envelope, Option<Envelope>) {
    let env = Envelope::from_json(json.clone()).unwrap_or_else(|e| panic!("{json}: {e}"));
    let outcome = Command::from_envelope(&env).and_then(|cmd| handle(entity, cmd, NOW));
    match outcome {
        Ok(outcome) => {
            let response = outcome.response_to(&env);
            let event = match &outcome {
                Outcome::Changed { event, .. } => {
                    entity.apply(event);
                    Some(event.to_envelope(&entity.id, Default::default()))
                }
                Outcome::Retrieved(_) => None,
            };
            (response, event)
        }
        Err(e) => (env.error_response(&e), None),
    }
}

fn essentials(env: &Value) -> Value {
    json!({"topic": env["topic"], "path": env["path"], "value": env.get("value"), "status": env.get("status")})
}

fn event_essentials(env: &Value) -> Value {
    json!({"topic": env["topic"], "path": env["path"], "value": env.get("value")})
}

#[test]
fn every_reference_thing_command_answers_as_the_reference() {
    let cases = thing_cases();
    // 35 modify, 22 merge and 12 query command/response pairs (see SKIPPED_THING_CASES).
    assert_eq!(cases.len(), 69, "the reference's thing commands changed");
    let mut failures = Vec::new();
    for case in &cases {
        let mut entity =
            ThingEntity::new(ThingId::parse("org.eclipse.ditto:fancy-thing").expect("id"));
        for setup in &case.setup {
            let (response, _) = run(&mut entity, setup);
            if response.status.is_none_or(|s| s >= 300) {
                failures.push(format!(
                    "{}: setup {setup} answered {}",
                    case.name,
                    response.to_json()
                ));
            }
        }
        let revision_before = entity.revision;
        let (response, event) = run(&mut entity, &case.command);
        let want = expected(&case.name, "response", &case.response, &case.command);
        let (got, want) = (essentials(&response.to_json()), essentials(&want));
        if got != want {
            failures.push(format!("{}:\n   got {got}\n  want {want}", case.name));
        }
        match (&case.event, event) {
            (Some(want), Some(got)) => {
                let want = &expected(&case.name, "event", want, &case.command);
                let got = got.to_json();
                if event_essentials(&got) != event_essentials(want) {
                    failures.push(format!(
                        "{} event:\n   got {}\n  want {}",
                        case.name,
                        event_essentials(&got),
                        event_essentials(want)
                    ));
                }
                if got["revision"] != revision_before + 1 {
                    failures.push(format!(
                        "{}: event revision {} after {revision_before}",
                        case.name, got["revision"]
                    ));
                }
            }
            (Some(_), None) => failures.push(format!("{}: no event", case.name)),
            (None, Some(e)) => {
                failures.push(format!("{}: unexpected event {}", case.name, e.to_json()))
            }
            (None, None) => {}
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
