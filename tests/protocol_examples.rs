//! Conformance over all of Ditto's generated protocol examples: every message parses, its
//! signal type is the one its file names (by Ditto's own signal names), an exception carries the
//! error code its file names, and serialising it back gives the same JSON value.

use serde_json::Value;
use twinwire_protocol::signal::SignalKind;
use twinwire_protocol::Envelope;
use twinwire_tests::protocol_examples;

/// The number of files in the reference's protocol-examples folder.
const REFERENCE_FILES: usize = 320;

/// Ditto's signal names (the `NAME` constants of its signal classes) that the examples use.
/// `policyIdCreated` is the one exception: Ditto derives it from the topic and path but has no
/// class for it; the reference has an example of it all the same.
const DITTO_NAMES: &[&str] = &[
    "createThing",
    "modifyThing",
    "retrieveThing",
    "deleteThing",
    "retrieveThings",
    "mergeThing",
    "modifyPolicyId",
    "retrievePolicyId",
    "modifyDefinition",
    "retrieveDefinition",
    "deleteDefinition",
    "modifyAttributes",
    "retrieveAttributes",
    "deleteAttributes",
    "modifyAttribute",
    "retrieveAttribute",
    "deleteAttribute",
    "modifyFeatures",
    "retrieveFeatures",
    "deleteFeatures",
    "modifyFeature",
    "retrieveFeature",
    "deleteFeature",
    "modifyFeatureDefinition",
    "retrieveFeatureDefinition",
    "deleteFeatureDefinition",
    "modifyFeatureProperties",
    "retrieveFeatureProperties",
    "deleteFeatureProperties",
    "modifyFeatureProperty",
    "retrieveFeatureProperty",
    "deleteFeatureProperty",
    "modifyFeatureDesiredProperties",
    "retrieveFeatureDesiredProperties",
    "deleteFeatureDesiredProperties",
    "modifyFeatureDesiredProperty",
    "retrieveFeatureDesiredProperty",
    "deleteFeatureDesiredProperty",
    "thingCreated",
    "thingModified",
    "thingDeleted",
    "thingMerged",
    "policyIdModified",
    "policyIdCreated",
    "definitionCreated",
    "definitionModified",
    "definitionDeleted",
    "attributesCreated",
    "attributesModified",
    "attributesDeleted",
    "attributeCreated",
    "attributeModified",
    "attributeDeleted",
    "featuresCreated",
    "featuresModified",
    "featuresDeleted",
    "featureCreated",
    "featureModified",
    "featureDeleted",
    "featureDefinitionCreated",
    "featureDefinitionModified",
    "featureDefinitionDeleted",
    "featurePropertiesCreated",
    "featurePropertiesModified",
    "featurePropertiesDeleted",
    "featurePropertyCreated",
    "featurePropertyModified",
    "featurePropertyDeleted",
    "featureDesiredPropertiesCreated",
    "featureDesiredPropertiesModified",
    "featureDesiredPropertiesDeleted",
    "featureDesiredPropertyCreated",
    "featureDesiredPropertyModified",
    "featureDesiredPropertyDeleted",
    "createPolicy",
    "modifyPolicy",
    "retrievePolicy",
    "deletePolicy",
    "modifyPolicyEntries",
    "retrievePolicyEntries",
    "modifyPolicyEntry",
    "retrievePolicyEntry",
    "deletePolicyEntry",
    "modifyResources",
    "retrieveResources",
    "modifyResource",
    "retrieveResource",
    "deleteResource",
    "modifySubjects",
    "retrieveSubjects",
    "modifySubject",
    "retrieveSubject",
    "deleteSubject",
    "modifyPolicyImports",
    "retrievePolicyImports",
    "modifyPolicyImport",
    "retrievePolicyImport",
    "deletePolicyImport",
    "modifyPolicyEntryReferences",
    "retrievePolicyEntryReferences",
    "deletePolicyEntryReferences",
    "errorResponse",
    "subscribe",
    "request",
    "cancel",
    "created",
    "next",
    "complete",
    "failed",
    "subjectDeletion",
    "opened",
    "closed",
];

/// The signal type (and error code) a file's name names, as `protocol check` prints it, with
/// the name compared case-insensitively: file names are lower case.
fn expected(relative: &str) -> (String, String, Option<String>) {
    let parts: Vec<&str> = relative.trim_end_matches(".md").split('/').collect();
    let stem = parts[parts.len() - 1];
    match parts.as_slice() {
        [group, "exceptions", _] => {
            let (service, rest) = stem
                .split_once('_')
                .expect("exception file names are service_code");
            let code = format!("{service}:{}", rest.replace('_', "."));
            let prefix = match *group {
                "things" => "things.responses",
                "policies" => "policies.responses",
                _ => "thing-search.responses",
            };
            (prefix.into(), "errorresponse".into(), Some(code))
        }
        ["search", "commands", _] => {
            let name = match stem.trim_end_matches("-subscription-command") {
                "create" => "subscribe",
                other => other,
            };
            ("thing-search.commands".into(), name.into(), None)
        }
        ["search", "events", _] => {
            let name = match stem
                .trim_start_matches("subscription-")
                .trim_end_matches("-event")
            {
                "has-next" => "next",
                other => other,
            };
            ("thing-search.subscription.events".into(), name.into(), None)
        }
        ["connections", "announcements", _] => (
            "connectivity.announcements".into(),
            stem.trim_end_matches("Connection").to_lowercase(),
            None,
        ),
        ["policies", "announcements", _] => {
            ("policies.announcements".into(), stem.to_lowercase(), None)
        }
        [group, "events", _] => {
            let name = if stem.starts_with("merged") {
                "thingmerged".into()
            } else {
                stem.replace("thingdefinition", "definition")
            };
            (format!("{group}.events"), name, None)
        }
        [group, "commands", _, _] => {
            let mut name = stem;
            for suffix in [
                "-withfieldselector",
                "-selectedfields",
                "-withsnapshotrevision",
                "alternatives",
            ] {
                name = name.trim_end_matches(suffix);
            }
            let mut kind = "commands";
            for suffix in ["responsecreated", "responsemodified", "response"] {
                if let Some(n) = name.strip_suffix(suffix) {
                    name = n;
                    kind = "responses";
                    break;
                }
            }
            let name = if *group == "things" {
                if name.starts_with("merge") {
                    "mergething".into()
                } else {
                    name.replace("thingdefinition", "definition")
                }
            } else {
                name.replace("references", "policyentryreferences")
                    .replace("import", "policyimport")
            };
            (format!("{group}.{kind}"), name, None)
        }
        _ => panic!("unexpected example location {relative}"),
    }
}

#[test]
fn every_reference_example_parses_classifies_and_round_trips() {
    let examples = protocol_examples();
    assert_eq!(
        examples.len(),
        REFERENCE_FILES,
        "the reference folder changed"
    );
    let mut failures = Vec::new();
    let mut messages = 0;
    for example in &examples {
        let (prefix, name, code) = expected(&example.relative);
        assert!(
            !example.messages.is_empty(),
            "{}: no ```json block",
            example.relative
        );
        for json in &example.messages {
            messages += 1;
            let env = match Envelope::from_json(json.clone()) {
                Ok(env) => env,
                Err(e) => {
                    failures.push(format!("{}: does not parse: {e}", example.relative));
                    continue;
                }
            };
            let signal = match env.signal() {
                Ok(s) => s,
                Err(e) => {
                    failures.push(format!("{}: does not classify: {e}", example.relative));
                    continue;
                }
            };
            if signal.prefix != prefix || signal.name.to_lowercase() != name {
                failures.push(format!(
                    "{}: classified as {signal}, file names {prefix}:{name}",
                    example.relative
                ));
            }
            if !DITTO_NAMES.contains(&signal.name.as_ref()) {
                failures.push(format!(
                    "{}: {} is not one of Ditto's signal names",
                    example.relative, signal.name
                ));
            }
            if let Some(code) = &code {
                assert_eq!(signal.kind, SignalKind::ErrorResponse);
                let got = env
                    .value
                    .as_ref()
                    .and_then(|v| v.get("error"))
                    .and_then(Value::as_str);
                // File names flatten camelCase (`desired_properties` for `desiredProperties`).
                let flat = |c: &str| c.replace('.', "").to_lowercase();
                if got.map(flat) != Some(flat(code)) {
                    failures.push(format!(
                        "{}: error code {got:?}, file names {code}",
                        example.relative
                    ));
                }
            }
            if env.to_json() != *json {
                failures.push(format!(
                    "{}: does not round-trip:\n  {json}\n  {}",
                    example.relative,
                    env.to_json()
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(messages >= REFERENCE_FILES);
}
