//! Reading a connection's `specificConfig` as Ditto keeps it (every value may be text: `"true"`,
//! `"100"`, `"2s"`), with errors that name the adapter and the key. Feature `settings`.

use std::time::Duration;

use serde_json::Value;

/// A connection's `specificConfig`, read for the adapter `adapter` (the prefix of its errors).
#[derive(Clone, Copy, Debug)]
pub struct Specific<'a> {
    adapter: &'a str,
    value: &'a Value,
}

impl<'a> Specific<'a> {
    /// The `specificConfig` of `connection` (absent: every key takes its default).
    pub fn of(adapter: &'a str, connection: &'a Value) -> Specific<'a> {
        Specific {
            adapter,
            value: &connection["specificConfig"],
        }
    }

    /// A key's value as text (a string, number or boolean); `None` when absent.
    pub fn text(&self, name: &str) -> Option<String> {
        text(&self.value[name])
    }

    /// Every key starting with `prefix`, without it, with its value as text (e.g. a client
    /// library's own properties passed through), in key order.
    pub fn prefixed(&self, prefix: &str) -> Vec<(String, String)> {
        let Some(map) = self.value.as_object() else {
            return Vec::new();
        };
        let mut out: Vec<(String, String)> = map
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_owned(), text(v)?)))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        out.sort();
        out
    }

    /// `true` or `false`.
    pub fn flag(&self, name: &str, default: bool) -> Result<bool, String> {
        match self.text(name).as_deref().map(str::trim) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(format!(
                "{}: specificConfig.{name} must be true or false, not {other}",
                self.adapter
            )),
        }
    }

    /// A whole number.
    pub fn number(&self, name: &str, default: u64) -> Result<u64, String> {
        match self.text(name) {
            None => Ok(default),
            Some(n) => n.trim().parse().map_err(|_| {
                format!(
                    "{}: specificConfig.{name} must be a whole number, not {n}",
                    self.adapter
                )
            }),
        }
    }

    /// A duration as Ditto writes them: `500ms`, `2s`, `1m`, `1h`; a bare number is seconds.
    pub fn duration(&self, name: &str, default: Duration) -> Result<Duration, String> {
        let Some(raw) = self.text(name) else {
            return Ok(default);
        };
        parse_duration(raw.trim()).ok_or_else(|| {
            format!(
                "{}: specificConfig.{name} must be a duration like 500ms, 2s, 1m or 1h, not {raw}",
                self.adapter
            )
        })
    }
}

/// A value Ditto may keep as text or as JSON: a string, a number or a boolean, as text.
pub fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `500ms`, `2s`, `1m`, `1h`, or a bare number of seconds.
pub fn parse_duration(raw: &str) -> Option<Duration> {
    let split = raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len());
    let (digits, unit) = raw.split_at(split);
    let n: u64 = digits.parse().ok()?;
    Some(match unit.trim() {
        "ms" => Duration::from_millis(n),
        "" | "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n.checked_mul(60)?),
        "h" => Duration::from_secs(n.checked_mul(3600)?),
        _ => return None,
    })
}

/// The wait before reconnection attempt `failures` (0-based): doubling from `min` up to `max`,
/// plus up to a fifth of jitter, so that many connections do not retry in step.
pub fn backoff(min: Duration, max: Duration, failures: u32) -> Duration {
    use std::hash::BuildHasher;
    let base = min
        .saturating_mul(2u32.saturating_pow(failures.min(20)))
        .min(max);
    let range = (base.as_millis() / 5) as u64;
    let jitter = if range == 0 {
        0
    } else {
        std::collections::hash_map::RandomState::new().hash_one(std::time::Instant::now()) % range
    };
    base + Duration::from_millis(jitter)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_text_numbers_flags_and_durations() {
        let connection =
            json!({"specificConfig": {"a": "true", "b": 5, "c": "1500ms", "d": "1m", "e": "x"}});
        let s = Specific::of("test", &connection);
        assert_eq!(s.flag("a", false), Ok(true));
        assert_eq!(s.flag("missing", true), Ok(true));
        assert!(s
            .flag("e", true)
            .unwrap_err()
            .starts_with("test: specificConfig.e"));
        assert_eq!(s.number("b", 0), Ok(5));
        assert!(s.number("e", 0).is_err());
        assert_eq!(
            s.duration("c", Duration::ZERO),
            Ok(Duration::from_millis(1500))
        );
        assert_eq!(s.duration("d", Duration::ZERO), Ok(Duration::from_secs(60)));
        assert_eq!(s.duration("b", Duration::ZERO), Ok(Duration::from_secs(5)));
        assert!(s.duration("e", Duration::ZERO).is_err());
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        let passed = json!({"specificConfig": {"lib.b": 2, "lib.a": "x", "lib.": "y", "other": 1}});
        assert_eq!(
            Specific::of("test", &passed).prefixed("lib."),
            vec![
                ("a".to_owned(), "x".to_owned()),
                ("b".to_owned(), "2".to_owned())
            ]
        );
        let wait = backoff(Duration::from_secs(1), Duration::from_secs(60), 3);
        assert!(wait >= Duration::from_secs(8) && wait < Duration::from_millis(9_600));
        assert!(
            backoff(Duration::from_secs(1), Duration::from_secs(60), 30) < Duration::from_secs(73)
        );
    }
}
