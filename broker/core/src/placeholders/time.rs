//! `time:now` and `time:now_epoch_millis` with an optional `±<n><unit>` offset and `[<unit>]`
//! truncation (docs/basic-placeholders.md "Time Placeholder").
//!
//! Units are `ms s m h d w mo y`. Offsets in `mo` and `y` are calendar months and years (the 31st
//! minus one month is the last day of the previous month); the others are fixed durations. A
//! missing offset unit means seconds, as in Ditto. Truncation to `w` goes back to Monday, to `mo`
//! to the first of the month, to `y` to the first of January, all at 00:00 UTC. `time:now` is
//! written `2024-01-06T14:23:42.123Z`: always UTC, always three fractional digits, as the
//! documentation's examples show.

use chrono::{DateTime, Datelike, Months, TimeDelta, Utc};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Unit {
    Millis,
    Seconds,
    Minutes,
    Hours,
    Days,
    Weeks,
    Months,
    Years,
}

impl Unit {
    fn parse(s: &str) -> Option<Unit> {
        Some(match s {
            "ms" => Unit::Millis,
            "s" => Unit::Seconds,
            "m" => Unit::Minutes,
            "h" => Unit::Hours,
            "d" => Unit::Days,
            "w" => Unit::Weeks,
            "mo" => Unit::Months,
            "y" => Unit::Years,
            _ => return None,
        })
    }

    /// The fixed length in milliseconds, for the units that have one.
    fn millis(self) -> Option<i64> {
        Some(match self {
            Unit::Millis => 1,
            Unit::Seconds => 1_000,
            Unit::Minutes => 60_000,
            Unit::Hours => 3_600_000,
            Unit::Days => 86_400_000,
            Unit::Weeks => 7 * 86_400_000,
            Unit::Months | Unit::Years => return None,
        })
    }
}

/// A parsed time placeholder name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TimeSpec {
    epoch_millis: bool,
    /// Signed amount and unit.
    offset: Option<(i64, Unit)>,
    truncate: Option<Unit>,
}

impl TimeSpec {
    /// Parses `now`, `now_epoch_millis`, each optionally followed by `+5m`, `-7d`, `[h]`.
    pub(crate) fn parse(name: &str) -> Result<TimeSpec, String> {
        let (epoch_millis, rest) = if let Some(rest) = name.strip_prefix("now_epoch_millis") {
            (true, rest)
        } else if let Some(rest) = name.strip_prefix("now") {
            (false, rest)
        } else {
            return Err("time placeholders are 'now' or 'now_epoch_millis'".to_owned());
        };
        let mut rest = rest;
        let mut offset = None;
        if let Some(sign) = rest.chars().next().filter(|c| *c == '+' || *c == '-') {
            let body = &rest[1..];
            let digits = body.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(format!(
                    "the offset after '{sign}' must be an integer followed by a unit"
                ));
            }
            let amount: i64 = body[..digits]
                .parse()
                .map_err(|_| "the offset is too large".to_owned())?;
            let after = &body[digits..];
            let unit_len = after.find('[').unwrap_or(after.len());
            let unit = match &after[..unit_len] {
                "" => Unit::Seconds,
                u => Unit::parse(u).ok_or_else(|| {
                    format!("unknown offset unit '{u}' (use one of ms s m h d w mo y)")
                })?,
            };
            offset = Some((if sign == '-' { -amount } else { amount }, unit));
            rest = &after[unit_len..];
        }
        let mut truncate = None;
        if let Some(inner) = rest.strip_prefix('[') {
            let unit = inner
                .strip_suffix(']')
                .ok_or_else(|| "the truncation must be written [<unit>] at the end".to_owned())?;
            truncate = Some(Unit::parse(unit).ok_or_else(|| {
                format!("unknown truncation unit '{unit}' (use one of ms s m h d w mo y)")
            })?);
            rest = "";
        }
        if !rest.is_empty() {
            return Err(format!(
                "unexpected '{rest}' (write an offset as +<n><unit> or -<n><unit> and a \
                 truncation as [<unit>])"
            ));
        }
        Ok(TimeSpec {
            epoch_millis,
            offset,
            truncate,
        })
    }

    /// The value at `now_millis`, or `None` if it falls outside the representable range.
    pub(crate) fn evaluate(&self, now_millis: i64) -> Option<String> {
        let mut t = DateTime::<Utc>::from_timestamp_millis(now_millis)?;
        if let Some((amount, unit)) = self.offset {
            t = match unit.millis() {
                Some(ms) => {
                    t.checked_add_signed(TimeDelta::try_milliseconds(amount.checked_mul(ms)?)?)?
                }
                None => {
                    let months = if unit == Unit::Years {
                        amount.checked_mul(12)?
                    } else {
                        amount
                    };
                    let m = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
                    if months < 0 {
                        t.checked_sub_months(m)?
                    } else {
                        t.checked_add_months(m)?
                    }
                }
            };
        }
        if let Some(unit) = self.truncate {
            t = truncate(t, unit)?;
        }
        Some(if self.epoch_millis {
            t.timestamp_millis().to_string()
        } else {
            t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
        })
    }
}

fn truncate(t: DateTime<Utc>, unit: Unit) -> Option<DateTime<Utc>> {
    let ms = t.timestamp_millis();
    let floor = |step: i64| DateTime::<Utc>::from_timestamp_millis(ms - ms.rem_euclid(step));
    match unit {
        Unit::Millis | Unit::Seconds | Unit::Minutes | Unit::Hours | Unit::Days => {
            floor(unit.millis()?)
        }
        Unit::Weeks => {
            let day = floor(86_400_000)?;
            let back = i64::from(day.weekday().num_days_from_monday());
            day.checked_sub_signed(TimeDelta::try_days(back)?)
        }
        Unit::Months => floor(86_400_000)?.with_day(1),
        Unit::Years => floor(86_400_000)?.with_day(1)?.with_month(1),
    }
}
