//! `KvStore`: the small store interface under every cache, with a Redis implementation
//! (bb8-redis pool) and an in-process one for the embedded default (SPEC §1).

use anyhow::Context as _;
use async_trait::async_trait;
use bb8_redis::RedisConnectionManager;
use redis::aio::MultiplexedConnection;
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
    /// Sets each of `entries` (key, value) and, in the same round trip, publishes each
    /// of `messages` on `channel` (how other server instances learn that their local copy
    /// is stale). Stores without subscribers just set.
    async fn set_and_publish(
        &self,
        entries: &[(&str, &str)],
        ttl: Duration,
        _channel: &str,
        _messages: &[String],
    ) -> anyhow::Result<()> {
        for (key, value) in entries {
            self.set(key, value, ttl).await?;
        }
        Ok(())
    }
}

/// Redis behind a bb8 pool of multiplexed connections.
pub struct RedisStore {
    pool: bb8::Pool<Manager>,
}

/// bb8-redis's manager, plus a flag that retires a connection after an I/O error (the
/// stock manager never reports a multiplexed connection as broken, so a connection to a
/// restarted Redis would stay in the pool forever).
struct Manager(RedisConnectionManager);

/// A pooled connection and whether it has failed.
pub struct Conn {
    inner: MultiplexedConnection,
    broken: bool,
}

impl bb8::ManageConnection for Manager {
    type Connection = Conn;
    type Error = redis::RedisError;

    async fn connect(&self) -> Result<Conn, redis::RedisError> {
        Ok(Conn {
            inner: self.0.connect().await?,
            broken: false,
        })
    }

    async fn is_valid(&self, conn: &mut Conn) -> Result<(), redis::RedisError> {
        self.0.is_valid(&mut conn.inner).await
    }

    fn has_broken(&self, conn: &mut Conn) -> bool {
        conn.broken
    }
}

impl RedisStore {
    /// Builds the pool. Connections open lazily, so the server starts while Redis is down.
    pub fn new(url: &str, pool_size: u32) -> anyhow::Result<Self> {
        let manager =
            RedisConnectionManager::new(url).context("REDIS_URL is not a valid Redis URL")?;
        let pool = bb8::Pool::builder()
            .max_size(pool_size)
            .connection_timeout(Duration::from_millis(500))
            // A PING per checkout would double every round trip; broken connections are
            // retired through `has_broken` instead.
            .test_on_check_out(false)
            .build_unchecked(Manager(manager));
        Ok(Self { pool })
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> anyhow::Result<T> {
        let mut conn = self.pool.get().await.context("redis pool")?;
        let result = cmd.query_async::<T>(&mut conn.inner).await;
        if let Err(err) = &result
            && (err.is_io_error()
                || err.is_timeout()
                || err.is_connection_dropped()
                || err.is_unrecoverable_error())
        {
            conn.broken = true;
        }
        result.context("redis command")
    }
}

#[async_trait]
impl KvStore for RedisStore {
    async fn get(&self, key: &str) -> anyhow::Result<Option<String>> {
        self.query(redis::cmd("GET").arg(key)).await
    }

    async fn set(&self, key: &str, value: &str, ttl: Duration) -> anyhow::Result<()> {
        self.query(
            redis::cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(millis(ttl)),
        )
        .await
    }

    async fn set_if(
        &self,
        key: &str,
        expected: Option<&str>,
        value: &str,
        ttl: Duration,
    ) -> anyhow::Result<bool> {
        let set: i64 = match expected {
            None => {
                let reply: Option<String> = self
                    .query(
                        redis::cmd("SET")
                            .arg(key)
                            .arg(value)
                            .arg("PX")
                            .arg(millis(ttl))
                            .arg("NX"),
                    )
                    .await?;
                i64::from(reply.is_some())
            }
            Some(expected) => {
                self.query(
                    redis::cmd("EVAL")
                        .arg(SET_IF_EQUAL)
                        .arg(1)
                        .arg(key)
                        .arg(expected)
                        .arg(value)
                        .arg(millis(ttl)),
                )
                .await?
            }
        };
        Ok(set == 1)
    }

    async fn delete(&self, key: &str) -> anyhow::Result<()> {
        self.query::<i64>(redis::cmd("DEL").arg(key))
            .await
            .map(drop)
    }

    async fn incr(&self, key: &str, delta: i64, ttl: Duration) -> anyhow::Result<(i64, Duration)> {
        // INCRBY, start the window only if the key is new, then read what is left; atomically.
        let mut conn = self.pool.get().await.context("redis pool")?;
        let result: Result<(i64, i64, i64), _> = redis::pipe()
            .atomic()
            .cmd("INCRBY")
            .arg(key)
            .arg(delta)
            .cmd("PEXPIRE")
            .arg(key)
            .arg(millis(ttl))
            .arg("NX")
            .cmd("PTTL")
            .arg(key)
            .query_async(&mut conn.inner)
            .await;
        if result.is_err() {
            conn.broken = true;
        }
        let (count, _, left) = result.context("redis incr")?;
        Ok((count, Duration::from_millis(left.max(0) as u64)))
    }

    async fn set_and_publish(
        &self,
        entries: &[(&str, &str)],
        ttl: Duration,
        channel: &str,
        messages: &[String],
    ) -> anyhow::Result<()> {
        let mut pipe = redis::pipe();
        for (key, value) in entries {
            pipe.cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(millis(ttl))
                .ignore();
        }
        for message in messages {
            pipe.cmd("PUBLISH").arg(channel).arg(message).ignore();
        }
        let mut conn = self.pool.get().await.context("redis pool")?;
        let result: Result<(), _> = pipe.query_async(&mut conn.inner).await;
        if result.is_err() {
            conn.broken = true;
        }
        result.context("redis set + publish").map(drop)
    }

    async fn ping(&self) -> anyhow::Result<()> {
        let pong: String = self.query(&redis::cmd("PING")).await?;
        anyhow::ensure!(pong == "PONG", "unexpected PING reply {pong:?}");
        Ok(())
    }
}

/// Compare-and-set: `SET KEYS[1] ARGV[2] PX ARGV[3]` when it holds `ARGV[1]`.
const SET_IF_EQUAL: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 else return 0 end";

fn millis(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
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
