//! exchanger: the GraphQL API server of a currency-exchange web service.

/// Databases, store and caches (SPEC §1).
pub mod cache;
/// Command line.
pub mod cli;
/// The one clock.
pub mod clock;
/// Caches and subscribers of every process in step with the databases.
pub mod coherence;
/// Configuration from the environment.
pub mod config;
/// Application contexts.
pub mod context;
/// The session cookie.
pub mod cookies;
/// Database connections and migrations.
pub mod db;
/// Validated domain types.
pub mod domain;
/// The one error enum.
pub mod error;
/// The GraphQL API.
pub mod graphql;
/// HTTP routes.
pub mod http;
/// Accounts, sessions and permissions.
pub mod identity;
/// The web stack: every adapter and service, built once per process.
pub mod stack;
/// Running the server.
pub mod startup;
/// Logging.
pub mod telemetry;
/// Rates, orders, payments and analytics.
pub mod web;
