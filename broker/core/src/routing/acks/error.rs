//! `AckError`: why an acknowledgement request, a label declaration or an acknowledgement was
//! refused. Carries data; [`AckError::to_ditto_error`] gives the Ditto error its sender gets.

use std::time::Duration;
use twinwire_protocol::exceptions::things as exc;
use twinwire_protocol::{AckLabel, DittoError, ProtocolError};

/// Why acknowledgement handling refused something. Every variant answers its sender (the
/// requester, the declaring subscriber or the ack's issuer) with the Ditto error of
/// [`AckError::to_ditto_error`]; none of them is a broker fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum AckError {
    /// A header (`timeout`, `response-required`, `requested-acks`), an ack envelope or a label
    /// is malformed.
    #[error(transparent)]
    Protocol(#[from] ProtocolError),

    /// `timeout: 0` with `response-required: true` or acknowledgements requested.
    #[error("timeout is zero while a response or acknowledgements are requested")]
    TimeoutZero,

    /// WebSocket only: acknowledgements requested with `response-required: false`.
    #[error("acknowledgements requested over the WebSocket without a response")]
    AcksWithoutResponse,

    /// HTTP only: a `timeout` above the maximum.
    #[error("timeout of {timeout:?} is above the maximum of {max:?}")]
    TimeoutTooLong { timeout: Duration, max: Duration },

    /// A request that awaits acknowledgements has no correlation-id to match them by.
    #[error("a request awaiting acknowledgements needs a correlation-id")]
    RequestCorrelationIdMissing,

    /// Another request of the same entity awaits acknowledgements with this correlation-id.
    #[error("correlation-id {correlation_id} of {entity_id} already awaits acknowledgements")]
    DuplicateCorrelationId {
        correlation_id: String,
        entity_id: String,
    },

    /// An acknowledgement without correlation-id.
    #[error("acknowledgement without correlation-id")]
    CorrelationIdMissing,

    /// A connection declares a label without its `{connectionId}:` prefix.
    #[error("label {label} of connection {connection_id} lacks the prefix {connection_id}:")]
    LabelNotPrefixed {
        label: String,
        connection_id: String,
    },

    /// A label is already declared by another subscriber.
    #[error("label {label} is declared by another subscriber")]
    LabelNotUnique { label: AckLabel },

    /// An acknowledgement whose label its issuer did not declare.
    #[error("label {label} is not declared by its issuer")]
    LabelNotDeclared { label: AckLabel },

    /// An acknowledgement from outside with a built-in label, which only the broker issues.
    #[error("built-in label {label} issued from outside")]
    BuiltInLabel { label: AckLabel },

    /// An acknowledgement (or response) for a correlation-id and entity that awaits none.
    #[error(
        "no request of {entity_id} with correlation-id {correlation_id} awaits acknowledgements"
    )]
    UnknownRequest {
        correlation_id: String,
        entity_id: String,
    },

    /// An acknowledgement whose label the request did not ask for.
    #[error("label {label} was not requested by {correlation_id}")]
    LabelNotRequested {
        label: AckLabel,
        correlation_id: String,
    },

    /// A second acknowledgement for a label that already has one.
    #[error("label {label} of {correlation_id} was already acknowledged")]
    AlreadyAcknowledged {
        label: AckLabel,
        correlation_id: String,
    },
}

impl AckError {
    /// The Ditto error this answers with (status, code, message, description).
    pub fn to_ditto_error(&self) -> DittoError {
        match self {
            AckError::Protocol(e) => e.to_ditto_error(),
            AckError::TimeoutZero => exc::ack_timeout_zero(),
            AckError::AcksWithoutResponse => exc::ack_requested_without_response(),
            AckError::TimeoutTooLong { timeout, max } => {
                exc::gateway_timeout_invalid(*timeout, *max)
            }
            AckError::RequestCorrelationIdMissing => ProtocolError::FieldMissing {
                field: "headers/correlation-id",
            }
            .to_ditto_error(),
            AckError::DuplicateCorrelationId { correlation_id, .. } => {
                exc::ack_request_duplicate_correlation_id(correlation_id)
            }
            AckError::CorrelationIdMissing => exc::ack_correlation_id_missing(),
            AckError::LabelNotPrefixed {
                label,
                connection_id,
            } => exc::ack_label_not_prefixed(label, connection_id),
            AckError::LabelNotUnique { .. } => exc::ack_label_not_unique(),
            AckError::LabelNotDeclared { label } => exc::ack_label_not_declared(label.as_str()),
            AckError::BuiltInLabel { label } => {
                exc::ack_label_external_use_forbidden(label.as_str())
            }
            AckError::UnknownRequest {
                correlation_id,
                entity_id,
            } => exc::ack_request_unknown(correlation_id, entity_id),
            AckError::LabelNotRequested {
                label,
                correlation_id,
            } => exc::ack_label_not_requested(label.as_str(), correlation_id),
            AckError::AlreadyAcknowledged {
                label,
                correlation_id,
            } => exc::ack_label_duplicate(label.as_str(), correlation_id),
        }
    }

    /// The HTTP status of [`AckError::to_ditto_error`].
    pub fn status(&self) -> u16 {
        self.to_ditto_error().status
    }

    /// The Ditto error code of [`AckError::to_ditto_error`].
    pub fn code(&self) -> String {
        self.to_ditto_error().error.into_owned()
    }

    /// True for the refusals of a request's headers (the error rows of the header-interaction
    /// tables): the requester is answered with the error and, for a connection, the consumed
    /// message is settled negatively.
    pub fn is_request_error(&self) -> bool {
        matches!(
            self,
            AckError::Protocol(_)
                | AckError::TimeoutZero
                | AckError::AcksWithoutResponse
                | AckError::TimeoutTooLong { .. }
                | AckError::RequestCorrelationIdMissing
                | AckError::DuplicateCorrelationId { .. }
        )
    }
}

impl From<AckError> for DittoError {
    fn from(e: AckError) -> Self {
        e.to_ditto_error()
    }
}
