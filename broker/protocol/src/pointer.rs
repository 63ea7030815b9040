//! RFC 6901 JSON pointers as Ditto uses them for envelope paths: `/` is the whole entity,
//! `~1` and `~0` escape `/` and `~` inside a key.

use crate::error::ProtocolError;
use serde_json::Value;
use std::fmt;

/// A parsed JSON pointer; the root has no segments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct JsonPointer {
    segments: Vec<String>,
}

impl JsonPointer {
    pub fn root() -> Self {
        JsonPointer::default()
    }

    /// Parses `/`, `` (both the root) or `/a/b~1c`. Consecutive slashes are refused as Ditto
    /// refuses them; one trailing slash is dropped as Ditto drops it.
    pub fn parse(s: &str) -> Result<Self, ProtocolError> {
        let invalid = |reason| ProtocolError::PointerInvalid {
            pointer: s.to_owned(),
            reason,
        };
        if s.is_empty() || s == "/" {
            return Ok(JsonPointer::root());
        }
        let body = s
            .strip_prefix('/')
            .ok_or_else(|| invalid("it must start with '/'"))?;
        let body = body.strip_suffix('/').unwrap_or(body);
        let mut segments = Vec::new();
        for raw in body.split('/') {
            if raw.is_empty() {
                return Err(invalid(
                    "Consecutive slashes in JSON pointers are not supported.",
                ));
            }
            segments
                .push(unescape(raw).ok_or_else(|| invalid("'~' must be followed by '0' or '1'"))?);
        }
        Ok(JsonPointer { segments })
    }

    pub fn from_segments<I, S>(segments: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        JsonPointer {
            segments: segments.into_iter().map(Into::into).collect(),
        }
    }

    pub fn is_root(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn segments(&self) -> &[String] {
        &self.segments
    }

    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn first(&self) -> Option<&str> {
        self.segments.first().map(String::as_str)
    }

    /// The pointer without its first `n` segments.
    pub fn skip(&self, n: usize) -> JsonPointer {
        JsonPointer {
            segments: self.segments.iter().skip(n).cloned().collect(),
        }
    }

    pub fn push(&mut self, segment: impl Into<String>) {
        self.segments.push(segment.into());
    }

    pub fn join(&self, other: &JsonPointer) -> JsonPointer {
        let mut segments = self.segments.clone();
        segments.extend(other.segments.iter().cloned());
        JsonPointer { segments }
    }

    /// The value this pointer addresses inside `value`, following object keys only (Ditto's
    /// pointers address object fields, never array elements).
    pub fn get<'v>(&self, value: &'v Value) -> Option<&'v Value> {
        self.segments
            .iter()
            .try_fold(value, |v, key| v.as_object()?.get(key))
    }
}

fn unescape(raw: &str) -> Option<String> {
    if !raw.contains('~') {
        return Some(raw.to_owned());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        if c == '~' {
            match chars.next() {
                Some('0') => out.push('~'),
                Some('1') => out.push('/'),
                _ => return None,
            }
        } else {
            out.push(c);
        }
    }
    Some(out)
}

impl fmt::Display for JsonPointer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            return f.write_str("/");
        }
        for s in &self.segments {
            f.write_str("/")?;
            if s.contains(['~', '/']) {
                f.write_str(&s.replace('~', "~0").replace('/', "~1"))?;
            } else {
                f.write_str(s)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_and_formats() {
        for s in [
            "/",
            "/attributes",
            "/features/f/properties/a~1b~0c",
            "/a b/ü",
        ] {
            assert_eq!(JsonPointer::parse(s).unwrap().to_string(), s);
        }
        assert!(JsonPointer::parse("").unwrap().is_root());
        assert_eq!(JsonPointer::parse("/a~1b").unwrap().segments(), ["a/b"]);
        assert_eq!(
            JsonPointer::parse("/attributes/").unwrap().to_string(),
            "/attributes"
        );
    }

    #[test]
    fn refuses_what_is_not_a_pointer() {
        for bad in ["attributes", "/a//b", "/a~2", "/a~", "//"] {
            assert_eq!(
                JsonPointer::parse(bad).unwrap_err().code(),
                "json.pointer.invalid",
                "{bad}"
            );
        }
    }

    #[test]
    fn addresses_values() {
        let v = json!({"attributes": {"location": {"lat": 1}}});
        let p = JsonPointer::parse("/attributes/location/lat").unwrap();
        assert_eq!(p.get(&v), Some(&json!(1)));
        assert_eq!(
            JsonPointer::parse("/attributes/nope").unwrap().get(&v),
            None
        );
        assert_eq!(JsonPointer::root().get(&v), Some(&v));
    }
}
