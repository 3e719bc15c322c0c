//! Errors of the crypto facade.
//!
//! aws-lc-rs deliberately reports most failures as the opaque `Unspecified`; we keep that
//! opacity (an authentication failure must not say *why* it failed) but name the operation, so
//! callers can map "tag did not verify" differently from "the RNG failed".

/// Why a cryptographic operation failed.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum CryptoError {
    /// The system random number generator failed. This is an environment problem, never an
    /// input problem, and must not be retried with weaker randomness.
    #[error("the system random number generator failed")]
    Random,
    /// A key of the wrong length was supplied.
    #[error("invalid key length: expected {expected} bytes, got {actual}")]
    InvalidKeyLength {
        /// Required length in bytes.
        expected: usize,
        /// Length that was supplied.
        actual: usize,
    },
    /// Encryption failed (for example the plaintext is larger than the algorithm allows).
    #[error("encryption failed")]
    Seal,
    /// Decryption failed: the data is too short, was altered, the AAD differs or the key is
    /// wrong. Deliberately indistinguishable.
    #[error("decryption failed: the data is corrupt, the context differs or the key is wrong")]
    Open,
    /// A key derivation was asked for an output length the algorithm cannot produce.
    #[error("invalid key derivation output length {0}")]
    InvalidOutputLength(usize),
}
