//! Analytics (SPEC §3): key actions recorded in `analytics_events`, and `dailyAnalytics`
//! computed by the database and cached under `cache:{ctx}:analytics:daily:{date}`.

use super::adapter::WebDatabaseAdapter;
use crate::cache::{Cache, keys};
use crate::clock::DateTime;
use crate::domain::{DailyAnalytics, NewEvent};
use crate::error::AppResult;
use chrono::NaiveDate;
use std::sync::Arc;

/// Analytics service.
pub struct AnalyticsService {
    db: WebDatabaseAdapter,
    cache: Arc<Cache>,
    keys: keys::Keys,
}

impl AnalyticsService {
    /// A service over the web database and the cache.
    pub fn new(db: WebDatabaseAdapter, cache: Arc<Cache>, keys: keys::Keys) -> Self {
        Self { db, cache, keys }
    }

    /// The key of the report an event recorded at `at` belongs to (its UTC day), which
    /// that event makes stale.
    pub fn day_key(&self, at: DateTime) -> String {
        self.keys.daily_analytics(at.date_naive())
    }

    /// Counts and volumes of `date` (UTC).
    pub async fn daily(&self, date: NaiveDate) -> AppResult<DailyAnalytics> {
        let key = self.keys.daily_analytics(date);
        let (cached, token) = self.cache.get::<DailyAnalytics>(&key).await;
        if let Some(cached) = cached {
            return Ok(cached);
        }
        let report = self.db.daily_analytics(date).await?;
        self.cache
            .fill(&key, token, &report, keys::ANALYTICS_TTL)
            .await;
        Ok(report)
    }

    /// Records an event outside any other write (e.g. one that happened in the identity
    /// database: there is no transaction spanning both databases, so this is best effort).
    pub async fn record(&self, event: NewEvent) {
        let at = event.at;
        let event_type = event.event_type;
        match self.db.record_event(event).await {
            Ok(()) => self.cache.invalidate(&self.day_key(at)).await,
            Err(err) => {
                tracing::error!(error = ?err, event_type, "could not record analytics event")
            }
        }
    }
}
