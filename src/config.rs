//! `Config`: every setting, from the environment (and `.env`), typed and validated (SPEC §1).

use crate::context::ApplicationContext;
use clap::{ArgAction, Args, ValueEnum};
use secrecy::{ExposeSecret, SecretString};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where mail goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MailerKind {
    /// Each mail, token included, to a file under `DATA_DIR/mail` and to the log
    /// (development: the flows can be tried without a mail server).
    Dev,
    /// Only a log line that a mail went out (plug a real mailer in `identity/mailer.rs`).
    Log,
    /// Kept in memory (tests read them).
    #[value(skip)]
    Outbox,
}

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Where the data lives: PostgreSQL + Redis, or the embedded default.
#[derive(Clone, Debug)]
pub enum Storage {
    /// Two SQLite files in `data_dir` and an in-process TTL store.
    Embedded {
        /// The folder holding `identity.sqlite3` and `web.sqlite3`.
        data_dir: PathBuf,
    },
    /// The production setup.
    External {
        /// `DATABASE_IDENTITY_URL`.
        identity_url: SecretString,
        /// `DATABASE_WEB_URL`.
        web_url: SecretString,
        /// `REDIS_URL` or `REDIS_CLUSTER_NODES`.
        redis: Redis,
    },
}

/// Where Redis is.
#[derive(Clone, Debug)]
pub enum Redis {
    /// One server (`REDIS_URL`).
    Standalone(SecretString),
    /// A Redis Cluster, by some of its nodes (`REDIS_CLUSTER_NODES`).
    Cluster(Vec<SecretString>),
}

/// GraphQL limits (SPEC §4).
#[derive(Clone, Debug, Args)]
pub struct Limits {
    /// Maximum nesting of fields (a leaf counts; introspection's `ofType` links do not).
    #[arg(
        long,
        env = "GRAPHQL_MAX_DEPTH",
        global = true,
        hide_short_help = true,
        hide_env_values = true,
        help_heading = "GraphQL limits",
        default_value_t = 12
    )]
    pub max_depth: usize,
    /// Maximum fields a document selects once its fragments are expanded (`__typename` and
    /// introspection fields included).
    #[arg(
        long,
        env = "GRAPHQL_MAX_COMPLEXITY",
        global = true,
        hide_short_help = true,
        hide_env_values = true,
        help_heading = "GraphQL limits",
        default_value_t = 1000
    )]
    pub max_complexity: usize,
    /// Maximum number of aliases in one document.
    #[arg(
        long,
        env = "GRAPHQL_MAX_ALIASES",
        global = true,
        hide_short_help = true,
        hide_env_values = true,
        help_heading = "GraphQL limits",
        default_value_t = 30
    )]
    pub max_aliases: usize,
    /// Maximum number of operations in one batch request.
    #[arg(
        long,
        env = "GRAPHQL_MAX_BATCH",
        global = true,
        hide_short_help = true,
        hide_env_values = true,
        help_heading = "GraphQL limits",
        default_value_t = 10
    )]
    pub max_batch: usize,
    /// Maximum root mutation fields in one operation.
    #[arg(
        long,
        env = "GRAPHQL_MAX_MUTATIONS",
        global = true,
        hide_short_help = true,
        hide_env_values = true,
        help_heading = "GraphQL limits",
        default_value_t = 5
    )]
    pub max_mutations: usize,
    /// Maximum request body size in bytes.
    #[arg(long, env = "GRAPHQL_MAX_BODY_BYTES", global = true, hide_short_help = true, hide_env_values = true, help_heading = "GraphQL limits", default_value_t = 64 * 1024)]
    pub max_body_bytes: usize,
    /// Whether introspection is allowed (switch off in production if you like).
    #[arg(long, env = "GRAPHQL_INTROSPECTION", global = true, hide_short_help = true, hide_env_values = true, help_heading = "GraphQL limits", default_value_t = true, action = ArgAction::Set)]
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        RawConfig::defaults().limits
    }
}

/// Raw settings as clap reads them from flags and environment variables. The defaults
/// written here are the only ones: [`RawConfig::defaults`] reads them back.
#[derive(Clone, Debug, Args)]
pub struct RawConfig {
    /// PostgreSQL URL of `exchanger_identity` (set all three URLs or none).
    #[arg(
        long,
        env = "DATABASE_IDENTITY_URL",
        global = true,
        help_heading = "Storage",
        hide_env_values = true
    )]
    pub database_identity_url: Option<String>,
    /// PostgreSQL URL of `exchanger_web`.
    #[arg(
        long,
        env = "DATABASE_WEB_URL",
        global = true,
        help_heading = "Storage",
        hide_env_values = true
    )]
    pub database_web_url: Option<String>,
    /// Redis URL.
    #[arg(
        long,
        env = "REDIS_URL",
        global = true,
        help_heading = "Storage",
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
    /// Comma-separated `redis://` URLs of Redis Cluster nodes (instead of `REDIS_URL`).
    #[arg(
        long,
        env = "REDIS_CLUSTER_NODES",
        global = true,
        help_heading = "Storage",
        hide_env_values = true
    )]
    pub redis_cluster_nodes: Option<String>,
    /// Prefix before every Redis key and channel (deployments sharing one Redis set
    /// different ones; every process of one deployment the same).
    #[arg(
        long,
        env = "REDIS_KEY_PREFIX",
        global = true,
        hide_short_help = true,
        hide_env_values = true,
        help_heading = "Storage",
        default_value = ""
    )]
    pub redis_key_prefix: String,
    /// The application context this server serves.
    #[arg(
        long,
        env = "APP_CONTEXT",
        global = true,
        hide_env_values = true,
        help_heading = "Server",
        default_value = "web"
    )]
    pub app_context: ApplicationContext,
    /// Address to listen on.
    #[arg(
        long,
        env = "BIND_ADDR",
        global = true,
        hide_env_values = true,
        help_heading = "Server",
        default_value = "127.0.0.1:8080"
    )]
    pub bind_addr: SocketAddr,
    /// Folder of the embedded default's SQLite files.
    #[arg(
        long,
        env = "DATA_DIR",
        global = true,
        hide_env_values = true,
        help_heading = "Storage",
        default_value = "./data"
    )]
    pub data_dir: PathBuf,
    /// Mark the session cookie `Secure` (turn off only for plain-HTTP local development).
    #[arg(long, env = "COOKIE_SECURE", global = true, hide_env_values = true, help_heading = "Server", default_value_t = true, action = ArgAction::Set)]
    pub cookie_secure: bool,
    /// Comma-separated proxies (CIDR or address) whose `Forwarded` / `X-Forwarded-For`
    /// headers name the client; default none.
    #[arg(
        long,
        env = "TRUSTED_PROXIES",
        global = true,
        hide_short_help = true,
        hide_env_values = true,
        help_heading = "Server",
        value_delimiter = ',',
        default_value = ""
    )]
    pub trusted_proxies: Vec<String>,
    /// Comma-separated origins allowed to call the API with credentials.
    #[arg(
        long,
        env = "CORS_ORIGINS",
        global = true,
        hide_env_values = true,
        help_heading = "Server",
        value_delimiter = ',',
        default_value = ""
    )]
    pub cors_origins: Vec<String>,
    /// Where mail goes: `dev` writes each mail (token included) to DATA_DIR/mail and the
    /// log; `log` only logs that a mail went out. Default: `dev` on the embedded default,
    /// `log` with PostgreSQL.
    #[arg(
        long,
        env = "MAILER",
        global = true,
        hide_env_values = true,
        help_heading = "Server",
        value_enum,
        hide_possible_values = true
    )]
    pub mailer: Option<MailerKind>,
    /// Refuse to start while Redis does not answer (else: warn and serve from the
    /// databases until it does).
    #[arg(long, env = "REDIS_REQUIRED", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Storage", default_value_t = false, action = ArgAction::Set)]
    pub redis_required: bool,
    /// `text` or `json`.
    #[arg(long, env = "LOG_FORMAT", global = true, hide_env_values = true, help_heading = "Logging", value_enum, hide_possible_values = true, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Minutes an order may stay unpaid before it expires.
    #[arg(long, env = "PAYMENT_WINDOW_MINUTES", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Orders", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=10080))]
    pub payment_window_minutes: u64,
    /// Seconds between runs of the housekeeping sweeper (expires unpaid orders, deletes
    /// expired sessions).
    #[arg(long, env = "SWEEP_INTERVAL_SECS", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Orders", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub sweep_interval_secs: u64,
    /// Database connections per pool.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Storage", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_max_connections: u32,
    /// Redis connections in the pool.
    #[arg(long, env = "REDIS_POOL_SIZE", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Storage", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub redis_pool_size: u32,
    /// Failed logins allowed per account in the window before `RATE_LIMITED`.
    #[arg(
        long,
        env = "LOGIN_MAX_FAILURES_PER_ACCOUNT",
        global = true,
        hide_short_help = true,
        hide_env_values = true,
        help_heading = "Sign-in limits",
        default_value_t = 5
    )]
    pub login_max_failures_per_account: u32,
    /// Failed logins allowed per client address in the window.
    #[arg(
        long,
        env = "LOGIN_MAX_FAILURES_PER_IP",
        global = true,
        hide_short_help = true,
        hide_env_values = true,
        help_heading = "Sign-in limits",
        default_value_t = 30
    )]
    pub login_max_failures_per_ip: u32,
    /// Window of the failed-login counters, in seconds.
    #[arg(
        long,
        env = "LOGIN_FAILURE_WINDOW_SECS",
        global = true,
        hide_short_help = true,
        hide_env_values = true,
        help_heading = "Sign-in limits",
        default_value_t = 900
    )]
    pub login_failure_window_secs: u64,
    /// Sign-ups allowed per client address in the window before `RATE_LIMITED`.
    #[arg(
        long,
        env = "SIGNUP_MAX_PER_IP",
        global = true,
        hide_short_help = true,
        hide_env_values = true,
        help_heading = "Sign-in limits",
        default_value_t = 20
    )]
    pub signup_max_per_ip: u32,
    /// Window of the sign-up counter, in seconds.
    #[arg(long, env = "SIGNUP_WINDOW_SECS", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Sign-in limits", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub signup_window_secs: u64,
    /// `requestPasswordReset` calls allowed per client address per hour before
    /// `RATE_LIMITED` (whatever the email: it says nothing about accounts).
    #[arg(
        long,
        env = "PASSWORD_RESET_MAX_PER_IP",
        global = true,
        hide_short_help = true,
        hide_env_values = true,
        help_heading = "Sign-in limits",
        default_value_t = 30
    )]
    pub password_reset_max_per_ip: u32,
    /// Seconds a new connection has to send its first request head.
    #[arg(long, env = "HTTP_HEADER_TIMEOUT_SECS", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Connections", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_header_timeout_secs: u64,
    /// Seconds a request has to send its whole body.
    #[arg(long, env = "HTTP_BODY_TIMEOUT_SECS", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Connections", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_body_timeout_secs: u64,
    /// Seconds a kept-alive connection may stay silent between requests.
    #[arg(long, env = "HTTP_IDLE_TIMEOUT_SECS", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Connections", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub http_idle_timeout_secs: u64,
    /// Connections served at once (lowered to fit the open-files limit).
    #[arg(long, env = "MAX_CONNECTIONS", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Connections", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub max_connections: u64,
    /// Seconds open connections get to finish after SIGTERM before they are cut.
    #[arg(long, env = "SHUTDOWN_TIMEOUT_SECS", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Connections", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub shutdown_timeout_secs: u64,
    /// Seconds a query (or a subscription's first answer) may run; mutations are never cut.
    #[arg(long, env = "QUERY_TIMEOUT_SECS", global = true, hide_short_help = true, hide_env_values = true, help_heading = "GraphQL limits", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub query_timeout_secs: u64,
    /// PostgreSQL `statement_timeout`, in seconds.
    #[arg(long, env = "DATABASE_STATEMENT_TIMEOUT_SECS", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Storage", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub database_statement_timeout_secs: u64,
    /// Seconds a WebSocket has to send `connection_init`.
    #[arg(long, env = "WS_INIT_TIMEOUT_SECS", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Connections", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub ws_init_timeout_secs: u64,
    /// Subscriptions one WebSocket may hold at once.
    #[arg(long, env = "WS_MAX_SUBSCRIPTIONS", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Connections", default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub ws_max_subscriptions: u64,
    /// WebSockets one client address may hold open at once.
    #[arg(long, env = "WS_MAX_CONNECTIONS_PER_IP", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Connections", default_value_t = 50, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    pub ws_max_connections_per_ip: u64,
    /// The server's key for secrets at rest (two-factor secrets, recovery codes): 32 random
    /// bytes as 64 hex characters. Required with PostgreSQL; on the embedded default it is
    /// generated once into `DATA_DIR/secret.key`.
    #[arg(
        long,
        env = "SECRET_KEY",
        global = true,
        hide_short_help = true,
        hide_env_values = true,
        help_heading = "Account security"
    )]
    pub secret_key: Option<String>,
    /// Minutes a second-factor check of a session lasts for sensitive operations.
    #[arg(long, env = "STEP_UP_MINUTES", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Account security", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub step_up_minutes: u64,
    /// Refuse operator permissions to users without two-factor sign-in. Default: true with
    /// PostgreSQL, false on the embedded default.
    #[arg(long, env = "REQUIRE_MFA_FOR_OPERATORS", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Account security", action = ArgAction::Set)]
    pub require_mfa_for_operators: Option<bool>,
    /// Minutes a session may stay unused before it ends (on top of its 24 h lifetime).
    #[arg(long, env = "SESSION_IDLE_MINUTES", global = true, hide_short_help = true, hide_env_values = true, help_heading = "Account security", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=1440))]
    pub session_idle_minutes: u64,
    /// GraphQL limits.
    #[command(flatten)]
    pub limits: Limits,
}

/// Connection limits (SPEC §4).
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    /// Connections served at once (WebSockets included).
    pub max_connections: usize,
    /// Time to receive the first request head, counted from accept.
    pub header_timeout: Duration,
    /// Time to receive a request body, counted from its head.
    pub body_timeout: Duration,
    /// Silence allowed between requests on a kept-alive connection (the next request head
    /// included).
    pub idle_timeout: Duration,
    /// How long open connections get to finish after the stop signal.
    pub drain_timeout: Duration,
}

/// WebSocket limits (SPEC §4).
#[derive(Clone, Copy, Debug)]
pub struct WsLimits {
    /// Time to send `connection_init`.
    pub init_timeout: Duration,
    /// Subscriptions per connection.
    pub max_subscriptions: usize,
    /// Connections per client address.
    pub max_per_ip: usize,
}

/// Sign-up and password-reset limits per client address (SPEC §4).
#[derive(Clone, Copy, Debug)]
pub struct SignupLimits {
    /// Sign-ups per client address per window.
    pub per_ip: u32,
    /// Counter window.
    pub window: Duration,
    /// `requestPasswordReset` calls per client address per hour.
    pub resets_per_ip: u32,
}

/// Validated configuration. Tests build it with [`Config::embedded`] and change fields.
#[derive(Clone, Debug)]
pub struct Config {
    /// Databases and store.
    pub storage: Storage,
    /// The context served.
    pub app_context: ApplicationContext,
    /// Listen address (`127.0.0.1:0` in tests).
    pub bind_addr: SocketAddr,
    /// `Secure` flag of the session cookie.
    pub cookie_secure: bool,
    /// Allowed CORS origins (exact matches).
    pub cors_origins: Vec<String>,
    /// Proxies trusted to name the client's address.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Log format.
    pub log_format: LogFormat,
    /// Where mail goes.
    pub mailer: MailerKind,
    /// The development mailer's folder (`DATA_DIR/mail`).
    pub mail_dir: PathBuf,
    /// Whether start-up fails while Redis does not answer.
    pub redis_required: bool,
    /// How long an order may stay unpaid.
    pub payment_window: Duration,
    /// Database connections per pool.
    pub database_max_connections: u32,
    /// Redis pool size.
    pub redis_pool_size: u32,
    /// Failed-login limits.
    pub login_limits: LoginLimits,
    /// GraphQL limits.
    pub limits: Limits,
    /// Prefix in front of every store key and channel (`REDIS_KEY_PREFIX`; random per test).
    pub key_prefix: String,
    /// Interval of the order-expiry sweeper.
    pub sweep_interval: Duration,
    /// Sign-up limits.
    pub signup_limits: SignupLimits,
    /// Connection limits.
    pub connections: ConnectionLimits,
    /// How long a query may run.
    pub query_timeout: Duration,
    /// PostgreSQL `statement_timeout`.
    pub statement_timeout: Duration,
    /// WebSocket limits.
    pub ws: WsLimits,
    /// Account security settings.
    pub security: SecurityConfig,
}

/// Account security settings (two-factor sign-in, step-up, session lifetimes).
#[derive(Clone, Debug)]
pub struct SecurityConfig {
    /// `SECRET_KEY` (checked: 64 hex characters), when set.
    pub secret_key: Option<SecretString>,
    /// How long a session's second-factor check counts for sensitive operations.
    pub step_up_window: Duration,
    /// Whether operator permissions need two-factor sign-in.
    pub require_mfa_for_operators: bool,
    /// How long a session may stay unused.
    pub session_idle: Duration,
}

/// Failed-login limits (SPEC §4).
#[derive(Clone, Copy, Debug)]
pub struct LoginLimits {
    /// Failures per account per window.
    pub per_account: u32,
    /// Failures per client address per window.
    pub per_ip: u32,
    /// Counter window.
    pub window: Duration,
}

impl RawConfig {
    /// Every setting at its built-in default, as if nothing were set (the environment is
    /// not read).
    pub fn defaults() -> Self {
        use clap::FromArgMatches;
        let command = Self::augment_args(clap::Command::new("defaults"))
            .mut_args(|arg| arg.env(None::<&str>));
        let matches = command
            .try_get_matches_from(["defaults"])
            .expect("BUG: the built-in defaults parse");
        Self::from_arg_matches(&matches).expect("BUG: the built-in defaults are complete")
    }
}

impl Config {
    /// The embedded default over `data_dir`, every other setting at its default.
    pub fn embedded(data_dir: PathBuf) -> Self {
        let mut raw = RawConfig::defaults();
        raw.data_dir = data_dir;
        Self::from_raw(raw).expect("BUG: the built-in defaults are valid")
    }

    /// Validates the raw settings; the error names the variable at fault.
    pub fn from_raw(raw: RawConfig) -> Result<Self, String> {
        let redis = match (raw.redis_url, raw.redis_cluster_nodes) {
            (None, None) => None,
            (Some(url), None) => {
                check_url("REDIS_URL", &url, &["redis", "rediss"])?;
                Some(Redis::Standalone(url.into()))
            }
            (None, Some(nodes)) => {
                let nodes: Vec<String> = nodes
                    .split(',')
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .collect();
                if nodes.is_empty() {
                    return Err("REDIS_CLUSTER_NODES names no node".into());
                }
                for node in &nodes {
                    check_url("REDIS_CLUSTER_NODES", node, &["redis", "rediss"])?;
                }
                Some(Redis::Cluster(nodes.into_iter().map(Into::into).collect()))
            }
            (Some(_), Some(_)) => {
                return Err("set REDIS_URL or REDIS_CLUSTER_NODES, not both".into());
            }
        };
        let mail_dir = raw.data_dir.join("mail");
        let storage = match (raw.database_identity_url, raw.database_web_url, redis) {
            (None, None, None) => Storage::Embedded {
                data_dir: raw.data_dir,
            },
            (Some(identity), Some(web), Some(redis)) => {
                check_url(
                    "DATABASE_IDENTITY_URL",
                    &identity,
                    &["postgres", "postgresql"],
                )?;
                check_url("DATABASE_WEB_URL", &web, &["postgres", "postgresql"])?;
                Storage::External {
                    identity_url: identity.into(),
                    web_url: web.into(),
                    redis,
                }
            }
            _ => {
                return Err(
                    "DATABASE_IDENTITY_URL, DATABASE_WEB_URL and REDIS_URL (or REDIS_CLUSTER_NODES) \
                     must be set together (or none of them, for the embedded default)"
                        .into(),
                );
            }
        };
        let storage_is_embedded = matches!(storage, Storage::Embedded { .. });
        if !raw.app_context.is_served() {
            return Err(format!(
                "APP_CONTEXT={} is not served by this version (only `web` is)",
                raw.app_context
            ));
        }
        let cors_origins: Vec<String> = raw
            .cors_origins
            .into_iter()
            .map(|o| o.trim().trim_end_matches('/').to_owned())
            .filter(|o| !o.is_empty())
            .collect();
        for origin in &cors_origins {
            if !(origin.starts_with("http://") || origin.starts_with("https://")) {
                return Err(format!("CORS_ORIGINS: {origin:?} is not an http(s) origin"));
            }
        }
        let trusted_proxies = raw
            .trusted_proxies
            .iter()
            .map(|p| p.trim())
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<ipnet::IpNet>()
                    .or_else(|_| p.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| format!("TRUSTED_PROXIES: {p:?} is not an address or CIDR range"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let secret_key = raw
            .secret_key
            .map(|key| key.trim().to_owned())
            .filter(|key| !key.is_empty())
            .map(|key| {
                if key.len() == 64 && key.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(SecretString::from(key))
                } else {
                    Err(
                        "SECRET_KEY must be 64 hex characters (32 random bytes, e.g. \
                         `openssl rand -hex 32`)"
                            .to_owned(),
                    )
                }
            })
            .transpose()?;
        Ok(Self {
            storage,
            trusted_proxies,
            app_context: raw.app_context,
            bind_addr: raw.bind_addr,
            cookie_secure: raw.cookie_secure,
            cors_origins,
            log_format: raw.log_format,
            mailer: raw.mailer.unwrap_or(if storage_is_embedded {
                MailerKind::Dev
            } else {
                MailerKind::Log
            }),
            mail_dir,
            redis_required: raw.redis_required,
            payment_window: Duration::from_secs(raw.payment_window_minutes * 60),
            database_max_connections: raw.database_max_connections,
            redis_pool_size: raw.redis_pool_size,
            login_limits: LoginLimits {
                per_account: raw.login_max_failures_per_account,
                per_ip: raw.login_max_failures_per_ip,
                window: Duration::from_secs(raw.login_failure_window_secs.max(1)),
            },
            limits: raw.limits,
            key_prefix: raw.redis_key_prefix,
            sweep_interval: Duration::from_secs(raw.sweep_interval_secs),
            signup_limits: SignupLimits {
                per_ip: raw.signup_max_per_ip,
                window: Duration::from_secs(raw.signup_window_secs),
                resets_per_ip: raw.password_reset_max_per_ip,
            },
            connections: ConnectionLimits {
                max_connections: usize::try_from(raw.max_connections).unwrap_or(usize::MAX),
                header_timeout: Duration::from_secs(raw.http_header_timeout_secs),
                body_timeout: Duration::from_secs(raw.http_body_timeout_secs),
                idle_timeout: Duration::from_secs(raw.http_idle_timeout_secs),
                drain_timeout: Duration::from_secs(raw.shutdown_timeout_secs),
            },
            query_timeout: Duration::from_secs(raw.query_timeout_secs),
            statement_timeout: Duration::from_secs(raw.database_statement_timeout_secs),
            ws: WsLimits {
                init_timeout: Duration::from_secs(raw.ws_init_timeout_secs),
                max_subscriptions: raw.ws_max_subscriptions as usize,
                max_per_ip: raw.ws_max_connections_per_ip as usize,
            },
            security: SecurityConfig {
                secret_key,
                step_up_window: Duration::from_secs(raw.step_up_minutes * 60),
                require_mfa_for_operators: raw
                    .require_mfa_for_operators
                    .unwrap_or(!storage_is_embedded),
                session_idle: Duration::from_secs(raw.session_idle_minutes * 60),
            },
        })
    }
}

fn check_url(name: &str, url: &str, schemes: &[&str]) -> Result<(), String> {
    let scheme = url.split("://").next().unwrap_or_default();
    if url.contains("://") && schemes.contains(&scheme) {
        Ok(())
    } else {
        Err(format!(
            "{name} must be a {} URL",
            schemes.first().copied().unwrap_or_default()
        ))
    }
}

/// Where a database or Redis URL points, for people: `host:port/path`, never the user
/// name or password.
pub fn describe_url(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => {
            let host = u.host_str().unwrap_or("localhost");
            let port = u.port().map(|p| format!(":{p}")).unwrap_or_default();
            let path = u.path().trim_start_matches('/');
            if path.is_empty() {
                format!("{host}{port}")
            } else {
                format!("{host}{port}/{path}")
            }
        }
        Err(_) => "(an unreadable URL)".to_owned(),
    }
}

/// Exposes a secret URL for a driver call (kept in one place so it is easy to audit).
pub fn expose(url: &SecretString) -> &str {
    url.expose_secret()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_described_without_their_credentials() {
        assert_eq!(
            describe_url("postgres://ann:s3cret@db.internal:5432/exchanger_web?sslmode=require"),
            "db.internal:5432/exchanger_web"
        );
        assert_eq!(describe_url("redis://:pw@cache:6379"), "cache:6379");
        assert_eq!(describe_url("not a url"), "(an unreadable URL)");
    }

    #[test]
    fn the_defaults_are_the_documented_ones_and_valid() {
        let config = Config::embedded(PathBuf::from("/tmp/x"));
        assert_eq!(config.bind_addr, SocketAddr::from(([127, 0, 0, 1], 8080)));
        assert_eq!(config.payment_window, Duration::from_secs(30 * 60));
        assert_eq!(config.limits.max_depth, 12);
        assert_eq!(config.login_limits.per_account, 5);
        assert!(config.cookie_secure && config.limits.introspection);
        assert!(matches!(config.storage, Storage::Embedded { .. }));
    }
}
