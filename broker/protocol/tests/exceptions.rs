//! Every exception example of the Ditto protocol reference must be reproduced, byte for byte, by
//! its constructor in `twinwire_protocol::exceptions`; an example without a constructor fails.

use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use twinwire_protocol::error::DittoError;
use twinwire_protocol::exceptions::{policies, search, things};

const FOLDERS: [&str; 3] = ["things", "policies", "search"];

/// Each example's constructor, given the entity ID its topic names (`ns/name` → `ns:name`); the
/// other arguments are the values the example's message shows.
type Case = (&'static str, fn(&str) -> DittoError);

const CASES: &[Case] = &[
    ("things_attribute_notfound", |t| {
        things::attribute_not_found(t, "/location")
    }),
    ("things_attribute_notmodifiable", |t| {
        things::attribute_not_modifiable(t, "/location")
    }),
    ("things_attributes_notfound", things::attributes_not_found),
    (
        "things_attributes_notmodifiable",
        things::attributes_not_modifiable,
    ),
    ("things_feature_definition_empty", |_| {
        things::feature_definition_empty()
    }),
    ("things_feature_definition_identifier_invalid", |_| {
        things::feature_definition_identifier_invalid("foo:bar")
    }),
    ("things_feature_definition_notfound", |t| {
        things::feature_definition_not_found(t, "accelerometer")
    }),
    ("things_feature_definition_notmodifiable", |t| {
        things::feature_definition_not_modifiable(t, "accelerometer")
    }),
    ("things_feature_desired_properties_notfound", |t| {
        things::feature_desired_properties_not_found(t, "accelerometer")
    }),
    ("things_feature_desired_properties_notmodifiable", |t| {
        things::feature_desired_properties_not_modifiable(t, "accelerometer")
    }),
    ("things_feature_desired_property_notfound", |t| {
        things::feature_desired_property_not_found(t, "accelerometer", "/x")
    }),
    ("things_feature_desired_property_notmodifiable", |t| {
        things::feature_desired_property_not_modifiable(t, "accelerometer", "/x")
    }),
    ("things_feature_notfound", |t| {
        things::feature_not_found(t, "accelerometer")
    }),
    ("things_feature_notmodifiable", |t| {
        things::feature_not_modifiable(t, "accelerometer")
    }),
    ("things_feature_properties_notfound", |t| {
        things::feature_properties_not_found(t, "accelerometer")
    }),
    ("things_feature_properties_notmodifiable", |t| {
        things::feature_properties_not_modifiable(t, "accelerometer")
    }),
    ("things_feature_property_notfound", |t| {
        things::feature_property_not_found(t, "accelerometer", "/x")
    }),
    ("things_feature_property_notmodifiable", |t| {
        things::feature_property_not_modifiable(t, "accelerometer", "/x")
    }),
    ("things_features_notfound", things::features_not_found),
    (
        "things_features_notmodifiable",
        things::features_not_modifiable,
    ),
    ("things_id_invalid", |_| things::id_invalid("invalid id")),
    ("things_id_notdeletable", |_| things::id_not_deletable()),
    ("things_id_notsettable", |_| things::id_not_settable()),
    ("things_policyId_notallowed", things::policy_id_not_allowed),
    ("things_policyId_notdeletable", |_| {
        things::policy_id_not_deletable()
    }),
    (
        "things_policyId_notmodifiable",
        things::policy_id_not_modifiable,
    ),
    ("things_policy_notallowed", things::policy_not_allowed),
    ("things_thing_conflict", things::thing_conflict),
    ("things_thing_notcreatable", |t| {
        things::thing_not_creatable(t, "org.eclipse.ditto:the_policy_id")
    }),
    ("things_thing_notdeletable", things::thing_not_deletable),
    ("things_thing_notfound", things::thing_not_found),
    ("things_thing_notmodifiable", things::thing_not_modifiable),
    (
        "things_thing_toomanymodifyingrequests",
        things::thing_too_many_modifying_requests,
    ),
    ("things_thing_unavailable", things::thing_unavailable),
    ("policies_entry_invalid", |_| policies::entry_invalid()),
    ("policies_entry_modificationinvalid", |p| {
        policies::entry_modification_invalid(p, "the_label")
    }),
    ("policies_entry_notfound", |p| {
        policies::entry_not_found(p, "the_label")
    }),
    ("policies_entry_notmodifiable", |p| {
        policies::entry_not_modifiable(p, "the_label")
    }),
    ("policies_id_invalid", |_| {
        policies::id_invalid("invalid id")
    }),
    ("policies_policy_conflict", policies::policy_conflict),
    (
        "policies_policy_modificationinvalid",
        policies::policy_modification_invalid,
    ),
    ("policies_policy_notfound", policies::policy_not_found),
    (
        "policies_policy_notmodifiable",
        policies::policy_not_modifiable,
    ),
    (
        "policies_policy_toomanymodifyingrequests",
        policies::policy_too_many_modifying_requests,
    ),
    ("policies_policy_unavailable", policies::policy_unavailable),
    ("policies_resource_notfound", |p| {
        policies::resource_not_found(p, "the_label", "/the_resource_path")
    }),
    ("policies_resource_notmodifiable", |p| {
        policies::resource_not_modifiable(p, "the_label", "/the_resource_path")
    }),
    ("policies_resources_notfound", |p| {
        policies::resources_not_found(p, "the_label")
    }),
    ("policies_resources_notmodifiable", |p| {
        policies::resources_not_modifiable(p, "the_label")
    }),
    ("policies_subject_notfound", |p| {
        policies::subject_not_found(p, "the_label", "google:the_subjectid")
    }),
    ("policies_subject_notmodifiable", |p| {
        policies::subject_not_modifiable(p, "the_label", "google:the_subjectid")
    }),
    ("policies_subjectid_invalid", |_| {
        policies::subject_id_invalid("invalid subject")
    }),
    ("policies_subjects_notfound", |p| {
        policies::subjects_not_found(p, "the_label")
    }),
    ("policies_subjects_notmodifiable", |p| {
        policies::subjects_not_modifiable(p, "the_label")
    }),
    ("thing-search_search_option_invalid", |_| {
        search::search_option_invalid(None)
    }),
];

fn reference_dir() -> PathBuf {
    std::env::var_os("TWINWIRE_DITTO_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/../../../shared/ditto-reference"
            ))
        })
        .join("protocol-examples")
}

/// The reference pages are Jekyll sources: `{% raw %}` and friends wrap some JSON blocks.
fn strip_liquid(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{%") {
        out.push_str(&rest[..start]);
        match rest[start..].find("%}") {
            Some(end) => rest = &rest[start + end + 2..],
            None => {
                rest = &rest[start..];
                break;
            }
        }
    }
    out.push_str(rest);
    out
}

fn example_json(path: &Path) -> Value {
    let text = strip_liquid(
        &fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
    );
    let start = text
        .find("```json")
        .unwrap_or_else(|| panic!("{}: no ```json block", path.display()))
        + 7;
    let len = text[start..]
        .find("```")
        .unwrap_or_else(|| panic!("{}: unterminated ```json block", path.display()));
    serde_json::from_str(&text[start..start + len])
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `org.eclipse.ditto/fancy-thing/things/...` names `org.eclipse.ditto:fancy-thing`.
fn entity_id(topic: &str) -> String {
    let mut parts = topic.split('/');
    format!(
        "{}:{}",
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default()
    )
}

/// Example files by stem (`things_thing_notfound`); the stems carry their area, so they are unique.
fn exception_files(root: &Path) -> BTreeMap<String, PathBuf> {
    let mut files = BTreeMap::new();
    for folder in FOLDERS {
        let dir = root.join(folder).join("exceptions");
        for entry in fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|ext| ext == "md") {
                let stem = path
                    .file_stem()
                    .unwrap_or_default()
                    .to_string_lossy()
                    .into_owned();
                assert!(
                    files.insert(stem, path.clone()).is_none(),
                    "{}: stem not unique",
                    path.display()
                );
            }
        }
    }
    files
}

#[test]
fn every_reference_exception_is_reproduced_by_its_constructor() {
    let root = reference_dir();
    let files = exception_files(&root);
    assert!(
        !files.is_empty(),
        "no exception examples under {}",
        root.display()
    );

    let mut failures = Vec::new();
    let mut covered = 0;
    for (file, construct) in CASES {
        let Some(path) = files.get(*file) else {
            failures.push(format!(
                "{file}: constructor listed but no such reference file"
            ));
            continue;
        };
        let example = example_json(path);
        let topic = example["topic"].as_str().unwrap_or_default();
        let error = construct(&entity_id(topic));
        let expected = &example["value"];
        if error.to_json() != *expected {
            failures.push(format!(
                "{file}:\n  expected {}\n  actual   {}",
                serde_json::to_string_pretty(expected).unwrap_or_default(),
                serde_json::to_string_pretty(&error.to_json()).unwrap_or_default(),
            ));
        }
        if example["status"].as_u64() != Some(u64::from(error.status)) {
            failures.push(format!(
                "{file}: outer status {} but error status {}",
                example["status"], error.status
            ));
        }
        covered += 1;
    }
    let listed: BTreeSet<&str> = CASES.iter().map(|(f, _)| *f).collect();
    for file in files.keys() {
        if !listed.contains(file.as_str()) {
            failures.push(format!(
                "{file}: no constructor covers this reference exception"
            ));
        }
    }

    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert_eq!(
        listed.len(),
        CASES.len(),
        "a reference file is listed twice"
    );
    assert_eq!(
        covered,
        files.len(),
        "exception examples covered vs. files in {FOLDERS:?}"
    );
}
