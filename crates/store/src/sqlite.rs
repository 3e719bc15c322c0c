//! The embedded default backend: one SQLite database file.
//!
//! * WAL journal with `synchronous=FULL`: a write that returned `Ok` has been fsynced to the
//!   WAL, so it survives `kill -9` and power loss; readers never block the writer.
//! * Reads run on tokio's blocking pool over a small pool of read-only connections.
//! * Writes go to one writer thread that owns the one write connection (SQLite allows one
//!   writer anyway) and **group-commits** them: the writes queued while the previous commit was
//!   being fsynced run together in one transaction, each in its own savepoint (a failed write
//!   rolls back only itself), and one fsync acknowledges them all. Under concurrency this turns
//!   one fsync per write into one per group; alone, a write commits at once.
//! * Versions come from a counter row in `meta`, bumped in the same transaction as each write.

use std::fs;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, TransactionBehavior, params};

use crate::backend::{Backend, Entry, Expect, Op, prefix_upper_bound, validate_key};
use crate::{LoadInput, LoadSummary, Snapshot};
use crate::{Result, StoreError};

mod snapshot;

/// Database file name used when `open` is given a directory.
pub const DB_FILE_NAME: &str = "citadel.db";

/// How long a statement waits for a lock held by another process before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Idle read connections kept open.
const MAX_IDLE_READERS: usize = 8;

/// Schema migrations, applied in order inside one transaction at open. Entry `i` brings the
/// schema from version `i` to `i + 1`. Never edit a released entry; append a new one.
const MIGRATIONS: &[&str] = &[
    // 1: entries and the version counter.
    "CREATE TABLE entries (
         key     TEXT    PRIMARY KEY NOT NULL,
         version INTEGER NOT NULL,
         value   BLOB    NOT NULL
     );
     INSERT INTO meta (key, value) VALUES ('revision', 0);",
];

/// Maps a SQLite error to a store error, classifying corruption so it is never mistaken for a
/// transient failure.
fn map_err(context: &str, e: rusqlite::Error) -> StoreError {
    describe(context, &e)
}

fn describe(context: &str, e: &rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            tracing::error!(error = %e, context, "SQLite database is corrupt");
            StoreError::Corrupt {
                key: None,
                reason: format!(
                    "the SQLite database is damaged or not a Citadel database ({context}: {e}); \
                     restore it from a backup"
                ),
            }
        }
        _ => StoreError::Backend(format!("sqlite {context}: {e}")),
    }
}

fn to_i64(v: u64, what: &str) -> Result<i64> {
    i64::try_from(v).map_err(|_| StoreError::Backend(format!("{what} {v} is out of range")))
}

fn to_u64(v: i64, what: &str) -> Result<u64> {
    u64::try_from(v).map_err(|_| StoreError::Corrupt {
        key: None,
        reason: format!("negative {what} {v} in the database"),
    })
}

/// Most writes in one group commit: bounds the time the first of them waits for the last.
const MAX_GROUP: usize = 256;

/// One write waiting for the writer thread.
trait WriteJob: Send {
    /// Runs the write inside the group's transaction; returns whether it succeeded (else its
    /// savepoint is rolled back).
    fn run(&mut self, conn: &Connection) -> bool;
    /// Answers the caller once the group's commit is known.
    fn finish(self: Box<Self>, commit: std::result::Result<(), &rusqlite::Error>);
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<Result<T>>,
    reply: tokio::sync::oneshot::Sender<Result<T>>,
}

impl<T, F> WriteJob for Pending<T, F>
where
    T: Send,
    F: FnOnce(&Connection) -> Result<T> + Send,
{
    fn run(&mut self, conn: &Connection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(conn);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: std::result::Result<(), &rusqlite::Error>) {
        let answer = match (self.result, commit) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(value)), Ok(())) => Ok(value),
            (_, Err(e)) => Err(describe("commit", e)),
            (None, Ok(())) => Err(StoreError::Backend("sqlite write was not run".into())),
        };
        // The caller may have gone away (request cancelled); the write stands either way.
        let _ = self.reply.send(answer);
    }
}

/// The writer thread: takes every queued write, runs them in one transaction, commits once.
fn run_writer(conn: &Connection, jobs: &std::sync::mpsc::Receiver<Box<dyn WriteJob>>) {
    while let Ok(first) = jobs.recv() {
        let mut group = vec![first];
        while group.len() < MAX_GROUP {
            match jobs.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            for job in group {
                job.finish(Err(&e));
            }
            continue;
        }
        for job in &mut group {
            let ok = conn.execute_batch("SAVEPOINT write").is_ok()
                && std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(conn)))
                    .unwrap_or(false);
            let end = if ok {
                "RELEASE write"
            } else {
                "ROLLBACK TO write; RELEASE write"
            };
            if let Err(e) = conn.execute_batch(end) {
                tracing::error!(error = %e, "ending a SQLite savepoint failed");
            }
        }
        let committed = conn.execute_batch("COMMIT");
        if committed.is_err() {
            // Leave no transaction open for the next group.
            let _ = conn.execute_batch("ROLLBACK");
        }
        for job in group {
            job.finish(committed.as_ref().map(|_| ()));
        }
    }
}

struct Inner {
    path: PathBuf,
    /// Writes for the writer thread; `None` once dropping.
    jobs: Option<std::sync::mpsc::Sender<Box<dyn WriteJob>>>,
    writer: Option<std::thread::JoinHandle<()>>,
    readers: Mutex<Vec<Connection>>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Close the read-only connections before the writer: SQLite checkpoints the WAL into
        // the main file and removes it only when the last connection to close can write.
        self.readers
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
        // Closing the queue ends the writer thread after the writes already queued.
        self.jobs = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

impl Inner {
    fn open_reader(&self) -> Result<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| map_err("open read connection", e))?;
        conn.busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| map_err("set busy timeout", e))?;
        Ok(conn)
    }
}

/// The SQLite backend. Cheap to clone; all clones share the connections.
#[derive(Clone)]
pub struct SqliteBackend {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("path", &self.inner.path)
            .finish()
    }
}

impl SqliteBackend {
    /// Opens (creating if needed) the database and applies pending migrations, on tokio's
    /// blocking pool.
    ///
    /// `path` is either a directory, which gets a `citadel.db` inside (created with mode 0700 if
    /// missing), or a file path ending in `.db`, `.sqlite` or `.sqlite3` (its parent directory is
    /// created with mode 0700 if missing). Any other path that does not exist yet is taken as a
    /// directory; an existing file is used as the database. A new database file is given mode
    /// 0600.
    pub async fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path))
            .await
            .map_err(|e| StoreError::Backend(format!("sqlite open task failed: {e}")))?
    }

    /// [`SqliteBackend::open`] for callers outside an async runtime. Blocks on file I/O and fsync.
    pub fn open_blocking(path: &Path) -> Result<Self> {
        let path = resolve_path(path)?;
        let existed = path.exists();
        let mut writer = Connection::open_with_flags(
            &path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| map_err("open", e))?;
        if !existed {
            // Values are sealed, but key names and sizes are metadata worth keeping private.
            fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(|e| {
                StoreError::Backend(format!("cannot set permissions on {}: {e}", path.display()))
            })?;
        }
        writer
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| map_err("set busy timeout", e))?;
        let mode: String = writer
            .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
            .map_err(|e| map_err("enable WAL", e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!(
                "cannot enable WAL journaling on {} (journal mode is {mode}); \
                 the file system may not support it",
                path.display()
            )));
        }
        writer
            .pragma_update(None, "synchronous", "FULL")
            .map_err(|e| map_err("set synchronous=FULL", e))?;
        migrate(&mut writer)?;
        let (jobs, queue) = std::sync::mpsc::channel::<Box<dyn WriteJob>>();
        let thread = std::thread::Builder::new()
            .name("citadel-sqlite-writer".into())
            .spawn(move || run_writer(&writer, &queue))
            .map_err(|e| StoreError::Backend(format!("cannot start the SQLite writer: {e}")))?;
        tracing::info!(path = %path.display(), "opened SQLite store");
        Ok(Self {
            inner: Arc::new(Inner {
                path,
                jobs: Some(jobs),
                writer: Some(thread),
                readers: Mutex::new(Vec::new()),
            }),
        })
    }

    /// The database file in use.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Runs SQLite's `quick_check` over the whole file (reads every page; for an admin command
    /// or a startup flag, not the hot path). Damage is reported as [`StoreError::Corrupt`].
    pub async fn quick_check(&self) -> Result<()> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare("PRAGMA quick_check")
                .map_err(|e| map_err("quick_check", e))?;
            let rows: Vec<String> = stmt
                .query_map([], |r| r.get(0))
                .map_err(|e| map_err("quick_check", e))?
                .collect::<rusqlite::Result<_>>()
                .map_err(|e| map_err("quick_check", e))?;
            if rows.len() == 1 && rows.first().map(String::as_str) == Some("ok") {
                Ok(())
            } else {
                Err(StoreError::Corrupt {
                    key: None,
                    reason: format!("SQLite quick_check failed: {}", rows.join("; ")),
                })
            }
        })
        .await
    }

    /// Runs `f` in the writer thread's next group transaction; returns once that transaction
    /// is committed (fsynced) or failed. `f` must not begin or end transactions itself.
    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job = Box::new(Pending {
            work: Some(f),
            result: None,
            reply,
        });
        self.inner
            .jobs
            .as_ref()
            .and_then(|jobs| jobs.send(job).ok())
            .ok_or_else(|| StoreError::Backend("the SQLite writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Backend("the SQLite writer has stopped".into()))?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let pooled = inner
                .readers
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            let conn = match pooled {
                Some(c) => c,
                None => inner.open_reader()?,
            };
            let result = f(&conn);
            let mut idle = inner.readers.lock().unwrap_or_else(PoisonError::into_inner);
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Backend(format!("sqlite read task failed: {e}")))?
    }
}

fn resolve_path(path: &Path) -> Result<PathBuf> {
    let is_file_name = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("db" | "sqlite" | "sqlite3")
    );
    if path.is_file() {
        return Ok(path.to_path_buf());
    }
    let dir = if path.is_dir() || !is_file_name {
        path
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        }
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| StoreError::Backend(format!("cannot create {}: {e}", dir.display())))?;
    Ok(if path.is_dir() {
        path.join(DB_FILE_NAME)
    } else {
        path.to_path_buf()
    })
}

fn migrate(conn: &mut Connection) -> Result<()> {
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(|e| map_err("begin migration", e))?;
    tx.execute_batch(
        "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY NOT NULL, value INTEGER NOT NULL);",
    )
    .map_err(|e| map_err("create meta table", e))?;
    let current: i64 = tx
        .query_row(
            "SELECT value FROM meta WHERE key = 'schema_version'",
            [],
            |r| r.get(0),
        )
        .optional()
        .map_err(|e| map_err("read schema version", e))?
        .unwrap_or(0);
    let current = usize::try_from(current).map_err(|_| StoreError::Corrupt {
        key: None,
        reason: format!("invalid schema version {current}"),
    })?;
    if current > MIGRATIONS.len() {
        return Err(StoreError::Backend(format!(
            "the database has schema version {current}, newer than this binary supports ({}); \
             upgrade Citadel",
            MIGRATIONS.len()
        )));
    }
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current) {
        tx.execute_batch(sql)
            .map_err(|e| map_err(&format!("apply migration {}", index + 1), e))?;
        tracing::info!(version = index + 1, "applied store schema migration");
    }
    let latest = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    tx.execute(
        "INSERT INTO meta (key, value) VALUES ('schema_version', ?1)
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        params![latest],
    )
    .map_err(|e| map_err("record schema version", e))?;
    tx.commit().map_err(|e| map_err("commit migration", e))
}

fn current_version(tx: &Connection, key: &str) -> Result<Option<u64>> {
    let v: Option<i64> = tx
        .prepare_cached("SELECT version FROM entries WHERE key = ?1")
        .and_then(|mut s| s.query_row(params![key], |r| r.get(0)).optional())
        .map_err(|e| map_err("read version", e))?;
    v.map(|v| to_u64(v, "version")).transpose()
}

/// Reserves `count` consecutive versions and returns the first: one counter update per write
/// transaction, not per key.
fn reserve_versions(tx: &Connection, count: usize) -> Result<u64> {
    let count = i64::try_from(count).map_err(|_| StoreError::Backend("batch too large".into()))?;
    let last: i64 = tx
        .prepare_cached("UPDATE meta SET value = value + ?1 WHERE key = 'revision' RETURNING value")
        .and_then(|mut s| s.query_row(params![count], |r| r.get(0)))
        .map_err(|e| map_err("bump revision", e))?;
    to_u64(last - count + 1, "revision")
}

/// Writes `key` at `version` (reserved by [`reserve_versions`]) if `expect` holds.
fn put_in(tx: &Connection, key: &str, value: &[u8], expect: Expect, version: u64) -> Result<()> {
    // Last-writer-wins puts (the audit index, most of a batch) need not read the row first.
    if expect != Expect::Any && !expect.matches(current_version(tx, key)?) {
        return Err(StoreError::Conflict {
            key: key.to_owned(),
        });
    }
    let stored_version = to_i64(version, "version")?;
    tx.prepare_cached(
        "INSERT INTO entries (key, version, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (key) DO UPDATE SET version = excluded.version, value = excluded.value",
    )
    .and_then(|mut s| s.execute(params![key, stored_version, value]))
    .map_err(|e| map_err("write entry", e))?;
    Ok(())
}

fn delete_in(tx: &Connection, key: &str, expect: Expect) -> Result<bool> {
    let current = current_version(tx, key)?;
    if !expect.matches(current) {
        return Err(StoreError::Conflict {
            key: key.to_owned(),
        });
    }
    if current.is_none() {
        return Ok(false);
    }
    tx.prepare_cached("DELETE FROM entries WHERE key = ?1")
        .and_then(|mut s| s.execute(params![key]))
        .map_err(|e| map_err("delete entry", e))?;
    Ok(true)
}

#[async_trait]
impl Backend for SqliteBackend {
    fn name(&self) -> &'static str {
        "sqlite"
    }

    async fn get(&self, key: &str) -> Result<Option<Entry>> {
        validate_key(key)?;
        let key = key.to_owned();
        self.read(move |conn| {
            let row: Option<(i64, Vec<u8>)> = conn
                .prepare_cached("SELECT version, value FROM entries WHERE key = ?1")
                .and_then(|mut s| {
                    s.query_row(params![key], |r| Ok((r.get(0)?, r.get(1)?)))
                        .optional()
                })
                .map_err(|e| map_err("read entry", e))?;
            row.map(|(version, value)| {
                Ok(Entry {
                    version: to_u64(version, "version")?,
                    value,
                })
            })
            .transpose()
        })
        .await
    }

    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> Result<u64> {
        validate_key(key)?;
        let key = key.to_owned();
        self.write(move |conn| {
            let version = reserve_versions(conn, 1)?;
            put_in(conn, &key, &value, expect, version)?;
            Ok(version)
        })
        .await
    }

    async fn delete(&self, key: &str, expect: Expect) -> Result<bool> {
        validate_key(key)?;
        let key = key.to_owned();
        self.write(move |conn| delete_in(conn, &key, expect)).await
    }

    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(String, Entry)>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let upper = prefix_upper_bound(prefix);
        // One lower bound for the index range: whichever of `prefix` and `start_after` is
        // tighter. Giving SQLite both would make it scan from the looser one and filter.
        let (lower, exclusive) = match start_after {
            Some(after) if after >= prefix => (after.to_owned(), true),
            _ => (prefix.to_owned(), false),
        };
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let op = if exclusive { ">" } else { ">=" };
            let sql = match upper {
                Some(_) => format!(
                    "SELECT key, version, value FROM entries
                     WHERE key {op} ?1 AND key < ?2 ORDER BY key LIMIT ?3"
                ),
                None => format!(
                    "SELECT key, version, value FROM entries
                     WHERE key {op} ?1 ORDER BY key LIMIT ?3"
                ),
            };
            let mut stmt = conn
                .prepare_cached(&sql)
                .map_err(|e| map_err("prepare list", e))?;
            let rows = stmt
                .query_map(params![lower, upper, limit], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, i64>(1)?,
                        r.get::<_, Vec<u8>>(2)?,
                    ))
                })
                .map_err(|e| map_err("list entries", e))?;
            let mut out = Vec::new();
            for row in rows {
                let (key, version, value) = row.map_err(|e| map_err("list entries", e))?;
                out.push((
                    key,
                    Entry {
                        version: to_u64(version, "version")?,
                        value,
                    },
                ));
            }
            Ok(out)
        })
        .await
    }

    async fn batch(&self, ops: Vec<Op>) -> Result<()> {
        for op in &ops {
            validate_key(op.key())?;
        }
        if ops.is_empty() {
            return Ok(());
        }
        self.write(move |conn| {
            let puts = ops.iter().filter(|op| matches!(op, Op::Put { .. })).count();
            let mut version = if puts > 0 {
                reserve_versions(conn, puts)?
            } else {
                0
            };
            for op in &ops {
                // An error returns early; dropping `tx` rolls everything back.
                match op {
                    Op::Put { key, value, expect } => {
                        put_in(conn, key, value, *expect, version)?;
                        version += 1;
                    }
                    Op::Delete { key, expect } => {
                        delete_in(conn, key, *expect)?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    async fn snapshot(&self) -> Result<Snapshot> {
        self.snapshot_now().await
    }

    async fn load_into_empty(&self, input: LoadInput) -> Result<LoadSummary> {
        self.load_now(input).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_passes_backend_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::open(dir.path()).await.unwrap();
        crate::testing::backend_conformance(Arc::new(backend)).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn sqlite_passes_snapshot_and_load_conformance() {
        let dir = tempfile::tempdir().unwrap();
        let backend = SqliteBackend::open(dir.path()).await.unwrap();
        crate::testing::snapshot::snapshot_conformance(Arc::new(backend)).await;
        let empty = SqliteBackend::open(dir.path().join("empty")).await.unwrap();
        crate::testing::snapshot::load_conformance(Arc::new(empty)).await;
    }

    #[tokio::test]
    async fn directory_and_file_paths() {
        let dir = tempfile::tempdir().unwrap();
        let b = SqliteBackend::open(dir.path()).await.unwrap();
        assert_eq!(b.path(), dir.path().join(DB_FILE_NAME));
        let mode = fs::metadata(b.path()).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);

        let nested = dir.path().join("a").join("data");
        let b = SqliteBackend::open(&nested).await.unwrap();
        assert_eq!(b.path(), nested.join(DB_FILE_NAME));
        let mode = fs::metadata(&nested).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);

        let file = dir.path().join("x").join("store.sqlite");
        let b = SqliteBackend::open(&file).await.unwrap();
        assert_eq!(b.path(), file);
        b.put("k", b"v".to_vec(), Expect::Any).await.unwrap();
        b.quick_check().await.unwrap();
    }

    #[tokio::test]
    async fn reopen_keeps_data_and_versions_keep_growing() {
        let dir = tempfile::tempdir().unwrap();
        let v1 = {
            let b = SqliteBackend::open(dir.path()).await.unwrap();
            let v = b.put("k", b"one".to_vec(), Expect::Absent).await.unwrap();
            b.delete("k", Expect::Any).await.unwrap();
            b.put("k", b"two".to_vec(), Expect::Absent).await.unwrap();
            assert!(b.put("k", b"x".to_vec(), Expect::Version(v)).await.is_err());
            v
        };
        let b = SqliteBackend::open(dir.path()).await.unwrap();
        let e = b.get("k").await.unwrap().unwrap();
        assert_eq!(e.value, b"two");
        assert!(e.version > v1);
        let v3 = b.put("j", b"3".to_vec(), Expect::Any).await.unwrap();
        assert!(v3 > e.version);
    }

    #[tokio::test]
    async fn not_a_database_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("junk.db");
        fs::write(&path, vec![0x5au8; 8192]).unwrap();
        let err = SqliteBackend::open(&path).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { key: None, .. }),
            "{err}"
        );
    }

    #[tokio::test]
    async fn newer_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = {
            let b = SqliteBackend::open(dir.path()).await.unwrap();
            b.path().to_path_buf()
        };
        let conn = Connection::open(&path).unwrap();
        conn.execute(
            "UPDATE meta SET value = 99 WHERE key = 'schema_version'",
            [],
        )
        .unwrap();
        drop(conn);
        let err = SqliteBackend::open(dir.path()).await.unwrap_err();
        assert!(err.to_string().contains("newer"), "{err}");
    }
}
