//! Error codes (SPEC §3): the one conversion from `AppError`, and the `ErrorLogging`
//! extension that makes sure every error leaves with a code.

use crate::error::AppError;
use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextParseQuery, NextRequest, NextValidation,
};
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{
    ErrorExtensions, Response, ServerError, ServerResult, ValidationResult, Variables,
};
use std::sync::Arc;

/// `extensions.code` values.
pub mod code {
    /// No valid session, or bad credentials.
    pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
    /// Missing permission.
    pub const FORBIDDEN: &str = "FORBIDDEN";
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

fn has_code(err: &ServerError) -> bool {
    err.extensions
        .as_ref()
        .is_some_and(|e| e.get("code").is_some())
}

/// Whether a validation message is about an argument's or variable's value (the client's
/// input) rather than the document's shape.
fn is_input_error(message: &str) -> bool {
    message.starts_with("Invalid value for argument")
        || message.starts_with("Failed to parse")
        || message.starts_with("Expected input type")
}

/// Gives every error a code, limits aliases, and logs by severity.
pub struct ErrorLogging {
    /// Maximum aliases per document.
    pub max_aliases: usize,
}

impl ExtensionFactory for ErrorLogging {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(ErrorLoggingExtension {
            max_aliases: self.max_aliases,
        })
    }
}

struct ErrorLoggingExtension {
    max_aliases: usize,
}

fn count_aliases(set: &SelectionSet, doc: &ExecutableDocument, depth: usize) -> usize {
    if depth > 64 {
        return 0;
    }
    set.items
        .iter()
        .map(|item| match &item.node {
            Selection::Field(f) => {
                usize::from(f.node.alias.is_some())
                    + count_aliases(&f.node.selection_set.node, doc, depth + 1)
            }
            Selection::InlineFragment(frag) => {
                count_aliases(&frag.node.selection_set.node, doc, depth + 1)
            }
            Selection::FragmentSpread(spread) => doc
                .fragments
                .get(&spread.node.fragment_name.node)
                .map_or(0, |f| {
                    count_aliases(&f.node.selection_set.node, doc, depth + 1)
                }),
        })
        .sum()
}

#[async_trait::async_trait]
impl Extension for ErrorLoggingExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        for err in &mut response.errors {
            if !has_code(err) {
                let code = if is_input_error(&err.message) {
                    code::BAD_USER_INPUT
                } else {
                    code::INTERNAL_SERVER_ERROR
                };
                set_code(err, code);
            }
            let code = err
                .extensions
                .as_ref()
                .and_then(|e| e.get("code"))
                .map(|v| v.to_string())
                .unwrap_or_default();
            if code.contains(code::INTERNAL_SERVER_ERROR) {
                tracing::warn!(message = %err.message, "request failed with an internal error");
            } else {
                tracing::debug!(message = %err.message, code, "request error");
            }
        }
        response
    }

    async fn parse_query(
        &self,
        ctx: &ExtensionContext<'_>,
        query: &str,
        variables: &Variables,
        next: NextParseQuery<'_>,
    ) -> ServerResult<ExecutableDocument> {
        match next.run(ctx, query, variables).await {
            Ok(doc) => {
                let aliases: usize = doc
                    .operations
                    .iter()
                    .map(|(_, op)| count_aliases(&op.node.selection_set.node, &doc, 0))
                    .sum();
                if aliases > self.max_aliases {
                    let mut err = ServerError::new(
                        format!(
                            "the document uses {aliases} aliases; the limit is {}",
                            self.max_aliases
                        ),
                        None,
                    );
                    set_code(&mut err, code::GRAPHQL_VALIDATION_FAILED);
                    return Err(err);
                }
                Ok(doc)
            }
            Err(mut err) => {
                set_code(&mut err, code::GRAPHQL_PARSE_FAILED);
                Err(err)
            }
        }
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        next.run(ctx).await.map_err(|mut errors| {
            for err in &mut errors {
                let code = if is_input_error(&err.message) {
                    code::BAD_USER_INPUT
                } else {
                    code::GRAPHQL_VALIDATION_FAILED
                };
                set_code(err, code);
            }
            errors
        })
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
