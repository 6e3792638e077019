//! Host cryptography (the WIT interface `crypto`): digests, HMAC, constant-time comparison,
//! base64url and JWS signature verification against a JWK, done by the host's OpenSSL, and
//! password hashes (`password_verify`: bcrypt, SHA-crypt), so a plugin carries no
//! hand-written crypto.
//!
//! ```ignore
//! use weir_plugin::crypto;
//! let mac = crypto::hmac_sha256(key, signing_input.as_bytes());
//! let ok = crypto::constant_time_equal(&mac, &signature);
//! ```

pub use crate::abi::crypto::{base64url_decode, base64url_encode, constant_time_equal, digest, hmac, password_verify, verify_signature};
pub use crate::abi::types::{HashAlgorithm, SignatureAlgorithm};

/// SHA-256 of `data` (32 bytes).
pub fn sha256(data: &[u8]) -> Vec<u8> {
    digest(HashAlgorithm::Sha256, data)
}

/// HMAC-SHA-256 of `data` under `key` (32 bytes; JWS HS256).
pub fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac(HashAlgorithm::Sha256, key, data)
}
