//! The one place KMS asks whether a caller may do something.
//!
//! Every handler builds the request's KMS condition keys ([`RequestConditions`]) and names its
//! [`Target`]; [`input`] adds the keys every KMS request carries and those describing the key,
//! and [`decide`] hands the result to the shared [`Authorizer`] — with the key's parsed key
//! policy when the target is a key (AWS's rule: the key policy must allow, directly or by
//! delegating to the account's IAM policies). An alias-only target has no policy of its own:
//! IAM policies alone govern it.

use std::collections::BTreeMap;

use citadel_api::{AwsError, Principal, RequestContext};
use citadel_iam::policy::{ErrorFlavour, Policy};
use citadel_iam::{AccessRequest, Authorizer};

use crate::cache::LoadedKey;

/// Condition keys and their values (multi-valued keys such as `kms:EncryptionContextKeys` have
/// several). Never secret: AWS logs all of them in CloudTrail.
pub type Conditions = BTreeMap<String, Vec<String>>;

/// Everything an authorization decision may look at.
#[derive(Debug, Clone)]
pub struct AuthzInput<'a> {
    pub principal: &'a Principal,
    /// `kms:Encrypt`, …
    pub action: &'static str,
    /// The key or alias ARN, or `*` for operations on no particular key.
    pub resource: String,
    /// The account owning the resource, when it is a key or alias.
    pub resource_account: Option<&'a str>,
    /// The resource is a key: its key policy must allow.
    pub is_key: bool,
    /// The key's parsed key policy (`None` for a key whose stored policy does not parse:
    /// then nothing is allowed on it).
    pub key_policy: Option<&'a Policy>,
    pub conditions: Conditions,
    /// A grant on the key allows this request (see [`crate::grants`]).
    pub grant_allows: bool,
}

/// Request-specific condition keys a handler adds to the common ones, the grant tokens the
/// request carries and its encryption context (which grant constraints are checked against).
#[derive(Debug, Default, Clone)]
pub struct RequestConditions(Conditions, Vec<String>, Option<BTreeMap<String, String>>);

impl RequestConditions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.insert(key.to_owned(), vec![value.into()]);
        self
    }

    /// A multi-valued condition key (`kms:GrantOperations`).
    pub fn set_all(mut self, key: &str, values: Vec<String>) -> Self {
        self.0.insert(key.to_owned(), values);
        self
    }

    /// `kms:EncryptionContext:<k>` for every pair and `kms:EncryptionContextKeys`.
    pub fn encryption_context(mut self, context: Option<&BTreeMap<String, String>>) -> Self {
        if let Some(context) = context {
            self.2 = Some(context.clone());
            for (k, v) in context {
                self.0
                    .insert(format!("kms:EncryptionContext:{k}"), vec![v.clone()]);
            }
            if !context.is_empty() {
                self.0.insert(
                    "kms:EncryptionContextKeys".to_owned(),
                    context.keys().cloned().collect(),
                );
            }
        }
        self
    }

    /// `kms:RequestAlias`, when the request named the key through an alias.
    pub fn request_alias(self, alias: Option<&str>) -> Self {
        match alias {
            Some(a) => self.set("kms:RequestAlias", a),
            None => self,
        }
    }

    pub fn grant_tokens(mut self, tokens: Option<&Vec<String>>) -> Self {
        if let Some(t) = tokens {
            self.1.extend(t.iter().cloned());
        }
        self
    }

    /// The grant tokens the request presented.
    pub fn tokens(&self) -> &[String] {
        &self.1
    }

    /// The request's encryption context (`None` when it carries none).
    pub fn context(&self) -> Option<&BTreeMap<String, String>> {
        self.2.as_ref()
    }
}

/// What the request is about.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// No particular key (`CreateKey`, `ListKeys`, `GenerateRandom`, …).
    Account,
    Key(&'a LoadedKey),
    /// An alias of `key` (alias operations authorize on the alias and on the key).
    Alias {
        arn: &'a str,
        account: &'a str,
        key: &'a LoadedKey,
    },
}

/// Builds the full input: the request's conditions plus those every KMS request carries
/// (`kms:CallerAccount`, `kms:ViaService` when another Citadel service calls on the caller's
/// behalf) and those that describe the key.
pub fn input<'a>(
    principal: &'a Principal,
    action: &'static str,
    target: Target<'a>,
    via_service: Option<&str>,
    request: RequestConditions,
    grant_allows: bool,
) -> AuthzInput<'a> {
    let RequestConditions(mut conditions, _, _) = request;
    conditions.insert(
        "kms:CallerAccount".to_owned(),
        vec![principal.account_id.clone()],
    );
    if let Some(via) = via_service {
        conditions.insert("kms:ViaService".to_owned(), vec![via.to_owned()]);
    }
    let key = match target {
        Target::Account => None,
        Target::Key(k) | Target::Alias { key: k, .. } => Some(&k.record),
    };
    if let Some(k) = key {
        for (name, value) in [
            ("kms:KeySpec", &k.key_spec),
            ("kms:CustomerMasterKeySpec", &k.key_spec),
            ("kms:KeyUsage", &k.key_usage),
            ("kms:CustomerMasterKeyUsage", &k.key_usage),
            ("kms:KeyOrigin", &k.origin),
        ] {
            conditions.insert(name.to_owned(), vec![value.clone()]);
        }
        conditions.insert(
            "kms:MultiRegion".to_owned(),
            vec![k.multi_region.is_some().to_string()],
        );
        if k.multi_region.is_some() {
            let kind = if k.is_replica() { "REPLICA" } else { "PRIMARY" };
            conditions.insert("kms:MultiRegionKeyType".to_owned(), vec![kind.to_owned()]);
        }
        if !k.aliases.is_empty() {
            conditions.insert(
                "kms:ResourceAliases".to_owned(),
                k.aliases.iter().cloned().collect(),
            );
        }
        for (tag, value) in &k.tags {
            conditions.insert(format!("aws:ResourceTag/{tag}"), vec![value.clone()]);
        }
    }
    let (resource, resource_account, is_key, key_policy) = match target {
        Target::Account => ("*".to_owned(), None, false, None),
        Target::Key(k) => (
            k.record.arn(),
            Some(k.record.account.as_str()),
            true,
            k.policy.as_deref(),
        ),
        // The alias itself has no policy: IAM policies alone govern it.
        Target::Alias { arn, account, .. } => (arn.to_owned(), Some(account), false, None),
    };
    AuthzInput {
        principal,
        action,
        resource,
        resource_account,
        is_key,
        key_policy,
        conditions,
        grant_allows,
    }
}

/// The actions AWS lets principals of another account perform on a key (when its key policy
/// and their identity policies both allow): cryptographic operations, `DescribeKey`,
/// `GetPublicKey`, `GetKeyRotationStatus` and the grant operations. Everything else is refused
/// across accounts before any policy is evaluated.
pub const CROSS_ACCOUNT_ACTIONS: &[&str] = &[
    "kms:CreateGrant",
    "kms:Decrypt",
    "kms:DeriveSharedSecret",
    "kms:DescribeKey",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:GenerateDataKeyPair",
    "kms:GenerateDataKeyPairWithoutPlaintext",
    "kms:GenerateDataKeyWithoutPlaintext",
    "kms:GenerateMac",
    "kms:GetKeyRotationStatus",
    "kms:GetPublicKey",
    "kms:ListGrants",
    "kms:ReEncryptFrom",
    "kms:ReEncryptTo",
    "kms:RetireGrant",
    "kms:RevokeGrant",
    "kms:Sign",
    "kms:Verify",
    "kms:VerifyMac",
];

/// The refusal KMS makes before any policy is evaluated, for every action in dev mode and for
/// the actions outside [`CROSS_ACCOUNT_ACTIONS`] in production: keys of another account.
/// Dev mode evaluates no policies, so nothing could tell a key policy granting another account
/// from one that does not; accounts still separate tenants there. In production the evaluator
/// decides cross-account requests (the key policy must name the caller or its account, and the
/// caller's own identity policies must allow too). (Grant tokens are checked before this, by
/// [`crate::grants`], which can see the key's grants.)
pub fn same_account_only(input: &AuthzInput<'_>) -> Result<(), AwsError> {
    if let Some(owner) = input.resource_account
        && owner != input.principal.account_id
    {
        return Err(AwsError::new(
            400,
            "AccessDeniedException",
            format!(
                "User: {} is not authorized to perform: {} on resource: {} because no resource-based policy allows the {} action",
                input.principal.arn, input.action, input.resource, input.action
            ),
        ));
    }
    Ok(())
}

/// Allows (marking the request as authorized) or denies, through the shared authorizer.
pub async fn decide(
    authorizer: &Authorizer,
    ctx: &RequestContext,
    input: &AuthzInput<'_>,
) -> Result<(), AwsError> {
    if ctx.dev_mode {
        same_account_only(input)?;
    } else if !CROSS_ACCOUNT_ACTIONS.contains(&input.action) {
        // Operations AWS never performs across accounts (key management, policies, aliases,
        // tags, …) stay in the key's account whatever its policy says.
        same_account_only(input)?;
    }
    let request = AccessRequest {
        resource_account: input.resource_account,
        resource_policy: input.key_policy,
        resource_policy_must_allow: input.is_key,
        grant_allows: input.grant_allows,
        conditions: &input.conditions,
        ..AccessRequest::new(input.action, &input.resource, ErrorFlavour::Kms)
    };
    authorizer.authorize(ctx, &request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conditions_describe_request_and_key() {
        let p = Principal::root("111122223333", "AKIA");
        let mut ctx = BTreeMap::new();
        ctx.insert("Dept".to_owned(), "IT".to_owned());
        let req = RequestConditions::new()
            .encryption_context(Some(&ctx))
            .set("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT")
            .request_alias(Some("alias/app"));
        let i = input(&p, "kms:Encrypt", Target::Account, None, req, false);
        assert_eq!(i.resource, "*");
        assert!(!i.is_key);
        assert_eq!(i.conditions["kms:EncryptionContext:Dept"], vec!["IT"]);
        assert_eq!(i.conditions["kms:EncryptionContextKeys"], vec!["Dept"]);
        assert_eq!(i.conditions["kms:CallerAccount"], vec!["111122223333"]);
        assert_eq!(i.conditions["kms:RequestAlias"], vec!["alias/app"]);
        assert!(same_account_only(&i).is_ok());
    }

    #[test]
    fn other_accounts_are_refused_before_evaluation_in_dev_mode() {
        let p = Principal::root("111122223333", "AKIA");
        let i = AuthzInput {
            principal: &p,
            action: "kms:Decrypt",
            resource: "arn:aws:kms:us-east-1:444455556666:key/k".into(),
            resource_account: Some("444455556666"),
            is_key: true,
            key_policy: None,
            conditions: Conditions::new(),
            grant_allows: false,
        };
        let e = same_account_only(&i).unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
        assert_eq!(
            e.message.unwrap(),
            "User: arn:aws:iam::111122223333:root is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:444455556666:key/k because no resource-based policy allows the kms:Decrypt action"
        );
        let i = AuthzInput {
            resource_account: Some("111122223333"),
            ..i
        };
        assert!(same_account_only(&i).is_ok());
    }
}
