//! argon2id at OWASP's parameters (m = 19 MiB, t = 2, p = 1), off the async runtime.

use crate::domain::Password;
use crate::error::AppResult;
use crate::telemetry::spawn_blocking_with_tracing;
use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;

fn hasher() -> Argon2<'static> {
    let params =
        Params::new(19 * 1024, 2, 1, None).expect("BUG: OWASP argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Verified against when the email is unknown, so that case costs the same as a wrong
/// password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hasher()
        .hash_password(b"exchanger-dummy-password")
        .expect("BUG: hashing a constant cannot fail")
        .to_string()
});

/// At most one hash per core runs at a time; the rest wait here rather than fill the
/// blocking pool and starve other blocking work.
static HASH_SLOTS: LazyLock<Arc<Semaphore>> = LazyLock::new(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    Arc::new(Semaphore::new(cores))
});

/// Hashes a new password (PHC string).
pub async fn hash(password: Password) -> AppResult<String> {
    let _slot = HASH_SLOTS
        .clone()
        .acquire_owned()
        .await
        .map_err(crate::error::AppError::internal)?;
    let phc = spawn_blocking_with_tracing(move || {
        hasher()
            .hash_password(password.expose().as_bytes())
            .map(|h| h.to_string())
    })
    .await?
    .map_err(|e| anyhow::anyhow!("argon2 hash: {e}"))?;
    Ok(phc)
}

/// Checks `candidate` against `stored`, or against a dummy hash when there is no user.
/// Returns `false` for a missing user even if the dummy matched.
pub async fn verify(candidate: String, stored: Option<String>) -> AppResult<bool> {
    let _slot = HASH_SLOTS
        .clone()
        .acquire_owned()
        .await
        .map_err(crate::error::AppError::internal)?;
    let known = stored.is_some();
    let ok = spawn_blocking_with_tracing(move || {
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return false;
        };
        hasher()
            .verify_password(candidate.as_bytes(), &parsed)
            .is_ok()
    })
    .await?;
    Ok(ok && known)
}

/// Warms the dummy hash so the first unknown-email login is not slower than the rest.
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}
