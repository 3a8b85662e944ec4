//! `AppError`: every failure a request can end in (STYLE §4).
//!
//! No `Display` on purpose: `graphql/errors.rs` owns the conversion to
//! `async_graphql::Error` (a `Display` impl would collide with async-graphql's blanket
//! `From<T: Display>` and drop `extensions.code`).

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Duration;

/// The one error enum of the application.
#[derive(Debug, Clone)]
pub enum AppError {
    /// No valid session, or a failed sign-in (one indistinguishable error).
    Unauthenticated,
    /// Signed in, but without the permission the operation needs in this context.
    Forbidden,
    /// Holds an operator permission, but operators must sign in with a second factor
    /// (`REQUIRE_MFA_FOR_OPERATORS`) and this account has none.
    OperatorNeedsMfa,
    /// The password was right, but this account signs in with a second factor too.
    MfaRequired,
    /// The operation needs this session to have proved the second factor recently.
    StepUpRequired,
    /// An argument failed validation; `field` names it.
    BadUserInput {
        /// The offending input field, e.g. `amount` or `input.email`.
        field: &'static str,
        /// What is wrong, safe to show.
        message: Cow<'static, str>,
    },
    /// The thing does not exist (or belongs to someone else), e.g. "order".
    NotFound(&'static str),
    /// The request conflicts with current state: duplicate email, illegal transition.
    Conflict(Cow<'static, str>),
    /// Too many attempts; try again after `retry_after`.
    RateLimited {
        /// How long to wait.
        retry_after: Duration,
    },
    /// The database gave up on a statement that took too long; nothing was committed.
    Timeout,
    /// Our fault; logged with the request id, never shown.
    Internal(Arc<anyhow::Error>),
}

impl AppError {
    /// A `BAD_USER_INPUT` error naming `field`.
    pub fn bad_input(field: &'static str, message: impl Into<Cow<'static, str>>) -> Self {
        Self::BadUserInput {
            field,
            message: message.into(),
        }
    }

    /// A `CONFLICT` error.
    pub fn conflict(message: impl Into<Cow<'static, str>>) -> Self {
        Self::Conflict(message.into())
    }

    /// An internal error from anything convertible to `anyhow::Error`.
    pub fn internal(err: impl Into<anyhow::Error>) -> Self {
        Self::Internal(Arc::new(err.into()))
    }
}

impl From<anyhow::Error> for AppError {
    fn from(err: anyhow::Error) -> Self {
        Self::Internal(Arc::new(err))
    }
}

impl From<tokio::task::JoinError> for AppError {
    fn from(err: tokio::task::JoinError) -> Self {
        Self::internal(err)
    }
}

/// Convenience result alias.
pub type AppResult<T> = Result<T, AppError>;

/// Turns a unique-constraint violation into a chosen error where the query is written
/// (implemented for database results in `db.rs`).
pub trait ResultExt<T> {
    /// Maps a unique violation to `f()`; every other database error stays internal.
    fn on_unique(self, f: impl FnOnce() -> AppError) -> AppResult<T>;
}
