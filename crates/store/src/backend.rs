//! The physical storage interface: opaque bytes by string key, with optimistic concurrency.

use std::fmt;

use async_trait::async_trait;

use crate::snapshot::{LoadInput, LoadSummary, Snapshot};
use crate::{Result, StoreError};

/// Longest storage key accepted, in bytes. Keys are paths such as
/// `kms/us-east-1/000000000000/key/<id>`; the bound keeps indexes compact and rejects abuse.
pub const MAX_KEY_LEN: usize = 1024;

/// A stored value with its version.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    /// Version of this value (see [`Backend`] for the guarantees).
    pub version: u64,
    /// The stored bytes. For the sealed store these are barrier envelopes, never plaintext.
    pub value: Vec<u8>,
}

impl fmt::Debug for Entry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Entry")
            .field("version", &self.version)
            .field("value_len", &self.value.len())
            .finish()
    }
}

/// What a write expects to find, checked atomically with the write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// No expectation: last writer wins.
    Any,
    /// The key must not exist (create-only).
    Absent,
    /// The key must exist with exactly this version (compare-and-swap).
    Version(u64),
}

impl Expect {
    /// Whether the expectation holds for a key whose current version is `current`
    /// (`None` = absent).
    #[must_use]
    pub fn matches(self, current: Option<u64>) -> bool {
        match self {
            Expect::Any => true,
            Expect::Absent => current.is_none(),
            Expect::Version(v) => current == Some(v),
        }
    }
}

/// One operation of an atomic [`Backend::batch`].
#[derive(Clone)]
pub enum Op {
    /// Write `value` at `key` if `expect` holds.
    Put {
        /// Storage key.
        key: String,
        /// Value to write.
        value: Vec<u8>,
        /// Precondition.
        expect: Expect,
    },
    /// Remove `key` if `expect` holds (removing an absent key with `Any` is a no-op).
    Delete {
        /// Storage key.
        key: String,
        /// Precondition.
        expect: Expect,
    },
}

impl Op {
    /// A put operation.
    pub fn put(key: impl Into<String>, value: Vec<u8>, expect: Expect) -> Self {
        Op::Put {
            key: key.into(),
            value,
            expect,
        }
    }

    /// A delete operation.
    pub fn delete(key: impl Into<String>, expect: Expect) -> Self {
        Op::Delete {
            key: key.into(),
            expect,
        }
    }

    /// The key this operation touches.
    #[must_use]
    pub fn key(&self) -> &str {
        match self {
            Op::Put { key, .. } | Op::Delete { key, .. } => key,
        }
    }

    /// The precondition of this operation.
    #[must_use]
    pub fn expect(&self) -> Expect {
        match self {
            Op::Put { expect, .. } | Op::Delete { expect, .. } => *expect,
        }
    }
}

impl fmt::Debug for Op {
    // Values may be plaintext at the sealed-store level: show only their length.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Put { key, value, expect } => f
                .debug_struct("Put")
                .field("key", key)
                .field("value_len", &value.len())
                .field("expect", expect)
                .finish(),
            Op::Delete { key, expect } => f
                .debug_struct("Delete")
                .field("key", key)
                .field("expect", expect)
                .finish(),
        }
    }
}

/// Physical storage: opaque values under UTF-8 keys, with optimistic concurrency.
///
/// Contract every implementation must meet (checked by `testing::backend_conformance`):
///
/// * **Versions** are positive and strictly increasing across the whole backend: every
///   successful write gets a version greater than any version handed out before, so a key that
///   is deleted and re-created never reuses an old version (no ABA under compare-and-swap).
///   PostgreSQL can use a sequence; SQLite keeps a counter in its `meta` table.
/// * **Expectations** ([`Expect`]) are checked atomically with the write; a failed one is
///   [`StoreError::Conflict`] and changes nothing.
/// * **Ordering**: [`Backend::list`] returns keys in ascending byte order (UTF-8 code point
///   order; PostgreSQL must use `COLLATE "C"`), strictly after `start_after`, at most `limit`.
/// * **Atomicity**: [`Backend::batch`] applies all operations or none; operations see the
///   effects of earlier operations of the same batch.
/// * **Durability**: a write that returned `Ok` survives a crash of the process.
///
/// Implementations validate keys with [`validate_key`].
#[async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Short name for logs and status ("sqlite", "postgres").
    fn name(&self) -> &'static str;

    /// Reads one key.
    async fn get(&self, key: &str) -> Result<Option<Entry>>;

    /// Writes one key if `expect` holds; returns the new version.
    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64>;

    /// Removes one key if `expect` holds; returns whether a value was removed.
    async fn delete(&self, key: &str, expect: Expect) -> Result<bool>;

    /// Up to `limit` entries whose key starts with `prefix` and is greater than `start_after`,
    /// in ascending key order. Pass the last key of a page as `start_after` to get the next one.
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>>;

    /// Applies all operations atomically, in order, or none of them.
    async fn batch(&self, ops: Vec<Op>) -> Result<()>;

    /// A consistent point-in-time read of every entry, streamed in key order (one read
    /// transaction, so concurrent writes continue and are either entirely in it or not at all).
    /// See [`Snapshot`]. The default refuses: a wrapper must forward to the backend it wraps.
    async fn snapshot(&self) -> Result<Snapshot> {
        Err(StoreError::Backend(format!(
            "the {} backend does not support consistent snapshots",
            self.name()
        )))
    }

    /// Loads entries, with their versions, into this backend, which must hold no entry. All or
    /// nothing, in one transaction that commits only after [`crate::LoadChunk::End`]. Afterwards
    /// the version counter stands at or above every loaded version, so versions keep strictly
    /// increasing. A non-empty store is refused with [`StoreError::InvalidConfig`].
    async fn load_into_empty(&self, input: LoadInput) -> Result<LoadSummary> {
        drop(input);
        Err(StoreError::Backend(format!(
            "the {} backend does not support bulk loads",
            self.name()
        )))
    }
}

/// Checks a storage key: 1 to [`MAX_KEY_LEN`] bytes, no NUL (which SQL text types mishandle).
pub fn validate_key(key: &str) -> Result<()> {
    if key.is_empty() {
        return Err(StoreError::InvalidKey("the key is empty".into()));
    }
    if key.len() > MAX_KEY_LEN {
        return Err(StoreError::InvalidKey(format!(
            "the key is {} bytes long, the maximum is {MAX_KEY_LEN}",
            key.len()
        )));
    }
    if key.contains('\0') {
        return Err(StoreError::InvalidKey("the key contains a NUL byte".into()));
    }
    Ok(())
}

/// The smallest string greater than every string that starts with `prefix`, or `None` when no
/// such bound exists (empty prefix, or only `char::MAX`s).
///
/// Backends use it to turn a prefix scan into an index range `prefix <= key < bound`, because
/// UTF-8 byte order equals code point order: a key starting with `prefix` is below the bound, and
/// any key from `prefix` up to the bound starts with `prefix`. (A `LIKE` pattern would need
/// escaping of `%`/`_` and may not use the index.)
#[must_use]
pub fn prefix_upper_bound(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        let next = match u32::from(last) {
            // Skip the surrogate gap, which holds no chars.
            0xD7FF => Some('\u{E000}'),
            code => code.checked_add(1).and_then(char::from_u32),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
        // `last` was char::MAX: drop it and bump the previous char instead.
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expect_matches() {
        assert!(Expect::Any.matches(None));
        assert!(Expect::Any.matches(Some(3)));
        assert!(Expect::Absent.matches(None));
        assert!(!Expect::Absent.matches(Some(1)));
        assert!(Expect::Version(2).matches(Some(2)));
        assert!(!Expect::Version(2).matches(Some(3)));
        assert!(!Expect::Version(2).matches(None));
    }

    #[test]
    fn upper_bounds() {
        assert_eq!(prefix_upper_bound(""), None);
        assert_eq!(prefix_upper_bound("kms/").as_deref(), Some("kms0"));
        assert_eq!(
            prefix_upper_bound("a\u{D7FF}").as_deref(),
            Some("a\u{E000}")
        );
        assert_eq!(prefix_upper_bound("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(prefix_upper_bound("\u{10FFFF}"), None);
        assert_eq!(prefix_upper_bound("é").as_deref(), Some("ê"));
        for p in ["abc", "a/é", "x\u{FFFF}"] {
            let ub = prefix_upper_bound(p).unwrap();
            assert!(p < ub.as_str());
            assert!(format!("{p}\u{10FFFF}\u{10FFFF}").as_str() < ub.as_str());
        }
    }

    #[test]
    fn keys_are_validated() {
        assert!(validate_key("kms/x").is_ok());
        assert!(validate_key("").is_err());
        assert!(validate_key("a\0b").is_err());
        assert!(validate_key(&"a".repeat(MAX_KEY_LEN)).is_ok());
        assert!(validate_key(&"a".repeat(MAX_KEY_LEN + 1)).is_err());
    }

    #[test]
    fn op_debug_hides_values() {
        let op = Op::put("k", b"secret".to_vec(), Expect::Any);
        let s = format!("{op:?}");
        assert!(!s.contains("secret") && s.contains("value_len"));
    }
}
