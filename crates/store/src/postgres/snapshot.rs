//! Snapshot reads and bulk loads for PostgreSQL (see `crate::snapshot`).
//!
//! * The snapshot is one `REPEATABLE READ READ ONLY` transaction: its first statement fixes the
//!   snapshot, so the count and every page agree, and writers are never blocked (MVCC). Pages
//!   come from one portal (a server-side cursor) over `ORDER BY key`, fetched `PAGE_SIZE` rows
//!   at a time, so the result set never sits in memory on either side.
//! * The load is one transaction that first takes `EXCLUSIVE` on the table (a node that
//!   wrongly runs against the target cannot slip a write in between the emptiness check and the
//!   commit; plain reads still work), inserts page by page through `unnest` (one round trip per
//!   page), and raises the version sequence above the largest loaded version before committing.
//!   `setval` is not transactional: a load rolled back afterwards leaves the sequence higher,
//!   which only skips versions (allowed by the contract), never reuses one.

use tokio::sync::oneshot;
use tokio_postgres::IsolationLevel;

use super::{PostgresBackend, map_err, to_i64, to_u64};
use crate::backend::Entry;
use crate::snapshot::{
    LoadCheck, LoadChunk, LoadInput, LoadSummary, PAGE_SIZE, Page, Snapshot, ended_early, not_empty,
};
use crate::{Result, StoreError};

impl PostgresBackend {
    pub(super) async fn snapshot_now(&self) -> Result<Snapshot> {
        let mut client = self.client().await?;
        let (ready_tx, ready_rx) = oneshot::channel::<Result<Snapshot>>();
        tokio::spawn(async move {
            let tx = match client
                .build_transaction()
                .isolation_level(IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
            {
                Ok(tx) => tx,
                Err(e) => {
                    let _ = ready_tx.send(Err(map_err("begin snapshot", &e)));
                    return;
                }
            };
            let count = tx
                .query_one("SELECT count(*) FROM citadel_entries", &[])
                .await
                .and_then(|r| r.try_get::<_, i64>(0))
                .map_err(|e| map_err("count entries", &e))
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
            let portal = match tx
                .bind(
                    "SELECT key, version, value FROM citadel_entries ORDER BY key",
                    &[],
                )
                .await
            {
                Ok(p) => p,
                Err(e) => {
                    let _ = pages.send(Err(map_err("open snapshot cursor", &e))).await;
                    return;
                }
            };
            let fetch = i32::try_from(PAGE_SIZE).unwrap_or(i32::MAX);
            loop {
                let page: Result<Page> = tx
                    .query_portal(&portal, fetch)
                    .await
                    .map_err(|e| map_err("read snapshot page", &e))
                    .and_then(|rows| {
                        rows.iter()
                            .map(|row| {
                                let key: String = row
                                    .try_get(0)
                                    .map_err(|e| map_err("read snapshot page", &e))?;
                                let version: i64 = row
                                    .try_get(1)
                                    .map_err(|e| map_err("read snapshot page", &e))?;
                                let value: Vec<u8> = row
                                    .try_get(2)
                                    .map_err(|e| map_err("read snapshot page", &e))?;
                                Ok((
                                    key,
                                    Entry {
                                        version: to_u64(version, "version")?,
                                        value,
                                    },
                                ))
                            })
                            .collect()
                    });
                let done = match &page {
                    Ok(p) => p.len() < PAGE_SIZE,
                    Err(_) => true,
                };
                let empty = matches!(&page, Ok(p) if p.is_empty());
                if !empty && pages.send(page).await.is_err() {
                    break; // the reader went away
                }
                if done {
                    break;
                }
            }
            // Read only: ending it either way changes nothing.
            let _ = tx.rollback().await;
        });
        ready_rx
            .await
            .map_err(|_| StoreError::Backend("the PostgreSQL snapshot task ended early".into()))?
    }

    pub(super) async fn load_now(&self, mut input: LoadInput) -> Result<LoadSummary> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()
            .await
            .map_err(|e| map_err("begin load", &e))?;
        tx.batch_execute("LOCK TABLE citadel_entries IN EXCLUSIVE MODE")
            .await
            .map_err(|e| map_err("lock the entries table", &e))?;
        let any = tx
            .query_opt("SELECT 1 FROM citadel_entries LIMIT 1", &[])
            .await
            .map_err(|e| map_err("check that the store is empty", &e))?;
        if any.is_some() {
            return Err(not_empty(&self.target));
        }
        let insert = tx
            .prepare(
                "INSERT INTO citadel_entries (key, version, value)
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[])",
            )
            .await
            .map_err(|e| map_err("prepare load", &e))?;
        let mut check = LoadCheck::default();
        loop {
            // An error or a missing end marker returns early: dropping `tx` rolls back.
            match input.recv().await {
                None => return Err(ended_early()),
                Some(Err(e)) => return Err(e),
                Some(Ok(LoadChunk::End)) => break,
                Some(Ok(LoadChunk::Entries(page))) => {
                    let mut keys = Vec::with_capacity(page.len());
                    let mut versions = Vec::with_capacity(page.len());
                    let mut values = Vec::with_capacity(page.len());
                    for (key, entry) in page {
                        check.check(&key, &entry)?;
                        versions.push(to_i64(entry.version, "version")?);
                        keys.push(key);
                        values.push(entry.value);
                    }
                    tx.execute(&insert, &[&keys, &versions, &values])
                        .await
                        .map_err(|e| map_err("load entries", &e))?;
                }
            }
        }
        let summary = check.summary();
        if summary.max_version > 0 {
            let max = to_i64(summary.max_version, "version")?;
            tx.execute(
                "SELECT setval('citadel_version', GREATEST($1, last_value)) FROM citadel_version",
                &[&max],
            )
            .await
            .map_err(|e| map_err("raise the version sequence", &e))?;
        }
        tx.commit().await.map_err(|e| map_err("commit load", &e))?;
        Ok(summary)
    }
}
