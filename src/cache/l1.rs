//! A short-lived in-process copy of hot store entries (sessions, users, rates) in front of
//! Redis, kept coherent across server instances by Redis pub/sub (`redis.rs` listens).
//!
//! Why: one Redis round trip per request costs most of a small request's time. The rules:
//! - The L1 is used only while this process is subscribed to the invalidation channel;
//!   on any disconnect it is emptied and bypassed until the subscription is back.
//! - Every invalidation or replacement removes the local copy at once and publishes the key,
//!   so other instances drop theirs within the pub/sub latency.
//! - A read that raced with an invalidation does not insert its (possibly old) value: an
//!   epoch counter, bumped on every removal, must be unchanged between read and insert.
//! - Entries live at most `TTL` anyway.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longest life of a local copy.
pub const TTL: Duration = Duration::from_secs(5);
/// Entries kept at most (then the map is emptied).
const MAX_ENTRIES: usize = 100_000;

/// A decoded value, of whatever type its key holds.
pub type Decoded = Arc<dyn std::any::Any + Send + Sync>;

struct Entry {
    raw: Arc<str>,
    value: Decoded,
    expires_at: Instant,
}

/// The local copy. Unused until the listener reports a subscription.
#[derive(Default)]
pub struct L1 {
    map: Mutex<HashMap<String, Entry>>,
    epoch: AtomicU64,
    subscribed: AtomicBool,
}

impl L1 {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The epoch to hand back to `insert`, or `None` while the L1 is not usable.
    pub fn begin_read(&self) -> Option<u64> {
        self.subscribed
            .load(Ordering::Acquire)
            .then(|| self.epoch.load(Ordering::Acquire))
    }

    /// A fresh local copy of `key`: its stored form and its decoded value.
    pub fn get(&self, key: &str) -> Option<(Arc<str>, Decoded)> {
        if !self.subscribed.load(Ordering::Acquire) {
            return None;
        }
        let map = self.lock();
        map.get(key)
            .filter(|e| e.expires_at > Instant::now())
            .map(|e| (e.raw.clone(), e.value.clone()))
    }

    /// Keeps `raw` (and its decoded `value`, so hits skip decoding) for `key`, unless
    /// something was invalidated since `epoch`.
    pub fn insert(&self, key: &str, raw: Arc<str>, value: Decoded, ttl: Duration, epoch: u64) {
        let mut map = self.lock();
        // Checked under the map lock, which `remove` also takes: no removal can slip between.
        if self.epoch.load(Ordering::Acquire) != epoch || !self.subscribed.load(Ordering::Acquire) {
            return;
        }
        if map.len() >= MAX_ENTRIES {
            map.clear();
        }
        let expires_at = Instant::now() + ttl.min(TTL);
        map.insert(
            key.to_owned(),
            Entry {
                raw,
                value,
                expires_at,
            },
        );
    }

    /// Drops the local copy of `key`.
    pub fn remove(&self, key: &str) {
        let mut map = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.remove(key);
    }

    /// Empties the copy and marks it usable (`subscribed`) or bypassed.
    pub fn reset(&self, subscribed: bool) {
        let mut map = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.clear();
        self.subscribed.store(subscribed, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribed() -> L1 {
        let l1 = L1::default();
        l1.reset(true);
        l1
    }

    #[test]
    fn a_read_that_raced_an_invalidation_is_not_kept() {
        let l1 = subscribed();
        let epoch = l1.begin_read().unwrap();
        l1.remove("k");
        l1.insert("k", "old".into(), Arc::new(1), TTL, epoch);
        assert!(l1.get("k").is_none());
        let epoch = l1.begin_read().unwrap();
        l1.insert("k", "new".into(), Arc::new(2), TTL, epoch);
        assert_eq!(l1.get("k").map(|(raw, _)| raw).as_deref(), Some("new"));
    }

    #[test]
    fn nothing_is_served_while_unsubscribed() {
        let l1 = subscribed();
        let epoch = l1.begin_read().unwrap();
        l1.insert("k", "v".into(), Arc::new(3), TTL, epoch);
        l1.reset(false);
        assert!(l1.get("k").is_none());
        assert!(l1.begin_read().is_none());
    }
}
