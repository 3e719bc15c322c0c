//! Errors of the store.

use citadel_barrier::BarrierError;

use crate::sealed::SealType;

/// Why a store operation failed.
///
/// Messages name storage keys but never values, key material or shares. Services map
/// [`StoreError::Sealed`] and [`StoreError::Unavailable`] to a 503 and [`StoreError::Conflict`]
/// to a retry or a 409-style error; everything else is an internal error.
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
    /// The storage backend failed (I/O, lock timeout, an unexpected database error).
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The storage backend cannot be reached right now (database server down, connection lost
    /// or refused, no pooled connection in time). Transient: the same call may succeed once the
    /// database is back, without a restart. Nothing was written (or, for a connection lost
    /// during commit, nothing was acknowledged).
    #[error("storage backend unavailable: {0}")]
    Unavailable(String),
    /// The backend's configuration is unusable (bad database URL, TLS settings, encoding).
    /// Never contains a password.
    #[error("invalid storage configuration: {0}")]
    InvalidConfig(String),
    /// A backup file is damaged, truncated, of an unknown format, or cannot be read. Nothing was
    /// restored from it.
    #[error("invalid backup file: {0}")]
    InvalidBackup(String),
    /// The barrier failed for a reason other than bad data (for example the random generator).
    #[error(transparent)]
    Barrier(#[from] BarrierError),
}

impl StoreError {
    /// Whether the caller should answer "service unavailable, retry later" (503): the store is
    /// sealed or not initialized, or the backend is unreachable.
    #[must_use]
    pub fn is_unavailable(&self) -> bool {
        matches!(
            self,
            StoreError::Sealed | StoreError::NotInitialized | StoreError::Unavailable(_)
        )
    }
}

fn at_key(key: Option<&str>) -> String {
    key.map(|k| format!(" at key {k}")).unwrap_or_default()
}

/// Result type of this crate.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;
