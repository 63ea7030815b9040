//! `time:<name>` values (docs/basic-placeholders.md "Time Placeholder"), resolved as Ditto's
//! placeholders `ImmutableTimePlaceholder` does: `now` (ISO-8601 in UTC), `now_epoch_millis`,
//! either with an offset (`now-7d`) and/or a truncation (`now[h]`), units `ms s m h d w mo y`.
//!
//! A name Ditto does not support resolves to `None`, which the expression then treats as `null`.
//! Ditto truncates to weeks, months and years in the JVM's default time zone; twinwire uses UTC.

const NOW: &str = "now";
const NOW_EPOCH_MILLIS: &str = "now_epoch_millis";

const MILLIS_PER_DAY: i64 = 86_400_000;

/// Ditto's `DittoDuration.DittoTimeUnit`, in its declaration order, which is the order a
/// duration's unit is tried in. `""` is seconds.
const UNITS: [&str; 9] = ["s", "", "ms", "m", "h", "d", "w", "mo", "y"];

/// The value of `time:<name>` at `now_millis`, or `None` where Ditto resolves nothing (an
/// unsupported name, or where Java would throw on overflow).
pub(super) fn resolve(name: &str, now_millis: i64) -> Option<String> {
    let base = if name.starts_with(NOW_EPOCH_MILLIS) {
        NOW_EPOCH_MILLIS
    } else if name.starts_with(NOW) {
        NOW
    } else {
        return None;
    };
    // Java's `String.replace`: every occurrence, not just the leading one.
    let suffix = name.replace(base, "");
    if !suffix.is_empty() && !is_valid_time_range(&suffix) {
        return None;
    }
    let millis = if suffix.is_empty() {
        // Exactly `now`/`now_epoch_millis`; any other name whose suffix vanishes (`nownow`)
        // is "supported" by Ditto yet resolves to nothing.
        if name != base {
            return None;
        }
        now_millis
    } else {
        shifted_and_truncated(&suffix, now_millis)?
    };
    Some(if base == NOW_EPOCH_MILLIS {
        millis.to_string()
    } else {
        iso_instant(millis)
    })
}

/// `isValidTimeRange`: `±<duration>`, optionally followed by `[<unit>]`, or just `[<unit>]`.
fn is_valid_time_range(suffix: &str) -> bool {
    match suffix.strip_prefix(['+', '-']) {
        Some(duration_with_truncation) => {
            let duration = if has_brackets(duration_with_truncation) {
                if truncation_unit(duration_with_truncation).is_none() {
                    return false;
                }
                duration_with_truncation
                    .split_once('[')
                    .map_or(duration_with_truncation, |(d, _)| d)
            } else {
                duration_with_truncation
            };
            duration_millis(duration).is_some()
        }
        None => has_brackets(suffix) && truncation_unit(suffix).is_some(),
    }
}

fn has_brackets(s: &str) -> bool {
    s.contains('[') && s.contains(']')
}

/// The unit between the first `[` and the last `]`, if it is one.
fn truncation_unit(s: &str) -> Option<&'static str> {
    let after = &s[s.find('[')? + 1..];
    let unit = &after[..after.rfind(']')?];
    UNITS.iter().copied().find(|u| *u == unit)
}

/// `resolveWithPotentialTimeRangeSuffix`.
fn shifted_and_truncated(suffix: &str, now_millis: i64) -> Option<i64> {
    let truncation = if has_brackets(suffix) {
        Some(truncation_unit(suffix)?)
    } else {
        None
    };
    let shifted = match suffix.chars().next() {
        Some(sign @ ('+' | '-')) => {
            let range = suffix.split_once('[').map_or(suffix, |(r, _)| r);
            let duration = duration_millis(&range[1..])?;
            if sign == '+' {
                now_millis.checked_add(duration)?
            } else {
                now_millis.checked_sub(duration)?
            }
        }
        _ => {
            truncation?;
            now_millis
        }
    };
    match truncation {
        Some(unit) => truncate(shifted, unit),
        None => Some(shifted),
    }
}

/// `DittoDuration.parseDuration` in milliseconds: `[+-]?digits` followed by the first unit that
/// makes the whole string match; the amount must not be negative.
fn duration_millis(duration: &str) -> Option<i64> {
    let (amount, unit) = UNITS.iter().find_map(|unit| {
        let amount = duration.strip_suffix(unit)?;
        let digits = amount.strip_prefix(['+', '-']).unwrap_or(amount);
        (!digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .then_some((amount, *unit))
    })?;
    let amount: i64 = amount.parse().ok().filter(|a| *a >= 0)?;
    match unit {
        "ms" => Some(amount),
        "s" | "" => amount.checked_mul(1000),
        "m" => amount.checked_mul(60_000),
        "h" => amount.checked_mul(3_600_000),
        "d" => amount.checked_mul(MILLIS_PER_DAY),
        // Period.ofWeeks((int) amount): the amount is narrowed to an int first.
        "w" => i64::from((amount as i32).checked_mul(7)?).checked_mul(MILLIS_PER_DAY),
        // ChronoUnit.MONTHS/YEARS' estimated durations, 2629746 s and 31556952 s.
        "mo" => i64::from(amount as i32).checked_mul(2_629_746_000),
        "y" => i64::from(amount as i32).checked_mul(31_556_952_000),
        _ => None,
    }
}

/// `Instant.truncatedTo`, or for weeks, months and years the start of the Monday, the first of
/// the month or the first of January that contains the instant (UTC).
fn truncate(millis: i64, unit: &str) -> Option<i64> {
    let floor_to = |step: i64| millis - millis.rem_euclid(step);
    Some(match unit {
        "ms" => millis,
        "s" | "" => floor_to(1000),
        "m" => floor_to(60_000),
        "h" => floor_to(3_600_000),
        "d" => floor_to(MILLIS_PER_DAY),
        "w" => {
            let days = millis.div_euclid(MILLIS_PER_DAY);
            // 1970-01-01 was a Thursday: three days after a Monday.
            (days - (days + 3).rem_euclid(7)) * MILLIS_PER_DAY
        }
        "mo" | "y" => {
            let (year, month, _) = civil_from_days(millis.div_euclid(MILLIS_PER_DAY));
            let month = if unit == "mo" { month } else { 1 };
            days_from_civil(year, month, 1) * MILLIS_PER_DAY
        }
        _ => return None,
    })
}

/// `Instant.toString()`: `2024-01-06T14:23:42.123Z`, the fraction left out when it is zero.
pub(super) fn iso_instant(millis: i64) -> String {
    let days = millis.div_euclid(MILLIS_PER_DAY);
    let ms_of_day = millis.rem_euclid(MILLIS_PER_DAY);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second, ms) = (
        ms_of_day / 3_600_000,
        ms_of_day / 60_000 % 60,
        ms_of_day / 1000 % 60,
        ms_of_day % 1000,
    );
    let year = match year {
        0..=9999 => format!("{year:04}"),
        10000.. => format!("+{year}"),
        _ => format!("-{:04}", year.unsigned_abs()),
    };
    let fraction = if ms == 0 {
        String::new()
    } else {
        format!(".{ms:03}")
    };
    format!("{year}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}{fraction}Z")
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// (year, month, day) → days since 1970-01-01.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2024-01-06T14:23:42.123Z, the docs' example instant (a Saturday).
    const NOW_MS: i64 = 1_704_551_022_123;

    fn at(name: &str) -> Option<String> {
        resolve(name, NOW_MS)
    }

    #[test]
    fn documented_examples() {
        assert_eq!(at("now").as_deref(), Some("2024-01-06T14:23:42.123Z"));
        assert_eq!(at("now_epoch_millis").as_deref(), Some("1704551022123"));
        assert_eq!(at("now+1h").as_deref(), Some("2024-01-06T15:23:42.123Z"));
        assert_eq!(at("now-7d").as_deref(), Some("2023-12-30T14:23:42.123Z"));
        // Instant.toString leaves out a zero fraction (the docs print ".000").
        assert_eq!(at("now[h]").as_deref(), Some("2024-01-06T14:00:00Z"));
        assert_eq!(at("now[d]").as_deref(), Some("2024-01-06T00:00:00Z"));
        assert_eq!(at("now-25m[m]").as_deref(), Some("2024-01-06T13:58:00Z"));
        assert_eq!(at("now+3d[s]").as_deref(), Some("2024-01-09T14:23:42Z"));
        assert_eq!(at("now_epoch_millis-1s").as_deref(), Some("1704551021123"));
        assert_eq!(at("now_epoch_millis[d]").as_deref(), Some("1704499200000"));
    }

    #[test]
    fn units_and_truncations() {
        assert_eq!(at("now[w]").as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(at("now[mo]").as_deref(), Some("2024-01-01T00:00:00Z"));
        assert_eq!(at("now+1mo[mo]").as_deref(), Some("2024-02-01T00:00:00Z"));
        assert_eq!(at("now-1y[y]").as_deref(), Some("2023-01-01T00:00:00Z"));
        assert_eq!(at("now+500ms").as_deref(), Some("2024-01-06T14:23:42.623Z"));
        assert_eq!(at("now+5").as_deref(), Some("2024-01-06T14:23:47.123Z"));
        assert_eq!(at("now+1w").as_deref(), Some("2024-01-13T14:23:42.123Z"));
        assert_eq!(at("now[]").as_deref(), Some("2024-01-06T14:23:42Z"));
    }

    #[test]
    fn unsupported_names_resolve_to_nothing() {
        for name in [
            "later",
            "now ",
            "now+",
            "now+h",
            "now--1h",
            "now+1x",
            "now[x]",
            "now+1h[x]",
            "nownow",
            "now+99999999999999999999s",
            "now+9223372036854775807ms",
            "now]x[",
        ] {
            assert_eq!(at(name), None, "{name}");
        }
        assert!(
            at("now++1h").is_some(),
            "Long.parseLong takes the second sign"
        );
    }

    #[test]
    fn iso_instants() {
        assert_eq!(iso_instant(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso_instant(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(iso_instant(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(iso_instant(253_402_300_800_000), "+10000-01-01T00:00:00Z");
        for days in [-800_000, -1, 0, 59, 60, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
