//! The Java semantics Ditto's in-memory RQL evaluation inherits (rql/query
//! `ThingPredicatePredicateVisitor`): how a JSON scalar becomes a Java object, how two of those
//! compare, and how they print. Reproduced so that twinwire answers a condition as Ditto does,
//! including its quirks (numeric strings compare as numbers, mixed types compare as text).

use serde_json::Number;
use std::cmp::Ordering;

/// A scalar as `ThingPredicatePredicateVisitor.mapJsonValueToJava` sees it. `Null` is its
/// `NULL_LITERAL`, which is not `Comparable`: only `eq`/`ne` with `null` match it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum JavaObject<'a> {
    Str(&'a str),
    Bool(bool),
    Num(JavaNumber),
    Null,
}

/// A number as Ditto's JSON model hands it to Java (`JsonValue.isInt`/`isLong`): an integral
/// value that fits a long is a long, anything else a double.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum JavaNumber {
    Long(i64),
    Double(f64),
}

impl JavaNumber {
    pub(super) fn from_json(n: &Number) -> JavaNumber {
        if let Some(i) = n.as_i64() {
            return JavaNumber::Long(i);
        }
        // Without serde_json's arbitrary_precision every number has an f64 value.
        let d = n.as_f64().unwrap_or(0.0);
        // Java's `value.longValue() == value`; Rust's `as` saturates as `longValue` does.
        if d.fract() == 0.0 && (d as i64) as f64 == d {
            JavaNumber::Long(d as i64)
        } else {
            JavaNumber::Double(d)
        }
    }

    /// `new BigDecimal(number.toString())`, the form Ditto compares numbers in.
    fn decimal(self) -> Decimal {
        match self {
            JavaNumber::Long(i) => Decimal {
                negative: i < 0,
                coefficient: i.unsigned_abs().to_string(),
                scale: 0,
            },
            // Double.toString always yields a valid BigDecimal literal for finite values.
            JavaNumber::Double(d) => Decimal::parse(&double_to_string(d)).unwrap_or(Decimal {
                negative: false,
                coefficient: "0".into(),
                scale: 0,
            }),
        }
    }

    /// `String.valueOf(number)`, what `like` matches numbers as.
    pub(super) fn to_java_string(self) -> String {
        match self {
            JavaNumber::Long(i) => i.to_string(),
            JavaNumber::Double(d) => double_to_string(d),
        }
    }
}

impl JavaObject<'_> {
    /// `String.valueOf(obj)` for everything but `Null` (which Java prints as
    /// `java.lang.Object@<hash>`; the caller decides what to do with it).
    pub(super) fn to_java_string(self) -> Option<String> {
        match self {
            JavaObject::Str(s) => Some(s.to_owned()),
            JavaObject::Bool(b) => Some(b.to_string()),
            JavaObject::Num(n) => Some(n.to_java_string()),
            JavaObject::Null => None,
        }
    }
}

/// Ditto's `compare(value, obj)`: how `obj` (from the thing) orders against `value` (from the
/// expression); `None` if either is `null`, which is not `Comparable` in Ditto.
///
/// Numbers compare as `BigDecimal`s; a string against a number is read as a `BigDecimal` if it
/// is one; same types compare naturally (strings by UTF-16 code units, `false < true`); anything
/// else compares by string form (`BigDecimal.toString()` for numbers).
pub(super) fn compare(value: JavaObject<'_>, obj: JavaObject<'_>) -> Option<Ordering> {
    use JavaObject::{Bool, Null, Num, Str};
    Some(match (value, obj) {
        (Null, _) | (_, Null) => return None,
        (Num(JavaNumber::Long(v)), Num(JavaNumber::Long(o))) => o.cmp(&v),
        (Num(v), Num(o)) => o.decimal().cmp_value(&v.decimal()),
        (Str(v), Num(o)) => match Decimal::parse(v) {
            Some(v) => o.decimal().cmp_value(&v),
            None => utf16_cmp(&o.decimal().to_java_string(), v),
        },
        (Num(v), Str(o)) => match Decimal::parse(o) {
            Some(o) => o.cmp_value(&v.decimal()),
            None => utf16_cmp(o, &v.decimal().to_java_string()),
        },
        (Str(v), Str(o)) => utf16_cmp(o, v),
        (Bool(v), Bool(o)) => o.cmp(&v),
        (Bool(v), Str(o)) => utf16_cmp(o, bool_str(v)),
        (Str(v), Bool(o)) => utf16_cmp(bool_str(o), v),
        (Bool(v), Num(o)) => utf16_cmp(&o.decimal().to_java_string(), bool_str(v)),
        (Num(v), Bool(o)) => utf16_cmp(bool_str(o), &v.decimal().to_java_string()),
    })
}

fn bool_str(b: bool) -> &'static str {
    if b {
        "true"
    } else {
        "false"
    }
}

/// Java's `String.compareTo`: lexicographic over UTF-16 code units (which orders characters
/// beyond U+FFFF before U+E000–U+FFFF, unlike Rust's `str` order).
fn utf16_cmp(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// Java's `Double.toString` for finite values: shortest round-trip digits, plain notation for
/// 10^-3 ≤ |d| < 10^7, else `d.dddE±n`; always a digit after the point.
pub(super) fn double_to_string(d: f64) -> String {
    if d == 0.0 {
        return if d.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sign = if d < 0.0 { "-" } else { "" };
    let abs = d.abs();
    // `{:e}` prints the shortest digits that read back as the same double, e.g. `2.342e1`.
    let scientific = format!("{abs:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    if (1e-3..1e7).contains(&abs) {
        if exponent >= 0 {
            let int_len = exponent as usize + 1;
            if digits.len() <= int_len {
                format!("{sign}{digits}{}.0", "0".repeat(int_len - digits.len()))
            } else {
                format!("{sign}{}.{}", &digits[..int_len], &digits[int_len..])
            }
        } else {
            let zeros = "0".repeat((-exponent - 1) as usize);
            format!("{sign}0.{zeros}{digits}")
        }
    } else {
        let fraction = if digits.len() > 1 { &digits[1..] } else { "0" };
        format!("{sign}{}.{fraction}E{exponent}", &digits[..1])
    }
}

/// A `java.math.BigDecimal`: `coefficient × 10^-scale`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Decimal {
    negative: bool,
    /// ASCII digits without leading zeros; `"0"` for zero.
    coefficient: String,
    scale: i64,
}

impl Decimal {
    /// `new BigDecimal(String)`: optional sign, digits with an optional point (at least one
    /// digit), optional exponent; nothing else, no whitespace. `None` where Java throws
    /// `NumberFormatException`. (Java also takes non-ASCII digits; twinwire does not.)
    pub(super) fn parse(s: &str) -> Option<Decimal> {
        let bytes = s.as_bytes();
        let mut i = 0;
        let negative = match bytes.first() {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let mut coefficient = String::new();
        let mut fraction_digits: i64 = 0;
        let mut seen_point = false;
        while let Some(&b) = bytes.get(i) {
            match b {
                b'0'..=b'9' => {
                    coefficient.push(char::from(b));
                    if seen_point {
                        fraction_digits += 1;
                    }
                }
                b'.' if !seen_point => seen_point = true,
                _ => break,
            }
            i += 1;
        }
        if coefficient.is_empty() {
            return None;
        }
        let mut exponent: i64 = 0;
        if matches!(bytes.get(i), Some(b'e' | b'E')) {
            i += 1;
            let exponent_negative = match bytes.get(i) {
                Some(b'-') => {
                    i += 1;
                    true
                }
                Some(b'+') => {
                    i += 1;
                    false
                }
                _ => false,
            };
            let start = i;
            while let Some(&b) = bytes.get(i).filter(|b| b.is_ascii_digit()) {
                exponent = exponent.checked_mul(10)?.checked_add(i64::from(b - b'0'))?;
                i += 1;
            }
            if i == start {
                return None;
            }
            if exponent_negative {
                exponent = -exponent;
            }
        }
        if i != bytes.len() {
            return None;
        }
        // Java keeps the scale in an int.
        let scale = fraction_digits.checked_sub(exponent)?;
        i32::try_from(scale).ok()?;
        let trimmed = coefficient.trim_start_matches('0');
        Some(Decimal {
            negative,
            coefficient: if trimmed.is_empty() {
                "0".into()
            } else {
                trimmed.into()
            },
            scale,
        })
    }

    fn is_zero(&self) -> bool {
        self.coefficient == "0"
    }

    /// A non-zero value as 0.d₁d₂… × 10^e: (e, the digits without trailing zeros), which orders
    /// like the absolute value.
    fn magnitude(&self) -> (i64, &str) {
        (
            self.coefficient.len() as i64 - self.scale,
            self.coefficient.trim_end_matches('0'),
        )
    }

    /// `BigDecimal.compareTo`: by value, ignoring the scale.
    fn cmp_value(&self, other: &Decimal) -> Ordering {
        let signum = |d: &Decimal| match (d.is_zero(), d.negative) {
            (true, _) => 0,
            (false, true) => -1,
            (false, false) => 1,
        };
        let by_sign = signum(self).cmp(&signum(other));
        if by_sign != Ordering::Equal || signum(self) == 0 {
            return by_sign;
        }
        // Both non-zero with the same sign.
        let by_magnitude = self.magnitude().cmp(&other.magnitude());
        if self.negative {
            by_magnitude.reverse()
        } else {
            by_magnitude
        }
    }

    /// `BigDecimal.toString()`: plain notation when the scale is positive and the adjusted
    /// exponent at least -6, scientific (`1.0E+7`) otherwise.
    pub(super) fn to_java_string(&self) -> String {
        let sign = if self.negative && !self.is_zero() {
            "-"
        } else {
            ""
        };
        let coefficient = &self.coefficient;
        let len = coefficient.len() as i64;
        if self.scale == 0 {
            return format!("{sign}{coefficient}");
        }
        let adjusted = len - 1 - self.scale;
        if self.scale > 0 && adjusted >= -6 {
            if self.scale >= len {
                let zeros = "0".repeat((self.scale - len) as usize);
                format!("{sign}0.{zeros}{coefficient}")
            } else {
                let (int, frac) = coefficient.split_at((len - self.scale) as usize);
                format!("{sign}{int}.{frac}")
            }
        } else {
            let (first, rest) = coefficient.split_at(1);
            let mut s = format!("{sign}{first}");
            if !rest.is_empty() {
                s.push('.');
                s.push_str(rest);
            }
            if adjusted != 0 {
                s.push('E');
                if adjusted > 0 {
                    s.push('+');
                }
                s.push_str(&adjusted.to_string());
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn num(v: serde_json::Value) -> JavaNumber {
        match v {
            serde_json::Value::Number(n) => JavaNumber::from_json(&n),
            _ => panic!(),
        }
    }

    #[test]
    fn json_numbers_become_longs_when_integral() {
        assert_eq!(num(json!(5)), JavaNumber::Long(5));
        assert_eq!(num(json!(5.0)), JavaNumber::Long(5));
        assert_eq!(num(json!(-0.0)), JavaNumber::Long(0));
        assert_eq!(num(json!(23.42)), JavaNumber::Double(23.42));
        assert_eq!(num(json!(1e300)), JavaNumber::Double(1e300));
        assert_eq!(
            num(json!(u64::MAX)),
            JavaNumber::Double(u64::MAX as f64),
            "beyond a long"
        );
    }

    #[test]
    fn doubles_print_as_java_does() {
        for (d, s) in [
            (23.42, "23.42"),
            (5.0, "5.0"),
            (150.0, "150.0"),
            (0.001, "0.001"),
            (0.0001, "1.0E-4"),
            (1.234e-5, "1.234E-5"),
            (9999999.0, "9999999.0"),
            (1e7, "1.0E7"),
            (1.5e7, "1.5E7"),
            (12345678.9, "1.23456789E7"),
            (-0.5, "-0.5"),
            (0.1, "0.1"),
            (1e21, "1.0E21"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
        ] {
            assert_eq!(double_to_string(d), s, "{d}");
        }
    }

    #[test]
    fn big_decimals_parse_and_print_as_java_does() {
        for (input, out) in [
            ("5.0", "5.0"),
            ("1.0E7", "1.0E+7"),
            ("1.23456789E7", "12345678.9"),
            ("1.0E-7", "1.0E-7"),
            ("1.234E-5", "0.00001234"),
            ("-0.0", "0.0"),
            ("+.5", "0.5"),
            ("1.", "1"),
            ("007", "7"),
            ("1e2", "1E+2"),
        ] {
            assert_eq!(
                Decimal::parse(input).unwrap().to_java_string(),
                out,
                "{input}"
            );
        }
        for bad in [
            "", ".", "e5", "1e", "1e+", " 1", "1 ", "0x10", "NaN", "1.2.3", "--1",
        ] {
            assert_eq!(Decimal::parse(bad), None, "{bad:?}");
        }
        assert_eq!(Decimal::parse("1e99999999999"), None, "scale beyond an int");
    }

    #[test]
    fn compares_as_ditto_does() {
        use JavaObject::*;
        let long = |i| Num(JavaNumber::Long(i));
        let double = |d| Num(JavaNumber::Double(d));
        // compare(value, obj) orders obj against value.
        assert_eq!(compare(long(5), long(7)), Some(Ordering::Greater));
        assert_eq!(compare(double(5.0), long(5)), Some(Ordering::Equal));
        assert_eq!(compare(double(0.1), Str("0.1")), Some(Ordering::Equal));
        assert_eq!(compare(Str("42"), long(42)), Some(Ordering::Equal));
        assert_eq!(compare(Str("1e2"), long(100)), Some(Ordering::Equal));
        assert_eq!(
            compare(long(9_007_199_254_740_993), double(9_007_199_254_740_992.0)),
            Some(Ordering::Less),
            "exact, not through f64"
        );
        assert_eq!(compare(Str("b"), Str("a")), Some(Ordering::Less));
        assert_eq!(compare(Bool(false), Bool(true)), Some(Ordering::Greater));
        // Mixed types compare by their string forms.
        assert_eq!(compare(Str("true"), Bool(true)), Some(Ordering::Equal));
        assert_eq!(compare(long(5), Str("abc")), Some(Ordering::Greater));
        assert_eq!(compare(long(5), Bool(true)), Some(Ordering::Greater));
        assert_eq!(compare(Null, Null), None);
        assert_eq!(compare(long(1), Null), None);
        // UTF-16 order: U+1F600 (a surrogate pair) sorts before U+FF01.
        assert_eq!(compare(Str("\u{ff01}"), Str("😀")), Some(Ordering::Less));
    }
}
