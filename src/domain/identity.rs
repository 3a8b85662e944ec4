//! The identity records the caches hold: a user with the permissions of one context, and a
//! valid session.

use crate::clock::DateTime;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A user with the permissions of the current context: what `me` shows and what
/// `identity:user:{ctx}:{id}` caches. Never holds the password hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuthUser {
    /// User id.
    pub id: Uuid,
    /// Normalised email.
    pub email: String,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// Sign-up time.
    pub created_at: DateTime,
    /// Permissions granted in the current context only.
    pub permissions: Vec<String>,
    /// Whether sign-in needs a second factor (TOTP).
    #[serde(default)]
    pub totp_enabled: bool,
}

impl AuthUser {
    /// Whether the user holds `permission` in the current context.
    pub fn can(&self, permission: &str) -> bool {
        self.permissions.iter().any(|p| p == permission)
    }
}

/// A valid session: what `identity:session:{ctx}:{token_hash}` caches. The token itself
/// is never stored; `token_hash` is its SHA-256.
#[derive(Clone, Serialize, Deserialize)]
pub struct SessionRecord {
    /// Public session id.
    pub id: String,
    /// Owner.
    pub user_id: Uuid,
    /// SHA-256 of the token (hex).
    pub token_hash: String,
    /// When the session ends.
    pub expires_at: DateTime,
    /// Last use, to within a minute (the idle timeout counts from it).
    #[serde(default)]
    pub last_seen_at: Option<DateTime>,
    /// Last time the user proved who they are in this session (sign-in or step-up).
    #[serde(default)]
    pub authenticated_at: Option<DateTime>,
    /// Last time this session proved a second factor (sign-in with a code, or step-up).
    #[serde(default)]
    pub mfa_at: Option<DateTime>,
}

impl SessionRecord {
    /// Whether the session is still valid at `at`: before its end, and used within `idle`.
    pub fn is_live(&self, at: DateTime, idle: std::time::Duration) -> bool {
        let idle = chrono::Duration::from_std(idle).unwrap_or(chrono::Duration::MAX);
        self.expires_at > at && self.last_seen_at.is_none_or(|seen| seen + idle > at)
    }

    /// Whether the session proved a second factor within `window` before `at`.
    pub fn stepped_up(&self, at: DateTime, window: std::time::Duration) -> bool {
        let window = chrono::Duration::from_std(window).unwrap_or(chrono::Duration::MAX);
        self.mfa_at.is_some_and(|t| t + window >= at)
    }
}

/// What a security event says happened to an account (`mySecurityEvents`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityEventKind {
    /// A sign-in (or the sign-up's first one).
    SignIn,
    /// A sign-in with the right email but a wrong password or second factor.
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
    /// A recovery code stood in for a TOTP code.
    RecoveryCodeUsed,
    /// New recovery codes replaced the old ones.
    RecoveryCodesRegenerated,
    /// A session proved the second factor again.
    StepUp,
}

impl SecurityEventKind {
    /// Every kind.
    pub const ALL: [Self; 12] = [
        Self::SignIn,
        Self::SignInFailed,
        Self::SignOut,
        Self::SessionRevoked,
        Self::PasswordChanged,
        Self::PasswordReset,
        Self::EmailVerified,
        Self::TotpEnabled,
        Self::TotpDisabled,
        Self::RecoveryCodeUsed,
        Self::RecoveryCodesRegenerated,
        Self::StepUp,
    ];

    /// The stored (and API) name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "SIGN_IN",
            Self::SignInFailed => "SIGN_IN_FAILED",
            Self::SignOut => "SIGN_OUT",
            Self::SessionRevoked => "SESSION_REVOKED",
            Self::PasswordChanged => "PASSWORD_CHANGED",
            Self::PasswordReset => "PASSWORD_RESET",
            Self::EmailVerified => "EMAIL_VERIFIED",
            Self::TotpEnabled => "TOTP_ENABLED",
            Self::TotpDisabled => "TOTP_DISABLED",
            Self::RecoveryCodeUsed => "RECOVERY_CODE_USED",
            Self::RecoveryCodesRegenerated => "RECOVERY_CODES_REGENERATED",
            Self::StepUp => "STEP_UP",
        }
    }

    /// The kind stored as `name`.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// One entry of an account's security activity.
#[derive(Clone, Debug)]
pub struct SecurityEvent {
    /// UUIDv7 (in the order recorded).
    pub id: Uuid,
    /// What happened.
    pub kind: SecurityEventKind,
    /// When.
    pub occurred_at: DateTime,
    /// Client address.
    pub ip_address: Option<String>,
    /// Client `User-Agent`.
    pub user_agent: Option<String>,
    /// Whether it was a sign-in from a device not seen before.
    pub new_device: bool,
}

impl std::fmt::Debug for SessionRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionRecord")
            .field("id", &self.id)
            .field("user_id", &self.user_id)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
