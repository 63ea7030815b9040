//! The HTTP gateway: Ditto's HTTP API v2 (../shared/ditto-reference/openapi/ditto-api-2.yml)
//! over the router, behind authentication and a body limit.
//!
//! - `things`: `/api/2/things` and every thing sub-resource, live channel, messages;
//!   `migrate`: `migrateDefinition`.
//! - `policies`: `/api/2/policies` and every policy sub-resource; `actions`: its actions.
//! - `sse`: server-sent events of changes and messages.
//! - `ws`: `/ws/2`, the WebSocket binding.
//! - `connections`: `/api/2/connections`, read-only.
//! - `caller`: `/api/2/whoami`, `/api/2/checkPermissions`.
//! - `request`, `reply`: HTTP request → envelope parts; router answer → HTTP response.
//! - `error`: every failure as Ditto's error JSON.

pub mod actions;
pub mod caller;
pub mod connections;
pub mod error;
pub mod migrate;
pub mod operations;
pub mod policies;
pub mod reply;
pub mod request;
pub mod sse;
pub mod things;
pub mod ws;

use crate::auth::{Authenticator, PRE_AUTHENTICATED_HEADER};
use crate::config::Limits;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router as AxumRouter;
use error::ApiError;
use std::net::SocketAddr;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use twinwire_core::routing::Router;
use twinwire_protocol::exceptions::gateway;

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub router: Router,
    pub auth: Arc<Authenticator>,
    pub limits: Limits,
    /// The namespace of things created by `POST /api/2/things`.
    pub default_namespace: Arc<str>,
    /// WebSocket sessions open now.
    pub sessions: Arc<AtomicUsize>,
    /// The subject `activateTokenIntegration` injects.
    pub token_integration_subject: Arc<str>,
    /// The connections, when a connection directory is configured.
    pub connections: Option<twinwire_core::connections::supervisor::Supervisor>,
}

/// The whole HTTP API.
pub fn router(state: AppState) -> AxumRouter {
    let max_bytes = state.limits.max_message_bytes;
    let api = AxumRouter::new()
        .merge(things::routes())
        .merge(policies::routes())
        .merge(caller::routes())
        .merge(ws::routes())
        .merge(connections::routes())
        .fallback(|uri: axum::http::Uri| async move {
            ApiError(gateway::not_found(uri.path())).into_response()
        })
        .layer(middleware::from_fn_with_state(state.clone(), authenticate))
        .layer(DefaultBodyLimit::max(max_bytes));
    // Operators' probes and scrapers come without credentials.
    AxumRouter::new()
        .merge(operations::routes())
        .merge(api)
        .with_state(state)
}

/// Puts the caller's `AuthContext` into the request, or answers 401.
async fn authenticate(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let authorization = header_value(&request, header::AUTHORIZATION.as_str());
    let pre_authenticated = header_value(&request, PRE_AUTHENTICATED_HEADER);
    let peer = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    match state
        .auth
        .authenticate(authorization.as_deref(), pre_authenticated.as_deref(), peer)
    {
        Ok(caller) => {
            request.extensions_mut().insert(caller.auth.clone());
            request.extensions_mut().insert(caller);
            next.run(request).await
        }
        Err(error) => {
            let mut response = ApiError(error).into_response();
            if state.auth.accepts_basic() {
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Basic realm=\"twinwire\""),
                );
            }
            response
        }
    }
}

fn header_value(request: &Request, name: &str) -> Option<String> {
    request
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}
