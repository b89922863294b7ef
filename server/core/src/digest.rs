use sha2::{Digest, Sha256};

/// Hex SHA-256 over the given parts, each followed by a NUL so that boundaries count.
pub fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
        hasher.update([0]);
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}
