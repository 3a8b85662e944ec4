//! SeaORM entities of both databases, grouped by database (SPEC §2).
//!
//! `identity` holds the shared identity tables, `web` the web application's tables.
//! Money columns use [`ExactDecimal`] so that amounts round-trip exactly on SQLite too.

pub mod identity;
mod money;
pub mod outbox;
pub mod web;

pub use money::{ExactDecimal, MONEY_SCALE};
