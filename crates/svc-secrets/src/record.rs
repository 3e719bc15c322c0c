//! What Secrets Manager keeps in the sealed store, and where.
//!
//! ```text
//! secretsmanager/<account>/<region>/secret/<name>            SecretRecord (JSON; no secret value)
//! secretsmanager/<account>/<region>/value/<uid>/<version-id> ValueRecord (JSON; KMS-encrypted value)
//! secretsmanager/due/<epoch-ms, 20 digits>/<d|r>/<account>/<region>/<name>   schedule index entry
//! ```
//!
//! The secret record holds everything about a secret except its values: metadata, the resource
//! policy, rotation state and every version's staging labels. Staging-label changes therefore
//! are one compare-and-swap on one record, which is what keeps "a label is on at most one
//! version" true under concurrency. Values live in write-once records under the secret's `uid`
//! (a UUID minted at creation), so a secret re-created under the same name never sees the old
//! one's values. The schedule index lists purges (`d`) and rotations (`r`, scheduled or to be
//! resumed) by due time; every change of a secret record rewrites its index entries in the same
//! atomic batch.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub const AWSCURRENT: &str = "AWSCURRENT";
pub const AWSPREVIOUS: &str = "AWSPREVIOUS";
pub const AWSPENDING: &str = "AWSPENDING";

/// What ListSecretVersionIds reports as the key of versions under `aws/secretsmanager`.
pub const DEFAULT_KEY_MARKER: &str = "DefaultEncryptionKey";
pub const DEFAULT_KEY_ALIAS: &str = "alias/aws/secretsmanager";

pub fn secret_path(account: &str, region: &str, name: &str) -> String {
    format!("secretsmanager/{account}/{region}/secret/{name}")
}

pub fn secrets_prefix(account: &str, region: &str) -> String {
    format!("secretsmanager/{account}/{region}/secret/")
}

pub fn value_path(account: &str, region: &str, uid: &str, version_id: &str) -> String {
    format!("secretsmanager/{account}/{region}/value/{uid}/{version_id}")
}

pub const DUE_PREFIX: &str = "secretsmanager/due/";

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum DueKind {
    /// The recovery window ended: purge the secret.
    Purge,
    /// A rotation is due (scheduled), or in progress and must be resumed if no task runs it.
    Rotation,
}

impl DueKind {
    fn tag(self) -> &'static str {
        match self {
            DueKind::Purge => "d",
            DueKind::Rotation => "r",
        }
    }
}

/// An entry of the schedule index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DueEntry {
    pub at_ms: i64,
    pub kind: DueKind,
    pub account: String,
    pub region: String,
    pub name: String,
}

impl DueEntry {
    /// Zero-padded so that the store's byte order is time order. The name goes last: it may
    /// contain `/`.
    pub fn path(&self) -> String {
        format!(
            "{DUE_PREFIX}{:020}/{}/{}/{}/{}",
            self.at_ms.max(0),
            self.kind.tag(),
            self.account,
            self.region,
            self.name
        )
    }

    pub fn parse(path: &str) -> Option<DueEntry> {
        let rest = path.strip_prefix(DUE_PREFIX)?;
        let mut parts = rest.splitn(5, '/');
        let at_ms = parts.next()?.parse().ok()?;
        let kind = match parts.next()? {
            "d" => DueKind::Purge,
            "r" => DueKind::Rotation,
            _ => return None,
        };
        Some(DueEntry {
            at_ms,
            kind,
            account: parts.next()?.to_owned(),
            region: parts.next()?.to_owned(),
            name: parts.next()?.to_owned(),
        })
    }
}

/// One version of a secret, without its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VersionMeta {
    /// Staging labels, in the order they were attached.
    pub stages: Vec<String>,
    pub created_ms: i64,
    /// Midnight UTC of the last day the value was read.
    #[serde(default)]
    pub last_accessed_ms: Option<i64>,
    /// The KeyId the value was encrypted under as ListSecretVersionIds reports it
    /// (`DefaultEncryptionKey` for `aws/secretsmanager`); `None` for the rotation placeholder.
    #[serde(default)]
    pub kms_key_ids: Vec<String>,
    /// False only for the AWSPENDING placeholder RotateSecret creates before step one.
    pub has_value: bool,
    /// HMAC-SHA256 under `salt` of the value (with its kind), hex: idempotent retries compare
    /// against it in constant time without asking KMS to decrypt.
    #[serde(default)]
    pub fingerprint: Option<String>,
    #[serde(default)]
    pub salt: Option<String>,
}

/// A value as stored: encrypted with a data key from KMS (envelope encryption).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValueRecord {
    /// The ARN of the KMS key that made `data_key`.
    pub key_arn: String,
    /// The data key, encrypted by KMS under `key_arn` with the version's encryption context
    /// (base64).
    pub data_key: String,
    /// `nonce ‖ AES-256-GCM ciphertext ‖ tag` of the value under the data key (base64).
    pub sealed: String,
    /// `SecretBinary` rather than `SecretString`.
    pub binary: bool,
}

impl std::fmt::Debug for ValueRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ValueRecord")
            .field("key_arn", &self.key_arn)
            .field("binary", &self.binary)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRecord {
    pub key: String,
    pub value: String,
}

/// The rotation rules as given (returned by DescribeSecret as given).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RulesRecord {
    pub automatically_after_days: Option<i64>,
    pub schedule_expression: Option<String>,
    pub duration: Option<String>,
}

/// The four steps of the rotation protocol, in order.
pub const STEPS: [&str; 4] = ["createSecret", "setSecret", "testSecret", "finishSecret"];

/// A rotation that has started and not finished. Persisted before each step runs, so a
/// restart resumes it at the step it was at (steps are idempotent by protocol).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InProgress {
    /// The new version's id (the `ClientRequestToken` of the Lambda event).
    pub token: String,
    /// Index into [`STEPS`] of the next step to run.
    pub next_step: usize,
    /// Only `testSecret`, then remove the placeholder (RotateImmediately = false).
    pub test_only: bool,
    pub started_ms: i64,
    /// The rotator (RotationLambdaARN) this rotation runs with.
    pub lambda_arn: String,
    /// Attempts made after restarts (bounded, so a rotator that crashes the server loop stops).
    #[serde(default)]
    pub resumes: u32,
}

/// The last rotation that failed: shown by DescribeSecret (as `CitadelLastRotationFailure`,
/// a member AWS does not have) and in the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationFailure {
    pub at_ms: i64,
    pub token: String,
    pub step: String,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationState {
    pub enabled: bool,
    /// Set by the first RotateSecret (DescribeSecret shows rotation members only from then on).
    pub configured: bool,
    pub lambda_arn: Option<String>,
    pub rules: Option<RulesRecord>,
    pub last_rotated_ms: Option<i64>,
    /// When the next scheduled rotation is due, while enabled.
    pub next_ms: Option<i64>,
    pub in_progress: Option<InProgress>,
    pub last_failure: Option<RotationFailure>,
}

/// A secret as stored. Holds no value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretRecord {
    /// Internal identity (UUID), naming the value records.
    pub uid: String,
    pub account: String,
    pub region: String,
    pub name: String,
    /// The six random characters that end the ARN.
    pub suffix: String,
    pub description: Option<String>,
    /// The KmsKeyId as the caller gave it; `None` for `aws/secretsmanager`.
    pub kms_key_id: Option<String>,
    pub tags: Vec<TagRecord>,
    #[serde(default)]
    pub secret_type: Option<String>,
    pub created_ms: i64,
    pub last_changed_ms: i64,
    pub last_accessed_ms: Option<i64>,
    /// When DeleteSecret was called (DescribeSecret's `DeletedDate`).
    pub deleted_ms: Option<i64>,
    /// When the recovery window ends and the secret is purged.
    pub purge_ms: Option<i64>,
    pub policy: Option<String>,
    pub versions: BTreeMap<String, VersionMeta>,
    pub rotation: RotationState,
    /// On a replica: the Region of its primary. A replica is a read-only copy that the primary's
    /// writes keep in step (see [`crate::replication`]).
    #[serde(default)]
    pub primary_region: Option<String>,
    /// On a primary: its replicas, with their replication status.
    #[serde(default)]
    pub replicas: Vec<ReplicaState>,
}

/// Replication status values (AWS's `StatusType`).
pub const IN_SYNC: &str = "InSync";
pub const FAILED: &str = "Failed";
pub const IN_PROGRESS: &str = "InProgress";

/// One replica of a primary secret, as the primary records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaState {
    pub region: String,
    /// The KmsKeyId as given for that Region; `None` for its `aws/secretsmanager`.
    pub kms_key_id: Option<String>,
    /// `InSync`, `Failed` (or `InProgress` before the first synchronization is computed).
    pub status: String,
    pub status_message: Option<String>,
}

impl SecretRecord {
    pub fn arn(&self) -> String {
        secret_arn(&self.region, &self.account, &self.name, &self.suffix)
    }

    pub fn path(&self) -> String {
        secret_path(&self.account, &self.region, &self.name)
    }

    pub fn is_deleted(&self) -> bool {
        self.deleted_ms.is_some()
    }

    pub fn is_replica(&self) -> bool {
        self.primary_region.is_some()
    }

    /// The Region DescribeSecret and the `primary-region` filter show: the primary's for a
    /// replica, its own for a primary with replicas, none for a secret that is not replicated.
    pub fn shown_primary_region(&self) -> Option<&str> {
        match &self.primary_region {
            Some(p) => Some(p),
            None if !self.replicas.is_empty() => Some(&self.region),
            None => None,
        }
    }

    /// The version holding `stage`.
    pub fn version_with(&self, stage: &str) -> Option<&str> {
        self.versions
            .iter()
            .find(|(_, v)| v.stages.iter().any(|s| s == stage))
            .map(|(id, _)| id.as_str())
    }

    /// The schedule entries this record must have in the index.
    pub fn due_entries(&self) -> BTreeSet<DueEntry> {
        let entry = |at_ms, kind| DueEntry {
            at_ms,
            kind,
            account: self.account.clone(),
            region: self.region.clone(),
            name: self.name.clone(),
        };
        let mut out = BTreeSet::new();
        // A replica has no schedule of its own: its primary's rotations and deletion reach it
        // through replication.
        if self.is_replica() {
            return out;
        }
        if let Some(at) = self.purge_ms {
            out.insert(entry(at, DueKind::Purge));
        }
        if let Some(p) = &self.rotation.in_progress {
            // A rotation interrupted by deletion resumes after RestoreSecret.
            if !self.is_deleted() {
                out.insert(entry(p.started_ms, DueKind::Rotation));
            }
        } else if self.rotation.enabled
            && !self.is_deleted()
            && let Some(at) = self.rotation.next_ms
        {
            out.insert(entry(at, DueKind::Rotation));
        }
        out
    }

    /// Attaches every label of `stages` to `version_id`, taking each off the version that had
    /// it. When AWSCURRENT moves, AWSPREVIOUS follows to the version AWSCURRENT left.
    pub fn attach(&mut self, version_id: &str, stages: &[String]) {
        for stage in stages {
            let from = self.version_with(stage).map(str::to_owned);
            if from.as_deref() == Some(version_id) {
                continue;
            }
            if let Some(from) = &from
                && let Some(v) = self.versions.get_mut(from)
            {
                v.stages.retain(|s| s != stage);
            }
            if let Some(v) = self.versions.get_mut(version_id)
                && !v.stages.iter().any(|s| s == stage)
            {
                v.stages.push(stage.clone());
            }
            if stage == AWSCURRENT
                && let Some(from) = from
            {
                self.attach(&from, &[AWSPREVIOUS.to_owned()]);
            }
        }
    }

    /// Takes `stage` off `version_id`.
    pub fn detach(&mut self, version_id: &str, stage: &str) {
        if let Some(v) = self.versions.get_mut(version_id) {
            v.stages.retain(|s| s != stage);
        }
    }

    /// Removes versions without labels beyond AWS's limit: "Secrets Manager removes unlabeled
    /// versions when there are more than 100, but it does not remove versions created less
    /// than 24 hours ago". Returns the removed ids (their values must be deleted too).
    pub fn prune(&mut self, now_ms: i64) -> Vec<String> {
        const MAX_VERSIONS: usize = 100;
        let mut removed = Vec::new();
        if self.versions.len() <= MAX_VERSIONS {
            return removed;
        }
        let mut candidates: Vec<(i64, String)> = self
            .versions
            .iter()
            .filter(|(_, v)| {
                v.stages.is_empty() && now_ms - v.created_ms >= crate::clock::MILLIS_PER_DAY
            })
            .map(|(id, v)| (v.created_ms, id.clone()))
            .collect();
        candidates.sort();
        for (_, id) in candidates {
            if self.versions.len() <= MAX_VERSIONS {
                break;
            }
            self.versions.remove(&id);
            removed.push(id);
        }
        removed
    }
}

pub fn secret_arn(region: &str, account: &str, name: &str, suffix: &str) -> String {
    format!("arn:aws:secretsmanager:{region}:{account}:secret:{name}-{suffix}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> SecretRecord {
        SecretRecord {
            uid: "u".into(),
            account: "111122223333".into(),
            region: "us-east-1".into(),
            name: "a/b".into(),
            suffix: "AbCdEf".into(),
            description: None,
            kms_key_id: None,
            tags: vec![],
            secret_type: None,
            created_ms: 0,
            last_changed_ms: 0,
            last_accessed_ms: None,
            deleted_ms: None,
            purge_ms: None,
            policy: None,
            versions: BTreeMap::new(),
            rotation: RotationState::default(),
            primary_region: None,
            replicas: vec![],
        }
    }

    fn version(created_ms: i64) -> VersionMeta {
        VersionMeta {
            stages: vec![],
            created_ms,
            last_accessed_ms: None,
            kms_key_ids: vec![],
            has_value: true,
            fingerprint: None,
            salt: None,
        }
    }

    #[test]
    fn due_entries_sort_by_time_and_parse_back_with_slashes_in_names() {
        let e = |at_ms| DueEntry {
            at_ms,
            kind: DueKind::Purge,
            account: "111122223333".into(),
            region: "us-east-1".into(),
            name: "team/app/db".into(),
        };
        let (a, b) = (e(999), e(1_000_000));
        assert!(a.path() < b.path());
        assert_eq!(DueEntry::parse(&a.path()).unwrap(), a);
        assert!(DueEntry::parse("secretsmanager/due/x/d/a/r/k").is_none());
        assert!(DueEntry::parse("secretsmanager/due/1/q/a/r/k").is_none());
    }

    #[test]
    fn current_moves_and_previous_follows() {
        let mut r = record();
        for id in ["v1", "v2", "v3"] {
            r.versions.insert(id.into(), version(0));
        }
        r.attach("v1", &[AWSCURRENT.into()]);
        r.attach("v2", &[AWSCURRENT.into()]);
        assert_eq!(r.version_with(AWSCURRENT), Some("v2"));
        assert_eq!(r.version_with(AWSPREVIOUS), Some("v1"));
        r.attach("v3", &[AWSCURRENT.into()]);
        assert_eq!(r.version_with(AWSPREVIOUS), Some("v2"));
        assert!(r.versions["v1"].stages.is_empty());
        // Rolling back: AWSCURRENT to the previous version; the old current becomes previous.
        r.attach("v2", &[AWSCURRENT.into()]);
        assert_eq!(r.versions["v2"].stages, vec![AWSCURRENT.to_owned()]);
        assert_eq!(r.versions["v3"].stages, vec![AWSPREVIOUS.to_owned()]);
        // A custom label moves, nothing follows.
        r.attach("v1", &["blue".into()]);
        r.attach("v3", &["blue".into()]);
        assert!(r.versions["v1"].stages.is_empty());
        assert_eq!(r.versions["v3"].stages.len(), 2);
    }

    #[test]
    fn pruning_keeps_labelled_and_young_versions() {
        let mut r = record();
        let day = crate::clock::MILLIS_PER_DAY;
        for i in 0..105 {
            r.versions.insert(format!("old{i:03}"), version(i));
        }
        r.versions.insert("cur".into(), version(0));
        r.attach("cur", &[AWSCURRENT.into()]);
        // Everything is younger than a day: nothing goes.
        assert!(r.prune(day - 1000).is_empty());
        let removed = r.prune(10 * day);
        assert_eq!(removed.len(), 6);
        assert_eq!(r.versions.len(), 100);
        assert!(r.versions.contains_key("cur"));
        assert!(!r.versions.contains_key("old000"));
    }
}
