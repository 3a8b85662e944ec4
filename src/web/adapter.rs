//! `WebDatabaseAdapter`: access to `exchanger_web` (SPEC §1). Queries live here; the
//! services above decide what to run and in which transaction.

use entity::web::{analytics_events, exchange_rates, orders, payments};
use sea_orm::sea_query::{Expr, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend,
    DbErr, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set, Statement, TransactionTrait,
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

    /// Inserts an order.
    pub async fn insert_order(
        conn: &impl ConnectionTrait,
        row: orders::Model,
    ) -> Result<orders::Model, DbErr> {
        orders::ActiveModel::from(row).insert(conn).await
    }

    /// Inserts an order and its analytics event atomically. PostgreSQL does both in one
    /// statement (one round trip instead of four: the hot path of `createOrder`); SQLite,
    /// which has no data-modifying CTEs, in one write transaction.
    pub async fn insert_order_with_event(
        db: &DatabaseConnection,
        row: orders::Model,
        event_type: &str,
        data: serde_json::Value,
    ) -> Result<orders::Model, DbErr> {
        let (user_id, at) = (row.user_id, row.created_at);
        if db.get_database_backend() != DbBackend::Postgres {
            let txn = db.begin_with_options(crate::db::write_txn()).await?;
            let order = Self::insert_order(&txn, row).await?;
            Self::record_event(&txn, Some(user_id), event_type, data, at).await?;
            txn.commit().await?;
            return Ok(order);
        }
        const SQL: &str = "WITH created AS (\
             INSERT INTO orders (id, user_id, from_currency, to_currency, amount, exchange_rate, \
             to_amount, paid_amount, pending_amount, status, expires_at, paid_at, created_at, \
             updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13) \
             RETURNING *), \
             recorded AS (INSERT INTO analytics_events (id, user_id, event_type, event_data, \
             created_at) VALUES ($14, $2, $15, $16, $13)) \
             SELECT * FROM created";
        let values: Vec<sea_orm::Value> = vec![
            row.id.into(),
            row.user_id.into(),
            row.from_currency.into(),
            row.to_currency.into(),
            row.amount.into(),
            row.exchange_rate.into(),
            row.to_amount.into(),
            row.paid_amount.into(),
            row.pending_amount.into(),
            row.status.into(),
            row.expires_at.into(),
            row.paid_at.into(),
            at.into(),
            Uuid::now_v7().into(),
            event_type.into(),
            data.into(),
        ];
        orders::Entity::find()
            .from_raw_sql(Statement::from_sql_and_values(
                DbBackend::Postgres,
                SQL,
                values,
            ))
            .one(db)
            .await?
            .ok_or_else(|| DbErr::RecordNotInserted)
    }

    /// The order `id`.
    pub async fn order(
        conn: &impl ConnectionTrait,
        id: Uuid,
    ) -> Result<Option<orders::Model>, DbErr> {
        orders::Entity::find_by_id(id).one(conn).await
    }

    /// The order `id`, locked until the transaction ends (`FOR UPDATE` on PostgreSQL; SQLite's
    /// write transactions are serial already).
    pub async fn lock_order(
        conn: &impl ConnectionTrait,
        id: Uuid,
    ) -> Result<Option<orders::Model>, DbErr> {
        let mut query = orders::Entity::find_by_id(id);
        if conn.get_database_backend() == DbBackend::Postgres {
            query = query.lock(LockType::Update);
        }
        query.one(conn).await
    }

    /// Orders with these ids.
    pub async fn orders_by_ids(
        conn: &impl ConnectionTrait,
        ids: &[Uuid],
    ) -> Result<Vec<orders::Model>, DbErr> {
        orders::Entity::find()
            .filter(orders::Column::Id.is_in(ids.iter().copied()))
            .all(conn)
            .await
    }

    /// Up to `limit` orders of `user_id`, newest first, older than `before` (keyset on the
    /// time-ordered UUIDv7 id, so concurrent inserts never shift a page).
    pub async fn orders_of(
        conn: &impl ConnectionTrait,
        user_id: Uuid,
        limit: u64,
        before: Option<Uuid>,
        status: Option<&str>,
    ) -> Result<Vec<orders::Model>, DbErr> {
        use orders::Column as C;
        let mut query = orders::Entity::find().filter(C::UserId.eq(user_id));
        if let Some(before) = before {
            query = query.filter(C::Id.lt(before));
        }
        if let Some(status) = status {
            query = query.filter(C::Status.eq(status));
        }
        query.order_by_desc(C::Id).limit(limit).all(conn).await
    }

    /// Ids of pending orders whose window has passed with nothing pending under them.
    pub async fn due_orders(
        conn: &impl ConnectionTrait,
        at: DateTime,
        limit: u64,
    ) -> Result<Vec<Uuid>, DbErr> {
        use orders::Column as C;
        Ok(orders::Entity::find()
            .filter(C::Status.eq("pending"))
            .filter(C::ExpiresAt.lte(at))
            .order_by_asc(C::ExpiresAt)
            .limit(limit)
            .all(conn)
            .await?
            .into_iter()
            .filter(|o| o.pending_amount.0.is_zero())
            .map(|o| o.id)
            .collect())
    }

    /// Sets an order's status.
    pub async fn set_order_status(
        conn: &impl ConnectionTrait,
        id: Uuid,
        status: &str,
        at: DateTime,
    ) -> Result<(), DbErr> {
        use orders::Column as C;
        orders::Entity::update_many()
            .col_expr(C::Status, Expr::value(status))
            .col_expr(C::UpdatedAt, Expr::value(at))
            .filter(C::Id.eq(id))
            .exec(conn)
            .await?;
        Ok(())
    }

    /// Sets an order's paid and pending sums (and `paid_at` when it just became paid).
    pub async fn set_order_amounts(
        conn: &impl ConnectionTrait,
        order: &crate::web::orders::Order,
        paid: rust_decimal::Decimal,
        pending: rust_decimal::Decimal,
        paid_at: Option<DateTime>,
        at: DateTime,
    ) -> Result<(), DbErr> {
        use orders::Column as C;
        let mut update = orders::Entity::update_many()
            .col_expr(C::PaidAmount, Expr::value(entity::ExactDecimal(paid)))
            .col_expr(C::PendingAmount, Expr::value(entity::ExactDecimal(pending)))
            .col_expr(C::UpdatedAt, Expr::value(at));
        if let Some(paid_at) = paid_at {
            update = update.col_expr(C::PaidAt, Expr::value(paid_at));
        }
        update.filter(C::Id.eq(order.id)).exec(conn).await?;
        Ok(())
    }

    /// Inserts a payment.
    pub async fn insert_payment(
        conn: &impl ConnectionTrait,
        row: payments::Model,
    ) -> Result<payments::Model, DbErr> {
        payments::ActiveModel::from(row).insert(conn).await
    }

    /// The payment `id`.
    pub async fn payment(
        conn: &impl ConnectionTrait,
        id: Uuid,
    ) -> Result<Option<payments::Model>, DbErr> {
        payments::Entity::find_by_id(id).one(conn).await
    }

    /// The payment `user_id` made with `key`.
    pub async fn payment_by_key(
        conn: &impl ConnectionTrait,
        user_id: Uuid,
        key: &str,
    ) -> Result<Option<payments::Model>, DbErr> {
        payments::Entity::find()
            .filter(payments::Column::UserId.eq(user_id))
            .filter(payments::Column::IdempotencyKey.eq(key))
            .one(conn)
            .await
    }

    /// Payments of these orders, oldest first.
    pub async fn payments_of_orders(
        conn: &impl ConnectionTrait,
        order_ids: &[Uuid],
    ) -> Result<Vec<payments::Model>, DbErr> {
        payments::Entity::find()
            .filter(payments::Column::OrderId.is_in(order_ids.iter().copied()))
            .order_by_asc(payments::Column::Id)
            .all(conn)
            .await
    }

    /// Sets a payment's status.
    pub async fn set_payment_status(
        conn: &impl ConnectionTrait,
        id: Uuid,
        status: &str,
        at: DateTime,
    ) -> Result<(), DbErr> {
        use payments::Column as C;
        payments::Entity::update_many()
            .col_expr(C::Status, Expr::value(status))
            .col_expr(C::UpdatedAt, Expr::value(at))
            .filter(C::Id.eq(id))
            .exec(conn)
            .await?;
        Ok(())
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
