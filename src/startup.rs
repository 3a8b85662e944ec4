//! Running the server (SPEC §5): `Application::build` creates the web stack and binds, and
//! `run_until_stopped` serves until SIGTERM/Ctrl-C, with the housekeeping sweeper beside it.

use crate::cache::redis::RedisTarget;
use crate::coherence::socket_path;
use crate::config::{Config, ConnectionLimits, MailerKind, Storage, describe_url, expose};
use crate::http::serve::{raise_open_files_limit, serve};
use crate::stack::{WebStack, create_web_stack};
use std::future::Future;
use tokio::net::TcpListener;

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
        let listener =
            listen(addr).map_err(|e| anyhow::anyhow!("BIND_ADDR: cannot listen on {addr}: {e}"))?;
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

    /// Serves until `stop` completes, then lets open connections finish for at most the
    /// drain timeout and says what it had to cut.
    pub async fn run_until(
        self,
        stop: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        crate::identity::password::warm_up();
        let limits = connection_limits(&self.stack.config);
        // Caches are trusted once the outbox was replayed; try before serving (the loop
        // below retries while the store does not answer).
        if let Err(err) = self.stack.coherence.resync().await {
            tracing::warn!(error = %format!("{err:#}"), "store not in step yet; serving from the databases");
        }
        let mut background = tokio::task::JoinSet::new();
        background.spawn(housekeeping(self.stack.clone()));
        background.spawn(self.stack.coherence.clone().run());
        if let Storage::Embedded { data_dir } = &self.stack.config.storage {
            // Command-line processes beside this server tell it what they changed.
            background.spawn(
                self.stack
                    .coherence
                    .clone()
                    .serve_socket(socket_path(data_dir)),
            );
        }
        let app = crate::http::router::router(self.stack.clone());
        announce(&self.stack.config, self.listener.local_addr()?);
        let report = serve(self.listener, app, limits, stop).await;
        background.abort_all();
        if report.cut > 0 || report.left > 0 {
            tracing::warn!(
                open = report.open_at_stop,
                cut = report.cut,
                websockets_left = report.left,
                "stopped; connections still busy at the drain deadline were cut"
            );
        } else {
            tracing::info!(
                open = report.open_at_stop,
                "stopped; every connection finished"
            );
        }
        Ok(())
    }
}

/// Says in plain words what is being served, from where, under which limits, and where
/// to point a browser (the last line is the one tools wait for: "listening on …").
fn announce(config: &Config, addr: std::net::SocketAddr) {
    let context = &config.app_context;
    tracing::info!(
        "exchanger {} serving the `{context}` context",
        env!("CARGO_PKG_VERSION")
    );
    match &config.storage {
        Storage::Embedded { data_dir } => {
            let dir = std::path::absolute(data_dir).unwrap_or_else(|_| data_dir.clone());
            tracing::info!(
                "storage: embedded, SQLite files in {} and an in-process cache (one server; \
                 set DATABASE_IDENTITY_URL, DATABASE_WEB_URL and REDIS_URL for PostgreSQL + Redis)",
                dir.display()
            );
        }
        Storage::External {
            identity_url,
            web_url,
            redis,
        } => tracing::info!(
            "storage: PostgreSQL {} (identity) and {} (web), {}",
            describe_url(expose(identity_url)),
            describe_url(expose(web_url)),
            RedisTarget::from(redis).describe()
        ),
    }
    match config.mailer {
        MailerKind::Dev => tracing::info!(
            "mail: not sent; each mail is written to {} (`exchanger mail list` shows them)",
            std::path::absolute(&config.mail_dir)
                .unwrap_or_else(|_| config.mail_dir.clone())
                .display()
        ),
        MailerKind::Log => tracing::info!("mail: not sent, only logged (MAILER=log)"),
        MailerKind::Outbox => tracing::info!("mail: kept in memory"),
    }
    let l = &config.limits;
    tracing::info!(
        "limits: depth {}, {} fields, {} aliases, {} operations per batch, {} mutations, \
         {} KiB bodies, {} s per query; introspection {}",
        l.max_depth,
        l.max_complexity,
        l.max_aliases,
        l.max_batch,
        l.max_mutations,
        l.max_body_bytes / 1024,
        config.query_timeout.as_secs(),
        if l.introspection { "on" } else { "off" }
    );
    let security = &config.security;
    tracing::info!(
        "sessions: end after 24 h, or after {} min unused; a second-factor check lasts {} min \
         for sensitive operations; operators need two-factor sign-in: {}",
        security.session_idle.as_secs() / 60,
        security.step_up_window.as_secs() / 60,
        if security.require_mfa_for_operators {
            "yes"
        } else {
            "no"
        }
    );
    let host = if addr.ip().is_unspecified() {
        format!("localhost:{}", addr.port())
    } else {
        addr.to_string()
    };
    if l.introspection {
        tracing::info!("listening on {addr}; GraphiQL: http://{host}/graphql");
    } else {
        tracing::info!("listening on {addr}; GraphQL endpoint: http://{host}/graphql");
    }
}

/// Connections the kernel queues for `accept` (the default of 128 drops a burst of
/// connects, which then wait a second for a SYN retransmit).
const BACKLOG: u32 = 1024;

/// A listener on `addr` with room for bursts of connects.
fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        std::net::SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        std::net::SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// The configured connection limits, with the cap lowered to fit the open-files limit
/// (raised to its hard limit first), keeping room for the database and store pools.
fn connection_limits(config: &Config) -> ConnectionLimits {
    let mut limits = config.connections.clone();
    match raise_open_files_limit() {
        Ok(files) => {
            let reserve =
                64 + 2 * config.database_max_connections as u64 + config.redis_pool_size as u64;
            let fits = usize::try_from(files.saturating_sub(reserve).max(1)).unwrap_or(usize::MAX);
            if fits < limits.max_connections {
                tracing::warn!(
                    configured = limits.max_connections,
                    open_files = files,
                    cap = fits,
                    "MAX_CONNECTIONS lowered to fit the open-files limit"
                );
                limits.max_connections = fits;
            }
        }
        Err(err) => tracing::warn!(error = %err, "cannot read the open-files limit"),
    }
    limits
}

/// Periodic work: expiring unpaid orders and deleting expired sessions. With several
/// instances, one of them does it each round: the one holding the `housekeeping` lease.
async fn housekeeping(stack: WebStack) {
    let interval = stack.config.sweep_interval;
    let holder = uuid::Uuid::new_v4().simple().to_string();
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        match stack
            .orders
            .take_housekeeping_lease(&holder, interval)
            .await
        {
            Ok(true) => {}
            Ok(false) => continue,
            Err(err) => {
                tracing::warn!(error = ?err, "cannot take the housekeeping lease");
                continue;
            }
        }
        match stack.orders.expire_due().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(expired = n, "expired unpaid orders"),
            Err(err) => tracing::warn!(error = ?err, "expiring orders failed"),
        }
        if let Err(err) = stack.users.purge_expired().await {
            tracing::warn!(error = ?err, "purging expired sessions and devices failed");
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
