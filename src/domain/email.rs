//! `Email`: a syntactically valid address, normalised to lower case.

use crate::error::AppError;

/// An email address: `local@domain.tld`, at most 255 bytes, stored lower-cased so that
/// `A@x.io` and `a@x.io` are one account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    /// Validates `value` for the input field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, AppError> {
        let value = value.trim();
        let bad = |msg: &'static str| Err(AppError::bad_input(field, msg));
        if value.is_empty() {
            return bad("must not be empty");
        }
        if value.len() > 255 {
            return bad("must be at most 255 characters");
        }
        let Some((local, domain)) = value.rsplit_once('@') else {
            return bad("must be an email address");
        };
        let local_ok = !local.is_empty()
            && local.len() <= 64
            && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..")
            && local
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-".contains(c));
        let labels: Vec<&str> = domain.split('.').collect();
        let domain_ok = labels.len() >= 2
            && labels.iter().all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            });
        if !(local_ok && domain_ok) {
            return bad("must be an email address");
        }
        Ok(Self(value.to_ascii_lowercase()))
    }

    /// The normalised address.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_addresses_parse_and_are_lower_cased() {
        assert_eq!(
            Email::parse("email", " Ann@Example.COM ").unwrap().as_str(),
            "ann@example.com"
        );
        assert!(Email::parse("email", "a.b+tag@sub.example.io").is_ok());
    }

    #[test]
    fn invalid_addresses_are_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "", "plain", "@x.io", "a@", "a@x", "a@@x.io", "a b@x.io", "a@-x.io", ".a@x.io", &long,
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad}");
        }
    }
}
