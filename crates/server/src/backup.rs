//! Online backup and offline restore of the whole store.
//!
//! * `POST /_citadel/sys/backup` streams one consistent snapshot of every stored entry in the
//!   backup file format (`citadel_store::BackupEncoder`), as stored: sealed. The server keeps
//!   serving reads and writes meanwhile; the snapshot is one read transaction.
//! * `citadel operator backup --out FILE` is its client: it writes a temporary file (0600) next
//!   to FILE, checks it completely (structure, entry count, SHA-256 trailer), then renames it
//!   into place, so FILE is either the previous file or a complete new backup.
//! * `citadel operator restore --from FILE` loads a backup into an empty store of either
//!   backend, offline.
//!
//! **Why backup needs an unsealed server.** The file holds only sealed bytes, so unsealing is
//! not needed to *read* the data. But the caller must be authenticated, and the credentials of
//! the account roots live in the sealed store: while sealed no signature can be checked. An
//! unauthenticated endpoint that hands out the whole database would let anyone who reaches the
//! port take offline copies to attack at leisure (with Shamir shares obtained later, every key
//! and secret as of that copy), and would leak key names and sizes. So backup is signed by the
//! management account's root, like the other operator calls, and answers 503 while sealed. An
//! operator who must copy a sealed store can stop the server and copy the SQLite file, or
//! unseal first.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use anyhow::{Context as _, bail};
use axum::body::Body;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use citadel_api::AwsError;
use http::Request;
use http_body_util::BodyExt as _;
use hyper::body::Frame;
use tokio::sync::mpsc;

use crate::app::AppState;
use crate::cli::{RestoreArgs, ServeArgs};
use crate::operator::{Client, check};
use crate::sys::{error, internal, require_management_root};

/// Media type of a backup response.
const BACKUP_CONTENT_TYPE: &str = "application/vnd.citadel.backup";

/// A response body fed by the task that reads the snapshot. An `Err` aborts the response, so
/// the client never mistakes a failed backup for a complete one (it also checks the trailer).
struct ChannelBody {
    first: Option<Bytes>,
    rest: mpsc::Receiver<citadel_store::Result<Vec<u8>>>,
}

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(first))));
        }
        self.rest.poll_recv(cx).map(|item| {
            item.map(|chunk| {
                chunk
                    .map(|c| Frame::data(Bytes::from(c)))
                    .map_err(std::io::Error::other)
            })
        })
    }
}

/// `POST /_citadel/sys/backup`: the backup file as the response body.
pub async fn serve_backup(State(state): State<Arc<AppState>>, request: Request<Body>) -> Response {
    // A backup holds every account's data.
    if let Err(resp) = require_management_root(&state, request, "back up the store").await {
        return resp;
    }
    let created_at = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default();
    let (tx, mut rx) = mpsc::channel(2);
    let store = state.store.clone();
    tokio::spawn(async move {
        match store.backup(created_at, &tx).await {
            Ok(header) => tracing::info!(
                entries = header.entries,
                backend = %header.source_backend,
                "backup streamed"
            ),
            Err(e) => {
                tracing::error!(error = %e, "backup failed");
                let _ = tx.send(Err(e)).await;
            }
        }
    });
    // Wait for the start of the file, so a snapshot that cannot begin is a clean 500/503
    // rather than a broken download.
    let first = match rx.recv().await {
        Some(Ok(first)) => first,
        Some(Err(e)) if e.is_unavailable() => {
            return error(&AwsError::new(
                503,
                "ServiceUnavailableException",
                format!("The store cannot be read right now: {e}"),
            ));
        }
        Some(Err(e)) => return internal(e),
        None => return internal("the backup task ended before writing anything"),
    };
    (
        [(http::header::CONTENT_TYPE, BACKUP_CONTENT_TYPE)],
        Body::new(ChannelBody {
            first: Some(Bytes::from(first)),
            rest: rx,
        }),
    )
        .into_response()
}

/// A temporary file next to the target, removed on drop unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    keep: bool,
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

fn sibling(path: &Path, suffix: &str) -> anyhow::Result<PathBuf> {
    let name = path
        .file_name()
        .with_context(|| format!("{} names no file", path.display()))?;
    let random = citadel_crypto::random_array::<6>()
        .map_err(|e| anyhow::anyhow!("random name: {e}"))?
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>();
    let mut tmp = std::ffi::OsString::from(".");
    tmp.push(name);
    tmp.push(format!(".{suffix}-{random}"));
    Ok(path.with_file_name(tmp))
}

fn sync_dir(path: &Path) -> anyhow::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing directory {}", dir.display()))
}

/// `citadel operator backup --out FILE`.
pub async fn backup(client: &Client, out: &Path) -> anyhow::Result<()> {
    let response = client
        .send(
            http::Method::POST,
            "/_citadel/sys/backup",
            serde_json::json!({}),
            true,
        )
        .await?;
    let status = response.status().as_u16();
    if status != 200 {
        let bytes = response.into_body().collect().await?.to_bytes();
        let body = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        check(status, &body)?;
        bail!("unexpected HTTP {status} from the server");
    }
    let tmp = TempFile {
        path: sibling(out, "tmp")?,
        keep: false,
    };
    // create_new: never follow or reuse a file someone placed there; 0600 from the start, as
    // key names and sizes are metadata worth keeping private.
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp.path)
        .with_context(|| format!("creating {}", tmp.path.display()))?;
    let mut body = response.into_body();
    while let Some(frame) = body.frame().await {
        let frame = frame.context("the server stopped sending the backup")?;
        if let Ok(data) = frame.into_data() {
            file.write_all(&data)
                .with_context(|| format!("writing {}", tmp.path.display()))?;
        }
    }
    file.sync_all()
        .with_context(|| format!("syncing {}", tmp.path.display()))?;
    drop(file);
    let check_path = tmp.path.clone();
    let header = tokio::task::spawn_blocking(move || citadel_store::verify_file(&check_path))
        .await?
        .context("the downloaded backup does not verify; nothing was written")?;
    std::fs::rename(&tmp.path, out)
        .with_context(|| format!("moving the backup to {}", out.display()))?;
    let mut tmp = tmp;
    tmp.keep = true;
    sync_dir(out)?;
    println!(
        "Backed up {} entries ({} store, snapshot of {}) to {}",
        header.entries,
        header.source_backend,
        header.created_at,
        out.display()
    );
    println!("The file holds sealed data only: it opens with this server's root key or shares.");
    Ok(())
}

/// `citadel operator restore --from FILE`.
pub async fn restore(args: &RestoreArgs) -> anyhow::Result<()> {
    // The target is named the way `serve` names it (flags, CITADEL_* variables, the TOML file),
    // so the restored store is the one `serve` will open with the same settings.
    let serve = ServeArgs {
        config: args.config.clone(),
        data_dir: args.data_dir.clone(),
        database_url: args.database_url.clone(),
        ..ServeArgs::default()
    };
    let config = crate::config::resolve(&serve, &|k| std::env::var(k).ok())?;
    // Check the whole file before touching the target at all (not even PostgreSQL's schema);
    // the load checks it again while reading, and commits only if it still verifies.
    let checked = args.from.clone();
    tokio::task::spawn_blocking(move || citadel_store::verify_file(&checked))
        .await?
        .context("restore refused; nothing was written")?;
    let report = if config.database_url.is_some() {
        let (backend, _) = crate::run::open_backend(&config).await?;
        citadel_store::restore_file(&args.from, backend.as_ref())
            .await
            .context("restore refused; nothing was written")?
    } else {
        restore_sqlite(&args.from, &config.data_dir).await?
    };
    let target = match &config.database_url {
        Some(_) => "the PostgreSQL database".to_owned(),
        None => config
            .data_dir
            .join(citadel_store::DB_FILE_NAME)
            .display()
            .to_string(),
    };
    println!(
        "Restored {} entries (a {} store, snapshot of {}) into {target}",
        report.loaded.entries, report.header.source_backend, report.header.created_at
    );
    println!(
        "Start `citadel serve` on it with the root key file (or the key shares) of the server \
         that made the backup; copy the audit logs and TLS material separately (see docs/OPERATIONS.md)."
    );
    Ok(())
}

/// Restores into `<data_dir>/citadel.db`. A database file that exists (empty or not) is loaded
/// in one transaction, and refused unless empty. A new one is built under a temporary name and
/// renamed into place only when complete, so a failed restore leaves no database behind.
async fn restore_sqlite(
    from: &Path,
    data_dir: &Path,
) -> anyhow::Result<citadel_store::RestoreReport> {
    let target = data_dir.join(citadel_store::DB_FILE_NAME);
    if target.exists() {
        let backend = citadel_store::SqliteBackend::open(&target).await?;
        return citadel_store::restore_file(from, &backend)
            .await
            .context("restore refused; nothing was written");
    }
    if !data_dir.exists() {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .with_context(|| format!("creating {}", data_dir.display()))?;
    }
    // Ends in ".db" so SqliteBackend::open takes it for a database file, not a directory.
    let mut tmp_path = sibling(&target, "restoring")?.into_os_string();
    tmp_path.push(".db");
    let tmp = TempFile {
        path: PathBuf::from(tmp_path),
        keep: false,
    };
    let wal = |p: &Path, suffix: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let side_files = [
        TempFile {
            path: wal(&tmp.path, "-wal"),
            keep: false,
        },
        TempFile {
            path: wal(&tmp.path, "-shm"),
            keep: false,
        },
    ];
    let report = {
        let backend = citadel_store::SqliteBackend::open(&tmp.path).await?;
        citadel_store::restore_file(from, &backend)
            .await
            .context("restore refused; nothing was written")?
        // Dropping the backend closes its connections; the last close checkpoints the WAL
        // into the database file and removes it.
    };
    if std::fs::metadata(&side_files[0].path).is_ok_and(|m| m.len() > 0) {
        bail!(
            "the restored database could not be checkpointed ({} remains); nothing was moved into place",
            side_files[0].path.display()
        );
    }
    if target.exists() {
        bail!(
            "{} appeared during the restore; nothing was moved into place",
            target.display()
        );
    }
    std::fs::rename(&tmp.path, &target)
        .with_context(|| format!("moving the restored database to {}", target.display()))?;
    let mut tmp = tmp;
    tmp.keep = true;
    sync_dir(&target)?;
    drop(side_files);
    Ok(report)
}
