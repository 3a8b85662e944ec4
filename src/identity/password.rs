//! argon2id at OWASP's parameters (m = 19 MiB, t = 2, p = 1), off the async runtime.
//!
//! Hashing runs on its own threads, one per core, in the idle scheduling class: a burst of
//! logins uses every idle cycle but yields the CPU to the request-serving runtime whenever
//! both want it, so other requests are not slowed by logins.

use crate::domain::Password;
use crate::error::{AppError, AppResult};
use argon2::password_hash::phc::{Output, PasswordHash};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHasher, Version};
use std::cell::RefCell;
use std::sync::mpsc;
use std::sync::{LazyLock, Mutex};
use tokio::sync::oneshot;

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

type Job = Box<dyn FnOnce() + Send>;

/// The hashing threads' queue.
static POOL: LazyLock<Mutex<mpsc::Sender<Job>>> = LazyLock::new(|| {
    let (tx, rx) = mpsc::channel::<Job>();
    let rx = std::sync::Arc::new(Mutex::new(rx));
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    for i in 0..threads {
        let rx = rx.clone();
        std::thread::Builder::new()
            .name(format!("argon2-{i}"))
            .spawn(move || {
                lower_priority();
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
    Mutex::new(tx)
});

/// Puts this thread in the idle scheduling class (Linux `SCHED_IDLE`): it runs whenever a
/// core would otherwise idle, and any ordinary thread that wakes up takes the core at once.
/// Where that is refused, it falls back to the lowest nice value.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain syscalls on the calling thread with a valid, zeroed parameter struct;
    // failure only leaves the priority as it was.
    unsafe {
        let param: libc::sched_param = std::mem::zeroed();
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            libc::setpriority(libc::PRIO_PROCESS, tid, 19);
        }
    }
}

/// Runs `f` on a hashing thread, inside the caller's span.
async fn on_hash_thread<R: Send + 'static>(f: impl FnOnce() -> R + Send + 'static) -> AppResult<R> {
    let (done, result) = oneshot::channel();
    let span = tracing::Span::current();
    let job: Job = Box::new(move || {
        let _ = done.send(span.in_scope(f));
    });
    POOL.lock()
        .map_err(|_| AppError::internal(anyhow::anyhow!("password hashing pool poisoned")))?
        .send(job)
        .map_err(|_| AppError::internal(anyhow::anyhow!("password hashing threads stopped")))?;
    result
        .await
        .map_err(|_| AppError::internal(anyhow::anyhow!("password hashing job dropped")))
}

/// Hashes a new password (PHC string).
pub async fn hash(password: Password) -> AppResult<String> {
    on_hash_thread(move || {
        hasher()
            .hash_password(password.expose().as_bytes())
            .map(|h| h.to_string())
    })
    .await?
    .map_err(|e| AppError::internal(anyhow::anyhow!("argon2 hash: {e}")))
}

/// Checks `candidate` against `stored`, or against a dummy hash when there is no user.
/// Returns `false` for a missing user even if the dummy matched.
pub async fn verify(candidate: String, stored: Option<String>) -> AppResult<bool> {
    let known = stored.is_some();
    let ok = on_hash_thread(move || {
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.clone());
        verify_reusing_memory(candidate.as_bytes(), &phc)
    })
    .await?;
    Ok(ok && known)
}

thread_local! {
    /// Each hashing thread's argon2 working memory (19 MiB), kept between verifications:
    /// allocating it fresh each time costs thousands of page faults per login.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// `PasswordVerifier::verify_password`, computed in this thread's reused memory. Any
/// algorithm, version and parameters the PHC string names are honoured; the comparison is
/// constant-time (`Output`'s equality).
fn verify_reusing_memory(candidate: &[u8], phc: &str) -> bool {
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
    let hashed = BLOCKS.with_borrow_mut(|blocks| {
        blocks.resize(blocks_needed, Block::default());
        argon2
            .hash_password_into_with_memory(
                candidate,
                salt.as_ref(),
                &mut computed,
                &mut blocks[..],
            )
            .is_ok()
    });
    hashed && Output::new(&computed).is_ok_and(|output| &output == expected)
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

    #[test]
    fn reused_memory_verification_agrees_with_the_library() {
        let phc = hasher()
            .hash_password(b"correct horse")
            .unwrap()
            .to_string();
        let parsed = PasswordHash::new(&phc).unwrap();
        for (candidate, expected) in [
            (&b"correct horse"[..], true),
            (b"correct hors", false),
            (b"", false),
        ] {
            assert_eq!(
                hasher().verify_password(candidate, &parsed).is_ok(),
                expected
            );
            assert_eq!(verify_reusing_memory(candidate, &phc), expected);
        }
        assert!(!verify_reusing_memory(b"x", "not a phc string"));
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }
}
