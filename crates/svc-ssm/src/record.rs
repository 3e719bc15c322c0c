//! What Parameter Store keeps in the sealed store, and where.
//!
//! Per (account, region):
//! - `ssm/<account>/<region>/p/<resource>` — a [`ParamRecord`]: the parameter's metadata, its
//!   latest version (value included), its labels and the versions kept. `<resource>` is the
//!   name without its leading slash, so the keys of a hierarchy are one ordered range and
//!   GetParametersByPath pages through `p/<path>/` without touching anything else.
//! - `ssm/<account>/<region>/v/<resource>#<version, 10 digits>` — a [`VersionRecord`] per kept
//!   version (the latest too), for selectors and GetParameterHistory. `#` cannot occur in a
//!   name, so one parameter's versions never interleave with another's.
//! - `ssm/<account>/<region>/counts` — [`Counts`] of parameters per tier (the tier quotas).
//! - `ssm/<account>/<region>/settings` — the Parameter Store service settings.
//!
//! Across accounts: `ssm/due/<unix ms, 20 digits>/<account>/<region>/<resource>` — a [`Due`]
//! entry per parameter with an Expiration policy, and `…/<resource>#<kind>` per pending
//! ExpirationNotification / NoChangeNotification, so the scheduler reads only what is due.
//! - `ssm/shared/<grantee>/<region>/<owner>/<resource>` — a [`Shared`] entry per account a
//!   parameter's resource policies name, written and deleted with the policies.
//!
//! Every change to a parameter writes its records, its count and its due entry in one atomic
//! batch under compare-and-swap: nothing is ever half-written.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::names;

/// A stored value: plain text for String/StringList (the barrier encrypts it at rest), a KMS
/// ciphertext for SecureString.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
#[serde(tag = "kind")]
pub enum StoredValue {
    Plain {
        text: String,
    },
    /// `kms:Encrypt` of the value under the parameter's key (values up to 4096 bytes).
    Kms {
        /// Base64 of the KMS ciphertext blob.
        blob: String,
    },
    /// Envelope encryption for larger (Advanced-tier) values: a data key from
    /// `kms:GenerateDataKey` seals the value with AES-256-GCM (AAD = the parameter ARN).
    Envelope {
        /// Base64 of the encrypted data key (a KMS ciphertext blob).
        key: String,
        /// Base64 of `nonce ‖ ciphertext ‖ tag`.
        sealed: String,
    },
}

impl fmt::Debug for StoredValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StoredValue::Plain { .. } => "Plain(<redacted>)",
            StoredValue::Kms { .. } => "Kms(<redacted>)",
            StoredValue::Envelope { .. } => "Envelope(<redacted>)",
        })
    }
}

/// One parameter policy as the caller wrote it (re-serialized compactly) and its type.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredPolicy {
    pub text: String,
    pub policy_type: String,
}

/// The attributes every version carries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct VersionRecord {
    pub version: u64,
    pub param_type: String,
    pub tier: String,
    pub data_type: String,
    pub description: Option<String>,
    pub allowed_pattern: Option<String>,
    /// The KeyId the caller gave (or `alias/aws/ssm`), for SecureString.
    pub key_id: Option<String>,
    pub policies: Vec<StoredPolicy>,
    pub modified_ms: i64,
    pub modified_user: String,
    pub value: StoredValue,
}

/// A parameter: its name as created, the latest version, labels, tags and what is kept.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ParamRecord {
    pub name: String,
    pub latest: VersionRecord,
    /// label → version.
    pub labels: BTreeMap<String, u64>,
    /// Versions kept, ascending (at most 100).
    pub versions: Vec<u64>,
    /// Tags in the order they were added.
    pub tags: Vec<(String, String)>,
    /// When the Expiration policy deletes the parameter (unix ms).
    pub expires_ms: Option<i64>,
    /// The notification due entries this parameter holds (each mirrors one `ssm/due/` key).
    #[serde(default)]
    pub notifications: Vec<Scheduled>,
    /// Notification policies that fired in the current period (their status is `Finished`).
    #[serde(default)]
    pub notified: Vec<DueKind>,
    /// When the current policies were written (unix ms): notification events cite it.
    #[serde(default)]
    pub policies_ms: Option<i64>,
    /// Resource policies sharing the parameter with other accounts.
    #[serde(default)]
    pub resource_policies: Vec<ResourcePolicy>,
}

/// What a due entry asks the scheduler to do.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub enum DueKind {
    /// Delete the parameter.
    #[default]
    Expiration,
    /// Tell the event bus the parameter expires soon.
    ExpirationNotification,
    /// Tell the event bus the parameter has not changed for a while.
    NoChangeNotification,
}

impl DueKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DueKind::Expiration => "Expiration",
            DueKind::ExpirationNotification => "ExpirationNotification",
            DueKind::NoChangeNotification => "NoChangeNotification",
        }
    }
}

/// A notification the scheduler owes a parameter, and when.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Scheduled {
    pub kind: DueKind,
    pub at_ms: i64,
}

impl ParamRecord {
    pub fn labels_of(&self, version: u64) -> Vec<String> {
        self.labels
            .iter()
            .filter(|(_, v)| **v == version)
            .map(|(l, _)| l.clone())
            .collect()
    }
}

/// Parameters per tier in one account and region.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Counts {
    pub standard: u64,
    pub advanced: u64,
}

/// An expiration the scheduler must carry out.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Due {
    pub account: String,
    pub region: String,
    pub name: String,
    pub at_ms: i64,
    /// Entries written before notifications existed are expirations.
    #[serde(default)]
    pub kind: DueKind,
}

/// A service setting the account changed from its default.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct SettingValue {
    pub value: String,
    pub modified_ms: i64,
    pub modified_user: String,
}

/// The Parameter Store service settings of one account and region (absent = default).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct Settings {
    pub high_throughput: Option<SettingValue>,
    pub default_tier: Option<SettingValue>,
}

pub fn scope(account: &str, region: &str) -> String {
    format!("ssm/{account}/{region}/")
}

pub fn params_prefix(account: &str, region: &str) -> String {
    format!("ssm/{account}/{region}/p/")
}

pub fn param_key(account: &str, region: &str, name: &str) -> String {
    format!(
        "{}{}",
        params_prefix(account, region),
        names::resource(name)
    )
}

pub fn versions_prefix(account: &str, region: &str, name: &str) -> String {
    format!("ssm/{account}/{region}/v/{}#", names::resource(name))
}

pub fn version_key(account: &str, region: &str, name: &str, version: u64) -> String {
    format!("{}{version:010}", versions_prefix(account, region, name))
}

pub fn counts_key(account: &str, region: &str) -> String {
    format!("{}counts", scope(account, region))
}

pub fn settings_key(account: &str, region: &str) -> String {
    format!("{}settings", scope(account, region))
}

pub const DUE_PREFIX: &str = "ssm/due/";

pub fn due_key(at_ms: i64, account: &str, region: &str, name: &str) -> String {
    format!(
        "{DUE_PREFIX}{:020}/{account}/{region}/{}",
        at_ms.max(0),
        names::resource(name)
    )
}

/// One resource policy attached to a parameter (PutResourcePolicy).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct ResourcePolicy {
    pub id: String,
    /// SHA-256 of the policy text, hex: the optimistic-concurrency token (`PolicyHash`).
    pub hash: String,
    pub text: String,
}

/// `ssm/shared/<grantee account>/<region>/<owner>/<resource>`: the parameter is shared with the
/// grantee by a resource policy (DescribeParameters `Shared=true` reads this range).
pub fn shared_prefix(grantee: &str, region: &str) -> String {
    format!("ssm/shared/{grantee}/{region}/")
}

pub fn shared_key(grantee: &str, region: &str, owner: &str, name: &str) -> String {
    format!(
        "{}{owner}/{}",
        shared_prefix(grantee, region),
        names::resource(name)
    )
}

/// A share entry: whose parameter.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Shared {
    pub owner: String,
    pub name: String,
}

/// The due key of a notification: the expiration's key with `#<kind>` appended (`#` never
/// occurs in a name), so a parameter's entries of different kinds never collide.
pub fn notification_due_key(s: &Scheduled, account: &str, region: &str, name: &str) -> String {
    format!(
        "{}#{}",
        due_key(s.at_ms, account, region, name),
        s.kind.as_str()
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_order_a_hierarchy_as_one_range() {
        let a = param_key("111122223333", "us-east-1", "/dev/app/x");
        assert_eq!(a, "ssm/111122223333/us-east-1/p/dev/app/x");
        assert_eq!(
            param_key("111122223333", "us-east-1", "x"),
            param_key("111122223333", "us-east-1", "/x")
        );
        let v9 = version_key("1", "r", "/a", 9);
        let v10 = version_key("1", "r", "/a", 10);
        assert!(v9 < v10);
        assert!(version_key("1", "r", "/a", 100) < version_key("1", "r", "/a-b", 1));
        assert!(due_key(5, "1", "r", "/a") < due_key(10, "1", "r", "/a"));
    }

    #[test]
    fn values_do_not_show_in_debug() {
        let v = StoredValue::Plain {
            text: "hunter2".into(),
        };
        assert!(!format!("{v:?}").contains("hunter2"));
    }
}
