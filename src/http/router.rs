//! Routes (SPEC §3, §5): `/graphql` (POST; GET for queries or GraphiQL), `/graphql/ws`,
//! `/healthz`, `/readyz`, `/metrics`, and GraphiQL's assets under `/graphiql/`.

use super::auth::token_from_headers;
use super::request_id::{self, RequestId};
use crate::graphql::errors::{add_request_id, code};
use crate::graphql::loaders;
use crate::graphql::{AppSchema, build_schema};
use crate::identity::{ClientInfo, Viewer};
use crate::startup::WebStack;
use async_graphql::parser::types::OperationType;
use async_graphql::{BatchRequest, BatchResponse, Data};
use async_graphql_axum::{GraphQLProtocol, GraphQLWebSocket};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Extension, Query, State, WebSocketUpgrade};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use metrics_exporter_prometheus::PrometheusHandle;
use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Duration;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::TraceLayer;
use tracing::Instrument;

/// Shared state of the routes.
#[derive(Clone)]
pub struct AppState {
    schema: AppSchema,
    stack: WebStack,
}

/// The one Prometheus recorder of the process.
fn metrics_handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed already; then ours just stays empty.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Builds the router of the web stack.
pub fn router(stack: WebStack) -> Router {
    let limits = stack.config.limits.clone();
    let schema = build_schema(Some(stack.clone()), &limits);
    metrics_handle();
    let state = AppState {
        schema,
        stack: stack.clone(),
    };
    let mut app = Router::new()
        .route("/graphql", get(graphql_get).post(graphql_post))
        .route("/graphql/ws", get(graphql_ws))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(|| async { metrics_handle().render() }))
        .merge(super::graphiql::router())
        .with_state(state)
        .layer(DefaultBodyLimit::max(limits.max_body_bytes))
        .layer(CatchPanicLayer::custom(|_| {
            graphql_error(StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL_SERVER_ERROR, "Internal server error")
        }))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::extract::Request| {
                let request_id = req.extensions().get::<RequestId>().map_or("", |r| r.0.as_str());
                tracing::info_span!("request", method = %req.method(), path = %req.uri().path(), request_id)
            }),
        );
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

/// A response in GraphQL error shape, for failures outside GraphQL execution.
fn graphql_error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "data": null,
        "errors": [{
            "message": message,
            "extensions": { "code": code, "requestId": request_id::current() },
        }],
    });
    (status, Json(body)).into_response()
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<AppState>) -> Response {
    let stack = &state.stack;
    let (identity, web, store) = tokio::join!(
        crate::db::ping(&stack.dbs.identity),
        crate::db::ping(&stack.dbs.web),
        stack.cache.store().ping(),
    );
    let status = |r: &anyhow::Result<()>| if r.is_ok() { "ok" } else { "unavailable" };
    let body = serde_json::json!({
        "identityDatabase": status(&identity),
        "webDatabase": status(&web),
        "store": status(&store),
    });
    let code = if identity.is_ok() && web.is_ok() && store.is_ok() {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

fn client_info(headers: &HeaderMap, addr: SocketAddr) -> ClientInfo {
    ClientInfo {
        ip: Some(addr.ip().to_string()),
        user_agent: headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(255).collect()),
    }
}

async fn viewer(stack: &WebStack, headers: &HeaderMap) -> Result<Option<Viewer>, Response> {
    let Some(token) = token_from_headers(headers) else {
        return Ok(None);
    };
    match stack.users.validate_session(&token).await {
        Ok(viewer) => Ok(viewer),
        Err(err) => {
            tracing::error!(error = ?err, "session validation failed");
            Err(graphql_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL_SERVER_ERROR,
                "Internal server error",
            ))
        }
    }
}

async fn execute(
    state: &AppState,
    batch: BatchRequest,
    headers: &HeaderMap,
    addr: SocketAddr,
    request_id: &RequestId,
) -> Response {
    let viewer = match viewer(&state.stack, headers).await {
        Ok(v) => v,
        Err(response) => return response,
    };
    let client = client_info(headers, addr);
    let batch = match batch {
        BatchRequest::Single(req) => {
            BatchRequest::Single(attach(req, &state.stack, &viewer, &client))
        }
        BatchRequest::Batch(reqs) => BatchRequest::Batch(
            reqs.into_iter()
                .map(|r| attach(r, &state.stack, &viewer, &client))
                .collect(),
        ),
    };
    // Run to the end even if the client goes away: a write and the cache invalidation
    // that follows its commit are never cut apart by a disconnect.
    let schema = state.schema.clone();
    let run = async move { schema.execute_batch(batch).await }.instrument(tracing::Span::current());
    let Ok(mut response) = tokio::spawn(run).await else {
        return graphql_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL_SERVER_ERROR,
            "Internal server error",
        );
    };
    match &mut response {
        BatchResponse::Single(r) => add_request_id(r, &request_id.0),
        BatchResponse::Batch(rs) => rs.iter_mut().for_each(|r| add_request_id(r, &request_id.0)),
    }
    respond(response, headers)
}

/// Per-request data: the viewer, the client, and the DataLoaders.
fn attach(
    req: async_graphql::Request,
    stack: &WebStack,
    viewer: &Option<Viewer>,
    client: &ClientInfo,
) -> async_graphql::Request {
    let mut req = loaders::attach(req.data(client.clone()), stack);
    if let Some(viewer) = viewer {
        req = req.data(viewer.clone());
    }
    req
}

/// GraphQL-over-HTTP: `application/graphql-response+json` (with 4xx when there is no data)
/// when the client accepts it, else `application/json` with 200.
fn respond(response: BatchResponse, headers: &HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let modern = accept.contains("application/graphql-response+json");
    let status = match &response {
        BatchResponse::Single(r)
            if modern && r.data == async_graphql::Value::Null && !r.errors.is_empty() =>
        {
            StatusCode::BAD_REQUEST
        }
        _ => StatusCode::OK,
    };
    let extra_headers = response.http_headers();
    let body = match serde_json::to_vec(&response) {
        Ok(body) => body,
        Err(_) => {
            return graphql_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL_SERVER_ERROR,
                "Internal server error",
            );
        }
    };
    let content_type = if modern {
        "application/graphql-response+json; charset=utf-8"
    } else {
        "application/json"
    };
    let mut out = (status, [(header::CONTENT_TYPE, content_type)], body).into_response();
    out.headers_mut().extend(extra_headers);
    out
}

async fn graphql_post(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let media = content_type.split(';').next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/json")
        && !media.eq_ignore_ascii_case("application/graphql-response+json")
    {
        return graphql_error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::BAD_USER_INPUT,
            "send the request as Content-Type: application/json",
        );
    }
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let status = rejection.status();
            let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
                format!(
                    "request body is larger than {} bytes",
                    state.stack.config.limits.max_body_bytes
                )
            } else {
                "could not read the request body".to_owned()
            };
            return graphql_error(status, code::BAD_USER_INPUT, &message);
        }
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(err) => {
            return graphql_error(
                StatusCode::BAD_REQUEST,
                code::GRAPHQL_PARSE_FAILED,
                &format!("request body is not a GraphQL request: {err}"),
            );
        }
    };
    if let BatchRequest::Batch(reqs) = &batch {
        let max = state.stack.config.limits.max_batch;
        if reqs.len() > max || reqs.is_empty() {
            return graphql_error(
                StatusCode::BAD_REQUEST,
                code::BAD_USER_INPUT,
                &format!("a batch holds 1 to {max} operations"),
            );
        }
    }
    execute(&state, batch, &headers, addr, &request_id).await
}

/// Parameters of a GraphQL GET request (GraphQL over HTTP names them in camelCase).
#[derive(Debug, serde::Deserialize)]
pub struct GetParams {
    query: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
    variables: Option<String>,
    extensions: Option<String>,
}

/// Which operation of `query` would run.
fn operation_type(query: &str, operation_name: Option<&str>) -> Option<OperationType> {
    let doc = async_graphql::parser::parse_query(query).ok()?;
    match (&doc.operations, operation_name) {
        (async_graphql::parser::types::DocumentOperations::Single(op), _) => Some(op.node.ty),
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), Some(name)) => ops
            .iter()
            .find(|(op_name, _)| op_name.as_str() == name)
            .map(|(_, op)| op.node.ty),
        (async_graphql::parser::types::DocumentOperations::Multiple(ops), None)
            if ops.len() == 1 =>
        {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    }
}

async fn graphql_get(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    Extension(request_id): Extension<RequestId>,
    headers: HeaderMap,
    Query(params): Query<GetParams>,
) -> Response {
    let Some(query) = params.query.filter(|q| !q.is_empty()) else {
        let wants_html = headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| a.contains("text/html"));
        if wants_html {
            return super::graphiql::page(&headers);
        }
        return graphql_error(
            StatusCode::BAD_REQUEST,
            code::BAD_USER_INPUT,
            "missing `query` parameter",
        );
    };
    let mut request = async_graphql::Request::new(query);
    request.operation_name = params.operation_name;
    let bad_json = |name: &str, err: serde_json::Error| {
        graphql_error(
            StatusCode::BAD_REQUEST,
            code::BAD_USER_INPUT,
            &format!("`{name}` is not JSON: {err}"),
        )
    };
    if let Some(raw) = &params.variables {
        match serde_json::from_str(raw) {
            Ok(v) => request.variables = v,
            Err(err) => return bad_json("variables", err),
        }
    }
    if let Some(raw) = &params.extensions {
        match serde_json::from_str(raw) {
            Ok(v) => request.extensions = v,
            Err(err) => return bad_json("extensions", err),
        }
    }
    // SPEC §3: a mutation (or subscription) over GET is refused; GET must stay safe.
    if matches!(
        operation_type(&request.query, request.operation_name.as_deref()),
        Some(OperationType::Mutation | OperationType::Subscription)
    ) {
        let mut response = graphql_error(
            StatusCode::METHOD_NOT_ALLOWED,
            code::BAD_USER_INPUT,
            "mutations and subscriptions must be sent with POST",
        );
        response
            .headers_mut()
            .insert(header::ALLOW, HeaderValue::from_static("POST"));
        return response;
    }
    execute(
        &state,
        BatchRequest::Single(request),
        &headers,
        addr,
        &request_id,
    )
    .await
}

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

async fn graphql_ws(
    State(state): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    protocol: GraphQLProtocol,
    upgrade: WebSocketUpgrade,
) -> Response {
    if !origin_allowed(&headers, &state.stack.config.cors_origins) {
        return graphql_error(StatusCode::FORBIDDEN, code::FORBIDDEN, "origin not allowed");
    }
    let cookie_token = token_from_headers(&headers);
    let client = client_info(&headers, addr);
    upgrade
        .protocols(async_graphql::http::ALL_WEBSOCKET_PROTOCOLS)
        .on_upgrade(move |socket| {
            let stack = state.stack.clone();
            GraphQLWebSocket::new(socket, state.schema.clone(), protocol)
                .on_connection_init(move |payload| async move {
                    let mut data = Data::default();
                    data.insert(client);
                    // `connection_init` may carry {"Authorization": "Bearer …"}; else the cookie.
                    let from_payload = payload
                        .get("Authorization")
                        .or_else(|| payload.get("authorization"))
                        .and_then(|v| v.as_str())
                        .and_then(|v| v.strip_prefix("Bearer ").or(Some(v)))
                        .and_then(crate::identity::token::SessionToken::from_client);
                    if let Some(token) = from_payload.or(cookie_token)
                        && let Ok(Some(viewer)) = stack.users.validate_session(&token).await
                    {
                        data.insert(viewer);
                    }
                    Ok(data)
                })
                .serve()
        })
}
