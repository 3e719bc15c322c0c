//! The IAM repository: every operation on users, groups, roles, managed and inline policies,
//! attachments and user access keys, with AWS's errors, limits and quotas.
//!
//! Each write reads the records it depends on, then commits one atomic batch that
//! compare-and-swaps every one of them; a conflict (a concurrent writer got there first)
//! re-runs the whole operation from fresh reads.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use citadel_api::AwsError;
use citadel_store::{Expect, Op, StoreError, Versioned, put_json_op};
use secrecy::SecretString;
use serde::de::DeserializeOwned;

use super::names::{
    self, PolicyDocumentKind, inline_too_large, invalid_input, limit_exceeded, name_key,
    validate_entity_name, validate_path, validate_policy_document, validate_policy_name,
    validate_policy_path, validate_tags,
};
use super::records::{
    EntityCore, GroupRecord, LastUsedRecord, MemberRecord, PolicyRecord, RoleRecord, UserRecord,
    VersionRecord, entity_path, entity_prefix, last_used_path, member_path, member_prefix,
    policy_path, policy_prefix,
};
use super::{
    AccessKeyInfo, AccessKeyUsage, AttachedPolicyInfo, EntityKind, GroupInfo, InlinePolicy,
    KeyLastUsed, ManagedPolicyInfo, NewPolicy, NewRole, NewUserAccessKey, Page, PageRequest,
    PolicySource, PolicyVersionInfo, PrincipalPolicies, RoleInfo, Tag, UserInfo,
};
use crate::IdentityError;
use crate::credentials::{
    IdentityStore, KIND_USER, StoredAccessKey, access_key_path, now_secs, random_id, random_secret,
};
use crate::policy::{IdentityPolicyKind, Policy, PolicyKind};

/// Access keys one user may have.
pub const ACCESS_KEYS_PER_USER: usize = 2;
/// Groups one user may belong to.
pub const GROUPS_PER_USER: usize = 10;
/// Managed policies attached to one user, group or role.
pub const POLICIES_PER_ENTITY: usize = 10;
/// Versions one managed policy may have.
pub const MAX_POLICY_VERSIONS: usize = 5;
/// Tags on one user, role or policy.
pub(super) const TAGS_PER_RESOURCE: usize = 50;
pub(super) const USERS_PER_ACCOUNT: usize = 5000;
pub(super) const GROUPS_PER_ACCOUNT: usize = 300;
pub(super) const ROLES_PER_ACCOUNT: usize = 1000;
pub(super) const POLICIES_PER_ACCOUNT: usize = 1500;
/// A key's last use is persisted at most this often (per key and node).
pub const LAST_USED_WRITE_INTERVAL: Duration = Duration::from_secs(60);

const DEFAULT_MAX_SESSION: i32 = 3600;
const MAX_ATTEMPTS: usize = 16;
/// Store listings are read in pages of this many records.
const LIST_CHUNK: usize = 500;

// ------------------------------------------------------------------------------ errors

/// Why one attempt of an operation did not complete.
pub(super) enum TxError {
    /// A compare-and-swap failed: re-run from fresh reads.
    Conflict,
    Fail(AwsError),
}

impl From<AwsError> for TxError {
    fn from(e: AwsError) -> Self {
        TxError::Fail(e)
    }
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict { .. } => TxError::Conflict,
            other => TxError::Fail(store_failure(other)),
        }
    }
}

impl From<IdentityError> for TxError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::Store(s) => s.into(),
            other => {
                tracing::error!(error = %other, "identity store failure");
                TxError::Fail(service_failure())
            }
        }
    }
}

fn service_failure() -> AwsError {
    AwsError::new(
        500,
        "ServiceFailure",
        "The request processing has failed because of an unknown error, exception or failure.",
    )
}

fn store_failure(e: StoreError) -> AwsError {
    match e {
        StoreError::Sealed | StoreError::NotInitialized => AwsError::sealed(),
        StoreError::Unavailable(reason) => {
            tracing::warn!(%reason, "identity storage is unavailable");
            AwsError::storage_unavailable()
        }
        other => {
            tracing::error!(error = %other, "identity store failure");
            service_failure()
        }
    }
}

pub(super) fn no_such_entity(message: impl Into<String>) -> AwsError {
    AwsError::new(404, "NoSuchEntity", message)
}

pub(super) fn entity_not_found(kind: EntityKind, name: &str) -> AwsError {
    no_such_entity(format!(
        "The {} with name {name} cannot be found.",
        kind.noun()
    ))
}

pub(super) fn delete_conflict(message: impl Into<String>) -> AwsError {
    AwsError::new(409, "DeleteConflict", message)
}

pub(super) fn policy_not_attachable(arn: &str) -> AwsError {
    no_such_entity(format!("Policy {arn} does not exist or is not attachable."))
}

fn boundary_not_attachable(arn: &str) -> AwsError {
    no_such_entity(format!(
        "Scope ARN: {arn} does not exist or is not attachable."
    ))
}

fn access_key_not_found(access_key_id: &str) -> AwsError {
    no_such_entity(format!(
        "The Access Key with id {access_key_id} cannot be found."
    ))
}

/// A fresh unique id (`AIDA…`, `AGPA…`, `AROA…`, `ANPA…`: the prefix and 17 characters).
pub(super) fn unique_id(prefix: &str) -> Result<String, AwsError> {
    random_id(prefix, 17).map_err(|e| {
        tracing::error!(error = %e, "no secure randomness for a unique id");
        service_failure()
    })
}

fn validation_error(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ValidationError", message)
}

/// Runs one attempt after another until it completes or fails for a reason other than a
/// concurrent change.
pub(super) async fn retrying<T, F, Fut>(mut attempt: F) -> Result<T, AwsError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, TxError>>,
{
    for _ in 0..MAX_ATTEMPTS {
        match attempt().await {
            Ok(v) => return Ok(v),
            Err(TxError::Fail(e)) => return Err(e),
            Err(TxError::Conflict) => tokio::task::yield_now().await,
        }
    }
    Err(AwsError::new(
        409,
        "ConcurrentModification",
        "The request was rejected because multiple requests to change this object were submitted simultaneously. Wait a few minutes and submit your request again.",
    ))
}

/// Reads that never conflict still go through the same error mapping.
pub(super) async fn reading<T>(f: impl Future<Output = Result<T, TxError>>) -> Result<T, AwsError> {
    match f.await {
        Ok(v) => Ok(v),
        Err(TxError::Fail(e)) => Err(e),
        Err(TxError::Conflict) => Err(service_failure()),
    }
}

// ------------------------------------------------------------------------------ helpers

pub(super) fn paginate<T>(mut items: Vec<(String, T)>, page: &PageRequest) -> Page<T> {
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let max = usize::try_from(page.max_items.unwrap_or(100).clamp(1, 1000)).unwrap_or(100);
    let start = match &page.marker {
        Some(m) => items.partition_point(|(k, _)| k.as_str() < m.as_str()),
        None => 0,
    };
    let mut rest = items.into_iter().skip(start);
    let out: Vec<T> = rest.by_ref().take(max).map(|(_, v)| v).collect();
    let marker = rest.next().map(|(k, _)| k);
    Page { items: out, marker }
}

/// Sort keys that list the newest version first.
pub(super) fn version_sort_key(number: u32) -> String {
    format!("{:010}", u32::MAX - number)
}

pub(super) fn version_id(number: u32) -> String {
    format!("v{number}")
}

fn parse_version_id(id: &str) -> Option<u32> {
    id.strip_prefix('v')?.parse().ok().filter(|n| *n > 0)
}

pub(super) fn sorted_tags(tags: &[Tag]) -> Vec<(String, Tag)> {
    let mut sorted: Vec<Tag> = tags.to_vec();
    sorted.sort_by(|a, b| a.key.cmp(&b.key));
    sorted
        .into_iter()
        .enumerate()
        .map(|(i, t)| (format!("{i:04}"), t))
        .collect()
}

/// Adds or replaces tags (keys compare case-insensitively, as IAM's do).
pub(super) fn merge_tags(
    existing: &mut Vec<Tag>,
    new: &[Tag],
    quota: &str,
) -> Result<(), AwsError> {
    validate_tags(new)?;
    for tag in new {
        let lower = tag.key.to_lowercase();
        match existing.iter_mut().find(|t| t.key.to_lowercase() == lower) {
            Some(t) => *t = tag.clone(),
            None => existing.push(tag.clone()),
        }
    }
    if existing.len() > TAGS_PER_RESOURCE {
        return Err(limit_exceeded(format!(
            "Cannot exceed quota for {quota}: {TAGS_PER_RESOURCE}"
        )));
    }
    Ok(())
}

pub(super) fn remove_tags(existing: &mut Vec<Tag>, keys: &[String]) {
    let lower: Vec<String> = keys.iter().map(|k| k.to_lowercase()).collect();
    existing.retain(|t| !lower.contains(&t.key.to_lowercase()));
}

fn check_description(member: &str, description: Option<&str>) -> Result<(), AwsError> {
    if let Some(d) = description
        && d.encode_utf16().count() > 1000
    {
        return Err(validation_error(format!(
            "1 validation error detected: Value '{d}' at '{member}' failed to satisfy constraint: Member must have length less than or equal to 1000"
        )));
    }
    Ok(())
}

fn check_max_session(value: i32) -> Result<(), AwsError> {
    if !(3600..=43200).contains(&value) {
        return Err(validation_error(format!(
            "1 validation error detected: Value '{value}' at 'maxSessionDuration' failed to satisfy constraint: Member must have value {} 3600",
            if value < 3600 {
                "greater than or equal to"
            } else {
                "less than or equal to 43200, and greater than or equal to"
            }
        )));
    }
    Ok(())
}

pub(super) fn user_info(account_id: &str, u: &UserRecord) -> UserInfo {
    UserInfo {
        name: u.core.name.clone(),
        id: u.core.id.clone(),
        path: u.core.path.clone(),
        arn: names::entity_arn(account_id, EntityKind::User, &u.core.path, &u.core.name),
        created: u.core.created,
        tags: u.tags.clone(),
        permissions_boundary: u.boundary.clone(),
    }
}

pub(super) fn group_info(account_id: &str, g: &GroupRecord) -> GroupInfo {
    GroupInfo {
        name: g.core.name.clone(),
        id: g.core.id.clone(),
        path: g.core.path.clone(),
        arn: names::entity_arn(account_id, EntityKind::Group, &g.core.path, &g.core.name),
        created: g.core.created,
    }
}

pub(super) fn role_info(account_id: &str, r: &RoleRecord) -> RoleInfo {
    RoleInfo {
        name: r.core.name.clone(),
        id: r.core.id.clone(),
        path: r.core.path.clone(),
        arn: names::entity_arn(account_id, EntityKind::Role, &r.core.path, &r.core.name),
        created: r.core.created,
        assume_role_policy: r.trust_policy.clone(),
        description: r.description.clone(),
        max_session_duration: r.max_session_duration,
        tags: r.tags.clone(),
        permissions_boundary: r.boundary.clone(),
        last_used: r
            .last_used
            .as_ref()
            .map(|(at, region)| super::RoleLastUsed {
                at: *at,
                region: region.clone(),
            }),
    }
}

pub(super) fn policy_info(account_id: &str, p: &PolicyRecord) -> ManagedPolicyInfo {
    ManagedPolicyInfo {
        name: p.name.clone(),
        id: p.id.clone(),
        path: p.path.clone(),
        arn: names::policy_arn(account_id, &p.path, &p.name),
        default_version_id: version_id(p.default_version),
        attachment_count: p.attachment_count,
        permissions_boundary_usage_count: p.boundary_count,
        description: p.description.clone(),
        created: p.created,
        updated: p.updated,
        tags: p.tags.clone(),
    }
}

/// A user, group or role record, for the operations all three share.
enum AnyEntity {
    User(UserRecord),
    Group(GroupRecord),
    Role(RoleRecord),
}

impl AnyEntity {
    fn core(&self) -> &EntityCore {
        match self {
            AnyEntity::User(u) => &u.core,
            AnyEntity::Group(g) => &g.core,
            AnyEntity::Role(r) => &r.core,
        }
    }

    fn core_mut(&mut self) -> &mut EntityCore {
        match self {
            AnyEntity::User(u) => &mut u.core,
            AnyEntity::Group(g) => &mut g.core,
            AnyEntity::Role(r) => &mut r.core,
        }
    }

    fn put_op(&self, key: String, expect: Expect) -> Result<Op, StoreError> {
        match self {
            AnyEntity::User(u) => put_json_op(key, u, expect),
            AnyEntity::Group(g) => put_json_op(key, g, expect),
            AnyEntity::Role(r) => put_json_op(key, r, expect),
        }
    }
}

/// A managed policy found by ARN: its record, version and storage key.
pub(super) struct FoundPolicy {
    pub(super) record: PolicyRecord,
    pub(super) version: u64,
    pub(super) key: String,
}

/// A policy that allows no action (`NotAction: *`): what a permissions boundary that no longer
/// parses becomes, so that it keeps narrowing instead of vanishing.
const ALLOWS_NOTHING: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","NotAction":"*","Resource":"*"}]}"#;

/// Parses a stored document for the authorizer; one that does not parse is logged by its source
/// (never its content) and yields `None`.
fn parse_stored(source: &PolicySource, document: &str, kind: PolicyKind) -> Option<Arc<Policy>> {
    match Policy::parse(document, kind) {
        Ok(p) => Some(Arc::new(p)),
        Err(e) => {
            match source {
                PolicySource::Inline {
                    owner_arn,
                    policy_name,
                    ..
                } => {
                    tracing::error!(entity = %owner_arn, policy = %policy_name, error = %e, "a stored inline policy does not parse; it grants nothing")
                }
                PolicySource::Managed {
                    policy_arn,
                    version_id,
                    ..
                } => {
                    tracing::error!(policy = %policy_arn, version = %version_id, error = %e, "a stored managed policy version does not parse; it grants nothing")
                }
            }
            None
        }
    }
}

impl IdentityStore {
    // -------------------------------------------------------------------------- store access

    pub(super) async fn get_versioned<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<Versioned<T>>, TxError> {
        Ok(self.store.get_json_versioned::<T>(key).await?)
    }

    pub(super) async fn list_values<T: DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, TxError> {
        let mut out = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let chunk = self
                .store
                .list(prefix, after.as_deref(), LIST_CHUNK)
                .await?;
            let done = chunk.len() < LIST_CHUNK;
            after = chunk.last().map(|(k, _)| k.clone());
            for (key, record) in chunk {
                let value: T = serde_json::from_slice(&record.value).map_err(|e| {
                    TxError::from(StoreError::Decode {
                        key: key.clone(),
                        reason: format!("{:?} error", e.classify()),
                    })
                })?;
                let suffix = key.strip_prefix(prefix).unwrap_or(&key).to_owned();
                out.push((suffix, value));
            }
            if done {
                return Ok(out);
            }
        }
    }

    pub(super) async fn count_under(&self, prefix: &str, limit: usize) -> Result<usize, TxError> {
        Ok(self.store.list(prefix, None, limit).await?.len())
    }

    pub(super) async fn commit(&self, ops: Vec<Op>) -> Result<(), TxError> {
        self.store.batch(ops).await?;
        Ok(())
    }

    pub(super) async fn load_user(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<(Versioned<UserRecord>, String), TxError> {
        let key = entity_path(account_id, EntityKind::User, &name_key(name));
        match self.get_versioned::<UserRecord>(&key).await? {
            Some(v) => Ok((v, key)),
            None => Err(entity_not_found(EntityKind::User, name).into()),
        }
    }

    pub(super) async fn load_group(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<(Versioned<GroupRecord>, String), TxError> {
        let key = entity_path(account_id, EntityKind::Group, &name_key(name));
        match self.get_versioned::<GroupRecord>(&key).await? {
            Some(v) => Ok((v, key)),
            None => Err(entity_not_found(EntityKind::Group, name).into()),
        }
    }

    pub(super) async fn load_role(
        &self,
        account_id: &str,
        name: &str,
    ) -> Result<(Versioned<RoleRecord>, String), TxError> {
        let key = entity_path(account_id, EntityKind::Role, &name_key(name));
        match self.get_versioned::<RoleRecord>(&key).await? {
            Some(v) => Ok((v, key)),
            None => Err(entity_not_found(EntityKind::Role, name).into()),
        }
    }

    async fn load_entity(
        &self,
        account_id: &str,
        kind: EntityKind,
        name: &str,
    ) -> Result<(AnyEntity, u64, String), TxError> {
        Ok(match kind {
            EntityKind::User => {
                let (v, key) = self.load_user(account_id, name).await?;
                (AnyEntity::User(v.value), v.version, key)
            }
            EntityKind::Group => {
                let (v, key) = self.load_group(account_id, name).await?;
                (AnyEntity::Group(v.value), v.version, key)
            }
            EntityKind::Role => {
                let (v, key) = self.load_role(account_id, name).await?;
                (AnyEntity::Role(v.value), v.version, key)
            }
        })
    }

    /// Finds a customer managed policy of `account_id` by ARN; `not_found` builds the error for
    /// an ARN that names nothing attachable (AWS words it differently per operation).
    pub(super) async fn find_policy(
        &self,
        account_id: &str,
        arn: &str,
        not_found: fn(&str) -> AwsError,
    ) -> Result<FoundPolicy, TxError> {
        let Some(parsed) = names::parse_policy_arn(arn) else {
            return Err(invalid_input(format!("ARN {arn} is not valid.")).into());
        };
        if parsed.account != account_id {
            return Err(not_found(arn).into());
        }
        let key = policy_path(account_id, &name_key(&parsed.name));
        match self.get_versioned::<PolicyRecord>(&key).await? {
            Some(v) if v.value.path == parsed.path => Ok(FoundPolicy {
                record: v.value,
                version: v.version,
                key,
            }),
            _ => Err(not_found(arn).into()),
        }
    }

    // -------------------------------------------------------------------------- users

    pub async fn create_user(
        &self,
        account_id: &str,
        name: &str,
        path: Option<&str>,
        permissions_boundary: Option<&str>,
        tags: &[Tag],
    ) -> Result<UserInfo, AwsError> {
        validate_entity_name(EntityKind::User, "userName", name)?;
        let path = path.unwrap_or("/");
        validate_path("path", path)?;
        validate_tags(tags)?;
        let id = unique_id("AIDA")?;
        let info = retrying(|| {
            self.try_create_user(account_id, name, path, permissions_boundary, tags, &id)
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(info)
    }

    async fn try_create_user(
        &self,
        account_id: &str,
        name: &str,
        path: &str,
        boundary: Option<&str>,
        tags: &[Tag],
        id: &str,
    ) -> Result<UserInfo, TxError> {
        let key = entity_path(account_id, EntityKind::User, &name_key(name));
        if self.store.get(&key).await?.is_some() {
            return Err(AwsError::new(
                409,
                "EntityAlreadyExists",
                format!("User with name {name} already exists."),
            )
            .into());
        }
        if self
            .count_under(
                &entity_prefix(account_id, EntityKind::User),
                USERS_PER_ACCOUNT,
            )
            .await?
            >= USERS_PER_ACCOUNT
        {
            return Err(limit_exceeded(format!(
                "Cannot exceed quota for UsersPerAccount: {USERS_PER_ACCOUNT}"
            ))
            .into());
        }
        let mut ops = Vec::new();
        if let Some(arn) = boundary {
            let mut found = self
                .find_policy(account_id, arn, boundary_not_attachable)
                .await?;
            found.record.boundary_count = found.record.boundary_count.saturating_add(1);
            ops.push(put_json_op(
                found.key,
                &found.record,
                Expect::Version(found.version),
            )?);
        }
        let record = UserRecord {
            core: EntityCore {
                name: name.to_owned(),
                id: id.to_owned(),
                path: path.to_owned(),
                created: now_secs(),
                inline: BTreeMap::new(),
                attached: Vec::new(),
            },
            tags: tags.to_vec(),
            boundary: boundary.map(str::to_owned),
            groups: Vec::new(),
            access_keys: Vec::new(),
        };
        ops.push(put_json_op(key, &record, Expect::Absent)?);
        self.commit(ops).await?;
        Ok(user_info(account_id, &record))
    }

    pub async fn get_user(&self, account_id: &str, name: &str) -> Result<UserInfo, AwsError> {
        reading(async {
            let (v, _) = self.load_user(account_id, name).await?;
            Ok(user_info(account_id, &v.value))
        })
        .await
    }

    pub async fn list_users(
        &self,
        account_id: &str,
        path_prefix: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<UserInfo>, AwsError> {
        reading(async {
            let users = self
                .list_values::<UserRecord>(&entity_prefix(account_id, EntityKind::User))
                .await?;
            let items = users
                .into_iter()
                .filter(|(_, u)| path_prefix.is_none_or(|p| u.core.path.starts_with(p)))
                .map(|(k, u)| (k, user_info(account_id, &u)))
                .collect();
            Ok(paginate(items, page))
        })
        .await
    }

    /// Renames and/or moves a user. Its access keys, groups and policies follow it.
    pub async fn update_user(
        &self,
        account_id: &str,
        name: &str,
        new_path: Option<&str>,
        new_name: Option<&str>,
    ) -> Result<(), AwsError> {
        if let Some(p) = new_path {
            validate_path("newPath", p)?;
        }
        if let Some(n) = new_name {
            validate_entity_name(EntityKind::User, "newUserName", n)?;
        }
        let keys = retrying(|| self.try_update_user(account_id, name, new_path, new_name)).await?;
        self.invalidate_keys(&keys);
        Ok(())
    }

    async fn try_update_user(
        &self,
        account_id: &str,
        name: &str,
        new_path: Option<&str>,
        new_name: Option<&str>,
    ) -> Result<Vec<String>, TxError> {
        let (v, old_key) = self.load_user(account_id, name).await?;
        let mut user = v.value;
        if let Some(p) = new_path {
            p.clone_into(&mut user.core.path);
        }
        let mut ops = Vec::new();
        match new_name {
            Some(n) if name_key(n) != name_key(&user.core.name) => {
                let new_key = entity_path(account_id, EntityKind::User, &name_key(n));
                if self.store.get(&new_key).await?.is_some() {
                    return Err(AwsError::new(
                        409,
                        "EntityAlreadyExists",
                        format!("User with name {n} already exists."),
                    )
                    .into());
                }
                let old_user_key = name_key(&user.core.name);
                n.clone_into(&mut user.core.name);
                let new_user_key = name_key(n);
                ops.push(Op::delete(old_key, Expect::Version(v.version)));
                ops.push(put_json_op(new_key, &user, Expect::Absent)?);
                for group in &user.groups {
                    ops.push(Op::delete(
                        member_path(account_id, group, &old_user_key),
                        Expect::Any,
                    ));
                    ops.push(put_json_op(
                        member_path(account_id, group, &new_user_key),
                        &MemberRecord {
                            user: new_user_key.clone(),
                        },
                        Expect::Any,
                    )?);
                }
                for akid in &user.access_keys {
                    let path = access_key_path(akid);
                    if let Some(mut k) = self.get_versioned::<StoredAccessKey>(&path).await? {
                        k.value.user = Some(new_user_key.clone());
                        ops.push(put_json_op(path, &k.value, Expect::Version(k.version))?);
                    }
                }
            }
            Some(n) => {
                // Same name up to case: only its spelling changes.
                n.clone_into(&mut user.core.name);
                ops.push(put_json_op(old_key, &user, Expect::Version(v.version))?);
            }
            None => ops.push(put_json_op(old_key, &user, Expect::Version(v.version))?),
        }
        self.commit(ops).await?;
        Ok(user.access_keys)
    }

    /// Deletes a user that has no access keys, policies or group memberships left.
    pub async fn delete_user(&self, account_id: &str, name: &str) -> Result<(), AwsError> {
        retrying(|| self.try_delete_user(account_id, name)).await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    async fn try_delete_user(&self, account_id: &str, name: &str) -> Result<(), TxError> {
        let (v, key) = self.load_user(account_id, name).await?;
        let user = v.value;
        if !user.access_keys.is_empty() {
            return Err(
                delete_conflict("Cannot delete entity, must delete access keys first.").into(),
            );
        }
        if !user.core.inline.is_empty() {
            return Err(
                delete_conflict("Cannot delete entity, must delete policies first.").into(),
            );
        }
        if !user.core.attached.is_empty() {
            return Err(
                delete_conflict("Cannot delete entity, must detach all policies first.").into(),
            );
        }
        if !user.groups.is_empty() {
            return Err(delete_conflict(
                "Cannot delete entity, must remove users from group first.",
            )
            .into());
        }
        let mut ops = vec![Op::delete(key, Expect::Version(v.version))];
        ops.extend(
            self.boundary_release_op(account_id, user.boundary.as_deref())
                .await?,
        );
        self.commit(ops).await
    }

    /// The op that decrements the boundary usage count of the policy `arn`, if it still exists.
    async fn boundary_release_op(
        &self,
        account_id: &str,
        arn: Option<&str>,
    ) -> Result<Option<Op>, TxError> {
        let Some(arn) = arn else {
            return Ok(None);
        };
        match self
            .find_policy(account_id, arn, policy_not_attachable)
            .await
        {
            Ok(mut found) => {
                found.record.boundary_count = found.record.boundary_count.saturating_sub(1);
                Ok(Some(put_json_op(
                    found.key,
                    &found.record,
                    Expect::Version(found.version),
                )?))
            }
            Err(TxError::Fail(_)) => Ok(None),
            Err(TxError::Conflict) => Err(TxError::Conflict),
        }
    }

    pub async fn tag_user(
        &self,
        account_id: &str,
        name: &str,
        tags: &[Tag],
    ) -> Result<(), AwsError> {
        validate_tags(tags)?;
        retrying(|| async move {
            let (v, key) = self.load_user(account_id, name).await?;
            let mut user = v.value;
            merge_tags(&mut user.tags, tags, "TagsPerUser")?;
            self.commit(vec![put_json_op(key, &user, Expect::Version(v.version))?])
                .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    pub async fn untag_user(
        &self,
        account_id: &str,
        name: &str,
        keys: &[String],
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let (v, key) = self.load_user(account_id, name).await?;
            let mut user = v.value;
            remove_tags(&mut user.tags, keys);
            self.commit(vec![put_json_op(key, &user, Expect::Version(v.version))?])
                .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    pub async fn list_user_tags(
        &self,
        account_id: &str,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<Tag>, AwsError> {
        reading(async {
            let (v, _) = self.load_user(account_id, name).await?;
            Ok(paginate(sorted_tags(&v.value.tags), page))
        })
        .await
    }

    // -------------------------------------------------------------------------- boundaries

    /// Sets (or replaces) the permissions boundary of a user or role.
    pub async fn put_permissions_boundary(
        &self,
        account_id: &str,
        kind: EntityKind,
        name: &str,
        policy_arn: &str,
    ) -> Result<(), AwsError> {
        retrying(|| self.try_set_boundary(account_id, kind, name, Some(policy_arn))).await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    /// Removes the permissions boundary of a user or role (nothing to do if it has none).
    pub async fn delete_permissions_boundary(
        &self,
        account_id: &str,
        kind: EntityKind,
        name: &str,
    ) -> Result<(), AwsError> {
        retrying(|| self.try_set_boundary(account_id, kind, name, None)).await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    async fn try_set_boundary(
        &self,
        account_id: &str,
        kind: EntityKind,
        name: &str,
        new: Option<&str>,
    ) -> Result<(), TxError> {
        let (mut entity, version, key) = self.load_entity(account_id, kind, name).await?;
        let current = match &entity {
            AnyEntity::User(u) => u.boundary.clone(),
            AnyEntity::Role(r) => r.boundary.clone(),
            AnyEntity::Group(_) => {
                return Err(invalid_input("Groups cannot have a permissions boundary.").into());
            }
        };
        if current.as_deref() == new {
            return Ok(());
        }
        let mut ops = Vec::new();
        let mut new_policy = None;
        if let Some(arn) = new {
            let mut found = self
                .find_policy(account_id, arn, boundary_not_attachable)
                .await?;
            found.record.boundary_count = found.record.boundary_count.saturating_add(1);
            new_policy = Some(found);
        }
        if let Some(op) = self
            .boundary_release_op(account_id, current.as_deref())
            .await?
        {
            ops.push(op);
        }
        if let Some(found) = new_policy {
            ops.push(put_json_op(
                found.key,
                &found.record,
                Expect::Version(found.version),
            )?);
        }
        match &mut entity {
            AnyEntity::User(u) => u.boundary = new.map(str::to_owned),
            AnyEntity::Role(r) => r.boundary = new.map(str::to_owned),
            AnyEntity::Group(_) => {}
        }
        ops.push(entity.put_op(key, Expect::Version(version))?);
        self.commit(ops).await
    }

    // -------------------------------------------------------------------------- groups

    pub async fn create_group(
        &self,
        account_id: &str,
        name: &str,
        path: Option<&str>,
    ) -> Result<GroupInfo, AwsError> {
        validate_entity_name(EntityKind::Group, "groupName", name)?;
        let path = path.unwrap_or("/");
        validate_path("path", path)?;
        let id = unique_id("AGPA")?;
        let id = id.as_str();
        retrying(|| async move {
            let key = entity_path(account_id, EntityKind::Group, &name_key(name));
            if self.store.get(&key).await?.is_some() {
                return Err(AwsError::new(
                    409,
                    "EntityAlreadyExists",
                    format!("Group with name {name} already exists."),
                )
                .into());
            }
            if self
                .count_under(
                    &entity_prefix(account_id, EntityKind::Group),
                    GROUPS_PER_ACCOUNT,
                )
                .await?
                >= GROUPS_PER_ACCOUNT
            {
                return Err(limit_exceeded(format!(
                    "Cannot exceed quota for GroupsPerAccount: {GROUPS_PER_ACCOUNT}"
                ))
                .into());
            }
            let record = GroupRecord {
                core: EntityCore {
                    name: name.to_owned(),
                    id: id.to_owned(),
                    path: path.to_owned(),
                    created: now_secs(),
                    inline: BTreeMap::new(),
                    attached: Vec::new(),
                },
                member_count: 0,
            };
            self.commit(vec![put_json_op(key, &record, Expect::Absent)?])
                .await?;
            Ok(group_info(account_id, &record))
        })
        .await
    }

    /// A group and one page of its members.
    pub async fn get_group(
        &self,
        account_id: &str,
        name: &str,
        page: &PageRequest,
    ) -> Result<(GroupInfo, Page<UserInfo>), AwsError> {
        reading(async {
            let (g, _) = self.load_group(account_id, name).await?;
            let group_key = name_key(&g.value.core.name);
            let members = self
                .list_values::<MemberRecord>(&member_prefix(account_id, &group_key))
                .await?;
            let mut users = Vec::with_capacity(members.len());
            for (_, m) in members {
                let key = entity_path(account_id, EntityKind::User, &m.user);
                if let Some(u) = self.get_versioned::<UserRecord>(&key).await? {
                    users.push((m.user, user_info(account_id, &u.value)));
                }
            }
            Ok((group_info(account_id, &g.value), paginate(users, page)))
        })
        .await
    }

    pub async fn list_groups(
        &self,
        account_id: &str,
        path_prefix: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<GroupInfo>, AwsError> {
        reading(async {
            let groups = self
                .list_values::<GroupRecord>(&entity_prefix(account_id, EntityKind::Group))
                .await?;
            let items = groups
                .into_iter()
                .filter(|(_, g)| path_prefix.is_none_or(|p| g.core.path.starts_with(p)))
                .map(|(k, g)| (k, group_info(account_id, &g)))
                .collect();
            Ok(paginate(items, page))
        })
        .await
    }

    /// Renames and/or moves a group. Its members and its policies follow it: every member's
    /// record and membership entry moves in the same batch as the group itself.
    pub async fn update_group(
        &self,
        account_id: &str,
        name: &str,
        new_path: Option<&str>,
        new_name: Option<&str>,
    ) -> Result<(), AwsError> {
        if let Some(p) = new_path {
            validate_path("newPath", p)?;
        }
        if let Some(n) = new_name {
            validate_entity_name(EntityKind::Group, "newGroupName", n)?;
        }
        retrying(|| self.try_update_group(account_id, name, new_path, new_name)).await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    async fn try_update_group(
        &self,
        account_id: &str,
        name: &str,
        new_path: Option<&str>,
        new_name: Option<&str>,
    ) -> Result<(), TxError> {
        let (v, old_key) = self.load_group(account_id, name).await?;
        let mut group = v.value;
        if let Some(p) = new_path {
            p.clone_into(&mut group.core.path);
        }
        let mut ops = Vec::new();
        match new_name {
            Some(n) if name_key(n) != name_key(&group.core.name) => {
                let new_key = entity_path(account_id, EntityKind::Group, &name_key(n));
                if self.store.get(&new_key).await?.is_some() {
                    return Err(AwsError::new(
                        409,
                        "EntityAlreadyExists",
                        format!("Group with name {n} already exists."),
                    )
                    .into());
                }
                let old_group_key = name_key(&group.core.name);
                let new_group_key = name_key(n);
                n.clone_into(&mut group.core.name);
                ops.push(Op::delete(old_key, Expect::Version(v.version)));
                ops.push(put_json_op(new_key, &group, Expect::Absent)?);
                let members = self
                    .list_values::<MemberRecord>(&member_prefix(account_id, &old_group_key))
                    .await?;
                for (_, m) in members {
                    ops.push(Op::delete(
                        member_path(account_id, &old_group_key, &m.user),
                        Expect::Any,
                    ));
                    ops.push(put_json_op(
                        member_path(account_id, &new_group_key, &m.user),
                        &m,
                        Expect::Any,
                    )?);
                    let user_key = entity_path(account_id, EntityKind::User, &m.user);
                    if let Some(mut u) = self.get_versioned::<UserRecord>(&user_key).await? {
                        for g in &mut u.value.groups {
                            if *g == old_group_key {
                                g.clone_from(&new_group_key);
                            }
                        }
                        ops.push(put_json_op(user_key, &u.value, Expect::Version(u.version))?);
                    }
                }
            }
            Some(n) => {
                // Same name up to case: only its spelling changes.
                n.clone_into(&mut group.core.name);
                ops.push(put_json_op(old_key, &group, Expect::Version(v.version))?);
            }
            None => ops.push(put_json_op(old_key, &group, Expect::Version(v.version))?),
        }
        self.commit(ops).await
    }

    pub async fn delete_group(&self, account_id: &str, name: &str) -> Result<(), AwsError> {
        retrying(|| async move {
            let (v, key) = self.load_group(account_id, name).await?;
            let g = v.value;
            if g.member_count > 0 {
                return Err(delete_conflict(
                    "Cannot delete entity, must remove users from group first.",
                )
                .into());
            }
            if !g.core.inline.is_empty() {
                return Err(
                    delete_conflict("Cannot delete entity, must delete policies first.").into(),
                );
            }
            if !g.core.attached.is_empty() {
                return Err(delete_conflict(
                    "Cannot delete entity, must detach all policies first.",
                )
                .into());
            }
            self.commit(vec![Op::delete(key, Expect::Version(v.version))])
                .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    /// Adds a user to a group (nothing to do if it is a member already).
    pub async fn add_user_to_group(
        &self,
        account_id: &str,
        group: &str,
        user: &str,
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let (g, gkey) = self.load_group(account_id, group).await?;
            let (u, ukey) = self.load_user(account_id, user).await?;
            let (mut g_rec, mut u_rec) = (g.value, u.value);
            let group_key = name_key(&g_rec.core.name);
            if u_rec.groups.contains(&group_key) {
                return Ok(());
            }
            if u_rec.groups.len() >= GROUPS_PER_USER {
                return Err(limit_exceeded(format!(
                    "Cannot exceed quota for GroupsPerUser: {GROUPS_PER_USER}"
                ))
                .into());
            }
            u_rec.groups.push(group_key.clone());
            g_rec.member_count = g_rec.member_count.saturating_add(1);
            let user_key = name_key(&u_rec.core.name);
            self.commit(vec![
                put_json_op(ukey, &u_rec, Expect::Version(u.version))?,
                put_json_op(gkey, &g_rec, Expect::Version(g.version))?,
                put_json_op(
                    member_path(account_id, &group_key, &user_key),
                    &MemberRecord { user: user_key },
                    Expect::Any,
                )?,
            ])
            .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    /// Removes a user from a group (nothing to do if it is not a member).
    pub async fn remove_user_from_group(
        &self,
        account_id: &str,
        group: &str,
        user: &str,
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let (g, gkey) = self.load_group(account_id, group).await?;
            let (u, ukey) = self.load_user(account_id, user).await?;
            let (mut g_rec, mut u_rec) = (g.value, u.value);
            let group_key = name_key(&g_rec.core.name);
            if !u_rec.groups.contains(&group_key) {
                return Ok(());
            }
            u_rec.groups.retain(|x| *x != group_key);
            g_rec.member_count = g_rec.member_count.saturating_sub(1);
            let user_key = name_key(&u_rec.core.name);
            self.commit(vec![
                put_json_op(ukey, &u_rec, Expect::Version(u.version))?,
                put_json_op(gkey, &g_rec, Expect::Version(g.version))?,
                Op::delete(member_path(account_id, &group_key, &user_key), Expect::Any),
            ])
            .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    pub async fn list_groups_for_user(
        &self,
        account_id: &str,
        user: &str,
        page: &PageRequest,
    ) -> Result<Page<GroupInfo>, AwsError> {
        reading(async {
            let (u, _) = self.load_user(account_id, user).await?;
            let mut items = Vec::new();
            for g in &u.value.groups {
                let key = entity_path(account_id, EntityKind::Group, g);
                if let Some(rec) = self.get_versioned::<GroupRecord>(&key).await? {
                    items.push((g.clone(), group_info(account_id, &rec.value)));
                }
            }
            Ok(paginate(items, page))
        })
        .await
    }

    // -------------------------------------------------------------------------- roles

    pub async fn create_role(&self, account_id: &str, new: &NewRole) -> Result<RoleInfo, AwsError> {
        validate_entity_name(EntityKind::Role, "roleName", &new.name)?;
        let path = new.path.as_deref().unwrap_or("/");
        validate_path("path", path)?;
        validate_policy_document(PolicyDocumentKind::Trust, &new.assume_role_policy)?;
        check_description("description", new.description.as_deref())?;
        let max_session = new.max_session_duration.unwrap_or(DEFAULT_MAX_SESSION);
        check_max_session(max_session)?;
        validate_tags(&new.tags)?;
        let id = unique_id("AROA")?;
        let id = id.as_str();
        let info = retrying(|| async move {
            let key = entity_path(account_id, EntityKind::Role, &name_key(&new.name));
            if self.store.get(&key).await?.is_some() {
                return Err(AwsError::new(
                    409,
                    "EntityAlreadyExists",
                    format!("Role with name {} already exists.", new.name),
                )
                .into());
            }
            if self
                .count_under(
                    &entity_prefix(account_id, EntityKind::Role),
                    ROLES_PER_ACCOUNT,
                )
                .await?
                >= ROLES_PER_ACCOUNT
            {
                return Err(limit_exceeded(format!(
                    "Cannot exceed quota for RolesPerAccount: {ROLES_PER_ACCOUNT}"
                ))
                .into());
            }
            let mut ops = Vec::new();
            if let Some(arn) = &new.permissions_boundary {
                let mut found = self
                    .find_policy(account_id, arn, boundary_not_attachable)
                    .await?;
                found.record.boundary_count = found.record.boundary_count.saturating_add(1);
                ops.push(put_json_op(
                    found.key,
                    &found.record,
                    Expect::Version(found.version),
                )?);
            }
            let record = RoleRecord {
                core: EntityCore {
                    name: new.name.clone(),
                    id: id.to_owned(),
                    path: path.to_owned(),
                    created: now_secs(),
                    inline: BTreeMap::new(),
                    attached: Vec::new(),
                },
                trust_policy: new.assume_role_policy.clone(),
                description: new.description.clone(),
                max_session_duration: max_session,
                tags: new.tags.clone(),
                boundary: new.permissions_boundary.clone(),
                last_used: None,
                instance_profiles: Vec::new(),
            };
            ops.push(put_json_op(key, &record, Expect::Absent)?);
            self.commit(ops).await?;
            Ok(role_info(account_id, &record))
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(info)
    }

    pub async fn get_role(&self, account_id: &str, name: &str) -> Result<RoleInfo, AwsError> {
        reading(async {
            let (v, _) = self.load_role(account_id, name).await?;
            Ok(role_info(account_id, &v.value))
        })
        .await
    }

    pub async fn list_roles(
        &self,
        account_id: &str,
        path_prefix: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<RoleInfo>, AwsError> {
        reading(async {
            let roles = self
                .list_values::<RoleRecord>(&entity_prefix(account_id, EntityKind::Role))
                .await?;
            let items = roles
                .into_iter()
                .filter(|(_, r)| path_prefix.is_none_or(|p| r.core.path.starts_with(p)))
                .map(|(k, r)| (k, role_info(account_id, &r)))
                .collect();
            Ok(paginate(items, page))
        })
        .await
    }

    /// Changes a role's description and/or maximum session duration.
    pub async fn update_role(
        &self,
        account_id: &str,
        name: &str,
        description: Option<&str>,
        max_session_duration: Option<i32>,
    ) -> Result<(), AwsError> {
        check_description("description", description)?;
        if let Some(m) = max_session_duration {
            check_max_session(m)?;
        }
        retrying(|| async move {
            let (v, key) = self.load_role(account_id, name).await?;
            let mut role = v.value;
            if let Some(d) = description {
                role.description = Some(d.to_owned());
            }
            if let Some(m) = max_session_duration {
                role.max_session_duration = m;
            }
            self.commit(vec![put_json_op(key, &role, Expect::Version(v.version))?])
                .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    pub async fn update_assume_role_policy(
        &self,
        account_id: &str,
        name: &str,
        document: &str,
    ) -> Result<(), AwsError> {
        validate_policy_document(PolicyDocumentKind::Trust, document)?;
        retrying(|| async move {
            let (v, key) = self.load_role(account_id, name).await?;
            let mut role = v.value;
            document.clone_into(&mut role.trust_policy);
            self.commit(vec![put_json_op(key, &role, Expect::Version(v.version))?])
                .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    /// Deletes a role that is in no instance profile and has no policies left.
    pub async fn delete_role(&self, account_id: &str, name: &str) -> Result<(), AwsError> {
        retrying(|| async move {
            let (v, key) = self.load_role(account_id, name).await?;
            let role = v.value;
            if !role.instance_profiles.is_empty() {
                return Err(delete_conflict(
                    "Cannot delete entity, must remove roles from instance profile first.",
                )
                .into());
            }
            if !role.core.inline.is_empty() {
                return Err(
                    delete_conflict("Cannot delete entity, must delete policies first.").into(),
                );
            }
            if !role.core.attached.is_empty() {
                return Err(delete_conflict(
                    "Cannot delete entity, must detach all policies first.",
                )
                .into());
            }
            let mut ops = vec![Op::delete(key, Expect::Version(v.version))];
            ops.extend(
                self.boundary_release_op(account_id, role.boundary.as_deref())
                    .await?,
            );
            self.commit(ops).await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    pub async fn tag_role(
        &self,
        account_id: &str,
        name: &str,
        tags: &[Tag],
    ) -> Result<(), AwsError> {
        validate_tags(tags)?;
        retrying(|| async move {
            let (v, key) = self.load_role(account_id, name).await?;
            let mut role = v.value;
            merge_tags(&mut role.tags, tags, "TagsPerRole")?;
            self.commit(vec![put_json_op(key, &role, Expect::Version(v.version))?])
                .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    pub async fn untag_role(
        &self,
        account_id: &str,
        name: &str,
        keys: &[String],
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let (v, key) = self.load_role(account_id, name).await?;
            let mut role = v.value;
            remove_tags(&mut role.tags, keys);
            self.commit(vec![put_json_op(key, &role, Expect::Version(v.version))?])
                .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    pub async fn list_role_tags(
        &self,
        account_id: &str,
        name: &str,
        page: &PageRequest,
    ) -> Result<Page<Tag>, AwsError> {
        reading(async {
            let (v, _) = self.load_role(account_id, name).await?;
            Ok(paginate(sorted_tags(&v.value.tags), page))
        })
        .await
    }

    // -------------------------------------------------------------------------- managed policies

    pub async fn create_policy(
        &self,
        account_id: &str,
        new: &NewPolicy,
    ) -> Result<ManagedPolicyInfo, AwsError> {
        validate_policy_name("policyName", &new.name)?;
        let path = new.path.as_deref().unwrap_or("/");
        validate_policy_path("path", path)?;
        validate_policy_document(PolicyDocumentKind::Managed, &new.document)?;
        check_description("description", new.description.as_deref())?;
        validate_tags(&new.tags)?;
        let id = unique_id("ANPA")?;
        let id = id.as_str();
        retrying(|| async move {
            let key = policy_path(account_id, &name_key(&new.name));
            if self.store.get(&key).await?.is_some() {
                return Err(AwsError::new(
                    409,
                    "EntityAlreadyExists",
                    format!(
                        "A policy called {} already exists. Duplicate names are not allowed.",
                        new.name
                    ),
                )
                .into());
            }
            if self
                .count_under(&policy_prefix(account_id), POLICIES_PER_ACCOUNT)
                .await?
                >= POLICIES_PER_ACCOUNT
            {
                return Err(limit_exceeded(format!(
                    "Cannot exceed quota for PoliciesPerAccount: {POLICIES_PER_ACCOUNT}"
                ))
                .into());
            }
            let now = now_secs();
            let record = PolicyRecord {
                name: new.name.clone(),
                id: id.to_owned(),
                path: path.to_owned(),
                created: now,
                updated: now,
                description: new.description.clone(),
                tags: new.tags.clone(),
                default_version: 1,
                next_version: 2,
                versions: vec![VersionRecord {
                    number: 1,
                    document: new.document.clone(),
                    created: now,
                }],
                attachment_count: 0,
                boundary_count: 0,
            };
            self.commit(vec![put_json_op(key, &record, Expect::Absent)?])
                .await?;
            Ok(policy_info(account_id, &record))
        })
        .await
    }

    pub async fn get_policy(
        &self,
        account_id: &str,
        arn: &str,
    ) -> Result<ManagedPolicyInfo, AwsError> {
        reading(async {
            let found = self
                .find_policy(account_id, arn, policy_not_attachable)
                .await?;
            Ok(policy_info(account_id, &found.record))
        })
        .await
    }

    /// `ListPolicies`: this account's customer managed policies (`scope` `AWS` lists none:
    /// Citadel has no AWS managed policies), optionally only attached ones, only under a path,
    /// or only those used as permissions policies / boundaries.
    pub async fn list_policies(
        &self,
        account_id: &str,
        scope: Option<&str>,
        only_attached: bool,
        path_prefix: Option<&str>,
        usage_filter: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<ManagedPolicyInfo>, AwsError> {
        if scope == Some("AWS") {
            return Ok(Page {
                items: Vec::new(),
                marker: None,
            });
        }
        reading(async {
            let policies = self
                .list_values::<PolicyRecord>(&policy_prefix(account_id))
                .await?;
            let items = policies
                .into_iter()
                .filter(|(_, p)| path_prefix.is_none_or(|pre| p.path.starts_with(pre)))
                .filter(|(_, p)| {
                    !only_attached
                        || match usage_filter {
                            Some("PermissionsPolicy") => p.attachment_count > 0,
                            Some("PermissionsBoundary") => p.boundary_count > 0,
                            _ => p.attachment_count > 0 || p.boundary_count > 0,
                        }
                })
                .map(|(k, p)| (k, policy_info(account_id, &p)))
                .collect();
            Ok(paginate(items, page))
        })
        .await
    }

    /// Deletes a managed policy that is attached nowhere and has no version but the default.
    pub async fn delete_policy(&self, account_id: &str, arn: &str) -> Result<(), AwsError> {
        retrying(|| async move {
            let found = self
                .find_policy(account_id, arn, policy_not_attachable)
                .await?;
            if found.record.attachment_count > 0 || found.record.boundary_count > 0 {
                return Err(delete_conflict("Cannot delete a policy attached to entities.").into());
            }
            if found.record.versions.len() > 1 {
                return Err(delete_conflict(
                    "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy.",
                )
                .into());
            }
            self.commit(vec![Op::delete(found.key, Expect::Version(found.version))])
                .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    pub async fn create_policy_version(
        &self,
        account_id: &str,
        arn: &str,
        document: &str,
        set_as_default: bool,
    ) -> Result<PolicyVersionInfo, AwsError> {
        validate_policy_document(PolicyDocumentKind::Managed, document)?;
        let info = retrying(|| async move {
            let mut found = self
                .find_policy(account_id, arn, policy_not_attachable)
                .await?;
            let p = &mut found.record;
            if p.versions.len() >= MAX_POLICY_VERSIONS {
                return Err(limit_exceeded(
                    "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version.",
                )
                .into());
            }
            let number = p.next_version;
            let now = now_secs();
            p.next_version = number.saturating_add(1);
            p.versions.push(VersionRecord {
                number,
                document: document.to_owned(),
                created: now,
            });
            if set_as_default {
                p.default_version = number;
            }
            p.updated = now;
            self.commit(vec![put_json_op(
                found.key,
                &found.record,
                Expect::Version(found.version),
            )?])
            .await?;
            Ok(PolicyVersionInfo {
                version_id: version_id(number),
                document: None,
                is_default: set_as_default,
                created: now,
            })
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(info)
    }

    fn version_not_found(arn: &str, version: &str) -> AwsError {
        no_such_entity(format!(
            "Policy {arn} version {version} does not exist or is not attachable."
        ))
    }

    pub async fn get_policy_version(
        &self,
        account_id: &str,
        arn: &str,
        version: &str,
    ) -> Result<PolicyVersionInfo, AwsError> {
        reading(async {
            let found = self
                .find_policy(account_id, arn, policy_not_attachable)
                .await?;
            let v = parse_version_id(version)
                .and_then(|n| found.record.versions.iter().find(|v| v.number == n))
                .ok_or_else(|| Self::version_not_found(arn, version))?;
            Ok(PolicyVersionInfo {
                version_id: version_id(v.number),
                document: Some(v.document.clone()),
                is_default: v.number == found.record.default_version,
                created: v.created,
            })
        })
        .await
    }

    /// Versions newest first, with their documents.
    pub async fn list_policy_versions(
        &self,
        account_id: &str,
        arn: &str,
        page: &PageRequest,
    ) -> Result<Page<PolicyVersionInfo>, AwsError> {
        reading(async {
            let found = self
                .find_policy(account_id, arn, policy_not_attachable)
                .await?;
            let default = found.record.default_version;
            let items = found
                .record
                .versions
                .into_iter()
                .map(|v| {
                    (
                        version_sort_key(v.number),
                        PolicyVersionInfo {
                            version_id: version_id(v.number),
                            document: Some(v.document),
                            is_default: v.number == default,
                            created: v.created,
                        },
                    )
                })
                .collect();
            Ok(paginate(items, page))
        })
        .await
    }

    pub async fn delete_policy_version(
        &self,
        account_id: &str,
        arn: &str,
        version: &str,
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let mut found = self
                .find_policy(account_id, arn, policy_not_attachable)
                .await?;
            let number = parse_version_id(version)
                .filter(|n| found.record.versions.iter().any(|v| v.number == *n))
                .ok_or_else(|| Self::version_not_found(arn, version))?;
            if number == found.record.default_version {
                return Err(
                    delete_conflict("Cannot delete the default version of a policy.").into(),
                );
            }
            found.record.versions.retain(|v| v.number != number);
            found.record.updated = now_secs();
            self.commit(vec![put_json_op(
                found.key,
                &found.record,
                Expect::Version(found.version),
            )?])
            .await
        })
        .await
    }

    pub async fn set_default_policy_version(
        &self,
        account_id: &str,
        arn: &str,
        version: &str,
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let mut found = self
                .find_policy(account_id, arn, policy_not_attachable)
                .await?;
            let number = parse_version_id(version)
                .filter(|n| found.record.versions.iter().any(|v| v.number == *n))
                .ok_or_else(|| Self::version_not_found(arn, version))?;
            found.record.default_version = number;
            found.record.updated = now_secs();
            self.commit(vec![put_json_op(
                found.key,
                &found.record,
                Expect::Version(found.version),
            )?])
            .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    // -------------------------------------------------------------------------- attachments

    /// Attaches a customer managed policy to a user, group or role (nothing to do if it is
    /// attached already).
    pub async fn attach_policy(
        &self,
        account_id: &str,
        kind: EntityKind,
        entity: &str,
        policy_arn: &str,
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let (mut e, version, key) = self.load_entity(account_id, kind, entity).await?;
            let mut found = self
                .find_policy(account_id, policy_arn, policy_not_attachable)
                .await?;
            let arn = names::policy_arn(account_id, &found.record.path, &found.record.name);
            if e.core().attached.contains(&arn) {
                return Ok(());
            }
            if e.core().attached.len() >= POLICIES_PER_ENTITY {
                return Err(limit_exceeded(format!(
                    "Cannot exceed quota for PoliciesPer{}: {POLICIES_PER_ENTITY}",
                    kind.title()
                ))
                .into());
            }
            e.core_mut().attached.push(arn);
            found.record.attachment_count = found.record.attachment_count.saturating_add(1);
            self.commit(vec![
                e.put_op(key, Expect::Version(version))?,
                put_json_op(found.key, &found.record, Expect::Version(found.version))?,
            ])
            .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    pub async fn detach_policy(
        &self,
        account_id: &str,
        kind: EntityKind,
        entity: &str,
        policy_arn: &str,
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let (mut e, version, key) = self.load_entity(account_id, kind, entity).await?;
            let Some(pos) = e
                .core()
                .attached
                .iter()
                .position(|a| a.eq_ignore_ascii_case(policy_arn))
            else {
                return Err(no_such_entity(format!("Policy {policy_arn} was not found.")).into());
            };
            let attached = e.core_mut().attached.remove(pos);
            let mut ops = vec![e.put_op(key, Expect::Version(version))?];
            match self
                .find_policy(account_id, &attached, policy_not_attachable)
                .await
            {
                Ok(mut found) => {
                    found.record.attachment_count = found.record.attachment_count.saturating_sub(1);
                    ops.push(put_json_op(
                        found.key,
                        &found.record,
                        Expect::Version(found.version),
                    )?);
                }
                Err(TxError::Conflict) => return Err(TxError::Conflict),
                Err(TxError::Fail(_)) => {}
            }
            self.commit(ops).await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    pub async fn list_attached_policies(
        &self,
        account_id: &str,
        kind: EntityKind,
        entity: &str,
        path_prefix: Option<&str>,
        page: &PageRequest,
    ) -> Result<Page<AttachedPolicyInfo>, AwsError> {
        reading(async {
            let (e, _, _) = self.load_entity(account_id, kind, entity).await?;
            let items = e
                .core()
                .attached
                .iter()
                .filter_map(|arn| names::parse_policy_arn(arn).map(|p| (arn, p)))
                .filter(|(_, p)| path_prefix.is_none_or(|pre| p.path.starts_with(pre)))
                .map(|(arn, p)| {
                    (
                        name_key(&p.name),
                        AttachedPolicyInfo {
                            name: p.name,
                            arn: arn.clone(),
                        },
                    )
                })
                .collect();
            Ok(paginate(items, page))
        })
        .await
    }

    // -------------------------------------------------------------------------- inline policies

    fn inline_not_found(kind: EntityKind, policy_name: &str) -> AwsError {
        no_such_entity(format!(
            "The {} policy with name {policy_name} cannot be found.",
            kind.noun()
        ))
    }

    /// Adds or replaces an inline policy of a user, group or role.
    pub async fn put_inline_policy(
        &self,
        account_id: &str,
        kind: EntityKind,
        entity: &str,
        policy_name: &str,
        document: &str,
    ) -> Result<(), AwsError> {
        validate_policy_name("policyName", policy_name)?;
        validate_policy_document(PolicyDocumentKind::Inline(kind), document)?;
        retrying(|| async move {
            let (mut e, version, key) = self.load_entity(account_id, kind, entity).await?;
            let others: usize = e
                .core()
                .inline
                .iter()
                .filter(|(name, _)| name.as_str() != policy_name)
                .map(|(_, doc)| names::policy_size(doc))
                .sum();
            if others + names::policy_size(document) > names::inline_aggregate_max(kind) {
                return Err(inline_too_large(kind, &e.core().name).into());
            }
            e.core_mut()
                .inline
                .insert(policy_name.to_owned(), document.to_owned());
            self.commit(vec![e.put_op(key, Expect::Version(version))?])
                .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    pub async fn get_inline_policy(
        &self,
        account_id: &str,
        kind: EntityKind,
        entity: &str,
        policy_name: &str,
    ) -> Result<InlinePolicy, AwsError> {
        reading(async {
            let (e, _, _) = self.load_entity(account_id, kind, entity).await?;
            let document = e
                .core()
                .inline
                .get(policy_name)
                .cloned()
                .ok_or_else(|| Self::inline_not_found(kind, policy_name))?;
            Ok(InlinePolicy {
                entity_name: e.core().name.clone(),
                policy_name: policy_name.to_owned(),
                document,
            })
        })
        .await
    }

    pub async fn delete_inline_policy(
        &self,
        account_id: &str,
        kind: EntityKind,
        entity: &str,
        policy_name: &str,
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let (mut e, version, key) = self.load_entity(account_id, kind, entity).await?;
            if e.core_mut().inline.remove(policy_name).is_none() {
                return Err(Self::inline_not_found(kind, policy_name).into());
            }
            self.commit(vec![e.put_op(key, Expect::Version(version))?])
                .await
        })
        .await?;
        self.invalidate_keys(&[]);
        Ok(())
    }

    pub async fn list_inline_policies(
        &self,
        account_id: &str,
        kind: EntityKind,
        entity: &str,
        page: &PageRequest,
    ) -> Result<Page<String>, AwsError> {
        reading(async {
            let (e, _, _) = self.load_entity(account_id, kind, entity).await?;
            let items = e
                .core()
                .inline
                .keys()
                .map(|k| (k.clone(), k.clone()))
                .collect();
            Ok(paginate(items, page))
        })
        .await
    }

    // -------------------------------------------------------------------------- access keys

    /// Creates an access key for a user. The secret is in the result and nowhere else.
    pub async fn create_access_key(
        &self,
        account_id: &str,
        user: &str,
    ) -> Result<NewUserAccessKey, AwsError> {
        retrying(|| async move {
            let (u, ukey) = self.load_user(account_id, user).await?;
            let mut rec = u.value;
            if rec.access_keys.len() >= ACCESS_KEYS_PER_USER {
                return Err(limit_exceeded(format!(
                    "Cannot exceed quota for AccessKeysPerUser: {ACCESS_KEYS_PER_USER}"
                ))
                .into());
            }
            let access_key_id = random_id("AKIA", 16)?;
            let secret = random_secret()?;
            let created = now_secs();
            let stored = StoredAccessKey {
                access_key_id: access_key_id.clone(),
                secret_access_key: secret.clone(),
                account_id: account_id.to_owned(),
                kind: KIND_USER.into(),
                active: true,
                created,
                user: Some(name_key(&rec.core.name)),
                user_id: Some(rec.core.id.clone()),
            };
            rec.access_keys.push(access_key_id.clone());
            self.commit(vec![
                put_json_op(ukey, &rec, Expect::Version(u.version))?,
                put_json_op(access_key_path(&access_key_id), &stored, Expect::Absent)?,
            ])
            .await?;
            Ok(NewUserAccessKey {
                user_name: rec.core.name.clone(),
                access_key_id,
                secret_access_key: SecretString::from(secret.as_str()),
                created,
            })
        })
        .await
    }

    pub async fn list_access_keys(
        &self,
        account_id: &str,
        user: &str,
        page: &PageRequest,
    ) -> Result<Page<AccessKeyInfo>, AwsError> {
        reading(async {
            let (u, _) = self.load_user(account_id, user).await?;
            let mut items = Vec::new();
            for (i, akid) in u.value.access_keys.iter().enumerate() {
                if let Some(k) = self
                    .get_versioned::<StoredAccessKey>(&access_key_path(akid))
                    .await?
                {
                    items.push((
                        format!("{i:04}"),
                        AccessKeyInfo {
                            user_name: u.value.core.name.clone(),
                            access_key_id: k.value.access_key_id.clone(),
                            active: k.value.active,
                            created: k.value.created,
                        },
                    ));
                }
            }
            Ok(paginate(items, page))
        })
        .await
    }

    /// Activates or deactivates a user's access key; the change applies to the next request.
    pub async fn update_access_key(
        &self,
        account_id: &str,
        user: &str,
        access_key_id: &str,
        active: bool,
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let (u, _) = self.load_user(account_id, user).await?;
            if !u.value.access_keys.iter().any(|k| k == access_key_id) {
                return Err(access_key_not_found(access_key_id).into());
            }
            let path = access_key_path(access_key_id);
            let Some(mut k) = self.get_versioned::<StoredAccessKey>(&path).await? else {
                return Err(access_key_not_found(access_key_id).into());
            };
            if k.value.active == active {
                return Ok(());
            }
            k.value.active = active;
            self.commit(vec![put_json_op(
                path,
                &k.value,
                Expect::Version(k.version),
            )?])
            .await
        })
        .await?;
        self.invalidate_keys(&[access_key_id.to_owned()]);
        Ok(())
    }

    /// Deletes a user's access key; it stops working at once.
    pub async fn delete_access_key(
        &self,
        account_id: &str,
        user: &str,
        access_key_id: &str,
    ) -> Result<(), AwsError> {
        retrying(|| async move {
            let (u, ukey) = self.load_user(account_id, user).await?;
            let mut rec = u.value;
            let before = rec.access_keys.len();
            rec.access_keys.retain(|k| k != access_key_id);
            if rec.access_keys.len() == before {
                return Err(access_key_not_found(access_key_id).into());
            }
            self.commit(vec![
                put_json_op(ukey, &rec, Expect::Version(u.version))?,
                Op::delete(access_key_path(access_key_id), Expect::Any),
                Op::delete(last_used_path(access_key_id), Expect::Any),
            ])
            .await
        })
        .await?;
        self.invalidate_keys(&[access_key_id.to_owned()]);
        self.forget_use(access_key_id);
        Ok(())
    }

    /// When and where a key of `account_id` was last used, and its owner.
    pub async fn access_key_last_used(
        &self,
        account_id: &str,
        access_key_id: &str,
    ) -> Result<AccessKeyUsage, AwsError> {
        reading(async {
            let valid = !access_key_id.is_empty()
                && access_key_id.len() <= 128
                && access_key_id.bytes().all(|b| b.is_ascii_alphanumeric());
            if !valid {
                return Err(access_key_not_found(access_key_id).into());
            }
            let Some(k) = self
                .get_versioned::<StoredAccessKey>(&access_key_path(access_key_id))
                .await?
            else {
                return Err(access_key_not_found(access_key_id).into());
            };
            if k.value.account_id != account_id {
                return Err(access_key_not_found(access_key_id).into());
            }
            let user_name = match &k.value.user {
                Some(user_key) => self
                    .get_versioned::<UserRecord>(&entity_path(
                        account_id,
                        EntityKind::User,
                        user_key,
                    ))
                    .await?
                    .map(|u| u.value.core.name),
                None => None,
            };
            let last_used = match self.pending_use(access_key_id) {
                Some(u) => Some(u),
                None => self
                    .get_versioned::<LastUsedRecord>(&last_used_path(access_key_id))
                    .await?
                    .map(|r| KeyLastUsed {
                        at: r.value.at,
                        service: r.value.service,
                        region: r.value.region,
                    }),
            };
            Ok(AccessKeyUsage {
                user_name,
                last_used,
            })
        })
        .await
    }

    // -------------------------------------------------------------------------- authorizer input

    /// Loads (uncached) what [`IdentityStore::principal_policies`] serves.
    ///
    /// `unique_id` is the id the principal was authenticated as: an entity of the same name
    /// with another id (deleted and re-created meanwhile) is not the principal, and lends it
    /// no policies.
    pub(crate) async fn load_principal_policies(
        &self,
        account_id: &str,
        kind: EntityKind,
        name: &str,
        unique_id: &str,
    ) -> Result<PrincipalPolicies, IdentityError> {
        let key = entity_path(account_id, kind, &name_key(name));
        let mut out = PrincipalPolicies::default();
        let (core, boundary, groups) = match kind {
            EntityKind::User => match self.store.get_json::<UserRecord>(&key).await? {
                Some(u) => {
                    out.tags = u.tags;
                    (u.core, u.boundary, u.groups)
                }
                None => return Ok(out),
            },
            EntityKind::Role => match self.store.get_json::<RoleRecord>(&key).await? {
                Some(r) => {
                    out.tags = r.tags;
                    (r.core, r.boundary, Vec::new())
                }
                None => return Ok(out),
            },
            EntityKind::Group => return Ok(out),
        };
        if !citadel_crypto::constant_time_eq(core.id.as_bytes(), unique_id.as_bytes()) {
            return Ok(PrincipalPolicies::default());
        }
        let arn = names::entity_arn(account_id, kind, &core.path, &core.name);
        let mut raw = Vec::new();
        self.collect_entity_policies(account_id, kind, &arn, &core, &mut raw)
            .await?;
        for g in &groups {
            let gkey = entity_path(account_id, EntityKind::Group, g);
            if let Some(group) = self.store.get_json::<GroupRecord>(&gkey).await? {
                let garn = names::entity_arn(
                    account_id,
                    EntityKind::Group,
                    &group.core.path,
                    &group.core.name,
                );
                self.collect_entity_policies(
                    account_id,
                    EntityKind::Group,
                    &garn,
                    &group.core,
                    &mut raw,
                )
                .await?;
            }
        }
        for (source, document) in raw {
            let policy_kind = match &source {
                PolicySource::Inline { owner, .. } => PolicyKind::Identity(match owner {
                    EntityKind::User => IdentityPolicyKind::UserInline,
                    EntityKind::Group => IdentityPolicyKind::GroupInline,
                    EntityKind::Role => IdentityPolicyKind::RoleInline,
                }),
                PolicySource::Managed { .. } => PolicyKind::Identity(IdentityPolicyKind::Managed),
            };
            // A document that no longer parses grants nothing.
            if let Some(policy) = parse_stored(&source, &document, policy_kind) {
                out.identity.push(policy);
                out.sources.push(source);
            }
        }
        if let Some(b) = boundary
            && let Some((version_id, document)) = self.default_document(account_id, &b).await?
        {
            let source = PolicySource::Managed {
                policy_arn: b,
                version_id,
                attached_to: kind,
                attached_to_arn: arn,
            };
            // A boundary that no longer parses still bounds: it allows nothing.
            let policy = match parse_stored(&source, &document, PolicyKind::Boundary) {
                Some(p) => p,
                None => Arc::new(Policy::parse(ALLOWS_NOTHING, PolicyKind::Boundary).map_err(
                    |e| {
                        IdentityError::CorruptPolicy(format!(
                            "the allow-nothing boundary does not parse: {e}"
                        ))
                    },
                )?),
            };
            out.boundary = Some((source, policy));
        }
        Ok(out)
    }

    async fn collect_entity_policies(
        &self,
        account_id: &str,
        kind: EntityKind,
        arn: &str,
        core: &EntityCore,
        out: &mut Vec<(PolicySource, String)>,
    ) -> Result<(), IdentityError> {
        for (policy_name, document) in &core.inline {
            out.push((
                PolicySource::Inline {
                    owner: kind,
                    owner_arn: arn.to_owned(),
                    policy_name: policy_name.clone(),
                },
                document.clone(),
            ));
        }
        for policy_arn in &core.attached {
            if let Some((version_id, document)) =
                self.default_document(account_id, policy_arn).await?
            {
                out.push((
                    PolicySource::Managed {
                        policy_arn: policy_arn.clone(),
                        version_id,
                        attached_to: kind,
                        attached_to_arn: arn.to_owned(),
                    },
                    document,
                ));
            }
        }
        Ok(())
    }

    /// The default version (id and document) of a customer managed policy of `account_id`.
    pub(crate) async fn default_document(
        &self,
        account_id: &str,
        arn: &str,
    ) -> Result<Option<(String, String)>, IdentityError> {
        let Some(parsed) = names::parse_policy_arn(arn) else {
            return Ok(None);
        };
        if parsed.account != account_id {
            return Ok(None);
        }
        let key = policy_path(account_id, &name_key(&parsed.name));
        Ok(self
            .store
            .get_json::<PolicyRecord>(&key)
            .await?
            .filter(|p| p.path == parsed.path)
            .and_then(|p| {
                p.default_version()
                    .map(|v| (version_id(v.number), v.document.clone()))
            }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_follow_markers() {
        let items: Vec<(String, u32)> = (0..5).map(|i| (format!("k{i}"), i)).collect();
        let req = PageRequest {
            marker: None,
            max_items: Some(2),
        };
        let p1 = paginate(items.clone(), &req);
        assert_eq!(p1.items, vec![0, 1]);
        assert_eq!(p1.marker.as_deref(), Some("k2"));
        let p2 = paginate(
            items.clone(),
            &PageRequest {
                marker: p1.marker,
                max_items: Some(2),
            },
        );
        assert_eq!(p2.items, vec![2, 3]);
        let p3 = paginate(
            items.clone(),
            &PageRequest {
                marker: p2.marker,
                max_items: Some(2),
            },
        );
        assert_eq!(p3.items, vec![4]);
        assert!(!p3.is_truncated());
        assert_eq!(paginate(items, &PageRequest::default()).items.len(), 5);
    }

    #[test]
    fn versions_list_newest_first() {
        let mut keys = [1u32, 10, 2].map(version_sort_key);
        keys.sort();
        assert_eq!(keys, [10u32, 2, 1].map(version_sort_key));
        assert_eq!(parse_version_id("v12"), Some(12));
        assert_eq!(parse_version_id("v0"), None);
        assert_eq!(parse_version_id("12"), None);
    }

    #[test]
    fn tags_merge_case_insensitively() {
        let t = |k: &str, v: &str| Tag {
            key: k.into(),
            value: v.into(),
        };
        let mut tags = vec![t("Team", "a")];
        merge_tags(
            &mut tags,
            &[t("team", "b"), t("env", "prod")],
            "TagsPerUser",
        )
        .unwrap();
        assert_eq!(tags, vec![t("team", "b"), t("env", "prod")]);
        remove_tags(&mut tags, &["TEAM".to_owned()]);
        assert_eq!(tags, vec![t("env", "prod")]);
        let many: Vec<Tag> = (0..50).map(|i| t(&format!("k{i}"), "v")).collect();
        let e = merge_tags(&mut tags, &many, "TagsPerUser").unwrap_err();
        assert_eq!(e.code, "LimitExceeded");
    }
}
