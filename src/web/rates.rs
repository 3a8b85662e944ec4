//! Exchange rates (SPEC §3): the timeline per pair, the rates cache, and `rateChanged`.

use crate::cache::{Cache, keys};
use crate::db::write_txn;
use crate::domain::{CurrencyPair, Money};
use crate::error::{AppError, AppResult};
use crate::web::{WebDatabaseAdapter, now, truncate_micros};
use entity::web::exchange_rates;
use rust_decimal::Decimal;
use sea_orm::TransactionTrait;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use uuid::Uuid;

type DateTime = chrono::DateTime<chrono::Utc>;

/// A rate as the API and the caches see it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeRate {
    /// Row id.
    pub id: Uuid,
    /// Currency sold.
    pub from_currency: String,
    /// Currency bought.
    pub to_currency: String,
    /// Units of `to` per unit of `from`.
    pub rate: Decimal,
    /// Start of validity.
    pub valid_from: DateTime,
    /// End of validity (open when `None`).
    pub valid_until: Option<DateTime>,
}

impl ExchangeRate {
    /// Whether the rate is valid at `at`.
    pub fn is_valid_at(&self, at: DateTime) -> bool {
        self.valid_from <= at && self.valid_until.is_none_or(|u| u > at)
    }
}

impl From<exchange_rates::Model> for ExchangeRate {
    fn from(m: exchange_rates::Model) -> Self {
        Self {
            id: m.id,
            from_currency: m.from_currency,
            to_currency: m.to_currency,
            rate: m.rate.0,
            valid_from: m.valid_from,
            valid_until: m.valid_until,
        }
    }
}

/// What `setExchangeRate` asks for, validated.
#[derive(Clone, Debug)]
pub struct NewRate {
    /// The pair.
    pub pair: CurrencyPair,
    /// The rate.
    pub rate: Money,
    /// Start (now when `None`).
    pub valid_from: Option<DateTime>,
    /// End (open when `None`).
    pub valid_until: Option<DateTime>,
}

/// Rates service.
pub struct RateService {
    adapter: WebDatabaseAdapter,
    cache: Arc<Cache>,
    keys: keys::Keys,
    changes: broadcast::Sender<ExchangeRate>,
}

/// How long a cached rate may live: the SPEC TTL, but never past the moment it stops being
/// the current one.
fn ttl_until(limit: Option<DateTime>, at: DateTime) -> Duration {
    match limit {
        Some(t) => (t - at).to_std().unwrap_or_default().min(keys::RATES_TTL),
        None => keys::RATES_TTL,
    }
}

impl RateService {
    /// A service over the web database and the cache.
    pub fn new(adapter: WebDatabaseAdapter, cache: Arc<Cache>, keys: keys::Keys) -> Self {
        let (changes, _) = broadcast::channel(256);
        Self {
            adapter,
            cache,
            keys,
            changes,
        }
    }

    /// New rates as they are set (the `rateChanged` subscription).
    pub fn subscribe(&self) -> broadcast::Receiver<ExchangeRate> {
        self.changes.subscribe()
    }

    /// The rate of `pair` valid now, through `cache:{ctx}:rates:{from}_{to}`.
    #[tracing::instrument(skip(self), fields(pair = %format!("{}_{}", pair.from, pair.to)))]
    pub async fn current(&self, pair: &CurrencyPair) -> AppResult<Option<ExchangeRate>> {
        let key = self.keys.rate(pair.from.as_str(), pair.to.as_str());
        let at = now();
        let (cached, token) = self.cache.get::<ExchangeRate>(&key).await;
        if let Some(rate) = cached
            && rate.is_valid_at(at)
        {
            return Ok(Some(rate));
        }
        let Some(rate) = WebDatabaseAdapter::rate_at(self.adapter.conn(), pair, at).await? else {
            return Ok(None);
        };
        let rate = ExchangeRate::from(rate);
        self.cache
            .fill(&key, token, &rate, ttl_until(rate.valid_until, at))
            .await;
        Ok(Some(rate))
    }

    /// Every pair's rate valid now, through `cache:{ctx}:rates:all`.
    pub async fn all_current(&self) -> AppResult<Vec<ExchangeRate>> {
        let key = self.keys.all_rates();
        let at = now();
        let (cached, token) = self.cache.get::<Vec<ExchangeRate>>(&key).await;
        if let Some(rates) = cached
            && rates.iter().all(|r| r.is_valid_at(at))
        {
            return Ok(rates);
        }
        let (rates, ttl) = Self::load_all(self.adapter.conn(), at).await?;
        self.cache.fill(&key, token, &rates, ttl).await;
        Ok(rates)
    }

    async fn load_all(
        conn: &impl sea_orm::ConnectionTrait,
        at: DateTime,
    ) -> AppResult<(Vec<ExchangeRate>, Duration)> {
        let mut rates: Vec<ExchangeRate> = Vec::new();
        for row in WebDatabaseAdapter::rates_at(conn, at).await? {
            // Ordered by pair, newest first: keep the first row of each pair.
            let same_pair = rates.last().is_some_and(|r| {
                r.from_currency == row.from_currency && r.to_currency == row.to_currency
            });
            if !same_pair {
                rates.push(row.into());
            }
        }
        let next_change = rates
            .iter()
            .filter_map(|r| r.valid_until)
            .chain(WebDatabaseAdapter::next_rate_start(conn, at).await?)
            .min();
        Ok((rates, ttl_until(next_change, at)))
    }

    /// Rates of `pair`, newest first.
    pub async fn history(&self, pair: &CurrencyPair, first: u64) -> AppResult<Vec<ExchangeRate>> {
        Ok(self
            .adapter
            .rate_history(pair, first)
            .await?
            .into_iter()
            .map(ExchangeRate::from)
            .collect())
    }

    /// Appends a rate to the pair's timeline: closes the previous rate where the new one
    /// starts and replaces the cached rate before returning (SPEC §1: the write refreshes
    /// the cache it makes stale).
    #[tracing::instrument(skip(self))]
    pub async fn set(&self, new: NewRate) -> AppResult<ExchangeRate> {
        let at = now();
        let explicit_start = new.valid_from.map(truncate_micros);
        let valid_until = new.valid_until.map(truncate_micros);
        if let (Some(from), Some(until)) = (explicit_start.or(Some(at)), valid_until)
            && until <= from
        {
            return Err(AppError::bad_input(
                "input.validUntil",
                "must be after validFrom",
            ));
        }

        let txn = self.adapter.conn().begin_with_options(write_txn()).await?;
        WebDatabaseAdapter::lock_pair(&txn, &new.pair).await?;
        let latest = WebDatabaseAdapter::latest_rate(&txn, &new.pair).await?;
        let valid_from = match (&latest, explicit_start) {
            (Some(l), Some(start)) if start <= l.valid_from => {
                return Err(AppError::bad_input(
                    "input.validFrom",
                    "must be after the validFrom of the pair's latest rate",
                ));
            }
            (_, Some(start)) => start,
            // Two writes within one microsecond still get distinct, ordered starts.
            (Some(l), None) if l.valid_from >= at => {
                l.valid_from + chrono::Duration::microseconds(1)
            }
            (_, None) => at,
        };
        if let Some(until) = valid_until
            && until <= valid_from
        {
            return Err(AppError::bad_input(
                "input.validUntil",
                "must be after validFrom",
            ));
        }
        if let Some(prev) = &latest
            && prev.valid_until.is_none_or(|u| u > valid_from)
        {
            WebDatabaseAdapter::close_rate(&txn, prev.id, valid_from).await?;
        }
        let row = WebDatabaseAdapter::insert_rate(
            &txn,
            exchange_rates::Model {
                id: Uuid::now_v7(),
                from_currency: new.pair.from.as_str().to_owned(),
                to_currency: new.pair.to.as_str().to_owned(),
                rate: new.rate.get().into(),
                valid_from,
                valid_until,
                created_at: at,
            },
        )
        .await?;
        let created = ExchangeRate::from(row);

        // Refresh both caches while the pair is still locked, so a concurrent writer of the
        // same pair cannot put its older value over ours.
        let pair_key = self.keys.rate(new.pair.from.as_str(), new.pair.to.as_str());
        match WebDatabaseAdapter::rate_at(&txn, &new.pair, at).await? {
            Some(current) => {
                let current = ExchangeRate::from(current);
                self.cache
                    .put(&pair_key, &current, ttl_until(current.valid_until, at))
                    .await;
            }
            None => self.cache.invalidate(&pair_key).await,
        }
        let (all, ttl) = Self::load_all(&txn, at).await?;
        let all_key = self.keys.all_rates();
        self.cache.put(&all_key, &all, ttl).await;

        if let Err(err) = txn.commit().await {
            self.cache.invalidate_all([pair_key, all_key]).await;
            return Err(err.into());
        }
        // Nobody listening is fine.
        let _ = self.changes.send(created.clone());
        Ok(created)
    }
}
