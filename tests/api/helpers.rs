//! `spawn_app()`: the real server on a random loopback port over a real backend, and a
//! client that speaks GraphQL to it.
//!
//! `TEST_BACKEND=embedded` (default): two SQLite files in a temporary folder and the
//! in-process store. `TEST_BACKEND=postgres`: two fresh databases per test, created from
//! migrated templates on `TEST_POSTGRES_URL`, and `TEST_REDIS_URL` with a random key
//! prefix. Unreachable URLs fail the test; nothing is skipped.
//!
//! Requests: `app.request(query)` builds every GraphQL request the suite sends
//! (`.variables`, `.bearer`, `.client`, then `.send()` or `.send_with_headers()`);
//! `app.gql` and `app.gql_as` are its shorthands. One rule for cookies: a request goes out
//! on a fresh client whose cookie jar starts empty and is dropped with it, so it carries
//! no cookie and keeps none, unless `.client(&app.client)` names the app's cookie-keeping
//! client (a browser). Every response passes `assert_every_error_has_a_code`.
//!
//! Users: `app.sign_up()` registers a fresh account (random email, [`PASSWORD`]);
//! `app.sign_up_with(SignUp { .. })` varies the password or the client. `app.log_in` is the
//! one way to sign in again.

use exchanger::cache::redis::RedisTarget;
use exchanger::config::{Config, Storage};
use exchanger::stack::{Role, Stores, WebStack};
use exchanger::startup::Application;
use migration::{IdentityMigrator, MigratorTrait, WebMigrator};
use sea_orm::{ConnectionTrait, Database, DbBackend, Statement};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

/// Which backend the suite runs on.
#[derive(Clone, Debug)]
pub enum Backend {
    /// SQLite files + in-process store.
    Embedded,
    /// PostgreSQL + Redis (or a Redis Cluster).
    Postgres {
        /// Maintenance database URL of the throwaway cluster.
        postgres_url: String,
        /// Where Redis is.
        redis: RedisTarget,
    },
}

/// The backend selected by `TEST_BACKEND` (with `TEST_POSTGRES_URL` and `TEST_REDIS_URL`,
/// or `TEST_REDIS_CLUSTER_NODES` for a Redis Cluster).
pub fn backend() -> Backend {
    match std::env::var("TEST_BACKEND").as_deref() {
        Ok("postgres") => Backend::Postgres {
            postgres_url: std::env::var("TEST_POSTGRES_URL")
                .expect("TEST_BACKEND=postgres needs TEST_POSTGRES_URL"),
            redis: match std::env::var("TEST_REDIS_CLUSTER_NODES") {
                Ok(nodes) if !nodes.is_empty() => {
                    RedisTarget::Cluster(nodes.split(',').map(str::to_owned).collect())
                }
                _ => RedisTarget::Standalone(std::env::var("TEST_REDIS_URL").expect(
                    "TEST_BACKEND=postgres needs TEST_REDIS_URL or TEST_REDIS_CLUSTER_NODES",
                )),
            },
        },
        Ok("embedded") | Err(_) => Backend::Embedded,
        Ok(other) => panic!("unknown TEST_BACKEND {other:?} (embedded or postgres)"),
    }
}

/// The configuration's form of a Redis target.
pub fn redis_config(target: &RedisTarget) -> exchanger::config::Redis {
    match target {
        RedisTarget::Standalone(url) => exchanger::config::Redis::Standalone(url.clone().into()),
        RedisTarget::Cluster(urls) => {
            exchanger::config::Redis::Cluster(urls.iter().map(|u| u.clone().into()).collect())
        }
    }
}

/// Runs `cmd` on the suite's Redis, standalone or cluster (to look at keys from outside).
pub async fn redis_query<T: redis::FromRedisValue>(target: &RedisTarget, cmd: &redis::Cmd) -> T {
    match target {
        RedisTarget::Standalone(url) => {
            let mut conn = redis::Client::open(url.as_str())
                .expect("redis url")
                .get_multiplexed_async_connection()
                .await
                .expect("redis answers");
            cmd.query_async(&mut conn).await.expect("redis command")
        }
        RedisTarget::Cluster(urls) => {
            let mut conn = redis::cluster::ClusterClient::new(urls.clone())
                .expect("cluster urls")
                .get_async_connection()
                .await
                .expect("cluster answers");
            cmd.query_async(&mut conn).await.expect("redis command")
        }
    }
}

/// Databases to drop (or a folder to delete) when the test ends.
enum Resources {
    Dir(#[allow(dead_code)] tempfile::TempDir),
    Databases {
        admin_url: String,
        names: Vec<String>,
    },
}

impl Drop for Resources {
    fn drop(&mut self) {
        if let Resources::Databases { admin_url, names } = self {
            let admin_url = admin_url.clone();
            let names = names.clone();
            // Drop runs inside the test's runtime: use a thread with its own.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let db = Database::connect(&admin_url).await.ok()?;
                    for name in names {
                        let _ = db
                            .execute_unprepared(&format!(
                                "DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"
                            ))
                            .await;
                    }
                    Some(())
                })
            })
            .join();
        }
    }
}

/// A running server and a client for it.
pub struct TestApp {
    /// `http://127.0.0.1:{port}`.
    pub address: String,
    /// The port.
    pub port: u16,
    /// A client that keeps cookies, like a browser: name it with `.client(&app.client)`
    /// (or `SignUp { client: Some(&app.client), .. }`) when a test needs the session cookie.
    pub client: reqwest::Client,
    /// The server's stack, for arranging state the API cannot reach.
    pub stack: WebStack,
    /// The configuration the server runs with.
    pub config: Config,
    /// Redis in place of the in-process store, on the embedded backend (see
    /// `spawn_app_with_redis`).
    redis: Option<RedisTarget>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    /// Shared with other instances over the same storage; removed with the last.
    resources: std::sync::Arc<Resources>,
}

/// Settings every test server starts from.
fn base_config(storage: Storage) -> Config {
    let mut config = Config::embedded(std::path::PathBuf::new());
    config.storage = storage;
    config.bind_addr = "127.0.0.1:0".parse().expect("valid address");
    config.cookie_secure = false;
    config.database_max_connections = 5;
    config.redis_pool_size = 4;
    config.key_prefix = format!("test-{}:", uuid::Uuid::new_v4().simple());
    // Tests read the mails from memory.
    config.mailer = exchanger::config::MailerKind::Outbox;
    // Every test client signs up from 127.0.0.1; the sign-up limit has tests of its own.
    config.signup_limits.per_ip = 10_000;
    config.signup_limits.resets_per_ip = 10_000;
    // One key for every process of a test (a second instance must open what the first
    // sealed).
    config.security.secret_key = Some(TEST_SECRET_KEY.to_owned().into());
    // Operators in most tests have no second factor; account_security.rs tests the rule.
    config.security.require_mfa_for_operators = false;
    config
}

/// `SECRET_KEY` of every test server.
pub const TEST_SECRET_KEY: &str =
    "7e57000000000000000000000000000000000000000000000000000000005ec7";

/// Creates a template database migrated by `migrate` once per cluster (guarded by an
/// advisory lock, since test processes run in parallel).
async fn ensure_template(
    admin: &sea_orm::DatabaseConnection,
    admin_url: &str,
    name: &str,
    web: bool,
) {
    admin
        .execute_unprepared("SELECT pg_advisory_lock(7300001)")
        .await
        .expect("advisory lock");
    let exists = admin
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT 1 AS one FROM pg_database WHERE datname = $1",
            [name.into()],
        ))
        .await
        .expect("look up template")
        .is_some();
    if !exists {
        let building = format!("{name}_building");
        admin
            .execute_unprepared(&format!("DROP DATABASE IF EXISTS \"{building}\""))
            .await
            .expect("drop half-built template");
        admin
            .execute_unprepared(&format!("CREATE DATABASE \"{building}\""))
            .await
            .expect("create template");
        let url = database_url(admin_url, &building);
        let db = Database::connect(&url).await.expect("connect to template");
        if web {
            WebMigrator::up(&db, None)
                .await
                .expect("migrate web template");
        } else {
            IdentityMigrator::up(&db, None)
                .await
                .expect("migrate identity template");
        }
        db.close().await.expect("close template");
        admin
            .execute_unprepared(&format!(
                "ALTER DATABASE \"{building}\" RENAME TO \"{name}\""
            ))
            .await
            .expect("publish template");
    }
    admin
        .execute_unprepared("SELECT pg_advisory_unlock(7300001)")
        .await
        .expect("advisory unlock");
}

/// `admin_url` with its database replaced by `name`.
fn database_url(admin_url: &str, name: &str) -> String {
    let base = admin_url
        .rsplit_once('/')
        .map_or(admin_url, |(base, _)| base);
    format!("{base}/{name}")
}

/// Storage for one test: fresh databases (or files) that nobody else uses.
async fn fresh_storage() -> (Storage, Resources) {
    match backend() {
        Backend::Embedded => {
            let dir = tempfile::tempdir().expect("temp dir");
            (
                Storage::Embedded {
                    data_dir: dir.path().to_path_buf(),
                },
                Resources::Dir(dir),
            )
        }
        Backend::Postgres {
            postgres_url,
            redis,
        } => {
            // One connection: the advisory lock guarding template creation belongs to a
            // session, so lock and unlock must run on the same connection.
            let mut options = sea_orm::ConnectOptions::new(postgres_url.clone());
            options
                .max_connections(1)
                .min_connections(1)
                .sqlx_logging(false);
            let admin = Database::connect(options)
                .await
                .expect("TEST_POSTGRES_URL is unreachable");
            let identity_template =
                format!("tpl_identity_{}", IdentityMigrator::migrations().len());
            let web_template = format!("tpl_web_{}", WebMigrator::migrations().len());
            ensure_template(&admin, &postgres_url, &identity_template, false).await;
            ensure_template(&admin, &postgres_url, &web_template, true).await;
            let id = uuid::Uuid::new_v4().simple().to_string();
            let identity = format!("t_{id}_identity");
            let web = format!("t_{id}_web");
            for (name, template) in [(&identity, &identity_template), (&web, &web_template)] {
                admin
                    .execute_unprepared(&format!(
                        "CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""
                    ))
                    .await
                    .expect("create test database");
            }
            admin.close().await.ok();
            (
                Storage::External {
                    identity_url: database_url(&postgres_url, &identity).into(),
                    web_url: database_url(&postgres_url, &web).into(),
                    redis: redis_config(&redis),
                },
                Resources::Databases {
                    admin_url: postgres_url,
                    names: vec![identity, web],
                },
            )
        }
    }
}

/// Starts the server with default test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the server after `customise` changed the configuration.
pub async fn spawn_app_with(customise: impl FnOnce(&mut Config)) -> TestApp {
    let (storage, resources) = fresh_storage().await;
    let mut config = base_config(storage);
    customise(&mut config);
    let app = Application::build(&config)
        .await
        .expect("application starts");
    serve(app, config, std::sync::Arc::new(resources), None)
}

/// Starts the server with `mailer` in place of the outbox (e.g. one that holds every mail
/// until released).
pub async fn spawn_app_with_mailer(
    mailer: std::sync::Arc<dyn exchanger::identity::mailer::Mailer>,
) -> TestApp {
    let (storage, resources) = fresh_storage().await;
    let config = base_config(storage);
    let dbs = exchanger::db::connect(&config).await.expect("databases");
    exchanger::db::migrate(&dbs).await.expect("migrations");
    let stores = Stores::create(&config, Role::Server).await.expect("stores");
    let stack = exchanger::stack::assemble_web_stack(&config, dbs, stores, mailer, Role::Server)
        .expect("web stack");
    let app = Application::with_stack(stack)
        .await
        .expect("application starts");
    serve(app, config, std::sync::Arc::new(resources), None)
}

/// Starts the server over its own fresh databases but with the store at `redis_url`. On
/// the postgres backend this is the production wiring (`Storage::External`); on the
/// embedded backend the SQLite files are kept and the store is Redis wired as production
/// wires it (with the local copies kept coherent over pub/sub).
pub async fn spawn_app_with_redis(redis_url: &str) -> TestApp {
    spawn_app_with_redis_and(redis_url, |_| {}).await
}

/// `spawn_app_with_redis` after `customise` changed the configuration.
pub async fn spawn_app_with_redis_and(
    redis_url: &str,
    customise: impl FnOnce(&mut Config),
) -> TestApp {
    let (storage, resources) = fresh_storage().await;
    let mut config = base_config(storage);
    customise(&mut config);
    let target = RedisTarget::Standalone(redis_url.to_owned());
    let redis = match &mut config.storage {
        Storage::External { redis, .. } => {
            *redis = redis_config(&target);
            None
        }
        Storage::Embedded { .. } => Some(target),
    };
    let app = build(&config, redis.as_ref()).await;
    serve(app, config, std::sync::Arc::new(resources), redis)
}

/// A server over `config`'s storage; on the embedded backend with `redis` in place of the
/// in-process store when given.
async fn build(config: &Config, redis: Option<&RedisTarget>) -> Application {
    let Some(target) = redis else {
        return Application::build(config)
            .await
            .expect("application starts");
    };
    let dbs = exchanger::db::connect(config).await.expect("databases");
    exchanger::db::migrate(&dbs).await.expect("migrations");
    let stores = Stores::redis(
        target,
        config.redis_pool_size,
        &config.key_prefix,
        Role::Server,
    )
    .expect("redis stores");
    let stack = exchanger::stack::assemble_web_stack(
        config,
        dbs,
        stores,
        std::sync::Arc::new(exchanger::identity::mailer::OutboxMailer::default()),
        Role::Server,
    )
    .expect("web stack");
    Application::with_stack(stack)
        .await
        .expect("application starts")
}

impl TestApp {
    /// Another server instance over the same databases and store, as a second process
    /// behind a load balancer would run (dropping either stops only that one, abruptly).
    pub async fn another_instance(&self) -> TestApp {
        self.another_instance_with(self.config.clone()).await
    }

    /// `another_instance` with its own settings (same storage).
    pub async fn another_instance_with(&self, config: Config) -> TestApp {
        let app = build(&config, self.redis.as_ref()).await;
        serve(app, config, self.resources.clone(), self.redis.clone())
    }

    /// How many `analytics_events` of `event_type` were recorded.
    pub async fn events_of_type(&self, event_type: &str) -> u64 {
        use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
        entity::web::analytics_events::Entity::find()
            .filter(entity::web::analytics_events::Column::EventType.eq(event_type))
            .count(&self.stack.dbs.web)
            .await
            .expect("count events")
    }
}

/// Runs a built application in the background until the returned `TestApp` is dropped.
fn serve(
    app: Application,
    config: Config,
    resources: std::sync::Arc<Resources>,
    redis: Option<RedisTarget>,
) -> TestApp {
    let port = app.port();
    let stack = app.stack().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        app.run_until(async {
            let _ = stopped.await;
        })
        .await
        .expect("server runs");
    });
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: new_client(),
        stack,
        config,
        redis,
        stop: Some(stop),
        server: Some(server),
        resources,
    }
}

/// A client with its own cookie jar.
pub fn new_client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

// ---- GraphQL requests ----

impl TestApp {
    /// A GraphQL request for `query`: no variables, no bearer token, a fresh client.
    pub fn request<'a>(&'a self, query: &'a str) -> Request<'a> {
        Request {
            app: self,
            query,
            variables: json!({}),
            bearer: None,
            client: None,
            headers: Vec::new(),
        }
    }

    /// `query` with `variables`, anonymous.
    pub async fn gql(&self, query: &str, variables: Value) -> Value {
        self.request(query).variables(variables).send().await
    }

    /// `query` with `variables` as the holder of `token` (bearer).
    pub async fn gql_as(&self, token: &str, query: &str, variables: Value) -> Value {
        self.request(query)
            .bearer(token)
            .variables(variables)
            .send()
            .await
    }

    /// The `extensions.code` of the first error, if any.
    pub fn error_code(body: &Value) -> Option<String> {
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .map(str::to_owned)
    }

    /// The `extensions.field` of the first error, if any.
    pub fn error_field(body: &Value) -> Option<String> {
        body["errors"][0]["extensions"]["field"]
            .as_str()
            .map(str::to_owned)
    }
}

/// One GraphQL request to `/graphql`, from [`TestApp::request`].
#[must_use = "a request does nothing until it is sent"]
pub struct Request<'a> {
    app: &'a TestApp,
    query: &'a str,
    variables: Value,
    bearer: Option<&'a str>,
    client: Option<&'a reqwest::Client>,
    headers: Vec<(&'a str, String)>,
}

impl<'a> Request<'a> {
    /// The request's variables (default `{}`).
    pub fn variables(mut self, variables: Value) -> Self {
        self.variables = variables;
        self
    }

    /// Sends `token` as `Authorization: Bearer`.
    pub fn bearer(mut self, token: &'a str) -> Self {
        self.bearer = Some(token);
        self
    }

    /// Adds a header (e.g. `X-Forwarded-For`, `X-Device-Token`).
    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sends with `client` (and its cookie jar) instead of a fresh client.
    pub fn client(mut self, client: &'a reqwest::Client) -> Self {
        self.client = Some(client);
        self
    }

    /// Sends the request; the parsed body.
    pub async fn send(self) -> Value {
        self.send_with_headers().await.1
    }

    /// Sends the request; the response headers (to read `Set-Cookie`) and the parsed body.
    pub async fn send_with_headers(self) -> (reqwest::header::HeaderMap, Value) {
        let fresh;
        let client = match self.client {
            Some(client) => client,
            None => {
                fresh = new_client();
                &fresh
            }
        };
        let mut request = client
            .post(format!("{}/graphql", self.app.address))
            .json(&json!({ "query": self.query, "variables": self.variables }));
        if let Some(token) = self.bearer {
            request = request.bearer_auth(token);
        }
        for (name, value) in &self.headers {
            request = request.header(*name, value);
        }
        let response = request.send().await.expect("request sent");
        let headers = response.headers().clone();
        let body: Value = response.json().await.expect("JSON response");
        assert_every_error_has_a_code(&body);
        (headers, body)
    }
}

/// SPEC §3: every error has a code (and, over HTTP, the request id). Checked on every
/// response the suite receives, so no error path anywhere escapes it.
pub fn assert_every_error_has_a_code(body: &Value) {
    let responses: Vec<&Value> = match body {
        Value::Array(items) => items.iter().collect(),
        single => vec![single],
    };
    for response in responses {
        for err in response["errors"].as_array().into_iter().flatten() {
            assert!(
                err["extensions"]["code"].is_string(),
                "error without a code: {err}"
            );
            assert!(
                err["extensions"]["requestId"].is_string(),
                "error without a request id: {err}"
            );
        }
    }
}

/// The query that shows who the caller is.
pub const ME: &str = "{ me { id email emailVerified permissions } }";

impl TestApp {
    /// `me` as the holder of `token` (`null` when the token is refused).
    pub async fn me_as(&self, token: &str) -> Value {
        let body = self.gql_as(token, ME, json!({})).await;
        assert!(body["errors"].is_null(), "me failed: {body}");
        body["data"]["me"].clone()
    }
}

// ---- Users ----

/// The password of every account `sign_up` makes (unless `SignUp` names another).
pub const PASSWORD: &str = "correct horse battery";

/// An email address no other account has.
pub fn unique_email() -> String {
    format!("user-{}@example.com", uuid::Uuid::new_v4().simple())
}

/// A registered account and the token of the session its registration opened.
pub struct TestUser {
    pub email: String,
    pub password: String,
    /// The session token (bearer).
    pub token: String,
    /// The user's id (a UUID).
    pub id: String,
}

/// What `sign_up_with` may vary; `SignUp::default()` is what `sign_up` does.
pub struct SignUp<'a> {
    /// The password (default [`PASSWORD`]).
    pub password: &'a str,
    /// The client that registers (default a fresh one); `Some(&app.client)` keeps the
    /// session cookie.
    pub client: Option<&'a reqwest::Client>,
}

impl Default for SignUp<'_> {
    fn default() -> Self {
        Self {
            password: PASSWORD,
            client: None,
        }
    }
}

impl TestApp {
    /// Registers a fresh account (random email, [`PASSWORD`]) with a fresh client.
    pub async fn sign_up(&self) -> TestUser {
        self.sign_up_with(SignUp::default()).await
    }

    /// Registers a fresh account (random email) with the password and client `options`
    /// name; panics when the registration is refused.
    pub async fn sign_up_with(&self, options: SignUp<'_>) -> TestUser {
        let email = unique_email();
        let mut request = self
            .request(
                "mutation($input: RegisterInput!) { register(input: $input) { token user { id } } }",
            )
            .variables(json!({ "input": { "email": email, "password": options.password } }));
        request.client = options.client;
        let body = request.send().await;
        let registered = &body["data"]["register"];
        let token = registered["token"]
            .as_str()
            .unwrap_or_else(|| panic!("registration refused: {body}"))
            .to_owned();
        let id = registered["user"]["id"]
            .as_str()
            .expect("user id")
            .to_owned();
        TestUser {
            email,
            password: options.password.to_owned(),
            token,
            id,
        }
    }

    /// Logs in with a fresh client: the new token, or the whole response body when the
    /// login is refused.
    pub async fn log_in(&self, email: &str, password: &str) -> Result<String, Value> {
        let body = self
            .gql(
                "mutation($input: LoginInput!) { login(input: $input) { token } }",
                json!({ "input": { "email": email, "password": password } }),
            )
            .await;
        match body["data"]["login"]["token"].as_str() {
            Some(token) => Ok(token.to_owned()),
            None => Err(body),
        }
    }

    /// An operator: a fresh user holding `permissions` in the web context (granted the way
    /// the CLI does), returning its token.
    pub async fn operator(&self, permissions: &[&str]) -> String {
        let TestUser { token, id, .. } = self.sign_up().await;
        let id = uuid::Uuid::parse_str(&id).expect("uuid");
        for p in permissions {
            let permission =
                exchanger::domain::Permission::parse("permission", p).expect("valid permission");
            self.stack
                .users
                .grant(id, &permission)
                .await
                .expect("granted");
        }
        token
    }
}

// ---- Orders and payments ----

impl TestApp {
    /// `createOrder` as the holder of `token`; returns the whole response body.
    pub async fn create_order(&self, token: &str, from: &str, to: &str, amount: &str) -> Value {
        self.gql_as(
            token,
            "mutation($input: CreateOrderInput!) { createOrder(input: $input) { id fromCurrency toCurrency amount exchangeRate toAmount status paidAmount remainingAmount createdAt updatedAt } }",
            json!({ "input": { "fromCurrency": from, "toCurrency": to, "amount": amount } }),
        )
        .await
    }

    /// Creates an order that must succeed and returns its id.
    pub async fn order_id(&self, token: &str, amount: &str) -> String {
        let body = self.create_order(token, "USD", "UAH", amount).await;
        body["data"]["createOrder"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("order created: {body}"))
            .to_owned()
    }

    /// `createPayment`; returns the whole response body.
    pub async fn create_payment(
        &self,
        token: &str,
        order_id: &str,
        amount: &str,
        key: &str,
    ) -> Value {
        self.gql_as(
            token,
            "mutation($input: CreatePaymentInput!) { createPayment(input: $input) { id amount status paymentMethod order { id status } } }",
            json!({ "input": { "orderId": order_id, "paymentMethod": "card", "amount": amount, "idempotencyKey": key } }),
        )
        .await
    }

    /// `settlePayment` as an operator; returns the whole response body.
    pub async fn settle_payment(&self, operator: &str, payment_id: &str, status: &str) -> Value {
        self.gql_as(
            operator,
            "mutation($id: ID!, $status: PaymentStatus!) { settlePayment(id: $id, status: $status) { id status order { id status paidAmount remainingAmount } } }",
            json!({ "id": payment_id, "status": status }),
        )
        .await
    }
}

// ---- Behind the API: state arranged and read through the server's stack ----

/// SHA-256 of `token`, hex: what the server may store in place of a token.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(token.as_bytes()))
}

impl TestApp {
    /// Sets a rate as an operator would (through the service the CLI uses).
    pub async fn set_rate(&self, from: &str, to: &str, rate: &str) {
        let pair = exchanger::domain::CurrencyPair::parse("from", from, "to", to).expect("pair");
        let rate =
            exchanger::domain::Money::parse("rate", rate.parse().expect("decimal")).expect("rate");
        self.stack
            .rates
            .set(exchanger::domain::NewRate {
                pair,
                rate,
                valid_from: None,
                valid_until: None,
            })
            .await
            .expect("rate set");
    }

    /// Moves the end of an order's payment window into the past (the passing of time).
    pub async fn end_payment_window(&self, order_id: &str) {
        use entity::web::orders;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        let id = uuid::Uuid::parse_str(order_id).expect("order id");
        orders::Entity::update_many()
            .col_expr(
                orders::Column::ExpiresAt,
                Expr::value(chrono::Utc::now() - chrono::Duration::minutes(1)),
            )
            .filter(orders::Column::Id.eq(id))
            .exec(&self.stack.dbs.web)
            .await
            .expect("payment window moved");
    }

    /// Sets a new rate of a pair straight in the database, leaving every cache as it was
    /// (what a rate write whose invalidation never arrived would leave behind).
    pub async fn replace_rate_behind_the_cache(&self, from: &str, to: &str, rate: &str) {
        use entity::web::exchange_rates;
        use sea_orm::{
            ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, sea_query::Expr,
        };
        let now = exchanger::clock::now();
        exchange_rates::Entity::update_many()
            .col_expr(exchange_rates::Column::ValidUntil, Expr::value(now))
            .filter(exchange_rates::Column::FromCurrency.eq(from))
            .filter(exchange_rates::Column::ToCurrency.eq(to))
            .filter(exchange_rates::Column::ValidUntil.is_null())
            .exec(&self.stack.dbs.web)
            .await
            .expect("old rate closed");
        exchange_rates::ActiveModel {
            id: Set(uuid::Uuid::now_v7()),
            from_currency: Set(from.to_owned()),
            to_currency: Set(to.to_owned()),
            rate: Set(rate
                .parse::<rust_decimal::Decimal>()
                .expect("decimal")
                .into()),
            valid_from: Set(now),
            valid_until: Set(None),
            created_at: Set(now),
        }
        .insert(&self.stack.dbs.web)
        .await
        .expect("new rate inserted");
    }

    /// Moves the end of the payment window of every order of `user_id` into the past.
    pub async fn end_payment_windows_of(&self, user_id: uuid::Uuid) {
        use entity::web::orders;
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, sea_query::Expr};
        orders::Entity::update_many()
            .col_expr(
                orders::Column::ExpiresAt,
                Expr::value(chrono::Utc::now() - chrono::Duration::minutes(1)),
            )
            .filter(orders::Column::UserId.eq(user_id))
            .exec(&self.stack.dbs.web)
            .await
            .expect("payment windows moved");
    }

    /// Runs the expiry sweeper once; returns how many orders expired.
    pub async fn sweep_expired_orders(&self) -> usize {
        self.stack.orders.expire_due().await.expect("sweeper runs")
    }

    /// Grants `permission` to `user_id` in `context` only, as
    /// `exchanger grant <email> <permission> --context <context>` does.
    pub async fn grant_in_context(
        &self,
        user_id: &str,
        permission: &str,
        context: exchanger::context::ApplicationContext,
    ) {
        let id = uuid::Uuid::parse_str(user_id).expect("user id");
        let granted = exchanger::identity::ContextualIdentityAdapter::new(
            self.stack.dbs.identity.clone(),
            context,
        )
        .grant(id, permission, chrono::Utc::now())
        .await
        .expect("granted");
        assert!(granted.is_some(), "{permission} was new in {context}");
    }

    /// Every `sessions` row of the identity database, any context.
    pub async fn session_rows(&self) -> Vec<entity::identity::sessions::Model> {
        use sea_orm::EntityTrait;
        entity::identity::sessions::Entity::find()
            .all(&self.stack.dbs.identity)
            .await
            .expect("read sessions")
    }

    /// The `users` row with `email`.
    pub async fn user_row(&self, email: &str) -> Option<entity::identity::users::Model> {
        use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
        entity::identity::users::Entity::find()
            .filter(entity::identity::users::Column::Email.eq(email))
            .one(&self.stack.dbs.identity)
            .await
            .expect("read users")
    }

    /// How many accounts exist.
    pub async fn user_count(&self) -> u64 {
        use sea_orm::{EntityTrait, PaginatorTrait};
        entity::identity::users::Entity::find()
            .count(&self.stack.dbs.identity)
            .await
            .expect("count users")
    }

    /// The cached session entry of `token` in this app's context, raw, if any.
    pub async fn cached_session(&self, token: &str) -> Option<String> {
        self.stack
            .cache
            .store()
            .get(&self.stack.keys.session(&token_hash(token)))
            .await
            .expect("store answers")
    }

    /// Moves the session of `token` past its end, as if its lifetime had run out: the
    /// `sessions` row, and the cached record too when one is cached (its entry stays in
    /// the store, so the server must check the cached `expires_at` itself).
    pub async fn expire_session(&self, token: &str) {
        let past = chrono::Utc::now() - chrono::Duration::minutes(1);
        move_session_time(&self.stack, token, SessionTime::End, past).await;
    }
}

/// A moment of a session that the server keeps both in the `sessions` row and in the
/// cached record.
#[derive(Clone, Copy, Debug)]
pub enum SessionTime {
    /// `expires_at`.
    End,
    /// `last_seen_at` (the idle timeout counts from it).
    LastSeen,
    /// `mfa_at`: when the session last proved a second factor (step-up counts from it).
    SecondFactor,
}

/// Sets `which` moment of the session of `token` in `stack`'s context to `at` (the passing
/// of time, as every process would see it): the `sessions` row, and the cached record when
/// one is cached, through the facade so local copies in front of the store change too.
pub async fn move_session_time(
    stack: &WebStack,
    token: &str,
    which: SessionTime,
    at: chrono::DateTime<chrono::Utc>,
) {
    use entity::identity::sessions;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let hash = token_hash(token);
    let column = match which {
        SessionTime::End => sessions::Column::ExpiresAt,
        SessionTime::LastSeen => sessions::Column::LastSeenAt,
        SessionTime::SecondFactor => sessions::Column::MfaAt,
    };
    let updated = sessions::Entity::update_many()
        .col_expr(column, Expr::value(at))
        .filter(sessions::Column::TokenHash.eq(hash.as_str()))
        .exec(&stack.dbs.identity)
        .await
        .expect("move a session time");
    assert_eq!(updated.rows_affected, 1, "no session holds that token");
    let key = stack.keys.session(&hash);
    let cached = stack.cache.store().get(&key).await.expect("store answers");
    // Anything but a record (a tombstone of an invalidation) sends readers to the row.
    let record =
        cached.and_then(|raw| serde_json::from_str::<exchanger::domain::SessionRecord>(&raw).ok());
    if let Some(mut record) = record {
        match which {
            SessionTime::End => record.expires_at = at,
            SessionTime::LastSeen => record.last_seen_at = Some(at),
            SessionTime::SecondFactor => record.mfa_at = Some(at),
        }
        stack
            .cache
            .put(&key, &record, Duration::from_secs(3600))
            .await;
    }
}

impl TestApp {
    /// Mails the outbox mailer has sent to `to`, oldest first.
    pub fn mails_to(&self, to: &str) -> Vec<exchanger::identity::mailer::Mail> {
        self.stack
            .users
            .mailer()
            .outbox()
            .into_iter()
            .filter(|m| m.to == to)
            .collect()
    }

    /// Waits (up to 10 s) until `count` mails to `to` were sent (password resets are mailed
    /// after their request answers); all of them, oldest first.
    pub async fn wait_for_mails(
        &self,
        to: &str,
        count: usize,
    ) -> Vec<exchanger::identity::mailer::Mail> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let mails = self.mails_to(to);
            if mails.len() >= count {
                return mails;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{} of {count} mails to {to} after 10 s",
                mails.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The same configuration and databases served as another application context, over
    /// the same store: what a second server process with `APP_CONTEXT=<ctx>` would run.
    pub fn stack_for(&self, ctx: exchanger::context::ApplicationContext) -> WebStack {
        let mut config = self.config.clone();
        config.app_context = ctx;
        exchanger::stack::assemble_web_stack(
            &config,
            self.stack.dbs.clone(),
            Stores::over(self.stack.cache.store().clone(), Role::Command),
            std::sync::Arc::new(exchanger::identity::mailer::OutboxMailer::default()),
            Role::Command,
        )
        .expect("web stack")
    }
}

/// Waits (up to `within`, polling) until `check` holds.
pub async fn eventually<F, Fut>(within: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + within;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A test's WebSocket to the server.
pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A WebSocket subscribed to `rateChanged(USD, UAH)` on `app` (acknowledged; the
/// subscription itself may still be starting).
pub async fn subscriber(app: &TestApp) -> Socket {
    subscribe(
        app,
        "subscription { rateChanged(from: \"USD\", to: \"UAH\") { rate } }",
        None,
    )
    .await
}

/// A WebSocket on `app`, initialised (with `token` if any) and running `query` as
/// subscription "1".
pub async fn subscribe(app: &TestApp, query: &str, token: Option<&str>) -> Socket {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::http::HeaderValue;
    let mut request = format!("ws://127.0.0.1:{}/graphql/ws", app.port)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let init = match token {
        Some(token) => json!({ "type": "connection_init",
            "payload": { "Authorization": format!("Bearer {token}") } }),
        None => json!({ "type": "connection_init" }),
    };
    for message in [
        init,
        json!({ "id": "1", "type": "subscribe", "payload": { "query": query } }),
    ] {
        socket
            .send(Message::text(message.to_string()))
            .await
            .unwrap();
    }
    let ack: Value = match socket.next().await.unwrap().unwrap() {
        Message::Text(text) => serde_json::from_str(&text).unwrap(),
        other => panic!("{other:?}"),
    };
    assert_eq!(ack["type"], "connection_ack");
    socket
}

/// The payload of the next `next` message on `socket`, if one comes within `within`.
pub async fn next_payload(socket: &mut Socket, within: Duration) -> Option<Value> {
    use futures_util::StreamExt;
    use tokio_tungstenite::tungstenite::Message;
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let frame = tokio::time::timeout_at(deadline, socket.next())
            .await
            .ok()??
            .ok()?;
        if let Message::Text(text) = frame {
            let message: Value = serde_json::from_str(&text).ok()?;
            if message["type"] == "next" {
                return Some(message["payload"].clone());
            }
        }
    }
}
