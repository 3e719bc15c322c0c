//! The stored form of IAM entities and where they live in the store.
//!
//! Layout (every value sealed by the barrier; `{u}`/`{g}`/`{r}`/`{p}` are lower-cased names,
//! since IAM names are unique regardless of case):
//!
//! ```text
//! iam/account/{acct}/user/{u}                 UserRecord (inline policies, attachments,
//!                                              groups and access key ids embedded)
//! iam/account/{acct}/group/{g}                GroupRecord (member count embedded)
//! iam/account/{acct}/group-member/{g}/{u}     MemberRecord (GetGroup lists these)
//! iam/account/{acct}/role/{r}                 RoleRecord
//! iam/account/{acct}/policy/{p}               PolicyRecord (all versions embedded)
//! iam/account/{acct}/instance-profile/{i}     InstanceProfileRecord (its role embedded; the
//!                                              role lists its profiles in turn)
//! iam/access-key/{AKID}                       the access key (credentials.rs)
//! iam/access-key-last-used/{AKID}             LastUsedRecord (written lazily)
//! ```
//!
//! A parent record counts its dependents (a group its members, a policy its attachments), and
//! every change to a dependent rewrites the parent under compare-and-swap in the same batch:
//! a deletion that saw "no dependents" therefore cannot race with a new one.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{EntityKind, Tag};

pub(crate) fn entity_prefix(account_id: &str, kind: EntityKind) -> String {
    format!("iam/account/{account_id}/{}/", kind.arn_type())
}

pub(crate) fn entity_path(account_id: &str, kind: EntityKind, name_key: &str) -> String {
    format!("iam/account/{account_id}/{}/{name_key}", kind.arn_type())
}

pub(crate) fn policy_prefix(account_id: &str) -> String {
    format!("iam/account/{account_id}/policy/")
}

pub(crate) fn policy_path(account_id: &str, name_key: &str) -> String {
    format!("iam/account/{account_id}/policy/{name_key}")
}

pub(crate) fn instance_profile_prefix(account_id: &str) -> String {
    format!("iam/account/{account_id}/instance-profile/")
}

pub(crate) fn instance_profile_path(account_id: &str, name_key: &str) -> String {
    format!("iam/account/{account_id}/instance-profile/{name_key}")
}

pub(crate) fn member_prefix(account_id: &str, group_key: &str) -> String {
    format!("iam/account/{account_id}/group-member/{group_key}/")
}

pub(crate) fn member_path(account_id: &str, group_key: &str, user_key: &str) -> String {
    format!("iam/account/{account_id}/group-member/{group_key}/{user_key}")
}

pub(crate) fn last_used_path(access_key_id: &str) -> String {
    format!("iam/access-key-last-used/{access_key_id}")
}

/// What users, groups and roles have in common: identity, path, and the policies they carry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct EntityCore {
    pub name: String,
    pub id: String,
    pub path: String,
    /// Seconds since the Unix epoch.
    pub created: i64,
    /// Inline policies by name, each the document as submitted.
    #[serde(default)]
    pub inline: BTreeMap<String, String>,
    /// Attached customer managed policies, by ARN, in attachment order.
    #[serde(default)]
    pub attached: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct UserRecord {
    #[serde(flatten)]
    pub core: EntityCore,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub boundary: Option<String>,
    /// Lower-cased names of the groups the user belongs to.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Ids of the user's access keys.
    #[serde(default)]
    pub access_keys: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GroupRecord {
    #[serde(flatten)]
    pub core: EntityCore,
    #[serde(default)]
    pub member_count: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RoleRecord {
    #[serde(flatten)]
    pub core: EntityCore,
    pub trust_policy: String,
    #[serde(default)]
    pub description: Option<String>,
    pub max_session_duration: i32,
    #[serde(default)]
    pub tags: Vec<Tag>,
    #[serde(default)]
    pub boundary: Option<String>,
    #[serde(default)]
    pub last_used: Option<(i64, String)>,
    /// Lower-cased names of the instance profiles the role is in.
    #[serde(default)]
    pub instance_profiles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct InstanceProfileRecord {
    pub name: String,
    pub id: String,
    pub path: String,
    pub created: i64,
    #[serde(default)]
    pub tags: Vec<Tag>,
    /// Lower-cased names of the roles in the profile (AWS allows one).
    #[serde(default)]
    pub roles: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MemberRecord {
    /// Lower-cased user name.
    pub user: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct VersionRecord {
    pub number: u32,
    pub document: String,
    pub created: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct PolicyRecord {
    pub name: String,
    pub id: String,
    pub path: String,
    pub created: i64,
    pub updated: i64,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub tags: Vec<Tag>,
    pub default_version: u32,
    /// Version numbers are never reused: the next one is one past the highest ever created.
    pub next_version: u32,
    pub versions: Vec<VersionRecord>,
    #[serde(default)]
    pub attachment_count: u32,
    #[serde(default)]
    pub boundary_count: u32,
}

impl PolicyRecord {
    pub fn default_version(&self) -> Option<&VersionRecord> {
        self.versions
            .iter()
            .find(|v| v.number == self.default_version)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LastUsedRecord {
    pub at: i64,
    pub service: String,
    pub region: String,
}
