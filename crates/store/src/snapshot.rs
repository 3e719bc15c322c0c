//! Whole-store copies at the backend level: a consistent, streamed snapshot read and a bulk load
//! into an empty store. Backups and the SQLite → PostgreSQL move are built on these two.
//!
//! Both work on raw backend entries — barrier envelopes, never plaintext — so neither needs the
//! store to be unsealed, and a copy made from one backend loads into the other: the keyring
//! travels with the data (itself sealed by the root key), and every value stays bound to its
//! storage key by the barrier's AAD.
//!
//! Both are streamed through bounded channels, so a store of any size is copied with a few
//! pages in memory: the producer waits while the consumer (a file, an HTTP response, a database
//! transaction) is slower.

use tokio::sync::mpsc;

use crate::backend::{Entry, validate_key};
use crate::{Result, StoreError};

/// Entries per page of a snapshot or a load. Values are at most a few hundred KiB in practice,
/// so a page is a few MiB at worst, and two pages in flight bound the memory.
pub const PAGE_SIZE: usize = 256;

/// Pages a producer may run ahead of its consumer.
const PAGES_IN_FLIGHT: usize = 2;

/// A page of entries in ascending key order.
pub type Page = Vec<(String, Entry)>;

/// A consistent point-in-time view of every entry of a backend, read page by page in ascending
/// key order. Writes committed after the snapshot began are not in it; writes committed before
/// are, entirely (a batch is in or out as a whole).
///
/// The backend keeps its read transaction open until every page was taken or the snapshot is
/// dropped (dropping it early ends the read; nothing is left behind).
#[derive(Debug)]
pub struct Snapshot {
    entries: u64,
    received: u64,
    pages: mpsc::Receiver<Result<Page>>,
}

impl Snapshot {
    /// A snapshot of `entries` entries whose pages a backend task sends; the sender side is for
    /// backend implementations.
    #[must_use]
    pub fn channel(entries: u64) -> (mpsc::Sender<Result<Page>>, Self) {
        let (tx, rx) = mpsc::channel(PAGES_IN_FLIGHT);
        (
            tx,
            Self {
                entries,
                received: 0,
                pages: rx,
            },
        )
    }

    /// Number of entries in the snapshot (counted inside the same read transaction).
    #[must_use]
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// The next page, or `None` once every entry was delivered. A snapshot that ends before
    /// delivering the announced number of entries (the backend task failed) is an error, so a
    /// truncated copy is never taken for a complete one.
    pub async fn next_page(&mut self) -> Result<Option<Page>> {
        match self.pages.recv().await {
            Some(Ok(page)) => {
                self.received += page.len() as u64;
                if self.received > self.entries {
                    return Err(StoreError::Backend(format!(
                        "the snapshot delivered more than the {} entries it counted",
                        self.entries
                    )));
                }
                Ok(Some(page))
            }
            Some(Err(e)) => Err(e),
            None if self.received == self.entries => Ok(None),
            None => Err(StoreError::Backend(format!(
                "the snapshot ended after {} of {} entries",
                self.received, self.entries
            ))),
        }
    }
}

/// What a bulk load is fed: pages of entries, then an explicit end. A load commits only after
/// [`LoadChunk::End`]; input that stops without it (the producer failed or was dropped) rolls
/// everything back, so a half-read backup never becomes a half-restored store.
#[derive(Debug)]
pub enum LoadChunk {
    /// Entries in ascending key order, continuing the previous page.
    Entries(Page),
    /// All entries were sent and verified by the producer: commit.
    End,
}

/// The receiving side of a load, handed to [`crate::Backend::load_into_empty`].
pub type LoadInput = mpsc::Receiver<Result<LoadChunk>>;

/// A channel to feed [`crate::Backend::load_into_empty`]; the producer sends `Err` to abort.
#[must_use]
pub fn load_channel() -> (mpsc::Sender<Result<LoadChunk>>, LoadInput) {
    mpsc::channel(PAGES_IN_FLIGHT)
}

/// What a completed load wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LoadSummary {
    /// Entries written.
    pub entries: u64,
    /// The largest version among them; the backend's version counter now stands at or above it.
    pub max_version: u64,
}

/// The checks every backend applies to loaded entries, so a damaged input is refused the same
/// way by both: valid keys, in strictly ascending order (which also rules out duplicates), and
/// positive versions.
#[derive(Debug, Default)]
pub struct LoadCheck {
    last_key: Option<String>,
    summary: Option<LoadSummary>,
}

impl LoadCheck {
    /// Checks the next entry in input order.
    pub fn check(&mut self, key: &str, entry: &Entry) -> Result<()> {
        validate_key(key)?;
        if entry.version == 0 {
            return Err(StoreError::Corrupt {
                key: Some(key.to_owned()),
                reason: "the entry to load has version 0; versions start at 1".into(),
            });
        }
        if self.last_key.as_deref().is_some_and(|last| key <= last) {
            return Err(StoreError::Corrupt {
                key: Some(key.to_owned()),
                reason: "entries to load are not in strictly ascending key order".into(),
            });
        }
        self.last_key = Some(key.to_owned());
        let s = self.summary.get_or_insert(LoadSummary {
            entries: 0,
            max_version: 0,
        });
        s.entries += 1;
        s.max_version = s.max_version.max(entry.version);
        Ok(())
    }

    /// What was checked so far.
    #[must_use]
    pub fn summary(&self) -> LoadSummary {
        self.summary.unwrap_or(LoadSummary {
            entries: 0,
            max_version: 0,
        })
    }
}

/// The error for a target that already holds data: a restore never merges.
pub(crate) fn not_empty(target: &str) -> StoreError {
    StoreError::InvalidConfig(format!(
        "the target store {target} is not empty; a restore only loads into an empty store \
         (a new data directory, or a new PostgreSQL database)"
    ))
}

/// The error for input that ended without [`LoadChunk::End`].
pub(crate) fn ended_early() -> StoreError {
    StoreError::Backend("the input to load ended before its end marker; nothing was loaded".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(version: u64) -> Entry {
        Entry {
            version,
            value: Vec::new(),
        }
    }

    #[test]
    fn load_check_refuses_disorder_duplicates_and_version_zero() {
        let mut c = LoadCheck::default();
        c.check("a", &entry(5)).unwrap();
        c.check("b", &entry(2)).unwrap();
        assert!(c.check("b", &entry(7)).is_err());
        assert!(c.check("a0", &entry(7)).is_err());
        assert!(c.check("c", &entry(0)).is_err());
        assert!(c.check("", &entry(1)).is_err());
        assert_eq!(
            c.summary(),
            LoadSummary {
                entries: 2,
                max_version: 5
            }
        );
    }

    #[tokio::test]
    async fn a_snapshot_that_stops_short_is_an_error() {
        let (tx, mut snap) = Snapshot::channel(3);
        tx.send(Ok(vec![("a".into(), entry(1))])).await.unwrap();
        drop(tx);
        assert_eq!(snap.next_page().await.unwrap().unwrap().len(), 1);
        let err = snap.next_page().await.unwrap_err();
        assert!(err.to_string().contains("1 of 3"), "{err}");

        let (tx, mut snap) = Snapshot::channel(1);
        tx.send(Ok(vec![("a".into(), entry(1))])).await.unwrap();
        drop(tx);
        assert!(snap.next_page().await.unwrap().is_some());
        assert!(snap.next_page().await.unwrap().is_none());
    }
}
