//! A simple circuit breaker in front of the store: after a failure the store is skipped for
//! a moment, so an outage costs one timeout, not one per request.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long the store is skipped after a failure.
const COOLDOWN: Duration = Duration::from_secs(1);

/// Shared by everything that talks to one store.
#[derive(Debug, Default)]
pub struct Breaker {
    open_until: Mutex<Option<Instant>>,
}

impl Breaker {
    /// Whether the store is being skipped now.
    pub fn is_open(&self) -> bool {
        self.lock().is_some_and(|t| Instant::now() < t)
    }

    /// Records a failure: logs it once and skips the store for a moment.
    pub fn trip(&self, err: &anyhow::Error) {
        tracing::warn!(error = %format!("{err:#}"), "store unreachable; bypassing it");
        metrics::counter!("exchanger_store_errors_total").increment(1);
        *self.lock() = Some(Instant::now() + COOLDOWN);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<Instant>> {
        self.open_until.lock().unwrap_or_else(|p| p.into_inner())
    }
}
