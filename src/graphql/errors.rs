//! Error codes (SPEC §3): the one conversion from `AppError`, and the `ErrorLogging`
//! extension that makes sure every error leaves with a code.

use super::gate::Deferred;
use crate::error::AppError;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextParseQuery, NextRequest,
    NextSubscribe, NextValidation,
};
use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{
    ErrorExtensions, Response, ServerError, ServerResult, ValidationResult, Variables,
};
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

/// `extensions.code` values.
pub mod code {
    /// No valid session, or bad credentials.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Missing permission.
    pub const FORBIDDEN: &str = "FORBIDDEN";
    /// The password was right; send `totpCode` too.
    pub const MFA_REQUIRED: &str = "MFA_REQUIRED";
    /// Prove the second factor again with `stepUp`.
    pub const STEP_UP_REQUIRED: &str = "STEP_UP_REQUIRED";
    /// Invalid argument (see `extensions.field`).
    pub const BAD_USER_INPUT: &str = "BAD_USER_INPUT";
    /// No such thing (or not yours).
    pub const NOT_FOUND: &str = "NOT_FOUND";
    /// Conflicts with the current state.
    pub const CONFLICT: &str = "CONFLICT";
    /// Too many attempts (see `extensions.retryAfter`).
    pub const RATE_LIMITED: &str = "RATE_LIMITED";
    /// Our fault (see `extensions.requestId`).
    pub const INTERNAL_SERVER_ERROR: &str = "INTERNAL_SERVER_ERROR";
    /// The operation ran out of time (nothing was committed).
    pub const TIMEOUT: &str = "TIMEOUT";
    /// The document does not parse.
    pub const GRAPHQL_PARSE_FAILED: &str = "GRAPHQL_PARSE_FAILED";
    /// The document does not validate against the schema or the limits.
    pub const GRAPHQL_VALIDATION_FAILED: &str = "GRAPHQL_VALIDATION_FAILED";
}

/// Adds the request id to every error of a response, so a client can quote it.
pub fn add_request_id(response: &mut async_graphql::Response, request_id: &str) {
    for err in &mut response.errors {
        err.extensions
            .get_or_insert_with(Default::default)
            .set("requestId", request_id);
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        match err {
            AppError::Unauthenticated => {
                async_graphql::Error::new("not signed in, or wrong email or password")
                    .extend_with(|_, e| e.set("code", code::UNAUTHENTICATED))
            }
            AppError::Forbidden => {
                async_graphql::Error::new("you do not have the permission this needs")
                    .extend_with(|_, e| e.set("code", code::FORBIDDEN))
            }
            AppError::OperatorNeedsMfa => async_graphql::Error::new(
                "operator permissions need two-factor sign-in: turn it on for this account \
                 (enrollTotp, then confirmTotp) and sign in again",
            )
            .extend_with(|_, e| e.set("code", code::FORBIDDEN)),
            AppError::MfaRequired => async_graphql::Error::new(
                "this account signs in with a second factor: send totpCode too (a code from \
                 the authenticator app, or a recovery code)",
            )
            .extend_with(|_, e| e.set("code", code::MFA_REQUIRED)),
            AppError::StepUpRequired => async_graphql::Error::new(
                "this needs a recent second-factor check of this session: call stepUp with a \
                 code from the authenticator app, then try again",
            )
            .extend_with(|_, e| e.set("code", code::STEP_UP_REQUIRED)),
            AppError::BadUserInput { field, message } => {
                async_graphql::Error::new(format!("{field} {message}")).extend_with(|_, e| {
                    e.set("code", code::BAD_USER_INPUT);
                    e.set("field", field);
                })
            }
            AppError::NotFound(what) => async_graphql::Error::new(format!("{what} not found"))
                .extend_with(|_, e| e.set("code", code::NOT_FOUND)),
            AppError::Conflict(message) => async_graphql::Error::new(message.into_owned())
                .extend_with(|_, e| e.set("code", code::CONFLICT)),
            AppError::RateLimited { retry_after } => {
                let secs = retry_after.as_secs().max(1);
                async_graphql::Error::new(format!("too many attempts; try again in {secs} s"))
                    .extend_with(move |_, e| {
                        e.set("code", code::RATE_LIMITED);
                        e.set("retryAfter", secs);
                    })
            }
            AppError::Timeout => async_graphql::Error::new("the operation took too long")
                .extend_with(|_, e| e.set("code", code::TIMEOUT)),
            AppError::Internal(err) => {
                // Logged here, inside the request span (which carries the request id); the
                // client sees only the id.
                tracing::error!(error = ?err, "internal error");
                async_graphql::Error::new("Internal server error")
                    .extend_with(|_, e| e.set("code", code::INTERNAL_SERVER_ERROR))
            }
        }
    }
}

fn set_code(err: &mut ServerError, code: &str) {
    err.extensions
        .get_or_insert_with(Default::default)
        .set("code", code);
}

fn code_of(err: &ServerError) -> Option<&str> {
    match err.extensions.as_ref()?.get("code")? {
        async_graphql::Value::String(code) => Some(code),
        _ => None,
    }
}

/// Whether an error is about an argument's or variable's value (the client's input) rather
/// than the document's shape or our own failure.
fn is_input_error(message: &str) -> bool {
    message.starts_with("Invalid value for argument")
        || message.starts_with("Failed to parse")
        || message.starts_with("Expected input type")
}

/// Marks a response whose errors came before execution (a request error): it carries no
/// `data` (GraphQL over HTTP). Set in `Response::extensions`, removed by [`take_request_error`].
const REQUEST_ERROR: &str = "exchangerRequestError";

/// Whether `response` holds a request error (and removes the marker).
pub fn take_request_error(response: &mut Response) -> bool {
    response.extensions.remove(REQUEST_ERROR).is_some()
}

/// How far a request got; errors are coded by where they arose.
const PREPARING: u8 = 0;
const PARSE_FAILED: u8 = 1;
const INVALID: u8 = 2;
const EXECUTING: u8 = 3;

/// Gives every error a code, marks request errors, and logs by severity.
pub struct ErrorLogging;

impl ExtensionFactory for ErrorLogging {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorLoggingExtension {
            phase: Arc::new(AtomicU8::new(PREPARING)),
        })
    }
}

struct ErrorLoggingExtension {
    phase: Arc<AtomicU8>,
}

/// Codes what is still code-less, logs each error once, and marks request errors.
fn finish(phase: u8, response: &mut Response) {
    // Errors of a subscription's setup carry the field's path: they are results, not
    // request errors.
    let request_error = !response.errors.is_empty()
        && phase != EXECUTING
        && response.errors.iter().all(|e| e.path.is_empty());
    for err in &mut response.errors {
        if code_of(err).is_none() {
            let code = match phase {
                PARSE_FAILED => code::GRAPHQL_PARSE_FAILED,
                _ if is_input_error(&err.message) => code::BAD_USER_INPUT,
                INVALID => code::GRAPHQL_VALIDATION_FAILED,
                _ => code::INTERNAL_SERVER_ERROR,
            };
            set_code(err, code);
        }
        match code_of(err) {
            Some(code::INTERNAL_SERVER_ERROR) => {
                tracing::warn!(message = %err.message, "request failed with an internal error")
            }
            code => tracing::debug!(message = %err.message, code, "request error"),
        }
    }
    if request_error {
        response
            .extensions
            .insert(REQUEST_ERROR.into(), async_graphql::Value::Boolean(true));
    }
}

#[async_trait::async_trait]
impl Extension for ErrorLoggingExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        finish(self.phase.load(Ordering::Acquire), &mut response);
        response
    }

    fn subscribe<'s>(
        &self,
        ctx: &ExtensionContext<'_>,
        stream: BoxStream<'s, Response>,
        next: NextSubscribe<'_>,
    ) -> BoxStream<'s, Response> {
        let phase = self.phase.clone();
        next.run(ctx, stream)
            .map(move |mut response| {
                finish(phase.load(Ordering::Acquire), &mut response);
                response
            })
            .boxed()
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        let result = next.run(ctx, query, variables).await;
        if result.is_err() {
            self.phase.store(PARSE_FAILED, Ordering::Release);
        }
        result
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await;
        if result.is_err() {
            self.phase.store(INVALID, Ordering::Release);
        }
        result
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        // The document is valid: a refusal of the request's values applies now.
        if let Some(Deferred(refusal)) = ctx.data_opt::<Deferred>() {
            return Response::from_errors(vec![refusal.to_server_error()]);
        }
        self.phase.store(EXECUTING, Ordering::Release);
        next.run(ctx, operation_name).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn extensions(err: AppError) -> (String, async_graphql::ErrorExtensionValues) {
        let err = async_graphql::Error::from(err);
        (err.message, err.extensions.unwrap_or_default())
    }

    fn code_of(ext: &async_graphql::ErrorExtensionValues) -> String {
        match ext.get("code") {
            Some(async_graphql::Value::String(code)) => code.clone(),
            other => panic!("no code: {other:?}"),
        }
    }

    #[test]
    fn every_app_error_maps_to_its_code() {
        let cases = [
            (AppError::Unauthenticated, code::UNAUTHENTICATED),
            (AppError::Forbidden, code::FORBIDDEN),
            (
                AppError::bad_input("input.amount", "must be positive"),
                code::BAD_USER_INPUT,
            ),
            (AppError::NotFound("order"), code::NOT_FOUND),
            (AppError::conflict("already paid"), code::CONFLICT),
            (AppError::Timeout, code::TIMEOUT),
            (
                AppError::RateLimited {
                    retry_after: Duration::from_secs(7),
                },
                code::RATE_LIMITED,
            ),
            (
                AppError::internal(anyhow::anyhow!("db password is hunter2")),
                code::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (err, expected) in cases {
            let (_, ext) = extensions(err);
            assert_eq!(code_of(&ext), expected);
        }
    }

    #[test]
    fn bad_input_names_its_field_and_rate_limits_say_when_to_retry() {
        let (message, ext) = extensions(AppError::bad_input("input.amount", "must be positive"));
        assert_eq!(message, "input.amount must be positive");
        assert_eq!(
            ext.get("field"),
            Some(&async_graphql::Value::from("input.amount"))
        );
        let (_, ext) = extensions(AppError::RateLimited {
            retry_after: Duration::from_millis(10),
        });
        assert_eq!(ext.get("retryAfter"), Some(&async_graphql::Value::from(1)));
    }

    #[test]
    fn an_internal_error_shows_nothing_of_its_cause() {
        let (message, ext) = extensions(AppError::internal(anyhow::anyhow!("secret detail")));
        assert_eq!(message, "Internal server error");
        assert!(!format!("{ext:?}").contains("secret"));
    }

    #[test]
    fn argument_value_errors_are_told_from_document_errors() {
        assert!(is_input_error(
            "Invalid value for argument \"amount\", expected type \"Decimal\""
        ));
        assert!(is_input_error("Failed to parse \"Decimal\": not a number"));
        assert!(!is_input_error("Unknown field \"nope\" on type \"Query\"."));
    }
}
