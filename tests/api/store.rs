//! The same conformance tests for both `KvStore` implementations.

use crate::helpers::{Backend, backend};
use exchanger::cache::redis::RedisStore;
use exchanger::cache::store::{KvStore, MemoryStore};
use std::time::{Duration, Instant};

fn stores() -> Vec<(&'static str, Box<dyn KvStore>)> {
    let mut stores: Vec<(&'static str, Box<dyn KvStore>)> =
        vec![("memory", Box::new(MemoryStore::new()))];
    if let Backend::Postgres { redis, .. } = backend() {
        stores.push((
            "redis",
            Box::new(RedisStore::new(&redis, 2).expect("redis store")),
        ));
    }
    stores
}

fn key(name: &str) -> String {
    format!("test-{}:{name}", uuid::Uuid::new_v4().simple())
}

/// Polls until `key` is gone, up to a deadline far beyond its TTL.
async fn wait_until_gone(store: &dyn KvStore, key: &str) -> Duration {
    let start = Instant::now();
    while store.get(key).await.unwrap().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{key} never expired"
        );
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    start.elapsed()
}

#[tokio::test]
async fn get_set_delete_behave_the_same_on_every_store() {
    let minute = Duration::from_secs(60);
    for (name, store) in stores() {
        let k = key("basic");
        assert_eq!(store.get(&k).await.unwrap(), None, "{name}");
        store.set(&k, "one", minute).await.unwrap();
        assert_eq!(
            store.get(&k).await.unwrap().as_deref(),
            Some("one"),
            "{name}"
        );
        // Compare-and-set: only the expected current value (or absence) is replaced.
        assert!(
            !store.set_if(&k, None, "two", minute).await.unwrap(),
            "{name}"
        );
        assert!(
            !store
                .set_if(&k, Some("other"), "two", minute)
                .await
                .unwrap(),
            "{name}"
        );
        assert_eq!(
            store.get(&k).await.unwrap().as_deref(),
            Some("one"),
            "{name}"
        );
        assert!(
            store.set_if(&k, Some("one"), "two", minute).await.unwrap(),
            "{name}"
        );
        assert_eq!(
            store.get(&k).await.unwrap().as_deref(),
            Some("two"),
            "{name}"
        );
        store.set(&k, "three", minute).await.unwrap();
        assert_eq!(
            store.get(&k).await.unwrap().as_deref(),
            Some("three"),
            "{name}"
        );
        store.delete(&k).await.unwrap();
        assert_eq!(store.get(&k).await.unwrap(), None, "{name}");
        assert!(
            store.set_if(&k, None, "four", minute).await.unwrap(),
            "{name}"
        );
        store.ping().await.unwrap();
    }
}

#[tokio::test]
async fn entries_expire_after_their_ttl_on_every_store() {
    for (name, store) in stores() {
        let k = key("ttl");
        store
            .set(&k, "v", Duration::from_millis(300))
            .await
            .unwrap();
        assert_eq!(store.get(&k).await.unwrap().as_deref(), Some("v"), "{name}");
        let gone_after = wait_until_gone(store.as_ref(), &k).await;
        assert!(
            gone_after < Duration::from_secs(5),
            "{name}: {gone_after:?}"
        );
        // An expired key counts as absent.
        let again = store
            .set_if(&k, None, "again", Duration::from_secs(60))
            .await;
        assert!(again.unwrap(), "{name}");
    }
}

#[tokio::test]
async fn counters_are_atomic_and_reset_after_their_window() {
    for (name, store) in stores() {
        let k = key("counter");
        let store: std::sync::Arc<dyn KvStore> = store.into();
        let mut tasks = Vec::new();
        for _ in 0..50 {
            let store = store.clone();
            let k = k.clone();
            tasks.push(tokio::spawn(async move {
                store
                    .incr(&k, 1, Duration::from_millis(800))
                    .await
                    .unwrap()
                    .0
            }));
        }
        let mut seen: Vec<i64> = Vec::new();
        for t in tasks {
            seen.push(t.await.unwrap());
        }
        seen.sort_unstable();
        assert_eq!(
            seen,
            (1..=50).collect::<Vec<_>>(),
            "{name}: every increment got its own value"
        );
        let (count, left) = store.incr(&k, 0, Duration::from_millis(800)).await.unwrap();
        assert_eq!(count, 50, "{name}");
        assert!(left <= Duration::from_millis(800), "{name}: {left:?}");
        wait_until_gone(store.as_ref(), &k).await;
        assert_eq!(
            store.incr(&k, 1, Duration::from_secs(5)).await.unwrap().0,
            1,
            "{name}"
        );
    }
}
