//! The backup file format: a whole-store snapshot of sealed entries, portable across backends.
//!
//! ```text
//! magic            8 bytes   "CITADELB"
//! format version   u32 BE    1
//! header length    u32 BE    H (at most 64 KiB)
//! header           H bytes   JSON: {"source_backend", "created_at", "entries", "citadel_version"}
//! entries × N      u32 BE key length, key (UTF-8), u64 BE version, u32 BE value length, value
//! trailer          32 bytes  SHA-256 of every byte before it
//! ```
//!
//! Values are the backend's bytes as stored: barrier envelopes (AES-256-GCM under the keyring,
//! with the storage key as AAD), and the keyring itself sealed by the root key. No plaintext is
//! ever in the file, and the file is useless without the root key (or its Shamir shares).
//!
//! The SHA-256 trailer detects damage and truncation, not deliberate tampering (whoever can
//! rewrite the file can recompute it): an altered or moved value is still refused by the barrier
//! when read, but removing entries or mixing two backups of the same store is not detected.
//! Keep backups where only operators can write.
//!
//! A restore checks the whole file (hash, structure, key order) before writing anything, and
//! the load commits only after the trailer was verified a second time while loading, so a file
//! that changes during the restore is refused too.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use citadel_crypto::{SHA256_LEN, Sha256};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::backend::{Backend, Entry, MAX_KEY_LEN};
use crate::snapshot::{LoadCheck, LoadChunk, LoadSummary, PAGE_SIZE, Page, load_channel};
use crate::{Result, StoreError};

/// First bytes of every backup file.
pub const BACKUP_MAGIC: &[u8; 8] = b"CITADELB";

/// The format version this build writes and reads.
pub const BACKUP_FORMAT_VERSION: u32 = 1;

/// Largest header accepted (it is a few hundred bytes in practice).
const MAX_HEADER_LEN: u32 = 64 * 1024;

/// Bytes a reader needs before the first entry, plus the trailer.
const FIXED_LEN: u64 = 8 + 4 + 4 + SHA256_LEN as u64;

/// What a backup file says about itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BackupHeader {
    /// Backend the snapshot was read from ("sqlite", "postgres").
    pub source_backend: String,
    /// When the snapshot was taken, RFC 3339 UTC.
    pub created_at: String,
    /// Number of entries in the file.
    pub entries: u64,
    /// Version of the Citadel that wrote the file.
    pub citadel_version: String,
}

fn invalid(reason: impl Into<String>) -> StoreError {
    StoreError::InvalidBackup(reason.into())
}

/// Encodes a backup piece by piece while hashing it, so it can be streamed.
#[derive(Debug)]
pub struct BackupEncoder {
    hash: Sha256,
    remaining: u64,
}

impl BackupEncoder {
    /// Starts a backup with `header`; returns the encoder and the bytes of the file's start.
    pub fn start(header: &BackupHeader) -> Result<(Self, Vec<u8>)> {
        let json = serde_json::to_vec(header)
            .map_err(|e| StoreError::Encoding(format!("backup header: {e}")))?;
        let len = u32::try_from(json.len())
            .ok()
            .filter(|l| *l <= MAX_HEADER_LEN)
            .ok_or_else(|| StoreError::Encoding("backup header too large".into()))?;
        let mut out = Vec::with_capacity(16 + json.len());
        out.extend_from_slice(BACKUP_MAGIC);
        out.extend_from_slice(&BACKUP_FORMAT_VERSION.to_be_bytes());
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&json);
        let mut hash = Sha256::new();
        hash.update(&out);
        Ok((
            Self {
                hash,
                remaining: header.entries,
            },
            out,
        ))
    }

    /// The bytes of a page of entries.
    pub fn page(&mut self, page: &[(String, Entry)]) -> Result<Vec<u8>> {
        let count = page.len() as u64;
        if count > self.remaining {
            return Err(StoreError::Encoding(
                "more entries than the backup header announced".into(),
            ));
        }
        self.remaining -= count;
        let size: usize = page.iter().map(|(k, e)| 16 + k.len() + e.value.len()).sum();
        let mut out = Vec::with_capacity(size);
        for (key, entry) in page {
            let key_len = u32::try_from(key.len())
                .map_err(|_| StoreError::Encoding(format!("key {key} too long")))?;
            let value_len = u32::try_from(entry.value.len())
                .map_err(|_| StoreError::Encoding(format!("value at {key} over 4 GiB")))?;
            out.extend_from_slice(&key_len.to_be_bytes());
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&entry.version.to_be_bytes());
            out.extend_from_slice(&value_len.to_be_bytes());
            out.extend_from_slice(&entry.value);
        }
        self.hash.update(&out);
        Ok(out)
    }

    /// The trailer; fails when fewer entries were written than announced.
    pub fn finish(self) -> Result<Vec<u8>> {
        if self.remaining != 0 {
            return Err(StoreError::Encoding(format!(
                "{} announced entries were not written",
                self.remaining
            )));
        }
        Ok(self.hash.finish().to_vec())
    }
}

/// Streams a backup of `backend` (one consistent snapshot) into `out` as byte chunks and
/// returns its header. On failure the error is returned and nothing more is sent; the receiver
/// must treat a stream without the trailer as failed (the reader does, by its hash check).
pub async fn stream_backup(
    backend: &dyn Backend,
    created_at: String,
    out: &mpsc::Sender<Result<Vec<u8>>>,
) -> Result<BackupHeader> {
    let gone = || StoreError::Backend("the backup receiver went away".into());
    let mut snapshot = backend.snapshot().await?;
    let header = BackupHeader {
        source_backend: backend.name().to_owned(),
        created_at,
        entries: snapshot.entries(),
        citadel_version: env!("CARGO_PKG_VERSION").to_owned(),
    };
    let (mut encoder, start) = BackupEncoder::start(&header)?;
    out.send(Ok(start)).await.map_err(|_| gone())?;
    while let Some(page) = snapshot.next_page().await? {
        let bytes = encoder.page(&page)?;
        out.send(Ok(bytes)).await.map_err(|_| gone())?;
    }
    out.send(Ok(encoder.finish()?)).await.map_err(|_| gone())?;
    Ok(header)
}

/// Writes a backup of `backend` to `path` (created with mode 0600; an existing file is
/// replaced). For tests and local tools; the operator command streams through the server.
pub async fn backup_to_file(
    backend: &dyn Backend,
    path: &Path,
    created_at: String,
) -> Result<BackupHeader> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let io = |e: std::io::Error| StoreError::Backend(format!("{}: {e}", path.display()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(io)?;
    let (tx, mut rx) = mpsc::channel(2);
    let produce = async move {
        let r = stream_backup(backend, created_at, &tx).await;
        drop(tx); // ends the consumer's loop
        r
    };
    let consume = async {
        while let Some(chunk) = rx.recv().await {
            file.write_all(&chunk?).map_err(io)?;
        }
        file.sync_all().map_err(io)
    };
    let (header, written) = tokio::join!(produce, consume);
    written?;
    header
}

/// A reader that hashes what it reads and knows how much of the file is left before the
/// trailer.
struct Hashing<R> {
    inner: R,
    hash: Sha256,
    /// Bytes left before the trailer.
    body_left: u64,
}

impl<R: Read> Hashing<R> {
    fn exact(&mut self, buf: &mut [u8], what: &str) -> Result<()> {
        if (buf.len() as u64) > self.body_left {
            return Err(invalid(format!(
                "the file ends inside {what}: it is truncated or damaged"
            )));
        }
        self.inner
            .read_exact(buf)
            .map_err(|e| invalid(format!("reading {what}: {e}")))?;
        self.body_left -= buf.len() as u64;
        self.hash.update(buf);
        Ok(())
    }

    fn u32(&mut self, what: &str) -> Result<u32> {
        let mut b = [0u8; 4];
        self.exact(&mut b, what)?;
        Ok(u32::from_be_bytes(b))
    }

    fn u64(&mut self, what: &str) -> Result<u64> {
        let mut b = [0u8; 8];
        self.exact(&mut b, what)?;
        Ok(u64::from_be_bytes(b))
    }

    fn bytes(&mut self, len: u32, what: &str) -> Result<Vec<u8>> {
        if u64::from(len) > self.body_left {
            return Err(invalid(format!(
                "{what} claims {len} bytes, more than the file holds: it is truncated or damaged"
            )));
        }
        let mut v = vec![0u8; len as usize];
        self.exact(&mut v, what)?;
        Ok(v)
    }
}

fn open(path: &Path) -> Result<(Hashing<BufReader<File>>, u64)> {
    let file = File::open(path).map_err(|e| invalid(format!("{}: {e}", path.display())))?;
    let len = file
        .metadata()
        .map_err(|e| invalid(format!("{}: {e}", path.display())))?
        .len();
    if len < FIXED_LEN {
        return Err(invalid(format!(
            "{} is {len} bytes long, too short to be a Citadel backup",
            path.display()
        )));
    }
    Ok((
        Hashing {
            inner: BufReader::with_capacity(1 << 20, file),
            hash: Sha256::new(),
            body_left: len - SHA256_LEN as u64,
        },
        len,
    ))
}

fn read_header<R: Read>(r: &mut Hashing<R>) -> Result<BackupHeader> {
    let mut magic = [0u8; 8];
    r.exact(&mut magic, "the magic number")?;
    if &magic != BACKUP_MAGIC {
        return Err(invalid("not a Citadel backup (wrong magic number)"));
    }
    let version = r.u32("the format version")?;
    if version != BACKUP_FORMAT_VERSION {
        return Err(invalid(format!(
            "format version {version} is not supported by this Citadel (it reads version \
             {BACKUP_FORMAT_VERSION}); use the Citadel release that wrote it, or a newer one"
        )));
    }
    let len = r.u32("the header length")?;
    if len > MAX_HEADER_LEN {
        return Err(invalid(format!("header length {len} is implausible")));
    }
    let json = r.bytes(len, "the header")?;
    serde_json::from_slice(&json).map_err(|e| invalid(format!("unreadable header: {e}")))
}

fn read_trailer<R: Read>(r: &mut Hashing<R>) -> Result<()> {
    if r.body_left != 0 {
        return Err(invalid(format!(
            "{} unexpected bytes after the last entry",
            r.body_left
        )));
    }
    let mut trailer = [0u8; SHA256_LEN];
    r.inner
        .read_exact(&mut trailer)
        .map_err(|e| invalid(format!("reading the checksum: {e}")))?;
    let expected = std::mem::take(&mut r.hash).finish();
    if !citadel_crypto::constant_time_eq(&expected, &trailer) {
        return Err(invalid(
            "the SHA-256 checksum does not match: the file is damaged or truncated",
        ));
    }
    Ok(())
}

/// Reads the entries after the header, calling `page` for each page; then checks the trailer.
fn read_entries<R: Read>(
    r: &mut Hashing<R>,
    header: &BackupHeader,
    mut page: impl FnMut(Page) -> Result<()>,
) -> Result<LoadSummary> {
    let mut check = LoadCheck::default();
    let mut current = Vec::with_capacity(PAGE_SIZE);
    for _ in 0..header.entries {
        let key_len = r.u32("an entry's key length")?;
        if key_len as usize > MAX_KEY_LEN {
            return Err(invalid(format!(
                "an entry's key length {key_len} exceeds {MAX_KEY_LEN}"
            )));
        }
        let key = String::from_utf8(r.bytes(key_len, "an entry's key")?)
            .map_err(|_| invalid("an entry's key is not UTF-8"))?;
        let version = r.u64("an entry's version")?;
        let value_len = r.u32("an entry's value length")?;
        let value = r.bytes(value_len, "an entry's value")?;
        let entry = Entry { version, value };
        check
            .check(&key, &entry)
            .map_err(|e| invalid(e.to_string()))?;
        current.push((key, entry));
        if current.len() == PAGE_SIZE {
            page(std::mem::replace(
                &mut current,
                Vec::with_capacity(PAGE_SIZE),
            ))?;
        }
    }
    read_trailer(r)?;
    if !current.is_empty() {
        page(current)?;
    }
    Ok(check.summary())
}

/// Checks a backup file completely — structure, key order, entry count and the SHA-256
/// trailer — without keeping its entries; returns its header.
pub fn verify_file(path: &Path) -> Result<BackupHeader> {
    let (mut r, _) = open(path)?;
    let header = read_header(&mut r)?;
    read_entries(&mut r, &header, |_| Ok(()))?;
    Ok(header)
}

/// What a restore loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoreReport {
    /// The backup's header.
    pub header: BackupHeader,
    /// What was written.
    pub loaded: LoadSummary,
}

/// Restores the backup at `path` into `backend`, which must be empty: verifies the whole file
/// first, then loads it in one all-or-nothing transaction that commits only if the file verifies
/// again while being loaded.
pub async fn restore_file(path: &Path, backend: &dyn Backend) -> Result<RestoreReport> {
    let checked = path.to_path_buf();
    let header = tokio::task::spawn_blocking(move || verify_file(&checked))
        .await
        .map_err(|e| StoreError::Backend(format!("backup verification task failed: {e}")))??;

    let (tx, input) = load_channel();
    let source = path.to_path_buf();
    // The reader answers `Err(None)` when it stopped only because the load had already failed
    // (the load's error is then the one to report).
    let reader =
        tokio::task::spawn_blocking(move || -> Result<BackupHeader, Option<StoreError>> {
            let (mut r, _) = open(&source)?;
            let again = read_header(&mut r)?;
            if again != header {
                let e = invalid("the file changed while it was being restored");
                let _ =
                    tx.blocking_send(Err(invalid("the file changed while it was being restored")));
                return Err(Some(e));
            }
            let mut load_stopped = false;
            let read = read_entries(&mut r, &again, |page| {
                tx.blocking_send(Ok(LoadChunk::Entries(page))).map_err(|_| {
                    load_stopped = true;
                    StoreError::Backend("the load stopped".into())
                })
            });
            match read {
                Ok(_) => {
                    let _ = tx.blocking_send(Ok(LoadChunk::End));
                    Ok(again)
                }
                Err(_) if load_stopped => Err(None),
                Err(e) => {
                    // Abort the load (dropping `tx` alone would too: it never commits without End).
                    let _ = tx.blocking_send(Err(invalid("the backup file failed verification")));
                    Err(Some(e))
                }
            }
        });
    let loaded = backend.load_into_empty(input).await;
    let read = reader
        .await
        .map_err(|e| StoreError::Backend(format!("backup reader task failed: {e}")))?;
    let (loaded, header) = match (loaded, read) {
        (Ok(loaded), Ok(header)) => (loaded, header),
        (_, Err(Some(e))) => return Err(e),
        (Err(e), _) => return Err(e),
        (Ok(_), Err(None)) => {
            return Err(StoreError::Backend(
                "the load committed although the reader stopped".into(),
            ));
        }
    };
    if loaded.entries != header.entries {
        return Err(StoreError::Backend(format!(
            "loaded {} entries but the backup holds {}",
            loaded.entries, header.entries
        )));
    }
    Ok(RestoreReport { header, loaded })
}
