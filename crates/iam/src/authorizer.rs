//! The one authorizer every operation passes through: it loads the caller's identity policies
//! (parsed and cached by the [`IdentityStore`]), builds the evaluation context from the request
//! and evaluates with the resource policy the service supplies.
//!
//! - `--dev` mode: every caller is treated as the root user of its account — allowed, with no
//!   policy evaluated (KMS still keeps accounts apart by itself).
//! - `sts:GetCallerIdentity` is allowed for every authenticated caller, as AWS does: no policy can
//!   deny it.
//! - Everything else is [`evaluate`]d; a denial becomes the service's access-denied error with
//!   AWS's message. Failures to load policies deny (as an internal error), never allow.

use std::collections::BTreeMap;
use std::sync::Arc;

use citadel_api::{AwsError, RequestContext};

use crate::credentials::IdentityStore;
use crate::policy::{
    ContextValue, ErrorFlavour, EvalContext, EvalInput, Policy, PrincipalInfo, evaluate,
};

/// No condition keys beyond the global ones.
static NO_CONDITIONS: BTreeMap<String, Vec<String>> = BTreeMap::new();

/// One action to authorize, with what the service knows about its resource.
#[derive(Debug, Clone, Copy)]
pub struct AccessRequest<'a> {
    /// `kms:Encrypt`, `iam:CreateUser`, …
    pub action: &'a str,
    /// The resource ARN, or `*` for actions on no particular resource.
    pub resource: &'a str,
    /// The account owning the resource; taken from the ARN when `None`.
    pub resource_account: Option<&'a str>,
    /// The resource's policy (secret policy, …; the key policy for KMS keys).
    pub resource_policy: Option<&'a Policy>,
    /// The resource is a KMS key: its key policy ([`resource_policy`](Self::resource_policy))
    /// must allow, even for the account's root. With no policy given, nothing is allowed.
    pub kms_key_policy: bool,
    /// A KMS grant allows this request.
    pub grant_allows: bool,
    /// The service's condition keys (`kms:CallerAccount`, `aws:ResourceTag/…`), string values.
    pub conditions: &'a BTreeMap<String, Vec<String>>,
    /// The shape of the access-denied error.
    pub flavour: ErrorFlavour,
}

impl<'a> AccessRequest<'a> {
    /// `action` on `resource`, with no resource policy and no service condition keys.
    pub fn new(action: &'a str, resource: &'a str, flavour: ErrorFlavour) -> Self {
        AccessRequest {
            action,
            resource,
            resource_account: None,
            resource_policy: None,
            kms_key_policy: false,
            grant_allows: false,
            conditions: &NO_CONDITIONS,
            flavour,
        }
    }
}

/// Decides every request; share one per server (`Arc<Authorizer>`).
pub struct Authorizer {
    identities: Arc<IdentityStore>,
}

impl std::fmt::Debug for Authorizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authorizer").finish_non_exhaustive()
    }
}

impl Authorizer {
    pub fn new(identities: Arc<IdentityStore>) -> Self {
        Authorizer { identities }
    }

    /// Allows (and marks `ctx` as authorized) or answers the error to return.
    pub async fn authorize(
        &self,
        ctx: &RequestContext,
        req: &AccessRequest<'_>,
    ) -> Result<(), AwsError> {
        self.check(ctx, req).await?;
        ctx.authorized.mark();
        Ok(())
    }

    /// The same decision as [`authorize`](Self::authorize) without marking the request: for
    /// questions about a hypothetical request (KMS's lockout safety check asks whether a new key
    /// policy would still let the caller call PutKeyPolicy).
    pub async fn check(
        &self,
        ctx: &RequestContext,
        req: &AccessRequest<'_>,
    ) -> Result<(), AwsError> {
        // Dev callers act as the root user of their account.
        if ctx.dev_mode || req.action == "sts:GetCallerIdentity" {
            return Ok(());
        }
        let policies = self
            .identities
            .principal_policies(&ctx.principal)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, principal = %ctx.principal.arn, "loading the caller's policies failed; denying");
                AwsError::internal()
            })?;
        let mut principal = PrincipalInfo::from(&ctx.principal);
        principal.tags = policies
            .tags
            .iter()
            .map(|t| (t.key.clone(), t.value.clone()))
            .collect();
        let mut builder = EvalContext::builder(principal, req.action, req.resource)
            .secure_transport(ctx.secure_transport);
        if !ctx.region.is_empty() {
            builder = builder.requested_region(&ctx.region);
        }
        if let Some(ip) = ctx.source_ip {
            builder = builder.source_ip(ip);
        }
        for (key, values) in req.conditions {
            builder =
                builder.key_values(key, values.iter().map(|v| ContextValue::String(v.clone())));
        }
        let eval_ctx = builder.build();
        let mut input = EvalInput::new(&eval_ctx)
            .identity_policies(&policies.identity)
            .permissions_boundary(policies.boundary.as_ref().map(|(_, p)| p.as_ref()))
            .resource_policy(req.resource_policy)
            .resource_account(req.resource_account)
            .grant_allows(req.grant_allows);
        input.kms_key_policy = req.kms_key_policy;
        let result = evaluate(&input);
        match result.access_denied_error(&ctx.principal.arn, req.action, req.resource, req.flavour)
        {
            None => Ok(()),
            Some(e) => {
                tracing::debug!(
                    principal = %ctx.principal.arn,
                    action = req.action,
                    resource = req.resource,
                    decision = ?result.decision,
                    "access denied"
                );
                Err(e)
            }
        }
    }
}
