//! The session and device cookies (SPEC §3, §4): their names and the `Set-Cookie` values
//! that set and clear them. Read by the HTTP edge, written by the sign-in resolvers.

use crate::clock::DateTime;

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "exchanger_session";
/// Name of the device cookie: the credential of a client that signed in before.
pub const DEVICE_COOKIE: &str = "exchanger_device";
/// How long the device cookie lives.
const DEVICE_COOKIE_MAX_AGE: i64 = 365 * 24 * 60 * 60;

/// `Set-Cookie` value for a new session: HttpOnly, SameSite=Lax, Secure unless turned off
/// for plain-HTTP development.
pub fn session_cookie(token: &str, expires_at: DateTime, secure: bool) -> String {
    let max_age = (expires_at - chrono::Utc::now()).num_seconds().max(0);
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={token}; Path=/; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// `Set-Cookie` value for a device credential: HttpOnly, SameSite=Lax, a year.
pub fn device_cookie(token: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{DEVICE_COOKIE}={token}; Path=/; Max-Age={DEVICE_COOKIE_MAX_AGE}; HttpOnly; SameSite=Lax{secure}"
    )
}

/// `Set-Cookie` value that removes the session cookie.
pub fn clear_session_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax{secure}")
}

/// The value of cookie `name` in `Cookie` header values.
pub fn find<'a>(headers: impl IntoIterator<Item = &'a str>, name: &str) -> Option<&'a str> {
    headers
        .into_iter()
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, value)| value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_is_http_only_and_lax() {
        let c = session_cookie("t", chrono::Utc::now() + chrono::Duration::hours(1), true);
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Lax") && c.contains("Secure"));
        assert!(!session_cookie("t", chrono::Utc::now(), false).contains("Secure"));
        assert!(clear_session_cookie(false).contains("Max-Age=0"));
    }

    #[test]
    fn a_cookie_is_found_by_exact_name() {
        let headers = ["x=1; exchanger_session_old=2", "exchanger_session=3"];
        assert_eq!(find(headers, SESSION_COOKIE), Some("3"));
        assert_eq!(find(["a=1"], SESSION_COOKIE), None);
    }
}
