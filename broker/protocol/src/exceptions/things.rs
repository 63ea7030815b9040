//! `things:` exceptions. Names follow the error code (`things:feature.property.notfound` is
//! [`feature_property_not_found`]); parameters go from the Thing inwards. Texts are those of the
//! Ditto protocol reference, quirks included (a leading space, `( WRITE`), because clients may
//! compare them.

use super::err;
use crate::error::DittoError;
use serde_json::Value;

const CHECK_THING: &str =
    "Check if the ID of your requested Thing was correct and you have sufficient permissions.";
const CHECK_THING_ONLY: &str =
    "Check if the ID of the Thing was correct and you have sufficient permissions.";
const CHECK_FEATURE: &str =
    "Check if the ID of the Thing and the ID of your requested Feature was correct and you have sufficient permissions.";
const CHECK_FEATURE_ID: &str =
    "Check if the ID of the Thing and the Feature ID was correct and you have sufficient permissions.";
const CHECK_PROPERTY: &str =
    "Check if the ID of the Thing, the Feature ID and the key of your requested property was correct and you have sufficient permissions.";
const CHECK_DESIRED_PROPERTY: &str =
    "Check if the ID of the Thing, the Feature ID and the key of your requested desired property was correct and you have sufficient permissions.";

pub fn attribute_not_found(thing_id: &str, attribute_key: &str) -> DittoError {
    err(
        404,
        "things:attribute.notfound",
        format!("The attribute with key '{attribute_key}' on the thing with ID '{thing_id}' could not be found or the requester had insufficient permissions to access it."),
        "Check if the ID of the thing and the key of your requested attribute was correct and you have sufficient permissions.",
    )
}

pub fn attribute_not_modifiable(thing_id: &str, attribute_key: &str) -> DittoError {
    err(
        403,
        "things:attribute.notmodifiable",
        format!(" The Attribute with name '{attribute_key}' on the Thing with ID '{thing_id}' could not be modified as the requester had insufficient permissions (WRITE is required)."),
        CHECK_THING,
    )
}

pub fn attributes_not_found(thing_id: &str) -> DittoError {
    err(
        404,
        "things:attributes.notfound",
        format!("The Attributes of the Thing with ID '{thing_id}' could not be found or the requester had insufficient permissions to access it."),
        CHECK_THING_ONLY,
    )
}

pub fn attributes_not_modifiable(thing_id: &str) -> DittoError {
    err(
        403,
        "things:attributes.notmodifiable",
        format!("The Attributes on the Thing with ID '{thing_id}' could not be modified as the requester had insufficient permissions (WRITE is required)."),
        CHECK_THING,
    )
}

pub fn feature_definition_empty() -> DittoError {
    err(
        400,
        "things:feature.definition.empty",
        "Feature Definition must not be empty!".into(),
        "A Feature Definition must contain at least one element. It can however also be set to null or deleted completely.",
    )
}

/// `identifier` is the rejected definition entry, e.g. `foo:bar`.
pub fn feature_definition_identifier_invalid(identifier: &str) -> DittoError {
    err(
        400,
        "things:feature.definition.identifier.invalid",
        format!("Feature Definition Identifier <{identifier}> is invalid!"),
        r"An Identifier string is expected to have the structure 'namespace:name:version'. Each segment must contain at least one char of [_a-zA-Z0-9\-.]",
    )
}

pub fn feature_definition_not_found(thing_id: &str, feature_id: &str) -> DittoError {
    err(
        404,
        "things:feature.definition.notfound",
        format!("The Definition of the Feature with ID '{feature_id}' on the Thing with ID '{thing_id}' does not exist or the requester had insufficient permissions to access it."),
        CHECK_FEATURE_ID,
    )
}

pub fn feature_definition_not_modifiable(thing_id: &str, feature_id: &str) -> DittoError {
    err(
        403,
        "things:feature.definition.notmodifiable",
        format!("The Definition of the Feature with ID '{feature_id}' on the Thing with ID '{thing_id}' cannot be modified as the requester had insufficient permissions to modify it (WRITE is required)."),
        CHECK_FEATURE_ID,
    )
}

pub fn feature_desired_properties_not_found(thing_id: &str, feature_id: &str) -> DittoError {
    err(
        404,
        "things:feature.desiredProperties.notfound",
        format!("The desired properties of the Feature with ID '{feature_id}' on the Thing with ID '{thing_id}' do not exist or the requester had insufficient permissions to access it."),
        CHECK_FEATURE_ID,
    )
}

pub fn feature_desired_properties_not_modifiable(thing_id: &str, feature_id: &str) -> DittoError {
    err(
        403,
        "things:feature.desiredProperties.notmodifiable",
        format!("The desired properties of the Feature with ID '{feature_id}' on the Thing with ID '{thing_id}' cannot be modified as the requester had insufficient permissions to modify it (WRITE is required)."),
        CHECK_FEATURE_ID,
    )
}

pub fn feature_desired_property_not_found(
    thing_id: &str,
    feature_id: &str,
    property_pointer: &str,
) -> DittoError {
    err(
        404,
        "things:feature.desiredProperty.notfound",
        format!("The desired property with JSON Pointer '{property_pointer}' of the Feature with ID '{feature_id}' on the Thing with ID '{thing_id}' does not exist or the requester had insufficient permissions to access it."),
        CHECK_DESIRED_PROPERTY,
    )
}

pub fn feature_desired_property_not_modifiable(
    thing_id: &str,
    feature_id: &str,
    property_pointer: &str,
) -> DittoError {
    err(
        403,
        "things:feature.desiredProperty.notmodifiable",
        format!("The desired property with JSON Pointer '{property_pointer}' of the Feature with ID '{feature_id}' on the Thing with ID '{thing_id}' could not be modified as the requester had insufficient permissions to modify it (WRITE is required)."),
        CHECK_DESIRED_PROPERTY,
    )
}

pub fn feature_not_found(thing_id: &str, feature_id: &str) -> DittoError {
    err(
        404,
        "things:feature.notfound",
        format!("The Feature with ID '{feature_id}' on the Thing with ID '{thing_id}' could not be found or the requester had insufficient permissions to access it."),
        CHECK_FEATURE,
    )
}

pub fn feature_not_modifiable(thing_id: &str, feature_id: &str) -> DittoError {
    err(
        403,
        "things:feature.notmodifiable",
        format!("The Feature with ID '{feature_id}' on the Thing with ID '{thing_id}' could not be modified as the requester had insufficient permissions to modify it (WRITE is required)."),
        CHECK_FEATURE,
    )
}

pub fn feature_properties_not_found(thing_id: &str, feature_id: &str) -> DittoError {
    err(
        404,
        "things:feature.properties.notfound",
        format!("The Properties of the Feature with ID '{feature_id}' on the Thing with ID '{thing_id}' do not exist or the requester had insufficient permissions to access it."),
        CHECK_FEATURE_ID,
    )
}

pub fn feature_properties_not_modifiable(thing_id: &str, feature_id: &str) -> DittoError {
    err(
        403,
        "things:feature.properties.notmodifiable",
        format!("The Properties of the Feature with ID '{feature_id}' on the Thing with ID '{thing_id}' cannot be modified as the requester had insufficient permissions to modify it (WRITE is required)."),
        CHECK_FEATURE_ID,
    )
}

pub fn feature_property_not_found(
    thing_id: &str,
    feature_id: &str,
    property_pointer: &str,
) -> DittoError {
    err(
        404,
        "things:feature.property.notfound",
        format!("The Property with JSON Pointer '{property_pointer}' of the Feature with ID '{feature_id}' on the Thing with ID '{thing_id}' does not exist or the requester had insufficient permissions to access it."),
        CHECK_PROPERTY,
    )
}

pub fn feature_property_not_modifiable(
    thing_id: &str,
    feature_id: &str,
    property_pointer: &str,
) -> DittoError {
    err(
        403,
        "things:feature.property.notmodifiable",
        format!("The Property with JSON Pointer '{property_pointer}' of the Feature with ID '{feature_id}' on the Thing with ID '{thing_id}' could not be modified as the requester had insufficient permissions to modify it (WRITE is required)."),
        CHECK_PROPERTY,
    )
}

pub fn features_not_found(thing_id: &str) -> DittoError {
    err(
        404,
        "things:features.notfound",
        format!("The Features on the Thing with ID '{thing_id}' do not exist or the requester had insufficient permissions to access it."),
        CHECK_THING_ONLY,
    )
}

pub fn features_not_modifiable(thing_id: &str) -> DittoError {
    err(
        403,
        "things:features.notmodifiable",
        format!("The Features on the Thing with ID '{thing_id}' cannot be modified as requester had insufficient permissions to modify it (WRITE is required)."),
        CHECK_THING_ONLY,
    )
}

/// The reference carries the documentation link as `url`, not `href` (Ditto's Java and
/// `policies:id.invalid` say `href`); it is kept as `url` so the error matches the reference.
pub fn id_invalid(thing_id: &str) -> DittoError {
    err(
        400,
        "things:id.invalid",
        format!("Thing ID '{thing_id}' is not valid!"),
        "It must conform to the namespaced entity ID notation (see Ditto documentation)",
    )
    .with_extra(
        "url",
        Value::from("https://www.eclipse.dev/ditto/basic-namespaces-and-names.html#namespaced-id"),
    )
}

pub fn id_not_deletable() -> DittoError {
    err(
        400,
        "things:id.notdeletable",
        "The Thing ID of a Thing cannot be deleted.".into(),
        "Remove the Thing ID entry from the request body and retry the request.",
    )
}

/// The PUT/PATCH case: the body's Thing ID differs from the one in the URL.
pub fn id_not_settable() -> DittoError {
    err(
        400,
        "things:id.notsettable",
        "The Thing ID in the request body is not equal to the Thing ID in the request URL.".into(),
        "Either delete the Thing ID from the request body or use the same Thing ID as in the request URL.",
    )
}

pub fn policy_id_not_allowed(thing_id: &str) -> DittoError {
    err(
        400,
        "things:policyId.notallowed",
        format!("The Thing with ID '{thing_id}' could not be modified as it contained an inline Policy with an ID or a Policy ID and a Policy"),
        "If you want to use an existing Policy, specify it as 'policyId' in the Thing JSON. If you want to create a Thing with inline Policy, no Policy ID is allowed as it will be created with the Thing ID.",
    )
}

pub fn policy_id_not_deletable() -> DittoError {
    err(
        400,
        "things:policyId.notdeletable",
        "The Policy ID of a Thing cannot be deleted.".into(),
        "Remove Policy ID entry from the request body and retry the request.",
    )
}

pub fn policy_id_not_modifiable(thing_id: &str) -> DittoError {
    err(
        403,
        "things:policyId.notmodifiable",
        format!("The Policy ID of the Thing with ID '{thing_id}' could not be modified as the requester had insufficient permissions (WRITE is required)."),
        CHECK_THING,
    )
}

pub fn policy_not_allowed(thing_id: &str) -> DittoError {
    err(
        400,
        "things:policy.notallowed",
        format!("The Thing with ID '{thing_id}' could not be modified as it contained an inline Policy"),
        "Once a Thing with inline Policy is created it can't be modified with another Policy. Use the Policy resources to modify the existing Policy.",
    )
}

pub fn thing_conflict(thing_id: &str) -> DittoError {
    err(
        409,
        "things:thing.conflict",
        format!("The Thing with ID '{thing_id}' already exists"),
        "Choose another Thing ID",
    )
}

/// The Thing names a Policy that does not exist.
pub fn thing_not_creatable(thing_id: &str, policy_id: &str) -> DittoError {
    err(
        400,
        "things:thing.notcreatable",
        format!("The Thing with ID '{thing_id}' could not be created as the Policy with ID '{policy_id}' is not existing."),
        "Check if the ID of the Policy you created the Thing with is correct and that the Policy is existing.",
    )
}

pub fn thing_not_deletable(thing_id: &str) -> DittoError {
    err(
        403,
        "things:thing.notdeletable",
        format!("The Thing with ID '{thing_id}' could not be deleted as the requester had insufficient permissions ( WRITE on root resource is required)."),
        CHECK_THING,
    )
}

pub fn thing_not_found(thing_id: &str) -> DittoError {
    err(
        404,
        "things:thing.notfound",
        format!("The Thing with ID '{thing_id}' could not be found or requester had insufficient permissions to access it."),
        CHECK_THING,
    )
}

pub fn thing_not_modifiable(thing_id: &str) -> DittoError {
    err(
        403,
        "things:thing.notmodifiable",
        format!("The Thing with ID '{thing_id}' could not be modified as the requester had insufficient permissions (WRITE is required)."),
        CHECK_THING,
    )
}

/// A live event the requester may not send: WRITE on the event's thing resource is missing
/// (Ditto's `EventSendNotAllowedException`).
pub fn event_send_not_allowed(thing_id: &str) -> DittoError {
    err(
        403,
        "things:event.notallowed",
        format!("You are not allowed to send events for the Thing with id '{thing_id}'!"),
        "Please make sure that the Thing exists and that you have WRITE permissions on the message resource in the policy of the Thing.",
    )
}

/// A message the requester may not send: WRITE on its `message:` resource is missing (Ditto's
/// `MessageSendNotAllowedException`).
pub fn message_send_not_allowed(thing_id: &str) -> DittoError {
    err(
        403,
        "messages:send.notallowed",
        format!("You are not allowed to send messages for the Thing with id '{thing_id}'!"),
        "Please make sure that the Thing exists and that you have WRITE permissions on the message resource in the policy of the Thing.",
    )
}

pub fn thing_too_many_modifying_requests(thing_id: &str) -> DittoError {
    err(
        429,
        "things:thing.toomanymodifyingrequests",
        format!("Too many modifying requests are already outstanding to the Thing with ID '{thing_id}'."),
        "Throttle your modifying requests to the Thing or re-structure your Thing in multiple Things if you really need so many concurrent modifications.",
    )
}

pub fn thing_unavailable(thing_id: &str) -> DittoError {
    err(
        503,
        "things:thing.unavailable",
        format!("The Thing with ID '{thing_id}' is not available, please try again later."),
        "The requested Thing is temporarily not available.",
    )
}

// Conditional requests and history (docs/basic-conditional-requests.md, docs/basic-history.md):
// not in the reference's exceptions folder; texts from Ditto's exception classes.

const PRECONDITION_DESCRIPTION: &str = "The comparison of the provided precondition header with the current ETag value of the requested Thing resource evaluated to false. Check the value of your conditional header value.";

/// `if-match` (or `if-none-match` on a modify) did not hold.
pub fn precondition_failed(header: &str, header_value: &str, actual_etag: &str) -> DittoError {
    err(
        412,
        "things:precondition.failed",
        format!("The comparison of precondition header '{header}' for the requested Thing resource evaluated to false. Header value: '{header_value}', actual entity-tag: '{actual_etag}'."),
        PRECONDITION_DESCRIPTION,
    )
}

/// `if-equal: skip` and the new value equals the current one.
pub fn precondition_failed_equal() -> DittoError {
    err(
        412,
        "things:precondition.failed",
        "The previous value was equal to the new value and the 'if-equal' header was set to 'skip'.".into(),
        "Your changes were not applied, which is probably the expected outcome.",
    )
}

/// `if-none-match` held on a retrieve: the requester's copy is current.
pub fn precondition_not_modified(expected_not_to_match: &str, matched: &str) -> DittoError {
    err(
        304,
        "things:precondition.notmodified",
        format!("The comparison of precondition header 'if-none-match' for the requested Thing resource evaluated to false. Expected: '{expected_not_to_match}' not to match actual: '{matched}'."),
        "The comparison of the provided precondition header 'if-none-match' with the current ETag value of the requested Thing resource evaluated to false. Check the value of your conditional header value.",
    )
}

/// The `condition` header's RQL did not match the thing.
pub fn condition_failed() -> DittoError {
    err(
        412,
        "things:condition.failed",
        "The specified condition does not match the state of the requested Thing.".into(),
        "The provided condition did not match the actual Thing state. Please check your provided condition.",
    )
}

/// The `condition` header is not valid RQL.
pub fn condition_invalid(condition: &str, reason: &str) -> DittoError {
    err(
        400,
        "things:condition.invalid",
        format!("The specified condition '{condition}' is invalid."),
        &format!("The provided condition is not valid. Please check the value of your condition header. {reason}"),
    )
}

/// The thing ID in a thing JSON differs from the one of the topic.
pub fn id_not_settable_in_protocol() -> DittoError {
    err(
        400,
        "things:id.notsettable",
        "The Thing ID in the thing JSON is not equal to the Thing ID in the topic path.".into(),
        "Either delete the Thing ID from the thing JSON or use the same Thing ID as in the topic path.",
    )
}

const HISTORY_DESCRIPTION: &str = "Check if the ID of your requested Thing was correct, you have sufficient permissions and ensure that the asked for revision/timestamp does not exceed the history-retention-duration or is from the future.";

/// `at-historical-revision` names a revision the thing never had.
pub fn thing_history_not_found_at_revision(thing_id: &str, revision: u64) -> DittoError {
    err(
        404,
        "things:thing.history.notfound",
        format!("The Thing with ID '{thing_id}' at revision '{revision}' could not be found or requester had insufficient permissions to access it."),
        HISTORY_DESCRIPTION,
    )
}

/// `at-historical-timestamp` is before the thing existed or in the future.
pub fn thing_history_not_found_at_timestamp(thing_id: &str, timestamp: &str) -> DittoError {
    err(
        404,
        "things:thing.history.notfound",
        format!("The Thing with ID '{thing_id}' at timestamp '{timestamp}' could not be found or requester had insufficient permissions to access it."),
        HISTORY_DESCRIPTION,
    )
}

/// The thing has no definition to retrieve or delete.
pub fn thing_definition_not_found(thing_id: &str) -> DittoError {
    err(
        404,
        "things:definition.notfound",
        format!("The Definition of the Thing with ID <{thing_id}> could not be found or the requester had insufficient permissions to access it."),
        "Check if the ID of the thing and the key of your requested definition was correct and you have sufficient permissions.",
    )
}

/// The `condition` reads a resource the requester may not READ (or that does not exist).
pub fn condition_failed_permission() -> DittoError {
    err(
        412,
        "things:condition.failed",
        "The specified resource in the condition could not be found or the requester had insufficient permissions to access it.".into(),
        "Check if you have sufficient permissions to access the specified resource (READ permission is required).",
    )
}

// ------------------------------------------------------------------------------------------------
// Acknowledgements (docs/basic-acknowledgements.md), used by twinwire-core's routing::acks.
//
// Texts from Ditto's classes: base/model/…/acks/AcknowledgementLabel{Invalid,NotDeclared,NotUnique}
// Exception, DittoAcknowledgementLabelExternalUseForbiddenException, base/model/…/signals/acks/
// Acknowledgement{RequestTimeout,CorrelationIdMissing,RequestDuplicateCorrelationId}Exception,
// base/model/…/signals/commands/exceptions/CommandTimeoutException, the header checks of
// edge/…/AcknowledgementAggregatorActorStarter and gateway/…/StreamingSessionActor, and
// gateway/api/…/GatewayTimeoutInvalidException. Ditto formats durations with Java's
// `MessageFormat`, which groups thousands (`42,000ms`), and so do these.
//
// The last three (`acknowledgement:request.unknown`, `acknowledgement:label.not.requested`,
// `acknowledgement:label.duplicate`) are twinwire's own: Ditto drops such acks silently, twinwire
// answers their sender (STYLE.md, "Treat acks from the wire as input too").
// ------------------------------------------------------------------------------------------------

/// A number as Java's `MessageFormat` writes it in an English locale: `42,000`.
fn grouped(n: u128) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A requested acknowledgement that did not arrive in time: the payload of its 408 ack.
pub fn ack_request_timeout(timeout: std::time::Duration) -> DittoError {
    err(
        408,
        "acknowledgement:request.timeout",
        format!(
            "The acknowledgement request reached the specified timeout of {}ms.",
            grouped(timeout.as_millis())
        ),
        "Try increasing the timeout and make sure that the requested acknowledgement is sent back in time.",
    )
}

/// A request whose only requested ack was a built-in one (`twin-persisted`, `live-response`)
/// got no response in time (Ditto's `CommandTimeoutException`).
pub fn command_timeout(timeout: std::time::Duration) -> DittoError {
    err(
        408,
        "command.timeout",
        format!(
            "The Command reached the specified timeout of {}ms.",
            grouped(timeout.as_millis())
        ),
        "Try increasing the command timeout.",
    )
}

/// A connection declares a label without its `{connectionId}:` prefix.
pub fn ack_label_not_prefixed(label: &str, connection_id: &str) -> DittoError {
    err(
        400,
        "acknowledgement:label.invalid",
        format!("Acknowledgement label <{label}> is invalid."),
        &format!(
            "Declared acknowledgement labels of a connection must have the form {connection_id}:<alphanumeric-suffix>"
        ),
    )
}

/// A subscriber sends an ack whose label it did not declare.
pub fn ack_label_not_declared(label: &str) -> DittoError {
    err(
        400,
        "acknowledgement:label.not.declared",
        format!("Cannot send acknowledgement with label <{label}>, which is not declared."),
        "Each connection may only send acknowledgements whose label matches one declared for the connection.",
    )
}

/// A subscriber declares a label another subscriber declared already.
pub fn ack_label_not_unique() -> DittoError {
    err(
        409,
        "acknowledgement:label.not.unique",
        "One or more declared acknowledgement labels are taken by other subscribers.".into(),
        "Please ensure all other subscribers with the declared acknowledgement labels are offline.",
    )
}

/// A subscriber sends an ack with a built-in label (`twin-persisted`, `live-response`,
/// `search-persisted`): only the broker issues those.
pub fn ack_label_external_use_forbidden(label: &str) -> DittoError {
    err(
        400,
        "acknowledgement:ditto.acklabel.forbidden",
        format!("The Ditto internal Acknowledgement label <{label}> is not allowed to be issued externally!"),
        "Make sure to not issue an Ditto internal Acknowledgement label.",
    )
}

/// An ack without `correlation-id`.
pub fn ack_correlation_id_missing() -> DittoError {
    err(
        400,
        "acknowledgement:correlation-id.missing",
        "Correlation-id header for acknowledgement is missing.".into(),
        "Please provide the mandatory header 'correlation-id' as part of your acknowledgement",
    )
}

/// A request awaiting acks uses a correlation-id another request still awaits acks with.
pub fn ack_request_duplicate_correlation_id(correlation_id: &str) -> DittoError {
    err(
        409,
        "acknowledgement:request.duplicate.correlation-id",
        format!("Correlation-id <{correlation_id}> for acknowledgement request was already used very recently."),
        "Please provide unique correlation-ids when requesting acknowledgements, at least unique within at least several minutes.",
    )
}

/// `timeout: 0` with `response-required: true` or requested acks (every channel).
pub fn ack_timeout_zero() -> DittoError {
    err(
        400,
        "header.invalid",
        "The value of the header 'timeout' must not be zero if response or acknowledgements are requested.".into(),
        "Please provide a positive timeout.",
    )
    .with_extra("invalidHeaderKey", Value::from("timeout"))
}

/// Acks requested over the WebSocket with `response-required: false`.
pub fn ack_requested_without_response() -> DittoError {
    err(
        400,
        "header.invalid",
        "For WebSocket, it is forbidden to request acknowledgements while 'response-required' is set to false.".into(),
        "Please set 'requested-acks' to [] or 'response-required' to true.",
    )
    .with_extra("invalidHeaderKey", Value::from("requested-acks"))
}

/// An HTTP request's `timeout` above the maximum (60 s).
pub fn gateway_timeout_invalid(
    timeout: std::time::Duration,
    max: std::time::Duration,
) -> DittoError {
    err(
        400,
        "gateway:timeout.invalid",
        format!(
            "The timeout <{}ms> is not inside its allowed bounds <0ms - {}ms>",
            grouped(timeout.as_millis()),
            grouped(max.as_millis())
        ),
        "Choose a timeout inside the bounds.",
    )
}

/// twinwire: an ack for a correlation-id (and entity) that awaits no acks, never did or no
/// longer does (answered, timed out).
pub fn ack_request_unknown(correlation_id: &str, entity_id: &str) -> DittoError {
    err(
        400,
        "acknowledgement:request.unknown",
        format!("No request of <{entity_id}> with correlation-id <{correlation_id}> awaits acknowledgements."),
        "Send acknowledgements only for signals that requested them, before their timeout.",
    )
}

/// twinwire: an ack whose label the request with that correlation-id did not request.
pub fn ack_label_not_requested(label: &str, correlation_id: &str) -> DittoError {
    err(
        400,
        "acknowledgement:label.not.requested",
        format!("The request with correlation-id <{correlation_id}> did not request an acknowledgement with label <{label}>."),
        "Send only acknowledgements whose label is in the 'requested-acks' header of the signal.",
    )
}

/// twinwire: a second ack for a label of a request that already has one.
pub fn ack_label_duplicate(label: &str, correlation_id: &str) -> DittoError {
    err(
        409,
        "acknowledgement:label.duplicate",
        format!("The acknowledgement with label <{label}> for correlation-id <{correlation_id}> was already received."),
        "Send one acknowledgement per requested label.",
    )
}

#[cfg(test)]
mod ack_tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn durations_are_grouped_like_java() {
        assert_eq!(grouped(0), "0");
        assert_eq!(grouped(250), "250");
        assert_eq!(grouped(1_337), "1,337");
        assert_eq!(grouped(42_000), "42,000");
        assert_eq!(grouped(1_234_567), "1,234,567");
        assert_eq!(
            ack_request_timeout(Duration::from_secs(42))
                .message
                .as_deref(),
            Some("The acknowledgement request reached the specified timeout of 42,000ms.")
        );
    }
}
