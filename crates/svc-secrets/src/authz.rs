//! The one place Secrets Manager asks whether a caller may do something.
//!
//! Handlers name the action, the [`Target`] and the request's condition keys; [`Inner::authorize`]
//! adds the keys describing the secret (`secretsmanager:SecretId`, `secretsmanager:ResourceTag/…`,
//! `aws:ResourceTag/…`) and asks the shared authorizer with the secret's parsed resource policy.
//! Unlike a KMS key policy, a secret's policy need not allow by itself: within the account the
//! identity policy or the resource policy suffices; across accounts the evaluator requires both.

use std::collections::BTreeMap;

use citadel_api::{AwsError, RequestContext};
use citadel_iam::AccessRequest;
use citadel_iam::policy::{ErrorFlavour, Policy, PolicyKind};

use crate::Inner;
use crate::record::SecretRecord;

/// Condition keys and their values. Never secret.
#[derive(Debug, Default, Clone)]
pub struct Conditions(pub BTreeMap<String, Vec<String>>);

impl Conditions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.insert(key.to_owned(), vec![value.into()]);
        self
    }

    pub fn set_opt(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    pub fn set_all(mut self, key: &str, values: Vec<String>) -> Self {
        if !values.is_empty() {
            self.0.insert(key.to_owned(), values);
        }
        self
    }

    /// `aws:RequestTag/<k>` for every tag and `aws:TagKeys`.
    pub fn request_tags<'a>(mut self, tags: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut keys = Vec::new();
        for (k, v) in tags {
            self.0
                .insert(format!("aws:RequestTag/{k}"), vec![v.to_owned()]);
            keys.push(k.to_owned());
        }
        self.set_all("aws:TagKeys", keys)
    }
}

/// What the request is about.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// No particular secret (`ListSecrets`, `GetRandomPassword`, …).
    Account,
    /// An existing secret.
    Secret(&'a SecretRecord),
    /// A secret that does not exist (yet): its would-be ARN, in `account`.
    Named { arn: &'a str, account: &'a str },
}

/// The access-denied answer for a resource of another account in dev mode, where no policy is
/// evaluated and accounts are what keeps tenants apart (as KMS does).
fn other_account_denied(ctx: &RequestContext, action: &str, resource: &str) -> AwsError {
    AwsError::new(
        400,
        "AccessDeniedException",
        format!(
            "User: {} is not authorized to perform: {action} on resource: {resource} because no resource-based policy allows the {action} action",
            ctx.principal.arn
        ),
    )
}

/// The secret's resource policy, parsed. A stored policy that no longer parses allows nothing
/// (and is logged).
pub(crate) fn parsed_policy(record: &SecretRecord) -> Option<Policy> {
    let text = record.policy.as_deref()?;
    match Policy::parse(text, PolicyKind::Resource) {
        Ok(p) => Some(p),
        Err(e) => {
            tracing::error!(secret = %record.arn(), error = %e, "the stored resource policy does not parse; it allows nothing");
            None
        }
    }
}

impl Inner {
    /// Allows (marking the request as authorized) or answers AWS's access-denied error.
    pub(crate) async fn authorize(
        &self,
        ctx: &RequestContext,
        action: &'static str,
        target: Target<'_>,
        conditions: Conditions,
    ) -> Result<(), AwsError> {
        let Conditions(mut conditions) = conditions;
        let (resource, account, policy) = match target {
            Target::Account => ("*".to_owned(), None, None),
            Target::Named { arn, account } => {
                conditions.insert("secretsmanager:SecretId".to_owned(), vec![arn.to_owned()]);
                (arn.to_owned(), Some(account.to_owned()), None)
            }
            Target::Secret(record) => {
                let arn = record.arn();
                conditions.insert("secretsmanager:SecretId".to_owned(), vec![arn.clone()]);
                for tag in &record.tags {
                    conditions.insert(
                        format!("secretsmanager:ResourceTag/{}", tag.key),
                        vec![tag.value.clone()],
                    );
                    conditions.insert(
                        format!("aws:ResourceTag/{}", tag.key),
                        vec![tag.value.clone()],
                    );
                }
                if let Some(lambda) = &record.rotation.lambda_arn {
                    conditions.insert(
                        "secretsmanager:resource/AllowRotationLambdaArn".to_owned(),
                        vec![lambda.clone()],
                    );
                }
                (arn, Some(record.account.clone()), parsed_policy(record))
            }
        };
        if ctx.dev_mode
            && let Some(owner) = &account
            && *owner != ctx.principal.account_id
        {
            return Err(other_account_denied(ctx, action, &resource));
        }
        let request = AccessRequest {
            resource_account: account.as_deref(),
            resource_policy: policy.as_ref(),
            resource_policy_must_allow: false,
            conditions: &conditions,
            ..AccessRequest::new(action, &resource, ErrorFlavour::SecretsManager)
        };
        self.authorizer.authorize(ctx, &request).await
    }
}
