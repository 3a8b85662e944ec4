//! The web stack (SPEC §1, the plan's `createWebStack`): every adapter and service of the
//! `web` context, built once per process. The composition root's data; it imports neither
//! `http` nor `graphql`, which use it.

use crate::cache::Cache;
use crate::cache::adapter::ContextualRedisAdapter;
use crate::cache::breaker::Breaker;
use crate::cache::counters::Counters;
use crate::cache::keys::Keys;
use crate::cache::redis::{self, RedisStore, RedisTarget};
use crate::cache::store::{KvStore, MemoryStore};
use crate::coherence::{Applier, Coherence, socket_path};
use crate::config::{Config, MailerKind, Storage};
use crate::db::{self, Databases};
use crate::domain::NewEvent;
use crate::identity::mailer::{DevMailer, LogMailer, Mailer, OutboxMailer};
use crate::identity::manager::AccountSecurity;
use crate::identity::secrets::SecretKey;
use crate::identity::throttle::Throttle;
use crate::identity::{ContextualIdentityAdapter, IdentityEvents, WebUserManager};
use crate::web::WebDatabaseAdapter;
use crate::web::analytics::AnalyticsService;
use crate::web::orders::OrderService;
use crate::web::payments::PaymentService;
use crate::web::rates::RateService;
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

/// Everything the web context needs, built once per process. Cheap to clone.
#[derive(Clone)]
pub struct WebStack {
    /// Configuration.
    pub config: Arc<Config>,
    /// Both databases.
    pub dbs: Databases,
    /// The cache facade over Redis or the in-process store.
    pub cache: Arc<Cache>,
    /// Key builder of this context.
    pub keys: Keys,
    /// Accounts and sessions.
    pub users: Arc<WebUserManager>,
    /// Exchange rates.
    pub rates: Arc<RateService>,
    /// Orders.
    pub orders: Arc<OrderService>,
    /// Payments.
    pub payments: Arc<PaymentService>,
    /// Analytics.
    pub analytics: Arc<AnalyticsService>,
    /// Caches and subscribers in step with the databases, across processes.
    pub coherence: Arc<Coherence>,
}

/// What a process built the stack for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// A server: it replays the outbox and listens for other processes' changes.
    Server,
    /// A command-line process: it writes and leaves, telling servers what changed.
    Command,
}

/// The store and what sits on it: the cache facade, the counters, the breaker they share,
/// and Redis's channels when there is Redis.
pub struct Stores {
    /// The cache facade.
    pub cache: Arc<Cache>,
    /// Rate-limit counters.
    pub counters: Arc<Counters>,
    /// The circuit breaker of the store.
    pub breaker: Arc<Breaker>,
    /// Redis, for events across instances.
    pub redis: Option<Arc<RedisStore>>,
    /// Events other instances published (taken by the coherence loop).
    pub events: Mutex<Option<mpsc::UnboundedReceiver<String>>>,
}

impl Stores {
    /// A cache and counters over `store`, with no local copies and no channels (the
    /// embedded default's in-process store, or another context's view of a shared store).
    pub fn over(store: Arc<dyn KvStore>, role: Role) -> Self {
        let breaker = Arc::new(Breaker::new(role == Role::Server));
        Self {
            cache: Arc::new(Cache::new(store.clone(), breaker.clone(), None)),
            counters: Arc::new(Counters::new(store, breaker.clone())),
            breaker,
            redis: None,
            events: Mutex::new(None),
        }
    }

    /// The stores the configuration asks for: the in-process store for the embedded
    /// default, else Redis (or a Redis Cluster) with local copies kept coherent by pub/sub.
    /// A Redis that does not answer is a warning (the server serves from the databases
    /// until it does), or an error with `REDIS_REQUIRED`.
    pub async fn create(config: &Config, role: Role) -> anyhow::Result<Self> {
        match &config.storage {
            Storage::Embedded { .. } => Ok(Self::over(Arc::new(MemoryStore::new()), role)),
            Storage::External { redis, .. } => {
                let target = RedisTarget::from(redis);
                if let Err(cause) = target.probe().await {
                    let (variable, place) = (target.variable(), target.describe());
                    if config.redis_required {
                        anyhow::bail!(
                            "{variable}: {place} does not answer: {cause} (REDIS_REQUIRED is set)"
                        );
                    }
                    let going_on = match role {
                        Role::Server => "serving from the databases until it answers",
                        Role::Command => "writing anyway; servers catch up from the databases",
                    };
                    tracing::warn!("{variable}: {place} does not answer: {cause}; {going_on}");
                }
                Self::redis(&target, config.redis_pool_size, &config.key_prefix, role)
            }
        }
    }

    /// Stores over Redis at `target`.
    pub fn redis(
        target: &RedisTarget,
        pool_size: u32,
        key_prefix: &str,
        role: Role,
    ) -> anyhow::Result<Self> {
        let breaker = Arc::new(Breaker::new(role == Role::Server));
        let (events_tx, events) = mpsc::unbounded_channel();
        let (store, l1) =
            redis::connect(target, pool_size, key_prefix, breaker.clone(), events_tx)?;
        Ok(Self {
            cache: Arc::new(Cache::new(store.clone(), breaker.clone(), Some(l1))),
            counters: Arc::new(Counters::new(store.clone(), breaker.clone())),
            breaker,
            redis: Some(store),
            events: Mutex::new(Some(events)),
        })
    }
}

/// The plan's `createWebStack`: connects, migrates and wires the web context of a server.
pub async fn create_web_stack(config: &Config) -> anyhow::Result<WebStack> {
    create_web_stack_for(config, Role::Server).await
}

/// The mailer the configuration asks for.
pub fn mailer(config: &Config) -> Arc<dyn Mailer> {
    match config.mailer {
        MailerKind::Dev => Arc::new(DevMailer::new(config.mail_dir.clone())),
        MailerKind::Log => Arc::new(LogMailer),
        MailerKind::Outbox => Arc::new(OutboxMailer::default()),
    }
}

/// `create_web_stack` for a server or a command-line process.
pub async fn create_web_stack_for(config: &Config, role: Role) -> anyhow::Result<WebStack> {
    let dbs = db::connect(config).await?;
    db::migrate(&dbs).await?;
    let stores = Stores::create(config, role).await?;
    assemble_web_stack(config, dbs, stores, mailer(config), role)
}

/// Wires the web context over existing connections (tests reuse it to build a second
/// context over the same databases and store). A server needs the secret key
/// (`SECRET_KEY`, or the embedded default's generated one); a command-line process uses it
/// when there is one.
pub fn assemble_web_stack(
    config: &Config,
    dbs: Databases,
    stores: Stores,
    mailer: Arc<dyn Mailer>,
    role: Role,
) -> anyhow::Result<WebStack> {
    let key = match role {
        Role::Server => Some(Arc::new(SecretKey::load(config)?)),
        Role::Command => SecretKey::load(config).ok().map(Arc::new),
    };
    let Stores {
        cache,
        counters,
        breaker,
        redis,
        events,
    } = stores;
    let keys = Keys::new(config.key_prefix.clone(), config.app_context);
    let web = WebDatabaseAdapter::new(dbs.web.clone());
    let identity = ContextualIdentityAdapter::new(dbs.identity.clone(), config.app_context);
    let applier = match (&config.storage, role) {
        (Storage::Embedded { data_dir }, Role::Command) => Applier::Server(socket_path(data_dir)),
        _ => Applier::Here,
    };
    let coherence = Arc::new(Coherence::new(
        Arc::new(db::Outbox(dbs.identity.clone())),
        Arc::new(db::Outbox(dbs.web.clone())),
        cache.clone(),
        breaker,
        keys.clone(),
        redis,
        applier,
        events.into_inner().unwrap_or_else(|p| p.into_inner()),
    ));
    let analytics = Arc::new(AnalyticsService::new(
        web.clone(),
        cache.clone(),
        keys.clone(),
    ));
    let users = Arc::new(WebUserManager::new(
        identity,
        ContextualRedisAdapter::new(cache.clone(), keys.clone()),
        Throttle::new(
            counters,
            keys.clone(),
            config.login_limits,
            config.signup_limits,
        ),
        mailer,
        analytics.clone(),
        coherence.clone(),
        AccountSecurity {
            key,
            config: config.security.clone(),
        },
    ));
    let rates = Arc::new(RateService::new(
        web.clone(),
        cache.clone(),
        keys.clone(),
        coherence.clone(),
    ));
    let orders = Arc::new(OrderService::new(
        web.clone(),
        cache.clone(),
        keys.clone(),
        coherence.clone(),
        rates.clone(),
        config.payment_window,
    ));
    let payments = Arc::new(PaymentService::new(web, orders.clone()));
    Ok(WebStack {
        config: Arc::new(config.clone()),
        dbs,
        cache,
        keys,
        users,
        rates,
        orders,
        payments,
        analytics,
        coherence,
    })
}

/// Identity's key actions go to the web database's `analytics_events`.
#[async_trait::async_trait]
impl IdentityEvents for AnalyticsService {
    async fn record(&self, event: NewEvent) {
        AnalyticsService::record(self, event).await;
    }
}
