//! Ditto's exception catalog as typed constructors, so twinwire answers a failed command with the
//! same status, code, message and description a Ditto client already knows how to handle.

use crate::error::DittoError;

pub mod connectivity;
pub mod gateway;
pub mod policies;
pub mod search;
pub mod things;

/// Every catalog entry carries a message and a description; only a few add more.
fn err(status: u16, code: &'static str, message: String, description: &str) -> DittoError {
    DittoError::new(status, code, message).with_description(description)
}
