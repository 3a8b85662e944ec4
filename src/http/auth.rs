//! Who is calling: the session token of a request (bearer or cookie, or the WebSocket's
//! `connection_init` payload), the viewer behind it, the client's address (SPEC §4:
//! `TRUSTED_PROXIES`), agent and device credential.

use crate::cookies::{self, DEVICE_COOKIE, SESSION_COOKIE};
use crate::domain::SessionToken;
use crate::error::AppResult;
use crate::identity::{ClientInfo, Viewer};
use crate::stack::WebStack;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE, USER_AGENT};
use ipnet::IpNet;
use std::net::{IpAddr, SocketAddr};

/// The header in which clients that keep no cookies send their device credential.
pub const DEVICE_HEADER: &str = "x-device-token";

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

/// Where a request comes from: its client address, agent and device credential.
pub fn client_info(headers: &HeaderMap, peer: SocketAddr, trusted_proxies: &[IpNet]) -> ClientInfo {
    let cookie_values = headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok());
    let device = headers
        .get(DEVICE_HEADER)
        .and_then(|v| v.to_str().ok())
        .or_else(|| cookies::find(cookie_values, DEVICE_COOKIE))
        .and_then(SessionToken::from_client);
    ClientInfo {
        ip: Some(client_address(headers, peer.ip(), trusted_proxies).to_string()),
        user_agent: headers
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|s| s.chars().take(255).collect()),
        device,
    }
}

/// The client's address: the peer's, unless the peer is a trusted proxy; then the
/// right-most hop of `Forwarded` (else `X-Forwarded-For`) that is not a trusted proxy.
/// Headers from any other peer are ignored: anyone can write them.
pub fn client_address(headers: &HeaderMap, peer: IpAddr, trusted_proxies: &[IpNet]) -> IpAddr {
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|net| net.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let hops = forwarded_for(headers).or_else(|| x_forwarded_for(headers));
    let mut client = peer;
    for hop in hops.unwrap_or_default().into_iter().rev() {
        // A hop that names no address ("unknown", an obfuscated name) ends what can be
        // trusted: the last trusted proxy is then the client as far as we know.
        let Some(ip) = hop else { break };
        client = ip;
        if !trusted(&ip) {
            break;
        }
    }
    client
}

/// The `for=` hops of every `Forwarded` header (RFC 7239), left to right.
fn forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let values: Vec<&str> = headers
        .get_all("forwarded")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return None;
    }
    let hops = values
        .iter()
        .flat_map(|v| v.split(','))
        .filter_map(|element| {
            element.split(';').find_map(|pair| {
                let (key, value) = pair.trim().split_once('=')?;
                key.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| parse_hop(value.trim().trim_matches('"')))
            })
        })
        .collect();
    Some(hops)
}

/// The hops of every `X-Forwarded-For` header, left to right.
fn x_forwarded_for(headers: &HeaderMap) -> Option<Vec<Option<IpAddr>>> {
    let values: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    if values.is_empty() {
        return None;
    }
    Some(
        values
            .iter()
            .flat_map(|v| v.split(','))
            .map(|hop| parse_hop(hop.trim()))
            .collect(),
    )
}

/// An address as proxies write it: `192.0.2.1`, `192.0.2.1:4711`, `2001:db8::1`,
/// `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    hop.rsplit_once(':')?.0.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_str(value).unwrap());
        }
        headers
    }

    #[test]
    fn forwarded_addresses_count_only_from_a_trusted_proxy() {
        let proxies: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let proxy: IpAddr = "10.1.2.3".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        let spoofed = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(client_address(&spoofed, stranger, &proxies), stranger);
        assert_eq!(
            client_address(&spoofed, proxy, &proxies),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        // The right-most untrusted hop: the client cannot choose it by prepending.
        let chain = headers(&[("x-forwarded-for", "1.1.1.1, 198.51.100.7, 10.9.9.9")]);
        assert_eq!(
            client_address(&chain, proxy, &proxies),
            "198.51.100.7".parse::<IpAddr>().unwrap()
        );
        let forwarded = headers(&[
            (
                "forwarded",
                r#"for=1.1.1.1, for="[2001:db8::17]:4711";proto=https"#,
            ),
            ("x-forwarded-for", "9.9.9.9"),
        ]);
        assert_eq!(
            client_address(&forwarded, proxy, &proxies),
            "2001:db8::17".parse::<IpAddr>().unwrap()
        );
        let unknown = headers(&[("forwarded", "for=unknown")]);
        assert_eq!(client_address(&unknown, proxy, &proxies), proxy);
        assert_eq!(client_address(&HeaderMap::new(), proxy, &proxies), proxy);
    }

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
