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
