//! From the router's answer to an HTTP response, as Ditto's HTTP API answers: no reply is 202
//! Accepted; a response's status and value (none for 204); an error's or aggregated acks' JSON
//! with their status; `ETag`, `Location` for a 201, the correlation-id and the smart-channel
//! headers; a message response's own content type (text stays text).

use super::error::json_response;
use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use twinwire_core::routing::Answer;
use twinwire_protocol::headers::names;
use twinwire_protocol::Envelope;

/// Envelope headers an HTTP response carries.
const ANSWERED_HEADERS: [&str; 5] = [
    names::CORRELATION_ID,
    names::ETAG,
    names::LIVE_CHANNEL_CONDITION_MATCHED,
    names::CHANNEL,
    "location",
];

/// The HTTP response for an answer; `location` is where a created resource lives.
pub fn respond(answer: Answer, location: Option<&str>) -> Response {
    let Some(reply) = answer.reply else {
        return StatusCode::ACCEPTED.into_response();
    };
    envelope_response(reply, location)
}

/// The HTTP response for a reply envelope.
pub fn envelope_response(reply: Envelope, location: Option<&str>) -> Response {
    let status = reply.status.unwrap_or(200);
    let content_type = reply.headers.content_type().map(str::to_owned);
    let mut response = match (&reply.value, status) {
        // 204 and 304 carry no body (RFC 9110).
        (_, 204 | 304) | (None, _) => status_only(status),
        (Some(Value::String(text)), _) if content_type.as_deref().is_some_and(|c| !is_json(c)) => {
            let mut response = (to_status(status), text.clone()).into_response();
            if let Some(c) = content_type
                .as_deref()
                .and_then(|c| HeaderValue::from_str(c).ok())
            {
                response.headers_mut().insert(header::CONTENT_TYPE, c);
            }
            response
        }
        (Some(value), _) => json_response(status, value),
    };
    let headers = response.headers_mut();
    for name in ANSWERED_HEADERS {
        if let Some(value) = reply.headers.get_str(name) {
            if let (Ok(n), Ok(v)) = (HeaderName::try_from(name), HeaderValue::from_str(&value)) {
                headers.insert(n, v);
            }
        }
    }
    if status == 201 {
        if let Some(v) = location.and_then(|l| HeaderValue::from_str(l).ok()) {
            headers.insert(header::LOCATION, v);
        }
    }
    response
}

fn status_only(status: u16) -> Response {
    Response::builder()
        .status(to_status(status))
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

fn to_status(status: u16) -> StatusCode {
    StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// `application/json`, `application/merge-patch+json`, `application/vnd.eclipse.ditto+json`.
pub fn is_json(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json") || essence.ends_with("+json")
}
