//! Typed access to what a resolver may need from the GraphQL context: the stack, the
//! viewer, the client.

use super::loaders;
use crate::error::{AppError, AppResult};
use crate::identity::{ClientInfo, Viewer};
use crate::stack::WebStack;
use async_graphql::{Context, Request};

/// Adds what a request's resolvers read: the viewer (if signed in), the client and fresh
/// DataLoaders.
pub fn request_data(
    req: Request,
    stack: &WebStack,
    viewer: &Option<Viewer>,
    client: &ClientInfo,
) -> Request {
    let mut req = loaders::attach(req.data(client.clone()), stack);
    if let Some(viewer) = viewer {
        req = req.data(viewer.clone());
    }
    req
}

/// Helpers on the resolver context (no `data_unchecked`).
pub trait ContextExt {
    /// The web stack (schema data).
    fn stack(&self) -> AppResult<&WebStack>;
    /// The signed-in viewer, if any.
    fn viewer(&self) -> Option<&Viewer>;
    /// The signed-in viewer, or `UNAUTHENTICATED`.
    fn require_viewer(&self) -> AppResult<&Viewer>;
    /// Where the request came from.
    fn client(&self) -> ClientInfo;
}

impl ContextExt for Context<'_> {
    fn stack(&self) -> AppResult<&WebStack> {
        self.data::<WebStack>().map_err(|_| {
            AppError::internal(anyhow::anyhow!("BUG: WebStack was not added to the schema"))
        })
    }

    fn viewer(&self) -> Option<&Viewer> {
        self.data_opt::<Viewer>()
    }

    fn require_viewer(&self) -> AppResult<&Viewer> {
        self.viewer().ok_or(AppError::Unauthenticated)
    }

    fn client(&self) -> ClientInfo {
        self.data_opt::<ClientInfo>().cloned().unwrap_or_default()
    }
}
