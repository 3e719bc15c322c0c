//! AWS's policy evaluation logic: explicit deny wins; within an account an allow from identity
//! policies or from the resource policy suffices; across accounts both must allow; permissions
//! boundaries and session policies narrow identity-based allows; KMS key policies must allow
//! (directly, or by delegating to the account's IAM policies); grants add allows.

use std::sync::Arc;

use citadel_api::AwsError;

use super::context::{EvalContext, PrincipalType, arn_account};
use super::document::Policy;
use super::error::ErrorFlavour;
use super::principal::MatchKind;

/// Which kind of policy decided a denial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PolicyType {
    Identity,
    Resource,
    PermissionsBoundary,
    Session,
}

/// Why a request was implicitly denied (no explicit deny, but not enough allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImplicitDenyReason {
    /// No identity-based policy allows the action (and no resource policy grants it alone).
    NoIdentityAllow,
    /// The resource-based policy (KMS key policy, cross-account resource policy) does not allow.
    NoResourceAllow,
    /// An identity-based allow exists but the permissions boundary does not allow.
    BoundaryDeny,
    /// An identity-based allow exists but no session policy allows.
    SessionPolicyDeny,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvalDecision {
    Allow,
    ExplicitDeny(PolicyType),
    ImplicitDeny(ImplicitDenyReason),
}

/// Points at a statement: the `policy_index`-th policy of `policy_type` in the [`EvalInput`]
/// (0 for the boundary and the resource policy), its `statement_index`-th statement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatementRef {
    pub policy_type: PolicyType,
    pub policy_index: usize,
    pub statement_index: usize,
}

/// The decision and, where one statement decided it, that statement (the denying statement,
/// or the allow that granted access; `None` for grants and for implicit denies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EvalResult {
    pub decision: EvalDecision,
    pub statement: Option<StatementRef>,
}

/// Everything that decides one request.
#[derive(Debug, Clone, Copy)]
pub struct EvalInput<'a> {
    pub context: &'a EvalContext,
    /// The caller's identity-based policies: a user's inline, attached managed and group
    /// policies, or a role's inline and attached policies. Empty for root, services, anonymous.
    pub identity_policies: &'a [Arc<Policy>],
    pub permissions_boundary: Option<&'a Policy>,
    /// Inline and managed session policies of a role session; empty means the session has none
    /// (it is not narrowed). Several are one set: any of them may allow.
    pub session_policies: &'a [Arc<Policy>],
    /// The resource's policy (KMS key policy, secret policy, role trust policy, …).
    pub resource_policy: Option<&'a Policy>,
    /// The account owning the resource; taken from the resource ARN when `None`, and the
    /// caller's own account when the ARN has none (`*`).
    pub resource_account: Option<&'a str>,
    /// The resource is a KMS key: its key policy must allow, even for the account's root.
    pub kms_key_policy: bool,
    /// A KMS grant allows this request.
    pub grant_allows: bool,
}

impl<'a> EvalInput<'a> {
    pub fn new(context: &'a EvalContext) -> Self {
        EvalInput {
            context,
            identity_policies: &[],
            permissions_boundary: None,
            session_policies: &[],
            resource_policy: None,
            resource_account: None,
            kms_key_policy: false,
            grant_allows: false,
        }
    }

    pub fn identity_policies(mut self, policies: &'a [Arc<Policy>]) -> Self {
        self.identity_policies = policies;
        self
    }

    pub fn permissions_boundary(mut self, boundary: Option<&'a Policy>) -> Self {
        self.permissions_boundary = boundary;
        self
    }

    pub fn session_policies(mut self, policies: &'a [Arc<Policy>]) -> Self {
        self.session_policies = policies;
        self
    }

    pub fn resource_policy(mut self, policy: Option<&'a Policy>) -> Self {
        self.resource_policy = policy;
        self
    }

    pub fn resource_account(mut self, account: Option<&'a str>) -> Self {
        self.resource_account = account;
        self
    }

    /// Marks the resource as a KMS key whose key policy is `policy`.
    pub fn kms_key_policy(mut self, policy: &'a Policy) -> Self {
        self.resource_policy = Some(policy);
        self.kms_key_policy = true;
        self
    }

    pub fn grant_allows(mut self, allows: bool) -> Self {
        self.grant_allows = allows;
        self
    }
}

fn deny(policy_type: PolicyType, policy_index: usize, statement_index: usize) -> EvalResult {
    EvalResult {
        decision: EvalDecision::ExplicitDeny(policy_type),
        statement: Some(StatementRef {
            policy_type,
            policy_index,
            statement_index,
        }),
    }
}

fn implicit(reason: ImplicitDenyReason) -> EvalResult {
    EvalResult {
        decision: EvalDecision::ImplicitDeny(reason),
        statement: None,
    }
}

fn allow(statement: Option<StatementRef>) -> EvalResult {
    EvalResult {
        decision: EvalDecision::Allow,
        statement,
    }
}

/// Decides one request. Pure: no I/O, no clock, no allocation beyond policy-variable
/// substitution.
pub fn evaluate(input: &EvalInput<'_>) -> EvalResult {
    let ctx = input.context;
    let principal = ctx.principal();
    let has_boundary = input.permissions_boundary.is_some();

    // 1. Explicit denies, in every applicable policy, collecting the allows on the way.
    let mut identity_allow: Option<StatementRef> = None;
    for (i, policy) in input.identity_policies.iter().enumerate() {
        let out = policy.outcome(ctx, has_boundary);
        if let Some(s) = out.deny {
            return deny(PolicyType::Identity, i, s);
        }
        if identity_allow.is_none()
            && let Some((_, s)) = out.allow
        {
            identity_allow = Some(StatementRef {
                policy_type: PolicyType::Identity,
                policy_index: i,
                statement_index: s,
            });
        }
    }
    let mut resource_allow: Option<(MatchKind, StatementRef)> = None;
    if let Some(policy) = input.resource_policy {
        let out = policy.outcome(ctx, has_boundary);
        if let Some(s) = out.deny {
            return deny(PolicyType::Resource, 0, s);
        }
        resource_allow = out.allow.map(|(kind, s)| {
            (
                kind,
                StatementRef {
                    policy_type: PolicyType::Resource,
                    policy_index: 0,
                    statement_index: s,
                },
            )
        });
    }
    let mut boundary_ok = true;
    if let Some(boundary) = input.permissions_boundary {
        let out = boundary.outcome(ctx, has_boundary);
        if let Some(s) = out.deny {
            return deny(PolicyType::PermissionsBoundary, 0, s);
        }
        boundary_ok = out.allow.is_some();
    }
    let mut session_ok = input.session_policies.is_empty();
    for (i, policy) in input.session_policies.iter().enumerate() {
        let out = policy.outcome(ctx, has_boundary);
        if let Some(s) = out.deny {
            return deny(PolicyType::Session, i, s);
        }
        session_ok |= out.allow.is_some();
    }

    // 2. Allows. Grants (KMS) allow by themselves once nothing denies.
    if input.grant_allows {
        return allow(None);
    }
    let is_iam_identity = matches!(
        principal.kind,
        PrincipalType::Root
            | PrincipalType::User
            | PrincipalType::AssumedRole
            | PrincipalType::FederatedUser
    );
    if !is_iam_identity {
        // Services and anonymous callers have no identity policies: only a resource policy
        // that names them (or everyone) can let them in.
        return match resource_allow {
            Some((MatchKind::Exact | MatchKind::Limited, s)) => allow(Some(s)),
            _ => implicit(ImplicitDenyReason::NoResourceAllow),
        };
    }

    // The root user has every permission in its own account (and on its side of a
    // cross-account request); it cannot carry a boundary or session policies.
    let identity_ok = principal.kind == PrincipalType::Root || identity_allow.is_some();
    let narrowing_ok = boundary_ok && session_ok;
    let chain_ok = identity_ok && narrowing_ok;
    let chain_failure = |resource_counts: bool| {
        if !identity_ok && !resource_counts {
            ImplicitDenyReason::NoIdentityAllow
        } else if !boundary_ok {
            ImplicitDenyReason::BoundaryDeny
        } else if !session_ok {
            ImplicitDenyReason::SessionPolicyDeny
        } else {
            ImplicitDenyReason::NoIdentityAllow
        }
    };

    let resource_account = input
        .resource_account
        .or_else(|| arn_account(ctx.resource()));
    let same_account = match (principal.account.as_deref(), resource_account) {
        (Some(mine), Some(theirs)) => mine == theirs,
        (Some(_), None) => true,
        (None, _) => false,
    };

    if !same_account {
        // Cross-account: the resource policy must name the caller or its account, and the
        // caller's own account must allow through identity policies, boundary and session.
        let Some((_, s)) = resource_allow else {
            return implicit(ImplicitDenyReason::NoResourceAllow);
        };
        if !chain_ok {
            return implicit(chain_failure(false));
        }
        return allow(identity_allow.or(Some(s)));
    }

    match resource_allow {
        // A grant to the caller's own ARN is not narrowed by boundary or session policies.
        Some((MatchKind::Exact, s)) => return allow(Some(s)),
        // A grant to the role (or to everyone) joins the permissions the session starts from,
        // which boundary and session policies then narrow.
        Some((MatchKind::Limited, s)) if narrowing_ok => return allow(Some(s)),
        _ => {}
    }
    if input.kms_key_policy {
        // The key policy must allow; naming only the account delegates to IAM policies.
        return match resource_allow {
            None => implicit(ImplicitDenyReason::NoResourceAllow),
            Some((MatchKind::Account, s)) if chain_ok => allow(identity_allow.or(Some(s))),
            Some((kind, _)) => implicit(chain_failure(kind == MatchKind::Limited)),
        };
    }
    if chain_ok {
        return allow(identity_allow);
    }
    let resource_counts = matches!(resource_allow, Some((MatchKind::Limited, _)));
    implicit(chain_failure(resource_counts))
}

impl EvalResult {
    pub fn is_allowed(&self) -> bool {
        self.decision == EvalDecision::Allow
    }

    /// AWS's access-denied message, `None` when the request is allowed:
    /// `User: <arn> is not authorized to perform: <action> on resource: <resource> because no
    /// identity-based policy allows the <action> action`, `… with an explicit deny in a
    /// resource-based policy`, and so on for each policy type.
    pub fn access_denied_message(
        &self,
        principal_arn: &str,
        action: &str,
        resource: &str,
    ) -> Option<String> {
        let head = format!(
            "User: {principal_arn} is not authorized to perform: {action} on resource: {resource}"
        );
        let message = match self.decision {
            EvalDecision::Allow => return None,
            EvalDecision::ExplicitDeny(t) => {
                let what = match t {
                    PolicyType::Identity => "an identity-based policy",
                    PolicyType::Resource => "a resource-based policy",
                    PolicyType::PermissionsBoundary => "a permissions boundary",
                    PolicyType::Session => "a session policy",
                };
                format!("{head} with an explicit deny in {what}")
            }
            EvalDecision::ImplicitDeny(reason) => {
                let what = match reason {
                    ImplicitDenyReason::NoIdentityAllow => "identity-based policy",
                    ImplicitDenyReason::NoResourceAllow => "resource-based policy",
                    ImplicitDenyReason::BoundaryDeny => "permissions boundary",
                    ImplicitDenyReason::SessionPolicyDeny => "session policy",
                };
                format!("{head} because no {what} allows the {action} action")
            }
        };
        Some(message)
    }

    /// The access-denied error in the service's shape: `AccessDenied` (403) for IAM and STS,
    /// `AccessDeniedException` (400) for KMS and Secrets Manager.
    pub fn access_denied_error(
        &self,
        principal_arn: &str,
        action: &str,
        resource: &str,
        flavour: ErrorFlavour,
    ) -> Option<AwsError> {
        let message = self.access_denied_message(principal_arn, action, resource)?;
        Some(match flavour {
            ErrorFlavour::Iam | ErrorFlavour::Sts => AwsError::new(403, "AccessDenied", message),
            ErrorFlavour::Kms | ErrorFlavour::SecretsManager => {
                AwsError::new(400, "AccessDeniedException", message)
            }
        })
    }
}
