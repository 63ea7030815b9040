//! `like`/`ilike` matching as Ditto does it: base/model `LikeHelper` turns the pattern into a
//! Java regex (`*` → `.*`, `?` → `.`, everything else literal, whole-string match), compiled
//! without flags for `like` and with `CASE_INSENSITIVE` (ASCII only) for `ilike`.
//!
//! Matched here without a regex engine, in time linear in the text for each pattern segment's
//! 64-character block, so a hostile pattern cannot make evaluation backtrack.

use super::property::JAVA_LINE_TERMINATORS;
use std::collections::HashMap;

/// Whether `text` matches `pattern` entirely.
///
/// Java's `.` matches no line terminator, so neither wildcard does: every line terminator of
/// the text must be a literal one of the pattern, in the same order. Each line of the pattern
/// then matches its line of the text as a plain wildcard pattern.
pub(super) fn matches(pattern: &str, text: &str, ignore_case: bool) -> bool {
    pattern
        .matches(JAVA_LINE_TERMINATORS)
        .eq(text.matches(JAVA_LINE_TERMINATORS))
        && pattern
            .split(JAVA_LINE_TERMINATORS)
            .zip(text.split(JAVA_LINE_TERMINATORS))
            .all(|(p, t)| line_matches(p, t, ignore_case))
}

/// A wildcard match within one line: the segments between `*`s must appear in order, the first
/// anchored at the start and the last at the end; taking each middle segment's leftmost
/// occurrence is optimal because a `*` absorbs anything.
fn line_matches(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let fold = |c: char| {
        if ignore_case {
            c.to_ascii_lowercase()
        } else {
            c
        }
    };
    let text: Vec<char> = text.chars().map(fold).collect();
    let segments: Vec<Vec<char>> = pattern
        .split('*')
        .map(|s| s.chars().map(fold).collect())
        .collect();
    let [first, middle @ .., last] = segments.as_slice() else {
        // No `*`: one segment, the whole text.
        return segments
            .first()
            .is_some_and(|only| only.len() == text.len() && segment_at(only, &text, 0));
    };
    if first.len() + last.len() > text.len()
        || !segment_at(first, &text, 0)
        || !segment_at(last, &text, text.len() - last.len())
    {
        return false;
    }
    let end = text.len() - last.len();
    let mut pos = first.len();
    for segment in middle {
        match find(segment, &text[pos..end]) {
            Some(found) => pos += found + segment.len(),
            None => return false,
        }
    }
    true
}

/// Whether `segment` (with `?` for any character) matches `text` at `at`.
fn segment_at(segment: &[char], text: &[char], at: usize) -> bool {
    text.get(at..at + segment.len())
        .is_some_and(|window| segment.iter().zip(window).all(|(p, t)| *p == '?' || p == t))
}

/// The leftmost occurrence of `segment` (with `?` for any character) in `text`: bit-parallel
/// Shift-And, one pass over the text whatever the segment.
fn find(segment: &[char], text: &[char]) -> Option<usize> {
    if segment.is_empty() {
        return Some(0);
    }
    let words = segment.len().div_ceil(64);
    // Per character, the segment positions it may stand at; '?' positions accept any.
    let mut any = vec![0u64; words];
    let mut masks: HashMap<char, Vec<u64>> = HashMap::new();
    for (i, c) in segment.iter().enumerate() {
        let (word, bit) = (i / 64, 1u64 << (i % 64));
        if *c == '?' {
            any[word] |= bit;
        } else {
            masks.entry(*c).or_insert_with(|| vec![0; words])[word] |= bit;
        }
    }
    for mask in masks.values_mut() {
        for (m, a) in mask.iter_mut().zip(&any) {
            *m |= a;
        }
    }
    let (last_word, last_bit) = ((segment.len() - 1) / 64, 1u64 << ((segment.len() - 1) % 64));
    // Bit i of `state`: the segment's first i+1 characters end at the current text character.
    let mut state = vec![0u64; words];
    for (end, c) in text.iter().enumerate() {
        let mask = masks.get(c).unwrap_or(&any);
        let mut carry = 1u64;
        for (s, m) in state.iter_mut().zip(mask) {
            let next_carry = *s >> 63;
            *s = ((*s << 1) | carry) & m;
            carry = next_carry;
        }
        if state[last_word] & last_bit != 0 {
            return Some(end + 1 - segment.len());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ditto_like_helper_cases() {
        // LikeHelperTest.testWildcards
        for (value, pattern, expected) in [
            ("", "*", true),
            ("foo", "*", true),
            ("foo.bar", "foo.bar", true),
            ("foo..bar", "foo.bar", false),
            ("foo..bar", "foo*", true),
            ("foo..bar", "*bar", true),
            ("foo.bar.baz", "bar", false),
            ("foo.bar.baz", "*bar*", true),
        ] {
            assert_eq!(
                matches(pattern, value, false),
                expected,
                "{value} {pattern}"
            );
        }
        // testCaseInsensitiveWildcards
        for (value, pattern, expected) in [
            ("", "*", true),
            ("foo", "*", true),
            ("foo.bar", "FOO.BAR", true),
            ("foo..bar", "foo.bar", false),
            ("foo..bar", "FOO*", true),
            ("foo..bar", "*Bar", true),
            ("foo.bar.baz", "bar", false),
            ("foo.bar.baz", "*bAr*", true),
        ] {
            assert_eq!(matches(pattern, value, true), expected, "{value} {pattern}");
        }
    }

    #[test]
    fn wildcards() {
        assert!(matches("Th?ng", "Thing", false));
        assert!(!matches("Th?ng", "Thng", false));
        assert!(!matches("Th?ng", "Thiing", false));
        assert!(matches("*", "", false));
        assert!(matches("**", "abc", false));
        assert!(matches("", "", false));
        assert!(!matches("", "a", false));
        assert!(matches("a*b*c", "abc", false));
        assert!(matches("a*b*c", "axxbyyc", false));
        assert!(!matches("a*b*c", "axxcyyb", false));
        assert!(matches("*ab*ab*", "xabyabz", false));
        assert!(!matches("*ab*ab*", "xabz", false));
        assert!(matches("a*a", "a".repeat(1000).as_str(), false));
        assert!(!matches("*aab", "ab", false));
        assert!(matches("*?*", "x", false));
        assert!(!matches("*??*", "x", false));
        assert!(matches("[.+]$^", "[.+]$^", false), "no regex syntax");
        assert!(matches("ä?ö", "äüö", false));
    }

    #[test]
    fn ilike_folds_ascii_only() {
        assert!(matches("ABC*", "abcdef", true));
        assert!(!matches("ABC*", "abcdef", false));
        assert!(
            !matches("Ä", "ä", true),
            "Java's CASE_INSENSITIVE is ASCII-only"
        );
    }

    #[test]
    fn wildcards_stop_at_line_terminators() {
        assert!(!matches("a*b", "a\nb", false));
        assert!(!matches("a?b", "a\nb", false));
        assert!(matches("a\nb", "a\nb", false));
        assert!(matches("*\n*", "abc\ndef", false));
        assert!(!matches("*\n*", "abc\rdef", false));
        assert!(matches("a*\n", "abc\n", false));
        assert!(!matches("a*", "abc\n", false));
        assert!(!matches("*", "\n", false));
        assert!(matches("*\u{2028}", "x\u{2028}", false));
    }

    #[test]
    fn long_segments_span_words() {
        let segment = format!("{}?{}", "a".repeat(70), "b".repeat(70));
        let text = format!("zz{}x{}zz", "a".repeat(70), "b".repeat(70));
        assert!(matches(&format!("*{segment}*"), &text, false));
        assert!(!matches(&format!("*{segment}c*"), &text, false));
    }
}
