//! `KvStore`: the small store interface under every cache and counter, and `MemoryStore`,
//! the in-process implementation of the embedded default (SPEC §1). Redis is in `redis.rs`.

use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A key-value store with TTLs. Values are strings (JSON for structured entries).
#[async_trait]
pub trait KvStore: Send + Sync + 'static {
    /// The value of `key`, or `None` when absent or expired.
    async fn get(&self, key: &str) -> anyhow::Result<Option<String>>;
    /// Sets `key` to `value` for `ttl`, replacing any value.
    async fn set(&self, key: &str, value: &str, ttl: Duration) -> anyhow::Result<()>;
    /// Sets `key` only if it currently holds `expected` (`None`: does not exist); `true`
    /// when set. Atomic.
    async fn set_if(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
        ttl: Duration,
    ) -> anyhow::Result<bool>;
    /// Removes `key`.
    async fn delete(&self, key: &str) -> anyhow::Result<()>;
    /// Atomically adds `delta` (0 to read) to the counter at `key`, starting its `ttl` when
    /// it is created. Returns the new count and the time left before the counter resets.
    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> anyhow::Result<(i64, Duration)>;
    /// Checks that the store answers.
    async fn ping(&self) -> anyhow::Result<()>;
    /// Sets each of `entries` (key, value) for `ttl`: the write of a new value or a
    /// tombstone. A shared store also tells the other server instances that their local
    /// copies of these keys are stale.
    async fn set_many(&self, entries: &[(&str, &str)], ttl: Duration) -> anyhow::Result<()> {
        for (key, value) in entries {
            self.set(key, value, ttl).await?;
        }
        Ok(())
    }
}

/// The embedded default's store: a map with expiry times, in this process only.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
}

struct Entry {
    value: String,
    expires_at: Instant,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn with<R>(&self, f: impl FnOnce(&mut HashMap<String, Entry>, Instant) -> R) -> R {
        let mut map = self
            .entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let now = Instant::now();
        // Amortised purge keeps a long-running embedded server from growing without bound.
        if map.len() > 10_000 {
            map.retain(|_, e| e.expires_at > now);
        }
        f(&mut map, now)
    }
}

#[async_trait]
impl KvStore for MemoryStore {
    async fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        Ok(self.with(|map, now| match map.get(key) {
            Some(e) if e.expires_at > now => Some(e.value.clone()),
            Some(_) => {
                map.remove(key);
                None
            }
            None => None,
        }))
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> anyhow::Result<()> {
        self.with(|map, now| {
            map.insert(
                key.to_owned(),
                Entry {
                    value: value.to_owned(),
                    expires_at: now + ttl,
                },
            )
        });
        Ok(())
    }

    async fn set_if(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
        ttl: Duration,
    ) -> anyhow::Result<bool> {
        Ok(self.with(|map, now| {
            let current = map
                .get(key)
                .filter(|e| e.expires_at > now)
                .map(|e| e.value.as_str());
            if current != expected {
                return false;
            }
            map.insert(
                key.to_owned(),
                Entry {
                    value: value.to_owned(),
                    expires_at: now + ttl,
                },
            );
            true
        }))
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.with(|map, _| map.remove(key));
        Ok(())
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> anyhow::Result<(i64, Duration)> {
        self.with(|map, now| {
            let entry = map
                .entry(key.to_owned())
                .and_modify(|e| {
                    if e.expires_at <= now {
                        e.value = "0".into();
                        e.expires_at = now + ttl;
                    }
                })
                .or_insert_with(|| Entry {
                    value: "0".into(),
                    expires_at: now + ttl,
                });
            let count = entry.value.parse::<i64>().unwrap_or(0) + delta;
            entry.value = count.to_string();
            Ok((count, entry.expires_at.saturating_duration_since(now)))
        })
    }

    async fn ping(&self) -> anyhow::Result<()> {
        Ok(())
    }
}
