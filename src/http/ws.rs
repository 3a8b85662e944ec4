//! The WebSocket endpoint of subscriptions (SPEC §3, `graphql-transport-ws`): origin check,
//! sign-in from `connection_init` (or the cookie), per-connection data.

use super::auth::{bearer, client_info, resolve_viewer, token_from_headers};
use super::error_response;
use super::router::AppState;
use crate::graphql::errors::code;
use async_graphql::Data;
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::extract::{ConnectInfo, State, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use std::net::SocketAddr;

/// Whether a browser origin may open a WebSocket: same host, or a configured CORS origin.
fn origin_allowed(headers: &HeaderMap, allowed: &[String]) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true; // not a browser
    };
    if allowed.iter().any(|o| o == origin) {
        return true;
    }
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin
        .split_once("://")
        .is_some_and(|(_, rest)| !host.is_empty() && rest == host)
}

/// `GET /graphql/ws`.
pub async fn graphql_ws(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.stack.config.cors_origins) {
        return error_response(StatusCode::FORBIDDEN, code::FORBIDDEN, "origin not allowed");
    }
    let cookie_token = token_from_headers(&headers);
    let client = client_info(&headers, addr);
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let stack = state.stack.clone();
            GraphQLWebSocket::new(socket, state.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    // `connection_init` may carry {"Authorization": "Bearer …"}; else the cookie.
                    let from_payload = payload
                        .get("Authorization")
                        .or_else(|| payload.get("authorization"))
                        .and_then(|v| v.as_str())
                        .and_then(bearer);
                    let viewer = resolve_viewer(&stack, from_payload.or(cookie_token))
                        .await
                        .map_err(|err| {
                            tracing::error!(error = ?err, "session validation failed");
                            async_graphql::Error::new("Internal server error")
                        })?;
                    let mut data = Data::default();
                    data.insert(client);
                    if let Some(viewer) = viewer {
                        data.insert(viewer);
                    }
                    Ok(data)
                })
                .serve()
        })
}
