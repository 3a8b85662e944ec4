//! The web application's half (SPEC §3): the `WebDatabaseAdapter` and the services for
//! rates, orders, payments and analytics, each owning its rules, transactions and cache
//! invalidation.

pub mod adapter;
pub mod analytics;
pub mod orders;
pub mod payments;
pub mod rates;

pub use adapter::WebDatabaseAdapter;

/// Now, truncated to microseconds: the precision both backends store, so a value read back
/// equals the value written.
pub fn now() -> chrono::DateTime<chrono::Utc> {
    truncate_micros(chrono::Utc::now())
}

/// Drops sub-microsecond digits.
pub fn truncate_micros(t: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    use chrono::Timelike;
    let nanos = t.nanosecond() / 1_000 * 1_000;
    t.with_nanosecond(nanos).unwrap_or(t)
}
