//! The GraphQL API (SPEC §3): schema roots, resolvers per area, types, guards, loaders and
//! error codes.

pub mod analytics;
pub mod context;
pub mod errors;
pub mod gate;
pub mod guards;
pub mod identity;
pub mod loaders;
pub mod mutation;
pub mod orders;
pub mod payments;
pub mod query;
pub mod rates;
pub mod subscription;
pub mod types;

use crate::config::Limits;
use crate::stack::WebStack;
use async_graphql::Schema;

/// The schema type.
pub type AppSchema = Schema<query::Query, mutation::Mutation, subscription::Subscription>;

/// Builds the schema with the limits of SPEC §4 that async-graphql enforces. `stack` is `None` only for printing SDL.
pub fn build_schema(stack: Option<WebStack>, limits: &Limits) -> AppSchema {
    let mut builder = Schema::build(
        query::Query::default(),
        mutation::Mutation::default(),
        subscription::Subscription::default(),
    )
    // Depth, size and aliases are measured by `gate` before a document gets here (async-graphql
    // would count introspection's `ofType` links as depth, and expand every fragment spread).
    .limit_complexity(limits.max_complexity)
    .limit_recursive_depth(32)
    .limit_directives(10)
    .extension(errors::ErrorLogging);
    if !limits.introspection {
        // No schema through errors either ("Did you mean …").
        builder = builder.disable_introspection().disable_suggestions();
    }
    if let Some(stack) = stack {
        builder = builder.data(stack);
    }
    builder.finish()
}

/// The schema in SDL, as committed in `schema.graphql`.
pub fn sdl() -> String {
    build_schema(None, &Limits::default()).sdl()
}
