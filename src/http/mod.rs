//! HTTP edge (SPEC §3, §5): the route table, GraphQL over HTTP and WebSocket, health and
//! metrics, GraphiQL, who is calling (session and client), request ids.

pub mod auth;
pub mod graphiql;
pub mod graphql_http;
pub mod health;
pub mod request_id;
pub mod router;
pub mod serve;
pub mod ws;

use crate::graphql::errors::code;
use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// A response in GraphQL error shape, for failures outside GraphQL execution.
pub fn error_response(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "errors": [{
            "message": message,
            "extensions": { "code": code, "requestId": request_id::current() },
        }],
    });
    (status, Json(body)).into_response()
}

/// The response for an internal failure outside GraphQL (the details are logged, not sent).
pub fn internal_error() -> Response {
    error_response(
        StatusCode::INTERNAL_SERVER_ERROR,
        code::INTERNAL_SERVER_ERROR,
        "Internal server error",
    )
}

/// The JSON of a GraphQL response. A request error (refused before execution) has no
/// `data` entry, as GraphQL over HTTP requires; every other response has one, `null` or not.
pub fn response_body(response: &async_graphql::Response, request_error: bool) -> serde_json::Value {
    let mut body = serde_json::Map::new();
    if !response.errors.is_empty() {
        body.insert(
            "errors".into(),
            serde_json::to_value(&response.errors).unwrap_or_default(),
        );
    }
    if !request_error {
        body.insert(
            "data".into(),
            serde_json::to_value(&response.data).unwrap_or_default(),
        );
    }
    if !response.extensions.is_empty() {
        body.insert(
            "extensions".into(),
            serde_json::to_value(&response.extensions).unwrap_or_default(),
        );
    }
    serde_json::Value::Object(body)
}
