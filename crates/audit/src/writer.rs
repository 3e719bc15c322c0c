//! The one audit writer: a dedicated thread that appends records to hourly log files,
//! group-committing concurrent requests (one `fsync` per batch, not per request), indexes them
//! for LookupEvents, finishes each file when its hour is over, writes the hourly digests and
//! sweeps expired index entries.
//!
//! [`AuditLog::record`] returns once the record is durable (log file fsynced, index committed),
//! so the dispatcher can send the API response only after its audit record exists. If the
//! record cannot be written, `record` fails and the dispatcher fails the call closed (unless
//! configured fail-open).
//!
//! Crash safety: each record is one line of its log file (`{"Records":[`, one record per line,
//! then `]}`). A file left unfinished by a crash is repaired at the next start: cut after its
//! last complete line, then closed with `]}`. Records whose line was cut were never
//! acknowledged.

use std::collections::HashMap;
use std::fs::File;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use citadel_store::SealedStore;
use time::OffsetDateTime;
use tokio::sync::oneshot;

use crate::clock::{Clock, hour_start};
use crate::digest::{self, ChainHead, sync_dir};
use crate::error::{AuditError, Result};
use crate::index;
use crate::layout;
use crate::record::Record;
use crate::signer::Signer;

/// How long the writer sleeps when idle before checking the hour.
const TICK: Duration = Duration::from_secs(15);
/// Most records in one group commit.
const MAX_BATCH: usize = 512;
/// Index entries deleted per sweep round.
const SWEEP_LIMIT: usize = 500;
/// Default LookupEvents retention, as AWS's event history.
pub const DEFAULT_RETENTION_DAYS: u32 = 90;

const HEADER: &[u8] = b"{\"Records\":[\n";
const FOOTER: &[u8] = b"]}\n";

/// How the trail is kept.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// `<data-dir>/audit`.
    pub dir: PathBuf,
    /// Serve the call anyway (with a loud error and a metric) when its record cannot be
    /// written. Default: fail closed.
    pub fail_open: bool,
    /// Days LookupEvents keeps records (the log files themselves are never deleted).
    pub retention_days: u32,
}

impl AuditConfig {
    pub fn new(data_dir: &Path) -> Self {
        AuditConfig {
            dir: data_dir.join("audit"),
            fail_open: false,
            retention_days: DEFAULT_RETENTION_DAYS,
        }
    }
}

/// The writer's answer to one message.
type Ack = oneshot::Sender<Result<(), String>>;

/// Why a record was not written. A database outage stays distinguishable, so the server can
/// answer it as "unavailable, retry" rather than as an internal error.
#[derive(Debug, Clone)]
enum RecordFailure {
    StoreUnavailable(String),
    Failed(String),
}

type RecordAck = oneshot::Sender<Result<(), RecordFailure>>;

enum Msg {
    Record(Box<Record>, RecordAck),
    Maintain(Ack),
    Close(Ack),
}

/// The handle the dispatcher and the services hold.
pub struct AuditLog {
    tx: mpsc::Sender<Msg>,
    config: AuditConfig,
    store: Arc<SealedStore>,
    clock: Arc<dyn Clock>,
    failures: AtomicU64,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Starts the writer thread. Must be called from within a Tokio runtime (the writer uses
    /// it for the store).
    pub fn start(
        config: AuditConfig,
        store: Arc<SealedStore>,
        clock: Arc<dyn Clock>,
    ) -> Result<Arc<AuditLog>> {
        std::fs::create_dir_all(&config.dir).map_err(AuditError::io("creating", &config.dir))?;
        let handle = tokio::runtime::Handle::try_current()
            .map_err(|_| AuditError::Invalid("the audit writer needs a Tokio runtime".into()))?;
        let (tx, rx) = mpsc::channel();
        let mut writer = Writer {
            dir: config.dir.clone(),
            retention_days: config.retention_days,
            store: store.clone(),
            clock: clock.clone(),
            handle,
            open: HashMap::new(),
            chains: None,
            signer: None,
            digested_through: None,
            last_sweep: None,
        };
        writer.recover()?;
        std::thread::Builder::new()
            .name("citadel-audit".to_owned())
            .spawn(move || writer.run(&rx))
            .map_err(AuditError::io("starting the writer thread", &config.dir))?;
        Ok(Arc::new(AuditLog {
            tx,
            config,
            store,
            clock,
            failures: AtomicU64::new(0),
        }))
    }

    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    pub fn store(&self) -> &Arc<SealedStore> {
        &self.store
    }

    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// Records that could not be written and were let through (fail-open) or failed the call.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Appends `record` and returns once it is durable.
    pub async fn record(&self, record: Record) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        let result = match self.tx.send(Msg::Record(Box::new(record), tx)) {
            Ok(()) => match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(RecordFailure::StoreUnavailable(reason))) => Err(AuditError::Store(
                    citadel_store::StoreError::Unavailable(reason),
                )),
                Ok(Err(RecordFailure::Failed(e))) => Err(AuditError::Invalid(e)),
                Err(_) => Err(AuditError::Stopped),
            },
            Err(_) => Err(AuditError::Stopped),
        };
        if result.is_err() {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    /// Finishes the log files of past hours, writes every due digest and sweeps the index now
    /// (the writer also does this on its own as hours pass).
    pub async fn maintain(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Maintain(tx))
            .map_err(|_| AuditError::Stopped)?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AuditError::Invalid(e)),
            Err(_) => Err(AuditError::Stopped),
        }
    }

    /// At shutdown: finishes every open log file and writes a final digest up to now for every
    /// chain (as CloudTrail does when logging stops), so the whole trail verifies at once.
    /// Records written afterwards go to new files, digested with the rest of their hour.
    pub async fn close(&self) -> Result<()> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Msg::Close(tx))
            .map_err(|_| AuditError::Stopped)?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AuditError::Invalid(e)),
            Err(_) => Err(AuditError::Stopped),
        }
    }
}

struct OpenFile {
    hour: OffsetDateTime,
    path: PathBuf,
    file: File,
    records: usize,
}

struct Writer {
    dir: PathBuf,
    retention_days: u32,
    store: Arc<SealedStore>,
    clock: Arc<dyn Clock>,
    handle: tokio::runtime::Handle,
    /// (account, region) → the file of the current hour.
    open: HashMap<(String, String), OpenFile>,
    /// Loaded from the store on first use.
    chains: Option<HashMap<(String, String), ChainHead>>,
    signer: Option<Signer>,
    /// Every chain is digested up to this hour.
    digested_through: Option<OffsetDateTime>,
    last_sweep: Option<OffsetDateTime>,
}

/// A path component for `s`: itself when safe, else a fixed stand-in (records keep the value).
fn component(s: &str) -> String {
    if layout::safe_component(s) {
        s.to_owned()
    } else {
        "invalid".to_owned()
    }
}

impl Writer {
    fn run(mut self, rx: &mpsc::Receiver<Msg>) {
        if let Err(e) = self.maintain(self.clock.now(), false) {
            tracing::error!(error = %e, "audit trail maintenance (log rotation, digests) failed; retrying");
        }
        loop {
            let first = match rx.recv_timeout(TICK) {
                Ok(m) => Some(m),
                Err(mpsc::RecvTimeoutError::Timeout) => None,
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            };
            let mut records = Vec::new();
            let mut maintain = Vec::new();
            let mut close = Vec::new();
            let mut next = first;
            loop {
                match next.take() {
                    Some(Msg::Record(r, ack)) => records.push((r, ack)),
                    Some(Msg::Maintain(ack)) => maintain.push(ack),
                    Some(Msg::Close(ack)) => close.push(ack),
                    None => {}
                }
                if records.len() >= MAX_BATCH {
                    break;
                }
                match rx.try_recv() {
                    Ok(m) => next = Some(m),
                    Err(_) => break,
                }
            }
            let now = self.clock.now();
            let maintained = self.maintain(now, !maintain.is_empty());
            if let Err(e) = &maintained {
                tracing::error!(error = %e, "audit trail maintenance (log rotation, digests) failed; retrying");
            }
            if !records.is_empty() {
                self.write_batch(now, records);
            }
            for ack in maintain {
                let _ = ack.send(maintained.as_ref().map(|_| ()).map_err(ToString::to_string));
            }
            if !close.is_empty() {
                let closed = self.close(now).map_err(|e| e.to_string());
                if let Err(e) = &closed {
                    tracing::error!(error = %e, "writing the final audit digests failed");
                }
                for ack in close {
                    let _ = ack.send(closed.clone());
                }
            }
        }
        // Shutting down: close the files so they are valid JSON; the next start digests them.
        self.finish_before(OffsetDateTime::now_utc() + time::Duration::days(36500));
    }

    /// Repairs log files a crash left unfinished.
    fn recover(&mut self) -> Result<()> {
        let root = self.dir.join("AWSLogs");
        for path in walk_files(&root, 6)? {
            let is_log = path.to_string_lossy().contains("/CloudTrail/")
                && path.extension().is_some_and(|e| e == "json");
            if is_log {
                finish_file(&path)?;
            }
        }
        Ok(())
    }

    fn finish_before(&mut self, hour: OffsetDateTime) {
        let stale: Vec<(String, String)> = self
            .open
            .iter()
            .filter(|(_, f)| f.hour < hour)
            .map(|(k, _)| k.clone())
            .collect();
        for key in stale {
            if let Some(mut f) = self.open.remove(&key)
                && let Err(e) = f.file.write_all(FOOTER).and_then(|()| f.file.sync_data())
            {
                tracing::error!(path = %f.path.display(), error = %e, "finishing an audit log file failed; it is repaired at the next start");
            }
        }
    }

    fn maintain(&mut self, now: OffsetDateTime, forced: bool) -> Result<()> {
        let hour = hour_start(now);
        self.finish_before(hour);
        if self.store.is_sealed() {
            return Ok(());
        }
        self.ensure_signer()?;
        if forced || self.digested_through != Some(hour) {
            self.write_digests(hour)?;
            self.digested_through = Some(hour);
        }
        let sweep_due = self
            .last_sweep
            .is_none_or(|t| now - t >= time::Duration::HOUR);
        if forced || sweep_due {
            let cutoff = now - time::Duration::days(i64::from(self.retention_days));
            let handle = self.handle.clone();
            let store = self.store.clone();
            loop {
                let n =
                    handle.block_on(index::sweep(&store, cutoff.unix_timestamp(), SWEEP_LIMIT))?;
                if n < SWEEP_LIMIT {
                    break;
                }
            }
            self.last_sweep = Some(now);
        }
        Ok(())
    }

    fn close(&mut self, now: OffsetDateTime) -> Result<()> {
        self.finish_before(now + time::Duration::days(36500));
        if self.store.is_sealed() {
            return Ok(());
        }
        self.write_digests(now)
    }

    /// Loads (or creates, once per deployment) the digest signing key, which also publishes
    /// its public key for ListPublicKeys.
    fn ensure_signer(&mut self) -> Result<()> {
        if self.signer.is_none() {
            let signer = self.handle.block_on(Signer::load_or_create(
                &self.store,
                &self.dir,
                self.clock.now().unix_timestamp(),
            ))?;
            self.signer = Some(signer);
        }
        Ok(())
    }

    fn chains(&mut self) -> Result<&mut HashMap<(String, String), ChainHead>> {
        if self.chains.is_none() {
            let loaded = self.handle.block_on(digest::load_chains(&self.store))?;
            self.chains = Some(
                loaded
                    .into_iter()
                    .map(|c| ((c.account.clone(), c.region.clone()), c))
                    .collect(),
            );
        }
        self.chains
            .as_mut()
            .ok_or_else(|| AuditError::Invalid("digest chains not loaded".into()))
    }

    /// Digests every chain up to `until` (an hour boundary, or now for final digests).
    fn write_digests(&mut self, until: OffsetDateTime) -> Result<()> {
        let due = until.unix_timestamp();
        let any_due = self.chains()?.values().any(|c| c.next_start < due);
        if !any_due {
            return Ok(());
        }
        self.ensure_signer()?;
        let handle = self.handle.clone();
        let store = self.store.clone();
        let dir = self.dir.clone();
        let Some(signer) = self.signer.take() else {
            return Ok(());
        };
        let result = (|| {
            for chain in self.chains()?.values_mut() {
                while chain.next_start < due {
                    let object = handle.block_on(digest::write_next_digest(
                        &store, &dir, &signer, chain, until,
                    ))?;
                    tracing::debug!(digest = %object, "wrote an audit digest");
                }
            }
            Ok(())
        })();
        self.signer = Some(signer);
        result
    }

    fn write_batch(&mut self, now: OffsetDateTime, records: Vec<(Box<Record>, RecordAck)>) {
        // Never write into an hour that is already digested (the clock stepped back).
        let hour = hour_start(now).max(self.digested_through.unwrap_or(OffsetDateTime::UNIX_EPOCH));
        let mut groups: HashMap<(String, String), Vec<usize>> = HashMap::new();
        for (i, (r, _)) in records.iter().enumerate() {
            groups
                .entry((component(&r.recipient_account_id), component(&r.aws_region)))
                .or_default()
                .push(i);
        }
        let mut errors: Vec<Option<RecordFailure>> = vec![None; records.len()];
        // Each record is serialized once, for its log line and its index chunk.
        let mut json: Vec<Vec<u8>> = Vec::with_capacity(records.len());
        for (i, (r, _)) in records.iter().enumerate() {
            json.push(serde_json::to_vec(&**r).unwrap_or_else(|e| {
                errors[i] = Some(RecordFailure::Failed(e.to_string()));
                Vec::new()
            }));
        }
        // Write every group's lines, then fsync the files while the store commits the index:
        // the two waits overlap instead of adding up. A group whose fsync fails has its index
        // entries removed again, so the index never names a record its file may not hold.
        let mut ops = Vec::new();
        let mut written = Vec::new();
        for ((account, region), members) in &mut groups {
            members.retain(|i| errors[*i].is_none());
            if members.is_empty() {
                continue;
            }
            let appended = self.append(
                hour,
                account,
                region,
                members.iter().map(|i| json[*i].as_slice()),
            );
            match appended {
                Ok(()) => {
                    let group: Vec<(&Record, &[u8])> = members
                        .iter()
                        .map(|i| (&*records[*i].0, json[*i].as_slice()))
                        .collect();
                    let group_ops =
                        index::index_ops(&group, account, region, now.unix_timestamp_nanos());
                    let keys: Vec<String> = group_ops.iter().map(|o| o.key().to_owned()).collect();
                    ops.extend(group_ops);
                    written.push((account.clone(), region.clone(), members.clone(), keys));
                }
                Err(e) => {
                    tracing::error!(error = %e, account, region, "writing audit records failed");
                    for i in members {
                        errors[*i] = Some(RecordFailure::Failed(e.to_string()));
                    }
                }
            }
        }
        let store = self.store.clone();
        let indexing =
            (!ops.is_empty()).then(|| self.handle.spawn(async move { store.batch(ops).await }));
        let mut unsynced = Vec::new();
        for (account, region, members, keys) in written {
            if let Err(e) = self.sync(&account, &region) {
                tracing::error!(error = %e, account, region, "writing audit records failed");
                for i in &members {
                    errors[*i] = Some(RecordFailure::Failed(e.to_string()));
                }
                unsynced.extend(keys);
            }
        }
        if let Some(indexing) = indexing {
            let indexed = self
                .handle
                .block_on(indexing)
                .unwrap_or_else(|e| Err(citadel_store::StoreError::Backend(e.to_string())));
            match indexed {
                Ok(()) if !unsynced.is_empty() => {
                    let undo = unsynced
                        .into_iter()
                        .map(|k| citadel_store::Op::delete(k, citadel_store::Expect::Any))
                        .collect();
                    if let Err(e) = self.handle.block_on(self.store.batch(undo)) {
                        tracing::error!(error = %e, "removing the index entries of unwritten audit records failed");
                    }
                }
                Ok(()) => {}
                Err(e) => {
                    tracing::error!(error = %e, "indexing audit records failed");
                    let failure = match &e {
                        citadel_store::StoreError::Unavailable(reason) => {
                            RecordFailure::StoreUnavailable(reason.clone())
                        }
                        e => RecordFailure::Failed(format!("indexing audit records: {e}")),
                    };
                    for err in &mut errors {
                        err.get_or_insert_with(|| failure.clone());
                    }
                }
            }
        }
        for ((_, ack), err) in records.into_iter().zip(errors) {
            let _ = ack.send(match err {
                None => Ok(()),
                Some(e) => Err(e),
            });
        }
    }

    /// Appends records to the current file of `account`/`region` (not yet durable: see
    /// [`Writer::sync`]).
    fn append<'r>(
        &mut self,
        hour: OffsetDateTime,
        account: &str,
        region: &str,
        records: impl Iterator<Item = &'r [u8]>,
    ) -> Result<()> {
        let key = (account.to_owned(), region.to_owned());
        if !self.chains()?.contains_key(&key) {
            let head =
                self.handle
                    .block_on(digest::start_chain(&self.store, account, region, hour))?;
            self.chains()?.insert(key.clone(), head);
        }
        if self.open.get(&key).is_some_and(|f| f.hour != hour) {
            self.finish_before(hour);
        }
        if !self.open.contains_key(&key) {
            let file = self.create_file(account, region, hour)?;
            self.open.insert(key.clone(), file);
        }
        let f = self
            .open
            .get_mut(&key)
            .ok_or_else(|| AuditError::Invalid("no open audit log file".into()))?;
        let mut buf = Vec::new();
        for r in records {
            if f.records > 0 || !buf.is_empty() {
                buf.push(b',');
            }
            buf.extend_from_slice(r);
            buf.push(b'\n');
        }
        let count = buf.iter().filter(|b| **b == b'\n').count();
        let result = f
            .file
            .write_all(&buf)
            .map_err(AuditError::io("appending to", &f.path));
        if result.is_err() {
            // The file's tail is unknown now: drop it (repaired at the next start) and let the
            // next batch start a new one.
            self.open.remove(&key);
        } else {
            f.records += count;
        }
        result
    }

    /// Makes what [`Writer::append`] wrote to the file of `account`/`region` durable.
    fn sync(&mut self, account: &str, region: &str) -> Result<()> {
        let key = (account.to_owned(), region.to_owned());
        let f = self
            .open
            .get_mut(&key)
            .ok_or_else(|| AuditError::Invalid("no open audit log file".into()))?;
        let result = f
            .file
            .sync_data()
            .map_err(AuditError::io("appending to", &f.path));
        if result.is_err() {
            // Which lines reached the disk is unknown: as for a failed write.
            self.open.remove(&key);
        }
        result
    }

    fn create_file(&self, account: &str, region: &str, hour: OffsetDateTime) -> Result<OpenFile> {
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let rel = layout::log_path(account, region, hour, &unique[..16]);
        let path = self.dir.join(&rel);
        let dir = path
            .parent()
            .ok_or_else(|| AuditError::Invalid("a log path has no parent".into()))?;
        std::fs::create_dir_all(dir).map_err(AuditError::io("creating", dir))?;
        let mut file = std::fs::OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .map_err(AuditError::io("creating", &path))?;
        file.write_all(HEADER)
            .and_then(|()| file.sync_all())
            .map_err(AuditError::io("writing", &path))?;
        sync_dir(dir)?;
        Ok(OpenFile {
            hour,
            path,
            file,
            records: 0,
        })
    }
}

/// Closes a log file left unfinished: cut after its last complete line, then `]}`.
fn finish_file(path: &Path) -> Result<()> {
    if ends_with_footer(path)? {
        return Ok(());
    }
    let content = std::fs::read(path).map_err(AuditError::io("reading", path))?;
    let keep = content
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |i| i + 1)
        .max(HEADER.len().min(content.len()));
    let mut fixed = content.get(..keep).unwrap_or(&content).to_vec();
    if !fixed.starts_with(HEADER) {
        fixed = HEADER.to_vec();
    }
    fixed.extend_from_slice(FOOTER);
    tracing::warn!(path = %path.display(), "repairing an audit log file left unfinished by a crash");
    digest::write_durably(path, &fixed)
}

/// Whether the file ends with the footer (read from its tail only: most files are finished).
fn ends_with_footer(path: &Path) -> Result<bool> {
    use std::io::{Read as _, Seek as _, SeekFrom};
    let mut f = File::open(path).map_err(AuditError::io("opening", path))?;
    let len = f.metadata().map_err(AuditError::io("reading", path))?.len();
    let footer_len = FOOTER.len() as u64;
    if len < footer_len {
        return Ok(false);
    }
    let mut tail = vec![0; FOOTER.len()];
    f.seek(SeekFrom::Start(len - footer_len))
        .and_then(|_| f.read_exact(&mut tail))
        .map_err(AuditError::io("reading", path))?;
    Ok(tail == FOOTER)
}

/// Every file under `root`, at most `depth` directories down.
pub(crate) fn walk_files(root: &Path, depth: usize) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(root) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(AuditError::io("listing", root)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(AuditError::io("listing", root))?;
        let kind = entry
            .file_type()
            .map_err(AuditError::io("reading", entry.path()))?;
        if kind.is_dir() {
            if depth > 0 {
                out.extend(walk_files(&entry.path(), depth - 1)?);
            }
        } else if kind.is_file() {
            out.push(entry.path());
        }
    }
    out.sort();
    Ok(out)
}
