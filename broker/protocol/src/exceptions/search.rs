//! `thing-search:` exceptions. Texts are those of the Ditto protocol reference.

use crate::error::DittoError;

/// Ditto's search service words the message for each rejected option (sort, size, cursor) and the
/// reference example has none, so the caller passes it or leaves it out.
pub fn search_option_invalid(message: Option<&str>) -> DittoError {
    let mut e = DittoError::new(400, "thing-search:search.option.invalid", "")
        .with_description("At least one provided option is invalid.");
    e.message = message.map(str::to_owned);
    e
}
