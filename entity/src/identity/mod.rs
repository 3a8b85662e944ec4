//! Entities of the `exchanger_identity` database: users, sessions, permissions, one-time
//! tokens, trusted devices, recovery codes, security events.

pub mod recovery_codes;
pub mod security_events;
pub mod sessions;
pub mod trusted_devices;
pub mod user_permissions;
pub mod user_tokens;
pub mod users;
