//! The server key (`SECRET_KEY`) and what it protects at rest: TOTP secrets are sealed with
//! XChaCha20-Poly1305 (an AEAD: a changed ciphertext fails to open), bound to their user;
//! recovery codes are kept only as HMAC-SHA-256 under a key derived from it, so a copy of
//! the database alone reveals neither.

use crate::config::{Config, Storage, expose};
use anyhow::Context as _;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

/// Where the embedded default keeps its generated key.
const KEY_FILE: &str = "secret.key";
/// Prefix of a sealed value (the format's version).
const SEALED_V1: &str = "v1:";

/// The server key, with the subkeys derived from it.
pub struct SecretKey {
    cipher: XChaCha20Poly1305,
    code_key: [u8; 32],
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

impl SecretKey {
    /// The configured key: `SECRET_KEY`, or on the embedded default the one generated into
    /// the data folder (created on first use, readable by its owner only).
    pub fn load(config: &Config) -> anyhow::Result<Self> {
        if let Some(hex_key) = &config.security.secret_key {
            return Self::from_hex(expose(hex_key)).context("SECRET_KEY");
        }
        match &config.storage {
            Storage::Embedded { data_dir } => Self::from_file(&data_dir.join(KEY_FILE)),
            Storage::External { .. } => anyhow::bail!(
                "SECRET_KEY is required with PostgreSQL (it protects two-factor secrets at \
                 rest): set it to 64 hex characters, e.g. from `openssl rand -hex 32`, the \
                 same for every instance"
            ),
        }
    }

    /// A key from 64 hex characters.
    pub fn from_hex(hex_key: &str) -> anyhow::Result<Self> {
        let bytes: [u8; 32] = hex::decode(hex_key.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .context("must be 64 hex characters")?;
        Ok(Self::from_bytes(&bytes))
    }

    fn from_bytes(master: &[u8; 32]) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(&derive(master, b"exchanger totp sealing v1").into()),
            code_key: derive(master, b"exchanger recovery codes v1"),
        }
    }

    /// Reads the key in `path`, or creates it (mode 0600) when there is none.
    fn from_file(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                return Self::from_hex(&text)
                    .with_context(|| format!("{} is not a key", path.display()));
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err).with_context(|| format!("reading {}", path.display())),
        }
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).context("the OS random source is unavailable")?;
        let written = {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .and_then(|mut file| file.write_all(hex::encode(bytes).as_bytes()))
        };
        match written {
            Ok(()) => {
                tracing::info!(file = %path.display(), "generated the server's secret key");
                Ok(Self::from_bytes(&bytes))
            }
            // Another process created it first: use theirs.
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Self::from_file(path),
            Err(err) => Err(err).with_context(|| format!("writing {}", path.display())),
        }
    }

    /// Seals `secret` for `owner` (the owner is bound in as associated data: a sealed value
    /// moved to another user does not open).
    pub fn seal(&self, owner: &str, secret: &[u8]) -> anyhow::Result<String> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).context("the OS random source is unavailable")?;
        let sealed = self
            .cipher
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: secret,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("sealing failed"))?;
        Ok(format!(
            "{SEALED_V1}{}{}",
            hex::encode(nonce),
            hex::encode(sealed)
        ))
    }

    /// Opens what [`SecretKey::seal`] sealed for `owner`.
    pub fn open(&self, owner: &str, sealed: &str) -> anyhow::Result<Vec<u8>> {
        let bytes = sealed
            .strip_prefix(SEALED_V1)
            .and_then(|hex_text| hex::decode(hex_text).ok())
            .filter(|b| b.len() > 24)
            .context("not a sealed value")?;
        let (nonce, sealed) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().context("not a sealed value")?;
        self.cipher
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: sealed,
                    aad: owner.as_bytes(),
                },
            )
            .map_err(|_| anyhow::anyhow!("a sealed secret does not open: another SECRET_KEY?"))
    }

    /// The stored form of a recovery code (keyed hash, hex).
    pub fn code_hash(&self, code: &str) -> String {
        hex::encode(hmac_sha256(&self.code_key, code.as_bytes()))
    }
}

/// A subkey of `master` for one purpose (HMAC-SHA-256 as a PRF, `label` as its input).
fn derive(master: &[u8; 32], label: &[u8]) -> [u8; 32] {
    hmac_sha256(master, label)
}

fn hmac_sha256(key: &[u8; 32], message: &[u8]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(key)
        .expect("BUG: HMAC takes keys of any length");
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; 32])
    }

    #[test]
    fn sealed_secrets_open_only_for_their_owner_under_their_key() {
        let sealed = key(1).seal("user-a", b"totp secret").unwrap();
        assert!(!sealed.contains(&hex::encode(b"totp secret")));
        assert_eq!(key(1).open("user-a", &sealed).unwrap(), b"totp secret");
        assert!(key(1).open("user-b", &sealed).is_err());
        assert!(key(2).open("user-a", &sealed).is_err());
        let mut tampered = sealed.clone();
        let last = tampered.pop().unwrap();
        tampered.push(if last == '0' { '1' } else { '0' });
        assert!(key(1).open("user-a", &tampered).is_err());
        // Two seals of one secret differ (fresh nonces).
        assert_ne!(sealed, key(1).seal("user-a", b"totp secret").unwrap());
    }

    #[test]
    fn recovery_code_hashes_depend_on_the_key() {
        assert_eq!(
            key(1).code_hash("abcde-fghij"),
            key(1).code_hash("abcde-fghij")
        );
        assert_ne!(
            key(1).code_hash("abcde-fghij"),
            key(2).code_hash("abcde-fghij")
        );
        assert_eq!(key(1).code_hash("x").len(), 64);
    }

    #[test]
    fn the_embedded_key_is_generated_once_and_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("exchanger-key-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(KEY_FILE);
        let first = SecretKey::from_file(&path).unwrap();
        let again = SecretKey::from_file(&path).unwrap();
        assert_eq!(first.code_hash("c"), again.code_hash("c"));
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        std::fs::remove_dir_all(dir).unwrap();
    }
}
