//! Why an RQL expression was refused: the reason carried by
//! [`ProtocolError::RqlInvalid`](crate::ProtocolError::RqlInvalid) next to the position.

use std::fmt;

/// The reason an expression is not valid RQL (Ditto: `rql.expression.invalid`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RqlErrorKind {
    /// Something else (`found`, `None` at the end of the input) stood where the grammar needed
    /// `expected`.
    Expected {
        expected: &'static str,
        found: Option<char>,
    },
    /// A word in operator position that is no RQL operator.
    UnknownOperator { name: String },
    /// A property that addresses no thing field (Ditto: "Unknown property name").
    UnknownProperty { name: String },
    /// A property whose JSON pointer is malformed.
    PropertyInvalid { name: String, reason: &'static str },
    /// A backslash followed by something that is no escape in this place.
    InvalidEscape { found: Option<char> },
    /// A `\uXXXX` escape naming half of a UTF-16 surrogate pair without the other half.
    UnpairedSurrogate { code: u16 },
    /// A number literal Ditto refuses (`-0`, out of range).
    NumberInvalid { text: String, reason: &'static str },
    /// `time:` without a name, or with a line break in it.
    PlaceholderInvalid { text: String },
    /// `like`/`ilike` with a value that is not a quoted string.
    LikeNeedsString { operator: &'static str },
    /// `and`, `or` and `not` nested deeper than [`super::MAX_NESTING_DEPTH`].
    TooDeep { max: usize },
    /// More than [`super::MAX_EXPRESSION_BYTES`] bytes.
    TooLong { length: usize, max: usize },
}

impl fmt::Display for RqlErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RqlErrorKind::Expected { expected, found } => {
                write!(f, "expected {expected}, found ")?;
                match found {
                    Some(c) => write!(f, "'{}'", c.escape_debug()),
                    None => f.write_str("the end of the expression"),
                }
            }
            RqlErrorKind::UnknownOperator { name } => write!(
                f,
                "unknown operator '{name}', expected one of eq, ne, gt, ge, lt, le, like, ilike, \
                 in, exists, empty, and, or, not"
            ),
            RqlErrorKind::UnknownProperty { name } => {
                write!(f, "unknown property name '{name}'")
            }
            RqlErrorKind::PropertyInvalid { name, reason } => {
                write!(f, "the property '{name}' is invalid: {reason}")
            }
            RqlErrorKind::InvalidEscape { found: Some(c) } => {
                write!(f, "invalid escape '\\{}'", c.escape_debug())
            }
            RqlErrorKind::InvalidEscape { found: None } => {
                f.write_str("the expression ends in the middle of an escape")
            }
            RqlErrorKind::UnpairedSurrogate { code } => {
                write!(
                    f,
                    "the escape \\u{code:04X} is half of a UTF-16 surrogate pair"
                )
            }
            RqlErrorKind::NumberInvalid { text, reason } => {
                write!(f, "the number {text} is invalid: {reason}")
            }
            RqlErrorKind::PlaceholderInvalid { text } => write!(
                f,
                "the placeholder '{}' needs a name on one line after the colon",
                text.escape_debug()
            ),
            RqlErrorKind::LikeNeedsString { operator } => {
                write!(
                    f,
                    "in the {operator} predicate only string values are allowed"
                )
            }
            RqlErrorKind::TooDeep { max } => {
                write!(f, "and, or and not are nested deeper than {max} levels")
            }
            RqlErrorKind::TooLong { length, max } => write!(
                f,
                "the expression is {length} bytes long, more than the limit of {max} bytes"
            ),
        }
    }
}
