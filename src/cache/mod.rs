//! Caches over the store (SPEC §1): keys, the store interface, and `Cache`, the facade
//! every service uses. The facade only caches; counters live in `counters.rs`.
//!
//! Rules the facade enforces, so call sites cannot get them wrong:
//! - A read that fails, or that finds a tombstone, is a miss; the caller reads the database.
//! - A reader refills with `fill` (set-if-unchanged), a writer replaces with `put` or drops
//!   with `invalidate`, which leaves a short tombstone: a reader that read the database before
//!   the write cannot put the old value back afterwards.
//! - When the store is unreachable, an invalidation is remembered in this process and retried;
//!   until it lands, reads of that key are misses. So a session revoked while Redis was down
//!   is refused at once and stays refused when Redis returns with its old entry.
//! - After a failure the store is skipped for a moment (`breaker.rs`).

pub mod adapter;
pub mod breaker;
pub mod counters;
pub mod keys;
pub mod l1;
pub mod redis;
pub mod store;

use breaker::Breaker;
use l1::L1;
use serde::{Serialize, de::DeserializeOwned};
use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use store::KvStore;

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
#[derive(Clone, Debug)]
pub enum FillToken {
    /// Never fill: the store was unreachable or an invalidation of the key is pending.
    Never,
    /// The key was empty: fill only while it still is (also for an entry that cannot exist
    /// yet, such as a session just created).
    Absent,
    /// The key held this value (a tombstone or an undecodable entry): fill only while it
    /// still does.
    Holds(Arc<str>),
}

impl FillToken {
    fn expected(&self) -> Option<Option<&str>> {
        match self {
            Self::Never => None,
            Self::Absent => Some(None),
            Self::Holds(raw) => Some(Some(raw)),
        }
    }
}

/// The cache facade. Cheap to share (`Arc`).
pub struct Cache {
    store: Arc<dyn KvStore>,
    breaker: Arc<Breaker>,
    /// Keys whose invalidation could not reach the store yet.
    pending: Mutex<HashSet<String>>,
    /// Local copies in front of a shared store (Redis only).
    l1: Option<Arc<L1>>,
}

impl Cache {
    /// A facade over `store`, skipping it while `breaker` is open, with `l1` in front of it
    /// when the store is shared by several instances.
    pub fn new(store: Arc<dyn KvStore>, breaker: Arc<Breaker>, l1: Option<Arc<L1>>) -> Self {
        Self {
            store,
            breaker,
            pending: Mutex::new(HashSet::new()),
            l1,
        }
    }

    /// The underlying store (for readiness checks).
    pub fn store(&self) -> &Arc<dyn KvStore> {
        &self.store
    }

    fn pending(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.pending.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets each key to `value` in the store, unless the breaker skips it; `false` when
    /// the write did not land.
    async fn store_all(&self, keys: &[&str], value: &str, ttl: Duration) -> bool {
        if self.breaker.is_open() {
            return false;
        }
        let entries: Vec<(&str, &str)> = keys.iter().map(|k| (*k, value)).collect();
        match self.store.set_many(&entries, ttl).await {
            Ok(()) => true,
            Err(err) => {
                self.breaker.trip(&err);
                false
            }
        }
    }

    /// Writes `value` (a tombstone or a new entry) to each key, after dropping the local
    /// copies; when that fails the keys stay pending until a retry lands, since the store
    /// may still hold their old values. Whether it landed.
    async fn write(&self, keys: &[&str], value: &str, ttl: Duration) -> bool {
        if let Some(l1) = &self.l1 {
            keys.iter().for_each(|k| l1.remove(k));
        }
        let landed = self.store_all(keys, value, ttl).await;
        if !landed {
            let mut pending = self.pending();
            keys.iter().for_each(|k| {
                pending.insert((*k).to_owned());
            });
        }
        landed
    }

    /// Retries remembered invalidations; returns whether none is left.
    async fn flush_pending(&self) -> bool {
        let keys: Vec<String> = {
            let pending = self.pending();
            if pending.is_empty() {
                return true;
            }
            pending.iter().cloned().collect()
        };
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        if !self.store_all(&refs, &new_tombstone(), TOMBSTONE_TTL).await {
            return false;
        }
        let mut pending = self.pending();
        keys.iter().for_each(|k| {
            pending.remove(k);
        });
        true
    }

    /// Reads a JSON entry; any failure is a miss. The token says what the store held, so
    /// that a refill after a database read can only replace exactly that.
    pub async fn get<T>(&self, key: &str) -> (Option<T>, FillToken)
    where
        T: DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if !self.flush_pending().await && self.pending().contains(key) {
            return (None, FillToken::Never);
        }
        if self.breaker.is_open() {
            return (None, FillToken::Never);
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
                    return (value, FillToken::Holds(raw));
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
                    (Some(value), FillToken::Holds(raw))
                }
                Err(err) => {
                    tracing::warn!(key, error = %err, "undecodable cache entry");
                    (None, FillToken::Holds(raw.into()))
                }
            },
            Ok(Some(tombstone)) => {
                metrics::counter!("exchanger_cache_misses_total").increment(1);
                (None, FillToken::Holds(tombstone.into()))
            }
            Ok(None) => {
                metrics::counter!("exchanger_cache_misses_total").increment(1);
                (None, FillToken::Absent)
            }
            Err(err) => {
                self.breaker.trip(&err);
                (None, FillToken::Never)
            }
        }
    }

    /// Refills after a database read, only if the store still holds what `token` saw.
    /// A write in between (a new value or a fresh tombstone) makes the refill a no-op, so
    /// an old database read can never overwrite what a write left.
    pub async fn fill<T: Serialize>(&self, key: &str, token: FillToken, value: &T, ttl: Duration) {
        let Some(expected) = token.expected() else {
            return;
        };
        if self.breaker.is_open() || ttl.is_zero() || self.pending().contains(key) {
            return;
        }
        let Ok(raw) = serde_json::to_string(value) else {
            return;
        };
        if let Err(err) = self.store.set_if(key, expected, &raw, ttl).await {
            self.breaker.trip(&err);
        }
    }

    /// Replaces the entry with the value a write just committed.
    pub async fn put<T: Serialize>(&self, key: &str, value: &T, ttl: Duration) {
        match serde_json::to_string(value) {
            Ok(raw) if !ttl.is_zero() => {
                self.write(&[key], &raw, ttl).await;
            }
            _ => self.invalidate(key).await,
        }
    }

    /// Drops the entry (leaves a tombstone). Never fails: an unreachable store is retried.
    pub async fn invalidate(&self, key: &str) {
        self.invalidate_all([key.to_owned()]).await;
    }

    /// Drops several entries in one round trip (a tombstone each, and one announcement each
    /// to other instances). Never fails: an unreachable store is retried later.
    pub async fn invalidate_all(&self, keys: impl IntoIterator<Item = String>) {
        self.try_invalidate_all(keys).await;
    }

    /// `invalidate_all`, saying whether the store (and so every instance) has it now.
    pub async fn try_invalidate_all(&self, keys: impl IntoIterator<Item = String>) -> bool {
        let keys: Vec<String> = keys.into_iter().collect();
        let refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        self.write(&refs, &new_tombstone(), TOMBSTONE_TTL).await
    }

    /// Drops entries in the store even while the breaker is open: the replay that closes it.
    pub async fn invalidate_in_store(&self, keys: &[String]) -> anyhow::Result<()> {
        if let Some(l1) = &self.l1 {
            keys.iter().for_each(|k| l1.remove(k));
        }
        let tombstone = new_tombstone();
        let entries: Vec<(&str, &str)> = keys
            .iter()
            .map(|k| (k.as_str(), tombstone.as_str()))
            .collect();
        self.store.set_many(&entries, TOMBSTONE_TTL).await
    }

    /// Lands this process's pending invalidations in the store, even while the breaker is
    /// open (the replay that closes it).
    pub async fn flush_pending_now(&self) -> anyhow::Result<()> {
        let keys: Vec<String> = self.pending().iter().cloned().collect();
        if keys.is_empty() {
            return Ok(());
        }
        self.invalidate_in_store(&keys).await?;
        let mut pending = self.pending();
        keys.iter().for_each(|k| {
            pending.remove(k);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::MemoryStore;

    #[tokio::test]
    async fn a_fill_only_replaces_what_its_reader_saw() {
        let cache = Cache::new(
            Arc::new(MemoryStore::new()),
            Arc::new(Breaker::new(false)),
            None,
        );
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
