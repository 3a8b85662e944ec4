//! Entities of the `exchanger_web` database: orders, payments, exchange rates, analytics
//! events, leases (and the shared `outbox`).

pub mod analytics_events;
pub mod exchange_rates;
pub mod leases;
pub mod orders;
pub mod payments;
