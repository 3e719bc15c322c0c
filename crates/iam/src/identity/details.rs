//! Account-wide views: which entities use a managed policy (`ListEntitiesForPolicy`),
//! everything that grants permissions in the account (`GetAccountAuthorizationDetails`), and
//! the entity counts and quotas of `GetAccountSummary`.

use std::collections::BTreeMap;

use citadel_api::AwsError;

use super::names::{self, MANAGED_POLICY_MAX, TRUST_POLICY_MAX, inline_aggregate_max};
use super::profiles::INSTANCE_PROFILES_PER_ACCOUNT;
use super::records::{
    EntityCore, GroupRecord, PolicyRecord, RoleRecord, UserRecord, entity_prefix,
    instance_profile_prefix, policy_prefix,
};
use super::repo::{
    GROUPS_PER_ACCOUNT, POLICIES_PER_ACCOUNT, ROLES_PER_ACCOUNT, TxError, USERS_PER_ACCOUNT,
    group_info, paginate, policy_info, policy_not_attachable, reading, role_info, user_info,
    version_id, version_sort_key,
};
use super::{
    ACCESS_KEYS_PER_USER, AttachedPolicyInfo, AuthorizationDetails, DetailFilter, EntityKind,
    GROUPS_PER_USER, GroupDetail, MAX_POLICY_VERSIONS, NamedDocument, POLICIES_PER_ENTITY, Page,
    PageRequest, PolicyDetail, PolicyEntity, PolicyUsage, PolicyVersionInfo, RoleDetail,
    UserDetail,
};
use crate::credentials::IdentityStore;

/// AWS's quota on managed policy versions in use across an account.
const POLICY_VERSIONS_IN_USE_QUOTA: i32 = 10_000;
/// AWS's quotas on things Citadel does not have (reported, with zero of each in use).
const SERVER_CERTIFICATES_QUOTA: i32 = 20;
const SIGNING_CERTIFICATES_PER_USER_QUOTA: i32 = 2;

/// One record of an account-wide listing, in the order IAM pages through them.
enum Record {
    User(Box<UserRecord>),
    Group(Box<GroupRecord>),
    Role(Box<RoleRecord>),
    Policy(Box<PolicyRecord>),
}

fn attached_infos(attached: &[String]) -> Vec<AttachedPolicyInfo> {
    attached
        .iter()
        .filter_map(|arn| {
            names::parse_policy_arn(arn).map(|p| AttachedPolicyInfo {
                name: p.name,
                arn: arn.clone(),
            })
        })
        .collect()
}

fn inline_documents(core: &EntityCore) -> Vec<NamedDocument> {
    core.inline
        .iter()
        .map(|(name, document)| NamedDocument {
            name: name.clone(),
            document: document.clone(),
        })
        .collect()
}

fn count(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

impl IdentityStore {
    /// `ListEntitiesForPolicy`: the groups, users and roles of `kinds` (in that order) that
    /// have the customer managed policy `arn` attached (`PermissionsPolicy`) or set as their
    /// permissions boundary (`PermissionsBoundary`), optionally only under a path.
    pub async fn list_entities_for_policy(
        &self,
        account_id: &str,
        arn: &str,
        kinds: &[EntityKind],
        path_prefix: Option<&str>,
        usage: PolicyUsage,
        page: &PageRequest,
    ) -> Result<Page<PolicyEntity>, AwsError> {
        reading(async {
            let found = self
                .find_policy(account_id, arn, policy_not_attachable)
                .await?;
            let canonical = names::policy_arn(account_id, &found.record.path, &found.record.name);
            let as_policy = usage != PolicyUsage::PermissionsBoundary;
            let as_boundary = usage != PolicyUsage::PermissionsPolicy;
            let uses = |core: &EntityCore, boundary: Option<&String>| {
                path_prefix.is_none_or(|pre| core.path.starts_with(pre))
                    && ((as_policy
                        && core
                            .attached
                            .iter()
                            .any(|a| a.eq_ignore_ascii_case(&canonical)))
                        || (as_boundary
                            && boundary.is_some_and(|b| b.eq_ignore_ascii_case(&canonical))))
            };
            let entity = |kind: EntityKind, core: &EntityCore| PolicyEntity {
                kind,
                name: core.name.clone(),
                id: core.id.clone(),
            };
            let mut items = Vec::new();
            if kinds.contains(&EntityKind::Group) {
                for (k, g) in self
                    .list_values::<GroupRecord>(&entity_prefix(account_id, EntityKind::Group))
                    .await?
                {
                    if uses(&g.core, None) {
                        items.push((format!("1{k}"), entity(EntityKind::Group, &g.core)));
                    }
                }
            }
            if kinds.contains(&EntityKind::User) {
                for (k, u) in self
                    .list_values::<UserRecord>(&entity_prefix(account_id, EntityKind::User))
                    .await?
                {
                    if uses(&u.core, u.boundary.as_ref()) {
                        items.push((format!("2{k}"), entity(EntityKind::User, &u.core)));
                    }
                }
            }
            if kinds.contains(&EntityKind::Role) {
                for (k, r) in self
                    .list_values::<RoleRecord>(&entity_prefix(account_id, EntityKind::Role))
                    .await?
                {
                    if uses(&r.core, r.boundary.as_ref()) {
                        items.push((format!("3{k}"), entity(EntityKind::Role, &r.core)));
                    }
                }
            }
            Ok(paginate(items, page))
        })
        .await
    }

    /// `GetAccountAuthorizationDetails`: one page of the account's users, groups, roles (with
    /// their inline and attached policies, groups and instance profiles) and customer managed
    /// policies (with every version), as `filter` selects.
    pub async fn account_authorization_details(
        &self,
        account_id: &str,
        filter: DetailFilter,
        page: &PageRequest,
    ) -> Result<AuthorizationDetails, AwsError> {
        reading(async {
            let mut records: Vec<(String, Record)> = Vec::new();
            // Group names by key, for the users' group lists.
            let mut group_names: BTreeMap<String, String> = BTreeMap::new();
            if filter.users || filter.groups {
                for (k, g) in self
                    .list_values::<GroupRecord>(&entity_prefix(account_id, EntityKind::Group))
                    .await?
                {
                    group_names.insert(k.clone(), g.core.name.clone());
                    if filter.groups {
                        records.push((format!("2{k}"), Record::Group(Box::new(g))));
                    }
                }
            }
            if filter.users {
                for (k, u) in self
                    .list_values::<UserRecord>(&entity_prefix(account_id, EntityKind::User))
                    .await?
                {
                    records.push((format!("1{k}"), Record::User(Box::new(u))));
                }
            }
            if filter.roles {
                for (k, r) in self
                    .list_values::<RoleRecord>(&entity_prefix(account_id, EntityKind::Role))
                    .await?
                {
                    records.push((format!("3{k}"), Record::Role(Box::new(r))));
                }
            }
            if filter.local_policies {
                for (k, p) in self
                    .list_values::<PolicyRecord>(&policy_prefix(account_id))
                    .await?
                {
                    records.push((format!("4{k}"), Record::Policy(Box::new(p))));
                }
            }
            let page = paginate(records, page);
            let mut out = AuthorizationDetails {
                marker: page.marker,
                ..AuthorizationDetails::default()
            };
            for record in page.items {
                match record {
                    Record::User(u) => out.users.push(UserDetail {
                        user: user_info(account_id, &u),
                        inline: inline_documents(&u.core),
                        groups: u
                            .groups
                            .iter()
                            .filter_map(|g| group_names.get(g).cloned())
                            .collect(),
                        attached: attached_infos(&u.core.attached),
                    }),
                    Record::Group(g) => out.groups.push(GroupDetail {
                        group: group_info(account_id, &g),
                        inline: inline_documents(&g.core),
                        attached: attached_infos(&g.core.attached),
                    }),
                    Record::Role(r) => out.roles.push(RoleDetail {
                        role: role_info(account_id, &r),
                        inline: inline_documents(&r.core),
                        attached: attached_infos(&r.core.attached),
                        instance_profiles: self.role_profiles(account_id, &r).await?,
                    }),
                    Record::Policy(p) => {
                        let mut versions: Vec<&_> = p.versions.iter().collect();
                        versions.sort_by_key(|v| version_sort_key(v.number));
                        let versions = versions
                            .into_iter()
                            .map(|v| PolicyVersionInfo {
                                version_id: version_id(v.number),
                                document: Some(v.document.clone()),
                                is_default: v.number == p.default_version,
                                created: v.created,
                            })
                            .collect();
                        out.policies.push(PolicyDetail {
                            policy: policy_info(account_id, &p),
                            versions,
                        });
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// `GetAccountSummary`: how many users, groups, roles, customer managed policies and
    /// instance profiles the account has, beside AWS's quotas for them. Citadel has no MFA
    /// devices, identity providers, server or signing certificates: those count zero.
    /// `PolicyVersionsInUse` counts the attachments of customer managed policies (each puts
    /// the policy's default version in use), boundaries included.
    pub async fn account_summary(
        &self,
        account_id: &str,
    ) -> Result<BTreeMap<String, i32>, AwsError> {
        reading(async {
            let users = self
                .count_under(
                    &entity_prefix(account_id, EntityKind::User),
                    USERS_PER_ACCOUNT,
                )
                .await?;
            let groups = self
                .count_under(
                    &entity_prefix(account_id, EntityKind::Group),
                    GROUPS_PER_ACCOUNT,
                )
                .await?;
            let roles = self
                .count_under(
                    &entity_prefix(account_id, EntityKind::Role),
                    ROLES_PER_ACCOUNT,
                )
                .await?;
            let profiles = self
                .count_under(
                    &instance_profile_prefix(account_id),
                    INSTANCE_PROFILES_PER_ACCOUNT,
                )
                .await?;
            let policies = self
                .list_values::<PolicyRecord>(&policy_prefix(account_id))
                .await?;
            let in_use: u64 = policies
                .iter()
                .map(|(_, p)| u64::from(p.attachment_count) + u64::from(p.boundary_count))
                .sum();
            let root_keys = self
                .root_access_key_id(account_id)
                .await
                .map_err(TxError::from)?
                .is_some();
            let quota = |n: usize| count(n);
            let entries: [(&str, i32); 33] = [
                ("AccessKeysPerUserQuota", quota(ACCESS_KEYS_PER_USER)),
                ("AccountAccessKeysPresent", i32::from(root_keys)),
                ("AccountMFAEnabled", 0),
                ("AccountSigningCertificatesPresent", 0),
                ("AssumeRolePolicySizeQuota", quota(TRUST_POLICY_MAX)),
                ("AttachedPoliciesPerGroupQuota", quota(POLICIES_PER_ENTITY)),
                ("AttachedPoliciesPerRoleQuota", quota(POLICIES_PER_ENTITY)),
                ("AttachedPoliciesPerUserQuota", quota(POLICIES_PER_ENTITY)),
                ("GlobalEndpointTokenVersion", 1),
                (
                    "GroupPolicySizeQuota",
                    quota(inline_aggregate_max(EntityKind::Group)),
                ),
                ("Groups", count(groups)),
                ("GroupsPerUserQuota", quota(GROUPS_PER_USER)),
                ("GroupsQuota", quota(GROUPS_PER_ACCOUNT)),
                ("InstanceProfiles", count(profiles)),
                (
                    "InstanceProfilesQuota",
                    quota(INSTANCE_PROFILES_PER_ACCOUNT),
                ),
                ("MFADevices", 0),
                ("MFADevicesInUse", 0),
                ("Policies", count(policies.len())),
                ("PoliciesQuota", quota(POLICIES_PER_ACCOUNT)),
                ("PolicySizeQuota", quota(MANAGED_POLICY_MAX)),
                (
                    "PolicyVersionsInUse",
                    i32::try_from(in_use).unwrap_or(i32::MAX),
                ),
                ("PolicyVersionsInUseQuota", POLICY_VERSIONS_IN_USE_QUOTA),
                ("Providers", 0),
                (
                    "RolePolicySizeQuota",
                    quota(inline_aggregate_max(EntityKind::Role)),
                ),
                ("Roles", count(roles)),
                ("RolesQuota", quota(ROLES_PER_ACCOUNT)),
                ("ServerCertificates", 0),
                ("ServerCertificatesQuota", SERVER_CERTIFICATES_QUOTA),
                (
                    "SigningCertificatesPerUserQuota",
                    SIGNING_CERTIFICATES_PER_USER_QUOTA,
                ),
                (
                    "UserPolicySizeQuota",
                    quota(inline_aggregate_max(EntityKind::User)),
                ),
                ("Users", count(users)),
                ("UsersQuota", quota(USERS_PER_ACCOUNT)),
                ("VersionsPerPolicyQuota", quota(MAX_POLICY_VERSIONS)),
            ];
            Ok(entries
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect())
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attached_policies_are_named_from_their_arns() {
        let got = attached_infos(&[
            "arn:aws:iam::111122223333:policy/team/Deploy".to_owned(),
            "not-an-arn".to_owned(),
        ]);
        assert_eq!(
            got,
            vec![AttachedPolicyInfo {
                name: "Deploy".into(),
                arn: "arn:aws:iam::111122223333:policy/team/Deploy".into(),
            }]
        );
    }
}
