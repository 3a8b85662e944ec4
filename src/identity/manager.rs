//! `WebUserManager`: register, login, logout and session validation for one context
//! (SPEC §3, §4), over the identity database (source of truth) and the store (fast path).

use super::adapter::TokenPurpose;
use super::mailer::{Mail, Mailer};
use super::secrets::SecretKey;
use super::throttle::{LoginCounter, Throttle};
use super::{
    Account, ClientInfo, ContextualIdentityAdapter, IdentityEvents, SignedIn, StoredSession,
    Viewer, password, totp,
};
use crate::cache::FillToken;
use crate::cache::adapter::ContextualRedisAdapter;
use crate::cache::keys::SESSION_TTL;
use crate::clock::{DateTime, now};
use crate::coherence::{Coherence, Outbox};
use crate::config::SecurityConfig;
use crate::domain::analytics::event;
use crate::domain::{
    AuthUser, Email, NewEvent, Password, Permission, SecurityEvent, SecurityEventKind,
    SessionRecord, SessionToken,
};
use crate::error::{AppError, AppResult};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tracing::Instrument;
use uuid::Uuid;

/// How often `last_seen_at` of a session is written at most (more often only when the idle
/// timeout is under two minutes: a session in use must never look idle).
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
    /// Seals two-factor secrets (absent in command-line processes, which need none).
    key: Option<Arc<SecretKey>>,
    security: SecurityConfig,
}

/// What account security runs on: the server key (when this process has one) and the
/// settings.
pub struct AccountSecurity {
    /// The server key.
    pub key: Option<Arc<SecretKey>>,
    /// `SECRET_KEY`, `STEP_UP_MINUTES`, `REQUIRE_MFA_FOR_OPERATORS`, `SESSION_IDLE_MINUTES`.
    pub config: SecurityConfig,
}

/// What a sign-in's checks concluded.
enum Verdict {
    /// Signed in (having proved a second factor too, when `true`).
    Admitted(Account, bool),
    /// The password was right; a second factor must come with it.
    NeedsSecondFactor,
    /// Wrong email, password or second factor (the user, when the email was known).
    Refused(Option<Account>),
}

/// The associated data a user's TOTP secret is sealed with.
fn totp_owner(user_id: Uuid) -> String {
    format!("totp:{user_id}")
}

/// The time step `code` belongs to when it is a code of `secret` for now (±1 step), as
/// stored.
fn current_step(secret: &[u8], code: &str) -> AppResult<Option<i64>> {
    let unix_now = u64::try_from(now().timestamp()).unwrap_or_default();
    totp::matching_step(secret, code, unix_now)
        .map(|step| i64::try_from(step).map_err(AppError::internal))
        .transpose()
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
        security: AccountSecurity,
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
            key: security.key,
            security: security.config,
        }
    }

    fn key(&self) -> AppResult<&SecretKey> {
        self.key.as_deref().ok_or_else(|| {
            AppError::internal(anyhow::anyhow!("BUG: this process has no SECRET_KEY"))
        })
    }

    /// Sessions unused since this moment have ended.
    fn idle_cutoff(&self, at: DateTime) -> DateTime {
        let idle =
            chrono::Duration::from_std(self.security.session_idle).unwrap_or(chrono::Duration::MAX);
        at.checked_sub_signed(idle).unwrap_or(DateTime::MIN_UTC)
    }

    /// Records a security event of `user_id` (best effort: the action it describes is done).
    async fn note(
        &self,
        user_id: Uuid,
        kind: SecurityEventKind,
        client: &ClientInfo,
        new_device: bool,
    ) {
        if let Err(err) = self
            .db
            .record_security_event(user_id, kind, client, new_device, now())
            .await
        {
            tracing::warn!(error = ?err, kind = kind.as_str(), "could not record a security event");
        }
    }

    /// The account of a signed-in user.
    async fn account(&self, user_id: Uuid) -> AppResult<Account> {
        self.db
            .user(user_id)
            .await?
            .ok_or(AppError::Unauthenticated)
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
        self.start_session(user, client, None, false, true).await
    }

    /// Signs in. Unknown email and wrong password are the same `UNAUTHENTICATED` error and
    /// cost the same. A client holding this account's device credential is counted on its
    /// device only; any other client per account and per address (see `throttle.rs`). With
    /// two-factor sign-in on, the right password without `second_factor` is `MFA_REQUIRED`
    /// (not a failure); a wrong second factor is `UNAUTHENTICATED` and counts as a failure.
    #[tracing::instrument(skip_all, fields(user_id))]
    pub async fn login(
        &self,
        email: &str,
        candidate: &str,
        second_factor: Option<&str>,
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
        let verdict = match (verified, user) {
            (Ok(true), Some(user)) => match (&user.totp_secret, second_factor) {
                (None, _) => Ok(Verdict::Admitted(user, false)),
                (Some(_), None) => Ok(Verdict::NeedsSecondFactor),
                (Some(_), Some(code)) => match self.check_second_factor(&user, code, &client).await
                {
                    Ok(true) => Ok(Verdict::Admitted(user, true)),
                    Ok(false) => Ok(Verdict::Refused(Some(user))),
                    Err(err) => Err(err),
                },
            },
            (Ok(_), user) => Ok(Verdict::Refused(user)),
            // Not checked (the hashing queue is full): not a failure.
            (Err(err), _) => Err(err),
        };
        let failed = matches!(verdict, Ok(Verdict::Refused(_)));
        self.throttle.end_login(attempt, failed).await;
        match verdict? {
            Verdict::Admitted(user, mfa) => {
                tracing::Span::current().record("user_id", tracing::field::display(user.id));
                self.record(Some(user.id), event::USER_LOGGED_IN).await;
                self.start_session(user, client, trusted, mfa, false).await
            }
            Verdict::NeedsSecondFactor => Err(AppError::MfaRequired),
            Verdict::Refused(user) => {
                self.record(user.as_ref().map(|u| u.id), event::LOGIN_FAILED)
                    .await;
                if let Some(user) = user {
                    self.note(user.id, SecurityEventKind::SignInFailed, &client, false)
                        .await;
                }
                Err(AppError::Unauthenticated)
            }
        }
    }

    /// Checks a second factor of `account`: a TOTP code of the current step ±1 not used
    /// before, or an unused recovery code (each then used up, a recovery code noted as a
    /// security event). `false` when it is neither.
    async fn check_second_factor(
        &self,
        account: &Account,
        code: &str,
        client: &ClientInfo,
    ) -> AppResult<bool> {
        let Some(sealed) = &account.totp_secret else {
            return Ok(false);
        };
        let key = self.key()?;
        let code = code.trim();
        if totp::looks_like_totp(code) {
            let secret = key.open(&totp_owner(account.id), sealed)?;
            let Some(step) = current_step(&secret, code)? else {
                return Ok(false);
            };
            return self.db.use_totp_step(account.id, step).await;
        }
        if code.len() > 64 {
            return Ok(false);
        }
        let hash = key.code_hash(&totp::normalize_recovery_code(code));
        let unused = self.db.use_recovery_code(account.id, &hash, now()).await?;
        if unused {
            self.note(
                account.id,
                SecurityEventKind::RecoveryCodeUsed,
                client,
                false,
            )
            .await;
        }
        Ok(unused)
    }

    /// A second factor of the signed-in viewer, for operations that need one now; wrong
    /// codes are counted like failed logins (a stolen session cannot guess its way in).
    async fn prove(&self, viewer: &Viewer, code: &str, client: &ClientInfo) -> AppResult<()> {
        let account = self.account(viewer.user.id).await?;
        if account.totp_secret.is_none() {
            return Err(AppError::conflict(
                "two-factor sign-in is off for this account",
            ));
        }
        let attempt = self
            .throttle
            .begin_login(vec![LoginCounter::SecondFactor(account.id)])
            .await?;
        let checked = self.check_second_factor(&account, code, client).await;
        self.throttle
            .end_login(attempt, matches!(checked, Ok(false)))
            .await;
        if checked? {
            return Ok(());
        }
        Err(AppError::bad_input(
            "code",
            "is not a valid code (the authenticator's current code, or an unused recovery code)",
        ))
    }

    /// Starts enrolling an authenticator: a new secret, pending until `confirm_totp`
    /// (replacing one pending before). Returns the secret in base32 and its `otpauth://`
    /// URI.
    pub async fn enroll_totp(&self, viewer: &Viewer) -> AppResult<(String, String)> {
        let account = self.account(viewer.user.id).await?;
        if account.totp_secret.is_some() {
            return Err(AppError::conflict(
                "two-factor sign-in is already on; turn it off before enrolling another \
                 authenticator",
            ));
        }
        let secret = totp::new_secret();
        let sealed = self.key()?.seal(&totp_owner(account.id), &secret)?;
        self.db.set_pending_totp(account.id, sealed, now()).await?;
        Ok(totp::enrollment(&secret, &account.email))
    }

    /// Turns two-factor sign-in on with a code of the pending authenticator; returns ten
    /// single-use recovery codes (shown only here). The session counts as having proved
    /// its second factor.
    pub async fn confirm_totp(
        &self,
        viewer: &Viewer,
        code: &str,
        client: &ClientInfo,
    ) -> AppResult<Vec<String>> {
        let account = self.account(viewer.user.id).await?;
        if account.totp_secret.is_some() {
            return Err(AppError::conflict("two-factor sign-in is already on"));
        }
        let Some(sealed) = account.totp_pending else {
            return Err(AppError::conflict(
                "no authenticator is being enrolled: call enrollTotp first",
            ));
        };
        let key = self.key()?;
        let secret = key.open(&totp_owner(account.id), &sealed)?;
        let Some(step) = current_step(&secret, code.trim())? else {
            return Err(AppError::bad_input(
                "code",
                "is not the current code of the authenticator being enrolled",
            ));
        };
        let codes = totp::new_recovery_codes();
        let hashes = codes.iter().map(|c| key.code_hash(c)).collect();
        let at = now();
        let Some(enabled) = self
            .db
            .enable_totp(account.id, &sealed, step, hashes, at)
            .await?
        else {
            return Err(AppError::conflict(
                "the enrollment changed meanwhile: call enrollTotp again",
            ));
        };
        let proved = self.db.prove_second_factor(&viewer.session, at).await?;
        self.coherence
            .apply(Outbox::Identity, vec![enabled, proved])
            .await;
        self.note(account.id, SecurityEventKind::TotpEnabled, client, false)
            .await;
        Ok(codes)
    }

    /// Turns two-factor sign-in off (a current code or a recovery code proves it is the
    /// owner).
    pub async fn disable_totp(
        &self,
        viewer: &Viewer,
        code: &str,
        client: &ClientInfo,
    ) -> AppResult<()> {
        self.prove(viewer, code, client).await?;
        let changed = self.db.disable_totp(viewer.user.id, now()).await?;
        self.coherence.apply(Outbox::Identity, vec![changed]).await;
        self.note(
            viewer.user.id,
            SecurityEventKind::TotpDisabled,
            client,
            false,
        )
        .await;
        Ok(())
    }

    /// Replaces the recovery codes with ten new ones (shown only here).
    pub async fn regenerate_recovery_codes(
        &self,
        viewer: &Viewer,
        code: &str,
        client: &ClientInfo,
    ) -> AppResult<Vec<String>> {
        self.prove(viewer, code, client).await?;
        let key = self.key()?;
        let codes = totp::new_recovery_codes();
        let hashes = codes.iter().map(|c| key.code_hash(c)).collect();
        self.db
            .replace_recovery_codes(viewer.user.id, hashes, now())
            .await?;
        self.note(
            viewer.user.id,
            SecurityEventKind::RecoveryCodesRegenerated,
            client,
            false,
        )
        .await;
        Ok(codes)
    }

    /// Proves the second factor again for this session (sensitive operations need it
    /// within `STEP_UP_MINUTES`).
    pub async fn step_up(&self, viewer: &Viewer, code: &str, client: &ClientInfo) -> AppResult<()> {
        self.prove(viewer, code, client).await?;
        let proved = self.db.prove_second_factor(&viewer.session, now()).await?;
        self.coherence.apply(Outbox::Identity, vec![proved]).await;
        self.note(viewer.user.id, SecurityEventKind::StepUp, client, false)
            .await;
        Ok(())
    }

    /// `STEP_UP_REQUIRED` unless the viewer has no second factor or this session proved it
    /// within the step-up window.
    pub fn require_step_up(&self, viewer: &Viewer) -> AppResult<()> {
        if viewer.user.totp_enabled
            && !viewer
                .session
                .stepped_up(now(), self.security.step_up_window)
        {
            return Err(AppError::StepUpRequired);
        }
        Ok(())
    }

    /// `FORBIDDEN` for an operator without a second factor, where operators need one.
    pub fn require_operator_mfa(&self, viewer: &Viewer) -> AppResult<()> {
        if self.security.require_mfa_for_operators && !viewer.user.totp_enabled {
            return Err(AppError::OperatorNeedsMfa);
        }
        Ok(())
    }

    /// The viewer's security events, newest first: at most `first`, older than `after`;
    /// and whether more follow.
    pub async fn security_events(
        &self,
        viewer: &Viewer,
        first: u64,
        after: Option<Uuid>,
    ) -> AppResult<(Vec<SecurityEvent>, bool)> {
        self.db.security_events(viewer.user.id, first, after).await
    }

    /// Starts a session of `user` (`mfa`: it proved a second factor too); a client that
    /// is not a trusted device of the user (`trusted`) becomes one and gets its credential.
    /// A sign-in from a device not seen before is recorded as such and mailed to the user.
    async fn start_session(
        &self,
        user: Account,
        client: ClientInfo,
        trusted: Option<Uuid>,
        mfa: bool,
        first: bool,
    ) -> AppResult<SignedIn> {
        let token = SessionToken::generate();
        let at = now();
        // A device credential says which device this is; without one, the address and
        // user agent of earlier sign-ins do.
        let new_device = !first
            && match &client.device {
                Some(_) => trusted.is_none(),
                None => !self.db.signed_in_before_from(user.id, &client).await?,
            };
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
            last_seen_at: Some(at),
            authenticated_at: Some(at),
            mfa_at: mfa.then_some(at),
        };
        self.db.create_session(&record, &client, at).await?;
        self.store.fill_session(FillToken::Absent, &record).await;
        self.note(user.id, SecurityEventKind::SignIn, &client, new_device)
            .await;
        if new_device {
            self.mail_new_sign_in(&user.email, &client, at);
        }
        let permissions = self.db.permissions(user.id).await?;
        Ok(SignedIn {
            token,
            expires_at,
            user: user.with_permissions(permissions),
            device_token,
            new_device,
        })
    }

    /// Tells the owner about a sign-in from a new device (after the answer, best effort).
    fn mail_new_sign_in(&self, to: &str, client: &ClientInfo, at: DateTime) {
        let Ok(permit) = self.mail_jobs.clone().try_acquire_owned() else {
            tracing::warn!("too many mails at once; a new-device notice was dropped");
            return;
        };
        let mail = Mail {
            to: to.to_owned(),
            subject: "New sign-in to your exchanger account".into(),
            body: format!(
                "Someone signed in to your account from a device not seen before.\n\
                 When: {}\nAddress: {}\nBrowser: {}\n\n\
                 If this was not you, reset your password and turn on two-factor sign-in.",
                at.to_rfc3339(),
                client.ip.as_deref().unwrap_or("unknown"),
                client.user_agent.as_deref().unwrap_or("unknown"),
            ),
            token: String::new(),
        };
        let mailer = self.mailer.clone();
        tokio::spawn(async move {
            let _permit = permit;
            if let Err(err) = mailer.send(mail).await {
                tracing::error!(error = ?err, "could not send a new-device notice");
            }
        });
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
            (Some(s), _) if s.is_live(at, self.security.session_idle) => s,
            (Some(s), _) if s.expires_at <= at => return Ok(None),
            // Not cached, or idle by the cached copy: another process may have seen it
            // used since, so the database decides.
            (_, token) => {
                let Some(record) = self
                    .db
                    .session_by_hash(&hash, at, self.idle_cutoff(at))
                    .await?
                else {
                    return Ok(None);
                };
                self.store.fill_session(token, &record).await;
                record
            }
        };
        let Some(user) = self.user(session.user_id).await? else {
            return Ok(None);
        };
        self.touch(&session);
        Ok(Some(Viewer { user, session }))
    }

    /// Records a session's use at most once a minute: in the database (once across every
    /// process) and in the cached copy, which every process reads the idle timeout from.
    fn touch(&self, session: &SessionRecord) {
        let at = now();
        let interval = TOUCH_EVERY.min(self.security.session_idle / 2);
        let every = chrono::Duration::from_std(interval).unwrap_or(chrono::Duration::MAX);
        if session.last_seen_at.is_some_and(|seen| seen + every > at) {
            return;
        }
        {
            let mut touched = self.touched.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = touched
                .get(&session.id)
                .is_some_and(|t| t.elapsed() < interval);
            if fresh {
                return;
            }
            if touched.len() > 100_000 {
                touched.clear();
            }
            touched.insert(session.id.clone(), Instant::now());
        }
        let db = self.db.clone();
        let store = self.store.clone();
        let mut record = session.clone();
        tokio::spawn(async move {
            match db.touch_session(&record.id, at, at - every).await {
                Ok(true) => {
                    record.last_seen_at = Some(at);
                    store.refresh_session(&record).await;
                }
                Ok(false) => {}
                Err(err) => tracing::warn!(error = ?err, "could not record session use"),
            }
        });
    }

    /// Ends the viewer's session.
    pub async fn logout(&self, viewer: &Viewer, client: &ClientInfo) -> AppResult<()> {
        let ended = self
            .db
            .delete_session(viewer.user.id, &viewer.session.id)
            .await?;
        self.coherence
            .apply(Outbox::Identity, ended.into_iter().collect())
            .await;
        self.note(viewer.user.id, SecurityEventKind::SignOut, client, false)
            .await;
        Ok(())
    }

    /// Ends every session of the viewer in this context; returns how many.
    pub async fn logout_all(&self, viewer: &Viewer, client: &ClientInfo) -> AppResult<i32> {
        let (count, ended) = self.db.delete_sessions_of(viewer.user.id).await?;
        self.coherence
            .apply(Outbox::Identity, ended.into_iter().collect())
            .await;
        self.note(viewer.user.id, SecurityEventKind::SignOut, client, false)
            .await;
        Ok(i32::try_from(count).unwrap_or(i32::MAX))
    }

    /// The viewer's live sessions in this context, newest first.
    pub async fn sessions(&self, viewer: &Viewer) -> AppResult<Vec<StoredSession>> {
        let at = now();
        self.db
            .sessions_of(viewer.user.id, at, self.idle_cutoff(at))
            .await
    }

    /// Ends one of the viewer's sessions; `false` when there is no such session.
    pub async fn revoke_session(
        &self,
        viewer: &Viewer,
        id: &str,
        client: &ClientInfo,
    ) -> AppResult<bool> {
        let Some(ended) = self.db.delete_session(viewer.user.id, id).await? else {
            return Ok(false);
        };
        self.coherence.apply(Outbox::Identity, vec![ended]).await;
        self.note(
            viewer.user.id,
            SecurityEventKind::SessionRevoked,
            client,
            false,
        )
        .await;
        Ok(true)
    }

    /// Changes the password and ends every other session of the user (all contexts).
    #[tracing::instrument(skip_all, fields(user_id = %viewer.user.id))]
    pub async fn change_password(
        &self,
        viewer: &Viewer,
        current: &str,
        new: Password,
        client: &ClientInfo,
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
        self.note(user.id, SecurityEventKind::PasswordChanged, client, false)
            .await;
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
    pub async fn verify_email(&self, raw_token: &str, client: &ClientInfo) -> AppResult<AuthUser> {
        let user_id = self.consume(raw_token, TokenPurpose::VerifyEmail).await?;
        let changed = self.db.set_email_verified(user_id, now()).await?;
        self.coherence.apply(Outbox::Identity, vec![changed]).await;
        self.note(user_id, SecurityEventKind::EmailVerified, client, false)
            .await;
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
    /// are dropped (and logged). One client address may ask `PASSWORD_RESET_MAX_PER_IP` times
    /// an hour (`RATE_LIMITED` after that, whatever the email).
    pub async fn request_password_reset(
        self: &Arc<Self>,
        email: Email,
        client: &ClientInfo,
    ) -> AppResult<()> {
        if let Some(ip) = client.ip.as_deref() {
            self.throttle
                .take_reset_request(ip)
                .await
                .map_err(|retry_after| AppError::RateLimited { retry_after })?;
        }
        let Ok(permit) = self.mail_jobs.clone().try_acquire_owned() else {
            tracing::warn!("too many password resets at once; one was dropped");
            return Ok(());
        };
        let manager = self.clone();
        let job = async move {
            let _permit = permit;
            if let Err(err) = manager.send_password_reset(email).await {
                tracing::error!(error = ?err, "could not send a password reset");
            }
        };
        tokio::spawn(job.instrument(tracing::Span::current()));
        Ok(())
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
    pub async fn reset_password(
        &self,
        raw_token: &str,
        new: Password,
        client: &ClientInfo,
    ) -> AppResult<()> {
        let user_id = self.consume(raw_token, TokenPurpose::ResetPassword).await?;
        let hash = password::hash(new).await?;
        let changes = self
            .db
            .set_password(user_id, hash, None, false, now())
            .await?;
        self.coherence.apply(Outbox::Identity, changes).await;
        self.note(user_id, SecurityEventKind::PasswordReset, client, false)
            .await;
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

    /// Housekeeping: deletes ended and idle sessions and forgets devices no longer
    /// trusted.
    pub async fn purge_expired(&self) -> AppResult<u64> {
        let at = now();
        let sessions = self
            .db
            .purge_expired_sessions(at, self.idle_cutoff(at))
            .await?;
        let devices = self.db.purge_stale_devices(device_cutoff()).await?;
        Ok(sessions + devices)
    }
}
