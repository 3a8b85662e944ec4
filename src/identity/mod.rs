//! The identity half (SPEC §1–§4): accounts, sessions and permissions of one application
//! context, over the shared identity database and the store.

pub mod adapter;
pub mod mailer;
pub mod manager;
pub mod password;
pub mod token;

pub use adapter::ContextualIdentityAdapter;
pub use manager::WebUserManager;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

type DateTime = chrono::DateTime<chrono::Utc>;

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

/// The signed-in user of a request, with the session it came with.
#[derive(Clone, Debug)]
pub struct Viewer {
    /// The user, with this context's permissions.
    pub user: AuthUser,
    /// The session used.
    pub session: SessionRecord,
}

/// Where a sign-in came from, stored with the session.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    /// Client address.
    pub ip: Option<String>,
    /// `User-Agent` header.
    pub user_agent: Option<String>,
}

/// A session as `mySessions` lists it.
#[derive(Clone, Debug)]
pub struct SessionView {
    /// Public id.
    pub id: String,
    /// Start.
    pub created_at: DateTime,
    /// End.
    pub expires_at: DateTime,
    /// Last time it was used (to within a minute).
    pub last_seen_at: Option<DateTime>,
    /// Browser, as told at sign-in.
    pub user_agent: Option<String>,
    /// Address at sign-in.
    pub ip_address: Option<String>,
}

/// What a successful sign-in returns.
#[derive(Clone)]
pub struct SignedIn {
    /// The new session token (only ever shown here).
    pub token: token::SessionToken,
    /// When it expires.
    pub expires_at: DateTime,
    /// The user.
    pub user: AuthUser,
}

/// Identity events the web application records in `analytics_events`.
#[async_trait::async_trait]
pub trait IdentityEvents: Send + Sync {
    /// Records `event_type` (`user_registered`, `user_logged_in`, `login_failed`).
    async fn identity_event(
        &self,
        user_id: Option<Uuid>,
        event_type: &'static str,
        data: serde_json::Value,
    );
}
