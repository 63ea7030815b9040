//! Reading a connection's `specificConfig` as Ditto keeps it (every value may be text: `"true"`,
//! `"100"`, `"2s"`), with errors that name the adapter and the key. Feature `settings`.

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// One `specificConfig` key an adapter reads, with its default. An adapter lists every key it
/// reads in one table (`SPECIFIC_CONFIG` of its config module); [`Specific`] reads only keys of
/// that table and takes their defaults from it, so the table is what the adapter reads, and the
/// configuration reference (docs/configuration.md) is tested against it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Setting {
    pub key: &'static str,
    pub default: SettingDefault,
}

/// What a [`Setting`] is when the connection does not set it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SettingDefault {
    Flag(bool),
    Number(u64),
    Duration(Duration),
    Text(&'static str),
    /// Made from the rest of the connection (said in words, e.g. "the connection ID").
    Derived(&'static str),
    /// Absent: off, or the client library's own default.
    Unset,
    Required,
    /// The key is a prefix: every key starting with it is passed on without it.
    Prefix,
}

impl Setting {
    pub const fn flag(key: &'static str, default: bool) -> Setting {
        Setting::new(key, SettingDefault::Flag(default))
    }

    pub const fn number(key: &'static str, default: u64) -> Setting {
        Setting::new(key, SettingDefault::Number(default))
    }

    pub const fn duration(key: &'static str, default: Duration) -> Setting {
        Setting::new(key, SettingDefault::Duration(default))
    }

    pub const fn new(key: &'static str, default: SettingDefault) -> Setting {
        Setting { key, default }
    }
}

/// The default as the reference's tables write it: a value in backticks (a duration as
/// `500ms`, `2s` or `1h`), `empty`, `none`, `required`, the words of a derived default, or
/// nothing for a prefix.
impl fmt::Display for SettingDefault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SettingDefault::Flag(b) => write!(f, "`{b}`"),
            SettingDefault::Number(n) => write!(f, "`{n}`"),
            SettingDefault::Duration(d) if d.subsec_nanos() != 0 => {
                write!(f, "`{}ms`", d.as_millis())
            }
            SettingDefault::Duration(d) if d.as_secs() != 0 && d.as_secs() % 3600 == 0 => {
                write!(f, "`{}h`", d.as_secs() / 3600)
            }
            SettingDefault::Duration(d) => write!(f, "`{}s`", d.as_secs()),
            SettingDefault::Text("") => f.write_str("empty"),
            SettingDefault::Text(t) => write!(f, "`{t}`"),
            SettingDefault::Derived(words) => f.write_str(words),
            SettingDefault::Unset => f.write_str("none"),
            SettingDefault::Required => f.write_str("required"),
            SettingDefault::Prefix => Ok(()),
        }
    }
}

/// A connection's `specificConfig`, read for the adapter `adapter` (the prefix of its errors)
/// through its table of settings.
#[derive(Clone, Copy, Debug)]
pub struct Specific<'a> {
    adapter: &'a str,
    value: &'a Value,
    settings: &'a [Setting],
}

impl<'a> Specific<'a> {
    /// The `specificConfig` of `connection` (absent: every key takes its default), read as
    /// `settings` say.
    pub fn of(adapter: &'a str, connection: &'a Value, settings: &'a [Setting]) -> Specific<'a> {
        Specific {
            adapter,
            value: &connection["specificConfig"],
            settings,
        }
    }

    /// The default of `key`: an error (the adapter's, not the user's) when the table lacks it.
    fn default_of(&self, key: &str) -> Result<SettingDefault, String> {
        self.settings
            .iter()
            .find(|s| s.key == key)
            .map(|s| s.default)
            .ok_or_else(|| {
                format!(
                    "{}: specificConfig.{key} is read but not among the adapter's settings",
                    self.adapter
                )
            })
    }

    fn misread(&self, key: &str, as_what: &str, default: SettingDefault) -> String {
        format!(
            "{}: specificConfig.{key} is read as {as_what}, but its setting's default is {default:?}",
            self.adapter
        )
    }

    /// A key's value as text (a string, number or boolean); `None` when absent.
    pub fn text(&self, key: &str) -> Result<Option<String>, String> {
        self.default_of(key)?;
        Ok(text(&self.value[key]))
    }

    /// A key's value as text, its text default when absent.
    pub fn string(&self, key: &str) -> Result<String, String> {
        match self.default_of(key)? {
            SettingDefault::Text(default) => {
                Ok(text(&self.value[key]).unwrap_or_else(|| default.to_owned()))
            }
            other => Err(self.misread(key, "text", other)),
        }
    }

    /// Every key starting with `prefix`, without it, with its value as text (e.g. a client
    /// library's own properties passed through), in key order.
    pub fn prefixed(&self, prefix: &str) -> Result<Vec<(String, String)>, String> {
        match self.default_of(prefix)? {
            SettingDefault::Prefix => {}
            other => return Err(self.misread(prefix, "a prefix", other)),
        }
        let Some(map) = self.value.as_object() else {
            return Ok(Vec::new());
        };
        let mut out: Vec<(String, String)> = map
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix(prefix)?.to_owned(), text(v)?)))
            .filter(|(k, _)| !k.is_empty())
            .collect();
        out.sort();
        Ok(out)
    }

    /// `true` or `false`.
    pub fn flag(&self, key: &str) -> Result<bool, String> {
        let default = match self.default_of(key)? {
            SettingDefault::Flag(default) => default,
            other => return Err(self.misread(key, "a flag", other)),
        };
        match text(&self.value[key]).as_deref().map(str::trim) {
            None => Ok(default),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(other) => Err(format!(
                "{}: specificConfig.{key} must be true or false, not {other}",
                self.adapter
            )),
        }
    }

    /// A whole number.
    pub fn number(&self, key: &str) -> Result<u64, String> {
        let default = match self.default_of(key)? {
            SettingDefault::Number(default) => default,
            other => return Err(self.misread(key, "a number", other)),
        };
        match text(&self.value[key]) {
            None => Ok(default),
            Some(n) => n.trim().parse().map_err(|_| {
                format!(
                    "{}: specificConfig.{key} must be a whole number, not {n}",
                    self.adapter
                )
            }),
        }
    }

    /// A duration as Ditto writes them: `500ms`, `2s`, `1m`, `1h`; a bare number is seconds.
    pub fn duration(&self, key: &str) -> Result<Duration, String> {
        let default = match self.default_of(key)? {
            SettingDefault::Duration(default) => default,
            other => return Err(self.misread(key, "a duration", other)),
        };
        let Some(raw) = text(&self.value[key]) else {
            return Ok(default);
        };
        parse_duration(raw.trim()).ok_or_else(|| {
            format!(
                "{}: specificConfig.{key} must be a duration like 500ms, 2s, 1m or 1h, not {raw}",
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
        const SETTINGS: &[Setting] = &[
            Setting::flag("a", false),
            Setting::flag("missing", true),
            Setting::number("b", 0),
            Setting::duration("c", Duration::ZERO),
            Setting::duration("d", Duration::ZERO),
            Setting::new("e", SettingDefault::Unset),
            Setting::new("f", SettingDefault::Text("plain")),
            Setting::new("lib.", SettingDefault::Prefix),
        ];
        let connection =
            json!({"specificConfig": {"a": "true", "b": 5, "c": "1500ms", "d": "1m", "e": "x"}});
        let s = Specific::of("test", &connection, SETTINGS);
        assert_eq!(s.flag("a"), Ok(true));
        assert_eq!(s.flag("missing"), Ok(true));
        assert_eq!(s.number("b"), Ok(5));
        assert_eq!(s.duration("c"), Ok(Duration::from_millis(1500)));
        assert_eq!(s.duration("d"), Ok(Duration::from_secs(60)));
        assert_eq!(s.text("e"), Ok(Some("x".to_owned())));
        assert_eq!(s.string("f"), Ok("plain".to_owned()));
        assert_eq!(parse_duration("2h"), Some(Duration::from_secs(7200)));
        // A bad value names the key; a key or a kind the table does not have is refused.
        let bad = json!({"specificConfig": {"a": "x", "b": "x", "c": "x"}});
        let s = Specific::of("test", &bad, SETTINGS);
        assert!(s
            .flag("a")
            .unwrap_err()
            .starts_with("test: specificConfig.a"));
        assert!(s.number("b").is_err());
        assert!(s.duration("c").is_err());
        assert!(s
            .flag("z")
            .unwrap_err()
            .contains("not among the adapter's settings"));
        assert!(s.number("a").unwrap_err().contains("read as a number"));
        let passed = json!({"specificConfig": {"lib.b": 2, "lib.a": "x", "lib.": "y", "other": 1}});
        assert_eq!(
            Specific::of("test", &passed, SETTINGS).prefixed("lib."),
            Ok(vec![
                ("a".to_owned(), "x".to_owned()),
                ("b".to_owned(), "2".to_owned())
            ])
        );
        let wait = backoff(Duration::from_secs(1), Duration::from_secs(60), 3);
        assert!(wait >= Duration::from_secs(8) && wait < Duration::from_millis(9_600));
        assert!(
            backoff(Duration::from_secs(1), Duration::from_secs(60), 30) < Duration::from_secs(73)
        );
    }

    #[test]
    fn defaults_are_written_as_the_reference_writes_them() {
        let written = |d: SettingDefault| d.to_string();
        assert_eq!(written(SettingDefault::Flag(true)), "`true`");
        assert_eq!(written(SettingDefault::Number(100)), "`100`");
        assert_eq!(
            written(SettingDefault::Duration(Duration::from_millis(200))),
            "`200ms`"
        );
        assert_eq!(
            written(SettingDefault::Duration(Duration::from_secs(60))),
            "`60s`"
        );
        assert_eq!(
            written(SettingDefault::Duration(Duration::from_secs(3600))),
            "`1h`"
        );
        assert_eq!(written(SettingDefault::Duration(Duration::ZERO)), "`0s`");
        assert_eq!(written(SettingDefault::Text("")), "empty");
        assert_eq!(
            written(SettingDefault::Derived("the connection ID")),
            "the connection ID"
        );
        assert_eq!(written(SettingDefault::Unset), "none");
        // Every written duration reads back as itself.
        for d in [
            Duration::from_millis(1500),
            Duration::from_secs(7),
            Duration::from_secs(7200),
        ] {
            let text = written(SettingDefault::Duration(d));
            assert_eq!(parse_duration(text.trim_matches('`')), Some(d), "{text}");
        }
    }
}
