//! The file of `exchanger rates import`: CSV lines `from,to,rate[,valid_from[,valid_until]]`.

use crate::clock::DateTime;
use crate::domain::{CurrencyPair, Money, NewRate};
use crate::error::AppError;

/// One rate of the file, with the line it came from.
#[derive(Debug)]
pub struct RateLine {
    /// 1-based line number.
    pub line: usize,
    /// The rate.
    pub rate: NewRate,
}

/// Parses and validates every line; on any error returns all of them, each starting with
/// its line number. Blank lines, `#` comments and a header line (`from,to,…`) are skipped.
pub fn parse_rates_csv(text: &str) -> Result<Vec<RateLine>, Vec<String>> {
    let mut rates = Vec::new();
    let mut errors = Vec::new();
    let mut seen_data = false;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let content = raw.trim().trim_start_matches('\u{feff}');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        if !seen_data && content.to_ascii_lowercase().starts_with("from") {
            seen_data = true;
            continue;
        }
        seen_data = true;
        match parse_line(content) {
            Ok(rate) => rates.push(RateLine { line, rate }),
            Err(message) => errors.push(format!("line {line}: {message}")),
        }
    }
    if rates.is_empty() && errors.is_empty() {
        errors.push("the file has no rates".to_owned());
    }
    if errors.is_empty() {
        Ok(rates)
    } else {
        Err(errors)
    }
}

fn parse_line(content: &str) -> Result<NewRate, String> {
    let fields: Vec<&str> = content.split(',').map(str::trim).collect();
    if !(3..=5).contains(&fields.len()) {
        return Err(format!(
            "expected from,to,rate[,valid_from[,valid_until]], found {} fields",
            fields.len()
        ));
    }
    let pair = CurrencyPair::parse("from", fields[0], "to", fields[1]).map_err(describe)?;
    let rate = fields[2]
        .parse()
        .map_err(|_| format!("rate {:?} is not a decimal number", fields[2]))
        .and_then(|r| Money::parse("rate", r).map_err(describe))?;
    let time = |index: usize, name: &str| -> Result<Option<DateTime>, String> {
        match fields.get(index).copied() {
            None | Some("") => Ok(None),
            Some(value) => chrono::DateTime::parse_from_rfc3339(value)
                .map(|t| Some(t.to_utc()))
                .map_err(|_| {
                    format!("{name} {value:?} is not an RFC 3339 time (e.g. 2026-01-31T12:00:00Z)")
                }),
        }
    };
    Ok(NewRate {
        pair,
        rate,
        valid_from: time(3, "valid_from")?,
        valid_until: time(4, "valid_until")?,
    })
}

/// An input error as a sentence, with the CSV column names.
pub fn describe(err: AppError) -> String {
    match err {
        AppError::BadUserInput { field, message } => {
            let column = match field {
                "input.validFrom" => "valid_from",
                "input.validUntil" => "valid_until",
                "input.rate" => "rate",
                other => other,
            };
            let message = message
                .replace("validFrom", "valid_from")
                .replace("validUntil", "valid_until");
            format!("{column} {message}")
        }
        other => super::commands::plain(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;

    #[test]
    fn header_comments_and_optional_times_are_accepted() {
        let rates = parse_rates_csv(
            "from,to,rate,valid_from,valid_until\n\
             # today's rates\n\
             \n\
             USD,UAH,41.25\n\
             EUR, UAH , 44.10,2030-01-01T00:00:00Z\n\
             GBP,UAH,52.5,2030-01-01T00:00:00+02:00,2030-02-01T00:00:00Z\n",
        )
        .unwrap();
        assert_eq!(rates.len(), 3);
        assert_eq!(rates[0].line, 4);
        assert_eq!(rates[1].rate.pair.from.as_str(), "EUR");
        assert_eq!(rates[1].rate.rate.get(), Decimal::new(441, 1));
        assert_eq!(
            rates[2].rate.valid_from.unwrap().to_rfc3339(),
            "2029-12-31T22:00:00+00:00"
        );
        assert!(rates[2].rate.valid_until.is_some());
    }

    #[test]
    fn every_bad_line_is_reported_with_its_number() {
        let errors = parse_rates_csv(
            "USD,UAH,41.25\n\
             USD,UAH\n\
             USD,USD,1\n\
             USD,UAH,-3\n\
             USD,UAH,abc\n\
             USD,UAH,1,yesterday\n",
        )
        .unwrap_err();
        assert_eq!(errors.len(), 5, "{errors:?}");
        for (error, line) in errors.iter().zip(2..) {
            assert!(error.starts_with(&format!("line {line}: ")), "{error}");
        }
        assert!(errors[3].contains("rate \"abc\""), "{errors:?}");
        assert!(errors[4].contains("valid_from"), "{errors:?}");
    }

    #[test]
    fn an_empty_file_is_an_error() {
        assert!(parse_rates_csv("from,to,rate\n# nothing\n").is_err());
    }
}
