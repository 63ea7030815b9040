//! RQL text → [`Predicate`]: Ditto's Parboiled grammar (rql/parser `RqlParserBase.scala`,
//! `RqlPredicateParser.scala`) as a recursive descent over `and`/`or`/`not` with bounded depth,
//! reporting the character offset of the first error and what the grammar expected there.
//!
//! The grammar accepts exactly what Ditto's does, including its whitespace rules: whitespace may
//! lead the expression, follow a value and follow the comma between the queries of `and`/`or`,
//! nowhere else (a property keeps its spaces, so `eq( a,1)` names the property ` a`).

use super::ast::{Comparison, Predicate, Property, RqlValue};
use super::error::RqlErrorKind;
use super::property::{self, PropertyUse, Scope, JAVA_LINE_TERMINATORS};
use super::{MAX_EXPRESSION_BYTES, MAX_NESTING_DEPTH};
use crate::error::ProtocolError;

const EXPECTED_OPERATOR: &str =
    "an operator (eq, ne, gt, ge, lt, le, like, ilike, in, exists, empty, and, or, not)";
const EXPECTED_VALUE: &str =
    "a value (a number, a quoted string, true, false, null or time:<placeholder>)";

/// Operator names are reported at most this long in errors.
const MAX_REPORTED_NAME_CHARS: usize = 64;

pub(super) fn parse(src: &str, scope: Scope) -> Result<Predicate, ProtocolError> {
    if src.len() > MAX_EXPRESSION_BYTES {
        return Err(ProtocolError::RqlInvalid {
            position: 0,
            kind: RqlErrorKind::TooLong {
                length: src.len(),
                max: MAX_EXPRESSION_BYTES,
            },
        });
    }
    let mut parser = Parser {
        src,
        pos: 0,
        depth: 0,
        scope,
    };
    parser
        .root()
        .map_err(|Failure { at, kind }| ProtocolError::RqlInvalid {
            position: src[..at].chars().count(),
            kind,
        })
}

/// A parse error at a byte offset; turned into a character offset once, at the end.
struct Failure {
    at: usize,
    kind: RqlErrorKind,
}

type Parsed<T> = Result<T, Failure>;

enum Operator {
    Compare(Comparison),
    Like { ignore_case: bool },
    In,
    Exists,
    Empty,
    And,
    Or,
    Not,
}

impl Operator {
    fn from_name(name: &str) -> Option<Operator> {
        Some(match name {
            "eq" => Operator::Compare(Comparison::Eq),
            "ne" => Operator::Compare(Comparison::Ne),
            "gt" => Operator::Compare(Comparison::Gt),
            "ge" => Operator::Compare(Comparison::Ge),
            "lt" => Operator::Compare(Comparison::Lt),
            "le" => Operator::Compare(Comparison::Le),
            "like" => Operator::Like { ignore_case: false },
            "ilike" => Operator::Like { ignore_case: true },
            "in" => Operator::In,
            "exists" => Operator::Exists,
            "empty" => Operator::Empty,
            "and" => Operator::And,
            "or" => Operator::Or,
            "not" => Operator::Not,
            _ => return None,
        })
    }
}

struct Parser<'a> {
    src: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    /// How many `and`/`or`/`not` enclose the current position.
    depth: usize,
    scope: Scope,
}

impl Parser<'_> {
    /// `WhiteSpace ~ Query ~ EOI`.
    fn root(&mut self) -> Parsed<Predicate> {
        self.skip_whitespace();
        let predicate = self.query()?;
        if self.pos < self.src.len() {
            return Err(self.expected("the end of the expression"));
        }
        Ok(predicate)
    }

    fn query(&mut self) -> Parsed<Predicate> {
        let start = self.pos;
        let rest = &self.src[start..];
        let name_len = rest
            .find(|c: char| !c.is_ascii_alphanumeric() && c != '_')
            .unwrap_or(rest.len());
        let name = &rest[..name_len];
        if name.is_empty() {
            return Err(self.expected(EXPECTED_OPERATOR));
        }
        let operator = Operator::from_name(name).ok_or_else(|| Failure {
            at: start,
            kind: RqlErrorKind::UnknownOperator {
                name: name.chars().take(MAX_REPORTED_NAME_CHARS).collect(),
            },
        })?;
        self.pos += name_len;
        self.expect('(', "'('")?;
        match operator {
            Operator::And | Operator::Or => {
                self.enter(start)?;
                let mut children = vec![self.query()?];
                loop {
                    if self.eat(',') {
                        self.skip_whitespace();
                        children.push(self.query()?);
                    } else if self.eat(')') {
                        break;
                    } else {
                        return Err(self.expected("',' or ')'"));
                    }
                }
                self.depth -= 1;
                Ok(match operator {
                    Operator::And => Predicate::And(children),
                    _ => Predicate::Or(children),
                })
            }
            Operator::Not => {
                self.enter(start)?;
                let child = self.query()?;
                self.expect(')', "')'")?;
                self.depth -= 1;
                Ok(Predicate::Not(Box::new(child)))
            }
            Operator::Exists | Operator::Empty => {
                let property = self.property(PropertyUse::Exists)?;
                self.expect(')', "')'")?;
                Ok(match operator {
                    Operator::Exists => Predicate::Exists(property),
                    _ => Predicate::Empty(property),
                })
            }
            Operator::In => {
                let property = self.property(PropertyUse::Compare)?;
                self.expect(',', "','")?;
                let mut values = Vec::new();
                loop {
                    values.push(self.value()?.1);
                    if self.eat(')') {
                        break;
                    }
                    self.expect(',', "',' or ')'")?;
                }
                Ok(Predicate::In { property, values })
            }
            Operator::Compare(op) => {
                let property = self.property(PropertyUse::Compare)?;
                self.expect(',', "','")?;
                let (_, value) = self.value()?;
                self.expect(')', "')'")?;
                Ok(Predicate::Compare {
                    op,
                    property,
                    value,
                })
            }
            Operator::Like { ignore_case } => {
                let property = self.property(PropertyUse::Compare)?;
                self.expect(',', "','")?;
                let (value_start, value) = self.value()?;
                self.expect(')', "')'")?;
                // Ditto's CriteriaFactoryImpl.like/ilike: "only string values are allowed".
                let RqlValue::String(pattern) = value else {
                    return Err(Failure {
                        at: value_start,
                        kind: RqlErrorKind::LikeNeedsString {
                            operator: if ignore_case { "ilike" } else { "like" },
                        },
                    });
                };
                Ok(Predicate::Like {
                    property,
                    pattern,
                    ignore_case,
                })
            }
        }
    }

    /// Counts one more enclosing logical operator, refusing to go past the bound.
    fn enter(&mut self, operator_start: usize) -> Parsed<()> {
        self.depth += 1;
        if self.depth > MAX_NESTING_DEPTH {
            return Err(Failure {
                at: operator_start,
                kind: RqlErrorKind::TooDeep {
                    max: MAX_NESTING_DEPTH,
                },
            });
        }
        Ok(())
    }

    /// `PropertyLiteral`: any characters but `,`, `)`, `"` and `\`, with the escapes of a
    /// double-quoted string; then checked against Ditto's property rules.
    fn property(&mut self, usage: PropertyUse) -> Parsed<Property> {
        let start = self.pos;
        let raw = self.characters()?;
        property::resolve(&raw, usage, self.scope).map_err(|kind| Failure { at: start, kind })
    }

    /// Ditto's `Characters` rule, decoded.
    fn characters(&mut self) -> Parsed<String> {
        let mut out = String::new();
        loop {
            match self.peek() {
                None | Some(',' | ')' | '"') => return Ok(out),
                Some('\\') => out.push(self.escape('"')?),
                Some(c) => {
                    self.pos += c.len_utf8();
                    out.push(c);
                }
            }
        }
    }

    /// `Literal`, with the whitespace after it; returns where it started.
    fn value(&mut self) -> Parsed<(usize, RqlValue)> {
        let start = self.pos;
        let rest = &self.src[start..];
        let value = match self.peek() {
            Some(quote @ ('"' | '\'')) => RqlValue::String(self.string(quote)?),
            Some('+' | '-' | '0'..='9') => self.number()?,
            _ if rest.starts_with("time:") => self.time_placeholder()?,
            _ if rest.starts_with("true") => self.keyword("true", RqlValue::Bool(true)),
            _ if rest.starts_with("false") => self.keyword("false", RqlValue::Bool(false)),
            _ if rest.starts_with("null") => self.keyword("null", RqlValue::Null),
            _ => return Err(self.expected(EXPECTED_VALUE)),
        };
        self.skip_whitespace();
        Ok((start, value))
    }

    fn keyword(&mut self, word: &str, value: RqlValue) -> RqlValue {
        self.pos += word.len();
        value
    }

    /// `DoubleLiteral | LongLiteral`: an optional sign, then `0` or digits not starting with `0`,
    /// then for a double `.` and digits. No exponent; `-0` is refused, `-0.5` is not.
    fn number(&mut self) -> Parsed<RqlValue> {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        let digit_at = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
        let mut end = start;
        if matches!(bytes.get(end), Some(b'+' | b'-')) {
            end += 1;
        }
        match bytes.get(end) {
            Some(b'0') => end += 1,
            Some(b'1'..=b'9') => {
                while digit_at(end) {
                    end += 1;
                }
            }
            _ => return Err(self.expected(EXPECTED_VALUE)),
        }
        let invalid = |text: &str, reason| Failure {
            at: start,
            kind: RqlErrorKind::NumberInvalid {
                text: text.to_owned(),
                reason,
            },
        };
        if bytes.get(end) == Some(&b'.') && digit_at(end + 1) {
            end += 1;
            while digit_at(end) {
                end += 1;
            }
            let text = &self.src[start..end];
            let double = text
                .parse::<f64>()
                .ok()
                .filter(|d| d.is_finite())
                .ok_or_else(|| invalid(text, "it is out of the range of a double"))?;
            self.pos = end;
            return Ok(RqlValue::Double(double));
        }
        let text = &self.src[start..end];
        if text.starts_with("-0") {
            return Err(invalid(text, "an integer cannot be -0"));
        }
        let long = text
            .parse::<i64>()
            .map_err(|_| invalid(text, "it is out of the range of a long"))?;
        self.pos = end;
        Ok(RqlValue::Long(long))
    }

    /// A single- or double-quoted string; inside, `\` escapes the quote itself, `\`, `/`,
    /// `b f n r t` and `uXXXX`.
    fn string(&mut self, quote: char) -> Parsed<String> {
        self.pos += 1;
        let mut out = String::new();
        loop {
            match self.peek() {
                None => {
                    return Err(self.expected(if quote == '"' {
                        "'\"' to end the string"
                    } else {
                        "''' to end the string"
                    }))
                }
                Some(c) if c == quote => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some('\\') => out.push(self.escape(quote)?),
                Some(c) => {
                    self.pos += c.len_utf8();
                    out.push(c);
                }
            }
        }
    }

    /// `time:` and a name as Ditto captures it: the raw `Characters`, spaces included.
    fn time_placeholder(&mut self) -> Parsed<RqlValue> {
        let start = self.pos;
        self.pos += "time:".len();
        self.characters()?;
        let text = &self.src[start..self.pos];
        let name = &text["time:".len()..];
        // ParsedPlaceholder's pattern `[a-z]+:.+`: a name, and Java's `.` stops at line ends.
        if name.is_empty() || name.contains(JAVA_LINE_TERMINATORS) {
            return Err(Failure {
                at: start,
                kind: RqlErrorKind::PlaceholderInvalid {
                    text: text.to_owned(),
                },
            });
        }
        Ok(RqlValue::Time(name.to_owned()))
    }

    /// A backslash escape; `quote` is the quote character that may be escaped here.
    fn escape(&mut self, quote: char) -> Parsed<char> {
        let start = self.pos;
        self.pos += 1;
        let c = self.peek();
        let decoded = match c {
            Some(c) if c == quote => c,
            Some('\\') => '\\',
            Some('/') => '/',
            Some('b') => '\u{8}',
            Some('f') => '\u{c}',
            Some('n') => '\n',
            Some('r') => '\r',
            Some('t') => '\t',
            Some('u') => return self.unicode_escape(start),
            found => {
                return Err(Failure {
                    at: start,
                    kind: RqlErrorKind::InvalidEscape { found },
                })
            }
        };
        self.pos += 1;
        Ok(decoded)
    }

    /// `\uXXXX` (the `u` under the cursor): a UTF-16 code unit, so characters beyond the Basic
    /// Multilingual Plane take a surrogate pair of two escapes. Java would keep a lone surrogate
    /// in its string; Rust strings cannot hold one, so it is refused.
    fn unicode_escape(&mut self, start: usize) -> Parsed<char> {
        let unit = self.hex4(start)?;
        let code = match unit {
            0xD800..=0xDBFF => {
                let low_start = self.pos;
                if !self.src[low_start..].starts_with("\\u") {
                    return Err(Failure {
                        at: start,
                        kind: RqlErrorKind::UnpairedSurrogate { code: unit },
                    });
                }
                self.pos += 1;
                let low = self.hex4(low_start)?;
                if !(0xDC00..=0xDFFF).contains(&low) {
                    return Err(Failure {
                        at: start,
                        kind: RqlErrorKind::UnpairedSurrogate { code: unit },
                    });
                }
                0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
            }
            0xDC00..=0xDFFF => {
                return Err(Failure {
                    at: start,
                    kind: RqlErrorKind::UnpairedSurrogate { code: unit },
                })
            }
            unit => u32::from(unit),
        };
        // Not a surrogate, and a pair combines to at most U+10FFFF: always a char.
        char::from_u32(code).ok_or(Failure {
            at: start,
            kind: RqlErrorKind::UnpairedSurrogate { code: unit },
        })
    }

    /// The `u` and four hex digits under the cursor.
    fn hex4(&mut self, escape_start: usize) -> Parsed<u16> {
        let digits = self.src.get(self.pos + 1..self.pos + 5);
        match digits.filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit())) {
            Some(d) => {
                self.pos += 5;
                u16::from_str_radix(d, 16).map_err(|_| Failure {
                    at: escape_start,
                    kind: RqlErrorKind::InvalidEscape { found: Some('u') },
                })
            }
            None => Err(Failure {
                at: escape_start,
                kind: RqlErrorKind::InvalidEscape { found: Some('u') },
            }),
        }
    }

    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn eat(&mut self, c: char) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.pos += c.len_utf8();
        }
        found
    }

    fn expect(&mut self, c: char, what: &'static str) -> Parsed<()> {
        if self.eat(c) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn expected(&self, what: &'static str) -> Failure {
        Failure {
            at: self.pos,
            kind: RqlErrorKind::Expected {
                expected: what,
                found: self.peek(),
            },
        }
    }

    /// `WhiteSpace`: space, `\n`, `\r`, `\t`, form feed.
    fn skip_whitespace(&mut self) {
        let rest = &self.src[self.pos..];
        let trimmed = rest.trim_start_matches([' ', '\n', '\r', '\t', '\u{c}']);
        self.pos += rest.len() - trimmed.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pointer::JsonPointer;

    fn ok(s: &str) -> Predicate {
        parse(s, Scope::SignalFilter).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn err(s: &str) -> (usize, RqlErrorKind) {
        match parse(s, Scope::SignalFilter) {
            Err(ProtocolError::RqlInvalid { position, kind }) => (position, kind),
            other => panic!("{s}: {other:?}"),
        }
    }

    fn value(s: &str) -> RqlValue {
        match ok(&format!("eq(thingId,{s})")) {
            Predicate::Compare { value, .. } => value,
            other => panic!("{other:?}"),
        }
    }

    fn attr(key: &str) -> Property {
        Property::Thing(JsonPointer::from_segments(["attributes", key]))
    }

    #[test]
    fn reads_values_as_ditto_does() {
        assert_eq!(value("123"), RqlValue::Long(123));
        assert_eq!(value("-123"), RqlValue::Long(-123));
        assert_eq!(value("+5"), RqlValue::Long(5));
        assert_eq!(value("0"), RqlValue::Long(0));
        assert_eq!(value("123.7"), RqlValue::Double(123.7));
        assert_eq!(value("-0.7"), RqlValue::Double(-0.7));
        assert_eq!(value("true"), RqlValue::Bool(true));
        assert_eq!(value("false"), RqlValue::Bool(false));
        assert_eq!(value("null"), RqlValue::Null);
        assert_eq!(value("\"te\\\"st\""), RqlValue::String("te\"st".into()));
        assert_eq!(value("'te\\'st'"), RqlValue::String("te'st".into()));
        assert_eq!(value("\"abc\\nyz\""), RqlValue::String("abc\nyz".into()));
        assert_eq!(value("' '"), RqlValue::String(" ".into()));
        assert_eq!(value("\"\\u00e4\\/\""), RqlValue::String("ä/".into()));
        assert_eq!(value("\"\\ud83d\\ude00\""), RqlValue::String("😀".into()));
        assert_eq!(value("time:now"), RqlValue::Time("now".into()));
        assert_eq!(value("time:now-1h[m]"), RqlValue::Time("now-1h[m]".into()));
        // A value takes the whitespace after it; a placeholder keeps it, as Ditto's capture does.
        assert_eq!(value("1  "), RqlValue::Long(1));
        assert_eq!(value("time:now "), RqlValue::Time("now ".into()));
        assert_eq!(
            value("-9223372036854775808"),
            RqlValue::Long(i64::MIN),
            "Long.valueOf reads the minimum"
        );
    }

    #[test]
    fn refuses_numbers_ditto_refuses() {
        for (s, at) in [
            ("-0", 11),
            ("0123", 12),
            ("-0123", 11),
            ("012.7", 12),
            (".7", 11),
            ("-.7", 11),
            ("127.", 14),
            ("12.7.8", 15),
            ("1e5", 12),
            ("12356143287134097863590813406135981332472031847", 11),
            ("test", 11),
            ("foo:bar", 11),
        ] {
            assert_eq!(err(&format!("eq(thingId,{s})")).0, at, "{s}");
        }
    }

    #[test]
    fn reads_operators_and_nesting() {
        let p = ok("and(eq(attributes/a,123),eq(attributes/b,\"super\"),or(eq(attributes/a,854)))");
        let Predicate::And(children) = p else {
            panic!()
        };
        assert_eq!(children.len(), 3);
        assert_eq!(
            children[2],
            Predicate::Or(vec![Predicate::Compare {
                op: Comparison::Eq,
                property: attr("a"),
                value: RqlValue::Long(854)
            }])
        );
        assert_eq!(
            ok("in(attributes/a,null,\"test\",1,true)"),
            Predicate::In {
                property: attr("a"),
                values: vec![
                    RqlValue::Null,
                    RqlValue::String("test".into()),
                    RqlValue::Long(1),
                    RqlValue::Bool(true)
                ]
            }
        );
        assert_eq!(
            ok("ilike(attributes/a,'x*')"),
            Predicate::Like {
                property: attr("a"),
                pattern: "x*".into(),
                ignore_case: true
            }
        );
        assert_eq!(
            ok("not(empty(attributes/a))"),
            Predicate::Not(Box::new(Predicate::Empty(attr("a"))))
        );
    }

    #[test]
    fn whitespace_only_where_ditto_allows_it() {
        ok(" \n\teq(attributes/a,1)");
        ok("and(eq(attributes/a,1), \n eq(attributes/b,2))");
        ok("in(attributes/a,1 ,2  )");
        ok("eq(attributes/a,\"x\" )");
        // Before a value, before a comma between queries, around an operator's parenthesis and
        // after the expression, Ditto's grammar has no whitespace.
        assert_eq!(err("eq(attributes/a, 1)").0, 16);
        assert_eq!(err("and(eq(attributes/a,1) ,eq(attributes/b,2))").0, 22);
        assert_eq!(err("eq (attributes/a,1)").0, 2);
        assert_eq!(err("and( eq(attributes/a,1))").0, 4);
        assert_eq!(err("eq(attributes/a,1) ").0, 18);
        // A property keeps its spaces, so this one is unknown.
        assert_eq!(
            err("eq( attributes/a,1)"),
            (
                3,
                RqlErrorKind::UnknownProperty {
                    name: " attributes/a".into()
                }
            )
        );
    }

    #[test]
    fn errors_say_where_and_what() {
        assert_eq!(
            err("eq(attributes/a,1"),
            (
                17,
                RqlErrorKind::Expected {
                    expected: "')'",
                    found: None
                }
            )
        );
        assert_eq!(
            err("and(eq(attributes/a,1)xx)"),
            (
                22,
                RqlErrorKind::Expected {
                    expected: "',' or ')'",
                    found: Some('x')
                }
            )
        );
        assert_eq!(
            err("eaq(attributes/a,1)").1,
            RqlErrorKind::UnknownOperator { name: "eaq".into() }
        );
        assert_eq!(err("(attributes/a,1)").0, 0);
        assert_eq!(err("").0, 0);
        assert_eq!(err("eq(attributes/a,)").0, 16);
        assert_eq!(
            err("eq(attributes/a,\"a\\qb\")"),
            (18, RqlErrorKind::InvalidEscape { found: Some('q') })
        );
        assert_eq!(
            err("eq(attributes/a,'\\\"')").1,
            RqlErrorKind::InvalidEscape { found: Some('"') },
            "a single-quoted string does not escape a double quote"
        );
        assert_eq!(
            err("eq(attributes/a,\"\\ud83d\")").1,
            RqlErrorKind::UnpairedSurrogate { code: 0xD83D }
        );
        assert_eq!(
            err("eq(attributes/a,\"\\u12\")").1,
            RqlErrorKind::InvalidEscape { found: Some('u') }
        );
        assert_eq!(
            err("eq(attributes/a,\"abc"),
            (
                20,
                RqlErrorKind::Expected {
                    expected: "'\"' to end the string",
                    found: None
                }
            )
        );
        assert_eq!(
            err("like(attributes/a,5)"),
            (18, RqlErrorKind::LikeNeedsString { operator: "like" })
        );
        assert_eq!(
            err("ilike(attributes/a,time:now)").1,
            RqlErrorKind::LikeNeedsString { operator: "ilike" }
        );
        assert_eq!(
            err("eq(attributes/a,time:)").1,
            RqlErrorKind::PlaceholderInvalid {
                text: "time:".into()
            }
        );
        assert_eq!(err("not(eq(attributes/a,1),eq(attributes/b,2))").0, 22);
        assert_eq!(err("exists(\"attributes/a\")").0, 7);
        assert_eq!(err("exists(attributes/a,\"x\")").0, 19);
        assert_eq!(err("in(attributes/a)").0, 15);
    }

    #[test]
    fn positions_count_characters_not_bytes() {
        assert_eq!(err("eq(attributes/äöü,1) x").0, 20);
    }

    #[test]
    fn depth_and_length_are_bounded() {
        let nested =
            |n: usize| format!("{}exists(attributes/a){}", "not(".repeat(n), ")".repeat(n));
        ok(&nested(MAX_NESTING_DEPTH));
        assert_eq!(
            err(&nested(MAX_NESTING_DEPTH + 1)),
            (
                4 * MAX_NESTING_DEPTH,
                RqlErrorKind::TooDeep {
                    max: MAX_NESTING_DEPTH
                }
            )
        );
        let long = format!("eq(attributes/a,\"{}\")", "x".repeat(MAX_EXPRESSION_BYTES));
        assert!(matches!(err(&long).1, RqlErrorKind::TooLong { .. }));
    }
}
