//! argon2id at OWASP's parameters (m = 19 MiB, t = 2, p = 1), off the async runtime.
//!
//! Hashing runs on its own threads, one for every two cores (at least one), at the same
//! priority as the request-serving runtime. So password work always has a share of the CPU
//! (a login under a flood of cheap queries waits tens of milliseconds, not seconds), and
//! however many logins arrive they never take more than half of the cores: reads keep the
//! rest. Jobs wait in a bounded queue; when it is full a sign-in is refused at once
//! (`RATE_LIMITED`) instead of waiting without bound. Each thread hashes in the same 19 MiB it keeps between
//! jobs, so memory stays flat however many passwords are hashed.

use crate::domain::Password;
use crate::error::{AppError, AppResult};
use argon2::password_hash::phc::{Output, ParamsString, PasswordHash, Salt};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use std::cell::RefCell;
use std::sync::mpsc::{self, TrySendError};
use std::sync::{LazyLock, Mutex};
use std::time::Duration;
use tokio::sync::oneshot;

/// Jobs that may wait for a hashing thread; more is a burst no one should wait out.
const QUEUE: usize = 64;
/// What a refused sign-in is told to wait.
const RETRY_AFTER: Duration = Duration::from_secs(1);

fn params() -> Params {
    Params::new(19 * 1024, 2, 1, None).expect("BUG: OWASP argon2 parameters are valid")
}

/// Verified against when the email is unknown, so that case costs the same as a wrong
/// password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    hash_in_place(b"exchanger-dummy-password").expect("BUG: hashing a constant cannot fail")
});

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads' bounded queue.
static POOL: LazyLock<mpsc::SyncSender<Job>> = LazyLock::new(|| {
    let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE);
    let rx = std::sync::Arc::new(Mutex::new(rx));
    for i in 0..hashing_threads() {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                loop {
                    let job = match rx.lock() {
                        Ok(rx) => rx.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => return,
                    }
                }
            })
            .expect("BUG: cannot start the password hashing threads");
    }
    tx
});

/// One hashing thread for every two cores, at least one: logins never hold more than half
/// of the machine.
fn hashing_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
}

/// Runs `f` on a hashing thread, inside the caller's span; `RATE_LIMITED` when the queue is
/// full.
async fn on_hash_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> AppResult<R> {
    let (done, result) = oneshot::channel();
    let span = tracing::Span::current();
    let job: Job = Box::new(move || {
        let _ = done.send(span.in_scope(f));
    });
    match POOL.try_send(job) {
        Ok(()) => {}
        Err(TrySendError::Full(_)) => {
            metrics::counter!("exchanger_password_queue_full_total").increment(1);
            return Err(AppError::RateLimited {
                retry_after: RETRY_AFTER,
            });
        }
        Err(TrySendError::Disconnected(_)) => {
            return Err(AppError::internal(anyhow::anyhow!(
                "password hashing threads stopped"
            )));
        }
    }
    result
        .await
        .map_err(|_| AppError::internal(anyhow::anyhow!("password hashing job dropped")))
}

/// Hashes a new password (PHC string).
pub async fn hash(password: Password) -> AppResult<String> {
    on_hash_thread(move || hash_in_place(password.expose().as_bytes()))
        .await?
        .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 hash: {e}")))
}

/// Checks `candidate` against `stored`, or against a dummy hash when there is no user.
/// Returns `false` for a missing user even if the dummy matched.
pub async fn verify(candidate: String, stored: Option<String>) -> AppResult<bool> {
    let known = stored.is_some();
    let ok = on_hash_thread(move || {
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        verify_in_place(candidate.as_bytes(), &phc)
    })
    .await?;
    Ok(ok && known)
}

thread_local! {
    /// Each hashing thread's argon2 working memory (19 MiB), kept between jobs: allocating it
    /// per job costs thousands of page faults, and the allocator keeps what it got (the RSS of
    /// a server that hashed freshly each time grew by hundreds of MB over a few hundred
    /// sign-ups).
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// argon2 of `password` with `salt` into `out`, in this thread's reused memory.
fn argon2_in_place(
    argon2: &Argon2<'_>,
    blocks_needed: usize,
    password: &[u8],
    salt: &[u8],
    out: &mut [u8],
) -> argon2::Result<()> {
    BLOCKS.with_borrow_mut(|blocks| {
        blocks.resize(blocks_needed, Block::default());
        argon2.hash_password_into_with_memory(password, salt, out, &mut blocks[..])
    })
}

/// A new argon2id PHC string for `password`, with a fresh random salt.
fn hash_in_place(password: &[u8]) -> Result<String, argon2::password_hash::Error> {
    let params = params();
    let salt = Salt::generate();
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    argon2_in_place(
        &argon2,
        params.block_count(),
        password,
        salt.as_ref(),
        &mut out,
    )?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params)?,
        salt: Some(salt),
        hash: Some(Output::new(&out)?),
    };
    Ok(phc.to_string())
}

/// `PasswordVerifier::verify_password`, computed in this thread's reused memory. Any
/// algorithm, version and parameters the PHC string names are honoured; the comparison is
/// constant-time (`Output`'s equality).
fn verify_in_place(candidate: &[u8], phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (&parsed.salt, &parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm.as_str()) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from) {
        Some(Ok(version)) => version,
        Some(Err(_)) => return false,
        None => Version::default(),
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let blocks_needed = params.block_count();
    let argon2 = Argon2::new(algorithm, version, params);
    let mut computed = vec![0u8; expected.len()];
    argon2_in_place(
        &argon2,
        blocks_needed,
        candidate,
        salt.as_ref(),
        &mut computed,
    )
    .is_ok()
        && Output::new(&computed).is_ok_and(|output| &output == expected)
}

/// Starts the hashing threads and computes the dummy hash, so the first login is not
/// slower than the rest.
pub fn warm_up() {
    LazyLock::force(&POOL);
    LazyLock::force(&DUMMY_HASH);
}

#[cfg(test)]
mod tests {
    use super::*;
    use argon2::PasswordVerifier;
    use futures_util::FutureExt;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Condvar};

    /// A job that holds its hashing thread until the gate opens.
    fn held(
        gate: &Arc<(Mutex<bool>, Condvar)>,
        started: &Arc<AtomicUsize>,
    ) -> impl FnOnce() + Send + 'static {
        let (gate, started) = (gate.clone(), started.clone());
        move || {
            started.fetch_add(1, Ordering::SeqCst);
            let (open, wake) = &*gate;
            let mut open = open.lock().unwrap();
            while !*open {
                open = wake.wait(open).unwrap();
            }
        }
    }

    #[test]
    fn a_full_hashing_queue_refuses_at_once() {
        let threads = hashing_threads();
        let gate = Arc::new((Mutex::new(false), Condvar::new()));
        let started = Arc::new(AtomicUsize::new(0));
        let submit = || on_hash_thread(held(&gate, &started)).now_or_never();
        // Every thread busy...
        for _ in 0..threads {
            assert!(submit().is_none(), "queued");
        }
        while started.load(Ordering::SeqCst) < threads {
            std::thread::yield_now();
        }
        // ...and the queue full.
        for _ in 0..QUEUE {
            assert!(submit().is_none(), "queued");
        }
        // One more is refused without waiting.
        assert!(matches!(submit(), Some(Err(AppError::RateLimited { .. }))));
        *gate.0.lock().unwrap() = true;
        gate.1.notify_all();
    }

    #[test]
    fn hashing_and_verifying_in_place_agree_with_the_library() {
        let phc = hash_in_place(b"correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        let parsed = PasswordHash::new(&phc).unwrap();
        let library = Argon2::new(Algorithm::Argon2id, Version::V0x13, params());
        for (candidate, expected) in [
            (&b"correct horse"[..], true),
            (b"correct hors", false),
            (b"", false),
        ] {
            assert_eq!(
                library.verify_password(candidate, &parsed).is_ok(),
                expected
            );
            assert_eq!(verify_in_place(candidate, &phc), expected);
        }
        assert!(!verify_in_place(b"x", "not a phc string"));
        assert_ne!(phc, hash_in_place(b"correct horse").unwrap(), "fresh salt");
    }
}
