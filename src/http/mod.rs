//! HTTP edge (SPEC §3, §5): the route table, GraphQL over HTTP and WebSocket, health and
//! metrics, who is calling (session and client), request ids.

pub mod auth;
pub mod graphql_http;
pub mod health;
pub mod request_id;
pub mod router;
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
