//! Database connections (SPEC §1): PostgreSQL by URL, or SQLite files for the embedded
//! default; both migrators.

use crate::clock::{DateTime, now};
use crate::config::{Config, Storage, expose};
use crate::domain::{Change, Recorded};
use crate::error::{AppError, AppResult, ResultExt};
use anyhow::Context as _;
use entity::outbox;
use migration::{IdentityMigrator, MigratorTrait, WebMigrator};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectOptions, ConnectionTrait, Database, DatabaseConnection,
    DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, SqlErr, SqliteTransactionMode,
    TransactionOptions,
};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use uuid::Uuid;

/// The two databases of the web stack.
#[derive(Clone, Debug)]
pub struct Databases {
    /// `exchanger_identity`.
    pub identity: DatabaseConnection,
    /// `exchanger_web`.
    pub web: DatabaseConnection,
    /// Statements run on `exchanger_web` so far, outbox replays aside (tests show DataLoaders
    /// keep it constant).
    pub web_statements: Arc<AtomicU64>,
}

impl Databases {
    fn new(identity: DatabaseConnection, mut web: DatabaseConnection) -> Self {
        let web_statements = Arc::new(AtomicU64::new(0));
        let counter = web_statements.clone();
        web.set_metric_callback(move |info| {
            // The background replay of the outbox is not a request's work.
            if !info.statement.sql.contains("\"outbox\"") {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        });
        Self {
            identity,
            web,
            web_statements,
        }
    }

    /// Statements run on the web database so far.
    pub fn web_statement_count(&self) -> u64 {
        self.web_statements.load(Ordering::Relaxed)
    }
}

/// Connects to both databases (creating the SQLite files of the embedded default).
pub async fn connect(config: &Config) -> anyhow::Result<Databases> {
    match &config.storage {
        Storage::Embedded { data_dir } => {
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("DATA_DIR: cannot create {}", data_dir.display()))?;
            let identity = data_dir.join("identity.sqlite3");
            let web = data_dir.join("web.sqlite3");
            Ok(Databases::new(
                connect_sqlite(&identity, config).await?,
                connect_sqlite(&web, config).await?,
            ))
        }
        Storage::External {
            identity_url,
            web_url,
            ..
        } => Ok(Databases::new(
            connect_postgres(expose(identity_url), config)
                .await
                .context("DATABASE_IDENTITY_URL")?,
            connect_postgres(expose(web_url), config)
                .await
                .context("DATABASE_WEB_URL")?,
        )),
    }
}

/// How long connecting to PostgreSQL may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Connects to one PostgreSQL database. One direct connection first, so that a failure
/// says its cause once ("connection refused", "password authentication failed") rather
/// than the pool's "timed out".
pub async fn connect_postgres(url: &str, config: &Config) -> anyhow::Result<DatabaseConnection> {
    probe_postgres(url).await?;
    let mut options = ConnectOptions::new(url);
    let statement_timeout = format!("{}ms", config.statement_timeout.as_millis());
    options
        .max_connections(config.database_max_connections)
        .min_connections(1)
        .connect_timeout(CONNECT_TIMEOUT)
        .acquire_timeout(CONNECT_TIMEOUT)
        .sqlx_logging(false)
        // SPEC §4: no statement holds a connection without bound.
        .map_sqlx_postgres_opts(move |o| {
            o.options([("statement_timeout", statement_timeout.as_str())])
        });
    let place = crate::config::describe_url(url);
    Database::connect(options)
        .await
        .map_err(|e| anyhow::anyhow!("cannot connect to PostgreSQL at {place}: {e}"))
}

/// One connection to `url` and back, with the failure's cause in plain words.
async fn probe_postgres(url: &str) -> anyhow::Result<()> {
    use sea_orm::sqlx::postgres::{PgConnectOptions, PgConnection};
    use sea_orm::sqlx::{Connection as _, Error};
    let place = crate::config::describe_url(url);
    let options: PgConnectOptions = url
        .parse()
        .map_err(|e| anyhow::anyhow!("not a valid PostgreSQL URL: {e}"))?;
    let cause =
        match tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&options)).await {
            Ok(Ok(conn)) => {
                let _ = conn.close().await;
                return Ok(());
            }
            Err(_) => format!("no answer within {} s", CONNECT_TIMEOUT.as_secs()),
            Ok(Err(Error::Io(e))) => e.to_string(),
            Ok(Err(Error::Database(e))) => e.message().to_owned(),
            Ok(Err(Error::Tls(e))) => format!("TLS: {e}"),
            Ok(Err(e)) => e.to_string(),
        };
    anyhow::bail!("cannot connect to PostgreSQL at {place}: {cause}")
}

async fn connect_sqlite(
    path: &std::path::Path,
    config: &Config,
) -> anyhow::Result<DatabaseConnection> {
    let url = format!("sqlite://{}?mode=rwc", path.display());
    let statement_timeout = config.statement_timeout;
    let mut options = ConnectOptions::new(url);
    options
        .max_connections(config.database_max_connections.min(8))
        .acquire_timeout(Duration::from_secs(10))
        .sqlx_logging(false)
        .map_sqlx_sqlite_opts(move |o| {
            // WAL lets readers run beside the one writer; writers queue on the busy timeout.
            o.journal_mode(sea_orm::sqlx::sqlite::SqliteJournalMode::Wal)
                // SQLite's statement timeout: how long a statement waits for a lock.
                .busy_timeout(statement_timeout)
                .foreign_keys(true)
        });
    Database::connect(options)
        .await
        .with_context(|| format!("cannot open {}", path.display()))
}

/// Applies the migrations of both databases.
pub async fn migrate(dbs: &Databases) -> anyhow::Result<()> {
    IdentityMigrator::up(&dbs.identity, None)
        .await
        .context("migrating the identity database")?;
    WebMigrator::up(&dbs.web, None)
        .await
        .context("migrating the web database")?;
    Ok(())
}

/// Options of a transaction that writes: on SQLite it takes the write lock at `BEGIN`
/// (`IMMEDIATE`), so concurrent writers queue instead of failing to upgrade a read lock.
pub fn write_txn() -> TransactionOptions {
    TransactionOptions {
        sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
        ..Default::default()
    }
}

/// The outbox of one database, as the coherence loop reads it.
pub struct Outbox(pub DatabaseConnection);

#[async_trait::async_trait]
impl crate::coherence::ChangeLog for Outbox {
    async fn record(&self, change: Change) -> AppResult<Recorded> {
        record_change(&self.0, change).await
    }
    async fn pending(&self, before: DateTime) -> AppResult<Vec<Recorded>> {
        pending_changes(&self.0, before).await
    }
    async fn forget(&self, ids: &[Uuid]) -> AppResult<()> {
        forget_changes(&self.0, ids).await
    }
}

/// Records `change` in the outbox of the database `conn` belongs to (both databases have
/// one), inside the caller's transaction.
pub async fn record_change(conn: &impl ConnectionTrait, change: Change) -> AppResult<Recorded> {
    let id = Uuid::now_v7();
    let json = serde_json::to_string(&change).map_err(AppError::internal)?;
    outbox::ActiveModel {
        id: Set(id),
        change: Set(json),
        created_at: Set(now()),
    }
    .insert(conn)
    .await?;
    Ok(Recorded { id, change })
}

/// Changes of `conn`'s outbox recorded up to `before`, oldest first (at most a batch).
pub async fn pending_changes(
    conn: &impl ConnectionTrait,
    before: DateTime,
) -> AppResult<Vec<Recorded>> {
    let rows = outbox::Entity::find()
        .filter(outbox::Column::CreatedAt.lte(before))
        .order_by_asc(outbox::Column::Id)
        .limit(500)
        .all(conn)
        .await?;
    let mut changes = Vec::with_capacity(rows.len());
    for row in rows {
        match serde_json::from_str(&row.change) {
            Ok(change) => changes.push(Recorded { id: row.id, change }),
            // Written by another version: leave it to one that knows it.
            Err(err) => tracing::warn!(id = %row.id, error = %err, "unknown change in the outbox"),
        }
    }
    Ok(changes)
}

/// Deletes applied changes from `conn`'s outbox.
pub async fn forget_changes(conn: &impl ConnectionTrait, ids: &[Uuid]) -> AppResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    outbox::Entity::delete_many()
        .filter(outbox::Column::Id.is_in(ids.iter().copied()))
        .exec(conn)
        .await?;
    Ok(())
}

/// Checks that a database answers.
pub async fn ping(db: &DatabaseConnection) -> anyhow::Result<()> {
    db.execute_unprepared("SELECT 1").await?;
    Ok(())
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if is_statement_timeout(&err) {
            tracing::warn!(error = %err, "a statement ran out of time");
            return Self::Timeout;
        }
        Self::internal(err)
    }
}

/// Whether the statement timeout ended a statement (and its transaction): PostgreSQL's
/// `query_canceled` (57014), or SQLite's busy (5) / locked (6) after its busy timeout.
fn is_statement_timeout(err: &DbErr) -> bool {
    use sea_orm::RuntimeErr::SqlxError;
    let (DbErr::Query(SqlxError(e)) | DbErr::Exec(SqlxError(e)) | DbErr::Conn(SqlxError(e))) = err
    else {
        return false;
    };
    let sea_orm::sqlx::Error::Database(db) = e.as_ref() else {
        return false;
    };
    // PostgreSQL codes have five characters; SQLite's are numbers (busy and locked, with
    // their extended forms), so one list serves both.
    matches!(
        db.code().as_deref(),
        Some("57014" | "5" | "6" | "262" | "517")
    )
}

impl<T> ResultExt<T> for Result<T, DbErr> {
    fn on_unique(self, f: impl FnOnce() -> AppError) -> AppResult<T> {
        self.map_err(|e| match e.sql_err() {
            Some(SqlErr::UniqueConstraintViolation(_)) => f(),
            _ => AppError::from(e),
        })
    }
}
