//! Sharing Advanced-tier parameters with other accounts through resource policies:
//! PutResourcePolicy, GetResourcePolicies, DeleteResourcePolicy, the cross-account read check,
//! and the share index DescribeParameters `Shared=true` reads.
//!
//! The policies live in the parameter's record, so every change is one compare-and-swap with
//! the parameter itself, and deleting the parameter deletes them. Each account a policy names
//! gets a share entry (`record::shared_key`) written in the same batch.

use std::collections::BTreeSet;

use citadel_api::{AwsError, RequestContext};
use citadel_iam::AccessRequest;
use citadel_iam::policy::{
    ErrorFlavour, EvalContext, EvalInput, Policy, PolicyKind, PrincipalInfo, evaluate,
};
use citadel_model::ssm;
use citadel_store::{Expect, Op, put_json_op};
use serde_json::Value;

use crate::authz::Conditions;
use crate::names;
use crate::params::{ADVANCED, Attempt, SECURE_STRING, decode_token, encode_token};
use crate::record::{self, ParamRecord, ResourcePolicy, Shared};
use crate::secure;
use crate::{Ssm, errors};

/// Largest policy document, in bytes (the model's ResourcePolicyLimitExceededException doc).
pub const MAX_POLICY_BYTES: usize = 1024;
/// Resource policies one parameter may carry. // Unconfirmed AWS limit.
pub const MAX_POLICIES: usize = 10;
/// What a parameter's resource policy may allow other accounts (the read-only actions of
/// AWS RAM's `AWSRAMDefaultPermissionSSMParameterReadOnly`).
pub const SHAREABLE_ACTIONS: &[&str] = &[
    "ssm:DescribeParameters",
    "ssm:GetParameter",
    "ssm:GetParameterHistory",
    "ssm:GetParameters",
];
const ATTEMPTS: usize = 5;

fn invalid_parameter(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "ResourcePolicyInvalidParameterException", message)
}

fn malformed(message: impl Into<String>) -> AwsError {
    AwsError::new(400, "MalformedResourcePolicyDocumentException", message)
}

fn conflict() -> AwsError {
    // Unconfirmed AWS wording.
    AwsError::new(
        400,
        "ResourcePolicyConflictException",
        "The hash provided in the call doesn't match the stored hash. The policy was changed since you read it; get the current policy and try again.",
    )
}

fn policy_not_found(id: &str) -> AwsError {
    // Unconfirmed AWS wording.
    AwsError::new(
        400,
        "ResourcePolicyNotFoundException",
        format!("No policy with ID {id} and the specified hash could be found."),
    )
}

fn resource_not_found(arn: &str) -> AwsError {
    // Unconfirmed AWS wording.
    AwsError::new(
        400,
        "ResourceNotFoundException",
        format!("The resource {arn} could not be found."),
    )
}

fn one_or_many(v: Option<&Value>) -> Vec<&Value> {
    match v {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => vec![other],
        None => Vec::new(),
    }
}

fn statements(doc: &Value) -> Vec<&Value> {
    one_or_many(doc.get("Statement"))
}

/// The account of an AWS principal: `111122223333`, `arn:aws:iam::111122223333:root|user/…`.
fn principal_account(p: &str) -> Option<&str> {
    let account = if p.len() == 12 {
        p
    } else {
        p.strip_prefix("arn:")?.split(':').nth(3)?
    };
    (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())).then_some(account)
}

/// The accounts (other than `owner`) the `Allow` statements of `policies` name.
pub fn grantees(policies: &[ResourcePolicy], owner: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for p in policies {
        let Ok(doc) = serde_json::from_str::<Value>(&p.text) else {
            continue;
        };
        for st in statements(&doc) {
            if st.get("Effect").and_then(Value::as_str) != Some("Allow") {
                continue;
            }
            let aws = st.get("Principal").and_then(|pr| pr.get("AWS"));
            for v in one_or_many(aws) {
                if let Some(a) = v.as_str().and_then(principal_account)
                    && a != owner
                {
                    out.insert(a.to_owned());
                }
            }
        }
    }
    out
}

/// Checks a policy document for `arn`: a resource policy naming accounts (never everyone)
/// that allows only the shareable read actions on this parameter.
fn check_document(text: &str, arn: &str) -> Result<(), AwsError> {
    if text.len() > MAX_POLICY_BYTES {
        // Unconfirmed AWS wording.
        return Err(AwsError::new(
            400,
            "ResourcePolicyLimitExceededException",
            format!(
                "The policy is {} bytes; a resource policy can't be greater than {MAX_POLICY_BYTES} bytes.",
                text.len()
            ),
        ));
    }
    Policy::parse(text, PolicyKind::Resource)
        .map_err(|e| malformed(format!("The policy document is malformed: {e}")))?;
    let doc: Value = serde_json::from_str(text)
        .map_err(|_| malformed("The policy document is not valid JSON."))?;
    let sts = statements(&doc);
    if sts.is_empty() {
        return Err(malformed("The policy document has no statements."));
    }
    // Unconfirmed AWS wording for each refusal below.
    for st in sts {
        if st.get("NotPrincipal").is_some()
            || st.get("NotAction").is_some()
            || st.get("NotResource").is_some()
        {
            return Err(malformed(
                "A parameter's resource policy can't use NotPrincipal, NotAction or NotResource.",
            ));
        }
        let principal = st.get("Principal");
        let aws = principal.and_then(|p| p.get("AWS"));
        let only_aws = principal
            .and_then(Value::as_object)
            .is_some_and(|o| o.keys().all(|k| k == "AWS"));
        let accounts = one_or_many(aws);
        if !only_aws
            || accounts.is_empty()
            || accounts
                .iter()
                .any(|v| v.as_str().and_then(principal_account).is_none())
        {
            return Err(malformed(
                "A parameter can be shared only with AWS accounts or IAM principals named by account; Principal must be {\"AWS\": [<account ID or ARN>, …]}.",
            ));
        }
        for action in one_or_many(st.get("Action")) {
            let a = action.as_str().unwrap_or_default();
            if !SHAREABLE_ACTIONS.iter().any(|s| s.eq_ignore_ascii_case(a)) {
                return Err(malformed(format!(
                    "The action {a} can't be shared. A parameter's resource policy may allow only {}.",
                    SHAREABLE_ACTIONS.join(", ")
                )));
            }
        }
        for resource in one_or_many(st.get("Resource")) {
            if resource.as_str() != Some(arn) {
                return Err(malformed(format!(
                    "The policy's Resource must be the parameter's ARN {arn}."
                )));
            }
        }
    }
    Ok(())
}

fn hash_of(text: &str) -> String {
    citadel_crypto::sha256(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn new_policy_id() -> Result<String, AwsError> {
    let bytes = citadel_crypto::random_bytes(16).map_err(|e| {
        tracing::error!(error = %e, "drawing a resource policy id failed");
        errors::internal()
    })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The policies of a record as one document the evaluator reads (any statement may allow).
pub fn combined(rec: &ParamRecord) -> Option<Policy> {
    if rec.resource_policies.is_empty() {
        return None;
    }
    let mut all = Vec::new();
    for p in &rec.resource_policies {
        if let Ok(doc) = serde_json::from_str::<Value>(&p.text) {
            all.extend(statements(&doc).into_iter().cloned());
        }
    }
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": all}).to_string();
    match Policy::parse(&doc, PolicyKind::Resource) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(parameter = %rec.name, error = %e, "stored resource policies do not parse together; they allow nothing");
            None
        }
    }
}

impl Ssm {
    /// Authorizes a read that may cross accounts: in the caller's account as every other
    /// operation; in another account only a shareable action, and only when the parameter's
    /// resource policy allows the caller (and, in production, the caller's own identity
    /// policies allow it too — AWS's cross-account rule, decided by the shared authorizer).
    pub(crate) async fn authorize_read(
        &self,
        ctx: &RequestContext,
        action: &str,
        resource: &str,
        owner: &str,
        conditions: &Conditions,
        rec: Option<&ParamRecord>,
    ) -> Result<(), AwsError> {
        if owner == ctx.principal.account_id {
            return self
                .authorize(ctx, action, resource, owner, conditions)
                .await;
        }
        let denied = || {
            errors::access_denied(format!(
                "User: {} is not authorized to perform: {action} on resource: {resource} because no resource-based policy allows the {action} action",
                ctx.principal.arn
            ))
        };
        let policy = rec.and_then(combined);
        let Some(policy) = policy.filter(|_| SHAREABLE_ACTIONS.contains(&action)) else {
            return Err(denied());
        };
        if ctx.dev_mode {
            // Dev callers are their account's root, whose side of a cross-account request
            // needs no policy; the authorizer evaluates nothing in dev mode, so the resource
            // policy is evaluated here.
            let mut builder =
                EvalContext::builder(PrincipalInfo::from(&ctx.principal), action, resource);
            for (k, v) in conditions {
                builder = builder.key_values(k, v.iter().cloned());
            }
            let eval_ctx = builder.build();
            let input = EvalInput::new(&eval_ctx)
                .resource_policy(Some(&policy))
                .resource_account(Some(owner));
            if !evaluate(&input).is_allowed() {
                return Err(denied());
            }
            ctx.authorized.mark();
            return Ok(());
        }
        let request = AccessRequest {
            resource_account: Some(owner),
            resource_policy: Some(&policy),
            conditions,
            ..AccessRequest::new(action, resource, ErrorFlavour::Kms)
        };
        self.authorizer.authorize(ctx, &request).await
    }

    /// The parameter a policy operation names by ARN, after authorizing `action` on it in its
    /// (the caller's) account.
    async fn policy_target(
        &self,
        ctx: &RequestContext,
        action: &str,
        resource_arn: &str,
    ) -> Result<(ParamRecord, u64, String, String), AwsError> {
        let reference =
            names::parse_reference(resource_arn, &ctx.region, &ctx.principal.account_id)
                .filter(|r| r.selector.is_none() && resource_arn.starts_with("arn:"))
                .ok_or_else(|| {
                    // Unconfirmed AWS wording.
                    invalid_parameter(format!(
                        "ResourceArn {resource_arn} is not the ARN of a parameter in this Region."
                    ))
                })?;
        let owner = reference.account.clone();
        let loaded = self.load(&owner, &ctx.region, &reference.name).await?;
        let mut conditions = Conditions::new();
        crate::authz::resource_tags(&mut conditions, loaded.as_ref().map(|(r, _)| r));
        self.authorize(ctx, action, resource_arn, &owner, &conditions)
            .await?;
        let Some((rec, version)) = loaded else {
            return Err(resource_not_found(resource_arn));
        };
        let arn = names::arn(&ctx.region, &owner, &rec.name);
        Ok((rec, version, owner, arn))
    }

    /// Stores `rec` (read at `version`) with its new policies, moving share entries from
    /// `before` to the grantees of the new policies in the same batch.
    async fn save_policies(
        &self,
        ctx: &RequestContext,
        owner: &str,
        rec: &ParamRecord,
        version: u64,
        before: &BTreeSet<String>,
    ) -> Result<Attempt<()>, AwsError> {
        let region = ctx.region.as_str();
        let after = grantees(&rec.resource_policies, owner);
        let mut ops = vec![
            put_json_op(
                record::param_key(owner, region, &rec.name),
                rec,
                Expect::Version(version),
            )
            .map_err(errors::store)?,
        ];
        for gone in before.difference(&after) {
            ops.push(Op::Delete {
                key: record::shared_key(gone, region, owner, &rec.name),
                expect: Expect::Any,
            });
        }
        for new in after.difference(before) {
            let entry = Shared {
                owner: owner.to_owned(),
                name: rec.name.clone(),
            };
            ops.push(
                put_json_op(
                    record::shared_key(new, region, owner, &rec.name),
                    &entry,
                    Expect::Any,
                )
                .map_err(errors::store)?,
            );
        }
        self.commit(ops).await
    }

    pub(crate) async fn put_resource_policy(
        &self,
        ctx: &RequestContext,
        req: ssm::PutResourcePolicyRequest,
    ) -> Result<ssm::PutResourcePolicyResponse, AwsError> {
        let resource_arn = req.resource_arn.clone().unwrap_or_default();
        let text = req.policy.clone().unwrap_or_default();
        for _ in 0..ATTEMPTS {
            let (mut rec, version, owner, arn) = self
                .policy_target(ctx, "ssm:PutResourcePolicy", &resource_arn)
                .await?;
            // Unconfirmed AWS wording for the two refusals below.
            if rec.latest.tier != ADVANCED {
                return Err(invalid_parameter(format!(
                    "Parameter {} uses the standard-parameter tier. Only advanced-tier parameters can be shared; change the parameter to the advanced tier and try again.",
                    rec.name
                )));
            }
            if rec.latest.param_type == SECURE_STRING
                && rec.latest.key_id.as_deref() == Some(secure::DEFAULT_KEY)
            {
                return Err(invalid_parameter(format!(
                    "Parameter {} is encrypted with the AWS managed key alias/aws/ssm, which can't be shared. Encrypt it with a customer managed key and share that key through KMS.",
                    rec.name
                )));
            }
            check_document(&text, &arn)?;
            let before = grantees(&rec.resource_policies, &owner);
            let hash = hash_of(&text);
            let id = match req.policy_id.as_deref() {
                None => {
                    if rec.resource_policies.len() >= MAX_POLICIES {
                        // Unconfirmed AWS wording.
                        return Err(AwsError::new(
                            400,
                            "ResourcePolicyLimitExceededException",
                            format!(
                                "A parameter can have at most {MAX_POLICIES} resource policies."
                            ),
                        ));
                    }
                    let id = new_policy_id()?;
                    rec.resource_policies.push(ResourcePolicy {
                        id: id.clone(),
                        hash: hash.clone(),
                        text: text.clone(),
                    });
                    id
                }
                Some(id) => {
                    let Some(existing) = rec.resource_policies.iter_mut().find(|p| p.id == id)
                    else {
                        return Err(policy_not_found(id));
                    };
                    if req.policy_hash.as_deref() != Some(existing.hash.as_str()) {
                        return Err(conflict());
                    }
                    existing.hash.clone_from(&hash);
                    existing.text.clone_from(&text);
                    id.to_owned()
                }
            };
            if let Attempt::Done(()) = self
                .save_policies(ctx, &owner, &rec, version, &before)
                .await?
            {
                return Ok(ssm::PutResourcePolicyResponse {
                    policy_id: Some(id),
                    policy_hash: Some(hash),
                });
            }
        }
        Err(errors::too_many_updates())
    }

    pub(crate) async fn get_resource_policies(
        &self,
        ctx: &RequestContext,
        req: ssm::GetResourcePoliciesRequest,
    ) -> Result<ssm::GetResourcePoliciesResponse, AwsError> {
        let resource_arn = req.resource_arn.clone().unwrap_or_default();
        let (rec, _, _, _) = self
            .policy_target(ctx, "ssm:GetResourcePolicies", &resource_arn)
            .await?;
        let want = usize::try_from(req.max_results.unwrap_or(50))
            .unwrap_or(50)
            .max(1);
        // The token is the id of the last policy returned.
        let start = match decode_token(req.next_token.as_deref(), "")? {
            None => 0,
            Some(last) => rec
                .resource_policies
                .iter()
                .position(|p| p.id == last)
                .map(|i| i + 1)
                .ok_or_else(errors::invalid_next_token)?,
        };
        let page: Vec<&ResourcePolicy> = rec
            .resource_policies
            .iter()
            .skip(start)
            .take(want)
            .collect();
        let next = (start + page.len() < rec.resource_policies.len())
            .then(|| page.last().map(|p| encode_token(&p.id)))
            .flatten();
        Ok(ssm::GetResourcePoliciesResponse {
            next_token: next,
            policies: Some(
                page.into_iter()
                    .map(|p| ssm::GetResourcePoliciesResponseEntry {
                        policy_id: Some(p.id.clone()),
                        policy_hash: Some(p.hash.clone()),
                        policy: Some(p.text.clone()),
                    })
                    .collect(),
            ),
        })
    }

    pub(crate) async fn delete_resource_policy(
        &self,
        ctx: &RequestContext,
        req: ssm::DeleteResourcePolicyRequest,
    ) -> Result<ssm::DeleteResourcePolicyResponse, AwsError> {
        let resource_arn = req.resource_arn.clone().unwrap_or_default();
        let id = req.policy_id.clone().unwrap_or_default();
        for _ in 0..ATTEMPTS {
            let (mut rec, version, owner, _) = self
                .policy_target(ctx, "ssm:DeleteResourcePolicy", &resource_arn)
                .await?;
            let Some(at) = rec.resource_policies.iter().position(|p| p.id == id) else {
                return Err(policy_not_found(&id));
            };
            if req.policy_hash.as_deref() != Some(rec.resource_policies[at].hash.as_str()) {
                return Err(conflict());
            }
            let before = grantees(&rec.resource_policies, &owner);
            rec.resource_policies.remove(at);
            if let Attempt::Done(()) = self
                .save_policies(ctx, &owner, &rec, version, &before)
                .await?
            {
                return Ok(ssm::DeleteResourcePolicyResponse {});
            }
        }
        Err(errors::too_many_updates())
    }

    /// DescribeParameters `Shared=true`: the parameters other accounts share with the caller
    /// whose policies still allow it `ssm:DescribeParameters` or a read, in (owner, name) order.
    pub(crate) async fn describe_shared(
        &self,
        ctx: &RequestContext,
        want: usize,
        next_token: Option<&str>,
    ) -> Result<(Vec<(String, ParamRecord)>, Option<String>), AwsError> {
        let prefix = record::shared_prefix(&ctx.principal.account_id, &ctx.region);
        let after = decode_token(next_token, &prefix)?;
        let page = self
            .store
            .list(&prefix, after.as_deref(), want + 1)
            .await
            .map_err(errors::store)?;
        let more = page.len() > want;
        let mut out = Vec::new();
        let mut last = None;
        for (key, entry) in page.into_iter().take(want) {
            last = Some(key);
            let Ok(shared) = serde_json::from_slice::<Shared>(&entry.value) else {
                continue;
            };
            if let Some((rec, _)) = self.load(&shared.owner, &ctx.region, &shared.name).await? {
                out.push((shared.owner, rec));
            }
        }
        Ok((
            out,
            if more {
                last.map(|k| encode_token(&k))
            } else {
                None
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const ARN: &str = "arn:aws:ssm:us-east-1:111122223333:parameter/app/x";

    fn doc(principal: &str, action: &str, resource: &str) -> String {
        serde_json::json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
            "Principal": {"AWS": principal}, "Action": action, "Resource": resource}]})
        .to_string()
    }

    #[test]
    fn documents_may_share_reads_with_named_accounts_only() {
        assert!(check_document(&doc("444455556666", "ssm:GetParameter", ARN), ARN).is_ok());
        assert!(
            check_document(
                &doc("arn:aws:iam::444455556666:root", "ssm:GetParameters", ARN),
                ARN
            )
            .is_ok()
        );
        let code = |d: String| check_document(&d, ARN).unwrap_err().code;
        assert_eq!(
            code(doc("*", "ssm:GetParameter", ARN)),
            "MalformedResourcePolicyDocumentException"
        );
        assert_eq!(
            code(doc("444455556666", "ssm:PutParameter", ARN)),
            "MalformedResourcePolicyDocumentException"
        );
        assert_eq!(
            code(doc("444455556666", "ssm:GetParameter", "*")),
            "MalformedResourcePolicyDocumentException"
        );
        assert_eq!(
            code("{not json".to_owned()),
            "MalformedResourcePolicyDocumentException"
        );
        assert_eq!(
            code(format!(
                "{}{}",
                doc("444455556666", "ssm:GetParameter", ARN),
                " ".repeat(1100)
            )),
            "ResourcePolicyLimitExceededException"
        );
    }

    #[test]
    fn grantees_are_the_named_accounts() {
        let p = ResourcePolicy {
            id: "1".into(),
            hash: String::new(),
            text: doc("arn:aws:iam::444455556666:user/u", "ssm:GetParameter", ARN),
        };
        let g = grantees(&[p], "111122223333");
        assert_eq!(g.into_iter().collect::<Vec<_>>(), vec!["444455556666"]);
    }
}
