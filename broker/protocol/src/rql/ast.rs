//! The RQL syntax tree: logical nodes over relational nodes, each reading one [`Property`] and
//! comparing it with [`RqlValue`]s; printed back as RQL that parses to the same tree.

use crate::pointer::JsonPointer;
use std::fmt;

/// A parsed RQL expression. Built by [`super::parse`], whose trees nest at most
/// [`super::MAX_NESTING_DEPTH`] levels; evaluation recurses over the tree, so hand-built trees
/// should stay as shallow.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// `and(q,…)`: every query matches (one or more).
    And(Vec<Predicate>),
    /// `or(q,…)`: at least one query matches (one or more).
    Or(Vec<Predicate>),
    /// `not(q)`.
    Not(Box<Predicate>),
    /// `eq`, `ne`, `gt`, `ge`, `lt`, `le`.
    Compare {
        op: Comparison,
        property: Property,
        value: RqlValue,
    },
    /// `in(property,v,…)`: the property equals one of the values (one or more).
    In {
        property: Property,
        values: Vec<RqlValue>,
    },
    /// `like` (or `ilike`, ignoring ASCII case): `*` matches any run of characters, `?` one.
    /// Ditto only accepts a string pattern, so the pattern is a string here.
    Like {
        property: Property,
        pattern: String,
        ignore_case: bool,
    },
    /// `exists(property)`.
    Exists(Property),
    /// `empty(property)`: absent, `null`, `""`, `[]` or `{}`.
    Empty(Property),
}

/// The single-value relational operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Comparison {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Comparison {
    /// The operator's RQL name.
    pub fn as_str(self) -> &'static str {
        match self {
            Comparison::Eq => "eq",
            Comparison::Ne => "ne",
            Comparison::Gt => "gt",
            Comparison::Ge => "ge",
            Comparison::Lt => "lt",
            Comparison::Le => "le",
        }
    }
}

/// What a relational operator reads.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Property {
    /// A field of the thing, `attributes/location` as `/attributes/location`.
    Thing(JsonPointer),
    /// A placeholder about the filtered message, e.g. `topic:action`.
    Placeholder(Placeholder),
}

/// A `topic:<name>` or `resource:<name>` placeholder usable as a property in signal filters
/// (docs/basic-placeholders.md). `time:<name>` is a value, never a property: Ditto's
/// `TimePlaceholder` lists no names, so `ModelBasedThingsFieldExpressionFactory` refuses it as a
/// property although the RQL page mentions it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Placeholder {
    prefix: &'static str,
    name: &'static str,
}

impl Placeholder {
    /// Ditto's `TopicPathPlaceholder` names.
    pub const TOPIC_NAMES: [&'static str; 9] = [
        "full",
        "namespace",
        "entityName",
        "group",
        "channel",
        "criterion",
        "action",
        "subject",
        "action-subject",
    ];
    /// Ditto's `ResourcePlaceholder` names.
    pub const RESOURCE_NAMES: [&'static str; 2] = ["type", "path"];

    /// Reads `topic:<name>` or `resource:<name>`; `None` for anything else.
    pub fn parse(s: &str) -> Option<Placeholder> {
        let (prefix, name) = s.split_once(':')?;
        let (prefix, names): (&'static str, &[&'static str]) = match prefix {
            "topic" => ("topic", &Self::TOPIC_NAMES),
            "resource" => ("resource", &Self::RESOURCE_NAMES),
            _ => return None,
        };
        let name = names.iter().find(|n| **n == name)?;
        Some(Placeholder { prefix, name })
    }

    /// `topic` or `resource`.
    pub fn prefix(self) -> &'static str {
        self.prefix
    }

    /// The name after the colon, e.g. `action`.
    pub fn name(self) -> &'static str {
        self.name
    }
}

/// A value in an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum RqlValue {
    Null,
    Bool(bool),
    /// An integer literal (Java long), e.g. `42`.
    Long(i64),
    /// A literal with a fraction (Java double), e.g. `23.42`; always finite.
    Double(f64),
    /// A single- or double-quoted string, escapes resolved.
    String(String),
    /// `time:<name>`, the name as written (`now`, `now_epoch_millis`, `now-1h[m]`, …), resolved
    /// to a string when evaluated; a name Ditto does not support resolves to nothing and then
    /// behaves as `null`, as in Ditto.
    Time(String),
}

impl Predicate {
    /// The property a relational node reads; `None` for logical nodes.
    pub fn property(&self) -> Option<&Property> {
        match self {
            Predicate::Compare { property, .. }
            | Predicate::In { property, .. }
            | Predicate::Like { property, .. }
            | Predicate::Exists(property)
            | Predicate::Empty(property) => Some(property),
            Predicate::And(_) | Predicate::Or(_) | Predicate::Not(_) => None,
        }
    }

    /// The thing fields the expression reads, each once, in order of appearance: what needs READ
    /// permission before a condition may be evaluated (Ditto's `FieldNamesPredicateVisitor` as
    /// `ThingCommandEnforcement` uses it). Placeholders are not thing fields and are left out.
    pub fn properties(&self) -> Vec<&JsonPointer> {
        let mut out: Vec<&JsonPointer> = Vec::new();
        let mut stack = vec![self];
        while let Some(node) = stack.pop() {
            match node {
                Predicate::And(children) | Predicate::Or(children) => {
                    stack.extend(children.iter().rev());
                }
                Predicate::Not(child) => stack.push(child),
                _ => {
                    if let Some(Property::Thing(pointer)) = node.property() {
                        if !out.contains(&pointer) {
                            out.push(pointer);
                        }
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |f: &mut fmt::Formatter<'_>, name: &str, children: &[Predicate]| {
            write!(f, "{name}(")?;
            for (i, child) in children.iter().enumerate() {
                if i > 0 {
                    f.write_str(",")?;
                }
                write!(f, "{child}")?;
            }
            f.write_str(")")
        };
        match self {
            Predicate::And(children) => list(f, "and", children),
            Predicate::Or(children) => list(f, "or", children),
            Predicate::Not(child) => write!(f, "not({child})"),
            Predicate::Compare {
                op,
                property,
                value,
            } => write!(f, "{}({property},{value})", op.as_str()),
            Predicate::In { property, values } => {
                write!(f, "in({property}")?;
                for value in values {
                    write!(f, ",{value}")?;
                }
                f.write_str(")")
            }
            Predicate::Like {
                property,
                pattern,
                ignore_case,
            } => {
                let name = if *ignore_case { "ilike" } else { "like" };
                write!(f, "{name}({property},")?;
                write_quoted(f, pattern)?;
                f.write_str(")")
            }
            Predicate::Exists(property) => write!(f, "exists({property})"),
            Predicate::Empty(property) => write!(f, "empty({property})"),
        }
    }
}

/// Prints a property so that it reads back as the same property: segments joined by `/`, `~`
/// as `~0` (Ditto decodes `~0` only), and the characters that end a property (`,`, `)`, `"`,
/// `\`) escaped.
impl fmt::Display for Property {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Property::Placeholder(p) => write!(f, "{}:{}", p.prefix, p.name),
            Property::Thing(pointer) => {
                for (i, segment) in pointer.segments().iter().enumerate() {
                    if i > 0 {
                        f.write_str("/")?;
                    }
                    for c in segment.chars() {
                        match c {
                            '~' => f.write_str("~0")?,
                            '"' => f.write_str("\\\"")?,
                            '\\' => f.write_str("\\\\")?,
                            ',' => f.write_str("\\u002c")?,
                            ')' => f.write_str("\\u0029")?,
                            c => write!(f, "{c}")?,
                        }
                    }
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for RqlValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RqlValue::Null => f.write_str("null"),
            RqlValue::Bool(b) => write!(f, "{b}"),
            RqlValue::Long(n) => write!(f, "{n}"),
            // RQL needs digits on both sides of the point; Rust never prints an exponent here.
            RqlValue::Double(d) if d.fract() == 0.0 => write!(f, "{d:.1}"),
            RqlValue::Double(d) => write!(f, "{d}"),
            RqlValue::String(s) => write_quoted(f, s),
            RqlValue::Time(name) => write!(f, "time:{name}"),
        }
    }
}

fn write_quoted(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    f.write_str("\"")?;
    for c in s.chars() {
        match c {
            '"' => f.write_str("\\\"")?,
            '\\' => f.write_str("\\\\")?,
            c => write!(f, "{c}")?,
        }
    }
    f.write_str("\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pointer(s: &str) -> JsonPointer {
        JsonPointer::parse(s).unwrap()
    }

    #[test]
    fn placeholders_are_the_documented_names() {
        let p = Placeholder::parse("topic:action").unwrap();
        assert_eq!((p.prefix(), p.name()), ("topic", "action"));
        assert!(Placeholder::parse("resource:path").is_some());
        for bad in ["topic:foo", "time:now", "resource:", "topic", "header:x"] {
            assert_eq!(Placeholder::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn properties_lists_each_thing_field_once_in_order() {
        let attr = Property::Thing(pointer("/attributes/a"));
        let p = Predicate::And(vec![
            Predicate::Exists(attr.clone()),
            Predicate::Not(Box::new(Predicate::Compare {
                op: Comparison::Eq,
                property: Property::Thing(pointer("/features/f/properties/x")),
                value: RqlValue::Long(1),
            })),
            Predicate::Empty(Property::Placeholder(
                Placeholder::parse("topic:action").unwrap(),
            )),
            Predicate::Empty(attr),
        ]);
        assert_eq!(
            p.properties(),
            [
                &pointer("/attributes/a"),
                &pointer("/features/f/properties/x")
            ]
        );
    }

    #[test]
    fn prints_as_rql() {
        let p = Predicate::Or(vec![
            Predicate::In {
                property: Property::Thing(pointer("/attributes/a,b")),
                values: vec![
                    RqlValue::Null,
                    RqlValue::Double(5.0),
                    RqlValue::Double(-0.25),
                    RqlValue::String("say \"hi\" \\o/".into()),
                ],
            },
            Predicate::Like {
                property: Property::Thing(pointer("/thingId")),
                pattern: "a*".into(),
                ignore_case: true,
            },
            Predicate::Compare {
                op: Comparison::Lt,
                property: Property::Thing(pointer("/_modified")),
                value: RqlValue::Time("now-1h".into()),
            },
        ]);
        assert_eq!(
            p.to_string(),
            r#"or(in(attributes/a\u002cb,null,5.0,-0.25,"say \"hi\" \\o/"),ilike(thingId,"a*"),lt(_modified,time:now-1h))"#
        );
    }
}
