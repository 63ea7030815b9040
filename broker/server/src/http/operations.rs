//! What an operator's tooling asks, without authentication: `/metrics` (Prometheus text format),
//! `/health/live` (the process serves) and `/health/ready` (the journal takes appends and every
//! connection meant to be open is connected; the reasons when not).

use std::sync::atomic::Ordering;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router as AxumRouter};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use serde_json::json;

use super::AppState;

/// Latency buckets of every `_seconds` histogram: 100 µs to 30 s.
const SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];
/// Buckets of the journal's batch sizes (records per commit).
const RECORDS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0,
];

/// The process's Prometheus recorder, installed by the first caller (one per process; `None` if
/// another recorder was installed first).
pub fn prometheus() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), SECONDS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("twinwire_journal_batch_records".into()),
                        RECORDS,
                    )
                })
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    let upkeep = handle.clone();
                    // Histograms are kept in a form that needs draining now and then.
                    std::thread::Builder::new()
                        .name("twinwire-metrics".into())
                        .spawn(move || loop {
                            std::thread::sleep(Duration::from_secs(5));
                            upkeep.run_upkeep();
                        })
                        .ok()?;
                    Some(handle)
                }
                Err(e) => {
                    tracing::warn!(error = %e, "no Prometheus metrics: a recorder was installed already");
                    None
                }
            }
        })
        .clone()
}

pub fn routes() -> AxumRouter<AppState> {
    AxumRouter::new()
        .route("/metrics", get(metrics))
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
}

async fn metrics(State(state): State<AppState>) -> Response {
    let Some(handle) = prometheus() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "no metrics recorder\n").into_response();
    };
    // Gauges and totals kept elsewhere, read at scrape time.
    metrics::gauge!("twinwire_websocket_sessions")
        .set(state.sessions.load(Ordering::Relaxed) as f64);
    let published = state.router.publisher().stats();
    metrics::gauge!("twinwire_subscriptions").set(published.subscriptions as f64);
    metrics::gauge!("twinwire_acks_pending").set(state.router.acks().len() as f64);
    for (shard, depth) in state
        .router
        .engine()
        .shard_queue_depths()
        .into_iter()
        .enumerate()
    {
        metrics::gauge!("twinwire_shard_queue_depth", "shard" => shard.to_string())
            .set(depth as f64);
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        handle.render(),
    )
        .into_response()
}

async fn live() -> Response {
    Json(json!({"status": "UP"})).into_response()
}

async fn ready(State(state): State<AppState>) -> Response {
    let mut reasons = Vec::new();
    if let Some(failure) = state.router.engine().journal().failure() {
        reasons.push(format!("the journal stopped: {failure}"));
    }
    if let Some(connections) = &state.connections {
        for id in connections.ids().await {
            let Some(status) = connections.status_json(&id).await else {
                continue;
            };
            if status["connectionStatus"] == "open" && status["liveStatus"] != "open" {
                let detail = status["clientStatus"][0]["statusDetails"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned();
                reasons.push(format!("connection '{id}' is not connected: {detail}"));
            }
        }
    }
    if reasons.is_empty() {
        Json(json!({"status": "UP"})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "DOWN", "reasons": reasons})),
        )
            .into_response()
    }
}
