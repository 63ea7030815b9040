//! Every failure of the HTTP API as Ditto's error JSON (`status`, `error`, `message`,
//! `description`) with its status, in one place.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use twinwire_protocol::DittoError;

/// A Ditto error answered over HTTP.
#[derive(Debug)]
pub struct ApiError(pub DittoError);

impl From<DittoError> for ApiError {
    fn from(error: DittoError) -> Self {
        ApiError(error)
    }
}

impl From<twinwire_protocol::ProtocolError> for ApiError {
    fn from(error: twinwire_protocol::ProtocolError) -> Self {
        ApiError(error.into())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        json_response(self.0.status, &self.0.to_json())
    }
}

/// A JSON body with a status.
pub fn json_response(status: u16, body: &serde_json::Value) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
