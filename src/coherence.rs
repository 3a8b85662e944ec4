//! One system, not one process (SPEC §1, §4): what keeps the caches and the `rateChanged`
//! subscribers of every process in step with the databases.
//!
//! A write records its [`Change`] in the outbox of its database, in its own transaction. After
//! the commit the writer applies it at once (cache entries dropped, the rate event published
//! and delivered) and forgets it; what could not be applied stays in the outbox. Every server
//! process replays the outbox: leftovers of writers that died, once a second; and everything,
//! before it trusts the store again after any store failure or stall (the store's
//! circuit breaker stays open until then). So a change made while Redis did not answer is
//! never served stale once Redis answers again, by any instance.
//!
//! Events cross processes on Redis's events channel; each process delivers each change once
//! (by id). On the embedded default the store lives inside the server, so a command-line
//! process asks the running server to replay the outbox, over a Unix socket in the data
//! folder, and waits for it.

use crate::cache::Cache;
use crate::cache::breaker::Breaker;
use crate::cache::keys::Keys;
use crate::cache::redis::RedisStore;
use crate::clock::{DateTime, now};
use crate::context::ApplicationContext;
use crate::domain::{Change, ExchangeRate, Recorded};
use crate::error::AppResult;
use std::collections::{HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::{broadcast, mpsc};
use uuid::Uuid;

/// How often leftover changes are looked for.
const POLL: Duration = Duration::from_secs(1);
/// Changes younger than this are their writer's to apply.
const WRITER_GRACE: chrono::Duration = chrono::Duration::seconds(1);
/// How many delivered change ids are remembered (to deliver each once).
const REMEMBERED: usize = 10_000;
/// How long a command-line process waits for the embedded server's replay.
const NOTIFY_WAIT: Duration = Duration::from_secs(5);

/// Which outbox a change is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outbox {
    /// `exchanger_identity`'s.
    Identity,
    /// `exchanger_web`'s.
    Web,
}

/// A database's outbox, as the adapters keep it.
#[async_trait::async_trait]
pub trait ChangeLog: Send + Sync {
    /// Records `change` on its own (not inside another write).
    async fn record(&self, change: Change) -> AppResult<Recorded>;
    /// Changes recorded up to `before`, oldest first.
    async fn pending(&self, before: DateTime) -> AppResult<Vec<Recorded>>;
    /// Forgets changes every cache and subscriber has seen.
    async fn forget(&self, ids: &[Uuid]) -> AppResult<()>;
}

/// Who applies changes after a commit.
#[derive(Clone, Debug)]
pub enum Applier {
    /// This process: its store is the one every server reads (Redis), or it is the server.
    Here,
    /// The embedded server whose socket this is (a command-line process on the embedded
    /// default, whose in-process store no server reads).
    Server(PathBuf),
}

/// The coherence of caches and subscribers across processes.
pub struct Coherence {
    identity: Arc<dyn ChangeLog>,
    web: Arc<dyn ChangeLog>,
    cache: Arc<Cache>,
    breaker: Arc<Breaker>,
    keys: Keys,
    redis: Option<Arc<RedisStore>>,
    applier: Applier,
    rates: broadcast::Sender<ExchangeRate>,
    delivered: Mutex<Remembered>,
    /// Events other processes published (Redis only), until `run` takes them.
    events: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

/// Ids of recently delivered changes.
#[derive(Default)]
struct Remembered {
    ids: HashSet<Uuid>,
    order: VecDeque<Uuid>,
}

impl Remembered {
    /// Remembers `id`; `false` when it was already there.
    fn insert(&mut self, id: Uuid) -> bool {
        if !self.ids.insert(id) {
            return false;
        }
        self.order.push_back(id);
        if self.order.len() > REMEMBERED
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        true
    }
}

/// An event as it crosses processes.
#[derive(serde::Serialize, serde::Deserialize)]
struct RateEvent {
    id: Uuid,
    rate: ExchangeRate,
}

impl Coherence {
    /// Coherence over both outboxes and `cache` (whose `breaker` it closes after a replay),
    /// publishing events on `redis` when there is one and hearing other processes' on
    /// `events`.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        identity: Arc<dyn ChangeLog>,
        web: Arc<dyn ChangeLog>,
        cache: Arc<Cache>,
        breaker: Arc<Breaker>,
        keys: Keys,
        redis: Option<Arc<RedisStore>>,
        applier: Applier,
        events: Option<mpsc::UnboundedReceiver<String>>,
    ) -> Self {
        let (rates, _) = broadcast::channel(256);
        Self {
            identity,
            web,
            cache,
            breaker,
            keys,
            redis,
            applier,
            rates,
            delivered: Mutex::default(),
            events: Mutex::new(events),
        }
    }

    /// New rates as they are set, through any process (the `rateChanged` subscription).
    pub fn subscribe_rates(&self) -> broadcast::Receiver<ExchangeRate> {
        self.rates.subscribe()
    }

    /// Applies changes just committed to `outbox`, and forgets those applied everywhere.
    pub async fn apply(&self, outbox: Outbox, changes: Vec<Recorded>) {
        if changes.is_empty() {
            return;
        }
        if let Applier::Server(socket) = &self.applier {
            if let Err(err) = notify_server(socket).await {
                tracing::debug!(error = %err, "no embedded server answered; it replays at start");
            }
            return;
        }
        let mut applied = Vec::with_capacity(changes.len());
        for recorded in &changes {
            if self.apply_one(recorded, false).await {
                applied.push(recorded.id);
            }
        }
        self.forget(outbox, &applied).await;
    }

    /// A change that needs no transaction of its own (a user's orders list went stale):
    /// applied now, and recorded in `outbox` only if that failed.
    pub async fn apply_or_record(&self, outbox: Outbox, change: Change) {
        let recorded = Recorded {
            id: Uuid::now_v7(),
            change,
        };
        if !matches!(self.applier, Applier::Here) || self.apply_one(&recorded, false).await {
            return;
        }
        let saved = self.log(outbox).record(recorded.change).await;
        if let Err(err) = saved {
            tracing::error!(error = ?err, "a change reached neither the store nor the outbox");
        }
    }

    /// The cache keys a change makes stale.
    fn stale_keys(&self, change: &Change) -> Vec<String> {
        match change {
            Change::SessionsChanged { sessions } => sessions
                .iter()
                .filter_map(|(ctx, hash)| {
                    let ctx = ctx.parse::<ApplicationContext>().ok()?;
                    Some(self.keys.for_context(ctx).session(hash))
                })
                .collect(),
            Change::UserChanged { user_id } => ApplicationContext::ALL
                .into_iter()
                .map(|ctx| self.keys.for_context(ctx).user(*user_id))
                .collect(),
            Change::RateSet { rate } => vec![
                self.keys.rate(&rate.from_currency, &rate.to_currency),
                self.keys.all_rates(),
            ],
            Change::OrdersChanged { user_id, at } => vec![
                self.keys.orders(*user_id),
                self.keys.daily_analytics(at.date_naive()),
            ],
        }
    }

    /// Applies one change; whether every process will have seen it. `replaying` writes to
    /// the store even while the breaker waits for this very replay.
    async fn apply_one(&self, recorded: &Recorded, replaying: bool) -> bool {
        let keys = self.stale_keys(&recorded.change);
        let mut reached = if replaying {
            self.cache.invalidate_in_store(&keys).await.is_ok()
        } else {
            self.cache.try_invalidate_all(keys).await
        };
        if let Change::RateSet { rate } = &recorded.change {
            self.deliver(recorded.id, rate.clone());
            if let Some(redis) = &self.redis {
                let event = RateEvent {
                    id: recorded.id,
                    rate: rate.clone(),
                };
                let published = match serde_json::to_string(&event) {
                    Ok(event) => redis.publish_event(&event).await,
                    Err(err) => Err(err.into()),
                };
                if let Err(err) = published {
                    tracing::debug!(error = %format!("{err:#}"), "rate event not published yet");
                    reached = false;
                }
            }
        }
        reached
    }

    /// Hands a rate to this process's subscribers, once per change.
    fn deliver(&self, id: Uuid, rate: ExchangeRate) {
        let first = self
            .delivered
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
        if first {
            // Nobody listening is fine.
            let _ = self.rates.send(rate);
        }
    }

    fn log(&self, outbox: Outbox) -> &dyn ChangeLog {
        match outbox {
            Outbox::Identity => self.identity.as_ref(),
            Outbox::Web => self.web.as_ref(),
        }
    }

    async fn forget(&self, outbox: Outbox, ids: &[Uuid]) {
        if ids.is_empty() {
            return;
        }
        let forgotten = self.log(outbox).forget(ids).await;
        if let Err(err) = forgotten {
            // They will be applied again (harmlessly) and forgotten then.
            tracing::warn!(error = ?err, "could not forget applied changes");
        }
    }

    /// Applies every change both outboxes hold (up to `before`), forcing them into the
    /// store when `replaying`; whether all of them were applied.
    async fn replay(&self, before: DateTime, replaying: bool) -> AppResult<bool> {
        let mut all = true;
        for outbox in [Outbox::Identity, Outbox::Web] {
            let changes = self.log(outbox).pending(before).await?;
            let mut applied = Vec::with_capacity(changes.len());
            for recorded in &changes {
                if self.apply_one(recorded, replaying).await {
                    applied.push(recorded.id);
                } else {
                    all = false;
                }
            }
            self.forget(outbox, &applied).await;
        }
        Ok(all)
    }

    /// Replays everything, then trusts the store again: what a process does before it reads
    /// the store after any failure (or at start).
    pub async fn resync(&self) -> anyhow::Result<()> {
        tokio::time::timeout(Duration::from_secs(1), self.cache.store().ping())
            .await
            .map_err(|_| anyhow::anyhow!("the store does not answer"))??;
        if !self
            .replay(now(), true)
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
        {
            anyhow::bail!("some changes could not be applied");
        }
        self.cache.flush_pending_now().await?;
        self.breaker.synced();
        tracing::info!("caches are in step with the databases");
        Ok(())
    }

    /// The server's loop: replays before trusting the store, picks up changes writers left
    /// behind, and hands events from other processes to this one's subscribers.
    pub async fn run(self: Arc<Self>) {
        let taken = self.events.lock().unwrap_or_else(|p| p.into_inner()).take();
        // Without Redis nothing arrives; the sender is kept so the channel stays open.
        let (_keep, idle) = mpsc::unbounded_channel();
        let mut events = taken.unwrap_or(idle);
        let mut tick = tokio::time::interval(POLL);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if self.breaker.needs_sync() {
                        if let Err(err) = self.resync().await {
                            tracing::debug!(error = %format!("{err:#}"), "not in step yet");
                        }
                    } else if let Err(err) = self.replay(now() - WRITER_GRACE, false).await {
                        tracing::warn!(error = ?err, "could not replay the outbox");
                    }
                }
                Some(event) = events.recv() => match serde_json::from_str::<RateEvent>(&event) {
                    Ok(event) => self.deliver(event.id, event.rate),
                    Err(err) => tracing::warn!(error = %err, "unreadable rate event"),
                },
            }
        }
    }

    /// Embedded default: serves replay requests of command-line processes on `socket` until
    /// the server stops.
    pub async fn serve_socket(self: Arc<Self>, socket: PathBuf) {
        // A socket left by a server that died is in the way; one that answers is not ours.
        if tokio::net::UnixStream::connect(&socket).await.is_ok() {
            tracing::warn!(socket = %socket.display(), "another server uses this data folder; command-line changes reach it, not this one");
            return;
        }
        let _ = std::fs::remove_file(&socket);
        let listener = match tokio::net::UnixListener::bind(&socket) {
            Ok(listener) => listener,
            Err(err) => {
                tracing::warn!(socket = %socket.display(), error = %err, "cannot listen for command-line changes");
                return;
            }
        };
        let _cleanup = RemoveOnDrop(socket);
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let coherence = self.clone();
            tokio::spawn(async move {
                let (read, mut write) = stream.into_split();
                let mut line = String::new();
                let asked =
                    tokio::time::timeout(NOTIFY_WAIT, BufReader::new(read).read_line(&mut line))
                        .await;
                if !matches!(asked, Ok(Ok(_))) || line.trim() != "sync" {
                    return;
                }
                let answer = match coherence.replay(now(), false).await {
                    Ok(_) => "ok\n",
                    Err(err) => {
                        tracing::warn!(error = ?err, "could not replay for the command line");
                        "error\n"
                    }
                };
                let _ = write.write_all(answer.as_bytes()).await;
            });
        }
    }
}

/// The socket of an embedded server, in its data folder.
pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join("exchanger.sock")
}

/// Asks the embedded server listening on `socket` to replay the outbox, and waits for it.
async fn notify_server(socket: &Path) -> anyhow::Result<()> {
    let exchange = async {
        let stream = tokio::net::UnixStream::connect(socket).await?;
        let (read, mut write) = stream.into_split();
        write.write_all(b"sync\n").await?;
        let mut answer = String::new();
        BufReader::new(read).read_line(&mut answer).await?;
        anyhow::ensure!(answer.trim() == "ok", "the server answered {answer:?}");
        Ok(())
    };
    tokio::time::timeout(NOTIFY_WAIT, exchange)
        .await
        .map_err(|_| anyhow::anyhow!("the server did not answer in time"))?
}

/// Removes the socket file when the server stops.
struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
