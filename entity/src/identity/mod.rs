//! Entities of the `exchanger_identity` database: users, sessions, permissions, one-time tokens.

pub mod sessions;
pub mod user_permissions;
pub mod user_tokens;
pub mod users;
