//! Errors of the store.

use citadel_barrier::BarrierError;

use crate::sealed::SealType;

/// Why a store operation failed.
///
/// Messages name storage keys but never values, key material or shares. Services map
/// [`StoreError::Sealed`] to a 503 and [`StoreError::Conflict`] to a retry or a 409-style error;
/// everything else is an internal error.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store is sealed (or not yet initialized); no data operation is possible.
    #[error("the store is sealed")]
    Sealed,
    /// The store has not been initialized yet.
    #[error("the store is not initialized")]
    NotInitialized,
    /// Initialization was attempted on an initialized store.
    #[error("the store is already initialized")]
    AlreadyInitialized,
    /// The root key given to unseal does not open the stored keyring.
    #[error("invalid root key: it does not open the stored keyring")]
    InvalidRootKey,
    /// The submitted unseal shares do not reconstruct the root key. Progress has been reset.
    #[error("the unseal shares do not reconstruct the root key; unseal progress was reset")]
    InvalidUnsealKey,
    /// An unseal share is malformed or was already submitted. Progress is unchanged.
    #[error("invalid unseal share: {0}")]
    InvalidShare(String),
    /// The operation does not apply to how this store is sealed.
    #[error("this store uses the {actual} seal; the operation needs the {expected} seal")]
    WrongSealType {
        /// Seal type the operation needs.
        expected: SealType,
        /// Seal type the store was initialized with.
        actual: SealType,
    },
    /// Seal parameters were rejected (for example a Shamir threshold above the share count).
    #[error("invalid seal configuration: {0}")]
    InvalidSealConfig(String),
    /// An optimistic-concurrency expectation did not hold.
    #[error("version conflict on key {key}")]
    Conflict {
        /// The key whose expectation failed.
        key: String,
    },
    /// A storage key is empty, too long or contains a NUL byte.
    #[error("invalid storage key: {0}")]
    InvalidKey(String),
    /// A storage key under `sys/`, which is reserved for the store itself.
    #[error("storage key {0:?} is reserved for the store")]
    ReservedKey(String),
    /// Stored data is damaged: a value failed authentication (altered, or moved from another
    /// key), or the database itself is corrupt. Never comes with data.
    #[error("stored data is corrupt{}: {reason}", at_key(.key.as_deref()))]
    Corrupt {
        /// The affected key, when the damage is in one value.
        key: Option<String>,
        /// What was detected.
        reason: String,
    },
    /// A value was authentic but not in the expected shape (typed helpers).
    #[error("cannot decode the value at {key}: {reason}")]
    Decode {
        /// The key that was read.
        key: String,
        /// Why decoding failed (never contains the value).
        reason: String,
    },
    /// A value could not be serialized (typed helpers). Never contains the value.
    #[error("encoding error: {0}")]
    Encoding(String),
    /// The storage backend failed (I/O, connection, lock timeout).
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The barrier failed for a reason other than bad data (for example the random generator).
    #[error(transparent)]
    Barrier(#[from] BarrierError),
}

fn at_key(key: Option<&str>) -> String {
    key.map(|k| format!(" at key {k}")).unwrap_or_default()
}

/// Result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
