//! Rate operations (SPEC §3): thin resolvers over `RateService`.

use super::context::ContextExt;
use super::guards::{RequirePermission, RequireStepUp};
use super::types::{DateTimeScalar, DecimalScalar, ExchangeRate, Quote};
use crate::domain::{CurrencyPair, Money, NewRate, Permission};
use crate::error::{AppError, AppResult};
use async_graphql::{Context, InputObject, Object, Subscription};
use futures_util::{Stream, StreamExt};
use tokio_stream::wrappers::BroadcastStream;

/// `setExchangeRate` input.
#[derive(InputObject)]
pub struct SetExchangeRateInput {
    /// Currency sold, e.g. `USD`.
    pub from_currency: String,
    /// Currency bought, e.g. `UAH`.
    pub to_currency: String,
    /// Units of `toCurrency` per unit of `fromCurrency`.
    pub rate: DecimalScalar,
    /// Start of validity; now when omitted. Must be after the pair's latest rate.
    pub valid_from: Option<DateTimeScalar>,
    /// End of validity; open when omitted.
    pub valid_until: Option<DateTimeScalar>,
}

/// Rate queries.
#[derive(Default)]
pub struct RateQuery;

#[Object]
impl RateQuery {
    /// The rate of a pair valid now, or null.
    async fn exchange_rate(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: String,
    ) -> AppResult<Option<ExchangeRate>> {
        let pair = CurrencyPair::parse("from", &from, "to", &to)?;
        Ok(ctx.stack()?.rates.current(&pair).await?.map(ExchangeRate))
    }

    /// Every pair's rate valid now.
    async fn exchange_rates(&self, ctx: &Context<'_>) -> AppResult<Vec<ExchangeRate>> {
        Ok(ctx
            .stack()?
            .rates
            .all_current()
            .await?
            .into_iter()
            .map(ExchangeRate)
            .collect())
    }

    /// Rates of a pair, newest first (1 to 500).
    async fn rate_history(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: String,
        #[graphql(default = 50)] first: Option<i32>,
    ) -> AppResult<Vec<ExchangeRate>> {
        let pair = CurrencyPair::parse("from", &from, "to", &to)?;
        let first = u64::try_from(first.unwrap_or(50))
            .ok()
            .filter(|n| (1..=500).contains(n))
            .ok_or_else(|| AppError::bad_input("first", "must be between 1 and 500"))?;
        Ok(ctx
            .stack()?
            .rates
            .history(&pair, first)
            .await?
            .into_iter()
            .map(ExchangeRate)
            .collect())
    }

    /// What `amount` of `from` buys of `to` at the current rate.
    async fn quote(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: String,
        amount: DecimalScalar,
    ) -> AppResult<Quote> {
        let pair = CurrencyPair::parse("from", &from, "to", &to)?;
        let amount = Money::parse("amount", amount.0)?;
        Ok(Quote(ctx.stack()?.rates.quote(&pair, amount).await?))
    }
}

/// Rate mutations.
#[derive(Default)]
pub struct RateMutation;

#[Object]
impl RateMutation {
    /// Sets the rate of a pair (needs `rates:write`): closes the previous rate where this
    /// one starts.
    #[graphql(guard = "RequirePermission(Permission::RATES_WRITE).and(RequireStepUp)")]
    async fn set_exchange_rate(
        &self,
        ctx: &Context<'_>,
        input: SetExchangeRateInput,
    ) -> AppResult<ExchangeRate> {
        let pair = CurrencyPair::parse(
            "input.fromCurrency",
            &input.from_currency,
            "input.toCurrency",
            &input.to_currency,
        )?;
        let rate = Money::parse("input.rate", input.rate.0)?;
        let created = ctx
            .stack()?
            .rates
            .set(NewRate {
                pair,
                rate,
                valid_from: input.valid_from.map(|t| t.0),
                valid_until: input.valid_until.map(|t| t.0),
            })
            .await?;
        Ok(ExchangeRate(created))
    }
}

/// Rate subscriptions.
#[derive(Default)]
pub struct RateSubscription;

#[Subscription]
impl RateSubscription {
    /// Every new rate of a pair, as it is set.
    async fn rate_changed(
        &self,
        ctx: &Context<'_>,
        from: String,
        to: String,
    ) -> Result<impl Stream<Item = ExchangeRate> + use<>, AppError> {
        let pair = CurrencyPair::parse("from", &from, "to", &to)?;
        let receiver = ctx.stack()?.rates.subscribe();
        Ok(BroadcastStream::new(receiver).filter_map(move |item| {
            let wanted = item
                .ok()
                .filter(|r| {
                    r.from_currency == pair.from.as_str() && r.to_currency == pair.to.as_str()
                })
                .map(ExchangeRate);
            async move { wanted }
        }))
    }
}
