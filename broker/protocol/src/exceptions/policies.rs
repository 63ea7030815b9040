//! `policies:` exceptions. Names follow the error code (`policies:subject.notfound` is
//! [`subject_not_found`]); parameters go from the Policy inwards: policy ID, entry label, then
//! the resource key or subject ID. Texts are those of the Ditto protocol reference.

use super::err;
use crate::error::DittoError;

const CHECK_POLICY: &str =
    "Check if the ID of your requested Policy was correct and you have sufficient permissions.";
const CHECK_ENTRY: &str =
    "Check if the ID of the Policy and the Label of your requested PolicyEntry was correct and you have sufficient permissions.";
const CHECK_ENTRY_OF: &str =
    "Check if the ID of the Policy and the Label of the PolicyEntry was correct and you have sufficient permissions.";
const CHECK_RESOURCE: &str =
    "Check if the ID of the Policy, the Label of the PolicyEntry and the path of your requested Resource was correct and you have sufficient permissions.";
const CHECK_SUBJECT: &str =
    "Check if the ID of the Policy, the Label of the PolicyEntry and ID of your requested Subject was correct and you have sufficient permissions.";
const KEEP_ONE_WRITER: &str =
    "There must always be at least one PolicyEntry with 'WRITE' permissions on resource 'policy:/'.";

pub fn entry_invalid() -> DittoError {
    err(
        400,
        "policies:entry.invalid",
        "The Policy Entry is invalid.".into(),
        "Policy entry does not contain any known permission like 'READ' or 'WRITE'",
    )
}

/// The change would leave no entry able to write the Policy itself.
pub fn entry_modification_invalid(policy_id: &str, label: &str) -> DittoError {
    err(
        403,
        "policies:entry.modificationinvalid",
        format!("The PolicyEntry with Label '{label}' on the Policy with ID '{policy_id}' could not be modified as the resulting Policy would be invalid."),
        KEEP_ONE_WRITER,
    )
}

pub fn entry_not_found(policy_id: &str, label: &str) -> DittoError {
    err(
        404,
        "policies:entry.notfound",
        format!("The PolicyEntry with Label '{label}' on the Policy with ID '{policy_id}' could not be found or requester had insufficient permissions to access it."),
        CHECK_ENTRY,
    )
}

pub fn entry_not_modifiable(policy_id: &str, label: &str) -> DittoError {
    err(
        403,
        "policies:entry.notmodifiable",
        format!("The PolicyEntry with Label '{label}' on the Policy with ID '{policy_id}' could not be modified as the requester had insufficient permissions."),
        CHECK_ENTRY,
    )
}

pub fn id_invalid(policy_id: &str) -> DittoError {
    err(
        400,
        "policies:id.invalid",
        format!("Policy ID '{policy_id}' is not valid!"),
        "It must conform to the namespaced entity ID notation (see Ditto documentation)",
    )
    .with_href("https://www.eclipse.dev/ditto/basic-namespaces-and-names.html#namespaced-id")
}

pub fn policy_conflict(policy_id: &str) -> DittoError {
    err(
        409,
        "policies:policy.conflict",
        format!("The Policy with ID '{policy_id}' already exists"),
        "Choose another Policy ID",
    )
}

/// The change would leave no entry able to write the Policy itself.
pub fn policy_modification_invalid(policy_id: &str) -> DittoError {
    err(
        403,
        "policies:policy.modificationinvalid",
        format!("The Policy with ID '{policy_id}' could not be modified as the resulting Policy would be invalid."),
        KEEP_ONE_WRITER,
    )
}

pub fn policy_not_found(policy_id: &str) -> DittoError {
    err(
        404,
        "policies:policy.notfound",
        format!("The Policy with ID '{policy_id}' could not be found or requester had insufficient permissions to access it."),
        CHECK_POLICY,
    )
}

pub fn policy_not_modifiable(policy_id: &str) -> DittoError {
    err(
        403,
        "policies:policy.notmodifiable",
        format!("The Policy with ID '{policy_id}' could not be modified as the requester had insufficient permissions."),
        CHECK_POLICY,
    )
}

pub fn policy_too_many_modifying_requests(policy_id: &str) -> DittoError {
    err(
        429,
        "policies:policy.toomanymodifyingrequests",
        format!("Too many modifying requests are already outstanding to the Policy with ID '{policy_id}'."),
        "Throttle your modifying requests to the Policy or re-structure your Policy in multiple Policies if you really need so many concurrent modifications.",
    )
}

pub fn policy_unavailable(policy_id: &str) -> DittoError {
    err(
        503,
        "policies:policy.unavailable",
        format!("The Policy with ID '{policy_id}' is not available, please try again later."),
        "The requested Policy is temporarily not available.",
    )
}

/// `resource_key` is shown as the request gave it (Ditto passes the resource path or key).
pub fn resource_not_found(policy_id: &str, label: &str, resource_key: &str) -> DittoError {
    err(
        404,
        "policies:resource.notfound",
        format!("The Resource '{resource_key}' of the PolicyEntry with Label '{label}' on the Policy with ID '{policy_id}' could not be found or requester had insufficient permissions to access it."),
        CHECK_RESOURCE,
    )
}

/// `resource_key` is shown as the request gave it (Ditto passes the resource path or key).
pub fn resource_not_modifiable(policy_id: &str, label: &str, resource_key: &str) -> DittoError {
    err(
        403,
        "policies:resource.notmodifiable",
        format!("The Resource '{resource_key}' of the PolicyEntry with Label '{label}' on the Policy with ID '{policy_id}' could not be modified as the requester had insufficient permissions."),
        CHECK_RESOURCE,
    )
}

pub fn resources_not_found(policy_id: &str, label: &str) -> DittoError {
    err(
        404,
        "policies:resources.notfound",
        format!("The Resources of the PolicyEntry with Label '{label}' on the Policy with ID '{policy_id}' could not be found or requester had insufficient permissions to access it."),
        CHECK_ENTRY_OF,
    )
}

pub fn resources_not_modifiable(policy_id: &str, label: &str) -> DittoError {
    err(
        403,
        "policies:resources.notmodifiable",
        format!("The Resources of the PolicyEntry with Label '{label}' on the Policy with ID '{policy_id}' could not be modified as the requester had insufficient permissions."),
        "Check if the ID of the Policy and the PolicyEntry's Label of your requested Resources was correct and you have sufficient permissions.",
    )
}

pub fn subject_not_found(policy_id: &str, label: &str, subject_id: &str) -> DittoError {
    err(
        404,
        "policies:subject.notfound",
        format!("The Subject with ID '{subject_id}' of the PolicyEntry with Label '{label}' on the Policy with ID '{policy_id}' could not be found or requester had insufficient permissions to access it."),
        CHECK_SUBJECT,
    )
}

pub fn subject_not_modifiable(policy_id: &str, label: &str, subject_id: &str) -> DittoError {
    err(
        403,
        "policies:subject.notmodifiable",
        format!("The Subject with ID '{subject_id}' of the PolicyEntry with Label '{label}' on the Policy with ID '{policy_id}' could not be modified as the requester had insufficient permissions."),
        CHECK_SUBJECT,
    )
}

/// A subject ID needs an `issuer:` prefix.
pub fn subject_id_invalid(subject_id: &str) -> DittoError {
    err(
        400,
        "policies:subjectid.invalid",
        format!("Subject ID '{subject_id}' is not valid!"),
        "It must contain an issuer as prefix separated by a colon ':' from the actual subject",
    )
}

pub fn subjects_not_found(policy_id: &str, label: &str) -> DittoError {
    err(
        404,
        "policies:subjects.notfound",
        format!("The Subjects of the PolicyEntry with Label '{label}' on the Policy with ID '{policy_id}' could not be found or requester had insufficient permissions to access it."),
        CHECK_ENTRY_OF,
    )
}

pub fn subjects_not_modifiable(policy_id: &str, label: &str) -> DittoError {
    err(
        403,
        "policies:subjects.notmodifiable",
        format!("The Subjects of the PolicyEntry with Label '{label}' on the Policy with ID '{policy_id}' could not be modified as the requester had insufficient permissions."),
        "Check if the ID of the Policy and the PolicyEntry's Label of your requested Subjects was correct and you have sufficient permissions.",
    )
}

// ---------------------------------------------------------------------------------------------
// Policy command handling (broker/core/src/policies/state.rs): not in the reference's exceptions
// folder; texts from Ditto's exception classes (policies/model/…/PolicyImportNotAccessibleException,
// SubjectExpiryInvalidException, PolicyEntryReferenceConflictException, …) and the messages
// Ditto's PolicyCommandStrategies set on them. Java's MessageFormat turns a template's `''` into
// `'` (and drops single quotes around plain words); descriptions are not formatted and keep
// what the class writes.

const CHECK_IMPORT: &str =
    "Check if the ID of the Policy and the imported Policy was correct and you have sufficient permissions.";
const PRECONDITION_DESCRIPTION: &str = "The comparison of the provided precondition header with the current ETag value of the requested Policy resource evaluated to false. Check the value of your conditional header value.";

/// The policy has no import of `imported_policy_id`.
pub fn import_not_found(policy_id: &str, imported_policy_id: &str) -> DittoError {
    err(
        404,
        "policies:import.notfound",
        format!("The Policy import '{imported_policy_id}' of Policy '{policy_id}' could not be found or requester had insufficient permissions to access it."),
        CHECK_IMPORT,
    )
}

pub fn imports_not_found(policy_id: &str) -> DittoError {
    err(
        404,
        "policies:imports.notfound",
        format!("The imports of the Policy with ID '{policy_id}' could not be found or requester had insufficient permissions to access it."),
        "Check if the ID of the Policy was correct and you have sufficient permissions.",
    )
}

/// The policy ID in a policy JSON differs from the one of the topic.
pub fn id_not_settable() -> DittoError {
    err(
        400,
        "policies:id.notsettable",
        "The Policy ID in the request body is not equal to the Policy ID in the request URL.".into(),
        "Either delete the Policy ID from the request body or use the same Policy ID as in the request URL.",
    )
}

/// A subject's `expiry` is not an ISO-8601 timestamp.
pub fn subject_expiry_invalid(expiry: &str) -> DittoError {
    err(
        400,
        "policies:subjectexpiry.invalid",
        format!("Subject expiry timestamp '{expiry}' is not valid."),
        "It must be provided as ISO-8601 formatted char sequence.",
    )
}

/// A subject's `expiry` (after rounding up) has already passed.
pub fn subject_expiry_in_the_past(expiry: &str) -> DittoError {
    err(
        400,
        "policies:subjectexpiry.invalid",
        format!("Subject expiry timestamp '{expiry}' is not valid."),
        "It must not be in the past, please adjust to a timestamp in the future.",
    )
}

/// A subject announcement's `beforeExpiry` is not a duration such as `10m`.
pub fn subject_announcement_invalid(before_expiry: &str) -> DittoError {
    err(
        400,
        "policies:subjectannouncement.invalid",
        format!("The beforeExpiry duration '{before_expiry}' is not valid."),
        "It must be a positive integer followed by 'h' (hours), 'm' (minutes) or 's' (seconds).",
    )
}

/// A label uses a prefix reserved for imported entries.
pub fn label_invalid(label: &str) -> DittoError {
    err(
        400,
        "policies:label.invalid",
        format!("Label '{label}' is not valid!"),
        "It must not start with the blocklisted 'imported' or 'nsimported' prefix.",
    )
}

/// `policies:entry.invalid` with the message and description of a specific rule.
pub fn entry_invalid_because(message: &str, description: &str) -> DittoError {
    err(
        400,
        "policies:entry.invalid",
        message.to_owned(),
        description,
    )
}

/// An entry's `references` break a rule (self-reference, duplicate, missing target, …).
pub fn entry_references_invalid(policy_id: &str, label: &str, description: &str) -> DittoError {
    entry_invalid_because(
        &format!("The references of PolicyEntry '{label}' on Policy '{policy_id}' are invalid."),
        description,
    )
}

/// A policy imports itself.
pub fn import_invalid() -> DittoError {
    err(
        400,
        "policies:import.invalid",
        "The Policy Import is invalid.".into(),
        "The Policy Import references the policy where it is defined.",
    )
}

/// An import's `transitiveImports` name the importing policy.
pub fn import_transitive_self(policy_id: &str) -> DittoError {
    err(
        400,
        "policies:import.invalid",
        "The policy import contains a transitive resolution of the policy itself.".into(),
        &format!("The 'transitiveImports' array must not contain the importing policy's own ID '{policy_id}'."),
    )
}

/// An import's `transitiveImports` or `entries` hold something other than strings.
pub fn import_invalid_because(message: &str, description: &str) -> DittoError {
    err(
        400,
        "policies:import.invalid",
        message.to_owned(),
        description,
    )
}

/// More imports than `limit` (Ditto's `ditto.limits.policy.imports-limit`, 10).
pub fn imports_too_large(policy_id: &str, limit: usize) -> DittoError {
    err(
        400,
        "policies:imports.toolarge",
        format!("The Imports of the Policy with ID '{policy_id}' could not be modified as they exceed the allowed number of '{limit}'."),
        &format!("Please reduce the number of imports you're trying to add to {limit}"),
    )
}

/// Deleting `referenced_label` would leave the local reference of `referencing_label` dangling.
pub fn entry_reference_conflict(
    policy_id: &str,
    referenced_label: &str,
    referencing_label: &str,
) -> DittoError {
    err(
        409,
        "policies:entry.referenceconflict",
        format!("The entry '{referenced_label}' of Policy '{policy_id}' cannot be removed because a local reference from entry '{referencing_label}' still points to it."),
        "Remove the local entry references first before deleting the referenced entry.",
    )
}

/// Marking `label` `importable: never` while `referencing_label` still references it.
pub fn entry_never_importable_conflict(
    policy_id: &str,
    label: &str,
    referencing_label: &str,
) -> DittoError {
    err(
        409,
        "policies:entry.referenceconflict",
        format!("The entry '{label}' of Policy '{policy_id}' cannot be marked importable=never because a local reference from entry '{referencing_label}' still points to it."),
        "Remove the local reference first before marking the entry importable=never.",
    )
}

/// Removing the import of `imported_policy_id` while entries still reference it.
pub fn import_reference_conflict(policy_id: &str, imported_policy_id: &str) -> DittoError {
    err(
        409,
        "policies:import.referenceconflict",
        format!("The import '{imported_policy_id}' of Policy '{policy_id}' cannot be removed because entry references still point to it."),
        "Remove the entry references first before deleting the import.",
    )
}

/// Removing all imports while entries still reference one.
pub fn imports_reference_conflict(policy_id: &str) -> DittoError {
    err(
        409,
        "policies:import.referenceconflict",
        format!("The imports of Policy '{policy_id}' cannot be removed because entry references still point to them."),
        "Remove the entry references first before deleting the import.",
    )
}

/// Narrowing an import's `entries` would drop `label`, which `entry` references.
pub fn import_label_orphan_conflict(
    policy_id: &str,
    imported_policy_id: &str,
    label: &str,
    entry: &str,
) -> DittoError {
    import_reference_conflict(policy_id, imported_policy_id).with_description(format!(
        "Removing label '{label}' from this import's filter would orphan the reference from entry '{entry}'."
    ))
}

/// `if-match` (or `if-none-match` on a modify) did not hold.
pub fn precondition_failed(header: &str, header_value: &str, actual_etag: &str) -> DittoError {
    err(
        412,
        "policies:precondition.failed",
        format!("The comparison of precondition header '{header}' for the requested Policy resource evaluated to false. Header value: '{header_value}', actual entity-tag: '{actual_etag}'."),
        PRECONDITION_DESCRIPTION,
    )
}

/// `if-equal: skip` and the new value equals the current one.
pub fn precondition_failed_equal() -> DittoError {
    err(
        412,
        "policies:precondition.failed",
        "The previous value was equal to the new value and the 'if-equal' header was set to 'skip'.".into(),
        "Your changes were not applied, which is probably the expected outcome.",
    )
}

/// `if-none-match` held on a retrieve. The description keeps the doubled quotes Ditto's class
/// writes (it is not passed through MessageFormat).
pub fn precondition_not_modified(expected_not_to_match: &str, matched: &str) -> DittoError {
    err(
        304,
        "policies:precondition.notmodified",
        format!("The comparison of precondition header 'if-none-match' for the requested Policy resource evaluated to false. Expected: '{expected_not_to_match}' not to match actual: '{matched}'."),
        "The comparison of the provided precondition header ''if-none-match'' with the current ETag value of the requested Policy resource evaluated to false. Check the value of your conditional header value.",
    )
}
