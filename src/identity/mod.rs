//! The identity half (SPEC §1–§4): accounts, sessions and permissions of one application
//! context, over the shared identity database and the store.

pub mod adapter;
pub mod mailer;
pub mod manager;
pub mod password;
pub mod secrets;
pub mod throttle;
pub mod totp;

pub use adapter::ContextualIdentityAdapter;
pub use manager::WebUserManager;

use crate::clock::DateTime;
use crate::domain::{AuthUser, NewEvent, SessionRecord, SessionToken};
use uuid::Uuid;

/// An account as the identity database holds it, password hash and sealed two-factor
/// secret included. Never leaves the identity module: the API sees [`AuthUser`].
#[derive(Clone)]
pub struct Account {
    /// User id.
    pub id: Uuid,
    /// Normalised email.
    pub email: String,
    /// argon2id PHC string.
    pub password_hash: String,
    /// Whether the email was verified.
    pub email_verified: bool,
    /// Sign-up time.
    pub created_at: DateTime,
    /// The enabled TOTP secret, sealed (two-factor sign-in is on when present).
    pub totp_secret: Option<String>,
    /// A TOTP secret enrolled and not yet confirmed, sealed.
    pub totp_pending: Option<String>,
}

impl Account {
    /// The API's view of this account with its permissions in the current context.
    pub fn with_permissions(self, permissions: Vec<String>) -> AuthUser {
        AuthUser {
            id: self.id,
            email: self.email,
            email_verified: self.email_verified,
            created_at: self.created_at,
            permissions,
            totp_enabled: self.totp_secret.is_some(),
        }
    }
}

/// A session of this context as the identity database holds it (what `mySessions` lists).
#[derive(Clone, Debug)]
pub struct StoredSession {
    /// The cached part: id, user, token hash, expiry.
    pub record: SessionRecord,
    /// Start.
    pub created_at: DateTime,
    /// Last time it was used (to within a minute).
    pub last_seen_at: Option<DateTime>,
    /// Where it was started from.
    pub client: ClientInfo,
}

/// The signed-in user of a request, with the session it came with.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// The user, with this context's permissions.
    pub user: AuthUser,
    /// The session used.
    pub session: SessionRecord,
}

/// Where a request came from (stored with the sessions it starts).
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// Client address (see `TRUSTED_PROXIES`).
    pub ip: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
    /// The device credential the client presented, if any.
    pub device: Option<SessionToken>,
}

/// What a successful sign-in returns.
#[derive(Clone)]
pub struct SignedIn {
    /// The new session token (only ever shown here).
    pub token: SessionToken,
    /// When it expires.
    pub expires_at: DateTime,
    /// The user.
    pub user: AuthUser,
    /// The credential of the client's device (new unless the client presented a trusted one).
    pub device_token: SessionToken,
    /// Whether this device had not signed in to this account before.
    pub new_device: bool,
}

/// Where the identity half reports key actions (`user_registered`, `user_logged_in`,
/// `login_failed`); the web stack records them in `analytics_events`.
#[async_trait::async_trait]
pub trait IdentityEvents: Send + Sync {
    /// Records `event`, best effort.
    async fn record(&self, event: NewEvent);
}
