//! `WebDatabaseAdapter`: the only code that knows how `exchanger_web` is stored (SPEC §1, §2).
//! Services exchange domain values with it; it turns them into SeaORM queries and rows.
//!
//! `WebDatabaseAdapter` reads and writes on the pool; `begin_write` opens a
//! `WebTransaction`, which has the same reads plus the locks and writes a service groups
//! into one transaction. Both are `WebDb` over a different connection.

use crate::clock::DateTime;
use crate::db::write_txn;
use crate::domain::analytics::{EventCount, PairVolume};
use crate::domain::{
    Change, CurrencyPair, DailyAnalytics, ExchangeRate, NewEvent, NewOrder, NewPayment, Order,
    OrderStatus, Payment, PaymentStatus, Recorded,
};
use crate::error::{AppError, AppResult, ResultExt};
use chrono::NaiveDate;
use entity::ExactDecimal;
use entity::web::{analytics_events, exchange_rates, orders, payments};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection,
    DatabaseTransaction, DbBackend, EntityTrait, QueryFilter, QueryOrder, QuerySelect, Set,
    Statement, TransactionTrait,
};
use uuid::Uuid;

/// The web database over some connection: the pool or one open transaction.
#[derive(Clone, Debug)]
pub struct WebDb<C> {
    conn: C,
}

/// The web database, on the pool.
pub type WebDatabaseAdapter = WebDb<DatabaseConnection>;

/// One write transaction on the web database. Dropped without `commit`, it rolls back.
pub type WebTransaction = WebDb<DatabaseTransaction>;

/// What became of a new order.
#[derive(Clone, Debug)]
pub enum OrderInsert {
    /// Stored.
    Placed(Box<Order>),
    /// The rate it would lock is no longer valid (it was closed after it was read).
    RateClosed,
    /// The user already placed an order with this idempotency key.
    KeyUsed,
}

/// Every rate valid at one moment, and when that set next changes by itself.
#[derive(Clone, Debug)]
pub struct CurrentRates {
    /// One rate per pair, ordered by pair.
    pub rates: Vec<ExchangeRate>,
    /// The earliest end or start of validity after that moment, if any.
    pub next_change: Option<DateTime>,
}

impl WebDatabaseAdapter {
    /// Wraps a connection to `exchanger_web`.
    pub fn new(conn: DatabaseConnection) -> Self {
        Self { conn }
    }

    /// Starts a write transaction (on SQLite it takes the write lock at once).
    pub async fn begin_write(&self) -> AppResult<WebTransaction> {
        Ok(WebDb {
            conn: self.conn.begin_with_options(write_txn()).await?,
        })
    }

    /// Stores a new order and its analytics event atomically, provided the rate it locks is
    /// still the valid one and the client's idempotency key is new. PostgreSQL does it in one
    /// statement (one round trip: the hot path of `createOrder`); SQLite, which has no
    /// data-modifying CTEs, in one write transaction.
    pub async fn insert_order_with_event(
        &self,
        new: &NewOrder,
        event: NewEvent,
    ) -> AppResult<OrderInsert> {
        let placed = if self.conn.get_database_backend() == DbBackend::Postgres {
            self.insert_order_in_one_statement(new, event).await
        } else {
            let txn = self.begin_write().await?;
            if !txn.rate_is_valid(new.rate_id, new.created_at).await? {
                return Ok(OrderInsert::RateClosed);
            }
            match txn.insert_order(new).await {
                Ok(order) => {
                    txn.record_event(event).await?;
                    txn.commit().await?;
                    Ok(Some(order))
                }
                Err(err) => Err(err),
            }
        };
        match placed {
            Ok(Some(order)) => Ok(OrderInsert::Placed(Box::new(order))),
            Ok(None) => Ok(OrderInsert::RateClosed),
            Err(AppError::Conflict(_)) => Ok(OrderInsert::KeyUsed),
            Err(err) => Err(err),
        }
    }

    async fn insert_order_in_one_statement(
        &self,
        new: &NewOrder,
        event: NewEvent,
    ) -> AppResult<Option<Order>> {
        const SQL: &str = "WITH created AS (\
             INSERT INTO orders (id, user_id, from_currency, to_currency, amount, exchange_rate, \
             to_amount, paid_amount, pending_amount, status, expires_at, paid_at, created_at, \
             updated_at, idempotency_key) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $19 \
             WHERE EXISTS (SELECT 1 FROM exchange_rates WHERE id = $20 AND valid_from <= $13 \
             AND (valid_until IS NULL OR valid_until > $13)) \
             RETURNING *), \
             recorded AS (INSERT INTO analytics_events (id, user_id, event_type, event_data, \
             created_at) SELECT $14, $15, $16, $17, $18 FROM created) \
             SELECT * FROM created";
        let row = order_row(new);
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
            row.created_at.into(),
            Uuid::now_v7().into(),
            event.user_id.into(),
            event.event_type.into(),
            event.data.into(),
            event.at.into(),
            row.idempotency_key.into(),
            new.rate_id.into(),
        ];
        orders::Entity::find()
            .from_raw_sql(Statement::from_sql_and_values(
                DbBackend::Postgres,
                SQL,
                values,
            ))
            .one(&self.conn)
            .await
            .on_unique(|| AppError::conflict("idempotencyKey used"))?
            .map(order)
            .transpose()
    }

    /// The order `user_id` placed with idempotency key `key`.
    pub async fn order_by_key(&self, user_id: Uuid, key: &str) -> AppResult<Option<Order>> {
        orders::Entity::find()
            .filter(orders::Column::UserId.eq(user_id))
            .filter(orders::Column::IdempotencyKey.eq(key))
            .one(&self.conn)
            .await?
            .map(order)
            .transpose()
    }

    /// Takes (or renews) the lease `name` for `holder` until `until`, unless another holder
    /// has it past `now`; whether `holder` has it.
    pub async fn take_lease(
        &self,
        name: &str,
        holder: &str,
        now: DateTime,
        until: DateTime,
    ) -> AppResult<bool> {
        let backend = self.conn.get_database_backend();
        let sql = match backend {
            DbBackend::Postgres => {
                "INSERT INTO leases (name, holder, expires_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at \
                 WHERE leases.expires_at < $4 OR leases.holder = excluded.holder"
            }
            _ => {
                "INSERT INTO leases (name, holder, expires_at) VALUES (?, ?, ?) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, \
                 expires_at = excluded.expires_at \
                 WHERE leases.expires_at < ? OR leases.holder = excluded.holder"
            }
        };
        let taken = self
            .conn
            .execute_raw(Statement::from_sql_and_values(
                backend,
                sql,
                [name.into(), holder.into(), until.into(), now.into()],
            ))
            .await?;
        Ok(taken.rows_affected() == 1)
    }

    /// Rates of `pair`, newest `valid_from` first.
    pub async fn rate_history(
        &self,
        pair: &CurrencyPair,
        limit: u64,
    ) -> AppResult<Vec<ExchangeRate>> {
        use exchange_rates::Column as C;
        Ok(exchange_rates::Entity::find()
            .filter(C::FromCurrency.eq(pair.from.as_str()))
            .filter(C::ToCurrency.eq(pair.to.as_str()))
            .order_by_desc(C::ValidFrom)
            .limit(limit)
            .all(&self.conn)
            .await?
            .into_iter()
            .map(exchange_rate)
            .collect())
    }

    /// Orders with these ids.
    pub async fn orders_by_ids(&self, ids: &[Uuid]) -> AppResult<Vec<Order>> {
        orders::Entity::find()
            .filter(orders::Column::Id.is_in(ids.iter().copied()))
            .all(&self.conn)
            .await?
            .into_iter()
            .map(order)
            .collect()
    }

    /// Up to `limit` orders of `user_id`, newest first, older than `before` (keyset on the
    /// time-ordered UUIDv7 id, so concurrent inserts never shift a page).
    pub async fn orders_of(
        &self,
        user_id: Uuid,
        limit: u64,
        before: Option<Uuid>,
        status: Option<OrderStatus>,
    ) -> AppResult<Vec<Order>> {
        use orders::Column as C;
        let mut query = orders::Entity::find().filter(C::UserId.eq(user_id));
        if let Some(before) = before {
            query = query.filter(C::Id.lt(before));
        }
        if let Some(status) = status {
            query = query.filter(C::Status.eq(status.as_str()));
        }
        query
            .order_by_desc(C::Id)
            .limit(limit)
            .all(&self.conn)
            .await?
            .into_iter()
            .map(order)
            .collect()
    }

    /// Ids of pending orders whose window has passed with nothing pending under them.
    pub async fn due_orders(&self, at: DateTime, limit: u64) -> AppResult<Vec<Uuid>> {
        use orders::Column as C;
        Ok(orders::Entity::find()
            .filter(C::Status.eq(OrderStatus::Pending.as_str()))
            .filter(C::ExpiresAt.lte(at))
            .order_by_asc(C::ExpiresAt)
            .limit(limit)
            .all(&self.conn)
            .await?
            .into_iter()
            .filter(|o| o.pending_amount.0.is_zero())
            .map(|o| o.id)
            .collect())
    }

    /// Payments of these orders, oldest first.
    pub async fn payments_of_orders(&self, order_ids: &[Uuid]) -> AppResult<Vec<Payment>> {
        payments::Entity::find()
            .filter(payments::Column::OrderId.is_in(order_ids.iter().copied()))
            .order_by_asc(payments::Column::Id)
            .all(&self.conn)
            .await?
            .into_iter()
            .map(payment)
            .collect()
    }

    /// Counts by event type and volumes by pair (orders paid that day) of one UTC day.
    pub async fn daily_analytics(&self, date: NaiveDate) -> AppResult<DailyAnalytics> {
        let start = date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or_default();
        let end = start + chrono::Duration::days(1);
        let backend = self.conn.get_database_backend();
        let (p1, p2) = match backend {
            DbBackend::Postgres => ("$1", "$2"),
            _ => ("?", "?"),
        };

        let events_sql = format!(
            "SELECT event_type, COUNT(*) AS n FROM analytics_events \
             WHERE created_at >= {p1} AND created_at < {p2} GROUP BY event_type ORDER BY event_type"
        );
        let rows = self
            .conn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                events_sql,
                [start.into(), end.into()],
            ))
            .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            events.push(EventCount {
                event_type: row.try_get("", "event_type")?,
                count: row.try_get("", "n")?,
            });
        }

        // SQLite keeps money as canonical text with exactly 8 decimal places. Summing the
        // whole parts and the 8-digit fractions as separate integers stays exact (SUM over
        // the text would go through floats) and cannot overflow 64 bits for any real day.
        let (sum_amount, sum_to_amount) = match backend {
            DbBackend::Postgres => (
                "SUM(amount) AS amount".to_owned(),
                "SUM(to_amount) AS to_amount".to_owned(),
            ),
            _ => (sqlite_money_sum("amount"), sqlite_money_sum("to_amount")),
        };
        let volume_sql = format!(
            "SELECT from_currency, to_currency, COUNT(*) AS n, {sum_amount}, \
             {sum_to_amount} FROM orders \
             WHERE paid_at >= {p1} AND paid_at < {p2} \
             GROUP BY from_currency, to_currency ORDER BY from_currency, to_currency"
        );
        let rows = self
            .conn
            .query_all_raw(Statement::from_sql_and_values(
                backend,
                volume_sql,
                [start.into(), end.into()],
            ))
            .await?;
        let mut volumes = Vec::with_capacity(rows.len());
        for row in rows {
            let (amount, to_amount) = match backend {
                DbBackend::Postgres => (
                    row.try_get::<Decimal>("", "amount")?,
                    row.try_get::<Decimal>("", "to_amount")?,
                ),
                _ => (
                    Decimal::from(row.try_get::<i64>("", "amount_int")?)
                        + Decimal::new(row.try_get::<i64>("", "amount_frac")?, 8),
                    Decimal::from(row.try_get::<i64>("", "to_amount_int")?)
                        + Decimal::new(row.try_get::<i64>("", "to_amount_frac")?, 8),
                ),
            };
            volumes.push(PairVolume {
                from_currency: row.try_get("", "from_currency")?,
                to_currency: row.try_get("", "to_currency")?,
                orders: row.try_get("", "n")?,
                amount,
                to_amount,
            });
        }
        Ok(DailyAnalytics {
            date,
            events,
            volumes,
        })
    }
}

/// Reads that run on the pool or inside a transaction, and the event record both use.
impl<C: ConnectionTrait> WebDb<C> {
    /// The rate of `pair` valid at `at`.
    pub async fn rate_at(
        &self,
        pair: &CurrencyPair,
        at: DateTime,
    ) -> AppResult<Option<ExchangeRate>> {
        use exchange_rates::Column as C;
        Ok(exchange_rates::Entity::find()
            .filter(C::FromCurrency.eq(pair.from.as_str()))
            .filter(C::ToCurrency.eq(pair.to.as_str()))
            .filter(C::ValidFrom.lte(at))
            .filter(
                Condition::any()
                    .add(C::ValidUntil.is_null())
                    .add(C::ValidUntil.gt(at)),
            )
            .order_by_desc(C::ValidFrom)
            .one(&self.conn)
            .await?
            .map(exchange_rate))
    }

    /// When the next rate of `pair` after `at` starts, if one is scheduled.
    pub async fn next_rate_start(
        &self,
        pair: &CurrencyPair,
        at: DateTime,
    ) -> AppResult<Option<DateTime>> {
        use exchange_rates::Column as C;
        Ok(exchange_rates::Entity::find()
            .filter(C::FromCurrency.eq(pair.from.as_str()))
            .filter(C::ToCurrency.eq(pair.to.as_str()))
            .filter(C::ValidFrom.gt(at))
            .order_by_asc(C::ValidFrom)
            .one(&self.conn)
            .await?
            .map(|r| r.valid_from))
    }

    /// Every pair's rate valid at `at`, and when that set next changes by itself.
    pub async fn current_rates(&self, at: DateTime) -> AppResult<CurrentRates> {
        use exchange_rates::Column as C;
        let rows = exchange_rates::Entity::find()
            .filter(C::ValidFrom.lte(at))
            .filter(
                Condition::any()
                    .add(C::ValidUntil.is_null())
                    .add(C::ValidUntil.gt(at)),
            )
            .order_by_asc(C::FromCurrency)
            .order_by_asc(C::ToCurrency)
            .order_by_desc(C::ValidFrom)
            .all(&self.conn)
            .await?;
        let mut rates: Vec<ExchangeRate> = Vec::new();
        for row in rows {
            // Ordered by pair, newest first: keep the first row of each pair.
            let same_pair = rates.last().is_some_and(|r| {
                r.from_currency == row.from_currency && r.to_currency == row.to_currency
            });
            if !same_pair {
                rates.push(exchange_rate(row));
            }
        }
        let next_start = exchange_rates::Entity::find()
            .filter(C::ValidFrom.gt(at))
            .order_by_asc(C::ValidFrom)
            .one(&self.conn)
            .await?
            .map(|m| m.valid_from);
        let next_change = rates
            .iter()
            .filter_map(|r| r.valid_until)
            .chain(next_start)
            .min();
        Ok(CurrentRates { rates, next_change })
    }

    /// The order `id`.
    pub async fn order(&self, id: Uuid) -> AppResult<Option<Order>> {
        orders::Entity::find_by_id(id)
            .one(&self.conn)
            .await?
            .map(order)
            .transpose()
    }

    /// The payment `id`.
    pub async fn payment(&self, id: Uuid) -> AppResult<Option<Payment>> {
        payments::Entity::find_by_id(id)
            .one(&self.conn)
            .await?
            .map(payment)
            .transpose()
    }

    /// The payment `user_id` made with `key`.
    pub async fn payment_by_key(&self, user_id: Uuid, key: &str) -> AppResult<Option<Payment>> {
        payments::Entity::find()
            .filter(payments::Column::UserId.eq(user_id))
            .filter(payments::Column::IdempotencyKey.eq(key))
            .one(&self.conn)
            .await?
            .map(payment)
            .transpose()
    }

    /// Whether the rate `id` is valid at `at`.
    pub async fn rate_is_valid(&self, id: Uuid, at: DateTime) -> AppResult<bool> {
        use exchange_rates::Column as C;
        Ok(exchange_rates::Entity::find_by_id(id)
            .filter(C::ValidFrom.lte(at))
            .filter(
                Condition::any()
                    .add(C::ValidUntil.is_null())
                    .add(C::ValidUntil.gt(at)),
            )
            .one(&self.conn)
            .await?
            .is_some())
    }

    /// Records `change` in this database's outbox (inside the caller's transaction, so it
    /// commits with the write it describes).
    pub async fn record_change(&self, change: Change) -> AppResult<Recorded> {
        crate::db::record_change(&self.conn, change).await
    }

    /// Records an analytics event.
    pub async fn record_event(&self, event: NewEvent) -> AppResult<()> {
        analytics_events::ActiveModel {
            id: Set(Uuid::now_v7()),
            user_id: Set(event.user_id),
            event_type: Set(event.event_type.to_owned()),
            event_data: Set(Some(event.data)),
            created_at: Set(event.at),
        }
        .insert(&self.conn)
        .await?;
        Ok(())
    }
}

/// Locks and writes, inside one transaction.
impl WebTransaction {
    /// Makes the transaction's writes permanent.
    pub async fn commit(self) -> AppResult<()> {
        Ok(self.conn.commit().await?)
    }

    /// Serialises writers of one currency pair until the transaction ends. SQLite needs
    /// nothing: its write transactions (`IMMEDIATE`) are already serial.
    pub async fn lock_pair(&self, pair: &CurrencyPair) -> AppResult<()> {
        if self.conn.get_database_backend() == DbBackend::Postgres {
            let key = format!("exchange_rates:{}_{}", pair.from, pair.to);
            self.conn
                .execute_raw(Statement::from_sql_and_values(
                    DbBackend::Postgres,
                    "SELECT pg_advisory_xact_lock(hashtext($1))",
                    [key.into()],
                ))
                .await?;
        }
        Ok(())
    }

    /// The newest rate of `pair` by `valid_from` (current or scheduled), locked for update
    /// where the backend supports it.
    pub async fn latest_rate(&self, pair: &CurrencyPair) -> AppResult<Option<ExchangeRate>> {
        use exchange_rates::Column as C;
        let mut query = exchange_rates::Entity::find()
            .filter(C::FromCurrency.eq(pair.from.as_str()))
            .filter(C::ToCurrency.eq(pair.to.as_str()))
            .order_by_desc(C::ValidFrom);
        if self.conn.get_database_backend() == DbBackend::Postgres {
            query = query.lock(LockType::Update);
        }
        Ok(query.one(&self.conn).await?.map(exchange_rate))
    }

    /// Closes a rate at `until`.
    pub async fn close_rate(&self, id: Uuid, until: DateTime) -> AppResult<()> {
        use exchange_rates::Column as C;
        exchange_rates::Entity::update_many()
            .col_expr(C::ValidUntil, Expr::value(until))
            .filter(C::Id.eq(id))
            .exec(&self.conn)
            .await?;
        Ok(())
    }

    /// Inserts a rate (its `id` is new, `valid_from`/`valid_until` already decided).
    pub async fn insert_rate(&self, rate: &ExchangeRate, at: DateTime) -> AppResult<ExchangeRate> {
        let row = exchange_rates::ActiveModel {
            id: Set(rate.id),
            from_currency: Set(rate.from_currency.clone()),
            to_currency: Set(rate.to_currency.clone()),
            rate: Set(rate.rate.into()),
            valid_from: Set(rate.valid_from),
            valid_until: Set(rate.valid_until),
            created_at: Set(at),
        }
        .insert(&self.conn)
        .await?;
        Ok(exchange_rate(row))
    }

    /// Inserts a new order; `CONFLICT` when the user already used its idempotency key.
    pub async fn insert_order(&self, new: &NewOrder) -> AppResult<Order> {
        let row = orders::ActiveModel::from(order_row(new))
            .insert(&self.conn)
            .await
            .on_unique(|| AppError::conflict("idempotencyKey used"))?;
        order(row)
    }

    /// The order `id`, locked until the transaction ends (`FOR UPDATE` on PostgreSQL; SQLite's
    /// write transactions are serial already).
    pub async fn lock_order(&self, id: Uuid) -> AppResult<Option<Order>> {
        let mut query = orders::Entity::find_by_id(id);
        if self.conn.get_database_backend() == DbBackend::Postgres {
            query = query.lock(LockType::Update);
        }
        query.one(&self.conn).await?.map(order).transpose()
    }

    /// Sets an order's status.
    pub async fn set_order_status(
        &self,
        id: Uuid,
        status: OrderStatus,
        at: DateTime,
    ) -> AppResult<()> {
        use orders::Column as C;
        orders::Entity::update_many()
            .col_expr(C::Status, Expr::value(status.as_str()))
            .col_expr(C::UpdatedAt, Expr::value(at))
            .filter(C::Id.eq(id))
            .exec(&self.conn)
            .await?;
        Ok(())
    }

    /// Sets an order's paid and pending sums (and `paid_at` when it just became paid).
    pub async fn set_order_amounts(
        &self,
        id: Uuid,
        paid: Decimal,
        pending: Decimal,
        paid_at: Option<DateTime>,
        at: DateTime,
    ) -> AppResult<()> {
        use orders::Column as C;
        let mut update = orders::Entity::update_many()
            .col_expr(C::PaidAmount, Expr::value(ExactDecimal(paid)))
            .col_expr(C::PendingAmount, Expr::value(ExactDecimal(pending)))
            .col_expr(C::UpdatedAt, Expr::value(at));
        if let Some(paid_at) = paid_at {
            update = update.col_expr(C::PaidAt, Expr::value(paid_at));
        }
        update.filter(C::Id.eq(id)).exec(&self.conn).await?;
        Ok(())
    }

    /// Inserts a pending payment of `user_id`; `CONFLICT` when the user already used its
    /// idempotency key.
    pub async fn insert_payment(
        &self,
        id: Uuid,
        user_id: Uuid,
        new: &NewPayment,
        at: DateTime,
    ) -> AppResult<Payment> {
        let row = payments::ActiveModel {
            id: Set(id),
            order_id: Set(new.order_id),
            user_id: Set(user_id),
            payment_method: Set(new.payment_method.clone()),
            amount: Set(new.amount.get().into()),
            status: Set(PaymentStatus::Pending.as_str().to_owned()),
            idempotency_key: Set(new.idempotency_key.clone()),
            created_at: Set(at),
            updated_at: Set(at),
        }
        .insert(&self.conn)
        .await
        .on_unique(|| AppError::conflict("duplicate idempotencyKey"))?;
        payment(row)
    }

    /// Sets a payment's status.
    pub async fn set_payment_status(
        &self,
        id: Uuid,
        status: PaymentStatus,
        at: DateTime,
    ) -> AppResult<()> {
        use payments::Column as C;
        payments::Entity::update_many()
            .col_expr(C::Status, Expr::value(status.as_str()))
            .col_expr(C::UpdatedAt, Expr::value(at))
            .filter(C::Id.eq(id))
            .exec(&self.conn)
            .await?;
        Ok(())
    }
}

fn order_row(new: &NewOrder) -> orders::Model {
    orders::Model {
        id: new.id,
        user_id: new.user_id,
        from_currency: new.pair.from.as_str().to_owned(),
        to_currency: new.pair.to.as_str().to_owned(),
        amount: new.amount.get().into(),
        exchange_rate: new.rate.into(),
        to_amount: new.to_amount.into(),
        paid_amount: Decimal::ZERO.into(),
        pending_amount: Decimal::ZERO.into(),
        status: OrderStatus::Pending.as_str().to_owned(),
        expires_at: new.expires_at,
        paid_at: None,
        created_at: new.created_at,
        updated_at: new.created_at,
        idempotency_key: new.idempotency_key.clone(),
    }
}

fn exchange_rate(m: exchange_rates::Model) -> ExchangeRate {
    ExchangeRate {
        id: m.id,
        from_currency: m.from_currency,
        to_currency: m.to_currency,
        rate: m.rate.0,
        valid_from: m.valid_from,
        valid_until: m.valid_until,
    }
}

fn order(m: orders::Model) -> AppResult<Order> {
    let status = OrderStatus::from_db(&m.status).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "order {} has unknown status {:?}",
            m.id,
            m.status
        ))
    })?;
    Ok(Order {
        id: m.id,
        user_id: m.user_id,
        from_currency: m.from_currency,
        to_currency: m.to_currency,
        amount: m.amount.0,
        exchange_rate: m.exchange_rate.0,
        to_amount: m.to_amount.0,
        status,
        paid_amount: m.paid_amount.0,
        pending_amount: m.pending_amount.0,
        expires_at: m.expires_at,
        created_at: m.created_at,
        updated_at: m.updated_at,
        idempotency_key: m.idempotency_key,
    })
}

fn payment(m: payments::Model) -> AppResult<Payment> {
    let status = PaymentStatus::from_db(&m.status).ok_or_else(|| {
        AppError::internal(anyhow::anyhow!(
            "payment {} has unknown status {:?}",
            m.id,
            m.status
        ))
    })?;
    Ok(Payment {
        id: m.id,
        order_id: m.order_id,
        user_id: m.user_id,
        payment_method: m.payment_method,
        amount: m.amount.0,
        status,
        idempotency_key: m.idempotency_key,
        created_at: m.created_at,
    })
}

/// SQLite: `{col}_int` and `{col}_frac` sums of a canonical money text column.
fn sqlite_money_sum(col: &str) -> String {
    format!(
        "SUM(CAST(substr({col}, 1, instr({col}, '.') - 1) AS INTEGER)) AS {col}_int, \
         SUM(CAST(substr({col}, instr({col}, '.') + 1) AS INTEGER)) AS {col}_frac"
    )
}
