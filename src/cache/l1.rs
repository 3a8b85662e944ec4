//! A short-lived in-process copy of hot store entries (sessions, users, rates) in front of
//! Redis, kept coherent across server instances by Redis pub/sub.
//!
//! Why: one Redis round trip per request costs most of a small request's time. The rules:
//! - The L1 is used only while this process is subscribed to the invalidation channel;
//!   on any disconnect it is emptied and bypassed until the subscription is back.
//! - Every invalidation or replacement removes the local copy at once and publishes the key,
//!   so other instances drop theirs within the pub/sub latency.
//! - A read that raced with an invalidation does not insert its (possibly old) value: an
//!   epoch counter, bumped on every removal, must be unchanged between read and insert.
//! - Entries live at most `TTL` anyway.

use futures_util::StreamExt;
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

/// The local copy.
pub struct L1 {
    map: Mutex<HashMap<String, Entry>>,
    epoch: AtomicU64,
    subscribed: AtomicBool,
    instance: String,
    channel: String,
}

impl L1 {
    /// An L1 publishing and listening on `channel` (`keys::invalidation_channel`).
    pub fn new(channel: String) -> Self {
        Self {
            map: Mutex::new(HashMap::new()),
            epoch: AtomicU64::new(0),
            subscribed: AtomicBool::new(false),
            instance: uuid::Uuid::new_v4().simple().to_string(),
            channel,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The invalidation channel.
    pub fn channel(&self) -> &str {
        &self.channel
    }

    /// The message telling other instances to drop `key`.
    pub fn message(&self, key: &str) -> String {
        format!("{} {key}", self.instance)
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

    fn reset(&self, subscribed: bool) {
        let mut map = self.lock();
        self.epoch.fetch_add(1, Ordering::AcqRel);
        map.clear();
        self.subscribed.store(subscribed, Ordering::Release);
    }

    /// Listens for invalidations from other instances until the process ends, reconnecting
    /// after failures. Spawned once by `startup`.
    pub async fn listen(self: Arc<Self>, client: redis::Client) {
        loop {
            match client.get_async_pubsub().await {
                Ok(mut pubsub) => match pubsub.subscribe(&self.channel).await {
                    Ok(()) => {
                        self.reset(true);
                        let mut messages = pubsub.on_message();
                        while let Some(msg) = messages.next().await {
                            let Ok(payload) = msg.get_payload::<String>() else {
                                continue;
                            };
                            match payload.split_once(' ') {
                                Some((from, _)) if from == self.instance => {}
                                Some((_, key)) => self.remove(key),
                                None => self.reset(true),
                            }
                        }
                        tracing::warn!("cache invalidation channel closed; local cache off");
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot subscribe to cache invalidations")
                    }
                },
                Err(err) => tracing::debug!(error = %err, "cannot connect for cache invalidations"),
            }
            self.reset(false);
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribed() -> L1 {
        let l1 = L1::new("test".into());
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
