//! Errors of the barrier.

use std::path::PathBuf;

use citadel_crypto::CryptoError;

/// Why a barrier operation failed. Messages never contain key material or share contents.
#[derive(Debug, thiserror::Error)]
pub enum BarrierError {
    /// The sealed keyring did not authenticate under the supplied root key: the key is wrong, or
    /// the stored keyring was altered. The two are indistinguishable by design.
    #[error("invalid root key: the sealed keyring does not authenticate under it")]
    InvalidRootKey,
    /// A value was sealed under a keyring term this keyring does not have.
    #[error("no data key for keyring term {0}")]
    UnknownTerm(u32),
    /// A sealed value is malformed or failed authentication (altered bytes, or a value that was
    /// written for another storage key).
    #[error("sealed value is corrupt or does not belong to this context")]
    Corrupt,
    /// The keyring authenticated but its contents are not a keyring this version understands.
    #[error("sealed keyring is malformed: {0}")]
    MalformedKeyring(&'static str),
    /// All `u32` terms are used up; practically unreachable, but refused rather than wrapped.
    #[error("keyring term space is exhausted")]
    TermsExhausted,
    /// Shamir parameters outside the supported range.
    #[error("invalid Shamir parameters: {0}")]
    InvalidShamirParams(String),
    /// An unseal share string is malformed, or a set of shares is inconsistent.
    #[error("invalid unseal share: {0}")]
    InvalidShare(String),
    /// The root key file exists but may not be used (permissions, length, type).
    #[error("root key file {path}: {reason}")]
    KeyFile {
        /// The file in question.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Reading or writing the root key file failed.
    #[error("root key file {path}: {source}")]
    Io {
        /// The file in question.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The cryptographic layer failed (for example the random generator).
    #[error(transparent)]
    Crypto(#[from] CryptoError),
}
