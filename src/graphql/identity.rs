//! Auth operations (SPEC §3): thin resolvers over `WebUserManager`.

use super::context::ContextExt;
use super::guards::{RequirePermission, RequireSession, RequireStepUp};
use super::types::page::Cursor;
use super::types::security::{CURSOR_KIND, SecurityEventConnection, TotpEnrollment};
use super::types::{AuthPayload, Session, User};
use crate::cookies::{clear_session_cookie, device_cookie, session_cookie};
use crate::domain::{Email, Password, Permission};
use crate::error::{AppError, AppResult};
use crate::identity::SignedIn;
use async_graphql::{Context, ID, InputObject, Object};
use uuid::Uuid;

/// `register` input.
#[derive(InputObject)]
pub struct RegisterInput {
    /// Email address (at most 255 characters).
    pub email: String,
    /// Password, 8 to 128 characters.
    pub password: String,
}

/// `login` input.
#[derive(InputObject)]
pub struct LoginInput {
    /// Email address.
    pub email: String,
    /// Password.
    pub password: String,
    /// With two-factor sign-in on: the authenticator's current code, or a recovery code.
    pub totp_code: Option<String>,
}

/// Largest page of `mySecurityEvents`.
const MAX_EVENTS_PAGE: u64 = 100;

/// Parses an `ID` argument as a UUID.
pub fn parse_id(field: &'static str, id: &ID) -> AppResult<Uuid> {
    Uuid::parse_str(id.as_str()).map_err(|_| AppError::bad_input(field, "must be a UUID"))
}

/// Identity queries.
#[derive(Default)]
pub struct IdentityQuery;

#[Object]
impl IdentityQuery {
    /// The signed-in user; null when signed out.
    async fn me(&self, ctx: &Context<'_>) -> Option<User> {
        ctx.viewer().map(|v| User(v.user.clone()))
    }

    /// The viewer's sessions in this application context, newest first.
    #[graphql(guard = "RequireSession")]
    async fn my_sessions(&self, ctx: &Context<'_>) -> AppResult<Vec<Session>> {
        let viewer = ctx.require_viewer()?;
        let sessions = ctx.stack()?.users.sessions(viewer).await?;
        Ok(sessions
            .into_iter()
            .map(|stored| Session {
                current: stored.record.id == viewer.session.id,
                stored,
            })
            .collect())
    }

    /// The viewer's security activity (every context), newest first (Relay connection;
    /// `first` 1 to 100).
    #[graphql(guard = "RequireSession")]
    async fn my_security_events(
        &self,
        ctx: &Context<'_>,
        #[graphql(default = 20)] first: Option<i32>,
        after: Option<String>,
    ) -> AppResult<SecurityEventConnection> {
        let viewer = ctx.require_viewer()?;
        let first = u64::try_from(first.unwrap_or(20))
            .ok()
            .filter(|n| (1..=MAX_EVENTS_PAGE).contains(n))
            .ok_or_else(|| AppError::bad_input("first", "must be between 1 and 100"))?;
        let after = after
            .as_deref()
            .map(|c| Cursor::decode("after", CURSOR_KIND, c))
            .transpose()?;
        let (events, more) = ctx
            .stack()?
            .users
            .security_events(viewer, first, after)
            .await?;
        Ok(SecurityEventConnection::new(events, more))
    }
}

/// Identity mutations.
#[derive(Default)]
pub struct IdentityMutation;

/// The session cookie, and the device cookie that spares this client other clients'
/// failed logins from now on.
fn set_cookie(ctx: &Context<'_>, payload: &SignedIn) -> AppResult<()> {
    let secure = ctx.stack()?.config.cookie_secure;
    ctx.append_http_header(
        axum::http::header::SET_COOKIE,
        session_cookie(payload.token.expose(), payload.expires_at, secure),
    );
    ctx.append_http_header(
        axum::http::header::SET_COOKIE,
        device_cookie(payload.device_token.expose(), secure),
    );
    Ok(())
}

fn clear_cookie(ctx: &Context<'_>) -> AppResult<()> {
    let secure = ctx.stack()?.config.cookie_secure;
    ctx.append_http_header(axum::http::header::SET_COOKIE, clear_session_cookie(secure));
    Ok(())
}

#[Object]
impl IdentityMutation {
    /// Creates an account and signs it in (sets the session cookie too).
    async fn register(&self, ctx: &Context<'_>, input: RegisterInput) -> AppResult<AuthPayload> {
        let email = Email::parse("input.email", &input.email)?;
        let password = Password::parse("input.password", &input.password)?;
        let signed_in = ctx
            .stack()?
            .users
            .register(email, password, ctx.client())
            .await?;
        set_cookie(ctx, &signed_in)?;
        Ok(AuthPayload(signed_in))
    }

    /// Signs in with email and password (sets the session cookie too). A new token every
    /// time.
    async fn login(&self, ctx: &Context<'_>, input: LoginInput) -> AppResult<AuthPayload> {
        let signed_in = ctx
            .stack()?
            .users
            .login(
                &input.email,
                &input.password,
                input.totp_code.as_deref(),
                ctx.client(),
            )
            .await?;
        set_cookie(ctx, &signed_in)?;
        Ok(AuthPayload(signed_in))
    }

    /// Ends the current session and clears the cookie.
    async fn logout(&self, ctx: &Context<'_>) -> AppResult<bool> {
        clear_cookie(ctx)?;
        let Some(viewer) = ctx.viewer() else {
            return Ok(false);
        };
        ctx.stack()?.users.logout(viewer, &ctx.client()).await?;
        Ok(true)
    }

    /// Ends every session of the viewer in this context; returns how many.
    #[graphql(guard = "RequireSession.and(RequireStepUp)")]
    async fn logout_all(&self, ctx: &Context<'_>) -> AppResult<i32> {
        let viewer = ctx.require_viewer()?;
        let n = ctx.stack()?.users.logout_all(viewer, &ctx.client()).await?;
        clear_cookie(ctx)?;
        Ok(n)
    }

    /// Ends one of the viewer's sessions.
    #[graphql(guard = "RequireSession")]
    async fn revoke_session(&self, ctx: &Context<'_>, id: ID) -> AppResult<bool> {
        let viewer = ctx.require_viewer()?;
        let id = parse_id("id", &id)?;
        if !ctx
            .stack()?
            .users
            .revoke_session(viewer, &id.to_string(), &ctx.client())
            .await?
        {
            return Err(AppError::NotFound("session"));
        }
        Ok(true)
    }

    /// Changes the password; every other session of the user ends.
    #[graphql(guard = "RequireSession.and(RequireStepUp)")]
    async fn change_password(
        &self,
        ctx: &Context<'_>,
        current_password: String,
        new_password: String,
    ) -> AppResult<bool> {
        let viewer = ctx.require_viewer()?;
        if current_password.len() > 512 {
            return Err(AppError::bad_input(
                "currentPassword",
                "is not the current password",
            ));
        }
        let new_password = Password::parse("newPassword", &new_password)?;
        ctx.stack()?
            .users
            .change_password(viewer, &current_password, new_password, &ctx.client())
            .await?;
        Ok(true)
    }

    /// Mails a verification token to the viewer's address.
    #[graphql(guard = "RequireSession")]
    async fn request_email_verification(&self, ctx: &Context<'_>) -> AppResult<bool> {
        ctx.stack()?
            .users
            .request_email_verification(ctx.require_viewer()?)
            .await?;
        Ok(true)
    }

    /// Verifies an email address with the mailed token.
    async fn verify_email(&self, ctx: &Context<'_>, token: String) -> AppResult<User> {
        Ok(User(
            ctx.stack()?
                .users
                .verify_email(&token, &ctx.client())
                .await?,
        ))
    }

    /// Mails a password-reset token; true whether or not the email exists
    /// (`PASSWORD_RESET_MAX_PER_IP` an hour from one client address).
    async fn request_password_reset(&self, ctx: &Context<'_>, email: String) -> AppResult<bool> {
        let email = Email::parse("email", &email)?;
        ctx.stack()?
            .users
            .request_password_reset(email, &ctx.client())
            .await?;
        Ok(true)
    }

    /// Sets a new password with the mailed token; every session of the user ends.
    async fn reset_password(
        &self,
        ctx: &Context<'_>,
        token: String,
        new_password: String,
    ) -> AppResult<bool> {
        let new_password = Password::parse("newPassword", &new_password)?;
        ctx.stack()?
            .users
            .reset_password(&token, new_password, &ctx.client())
            .await?;
        Ok(true)
    }

    /// Grants a permission in this context (needs `permissions:write`). False when the user
    /// already had it.
    #[graphql(guard = "RequirePermission(Permission::PERMISSIONS_WRITE).and(RequireStepUp)")]
    async fn grant_permission(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        permission: String,
    ) -> AppResult<bool> {
        let user_id = parse_id("userId", &user_id)?;
        let permission = Permission::known("permission", &permission)?;
        ctx.stack()?.users.grant(user_id, &permission).await
    }

    /// Revokes a permission in this context (needs `permissions:write`). False when the user
    /// did not have it.
    #[graphql(guard = "RequirePermission(Permission::PERMISSIONS_WRITE).and(RequireStepUp)")]
    async fn revoke_permission(
        &self,
        ctx: &Context<'_>,
        user_id: ID,
        permission: String,
    ) -> AppResult<bool> {
        let user_id = parse_id("userId", &user_id)?;
        let permission = Permission::parse("permission", &permission)?;
        ctx.stack()?.users.revoke(user_id, &permission).await
    }

    /// Starts turning on two-factor sign-in: a new authenticator secret, pending until
    /// `confirmTotp` (replacing one pending before).
    #[graphql(guard = "RequireSession")]
    async fn enroll_totp(&self, ctx: &Context<'_>) -> AppResult<TotpEnrollment> {
        let (secret, otpauth_uri) = ctx
            .stack()?
            .users
            .enroll_totp(ctx.require_viewer()?)
            .await?;
        Ok(TotpEnrollment {
            secret,
            otpauth_uri,
        })
    }

    /// Turns two-factor sign-in on with the pending authenticator's current code; returns
    /// ten single-use recovery codes (shown only here).
    #[graphql(guard = "RequireSession")]
    async fn confirm_totp(&self, ctx: &Context<'_>, code: String) -> AppResult<Vec<String>> {
        ctx.stack()?
            .users
            .confirm_totp(ctx.require_viewer()?, &code, &ctx.client())
            .await
    }

    /// Turns two-factor sign-in off (needs a recent `stepUp` and a current code or a
    /// recovery code).
    #[graphql(guard = "RequireSession.and(RequireStepUp)")]
    async fn disable_totp(&self, ctx: &Context<'_>, code: String) -> AppResult<bool> {
        ctx.stack()?
            .users
            .disable_totp(ctx.require_viewer()?, &code, &ctx.client())
            .await?;
        Ok(true)
    }

    /// Replaces the recovery codes with ten new ones (needs a recent `stepUp` and a code).
    #[graphql(guard = "RequireSession.and(RequireStepUp)")]
    async fn regenerate_recovery_codes(
        &self,
        ctx: &Context<'_>,
        code: String,
    ) -> AppResult<Vec<String>> {
        ctx.stack()?
            .users
            .regenerate_recovery_codes(ctx.require_viewer()?, &code, &ctx.client())
            .await
    }

    /// Proves the second factor again for this session: sensitive operations need it
    /// within `STEP_UP_MINUTES`.
    #[graphql(guard = "RequireSession")]
    async fn step_up(&self, ctx: &Context<'_>, code: String) -> AppResult<bool> {
        ctx.stack()?
            .users
            .step_up(ctx.require_viewer()?, &code, &ctx.client())
            .await?;
        Ok(true)
    }
}
