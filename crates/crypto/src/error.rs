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
    /// A private key does not parse, or is not of the kind it was said to be.
    #[error("the private key is malformed or of another kind")]
    InvalidKey,
    /// A public key (a peer's, or one given for verification) does not parse, is not an X.509
    /// SubjectPublicKeyInfo, or is of another kind or curve.
    #[error("the public key is malformed or of another kind")]
    InvalidPublicKey,
    /// The key kind cannot do what was asked (for example sign a digest with Ed25519).
    #[error("unsupported: {0}")]
    Unsupported(&'static str),
    /// Signing or key agreement failed inside aws-lc-rs.
    #[error("the asymmetric operation failed")]
    Asymmetric,
}
