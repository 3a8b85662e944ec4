//! Who is calling: the session token of a request (bearer or cookie, or the WebSocket's
//! `connection_init` payload), the viewer behind it, and the client's address and agent.

use crate::cookies::{self, SESSION_COOKIE};
use crate::domain::SessionToken;
use crate::error::AppResult;
use crate::identity::{ClientInfo, Viewer};
use crate::stack::WebStack;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE, USER_AGENT};
use std::net::SocketAddr;

/// The token of an `Authorization` value: `Bearer <token>` (scheme case-insensitive).
pub fn bearer(value: &str) -> Option<SessionToken> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| SessionToken::from_client(token))
        .flatten()
}

/// The token of a request: `Authorization: Bearer …` wins over the cookie. A present but
/// malformed `Authorization` header means no token (the cookie is not consulted).
pub fn token_from_headers(headers: &HeaderMap) -> Option<SessionToken> {
    if let Some(value) = headers.get(AUTHORIZATION) {
        return value.to_str().ok().and_then(bearer);
    }
    let values = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    cookies::find(values, SESSION_COOKIE).and_then(SessionToken::from_client)
}

/// The viewer behind `token`: `None` when there is no token or it is unknown, expired,
/// revoked or of another context. The one way HTTP and WebSocket requests sign in.
pub async fn resolve_viewer(
    stack: &WebStack,
    token: Option<SessionToken>,
) -> AppResult<Option<Viewer>> {
    match token {
        Some(token) => stack.users.validate_session(&token).await,
        None => Ok(None),
    }
}

/// Where a request comes from.
pub fn client_info(headers: &HeaderMap, addr: SocketAddr) -> ClientInfo {
    ClientInfo {
        ip: Some(addr.ip().to_string()),
        user_agent: headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(255).collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn bearer_wins_over_cookie_and_junk_is_ignored() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("x=1; {SESSION_COOKIE}={}", a.expose())).unwrap(),
        );
        assert_eq!(token_from_headers(&headers), Some(a.clone()));
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {}", b.expose())).unwrap(),
        );
        assert_eq!(token_from_headers(&headers), Some(b.clone()));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer nope"));
        assert_eq!(token_from_headers(&headers), None);
        assert_eq!(bearer(&format!("bearer {}", b.expose())), Some(b.clone()));
        assert_eq!(bearer(b.expose()), None, "the scheme is required");
    }
}
