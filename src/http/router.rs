//! The route table (SPEC §3, §5) and the layers every route shares.

use super::auth::client_address;
use super::graphql_http::{graphql_get, graphql_post};
use super::health::{healthz, metrics, metrics_handle, readyz};
use super::internal_error;
use super::request_id::{self, RequestId};
use super::ws::{WsClients, graphql_ws};
use crate::graphql::{AppSchema, build_schema};
use crate::stack::WebStack;
use axum::extract::{ConnectInfo, DefaultBodyLimit};
use axum::http::{HeaderValue, Method, header};
use axum::response::Redirect;
use axum::routing::get;
use axum::{Router, middleware};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;

/// Shared state of the routes.
#[derive(Clone)]
pub struct AppState {
    /// The executable schema.
    pub schema: AppSchema,
    /// The web stack.
    pub stack: WebStack,
    /// Open WebSockets per client address.
    pub ws_clients: Arc<WsClients>,
}

/// Builds the router of the web stack.
pub fn router(stack: WebStack) -> Router {
    let limits = stack.config.limits.clone();
    let schema = build_schema(Some(stack.clone()), &limits);
    metrics_handle();
    let state = AppState {
        schema,
        stack: stack.clone(),
        ws_clients: Arc::default(),
    };
    let proxies = stack.config.trusted_proxies.clone();
    let mut app = Router::new()
        // A browser opening the server's address lands on GraphiQL.
        .route("/", get(|| async { Redirect::to("/graphql") }))
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| internal_error()))
        .layer(
            TraceLayer::new_for_http().make_span_with(move |req: &axum::extract::Request| {
                let request_id = req
                    .extensions()
                    .get::<RequestId>()
                    .map_or("", |r| r.0.as_str());
                let client = req
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|peer| client_address(req.headers(), peer.0.ip(), &proxies));
                tracing::info_span!(
                    "request",
                    method = %req.method(),
                    path = %req.uri().path(),
                    request_id,
                    client = client.map(tracing::field::display),
                )
            }),
        );
    if limits.introspection {
        // GraphiQL reveals the schema: only where introspection is allowed.
        app = app.merge(super::graphiql::router());
    }
    if let Some(cors) = cors_layer(&stack.config.cors_origins) {
        app = app.layer(cors);
    }
    app.layer(middleware::from_fn(request_id::assign))
}

fn cors_layer(origins: &[String]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_credentials(true)
            .allow_methods([Method::GET, Method::POST])
            .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION, header::ACCEPT])
            .max_age(Duration::from_secs(600)),
    )
}
