//! Exchange rates (SPEC §3): the timeline per pair, quotes, the rates cache, and
//! `rateChanged`.

use super::adapter::{CurrentRates, WebDatabaseAdapter};
use crate::cache::{Cache, keys};
use crate::clock::{DateTime, now, truncate_micros};
use crate::coherence::{Coherence, Outbox};
use crate::domain::{Change, CurrencyPair, ExchangeRate, Money, NewRate, Quote, convert};
use crate::error::{AppError, AppResult};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use uuid::Uuid;

/// Rates service.
pub struct RateService {
    db: WebDatabaseAdapter,
    cache: Arc<Cache>,
    keys: keys::Keys,
    coherence: Arc<Coherence>,
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
    /// A service over the web database and the cache; rate changes reach every process's
    /// caches and subscribers through `coherence`.
    pub fn new(
        db: WebDatabaseAdapter,
        cache: Arc<Cache>,
        keys: keys::Keys,
        coherence: Arc<Coherence>,
    ) -> Self {
        Self {
            db,
            cache,
            keys,
            coherence,
        }
    }

    /// New rates as they are set, through any process (the `rateChanged` subscription).
    pub fn subscribe(&self) -> broadcast::Receiver<ExchangeRate> {
        self.coherence.subscribe_rates()
    }

    /// The rate of `pair` valid now, through `cache:{ctx}:rates:{from}_{to}`. That a pair
    /// has no rate is cached too (until its next rate starts, if one is scheduled): a flood
    /// of reads of a pair without a rate is served from the cache like any other.
    #[tracing::instrument(skip(self), fields(pair = %format!("{}_{}", pair.from, pair.to)))]
    pub async fn current(&self, pair: &CurrencyPair) -> AppResult<Option<ExchangeRate>> {
        let key = self.keys.rate(pair.from.as_str(), pair.to.as_str());
        let at = now();
        let (cached, token) = self.cache.get::<Option<ExchangeRate>>(&key).await;
        match cached {
            Some(Some(rate)) if rate.is_valid_at(at) => return Ok(Some(rate)),
            Some(None) => return Ok(None),
            _ => {}
        }
        let (rate, ttl) = match self.db.rate_at(pair, at).await? {
            Some(rate) => {
                let ttl = ttl_until(rate.valid_until, at);
                (Some(rate), ttl)
            }
            None => (
                None,
                ttl_until(self.db.next_rate_start(pair, at).await?, at),
            ),
        };
        self.cache.fill(&key, token, &rate, ttl).await;
        Ok(rate)
    }

    /// The rate of `pair` valid now, from the database (when a cached one proved stale).
    pub async fn current_from_database(
        &self,
        pair: &CurrencyPair,
    ) -> AppResult<Option<ExchangeRate>> {
        let key = self.keys.rate(pair.from.as_str(), pair.to.as_str());
        self.cache.invalidate(&key).await;
        self.db.rate_at(pair, now()).await
    }

    /// What `amount` of `pair.from` buys at the rate valid now (`NOT_FOUND` without one).
    pub async fn quote(&self, pair: &CurrencyPair, amount: Money) -> AppResult<Quote> {
        let rate = self
            .current(pair)
            .await?
            .ok_or(AppError::NotFound("exchange rate"))?;
        let to_amount = convert("amount", amount, rate.rate)?;
        Ok(Quote {
            rate,
            amount,
            to_amount,
        })
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
        let CurrentRates { rates, next_change } = self.db.current_rates(at).await?;
        self.cache
            .fill(&key, token, &rates, ttl_until(next_change, at))
            .await;
        Ok(rates)
    }

    /// Rates of `pair`, newest first.
    pub async fn history(&self, pair: &CurrencyPair, first: u64) -> AppResult<Vec<ExchangeRate>> {
        self.db.rate_history(pair, first).await
    }

    /// Appends a rate to the pair's timeline: closes the previous rate where the new one
    /// starts. The change is recorded with the write and applied before returning (SPEC §1:
    /// the write refreshes the caches it makes stale, in every process).
    #[tracing::instrument(skip(self))]
    pub async fn set(&self, new: NewRate) -> AppResult<ExchangeRate> {
        let txn = self.db.begin_write().await?;
        let (created, recorded) = Self::append(&txn, new, now()).await?;
        txn.commit().await?;
        self.coherence.apply(Outbox::Web, vec![recorded]).await;
        Ok(created)
    }

    /// Sets several rates at once, all or none (`exchanger rates import`).
    pub async fn set_all(
        &self,
        rates: Vec<NewRate>,
    ) -> Result<Vec<ExchangeRate>, (usize, AppError)> {
        let at = now();
        let txn = self.db.begin_write().await.map_err(|e| (0, e))?;
        let mut created = Vec::with_capacity(rates.len());
        let mut recorded = Vec::with_capacity(rates.len());
        for (i, new) in rates.into_iter().enumerate() {
            let (rate, change) = Self::append(&txn, new, at).await.map_err(|e| (i, e))?;
            created.push(rate);
            recorded.push(change);
        }
        txn.commit().await.map_err(|e| (created.len(), e))?;
        self.coherence.apply(Outbox::Web, recorded).await;
        Ok(created)
    }

    /// Appends one rate inside `txn`, recording the change.
    async fn append(
        txn: &super::WebTransaction,
        new: NewRate,
        at: DateTime,
    ) -> AppResult<(ExchangeRate, crate::domain::Recorded)> {
        let explicit_start = new.valid_from.map(truncate_micros);
        let valid_until = new.valid_until.map(truncate_micros);
        let after_start = |until: DateTime, start: DateTime| {
            if until <= start {
                Err(AppError::bad_input(
                    "input.validUntil",
                    "must be after validFrom",
                ))
            } else {
                Ok(())
            }
        };
        if let Some(until) = valid_until {
            after_start(until, explicit_start.unwrap_or(at))?;
        }
        txn.lock_pair(&new.pair).await?;
        let latest = txn.latest_rate(&new.pair).await?;
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
        if let Some(until) = valid_until {
            after_start(until, valid_from)?;
        }
        if let Some(prev) = &latest
            && prev.valid_until.is_none_or(|u| u > valid_from)
        {
            txn.close_rate(prev.id, valid_from).await?;
        }
        let created = txn
            .insert_rate(
                &ExchangeRate {
                    id: Uuid::now_v7(),
                    from_currency: new.pair.from.as_str().to_owned(),
                    to_currency: new.pair.to.as_str().to_owned(),
                    rate: new.rate.get(),
                    valid_from,
                    valid_until,
                },
                at,
            )
            .await?;
        let recorded = txn
            .record_change(Change::RateSet {
                rate: created.clone(),
            })
            .await?;
        Ok((created, recorded))
    }
}
