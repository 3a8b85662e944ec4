//! `WebDatabaseAdapter`: access to `exchanger_web` (SPEC §1). Queries live here; the
//! services above decide what to run and in which transaction.

use entity::web::{analytics_events, exchange_rates};
use sea_orm::sea_query::{Expr, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend,
    DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement,
};
use uuid::Uuid;

use crate::domain::CurrencyPair;

type DateTime = chrono::DateTime<chrono::Utc>;

/// The web database.
#[derive(Clone, Debug)]
pub struct WebDatabaseAdapter {
    db: DatabaseConnection,
}

impl WebDatabaseAdapter {
    /// Wraps a connection to `exchanger_web`.
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The connection (for transactions started by services).
    pub fn conn(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The backend, for the few places SQL differs.
    pub fn backend(&self) -> DbBackend {
        self.db.get_database_backend()
    }

    /// Serialises writers of one currency pair until the transaction ends. SQLite needs
    /// nothing: its write transactions (`IMMEDIATE`) are already serial.
    pub async fn lock_pair(conn: &impl ConnectionTrait, pair: &CurrencyPair) -> Result<(), DbErr> {
        if conn.get_database_backend() == DbBackend::Postgres {
            let key = format!("exchange_rates:{}_{}", pair.from, pair.to);
            conn.execute_raw(Statement::from_sql_and_values(
                DbBackend::Postgres,
                "SELECT pg_advisory_xact_lock(hashtext($1))",
                [key.into()],
            ))
            .await?;
        }
        Ok(())
    }

    /// The rate of `pair` valid at `at`.
    pub async fn rate_at(
        conn: &impl ConnectionTrait,
        pair: &CurrencyPair,
        at: DateTime,
    ) -> Result<Option<exchange_rates::Model>, DbErr> {
        use exchange_rates::Column as C;
        exchange_rates::Entity::find()
            .filter(C::FromCurrency.eq(pair.from.as_str()))
            .filter(C::ToCurrency.eq(pair.to.as_str()))
            .filter(C::ValidFrom.lte(at))
            .filter(
                Condition::any()
                    .add(C::ValidUntil.is_null())
                    .add(C::ValidUntil.gt(at)),
            )
            .order_by_desc(C::ValidFrom)
            .one(conn)
            .await
    }

    /// Every pair's rate valid at `at`, ordered by pair.
    pub async fn rates_at(
        conn: &impl ConnectionTrait,
        at: DateTime,
    ) -> Result<Vec<exchange_rates::Model>, DbErr> {
        use exchange_rates::Column as C;
        exchange_rates::Entity::find()
            .filter(C::ValidFrom.lte(at))
            .filter(
                Condition::any()
                    .add(C::ValidUntil.is_null())
                    .add(C::ValidUntil.gt(at)),
            )
            .order_by_asc(C::FromCurrency)
            .order_by_asc(C::ToCurrency)
            .order_by_desc(C::ValidFrom)
            .all(conn)
            .await
    }

    /// The earliest `valid_from` after `at` of any pair (when the set of current rates next
    /// changes by itself).
    pub async fn next_rate_start(
        conn: &impl ConnectionTrait,
        at: DateTime,
    ) -> Result<Option<DateTime>, DbErr> {
        use exchange_rates::Column as C;
        Ok(exchange_rates::Entity::find()
            .filter(C::ValidFrom.gt(at))
            .order_by_asc(C::ValidFrom)
            .one(conn)
            .await?
            .map(|m| m.valid_from))
    }

    /// The newest rate of `pair` by `valid_from` (current or scheduled), locked for update
    /// where the backend supports it.
    pub async fn latest_rate(
        conn: &impl ConnectionTrait,
        pair: &CurrencyPair,
    ) -> Result<Option<exchange_rates::Model>, DbErr> {
        use exchange_rates::Column as C;
        let mut query = exchange_rates::Entity::find()
            .filter(C::FromCurrency.eq(pair.from.as_str()))
            .filter(C::ToCurrency.eq(pair.to.as_str()))
            .order_by_desc(C::ValidFrom);
        if conn.get_database_backend() == DbBackend::Postgres {
            query = query.lock(LockType::Update);
        }
        query.one(conn).await
    }

    /// Closes a rate at `until`.
    pub async fn close_rate(
        conn: &impl ConnectionTrait,
        id: Uuid,
        until: DateTime,
    ) -> Result<(), DbErr> {
        use exchange_rates::Column as C;
        exchange_rates::Entity::update_many()
            .col_expr(C::ValidUntil, Expr::value(until))
            .filter(C::Id.eq(id))
            .exec(conn)
            .await?;
        Ok(())
    }

    /// Inserts a rate.
    pub async fn insert_rate(
        conn: &impl ConnectionTrait,
        row: exchange_rates::Model,
    ) -> Result<exchange_rates::Model, DbErr> {
        exchange_rates::ActiveModel::from(row).insert(conn).await
    }

    /// Rates of `pair`, newest `valid_from` first.
    pub async fn rate_history(
        &self,
        pair: &CurrencyPair,
        limit: u64,
    ) -> Result<Vec<exchange_rates::Model>, DbErr> {
        use exchange_rates::Column as C;
        exchange_rates::Entity::find()
            .filter(C::FromCurrency.eq(pair.from.as_str()))
            .filter(C::ToCurrency.eq(pair.to.as_str()))
            .order_by_desc(C::ValidFrom)
            .limit(limit)
            .all(&self.db)
            .await
    }

    /// Records an analytics event (inside the caller's transaction).
    pub async fn record_event(
        conn: &impl ConnectionTrait,
        user_id: Option<Uuid>,
        event_type: &str,
        data: serde_json::Value,
        at: DateTime,
    ) -> Result<(), DbErr> {
        analytics_events::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(user_id),
            event_type: Set(event_type.to_owned()),
            event_data: Set(Some(data)),
            created_at: Set(at),
        }
        .insert(conn)
        .await?;
        Ok(())
    }
}
