//! Request ids: taken from a sane `x-request-id` or generated, echoed in the response,
//! recorded in the request's span and in GraphQL errors.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// Header carrying the id.
pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    /// The id of the request this task serves (for error bodies built outside GraphQL).
    static CURRENT: String;
}

/// The id of the request being served, when called inside one.
pub fn current() -> Option<String> {
    CURRENT.try_with(String::clone).ok()
}

/// The id of the current request (an axum extension).
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

fn acceptable(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Middleware: assigns the id before anything else runs.
pub async fn assign(mut req: Request, next: Next) -> Response {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| acceptable(v))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_owned);
    req.extensions_mut().insert(RequestId(id.clone()));
    let mut response = CURRENT.scope(id.clone(), next.run(req)).await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}
