//! Session and one-time tokens: 256 bits from the OS CSPRNG, stored only as SHA-256.

use sha2::{Digest, Sha256};
use std::fmt;

/// A secret token as handed to the client (64 hex characters = 256 bits).
#[derive(Clone, PartialEq, Eq)]
pub struct SessionToken(String);

impl SessionToken {
    /// A fresh random token.
    pub fn generate() -> Self {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).expect("BUG: the OS random source is unavailable");
        Self(hex::encode(bytes))
    }

    /// A token received from a client. Anything that is not 64 hex characters can never
    /// match, so it is refused here without a lookup.
    pub fn from_client(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        (raw.len() == 64 && raw.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| Self(raw.to_ascii_lowercase()))
    }

    /// SHA-256 of the token, hex: the only form that is stored.
    pub fn hash(&self) -> String {
        sha256_hex(&self.0)
    }

    /// The token itself, to hand to the client once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// SHA-256 of `value`, hex.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

impl fmt::Debug for SessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionToken(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_256_bit_hex_and_hash_stably() {
        let a = SessionToken::generate();
        let b = SessionToken::generate();
        assert_ne!(a, b);
        assert_eq!(a.expose().len(), 64);
        assert_eq!(
            a.hash(),
            SessionToken::from_client(a.expose()).unwrap().hash()
        );
        assert_ne!(a.hash(), a.expose());
        assert!(SessionToken::from_client("short").is_none());
        assert_eq!(format!("{a:?}"), "SessionToken(<redacted>)");
    }
}
