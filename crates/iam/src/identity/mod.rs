//! IAM entities in the sealed store: users, groups, roles, managed policies (with versions),
//! inline policies, attachments, user access keys and instance profiles, per account.
//!
//! Everything here is a method of [`crate::IdentityStore`], which owns the caches the request
//! path reads (credentials, and the policies of each principal) and invalidates them on every
//! change it makes. Every write is one atomic batch guarded by compare-and-swap on the records
//! it read, retried on conflict, so nothing is ever half-written and concurrent writers cannot
//! lose each other's changes.

use std::sync::Arc;

use crate::policy::Policy;

mod details;
mod names;
mod profiles;
pub(crate) mod records;
mod repo;

pub use names::{
    MANAGED_POLICY_MAX, PolicyArn, PolicyDocumentKind, TRUST_POLICY_MAX, entity_arn,
    inline_aggregate_max, is_name_char, max_name_len, name_from_principal_arn, name_key,
    parse_policy_arn, policy_arn, policy_size, validate_entity_name,
    validate_instance_profile_name, validate_path, validate_policy_document, validate_policy_name,
    validate_policy_path, validate_tags,
};
pub use profiles::{
    INSTANCE_PROFILES_PER_ACCOUNT, ROLES_PER_INSTANCE_PROFILE, instance_profile_arn,
};
pub use repo::{
    ACCESS_KEYS_PER_USER, GROUPS_PER_USER, LAST_USED_WRITE_INTERVAL, MAX_POLICY_VERSIONS,
    POLICIES_PER_ENTITY,
};

/// The three kinds of IAM entity that carry policies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntityKind {
    User,
    Group,
    Role,
}

impl EntityKind {
    /// The resource type in ARNs (`user`, `group`, `role`).
    pub fn arn_type(self) -> &'static str {
        match self {
            EntityKind::User => "user",
            EntityKind::Group => "group",
            EntityKind::Role => "role",
        }
    }

    /// How AWS's messages name the entity (`user`, `group`, `role`).
    pub fn noun(self) -> &'static str {
        self.arn_type()
    }

    /// Capitalized, as in "User with name alice already exists."
    pub fn title(self) -> &'static str {
        match self {
            EntityKind::User => "User",
            EntityKind::Group => "Group",
            EntityKind::Role => "Role",
        }
    }
}

/// A tag on a user, role or policy.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

/// Where a policy document that applies to a principal comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicySource {
    /// An inline policy embedded in the user, group or role `owner_arn`.
    Inline {
        owner: EntityKind,
        owner_arn: String,
        policy_name: String,
    },
    /// The default version of the customer managed policy `policy_arn`, attached to the user,
    /// group or role `attached_to_arn` (or set as its permissions boundary).
    Managed {
        policy_arn: String,
        version_id: String,
        attached_to: EntityKind,
        attached_to_arn: String,
    },
}

/// Everything the authorizer needs to know about a principal's own policies, loaded, parsed and
/// cached together, so no request parses a document. Empty for account roots, which are not
/// governed by identity policies.
///
/// A stored document that no longer parses (stored by an older, laxer version) is logged with
/// its source and left out: it grants nothing. A boundary that no longer parses is kept as a
/// boundary that allows nothing, so it still narrows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PrincipalPolicies {
    /// Identity-based policies: for a user its inline policies, its attached managed policies'
    /// default versions, and the inline and attached policies of each of its groups; for a
    /// role (and sessions of it) the role's inline and attached policies.
    pub identity: Vec<Arc<Policy>>,
    /// Where each of [`identity`](Self::identity) comes from (same order and length).
    pub sources: Vec<PolicySource>,
    /// The permissions boundary's default version, if the user or role has one.
    pub boundary: Option<(PolicySource, Arc<Policy>)>,
    /// The user's or role's tags (`aws:PrincipalTag/…`).
    pub tags: Vec<Tag>,
}

/// One page of a listing; `marker` is set (and the listing truncated) when more remain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub marker: Option<String>,
}

impl<T> Page<T> {
    pub fn is_truncated(&self) -> bool {
        self.marker.is_some()
    }
}

/// Where a listing starts and how much it returns (`Marker` / `MaxItems`, default 100).
#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub marker: Option<String>,
    pub max_items: Option<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    /// Seconds since the Unix epoch.
    pub created: i64,
    pub tags: Vec<Tag>,
    pub permissions_boundary: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupInfo {
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleLastUsed {
    pub at: i64,
    pub region: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleInfo {
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    pub created: i64,
    /// The trust policy as submitted.
    pub assume_role_policy: String,
    pub description: Option<String>,
    pub max_session_duration: i32,
    pub tags: Vec<Tag>,
    pub permissions_boundary: Option<String>,
    pub last_used: Option<RoleLastUsed>,
}

/// What `CreateRole` takes.
#[derive(Debug, Clone, Default)]
pub struct NewRole {
    pub name: String,
    pub path: Option<String>,
    pub assume_role_policy: String,
    pub description: Option<String>,
    pub max_session_duration: Option<i32>,
    pub permissions_boundary: Option<String>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagedPolicyInfo {
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    pub default_version_id: String,
    pub attachment_count: u32,
    pub permissions_boundary_usage_count: u32,
    pub description: Option<String>,
    pub created: i64,
    pub updated: i64,
    pub tags: Vec<Tag>,
}

/// What `CreatePolicy` takes.
#[derive(Debug, Clone, Default)]
pub struct NewPolicy {
    pub name: String,
    pub path: Option<String>,
    pub document: String,
    pub description: Option<String>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyVersionInfo {
    pub version_id: String,
    /// The document as submitted; `None` in listings that do not return it.
    pub document: Option<String>,
    pub is_default: bool,
    pub created: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachedPolicyInfo {
    pub name: String,
    pub arn: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlinePolicy {
    /// The entity's name as stored (its case may differ from the request's).
    pub entity_name: String,
    pub policy_name: String,
    pub document: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyInfo {
    pub user_name: String,
    pub access_key_id: String,
    pub active: bool,
    pub created: i64,
}

/// A freshly created user access key; the secret is shown to its owner once and never again.
pub struct NewUserAccessKey {
    pub user_name: String,
    pub access_key_id: String,
    pub secret_access_key: secrecy::SecretString,
    pub created: i64,
}

impl std::fmt::Debug for NewUserAccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NewUserAccessKey")
            .field("user_name", &self.user_name)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"**redacted**")
            .field("created", &self.created)
            .finish()
    }
}

/// When and where an access key was last used to sign a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyLastUsed {
    pub at: i64,
    /// The service the request went to (`iam`, `kms`, `sts`, …).
    pub service: String,
    pub region: String,
}

/// `GetAccessKeyLastUsed`: the key's owner (absent for root keys) and its last use, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKeyUsage {
    pub user_name: Option<String>,
    pub last_used: Option<KeyLastUsed>,
}

/// An instance profile and the role in it (AWS allows at most one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InstanceProfileInfo {
    pub name: String,
    pub id: String,
    pub path: String,
    pub arn: String,
    pub created: i64,
    pub tags: Vec<Tag>,
    pub roles: Vec<RoleInfo>,
}

/// How `ListEntitiesForPolicy` and `ListPolicies` narrow a policy's uses (`PolicyUsageFilter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PolicyUsage {
    /// Attached as a permissions policy or set as a permissions boundary.
    #[default]
    Any,
    PermissionsPolicy,
    PermissionsBoundary,
}

impl PolicyUsage {
    /// The model's `PolicyUsageType` value, or `Any` without one.
    pub fn from_filter(filter: Option<&str>) -> Self {
        match filter {
            Some("PermissionsPolicy") => PolicyUsage::PermissionsPolicy,
            Some("PermissionsBoundary") => PolicyUsage::PermissionsBoundary,
            _ => PolicyUsage::Any,
        }
    }
}

/// A user, group or role that uses a managed policy (`ListEntitiesForPolicy`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyEntity {
    pub kind: EntityKind,
    pub name: String,
    pub id: String,
}

/// What `GetAccountAuthorizationDetails` reports (its `Filter`; without one, everything).
/// Citadel has no AWS managed policies, so `AWSManagedPolicy` adds nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetailFilter {
    pub users: bool,
    pub groups: bool,
    pub roles: bool,
    pub local_policies: bool,
}

impl DetailFilter {
    pub const ALL: DetailFilter = DetailFilter {
        users: true,
        groups: true,
        roles: true,
        local_policies: true,
    };
}

/// An inline policy of an entity: its name and the document as submitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedDocument {
    pub name: String,
    pub document: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDetail {
    pub user: UserInfo,
    pub inline: Vec<NamedDocument>,
    /// The names of the user's groups.
    pub groups: Vec<String>,
    pub attached: Vec<AttachedPolicyInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupDetail {
    pub group: GroupInfo,
    pub inline: Vec<NamedDocument>,
    pub attached: Vec<AttachedPolicyInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleDetail {
    pub role: RoleInfo,
    pub inline: Vec<NamedDocument>,
    pub attached: Vec<AttachedPolicyInfo>,
    pub instance_profiles: Vec<InstanceProfileInfo>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDetail {
    pub policy: ManagedPolicyInfo,
    /// Every version with its document, newest first.
    pub versions: Vec<PolicyVersionInfo>,
}

/// One page of `GetAccountAuthorizationDetails`: users, then groups, then roles, then
/// policies, continued by `marker`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizationDetails {
    pub users: Vec<UserDetail>,
    pub groups: Vec<GroupDetail>,
    pub roles: Vec<RoleDetail>,
    pub policies: Vec<PolicyDetail>,
    pub marker: Option<String>,
}
