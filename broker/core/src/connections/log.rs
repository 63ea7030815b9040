//! A connection's recent log (checklist §8.6): the last 10 successes and 10 failures of each
//! category (`source`, `target`, `response`, `connection`) and type (`consumed`, `mapped`,
//! `dropped`, `enforced`, `published`, `acknowledged`, `other`), so one noisy kind cannot push
//! the others out.

use serde_json::{json, Value};
use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

/// Entries kept per category, type and level.
const PER_KIND: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    pub timestamp: String,
    pub level: &'static str,
    pub category: &'static str,
    pub kind: &'static str,
    pub message: String,
    pub correlation_id: Option<String>,
    pub address: Option<String>,
}

/// (category, type, level): the entries are kept apart by these.
type Key = (&'static str, &'static str, &'static str);

#[derive(Debug, Default)]
pub struct ConnectionLog {
    entries: Mutex<HashMap<Key, VecDeque<LogEntry>>>,
}

impl ConnectionLog {
    pub fn success(&self, category: &'static str, kind: &'static str, message: impl Into<String>) {
        self.record("success", category, kind, message.into(), None, None);
    }

    pub fn failure(&self, category: &'static str, kind: &'static str, message: impl Into<String>) {
        self.record("failure", category, kind, message.into(), None, None);
    }

    /// An entry with the message's correlation-id and address.
    pub fn record(
        &self,
        level: &'static str,
        category: &'static str,
        kind: &'static str,
        message: String,
        correlation_id: Option<String>,
        address: Option<String>,
    ) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = entries.entry((category, kind, level)).or_default();
        if slot.len() == PER_KIND {
            slot.pop_front();
        }
        slot.push_back(LogEntry {
            timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            level,
            category,
            kind,
            message,
            correlation_id,
            address,
        });
    }

    /// Every entry, oldest first.
    pub fn entries(&self) -> Vec<LogEntry> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let mut all: Vec<LogEntry> = entries.values().flatten().cloned().collect();
        all.sort_by(|a, b| a.timestamp.cmp(&b.timestamp));
        all
    }

    /// The entries as Ditto's `connectionLogs`.
    pub fn json(&self) -> Vec<Value> {
        self.entries()
            .into_iter()
            .map(|e| {
                let mut v = json!({"timestamp": e.timestamp, "level": e.level, "category": e.category,
                                   "type": e.kind, "message": e.message});
                if let Some(id) = e.correlation_id {
                    v["correlationId"] = Value::from(id);
                }
                if let Some(address) = e.address {
                    v["address"] = Value::from(address);
                }
                v
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_kind_keeps_its_last_ten() {
        let log = ConnectionLog::default();
        for i in 0..25 {
            log.failure("source", "mapped", format!("bad {i}"));
        }
        log.success("connection", "other", "opened");
        let entries = log.entries();
        assert_eq!(entries.len(), 11);
        assert!(entries.iter().any(|e| e.message == "opened"));
        assert!(entries.iter().any(|e| e.message == "bad 24"));
        assert!(!entries.iter().any(|e| e.message == "bad 14"));
    }
}
