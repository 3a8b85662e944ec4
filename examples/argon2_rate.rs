//! Single-core argon2id verify rate at the server's parameters (m = 19 MiB, t = 2, p = 1),
//! for the benchmark's `login` target (`bench/run.sh`).
//!
//! ```sh
//! cargo run --release --example argon2_rate            # ~3 s of verifying
//! cargo run --release --example argon2_rate -- 5       # seconds to measure
//! ```
//!
//! Prints one JSON line: `{"verifies_per_sec": 41.2, "verifies": 124, "seconds": 3.01, ...}`.

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher, PasswordVerifier, Version};
use std::time::{Duration, Instant};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let seconds: f64 = match std::env::args().nth(1) {
        Some(arg) => arg.parse()?,
        None => 3.0,
    };
    let params = Params::new(19 * 1024, 2, 1, None).map_err(|e| e.to_string())?;
    let argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
    let password = b"bench-password-1";
    let phc = argon2
        .hash_password(password)
        .map_err(|e| e.to_string())?
        .to_string();
    let parsed = PasswordHash::new(&phc).map_err(|e| e.to_string())?;

    // One warm-up verify (page faults of the 19 MiB block, caches), not counted.
    argon2
        .verify_password(password, &parsed)
        .map_err(|e| e.to_string())?;

    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let mut verifies = 0u32;
    while start.elapsed() < budget {
        argon2
            .verify_password(password, &parsed)
            .map_err(|e| e.to_string())?;
        verifies += 1;
    }
    let elapsed = start.elapsed().as_secs_f64();
    println!(
        "{{\"verifies_per_sec\": {:.2}, \"verifies\": {verifies}, \"seconds\": {elapsed:.3}, \
         \"m_kib\": {}, \"t\": {}, \"p\": {}}}",
        f64::from(verifies) / elapsed,
        19 * 1024,
        2,
        1
    );
    Ok(())
}
