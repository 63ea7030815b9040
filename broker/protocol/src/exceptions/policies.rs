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
