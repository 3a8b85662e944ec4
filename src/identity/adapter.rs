//! `ContextualIdentityAdapter`: the identity database, always filtered by one application
//! context (SPEC §1), and the only code that knows how it is stored. Sessions, permissions
//! and one-time tokens of other contexts are invisible through it (except where a method
//! says it spans every context, as a password reset must).

use super::{Account, ClientInfo, StoredSession};
use crate::clock::DateTime;
use crate::context::ApplicationContext;
use crate::db::{record_change, write_txn};
use crate::domain::{
    Change, Recorded, SecurityEvent, SecurityEventKind, SessionRecord, split_page,
};
use crate::error::{AppError, AppResult, ResultExt};
use entity::identity::{
    recovery_codes, security_events, sessions, trusted_devices, user_permissions, user_tokens,
    users,
};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set, TransactionTrait,
};
use uuid::Uuid;

/// What a one-time token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    /// Proves an email address.
    VerifyEmail,
    /// Sets a new password.
    ResetPassword,
}

impl TokenPurpose {
    fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// Identity database access for one context.
#[derive(Clone, Debug)]
pub struct ContextualIdentityAdapter {
    db: DatabaseConnection,
    ctx: ApplicationContext,
}

impl ContextualIdentityAdapter {
    /// Access to `db` as seen from `ctx`.
    pub fn new(db: DatabaseConnection, ctx: ApplicationContext) -> Self {
        Self { db, ctx }
    }

    /// The context.
    pub fn context(&self) -> ApplicationContext {
        self.ctx
    }

    /// Creates a user; a taken email is `CONFLICT`.
    pub async fn create_user(
        &self,
        email: &str,
        password_hash: String,
        at: DateTime,
    ) -> AppResult<Account> {
        let row = users::ActiveModel {
            id: Set(Uuid::now_v7()),
            email: Set(email.to_owned()),
            password_hash: Set(password_hash),
            email_verified: Set(false),
            created_at: Set(at),
            updated_at: Set(at),
            totp_secret: Set(None),
            totp_pending_secret: Set(None),
            totp_last_step: Set(None),
            totp_enabled_at: Set(None),
        }
        .insert(&self.db)
        .await
        .on_unique(|| AppError::conflict("an account with this email already exists"))?;
        Ok(account(row))
    }

    /// The user with `email` (normalised).
    pub async fn user_by_email(&self, email: &str) -> AppResult<Option<Account>> {
        Ok(users::Entity::find()
            .filter(users::Column::Email.eq(email))
            .one(&self.db)
            .await?
            .map(account))
    }

    /// The user with `id`.
    pub async fn user(&self, id: Uuid) -> AppResult<Option<Account>> {
        Ok(users::Entity::find_by_id(id)
            .one(&self.db)
            .await?
            .map(account))
    }

    /// Permissions of `user_id` in this context, sorted.
    pub async fn permissions(&self, user_id: Uuid) -> AppResult<Vec<String>> {
        Ok(user_permissions::Entity::find()
            .filter(user_permissions::Column::ApplicationContext.eq(self.ctx.as_str()))
            .filter(user_permissions::Column::UserId.eq(user_id))
            .order_by_asc(user_permissions::Column::Permission)
            .all(&self.db)
            .await?
            .into_iter()
            .map(|p| p.permission)
            .collect())
    }

    /// Grants `permission` in this context; `None` when it was already granted, else the
    /// change recorded with it.
    pub async fn grant(
        &self,
        user_id: Uuid,
        permission: &str,
        at: DateTime,
    ) -> AppResult<Option<Recorded>> {
        let txn = self.db.begin_with_options(write_txn()).await?;
        let inserted = user_permissions::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            permission: Set(permission.to_owned()),
            application_context: Set(self.ctx.as_str().to_owned()),
            granted_at: Set(at),
        }
        .insert(&txn)
        .await
        .on_unique(|| AppError::conflict("already granted"));
        match inserted {
            Ok(_) => {}
            Err(AppError::Conflict(_)) => return Ok(None),
            Err(e) => return Err(e),
        }
        let recorded = record_change(&txn, Change::UserChanged { user_id }).await?;
        txn.commit().await?;
        Ok(Some(recorded))
    }

    /// Revokes `permission` in this context; `None` when it was not granted, else the
    /// change recorded with it.
    pub async fn revoke(&self, user_id: Uuid, permission: &str) -> AppResult<Option<Recorded>> {
        let txn = self.db.begin_with_options(write_txn()).await?;
        let res = user_permissions::Entity::delete_many()
            .filter(user_permissions::Column::ApplicationContext.eq(self.ctx.as_str()))
            .filter(user_permissions::Column::UserId.eq(user_id))
            .filter(user_permissions::Column::Permission.eq(permission))
            .exec(&txn)
            .await?;
        if res.rows_affected == 0 {
            return Ok(None);
        }
        let recorded = record_change(&txn, Change::UserChanged { user_id }).await?;
        txn.commit().await?;
        Ok(Some(recorded))
    }

    /// Stores a new session of this context for `record.user_id`, started at `at` by
    /// `client`.
    pub async fn create_session(
        &self,
        record: &SessionRecord,
        client: &ClientInfo,
        at: DateTime,
    ) -> AppResult<()> {
        sessions::ActiveModel {
            id: Set(record.id.clone()),
            user_id: Set(record.user_id),
            token_hash: Set(record.token_hash.clone()),
            application_context: Set(self.ctx.as_str().to_owned()),
            session_data: Set(Some(serde_json::json!({
                "userAgent": client.user_agent,
                "ipAddress": client.ip,
            }))),
            expires_at: Set(record.expires_at),
            last_seen_at: Set(Some(at)),
            created_at: Set(at),
            updated_at: Set(at),
            authenticated_at: Set(record.authenticated_at),
            mfa_at: Set(record.mfa_at),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// The live session of this context with `token_hash`: before its end and used since
    /// `idle_cutoff`.
    pub async fn session_by_hash(
        &self,
        token_hash: &str,
        now: DateTime,
        idle_cutoff: DateTime,
    ) -> AppResult<Option<SessionRecord>> {
        Ok(sessions::Entity::find()
            .filter(sessions::Column::ApplicationContext.eq(self.ctx.as_str()))
            .filter(sessions::Column::TokenHash.eq(token_hash))
            .filter(live(now, idle_cutoff))
            .one(&self.db)
            .await?
            .map(|s| stored_session(s).record))
    }

    /// Live sessions of `user_id` in this context, newest first.
    pub async fn sessions_of(
        &self,
        user_id: Uuid,
        now: DateTime,
        idle_cutoff: DateTime,
    ) -> AppResult<Vec<StoredSession>> {
        Ok(sessions::Entity::find()
            .filter(sessions::Column::ApplicationContext.eq(self.ctx.as_str()))
            .filter(sessions::Column::UserId.eq(user_id))
            .filter(live(now, idle_cutoff))
            .order_by_desc(sessions::Column::CreatedAt)
            .all(&self.db)
            .await?
            .into_iter()
            .map(stored_session)
            .collect())
    }

    /// Deletes the session `id` of `user_id`; the change recorded with it, when it existed.
    pub async fn delete_session(&self, user_id: Uuid, id: &str) -> AppResult<Option<Recorded>> {
        let ended = self
            .delete_sessions(user_id, Some(self.ctx), SessionScope::Only(id))
            .await?;
        Ok(ended.1)
    }

    /// Deletes every session of `user_id` in this context; how many, and the change
    /// recorded with it.
    pub async fn delete_sessions_of(&self, user_id: Uuid) -> AppResult<(usize, Option<Recorded>)> {
        self.delete_sessions(user_id, Some(self.ctx), SessionScope::All)
            .await
    }

    /// Deletes sessions of `user_id` (in `ctx`, or every context) inside one transaction
    /// that records their end.
    async fn delete_sessions(
        &self,
        user_id: Uuid,
        ctx: Option<ApplicationContext>,
        scope: SessionScope<'_>,
    ) -> AppResult<(usize, Option<Recorded>)> {
        let txn = self.db.begin_with_options(write_txn()).await?;
        let ended = end_sessions(&txn, user_id, ctx, scope).await?;
        txn.commit().await?;
        Ok(ended)
    }

    /// Records that a session was used at `at`, unless that was recorded after `since`
    /// already (by any process); whether it wrote.
    pub async fn touch_session(&self, id: &str, at: DateTime, since: DateTime) -> AppResult<bool> {
        Ok(sessions::Entity::update_many()
            .col_expr(sessions::Column::LastSeenAt, Expr::value(at))
            .filter(sessions::Column::Id.eq(id))
            .filter(
                Condition::any()
                    .add(sessions::Column::LastSeenAt.is_null())
                    .add(sessions::Column::LastSeenAt.lt(since)),
            )
            .exec(&self.db)
            .await?
            .rows_affected
            == 1)
    }

    /// Deletes sessions of every context that ended or went unused since `idle_cutoff`
    /// (housekeeping); returns how many.
    pub async fn purge_expired_sessions(
        &self,
        now: DateTime,
        idle_cutoff: DateTime,
    ) -> AppResult<u64> {
        Ok(sessions::Entity::delete_many()
            .filter(
                Condition::any()
                    .add(sessions::Column::ExpiresAt.lte(now))
                    .add(sessions::Column::LastSeenAt.lte(idle_cutoff)),
            )
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Marks `session` as having proved a second factor (and its user) at `at`; the change
    /// recorded with it.
    pub async fn prove_second_factor(
        &self,
        session: &SessionRecord,
        at: DateTime,
    ) -> AppResult<Recorded> {
        let txn = self.db.begin_with_options(write_txn()).await?;
        sessions::Entity::update_many()
            .col_expr(sessions::Column::MfaAt, Expr::value(at))
            .col_expr(sessions::Column::AuthenticatedAt, Expr::value(at))
            .col_expr(sessions::Column::UpdatedAt, Expr::value(at))
            .filter(sessions::Column::Id.eq(session.id.as_str()))
            .exec(&txn)
            .await?;
        let recorded = record_change(
            &txn,
            Change::SessionsChanged {
                sessions: vec![(self.ctx.as_str().to_owned(), session.token_hash.clone())],
            },
        )
        .await?;
        txn.commit().await?;
        Ok(recorded)
    }

    /// Stores a TOTP secret enrolled by `user_id` and not yet confirmed (replacing a
    /// pending one).
    pub async fn set_pending_totp(
        &self,
        user_id: Uuid,
        sealed: String,
        at: DateTime,
    ) -> AppResult<()> {
        users::Entity::update_many()
            .col_expr(users::Column::TotpPendingSecret, Expr::value(sealed))
            .col_expr(users::Column::UpdatedAt, Expr::value(at))
            .filter(users::Column::Id.eq(user_id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Turns two-factor sign-in on with the pending secret `sealed` (its code of `step`
    /// just proved), replacing every recovery code with `code_hashes`, in one transaction;
    /// `None` when the pending secret changed meanwhile, else the change recorded.
    pub async fn enable_totp(
        &self,
        user_id: Uuid,
        sealed: &str,
        step: i64,
        code_hashes: Vec<String>,
        at: DateTime,
    ) -> AppResult<Option<Recorded>> {
        let txn = self.db.begin_with_options(write_txn()).await?;
        let res = users::Entity::update_many()
            .col_expr(users::Column::TotpSecret, Expr::value(sealed))
            .col_expr(
                users::Column::TotpPendingSecret,
                Expr::value(Option::<String>::None),
            )
            .col_expr(users::Column::TotpLastStep, Expr::value(step))
            .col_expr(users::Column::TotpEnabledAt, Expr::value(at))
            .col_expr(users::Column::UpdatedAt, Expr::value(at))
            .filter(users::Column::Id.eq(user_id))
            .filter(users::Column::TotpSecret.is_null())
            .filter(users::Column::TotpPendingSecret.eq(sealed))
            .exec(&txn)
            .await?;
        if res.rows_affected != 1 {
            return Ok(None);
        }
        store_recovery_codes(&txn, user_id, code_hashes, at).await?;
        let recorded = record_change(&txn, Change::UserChanged { user_id }).await?;
        txn.commit().await?;
        Ok(Some(recorded))
    }

    /// Turns two-factor sign-in off and drops the recovery codes; the change recorded.
    pub async fn disable_totp(&self, user_id: Uuid, at: DateTime) -> AppResult<Recorded> {
        let txn = self.db.begin_with_options(write_txn()).await?;
        users::Entity::update_many()
            .col_expr(
                users::Column::TotpSecret,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                users::Column::TotpPendingSecret,
                Expr::value(Option::<String>::None),
            )
            .col_expr(
                users::Column::TotpLastStep,
                Expr::value(Option::<i64>::None),
            )
            .col_expr(
                users::Column::TotpEnabledAt,
                Expr::value(Option::<DateTime>::None),
            )
            .col_expr(users::Column::UpdatedAt, Expr::value(at))
            .filter(users::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        recovery_codes::Entity::delete_many()
            .filter(recovery_codes::Column::UserId.eq(user_id))
            .exec(&txn)
            .await?;
        let recorded = record_change(&txn, Change::UserChanged { user_id }).await?;
        txn.commit().await?;
        Ok(recorded)
    }

    /// Replaces every recovery code of `user_id` with `code_hashes`.
    pub async fn replace_recovery_codes(
        &self,
        user_id: Uuid,
        code_hashes: Vec<String>,
        at: DateTime,
    ) -> AppResult<()> {
        let txn = self.db.begin_with_options(write_txn()).await?;
        store_recovery_codes(&txn, user_id, code_hashes, at).await?;
        txn.commit().await?;
        Ok(())
    }

    /// Accepts TOTP time step `step` for `user_id` if no step as late was accepted before
    /// (atomically: a code works once, even for concurrent requests).
    pub async fn use_totp_step(&self, user_id: Uuid, step: i64) -> AppResult<bool> {
        Ok(users::Entity::update_many()
            .col_expr(users::Column::TotpLastStep, Expr::value(step))
            .filter(users::Column::Id.eq(user_id))
            .filter(users::Column::TotpSecret.is_not_null())
            .filter(
                Condition::any()
                    .add(users::Column::TotpLastStep.is_null())
                    .add(users::Column::TotpLastStep.lt(step)),
            )
            .exec(&self.db)
            .await?
            .rows_affected
            == 1)
    }

    /// Uses up the recovery code of `user_id` hashing to `code_hash`; whether it was unused.
    pub async fn use_recovery_code(
        &self,
        user_id: Uuid,
        code_hash: &str,
        at: DateTime,
    ) -> AppResult<bool> {
        use recovery_codes::Column as C;
        Ok(recovery_codes::Entity::update_many()
            .col_expr(C::UsedAt, Expr::value(at))
            .filter(C::UserId.eq(user_id))
            .filter(C::CodeHash.eq(code_hash))
            .filter(C::UsedAt.is_null())
            .exec(&self.db)
            .await?
            .rows_affected
            == 1)
    }

    /// Records a security event of `user_id` in this context.
    pub async fn record_security_event(
        &self,
        user_id: Uuid,
        kind: SecurityEventKind,
        client: &ClientInfo,
        new_device: bool,
        at: DateTime,
    ) -> AppResult<()> {
        let clip = |s: &Option<String>, n: usize| {
            s.as_ref().map(|s| s.chars().take(n).collect::<String>())
        };
        security_events::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            application_context: Set(self.ctx.as_str().to_owned()),
            kind: Set(kind.as_str().to_owned()),
            occurred_at: Set(at),
            ip_address: Set(clip(&client.ip, 64)),
            user_agent: Set(clip(&client.user_agent, 255)),
            new_device: Set(new_device),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Security events of `user_id` (every context), newest first: at most `first`, older
    /// than `after` when given; and whether more follow.
    pub async fn security_events(
        &self,
        user_id: Uuid,
        first: u64,
        after: Option<Uuid>,
    ) -> AppResult<(Vec<SecurityEvent>, bool)> {
        use security_events::Column as C;
        let mut query = security_events::Entity::find().filter(C::UserId.eq(user_id));
        if let Some(after) = after {
            query = query.filter(C::Id.lt(after));
        }
        let rows = query
            .order_by_desc(C::Id)
            .limit(first + 1)
            .all(&self.db)
            .await?;
        let (rows, more) = split_page(rows, first);
        Ok((rows.into_iter().filter_map(security_event).collect(), more))
    }

    /// Whether `user_id` signed in before from this address with this user agent.
    pub async fn signed_in_before_from(
        &self,
        user_id: Uuid,
        client: &ClientInfo,
    ) -> AppResult<bool> {
        use security_events::Column as C;
        let same = |column: C, value: &Option<String>| match value {
            Some(v) => column.eq(v.as_str()),
            None => column.is_null(),
        };
        Ok(security_events::Entity::find()
            .filter(C::UserId.eq(user_id))
            .filter(C::Kind.eq(SecurityEventKind::SignIn.as_str()))
            .filter(same(C::IpAddress, &client.ip))
            .filter(same(C::UserAgent, &client.user_agent))
            .one(&self.db)
            .await?
            .is_some())
    }

    /// Replaces the password hash and ends every session of the user in every context but
    /// `keep` (and, with `void_resets`, every outstanding reset token), in one transaction;
    /// the changes recorded with it.
    pub async fn set_password(
        &self,
        user_id: Uuid,
        hash: String,
        keep: Option<&str>,
        void_resets: bool,
        at: DateTime,
    ) -> AppResult<Vec<Recorded>> {
        let txn = self.db.begin_with_options(write_txn()).await?;
        users::Entity::update_many()
            .col_expr(users::Column::PasswordHash, Expr::value(hash))
            .col_expr(users::Column::UpdatedAt, Expr::value(at))
            .filter(users::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        if void_resets {
            void_tokens(&txn, user_id, TokenPurpose::ResetPassword, at).await?;
        }
        let scope = keep.map_or(SessionScope::All, SessionScope::AllBut);
        let (_, ended) = end_sessions(&txn, user_id, None, scope).await?;
        let user = record_change(&txn, Change::UserChanged { user_id }).await?;
        txn.commit().await?;
        Ok(ended.into_iter().chain([user]).collect())
    }

    /// Marks the email verified; the change recorded with it.
    pub async fn set_email_verified(&self, user_id: Uuid, at: DateTime) -> AppResult<Recorded> {
        let txn = self.db.begin_with_options(write_txn()).await?;
        users::Entity::update_many()
            .col_expr(users::Column::EmailVerified, Expr::value(true))
            .col_expr(users::Column::UpdatedAt, Expr::value(at))
            .filter(users::Column::Id.eq(user_id))
            .exec(&txn)
            .await?;
        let recorded = record_change(&txn, Change::UserChanged { user_id }).await?;
        txn.commit().await?;
        Ok(recorded)
    }

    /// Stores a one-time token of this context.
    pub async fn create_user_token(
        &self,
        user_id: Uuid,
        token_hash: String,
        purpose: TokenPurpose,
        expires_at: DateTime,
        at: DateTime,
    ) -> AppResult<()> {
        user_tokens::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            token_hash: Set(token_hash),
            purpose: Set(purpose.as_str().to_owned()),
            application_context: Set(self.ctx.as_str().to_owned()),
            expires_at: Set(expires_at),
            used_at: Set(None),
            created_at: Set(at),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Uses up a one-time token: returns its user when the token existed in this context,
    /// had this purpose, was unused and unexpired. A token can be used once, even by
    /// concurrent requests, and using it voids every other unused token of the same user and
    /// purpose (in any context): an older reset link must not work after a reset.
    pub async fn consume_user_token(
        &self,
        token_hash: &str,
        purpose: TokenPurpose,
        now: DateTime,
    ) -> AppResult<Option<Uuid>> {
        use user_tokens::Column as C;
        let txn = self.db.begin_with_options(write_txn()).await?;
        let res = user_tokens::Entity::update_many()
            .col_expr(C::UsedAt, Expr::value(now))
            .filter(C::TokenHash.eq(token_hash))
            .filter(C::Purpose.eq(purpose.as_str()))
            .filter(C::ApplicationContext.eq(self.ctx.as_str()))
            .filter(C::UsedAt.is_null())
            .filter(C::ExpiresAt.gt(now))
            .exec(&txn)
            .await?;
        if res.rows_affected != 1 {
            return Ok(None);
        }
        let Some(row) = user_tokens::Entity::find()
            .filter(C::TokenHash.eq(token_hash))
            .one(&txn)
            .await?
        else {
            return Ok(None);
        };
        void_tokens(&txn, row.user_id, purpose, now).await?;
        txn.commit().await?;
        Ok(Some(row.user_id))
    }

    /// The trusted device whose credential hashes to `token_hash`, if it was used since
    /// `since`: `(device id, user id)`.
    pub async fn trusted_device(
        &self,
        token_hash: &str,
        since: DateTime,
    ) -> AppResult<Option<(Uuid, Uuid)>> {
        Ok(trusted_devices::Entity::find()
            .filter(trusted_devices::Column::TokenHash.eq(token_hash))
            .filter(trusted_devices::Column::LastUsedAt.gt(since))
            .one(&self.db)
            .await?
            .map(|d| (d.id, d.user_id)))
    }

    /// Trusts a new device of `user_id` (its credential hashes to `token_hash`).
    pub async fn trust_device(
        &self,
        user_id: Uuid,
        token_hash: String,
        user_agent: Option<String>,
        at: DateTime,
    ) -> AppResult<()> {
        trusted_devices::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            token_hash: Set(token_hash),
            user_agent: Set(user_agent),
            created_at: Set(at),
            last_used_at: Set(at),
        }
        .insert(&self.db)
        .await?;
        Ok(())
    }

    /// Records that a trusted device signed in again.
    pub async fn touch_device(&self, id: Uuid, at: DateTime) -> AppResult<()> {
        trusted_devices::Entity::update_many()
            .col_expr(trusted_devices::Column::LastUsedAt, Expr::value(at))
            .filter(trusted_devices::Column::Id.eq(id))
            .exec(&self.db)
            .await?;
        Ok(())
    }

    /// Forgets devices unused since `before` (housekeeping); returns how many.
    pub async fn purge_stale_devices(&self, before: DateTime) -> AppResult<u64> {
        Ok(trusted_devices::Entity::delete_many()
            .filter(trusted_devices::Column::LastUsedAt.lte(before))
            .exec(&self.db)
            .await?
            .rows_affected)
    }

    /// Voids every unused token of `user_id` with `purpose`, in every context (a password
    /// change makes outstanding reset links stale).
    pub async fn void_user_tokens(
        &self,
        user_id: Uuid,
        purpose: TokenPurpose,
        now: DateTime,
    ) -> AppResult<u64> {
        void_tokens(&self.db, user_id, purpose, now).await
    }
}

/// Which sessions of a user to end.
#[derive(Clone, Copy)]
enum SessionScope<'a> {
    /// Every one.
    All,
    /// Every one but this id.
    AllBut(&'a str),
    /// Only this id.
    Only(&'a str),
}

/// Ends sessions of `user_id` (in `ctx`, or every context) within `conn`'s transaction and
/// records their end: how many, and the change (when any ended).
async fn end_sessions(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    ctx: Option<ApplicationContext>,
    scope: SessionScope<'_>,
) -> AppResult<(usize, Option<Recorded>)> {
    let mut query = sessions::Entity::find().filter(sessions::Column::UserId.eq(user_id));
    if let Some(ctx) = ctx {
        query = query.filter(sessions::Column::ApplicationContext.eq(ctx.as_str()));
    }
    query = match scope {
        SessionScope::All => query,
        SessionScope::AllBut(keep) => query.filter(sessions::Column::Id.ne(keep)),
        SessionScope::Only(id) => query.filter(sessions::Column::Id.eq(id)),
    };
    let doomed = query.all(conn).await?;
    if doomed.is_empty() {
        return Ok((0, None));
    }
    let ids: Vec<String> = doomed.iter().map(|s| s.id.clone()).collect();
    sessions::Entity::delete_many()
        .filter(sessions::Column::Id.is_in(ids))
        .exec(conn)
        .await?;
    let sessions = doomed
        .into_iter()
        .map(|s| (s.application_context, s.token_hash))
        .collect::<Vec<_>>();
    let count = sessions.len();
    let recorded = record_change(conn, Change::SessionsChanged { sessions }).await?;
    Ok((count, Some(recorded)))
}

async fn void_tokens(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    purpose: TokenPurpose,
    now: DateTime,
) -> AppResult<u64> {
    use user_tokens::Column as C;
    Ok(user_tokens::Entity::update_many()
        .col_expr(C::UsedAt, Expr::value(now))
        .filter(C::UserId.eq(user_id))
        .filter(C::Purpose.eq(purpose.as_str()))
        .filter(C::UsedAt.is_null())
        .exec(conn)
        .await?
        .rows_affected)
}

/// Sessions before their end and used since `idle_cutoff`.
fn live(now: DateTime, idle_cutoff: DateTime) -> Condition {
    Condition::all()
        .add(sessions::Column::ExpiresAt.gt(now))
        .add(
            Condition::any()
                .add(sessions::Column::LastSeenAt.is_null())
                .add(sessions::Column::LastSeenAt.gt(idle_cutoff)),
        )
}

/// Replaces every recovery code of `user_id` within `conn`'s transaction.
async fn store_recovery_codes(
    conn: &impl ConnectionTrait,
    user_id: Uuid,
    code_hashes: Vec<String>,
    at: DateTime,
) -> AppResult<()> {
    recovery_codes::Entity::delete_many()
        .filter(recovery_codes::Column::UserId.eq(user_id))
        .exec(conn)
        .await?;
    let rows = code_hashes
        .into_iter()
        .map(|code_hash| recovery_codes::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            code_hash: Set(code_hash),
            used_at: Set(None),
            created_at: Set(at),
        });
    recovery_codes::Entity::insert_many(rows).exec(conn).await?;
    Ok(())
}

fn account(m: users::Model) -> Account {
    Account {
        id: m.id,
        email: m.email,
        password_hash: m.password_hash,
        email_verified: m.email_verified,
        created_at: m.created_at,
        totp_secret: m.totp_secret,
        totp_pending: m.totp_pending_secret,
    }
}

fn security_event(m: security_events::Model) -> Option<SecurityEvent> {
    Some(SecurityEvent {
        id: m.id,
        kind: SecurityEventKind::parse(&m.kind)?,
        occurred_at: m.occurred_at,
        ip_address: m.ip_address,
        user_agent: m.user_agent,
        new_device: m.new_device,
    })
}

fn stored_session(s: sessions::Model) -> StoredSession {
    let field = |name: &str| {
        s.session_data
            .as_ref()
            .and_then(|d| d.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    StoredSession {
        client: ClientInfo {
            ip: field("ipAddress"),
            user_agent: field("userAgent"),
            device: None,
        },
        created_at: s.created_at,
        last_seen_at: s.last_seen_at,
        record: SessionRecord {
            id: s.id,
            user_id: s.user_id,
            token_hash: s.token_hash,
            expires_at: s.expires_at,
            last_seen_at: s.last_seen_at,
            authenticated_at: Some(s.authenticated_at.unwrap_or(s.created_at)),
            mfa_at: s.mfa_at,
        },
    }
}
