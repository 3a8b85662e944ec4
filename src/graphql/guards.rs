//! Guards (SPEC §4): a session, a permission in the current context, a recent second
//! factor.

use super::context::ContextExt;
use crate::error::AppError;
use async_graphql::{Context, Guard};

/// Needs a signed-in viewer.
pub struct RequireSession;

impl Guard for RequireSession {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        ctx.require_viewer()?;
        Ok(())
    }
}

/// Needs a signed-in viewer holding the permission in this context (and, where operators
/// must, two-factor sign-in: `REQUIRE_MFA_FOR_OPERATORS`).
pub struct RequirePermission(pub &'static str);

impl Guard for RequirePermission {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let viewer = ctx.require_viewer()?;
        if !viewer.user.can(self.0) {
            return Err(AppError::Forbidden.into());
        }
        ctx.stack()?.users.require_operator_mfa(viewer)?;
        Ok(())
    }
}

/// Sensitive operations: a viewer with two-factor sign-in on must have proved it in this
/// session within `STEP_UP_MINUTES` (`STEP_UP_REQUIRED`; `stepUp` renews it).
pub struct RequireStepUp;

impl Guard for RequireStepUp {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let viewer = ctx.require_viewer()?;
        ctx.stack()?.users.require_step_up(viewer)?;
        Ok(())
    }
}
