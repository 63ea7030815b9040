//! The connections of a broker, kept running: each is opened (its adapter created, its
//! pipelines started), retried with exponential backoff and jitter while it cannot be, closed
//! cleanly on removal, and replaced when its file changes — one connection at a time, the
//! others untouched. A connection directory can be watched: added, changed and removed files
//! take effect while the broker runs; a file that no longer validates leaves the running
//! version in place and logs why.

use super::load::load_dir;
use super::log::ConnectionLog;
use super::metrics::ConnectionMetrics;
use super::model::{Connection, ConnectionStatus as Desired};
use super::runtime::{AdapterFactory, RunningConnection, Status};
use super::validate::{redact, Severity};
use crate::routing::Router;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::task::JoinHandle;

/// Reconnect delays: from `initial`, doubled per failed attempt up to `max`, each with up to
/// a fifth of random jitter so that many connections do not retry in step.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before attempt `n` (0-based) after a failure.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self
            .initial
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.max);
        let jitter_range = base.as_millis() as u64 / 5;
        let jitter = if jitter_range == 0 {
            0
        } else {
            u64::from(uuid::Uuid::new_v4().as_u128() as u32) % jitter_range
        };
        base + Duration::from_millis(jitter)
    }
}

#[derive(Default)]
struct Shared {
    running: Mutex<Option<RunningConnection>>,
    /// Opening attempts and what the connection's pipelines report.
    log: Arc<ConnectionLog>,
    attempts: Mutex<u32>,
    last_failure: Mutex<Option<String>>,
}

struct Managed {
    spec: Connection,
    shared: Arc<Shared>,
    opener: Option<JoinHandle<()>>,
}

/// Every connection of the broker.
#[derive(Clone)]
pub struct Supervisor {
    router: Router,
    factory: AdapterFactory,
    backoff: Backoff,
    managed: Arc<tokio::sync::Mutex<HashMap<String, Managed>>>,
}

impl std::fmt::Debug for Supervisor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Supervisor").finish_non_exhaustive()
    }
}

impl Supervisor {
    pub fn new(router: Router, factory: AdapterFactory, backoff: Backoff) -> Self {
        Supervisor {
            router,
            factory,
            backoff,
            managed: Arc::default(),
        }
    }

    /// Adds a connection, or replaces the one of its ID when it differs (closing that first).
    pub async fn apply(&self, spec: Connection) {
        let mut managed = self.managed.lock().await;
        if managed.get(&spec.id).is_some_and(|m| m.spec == spec) {
            return;
        }
        if let Some(old) = managed.remove(&spec.id) {
            tracing::info!(connection = %spec.id, "connection changed: closing the old one");
            stop(old).await;
        }
        let shared = Arc::new(Shared::default());
        let opener = (spec.connection_status == Desired::Open)
            .then(|| self.spawn_opener(spec.clone(), Arc::clone(&shared)));
        managed.insert(
            spec.id.clone(),
            Managed {
                spec,
                shared,
                opener,
            },
        );
    }

    /// Removes a connection, closing it.
    pub async fn remove(&self, id: &str) -> bool {
        let removed = self.managed.lock().await.remove(id);
        match removed {
            Some(old) => {
                tracing::info!(connection = %id, "connection removed");
                stop(old).await;
                true
            }
            None => false,
        }
    }

    /// The IDs of every connection.
    pub async fn ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self.managed.lock().await.keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Closes every connection.
    pub async fn close_all(&self) {
        let all: Vec<Managed> = self.managed.lock().await.drain().map(|(_, m)| m).collect();
        for managed in all {
            stop(managed).await;
        }
    }

    fn spawn_opener(&self, spec: Connection, shared: Arc<Shared>) -> JoinHandle<()> {
        let router = self.router.clone();
        let factory = Arc::clone(&self.factory);
        let backoff = self.backoff;
        tokio::spawn(async move {
            let mut attempt = 0u32;
            loop {
                match RunningConnection::open_with_log(
                    spec.clone(),
                    router.clone(),
                    &factory,
                    Arc::clone(&shared.log),
                )
                .await
                {
                    Ok(running) => {
                        shared.log.success("connection", "other", "opened");
                        let mut failures = running.failures();
                        *shared
                            .running
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(running);
                        attempt = 0;
                        // An adapter that failed for good is closed and created again.
                        let detail = loop {
                            if failures.changed().await.is_err() {
                                return;
                            }
                            if let Some(detail) = failures.borrow().clone() {
                                break detail;
                            }
                        };
                        tracing::warn!(connection = %spec.id, detail, "adapter failed: reopening");
                        shared
                            .log
                            .failure("connection", "other", format!("failed: {detail}"));
                        *shared
                            .last_failure
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(detail);
                        let failed = shared
                            .running
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .take();
                        if let Some(failed) = failed {
                            failed.close().await;
                        }
                        tokio::time::sleep(backoff.delay(attempt)).await;
                    }
                    Err(error) => {
                        let message = error
                            .description
                            .clone()
                            .or(error.message.clone())
                            .unwrap_or_default();
                        tracing::warn!(connection = %spec.id, attempt, error = %message, "connection could not be opened");
                        shared.log.failure("connection", "other", message.clone());
                        *shared
                            .last_failure
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(message);
                        *shared
                            .attempts
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = attempt + 1;
                        tokio::time::sleep(backoff.delay(attempt)).await;
                        attempt = attempt.saturating_add(1);
                    }
                }
            }
        })
    }

    /// A connection as Ditto's API shows it, its URI's password hidden.
    pub async fn connection_json(&self, id: &str) -> Option<Value> {
        let managed = self.managed.lock().await;
        let spec = &managed.get(id)?.spec;
        let mut json = serde_json::to_value(spec).ok()?;
        json["uri"] = Value::from(redact(&spec.uri));
        if let Some(credentials) = json.get_mut("credentials").and_then(Value::as_object_mut) {
            for secret in ["password", "key", "clientSecret"] {
                if credentials.contains_key(secret) {
                    credentials.insert(secret.into(), Value::from("***"));
                }
            }
        }
        Some(json)
    }

    /// The status JSON (checklist §8.4).
    pub async fn status_json(&self, id: &str) -> Option<Value> {
        let managed = self.managed.lock().await;
        let m = managed.get(id)?;
        let running = m
            .shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let (live, details) = match (
            m.spec.connection_status,
            running.as_ref().map(RunningConnection::status),
        ) {
            (Desired::Closed, _) => ("closed", "closed by configuration".to_owned()),
            (Desired::Open, None) => (
                "failed",
                m.shared
                    .last_failure
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clone()
                    .unwrap_or_else(|| "opening".into()),
            ),
            (Desired::Open, Some(Status { status, detail })) => (
                match status {
                    twinwire_plugin::ConnectionStatus::Connected => "open",
                    twinwire_plugin::ConnectionStatus::Disconnected => "closed",
                    _ => "failed",
                },
                detail,
            ),
        };
        let desired = match m.spec.connection_status {
            Desired::Open => "open",
            Desired::Closed => "closed",
        };
        let attempts = *m
            .shared
            .attempts
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Some(json!({
            "connectionId": id,
            "connectionStatus": desired,
            "liveStatus": live,
            "recoveryStatus": if live == "open" { "succeeded" } else if attempts > 0 { "ongoing" } else { "unknown" },
            "clientStatus": [{"type": "client", "client": "twinwire", "status": live, "statusDetails": details}],
            "sourceStatus": m.spec.sources.iter().flat_map(|s| s.addresses.iter()).map(|a| json!({"type": "source", "client": "twinwire", "address": a, "status": live})).collect::<Vec<_>>(),
            "targetStatus": m.spec.targets.iter().map(|t| json!({"type": "target", "client": "twinwire", "address": t.address,
                "status": if t.address.contains("{{") { "unknown" } else { live }})).collect::<Vec<_>>(),
        }))
    }

    /// The metrics JSON (checklist §8.5).
    pub async fn metrics_json(&self, id: &str) -> Option<Value> {
        let managed = self.managed.lock().await;
        let m = managed.get(id)?;
        let running = m
            .shared
            .running
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Some(match running.as_ref() {
            Some(r) => r.metrics.json(id),
            None => ConnectionMetrics::new(id, Vec::new(), Vec::new()).json(id),
        })
    }

    /// The logs JSON (checklist §8.6): the connection's last events and failures.
    pub async fn logs_json(&self, id: &str) -> Option<Value> {
        let managed = self.managed.lock().await;
        let m = managed.get(id)?;
        Some(json!({"connectionId": id, "connectionLogs": m.shared.log.json()}))
    }

    /// Watches a directory of connection files: every `interval`, added, changed and removed
    /// files take effect. Returns the watching task.
    pub fn watch(&self, dir: PathBuf, interval: Duration) -> JoinHandle<()> {
        let supervisor = self.clone();
        tokio::spawn(async move {
            loop {
                supervisor.reload(&dir).await;
                tokio::time::sleep(interval).await;
            }
        })
    }

    /// Applies the directory once: usable files are applied, connections whose file is gone
    /// are removed, a file with errors keeps its running version.
    pub async fn reload(&self, dir: &std::path::Path) {
        let env = |name: &str| std::env::var(name).ok();
        let loaded = match load_dir(dir, &env) {
            Ok(loaded) => loaded,
            Err(e) => {
                tracing::warn!(error = %e, "connection directory not read");
                return;
            }
        };
        let mut present = Vec::new();
        for file in loaded {
            let errors: Vec<String> = file
                .problems
                .iter()
                .filter(|p| p.severity == Severity::Error)
                .map(|p| p.to_string())
                .collect();
            match file.connection {
                Some(connection) if errors.is_empty() => {
                    present.push(connection.id.clone());
                    self.apply(connection).await;
                }
                Some(connection) => {
                    // Keep what runs; say why the change is not taken.
                    present.push(connection.id.clone());
                    tracing::warn!(file = %file.path.display(), problems = ?errors, "connection file not applied");
                }
                None => {
                    tracing::warn!(file = %file.path.display(), problems = ?errors, "connection file not read");
                }
            }
        }
        for id in self.ids().await {
            if !present.contains(&id) {
                self.remove(&id).await;
            }
        }
    }
}

async fn stop(managed: Managed) {
    if let Some(opener) = managed.opener {
        opener.abort();
    }
    let running = managed
        .shared
        .running
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    if let Some(running) = running {
        running.close().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum_with_jitter() {
        let b = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(1),
        };
        let d0 = b.delay(0);
        assert!(
            d0 >= Duration::from_millis(100) && d0 <= Duration::from_millis(120),
            "{d0:?}"
        );
        let d3 = b.delay(3);
        assert!(
            d3 >= Duration::from_millis(800) && d3 <= Duration::from_millis(960),
            "{d3:?}"
        );
        let d10 = b.delay(10);
        assert!(
            d10 >= Duration::from_secs(1) && d10 <= Duration::from_millis(1_200),
            "{d10:?}"
        );
    }
}
