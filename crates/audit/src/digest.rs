//! Hourly digest files, exactly as CloudTrail's log file integrity validation defines them:
//! the SHA-256 of every log file of the hour, the previous digest's location, hash and
//! signature (a hash chain), and a SHA256withRSA signature over
//! `digestEndTime \n bucket/object \n hex(sha256(digest)) \n previousSignature` kept in the
//! `<digest>.sig` sidecar (hex), where CloudTrail uses S3 object metadata.
//!
//! A chain runs per account and region. It starts (all `previous*` fields `null`) with the
//! hour of the first log file, and then has a digest for every hour, with `logFiles: []` for
//! hours without logs, so a missing digest always breaks the chain. Chain heads live in the
//! sealed store; a restart resumes the chain and catches up the hours it missed.

use std::io::Write as _;
use std::path::Path;

use citadel_store::{Expect, SealedStore};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{AuditError, Result};
use crate::layout::{self, BUCKET, SIGNATURE_SUFFIX};
use crate::record::format_time;
use crate::signer::Signer;

pub const SIGNATURE_ALGORITHM: &str = "SHA256withRSA";
pub const HASH_ALGORITHM: &str = "SHA-256";
const CHAIN_PREFIX: &str = "audit/chain/";

/// A digest file. Field names and order are CloudTrail's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Digest {
    pub aws_account_id: String,
    pub digest_start_time: String,
    pub digest_end_time: String,
    #[serde(rename = "digestS3Bucket")]
    pub digest_s3_bucket: String,
    #[serde(rename = "digestS3Object")]
    pub digest_s3_object: String,
    pub digest_public_key_fingerprint: String,
    pub digest_signature_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
    #[serde(rename = "previousDigestS3Bucket")]
    pub previous_digest_s3_bucket: Option<String>,
    #[serde(rename = "previousDigestS3Object")]
    pub previous_digest_s3_object: Option<String>,
    pub previous_digest_hash_value: Option<String>,
    pub previous_digest_hash_algorithm: Option<String>,
    pub previous_digest_signature: Option<String>,
    pub log_files: Vec<LogFileEntry>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogFileEntry {
    #[serde(rename = "s3Bucket")]
    pub s3_bucket: String,
    #[serde(rename = "s3Object")]
    pub s3_object: String,
    pub hash_value: String,
    pub hash_algorithm: String,
    pub newest_event_time: Option<String>,
    pub oldest_event_time: Option<String>,
}

/// The string CloudTrail signs for a digest (`previousDigestSignature` `null` → `"null"`).
pub fn string_to_sign(
    end_time: &str,
    bucket: &str,
    object: &str,
    digest_hash_hex: &str,
    previous_signature: Option<&str>,
) -> String {
    format!(
        "{end_time}\n{bucket}/{object}\n{digest_hash_hex}\n{}",
        previous_signature.unwrap_or("null")
    )
}

/// Hex SHA-256.
pub fn sha256_hex(data: &[u8]) -> String {
    hex::encode(citadel_crypto::sha256(data))
}

/// The previous digest, as the next one records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Previous {
    pub object: String,
    pub hash: String,
    pub signature: String,
}

/// Where a chain stands: where the next digest's period starts and the last digest written.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChainHead {
    pub account: String,
    pub region: String,
    /// Unix seconds where the next digest's period starts: an hour boundary, or the end of a
    /// final digest written at shutdown.
    pub next_start: i64,
    pub previous: Option<Previous>,
    /// Log files of the hour containing `next_start` that an earlier (final) digest already
    /// lists.
    #[serde(default)]
    pub listed: Vec<String>,
}

fn chain_key(account: &str, region: &str) -> String {
    format!("{CHAIN_PREFIX}{account}/{region}")
}

/// Every chain head in the store.
pub async fn load_chains(store: &SealedStore) -> Result<Vec<ChainHead>> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list(CHAIN_PREFIX, after.as_deref(), 200).await?;
        let done = page.len() < 200;
        for (key, record) in &page {
            out.push(serde_json::from_slice::<ChainHead>(&record.value)?);
            after = Some(key.clone());
        }
        if done {
            return Ok(out);
        }
    }
}

/// Starts a chain at `hour` unless one exists; returns the chain as stored.
pub async fn start_chain(
    store: &SealedStore,
    account: &str,
    region: &str,
    hour: OffsetDateTime,
) -> Result<ChainHead> {
    let head = ChainHead {
        account: account.to_owned(),
        region: region.to_owned(),
        next_start: hour.unix_timestamp(),
        previous: None,
        listed: Vec::new(),
    };
    match store
        .put_json(&chain_key(account, region), &head, Expect::Absent)
        .await
    {
        Ok(_) => Ok(head),
        Err(citadel_store::StoreError::Conflict { .. }) => store
            .get_json(&chain_key(account, region))
            .await?
            .ok_or_else(|| AuditError::Invalid("a digest chain head vanished".to_owned())),
        Err(e) => Err(e.into()),
    }
}

/// Writes `bytes` to `path` durably: a temporary file, fsync, rename, fsync of the directory.
pub fn write_durably(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path
        .parent()
        .ok_or_else(|| AuditError::Invalid(format!("{} has no parent", path.display())))?;
    std::fs::create_dir_all(dir).map_err(AuditError::io("creating", dir))?;
    let tmp = path.with_extension("tmp");
    {
        let mut f = std::fs::File::create(&tmp).map_err(AuditError::io("creating", &tmp))?;
        f.write_all(bytes)
            .map_err(AuditError::io("writing", &tmp))?;
        f.sync_all().map_err(AuditError::io("syncing", &tmp))?;
    }
    std::fs::rename(&tmp, path).map_err(AuditError::io("renaming", path))?;
    sync_dir(dir)
}

/// fsync of a directory, so a new entry in it survives a crash.
pub fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(AuditError::io("syncing", dir))
}

/// The oldest and newest `eventTime` of a log file's records.
fn event_time_range(content: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(Deserialize)]
    struct Times {
        #[serde(rename = "Records")]
        records: Vec<OneTime>,
    }
    #[derive(Deserialize)]
    struct OneTime {
        #[serde(rename = "eventTime")]
        event_time: String,
    }
    match serde_json::from_slice::<Times>(content) {
        Ok(t) => (
            t.records.iter().map(|r| r.event_time.clone()).min(),
            t.records.iter().map(|r| r.event_time.clone()).max(),
        ),
        Err(_) => (None, None),
    }
}

/// The finished log files of one account, region and hour: relative paths, sorted.
pub fn log_files_of_hour(
    audit_dir: &Path,
    account: &str,
    region: &str,
    hour: OffsetDateTime,
) -> Result<Vec<String>> {
    let rel_dir = layout::log_dir(account, region, hour);
    let dir = audit_dir.join(&rel_dir);
    let prefix = layout::log_prefix(account, region, hour);
    let mut out = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(AuditError::io("listing", &dir)(e)),
    };
    for entry in entries {
        let entry = entry.map_err(AuditError::io("listing", &dir))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with(&prefix) && name.ends_with(".json") {
            out.push(format!("{rel_dir}/{name}"));
        }
    }
    out.sort();
    Ok(out)
}

/// Writes the digest of the period from `chain.next_start` to the end of its hour, or to
/// `until` if that comes first (a final digest at shutdown), and advances the chain (in memory
/// and in the store). Idempotent: a digest rewritten after a crash is byte-identical.
pub async fn write_next_digest(
    store: &SealedStore,
    audit_dir: &Path,
    signer: &Signer,
    chain: &mut ChainHead,
    until: OffsetDateTime,
) -> Result<String> {
    let start = OffsetDateTime::from_unix_timestamp(chain.next_start)
        .map_err(|_| AuditError::Invalid("a digest chain head has an invalid time".to_owned()))?;
    let hour = crate::clock::hour_start(start);
    let end = (hour + time::Duration::HOUR).min(until);
    let object = layout::digest_path(&chain.account, &chain.region, end);
    let mut log_files = Vec::new();
    let mut listed = chain.listed.clone();
    for rel in log_files_of_hour(audit_dir, &chain.account, &chain.region, hour)? {
        if chain.listed.contains(&rel) {
            continue;
        }
        listed.push(rel.clone());
        let path = audit_dir.join(&rel);
        let content = std::fs::read(&path).map_err(AuditError::io("reading", &path))?;
        let (oldest, newest) = event_time_range(&content);
        log_files.push(LogFileEntry {
            s3_bucket: BUCKET.to_owned(),
            s3_object: rel,
            hash_value: sha256_hex(&content),
            hash_algorithm: HASH_ALGORITHM.to_owned(),
            newest_event_time: newest,
            oldest_event_time: oldest,
        });
    }
    let previous = chain.previous.clone();
    let digest = Digest {
        aws_account_id: chain.account.clone(),
        digest_start_time: format_time(start),
        digest_end_time: format_time(end),
        digest_s3_bucket: BUCKET.to_owned(),
        digest_s3_object: object.clone(),
        digest_public_key_fingerprint: signer.fingerprint.clone(),
        digest_signature_algorithm: SIGNATURE_ALGORITHM.to_owned(),
        newest_event_time: log_files
            .iter()
            .filter_map(|l| l.newest_event_time.clone())
            .max(),
        oldest_event_time: log_files
            .iter()
            .filter_map(|l| l.oldest_event_time.clone())
            .min(),
        previous_digest_s3_bucket: previous.as_ref().map(|_| BUCKET.to_owned()),
        previous_digest_s3_object: previous.as_ref().map(|p| p.object.clone()),
        previous_digest_hash_value: previous.as_ref().map(|p| p.hash.clone()),
        previous_digest_hash_algorithm: previous.as_ref().map(|_| HASH_ALGORITHM.to_owned()),
        previous_digest_signature: previous.as_ref().map(|p| p.signature.clone()),
        log_files,
    };
    let bytes = serde_json::to_vec(&digest)?;
    let hash = sha256_hex(&bytes);
    let to_sign = string_to_sign(
        &digest.digest_end_time,
        BUCKET,
        &object,
        &hash,
        digest.previous_digest_signature.as_deref(),
    );
    let signature = hex::encode(signer.sign(to_sign.as_bytes())?);
    let path = audit_dir.join(&object);
    write_durably(&path, &bytes)?;
    let sig_path = audit_dir.join(format!("{object}{SIGNATURE_SUFFIX}"));
    write_durably(&sig_path, signature.as_bytes())?;
    let next = ChainHead {
        account: chain.account.clone(),
        region: chain.region.clone(),
        next_start: end.unix_timestamp(),
        previous: Some(Previous {
            object: object.clone(),
            hash,
            signature,
        }),
        // A new hour starts with nothing listed.
        listed: if end == crate::clock::hour_start(end) {
            Vec::new()
        } else {
            listed
        },
    };
    store
        .put_json(
            &chain_key(&chain.account, &chain.region),
            &next,
            Expect::Any,
        )
        .await?;
    *chain = next;
    Ok(object)
}
