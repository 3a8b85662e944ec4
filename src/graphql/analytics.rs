//! `dailyAnalytics` (SPEC §3).

use super::context::ContextExt;
use super::guards::RequirePermission;
use super::types::{DateScalar, DecimalScalar};
use crate::domain::{self, Permission};
use crate::error::AppResult;
use async_graphql::{Context, Object, SimpleObject};

/// Events of one type.
#[derive(SimpleObject)]
pub struct EventCount {
    /// Event type, e.g. `order_created`.
    pub event_type: String,
    /// How many.
    pub count: i64,
}

/// Volume of one currency pair: orders paid that day.
#[derive(SimpleObject)]
pub struct PairVolume {
    /// Currency sold.
    pub from_currency: String,
    /// Currency bought.
    pub to_currency: String,
    /// Orders paid.
    pub orders: i64,
    /// Total sold.
    pub amount: DecimalScalar,
    /// Total bought.
    pub to_amount: DecimalScalar,
}

/// One UTC day of analytics.
#[derive(SimpleObject)]
pub struct DailyAnalytics {
    /// The day.
    pub date: DateScalar,
    /// Events by type.
    pub events: Vec<EventCount>,
    /// Order volume by currency pair.
    pub volumes: Vec<PairVolume>,
}

impl From<domain::DailyAnalytics> for DailyAnalytics {
    fn from(d: domain::DailyAnalytics) -> Self {
        Self {
            date: DateScalar(d.date),
            events: d
                .events
                .into_iter()
                .map(|e| EventCount {
                    event_type: e.event_type,
                    count: e.count,
                })
                .collect(),
            volumes: d
                .volumes
                .into_iter()
                .map(|v| PairVolume {
                    from_currency: v.from_currency,
                    to_currency: v.to_currency,
                    orders: v.orders,
                    amount: DecimalScalar(v.amount),
                    to_amount: DecimalScalar(v.to_amount),
                })
                .collect(),
        }
    }
}

/// Analytics queries.
#[derive(Default)]
pub struct AnalyticsQuery;

#[Object]
impl AnalyticsQuery {
    /// Events by type and order volume by pair for one UTC day, default today (needs
    /// `analytics:read`).
    #[graphql(guard = "RequirePermission(Permission::ANALYTICS_READ)")]
    async fn daily_analytics(
        &self,
        ctx: &Context<'_>,
        date: Option<DateScalar>,
    ) -> AppResult<DailyAnalytics> {
        let date = date.map_or_else(|| crate::clock::now().date_naive(), |d| d.0);
        Ok(ctx.stack()?.analytics.daily(date).await?.into())
    }
}
