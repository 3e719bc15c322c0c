//! Storage: the backend trait, the embedded SQLite backend, and the sealed store that passes
//! every value through the barrier.
//!
//! Services use only [`SealedStore`]. It wraps a [`Backend`] (opaque bytes with optimistic
//! concurrency: SQLite embedded, PostgreSQL for several nodes) and the barrier from `citadel-barrier`: every
//! value is AES-256-GCM encrypted under the active keyring term with its storage key as AAD, so
//! an altered value, or one moved to another key, reads as [`StoreError::Corrupt`] and never as
//! data.

mod backend;
mod backup_file;
mod changes;
mod error;
mod pg_cluster;
mod postgres;
mod sealed;
mod snapshot;
mod sqlite;

#[cfg(feature = "pg-harness")]
pub mod pg_harness;

#[cfg(any(test, feature = "conformance"))]
pub mod testing;

pub use backend::{Backend, Entry, Expect, MAX_KEY_LEN, Op, prefix_upper_bound, validate_key};
pub use backup_file::{
    BACKUP_FORMAT_VERSION, BACKUP_MAGIC, BackupEncoder, BackupHeader, RestoreReport,
    backup_to_file, restore_file, stream_backup, verify_file,
};
pub use changes::{ChangeFeed, Changed, Leadership};
pub use error::{Result, StoreError};
pub use pg_cluster::LEADER_LOCK;
pub use postgres::{PostgresBackend, PostgresOptions, PostgresUrl, TlsMode as PostgresTlsMode};
pub use sealed::{
    KEYRING_KEY, RESERVED_PREFIX, Record, SEAL_CONFIG_KEY, SealConfig, SealStatus, SealType,
    SealedStore, UnsealProgress, Versioned, put_json_op,
};
pub use snapshot::{
    LoadCheck, LoadChunk, LoadInput, LoadSummary, PAGE_SIZE, Page, Snapshot, load_channel,
};
pub use sqlite::{DB_FILE_NAME, SqliteBackend};

/// Re-exported so callers can name what the store hands out without their own imports.
pub use citadel_barrier::{RootKey, Zeroizing};
