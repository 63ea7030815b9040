//! Placeholders and functions (docs/basic-placeholders.md, docs/connectivity-header-mapping.md):
//! `{{ prefix:name | fn:… }}` templates compiled once, checked against the prefixes a location
//! allows, and evaluated without re-parsing.
//!
//! - [`Template`]: text with any number of `{{ … }}` expressions; [`Template::compile`] with the
//!   [`Allowed`] placeholders of the location, [`Template::resolve`] per message with a
//!   [`Resolver`], giving [`Resolved`]: the value(s), `Unresolved` (skip the header, drop the
//!   message) or `Deleted` (do not set the header).
//! - [`Pipeline`]: one expression without braces: a placeholder then up to [`MAX_FUNCTIONS`]
//!   functions. [`Pipeline::compile_functions`] and [`Pipeline::resolve_with_input`] serve
//!   conditions and acknowledgement filters (`fn:filter(header:qos,'ne','0')`).
//! - [`Placeholder`]: one `prefix:name`, also as RQL filters write them without braces.
//! - [`Allowed`]: the prefixes of each location of checklist §3.5, e.g.
//!   [`Allowed::target_address`], [`Allowed::acknowledgement_label`].
//! - [`SignalResolver`] resolves a Ditto Protocol signal (and the external message around it);
//!   [`JwtResolver`] JWT claims.
//!
//! Semantics, where the documentation leaves room:
//! - *Empty* is "no value" (an absent header, `fn:substring-before` not finding its string, the
//!   input of a function in the first position); `fn:default` replaces it. A resolved `""` is a
//!   value (Ditto does the same).
//! - `fn:filter` that removes the value lets a following `fn:default` apply (as in Ditto); at the
//!   end of a pipeline a removed value counts as deleted. `fn:delete` ignores later functions.
//! - A template with an unresolved expression is unresolved as a whole. One whose `fn:filter`
//!   removed a value is deleted as a whole (the condition failed, so the header is not set).
//!   Expressions deleted by `fn:delete` render as nothing, and a template made only of them is
//!   deleted (as in Ditto).
//! - Unknown placeholders and placeholders a location does not allow are refused at compile time
//!   with `placeholder:unresolved`; malformed input (an unclosed `{{`) with
//!   `placeholder:placeholder.notresolvable`.
//! - `like`: `*` matches any run of characters, also none (the documentation's own example
//!   `fn:filter('like','*moderator')` keeps `moderator`), `?` one character, `|` alternatives.
//! - `fn:filter('exists')` keeps the pipeline value if it is not empty.
//! - Function arguments: `fn:default`, `fn:replace` and `fn:filter` take constants or
//!   placeholders; `fn:substring-before/after`, `fn:split`, `fn:join` and `fn:format` take
//!   quoted constants only (Ditto's signatures). `\'` and `\"` escape a quote inside a constant.
//! - `fn:url-encode`/`fn:url-decode` follow Java's `URLEncoder`/`URLDecoder` (space is `+`);
//!   `fn:base64-decode` accepts missing padding. A value that cannot be decoded is dropped
//!   (empty).
//! - `fn:trim` removes leading and trailing Unicode whitespace; `fn:lower`/`fn:upper` are
//!   Unicode case mappings.
//! - `fn:split` splits at the literal separator (not a regular expression, unlike Java's
//!   `String.split`) and drops empty pieces.

mod allowed;
mod error;
mod filter;
mod format;
mod functions;
mod placeholder;
mod resolvers;
mod template;
mod time;

pub use allowed::{Allowed, Prefix};
pub use error::{FUNCTION_UNKNOWN, NOT_RESOLVABLE, SIGNATURE_INVALID, TOO_COMPLEX, UNRESOLVED};
pub use placeholder::{Placeholder, Resolver, Values};
pub use resolvers::{JwtResolver, SignalResolver};
pub use template::{Pipeline, Resolved, Template, MAX_FUNCTIONS};
