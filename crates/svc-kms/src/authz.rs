//! The one place KMS decides whether a caller may do something.
//!
//! Every handler builds an [`AuthzInput`] — the IAM action, the resource ARN, the key policy and
//! the KMS condition keys of the request — and passes it to [`decide`]. Today `decide` applies
//! the two rules that hold without a policy evaluator (a principal only reaches keys of its own
//! account; the account-level decision of `citadel_iam::authorize`); when the evaluator lands, it
//! receives this same input and only `decide` changes.

use std::collections::BTreeMap;

use citadel_api::{AwsError, Principal};
use citadel_iam::Decision;

use crate::record::KeyRecord;

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
    /// The key policy (`default`) of the key, when the resource is a key.
    pub key_policy: Option<&'a str>,
    pub conditions: Conditions,
    /// Grant tokens the request presented (a grant not yet visible everywhere takes effect
    /// through its token).
    pub grant_tokens: Vec<String>,
    pub dev_mode: bool,
}

/// Request-specific condition keys a handler adds to the common ones, and the grant tokens the
/// request carries.
#[derive(Debug, Default, Clone)]
pub struct RequestConditions(Conditions, Vec<String>);

impl RequestConditions {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn set(mut self, key: &str, value: impl Into<String>) -> Self {
        self.0.insert(key.to_owned(), vec![value.into()]);
        self
    }

    /// `kms:EncryptionContext:<k>` for every pair and `kms:EncryptionContextKeys`.
    pub fn encryption_context(mut self, context: Option<&BTreeMap<String, String>>) -> Self {
        if let Some(context) = context {
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
}

/// What the request is about.
#[derive(Debug, Clone, Copy)]
pub enum Target<'a> {
    /// No particular key (`CreateKey`, `ListKeys`, `GenerateRandom`, …).
    Account,
    Key(&'a KeyRecord),
    /// An alias of `key` (alias operations authorize on the alias and on the key).
    Alias {
        arn: &'a str,
        account: &'a str,
        key: &'a KeyRecord,
    },
}

/// Builds the full input: the request's conditions plus those every KMS request carries
/// (`kms:CallerAccount`, `kms:ViaService` when another Citadel service calls on the caller's
/// behalf) and those that describe the key.
pub fn input<'a>(
    principal: &'a Principal,
    dev_mode: bool,
    action: &'static str,
    target: Target<'a>,
    via_service: Option<&str>,
    request: RequestConditions,
) -> AuthzInput<'a> {
    let RequestConditions(mut conditions, grant_tokens) = request;
    conditions.insert(
        "kms:CallerAccount".to_owned(),
        vec![principal.account_id.clone()],
    );
    if let Some(via) = via_service {
        conditions.insert("kms:ViaService".to_owned(), vec![via.to_owned()]);
    }
    let key = match target {
        Target::Account => None,
        Target::Key(k) | Target::Alias { key: k, .. } => Some(k),
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
        conditions.insert("kms:MultiRegion".to_owned(), vec!["false".to_owned()]);
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
    let (resource, resource_account, key_policy) = match target {
        Target::Account => ("*".to_owned(), None, None),
        Target::Key(k) => (k.arn(), Some(k.account.as_str()), Some(k.policy.as_str())),
        // The alias itself has no policy: IAM policies alone govern it.
        Target::Alias { arn, account, .. } => (arn.to_owned(), Some(account), None),
    };
    AuthzInput {
        principal,
        action,
        resource,
        resource_account,
        key_policy,
        conditions,
        grant_tokens,
        dev_mode,
    }
}

/// Allows or denies. The only function that changes when the policy evaluator arrives.
pub fn decide(input: &AuthzInput<'_>) -> Result<(), AwsError> {
    // Grants do not exist yet, so no token can name one; AWS refuses a token it cannot match.
    if !input.grant_tokens.is_empty() {
        return Err(AwsError::new(
            400,
            "InvalidGrantTokenException",
            "The request was rejected because the specified grant token is not valid.",
        ));
    }
    // Without an evaluator no key policy can grant another account anything, so a key of another
    // account is always out of reach — also in dev mode, where accounts still separate tenants.
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
    match citadel_iam::authorize(
        input.principal,
        input.action,
        &input.resource,
        input.dev_mode,
    ) {
        Decision::Allow => Ok(()),
        Decision::Deny(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use citadel_api::PrincipalKind;

    #[test]
    fn conditions_describe_request_and_key() {
        let p = Principal::root("111122223333", "AKIA");
        let mut ctx = BTreeMap::new();
        ctx.insert("Dept".to_owned(), "IT".to_owned());
        let req = RequestConditions::new()
            .encryption_context(Some(&ctx))
            .set("kms:EncryptionAlgorithm", "SYMMETRIC_DEFAULT")
            .request_alias(Some("alias/app"));
        let i = input(&p, false, "kms:Encrypt", Target::Account, None, req);
        assert_eq!(i.resource, "*");
        assert_eq!(i.conditions["kms:EncryptionContext:Dept"], vec!["IT"]);
        assert_eq!(i.conditions["kms:EncryptionContextKeys"], vec!["Dept"]);
        assert_eq!(i.conditions["kms:CallerAccount"], vec!["111122223333"]);
        assert_eq!(i.conditions["kms:RequestAlias"], vec!["alias/app"]);
        assert!(decide(&i).is_ok());
    }

    #[test]
    fn other_accounts_and_non_root_principals_are_denied() {
        let p = Principal::root("111122223333", "AKIA");
        let i = AuthzInput {
            principal: &p,
            action: "kms:Decrypt",
            resource: "arn:aws:kms:us-east-1:444455556666:key/k".into(),
            resource_account: Some("444455556666"),
            key_policy: Some("{}"),
            conditions: Conditions::new(),
            grant_tokens: Vec::new(),
            dev_mode: true,
        };
        let e = decide(&i).unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
        assert_eq!(
            e.message.unwrap(),
            "User: arn:aws:iam::111122223333:root is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:444455556666:key/k because no resource-based policy allows the kms:Decrypt action"
        );
        let mut user = p.clone();
        user.kind = PrincipalKind::User;
        user.arn = "arn:aws:iam::111122223333:user/u".into();
        let i = AuthzInput {
            principal: &user,
            resource_account: Some("111122223333"),
            dev_mode: false,
            ..i
        };
        assert_eq!(decide(&i).unwrap_err().code, "AccessDeniedException");
        let i = AuthzInput {
            principal: &p,
            grant_tokens: vec!["token".into()],
            ..i
        };
        assert_eq!(decide(&i).unwrap_err().code, "InvalidGrantTokenException");
    }
}
