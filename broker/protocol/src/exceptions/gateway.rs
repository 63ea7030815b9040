//! `gateway:` exceptions: what the HTTP and WebSocket gateway answers before a signal exists
//! (authentication, limits, unknown routes). Texts are Ditto's gateway's.

use super::err;
use crate::error::DittoError;

const CHECK_CREDENTIALS: &str = "Check if your credentials were correct.";

/// No credentials, or credentials that do not verify (`GatewayAuthenticationFailedException`).
pub fn authentication_failed(message: &str) -> DittoError {
    err(
        401,
        "gateway:authentication.failed",
        message.to_owned(),
        CHECK_CREDENTIALS,
    )
}

/// A bearer token was expected and none was given.
pub fn jwt_missing() -> DittoError {
    err(
        401,
        "gateway:authentication.failed",
        "The JWT was missing.".to_owned(),
        "Please provide a valid JWT in the authorization header prefixed with 'Bearer '",
    )
}

/// A bearer token that does not verify (signature, expiry, issuer, audience).
pub fn jwt_invalid(reason: &str) -> DittoError {
    err(
        401,
        "gateway:jwt.invalid",
        "The JWT could not be verified.".to_owned(),
        &format!("Check if your JWT is correct and not expired: {reason}"),
    )
}

/// No route for the request (`GatewayServiceUnavailableException` is for the rest).
pub fn not_found(path: &str) -> DittoError {
    err(
        404,
        "gateway:http.notfound",
        format!("The requested resource '{path}' could not be found."),
        "Check the path of your request against the HTTP API documentation.",
    )
}

/// The method is not allowed on the resource.
pub fn method_not_allowed(method: &str, path: &str) -> DittoError {
    err(
        405,
        "gateway:method.notallowed",
        format!("The method '{method}' is not allowed for '{path}'."),
        "Check the HTTP API documentation for the methods of this resource.",
    )
}

/// A request body larger than the configured limit.
pub fn too_large(limit: usize) -> DittoError {
    err(
        413,
        "gateway:request.toolarge",
        format!("The request is larger than the allowed {limit} bytes."),
        "Reduce the size of the request body.",
    )
}

/// Too many WebSocket sessions at once.
pub fn too_many_sessions(limit: usize) -> DittoError {
    err(
        503,
        "gateway:websocket.toomany",
        format!("The broker serves at most {limit} WebSocket sessions at once."),
        "Try again later.",
    )
}
