//! `SimulatePrincipalPolicy` and `SimulateCustomPolicy`: the policy simulator, answered by the
//! same evaluator ([`citadel_iam::policy::evaluate`]) that authorizes every real request.
//!
//! Each (action, resource) pair becomes one `EvaluationResult`; the deciding statement (the
//! explicit deny, or the allow that granted access) is the one `MatchedStatements` entry.
//! Statement positions are not reported: parsed policies do not keep their source offsets.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use citadel_api::{AwsError, Principal, PrincipalKind};
use citadel_iam::IdentityStore;
use citadel_iam::identity::{EntityKind, PageRequest, PolicySource};
use citadel_iam::policy::{
    ActionElement, ContextValue, EvalContext, EvalDecision, EvalInput, EvalResult,
    IdentityPolicyKind, ImplicitDenyReason, Policy, PolicyKind, PolicyType, PrincipalInfo,
    PrincipalType, evaluate,
};
use citadel_model::iam;

/// `MaxItems` when the request gives none (as IAM).
const DEFAULT_MAX_ITEMS: usize = 100;

/// The `SourcePolicyType` of policies passed in the request (what IAM reports for them).
const INPUT_POLICY: &str = "IAM Policy";
const BOUNDARY_POLICY: &str = "PermissionsBoundaryPolicy";
const RESOURCE_POLICY: &str = "Resource Policy";

/// A parsed policy and how the simulator names it in `MatchedStatements`.
#[derive(Debug, Clone)]
struct Sourced {
    policy: Arc<Policy>,
    id: String,
    kind: String,
}

/// Everything a simulation evaluates, independent of the action and resource.
#[derive(Debug)]
pub(crate) struct Simulation {
    principal: PrincipalInfo,
    /// Whether the caller's ARN is known (`CallerArn`, or a user as `PolicySourceArn`);
    /// without it `aws:PrincipalArn` and `aws:username` are missing context values.
    caller_known: bool,
    identity: Vec<Sourced>,
    boundary: Option<Sourced>,
    resource_policy: Option<Sourced>,
    resource_owner: Option<String>,
    entries: Vec<(String, Vec<ContextValue>)>,
}

/// The members both simulate operations share.
pub(crate) struct Common {
    pub policy_input_list: Option<Vec<String>>,
    pub boundary_input_list: Option<Vec<String>>,
    pub resource_policy: Option<String>,
    pub resource_owner: Option<String>,
    pub caller_arn: Option<String>,
    pub context_entries: Option<Vec<iam::ContextEntry>>,
}

fn invalid(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "InvalidInput", message.into())
}

fn no_such_entity(arn: &str) -> AwsError {
    AwsError::new(
        404,
        "NoSuchEntity",
        format!("PolicySourceArn {arn} does not match any user, group or role in this account."),
    )
}

fn parse(json: &str, kind: PolicyKind) -> Result<Arc<Policy>, AwsError> {
    Policy::parse(json, kind)
        .map(Arc::new)
        .map_err(|e| AwsError::new(400, "MalformedPolicyDocument", e.to_string()))
}

fn input_policies(
    list: Option<&[String]>,
    kind: PolicyKind,
    member: &str,
    source_type: &str,
) -> Result<Vec<Sourced>, AwsError> {
    list.unwrap_or_default()
        .iter()
        .enumerate()
        .map(|(i, doc)| {
            Ok(Sourced {
                policy: parse(doc, kind)?,
                id: format!("{member}.{}", i + 1),
                kind: source_type.to_owned(),
            })
        })
        .collect()
}

/// Splits `arn:aws:iam::ACCT:TYPE/path/name` into (account, type, name).
fn split_iam_arn(arn: &str) -> Option<(&str, &str, &str)> {
    let mut parts = arn.splitn(6, ':');
    let (Some("arn"), Some(_), Some("iam"), Some(_), Some(account), Some(resource)) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let (kind, rest) = resource.split_once('/')?;
    let name = rest.rsplit('/').next().filter(|n| !n.is_empty())?;
    Some((account, kind, name))
}

/// The simulated caller named by `CallerArn`: only IAM users (as IAM).
fn caller_from_arn(arn: &str, account: &str) -> Result<PrincipalInfo, AwsError> {
    match split_iam_arn(arn) {
        Some((acct, "user", name)) => Ok(PrincipalInfo {
            arn: arn.to_owned(),
            account: Some(acct.to_owned()),
            kind: PrincipalType::User,
            user_id: None,
            username: Some(name.to_owned()),
            tags: Vec::new(),
            session_issuer_arn: None,
        }),
        _ => Err(invalid(format!(
            "Invalid CallerArn {arn}: the simulated caller must be an IAM user of account {account}."
        ))),
    }
}

/// A caller nobody named: a user of the account whose ARN and name are unknown.
fn anonymous_user(account: &str) -> PrincipalInfo {
    PrincipalInfo {
        arn: format!("arn:aws:iam::{account}:user/"),
        account: Some(account.to_owned()),
        kind: PrincipalType::User,
        user_id: None,
        username: None,
        tags: Vec::new(),
        session_issuer_arn: None,
    }
}

/// Refuses a `ContextKeyType` that is not one of the model's (`InvalidInput`).
pub(crate) fn check_context_types(entries: Option<&[iam::ContextEntry]>) -> Result<(), AwsError> {
    for entry in entries.unwrap_or_default() {
        if let Some(t) = entry.context_key_type.as_deref()
            && t.parse::<iam::ContextKeyTypeEnum>().is_err()
        {
            let name = entry.context_key_name.as_deref().unwrap_or_default();
            return Err(invalid(format!(
                "Invalid ContextKeyType {t} for context key {name}: expected one of {}.",
                iam::ContextKeyTypeEnum::VALUES.join(", ")
            )));
        }
    }
    Ok(())
}

/// Converts `ContextEntries` to typed context values; an unknown type or a value that does not
/// fit its type is `InvalidInput`.
fn context_entries(
    entries: Option<&[iam::ContextEntry]>,
) -> Result<Vec<(String, Vec<ContextValue>)>, AwsError> {
    let mut out = Vec::new();
    for entry in entries.unwrap_or_default() {
        let Some(name) = entry.context_key_name.as_deref().filter(|n| !n.is_empty()) else {
            return Err(invalid("ContextKeyName is required in each context entry."));
        };
        let type_name = entry.context_key_type.as_deref().unwrap_or("string");
        let Ok(ty) = type_name.parse::<iam::ContextKeyTypeEnum>() else {
            return Err(invalid(format!(
                "Invalid ContextKeyType {type_name} for context key {name}: expected one of {}.",
                iam::ContextKeyTypeEnum::VALUES.join(", ")
            )));
        };
        use iam::ContextKeyTypeEnum as T;
        let list = matches!(
            ty,
            T::StringList
                | T::NumericList
                | T::BooleanList
                | T::IpList
                | T::BinaryList
                | T::DateList
        );
        let raw = entry.context_key_values.as_deref().unwrap_or_default();
        if !list && raw.len() > 1 {
            return Err(invalid(format!(
                "Context key {name} has type {type_name} and accepts a single value; use {type_name}List for several."
            )));
        }
        let bad = |v: &str| {
            invalid(format!(
                "Invalid value {v} for context key {name} of type {type_name}."
            ))
        };
        let mut values = Vec::with_capacity(raw.len());
        for v in raw {
            let value = match ty {
                T::String | T::StringList | T::Date | T::DateList => ContextValue::from(v.as_str()),
                T::Numeric | T::NumericList => {
                    if let Ok(i) = v.trim().parse::<i64>() {
                        ContextValue::Integer(i)
                    } else if v.trim().parse::<f64>().is_ok() {
                        ContextValue::from(v.trim())
                    } else {
                        return Err(bad(v));
                    }
                }
                T::Boolean | T::BooleanList => match v.trim().to_ascii_lowercase().as_str() {
                    "true" => ContextValue::Bool(true),
                    "false" => ContextValue::Bool(false),
                    _ => return Err(bad(v)),
                },
                T::Ip | T::IpList => ContextValue::Ip(v.trim().parse().map_err(|_| bad(v))?),
                T::Binary | T::BinaryList => ContextValue::Binary(
                    base64::engine::general_purpose::STANDARD
                        .decode(v.trim())
                        .map_err(|_| bad(v))?,
                ),
            };
            values.push(value);
        }
        out.push((name.to_owned(), values));
    }
    Ok(out)
}

fn internal<E>(_: E) -> AwsError {
    AwsError::internal()
}

impl Simulation {
    /// `SimulateCustomPolicy`: only the policies in the request.
    pub(crate) fn custom(account: &str, common: Common) -> Result<Self, AwsError> {
        let identity = input_policies(
            common.policy_input_list.as_deref(),
            PolicyKind::Identity(IdentityPolicyKind::Managed),
            "PolicyInputList",
            INPUT_POLICY,
        )?;
        let (principal, caller_known) = match common.caller_arn.as_deref() {
            Some(arn) => (caller_from_arn(arn, account)?, true),
            None => (anonymous_user(account), false),
        };
        Self::finish(principal, caller_known, identity, None, common)
    }

    /// `SimulatePrincipalPolicy`: the policies of the user (with its groups'), group or role
    /// `source_arn`, plus those in the request.
    pub(crate) async fn principal(
        ids: &IdentityStore,
        account: &str,
        source_arn: &str,
        common: Common,
    ) -> Result<Self, AwsError> {
        let Some((arn_account, kind, name)) = split_iam_arn(source_arn) else {
            return Err(invalid(format!(
                "Invalid PolicySourceArn {source_arn}: expected the ARN of a user, group or role."
            )));
        };
        if arn_account != account {
            return Err(no_such_entity(source_arn));
        }
        let not_found = |e: AwsError| {
            if e.code == "NoSuchEntity" {
                no_such_entity(source_arn)
            } else {
                e
            }
        };
        let (mut principal, mut caller_known, mut identity, mut boundary) = match kind {
            "user" => {
                let user = ids.get_user(account, name).await.map_err(not_found)?;
                let p = Principal {
                    account_id: account.to_owned(),
                    arn: user.arn.clone(),
                    user_id: user.id.clone(),
                    access_key_id: String::new(),
                    kind: PrincipalKind::User,
                };
                let policies = ids.principal_policies(&p).await.map_err(internal)?;
                let mut info = PrincipalInfo::user(account, &user.name, &user.id);
                info.arn = user.arn.clone();
                let info = info.with_tags(policies.tags.iter().map(|t| (&*t.key, &*t.value)));
                let (identity, boundary) = stored(&policies);
                (info, true, identity, boundary)
            }
            "role" => {
                let role = ids.get_role(account, name).await.map_err(not_found)?;
                let p = Principal {
                    account_id: account.to_owned(),
                    arn: role.arn.clone(),
                    user_id: format!("{}:simulation", role.id),
                    access_key_id: String::new(),
                    kind: PrincipalKind::AssumedRole,
                };
                let policies = ids.principal_policies(&p).await.map_err(internal)?;
                let info = PrincipalInfo::assumed_role(&role.arn, &role.id, "simulation")
                    .with_tags(policies.tags.iter().map(|t| (&*t.key, &*t.value)));
                let (identity, boundary) = stored(&policies);
                (info, true, identity, boundary)
            }
            "group" => {
                let identity = group_policies(ids, account, name)
                    .await
                    .map_err(not_found)?;
                (anonymous_user(account), false, identity, None)
            }
            _ => {
                return Err(invalid(format!(
                    "Invalid PolicySourceArn {source_arn}: expected the ARN of a user, group or role."
                )));
            }
        };
        if let Some(arn) = common.caller_arn.as_deref() {
            principal = caller_from_arn(arn, account)?.with_tags(principal.tags.clone());
            caller_known = true;
        }
        identity.extend(input_policies(
            common.policy_input_list.as_deref(),
            PolicyKind::Identity(IdentityPolicyKind::Managed),
            "PolicyInputList",
            INPUT_POLICY,
        )?);
        if common
            .boundary_input_list
            .as_ref()
            .is_some_and(|l| !l.is_empty())
        {
            // A boundary in the request replaces the entity's own.
            boundary = None;
        }
        let mut sim = Self::finish(principal, caller_known, identity, None, common)?;
        if sim.boundary.is_none() {
            sim.boundary = boundary;
        }
        Ok(sim)
    }

    fn finish(
        principal: PrincipalInfo,
        caller_known: bool,
        identity: Vec<Sourced>,
        boundary: Option<Sourced>,
        common: Common,
    ) -> Result<Self, AwsError> {
        let mut boundaries = input_policies(
            common.boundary_input_list.as_deref(),
            PolicyKind::Boundary,
            "PermissionsBoundaryPolicyInputList",
            BOUNDARY_POLICY,
        )?;
        if boundaries.len() > 1 {
            return Err(invalid(
                "PermissionsBoundaryPolicyInputList accepts at most one policy.",
            ));
        }
        let resource_policy = match common.resource_policy.as_deref() {
            Some(doc) => Some(Sourced {
                policy: parse(doc, PolicyKind::Resource)?,
                id: "ResourcePolicy".to_owned(),
                kind: RESOURCE_POLICY.to_owned(),
            }),
            None => None,
        };
        let resource_owner = match common.resource_owner.as_deref() {
            None => None,
            Some(owner) if owner.len() == 12 && owner.bytes().all(|b| b.is_ascii_digit()) => {
                Some(owner.to_owned())
            }
            Some(owner) => match split_iam_arn(owner).map(|(a, _, _)| a).or_else(|| {
                owner
                    .strip_prefix("arn:aws:iam::")
                    .and_then(|r| r.strip_suffix(":root"))
            }) {
                Some(acct) => Some(acct.to_owned()),
                None => {
                    return Err(invalid(format!(
                        "Invalid ResourceOwner {owner}: expected an account id or an IAM ARN."
                    )));
                }
            },
        };
        Ok(Simulation {
            principal,
            caller_known,
            identity,
            boundary: boundaries.pop().or(boundary),
            resource_policy,
            resource_owner,
            entries: context_entries(common.context_entries.as_deref())?,
        })
    }

    fn context(&self, action: &str, resource: &str) -> EvalContext {
        let mut builder = EvalContext::builder(self.principal.clone(), action, resource);
        for (key, values) in &self.entries {
            builder = builder.key_values(key, values.iter().cloned());
        }
        let mut ctx = builder.build();
        if !self.caller_known
            && !self
                .entries
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case("aws:PrincipalArn"))
        {
            ctx.remove("aws:PrincipalArn");
        }
        ctx
    }

    fn evaluate_one(&self, action: &str, resource: &str) -> iam::EvaluationResult {
        let ctx = self.context(action, resource);
        let identity: Vec<Arc<Policy>> = self.identity.iter().map(|s| s.policy.clone()).collect();
        let boundary = self.boundary.as_ref().map(|s| &*s.policy);
        let resource_policy = self.resource_policy.as_ref().map(|s| &*s.policy);
        let input = EvalInput::new(&ctx)
            .identity_policies(&identity)
            .permissions_boundary(boundary)
            .resource_policy(resource_policy)
            .resource_account(self.resource_owner.as_deref());
        let result = evaluate(&input);

        let matched = result.statement.and_then(|s| {
            let source = match s.policy_type {
                PolicyType::Identity => self.identity.get(s.policy_index),
                PolicyType::PermissionsBoundary => self.boundary.as_ref(),
                PolicyType::Resource => self.resource_policy.as_ref(),
                PolicyType::Session => None,
            }?;
            Some(vec![iam::Statement {
                source_policy_id: Some(source.id.clone()),
                source_policy_type: Some(source.kind.clone()),
                start_position: None,
                end_position: None,
            }])
        });

        let boundary_detail =
            self.boundary
                .as_ref()
                .map(|_| iam::PermissionsBoundaryDecisionDetail {
                    allowed_by_permissions_boundary: Some(!matches!(
                        result.decision,
                        EvalDecision::ExplicitDeny(PolicyType::PermissionsBoundary)
                            | EvalDecision::ImplicitDeny(ImplicitDenyReason::BoundaryDeny)
                    )),
                });

        iam::EvaluationResult {
            eval_action_name: Some(action.to_owned()),
            eval_resource_name: Some(resource.to_owned()),
            eval_decision: Some(decision_name(&result).to_owned()),
            matched_statements: matched.or_else(|| Some(Vec::new())),
            missing_context_values: Some(self.missing_keys(&ctx)),
            organizations_decision_detail: None,
            permissions_boundary_decision_detail: boundary_detail,
            eval_decision_details: self.decision_details(&ctx, &identity, boundary),
            resource_specific_results: None,
        }
    }

    /// The condition keys of the statements that apply to the action which the request
    /// context lacks, as written in the policies, without duplicates.
    fn missing_keys(&self, ctx: &EvalContext) -> Vec<String> {
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        let policies = self
            .identity
            .iter()
            .chain(self.boundary.iter())
            .chain(self.resource_policy.iter());
        for sourced in policies {
            for statement in sourced.policy.statements() {
                if !action_applies(statement.action(), ctx.action()) {
                    continue;
                }
                for entry in statement.condition().entries() {
                    let key = entry.key();
                    if ctx.get(key).is_none() && seen.insert(key.to_ascii_lowercase()) {
                        out.push(key.to_owned());
                    }
                }
            }
        }
        out
    }

    /// How each policy type contributes, for cross-account simulations with a resource
    /// policy (IAM leaves the map empty within an account when a resource is named).
    fn decision_details(
        &self,
        ctx: &EvalContext,
        identity: &[Arc<Policy>],
        boundary: Option<&Policy>,
    ) -> Option<BTreeMap<String, String>> {
        if ctx.resource() == "*" {
            return None;
        }
        let mine = self.principal.account.as_deref();
        let theirs = self
            .resource_owner
            .as_deref()
            .or_else(|| ctx.resource().split(':').nth(4).filter(|a| !a.is_empty()));
        let resource_policy = self.resource_policy.as_ref().map(|s| &*s.policy);
        let (Some(mine), Some(theirs), Some(resource_policy)) = (mine, theirs, resource_policy)
        else {
            return Some(BTreeMap::new());
        };
        if mine == theirs {
            return Some(BTreeMap::new());
        }
        // The caller's side: its own policies, as if the resource were its account's.
        let own = evaluate(
            &EvalInput::new(ctx)
                .identity_policies(identity)
                .permissions_boundary(boundary)
                .resource_account(Some(mine)),
        );
        // The resource's side: the resource policy alone, the caller's side allowing all.
        let allow_all = allow_all_policy()?;
        let resource_side = evaluate(
            &EvalInput::new(ctx)
                .identity_policies(std::slice::from_ref(&allow_all))
                .resource_policy(Some(resource_policy))
                .resource_account(Some(theirs)),
        );
        let mut details = BTreeMap::new();
        details.insert(INPUT_POLICY.to_owned(), decision_name(&own).to_owned());
        details.insert(
            RESOURCE_POLICY.to_owned(),
            decision_name(&resource_side).to_owned(),
        );
        Some(details)
    }

    /// Runs the simulation over every action × resource pair and returns one page.
    pub(crate) fn run(
        &self,
        actions: &[String],
        resources: &[String],
        marker: Option<&str>,
        max_items: Option<i32>,
    ) -> Result<iam::SimulatePolicyResponse, AwsError> {
        let star = ["*".to_owned()];
        let resources = if resources.is_empty() {
            &star[..]
        } else {
            resources
        };
        let total = actions.len().saturating_mul(resources.len());
        let start = match marker {
            None => 0,
            Some(m) => m
                .parse::<usize>()
                .ok()
                .filter(|s| *s < total)
                .ok_or_else(|| invalid(format!("Invalid Marker {m}.")))?,
        };
        let max = match max_items {
            None => DEFAULT_MAX_ITEMS,
            Some(n) => usize::try_from(n)
                .ok()
                .filter(|n| *n > 0)
                .ok_or_else(|| invalid("MaxItems must be at least 1."))?,
        };
        let end = start.saturating_add(max).min(total);
        let results = (start..end)
            .filter_map(|i| {
                let action = actions.get(i / resources.len())?;
                let resource = resources.get(i % resources.len())?;
                Some(self.evaluate_one(action, resource))
            })
            .collect();
        let truncated = end < total;
        Ok(iam::SimulatePolicyResponse {
            evaluation_results: Some(results),
            is_truncated: Some(truncated),
            marker: truncated.then(|| end.to_string()),
        })
    }
}

fn decision_name(result: &EvalResult) -> &'static str {
    let d = match result.decision {
        EvalDecision::Allow => iam::PolicyEvaluationDecisionType::Allowed,
        EvalDecision::ExplicitDeny(_) => iam::PolicyEvaluationDecisionType::ExplicitDeny,
        EvalDecision::ImplicitDeny(_) => iam::PolicyEvaluationDecisionType::ImplicitDeny,
    };
    d.as_str()
}

fn allow_all_policy() -> Option<Arc<Policy>> {
    const ALLOW_ALL: &str =
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;
    Policy::parse(ALLOW_ALL, PolicyKind::Identity(IdentityPolicyKind::Managed))
        .ok()
        .map(Arc::new)
}

/// Whether a statement's `Action`/`NotAction` covers `action` (IAM action names are
/// case-insensitive; `*` and `?` are wildcards).
fn action_applies(element: &ActionElement, action: &str) -> bool {
    let action = action.to_ascii_lowercase();
    let any = |patterns: &[citadel_iam::policy::ActionPattern]| {
        patterns
            .iter()
            .any(|p| wildcard(&p.as_str().to_ascii_lowercase(), &action))
    };
    match element {
        ActionElement::Action(p) => any(p),
        ActionElement::NotAction(p) => !any(p),
    }
}

/// Glob match with `*` (any run) and `?` (one character).
fn wildcard(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ti));
                pi += 1;
            }
            Some(c) if *c == '?' || Some(c) == t.get(ti) => {
                pi += 1;
                ti += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    pi = sp + 1;
                    ti = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    p.get(pi..)
        .is_some_and(|rest| rest.iter().all(|c| *c == '*'))
}

/// The identity policies and boundary stored for a user or role, named as IAM names them.
fn stored(policies: &citadel_iam::identity::PrincipalPolicies) -> (Vec<Sourced>, Option<Sourced>) {
    let identity = policies
        .sources
        .iter()
        .zip(policies.identity.iter())
        .map(|(source, policy)| sourced(source, policy))
        .collect();
    let boundary = policies.boundary.as_ref().map(|(source, policy)| Sourced {
        policy: policy.clone(),
        id: source_id(source),
        kind: BOUNDARY_POLICY.to_owned(),
    });
    (identity, boundary)
}

fn source_id(source: &PolicySource) -> String {
    match source {
        PolicySource::Inline { policy_name, .. } => policy_name.clone(),
        PolicySource::Managed { policy_arn, .. } => policy_arn.clone(),
    }
}

fn sourced(source: &PolicySource, policy: &Arc<Policy>) -> Sourced {
    let kind = match source {
        PolicySource::Inline { owner, .. } => match owner {
            EntityKind::User => iam::PolicySourceType::User,
            EntityKind::Group => iam::PolicySourceType::Group,
            EntityKind::Role => iam::PolicySourceType::Role,
        },
        PolicySource::Managed { .. } => iam::PolicySourceType::UserManaged,
    };
    Sourced {
        policy: policy.clone(),
        id: source_id(source),
        kind: kind.as_str().to_owned(),
    }
}

/// A group's inline policies and its attached managed policies' default versions.
async fn group_policies(
    ids: &IdentityStore,
    account: &str,
    group: &str,
) -> Result<Vec<Sourced>, AwsError> {
    // Fails with NoSuchEntity for an unknown group.
    ids.get_group(account, group, &PageRequest::default())
        .await?;
    let mut out = Vec::new();
    let mut page = PageRequest::default();
    loop {
        let names = ids
            .list_inline_policies(account, EntityKind::Group, group, &page)
            .await?;
        for name in &names.items {
            let inline = ids
                .get_inline_policy(account, EntityKind::Group, group, name)
                .await?;
            out.push(Sourced {
                policy: parse(
                    &inline.document,
                    PolicyKind::Identity(IdentityPolicyKind::GroupInline),
                )?,
                id: inline.policy_name.clone(),
                kind: iam::PolicySourceType::Group.as_str().to_owned(),
            });
        }
        match names.marker {
            Some(m) => page.marker = Some(m),
            None => break,
        }
    }
    let mut page = PageRequest::default();
    loop {
        let attached = ids
            .list_attached_policies(account, EntityKind::Group, group, None, &page)
            .await?;
        for a in &attached.items {
            let info = ids.get_policy(account, &a.arn).await?;
            let version = ids
                .get_policy_version(account, &a.arn, &info.default_version_id)
                .await?;
            let Some(document) = version.document else {
                continue;
            };
            out.push(Sourced {
                policy: parse(&document, PolicyKind::Identity(IdentityPolicyKind::Managed))?,
                id: a.arn.clone(),
                kind: iam::PolicySourceType::UserManaged.as_str().to_owned(),
            });
        }
        match attached.marker {
            Some(m) => page.marker = Some(m),
            None => break,
        }
    }
    Ok(out)
}
