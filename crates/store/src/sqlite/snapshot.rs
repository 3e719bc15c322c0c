//! Snapshot reads and bulk loads for SQLite (see `crate::snapshot`).
//!
//! * The snapshot runs on its own read-only connection (not a pooled one: it holds a read
//!   transaction for as long as the copy takes). In WAL mode a deferred read transaction sees the
//!   database as of its first read, whatever the writer commits meanwhile, and never blocks the
//!   writer; the WAL only cannot be checkpointed past that point until the copy ends, so it grows
//!   by the writes made during the copy.
//! * The load is one write of the writer thread (see `super`), so it runs inside a write
//!   transaction: emptiness is checked under the write lock, and the entries and the raised
//!   version counter commit together or not at all (a failed load rolls back its savepoint).

use std::sync::Arc;

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use tokio::sync::oneshot;

use super::{SqliteBackend, map_err, to_i64, to_u64};
use crate::backend::Entry;
use crate::snapshot::{
    LoadCheck, LoadChunk, LoadInput, LoadSummary, PAGE_SIZE, Page, Snapshot, ended_early, not_empty,
};
use crate::{Result, StoreError};

impl SqliteBackend {
    pub(super) async fn snapshot_now(&self) -> Result<Snapshot> {
        let inner = Arc::clone(&self.inner);
        let (ready_tx, ready_rx) = oneshot::channel::<Result<Snapshot>>();
        tokio::task::spawn_blocking(move || {
            let mut conn = match inner.open_reader() {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let tx = match conn.transaction_with_behavior(TransactionBehavior::Deferred) {
                Ok(tx) => tx,
                Err(e) => {
                    let _ = ready_tx.send(Err(map_err("begin snapshot", e)));
                    return;
                }
            };
            // The first read fixes the snapshot; the count and every page come from it.
            let count = tx
                .query_row("SELECT count(*) FROM entries", [], |r| r.get::<_, i64>(0))
                .map_err(|e| map_err("count entries", e))
                .and_then(|n| to_u64(n, "entry count"));
            let count = match count {
                Ok(n) => n,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            let (pages, snapshot) = Snapshot::channel(count);
            if ready_tx.send(Ok(snapshot)).is_err() {
                return;
            }
            let mut after = String::new(); // every key is non-empty, so "" is below all
            loop {
                let page = read_page(&tx, &after);
                let done = match &page {
                    Ok(p) => p.len() < PAGE_SIZE,
                    Err(_) => true,
                };
                if let Ok(p) = &page
                    && let Some((last, _)) = p.last()
                {
                    after.clone_from(last);
                }
                let empty = matches!(&page, Ok(p) if p.is_empty());
                if !empty && pages.blocking_send(page).is_err() {
                    return; // the reader went away: end the read transaction
                }
                if done {
                    return;
                }
            }
        });
        ready_rx
            .await
            .map_err(|_| StoreError::Backend("the SQLite snapshot task ended early".into()))?
    }

    pub(super) async fn load_now(&self, mut input: LoadInput) -> Result<LoadSummary> {
        let path = self.inner.path.display().to_string();
        // Blocks the writer thread while the entries stream in: a restore is offline.
        self.write(move |tx| {
            let any: Option<i64> = tx
                .query_row("SELECT 1 FROM entries LIMIT 1", [], |r| r.get(0))
                .optional()
                .map_err(|e| map_err("check that the store is empty", e))?;
            if any.is_some() {
                return Err(not_empty(&path));
            }
            let mut check = LoadCheck::default();
            {
                let mut insert = tx
                    .prepare("INSERT INTO entries (key, version, value) VALUES (?1, ?2, ?3)")
                    .map_err(|e| map_err("prepare load", e))?;
                loop {
                    // An error or a missing end marker returns early: the write rolls back.
                    match input.blocking_recv() {
                        None => return Err(ended_early()),
                        Some(Err(e)) => return Err(e),
                        Some(Ok(LoadChunk::End)) => break,
                        Some(Ok(LoadChunk::Entries(page))) => {
                            for (key, entry) in &page {
                                check.check(key, entry)?;
                                let version = to_i64(entry.version, "version")?;
                                insert
                                    .execute(params![key, version, entry.value])
                                    .map_err(|e| map_err("load entry", e))?;
                            }
                        }
                    }
                }
            }
            let summary = check.summary();
            let max = to_i64(summary.max_version, "version")?;
            tx.execute(
                "UPDATE meta SET value = max(value, ?1) WHERE key = 'revision'",
                params![max],
            )
            .map_err(|e| map_err("raise the version counter", e))?;
            Ok(summary)
        })
        .await
    }
}

fn read_page(tx: &rusqlite::Transaction<'_>, after: &str) -> Result<Page> {
    let limit = i64::try_from(PAGE_SIZE).unwrap_or(i64::MAX);
    let mut stmt = tx
        .prepare_cached(
            "SELECT key, version, value FROM entries WHERE key > ?1 ORDER BY key LIMIT ?2",
        )
        .map_err(|e| map_err("prepare snapshot page", e))?;
    let rows = stmt
        .query_map(params![after, limit], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, i64>(1)?,
                r.get::<_, Vec<u8>>(2)?,
            ))
        })
        .map_err(|e| map_err("read snapshot page", e))?;
    let mut page = Vec::with_capacity(PAGE_SIZE);
    for row in rows {
        let (key, version, value) = row.map_err(|e| map_err("read snapshot page", e))?;
        page.push((
            key,
            Entry {
                version: to_u64(version, "version")?,
                value,
            },
        ));
    }
    Ok(page)
}
