//! The web application's half (SPEC §3): the `WebDatabaseAdapter` and the services for
//! rates, orders, payments and analytics, each owning its rules, transactions and cache
//! invalidation.

pub mod adapter;
pub mod analytics;
pub mod orders;
pub mod payments;
pub mod rates;

pub use adapter::{WebDatabaseAdapter, WebTransaction};
