//! Currency codes and pairs.

use crate::error::AppError;
use std::fmt;

/// 2–10 upper-case ASCII letters or digits, e.g. `USD`, `USDT`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CurrencyCode(String);

impl CurrencyCode {
    /// Validates `value` for the input field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, AppError> {
        let ok = (2..=10).contains(&value.len())
            && value
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
        if ok {
            Ok(Self(value.to_owned()))
        } else {
            Err(AppError::bad_input(
                field,
                "must be 2 to 10 upper-case letters or digits",
            ))
        }
    }

    /// The code.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for CurrencyCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Two different currencies: sell `from`, buy `to`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CurrencyPair {
    /// Currency sold.
    pub from: CurrencyCode,
    /// Currency bought.
    pub to: CurrencyCode,
}

impl CurrencyPair {
    /// Validates both codes; `to_field` is blamed when they are equal.
    pub fn parse(
        from_field: &'static str,
        from: &str,
        to_field: &'static str,
        to: &str,
    ) -> Result<Self, AppError> {
        let from = CurrencyCode::parse(from_field, from)?;
        let to = CurrencyCode::parse(to_field, to)?;
        if from == to {
            return Err(AppError::bad_input(
                to_field,
                "must differ from the currency sold",
            ));
        }
        Ok(Self { from, to })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_codes_parse() {
        for ok in ["US", "USD", "USDT", "BTC2", "ABCDEFGHIJ"] {
            assert!(CurrencyCode::parse("from", ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn invalid_codes_are_refused() {
        for bad in ["", "U", "usd", "US D", "ABCDEFGHIJK", "ÜSD", "US-D"] {
            assert!(CurrencyCode::parse("from", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_pair_needs_two_different_currencies() {
        assert!(CurrencyPair::parse("from", "USD", "to", "USD").is_err());
        assert!(CurrencyPair::parse("from", "USD", "to", "UAH").is_ok());
    }
}
