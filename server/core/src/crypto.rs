//! Secrets at rest (provider keys, idempotent answers, later channel secrets): sealed with
//! ChaCha20-Poly1305 under a key derived from the operator's master key.
//!
//! A sealed value is `v2:` + base64(nonce ‖ ciphertext). Its key comes from the master key by
//! Argon2id, and every value is bound to what it belongs to by associated data (a provider
//! key to its project and provider, an idempotent answer to its token and key), so a
//! ciphertext copied to another row does not open. Values sealed before versioning (base64
//! without a prefix, key = SHA-256 of the master key, no associated data) still open.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use sha2::{Digest, Sha256};

const NONCE_LEN: usize = 12;
const CURRENT: &str = "v2:";
pub const KEY_FILE: &str = "ingram-master.key";
/// A generated key file holds 44 characters (base64 of 32 bytes); anything much shorter is
/// a damaged file, never a key to derive from.
const MIN_KEY_FILE_LEN: usize = 16;
/// The master key must derive to the same cipher key on every replica with no shared state,
/// so the salt is fixed; it separates this use from any other use of the same secret.
const KDF_SALT: &[u8] = b"ingram.master-key.v2";

/// What a sealed value belongs to; opening it under another context fails.
#[derive(Debug, Clone, Copy)]
pub enum SealContext<'a> {
    ModelKey { project_id: &'a str, provider: &'a str },
    EmbeddingKey { project_id: &'a str },
    McpHeaders { project_id: &'a str, server: &'a str },
    IdempotentAnswer { scope: &'a str, key: &'a str },
}

impl SealContext<'_> {
    fn associated_data(self) -> Vec<u8> {
        let parts: [&str; 3] = match self {
            Self::ModelKey { project_id, provider } => ["model_key", project_id, provider],
            Self::EmbeddingKey { project_id } => ["embedding_key", project_id, ""],
            Self::McpHeaders { project_id, server } => ["mcp_headers", project_id, server],
            Self::IdempotentAnswer { scope, key } => ["idempotent_answer", scope, key],
        };
        // Length-prefixed, so no two contexts share bytes.
        parts.iter().flat_map(|part| (part.len() as u32).to_be_bytes().into_iter().chain(part.bytes())).collect()
    }
}

#[derive(Clone)]
pub struct MasterKey {
    current: ChaCha20Poly1305,
    /// Opens values sealed before versioning; never seals.
    legacy: ChaCha20Poly1305,
}

impl std::fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MasterKey(…)")
    }
}

impl MasterKey {
    /// Any operator-chosen string works: it is stretched to 256 bits with Argon2id
    /// (19 MiB, 2 passes), so even a passphrase costs an attacker real work per guess.
    pub fn from_secret(secret: &str) -> Self {
        let mut key = Key::default();
        let params = argon2::Params::new(19 * 1024, 2, 1, Some(key.len())).expect("valid Argon2 parameters");
        argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
            .hash_password_into(secret.as_bytes(), KDF_SALT, &mut key)
            .expect("Argon2 accepts any secret with this salt");
        Self { current: ChaCha20Poly1305::new(&key), legacy: ChaCha20Poly1305::new(&Sha256::digest(secret.as_bytes())) }
    }

    pub fn random() -> Self {
        let key = ChaCha20Poly1305::generate_key(&mut OsRng);
        Self { current: ChaCha20Poly1305::new(&key), legacy: ChaCha20Poly1305::new(&key) }
    }

    /// INGRAM_MASTER_KEY when set; otherwise the key file in `data_dir`, created on first
    /// boot (the caller warns: losing that file loses every stored provider key).
    pub fn load_or_create(configured: Option<&str>, data_dir: &Path) -> std::io::Result<(Self, bool)> {
        if let Some(secret) = configured.filter(|secret| !secret.is_empty()) {
            return Ok((Self::from_secret(secret), false));
        }
        let path = data_dir.join(KEY_FILE);
        match std::fs::read_to_string(&path) {
            Ok(secret) if secret.trim().len() < MIN_KEY_FILE_LEN => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{} holds no usable key (empty or truncated); restore it from a backup", path.display()),
            )),
            Ok(secret) => Ok((Self::from_secret(secret.trim()), false)),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                let secret = STANDARD.encode(ChaCha20Poly1305::generate_key(&mut OsRng));
                // Written whole under another name, then moved into place: a crash or a
                // second replica never sees a half-written key.
                let partial = data_dir.join(format!(".{KEY_FILE}.{}", ulid::Ulid::new()));
                write_private(&partial, &secret)?;
                match std::fs::hard_link(&partial, &path) {
                    Ok(()) => {
                        std::fs::remove_file(&partial)?;
                        Ok((Self::from_secret(&secret), true))
                    }
                    // Another replica created it first: use theirs.
                    Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::remove_file(&partial)?;
                        Self::load_or_create(None, data_dir)
                    }
                    Err(err) => {
                        let _ = std::fs::remove_file(&partial);
                        Err(err)
                    }
                }
            }
            Err(err) => Err(err),
        }
    }

    pub fn seal(&self, plaintext: &str, context: SealContext<'_>) -> String {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let aad = context.associated_data();
        let ciphertext = self
            .current
            .encrypt(&nonce, Payload { msg: plaintext.as_bytes(), aad: &aad })
            .expect("ChaCha20-Poly1305 encrypts any message that fits in memory");
        let mut sealed = nonce.to_vec();
        sealed.extend(ciphertext);
        format!("{CURRENT}{}", STANDARD.encode(sealed))
    }

    /// None when the value was sealed under another key or context, or is corrupt.
    pub fn open(&self, sealed: &str, context: SealContext<'_>) -> Option<String> {
        let (cipher, encoded, aad) = match sealed.strip_prefix(CURRENT) {
            Some(encoded) => (&self.current, encoded, context.associated_data()),
            None => (&self.legacy, sealed, Vec::new()),
        };
        let bytes = STANDARD.decode(encoded).ok()?;
        if bytes.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::from(<[u8; NONCE_LEN]>::try_from(nonce).ok()?);
        let plaintext = cipher.decrypt(&nonce, Payload { msg: ciphertext, aad: &aad }).ok()?;
        String::from_utf8(plaintext).ok()
    }
}

/// Creates `path` readable and writable by its owner only; fails if it exists.
/// How a stored secret is shown again: `…` and its last four characters.
pub fn preview(secret: &str) -> String {
    let last: Vec<char> = secret.chars().rev().take(4).collect();
    format!("…{}", last.into_iter().rev().collect::<String>())
}

pub fn write_private(path: &Path, content: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(content.as_bytes())?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: SealContext<'static> = SealContext::ModelKey { project_id: "prj_1", provider: "openai" };

    #[test]
    fn seals_and_opens_and_refuses_other_keys_and_contexts() {
        let key = MasterKey::from_secret("operator secret");
        let sealed = key.seal("sk-live-123", KEY);
        assert!(sealed.starts_with("v2:") && !sealed.contains("sk-live"));
        assert_ne!(sealed, key.seal("sk-live-123", KEY), "a fresh nonce every time");
        assert_eq!(key.open(&sealed, KEY).as_deref(), Some("sk-live-123"));
        assert_eq!(MasterKey::from_secret("another").open(&sealed, KEY), None);
        let other_project = SealContext::ModelKey { project_id: "prj_2", provider: "openai" };
        assert_eq!(key.open(&sealed, other_project), None, "bound to its project");
        let other_provider = SealContext::ModelKey { project_id: "prj_1", provider: "gemini" };
        assert_eq!(key.open(&sealed, other_provider), None, "bound to its provider");
        assert_eq!(key.open("not base64!", KEY), None);
        assert_eq!(key.open("v2:AAAA", KEY), None);
    }

    #[test]
    fn values_sealed_before_versioning_still_open() {
        // Sealed the old way: key = SHA-256(secret), no associated data, no prefix.
        let old = ChaCha20Poly1305::new(&Sha256::digest(b"operator secret"));
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        let mut sealed = nonce.to_vec();
        sealed.extend(old.encrypt(&nonce, b"sk-old".as_slice()).unwrap());
        let sealed = STANDARD.encode(sealed);
        assert_eq!(MasterKey::from_secret("operator secret").open(&sealed, KEY).as_deref(), Some("sk-old"));
    }

    #[test]
    fn the_key_file_is_created_once_private_and_reused() {
        let dir = std::env::temp_dir().join(format!("ingram-key-{}", ulid::Ulid::new()));
        std::fs::create_dir_all(&dir).unwrap();
        let (first, created) = MasterKey::load_or_create(None, &dir).unwrap();
        assert!(created);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(KEY_FILE)).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (second, created) = MasterKey::load_or_create(None, &dir).unwrap();
        assert!(!created);
        assert_eq!(second.open(&first.seal("x", KEY), KEY).as_deref(), Some("x"));
        // A damaged key file stops the start instead of becoming a guessable key.
        std::fs::write(dir.join(KEY_FILE), "").unwrap();
        assert!(MasterKey::load_or_create(None, &dir).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
