//! The only door to cryptography: a small facade over aws-lc-rs.
//!
//! Every other crate of Citadel gets its primitives from here, so that there is exactly one place
//! to audit which algorithms are used, how nonces are made and how secrets are held. Nothing in
//! this crate implements a primitive: it only picks safe defaults around `aws-lc-rs`.
//!
//! Secrets handed out by this crate are in [`zeroize::Zeroizing`] containers so that they are wiped
//! when dropped; types that hold key material have a redacted `Debug`.

mod aead;
pub mod asymmetric;
mod error;
mod hash;
pub mod key_import;
pub mod mac;
mod random;
pub mod rsa_encryption;

pub use aead::{AES_256_GCM_KEY_LEN, AES_GCM_NONCE_LEN, AES_GCM_TAG_LEN, Aes256GcmKey};
pub use error::CryptoError;
pub use hash::{
    SHA256_LEN, Sha256, constant_time_eq, hkdf_sha256, hmac_sha256, hmac_sha256_verify, sha256,
};
pub use random::{fill_random, random_array, random_bytes};

/// Re-exported so callers can name the secret containers without depending on `zeroize` twice.
pub use zeroize::{Zeroize, Zeroizing};

/// Result type of this crate.
pub type Result<T, E = CryptoError> = std::result::Result<T, E>;
