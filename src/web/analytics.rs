//! Analytics (SPEC §3): key actions recorded in `analytics_events`, and `dailyAnalytics`
//! computed by the database and cached under `cache:{ctx}:analytics:daily:{date}`.

use crate::cache::{Cache, keys};
use crate::error::AppResult;
use crate::identity::IdentityEvents;
use crate::web::{WebDatabaseAdapter, now};
use chrono::NaiveDate;
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DbBackend, Statement};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use uuid::Uuid;

/// Event types recorded (SPEC §3 "key actions").
pub mod event {
    /// An account was created.
    pub const USER_REGISTERED: &str = "user_registered";
    /// A sign-in succeeded.
    pub const USER_LOGGED_IN: &str = "user_logged_in";
    /// A sign-in failed.
    pub const LOGIN_FAILED: &str = "login_failed";
    /// An order was placed.
    pub const ORDER_CREATED: &str = "order_created";
    /// An order was cancelled by its owner.
    pub const ORDER_CANCELLED: &str = "order_cancelled";
    /// Succeeded payments covered an order.
    pub const ORDER_PAID: &str = "order_paid";
    /// An operator completed an order.
    pub const ORDER_COMPLETED: &str = "order_completed";
    /// An order's payment window passed.
    pub const ORDER_EXPIRED: &str = "order_expired";
    /// A payment was created.
    pub const PAYMENT_CREATED: &str = "payment_created";
    /// A payment was settled.
    pub const PAYMENT_SETTLED: &str = "payment_settled";
}

/// How many events of one type happened.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCount {
    /// Event type.
    pub event_type: String,
    /// Count.
    pub count: i64,
}

/// Order volume of one currency pair (orders paid that day).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairVolume {
    /// Currency sold.
    pub from_currency: String,
    /// Currency bought.
    pub to_currency: String,
    /// Orders paid.
    pub orders: i64,
    /// Sum of amounts sold.
    pub amount: Decimal,
    /// Sum of amounts bought.
    pub to_amount: Decimal,
}

/// One UTC day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyAnalytics {
    /// The day.
    pub date: NaiveDate,
    /// Events by type.
    pub events: Vec<EventCount>,
    /// Volume by pair.
    pub volumes: Vec<PairVolume>,
}

/// Analytics service.
pub struct AnalyticsService {
    adapter: WebDatabaseAdapter,
    cache: Arc<Cache>,
    keys: keys::Keys,
}

impl AnalyticsService {
    /// A service over the web database and the cache.
    pub fn new(adapter: WebDatabaseAdapter, cache: Arc<Cache>, keys: keys::Keys) -> Self {
        Self {
            adapter,
            cache,
            keys,
        }
    }

    /// The key of the report an event recorded at `at` belongs to (its UTC day), which
    /// that event makes stale.
    pub fn day_key(&self, at: chrono::DateTime<chrono::Utc>) -> String {
        self.keys.daily_analytics(at.date_naive())
    }

    /// Counts and volumes of `date` (UTC).
    pub async fn daily(&self, date: NaiveDate) -> AppResult<DailyAnalytics> {
        let key = self.keys.daily_analytics(date);
        let (cached, token) = self.cache.get::<DailyAnalytics>(&key).await;
        if let Some(cached) = cached {
            return Ok(cached);
        }
        let report = self.compute(date).await?;
        self.cache
            .fill(&key, token, &report, keys::ANALYTICS_TTL)
            .await;
        Ok(report)
    }

    async fn compute(&self, date: NaiveDate) -> AppResult<DailyAnalytics> {
        let start = date
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or_default();
        let end = start + chrono::Duration::days(1);
        let conn = self.adapter.conn();
        let backend = conn.get_database_backend();
        let (p1, p2) = match backend {
            DbBackend::Postgres => ("$1", "$2"),
            _ => ("?", "?"),
        };

        let events_sql = format!(
            "SELECT event_type, COUNT(*) AS n FROM analytics_events \
             WHERE created_at >= {p1} AND created_at < {p2} GROUP BY event_type ORDER BY event_type"
        );
        let rows = conn
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
        let rows = conn
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

/// SQLite: `{col}_int` and `{col}_frac` sums of a canonical money text column.
fn sqlite_money_sum(col: &str) -> String {
    format!(
        "SUM(CAST(substr({col}, 1, instr({col}, '.') - 1) AS INTEGER)) AS {col}_int, \
         SUM(CAST(substr({col}, instr({col}, '.') + 1) AS INTEGER)) AS {col}_frac"
    )
}

#[async_trait::async_trait]
impl IdentityEvents for AnalyticsService {
    async fn identity_event(
        &self,
        user_id: Option<Uuid>,
        event_type: &'static str,
        data: serde_json::Value,
    ) {
        // The identity change is committed in the other database already; this record is
        // best effort (there is no transaction spanning both databases).
        let at = now();
        let result =
            WebDatabaseAdapter::record_event(self.adapter.conn(), user_id, event_type, data, at)
                .await;
        match result {
            Ok(()) => self.cache.invalidate(&self.day_key(at)).await,
            Err(err) => {
                tracing::error!(error = %err, event_type, "could not record analytics event")
            }
        }
    }
}
