//! `ExchangeRate` and `Quote` objects.

use super::scalars::{DateTimeScalar, DecimalScalar};
use crate::domain;
use async_graphql::{ID, Object};

/// A rate of one currency pair over a period.
pub struct ExchangeRate(pub domain::ExchangeRate);

/// The rate of a currency pair, valid from `validFrom` until `validUntil` (open when null).
#[Object]
impl ExchangeRate {
    /// Rate id.
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }
    /// Currency sold, e.g. `USD`.
    async fn from_currency(&self) -> &str {
        &self.0.from_currency
    }
    /// Currency bought, e.g. `UAH`.
    async fn to_currency(&self) -> &str {
        &self.0.to_currency
    }
    /// Units of `toCurrency` per unit of `fromCurrency`.
    async fn rate(&self) -> DecimalScalar {
        DecimalScalar(self.0.rate)
    }
    /// Start of validity.
    async fn valid_from(&self) -> DateTimeScalar {
        DateTimeScalar(self.0.valid_from)
    }
    /// End of validity; null while open.
    async fn valid_until(&self) -> Option<DateTimeScalar> {
        self.0.valid_until.map(DateTimeScalar)
    }
}

/// What an amount converts to at the current rate.
pub struct Quote(pub domain::Quote);

/// A quote: `toAmount = amount × rate`, rounded half-even to 8 places.
#[Object]
impl Quote {
    /// Currency sold.
    async fn from_currency(&self) -> &str {
        &self.0.rate.from_currency
    }
    /// Currency bought.
    async fn to_currency(&self) -> &str {
        &self.0.rate.to_currency
    }
    /// Amount sold.
    async fn amount(&self) -> DecimalScalar {
        DecimalScalar(self.0.amount.get())
    }
    /// Rate applied.
    async fn rate(&self) -> DecimalScalar {
        DecimalScalar(self.0.rate.rate)
    }
    /// Amount bought.
    async fn to_amount(&self) -> DecimalScalar {
        DecimalScalar(self.0.to_amount)
    }
    /// When the rate stops being valid, if known.
    async fn valid_until(&self) -> Option<DateTimeScalar> {
        self.0.rate.valid_until.map(DateTimeScalar)
    }
}
