//! Building and running the server (SPEC §1): `create_web_stack` once per process, then
//! `Application::build` binds and `run_until_stopped` serves until SIGTERM/Ctrl-C.

use crate::cache::Cache;
use crate::cache::keys::{self, Keys};
use crate::cache::l1::L1;
use crate::cache::store::{MemoryStore, RedisStore};
use crate::config::{Config, Storage, expose};
use crate::db::{self, Databases};
use crate::identity::mailer::{Mailer, OutboxMailer};
use crate::identity::{ContextualIdentityAdapter, WebUserManager};
use crate::web::WebDatabaseAdapter;
use crate::web::analytics::AnalyticsService;
use crate::web::orders::OrderService;
use crate::web::payments::PaymentService;
use crate::web::rates::RateService;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;

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

/// The cache the configuration asks for: the in-process store for the embedded default,
/// else Redis.
pub fn create_cache(config: &Config) -> anyhow::Result<Arc<Cache>> {
    match &config.storage {
        Storage::Embedded { .. } => Ok(Arc::new(Cache::new(Arc::new(MemoryStore::new())))),
        Storage::External { redis_url, .. } => redis_cache(
            expose(redis_url),
            config.redis_pool_size,
            &config.key_prefix,
        ),
    }
}

/// A cache over the Redis at `url` (a bb8 pool of `pool_size`), with in-process copies kept
/// coherent by pub/sub; the listener task is spawned here.
pub fn redis_cache(url: &str, pool_size: u32, key_prefix: &str) -> anyhow::Result<Arc<Cache>> {
    let store = Arc::new(RedisStore::new(url, pool_size)?);
    let l1 = Arc::new(L1::new(keys::invalidation_channel(key_prefix)));
    tokio::spawn(l1.clone().listen(redis::Client::open(url)?));
    Ok(Arc::new(Cache::with_l1(store, l1)))
}

/// The plan's `createWebStack`: connects, migrates and wires the web context.
pub async fn create_web_stack(config: &Config) -> anyhow::Result<WebStack> {
    let dbs = db::connect(config).await?;
    db::migrate(&dbs).await?;
    let cache = create_cache(config)?;
    Ok(assemble_web_stack(
        config,
        dbs,
        cache,
        Arc::new(OutboxMailer::default()),
    ))
}

/// Wires the web context over existing connections (tests reuse it to build a second
/// context over the same databases and cache).
pub fn assemble_web_stack(
    config: &Config,
    dbs: Databases,
    cache: Arc<Cache>,
    mailer: Arc<dyn Mailer>,
) -> WebStack {
    let keys = Keys::new(config.key_prefix.clone(), config.app_context);
    let web = WebDatabaseAdapter::new(dbs.web.clone());
    let analytics = Arc::new(AnalyticsService::new(
        web.clone(),
        cache.clone(),
        keys.clone(),
    ));
    let users = Arc::new(WebUserManager::new(
        ContextualIdentityAdapter::new(dbs.identity.clone(), config.app_context),
        cache.clone(),
        keys.clone(),
        mailer,
        analytics.clone(),
        config.login_limits,
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

/// A bound, ready-to-run server.
pub struct Application {
    listener: TcpListener,
    stack: WebStack,
}

impl Application {
    /// Builds the stack and binds `config.bind_addr` (port 0 picks a free port).
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        let stack = create_web_stack(config).await?;
        Self::with_stack(stack).await
    }

    /// Binds a server for an existing stack.
    pub async fn with_stack(stack: WebStack) -> anyhow::Result<Self> {
        let addr = stack.config.bind_addr;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| anyhow::anyhow!("BIND_ADDR: cannot listen on {addr}: {e}"))?;
        Ok(Self { listener, stack })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// The stack (tests use its services to set up state).
    pub fn stack(&self) -> &WebStack {
        &self.stack
    }

    /// Serves until SIGTERM or Ctrl-C, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    /// Serves until `stop` completes, then finishes in-flight requests.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        crate::identity::password::warm_up();
        let housekeeping = tokio::spawn(housekeeping(self.stack.clone()));
        let app = crate::http::router::router(self.stack.clone());
        tracing::info!(addr = %self.listener.local_addr()?, context = %self.stack.config.app_context, "listening");
        let result = axum::serve(
            self.listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(stop)
        .await;
        housekeeping.abort();
        result
    }
}

/// Periodic work: expiring unpaid orders and deleting expired sessions.
async fn housekeeping(stack: WebStack) {
    let mut tick = tokio::time::interval(stack.config.sweep_interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match stack.orders.expire_due().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "expired unpaid orders"),
            Err(err) => tracing::warn!(error = ?err, "expiring orders failed"),
        }
        if let Err(err) = stack.users.purge_expired_sessions().await {
            tracing::warn!(error = ?err, "purging expired sessions failed");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing in-flight requests");
}
