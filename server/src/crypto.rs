//! Secrets at rest (provider keys, later channel secrets): sealed with ChaCha20-Poly1305
//! under the server's master key, stored as base64 of nonce ‖ ciphertext.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{ChaCha20Poly1305, Nonce};
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;
pub const KEY_FILE: &str = "ingram-master.key";

#[derive(Clone)]
pub struct MasterKey {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// Any operator-chosen string works: it is stretched to 256 bits with SHA-256.
    pub fn from_secret(secret: &str) -> Self {
        let key = Sha256::digest(secret.as_bytes());
        Self { cipher: ChaCha20Poly1305::new(&key) }
    }

    pub fn random() -> Self {
        Self { cipher: ChaCha20Poly1305::new(&ChaCha20Poly1305::generate_key(&mut OsRng)) }
    }

    /// INGRAM_MASTER_KEY when set; otherwise the key file in `data_dir`, created on first
    /// boot (the caller warns: losing that file loses every stored provider key).
    pub fn load_or_create(configured: Option<&str>, data_dir: &Path) -> std::io::Result<(Self, bool)> {
        if let Some(secret) = configured.filter(|secret| !secret.is_empty()) {
            return Ok((Self::from_secret(secret), false));
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(secret) => Ok((Self::from_secret(secret.trim()), false)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let secret = STANDARD.encode(ChaCha20Poly1305::generate_key(&mut OsRng));
                write_private(&path, &secret)?;
                Ok((Self::from_secret(&secret), true))
            }
            Err(err) => Err(err),
        }
    }

    pub fn seal(&self, plaintext: &str) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let ciphertext =
            self.cipher.encrypt(&nonce, plaintext.as_bytes()).expect("encryption of a short secret cannot fail");
        let mut sealed = nonce.to_vec();
        sealed.extend(ciphertext);
        STANDARD.encode(sealed)
    }

    /// None when the value was sealed under another key or is corrupt.
    pub fn open(&self, sealed: &str) -> Option<String> {
        let bytes = STANDARD.decode(sealed).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::from(<[u8; NONCE_LEN]>::try_from(nonce).ok()?);
        let plaintext = self.cipher.decrypt(&nonce, ciphertext).ok()?;
        String::from_utf8(plaintext).ok()
    }
}

fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(content.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seals_and_opens_and_refuses_other_keys() {
        let key = MasterKey::from_secret("operator secret");
        let sealed = key.seal("sk-live-123");
        assert!(!sealed.contains("sk-live"));
        assert_ne!(sealed, key.seal("sk-live-123"), "a fresh nonce every time");
        assert_eq!(key.open(&sealed).as_deref(), Some("sk-live-123"));
        assert_eq!(MasterKey::from_secret("another").open(&sealed), None);
        assert_eq!(key.open("not base64!"), None);
    }

    #[test]
    fn the_key_file_is_created_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("ingram-key-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let (first, created) = MasterKey::load_or_create(None, &dir).unwrap();
        assert!(created);
        let (second, created) = MasterKey::load_or_create(None, &dir).unwrap();
        assert!(!created);
        assert_eq!(second.open(&first.seal("x")).as_deref(), Some("x"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
