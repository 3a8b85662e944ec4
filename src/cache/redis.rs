//! Redis: `RedisStore` (a bb8-redis pool) and the pub/sub channel that keeps the local
//! copies (`l1.rs`) of several server instances coherent. The channel is Redis's business
//! alone: a write through `set_many` announces its keys, and `connect` spawns the listener
//! that drops what other instances announce.

use super::keys;
use super::l1::L1;
use super::store::{ATTEMPT_TTL, Attempt, KvStore, judge_attempt};
use anyhow::Context as _;
use async_trait::async_trait;
use bb8_redis::RedisConnectionManager;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use std::sync::Arc;
use std::time::Duration;

/// A Redis store with local copies in front of it: the store announces every key it
/// writes on the invalidation channel, and a spawned task drops the local copy of every key
/// other instances announce.
pub fn connect(
    url: &str,
    pool_size: u32,
    key_prefix: &str,
) -> anyhow::Result<(Arc<RedisStore>, Arc<L1>)> {
    let announce = Announce {
        channel: keys::invalidation_channel(key_prefix),
        instance: uuid::Uuid::new_v4().simple().to_string(),
    };
    let l1 = Arc::new(L1::default());
    let client = redis::Client::open(url).context("REDIS_URL is not a valid Redis URL")?;
    tokio::spawn(listen(
        l1.clone(),
        client,
        announce.channel.clone(),
        announce.instance.clone(),
    ));
    let mut store = RedisStore::new(url, pool_size)?;
    store.announce = Some(announce);
    Ok((Arc::new(store), l1))
}

/// Drops local copies that other instances announce, until the process ends, reconnecting
/// after failures. While not subscribed the local copies are emptied and bypassed.
async fn listen(l1: Arc<L1>, client: redis::Client, channel: String, instance: String) {
    loop {
        match client.get_async_pubsub().await {
            Ok(mut pubsub) => match pubsub.subscribe(&channel).await {
                Ok(()) => {
                    l1.reset(true);
                    let mut messages = pubsub.on_message();
                    while let Some(msg) = messages.next().await {
                        let Ok(payload) = msg.get_payload::<String>() else {
                            continue;
                        };
                        match payload.split_once(' ') {
                            Some((from, _)) if from == instance => {}
                            Some((_, key)) => l1.remove(key),
                            None => l1.reset(true),
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
        l1.reset(false);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Redis behind a bb8 pool of multiplexed connections.
pub struct RedisStore {
    pool: bb8::Pool<Manager>,
    /// Where writes announce the keys they changed, when local copies are in use.
    announce: Option<Announce>,
}

/// The invalidation channel of the local copies, and this process's name on it.
struct Announce {
    channel: String,
    instance: String,
}

impl Announce {
    /// The message telling other instances to drop `key`.
    fn message(&self, key: &str) -> String {
        format!("{} {key}", self.instance)
    }
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
        Ok(Self {
            pool,
            announce: None,
        })
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

    async fn attempt_begin(
        &self,
        key: &str,
        id: &str,
        limit: u32,
        window: Duration,
    ) -> anyhow::Result<Attempt> {
        // Atomically: drop lapsed entries, return the live ones (member, ms left), and add
        // this attempt when the rule admits it. The rule itself is `judge_attempt`, shared
        // with the in-process store; the script re-checks the count it needs.
        let live: Vec<(String, i64)> = self
            .query(
                redis::cmd("EVAL")
                    .arg(ATTEMPT_BEGIN)
                    .arg(1)
                    .arg(key)
                    .arg(id)
                    .arg(limit)
                    .arg(millis(ATTEMPT_TTL))
                    .arg(millis(window)),
            )
            .await?;
        let entries = live
            .iter()
            .filter(|(member, _)| member != &format!("p:{id}"));
        let verdict = judge_attempt(
            entries.map(|(member, left)| {
                (
                    member.starts_with("f:"),
                    Duration::from_millis(u64::try_from(*left).unwrap_or(0)),
                )
            }),
            limit,
        );
        Ok(verdict)
    }

    async fn attempt_end(
        &self,
        key: &str,
        id: &str,
        failed: bool,
        window: Duration,
    ) -> anyhow::Result<()> {
        self.query::<i64>(
            redis::cmd("EVAL")
                .arg(ATTEMPT_END)
                .arg(1)
                .arg(key)
                .arg(id)
                .arg(i64::from(failed))
                .arg(millis(window)),
        )
        .await
        .map(drop)
    }

    async fn set_many(&self, entries: &[(&str, &str)], ttl: Duration) -> anyhow::Result<()> {
        let mut pipe = redis::pipe();
        for (key, value) in entries {
            pipe.cmd("SET")
                .arg(key)
                .arg(value)
                .arg("PX")
                .arg(millis(ttl))
                .ignore();
        }
        if let Some(announce) = &self.announce {
            for (key, _) in entries {
                pipe.cmd("PUBLISH")
                    .arg(&announce.channel)
                    .arg(announce.message(key))
                    .ignore();
            }
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

/// Attempts live in a sorted set scored by when they lapse (`p:<id>` in flight, `f:<id>` a
/// failure), in Redis's own clock so every instance agrees. Returns the live entries with
/// the milliseconds each has left; adds `p:ARGV[1]` when fewer than `ARGV[2]` are live.
const ATTEMPT_BEGIN: &str = "local t = redis.call('TIME') \
     local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) \
     redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now) \
     local live = redis.call('ZRANGE', KEYS[1], 0, -1, 'WITHSCORES') \
     local out = {} \
     for i = 1, #live, 2 do out[#out + 1] = {live[i], tonumber(live[i + 1]) - now} end \
     if #out < tonumber(ARGV[2]) then \
       redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), 'p:' .. ARGV[1]) \
       if redis.call('PTTL', KEYS[1]) < tonumber(ARGV[4]) then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end \
       out[#out + 1] = {'p:' .. ARGV[1], tonumber(ARGV[3])} \
     end \
     return out";

/// Ends attempt `ARGV[1]`; when `ARGV[2]` is 1 it stays as a failure for `ARGV[3]` ms.
const ATTEMPT_END: &str = "redis.call('ZREM', KEYS[1], 'p:' .. ARGV[1]) \
     if ARGV[2] == '1' then \
       local t = redis.call('TIME') \
       local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) \
       redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), 'f:' .. ARGV[1]) \
       redis.call('PEXPIRE', KEYS[1], ARGV[3]) \
     end \
     return 1";

/// Compare-and-set: `SET KEYS[1] ARGV[2] PX ARGV[3]` when it holds `ARGV[1]`.
const SET_IF_EQUAL: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
     redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 else return 0 end";

fn millis(ttl: Duration) -> u64 {
    (ttl.as_millis() as u64).max(1)
}
