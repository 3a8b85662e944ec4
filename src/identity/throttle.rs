//! Sign-in limits (SPEC §4), counted in the store.
//!
//! A login is an *attempt* against one or more counters: a client that signed in before on
//! this device (OWASP's "device cookies") is counted only on its device, so guesses from
//! anyone else never lock it out; any other client is counted per account and per address.
//! An attempt is admitted while a counter's recent failures plus attempts in flight stay
//! under its limit, atomically, so a burst of concurrent guesses gets no more password
//! checks than the limit; only failures stay counted, so concurrent *correct* logins wait a
//! moment for a place instead of being refused. Sign-ups are counted per address.

use crate::cache::counters::Counters;
use crate::cache::keys::Keys;
use crate::cache::store::Attempt;
use crate::config::{LoginLimits, SignupLimits};
use crate::domain::token::sha256_hex;
use crate::error::AppError;
use std::sync::Arc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How long an attempt may wait for a place held by attempts in flight.
const BUSY_WAIT: Duration = Duration::from_secs(3);
const BUSY_POLL: Duration = Duration::from_millis(20);

/// A failed-login counter of one context.
#[derive(Clone, Debug)]
pub enum LoginCounter {
    /// Sign-ins of one (normalised) email from untrusted clients.
    Account(String),
    /// Sign-ins from one client address (untrusted clients).
    Address(String),
    /// Sign-ins from one trusted device.
    Device(Uuid),
    /// Second-factor checks of a signed-in user (step-up and the like).
    SecondFactor(Uuid),
}

/// A login admitted on its counters; end it with [`Throttle::end_login`].
#[must_use = "an attempt counts until it is ended"]
pub struct LoginAttempt {
    id: String,
    counters: Vec<LoginCounter>,
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

    fn key(&self, counter: &LoginCounter) -> String {
        match counter {
            // No account has a longer email; hashing keeps a huge one out of the key.
            LoginCounter::Account(email) if email.len() > 255 => {
                self.keys.login_failures_account(&sha256_hex(email))
            }
            LoginCounter::Account(email) => self.keys.login_failures_account(email),
            LoginCounter::Address(ip) => self.keys.login_failures_ip(ip),
            LoginCounter::Device(id) => self.keys.login_failures_device(*id),
            LoginCounter::SecondFactor(id) => self.keys.second_factor_failures(*id),
        }
    }

    fn limit(&self, counter: &LoginCounter) -> u32 {
        match counter {
            LoginCounter::Account(_) | LoginCounter::Device(_) | LoginCounter::SecondFactor(_) => {
                self.limits.per_account
            }
            LoginCounter::Address(_) => self.limits.per_ip,
        }
    }

    /// Admits a login on every one of `counters`, or on none: over a limit, `RATE_LIMITED`
    /// with the time until it frees up.
    pub async fn begin_login(&self, counters: Vec<LoginCounter>) -> Result<LoginAttempt, AppError> {
        let id = Uuid::new_v4().simple().to_string();
        let deadline = Instant::now() + BUSY_WAIT;
        let mut admitted: Vec<LoginCounter> = Vec::with_capacity(counters.len());
        for counter in counters {
            loop {
                let attempt = self
                    .counters
                    .begin_attempt(
                        &self.key(&counter),
                        &id,
                        self.limit(&counter),
                        self.limits.window,
                    )
                    .await;
                let retry_after = match attempt {
                    Attempt::Admitted => break,
                    Attempt::Busy if Instant::now() < deadline => {
                        tokio::time::sleep(BUSY_POLL).await;
                        continue;
                    }
                    Attempt::Busy => Duration::from_secs(1),
                    Attempt::Refused(retry_after) => retry_after,
                };
                self.end_login(
                    LoginAttempt {
                        id,
                        counters: admitted,
                    },
                    false,
                )
                .await;
                return Err(AppError::RateLimited { retry_after });
            }
            admitted.push(counter);
        }
        Ok(LoginAttempt {
            id,
            counters: admitted,
        })
    }

    /// Ends a login: its counters remember it as a failure when `failed`.
    pub async fn end_login(&self, attempt: LoginAttempt, failed: bool) {
        for counter in &attempt.counters {
            self.counters
                .end_attempt(&self.key(counter), &attempt.id, failed, self.limits.window)
                .await;
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

    /// Counts a password-reset request from `ip`; over the limit, how long to wait. (Saying
    /// so tells nothing about any account; it keeps one address from using up the reset
    /// work meant for everyone.)
    pub async fn take_reset_request(&self, ip: &str) -> Result<(), Duration> {
        let (count, left) = self
            .counters
            .add(&self.keys.reset_requests_ip(ip), 1, RESET_REQUEST_WINDOW)
            .await;
        if count > i64::from(self.signups.resets_per_ip) {
            return Err(left.max(Duration::from_secs(1)));
        }
        Ok(())
    }

    /// Counts a password-reset mail to `email`; `false` when enough went out lately (the
    /// request still answers the same, so this says nothing about the account).
    pub async fn take_reset_mail(&self, email: &str) -> bool {
        let (count, _) = self
            .counters
            .add(
                &self.keys.reset_mails(&sha256_hex(email)),
                1,
                RESET_MAIL_WINDOW,
            )
            .await;
        count <= RESET_MAILS
    }
}

/// Window of the password-reset request counter.
const RESET_REQUEST_WINDOW: Duration = Duration::from_secs(60 * 60);

/// Password-reset mails per address per window: enough for a lost mail or two, too few to
/// flood an inbox.
const RESET_MAILS: i64 = 3;
const RESET_MAIL_WINDOW: Duration = Duration::from_secs(60 * 60);
