//! `/api/2/connections` (read-only): the broker's connections in the shape of Ditto's
//! connections API — the list, one connection (passwords hidden), its status, metrics and logs.
//! Connections are managed by editing the connection directory.

use super::error::{json_response, ApiError};
use super::AppState;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde_json::Value;
use twinwire_core::connections::supervisor::Supervisor;
use twinwire_protocol::DittoError;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/2/connections", get(list))
        .route("/api/2/connections/{id}", get(one))
        .route("/api/2/connections/{id}/status", get(status))
        .route("/api/2/connections/{id}/metrics", get(metrics))
        .route("/api/2/connections/{id}/logs", get(logs))
}

fn not_found(id: &str) -> ApiError {
    ApiError(
        DittoError::new(
            404,
            "connectivity:connection.notfound",
            format!("The Connection with ID '{id}' could not be found."),
        )
        .with_description("Check if the ID of the Connection was correct."),
    )
}

fn supervisor(state: &AppState) -> Option<&Supervisor> {
    state.connections.as_ref()
}

async fn list(State(state): State<AppState>) -> Response {
    let mut all = Vec::new();
    if let Some(s) = supervisor(&state) {
        for id in s.ids().await {
            if let Some(json) = s.connection_json(&id).await {
                all.push(json);
            }
        }
    }
    json_response(200, &Value::Array(all))
}

async fn one(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let s = supervisor(&state).ok_or_else(|| not_found(&id))?;
    let json = s.connection_json(&id).await.ok_or_else(|| not_found(&id))?;
    Ok(json_response(200, &json))
}

async fn status(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = supervisor(&state).ok_or_else(|| not_found(&id))?;
    let json = s.status_json(&id).await.ok_or_else(|| not_found(&id))?;
    Ok(json_response(200, &json))
}

async fn metrics(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let s = supervisor(&state).ok_or_else(|| not_found(&id))?;
    let json = s.metrics_json(&id).await.ok_or_else(|| not_found(&id))?;
    Ok(json_response(200, &json))
}

async fn logs(State(state): State<AppState>, Path(id): Path<String>) -> Result<Response, ApiError> {
    let s = supervisor(&state).ok_or_else(|| not_found(&id))?;
    let json = s.logs_json(&id).await.ok_or_else(|| not_found(&id))?;
    Ok(json_response(200, &json))
}
