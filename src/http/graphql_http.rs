//! GraphQL over HTTP (SPEC §3): `POST /graphql` (JSON, batches), `GET /graphql` (queries
//! only, or GraphiQL for browsers), and the response media types of the GraphQL-over-HTTP
//! specification.

use super::auth::{client_info, resolve_viewer, token_from_headers};
use super::request_id::RequestId;
use super::router::AppState;
use super::{error_response, internal_error};
use crate::graphql::errors::{add_request_id, code};
use crate::graphql::loaders;
use crate::identity::{ClientInfo, Viewer};
use crate::stack::WebStack;
use async_graphql::parser::types::{DocumentOperations, OperationType};
use async_graphql::{BatchRequest, BatchResponse};
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::net::SocketAddr;
use tracing::Instrument;

/// `POST /graphql`: a JSON request or a batch (an array) of them.
pub async fn graphql_post(
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
        return error_response(
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
            return error_response(status, code::BAD_USER_INPUT, &message);
        }
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(err) => {
            return error_response(
                StatusCode::BAD_REQUEST,
                code::GRAPHQL_PARSE_FAILED,
                &format!("request body is not a GraphQL request: {err}"),
            );
        }
    };
    if let BatchRequest::Batch(reqs) = &batch {
        let max = state.stack.config.limits.max_batch;
        if reqs.len() > max || reqs.is_empty() {
            return error_response(
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

/// `GET /graphql`: a query in the URL, or GraphiQL for a browser.
pub async fn graphql_get(
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
            return graphiql_page();
        }
        return error_response(
            StatusCode::BAD_REQUEST,
            code::BAD_USER_INPUT,
            "missing `query` parameter",
        );
    };
    let mut request = async_graphql::Request::new(query);
    request.operation_name = params.operation_name;
    let bad_json = |name: &str, err: serde_json::Error| {
        error_response(
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
        let mut response = error_response(
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

fn graphiql_page() -> Response {
    Html(
        async_graphql::http::GraphiQLSource::build()
            .endpoint("/graphql")
            .subscription_endpoint("/graphql/ws")
            .credentials(async_graphql::http::Credentials::Include)
            .finish(),
    )
    .into_response()
}

/// Which operation of `query` would run.
fn operation_type(query: &str, operation_name: Option<&str>) -> Option<OperationType> {
    let doc = async_graphql::parser::parse_query(query).ok()?;
    match (&doc.operations, operation_name) {
        (DocumentOperations::Single(op), _) => Some(op.node.ty),
        (DocumentOperations::Multiple(ops), Some(name)) => ops
            .iter()
            .find(|(op_name, _)| op_name.as_str() == name)
            .map(|(_, op)| op.node.ty),
        (DocumentOperations::Multiple(ops), None) if ops.len() == 1 => {
            ops.values().next().map(|op| op.node.ty)
        }
        _ => None,
    }
}

async fn execute(
    state: &AppState,
    batch: BatchRequest,
    headers: &HeaderMap,
    addr: SocketAddr,
    request_id: &RequestId,
) -> Response {
    let viewer = match resolve_viewer(&state.stack, token_from_headers(headers)).await {
        Ok(viewer) => viewer,
        Err(err) => {
            tracing::error!(error = ?err, "session validation failed");
            return internal_error();
        }
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
        return internal_error();
    };
    match &mut response {
        BatchResponse::Single(r) => add_request_id(r, &request_id.0),
        BatchResponse::Batch(rs) => rs.iter_mut().for_each(|r| add_request_id(r, &request_id.0)),
    }
    respond(response, headers)
}

/// Per-request data: the viewer, the client, and the DataLoaders.
pub fn attach(
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
    let Ok(body) = serde_json::to_vec(&response) else {
        return internal_error();
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
