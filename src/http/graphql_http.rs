//! GraphQL over HTTP (SPEC §3): `POST /graphql` (JSON, batches), `GET /graphql` (queries
//! only, or GraphiQL for browsers), and the response media types of the GraphQL-over-HTTP
//! specification.

use super::auth::{client_info, resolve_viewer, token_from_headers};
use super::request_id::RequestId;
use super::router::AppState;
use super::{error_response, internal_error, response_body};
use crate::graphql::AppSchema;
use crate::graphql::context::request_data;
use crate::graphql::errors::{add_request_id, code, take_request_error};
use crate::graphql::gate::{self, Budget, Refusal, Transport};
use async_graphql::BatchRequest;
use async_graphql::parser::types::OperationType;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{ConnectInfo, Extension, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::net::SocketAddr;
use tracing::Instrument;

/// The media type of GraphQL over HTTP, used when the client accepts it.
const GRAPHQL_RESPONSE_JSON: &str = "application/graphql-response+json; charset=utf-8";

/// Whether the client accepts `application/graphql-response+json` (GraphQL over HTTP); if
/// not, responses are `application/json`.
fn accepts_graphql_response(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/graphql-response+json"))
}

/// [`error_response`] in the media type the client accepts: a request refused before any
/// GraphQL ran (no `data` entry).
fn refuse(headers: &HeaderMap, status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = error_response(status, code, message);
    if accepts_graphql_response(headers) {
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(GRAPHQL_RESPONSE_JSON),
        );
    }
    response
}

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
        return refuse(
            &headers,
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
            return refuse(&headers, status, code::BAD_USER_INPUT, &message);
        }
    };
    let batch: BatchRequest = match serde_json::from_slice(&body) {
        Ok(batch) => batch,
        Err(err) => {
            return refuse(
                &headers,
                StatusCode::BAD_REQUEST,
                code::GRAPHQL_PARSE_FAILED,
                &format!("request body is not a GraphQL request: {err}"),
            );
        }
    };
    let (requests, is_batch) = match batch {
        BatchRequest::Single(request) => (vec![request], false),
        BatchRequest::Batch(requests) => {
            let max = state.stack.config.limits.max_batch;
            if requests.len() > max || requests.is_empty() {
                return refuse(
                    &headers,
                    StatusCode::BAD_REQUEST,
                    code::BAD_USER_INPUT,
                    &format!("a batch holds 1 to {max} operations"),
                );
            }
            (requests, true)
        }
    };
    // A request without a document (no `query`, or an empty one, as over GET) is not a
    // well-formed GraphQL-over-HTTP request: 400 whatever the client accepts, unlike a
    // document that fails to parse.
    if requests.iter().any(|r| r.query.is_empty()) {
        return refuse(
            &headers,
            StatusCode::BAD_REQUEST,
            code::BAD_USER_INPUT,
            "missing `query`",
        );
    }
    let call = Call {
        state: &state,
        headers: &headers,
        addr,
        request_id: &request_id,
    };
    call.execute(requests, is_batch, Transport::Post).await
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
        // GraphiQL reveals the schema: only where introspection is allowed.
        if wants_html && state.stack.config.limits.introspection {
            return super::graphiql::page(&headers);
        }
        return refuse(
            &headers,
            StatusCode::BAD_REQUEST,
            code::BAD_USER_INPUT,
            "missing `query` parameter",
        );
    };
    let mut request = async_graphql::Request::new(query);
    request.operation_name = params.operation_name;
    let bad_json = |name: &str, err: serde_json::Error| {
        refuse(
            &headers,
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
    let call = Call {
        state: &state,
        headers: &headers,
        addr,
        request_id: &request_id,
    };
    call.execute(vec![request], false, Transport::Get).await
}

/// One HTTP call to `/graphql`: one request or a batch.
struct Call<'a> {
    state: &'a AppState,
    headers: &'a HeaderMap,
    addr: SocketAddr,
    request_id: &'a RequestId,
}

/// What one request of a call ended in.
struct Outcome {
    response: async_graphql::Response,
    request_error: bool,
    timed_out: bool,
}

impl Outcome {
    fn refused(refusal: &Refusal) -> Self {
        Self {
            response: async_graphql::Response::from_errors(vec![refusal.to_server_error()]),
            request_error: true,
            timed_out: false,
        }
    }
}

impl Call<'_> {
    async fn execute(
        &self,
        requests: Vec<async_graphql::Request>,
        is_batch: bool,
        transport: Transport,
    ) -> Response {
        let stack = &self.state.stack;
        // A batch is one request: it shares one budget of sign-in mutations.
        let budget = Budget::default();
        let admitted: Vec<_> = requests
            .into_iter()
            .map(|mut request| {
                gate::admit(&mut request, transport, &stack.config.limits, &budget)
                    .map(|ty| (request, ty))
            })
            .collect();
        if !is_batch && let [Err(refusal)] = admitted.as_slice() {
            match refusal {
                Refusal::NotOverGet => {
                    let mut response = refuse(
                        self.headers,
                        StatusCode::METHOD_NOT_ALLOWED,
                        refusal.code(),
                        &refusal.message(),
                    );
                    response
                        .headers_mut()
                        .insert(header::ALLOW, HeaderValue::from_static("POST"));
                    return response;
                }
                Refusal::NotOverPost => {
                    return refuse(
                        self.headers,
                        StatusCode::BAD_REQUEST,
                        refusal.code(),
                        &refusal.message(),
                    );
                }
                _ => return self.respond(vec![Outcome::refused(refusal)], false),
            }
        }
        let viewer = match resolve_viewer(stack, token_from_headers(self.headers)).await {
            Ok(viewer) => viewer,
            Err(err) => {
                tracing::error!(error = ?err, "session validation failed");
                return internal_error();
            }
        };
        let client = client_info(self.headers, self.addr, &stack.config.trusted_proxies);
        let schema = self.state.schema.clone();
        let query_timeout = stack.config.query_timeout;
        let runs: Vec<_> = admitted
            .into_iter()
            .map(|admitted| {
                let admitted = admitted
                    .map(|(request, ty)| (request_data(request, stack, &viewer, &client), ty));
                let schema = schema.clone();
                async move {
                    match admitted {
                        Ok((request, ty)) => run(&schema, request, ty, query_timeout).await,
                        Err(refusal) => Outcome::refused(&refusal),
                    }
                }
            })
            .collect();
        // Run to the end even if the client goes away: a write and the cache invalidation
        // that follows its commit are never cut apart by a disconnect.
        let all = async move { futures_util::future::join_all(runs).await }
            .instrument(tracing::Span::current());
        let Ok(outcomes) = tokio::spawn(all).await else {
            return internal_error();
        };
        self.respond(outcomes, is_batch)
    }

    /// GraphQL over HTTP: `application/graphql-response+json` when the client accepts it
    /// (a request error is then a 400, a timeout a 504), else `application/json` with 200.
    fn respond(&self, mut outcomes: Vec<Outcome>, is_batch: bool) -> Response {
        let modern = accepts_graphql_response(self.headers);
        let mut extra_headers = HeaderMap::new();
        for outcome in &mut outcomes {
            add_request_id(&mut outcome.response, &self.request_id.0);
            extra_headers.extend(std::mem::take(&mut outcome.response.http_headers));
        }
        let bodies: Vec<serde_json::Value> = outcomes
            .iter()
            .map(|o| response_body(&o.response, o.request_error))
            .collect();
        let (status, body) = match (is_batch, outcomes.first()) {
            (false, Some(outcome)) => {
                let status = match (modern, outcome) {
                    (true, o) if o.request_error => StatusCode::BAD_REQUEST,
                    (true, o) if o.timed_out => StatusCode::GATEWAY_TIMEOUT,
                    _ => StatusCode::OK,
                };
                (status, bodies.into_iter().next().unwrap_or_default())
            }
            _ => (StatusCode::OK, serde_json::Value::Array(bodies)),
        };
        let content_type = if modern {
            GRAPHQL_RESPONSE_JSON
        } else {
            "application/json"
        };
        let mut out = (
            status,
            [(header::CONTENT_TYPE, content_type)],
            body.to_string(),
        )
            .into_response();
        out.headers_mut().extend(extra_headers);
        out
    }
}

/// Executes one admitted request; a query gets at most `query_timeout` (a mutation is
/// never cut: it may be committing).
async fn run(
    schema: &AppSchema,
    request: async_graphql::Request,
    ty: OperationType,
    query_timeout: std::time::Duration,
) -> Outcome {
    let mut response = if ty == OperationType::Query {
        match tokio::time::timeout(query_timeout, schema.execute(request)).await {
            Ok(response) => response,
            Err(_) => {
                tracing::warn!(limit = ?query_timeout, "query timed out");
                let mut err = async_graphql::ServerError::new("the query took too long", None);
                err.extensions
                    .get_or_insert_with(Default::default)
                    .set("code", code::TIMEOUT);
                return Outcome {
                    response: async_graphql::Response::from_errors(vec![err]),
                    request_error: false,
                    timed_out: true,
                };
            }
        }
    } else {
        schema.execute(request).await
    };
    let request_error = take_request_error(&mut response);
    Outcome {
        response,
        request_error,
        timed_out: false,
    }
}
