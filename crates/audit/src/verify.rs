//! Offline verification of the trail, like `aws cloudtrail validate-logs`: needs only the
//! audit directory and the exported public keys (no unsealing).
//!
//! For every digest whose hour overlaps the requested range it checks: the digest parses and
//! names its own location; its signature sidecar exists; the signing key is known; the
//! SHA256withRSA signature holds; the previous digest it names exists and still has the hash
//! and signature recorded; every log file it lists exists and has the recorded hash. It also
//! reports digests no later digest chains to and log files of digested hours that no digest
//! lists (inserted files). Messages follow the AWS CLI:
//! `Log file\t<path>\tINVALID: hash value doesn't match`.
//!
//! What cannot be detected offline, as with CloudTrail: removing the newest digest (and its
//! hour's log files) together, since nothing after it refers to it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use crate::digest::{Digest, sha256_hex, string_to_sign};
use crate::error::Result;
use crate::layout::{BUCKET, SIGNATURE_SUFFIX};
use crate::record::{format_time, parse_time};
use crate::signer::{self, exported_public_keys};
use crate::writer::walk_files;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Log,
    Digest,
}

/// One problem with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub kind: FileKind,
    /// The file's path on disk.
    pub path: PathBuf,
    /// What is wrong, after `INVALID: `.
    pub problem: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FileKind::Log => "Log file",
            FileKind::Digest => "Digest file",
        };
        write!(
            f,
            "{kind}\t{}\tINVALID: {}",
            self.path.display(),
            self.problem
        )
    }
}

/// The outcome of [`verify`].
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub digests_valid: usize,
    pub digests_invalid: usize,
    pub logs_valid: usize,
    pub logs_invalid: usize,
    pub findings: Vec<Finding>,
    /// The period the digests found cover.
    pub found: Option<(OffsetDateTime, OffsetDateTime)>,
}

impl Report {
    pub fn is_valid(&self) -> bool {
        self.findings.is_empty()
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for finding in &self.findings {
            writeln!(f, "{finding}\n")?;
        }
        let show = |t: Option<OffsetDateTime>, default: &str| {
            t.map_or_else(|| default.to_owned(), format_time)
        };
        writeln!(
            f,
            "Results requested for {} to {}",
            show(self.from, "the beginning"),
            show(self.to, "now")
        )?;
        if self.digests_valid + self.digests_invalid == 0 {
            return writeln!(f, "No digests found");
        }
        match self.found {
            Some((start, end)) => writeln!(
                f,
                "Results found for {} to {}:",
                format_time(start),
                format_time(end)
            )?,
            None => writeln!(f, "No valid digests found in range")?,
        }
        for (valid, invalid, name) in [
            (self.digests_valid, self.digests_invalid, "digest"),
            (self.logs_valid, self.logs_invalid, "log"),
        ] {
            let total = valid + invalid;
            if total > 0 {
                write!(f, "\n{valid}/{total} {name} files valid")?;
                if invalid > 0 {
                    write!(f, ", {invalid}/{total} {name} files INVALID")?;
                }
            }
        }
        writeln!(f)
    }
}

/// A digest file found on disk.
struct Found {
    rel: String,
    end: OffsetDateTime,
}

/// `…_YYYYMMDDTHHMMSSZ.json` → the time.
fn stamp_time(name: &str) -> Option<OffsetDateTime> {
    let stem = name.strip_suffix(".json")?;
    let stamp = stem.rsplit('_').next()?;
    let b = stamp.as_bytes();
    if b.len() != 16 || b.get(8) != Some(&b'T') || b.get(15) != Some(&b'Z') {
        return None;
    }
    let num = |r: std::ops::Range<usize>| stamp.get(r)?.parse::<u32>().ok();
    let date = time::Date::from_calendar_date(
        i32::try_from(num(0..4)?).ok()?,
        time::Month::try_from(u8::try_from(num(4..6)?).ok()?).ok()?,
        u8::try_from(num(6..8)?).ok()?,
    )
    .ok()?;
    let t = time::Time::from_hms(
        u8::try_from(num(9..11)?).ok()?,
        u8::try_from(num(11..13)?).ok()?,
        u8::try_from(num(13..15)?).ok()?,
    )
    .ok()?;
    Some(date.with_time(t).assume_utc())
}

/// `…_YYYYMMDDTHH00Z_<rand>.json` → the hour.
fn log_hour(name: &str) -> Option<OffsetDateTime> {
    let stem = name.strip_suffix(".json")?;
    let mut parts = stem.rsplit('_');
    parts.next()?;
    let stamp = parts.next()?;
    // YYYYMMDDTHH00Z → YYYYMMDDTHH0000Z
    let full = format!("x_{}00Z.json", stamp.strip_suffix('Z')?);
    stamp_time(&full)
}

/// `AWSLogs/<acct>/<kind>/<region>/…` → (acct, kind, region).
fn chain_of(rel: &str) -> Option<(String, String, String)> {
    let mut parts = rel.split('/');
    if parts.next()? != "AWSLogs" {
        return None;
    }
    let account = parts.next()?.to_owned();
    let kind = parts.next()?.to_owned();
    let region = parts.next()?.to_owned();
    Some((account, kind, region))
}

struct Verifier<'a> {
    dir: &'a Path,
    keys: HashMap<String, Vec<u8>>,
    report: Report,
    /// Paths already reported invalid (each file counts once).
    invalid: BTreeSet<String>,
}

impl Verifier<'_> {
    fn invalid(&mut self, kind: FileKind, rel: &str, problem: impl Into<String>) {
        let first = self.invalid.insert(rel.to_owned());
        if first {
            match kind {
                FileKind::Log => self.report.logs_invalid += 1,
                FileKind::Digest => self.report.digests_invalid += 1,
            }
        }
        self.report.findings.push(Finding {
            kind,
            path: self.dir.join(rel),
            problem: problem.into(),
        });
    }

    /// Checks one digest on its own (format, location, signature); returns it when valid.
    fn check_digest(&mut self, rel: &str) -> Option<(Digest, Vec<u8>, String)> {
        let path = self.dir.join(rel);
        let Ok(bytes) = std::fs::read(&path) else {
            self.invalid(FileKind::Digest, rel, "not found");
            return None;
        };
        let Ok(digest) = serde_json::from_slice::<Digest>(&bytes) else {
            self.invalid(FileKind::Digest, rel, "invalid format");
            return None;
        };
        if digest.digest_s3_bucket != BUCKET || digest.digest_s3_object != rel {
            self.invalid(
                FileKind::Digest,
                rel,
                "has been moved from its original location",
            );
            return None;
        }
        let sig_path = self.dir.join(format!("{rel}{SIGNATURE_SUFFIX}"));
        let signature = match std::fs::read_to_string(&sig_path) {
            Ok(s) => s.trim().to_owned(),
            Err(_) => {
                self.invalid(FileKind::Digest, rel, "signature file not found");
                return None;
            }
        };
        let Some(key) = self.keys.get(&digest.digest_public_key_fingerprint) else {
            let fp = digest.digest_public_key_fingerprint.clone();
            self.invalid(
                FileKind::Digest,
                rel,
                format!("public key not found for fingerprint {fp}"),
            );
            return None;
        };
        let to_sign = string_to_sign(
            &digest.digest_end_time,
            &digest.digest_s3_bucket,
            &digest.digest_s3_object,
            &sha256_hex(&bytes),
            digest.previous_digest_signature.as_deref(),
        );
        let verified = hex::decode(&signature)
            .ok()
            .is_some_and(|sig| signer::verify(key, to_sign.as_bytes(), &sig));
        if !verified {
            self.invalid(FileKind::Digest, rel, "signature verification failed");
            return None;
        }
        Some((digest, bytes, signature))
    }
}

/// Verifies the trail under `audit_dir` for digests whose hour overlaps `[from, to]`.
/// `public_keys` are `(fingerprint, PKCS #1 DER)`; `None` reads the exported ones.
pub fn verify(
    audit_dir: &Path,
    public_keys: Option<Vec<(String, Vec<u8>)>>,
    from: Option<OffsetDateTime>,
    to: Option<OffsetDateTime>,
) -> Result<Report> {
    let keys = match public_keys {
        Some(k) => k,
        None => exported_public_keys(audit_dir)?,
    };
    let mut v = Verifier {
        dir: audit_dir,
        keys: keys.into_iter().collect(),
        report: Report {
            from,
            to,
            ..Report::default()
        },
        invalid: BTreeSet::new(),
    };
    // (account, region) → digests by end time; → log files by hour.
    let mut digests: BTreeMap<(String, String), Vec<Found>> = BTreeMap::new();
    let mut logs: BTreeMap<(String, String), Vec<(OffsetDateTime, String)>> = BTreeMap::new();
    for path in walk_files(&audit_dir.join("AWSLogs"), 6)? {
        let Ok(rel) = path.strip_prefix(audit_dir) else {
            continue;
        };
        let rel = rel.to_string_lossy().replace('\\', "/");
        let Some((account, kind, region)) = chain_of(&rel) else {
            continue;
        };
        let name = rel.rsplit('/').next().unwrap_or_default();
        match kind.as_str() {
            "CloudTrail-Digest" => {
                if let Some(end) = stamp_time(name) {
                    digests
                        .entry((account, region))
                        .or_default()
                        .push(Found { rel, end });
                }
            }
            "CloudTrail" => {
                if let Some(hour) = log_hour(name) {
                    logs.entry((account, region)).or_default().push((hour, rel));
                }
            }
            _ => {}
        }
    }
    let in_range = |start: OffsetDateTime, end: OffsetDateTime| {
        from.is_none_or(|f| end > f) && to.is_none_or(|t| start < t)
    };

    for (chain, mut found) in digests {
        found.sort_by_key(|d| d.end);
        let newest_end = found.last().map(|d| d.end);
        // digest → the digest its successor (by time) names as previous, when the successor
        // parses; a digest whose successor is missing is reported through that absence.
        let mut successor_names: HashMap<String, Option<String>> = HashMap::new();
        let mut listed: BTreeSet<String> = BTreeSet::new();
        // Newest first, as the AWS CLI walks the chain.
        for d in found.iter().rev() {
            // Collect chain and listing facts from every digest that parses, in range or not.
            let parsed = std::fs::read(audit_dir.join(&d.rel))
                .ok()
                .and_then(|b| serde_json::from_slice::<Digest>(&b).ok());
            let start = parsed
                .as_ref()
                .and_then(|p| parse_time(&p.digest_start_time))
                .unwrap_or(d.end - time::Duration::HOUR);
            if let Some(p) = &parsed {
                if let Some(before) = found.iter().find(|o| o.end == start) {
                    successor_names.insert(before.rel.clone(), p.previous_digest_s3_object.clone());
                }
                listed.extend(p.log_files.iter().map(|l| l.s3_object.clone()));
            }
            if !in_range(start, d.end) {
                continue;
            }
            let Some((digest, _bytes, _sig)) = v.check_digest(&d.rel) else {
                continue;
            };
            v.report.digests_valid += 1;
            let digest_start = parse_time(&digest.digest_start_time).unwrap_or(start);
            v.report.found = Some(match v.report.found {
                None => (digest_start, d.end),
                Some((s, e)) => (s.min(digest_start), e.max(d.end)),
            });
            // The chain: the previous digest must exist with the recorded hash and signature.
            if let Some(prev) = &digest.previous_digest_s3_object {
                let prev_path = audit_dir.join(prev);
                match std::fs::read(&prev_path) {
                    Err(_) => v.invalid(FileKind::Digest, prev, "not found"),
                    Ok(prev_bytes) => {
                        if digest.previous_digest_hash_value.as_deref()
                            != Some(sha256_hex(&prev_bytes).as_str())
                        {
                            v.invalid(
                                FileKind::Digest,
                                prev,
                                "hash value doesn't match the next digest's previousDigestHashValue",
                            );
                        }
                        let prev_sig = std::fs::read_to_string(
                            audit_dir.join(format!("{prev}{SIGNATURE_SUFFIX}")),
                        )
                        .map(|s| s.trim().to_owned())
                        .ok();
                        if prev_sig.is_some()
                            && prev_sig.as_deref() != digest.previous_digest_signature.as_deref()
                        {
                            v.invalid(
                                FileKind::Digest,
                                prev,
                                "signature doesn't match the next digest's previousDigestSignature",
                            );
                        }
                    }
                }
            }
            for log in &digest.log_files {
                let path = audit_dir.join(&log.s3_object);
                match std::fs::read(&path) {
                    Err(_) => v.invalid(FileKind::Log, &log.s3_object, "not found"),
                    Ok(content) if sha256_hex(&content) != log.hash_value => {
                        v.invalid(FileKind::Log, &log.s3_object, "hash value doesn't match");
                    }
                    Ok(_) => v.report.logs_valid += 1,
                }
            }
        }
        // Digests no later digest chains to (inserted, or a chain restarted by hand).
        for d in &found {
            let start = d.end - time::Duration::HOUR;
            let named_by_successor = successor_names.get(&d.rel);
            if Some(d.end) != newest_end
                && in_range(start, d.end)
                && named_by_successor.is_some_and(|name| name.as_deref() != Some(d.rel.as_str()))
                && !v.invalid.contains(&d.rel)
            {
                v.invalid(
                    FileKind::Digest,
                    &d.rel,
                    "not part of the digest chain: no later digest refers to it",
                );
            }
        }
        // Log files of digested hours that no digest lists.
        if let (Some(newest_end), Some(files)) = (newest_end, logs.get(&chain)) {
            for (hour, rel) in files {
                let end = *hour + time::Duration::HOUR;
                if end <= newest_end && in_range(*hour, end) && !listed.contains(rel) {
                    v.invalid(
                        FileKind::Log,
                        rel,
                        "not listed in any digest (inserted after the hour was digested)",
                    );
                }
            }
        }
    }
    // Log files of an account and region that has no digest at all are not digested yet (the
    // first hour of a chain): nothing to check them against.
    Ok(v.report)
}
