//! The web stack (SPEC §1, the plan's `createWebStack`): every adapter and service of the
//! `web` context, built once per process. The composition root's data; it imports neither
//! `http` nor `graphql`, which use it.

use crate::cache::adapter::ContextualRedisAdapter;
use crate::cache::breaker::Breaker;
use crate::cache::counters::Counters;
use crate::cache::keys::Keys;
use crate::cache::l1::L1;
use crate::cache::store::{KvStore, MemoryStore};
use crate::cache::{Cache, redis};
use crate::config::{Config, Storage, expose};
use crate::db::{self, Databases};
use crate::domain::NewEvent;
use crate::identity::mailer::{Mailer, OutboxMailer};
use crate::identity::throttle::Throttle;
use crate::identity::{ContextualIdentityAdapter, IdentityEvents, WebUserManager};
use crate::web::WebDatabaseAdapter;
use crate::web::analytics::AnalyticsService;
use crate::web::orders::OrderService;
use crate::web::payments::PaymentService;
use crate::web::rates::RateService;
use std::sync::Arc;

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
}

/// The store and what sits on it: the cache facade and the counters.
#[derive(Clone)]
pub struct Stores {
    /// The cache facade.
    pub cache: Arc<Cache>,
    /// Rate-limit counters.
    pub counters: Arc<Counters>,
}

impl Stores {
    /// A cache and counters over `store`, sharing one circuit breaker, with local copies
    /// `l1` in front when the store is shared by several instances.
    pub fn over(store: Arc<dyn KvStore>, l1: Option<Arc<L1>>) -> Self {
        let breaker = Arc::new(Breaker::default());
        Self {
            cache: Arc::new(Cache::new(store.clone(), breaker.clone(), l1)),
            counters: Arc::new(Counters::new(store, breaker)),
        }
    }

    /// The stores the configuration asks for: the in-process store for the embedded
    /// default, else Redis with local copies kept coherent by pub/sub.
    pub fn create(config: &Config) -> anyhow::Result<Self> {
        match &config.storage {
            Storage::Embedded { .. } => Ok(Self::over(Arc::new(MemoryStore::new()), None)),
            Storage::External { redis_url, .. } => Self::redis(
                expose(redis_url),
                config.redis_pool_size,
                &config.key_prefix,
            ),
        }
    }

    /// Stores over the Redis at `url` (a bb8 pool of `pool_size`).
    pub fn redis(url: &str, pool_size: u32, key_prefix: &str) -> anyhow::Result<Self> {
        let (store, l1) = redis::connect(url, pool_size, key_prefix)?;
        Ok(Self::over(store, Some(l1)))
    }
}

/// The plan's `createWebStack`: connects, migrates and wires the web context.
pub async fn create_web_stack(config: &Config) -> anyhow::Result<WebStack> {
    let dbs = db::connect(config).await?;
    db::migrate(&dbs).await?;
    let stores = Stores::create(config)?;
    Ok(assemble_web_stack(
        config,
        dbs,
        stores,
        Arc::new(OutboxMailer::default()),
    ))
}

/// Wires the web context over existing connections (tests reuse it to build a second
/// context over the same databases and store).
pub fn assemble_web_stack(
    config: &Config,
    dbs: Databases,
    stores: Stores,
    mailer: Arc<dyn Mailer>,
) -> WebStack {
    let Stores { cache, counters } = stores;
    let keys = Keys::new(config.key_prefix.clone(), config.app_context);
    let web = WebDatabaseAdapter::new(dbs.web.clone());
    let analytics = Arc::new(AnalyticsService::new(
        web.clone(),
        cache.clone(),
        keys.clone(),
    ));
    let users = Arc::new(WebUserManager::new(
        ContextualIdentityAdapter::new(dbs.identity.clone(), config.app_context),
        ContextualRedisAdapter::new(cache.clone(), keys.clone()),
        Throttle::new(
            counters,
            keys.clone(),
            config.login_limits,
            config.signup_limits,
        ),
        mailer,
        analytics.clone(),
    ));
    let rates = Arc::new(RateService::new(web.clone(), cache.clone(), keys.clone()));
    let orders = Arc::new(OrderService::new(
        web.clone(),
        cache.clone(),
        keys.clone(),
        analytics.clone(),
        rates.clone(),
        config.payment_window,
    ));
    let payments = Arc::new(PaymentService::new(web, orders.clone()));
    WebStack {
        config: Arc::new(config.clone()),
        dbs,
        cache,
        keys,
        users,
        rates,
        orders,
        payments,
        analytics,
    }
}

/// Identity's key actions go to the web database's `analytics_events`.
#[async_trait::async_trait]
impl IdentityEvents for AnalyticsService {
    async fn record(&self, event: NewEvent) {
        AnalyticsService::record(self, event).await;
    }
}
