//! HTTP edge (SPEC §3, §5): routes, session extraction, request ids, GraphiQL.

pub mod auth;
pub mod graphiql;
pub mod request_id;
pub mod router;
