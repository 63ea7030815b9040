//! Every thing command of the Ditto reference, after the setup it needs, answers with the
//! reference response and causes the reference event (status, topic, path, value), with
//! revisions counting up. This is the command handler alone; `twinwire pipe` repeats it with
//! the journal (broker/server/tests/pipe.rs).

use serde_json::Value;
use twinwire_core::things::{handle, Command, Outcome, ThingEntity};
use twinwire_protocol::{Envelope, ThingId};
use twinwire_tests::{thing_cases, THING_CASES};

const NOW: &str = "2026-11-22T00:00:00.000Z";

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
                    Some(event.to_thing_envelope(&entity.id, Default::default()))
                }
                Outcome::Retrieved(_) => None,
            };
            (response, event)
        }
        Err(e) => (env.error_response(&e), None),
    }
}

#[test]
fn every_reference_thing_command_answers_as_the_reference() {
    let cases = thing_cases();
    assert_eq!(
        cases.len(),
        THING_CASES,
        "the reference's thing commands changed"
    );
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
        let event = event.map(|e| e.to_json());
        failures.extend(case.check(&response.to_json(), event.as_ref(), revision_before));
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
