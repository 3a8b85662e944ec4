//! HTTP edge (SPEC §3, §5): routes, session extraction, request ids.

pub mod auth;
pub mod request_id;
pub mod router;
