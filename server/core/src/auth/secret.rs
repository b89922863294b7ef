//! Token secrets: random, shown once, stored only as a SHA-256 hash.
//!
//! A fast hash is enough here: the secrets carry 190 bits of randomness, so there is nothing
//! for a slow password hash to protect against, and lookups stay one indexed query.

use rand::Rng;
use rand::distr::Alphanumeric;

use super::TokenKind;

const SECRET_LEN: usize = 32;
const PREVIEW_LEN: usize = 12;

pub struct NewSecret {
    pub secret: String,
    pub hash: String,
    pub preview: String,
}

/// The secret's prefix says what kind of token it is, to a person and to secret scanners.
pub const fn prefix(kind: TokenKind) -> &'static str {
    match kind {
        TokenKind::Org => "ik_org_",
        TokenKind::TenantAdmin => "tha_live_",
        TokenKind::Smith => "ths_live_",
    }
}

pub fn generate(kind: TokenKind) -> NewSecret {
    let random: String = rand::rng().sample_iter(&Alphanumeric).take(SECRET_LEN).map(char::from).collect();
    from_secret(format!("{}{random}", prefix(kind)))
}

/// Wraps a secret chosen by the operator (INGRAM_ORG_KEY, INGRAM_ADMIN_TOKEN).
pub fn from_secret(secret: String) -> NewSecret {
    let preview = format!("{}…", secret.chars().take(PREVIEW_LEN).collect::<String>());
    NewSecret { hash: hash(&secret), preview, secret }
}

pub fn hash(secret: &str) -> String {
    crate::digest::sha256_hex(&[secret.as_bytes()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_unique_prefixed_and_hashed() {
        let a = generate(TokenKind::TenantAdmin);
        let b = generate(TokenKind::TenantAdmin);
        assert_ne!(a.secret, b.secret);
        assert!(a.secret.starts_with("tha_live_"));
        assert_eq!(a.hash, hash(&a.secret));
        assert!(!a.hash.contains(&a.secret) && a.hash.len() == 64);
        assert!(generate(TokenKind::Smith).secret.starts_with("ths_live_"));
    }
}
