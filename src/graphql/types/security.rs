//! Account security: `TotpEnrollment`, `SecurityEvent` and its Relay connection.

use super::page::{Cursor, PageInfo};
use super::scalars::DateTimeScalar;
use crate::domain;
use async_graphql::{Enum, ID, Object, SimpleObject};

/// What an authenticator app needs to start producing codes (RFC 6238: SHA-1, 6 digits,
/// 30 s). Pending until `confirmTotp`.
#[derive(SimpleObject)]
pub struct TotpEnrollment {
    /// The secret in base32, to type into the app.
    pub secret: String,
    /// `otpauth://totp/…` URI, to show as a QR code.
    pub otpauth_uri: String,
}

/// What happened to an account.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
#[graphql(
    name = "SecurityEventKind",
    remote = "crate::domain::SecurityEventKind"
)]
pub enum SecurityEventKind {
    /// A sign-in (or the sign-up's first one).
    SignIn,
    /// A sign-in with this email but a wrong password or second factor.
    SignInFailed,
    /// `logout` or `logoutAll`.
    SignOut,
    /// A session ended by `revokeSession`.
    SessionRevoked,
    /// `changePassword`.
    PasswordChanged,
    /// `resetPassword`.
    PasswordReset,
    /// `verifyEmail`.
    EmailVerified,
    /// Two-factor sign-in turned on.
    TotpEnabled,
    /// Two-factor sign-in turned off.
    TotpDisabled,
    /// A recovery code stood in for an authenticator code.
    RecoveryCodeUsed,
    /// New recovery codes replaced the old ones.
    RecoveryCodesRegenerated,
    /// A session proved the second factor again (`stepUp`).
    StepUp,
}

/// One entry of the viewer's security activity.
pub struct SecurityEvent(pub domain::SecurityEvent);

/// Something that happened to the account: never a password or a code.
#[Object]
impl SecurityEvent {
    /// Event id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// What happened.
    async fn kind(&self) -> SecurityEventKind {
        self.0.kind.into()
    }
    /// When.
    async fn occurred_at(&self) -> DateTimeScalar {
        DateTimeScalar(self.0.occurred_at)
    }
    /// The client's address.
    async fn ip_address(&self) -> Option<&str> {
        self.0.ip_address.as_deref()
    }
    /// The client's `User-Agent`.
    async fn user_agent(&self) -> Option<&str> {
        self.0.user_agent.as_deref()
    }
    /// A sign-in from a device not seen before for this account (a notice was mailed).
    async fn new_device(&self) -> bool {
        self.0.new_device
    }
}

/// A security event and its cursor.
#[derive(SimpleObject)]
pub struct SecurityEventEdge {
    /// Opaque cursor.
    pub cursor: String,
    /// The event.
    pub node: SecurityEvent,
}

/// A page of security events, newest first.
#[derive(SimpleObject)]
pub struct SecurityEventConnection {
    /// The events.
    pub edges: Vec<SecurityEventEdge>,
    /// Paging.
    pub page_info: PageInfo,
}

/// The kind of cursor of security events.
pub const CURSOR_KIND: &str = "security_event";

impl SecurityEventConnection {
    /// A page of `events`, more following when `has_next_page`.
    pub fn new(events: Vec<domain::SecurityEvent>, has_next_page: bool) -> Self {
        let edges: Vec<SecurityEventEdge> = events
            .into_iter()
            .map(|e| SecurityEventEdge {
                cursor: Cursor::encode(CURSOR_KIND, e.id),
                node: SecurityEvent(e),
            })
            .collect();
        let cursors: Vec<&str> = edges.iter().map(|e| e.cursor.as_str()).collect();
        let page_info = PageInfo::forward(&cursors, has_next_page);
        Self { edges, page_info }
    }
}
