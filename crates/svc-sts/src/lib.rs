//! AWS STS: `GetCallerIdentity` answers from the verified principal; `AssumeRole` and
//! `GetSessionToken` issue temporary credentials (`ASIA…` + secret + session token) kept in the
//! sealed store by [`IdentityStore`].
//!
//! `AssumeRole` is authorized as AWS does: the role's trust policy is the resource policy and
//! must allow the caller (naming the caller exactly suffices within the role's account; naming
//! the account delegates to the caller's identity policies; across accounts both must allow).
//! A role that does not exist is denied with the same message as one that does not trust the
//! caller, so existence is not revealed. Expired sessions are purged by the scheduler
//! ([`ScheduledWork`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use citadel_api::{
    AwsError, OperationInput, OperationOutput, OperationSpec, PrincipalKind, RequestContext,
    ScheduledWork, ServiceHandler, ServiceSpec, Support,
};
use citadel_iam::identity::{Tag, name_key};
use citadel_iam::policy::{ErrorFlavour, Policy, PolicyKind};
use citadel_iam::sessions::{IssuedSession, NewSession, SessionError, SessionKind};
use citadel_iam::{AccessRequest, Authorizer, IdentityStore};
use citadel_model::{Timestamp, sts};
use secrecy::ExposeSecret;

/// `AssumeRole`'s default session length, and the cap for role chaining.
const ONE_HOUR: i64 = 3600;
/// `GetSessionToken`'s default session length.
const SESSION_TOKEN_DEFAULT: i64 = 43200;

pub struct Sts {
    identities: Arc<IdentityStore>,
    authorizer: Arc<Authorizer>,
}

impl std::fmt::Debug for Sts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sts").finish_non_exhaustive()
    }
}

fn params(input: &OperationInput) -> &[(String, String)] {
    match input {
        OperationInput::Query(p) => p,
        _ => &[],
    }
}

fn now_secs() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn access_denied(caller_arn: &str, action: &str, resource: &str) -> AwsError {
    AwsError::new(
        403,
        "AccessDenied",
        format!(
            "User: {caller_arn} is not authorized to perform: {action} on resource: {resource}"
        ),
    )
}

fn validation(message: &str) -> AwsError {
    AwsError::new(400, "ValidationError", message.to_owned())
}

fn internal(e: &dyn std::fmt::Display) -> AwsError {
    tracing::error!(error = %e, "STS could not complete the request");
    AwsError::internal()
}

fn session_error(e: SessionError) -> AwsError {
    match e {
        SessionError::UnknownPolicyArn(arn) => AwsError::new(
            400,
            "InvalidParameterValue",
            format!("The policy {arn} does not exist or is not attachable."),
        ),
        SessionError::BadManagedPolicy(arn) => AwsError::new(
            400,
            "MalformedPolicyDocument",
            format!("The managed policy {arn} is not a valid session policy."),
        ),
        SessionError::Identity(e) => internal(&e),
    }
}

fn credentials_xml(issued: &IssuedSession) -> sts::Credentials {
    sts::Credentials {
        access_key_id: Some(issued.access_key_id.clone()),
        secret_access_key: Some(citadel_model::SensitiveString::from(
            issued.secret_access_key.expose_secret().to_owned(),
        )),
        session_token: Some(issued.session_token.expose_secret().to_owned()),
        expiration: Some(Timestamp::from_epoch_seconds(issued.expires)),
    }
}

fn model_tags(tags: Option<&Vec<sts::Tag>>) -> Vec<Tag> {
    tags.map(|tags| {
        tags.iter()
            .map(|t| Tag {
                key: t.key.clone().unwrap_or_default(),
                value: t.value.clone().unwrap_or_default(),
            })
            .collect()
    })
    .unwrap_or_default()
}

impl Sts {
    pub fn new(identities: Arc<IdentityStore>, authorizer: Arc<Authorizer>) -> Self {
        Sts {
            identities,
            authorizer,
        }
    }

    async fn allow_anything(&self, ctx: &RequestContext, action: &str) -> Result<(), AwsError> {
        self.authorizer
            .authorize(ctx, &AccessRequest::new(action, "*", ErrorFlavour::Sts))
            .await
    }

    async fn get_caller_identity(
        &self,
        ctx: &RequestContext,
        input: &OperationInput,
    ) -> Result<OperationOutput, AwsError> {
        // Parsing still runs so that malformed parameters are rejected as AWS does.
        sts::GetCallerIdentityRequest::from_query(params(input))?;
        self.allow_anything(ctx, "sts:GetCallerIdentity").await?;
        let out = sts::GetCallerIdentityResponse {
            user_id: Some(ctx.principal.user_id.clone()),
            account: Some(ctx.principal.account_id.clone()),
            arn: Some(ctx.principal.arn.clone()),
        };
        let mut xml = String::new();
        out.to_query_xml(&mut xml);
        Ok(OperationOutput::QueryXml(xml))
    }

    async fn get_session_token(
        &self,
        ctx: &RequestContext,
        input: &OperationInput,
    ) -> Result<OperationOutput, AwsError> {
        let req = sts::GetSessionTokenRequest::from_query(params(input))?;
        req.validate()?;
        if req.serial_number.is_some() || req.token_code.is_some() {
            // No MFA devices exist here; a code cannot be verified, so it is refused.
            return Err(AwsError::new(
                403,
                "AccessDenied",
                "MultiFactorAuthentication failed: no MFA device is registered for this user.",
            ));
        }
        if ctx.principal.access_key_id.starts_with("ASIA") {
            return Err(AwsError::new(
                403,
                "AccessDenied",
                "Cannot call GetSessionToken with session credentials",
            ));
        }
        self.allow_anything(ctx, "sts:GetSessionToken").await?;
        let mut duration = req
            .duration_seconds
            .map_or(SESSION_TOKEN_DEFAULT, i64::from);
        let (kind, user) = match ctx.principal.kind {
            PrincipalKind::Root => {
                // Sessions of the account root last at most an hour (longer requests get one).
                duration = duration.min(ONE_HOUR);
                (SessionKind::Root, None)
            }
            PrincipalKind::User => {
                let name = ctx.principal.arn.rsplit('/').next().unwrap_or_default();
                (
                    SessionKind::User,
                    Some((
                        ctx.principal.arn.clone(),
                        ctx.principal.user_id.clone(),
                        name_key(name),
                    )),
                )
            }
            PrincipalKind::AssumedRole => {
                return Err(AwsError::new(
                    403,
                    "AccessDenied",
                    "Cannot call GetSessionToken with session credentials",
                ));
            }
        };
        let issued = self
            .identities
            .create_session(NewSession {
                kind,
                account_id: ctx.principal.account_id.clone(),
                role: None,
                session_name: None,
                user,
                now: now_secs(),
                duration_secs: duration,
                policy: None,
                policy_arns: Vec::new(),
                source_identity: None,
                tags: Vec::new(),
            })
            .await
            .map_err(session_error)?;
        let out = sts::GetSessionTokenResponse {
            credentials: Some(credentials_xml(&issued)),
        };
        let mut xml = String::new();
        out.to_query_xml(&mut xml);
        Ok(OperationOutput::QueryXml(xml))
    }

    async fn assume_role(
        &self,
        ctx: &RequestContext,
        input: &OperationInput,
    ) -> Result<OperationOutput, AwsError> {
        let req = sts::AssumeRoleRequest::from_query(params(input))?;
        req.validate()?;
        let role_arn = req.role_arn.clone().unwrap_or_default();
        let session_name = req.role_session_name.clone().unwrap_or_default();
        if req.serial_number.is_some() || req.token_code.is_some() {
            return Err(AwsError::new(
                403,
                "AccessDenied",
                "MultiFactorAuthentication failed: no MFA device is registered for this user.",
            ));
        }
        if req.provided_contexts.is_some() {
            return Err(AwsError::new(
                400,
                "InvalidParameterValue",
                "ProvidedContexts are not supported.",
            ));
        }
        let chained = ctx.principal.kind == PrincipalKind::AssumedRole;
        let duration = req.duration_seconds.map_or(ONE_HOUR, i64::from);
        if chained && duration > ONE_HOUR {
            return Err(validation(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
            ));
        }
        // The inline session policy must parse before anything is issued.
        if let Some(doc) = &req.policy {
            Policy::parse(doc, PolicyKind::Session)
                .map_err(|e| e.to_aws_error_for(ErrorFlavour::Sts))?;
        }
        let denied = || access_denied(&ctx.principal.arn, "sts:AssumeRole", &role_arn);
        let role = self
            .identities
            .assumable_role(&role_arn)
            .await
            .map_err(|e| internal(&e))?;
        let Some(role) = role else {
            return Err(denied());
        };
        // A trust policy that no longer parses trusts no one.
        let Ok(trust) = Policy::parse(&role.trust_policy, PolicyKind::Trust) else {
            tracing::warn!(role = %role.arn, "the role's trust policy does not parse; denying");
            return Err(denied());
        };
        let tags = model_tags(req.tags.as_ref());
        let mut conditions: BTreeMap<String, Vec<String>> = BTreeMap::new();
        conditions.insert("sts:RoleSessionName".into(), vec![session_name.clone()]);
        if let Some(external) = &req.external_id {
            conditions.insert("sts:ExternalId".into(), vec![external.clone()]);
        }
        if let Some(source) = &req.source_identity {
            conditions.insert("sts:SourceIdentity".into(), vec![source.clone()]);
        }
        for t in &tags {
            conditions.insert(format!("aws:RequestTag/{}", t.key), vec![t.value.clone()]);
        }
        if !tags.is_empty() {
            conditions.insert(
                "aws:TagKeys".into(),
                tags.iter().map(|t| t.key.clone()).collect(),
            );
        }
        // Session tags and a source identity need their own permission from the trust policy
        // (and the caller's identity policies), as on AWS.
        let mut actions = vec!["sts:AssumeRole"];
        if !tags.is_empty() {
            actions.push("sts:TagSession");
        }
        if req.source_identity.is_some() {
            actions.push("sts:SetSourceIdentity");
        }
        for action in actions {
            let mut access = AccessRequest::new(action, &role.arn, ErrorFlavour::Sts);
            access.resource_account = Some(&role.account_id);
            access.resource_policy = Some(&trust);
            // Like a KMS key policy, a trust policy must allow, even for the account's root.
            access.resource_policy_must_allow = true;
            access.conditions = &conditions;
            if let Err(e) = self.authorizer.authorize(ctx, &access).await {
                if e.code == "AccessDenied" {
                    return Err(access_denied(&ctx.principal.arn, action, &role_arn));
                }
                return Err(e);
            }
        }
        let max = if chained {
            ONE_HOUR
        } else {
            i64::from(role.max_session_duration)
        };
        if duration > max {
            return Err(validation(
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            ));
        }
        let policy_arns: Vec<String> = req
            .policy_arns
            .iter()
            .flatten()
            .filter_map(|p| p.arn.clone())
            .collect();
        let packed = req.policy.as_ref().map(|p| {
            // Share of the packed-policy budget the inline policy and managed ARNs use.
            let used = p.len() + policy_arns.iter().map(String::len).sum::<usize>();
            i32::try_from(used.saturating_mul(100) / 2048).unwrap_or(i32::MAX)
        });
        let source_identity = req.source_identity.clone();
        let issued = self
            .identities
            .create_session(NewSession {
                kind: SessionKind::AssumedRole,
                account_id: role.account_id.clone(),
                role: Some(role),
                session_name: Some(session_name),
                user: None,
                now: now_secs(),
                duration_secs: duration,
                policy: req.policy.clone(),
                policy_arns,
                source_identity: source_identity.clone(),
                tags,
            })
            .await
            .map_err(session_error)?;
        let out = sts::AssumeRoleResponse {
            credentials: Some(credentials_xml(&issued)),
            assumed_role_user: Some(sts::AssumedRoleUser {
                assumed_role_id: Some(issued.principal.user_id.clone()),
                arn: Some(issued.principal.arn.clone()),
            }),
            packed_policy_size: packed,
            source_identity,
        };
        let mut xml = String::new();
        out.to_query_xml(&mut xml);
        Ok(OperationOutput::QueryXml(xml))
    }
}

#[async_trait::async_trait]
impl ServiceHandler for Sts {
    fn spec(&self) -> &'static ServiceSpec {
        &sts::SPEC
    }

    fn implemented(&self) -> &'static [(&'static str, Support)] {
        &[
            ("GetCallerIdentity", Support::Full),
            (
                "AssumeRole",
                Support::Partial(
                    "no MFA (SerialNumber/TokenCode are refused), no ProvidedContexts, no transitive session tags",
                ),
            ),
            (
                "GetSessionToken",
                Support::Partial("no MFA: SerialNumber/TokenCode are refused"),
            ),
        ]
    }

    fn authorizes_itself(&self) -> bool {
        true
    }

    async fn handle(
        &self,
        ctx: &RequestContext,
        operation: &'static OperationSpec,
        input: OperationInput,
    ) -> Result<OperationOutput, AwsError> {
        match operation.name {
            "GetCallerIdentity" => self.get_caller_identity(ctx, &input).await,
            "AssumeRole" => self.assume_role(ctx, &input).await,
            "GetSessionToken" => self.get_session_token(ctx, &input).await,
            other => Err(AwsError::unsupported_operation("sts", other)),
        }
    }
}

/// Removes expired sessions (they are refused at every request regardless).
#[async_trait::async_trait]
impl ScheduledWork for Sts {
    fn name(&self) -> &'static str {
        "sts-sessions"
    }

    async fn run_due(&self, now_unix: i64) -> Result<(), String> {
        let removed = self
            .identities
            .purge_expired_sessions(now_unix)
            .await
            .map_err(|e| e.to_string())?;
        if removed > 0 {
            tracing::debug!(removed, "expired STS sessions removed");
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use citadel_api::Principal;
    use citadel_iam::identity::{EntityKind, NewRole};
    use citadel_iam::sessions::TokenCheck;

    const A: &str = "111122223333";
    const B: &str = "444455556666";

    struct World {
        _dir: tempfile::TempDir,
        identities: Arc<IdentityStore>,
        sts: Sts,
    }

    async fn world() -> World {
        let dir = tempfile::tempdir().unwrap();
        let backend = citadel_store::SqliteBackend::open(&dir.path().join("db"))
            .await
            .unwrap();
        let store = Arc::new(citadel_store::SealedStore::new(Arc::new(backend)));
        let key = citadel_barrier::RootKey::generate().unwrap();
        store.initialize_file(&key).await.unwrap();
        store.unseal_with_key(&key).await.unwrap();
        let identities = Arc::new(IdentityStore::new(store));
        let authorizer = Arc::new(Authorizer::new(identities.clone()));
        World {
            _dir: dir,
            sts: Sts::new(identities.clone(), authorizer),
            identities,
        }
    }

    fn ctx(principal: Principal) -> RequestContext {
        RequestContext {
            request_id: "r".into(),
            region: "us-east-1".into(),
            principal,
            source_ip: None,
            user_agent: None,
            dev_mode: false,
            secure_transport: true,
            authorized: Default::default(),
            called_via: None,
        }
    }

    fn query(pairs: &[(&str, &str)]) -> OperationInput {
        OperationInput::Query(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        )
    }

    fn trust(principal: &str, condition: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"{condition}}}]}}"#
        )
    }

    fn allow(action: &str, resource: &str) -> String {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}]}}"#
        )
    }

    async fn role(w: &World, account: &str, name: &str, trust_doc: &str) -> String {
        w.identities
            .create_role(
                account,
                &NewRole {
                    name: name.into(),
                    assume_role_policy: trust_doc.into(),
                    ..Default::default()
                },
            )
            .await
            .unwrap()
            .arn
    }

    async fn user(w: &World, account: &str, name: &str, policy: Option<&str>) -> Principal {
        let info = w
            .identities
            .create_user(account, name, None, None, &[])
            .await
            .unwrap();
        if let Some(p) = policy {
            w.identities
                .put_inline_policy(account, EntityKind::User, name, "p", p)
                .await
                .unwrap();
        }
        Principal {
            account_id: account.into(),
            arn: info.arn.clone(),
            user_id: info.id.clone(),
            access_key_id: "AKIAEXAMPLEEXAMPLE00".into(),
            kind: PrincipalKind::User,
        }
    }

    /// Assumes `role_arn` as `who`; returns the credentials' (id, token) or the error.
    async fn assume(
        w: &World,
        who: &Principal,
        extra: &[(&str, &str)],
        role_arn: &str,
    ) -> Result<(String, String, String), AwsError> {
        let mut pairs = vec![("RoleArn", role_arn), ("RoleSessionName", "s1")];
        pairs.extend_from_slice(extra);
        let out = w.sts.assume_role(&ctx(who.clone()), &query(&pairs)).await?;
        let OperationOutput::QueryXml(xml) = out else {
            panic!("not xml")
        };
        let field = |name: &str| {
            let open = format!("<{name}>");
            let start = xml.find(&open).unwrap() + open.len();
            let end = xml[start..].find('<').unwrap() + start;
            xml[start..end].to_owned()
        };
        Ok((field("AccessKeyId"), field("SessionToken"), field("Arn")))
    }

    #[tokio::test]
    async fn same_account_trust_and_identity_policies_decide() {
        let w = world().await;
        let alice_trust = trust(&format!("arn:aws:iam::{A}:user/alice"), "");
        let r = role(&w, A, "R", &alice_trust).await;
        let alice = user(&w, A, "alice", Some(&allow("sts:AssumeRole", &r))).await;
        let (akid, token, arn) = assume(&w, &alice, &[], &r).await.unwrap();
        assert!(akid.starts_with("ASIA") && akid.len() == 20, "{akid}");
        assert!(token.len() >= 88, "{token}");
        assert_eq!(arn, format!("arn:aws:sts::{A}:assumed-role/R/s1"));

        // The credential resolves with its token only, and stops at expiry.
        let cred = w.identities.lookup(&akid).await.unwrap().unwrap();
        assert_eq!(cred.principal.arn, arn);
        assert!(cred.principal.user_id.ends_with(":s1"));
        let now = now_secs();
        assert_eq!(cred.check_token(Some(&token), now), TokenCheck::Valid);
        assert_eq!(cred.check_token(None, now), TokenCheck::Invalid);
        assert_eq!(cred.check_token(Some("x"), now), TokenCheck::Invalid);
        let expires = cred.session().unwrap().expires;
        assert_eq!(expires - now, 3600, "default duration");
        assert_eq!(cred.check_token(Some(&token), expires), TokenCheck::Expired);
        // A long-term key refuses any token.
        let key = w.identities.create_access_key(A, "alice").await.unwrap();
        let long = w
            .identities
            .lookup(&key.access_key_id)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(long.check_token(Some(&token), now), TokenCheck::Invalid);
        assert_eq!(long.check_token(None, now), TokenCheck::Valid);
        let r2 = role(&w, A, "Acct", &trust(&format!("arn:aws:iam::{A}:root"), "")).await;
        // A role trusting the account delegates to identity policies: bob has none.
        let bob = user(&w, A, "bob", None).await;
        let e = assume(&w, &bob, &[], &r2).await.unwrap_err();
        assert_eq!(e.code, "AccessDenied");
        assert_eq!(
            e.message.as_deref().unwrap_or_default(),
            format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {r2}",
                bob.arn
            )
        );
        // Bob is not named by R's trust either.
        assert_eq!(
            assume(&w, &bob, &[], &r).await.unwrap_err().code,
            "AccessDenied"
        );
        // Root of the account: trusted through the account principal.
        let root = Principal::root(A, "AKIAROOTROOTROOTROOT");
        assume(&w, &root, &[], &r2).await.unwrap();
        // …but not by R, which names only alice: trust policies must allow even root.
        assert_eq!(
            assume(&w, &root, &[], &r).await.unwrap_err().code,
            "AccessDenied"
        );
        // A role that does not exist: the same denial.
        let ghost = format!("arn:aws:iam::{A}:role/Ghost");
        let e = assume(&w, &alice, &[], &ghost).await.unwrap_err();
        assert_eq!(e.code, "AccessDenied");
        // Duration rules.
        let e = assume(&w, &alice, &[("DurationSeconds", "7200")], &r)
            .await
            .unwrap_err();
        assert_eq!(e.code, "ValidationError");
        assert!(e.message.unwrap().contains("MaxSessionDuration"));
        let e = assume(&w, &alice, &[("DurationSeconds", "899")], &r)
            .await
            .unwrap_err();
        assert_eq!(e.code, "ValidationError");
        let e = assume(&w, &alice, &[("RoleSessionName", "bad name!")], &r).await;
        assert!(e.is_err());

        // Deleting the role ends its sessions.
        w.identities.delete_role(A, "R").await.unwrap();
        assert!(w.identities.lookup(&akid).await.unwrap().is_none());
    }

    #[tokio::test]
    async fn cross_account_needs_trust_and_identity_allow() {
        let w = world().await;
        let r = role(&w, B, "X", &trust(&format!("arn:aws:iam::{A}:root"), "")).await;
        let allowed = user(&w, A, "alice", Some(&allow("sts:AssumeRole", &r))).await;
        let (_, _, arn) = assume(&w, &allowed, &[], &r).await.unwrap();
        assert_eq!(arn, format!("arn:aws:sts::{B}:assumed-role/X/s1"));
        // Trusted account, but no identity allow.
        let carol = user(&w, A, "carol", None).await;
        assert_eq!(
            assume(&w, &carol, &[], &r).await.unwrap_err().code,
            "AccessDenied"
        );
        // Identity allow, but another account is trusted.
        let other = role(&w, B, "Y", &trust("arn:aws:iam::999999999999:root", "")).await;
        let dave = user(&w, A, "dave", Some(&allow("sts:AssumeRole", "*"))).await;
        assert_eq!(
            assume(&w, &dave, &[], &other).await.unwrap_err().code,
            "AccessDenied"
        );
        // Even naming the user exactly, a cross-account caller needs its identity allow.
        let named = role(
            &w,
            B,
            "Z",
            &trust(&format!("arn:aws:iam::{A}:user/carol"), ""),
        )
        .await;
        assert_eq!(
            assume(&w, &carol, &[], &named).await.unwrap_err().code,
            "AccessDenied"
        );
    }

    #[tokio::test]
    async fn external_id_and_role_chaining() {
        let w = world().await;
        let cond = r#","Condition":{"StringEquals":{"sts:ExternalId":"xyz"}}"#;
        let r = role(&w, A, "E", &trust(&format!("arn:aws:iam::{A}:root"), cond)).await;
        let alice = user(&w, A, "alice", Some(&allow("sts:AssumeRole", "*"))).await;
        assert_eq!(
            assume(&w, &alice, &[], &r).await.unwrap_err().code,
            "AccessDenied"
        );
        assert_eq!(
            assume(&w, &alice, &[("ExternalId", "nope")], &r)
                .await
                .unwrap_err()
                .code,
            "AccessDenied"
        );
        let (akid, _, _) = assume(&w, &alice, &[("ExternalId", "xyz")], &r)
            .await
            .unwrap();

        // The session chains into a role that trusts the account.
        w.identities
            .put_inline_policy(A, EntityKind::Role, "E", "p", &allow("sts:AssumeRole", "*"))
            .await
            .unwrap();
        let target = role(&w, A, "T", &trust(&format!("arn:aws:iam::{A}:root"), "")).await;
        let session = w.identities.lookup(&akid).await.unwrap().unwrap();
        let e = assume(
            &w,
            &session.principal,
            &[("DurationSeconds", "3601")],
            &target,
        )
        .await
        .unwrap_err();
        assert_eq!(e.code, "ValidationError");
        assert_eq!(
            e.message.as_deref(),
            Some(
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."
            )
        );
        assume(&w, &session.principal, &[], &target).await.unwrap();
    }

    #[tokio::test]
    async fn session_policies_narrow_and_expired_sessions_are_purged() {
        let w = world().await;
        let r = role(&w, A, "R", &trust(&format!("arn:aws:iam::{A}:root"), "")).await;
        w.identities
            .put_inline_policy(A, EntityKind::Role, "R", "p", &allow("kms:*", "*"))
            .await
            .unwrap();
        let alice = user(&w, A, "alice", Some(&allow("sts:AssumeRole", "*"))).await;
        let deny = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;
        let (wide, _, _) = assume(&w, &alice, &[], &r).await.unwrap();
        let (narrow, _, _) = assume(&w, &alice, &[("Policy", deny)], &r).await.unwrap();
        let authorizer = Authorizer::new(w.identities.clone());
        let check = |akid: String, action: &'static str| {
            let identities = w.identities.clone();
            let authorizer = &authorizer;
            async move {
                let p = identities
                    .lookup(&akid)
                    .await
                    .unwrap()
                    .unwrap()
                    .principal
                    .clone();
                authorizer
                    .check(&ctx(p), &AccessRequest::new(action, "*", ErrorFlavour::Kms))
                    .await
            }
        };
        check(wide.clone(), "kms:ListKeys").await.unwrap();
        check(narrow.clone(), "kms:Encrypt").await.unwrap();
        let e = check(narrow.clone(), "kms:ListKeys").await.unwrap_err();
        assert!(e.message.unwrap().contains("session policy"));

        // GetSessionToken: a user session with the user's permissions, not IAM's.
        let out = w
            .sts
            .get_session_token(&ctx(alice.clone()), &query(&[("DurationSeconds", "900")]))
            .await
            .unwrap();
        let OperationOutput::QueryXml(xml) = out else {
            panic!()
        };
        assert!(xml.contains("<AccessKeyId>ASIA"));

        // Purge: nothing before expiry, everything after.
        assert_eq!(
            w.identities
                .purge_expired_sessions(now_secs())
                .await
                .unwrap(),
            0
        );
        assert_eq!(
            w.identities
                .purge_expired_sessions(now_secs() + 3601)
                .await
                .unwrap(),
            3
        );
        assert!(w.identities.lookup(&wide).await.unwrap().is_none());
    }
}
