//! The ONLY place store keys and TTLs are built (SPEC §1 table).
//!
//! Every key is `{prefix}{namespace}:{ctx}:…`. The prefix is empty in production; tests set
//! a random one so parallel tests sharing one Redis never see each other's keys.

use crate::context::ApplicationContext;
use std::time::Duration;
use uuid::Uuid;

/// Namespace of identity keys.
pub const IDENTITY: &str = "identity";
/// Namespace of cache keys.
pub const CACHE: &str = "cache";
/// Namespace of rate-limit counters (not in the SPEC table; same scheme).
pub const LIMIT: &str = "limit";

/// `identity:session:…` lives 24 h (and never past the session's own expiry).
pub const SESSION_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// `identity:user:…` lives 1 h.
pub const USER_TTL: Duration = Duration::from_secs(60 * 60);
/// `cache:…:rates:…` lives 5 min.
pub const RATES_TTL: Duration = Duration::from_secs(5 * 60);
/// `cache:…:orders:…` lives 30 min.
pub const ORDERS_TTL: Duration = Duration::from_secs(30 * 60);
/// `cache:…:analytics:daily…` lives 15 min.
pub const ANALYTICS_TTL: Duration = Duration::from_secs(15 * 60);

/// The pub/sub channel on which server instances tell each other which keys to drop from
/// their in-process copies (shared by every context).
pub fn invalidation_channel(prefix: &str) -> String {
    format!("{prefix}cache-invalidation")
}

/// The pub/sub channel on which rate events cross server instances.
pub fn events_channel(prefix: &str) -> String {
    format!("{prefix}rate-events")
}

/// Builds the keys of one application context.
#[derive(Clone, Debug)]
pub struct Keys {
    prefix: String,
    ctx: ApplicationContext,
}

impl Keys {
    /// Keys of `ctx`, behind `prefix` (empty in production).
    pub fn new(prefix: impl Into<String>, ctx: ApplicationContext) -> Self {
        Self {
            prefix: prefix.into(),
            ctx,
        }
    }

    /// The same scheme for another context (for the few writes that span contexts, such as
    /// ending every session after a password reset).
    pub fn for_context(&self, ctx: ApplicationContext) -> Self {
        Self::new(self.prefix.clone(), ctx)
    }

    /// `{prefix}{namespace}:{ctx}:{rest}`: the shape of `cache:` and `limit:` keys.
    fn key(&self, namespace: &str, rest: std::fmt::Arguments<'_>) -> String {
        format!("{}{namespace}:{}:{rest}", self.prefix, self.ctx.as_str())
    }

    /// `identity:session:{ctx}:{session_key}`; the session key is the token's hash.
    pub fn session(&self, token_hash: &str) -> String {
        format!(
            "{}{IDENTITY}:session:{}:{token_hash}",
            self.prefix, self.ctx
        )
    }

    /// `identity:user:{ctx}:{user_id}`.
    pub fn user(&self, user_id: Uuid) -> String {
        format!("{}{IDENTITY}:user:{}:{user_id}", self.prefix, self.ctx)
    }

    /// `cache:{ctx}:rates:{from}_{to}`, lower case.
    pub fn rate(&self, from: &str, to: &str) -> String {
        self.key(
            CACHE,
            format_args!(
                "rates:{}_{}",
                from.to_ascii_lowercase(),
                to.to_ascii_lowercase()
            ),
        )
    }

    /// `cache:{ctx}:rates:all`: every pair valid now (`exchangeRates`).
    pub fn all_rates(&self) -> String {
        self.key(CACHE, format_args!("rates:all"))
    }

    /// `cache:{ctx}:orders:{user_id}`: first page of the user's orders.
    pub fn orders(&self, user_id: Uuid) -> String {
        self.key(CACHE, format_args!("orders:{user_id}"))
    }

    /// `cache:{ctx}:analytics:daily:{date}`.
    pub fn daily_analytics(&self, date: chrono::NaiveDate) -> String {
        self.key(CACHE, format_args!("analytics:daily:{date}"))
    }

    /// Failed-login counter of one account.
    pub fn login_failures_account(&self, email: &str) -> String {
        self.key(LIMIT, format_args!("login:account:{email}"))
    }

    /// Failed-login counter of one client address.
    pub fn login_failures_ip(&self, ip: &str) -> String {
        self.key(LIMIT, format_args!("login:ip:{ip}"))
    }

    /// Failed-login counter of one trusted device.
    pub fn login_failures_device(&self, device_id: Uuid) -> String {
        self.key(LIMIT, format_args!("login:device:{device_id}"))
    }

    /// Failed second-factor checks (step-up, turning two-factor off) of one user.
    pub fn second_factor_failures(&self, user_id: Uuid) -> String {
        self.key(LIMIT, format_args!("second-factor:{user_id}"))
    }

    /// Password-reset mail counter of one address (given as a hash: no email in a key).
    pub fn reset_mails(&self, email_hash: &str) -> String {
        self.key(LIMIT, format_args!("reset:{email_hash}"))
    }

    /// Sign-up counter of one client address.
    pub fn signups_ip(&self, ip: &str) -> String {
        self.key(LIMIT, format_args!("signup:ip:{ip}"))
    }

    /// Password-reset request counter of one client address.
    pub fn reset_requests_ip(&self, ip: &str) -> String {
        self.key(LIMIT, format_args!("reset:ip:{ip}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_spec_table() {
        let keys = Keys::new("", ApplicationContext::Web);
        let id = Uuid::nil();
        assert_eq!(keys.session("abc"), "identity:session:web:abc");
        assert_eq!(keys.user(id), format!("identity:user:web:{id}"));
        assert_eq!(keys.rate("USD", "UAH"), "cache:web:rates:usd_uah");
        assert_eq!(keys.orders(id), format!("cache:web:orders:{id}"));
        let date = chrono::NaiveDate::from_ymd_opt(2026, 11, 24).unwrap();
        assert_eq!(
            keys.daily_analytics(date),
            "cache:web:analytics:daily:2026-11-24"
        );
    }

    #[test]
    fn contexts_and_prefixes_never_share_keys() {
        let web = Keys::new("", ApplicationContext::Web);
        let admin = Keys::new("", ApplicationContext::Admin);
        let test = Keys::new("t1:", ApplicationContext::Web);
        assert_eq!(admin.session("abc"), "identity:session:admin:abc");
        assert_ne!(web.user(Uuid::nil()), admin.user(Uuid::nil()));
        assert_eq!(test.rate("USD", "UAH"), "t1:cache:web:rates:usd_uah");
    }
}
