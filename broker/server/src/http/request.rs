//! From an HTTP request to the parts of a Ditto Protocol envelope: the headers (HTTP headers,
//! then the query parameters Ditto also takes as headers), the field selector, the channel,
//! the path segments after a resource's ID, and the JSON body.

use axum::http::HeaderMap;
use percent_encoding::percent_decode_str;
use serde_json::Value;
use twinwire_protocol::{Headers, JsonPointer, ProtocolError};

/// HTTP headers that are the transport's, not the signal's: never copied into its headers.
const TRANSPORT_HEADERS: [&str; 14] = [
    "authorization",
    "host",
    "connection",
    "content-length",
    "transfer-encoding",
    "accept",
    "accept-encoding",
    "user-agent",
    "cookie",
    "upgrade",
    "keep-alive",
    "te",
    "origin",
    crate::auth::PRE_AUTHENTICATED_HEADER,
];

/// Query parameters that are Ditto headers (docs/httpapi-concepts.md).
const HEADER_PARAMETERS: [&str; 10] = [
    "timeout",
    "response-required",
    "requested-acks",
    "condition",
    "live-channel-condition",
    "live-channel-timeout-strategy",
    "at-historical-revision",
    "at-historical-timestamp",
    "correlation-id",
    "if-equal",
];

/// What the query string says beyond headers.
#[derive(Debug, Default, Clone)]
pub struct QueryParts {
    pub fields: Option<String>,
    /// `channel=live`.
    pub live: bool,
    pub ids: Option<String>,
    pub namespaces: Option<String>,
    pub filter: Option<String>,
    pub extra_fields: Option<String>,
}

/// The signal's headers and the rest of the query.
pub fn signal_headers(
    http: &HeaderMap,
    query: &[(String, String)],
) -> Result<(Headers, QueryParts), ProtocolError> {
    let mut headers = Headers::new();
    for (name, value) in http {
        let name = name.as_str();
        if TRANSPORT_HEADERS.contains(&name) {
            continue;
        }
        let Ok(value) = value.to_str() else {
            return Err(ProtocolError::HeaderInvalid {
                name: name.to_owned(),
                value: String::new(),
                expected: "visible ASCII",
            });
        };
        // Ditto's HTTP API also takes the correlation-id as x-correlation-id.
        let name = if name == "x-correlation-id" {
            "correlation-id"
        } else {
            name
        };
        headers.insert(name, value);
    }
    let mut parts = QueryParts::default();
    for (name, value) in query {
        match name.as_str() {
            "fields" => parts.fields = Some(value.clone()),
            "channel" => parts.live = value == "live",
            "ids" => parts.ids = Some(value.clone()),
            "namespaces" => parts.namespaces = Some(value.clone()),
            "filter" => parts.filter = Some(value.clone()),
            "extraFields" => parts.extra_fields = Some(value.clone()),
            n if HEADER_PARAMETERS.contains(&n) => headers.insert(n, value.as_str()),
            _ => {}
        }
    }
    if headers.get_str("channel").is_some_and(|c| c == "live") {
        parts.live = true;
    }
    Ok((headers, parts))
}

/// The percent-decoded segments of a path below `prefix` (`/api/2/things/`).
pub fn segments(path: &str, prefix: &str) -> Option<Vec<String>> {
    let rest = path.strip_prefix(prefix)?;
    rest.split('/')
        .filter(|s| !s.is_empty())
        .map(|s| {
            percent_decode_str(s)
                .decode_utf8()
                .ok()
                .map(|c| c.into_owned())
        })
        .collect()
}

/// The JSON pointer of a resource's sub-path.
pub fn pointer(segments: &[String]) -> JsonPointer {
    JsonPointer::from_segments(segments.iter().map(String::as_str))
}

/// A JSON request body; `json.invalid` (400) when it is not JSON.
pub fn json_body(body: &[u8]) -> Result<Value, ProtocolError> {
    serde_json::from_slice(body).map_err(|e| ProtocolError::JsonInvalid {
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_are_decoded() {
        let got = segments(
            "/api/2/things/org.eclipse.ditto:t%2F1/attributes/a%20b/",
            "/api/2/things/",
        );
        assert_eq!(got.unwrap(), ["org.eclipse.ditto:t/1", "attributes", "a b"]);
        assert!(segments("/api/2/policies/x", "/api/2/things/").is_none());
    }

    #[test]
    fn query_parameters_become_headers() {
        let mut http = HeaderMap::new();
        http.insert("x-correlation-id", "c-1".parse().unwrap());
        http.insert("authorization", "Basic x".parse().unwrap());
        let query = vec![
            ("timeout".to_owned(), "5s".to_owned()),
            ("fields".to_owned(), "attributes".to_owned()),
            ("channel".to_owned(), "live".to_owned()),
        ];
        let (headers, parts) = signal_headers(&http, &query).unwrap();
        assert_eq!(headers.correlation_id(), Some("c-1"));
        assert!(!headers.contains("authorization"));
        assert_eq!(headers.get_str("timeout").unwrap(), "5s");
        assert_eq!(parts.fields.as_deref(), Some("attributes"));
        assert!(parts.live);
    }
}
