//! Entities of the `exchanger_identity` database: users, sessions, permissions, one-time
//! tokens, trusted devices.

pub mod sessions;
pub mod trusted_devices;
pub mod user_permissions;
pub mod user_tokens;
pub mod users;
