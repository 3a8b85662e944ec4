//! Sign-in limits (SPEC §4), counted in the store: failed logins per account and per client
//! address, and sign-ups per client address.

use crate::cache::counters::Counters;
use crate::cache::keys::Keys;
use crate::config::{LoginLimits, SignupLimits};
use crate::domain::token::sha256_hex;
use std::sync::Arc;
use std::time::Duration;

/// A failed-login counter of one context.
#[derive(Clone, Copy, Debug)]
pub enum LoginCounter<'a> {
    /// Failures for one (normalised) email.
    Account(&'a str),
    /// Failures from one client address.
    Address(&'a str),
}

/// The sign-in counters of one context.
pub struct Throttle {
    counters: Arc<Counters>,
    keys: Keys,
    limits: LoginLimits,
    signups: SignupLimits,
}

impl Throttle {
    /// Counters of `keys`' context, with these limits.
    pub fn new(
        counters: Arc<Counters>,
        keys: Keys,
        limits: LoginLimits,
        signups: SignupLimits,
    ) -> Self {
        Self {
            counters,
            keys,
            limits,
            signups,
        }
    }

    /// Counts a sign-up from `ip`; over the limit, returns how long to wait. Every attempt
    /// counts (a sign-up costs a password hash whether or not it succeeds).
    pub async fn take_signup(&self, ip: &str) -> Result<(), Duration> {
        let (count, left) = self
            .counters
            .add(&self.keys.signups_ip(ip), 1, self.signups.window)
            .await;
        if count > i64::from(self.signups.per_ip) {
            return Err(left.max(Duration::from_secs(1)));
        }
        Ok(())
    }

    fn key(&self, counter: LoginCounter<'_>) -> String {
        match counter {
            // No account has a longer email; hashing keeps a huge one out of the key.
            LoginCounter::Account(email) if email.len() > 255 => {
                self.keys.login_failures_account(&sha256_hex(email))
            }
            LoginCounter::Account(email) => self.keys.login_failures_account(email),
            LoginCounter::Address(ip) => self.keys.login_failures_ip(ip),
        }
    }

    fn limit(&self, counter: LoginCounter<'_>) -> u32 {
        match counter {
            LoginCounter::Account(_) => self.limits.per_account,
            LoginCounter::Address(_) => self.limits.per_ip,
        }
    }

    /// Counts a login attempt against `counter` *before* the password is checked, with one
    /// atomic increment, so a burst of concurrent guesses cannot all pass a check made
    /// before any of them was counted. Over the limit, returns how long to wait.
    pub async fn take_login_attempt(&self, counter: LoginCounter<'_>) -> Result<(), Duration> {
        let (count, left) = self
            .counters
            .add(&self.key(counter), 1, self.limits.window)
            .await;
        if count > i64::from(self.limit(counter)) {
            return Err(left.max(Duration::from_secs(1)));
        }
        Ok(())
    }

    /// Gives back an attempt taken by `take_login_attempt` that did not fail (it succeeded, or
    /// another limit refused it before the password was checked).
    pub async fn return_login_attempt(&self, counter: LoginCounter<'_>) {
        self.counters
            .add(&self.key(counter), -1, self.limits.window)
            .await;
    }

    /// Forgets the failures of `counter` (after a successful login).
    pub async fn clear_login_failures(&self, counter: LoginCounter<'_>) {
        self.counters.reset(&self.key(counter)).await;
    }
}
