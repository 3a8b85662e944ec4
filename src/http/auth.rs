//! Session tokens from requests (bearer or cookie) and the session cookie itself.

use crate::identity::token::SessionToken;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "exchanger_session";

/// The token of a request: `Authorization: Bearer …` wins over the cookie.
pub fn token_from_headers(headers: &HeaderMap) -> Option<SessionToken> {
    if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        let (scheme, token) = value.trim().split_once(' ')?;
        return scheme
            .eq_ignore_ascii_case("bearer")
            .then(|| SessionToken::from_client(token))
            .flatten();
    }
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .and_then(|(_, value)| SessionToken::from_client(value))
}

/// `Set-Cookie` value for a new session: HttpOnly, SameSite=Lax, Secure unless turned off
/// for plain-HTTP development.
pub fn session_cookie(
    token: &str,
    expires_at: chrono::DateTime<chrono::Utc>,
    secure: bool,
) -> String {
    let max_age = (expires_at - chrono::Utc::now()).num_seconds().max(0);
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}")
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
        assert_eq!(token_from_headers(&headers), Some(b));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer nope"));
        assert_eq!(token_from_headers(&headers), None);
    }

    #[test]
    fn the_cookie_is_http_only_and_lax() {
        let c = session_cookie("t", chrono::Utc::now() + chrono::Duration::hours(1), true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure"));
        assert!(!session_cookie("t", chrono::Utc::now(), false).contains("Secure"));
    }
}
