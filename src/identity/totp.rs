//! Second factors: TOTP (RFC 6238: SHA-1, 6 digits, 30 s steps, codes accepted in their
//! step ±1) through `totp-rs`, and single-use recovery codes.

use totp_rs::{Algorithm, TOTP};

/// Name shown in authenticator apps.
pub const ISSUER: &str = "exchanger";
/// Bytes of a new TOTP secret (160 bits, as RFC 4226 recommends).
const SECRET_BYTES: usize = 20;
/// Seconds per step.
const STEP: u64 = 30;
/// Recovery codes handed out at once.
pub const RECOVERY_CODES: usize = 10;
/// Letters of recovery codes: lower case and digits without look-alikes (no i, l, o, 0, 1).
const CODE_ALPHABET: &[u8; 31] = b"abcdefghjkmnpqrstuvwxyz23456789";

/// A fresh TOTP secret from the OS CSPRNG.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_BYTES];
    getrandom::fill(&mut secret).expect("BUG: the OS random source is unavailable");
    secret
}

fn totp(secret: &[u8], account: &str) -> TOTP {
    // `new` refuses a ':' in the label, which an email may not hold anyway; the secret
    // length and digits are ours, so the unchecked form is safe.
    TOTP::new_unchecked(
        Algorithm::SHA1,
        6,
        0,
        STEP,
        secret.to_vec(),
        Some(ISSUER.to_owned()),
        account.replace(':', "_"),
    )
}

/// What an authenticator app needs: the secret in base32 and the `otpauth://` URI.
pub fn enrollment(secret: &[u8], account: &str) -> (String, String) {
    let totp = totp(secret, account);
    (totp.get_secret_base32(), totp.get_url())
}

/// Whether `code` has the form of a TOTP code (6 digits).
pub fn looks_like_totp(code: &str) -> bool {
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

/// The time step `code` belongs to, when it is the code of the step of `unix_time` or of
/// the one before or after it (clocks drift; RFC 6238 §5.2).
pub fn matching_step(secret: &[u8], code: &str, unix_time: u64) -> Option<u64> {
    if !looks_like_totp(code) {
        return None;
    }
    let totp = totp(secret, "");
    let now = unix_time / STEP;
    [now.saturating_sub(1), now, now + 1]
        .into_iter()
        .find(|step| totp.check(code, step * STEP))
}

/// The code of the step of `unix_time` (tests and tools play the authenticator app).
pub fn code_at(secret: &[u8], unix_time: u64) -> String {
    totp(secret, "").generate(unix_time)
}

/// Ten fresh recovery codes, `xxxxx-xxxxx` (ten letters drawn uniformly from 31: 49 bits).
pub fn new_recovery_codes() -> Vec<String> {
    (0..RECOVERY_CODES)
        .map(|_| {
            let mut letters = String::with_capacity(11);
            while letters.len() < 10 {
                let mut byte = [0u8; 1];
                getrandom::fill(&mut byte).expect("BUG: the OS random source is unavailable");
                // Five bits, the one value past the alphabet drawn again: no letter is likelier.
                if let Some(&letter) = CODE_ALPHABET.get(usize::from(byte[0] & 31)) {
                    letters.push(char::from(letter));
                }
            }
            format!("{}-{}", &letters[..5], &letters[5..])
        })
        .collect()
}

/// A recovery code as typed (any case, spaces or dashes anywhere) in its stored form.
pub fn normalize_recovery_code(code: &str) -> String {
    let letters: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| c.to_ascii_lowercase())
        .collect();
    if letters.len() == 10 {
        format!("{}-{}", &letters[..5], &letters[5..])
    } else {
        letters
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_of_the_step_before_now_and_after_are_accepted_and_no_others() {
        let secret = new_secret();
        let now: u64 = 1_800_000_015;
        for (offset, accepted) in [
            (-60, false),
            (-30, true),
            (0, true),
            (30, true),
            (60, false),
        ] {
            let t = now.checked_add_signed(offset).unwrap();
            let code = code_at(&secret, t);
            assert_eq!(
                matching_step(&secret, &code, now),
                accepted.then_some(t / STEP),
                "offset {offset}"
            );
        }
        assert_eq!(matching_step(&secret, "12345", now), None);
        assert_eq!(matching_step(&secret, "abcdef", now), None);
    }

    #[test]
    fn rfc_6238_test_vector() {
        // RFC 6238 appendix B, SHA-1, T = 59 s: 94287082 (8 digits); 6 digits: 287082.
        let secret = b"12345678901234567890";
        assert_eq!(code_at(secret, 59), "287082");
    }

    #[test]
    fn the_enrollment_uri_names_the_issuer_and_the_account() {
        let (base32, uri) = enrollment(&[7u8; 20], "ann@example.com");
        assert!(
            uri.starts_with("otpauth://totp/exchanger:ann%40example.com?"),
            "{uri}"
        );
        assert!(uri.contains(&format!("secret={base32}")), "{uri}");
        assert!(uri.contains("issuer=exchanger"), "{uri}");
    }

    #[test]
    fn recovery_codes_are_distinct_and_read_back_however_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        for code in &codes {
            assert_eq!(code.len(), 11);
            assert!(
                code.bytes()
                    .enumerate()
                    .all(|(i, b)| (i == 5 && b == b'-') || CODE_ALPHABET.contains(&b)),
                "{code}"
            );
            assert_eq!(
                &normalize_recovery_code(&code.to_uppercase().replace('-', " ")),
                code
            );
        }
    }
}
