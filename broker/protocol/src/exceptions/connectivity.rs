//! `connectivity:` exceptions: what a connection answers on its reply target when a consumed
//! message cannot become a signal (mapping, enforcement) and when a configuration is refused.

use super::err;
use crate::error::DittoError;

/// A payload a mapper cannot map (Ditto's `MessageMappingFailedException`).
pub fn mapping_failed(content_type: Option<&str>, reason: &str) -> DittoError {
    err(
        400,
        "connectivity:message.mapping.failed",
        format!(
            "The external message with content-type '{}' could not be mapped.",
            content_type.unwrap_or("unknown")
        ),
        &format!("Check if you are sending the correct content-type/payload combination or whether the mapping of the connection is correct. {reason}"),
    )
}

/// The source enforcement refused a message: its input matches none of the filters.
pub fn id_enforcement_failed(input: &str) -> DittoError {
    err(
        400,
        "connectivity:connection.id.enforcement.failed",
        format!("The configured filters could not be matched against the given target with ID '{input}'."),
        "Either modify the configured filters or make sure the message is sent via the correct source.",
    )
}

/// A connection's configuration is refused.
pub fn configuration_invalid(message: &str, description: &str) -> DittoError {
    err(
        400,
        "connectivity:connection.configuration.invalid",
        message.to_owned(),
        description,
    )
}

/// Publishing to a target failed.
pub fn sending_failed(reason: &str) -> DittoError {
    err(
        503,
        "connectivity:message.sending.failed",
        "Failed to send message.".to_owned(),
        &format!("Sending the message to an external system failed, please check if your connection is configured properly and the target system is available and consuming messages: {reason}"),
    )
}
