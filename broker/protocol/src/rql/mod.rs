//! RQL, the query language of Ditto's `condition` and `live-channel-condition` headers, merge
//! patch conditions and change-notification filters (docs/basic-rql.md): parsing an expression
//! into a [`Predicate`] and evaluating it against a thing, as Ditto does.
//!
//! - `ast`: the [`Predicate`] tree, its [`Property`]s and [`RqlValue`]s, printed back as RQL.
//! - `parser`: text → [`Predicate`], Ditto's grammar with bounded length and depth.
//! - `property`: which property names exist and what they address in a thing.
//! - `eval`: [`Predicate::matches`] over an [`RqlContext`]; [`ThingContext`] for a thing JSON.
//! - `java`: the Java number and string semantics Ditto's comparisons inherit.
//! - `like`: `like`/`ilike` wildcard matching.
//! - `time`: `time:now…` placeholder values.
//! - `error`: [`RqlErrorKind`], the reason in [`ProtocolError::RqlInvalid`].
//!
//! Ditto's behaviour is the specification, read from its sources: the Parboiled grammar
//! (rql/parser `RqlParserBase.scala`, `RqlPredicateParser.scala`), the property rules
//! (rql/query `ThingsFieldExpressionFactoryImpl`, `FieldExpressionUtil`,
//! `ModelBasedThingsFieldExpressionFactory`) and the in-memory evaluation (rql/query
//! `ThingPredicatePredicateVisitor`, `ExistsThingPredicateVisitor`, `EmptyThingPredicateVisitor`,
//! `base/model` `LikeHelper`, `placeholders` `ImmutableTimePlaceholder`). Where twinwire differs,
//! the item says so.
//!
//! Pure: no I/O; the only clock read is [`ThingContext`]'s default "now".
//!
//! ```
//! use serde_json::json;
//! use twinwire_protocol::rql::{self, ThingContext};
//!
//! let condition =
//!     rql::parse_condition(r#"and(exists(features/lamp),eq(attributes/location,"kitchen"))"#)?;
//! let thing = json!({"attributes": {"location": "kitchen"}, "features": {"lamp": {}}});
//! assert!(condition.matches(&ThingContext::new(&thing)));
//! assert_eq!(condition.properties().len(), 2);
//!
//! let error = rql::parse("eq(attributes/location,kitchen)").unwrap_err();
//! assert_eq!(error.code(), "rql.expression.invalid");
//! assert_eq!(
//!     error.to_string(),
//!     "Invalid RQL at position 23: expected a value (a number, a quoted string, true, false, \
//!      null or time:<placeholder>), found 'k'"
//! );
//! # Ok::<(), twinwire_protocol::ProtocolError>(())
//! ```

mod ast;
mod error;
mod eval;
mod java;
mod like;
mod parser;
mod property;
mod time;

pub use ast::{Comparison, Placeholder, Predicate, Property, RqlValue};
pub use error::RqlErrorKind;
pub use eval::{RqlContext, ThingContext};

use crate::error::ProtocolError;
use property::Scope;

/// The longest expression, in bytes, that [`parse`] reads. Ditto sets no bound of its own (its
/// header and URL limits do); 64 KiB holds any sensible condition or filter, including long
/// `in(…)` lists, and bounds the work a single expression can cause.
pub const MAX_EXPRESSION_BYTES: usize = 64 * 1024;

/// The deepest nesting of `and`, `or` and `not` that [`parse`] accepts. Ditto's recursive
/// Parboiled parser has no bound and overflows its stack on hostile input; hand-written
/// conditions nest a handful of levels.
pub const MAX_NESTING_DEPTH: usize = 100;

/// Parses an expression for filtering Ditto Protocol messages (change notifications, live
/// message subscriptions): thing fields plus the `topic:<name>` and `resource:<name>`
/// placeholders as properties, `time:<name>` as values.
///
/// Errors are [`ProtocolError::RqlInvalid`] (`rql.expression.invalid`, 400) with the character
/// offset of the problem.
pub fn parse(expression: &str) -> Result<Predicate, ProtocolError> {
    parser::parse(expression, Scope::SignalFilter)
}

/// Parses a condition on a thing's state (`condition`, `live-channel-condition`, merge patch
/// conditions). As in Ditto's `ThingConditionValidator`, properties are thing fields only: a
/// `topic:` or `resource:` property is an unknown property there, because a condition is checked
/// against the stored twin, not against a message.
pub fn parse_condition(expression: &str) -> Result<Predicate, ProtocolError> {
    parser::parse(expression, Scope::Condition)
}
