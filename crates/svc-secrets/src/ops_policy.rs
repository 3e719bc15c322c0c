//! PutResourcePolicy, GetResourcePolicy, DeleteResourcePolicy and ValidateResourcePolicy.
//!
//! "Public" is decided without AWS's Zelkova: a policy grants broad access when an `Allow`
//! statement names every principal (`"*"`, `{"AWS": "*"}`, or uses `NotPrincipal`) and no
//! condition narrows it to known callers (`aws:PrincipalAccount`, `aws:PrincipalArn`,
//! `aws:PrincipalOrgID`, `aws:PrincipalOrgPaths`, `aws:SourceAccount`, `aws:SourceArn`,
//! `aws:SourceOwner`, `aws:userid`, `aws:username`, `aws:SourceVpc`, `aws:SourceVpce`,
//! `aws:SourceIp`, `aws:PrincipalServiceName`) with a non-negated operator.

use citadel_api::{AwsError, OperationOutput, RequestContext};
use citadel_iam::policy::{Effect, ErrorFlavour, Policy, PolicyKind, PrincipalElement};
use citadel_model::secretsmanager as sm;

use crate::authz::{Conditions, Target};
use crate::ops_secret::ensure_live;
use crate::repo::Change;
use crate::{Inner, errors, json_output};

const NARROWING_KEYS: &[&str] = &[
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:principalorgpaths",
    "aws:sourceaccount",
    "aws:sourcearn",
    "aws:sourceowner",
    "aws:userid",
    "aws:username",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceip",
    "aws:principalservicename",
];

/// Whether `policy` grants access to anyone (see the module docs).
pub fn grants_public_access(policy: &Policy) -> bool {
    policy.statements().iter().any(|s| {
        if s.effect() != Effect::Allow {
            return false;
        }
        let everyone = match s.principal() {
            Some(PrincipalElement::Principal(set)) => set.any,
            Some(PrincipalElement::NotPrincipal(_)) => true,
            None => false,
        };
        let narrowed = s.condition().entries().iter().any(|e| {
            !e.operator().base.is_negated()
                && NARROWING_KEYS.contains(&e.key().to_ascii_lowercase().as_str())
        });
        everyone && !narrowed
    })
}

fn parse(text: &str) -> Result<Policy, AwsError> {
    Policy::parse(text, PolicyKind::Resource)
        .map_err(|e| e.to_aws_error_for(ErrorFlavour::SecretsManager))
}

impl Inner {
    pub(crate) async fn put_resource_policy(
        &self,
        ctx: &RequestContext,
        req: sm::PutResourcePolicyRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let text = req.resource_policy.unwrap_or_default();
        let block = req.block_public_policy.unwrap_or(false);
        let found = self
            .find(ctx, &secret_id, "secretsmanager:PutResourcePolicy")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:PutResourcePolicy",
            Target::Secret(&found.record),
            Conditions::new().set("secretsmanager:BlockPublicPolicy", block.to_string()),
        )
        .await?;
        crate::replication::refuse_replica(&found.record)?;
        ensure_live(&found.record)?;
        let policy = parse(&text)?;
        if block && grants_public_access(&policy) {
            return Err(errors::public_policy());
        }
        let arn = found.record.arn();
        let name = found.record.name.clone();
        self.update(found, |cur| {
            ensure_live(cur)?;
            let mut rec = cur.clone();
            rec.policy = Some(text.clone());
            Ok(Change::put(rec, ()))
        })
        .await?;
        json_output(&sm::PutResourcePolicyResponse {
            arn: Some(arn),
            name: Some(name),
        })
    }

    pub(crate) async fn get_resource_policy(
        &self,
        ctx: &RequestContext,
        req: sm::GetResourcePolicyRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let found = self
            .find(ctx, &secret_id, "secretsmanager:GetResourcePolicy")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:GetResourcePolicy",
            Target::Secret(&found.record),
            Conditions::new(),
        )
        .await?;
        ensure_live(&found.record)?;
        json_output(&sm::GetResourcePolicyResponse {
            arn: Some(found.record.arn()),
            name: Some(found.record.name.clone()),
            resource_policy: found.record.policy.clone(),
        })
    }

    pub(crate) async fn delete_resource_policy(
        &self,
        ctx: &RequestContext,
        req: sm::DeleteResourcePolicyRequest,
    ) -> Result<OperationOutput, AwsError> {
        let secret_id = req.secret_id.unwrap_or_default();
        let found = self
            .find(ctx, &secret_id, "secretsmanager:DeleteResourcePolicy")
            .await?;
        self.authorize(
            ctx,
            "secretsmanager:DeleteResourcePolicy",
            Target::Secret(&found.record),
            Conditions::new(),
        )
        .await?;
        crate::replication::refuse_replica(&found.record)?;
        ensure_live(&found.record)?;
        let arn = found.record.arn();
        let name = found.record.name.clone();
        self.update(found, |cur| {
            ensure_live(cur)?;
            let mut rec = cur.clone();
            rec.policy = None;
            Ok(Change::put(rec, ()))
        })
        .await?;
        json_output(&sm::DeleteResourcePolicyResponse {
            arn: Some(arn),
            name: Some(name),
        })
    }

    pub(crate) async fn validate_resource_policy(
        &self,
        ctx: &RequestContext,
        req: sm::ValidateResourcePolicyRequest,
    ) -> Result<OperationOutput, AwsError> {
        let text = req.resource_policy.unwrap_or_default();
        // AWS requires secretsmanager:PutResourcePolicy too: validating is the first half of
        // putting.
        let record = match req.secret_id.as_deref() {
            Some(secret_id) => {
                let found = self
                    .find(ctx, secret_id, "secretsmanager:ValidateResourcePolicy")
                    .await?;
                for action in [
                    "secretsmanager:ValidateResourcePolicy",
                    "secretsmanager:PutResourcePolicy",
                ] {
                    self.authorize(
                        ctx,
                        action,
                        Target::Secret(&found.record),
                        Conditions::new(),
                    )
                    .await?;
                }
                Some(found.record)
            }
            None => {
                for action in [
                    "secretsmanager:ValidateResourcePolicy",
                    "secretsmanager:PutResourcePolicy",
                ] {
                    self.authorize(ctx, action, Target::Account, Conditions::new())
                        .await?;
                }
                None
            }
        };
        let policy = parse(&text)?;
        let mut problems = Vec::new();
        if grants_public_access(&policy) {
            problems.push(sm::ValidationErrorsEntry {
                // Unconfirmed AWS wording (check name and message).
                check_name: Some("BROAD_ACCESS".to_owned()),
                error_message: Some(
                    "The resource policy grants access to every principal (\"*\") without a condition that narrows it to known accounts or principals."
                        .to_owned(),
                ),
            });
        }
        // Lock-out: with this policy in place, could the caller still change the policy? (They
        // can now: PutResourcePolicy was just allowed.) Only a named secret has a policy to
        // replace; dev mode evaluates no policies, so nothing can lock a caller out there.
        if let Some(record) = &record
            && self.locks_out(ctx, record, &policy).await?
        {
            problems.push(sm::ValidationErrorsEntry {
                // Unconfirmed AWS wording (check name and message).
                check_name: Some("LOCKOUT_PREVENTION".to_owned()),
                error_message: Some(
                    "The resource policy denies you secretsmanager:PutResourcePolicy on this secret: once attached, you could not change or remove it."
                        .to_owned(),
                ),
            });
        }
        json_output(&sm::ValidateResourcePolicyResponse {
            policy_validation_passed: Some(problems.is_empty()),
            validation_errors: Some(problems),
        })
    }
}

impl Inner {
    /// Whether `policy`, as the secret's resource policy, would deny the caller
    /// `secretsmanager:PutResourcePolicy` (asked without marking the request authorized).
    async fn locks_out(
        &self,
        ctx: &RequestContext,
        record: &crate::record::SecretRecord,
        policy: &Policy,
    ) -> Result<bool, AwsError> {
        let arn = record.arn();
        let mut conditions = std::collections::BTreeMap::new();
        conditions.insert("secretsmanager:SecretId".to_owned(), vec![arn.clone()]);
        let request = citadel_iam::AccessRequest {
            resource_account: Some(&record.account),
            resource_policy: Some(policy),
            resource_policy_must_allow: false,
            conditions: &conditions,
            ..citadel_iam::AccessRequest::new(
                "secretsmanager:PutResourcePolicy",
                &arn,
                ErrorFlavour::SecretsManager,
            )
        };
        match self.authorizer.check(ctx, &request).await {
            Ok(()) => Ok(false),
            Err(e) if e.is_server_fault() => Err(e),
            Err(_) => Ok(true),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn public(json: &str) -> bool {
        grants_public_access(&Policy::parse(json, PolicyKind::Resource).unwrap())
    }

    #[test]
    fn public_means_everyone_without_narrowing() {
        let star = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
        assert!(public(star));
        let aws_star = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"secretsmanager:*","Resource":"*"}]}"#;
        assert!(public(aws_star));
        let narrowed = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalAccount":"111122223333"}}}]}"#;
        assert!(!public(narrowed));
        let account = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::444455556666:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
        assert!(!public(account));
        let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":"*","Action":"secretsmanager:*","Resource":"*"}]}"#;
        assert!(!public(deny));
    }
}
