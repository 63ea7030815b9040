//! Conditional requests (docs/basic-conditional-requests.md) against an entity's `"rev:N"`
//! entity tag: `if-match`, `if-none-match` and `if-equal`, shared by things and policies, each
//! answering with its own group's exceptions. Pure: no I/O, no entity knowledge beyond the tag.

use twinwire_protocol::headers::{EntityTagMatchers, IfEqual};
use twinwire_protocol::{DittoError, Headers};

/// The exceptions one entity group answers a failed precondition with
/// (`things:precondition.failed` or `policies:precondition.failed`, …).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PreconditionErrors {
    /// `(header, header value, actual entity tag)`: 412.
    pub(crate) failed: fn(&str, &str, &str) -> DittoError,
    /// `(expected not to match, matched)`: 304, for an `if-none-match` that held on a retrieve.
    pub(crate) not_modified: fn(&str, &str) -> DittoError,
}

/// Checks `if-match`, then `if-none-match` (RFC 7232, strong comparison) against `etag`, in the
/// order Ditto evaluates them. `exists` is whether the entity exists (`*` matches only then);
/// `is_retrieve` turns a held `if-none-match` into 304 instead of 412.
pub(crate) fn check_entity_tag(
    headers: &Headers,
    etag: &str,
    exists: bool,
    is_retrieve: bool,
    errors: &PreconditionErrors,
) -> Result<(), DittoError> {
    let matches = |m: &EntityTagMatchers| match m {
        EntityTagMatchers::Any => exists,
        // Strong comparison: a weak tag never matches for a precondition on a modify.
        EntityTagMatchers::Tags(tags) => {
            exists
                && tags
                    .iter()
                    .any(|t| !t.weak && format!("\"{}\"", t.opaque) == etag)
        }
    };
    let raw = |name: &str| {
        headers
            .get_str(name)
            .map(|v| v.into_owned())
            .unwrap_or_default()
    };
    if let Some(m) = headers.if_match()? {
        if !matches(&m) {
            return Err((errors.failed)("if-match", &raw("if-match"), etag));
        }
    }
    if let Some(m) = headers.if_none_match()? {
        if matches(&m) {
            return Err(if is_retrieve {
                (errors.not_modified)(&raw("if-none-match"), etag)
            } else {
                (errors.failed)("if-none-match", &raw("if-none-match"), etag)
            });
        }
    }
    Ok(())
}

/// Whether `if-equal` asks to refuse a change to what is already there (`skip`, and
/// `skip-minimizing-merge`, which twinwire treats as `skip`).
pub(crate) fn skip_requested(headers: &Headers) -> Result<bool, DittoError> {
    Ok(headers.if_equal()? != IfEqual::Update)
}
