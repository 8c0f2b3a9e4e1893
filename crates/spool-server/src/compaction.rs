//! Sealing compaction summaries: the `encrypted_content` of a `compaction`
//! item, which only this server (holding its key) can open.
//!
//! A summary is sealed with ChaCha20-Poly1305 (`ring`, which rustls
//! already builds) under a 32-byte key kept in a file: given by the
//! operator, or generated on first start next to the database. The sealed
//! form is `spool1.` and the URL-safe base64 of a fresh 12-byte nonce and
//! the ciphertext with its tag; anything altered fails to open. The same
//! key seals roboto's continuation tokens, bound to that use.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom, SystemRandom};
use std::path::Path;

const PREFIX: &str = "spool1.";
/// Binds a sealed summary to its use: a key shared with another purpose
/// could not be made to open it as a summary.
const AAD: &[u8] = b"spool compaction summary v1";
/// The same for a roboto continuation token.
const TOKEN_AAD: &[u8] = b"spool roboto continuation token v1";
const KEY_LEN: usize = 32;

/// Why a sealed summary could not be made or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("the content was not sealed by this server, or was altered")]
    Invalid,
    #[error("no randomness for a nonce")]
    Random,
}

/// Seals and opens compaction summaries with the server's key.
pub struct CompactionSeal {
    key: LessSafeKey,
    random: SystemRandom,
}

impl std::fmt::Debug for CompactionSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CompactionSeal(..)")
    }
}

impl CompactionSeal {
    /// A seal with `key`.
    pub fn from_key(key: &[u8; KEY_LEN]) -> Self {
        let unbound = UnboundKey::new(&CHACHA20_POLY1305, key)
            .unwrap_or_else(|_| unreachable!("a 32-byte key fits ChaCha20-Poly1305"));
        Self {
            key: LessSafeKey::new(unbound),
            random: SystemRandom::new(),
        }
    }

    /// The key in `path`, created (32 random bytes, readable by the owner
    /// only) if the file does not exist.
    pub fn load_or_create(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        match std::fs::read(path) {
            Ok(bytes) => {
                let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
                    anyhow::anyhow!(
                        "the compaction key file {} must hold exactly {KEY_LEN} bytes",
                        path.display()
                    )
                })?;
                Ok(Self::from_key(&key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                SystemRandom::new()
                    .fill(&mut key)
                    .map_err(|_| anyhow::anyhow!("no randomness for a compaction key"))?;
                write_private(path, &key).with_context(|| {
                    format!("cannot write the compaction key file {}", path.display())
                })?;
                tracing::info!(path = %path.display(), "generated the compaction key");
                Ok(Self::from_key(&key))
            }
            Err(e) => Err(e)
                .with_context(|| format!("cannot read the compaction key file {}", path.display())),
        }
    }

    pub fn seal(&self, summary: &str) -> Result<String, SealError> {
        self.seal_bound(AAD, summary)
    }

    pub fn open(&self, sealed: &str) -> Result<String, SealError> {
        self.open_bound(AAD, sealed)
    }

    /// Seals a roboto continuation token (a position in a thread's logs),
    /// so a client can neither forge one nor pass one off as a summary.
    pub fn seal_token(&self, position: &str) -> Result<String, SealError> {
        self.seal_bound(TOKEN_AAD, position)
    }

    pub fn open_token(&self, sealed: &str) -> Result<String, SealError> {
        self.open_bound(TOKEN_AAD, sealed)
    }

    fn seal_bound(&self, aad: &'static [u8], text: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        self.random
            .fill(&mut nonce)
            .map_err(|_| SealError::Random)?;
        let mut data = text.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut data,
            )
            .map_err(|_| SealError::Invalid)?;
        let mut sealed = nonce.to_vec();
        sealed.extend_from_slice(&data);
        Ok(format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(sealed)))
    }

    fn open_bound(&self, aad: &'static [u8], sealed: &str) -> Result<String, SealError> {
        let encoded = sealed.strip_prefix(PREFIX).ok_or(SealError::Invalid)?;
        let mut bytes = URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|_| SealError::Invalid)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Invalid);
        }
        let mut data = bytes.split_off(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = bytes.try_into().map_err(|_| SealError::Invalid)?;
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(aad),
                &mut data,
            )
            .map_err(|_| SealError::Invalid)?;
        String::from_utf8(plain.to_vec()).map_err(|_| SealError::Invalid)
    }
}

/// Writes `bytes` to a new file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_summary_opens_only_unaltered_and_under_its_key() {
        let seal = CompactionSeal::from_key(&[7; KEY_LEN]);
        let sealed = seal.seal("the user wants a haiku").unwrap();
        assert!(!sealed.contains("haiku"));
        assert_eq!(seal.open(&sealed).unwrap(), "the user wants a haiku");
        assert_ne!(
            seal.seal("x").unwrap(),
            seal.seal("x").unwrap(),
            "fresh nonces"
        );
        let mut altered = sealed.clone().into_bytes();
        let last = altered.len() - 2;
        altered[last] = if altered[last] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        assert!(seal.open(&altered).is_err());
        assert!(
            CompactionSeal::from_key(&[8; KEY_LEN])
                .open(&sealed)
                .is_err()
        );
        assert!(seal.open("gAAAA-not-ours").is_err());
        assert!(seal.open("spool1.").is_err());
    }

    #[test]
    fn the_key_file_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("spool-seal-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("compaction.key");
        let _ = std::fs::remove_file(&path);
        let sealed = CompactionSeal::load_or_create(&path)
            .unwrap()
            .seal("kept")
            .unwrap();
        let again = CompactionSeal::load_or_create(&path).unwrap();
        assert_eq!(again.open(&sealed).unwrap(), "kept");
        std::fs::write(&path, b"short").unwrap();
        assert!(CompactionSeal::load_or_create(&path).is_err());
    }
}
