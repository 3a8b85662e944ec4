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
    /// Begins attempt `id` (a sign-in) at `key`: admitted while the failures of the last
    /// `window` plus the attempts still in flight are fewer than `limit`. Atomic, so
    /// concurrent attempts can never get past the limit together.
    async fn attempt_begin(
        &self,
        key: &str,
        id: &str,
        limit: u32,
        window: Duration,
    ) -> anyhow::Result<Attempt>;
    /// Ends attempt `id`: remembered as a failure for `window` when `failed`, else
    /// forgotten.
    async fn attempt_end(
        &self,
        key: &str,
        id: &str,
        failed: bool,
        window: Duration,
    ) -> anyhow::Result<()>;
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

/// Whether an attempt may go on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Attempt {
    /// Go on (and end it with `attempt_end`).
    Admitted,
    /// Attempts in flight fill the limit: try again in a moment.
    Busy,
    /// Failures fill the limit; the oldest of them lapses after this long.
    Refused(Duration),
}

/// How long an attempt counts as in flight at most (a sign-in that never ended, because its
/// process died, stops counting after this).
pub const ATTEMPT_TTL: Duration = Duration::from_secs(30);

/// The rule of `attempt_begin` over the live entries of a key (`true` = a failure), with
/// each entry's time to live.
pub fn judge_attempt(entries: impl Iterator<Item = (bool, Duration)>, limit: u32) -> Attempt {
    let mut failure_lives: Vec<Duration> = Vec::new();
    let mut in_flight = 0u32;
    for (failed, left) in entries {
        if failed {
            failure_lives.push(left);
        } else {
            in_flight += 1;
        }
    }
    let failures = failure_lives.len() as u32;
    if failures >= limit {
        // The limit frees up when enough of the failures have lapsed.
        failure_lives.sort();
        let lapse = failure_lives[(failures - limit) as usize];
        return Attempt::Refused(lapse.max(Duration::from_secs(1)));
    }
    if failures + in_flight >= limit {
        return Attempt::Busy;
    }
    Attempt::Admitted
}

/// One attempt of the in-process store: its id, whether it failed, when it lapses.
type AttemptEntry = (String, bool, Instant);

/// The embedded default's store: a map with expiry times, in this process only.
#[derive(Default)]
pub struct MemoryStore {
    entries: Mutex<HashMap<String, Entry>>,
    /// Attempts per key.
    attempts: Mutex<HashMap<String, Vec<AttemptEntry>>>,
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

    async fn attempt_begin(
        &self,
        key: &str,
        id: &str,
        limit: u32,
        _window: Duration,
    ) -> anyhow::Result<Attempt> {
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if attempts.len() > 10_000 {
            attempts.retain(|_, list| list.iter().any(|(_, _, until)| *until > now));
        }
        let list = attempts.entry(key.to_owned()).or_default();
        list.retain(|(_, _, until)| *until > now);
        let verdict = judge_attempt(
            list.iter()
                .map(|(_, failed, until)| (*failed, *until - now)),
            limit,
        );
        if verdict == Attempt::Admitted {
            list.push((id.to_owned(), false, now + ATTEMPT_TTL));
        }
        Ok(verdict)
    }

    async fn attempt_end(
        &self,
        key: &str,
        id: &str,
        failed: bool,
        window: Duration,
    ) -> anyhow::Result<()> {
        let mut attempts = self.attempts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(list) = attempts.get_mut(key) {
            list.retain(|(other, _, _)| other != id);
            if failed {
                list.push((id.to_owned(), true, Instant::now() + window));
            }
        }
        Ok(())
    }

    async fn ping(&self) -> anyhow::Result<()> {
        Ok(())
    }
}
