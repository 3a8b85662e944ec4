//! Windowed counters in the store (rate limits): atomic across instances while the store
//! answers, and kept per process while it does not, so limits keep holding in an outage.

use super::breaker::Breaker;
use super::store::{Attempt, KvStore, MemoryStore};
use std::sync::Arc;
use std::time::Duration;

/// Counters over a store. Cheap to share (`Arc`).
pub struct Counters {
    store: Arc<dyn KvStore>,
    breaker: Arc<Breaker>,
    /// Where counting continues while the store is unreachable.
    local: MemoryStore,
}

impl Counters {
    /// Counters in `store`, skipping it while `breaker` is open.
    pub fn new(store: Arc<dyn KvStore>, breaker: Arc<Breaker>) -> Self {
        Self {
            store,
            breaker,
            local: MemoryStore::new(),
        }
    }

    /// Adds `delta` (0 to read) to the counter at `key`, whose window of `window` starts
    /// with its first count. Returns the new count and the time left in the window.
    pub async fn add(&self, key: &str, delta: i64, window: Duration) -> (i64, Duration) {
        if !self.breaker.is_cooling_down() {
            match self.store.incr(key, delta, window).await {
                Ok(v) => return v,
                Err(err) => self.breaker.trip(&err),
            }
        }
        self.local
            .incr(key, delta, window)
            .await
            .unwrap_or((delta, window))
    }

    /// Begins attempt `id` at `key` (see [`KvStore::attempt_begin`]); in this process's
    /// counters while the store is unreachable.
    pub async fn begin_attempt(
        &self,
        key: &str,
        id: &str,
        limit: u32,
        window: Duration,
    ) -> Attempt {
        if !self.breaker.is_cooling_down() {
            match self.store.attempt_begin(key, id, limit, window).await {
                Ok(attempt) => return attempt,
                Err(err) => self.breaker.trip(&err),
            }
        }
        self.local
            .attempt_begin(key, id, limit, window)
            .await
            .unwrap_or(Attempt::Admitted)
    }

    /// Ends attempt `id` at `key`, as a failure or not.
    pub async fn end_attempt(&self, key: &str, id: &str, failed: bool, window: Duration) {
        let _ = self.local.attempt_end(key, id, failed, window).await;
        if !self.breaker.is_cooling_down()
            && let Err(err) = self.store.attempt_end(key, id, failed, window).await
        {
            self.breaker.trip(&err);
        }
    }

    /// Resets a counter.
    pub async fn reset(&self, key: &str) {
        let _ = self.local.delete(key).await;
        if !self.breaker.is_cooling_down()
            && let Err(err) = self.store.delete(key).await
        {
            self.breaker.trip(&err);
        }
    }
}
