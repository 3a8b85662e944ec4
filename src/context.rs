//! Application contexts (SPEC §1): which application a session or permission belongs to.

use std::fmt;
use std::str::FromStr;

/// An application served from the shared identity database. Sessions and permissions carry
/// their context, and one never counts in another.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ApplicationContext {
    /// The public web application (served now).
    Web,
    /// The operators' admin application (later).
    Admin,
    /// The Telegram bot (later).
    Telegram,
}

impl ApplicationContext {
    /// Every context, served or not.
    pub const ALL: [ApplicationContext; 3] = [Self::Web, Self::Admin, Self::Telegram];

    /// The value stored in `application_context` columns and used in cache keys.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Web => "web",
            Self::Admin => "admin",
            Self::Telegram => "telegram",
        }
    }

    /// Whether this server can run this context. Adding a context means adding its stack
    /// in `startup.rs` and returning `true` here.
    pub fn is_served(self) -> bool {
        matches!(self, Self::Web)
    }
}

impl fmt::Display for ApplicationContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ApplicationContext {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| {
                format!("unknown application context {s:?} (expected web, admin or telegram)")
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_context_parses_from_its_own_name() {
        for ctx in ApplicationContext::ALL {
            assert_eq!(ctx.as_str().parse::<ApplicationContext>(), Ok(ctx));
        }
    }

    #[test]
    fn unknown_context_is_refused() {
        assert!("Web".parse::<ApplicationContext>().is_err());
        assert!("bot".parse::<ApplicationContext>().is_err());
    }
}
