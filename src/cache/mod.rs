//! Caches over the store (SPEC §1): keys, the store interface, and `Cache`, the facade
//! every service uses.
//!
//! Rules the facade enforces, so call sites cannot get them wrong:
//! - A read that fails, or that finds a tombstone, is a miss; the caller reads the database.
//! - A reader refills with `fill` (set-if-absent), a writer replaces with `put` or drops with
//!   `invalidate`, which leaves a short tombstone: a reader that read the database before the
//!   write cannot put the old value back afterwards.
//! - When the store is unreachable, an invalidation is remembered in this process and retried;
//!   until it lands, reads of that key are misses. So a session revoked while Redis was down
//!   is refused at once and stays refused when Redis returns with its old entry.
//! - After a failure the store is skipped for a moment (a simple circuit breaker), so an outage
//!   costs one timeout, not one per request.

pub mod adapter;
pub mod keys;
pub mod l1;
pub mod store;

use l1::L1;
use serde::{Serialize, de::DeserializeOwned};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{KvStore, MemoryStore};

/// Prefix of the value stored in place of one that was just invalidated. Each tombstone is
/// unique, so a refill can tell "the tombstone I saw" from "a newer one".
const TOMBSTONE: &str = "\u{0}tombstone:";
/// How long a tombstone lives: far longer than a database read takes, so a reader that
/// missed before an invalidation cannot find the key empty again and refill it.
const TOMBSTONE_TTL: Duration = Duration::from_secs(60);

fn is_tombstone(raw: &str) -> bool {
    raw.starts_with(TOMBSTONE)
}

fn new_tombstone() -> String {
    format!("{TOMBSTONE}{}", uuid::Uuid::new_v4().simple())
}

/// What a reader saw in the store on a miss: the only state its refill may replace.
/// `FillToken::NONE` (store unreachable, invalidation pending) never fills.
#[derive(Clone, Debug)]
pub struct FillToken(Option<Option<Arc<str>>>);

impl FillToken {
    /// A token that never fills.
    pub const NONE: FillToken = FillToken(None);

    /// For an entry that cannot exist yet (e.g. a session just created): fills only an
    /// empty key.
    pub fn absent() -> Self {
        Self(Some(None))
    }
}
/// How long the store is skipped after a failure.
const BREAKER_COOLDOWN: Duration = Duration::from_secs(1);

/// The cache facade. Cheap to share (`Arc`).
pub struct Cache {
    store: Arc<dyn KvStore>,
    /// Counters fall back here while the store is down, so rate limits still hold.
    local: MemoryStore,
    state: Mutex<BreakerState>,
    /// Local copies in front of a shared store (Redis only).
    l1: Option<Arc<L1>>,
}

#[derive(Default)]
struct BreakerState {
    open_until: Option<Instant>,
    /// Invalidations that could not reach the store yet.
    pending: HashMap<String, ()>,
}

impl Cache {
    /// A facade over `store`.
    pub fn new(store: Arc<dyn KvStore>) -> Self {
        Self {
            store,
            local: MemoryStore::new(),
            state: Mutex::new(BreakerState::default()),
            l1: None,
        }
    }

    /// A facade over a shared `store` with local copies kept coherent by `l1`'s channel.
    pub fn with_l1(store: Arc<dyn KvStore>, l1: Arc<L1>) -> Self {
        Self {
            l1: Some(l1),
            ..Self::new(store)
        }
    }

    /// Writes `value` (a tombstone or a new entry) and tells other instances to drop
    /// their local copy of `key`.
    async fn write_shared(&self, keys: &[&str], value: &str, ttl: Duration) -> anyhow::Result<()> {
        let entries: Vec<(&str, &str)> = keys.iter().map(|k| (*k, value)).collect();
        match &self.l1 {
            Some(l1) => {
                let messages: Vec<String> = keys.iter().map(|k| l1.message(k)).collect();
                keys.iter().for_each(|k| l1.remove(k));
                self.store
                    .set_and_publish(&entries, ttl, l1.channel(), &messages)
                    .await
            }
            None => self.store.set_and_publish(&entries, ttl, "", &[]).await,
        }
    }

    /// The underlying store (for readiness checks).
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BreakerState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_open(&self) -> bool {
        self.lock().open_until.is_some_and(|t| Instant::now() < t)
    }

    fn trip(&self, err: &anyhow::Error) {
        tracing::warn!(error = %format!("{err:#}"), "store unreachable; bypassing caches");
        metrics::counter!("exchanger_store_errors_total").increment(1);
        self.lock().open_until = Some(Instant::now() + BREAKER_COOLDOWN);
    }

    /// Retries remembered invalidations; returns whether none is left.
    async fn flush_pending(&self) -> bool {
        let keys: Vec<String> = {
            let state = self.lock();
            if state.pending.is_empty() {
                return true;
            }
            state.pending.keys().cloned().collect()
        };
        if self.is_open() {
            return false;
        }
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        match self
            .write_shared(&refs, &new_tombstone(), TOMBSTONE_TTL)
            .await
        {
            Ok(()) => {
                let mut state = self.lock();
                keys.iter().for_each(|k| {
                    state.pending.remove(k);
                });
                true
            }
            Err(err) => {
                self.trip(&err);
                false
            }
        }
    }

    /// Reads a JSON entry; any failure is a miss. The token says what the store held, so
    /// that a refill after a database read can only replace exactly that.
    pub async fn get<T>(&self, key: &str) -> (Option<T>, FillToken)
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if !self.flush_pending().await && self.lock().pending.contains_key(key) {
            return (None, FillToken::NONE);
        }
        if self.is_open() {
            return (None, FillToken::NONE);
        }
        let epoch = match &self.l1 {
            Some(l1) => {
                if let Some((raw, decoded)) = l1.get(key) {
                    metrics::counter!("exchanger_cache_hits_total", "level" => "local")
                        .increment(1);
                    let value = match decoded.downcast_ref::<T>() {
                        Some(value) => Some(value.clone()),
                        None => serde_json::from_str(&raw).ok(),
                    };
                    return (value, FillToken(Some(Some(raw))));
                }
                l1.begin_read()
            }
            None => None,
        };
        match self.store.get(key).await {
            Ok(Some(raw)) if !is_tombstone(&raw) => match serde_json::from_str(&raw) {
                Ok(value) => {
                    metrics::counter!("exchanger_cache_hits_total", "level" => "store")
                        .increment(1);
                    let raw: Arc<str> = raw.into();
                    if let (Some(l1), Some(epoch)) = (&self.l1, epoch) {
                        let decoded: l1::Decoded = Arc::new(T::clone(&value));
                        l1.insert(key, raw.clone(), decoded, l1::TTL, epoch);
                    }
                    (Some(value), FillToken(Some(Some(raw))))
                }
                Err(err) => {
                    tracing::warn!(key, error = %err, "undecodable cache entry");
                    (None, FillToken(Some(Some(raw.into()))))
                }
            },
            Ok(seen) => {
                metrics::counter!("exchanger_cache_misses_total").increment(1);
                (None, FillToken(Some(seen.map(Into::into))))
            }
            Err(err) => {
                self.trip(&err);
                (None, FillToken::NONE)
            }
        }
    }

    /// Refills after a database read, only if the store still holds what `token` saw.
    /// A write in between (a new value or a fresh tombstone) makes the refill a no-op, so
    /// an old database read can never overwrite what a write left.
    pub async fn fill<T: Serialize>(&self, key: &str, token: FillToken, value: &T, ttl: Duration) {
        let FillToken(Some(expected)) = token else {
            return;
        };
        if self.is_open() || ttl.is_zero() || self.lock().pending.contains_key(key) {
            return;
        }
        let Ok(raw) = serde_json::to_string(value) else {
            return;
        };
        if let Err(err) = self.store.set_if(key, expected.as_deref(), &raw, ttl).await {
            self.trip(&err);
        }
    }

    /// Replaces the entry with the value a write just committed.
    pub async fn put<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        let Ok(raw) = serde_json::to_string(value) else {
            return self.invalidate(key).await;
        };
        if ttl.is_zero() {
            return self.invalidate(key).await;
        }
        if !self.is_open() {
            match self.write_shared(&[key], &raw, ttl).await {
                Ok(()) => return,
                Err(err) => self.trip(&err),
            }
        }
        if let Some(l1) = &self.l1 {
            l1.remove(key);
        }
        // The old value may still be in the store: treat it as invalidated until we can say so.
        self.lock().pending.insert(key.to_owned(), ());
    }

    /// Drops the entry (leaves a tombstone). Never fails: an unreachable store is retried.
    pub async fn invalidate(&self, key: &str) {
        self.invalidate_all([key.to_owned()]).await;
    }

    /// Drops several entries in one round trip (a tombstone each, and one message each to
    /// other instances). Never fails: an unreachable store is retried later.
    pub async fn invalidate_all(&self, keys: impl IntoIterator<Item = String>) {
        let keys: Vec<String> = keys.into_iter().collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        if let Some(l1) = &self.l1 {
            refs.iter().for_each(|k| l1.remove(k));
        }
        if !self.is_open() {
            match self
                .write_shared(&refs, &new_tombstone(), TOMBSTONE_TTL)
                .await
            {
                Ok(()) => return,
                Err(err) => self.trip(&err),
            }
        }
        let mut state = self.lock();
        for key in keys {
            state.pending.insert(key, ());
        }
    }

    /// Adds one to a counter with a window; falls back to this process's counter when the
    /// store is unreachable, so limits keep holding (per process) during an outage.
    pub async fn incr(&self, key: &str, window: Duration) -> (i64, Duration) {
        self.add(key, 1, window).await
    }

    /// Reads a counter and the time left in its window, without counting.
    pub async fn peek_counter(&self, key: &str, window: Duration) -> (i64, Duration) {
        self.add(key, 0, window).await
    }

    async fn add(&self, key: &str, delta: i64, window: Duration) -> (i64, Duration) {
        if !self.is_open() {
            match self.store.incr(key, delta, window).await {
                Ok(v) => return v,
                Err(err) => self.trip(&err),
            }
        }
        self.local
            .incr(key, delta, window)
            .await
            .unwrap_or((delta, window))
    }

    /// Resets a counter.
    pub async fn reset(&self, key: &str) {
        let _ = self.local.delete(key).await;
        if !self.is_open()
            && let Err(err) = self.store.delete(key).await
        {
            self.trip(&err);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_fill_only_replaces_what_its_reader_saw() {
        let cache = Cache::new(Arc::new(MemoryStore::new()));
        let ttl = Duration::from_secs(60);
        let (value, token) = cache.get::<i32>("k").await;
        assert_eq!(value, None);
        // A write lands between the reader's miss and its refill: the refill is dropped.
        cache.invalidate("k").await;
        cache.fill("k", token, &1, ttl).await;
        let (value, token) = cache.get::<i32>("k").await;
        assert_eq!(value, None);
        // A reader that saw the tombstone may replace it.
        cache.fill("k", token, &2, ttl).await;
        assert_eq!(cache.get::<i32>("k").await.0, Some(2));
        // A put replaces whatever is there; an older token cannot undo it.
        let (_, stale) = cache.get::<i32>("k").await;
        cache.put("k", &3, ttl).await;
        cache.fill("k", stale, &2, ttl).await;
        assert_eq!(cache.get::<i32>("k").await.0, Some(3));
    }
}
