//! The `placeholder:*` errors, all 400, with messages that say what to fix.

use twinwire_protocol::DittoError;

/// A placeholder is unknown, not allowed at the location, or (strict resolution) has no value.
pub const UNRESOLVED: &str = "placeholder:unresolved";
/// The input is malformed: an unclosed `{{`, an empty expression, an empty pipeline stage.
pub const NOT_RESOLVABLE: &str = "placeholder:placeholder.notresolvable";
/// A function name is unknown (or its parentheses are missing).
pub const FUNCTION_UNKNOWN: &str = "placeholder:function.unknown";
/// A function's arguments do not match its signature.
pub const SIGNATURE_INVALID: &str = "placeholder:function.signature.invalid";
/// More than [`MAX_FUNCTIONS`](super::MAX_FUNCTIONS) functions in one pipeline.
pub const TOO_COMPLEX: &str = "placeholder:function.too.complex";

pub(crate) fn unresolved(placeholder: &str, description: impl Into<String>) -> DittoError {
    DittoError::new(
        400,
        UNRESOLVED,
        format!("The placeholder '{placeholder}' could not be resolved."),
    )
    .with_description(description)
}

pub(crate) fn not_resolvable(input: &str, description: impl Into<String>) -> DittoError {
    DittoError::new(
        400,
        NOT_RESOLVABLE,
        format!("The input contains not resolvable placeholders: '{input}'."),
    )
    .with_description(description)
}

pub(crate) fn function_unknown(expression: &str, description: impl Into<String>) -> DittoError {
    DittoError::new(
        400,
        FUNCTION_UNKNOWN,
        format!("The function <{expression}> is not known."),
    )
    .with_description(description)
}

pub(crate) fn signature_invalid(expression: &str, signature: &str, why: &str) -> DittoError {
    DittoError::new(
        400,
        SIGNATURE_INVALID,
        format!("The function signature <{expression}> could not be parsed: {why}"),
    )
    .with_description(format!(
        "Ensure to conform to the function's signature: <{signature}>. Arguments are \
         'single' or \"double\" quoted constants, or a placeholder such as thing:id where the \
         signature allows it."
    ))
}

pub(crate) fn too_complex(max: usize) -> DittoError {
    DittoError::new(
        400,
        TOO_COMPLEX,
        "The placeholder functions are not accepted as they are too complex.",
    )
    .with_description(format!(
        "Please reduce the complexity (e.g. amount of chained functions below the maximum of \
         '{max}') of the functions."
    ))
}
