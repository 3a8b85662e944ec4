//! `User`, `AuthPayload` and `Session`.

use super::scalars::DateTimeScalar;
use crate::domain::AuthUser;
use crate::identity::{SignedIn, StoredSession};
use async_graphql::{ID, Object};

/// A user as the API shows it (never the password hash).
pub struct User(pub AuthUser);

/// An account.
#[Object]
impl User {
    /// User id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Email address (lower-cased).
    async fn email(&self) -> &str {
        &self.0.email
    }
    /// Whether the email address was verified.
    async fn email_verified(&self) -> bool {
        self.0.email_verified
    }
    /// Sign-up time.
    async fn created_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.0.created_at)
    }
    /// Permissions granted in this application context only.
    async fn permissions(&self) -> &[String] {
        &self.0.permissions
    }
    /// Whether signing in needs a second factor (an authenticator code or a recovery code).
    async fn totp_enabled(&self) -> bool {
        self.0.totp_enabled
    }
}

/// The result of signing in.
pub struct AuthPayload(pub SignedIn);

/// A new session: the token (also set as an HttpOnly cookie) and its user.
#[Object]
impl AuthPayload {
    /// Session token: send as `Authorization: Bearer <token>` (or rely on the cookie).
    async fn token(&self) -> &str {
        self.0.token.expose()
    }
    /// When the session ends.
    async fn expires_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.0.expires_at)
    }
    /// The signed-in user.
    async fn user(&self) -> User {
        User(self.0.user.clone())
    }
    /// This client's device credential (also set as the HttpOnly cookie `exchanger_device`).
    /// Clients without cookies keep it and send it as `X-Device-Token` when they sign in
    /// again: failed logins of other clients then never lock them out.
    async fn device_token(&self) -> &str {
        self.0.device_token.expose()
    }
}

/// One of the viewer's sessions.
pub struct Session {
    /// The session.
    pub stored: StoredSession,
    /// Whether it is the one making this request.
    pub current: bool,
}

/// A signed-in session in this application context.
#[Object]
impl Session {
    /// Session id (for `revokeSession`).
    async fn id(&self) -> ID {
        ID(self.stored.record.id.clone())
    }
    /// Sign-in time.
    async fn created_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.stored.created_at)
    }
    /// When it ends.
    async fn expires_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.stored.record.expires_at)
    }
    /// Whether this request uses it.
    async fn current(&self) -> bool {
        self.current
    }
    /// Browser at sign-in.
    async fn user_agent(&self) -> Option<&str> {
        self.stored.client.user_agent.as_deref()
    }
    /// Client address at sign-in.
    async fn ip_address(&self) -> Option<&str> {
        self.stored.client.ip.as_deref()
    }
    /// Last use, to within a minute (a session unused for `SESSION_IDLE_MINUTES` ends).
    async fn last_seen_at(&self) -> Option<DateTimeScalar> {
        self.stored.last_seen_at.map(DateTimeScalar)
    }
    /// Whether this session proved a second factor (at sign-in or with `stepUp`).
    async fn mfa(&self) -> bool {
        self.stored.record.mfa_at.is_some()
    }
    /// When the user last proved who they are in this session (sign-in or `stepUp`).
    async fn authenticated_at(&self) -> DateTimeScalar {
        DateTimeScalar(
            self.stored
                .record
                .authenticated_at
                .unwrap_or(self.stored.created_at),
        )
    }
}
