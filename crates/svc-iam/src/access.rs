//! The resource each IAM operation is authorized on, as IAM's service authorization reference
//! lists it: the user, group or role it names (with its path, which policies may match on), the
//! managed policy or instance profile it names, or `*` for listings of no particular entity
//! (`GetAccountAuthorizationDetails`, `GetAccountSummary`, …). Attachment operations
//! act on the entity and carry the policy as `iam:PolicyARN`; group membership changes act on
//! the group; putting a role into (or taking it out of) an instance profile acts on the profile.
//! Listings of a user's credentials without `UserName` act on the calling user. An entity that
//! does not exist yet (or any more) is named with the path the request
//! gives, or `/`: the operation then fails with `NoSuchEntity` once it is allowed.

use citadel_api::{AccessTarget, PrincipalKind, RequestContext};
use citadel_iam::IdentityStore;
use citadel_iam::identity::{
    EntityKind, PageRequest, entity_arn, instance_profile_arn, policy_arn,
};

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The ARN of an existing entity, or the one it would have with `path`.
async fn entity(
    ids: &IdentityStore,
    account: &str,
    kind: EntityKind,
    name: &str,
    path: Option<&str>,
) -> String {
    let existing = match kind {
        EntityKind::User => ids.get_user(account, name).await.ok().map(|u| u.arn),
        EntityKind::Role => ids.get_role(account, name).await.ok().map(|r| r.arn),
        EntityKind::Group => ids
            .get_group(
                account,
                name,
                &PageRequest {
                    marker: None,
                    max_items: Some(1),
                },
            )
            .await
            .ok()
            .map(|(g, _)| g.arn),
    };
    existing.unwrap_or_else(|| entity_arn(account, kind, path.unwrap_or("/"), name))
}

/// Operations about the calling user's own credentials when they name no user.
fn acts_on_caller(operation: &str) -> bool {
    operation.contains("AccessKey")
        || matches!(
            operation,
            "ListMFADevices"
                | "ListSigningCertificates"
                | "ListSSHPublicKeys"
                | "ListServiceSpecificCredentials"
                | "GetLoginProfile"
        )
}

/// What `operation` with `params` is authorized on.
pub async fn target(
    ids: &IdentityStore,
    ctx: &RequestContext,
    operation: &str,
    params: &[(String, String)],
) -> AccessTarget {
    let account = ctx.principal.account_id.as_str();
    let path = param(params, "Path");
    let policy = param(params, "PolicyArn");
    let with_policy = |t: AccessTarget| match policy {
        Some(p) => t.condition("iam:PolicyARN", p),
        None => t,
    };
    if operation == "CreatePolicy" {
        return match param(params, "PolicyName") {
            Some(name) => AccessTarget::resource(policy_arn(account, path.unwrap_or("/"), name)),
            None => AccessTarget::any(),
        };
    }
    if operation == "SimulatePrincipalPolicy" {
        return param(params, "PolicySourceArn")
            .map_or_else(AccessTarget::any, AccessTarget::resource);
    }
    if let Some(profile) = param(params, "InstanceProfileName") {
        let arn = match ids.get_instance_profile(account, profile).await {
            Ok(p) => p.arn,
            Err(_) => {
                let creates = operation == "CreateInstanceProfile";
                let at = if creates { path } else { None };
                instance_profile_arn(account, at.unwrap_or("/"), profile)
            }
        };
        return AccessTarget::resource(arn);
    }
    // Group membership is a change to the group.
    let group_first = matches!(operation, "AddUserToGroup" | "RemoveUserFromGroup");
    let (kind, name) = match (
        param(params, "UserName"),
        param(params, "GroupName"),
        param(params, "RoleName"),
    ) {
        (_, Some(g), _) if group_first => (EntityKind::Group, g),
        (Some(u), _, _) => (EntityKind::User, u),
        (_, Some(g), _) => (EntityKind::Group, g),
        (_, _, Some(r)) => (EntityKind::Role, r),
        _ => {
            // Access-key operations without UserName act on the calling user.
            if acts_on_caller(operation) && ctx.principal.kind == PrincipalKind::User {
                return AccessTarget::resource(ctx.principal.arn.clone());
            }
            return match policy {
                Some(p) => AccessTarget::resource(p),
                None => AccessTarget::any(),
            };
        }
    };
    let creates = matches!(operation, "CreateUser" | "CreateGroup" | "CreateRole");
    let arn = entity(ids, account, kind, name, if creates { path } else { None }).await;
    with_policy(AccessTarget::resource(arn))
}
