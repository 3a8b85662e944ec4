//! `WebUserManager`: register, login, logout and session validation for one context
//! (SPEC §3, §4), over the identity database (source of truth) and the store (fast path).

use super::adapter::TokenPurpose;
use super::mailer::{Mail, Mailer};
use super::throttle::{LoginCounter, Throttle};
use super::{
    Account, ClientInfo, ContextualIdentityAdapter, IdentityEvents, SignedIn, StoredSession,
    Viewer, password,
};
use crate::cache::FillToken;
use crate::cache::adapter::ContextualRedisAdapter;
use crate::cache::keys::SESSION_TTL;
use crate::clock::now;
use crate::coherence::{Coherence, Outbox};
use crate::domain::analytics::event;
use crate::domain::{AuthUser, Email, NewEvent, Password, Permission, SessionRecord, SessionToken};
use crate::error::{AppError, AppResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::Instrument;
use uuid::Uuid;

/// How often `last_seen_at` of a session is written at most.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// How long a device stays trusted after its last sign-in.
const DEVICE_TRUST: chrono::Duration = chrono::Duration::days(365);

/// Devices last used before this are no longer trusted.
fn device_cutoff() -> crate::clock::DateTime {
    now() - DEVICE_TRUST
}

/// Lifetime of email-verification and password-reset tokens.
const ONE_TIME_TOKEN_TTL: chrono::Duration = chrono::Duration::hours(1);

/// Identity operations of one application context.
pub struct WebUserManager {
    db: ContextualIdentityAdapter,
    store: ContextualRedisAdapter,
    throttle: Throttle,
    mailer: Arc<dyn Mailer>,
    events: Arc<dyn IdentityEvents>,
    coherence: Arc<Coherence>,
    touched: Mutex<HashMap<String, Instant>>,
    /// Mail jobs running after their request answered.
    mail_jobs: Arc<Semaphore>,
}

/// Password-reset jobs that may run at once.
const MAIL_JOBS: usize = 64;

impl WebUserManager {
    /// Builds the manager of `db`'s context.
    pub fn new(
        db: ContextualIdentityAdapter,
        store: ContextualRedisAdapter,
        throttle: Throttle,
        mailer: Arc<dyn Mailer>,
        events: Arc<dyn IdentityEvents>,
        coherence: Arc<Coherence>,
    ) -> Self {
        Self {
            db,
            store,
            throttle,
            mailer,
            events,
            coherence,
            touched: Mutex::new(HashMap::new()),
            mail_jobs: Arc::new(Semaphore::new(MAIL_JOBS)),
        }
    }

    /// Reports a key action (best effort).
    async fn record(&self, user_id: Option<Uuid>, event_type: &'static str) {
        self.events
            .record(NewEvent {
                user_id,
                event_type,
                data: serde_json::json!({}),
                at: now(),
            })
            .await;
    }

    /// The identity database adapter.
    pub fn adapter(&self) -> &ContextualIdentityAdapter {
        &self.db
    }

    /// The mailer (tests read the outbox).
    pub fn mailer(&self) -> &Arc<dyn Mailer> {
        &self.mailer
    }

    /// Creates an account and signs it in.
    #[tracing::instrument(skip_all, fields(user_id))]
    pub async fn register(
        &self,
        email: Email,
        password: Password,
        client: ClientInfo,
    ) -> AppResult<SignedIn> {
        // SPEC §4: sign-ups are limited per client address (each costs a password hash).
        if let Some(ip) = client.ip.as_deref() {
            self.throttle
                .take_signup(ip)
                .await
                .map_err(|retry_after| AppError::RateLimited { retry_after })?;
        }
        // A cheap lookup first, so a taken email is refused without hashing.
        if self.db.user_by_email(email.as_str()).await?.is_some() {
            return Err(AppError::conflict(
                "an account with this email already exists",
            ));
        }
        let hash = password::hash(password).await?;
        let user = self.db.create_user(email.as_str(), hash, now()).await?;
        tracing::Span::current().record("user_id", tracing::field::display(user.id));
        self.record(Some(user.id), event::USER_REGISTERED).await;
        self.start_session(user, client, None).await
    }

    /// Signs in. Unknown email and wrong password are the same `UNAUTHENTICATED` error and
    /// cost the same. A client holding this account's device credential is counted on its
    /// device only; any other client per account and per address (see `throttle.rs`).
    #[tracing::instrument(skip_all, fields(user_id))]
    pub async fn login(
        &self,
        email: &str,
        candidate: &str,
        client: ClientInfo,
    ) -> AppResult<SignedIn> {
        let email = email.trim().to_ascii_lowercase();
        // Oversized input is refused before any work (but with the same error).
        let sane = candidate.len() <= 512 && email.len() <= 255;
        // The device is looked up whatever the email, so its cost says nothing about it.
        let device = match &client.device {
            Some(token) if sane => {
                self.db
                    .trusted_device(&token.hash(), device_cutoff())
                    .await?
            }
            _ => None,
        };
        let user = if sane {
            self.db.user_by_email(&email).await?
        } else {
            None
        };
        let trusted = match (device, &user) {
            (Some((device_id, owner)), Some(user)) if owner == user.id => Some(device_id),
            _ => None,
        };
        let counters = match (trusted, client.ip.clone()) {
            (Some(device_id), _) => vec![LoginCounter::Device(device_id)],
            (None, Some(ip)) => vec![LoginCounter::Account(email), LoginCounter::Address(ip)],
            (None, None) => vec![LoginCounter::Account(email)],
        };
        let attempt = self.throttle.begin_login(counters).await?;
        let verified = password::verify(
            candidate.to_owned(),
            user.as_ref().map(|u| u.password_hash.clone()),
        )
        .await;
        let ok = match verified {
            Ok(ok) => ok,
            Err(err) => {
                // Not checked (the hashing queue is full): not a failure.
                self.throttle.end_login(attempt, false).await;
                return Err(err);
            }
        };
        self.throttle.end_login(attempt, !ok).await;
        match user {
            Some(user) if ok => {
                tracing::Span::current().record("user_id", tracing::field::display(user.id));
                self.record(Some(user.id), event::USER_LOGGED_IN).await;
                self.start_session(user, client, trusted).await
            }
            user => {
                self.record(user.map(|u| u.id), event::LOGIN_FAILED).await;
                Err(AppError::Unauthenticated)
            }
        }
    }

    /// Starts a session of `user`; a client that is not a trusted device of the user
    /// (`trusted`) becomes one and gets its credential.
    async fn start_session(
        &self,
        user: Account,
        client: ClientInfo,
        trusted: Option<Uuid>,
    ) -> AppResult<SignedIn> {
        let token = SessionToken::generate();
        let at = now();
        let device_token = match (trusted, &client.device) {
            (Some(device_id), Some(presented)) => {
                self.db.touch_device(device_id, at).await?;
                presented.clone()
            }
            _ => {
                let fresh = SessionToken::generate();
                self.db
                    .trust_device(user.id, fresh.hash(), client.user_agent.clone(), at)
                    .await?;
                fresh
            }
        };
        let expires_at =
            at + chrono::Duration::from_std(SESSION_TTL).map_err(AppError::internal)?;
        let record = SessionRecord {
            id: Uuid::new_v4().to_string(),
            user_id: user.id,
            token_hash: token.hash(),
            expires_at,
        };
        self.db.create_session(&record, &client, at).await?;
        self.store.fill_session(FillToken::Absent, &record).await;
        let permissions = self.db.permissions(user.id).await?;
        Ok(SignedIn {
            token,
            expires_at,
            user: user.with_permissions(permissions),
            device_token,
            new_device: trusted.is_none(),
        })
    }

    /// The user `id` with this context's permissions, through `identity:user:{ctx}:{id}`.
    pub async fn user(&self, id: Uuid) -> AppResult<Option<AuthUser>> {
        let (cached, token) = self.store.user(id).await;
        if let Some(user) = cached {
            return Ok(Some(user));
        }
        let Some(user) = self.db.user(id).await? else {
            return Ok(None);
        };
        let permissions = self.db.permissions(id).await?;
        let user = user.with_permissions(permissions);
        self.store.fill_user(token, &user).await;
        Ok(Some(user))
    }

    /// The viewer behind a token, or `None` when the token is unknown, expired, revoked or
    /// of another context.
    pub async fn validate_session(&self, token: &SessionToken) -> AppResult<Option<Viewer>> {
        let hash = token.hash();
        let at = now();
        let session = match self.store.session(&hash).await {
            (Some(s), _) if s.expires_at > at => s,
            (Some(_), _) => return Ok(None),
            (None, token) => {
                let Some(record) = self.db.session_by_hash(&hash, at).await? else {
                    return Ok(None);
                };
                self.store.fill_session(token, &record).await;
                record
            }
        };
        let Some(user) = self.user(session.user_id).await? else {
            return Ok(None);
        };
        self.touch(&session.id).await;
        Ok(Some(Viewer { user, session }))
    }

    /// Writes `last_seen_at` at most once a minute per session (per process).
    async fn touch(&self, session_id: &str) {
        {
            let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = touched
                .get(session_id)
                .is_some_and(|t| t.elapsed() < TOUCH_EVERY);
            if fresh {
                return;
            }
            if touched.len() > 100_000 {
                touched.clear();
            }
            touched.insert(session_id.to_owned(), Instant::now());
        }
        let db = self.db.clone();
        let id = session_id.to_owned();
        tokio::spawn(async move {
            if let Err(err) = db.touch_session(&id, now()).await {
                tracing::warn!(error = ?err, "could not record session use");
            }
        });
    }

    /// Ends the viewer's session.
    pub async fn logout(&self, viewer: &Viewer) -> AppResult<()> {
        let ended = self
            .db
            .delete_session(viewer.user.id, &viewer.session.id)
            .await?;
        self.coherence
            .apply(Outbox::Identity, ended.into_iter().collect())
            .await;
        Ok(())
    }

    /// Ends every session of the viewer in this context; returns how many.
    pub async fn logout_all(&self, viewer: &Viewer) -> AppResult<i32> {
        let (count, ended) = self.db.delete_sessions_of(viewer.user.id).await?;
        self.coherence
            .apply(Outbox::Identity, ended.into_iter().collect())
            .await;
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// The viewer's sessions in this context, newest first.
    pub async fn sessions(&self, viewer: &Viewer) -> AppResult<Vec<StoredSession>> {
        self.db.sessions_of(viewer.user.id, now()).await
    }

    /// Ends one of the viewer's sessions; `false` when there is no such session.
    pub async fn revoke_session(&self, viewer: &Viewer, id: &str) -> AppResult<bool> {
        let Some(ended) = self.db.delete_session(viewer.user.id, id).await? else {
            return Ok(false);
        };
        self.coherence.apply(Outbox::Identity, vec![ended]).await;
        Ok(true)
    }

    /// Changes the password and ends every other session of the user (all contexts).
    #[tracing::instrument(skip_all, fields(user_id = %viewer.user.id))]
    pub async fn change_password(
        &self,
        viewer: &Viewer,
        current: &str,
        new: Password,
    ) -> AppResult<()> {
        let user = self
            .db
            .user(viewer.user.id)
            .await?
            .ok_or(AppError::Unauthenticated)?;
        if !password::verify(current.to_owned(), Some(user.password_hash)).await? {
            return Err(AppError::bad_input(
                "currentPassword",
                "is not the current password",
            ));
        }
        let hash = password::hash(new).await?;
        // A reset link mailed before the change must not undo it: outstanding reset tokens
        // are voided with it.
        let changes = self
            .db
            .set_password(user.id, hash, Some(&viewer.session.id), true, now())
            .await?;
        self.coherence.apply(Outbox::Identity, changes).await;
        Ok(())
    }

    /// Mails the viewer a token that verifies their email.
    pub async fn request_email_verification(&self, viewer: &Viewer) -> AppResult<()> {
        if viewer.user.email_verified {
            return Ok(());
        }
        let token = self
            .issue_token(viewer.user.id, TokenPurpose::VerifyEmail)
            .await?;
        self.mailer
            .send(Mail {
                to: viewer.user.email.clone(),
                subject: "Verify your email".into(),
                body: format!("Your verification token: {}", token.expose()),
                token: token.expose().to_owned(),
            })
            .await?;
        Ok(())
    }

    /// Verifies an email with a mailed token.
    pub async fn verify_email(&self, raw_token: &str) -> AppResult<AuthUser> {
        let user_id = self.consume(raw_token, TokenPurpose::VerifyEmail).await?;
        let changed = self.db.set_email_verified(user_id, now()).await?;
        self.coherence.apply(Outbox::Identity, vec![changed]).await;
        let user = self
            .db
            .user(user_id)
            .await?
            .ok_or(AppError::NotFound("user"))?;
        let permissions = self.db.permissions(user_id).await?;
        Ok(user.with_permissions(permissions))
    }

    /// Mails a reset token when the account exists; says nothing either way.
    ///
    /// The work (looking the account up, issuing a token, mailing it) happens after the
    /// answer, for known and unknown emails alike, so the answer's timing says nothing about
    /// which emails have accounts. At most `MAIL_JOBS` run at once; beyond that, requests
    /// are dropped (and logged).
    pub fn request_password_reset(self: &Arc<Self>, email: Email) {
        let Ok(permit) = self.mail_jobs.clone().try_acquire_owned() else {
            tracing::warn!("too many password resets at once; one was dropped");
            return;
        };
        let manager = self.clone();
        let job = async move {
            let _permit = permit;
            if let Err(err) = manager.send_password_reset(email).await {
                tracing::error!(error = ?err, "could not send a password reset");
            }
        };
        tokio::spawn(job.instrument(tracing::Span::current()));
    }

    async fn send_password_reset(&self, email: Email) -> AppResult<()> {
        let Some(user) = self.db.user_by_email(email.as_str()).await? else {
            return Ok(());
        };
        if !self.throttle.take_reset_mail(&user.email).await {
            tracing::info!(user_id = %user.id, "password reset not mailed: enough were lately");
            return Ok(());
        }
        let token = self
            .issue_token(user.id, TokenPurpose::ResetPassword)
            .await?;
        self.mailer
            .send(Mail {
                to: user.email,
                subject: "Reset your password".into(),
                body: format!("Your password reset token: {}", token.expose()),
                token: token.expose().to_owned(),
            })
            .await?;
        Ok(())
    }

    /// Sets a new password with a mailed token and ends every session of the user.
    pub async fn reset_password(&self, raw_token: &str, new: Password) -> AppResult<()> {
        let user_id = self.consume(raw_token, TokenPurpose::ResetPassword).await?;
        let hash = password::hash(new).await?;
        let changes = self
            .db
            .set_password(user_id, hash, None, false, now())
            .await?;
        self.coherence.apply(Outbox::Identity, changes).await;
        Ok(())
    }

    async fn issue_token(&self, user_id: Uuid, purpose: TokenPurpose) -> AppResult<SessionToken> {
        let token = SessionToken::generate();
        let at = now();
        self.db
            .create_user_token(user_id, token.hash(), purpose, at + ONE_TIME_TOKEN_TTL, at)
            .await?;
        Ok(token)
    }

    async fn consume(&self, raw_token: &str, purpose: TokenPurpose) -> AppResult<Uuid> {
        let invalid = || AppError::bad_input("token", "is invalid, used or expired");
        let token = SessionToken::from_client(raw_token).ok_or_else(invalid)?;
        self.db
            .consume_user_token(&token.hash(), purpose, now())
            .await?
            .ok_or_else(invalid)
    }

    /// Grants `permission` in this context to `user_id`.
    pub async fn grant(&self, user_id: Uuid, permission: &Permission) -> AppResult<bool> {
        if self.db.user(user_id).await?.is_none() {
            return Err(AppError::NotFound("user"));
        }
        let granted = self.db.grant(user_id, permission.as_str(), now()).await?;
        let changed = granted.is_some();
        self.coherence
            .apply(Outbox::Identity, granted.into_iter().collect())
            .await;
        Ok(changed)
    }

    /// Revokes `permission` in this context from `user_id`.
    pub async fn revoke(&self, user_id: Uuid, permission: &Permission) -> AppResult<bool> {
        if self.db.user(user_id).await?.is_none() {
            return Err(AppError::NotFound("user"));
        }
        let revoked = self.db.revoke(user_id, permission.as_str()).await?;
        let changed = revoked.is_some();
        self.coherence
            .apply(Outbox::Identity, revoked.into_iter().collect())
            .await;
        Ok(changed)
    }

    /// Housekeeping: deletes expired sessions and forgets devices no longer trusted.
    pub async fn purge_expired(&self) -> AppResult<u64> {
        let sessions = self.db.purge_expired_sessions(now()).await?;
        let devices = self.db.purge_stale_devices(device_cutoff()).await?;
        Ok(sessions + devices)
    }
}
