//! `Money`: a positive amount or rate that fits `DECIMAL(18,8)` exactly.

use crate::error::AppError;
use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places of every stored amount and rate: the scale of the `DECIMAL(18,8)` columns,
/// defined once with the column type.
pub use entity::MONEY_SCALE;

/// A strictly positive value with at most 8 decimal places and at most 10 integer digits,
/// i.e. exactly representable in `DECIMAL(18,8)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Money(Decimal);

impl Money {
    /// The largest value a `DECIMAL(18,8)` column holds.
    pub fn max() -> Decimal {
        Decimal::new(999_999_999_999_999_999, MONEY_SCALE)
    }

    /// Validates `value` for the input field `field`.
    pub fn parse(field: &'static str, value: Decimal) -> Result<Self, AppError> {
        if value <= Decimal::ZERO {
            return Err(AppError::bad_input(field, "must be greater than zero"));
        }
        if value.normalize().scale() > MONEY_SCALE {
            return Err(AppError::bad_input(
                field,
                "must have at most 8 decimal places",
            ));
        }
        if value > Self::max() {
            return Err(AppError::bad_input(field, "must be less than 10000000000"));
        }
        Ok(Self(value.normalize()))
    }

    /// The value.
    pub fn get(self) -> Decimal {
        self.0
    }
}

/// `amount × rate` (SPEC §3: rounded half-even to 8 places), or `BAD_USER_INPUT` on `field`
/// when the result does not fit an order or rounds to nothing. The one conversion behind
/// both `quote` and `createOrder`.
pub fn convert(field: &'static str, amount: Money, rate: Decimal) -> Result<Decimal, AppError> {
    let to_amount = amount
        .get()
        .checked_mul(rate)
        .map(round_money)
        .filter(|t| *t <= Money::max())
        .ok_or_else(|| AppError::bad_input(field, "converts to more than an order can hold"))?;
    if to_amount.is_zero() {
        return Err(AppError::bad_input(
            field,
            "is too small to convert at this rate",
        ));
    }
    Ok(to_amount)
}

/// SPEC §3: amounts round half-even to 8 places.
pub fn round_money(value: Decimal) -> Decimal {
    let mut rounded =
        value.round_dp_with_strategy(MONEY_SCALE, RoundingStrategy::MidpointNearestEven);
    rounded.rescale(MONEY_SCALE);
    rounded
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn d(s: &str) -> Decimal {
        Decimal::from_str(s).unwrap()
    }

    #[test]
    fn the_extremes_of_decimal_18_8_are_accepted() {
        assert!(Money::parse("amount", d("9999999999.99999999")).is_ok());
        assert!(Money::parse("amount", d("0.00000001")).is_ok());
        assert!(
            Money::parse("amount", d("1.10000000000")).is_ok(),
            "trailing zeros are fine"
        );
    }

    #[test]
    fn zero_negative_too_precise_and_too_large_are_refused() {
        for bad in ["0", "-1", "0.000000001", "10000000000", "10000000000.5"] {
            assert!(Money::parse("amount", d(bad)).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn rounding_is_half_even_at_eight_places() {
        assert_eq!(round_money(d("0.000000005")).to_string(), "0.00000000");
        assert_eq!(round_money(d("0.000000015")).to_string(), "0.00000002");
        assert_eq!(round_money(d("2")).to_string(), "2.00000000");
    }

    #[test]
    fn conversion_rounds_and_refuses_what_no_order_can_hold() {
        let m = |s: &str| Money::parse("amount", d(s)).unwrap();
        assert_eq!(
            convert("amount", m("100.5"), d("41.25")).unwrap(),
            d("4145.625")
        );
        assert_eq!(
            convert("amount", m("0.00000001"), d("0.5")).unwrap_err_field(),
            "amount"
        );
        assert!(convert("amount", m("9999999999"), d("41.25")).is_err());
        assert!(convert("amount", m("9999999999.99999999"), d("9999999999.99999999")).is_err());
    }

    trait ErrField {
        fn unwrap_err_field(self) -> &'static str;
    }

    impl ErrField for Result<Decimal, AppError> {
        fn unwrap_err_field(self) -> &'static str {
            match self {
                Err(AppError::BadUserInput { field, .. }) => field,
                other => panic!("expected bad input, got {other:?}"),
            }
        }
    }
}
