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
use crate::sessions::{SESSION_KEY_PREFIX, SessionKind};

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
    /// The resource policy ([`resource_policy`](Self::resource_policy)) must allow, even for the
    /// account's root: a KMS key policy, a role's trust policy. With no policy given, nothing is
    /// allowed.
    pub resource_policy_must_allow: bool,
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
            resource_policy_must_allow: false,
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
        // Dev callers act as the root user of their account. No policy controls the
        // authentication operations (GetCallerIdentity, GetSessionToken), as on AWS.
        if ctx.dev_mode
            || req.action == "sts:GetCallerIdentity"
            || req.action == "sts:GetSessionToken"
        {
            return Ok(());
        }
        // Requests signed with temporary credentials carry their session: its policies narrow
        // the role's, and its tags and issue time join the context. A session that vanished
        // since authentication (role deleted) allows nothing.
        let credential = if ctx.principal.access_key_id.starts_with(SESSION_KEY_PREFIX) {
            match self.identities.lookup(&ctx.principal.access_key_id).await {
                Ok(Some(c)) if c.session().is_some() => Some(c),
                Ok(_) => return Err(session_denied(ctx, req)),
                Err(e) => {
                    tracing::error!(error = %e, principal = %ctx.principal.arn, "loading the caller's session failed; denying");
                    return Err(AwsError::internal());
                }
            }
        } else {
            None
        };
        let session = credential.as_ref().and_then(|c| c.session());
        if let Some(s) = session
            && s.kind != SessionKind::AssumedRole
            && !get_session_token_may(req.action)
        {
            // GetSessionToken credentials without MFA: no IAM, and of STS only AssumeRole and
            // GetCallerIdentity (AWS's documented limits).
            return Err(session_denied(ctx, req));
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
        if let Some(s) = session {
            // Session tags override the role's tags of the same key (case-insensitively).
            for tag in &s.tags {
                principal
                    .tags
                    .retain(|(k, _)| !k.eq_ignore_ascii_case(&tag.key));
                principal.tags.push((tag.key.clone(), tag.value.clone()));
            }
            if let Some(role_arn) = &s.role_arn {
                principal.session_issuer_arn = Some(role_arn.clone());
            }
        }
        let mut builder = EvalContext::builder(principal, req.action, req.resource)
            .secure_transport(ctx.secure_transport);
        if let Some(s) = session
            && let Ok(issued) = time::OffsetDateTime::from_unix_timestamp(s.issued)
        {
            builder = builder.token_issue_time(issued);
        }
        if let Some(identity) = session.and_then(|s| s.source_identity.as_deref()) {
            builder = builder.key(
                "aws:SourceIdentity",
                ContextValue::String(identity.to_owned()),
            );
        }
        if !ctx.region.is_empty() {
            builder = builder.requested_region(&ctx.region);
        }
        if let Some(ip) = ctx.source_ip {
            builder = builder.source_ip(ip);
        }
        // A Citadel service forwarding the caller's request (Secrets Manager → KMS): AWS sets
        // aws:CalledVia to the service principal and aws:ViaAWSService.
        if let Some(service) = ctx.called_via {
            builder = builder
                .via_aws_service(true)
                .called_via([format!("{service}.amazonaws.com")]);
        }
        for (key, values) in req.conditions {
            builder =
                builder.key_values(key, values.iter().map(|v| ContextValue::String(v.clone())));
        }
        let eval_ctx = builder.build();
        let mut input = EvalInput::new(&eval_ctx)
            .identity_policies(&policies.identity)
            .permissions_boundary(policies.boundary.as_ref().map(|(_, p)| p.as_ref()))
            .session_policies(session.map_or(&[][..], |s| s.policies.as_slice()))
            .resource_policy(req.resource_policy)
            .resource_account(req.resource_account)
            .grant_allows(req.grant_allows);
        input.kms_key_policy = req.resource_policy_must_allow;
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

/// What credentials from `GetSessionToken` (without MFA) may do: anything but IAM, and of STS
/// only `AssumeRole` and `GetCallerIdentity`.
fn get_session_token_may(action: &str) -> bool {
    let lower = action.to_ascii_lowercase();
    if lower.starts_with("iam:") {
        return false;
    }
    if lower.starts_with("sts:") {
        return lower == "sts:assumerole" || lower == "sts:getcalleridentity";
    }
    true
}

/// The access-denied error for a request a session may not make at all.
fn session_denied(ctx: &RequestContext, req: &AccessRequest<'_>) -> AwsError {
    let message = format!(
        "User: {} is not authorized to perform: {} on resource: {}",
        ctx.principal.arn, req.action, req.resource
    );
    match req.flavour {
        ErrorFlavour::Iam | ErrorFlavour::Sts => AwsError::new(403, "AccessDenied", message),
        ErrorFlavour::Kms | ErrorFlavour::SecretsManager => {
            AwsError::new(400, "AccessDeniedException", message)
        }
    }
}
