//! Redis, standalone (a bb8-redis pool) or a Redis Cluster (the `redis` crate's cluster
//! connection), behind one `KvStore`; and the pub/sub that ties server instances together:
//!
//! - every key a write changes is announced on the invalidation channel, so other instances
//!   drop their local copies (`l1.rs`); the write returns once its announcement has come back
//!   to this instance's own subscription, i.e. once Redis has delivered it to every instance;
//! - every instance publishes a heartbeat there and watches its own echo: a missing or late
//!   echo means Redis stalled, and anything may have been missed, so the local copies are
//!   dropped and the store's breaker stays open until the outbox has been replayed
//!   (`coherence.rs`);
//! - rate events cross instances on the events channel.
//!
//! Subscriptions use one node (any: a cluster broadcasts PUBLISH to every node), trying the
//! next one after a failure.

use super::breaker::Breaker;
use super::keys;
use super::l1::L1;
use super::store::{ATTEMPT_TTL, Attempt, KvStore, judge_attempt};
use anyhow::Context as _;
use async_trait::async_trait;
use bb8_redis::RedisConnectionManager;
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::cluster_async::ClusterConnection;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OnceCell, mpsc, oneshot};

/// How long a command may wait for Redis.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);
/// How often each instance publishes its heartbeat.
const HEARTBEAT: Duration = Duration::from_millis(200);
/// An echo later than this means Redis stalled for about as long as a command may wait
/// (`RESPONSE_TIMEOUT`): some write may have failed to reach it.
const LATE_ECHO: Duration = Duration::from_millis(300);
/// No echo for this long: Redis is stalled now.
const NO_ECHO: Duration = Duration::from_millis(600);
/// Longest a write waits for its announcement to come back (then the heartbeat decides).
const ANNOUNCEMENT_ECHO: Duration = Duration::from_millis(250);

/// Where Redis is.
#[derive(Clone, Debug)]
pub enum RedisTarget {
    /// One server (`REDIS_URL`).
    Standalone(String),
    /// A cluster, by some of its nodes (`REDIS_CLUSTER_NODES`).
    Cluster(Vec<String>),
}

impl From<&crate::config::Redis> for RedisTarget {
    fn from(redis: &crate::config::Redis) -> Self {
        use crate::config::{Redis, expose};
        match redis {
            Redis::Standalone(url) => Self::Standalone(expose(url).to_owned()),
            Redis::Cluster(nodes) => {
                Self::Cluster(nodes.iter().map(|n| expose(n).to_owned()).collect())
            }
        }
    }
}

impl RedisTarget {
    /// Connects once and sends `PING`: `Err` carries the cause in plain words (the pool
    /// would only say that it timed out).
    pub async fn probe(&self) -> Result<(), String> {
        let attempt = async {
            match self {
                Self::Standalone(url) => {
                    let client = redis::Client::open(url.as_str())?;
                    let mut conn = client.get_multiplexed_async_connection().await?;
                    redis::cmd("PING").query_async::<String>(&mut conn).await
                }
                Self::Cluster(urls) => {
                    let client = redis::cluster::ClusterClient::new(urls.clone())?;
                    let mut conn = client.get_async_connection().await?;
                    redis::cmd("PING").query_async::<String>(&mut conn).await
                }
            }
        };
        match tokio::time::timeout(RESPONSE_TIMEOUT * 4, attempt).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(err)) => Err(err.to_string()),
            Err(_) => Err(format!(
                "no answer within {} s",
                (RESPONSE_TIMEOUT * 4).as_secs_f32()
            )),
        }
    }

    /// The environment variable that names it.
    pub fn variable(&self) -> &'static str {
        match self {
            Self::Standalone(_) => "REDIS_URL",
            Self::Cluster(_) => "REDIS_CLUSTER_NODES",
        }
    }

    /// Where it is, for people (no passwords).
    pub fn describe(&self) -> String {
        let places: Vec<String> = self
            .urls()
            .iter()
            .map(|u| crate::config::describe_url(u))
            .collect();
        match self {
            Self::Standalone(_) => format!("Redis at {}", places.join(", ")),
            Self::Cluster(_) => format!("Redis Cluster at {}", places.join(", ")),
        }
    }

    fn urls(&self) -> Vec<String> {
        match self {
            Self::Standalone(url) => vec![url.clone()],
            Self::Cluster(urls) => urls.clone(),
        }
    }
}

/// Connects to Redis (lazily: the server starts while Redis is down) with local copies in
/// front of it, and spawns the listener that keeps them coherent. Events from other
/// instances go to `events`; a stall opens `breaker` until the outbox is replayed.
pub fn connect(
    target: &RedisTarget,
    pool_size: u32,
    key_prefix: &str,
    breaker: Arc<Breaker>,
    events: mpsc::UnboundedSender<String>,
) -> anyhow::Result<(Arc<RedisStore>, Arc<L1>)> {
    let store = Arc::new(RedisStore::with_channels(target, pool_size, key_prefix)?);
    let l1 = Arc::new(L1::default());
    let listener = Listener {
        urls: target.urls(),
        store: store.clone(),
        l1: l1.clone(),
        breaker,
        events,
    };
    tokio::spawn(listener.run());
    Ok((store, l1))
}

fn pool(url: &str, pool_size: u32) -> anyhow::Result<bb8::Pool<Manager>> {
    let manager = RedisConnectionManager::new(url).context("REDIS_URL is not a valid Redis URL")?;
    Ok(bb8::Pool::builder()
        .max_size(pool_size)
        .connection_timeout(RESPONSE_TIMEOUT)
        // A PING per checkout would double every round trip; broken connections are
        // retired through `has_broken` instead.
        .test_on_check_out(false)
        .build_unchecked(Manager(manager)))
}

/// Redis as the store of every instance.
pub struct RedisStore {
    conns: Conns,
    channels: Channels,
    /// This process's name on the channels.
    instance: String,
    /// Heartbeats sent and not yet echoed: sequence number, when sent.
    heartbeats: Mutex<VecDeque<(u64, Instant)>>,
    /// Whether the listener is subscribed (so announcements come back to it).
    listening: AtomicBool,
    /// Writes waiting for their announcement to come back, by announcement number.
    announced: Mutex<HashMap<u64, oneshot::Sender<()>>>,
    next_announcement: AtomicU64,
}

enum Conns {
    Pool(bb8::Pool<Manager>),
    /// Connected on first use (and again until that succeeds).
    Cluster(Box<(redis::cluster::ClusterClient, OnceCell<ClusterConnection>)>),
}

struct Channels {
    invalidations: String,
    events: String,
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

/// Whether an error means the connection cannot be trusted any more.
fn breaks_connection(err: &redis::RedisError) -> bool {
    err.is_io_error()
        || err.is_timeout()
        || err.is_connection_dropped()
        || err.is_unrecoverable_error()
}

impl RedisStore {
    /// A store without the channels' listener (tests of the store itself).
    pub fn new(target: &RedisTarget, pool_size: u32) -> anyhow::Result<Self> {
        Self::with_channels(target, pool_size, "")
    }

    fn with_channels(
        target: &RedisTarget,
        pool_size: u32,
        key_prefix: &str,
    ) -> anyhow::Result<Self> {
        let conns = match target {
            RedisTarget::Standalone(url) => Conns::Pool(pool(url, pool_size)?),
            RedisTarget::Cluster(urls) => {
                let client = redis::cluster::ClusterClientBuilder::new(urls.clone())
                    .connection_timeout(RESPONSE_TIMEOUT)
                    .response_timeout(RESPONSE_TIMEOUT)
                    .build()
                    .context("REDIS_CLUSTER_NODES is not a list of Redis URLs")?;
                Conns::Cluster(Box::new((client, OnceCell::new())))
            }
        };
        Ok(Self {
            conns,
            channels: Channels {
                invalidations: keys::invalidation_channel(key_prefix),
                events: keys::events_channel(key_prefix),
            },
            instance: uuid::Uuid::new_v4().simple().to_string(),
            heartbeats: Mutex::default(),
            listening: AtomicBool::new(false),
            announced: Mutex::default(),
            next_announcement: AtomicU64::new(0),
        })
    }

    async fn cluster(&self) -> anyhow::Result<ClusterConnection> {
        let Conns::Cluster(cluster) = &self.conns else {
            anyhow::bail!("BUG: not a cluster store");
        };
        let (client, conn) = cluster.as_ref();
        let conn = conn
            .get_or_try_init(|| async {
                tokio::time::timeout(RESPONSE_TIMEOUT * 4, client.get_async_connection())
                    .await
                    .map_err(|_| anyhow::anyhow!("no cluster node answered"))?
                    .context("cannot connect to the Redis Cluster")
            })
            .await?;
        Ok(conn.clone())
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> anyhow::Result<T> {
        match &self.conns {
            Conns::Pool(pool) => {
                let mut conn = pool.get().await.context("redis pool")?;
                let result = cmd.query_async::<T>(&mut conn.inner).await;
                if let Err(err) = &result
                    && breaks_connection(err)
                {
                    conn.broken = true;
                }
                result.context("redis command")
            }
            Conns::Cluster(_) => cmd
                .query_async::<T>(&mut self.cluster().await?)
                .await
                .context("redis cluster command"),
        }
    }

    async fn pipeline<T: redis::FromRedisValue>(
        &self,
        pipe: &redis::Pipeline,
    ) -> anyhow::Result<T> {
        match &self.conns {
            Conns::Pool(pool) => {
                let mut conn = pool.get().await.context("redis pool")?;
                let result = pipe.query_async::<T>(&mut conn.inner).await;
                if let Err(err) = &result
                    && breaks_connection(err)
                {
                    conn.broken = true;
                }
                result.context("redis pipeline")
            }
            Conns::Cluster(_) => pipe
                .query_async::<T>(&mut self.cluster().await?)
                .await
                .context("redis cluster pipeline"),
        }
    }

    /// Publishes a rate event to every instance.
    pub async fn publish_event(&self, event: &str) -> anyhow::Result<()> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&self.channels.events).arg(event);
        self.query::<i64>(&cmd).await.map(drop)
    }

    /// Publishes heartbeat `seq` on the invalidation channel.
    async fn heartbeat(&self, seq: u64) -> anyhow::Result<()> {
        self.heartbeats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back((seq, Instant::now()));
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(&self.channels.invalidations)
            .arg(format!("{} hb:{seq}", self.instance));
        self.query::<i64>(&cmd).await.map(drop)
    }

    /// How long ago heartbeat `seq` was sent (and forgets it and older ones).
    fn echo(&self, seq: u64) -> Option<Duration> {
        let mut sent = self.heartbeats.lock().unwrap_or_else(|p| p.into_inner());
        let mut latency = None;
        while let Some(&(s, at)) = sent.front() {
            if s > seq {
                break;
            }
            sent.pop_front();
            if s == seq {
                latency = Some(at.elapsed());
            }
        }
        latency
    }

    /// When the oldest heartbeat not yet echoed was sent.
    fn oldest_unanswered(&self) -> Option<Instant> {
        let sent = self.heartbeats.lock().unwrap_or_else(|p| p.into_inner());
        sent.front().map(|&(_, at)| at)
    }

    /// The sender name of an announcement to hear back, and what waits for it (when the
    /// listener is there to hear it).
    fn announcer(&self) -> (String, Option<Announcement>) {
        if !self.listening.load(Ordering::Acquire) {
            return (self.instance.clone(), None);
        }
        let n = self.next_announcement.fetch_add(1, Ordering::Relaxed);
        let (done, heard) = oneshot::channel();
        self.lock_announced().insert(n, done);
        (
            format!("{}#{n}", self.instance),
            Some(Announcement { n, heard }),
        )
    }

    fn lock_announced(&self) -> std::sync::MutexGuard<'_, HashMap<u64, oneshot::Sender<()>>> {
        self.announced.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// This instance's announcement `from` came back.
    fn heard(&self, from: &str) {
        let n = from
            .strip_prefix(self.instance.as_str())
            .and_then(|rest| rest.strip_prefix('#'))
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(done) = n.and_then(|n| self.lock_announced().remove(&n)) {
            let _ = done.send(());
        }
    }

    /// After a write that `sent`: waits (a bounded time) until its announcement came back, as
    /// Redis has then delivered it to every subscribed instance.
    async fn hear_back(&self, sent: bool, announcement: Option<Announcement>) {
        let Some(Announcement { n, heard }) = announcement else {
            return;
        };
        if !sent
            || tokio::time::timeout(ANNOUNCEMENT_ECHO, heard)
                .await
                .is_err()
        {
            self.lock_announced().remove(&n);
        }
    }

    fn forget_heartbeats(&self) {
        self.heartbeats
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}

/// A write's announcement that it waits to hear back.
struct Announcement {
    n: u64,
    heard: oneshot::Receiver<()>,
}

/// Marks the store's listener subscribed until dropped (then every waiting write goes on).
struct Listening<'a>(&'a RedisStore);

impl<'a> Listening<'a> {
    fn start(store: &'a RedisStore) -> Self {
        store.listening.store(true, Ordering::Release);
        Self(store)
    }
}

impl Drop for Listening<'_> {
    fn drop(&mut self) {
        self.0.listening.store(false, Ordering::Release);
        self.0.lock_announced().clear();
    }
}

/// The task that listens on both channels and watches the heartbeat.
struct Listener {
    urls: Vec<String>,
    store: Arc<RedisStore>,
    l1: Arc<L1>,
    breaker: Arc<Breaker>,
    events: mpsc::UnboundedSender<String>,
}

impl Listener {
    async fn run(self) {
        let mut next = 0usize;
        loop {
            let url = &self.urls[next % self.urls.len()];
            next += 1;
            if let Err(err) = self.listen(url).await {
                tracing::debug!(error = %format!("{err:#}"), "cache channel lost");
            }
            // Whatever was said while nobody listened is lost: no local copies, and no
            // trust in the store, until the outbox is replayed.
            self.l1.reset(false);
            self.store.forget_heartbeats();
            self.breaker.stalled();
            tokio::time::sleep(HEARTBEAT).await;
        }
    }

    async fn listen(&self, url: &str) -> anyhow::Result<()> {
        let client = redis::Client::open(url)?;
        let pubsub = tokio::time::timeout(RESPONSE_TIMEOUT * 2, client.get_async_pubsub())
            .await
            .map_err(|_| anyhow::anyhow!("timed out connecting"))??;
        let (mut sink, mut stream) = pubsub.split();
        let channels = [
            &self.store.channels.invalidations,
            &self.store.channels.events,
        ];
        tokio::time::timeout(RESPONSE_TIMEOUT, sink.subscribe(&channels))
            .await
            .map_err(|_| anyhow::anyhow!("timed out subscribing"))??;
        // Subscribed anew: what was missed before is the replay's business.
        self.breaker.stalled();
        self.l1.reset(true);
        let _listening = Listening::start(&self.store);
        let mut tick = tokio::time::interval(HEARTBEAT);
        let mut seq = 0u64;
        let mut beating = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                message = stream.next() => {
                    let Some(message) = message else {
                        anyhow::bail!("the channel closed");
                    };
                    let Ok(payload) = message.get_payload::<String>() else { continue };
                    if message.get_channel_name() == self.store.channels.events {
                        let _ = self.events.send(payload);
                        continue;
                    }
                    match payload.split_once(' ') {
                        Some((from, beat)) if from == self.store.instance => {
                            if let Some(seq) = beat.strip_prefix("hb:").and_then(|s| s.parse().ok())
                                && self.store.echo(seq).is_some_and(|latency| latency > LATE_ECHO)
                            {
                                anyhow::bail!("a heartbeat came back late: Redis stalled");
                            }
                        }
                        Some((from, _)) if from.starts_with(self.store.instance.as_str()) => {
                            self.store.heard(from);
                        }
                        Some((_, key)) if key.starts_with("hb:") => {}
                        Some((_, key)) => self.l1.remove(key),
                        None => self.l1.reset(true),
                    }
                }
                _ = tick.tick() => {
                    if self.store.oldest_unanswered().is_some_and(|at| at.elapsed() > NO_ECHO) {
                        anyhow::bail!("no heartbeat came back: Redis stalled");
                    }
                    seq += 1;
                    let store = self.store.clone();
                    beating.spawn(async move { store.heartbeat(seq).await });
                    while beating.try_join_next().is_some() {}
                }
            }
        }
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
        // INCRBY, start the window only if the key is new, then read what is left; atomically
        // (one key: one slot, also in a cluster).
        let mut pipe = redis::pipe();
        pipe.atomic()
            .cmd("INCRBY")
            .arg(key)
            .arg(delta)
            .cmd("PEXPIRE")
            .arg(key)
            .arg(millis(ttl))
            .arg("NX")
            .cmd("PTTL")
            .arg(key);
        let (count, _, left): (i64, i64, i64) = self.pipeline(&pipe).await?;
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
        if entries.is_empty() {
            return Ok(());
        }
        let set = |key: &str, value: &str| {
            let mut cmd = redis::cmd("SET");
            cmd.arg(key).arg(value).arg("PX").arg(millis(ttl));
            cmd
        };
        // The last announcement is the one to hear back: the channel keeps their order.
        let (announcer, announcement) = self.announcer();
        let mut announcements = redis::pipe();
        for (i, (key, _)) in entries.iter().enumerate() {
            let from = if i + 1 == entries.len() {
                announcer.as_str()
            } else {
                self.instance.as_str()
            };
            announcements
                .cmd("PUBLISH")
                .arg(&self.channels.invalidations)
                .arg(format!("{from} {key}"))
                .ignore();
        }
        let sent = match &self.conns {
            // One round trip: every SET and every announcement.
            Conns::Pool(_) => {
                let mut pipe = redis::pipe();
                for (key, value) in entries {
                    pipe.add_command(set(key, value)).ignore();
                }
                for cmd in announcements.cmd_iter() {
                    pipe.add_command(cmd.clone()).ignore();
                }
                self.pipeline::<()>(&pipe).await
            }
            // Keys of several slots cannot share a pipeline: one command each, at once; the
            // announcements (one channel) in one pipeline after them.
            Conns::Cluster(_) => {
                let set_all =
                    futures_util::future::try_join_all(entries.iter().map(|(key, value)| {
                        let cmd = set(key, value);
                        async move { self.query::<()>(&cmd).await }
                    }));
                match set_all.await {
                    Ok(_) => self.pipeline::<()>(&announcements).await,
                    Err(err) => Err(err),
                }
            }
        };
        self.hear_back(sent.is_ok(), announcement).await;
        sent
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
