//! Guards (SPEC §4): a session, or a permission in the current context.

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

/// Needs a signed-in viewer holding the permission in this context.
pub struct RequirePermission(pub &'static str);

impl Guard for RequirePermission {
    async fn check(&self, ctx: &Context<'_>) -> async_graphql::Result<()> {
        let viewer = ctx.require_viewer()?;
        if viewer.user.can(self.0) {
            Ok(())
        } else {
            Err(AppError::Forbidden.into())
        }
    }
}
