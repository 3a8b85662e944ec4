//! Entities of the `exchanger_web` database: orders, payments, exchange rates, analytics events.

pub mod analytics_events;
pub mod exchange_rates;
pub mod orders;
pub mod payments;
