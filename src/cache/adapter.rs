//! `ContextualRedisAdapter`: the session and user-cache entries of one application context
//! (SPEC §1 keys `identity:session:{ctx}:…` and `identity:user:{ctx}:…`), read and refilled
//! here; writes that make them stale go through the outbox (`coherence.rs`).

use super::keys::{Keys, SESSION_TTL, USER_TTL};
use super::{Cache, FillToken};
use crate::domain::{AuthUser, SessionRecord};
use std::sync::Arc;
use uuid::Uuid;

/// Store access for the identity entries of one context.
#[derive(Clone)]
pub struct ContextualRedisAdapter {
    cache: Arc<Cache>,
    keys: Keys,
}

impl ContextualRedisAdapter {
    /// Entries of `keys`' context in `cache`.
    pub fn new(cache: Arc<Cache>, keys: Keys) -> Self {
        Self { cache, keys }
    }

    /// The cached session with this token hash, and the token a refill needs.
    pub async fn session(&self, token_hash: &str) -> (Option<SessionRecord>, FillToken) {
        self.cache.get(&self.keys.session(token_hash)).await
    }

    /// Caches a session read from the database (or just created, with
    /// `FillToken::absent()`), for 24 h or until it expires.
    pub async fn fill_session(&self, token: FillToken, session: &SessionRecord) {
        let left = (session.expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        self.cache
            .fill(
                &self.keys.session(&session.token_hash),
                token,
                session,
                left.min(SESSION_TTL),
            )
            .await;
    }

    /// Replaces the cached session with `session` (its last use moved), in every process.
    pub async fn refresh_session(&self, session: &SessionRecord) {
        let left = (session.expires_at - chrono::Utc::now())
            .to_std()
            .unwrap_or_default();
        self.cache
            .put(
                &self.keys.session(&session.token_hash),
                session,
                left.min(SESSION_TTL),
            )
            .await;
    }

    /// The cached user with this context's permissions, and the token a refill needs.
    pub async fn user(&self, id: Uuid) -> (Option<AuthUser>, FillToken) {
        self.cache.get(&self.keys.user(id)).await
    }

    /// Caches a user read from the database.
    pub async fn fill_user(&self, token: FillToken, user: &AuthUser) {
        self.cache
            .fill(&self.keys.user(user.id), token, user, USER_TTL)
            .await;
    }
}
