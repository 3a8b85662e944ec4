//! `Password`: a candidate password within length bounds. Its `Debug` is redacted.

use crate::error::AppError;
use std::fmt;

/// At least 8 characters; at most 128 characters and 512 bytes, so refusing an oversized
/// password is cheap and hashing stays bounded.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Minimum length in characters.
    pub const MIN_CHARS: usize = 8;
    /// Maximum length in characters.
    pub const MAX_CHARS: usize = 128;

    /// Validates `value` for the input field `field`.
    pub fn parse(field: &'static str, value: &str) -> Result<Self, AppError> {
        if value.len() > 512 || value.chars().count() > Self::MAX_CHARS {
            return Err(AppError::bad_input(field, "must be at most 128 characters"));
        }
        if value.chars().count() < Self::MIN_CHARS {
            return Err(AppError::bad_input(field, "must be at least 8 characters"));
        }
        Ok(Self(value.to_owned()))
    }

    /// The secret itself, for hashing only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds_hold() {
        assert!(Password::parse("password", "1234567").is_err());
        assert!(Password::parse("password", "12345678").is_ok());
        assert!(Password::parse("password", &"x".repeat(129)).is_err());
        assert_eq!(
            format!("{:?}", Password::parse("p", "secret-pass").unwrap()),
            "Password(<redacted>)"
        );
    }
}
