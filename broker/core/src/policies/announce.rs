//! Subject deletion announcements (docs/basic-policy.md, "Subject deletion announcements";
//! docs/protocol-specification-policies.md, "Announcements"): which subjects of a policy are to
//! be announced, and when. Pure: the policy shard keeps the clock and what was announced.
//!
//! - `beforeExpiry`: an announcement `beforeExpiry` ahead of a subject's `expiry`, once.
//! - `whenDeleted`: an announcement when the subject is deleted (by a command or by its expiry),
//!   unless it was announced before its expiry already.
//! - `requestedAcks`: the labels and timeout the announcement requests; the router retries it
//!   until they are acknowledged.

use super::policy::PolicyEntity;
use serde_json::Value;
use std::time::Duration;

/// A subject's `announcement` settings, with its expiry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubjectAnnouncement {
    pub subject: String,
    /// The subject's expiry (epoch ms), if it has one.
    pub expiry_ms: Option<i64>,
    /// How long before the expiry to announce.
    pub before_expiry: Option<Duration>,
    pub when_deleted: bool,
    pub labels: Vec<String>,
    pub timeout: Option<Duration>,
}

impl SubjectAnnouncement {
    /// When to announce ahead of the expiry (epoch ms).
    pub fn announce_at(&self) -> Option<i64> {
        let before = i64::try_from(self.before_expiry?.as_millis()).unwrap_or(i64::MAX);
        Some(self.expiry_ms?.saturating_sub(before))
    }
}

/// Every subject of a policy with `announcement` settings; a subject in several entries once
/// (its first).
pub fn announced_subjects(entity: &PolicyEntity) -> Vec<SubjectAnnouncement> {
    let mut out: Vec<SubjectAnnouncement> = Vec::new();
    let entries = entity.policy.iter().flat_map(|p| p.entries());
    for (_, entry) in entries {
        let Some(subjects) = entry.get("subjects").and_then(Value::as_object) else {
            continue;
        };
        for (subject, body) in subjects {
            let Some(announcement) = body.get("announcement") else {
                continue;
            };
            if out.iter().any(|a| &a.subject == subject) {
                continue;
            }
            let requested = announcement.get("requestedAcks");
            out.push(SubjectAnnouncement {
                subject: subject.clone(),
                expiry_ms: body
                    .get("expiry")
                    .and_then(Value::as_str)
                    .and_then(super::rules::parse_instant)
                    .map(|at| at.timestamp_millis()),
                before_expiry: announcement
                    .get("beforeExpiry")
                    .and_then(Value::as_str)
                    .and_then(parse_duration),
                when_deleted: announcement
                    .get("whenDeleted")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                labels: requested
                    .and_then(|r| r.get("labels"))
                    .and_then(Value::as_array)
                    .map(|labels| {
                        labels
                            .iter()
                            .filter_map(Value::as_str)
                            .map(str::to_owned)
                            .collect()
                    })
                    .unwrap_or_default(),
                timeout: requested
                    .and_then(|r| r.get("timeout"))
                    .and_then(Value::as_str)
                    .and_then(parse_duration),
            });
        }
    }
    out
}

/// The subjects of `before` announcing `whenDeleted` that `after` no longer has.
pub fn deleted(before: &[SubjectAnnouncement], after: &PolicyEntity) -> Vec<SubjectAnnouncement> {
    if before.iter().all(|a| !a.when_deleted) {
        return Vec::new();
    }
    let remaining: Vec<&str> = after
        .policy
        .iter()
        .flat_map(|p| p.entries())
        .filter_map(|(_, entry)| entry.get("subjects").and_then(Value::as_object))
        .flat_map(|subjects| subjects.keys().map(String::as_str))
        .collect();
    before
        .iter()
        .filter(|a| a.when_deleted && !remaining.contains(&a.subject.as_str()))
        .cloned()
        .collect()
}

/// One subject deletion announcement to publish: the subjects sharing a deletion time and an
/// acknowledgement request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Announcement {
    pub delete_at_ms: i64,
    pub labels: Vec<String>,
    pub timeout: Option<Duration>,
    pub subject_ids: Vec<String>,
}

/// Groups subjects into announcements: by their expiry, or all at `deleted_at` (epoch ms) when
/// they are deleted already, and by what acknowledgements they request.
pub fn group(subjects: &[SubjectAnnouncement], deleted_at: Option<i64>) -> Vec<Announcement> {
    let mut out: Vec<Announcement> = Vec::new();
    for a in subjects {
        let delete_at_ms = deleted_at.or(a.expiry_ms).unwrap_or_default();
        let same = out.iter_mut().find(|g| {
            g.delete_at_ms == delete_at_ms && g.labels == a.labels && g.timeout == a.timeout
        });
        match same {
            Some(group) => group.subject_ids.push(a.subject.clone()),
            None => out.push(Announcement {
                delete_at_ms,
                labels: a.labels.clone(),
                timeout: a.timeout,
                subject_ids: vec![a.subject.clone()],
            }),
        }
    }
    out
}

/// `10ms`, `30s`, `5m`, `1h` (checked when the policy was written).
pub fn parse_duration(s: &str) -> Option<Duration> {
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    let n: u64 = s[..digits].parse().ok()?;
    match &s[digits..] {
        "ms" => Some(Duration::from_millis(n)),
        "s" => Some(Duration::from_secs(n)),
        "m" => Some(Duration::from_secs(n.checked_mul(60)?)),
        "h" => Some(Duration::from_secs(n.checked_mul(3600)?)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("2s"), Some(Duration::from_secs(2)));
        assert_eq!(parse_duration("5m"), Some(Duration::from_secs(300)));
        assert_eq!(parse_duration("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_duration("h"), None);
        assert_eq!(parse_duration("1d"), None);
    }

    fn subject(name: &str, expiry_ms: i64, labels: &[&str]) -> SubjectAnnouncement {
        SubjectAnnouncement {
            subject: name.into(),
            expiry_ms: Some(expiry_ms),
            before_expiry: None,
            when_deleted: true,
            labels: labels.iter().map(|l| l.to_string()).collect(),
            timeout: None,
        }
    }

    #[test]
    fn subjects_group_by_deletion_time_and_acks() {
        let subjects = [
            subject("a", 10, &[]),
            subject("b", 10, &[]),
            subject("c", 20, &[]),
            subject("d", 10, &["x:y"]),
        ];
        let groups = group(&subjects, None);
        let ids: Vec<_> = groups
            .iter()
            .map(|g| (g.delete_at_ms, g.subject_ids.clone()))
            .collect();
        assert_eq!(
            ids,
            [
                (10, vec!["a".to_owned(), "b".to_owned()]),
                (20, vec!["c".to_owned()]),
                (10, vec!["d".to_owned()])
            ]
        );
        // Deleted already: one time for all.
        let groups = group(&subjects, Some(5));
        assert_eq!(groups.len(), 2);
        assert!(groups.iter().all(|g| g.delete_at_ms == 5));
    }

    #[test]
    fn announce_at_is_before_the_expiry() {
        let a = SubjectAnnouncement {
            subject: "s".into(),
            expiry_ms: Some(10_000),
            before_expiry: Some(Duration::from_secs(3)),
            when_deleted: false,
            labels: Vec::new(),
            timeout: None,
        };
        assert_eq!(a.announce_at(), Some(7_000));
        let never = SubjectAnnouncement {
            before_expiry: None,
            ..a
        };
        assert_eq!(never.announce_at(), None);
    }
}
