//! AWS IAM over the awsQuery protocol: the user, group, role, policy, attachment, access-key
//! and tag operations a Terraform or CLI user needs, answered from the identity store in
//! `citadel-iam` (which owns the data, its rules and the caches the request path reads).
//!
//! This crate only translates: it decodes and validates the input against the AWS model,
//! calls the repository, and renders the model's output shapes. Policy documents go out
//! URL-encoded, as IAM returns them (clients decode them).

mod access;
mod simulate;
#[cfg(test)]
mod simulate_tests;

use std::sync::Arc;

use citadel_api::{
    AccessTarget, AwsError, OperationInput, OperationOutput, OperationSpec, PrincipalKind,
    RequestContext, ServiceHandler, ServiceSpec, Support,
};
use citadel_iam::IdentityStore;
use citadel_iam::identity::{
    self as id, EntityKind, NewPolicy, NewRole, Page, PageRequest, name_from_principal_arn,
};
use citadel_model::iam;
use citadel_model::{SensitiveString, Timestamp};
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use secrecy::ExposeSecret;

/// Why root's own access keys are not managed here.
const ROOT_KEYS: &str = "without UserName, only IAM users' own keys: root's access keys are managed with `citadel operator`";

/// Why some listings are always empty: Citadel keeps no such credentials, and the operations
/// that would create them are not implemented, so none can exist.
const NO_MFA: &str = "MFA devices are not supported, so there are none";
const NO_SIGNING_CERTS: &str = "signing certificates are not supported, so there are none";
const NO_SSH_KEYS: &str = "SSH public keys are not supported, so there are none";
const NO_SERVICE_CREDS: &str = "service-specific credentials are not supported, so there are none";
const NO_LOGIN_PROFILES: &str =
    "console passwords (login profiles) are not supported, so there are none";

/// Citadel has customer managed policies only.
const LOCAL_POLICIES: &str = "customer managed policies only: Citadel has no AWS managed policies";

/// What `GetAccountSummary` reports as zero.
const SUMMARY: &str = "MFA devices, identity providers, server and signing certificates are not supported, so they count zero";

/// What the policy simulator leaves out.
const SIMULATE: &str = "no statement positions in MatchedStatements, no ResourceHandlingOption scenarios, no Organizations SCP details";

const IMPLEMENTED: &[(&str, Support)] = &[
    ("AddRoleToInstanceProfile", Support::Full),
    ("AddUserToGroup", Support::Full),
    ("AttachGroupPolicy", Support::Full),
    ("AttachRolePolicy", Support::Full),
    ("AttachUserPolicy", Support::Full),
    ("CreateAccessKey", Support::Partial(ROOT_KEYS)),
    ("CreateGroup", Support::Full),
    ("CreateInstanceProfile", Support::Full),
    ("CreatePolicy", Support::Full),
    ("CreatePolicyVersion", Support::Full),
    ("CreateRole", Support::Full),
    ("CreateUser", Support::Full),
    ("DeleteAccessKey", Support::Partial(ROOT_KEYS)),
    ("DeleteGroup", Support::Full),
    ("DeleteGroupPolicy", Support::Full),
    ("DeleteInstanceProfile", Support::Full),
    ("DeletePolicy", Support::Full),
    ("DeletePolicyVersion", Support::Full),
    ("DeleteRole", Support::Full),
    ("DeleteRolePermissionsBoundary", Support::Full),
    ("DeleteRolePolicy", Support::Full),
    ("DeleteUser", Support::Full),
    ("DeleteUserPermissionsBoundary", Support::Full),
    ("DeleteUserPolicy", Support::Full),
    ("DetachGroupPolicy", Support::Full),
    ("DetachRolePolicy", Support::Full),
    ("DetachUserPolicy", Support::Full),
    ("GetAccessKeyLastUsed", Support::Full),
    (
        "GetAccountAuthorizationDetails",
        Support::Partial(LOCAL_POLICIES),
    ),
    ("GetAccountSummary", Support::Partial(SUMMARY)),
    ("GetGroup", Support::Full),
    ("GetGroupPolicy", Support::Full),
    ("GetInstanceProfile", Support::Full),
    ("GetLoginProfile", Support::Partial(NO_LOGIN_PROFILES)),
    ("DeleteLoginProfile", Support::Partial(NO_LOGIN_PROFILES)),
    ("GetPolicy", Support::Full),
    ("GetPolicyVersion", Support::Full),
    ("GetRole", Support::Full),
    ("GetRolePolicy", Support::Full),
    ("GetUser", Support::Full),
    ("GetUserPolicy", Support::Full),
    ("ListAccessKeys", Support::Partial(ROOT_KEYS)),
    ("ListAttachedGroupPolicies", Support::Full),
    ("ListAttachedRolePolicies", Support::Full),
    ("ListAttachedUserPolicies", Support::Full),
    ("ListEntitiesForPolicy", Support::Full),
    ("ListGroupPolicies", Support::Full),
    ("ListGroups", Support::Full),
    ("ListGroupsForUser", Support::Full),
    ("ListInstanceProfileTags", Support::Full),
    ("ListInstanceProfiles", Support::Full),
    ("ListInstanceProfilesForRole", Support::Full),
    ("ListMFADevices", Support::Partial(NO_MFA)),
    ("ListVirtualMFADevices", Support::Partial(NO_MFA)),
    ("ListPolicies", Support::Partial(LOCAL_POLICIES)),
    ("ListPolicyVersions", Support::Full),
    ("ListRolePolicies", Support::Full),
    ("ListRoleTags", Support::Full),
    ("ListRoles", Support::Full),
    ("ListSSHPublicKeys", Support::Partial(NO_SSH_KEYS)),
    (
        "ListServiceSpecificCredentials",
        Support::Partial(NO_SERVICE_CREDS),
    ),
    (
        "ListSigningCertificates",
        Support::Partial(NO_SIGNING_CERTS),
    ),
    ("ListUserPolicies", Support::Full),
    ("ListUserTags", Support::Full),
    ("ListUsers", Support::Full),
    ("PutGroupPolicy", Support::Full),
    ("PutRolePermissionsBoundary", Support::Full),
    ("PutRolePolicy", Support::Full),
    ("PutUserPermissionsBoundary", Support::Full),
    ("PutUserPolicy", Support::Full),
    ("RemoveRoleFromInstanceProfile", Support::Full),
    ("RemoveUserFromGroup", Support::Full),
    ("SetDefaultPolicyVersion", Support::Full),
    ("SimulateCustomPolicy", Support::Partial(SIMULATE)),
    ("SimulatePrincipalPolicy", Support::Partial(SIMULATE)),
    ("TagInstanceProfile", Support::Full),
    ("TagRole", Support::Full),
    ("TagUser", Support::Full),
    ("UntagInstanceProfile", Support::Full),
    ("UntagRole", Support::Full),
    ("UntagUser", Support::Full),
    ("UpdateAccessKey", Support::Partial(ROOT_KEYS)),
    ("UpdateAssumeRolePolicy", Support::Full),
    ("UpdateGroup", Support::Full),
    ("UpdateRole", Support::Full),
    ("UpdateUser", Support::Full),
];

/// The IAM service handler.
pub struct Iam {
    identities: Arc<IdentityStore>,
}

impl Iam {
    pub fn new(identities: Arc<IdentityStore>) -> Self {
        Iam { identities }
    }
}

impl std::fmt::Debug for Iam {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Iam").finish_non_exhaustive()
    }
}

// ------------------------------------------------------------------------------ rendering

/// What IAM leaves unescaped in the URL-encoded policy documents it returns (RFC 3986
/// unreserved characters); clients `unquote` them.
const POLICY_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn encode_policy(document: &str) -> String {
    utf8_percent_encode(document, POLICY_ENCODE).to_string()
}

fn ts(secs: i64) -> Option<Timestamp> {
    Some(Timestamp::from_epoch_seconds(secs))
}

fn tags_out(tags: &[id::Tag]) -> Option<Vec<iam::Tag>> {
    if tags.is_empty() {
        return None;
    }
    Some(tags.iter().map(tag_out).collect())
}

fn tag_out(t: &id::Tag) -> iam::Tag {
    iam::Tag {
        key: Some(t.key.clone()),
        value: Some(t.value.clone()),
    }
}

fn tags_in(tags: Option<Vec<iam::Tag>>) -> Vec<id::Tag> {
    tags.unwrap_or_default()
        .into_iter()
        .map(|t| id::Tag {
            key: t.key.unwrap_or_default(),
            value: t.value.unwrap_or_default(),
        })
        .collect()
}

/// IAM answers `Policy` as the boundary type, although the model's enum spells it
/// `PermissionsBoundaryPolicy`; clients take the string as it comes.
fn boundary_out(arn: Option<&String>) -> Option<iam::AttachedPermissionsBoundary> {
    arn.map(|a| iam::AttachedPermissionsBoundary {
        permissions_boundary_type: Some("Policy".into()),
        permissions_boundary_arn: Some(a.clone()),
    })
}

/// A user as `GetUser`/`CreateUser` return it; listings leave out tags and the boundary.
fn user_out(u: &id::UserInfo, full: bool) -> iam::User {
    iam::User {
        path: Some(u.path.clone()),
        user_name: Some(u.name.clone()),
        user_id: Some(u.id.clone()),
        arn: Some(u.arn.clone()),
        create_date: ts(u.created),
        password_last_used: None,
        permissions_boundary: if full {
            boundary_out(u.permissions_boundary.as_ref())
        } else {
            None
        },
        tags: if full { tags_out(&u.tags) } else { None },
    }
}

fn group_out(g: &id::GroupInfo) -> iam::Group {
    iam::Group {
        path: Some(g.path.clone()),
        group_name: Some(g.name.clone()),
        group_id: Some(g.id.clone()),
        arn: Some(g.arn.clone()),
        create_date: ts(g.created),
    }
}

/// A role as `GetRole`/`CreateRole` return it; listings leave out tags, the boundary and the
/// last use.
fn role_out(r: &id::RoleInfo, full: bool) -> iam::Role {
    iam::Role {
        path: Some(r.path.clone()),
        role_name: Some(r.name.clone()),
        role_id: Some(r.id.clone()),
        arn: Some(r.arn.clone()),
        create_date: ts(r.created),
        assume_role_policy_document: Some(encode_policy(&r.assume_role_policy)),
        description: r.description.clone(),
        max_session_duration: Some(r.max_session_duration),
        permissions_boundary: if full {
            boundary_out(r.permissions_boundary.as_ref())
        } else {
            None
        },
        tags: if full { tags_out(&r.tags) } else { None },
        role_last_used: if full {
            Some(iam::RoleLastUsed {
                last_used_date: r.last_used.as_ref().and_then(|l| ts(l.at)),
                region: r.last_used.as_ref().map(|l| l.region.clone()),
            })
        } else {
            None
        },
    }
}

/// A managed policy as `GetPolicy`/`CreatePolicy` return it; `ListPolicies` leaves out the
/// description and tags.
fn policy_out(p: &id::ManagedPolicyInfo, full: bool) -> iam::Policy {
    iam::Policy {
        policy_name: Some(p.name.clone()),
        policy_id: Some(p.id.clone()),
        arn: Some(p.arn.clone()),
        path: Some(p.path.clone()),
        default_version_id: Some(p.default_version_id.clone()),
        attachment_count: Some(i32::try_from(p.attachment_count).unwrap_or(i32::MAX)),
        permissions_boundary_usage_count: Some(
            i32::try_from(p.permissions_boundary_usage_count).unwrap_or(i32::MAX),
        ),
        is_attachable: Some(true),
        description: if full { p.description.clone() } else { None },
        create_date: ts(p.created),
        update_date: ts(p.updated),
        tags: if full { tags_out(&p.tags) } else { None },
    }
}

fn version_out(v: &id::PolicyVersionInfo) -> iam::PolicyVersion {
    iam::PolicyVersion {
        document: v.document.as_deref().map(encode_policy),
        version_id: Some(v.version_id.clone()),
        is_default_version: Some(v.is_default),
        create_date: ts(v.created),
    }
}

/// An instance profile with its role; listings leave out the profile's tags.
fn profile_out(p: &id::InstanceProfileInfo, full: bool) -> iam::InstanceProfile {
    iam::InstanceProfile {
        path: Some(p.path.clone()),
        instance_profile_name: Some(p.name.clone()),
        instance_profile_id: Some(p.id.clone()),
        arn: Some(p.arn.clone()),
        create_date: ts(p.created),
        roles: Some(p.roles.iter().map(|r| role_out(r, false)).collect()),
        tags: if full { tags_out(&p.tags) } else { None },
    }
}

fn attached_list(attached: &[id::AttachedPolicyInfo]) -> Vec<iam::AttachedPolicy> {
    attached
        .iter()
        .map(|a| iam::AttachedPolicy {
            policy_name: Some(a.name.clone()),
            policy_arn: Some(a.arn.clone()),
        })
        .collect()
}

fn inline_list(inline: &[id::NamedDocument]) -> Vec<iam::PolicyDetail> {
    inline
        .iter()
        .map(|d| iam::PolicyDetail {
            policy_name: Some(d.name.clone()),
            policy_document: Some(encode_policy(&d.document)),
        })
        .collect()
}

fn details_out(d: &id::AuthorizationDetails) -> iam::GetAccountAuthorizationDetailsResponse {
    iam::GetAccountAuthorizationDetailsResponse {
        user_detail_list: Some(
            d.users
                .iter()
                .map(|u| iam::UserDetail {
                    path: Some(u.user.path.clone()),
                    user_name: Some(u.user.name.clone()),
                    user_id: Some(u.user.id.clone()),
                    arn: Some(u.user.arn.clone()),
                    create_date: ts(u.user.created),
                    user_policy_list: Some(inline_list(&u.inline)),
                    group_list: Some(u.groups.clone()),
                    attached_managed_policies: Some(attached_list(&u.attached)),
                    permissions_boundary: boundary_out(u.user.permissions_boundary.as_ref()),
                    tags: tags_out(&u.user.tags),
                })
                .collect(),
        ),
        group_detail_list: Some(
            d.groups
                .iter()
                .map(|g| iam::GroupDetail {
                    path: Some(g.group.path.clone()),
                    group_name: Some(g.group.name.clone()),
                    group_id: Some(g.group.id.clone()),
                    arn: Some(g.group.arn.clone()),
                    create_date: ts(g.group.created),
                    group_policy_list: Some(inline_list(&g.inline)),
                    attached_managed_policies: Some(attached_list(&g.attached)),
                })
                .collect(),
        ),
        role_detail_list: Some(
            d.roles
                .iter()
                .map(|r| {
                    let full = role_out(&r.role, true);
                    iam::RoleDetail {
                        path: full.path,
                        role_name: full.role_name,
                        role_id: full.role_id,
                        arn: full.arn,
                        create_date: full.create_date,
                        assume_role_policy_document: full.assume_role_policy_document,
                        instance_profile_list: Some(
                            r.instance_profiles
                                .iter()
                                .map(|p| profile_out(p, false))
                                .collect(),
                        ),
                        role_policy_list: Some(inline_list(&r.inline)),
                        attached_managed_policies: Some(attached_list(&r.attached)),
                        permissions_boundary: full.permissions_boundary,
                        tags: full.tags,
                        role_last_used: full.role_last_used,
                    }
                })
                .collect(),
        ),
        policies: Some(
            d.policies
                .iter()
                .map(|p| {
                    let full = policy_out(&p.policy, true);
                    iam::ManagedPolicyDetail {
                        policy_name: full.policy_name,
                        policy_id: full.policy_id,
                        arn: full.arn,
                        path: full.path,
                        default_version_id: full.default_version_id,
                        attachment_count: full.attachment_count,
                        permissions_boundary_usage_count: full.permissions_boundary_usage_count,
                        is_attachable: full.is_attachable,
                        description: full.description,
                        create_date: full.create_date,
                        update_date: full.update_date,
                        policy_version_list: Some(p.versions.iter().map(version_out).collect()),
                    }
                })
                .collect(),
        ),
        is_truncated: Some(d.marker.is_some()),
        marker: d.marker.clone(),
    }
}

/// What `GetAccountAuthorizationDetails`' `Filter` selects (everything without one).
fn detail_filter(filter: Option<&[String]>) -> id::DetailFilter {
    match filter {
        None | Some([]) => id::DetailFilter::ALL,
        Some(values) => {
            let has = |v: &str| values.iter().any(|f| f == v);
            id::DetailFilter {
                users: has("User"),
                groups: has("Group"),
                roles: has("Role"),
                local_policies: has("LocalManagedPolicy"),
            }
        }
    }
}

/// The entity kinds `ListEntitiesForPolicy`'s `EntityFilter` selects: all three without one,
/// none for the policy types (a policy is attached to no policy).
fn entity_kinds(filter: Option<&str>) -> &'static [EntityKind] {
    match filter {
        None => &[EntityKind::Group, EntityKind::User, EntityKind::Role],
        Some("User") => &[EntityKind::User],
        Some("Group") => &[EntityKind::Group],
        Some("Role") => &[EntityKind::Role],
        Some(_) => &[],
    }
}

fn xml(write: impl FnOnce(&mut String)) -> OperationOutput {
    let mut out = String::new();
    write(&mut out);
    OperationOutput::QueryXml(out)
}

fn empty() -> OperationOutput {
    OperationOutput::QueryXml(String::new())
}

fn truncated<T>(p: &Page<T>) -> Option<bool> {
    Some(p.is_truncated())
}

fn page(marker: Option<String>, max_items: Option<i32>) -> PageRequest {
    PageRequest { marker, max_items }
}

/// Decodes and validates an awsQuery input against the model.
macro_rules! input {
    ($ty:ty, $params:expr) => {{
        let request = <$ty>::from_query($params)?;
        request.validate()?;
        request
    }};
}

/// Required members are checked by `validate()`; this turns the `Option` into the value.
fn req(v: Option<String>) -> Result<String, AwsError> {
    v.ok_or_else(|| AwsError::new(400, "ValidationError", "A required parameter is missing."))
}

fn params(input: &OperationInput) -> Result<&[(String, String)], AwsError> {
    match input {
        OperationInput::Query(p) => Ok(p),
        _ => Err(AwsError::new(
            400,
            "InvalidAction",
            "IAM accepts awsQuery requests only.",
        )),
    }
}

/// The user an access-key operation without `UserName` acts on: the calling IAM user.
fn caller_user(ctx: &RequestContext, operation: &str) -> Result<String, AwsError> {
    match ctx.principal.kind {
        PrincipalKind::User => name_from_principal_arn(&ctx.principal.arn)
            .map(str::to_owned)
            .ok_or_else(|| AwsError::new(400, "ValidationError", "Must specify userName.")),
        PrincipalKind::Root => Err(AwsError::new(
            400,
            "UnsupportedOperationException",
            format!(
                "Citadel does not implement iam:{operation} for the root user's own access keys: manage them with `citadel operator`, or name an IAM user with UserName."
            ),
        )),
        PrincipalKind::AssumedRole => Err(AwsError::new(
            400,
            "ValidationError",
            "Must specify userName when calling with non-User credentials",
        )),
    }
}

#[async_trait::async_trait]
impl ServiceHandler for Iam {
    fn spec(&self) -> &'static ServiceSpec {
        &iam::SPEC
    }

    fn implemented(&self) -> &'static [(&'static str, Support)] {
        IMPLEMENTED
    }

    async fn access_target(
        &self,
        ctx: &RequestContext,
        operation: &'static OperationSpec,
        input: &OperationInput,
    ) -> Result<AccessTarget, AwsError> {
        Ok(access::target(&self.identities, ctx, operation.name, params(input)?).await)
    }

    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &'static OperationSpec,
        input: OperationInput,
    ) -> Result<OperationOutput, AwsError> {
        let p = params(&input)?;
        let acct = ctx.principal.account_id.as_str();
        let ids = &self.identities;
        let op = operation.name;
        match op {
            // ------------------------------------------------------------------ users
            "CreateUser" => {
                let r = input!(iam::CreateUserRequest, p);
                let user = ids
                    .create_user(
                        acct,
                        &req(r.user_name)?,
                        r.path.as_deref(),
                        r.permissions_boundary.as_deref(),
                        &tags_in(r.tags),
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::CreateUserResponse {
                        user: Some(user_out(&user, true)),
                    }
                    .to_query_xml(o);
                }))
            }
            "GetUser" => {
                let r = input!(iam::GetUserRequest, p);
                let user = match r.user_name {
                    Some(name) => user_out(&ids.get_user(acct, &name).await?, true),
                    None => self.caller_as_user(ctx).await?,
                };
                Ok(xml(|o| {
                    iam::GetUserResponse { user: Some(user) }.to_query_xml(o);
                }))
            }
            "ListUsers" => {
                let r = input!(iam::ListUsersRequest, p);
                let pg = ids
                    .list_users(acct, r.path_prefix.as_deref(), &page(r.marker, r.max_items))
                    .await?;
                Ok(xml(|o| {
                    iam::ListUsersResponse {
                        users: Some(pg.items.iter().map(|u| user_out(u, false)).collect()),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "UpdateUser" => {
                let r = input!(iam::UpdateUserRequest, p);
                ids.update_user(
                    acct,
                    &req(r.user_name)?,
                    r.new_path.as_deref(),
                    r.new_user_name.as_deref(),
                )
                .await?;
                Ok(empty())
            }
            "DeleteUser" => {
                let r = input!(iam::DeleteUserRequest, p);
                ids.delete_user(acct, &req(r.user_name)?).await?;
                Ok(empty())
            }
            "TagUser" => {
                let r = input!(iam::TagUserRequest, p);
                ids.tag_user(acct, &req(r.user_name)?, &tags_in(r.tags))
                    .await?;
                Ok(empty())
            }
            "UntagUser" => {
                let r = input!(iam::UntagUserRequest, p);
                ids.untag_user(acct, &req(r.user_name)?, &r.tag_keys.unwrap_or_default())
                    .await?;
                Ok(empty())
            }
            "ListUserTags" => {
                let r = input!(iam::ListUserTagsRequest, p);
                let pg = ids
                    .list_user_tags(acct, &req(r.user_name)?, &page(r.marker, r.max_items))
                    .await?;
                Ok(xml(|o| {
                    iam::ListUserTagsResponse {
                        tags: Some(pg.items.iter().map(tag_out).collect()),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "PutUserPermissionsBoundary" => {
                let r = input!(iam::PutUserPermissionsBoundaryRequest, p);
                ids.put_permissions_boundary(
                    acct,
                    EntityKind::User,
                    &req(r.user_name)?,
                    &req(r.permissions_boundary)?,
                )
                .await?;
                Ok(empty())
            }
            "DeleteUserPermissionsBoundary" => {
                let r = input!(iam::DeleteUserPermissionsBoundaryRequest, p);
                ids.delete_permissions_boundary(acct, EntityKind::User, &req(r.user_name)?)
                    .await?;
                Ok(empty())
            }

            // ------------------------------------------------------------------ groups
            "CreateGroup" => {
                let r = input!(iam::CreateGroupRequest, p);
                let g = ids
                    .create_group(acct, &req(r.group_name)?, r.path.as_deref())
                    .await?;
                Ok(xml(|o| {
                    iam::CreateGroupResponse {
                        group: Some(group_out(&g)),
                    }
                    .to_query_xml(o);
                }))
            }
            "GetGroup" => {
                let r = input!(iam::GetGroupRequest, p);
                let (g, users) = ids
                    .get_group(acct, &req(r.group_name)?, &page(r.marker, r.max_items))
                    .await?;
                Ok(xml(|o| {
                    iam::GetGroupResponse {
                        group: Some(group_out(&g)),
                        users: Some(users.items.iter().map(|u| user_out(u, false)).collect()),
                        is_truncated: truncated(&users),
                        marker: users.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "ListGroups" => {
                let r = input!(iam::ListGroupsRequest, p);
                let pg = ids
                    .list_groups(acct, r.path_prefix.as_deref(), &page(r.marker, r.max_items))
                    .await?;
                Ok(xml(|o| {
                    iam::ListGroupsResponse {
                        groups: Some(pg.items.iter().map(group_out).collect()),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "DeleteGroup" => {
                let r = input!(iam::DeleteGroupRequest, p);
                ids.delete_group(acct, &req(r.group_name)?).await?;
                Ok(empty())
            }
            "UpdateGroup" => {
                let r = input!(iam::UpdateGroupRequest, p);
                ids.update_group(
                    acct,
                    &req(r.group_name)?,
                    r.new_path.as_deref(),
                    r.new_group_name.as_deref(),
                )
                .await?;
                Ok(empty())
            }
            "AddUserToGroup" => {
                let r = input!(iam::AddUserToGroupRequest, p);
                ids.add_user_to_group(acct, &req(r.group_name)?, &req(r.user_name)?)
                    .await?;
                Ok(empty())
            }
            "RemoveUserFromGroup" => {
                let r = input!(iam::RemoveUserFromGroupRequest, p);
                ids.remove_user_from_group(acct, &req(r.group_name)?, &req(r.user_name)?)
                    .await?;
                Ok(empty())
            }
            "ListGroupsForUser" => {
                let r = input!(iam::ListGroupsForUserRequest, p);
                let pg = ids
                    .list_groups_for_user(acct, &req(r.user_name)?, &page(r.marker, r.max_items))
                    .await?;
                Ok(xml(|o| {
                    iam::ListGroupsForUserResponse {
                        groups: Some(pg.items.iter().map(group_out).collect()),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }

            // ------------------------------------------------------------------ roles
            "CreateRole" => {
                let r = input!(iam::CreateRoleRequest, p);
                let role = ids
                    .create_role(
                        acct,
                        &NewRole {
                            name: req(r.role_name)?,
                            path: r.path,
                            assume_role_policy: req(r.assume_role_policy_document)?,
                            description: r.description,
                            max_session_duration: r.max_session_duration,
                            permissions_boundary: r.permissions_boundary,
                            tags: tags_in(r.tags),
                        },
                    )
                    .await?;
                let mut out = role_out(&role, true);
                // CreateRole does not report a last use.
                out.role_last_used = None;
                Ok(xml(|o| {
                    iam::CreateRoleResponse { role: Some(out) }.to_query_xml(o);
                }))
            }
            "GetRole" => {
                let r = input!(iam::GetRoleRequest, p);
                let role = ids.get_role(acct, &req(r.role_name)?).await?;
                Ok(xml(|o| {
                    iam::GetRoleResponse {
                        role: Some(role_out(&role, true)),
                    }
                    .to_query_xml(o);
                }))
            }
            "ListRoles" => {
                let r = input!(iam::ListRolesRequest, p);
                let pg = ids
                    .list_roles(acct, r.path_prefix.as_deref(), &page(r.marker, r.max_items))
                    .await?;
                Ok(xml(|o| {
                    iam::ListRolesResponse {
                        roles: Some(pg.items.iter().map(|r| role_out(r, false)).collect()),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "UpdateRole" => {
                let r = input!(iam::UpdateRoleRequest, p);
                ids.update_role(
                    acct,
                    &req(r.role_name)?,
                    r.description.as_deref(),
                    r.max_session_duration,
                )
                .await?;
                Ok(empty())
            }
            "DeleteRole" => {
                let r = input!(iam::DeleteRoleRequest, p);
                ids.delete_role(acct, &req(r.role_name)?).await?;
                Ok(empty())
            }
            "UpdateAssumeRolePolicy" => {
                let r = input!(iam::UpdateAssumeRolePolicyRequest, p);
                ids.update_assume_role_policy(acct, &req(r.role_name)?, &req(r.policy_document)?)
                    .await?;
                Ok(empty())
            }
            "TagRole" => {
                let r = input!(iam::TagRoleRequest, p);
                ids.tag_role(acct, &req(r.role_name)?, &tags_in(r.tags))
                    .await?;
                Ok(empty())
            }
            "UntagRole" => {
                let r = input!(iam::UntagRoleRequest, p);
                ids.untag_role(acct, &req(r.role_name)?, &r.tag_keys.unwrap_or_default())
                    .await?;
                Ok(empty())
            }
            "ListRoleTags" => {
                let r = input!(iam::ListRoleTagsRequest, p);
                let pg = ids
                    .list_role_tags(acct, &req(r.role_name)?, &page(r.marker, r.max_items))
                    .await?;
                Ok(xml(|o| {
                    iam::ListRoleTagsResponse {
                        tags: Some(pg.items.iter().map(tag_out).collect()),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "PutRolePermissionsBoundary" => {
                let r = input!(iam::PutRolePermissionsBoundaryRequest, p);
                ids.put_permissions_boundary(
                    acct,
                    EntityKind::Role,
                    &req(r.role_name)?,
                    &req(r.permissions_boundary)?,
                )
                .await?;
                Ok(empty())
            }
            "DeleteRolePermissionsBoundary" => {
                let r = input!(iam::DeleteRolePermissionsBoundaryRequest, p);
                ids.delete_permissions_boundary(acct, EntityKind::Role, &req(r.role_name)?)
                    .await?;
                Ok(empty())
            }

            // ------------------------------------------------------------------ managed policies
            "CreatePolicy" => {
                let r = input!(iam::CreatePolicyRequest, p);
                let policy = ids
                    .create_policy(
                        acct,
                        &NewPolicy {
                            name: req(r.policy_name)?,
                            path: r.path,
                            document: req(r.policy_document)?,
                            description: r.description,
                            tags: tags_in(r.tags),
                        },
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::CreatePolicyResponse {
                        policy: Some(policy_out(&policy, true)),
                    }
                    .to_query_xml(o);
                }))
            }
            "GetPolicy" => {
                let r = input!(iam::GetPolicyRequest, p);
                let policy = ids.get_policy(acct, &req(r.policy_arn)?).await?;
                Ok(xml(|o| {
                    iam::GetPolicyResponse {
                        policy: Some(policy_out(&policy, true)),
                    }
                    .to_query_xml(o);
                }))
            }
            "ListPolicies" => {
                let r = input!(iam::ListPoliciesRequest, p);
                let pg = ids
                    .list_policies(
                        acct,
                        r.scope.as_deref(),
                        r.only_attached.unwrap_or(false),
                        r.path_prefix.as_deref(),
                        r.policy_usage_filter.as_deref(),
                        &page(r.marker, r.max_items),
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::ListPoliciesResponse {
                        policies: Some(pg.items.iter().map(|p| policy_out(p, false)).collect()),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "DeletePolicy" => {
                let r = input!(iam::DeletePolicyRequest, p);
                ids.delete_policy(acct, &req(r.policy_arn)?).await?;
                Ok(empty())
            }
            "CreatePolicyVersion" => {
                let r = input!(iam::CreatePolicyVersionRequest, p);
                let v = ids
                    .create_policy_version(
                        acct,
                        &req(r.policy_arn)?,
                        &req(r.policy_document)?,
                        r.set_as_default.unwrap_or(false),
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::CreatePolicyVersionResponse {
                        policy_version: Some(version_out(&v)),
                    }
                    .to_query_xml(o);
                }))
            }
            "GetPolicyVersion" => {
                let r = input!(iam::GetPolicyVersionRequest, p);
                let v = ids
                    .get_policy_version(acct, &req(r.policy_arn)?, &req(r.version_id)?)
                    .await?;
                Ok(xml(|o| {
                    iam::GetPolicyVersionResponse {
                        policy_version: Some(version_out(&v)),
                    }
                    .to_query_xml(o);
                }))
            }
            "ListPolicyVersions" => {
                let r = input!(iam::ListPolicyVersionsRequest, p);
                let pg = ids
                    .list_policy_versions(acct, &req(r.policy_arn)?, &page(r.marker, r.max_items))
                    .await?;
                Ok(xml(|o| {
                    iam::ListPolicyVersionsResponse {
                        versions: Some(
                            pg.items
                                .iter()
                                .map(|v| {
                                    let mut out = version_out(v);
                                    // Listings do not carry the documents.
                                    out.document = None;
                                    out
                                })
                                .collect(),
                        ),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "DeletePolicyVersion" => {
                let r = input!(iam::DeletePolicyVersionRequest, p);
                ids.delete_policy_version(acct, &req(r.policy_arn)?, &req(r.version_id)?)
                    .await?;
                Ok(empty())
            }
            "SetDefaultPolicyVersion" => {
                let r = input!(iam::SetDefaultPolicyVersionRequest, p);
                ids.set_default_policy_version(acct, &req(r.policy_arn)?, &req(r.version_id)?)
                    .await?;
                Ok(empty())
            }

            // ------------------------------------------------------------------ attachments
            "AttachUserPolicy" | "DetachUserPolicy" => {
                let r = input!(iam::AttachUserPolicyRequest, p);
                self.attach(
                    op,
                    acct,
                    EntityKind::User,
                    req(r.user_name)?,
                    req(r.policy_arn)?,
                )
                .await
            }
            "AttachGroupPolicy" | "DetachGroupPolicy" => {
                let r = input!(iam::AttachGroupPolicyRequest, p);
                self.attach(
                    op,
                    acct,
                    EntityKind::Group,
                    req(r.group_name)?,
                    req(r.policy_arn)?,
                )
                .await
            }
            "AttachRolePolicy" | "DetachRolePolicy" => {
                let r = input!(iam::AttachRolePolicyRequest, p);
                self.attach(
                    op,
                    acct,
                    EntityKind::Role,
                    req(r.role_name)?,
                    req(r.policy_arn)?,
                )
                .await
            }
            "ListAttachedUserPolicies" => {
                let r = input!(iam::ListAttachedUserPoliciesRequest, p);
                let pg = ids
                    .list_attached_policies(
                        acct,
                        EntityKind::User,
                        &req(r.user_name)?,
                        r.path_prefix.as_deref(),
                        &page(r.marker, r.max_items),
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::ListAttachedUserPoliciesResponse {
                        attached_policies: Some(attached_out(&pg)),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "ListAttachedGroupPolicies" => {
                let r = input!(iam::ListAttachedGroupPoliciesRequest, p);
                let pg = ids
                    .list_attached_policies(
                        acct,
                        EntityKind::Group,
                        &req(r.group_name)?,
                        r.path_prefix.as_deref(),
                        &page(r.marker, r.max_items),
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::ListAttachedGroupPoliciesResponse {
                        attached_policies: Some(attached_out(&pg)),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "ListAttachedRolePolicies" => {
                let r = input!(iam::ListAttachedRolePoliciesRequest, p);
                let pg = ids
                    .list_attached_policies(
                        acct,
                        EntityKind::Role,
                        &req(r.role_name)?,
                        r.path_prefix.as_deref(),
                        &page(r.marker, r.max_items),
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::ListAttachedRolePoliciesResponse {
                        attached_policies: Some(attached_out(&pg)),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }

            // ------------------------------------------------------------------ inline policies
            "PutUserPolicy" => {
                let r = input!(iam::PutUserPolicyRequest, p);
                ids.put_inline_policy(
                    acct,
                    EntityKind::User,
                    &req(r.user_name)?,
                    &req(r.policy_name)?,
                    &req(r.policy_document)?,
                )
                .await?;
                Ok(empty())
            }
            "PutGroupPolicy" => {
                let r = input!(iam::PutGroupPolicyRequest, p);
                ids.put_inline_policy(
                    acct,
                    EntityKind::Group,
                    &req(r.group_name)?,
                    &req(r.policy_name)?,
                    &req(r.policy_document)?,
                )
                .await?;
                Ok(empty())
            }
            "PutRolePolicy" => {
                let r = input!(iam::PutRolePolicyRequest, p);
                ids.put_inline_policy(
                    acct,
                    EntityKind::Role,
                    &req(r.role_name)?,
                    &req(r.policy_name)?,
                    &req(r.policy_document)?,
                )
                .await?;
                Ok(empty())
            }
            "GetUserPolicy" => {
                let r = input!(iam::GetUserPolicyRequest, p);
                let got = ids
                    .get_inline_policy(
                        acct,
                        EntityKind::User,
                        &req(r.user_name)?,
                        &req(r.policy_name)?,
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::GetUserPolicyResponse {
                        user_name: Some(got.entity_name),
                        policy_name: Some(got.policy_name),
                        policy_document: Some(encode_policy(&got.document)),
                    }
                    .to_query_xml(o);
                }))
            }
            "GetGroupPolicy" => {
                let r = input!(iam::GetGroupPolicyRequest, p);
                let got = ids
                    .get_inline_policy(
                        acct,
                        EntityKind::Group,
                        &req(r.group_name)?,
                        &req(r.policy_name)?,
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::GetGroupPolicyResponse {
                        group_name: Some(got.entity_name),
                        policy_name: Some(got.policy_name),
                        policy_document: Some(encode_policy(&got.document)),
                    }
                    .to_query_xml(o);
                }))
            }
            "GetRolePolicy" => {
                let r = input!(iam::GetRolePolicyRequest, p);
                let got = ids
                    .get_inline_policy(
                        acct,
                        EntityKind::Role,
                        &req(r.role_name)?,
                        &req(r.policy_name)?,
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::GetRolePolicyResponse {
                        role_name: Some(got.entity_name),
                        policy_name: Some(got.policy_name),
                        policy_document: Some(encode_policy(&got.document)),
                    }
                    .to_query_xml(o);
                }))
            }
            "DeleteUserPolicy" => {
                let r = input!(iam::DeleteUserPolicyRequest, p);
                ids.delete_inline_policy(
                    acct,
                    EntityKind::User,
                    &req(r.user_name)?,
                    &req(r.policy_name)?,
                )
                .await?;
                Ok(empty())
            }
            "DeleteGroupPolicy" => {
                let r = input!(iam::DeleteGroupPolicyRequest, p);
                ids.delete_inline_policy(
                    acct,
                    EntityKind::Group,
                    &req(r.group_name)?,
                    &req(r.policy_name)?,
                )
                .await?;
                Ok(empty())
            }
            "DeleteRolePolicy" => {
                let r = input!(iam::DeleteRolePolicyRequest, p);
                ids.delete_inline_policy(
                    acct,
                    EntityKind::Role,
                    &req(r.role_name)?,
                    &req(r.policy_name)?,
                )
                .await?;
                Ok(empty())
            }
            "ListUserPolicies" => {
                let r = input!(iam::ListUserPoliciesRequest, p);
                let pg = ids
                    .list_inline_policies(
                        acct,
                        EntityKind::User,
                        &req(r.user_name)?,
                        &page(r.marker, r.max_items),
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::ListUserPoliciesResponse {
                        policy_names: Some(pg.items.clone()),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "ListGroupPolicies" => {
                let r = input!(iam::ListGroupPoliciesRequest, p);
                let pg = ids
                    .list_inline_policies(
                        acct,
                        EntityKind::Group,
                        &req(r.group_name)?,
                        &page(r.marker, r.max_items),
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::ListGroupPoliciesResponse {
                        policy_names: Some(pg.items.clone()),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "ListRolePolicies" => {
                let r = input!(iam::ListRolePoliciesRequest, p);
                let pg = ids
                    .list_inline_policies(
                        acct,
                        EntityKind::Role,
                        &req(r.role_name)?,
                        &page(r.marker, r.max_items),
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::ListRolePoliciesResponse {
                        policy_names: Some(pg.items.clone()),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }

            // ------------------------------------------------------------------ access keys
            "CreateAccessKey" => {
                let r = input!(iam::CreateAccessKeyRequest, p);
                let user = match r.user_name {
                    Some(u) => u,
                    None => caller_user(ctx, op)?,
                };
                let key = ids.create_access_key(acct, &user).await?;
                Ok(xml(|o| {
                    iam::CreateAccessKeyResponse {
                        access_key: Some(iam::AccessKey {
                            user_name: Some(key.user_name.clone()),
                            access_key_id: Some(key.access_key_id.clone()),
                            status: Some("Active".into()),
                            // Shown this once; only the sealed copy remains.
                            secret_access_key: Some(SensitiveString::from(
                                key.secret_access_key.expose_secret(),
                            )),
                            create_date: ts(key.created),
                        }),
                    }
                    .to_query_xml(o);
                }))
            }
            "ListAccessKeys" => {
                let r = input!(iam::ListAccessKeysRequest, p);
                let user = match r.user_name {
                    Some(u) => u,
                    None => caller_user(ctx, op)?,
                };
                let pg = ids
                    .list_access_keys(acct, &user, &page(r.marker, r.max_items))
                    .await?;
                Ok(xml(|o| {
                    iam::ListAccessKeysResponse {
                        access_key_metadata: Some(
                            pg.items
                                .iter()
                                .map(|k| iam::AccessKeyMetadata {
                                    user_name: Some(k.user_name.clone()),
                                    access_key_id: Some(k.access_key_id.clone()),
                                    status: Some(status(k.active).into()),
                                    create_date: ts(k.created),
                                })
                                .collect(),
                        ),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "UpdateAccessKey" => {
                let r = input!(iam::UpdateAccessKeyRequest, p);
                let active = match req(r.status)?.as_str() {
                    "Active" => true,
                    "Inactive" => false,
                    other => {
                        return Err(AwsError::new(
                            400,
                            "ValidationError",
                            format!(
                                "1 validation error detected: Value '{other}' at 'status' failed to satisfy constraint: Member must satisfy enum value set: [Active, Inactive]"
                            ),
                        ));
                    }
                };
                let user = match r.user_name {
                    Some(u) => u,
                    None => caller_user(ctx, op)?,
                };
                ids.update_access_key(acct, &user, &req(r.access_key_id)?, active)
                    .await?;
                Ok(empty())
            }
            "DeleteAccessKey" => {
                let r = input!(iam::DeleteAccessKeyRequest, p);
                let user = match r.user_name {
                    Some(u) => u,
                    None => caller_user(ctx, op)?,
                };
                ids.delete_access_key(acct, &user, &req(r.access_key_id)?)
                    .await?;
                Ok(empty())
            }
            // ------------------------------------------------------------------ account views
            "ListEntitiesForPolicy" => {
                let r = input!(iam::ListEntitiesForPolicyRequest, p);
                let pg = ids
                    .list_entities_for_policy(
                        acct,
                        &req(r.policy_arn)?,
                        entity_kinds(r.entity_filter.as_deref()),
                        r.path_prefix.as_deref(),
                        id::PolicyUsage::from_filter(r.policy_usage_filter.as_deref()),
                        &page(r.marker, r.max_items),
                    )
                    .await?;
                let of = |kind: EntityKind| pg.items.iter().filter(move |e| e.kind == kind);
                Ok(xml(|o| {
                    iam::ListEntitiesForPolicyResponse {
                        policy_groups: Some(
                            of(EntityKind::Group)
                                .map(|e| iam::PolicyGroup {
                                    group_name: Some(e.name.clone()),
                                    group_id: Some(e.id.clone()),
                                })
                                .collect(),
                        ),
                        policy_users: Some(
                            of(EntityKind::User)
                                .map(|e| iam::PolicyUser {
                                    user_name: Some(e.name.clone()),
                                    user_id: Some(e.id.clone()),
                                })
                                .collect(),
                        ),
                        policy_roles: Some(
                            of(EntityKind::Role)
                                .map(|e| iam::PolicyRole {
                                    role_name: Some(e.name.clone()),
                                    role_id: Some(e.id.clone()),
                                })
                                .collect(),
                        ),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "GetAccountAuthorizationDetails" => {
                let r = input!(iam::GetAccountAuthorizationDetailsRequest, p);
                let details = ids
                    .account_authorization_details(
                        acct,
                        detail_filter(r.filter.as_deref()),
                        &page(r.marker, r.max_items),
                    )
                    .await?;
                Ok(xml(|o| details_out(&details).to_query_xml(o)))
            }
            "GetAccountSummary" => {
                let summary = ids.account_summary(acct).await?;
                Ok(xml(|o| {
                    iam::GetAccountSummaryResponse {
                        summary_map: Some(summary),
                    }
                    .to_query_xml(o);
                }))
            }

            // ------------------------------------------------------------------ instance profiles
            "CreateInstanceProfile" => {
                let r = input!(iam::CreateInstanceProfileRequest, p);
                let profile = ids
                    .create_instance_profile(
                        acct,
                        &req(r.instance_profile_name)?,
                        r.path.as_deref(),
                        &tags_in(r.tags),
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::CreateInstanceProfileResponse {
                        instance_profile: Some(profile_out(&profile, true)),
                    }
                    .to_query_xml(o);
                }))
            }
            "GetInstanceProfile" => {
                let r = input!(iam::GetInstanceProfileRequest, p);
                let profile = ids
                    .get_instance_profile(acct, &req(r.instance_profile_name)?)
                    .await?;
                Ok(xml(|o| {
                    iam::GetInstanceProfileResponse {
                        instance_profile: Some(profile_out(&profile, true)),
                    }
                    .to_query_xml(o);
                }))
            }
            "ListInstanceProfiles" => {
                let r = input!(iam::ListInstanceProfilesRequest, p);
                let pg = ids
                    .list_instance_profiles(
                        acct,
                        r.path_prefix.as_deref(),
                        &page(r.marker, r.max_items),
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::ListInstanceProfilesResponse {
                        instance_profiles: Some(
                            pg.items.iter().map(|i| profile_out(i, false)).collect(),
                        ),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "ListInstanceProfilesForRole" => {
                let r = input!(iam::ListInstanceProfilesForRoleRequest, p);
                let pg = ids
                    .list_instance_profiles_for_role(
                        acct,
                        &req(r.role_name)?,
                        &page(r.marker, r.max_items),
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::ListInstanceProfilesForRoleResponse {
                        instance_profiles: Some(
                            pg.items.iter().map(|i| profile_out(i, false)).collect(),
                        ),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }
            "DeleteInstanceProfile" => {
                let r = input!(iam::DeleteInstanceProfileRequest, p);
                ids.delete_instance_profile(acct, &req(r.instance_profile_name)?)
                    .await?;
                Ok(empty())
            }
            "AddRoleToInstanceProfile" => {
                let r = input!(iam::AddRoleToInstanceProfileRequest, p);
                ids.add_role_to_instance_profile(
                    acct,
                    &req(r.instance_profile_name)?,
                    &req(r.role_name)?,
                )
                .await?;
                Ok(empty())
            }
            "RemoveRoleFromInstanceProfile" => {
                let r = input!(iam::RemoveRoleFromInstanceProfileRequest, p);
                ids.remove_role_from_instance_profile(
                    acct,
                    &req(r.instance_profile_name)?,
                    &req(r.role_name)?,
                )
                .await?;
                Ok(empty())
            }
            "TagInstanceProfile" => {
                let r = input!(iam::TagInstanceProfileRequest, p);
                ids.tag_instance_profile(acct, &req(r.instance_profile_name)?, &tags_in(r.tags))
                    .await?;
                Ok(empty())
            }
            "UntagInstanceProfile" => {
                let r = input!(iam::UntagInstanceProfileRequest, p);
                ids.untag_instance_profile(
                    acct,
                    &req(r.instance_profile_name)?,
                    &r.tag_keys.unwrap_or_default(),
                )
                .await?;
                Ok(empty())
            }
            "ListInstanceProfileTags" => {
                let r = input!(iam::ListInstanceProfileTagsRequest, p);
                let pg = ids
                    .list_instance_profile_tags(
                        acct,
                        &req(r.instance_profile_name)?,
                        &page(r.marker, r.max_items),
                    )
                    .await?;
                Ok(xml(|o| {
                    iam::ListInstanceProfileTagsResponse {
                        tags: Some(pg.items.iter().map(tag_out).collect()),
                        is_truncated: truncated(&pg),
                        marker: pg.marker.clone(),
                    }
                    .to_query_xml(o);
                }))
            }

            // ------------------------------------------------------------------ credentials Citadel has none of
            "ListMFADevices" => {
                let r = input!(iam::ListMFADevicesRequest, p);
                self.credential_owner(ctx, r.user_name).await?;
                Ok(xml(|o| {
                    iam::ListMFADevicesResponse {
                        mfa_devices: Some(Vec::new()),
                        is_truncated: Some(false),
                        marker: None,
                    }
                    .to_query_xml(o);
                }))
            }
            "ListSigningCertificates" => {
                let r = input!(iam::ListSigningCertificatesRequest, p);
                self.credential_owner(ctx, r.user_name).await?;
                Ok(xml(|o| {
                    iam::ListSigningCertificatesResponse {
                        certificates: Some(Vec::new()),
                        is_truncated: Some(false),
                        marker: None,
                    }
                    .to_query_xml(o);
                }))
            }
            "ListSSHPublicKeys" => {
                let r = input!(iam::ListSSHPublicKeysRequest, p);
                self.credential_owner(ctx, r.user_name).await?;
                Ok(xml(|o| {
                    iam::ListSSHPublicKeysResponse {
                        ssh_public_keys: Some(Vec::new()),
                        is_truncated: Some(false),
                        marker: None,
                    }
                    .to_query_xml(o);
                }))
            }
            "ListServiceSpecificCredentials" => {
                let r = input!(iam::ListServiceSpecificCredentialsRequest, p);
                if !r.all_users.unwrap_or(false) {
                    self.credential_owner(ctx, r.user_name).await?;
                }
                Ok(xml(|o| {
                    iam::ListServiceSpecificCredentialsResponse {
                        service_specific_credentials: Some(Vec::new()),
                        is_truncated: Some(false),
                        marker: None,
                    }
                    .to_query_xml(o);
                }))
            }
            "GetLoginProfile" | "DeleteLoginProfile" => {
                let user_name = if op == "GetLoginProfile" {
                    input!(iam::GetLoginProfileRequest, p).user_name
                } else {
                    input!(iam::DeleteLoginProfileRequest, p).user_name
                };
                let owner = self
                    .credential_owner(ctx, user_name)
                    .await?
                    .unwrap_or_else(|| "root".to_owned());
                Err(AwsError::new(
                    404,
                    "NoSuchEntity",
                    format!("Login Profile for User {owner} cannot be found."),
                ))
            }
            "ListVirtualMFADevices" => {
                input!(iam::ListVirtualMFADevicesRequest, p);
                Ok(xml(|o| {
                    iam::ListVirtualMFADevicesResponse {
                        virtual_mfa_devices: Some(Vec::new()),
                        is_truncated: Some(false),
                        marker: None,
                    }
                    .to_query_xml(o);
                }))
            }

            // ------------------------------------------------------------------ simulator
            "SimulateCustomPolicy" => {
                let r = iam::SimulateCustomPolicyRequest::from_query(p)?;
                // Checked before the model's enum validation: IAM answers InvalidInput.
                simulate::check_context_types(r.context_entries.as_deref())?;
                r.validate()?;
                let sim = simulate::Simulation::custom(
                    acct,
                    simulate::Common {
                        policy_input_list: r.policy_input_list,
                        boundary_input_list: r.permissions_boundary_policy_input_list,
                        resource_policy: r.resource_policy,
                        resource_owner: r.resource_owner,
                        caller_arn: r.caller_arn,
                        context_entries: r.context_entries,
                    },
                )?;
                let out = sim.run(
                    &r.action_names.unwrap_or_default(),
                    &r.resource_arns.unwrap_or_default(),
                    r.marker.as_deref(),
                    r.max_items,
                )?;
                Ok(xml(|o| out.to_query_xml(o)))
            }
            "SimulatePrincipalPolicy" => {
                let r = iam::SimulatePrincipalPolicyRequest::from_query(p)?;
                // Checked before the model's enum validation: IAM answers InvalidInput.
                simulate::check_context_types(r.context_entries.as_deref())?;
                r.validate()?;
                let sim = simulate::Simulation::principal(
                    ids,
                    acct,
                    &req(r.policy_source_arn)?,
                    simulate::Common {
                        policy_input_list: r.policy_input_list,
                        boundary_input_list: r.permissions_boundary_policy_input_list,
                        resource_policy: r.resource_policy,
                        resource_owner: r.resource_owner,
                        caller_arn: r.caller_arn,
                        context_entries: r.context_entries,
                    },
                )
                .await?;
                let out = sim.run(
                    &r.action_names.unwrap_or_default(),
                    &r.resource_arns.unwrap_or_default(),
                    r.marker.as_deref(),
                    r.max_items,
                )?;
                Ok(xml(|o| out.to_query_xml(o)))
            }
            "GetAccessKeyLastUsed" => {
                let r = input!(iam::GetAccessKeyLastUsedRequest, p);
                let usage = ids
                    .access_key_last_used(acct, &req(r.access_key_id)?)
                    .await?;
                // A key never used reports N/A for service and region, as IAM does.
                let last = match usage.last_used {
                    Some(u) => iam::AccessKeyLastUsed {
                        last_used_date: ts(u.at),
                        service_name: Some(u.service),
                        region: Some(u.region),
                    },
                    None => iam::AccessKeyLastUsed {
                        last_used_date: None,
                        service_name: Some("N/A".into()),
                        region: Some("N/A".into()),
                    },
                };
                Ok(xml(|o| {
                    iam::GetAccessKeyLastUsedResponse {
                        user_name: usage.user_name,
                        access_key_last_used: Some(last),
                    }
                    .to_query_xml(o);
                }))
            }
            other => Err(AwsError::unsupported_operation("iam", other)),
        }
    }
}

fn status(active: bool) -> &'static str {
    if active { "Active" } else { "Inactive" }
}

fn attached_out(pg: &Page<id::AttachedPolicyInfo>) -> Vec<iam::AttachedPolicy> {
    pg.items
        .iter()
        .map(|a| iam::AttachedPolicy {
            policy_name: Some(a.name.clone()),
            policy_arn: Some(a.arn.clone()),
        })
        .collect()
}

impl Iam {
    async fn attach(
        &self,
        op: &str,
        acct: &str,
        kind: EntityKind,
        entity: String,
        policy_arn: String,
    ) -> Result<OperationOutput, AwsError> {
        if op.starts_with("Attach") {
            self.identities
                .attach_policy(acct, kind, &entity, &policy_arn)
                .await?;
        } else {
            self.identities
                .detach_policy(acct, kind, &entity, &policy_arn)
                .await?;
        }
        Ok(empty())
    }

    /// The IAM user whose credentials a listing is about: `user` if given (it must exist),
    /// else the calling user; `None` for the root user, whose own credentials these are.
    async fn credential_owner(
        &self,
        ctx: &RequestContext,
        user: Option<String>,
    ) -> Result<Option<String>, AwsError> {
        let principal = &ctx.principal;
        let name = match (user, principal.kind) {
            (Some(u), _) => u,
            (None, PrincipalKind::User) => name_from_principal_arn(&principal.arn)
                .unwrap_or_default()
                .to_owned(),
            (None, PrincipalKind::Root) => return Ok(None),
            (None, PrincipalKind::AssumedRole) => {
                return Err(AwsError::new(
                    400,
                    "ValidationError",
                    "Must specify userName when calling with non-User credentials",
                ));
            }
        };
        let user = self
            .identities
            .get_user(&principal.account_id, &name)
            .await?;
        Ok(Some(user.name))
    }

    /// `GetUser` without a name: the calling user, or for the root user what IAM reports about
    /// root (its ARN, the account id as its id, and when its credentials were created).
    async fn caller_as_user(&self, ctx: &RequestContext) -> Result<iam::User, AwsError> {
        let principal = &ctx.principal;
        match principal.kind {
            PrincipalKind::User => {
                let name = name_from_principal_arn(&principal.arn).unwrap_or_default();
                Ok(user_out(
                    &self
                        .identities
                        .get_user(&principal.account_id, name)
                        .await?,
                    true,
                ))
            }
            PrincipalKind::Root => {
                let created = self
                    .identities
                    .root_user_created(&principal.account_id)
                    .await
                    .map_err(|_| AwsError::internal())?;
                Ok(iam::User {
                    user_id: Some(principal.account_id.clone()),
                    arn: Some(principal.arn.clone()),
                    create_date: created.and_then(ts),
                    ..Default::default()
                })
            }
            PrincipalKind::AssumedRole => Err(AwsError::new(
                400,
                "ValidationError",
                "Must specify userName when calling with non-User credentials",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_documents_are_url_encoded_like_iam() {
        let doc = "{\"Version\": \"2012-10-17\", \"Statement\": [{\"Action\": \"s3:*\"}]}\n";
        let encoded = encode_policy(doc);
        assert_eq!(
            encoded,
            "%7B%22Version%22%3A%20%222012-10-17%22%2C%20%22Statement%22%3A%20%5B%7B%22Action%22%3A%20%22s3%3A%2A%22%7D%5D%7D%0A"
        );
        let decoded = percent_encoding::percent_decode_str(&encoded)
            .decode_utf8()
            .unwrap();
        assert_eq!(decoded, doc);
    }

    #[test]
    fn every_implemented_operation_is_in_the_model() {
        for (name, _) in IMPLEMENTED {
            assert!(iam::SPEC.operation(name).is_some(), "{name}");
        }
        let mut names: Vec<_> = IMPLEMENTED.iter().map(|(n, _)| *n).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), IMPLEMENTED.len());
    }
}
