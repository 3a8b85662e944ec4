//! Custom scalars (SPEC §3): `Decimal` (exact, string only), `DateTime` (RFC 3339 UTC),
//! `Date` (`YYYY-MM-DD`).

use async_graphql::{InputValueError, InputValueResult, Scalar, ScalarType, Value};
use chrono::{NaiveDate, SecondsFormat, Utc};
use rust_decimal::Decimal;
use std::str::FromStr;

/// An exact decimal, as a string such as `"41.25000000"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DecimalScalar(pub Decimal);

/// An exact decimal number, written as a string (e.g. `"41.25000000"`). Outputs always
/// have 8 decimal places. A JSON number is refused: floats cannot carry money.
#[Scalar(name = "Decimal")]
impl ScalarType for DecimalScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(s) = &value else {
            return Err(InputValueError::custom(
                "Decimal must be a string such as \"41.25\", not a JSON number",
            ));
        };
        let s = s.trim();
        let (int, frac) = s.split_once('.').unwrap_or((s, ""));
        let int = int.strip_prefix('-').unwrap_or(int);
        let well_formed = !int.is_empty()
            && s.len() <= 40
            && int.bytes().all(|b| b.is_ascii_digit())
            && frac.bytes().all(|b| b.is_ascii_digit())
            && !(s.contains('.') && frac.is_empty());
        if !well_formed {
            return Err(InputValueError::custom(format!(
                "{s:?} is not a decimal number"
            )));
        }
        Decimal::from_str_exact(s)
            .map(DecimalScalar)
            .map_err(|_| InputValueError::custom(format!("{s:?} is out of range")))
    }

    fn to_value(&self) -> Value {
        let mut d = self.0;
        if d.scale() < 8 {
            d.rescale(8);
        }
        Value::String(d.to_string())
    }
}

/// A point in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateTimeScalar(pub chrono::DateTime<Utc>);

/// A date and time in RFC 3339, always UTC with microseconds, e.g.
/// `"2026-11-24T10:00:00.000000Z"`. Inputs may use any offset.
#[Scalar(name = "DateTime")]
impl ScalarType for DateTimeScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(s) = &value else {
            return Err(InputValueError::custom(
                "DateTime must be an RFC 3339 string",
            ));
        };
        chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| DateTimeScalar(t.with_timezone(&Utc)))
            .map_err(|_| InputValueError::custom(format!("{s:?} is not an RFC 3339 date-time")))
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.to_rfc3339_opts(SecondsFormat::Micros, true))
    }
}

/// A calendar date.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DateScalar(pub NaiveDate);

/// A calendar date, `YYYY-MM-DD`.
#[Scalar(name = "Date")]
impl ScalarType for DateScalar {
    fn parse(value: Value) -> InputValueResult<Self> {
        let Value::String(s) = &value else {
            return Err(InputValueError::custom("Date must be a YYYY-MM-DD string"));
        };
        if s.len() != 10 {
            return Err(InputValueError::custom(format!(
                "{s:?} is not a YYYY-MM-DD date"
            )));
        }
        NaiveDate::from_str(s)
            .map(DateScalar)
            .map_err(|_| InputValueError::custom(format!("{s:?} is not a YYYY-MM-DD date")))
    }

    fn to_value(&self) -> Value {
        Value::String(self.0.format("%Y-%m-%d").to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_strings_only_and_exact() {
        let ok = DecimalScalar::parse(Value::String("9999999999.99999999".into())).unwrap();
        assert_eq!(ok.to_value(), Value::String("9999999999.99999999".into()));
        assert_eq!(
            DecimalScalar::parse(Value::String("41.25".into()))
                .unwrap()
                .to_value(),
            Value::String("41.25000000".into())
        );
        for bad in ["", "1e5", "1.", ".5", "abc", "1,5", "0x10", "1.2.3"] {
            assert!(
                DecimalScalar::parse(Value::String(bad.into())).is_err(),
                "{bad}"
            );
        }
        assert!(DecimalScalar::parse(Value::Number(1.into())).is_err());
    }

    #[test]
    fn dates_must_be_calendar_dates() {
        assert!(DateScalar::parse(Value::String("2026-11-24".into())).is_ok());
        for bad in ["2026-13-01", "2026-02-30", "24.11.2026", "2026-1-1"] {
            assert!(
                DateScalar::parse(Value::String(bad.into())).is_err(),
                "{bad}"
            );
        }
    }
}
