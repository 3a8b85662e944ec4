//! Exchange rates: a rate of a pair over a period, a rate to set, and a quote.

use super::{CurrencyPair, Money};
use crate::clock::DateTime;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// What an amount converts to at a rate.
#[derive(Clone, Debug)]
pub struct Quote {
    /// The rate used.
    pub rate: ExchangeRate,
    /// The amount sold.
    pub amount: Money,
    /// `amount × rate`, rounded half-even to 8 places.
    pub to_amount: Decimal,
}
