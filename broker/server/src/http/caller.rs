//! What the caller is and may do: `GET /api/2/whoami` (its subjects) and
//! `POST /api/2/checkPermissions` (whether it has the named permissions on resources of things
//! and policies).

use super::error::{json_response, ApiError};
use super::request::json_body;
use super::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Extension, Router};
use serde_json::{json, Map, Value};
use twinwire_core::auth::AuthContext;
use twinwire_core::policies::enforcer::Permission;
use twinwire_protocol::{JsonPointer, PolicyId, ProtocolError, ThingId};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/2/whoami", get(whoami))
        .route("/api/2/checkPermissions", post(check_permissions))
}

async fn whoami(Extension(auth): Extension<AuthContext>) -> Response {
    json_response(
        200,
        &json!({"subjects": auth.subjects(), "defaultSubject": auth.first()}),
    )
}

/// `{"<key>": {"resource": "thing:/…", "entityId": "<thing or policy ID>", "hasPermissions":
/// ["READ"]}}` → `{"<key>": true|false}`. An entity that does not exist, or a policy the caller
/// cannot be checked against, is `false`.
async fn check_permissions(
    State(state): State<AppState>,
    Extension(auth): Extension<AuthContext>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let request = json_body(&body)?;
    let checks = request.as_object().ok_or(ProtocolError::FieldType {
        field: "body",
        expected: "an object of permission checks by key",
    })?;
    let mut answers = Map::new();
    for (key, check) in checks {
        let invalid = |field: &'static str, expected: &'static str| ProtocolError::FieldType {
            field,
            expected,
        };
        let resource = check
            .get("resource")
            .and_then(Value::as_str)
            .ok_or(invalid("resource", "a resource like thing:/attributes"))?;
        let entity = check
            .get("entityId")
            .and_then(Value::as_str)
            .ok_or(invalid("entityId", "a thing or policy ID"))?;
        let permissions: Vec<Permission> = check
            .get("hasPermissions")
            .and_then(Value::as_array)
            .ok_or(invalid("hasPermissions", "an array of READ, WRITE"))?
            .iter()
            .map(|p| p.as_str().and_then(Permission::from_name))
            .collect::<Option<_>>()
            .ok_or(invalid("hasPermissions", "an array of READ, WRITE"))?;
        let (resource_type, path) = resource
            .split_once(':')
            .ok_or(invalid("resource", "a resource like thing:/attributes"))?;
        let path = JsonPointer::parse(path)?;
        let enforcer = match resource_type {
            "thing" | "message" => match ThingId::parse(entity) {
                Some(id) => state.router.engine().thing_policy(&id).await.1,
                None => None,
            },
            "policy" => match PolicyId::parse(entity) {
                Some(id) => state
                    .router
                    .engine()
                    .enforcers()
                    .enforcer(id.as_str(), id.namespace())
                    .ok()
                    .flatten(),
                None => None,
            },
            _ => return Err(invalid("resource", "a thing:, message: or policy: resource").into()),
        };
        let granted = enforcer.is_some_and(|compiled| {
            auth.is_unrestricted()
                || permissions.iter().all(|p| {
                    compiled
                        .enforcer
                        .has_permission(auth.subjects(), resource_type, &path, *p)
                })
        });
        answers.insert(key.clone(), Value::Bool(granted));
    }
    Ok(json_response(200, &Value::Object(answers)))
}
