#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The evaluation table: each case is a request, the policies that apply to it, and AWS's
//! decision. Helpers keep each case to a line or two of policy JSON.

use std::sync::Arc;

use citadel_iam::policy::{
    ContextValue, EvalContext, EvalDecision, EvalInput, IdentityPolicyKind, ImplicitDenyReason,
    Policy, PolicyKind, PolicyType, PrincipalInfo, evaluate,
};
use time::macros::datetime;

const A: &str = "111122223333";
const B: &str = "444455556666";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/k1";
const KEY_B: &str = "arn:aws:kms:us-east-1:444455556666:key/kb";
const SECRET: &str = "arn:aws:secretsmanager:us-east-1:111122223333:secret:s-AbCdEf";
const ROLE: &str = "arn:aws:iam::111122223333:role/Admin";
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB_B: &str = "arn:aws:iam::444455556666:user/bob";
const SESSION: &str = "arn:aws:sts::111122223333:assumed-role/Admin/s1";

const ALLOW: EvalDecision = EvalDecision::Allow;
const DENY_ID: EvalDecision = EvalDecision::ExplicitDeny(PolicyType::Identity);
const DENY_RES: EvalDecision = EvalDecision::ExplicitDeny(PolicyType::Resource);
const DENY_BND: EvalDecision = EvalDecision::ExplicitDeny(PolicyType::PermissionsBoundary);
const DENY_SESS: EvalDecision = EvalDecision::ExplicitDeny(PolicyType::Session);
const NO_ID: EvalDecision = EvalDecision::ImplicitDeny(ImplicitDenyReason::NoIdentityAllow);
const NO_RES: EvalDecision = EvalDecision::ImplicitDeny(ImplicitDenyReason::NoResourceAllow);
const NO_BND: EvalDecision = EvalDecision::ImplicitDeny(ImplicitDenyReason::BoundaryDeny);
const NO_SESS: EvalDecision = EvalDecision::ImplicitDeny(ImplicitDenyReason::SessionPolicyDeny);

// ---- principals ----
fn alice() -> PrincipalInfo {
    PrincipalInfo::user(A, "alice", "AIDAALICE").with_tags([("team", "blue")])
}
fn carol() -> PrincipalInfo {
    PrincipalInfo::user(A, "carol", "AIDACAROL")
}
fn bob_b() -> PrincipalInfo {
    PrincipalInfo::user(B, "bob", "AIDABOB")
}
fn root_a() -> PrincipalInfo {
    PrincipalInfo::root(A)
}
fn root_b() -> PrincipalInfo {
    PrincipalInfo::root(B)
}
fn session() -> PrincipalInfo {
    PrincipalInfo::assumed_role(ROLE, "AROAADMIN", "s1").with_tags([("team", "red")])
}
fn logs() -> PrincipalInfo {
    PrincipalInfo::service("logs.amazonaws.com")
}
fn anon() -> PrincipalInfo {
    PrincipalInfo::anonymous()
}

// ---- JSON helpers ----
/// A JSON value: arrays and objects pass through, anything else becomes a string.
fn j(v: &str) -> String {
    if v.starts_with('[') || v.starts_with('{') {
        v.to_owned()
    } else {
        format!("\"{v}\"")
    }
}
/// A statement from (element, value) pairs.
fn st(fields: &[(&str, &str)]) -> String {
    let body: Vec<String> = fields
        .iter()
        .map(|(k, v)| format!("\"{k}\":{}", j(v)))
        .collect();
    format!("{{{}}}", body.join(","))
}
fn doc(stmts: &[String]) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
        stmts.join(",")
    )
}
fn allow(action: &str, resource: &str) -> String {
    doc(&[st(&[
        ("Effect", "Allow"),
        ("Action", action),
        ("Resource", resource),
    ])])
}
fn deny(action: &str, resource: &str) -> String {
    doc(&[st(&[
        ("Effect", "Deny"),
        ("Action", action),
        ("Resource", resource),
    ])])
}
fn allow_if(action: &str, resource: &str, cond: &str) -> String {
    doc(&[st(&[
        ("Effect", "Allow"),
        ("Action", action),
        ("Resource", resource),
        ("Condition", cond),
    ])])
}
/// A resource-policy statement document.
fn rp(effect: &str, principal: &str, action: &str) -> String {
    doc(&[st(&[
        ("Effect", effect),
        ("Principal", principal),
        ("Action", action),
        ("Resource", "*"),
    ])])
}
fn rp_if(effect: &str, principal: &str, action: &str, cond: &str) -> String {
    doc(&[st(&[
        ("Effect", effect),
        ("Principal", principal),
        ("Action", action),
        ("Resource", "*"),
        ("Condition", cond),
    ])])
}
fn aws(p: &str) -> String {
    format!(r#"{{"AWS":{}}}"#, j(p))
}
fn default_key_policy() -> String {
    rp("Allow", &aws(&format!("arn:aws:iam::{A}:root")), "kms:*")
}

// ---- cases ----
struct Case {
    name: &'static str,
    principal: PrincipalInfo,
    action: &'static str,
    resource: &'static str,
    keys: Vec<(&'static str, ContextValue)>,
    tls: Option<bool>,
    identity: Vec<String>,
    boundary: Option<String>,
    session: Vec<String>,
    resource_policy: Option<String>,
    resource_kind: PolicyKind,
    kms: bool,
    grant: bool,
    resource_account: Option<&'static str>,
    expect: Option<EvalDecision>,
}

fn c(
    name: &'static str,
    principal: PrincipalInfo,
    action: &'static str,
    resource: &'static str,
) -> Case {
    Case {
        name,
        principal,
        action,
        resource,
        keys: Vec::new(),
        tls: None,
        identity: Vec::new(),
        boundary: None,
        session: Vec::new(),
        resource_policy: None,
        resource_kind: PolicyKind::Resource,
        kms: false,
        grant: false,
        resource_account: None,
        expect: None,
    }
}

impl Case {
    fn id(mut self, json: impl Into<String>) -> Self {
        self.identity.push(json.into());
        self
    }
    fn bnd(mut self, json: impl Into<String>) -> Self {
        self.boundary = Some(json.into());
        self
    }
    fn sess(mut self, json: impl Into<String>) -> Self {
        self.session.push(json.into());
        self
    }
    fn res(mut self, json: impl Into<String>) -> Self {
        self.resource_policy = Some(json.into());
        self
    }
    fn trust(mut self, json: impl Into<String>) -> Self {
        self.resource_policy = Some(json.into());
        self.resource_kind = PolicyKind::Trust;
        self
    }
    fn kms(mut self, json: impl Into<String>) -> Self {
        self.resource_policy = Some(json.into());
        self.resource_kind = PolicyKind::KeyPolicy;
        self.kms = true;
        self
    }
    fn grant(mut self) -> Self {
        self.grant = true;
        self
    }
    fn key(mut self, k: &'static str, v: impl Into<ContextValue>) -> Self {
        self.keys.push((k, v.into()));
        self
    }
    fn tls(mut self, on: bool) -> Self {
        self.tls = Some(on);
        self
    }
    fn racct(mut self, acct: &'static str) -> Self {
        self.resource_account = Some(acct);
        self
    }
    fn is(mut self, d: EvalDecision) -> Self {
        self.expect = Some(d);
        self
    }

    fn run(&self) -> EvalDecision {
        let mut b = EvalContext::builder(self.principal.clone(), self.action, self.resource)
            .current_time(datetime!(2024-06-01 12:00:00 UTC))
            .source_ip("192.0.2.10".parse().unwrap());
        if let Some(tls) = self.tls {
            b = b.secure_transport(tls);
        }
        for (k, v) in &self.keys {
            b = b.key(k, v.clone());
        }
        let ctx = b.build();
        let parse = |json: &str, kind| {
            Policy::parse(json, kind).unwrap_or_else(|e| panic!("{}: {e}: {json}", self.name))
        };
        let managed = PolicyKind::Identity(IdentityPolicyKind::Managed);
        let identity: Vec<Arc<Policy>> = self
            .identity
            .iter()
            .map(|p| Arc::new(parse(p, managed)))
            .collect();
        let session: Vec<Arc<Policy>> = self
            .session
            .iter()
            .map(|p| Arc::new(parse(p, PolicyKind::Session)))
            .collect();
        let boundary = self
            .boundary
            .as_deref()
            .map(|p| parse(p, PolicyKind::Boundary));
        let resource = self
            .resource_policy
            .as_deref()
            .map(|p| parse(p, self.resource_kind));
        let mut input = EvalInput::new(&ctx)
            .identity_policies(&identity)
            .session_policies(&session)
            .permissions_boundary(boundary.as_ref())
            .resource_policy(resource.as_ref())
            .resource_account(self.resource_account)
            .grant_allows(self.grant);
        input.kms_key_policy = self.kms;
        evaluate(&input).decision
    }
}

fn cases() -> Vec<Case> {
    let u = alice;
    vec![
        // ---- identity policies, same account ----
        c("no policies", u(), "kms:Decrypt", KEY).is(NO_ID),
        c("exact allow", u(), "kms:Decrypt", KEY).id(allow("kms:Decrypt", KEY)).is(ALLOW),
        c("service wildcard", u(), "kms:Decrypt", KEY).id(allow("kms:*", KEY)).is(ALLOW),
        c("action case-insensitive", u(), "kms:Decrypt", KEY).id(allow("KMS:decrypt", KEY)).is(ALLOW),
        c("prefix wildcard elsewhere", u(), "kms:Decrypt", KEY).id(allow("kms:Enc*", KEY)).is(NO_ID),
        c("infix wildcard", u(), "kms:Decrypt", KEY).id(allow("kms:*crypt", KEY)).is(ALLOW),
        c("single-char wildcard", u(), "kms:Decrypt", KEY).id(allow("kms:?ecrypt", KEY)).is(ALLOW),
        c("star star", u(), "kms:Decrypt", KEY).id(allow("*", "*")).is(ALLOW),
        c("other action", u(), "kms:Decrypt", KEY).id(allow("kms:Encrypt", KEY)).is(NO_ID),
        c("other resource", u(), "kms:Decrypt", KEY).id(allow("kms:Decrypt", "arn:aws:kms:us-east-1:111122223333:key/k2")).is(NO_ID),
        c("resource wildcard region", u(), "kms:Decrypt", KEY).id(allow("kms:Decrypt", "arn:aws:kms:*:111122223333:key/*")).is(ALLOW),
        c("resource case-sensitive", u(), "kms:Decrypt", KEY).id(allow("kms:Decrypt", "arn:aws:kms:us-east-1:111122223333:key/K1")).is(NO_ID),
        c("resource ?", u(), "kms:Decrypt", KEY).id(allow("kms:Decrypt", "arn:aws:kms:us-east-1:111122223333:key/k?")).is(ALLOW),
        c("resource list", u(), "kms:Decrypt", KEY).id(allow("kms:Decrypt", r#"["arn:aws:kms:us-east-1:111122223333:key/k2","arn:aws:kms:us-east-1:111122223333:key/k1"]"#)).is(ALLOW),
        c("action list", u(), "kms:Decrypt", KEY).id(allow(r#"["kms:Encrypt","kms:Decrypt"]"#, KEY)).is(ALLOW),
        c("allow and deny in one policy", u(), "kms:Decrypt", KEY)
            .id(doc(&[st(&[("Effect", "Allow"), ("Action", "kms:*"), ("Resource", "*")]), st(&[("Effect", "Deny"), ("Action", "kms:Decrypt"), ("Resource", "*")])])).is(DENY_ID),
        c("deny in second policy", u(), "kms:Decrypt", KEY).id(allow("kms:*", "*")).id(deny("kms:Decrypt", KEY)).is(DENY_ID),
        c("deny wildcard beats specific allow", u(), "kms:Decrypt", KEY).id(allow("kms:Decrypt", KEY)).id(deny("kms:*", "*")).is(DENY_ID),
        c("deny other action", u(), "kms:Decrypt", KEY).id(allow("kms:*", "*")).id(deny("kms:Encrypt", "*")).is(ALLOW),
        c("deny other resource", u(), "kms:Decrypt", KEY).id(allow("kms:*", "*")).id(deny("kms:*", "arn:aws:kms:us-east-1:111122223333:key/k2")).is(ALLOW),
        c("NotAction allows others", u(), "kms:Decrypt", KEY).id(doc(&[st(&[("Effect", "Allow"), ("NotAction", "kms:Encrypt"), ("Resource", "*")])])).is(ALLOW),
        c("NotAction excludes it", u(), "kms:Decrypt", KEY).id(doc(&[st(&[("Effect", "Allow"), ("NotAction", "kms:Decrypt"), ("Resource", "*")])])).is(NO_ID),
        c("NotAction wildcard excludes", u(), "kms:Decrypt", KEY).id(doc(&[st(&[("Effect", "Allow"), ("NotAction", "kms:*"), ("Resource", "*")])])).is(NO_ID),
        c("NotResource allows others", u(), "kms:Decrypt", KEY).id(doc(&[st(&[("Effect", "Allow"), ("Action", "kms:*"), ("NotResource", "arn:aws:kms:us-east-1:111122223333:key/k2")])])).is(ALLOW),
        c("NotResource excludes it", u(), "kms:Decrypt", KEY).id(doc(&[st(&[("Effect", "Allow"), ("Action", "kms:*"), ("NotResource", KEY)])])).is(NO_ID),
        c("deny NotAction applies", u(), "kms:Decrypt", KEY).id(allow("*", "*")).id(doc(&[st(&[("Effect", "Deny"), ("NotAction", "kms:Encrypt"), ("Resource", "*")])])).is(DENY_ID),
        c("deny NotAction exempts it", u(), "kms:Decrypt", KEY).id(allow("*", "*")).id(doc(&[st(&[("Effect", "Deny"), ("NotAction", "kms:Decrypt"), ("Resource", "*")])])).is(ALLOW),
        c("deny NotResource applies", u(), "kms:Decrypt", KEY).id(allow("*", "*")).id(doc(&[st(&[("Effect", "Deny"), ("Action", "*"), ("NotResource", "arn:aws:s3:::*")])])).is(DENY_ID),
        c("deny with false condition", u(), "kms:Decrypt", KEY).id(allow("*", "*"))
            .id(doc(&[st(&[("Effect", "Deny"), ("Action", "*"), ("Resource", "*"), ("Condition", r#"{"StringEquals":{"aws:username":"bob"}}"#)])])).is(ALLOW),
        c("statement as object", u(), "kms:Decrypt", KEY).id(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*"}}"#).is(ALLOW),
        c("one of several statements", u(), "kms:Decrypt", KEY)
            .id(doc(&[st(&[("Effect", "Allow"), ("Action", "s3:*"), ("Resource", "*")]), st(&[("Effect", "Allow"), ("Action", "kms:Decrypt"), ("Resource", "*")])])).is(ALLOW),
        c("group and managed policies", u(), "kms:Decrypt", KEY).id(allow("s3:*", "*")).id(allow("kms:Decrypt", "*")).id(allow("ec2:*", "*")).is(ALLOW),
        c("request on *", u(), "kms:ListKeys", "*").id(allow("kms:ListKeys", "*")).is(ALLOW),
        c("resource pattern vs request *", u(), "kms:ListKeys", "*").id(allow("kms:ListKeys", "arn:aws:kms:*:*:key/*")).is(NO_ID),
        // ---- root ----
        c("root needs no policy", root_a(), "secretsmanager:GetSecretValue", SECRET).is(ALLOW),
        c("root denied by resource policy", root_a(), "secretsmanager:GetSecretValue", SECRET).res(rp("Deny", "*", "secretsmanager:*")).is(DENY_RES),
        c("root with default key policy", root_a(), "kms:Decrypt", KEY).kms(default_key_policy()).is(ALLOW),
        c("root locked out of key", root_a(), "kms:Decrypt", KEY).kms(rp("Allow", &aws(ALICE), "kms:*")).is(NO_RES),
        c("root by account id", root_a(), "kms:Decrypt", KEY).kms(rp("Allow", &aws(A), "kms:*")).is(ALLOW),
        c("root cross-account allowed", root_a(), "kms:Decrypt", KEY_B).kms(rp("Allow", &aws(A), "kms:Decrypt")).is(ALLOW),
        c("root cross-account no policy", root_a(), "secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:444455556666:secret:x").is(NO_RES),
        // ---- KMS key policies, same account ----
        c("default key policy delegates to IAM", u(), "kms:Decrypt", KEY).kms(default_key_policy()).id(allow("kms:Decrypt", KEY)).is(ALLOW),
        c("delegation without IAM allow", u(), "kms:Decrypt", KEY).kms(default_key_policy()).is(NO_ID),
        c("key policy names the user", u(), "kms:Decrypt", KEY).kms(rp("Allow", &aws(ALICE), "kms:Decrypt")).is(ALLOW),
        c("key policy user grant ignores boundary", u(), "kms:Decrypt", KEY).kms(rp("Allow", &aws(ALICE), "kms:Decrypt")).bnd(allow("s3:*", "*")).is(ALLOW),
        c("key policy without the caller", u(), "kms:Decrypt", KEY).kms(rp("Allow", &aws("arn:aws:iam::111122223333:user/carol"), "kms:*")).id(allow("kms:*", "*")).is(NO_RES),
        c("key policy deny", u(), "kms:Decrypt", KEY)
            .kms(doc(&[st(&[("Effect", "Allow"), ("Principal", &aws(A)), ("Action", "kms:*"), ("Resource", "*")]), st(&[("Effect", "Deny"), ("Principal", &aws(ALICE)), ("Action", "kms:Decrypt"), ("Resource", "*")])]))
            .id(allow("kms:*", "*")).is(DENY_RES),
        c("IAM deny under default key policy", u(), "kms:Decrypt", KEY).kms(default_key_policy()).id(allow("kms:*", "*")).id(deny("kms:Decrypt", "*")).is(DENY_ID),
        c("key policy to everyone", u(), "kms:Decrypt", KEY).kms(rp("Allow", "*", "kms:Decrypt")).is(ALLOW),
        c("key policy CallerAccount", u(), "kms:Decrypt", KEY).kms(rp_if("Allow", "*", "kms:Decrypt", r#"{"StringEquals":{"kms:CallerAccount":"111122223333"}}"#)).key("kms:CallerAccount", A).is(ALLOW),
        c("key policy CallerAccount mismatch", u(), "kms:Decrypt", KEY).kms(rp_if("Allow", "*", "kms:Decrypt", r#"{"StringEquals":{"kms:CallerAccount":"444455556666"}}"#)).key("kms:CallerAccount", A).is(NO_RES),
        c("grant allows", u(), "kms:Decrypt", KEY).kms(rp("Allow", &aws("arn:aws:iam::111122223333:user/carol"), "kms:*")).grant().is(ALLOW),
        c("grant vs IAM deny", u(), "kms:Decrypt", KEY).kms(default_key_policy()).grant().id(deny("kms:*", "*")).is(DENY_ID),
        c("grant vs key policy deny", u(), "kms:Decrypt", KEY).kms(rp("Deny", "*", "kms:Decrypt")).grant().is(DENY_RES),
        c("ViaService present", u(), "kms:Decrypt", KEY).kms(rp_if("Allow", &aws(ALICE), "kms:Decrypt", r#"{"StringEquals":{"kms:ViaService":"secretsmanager.us-east-1.amazonaws.com"}}"#))
            .key("kms:ViaService", "secretsmanager.us-east-1.amazonaws.com").is(ALLOW),
        c("ViaService absent", u(), "kms:Decrypt", KEY).kms(rp_if("Allow", &aws(ALICE), "kms:Decrypt", r#"{"StringEquals":{"kms:ViaService":"secretsmanager.us-east-1.amazonaws.com"}}"#)).is(NO_RES),
        c("EncryptionContext match", u(), "kms:Decrypt", KEY).kms(rp_if("Allow", &aws(ALICE), "kms:Decrypt", r#"{"StringEquals":{"kms:EncryptionContext:Dept":"IT"}}"#)).key("kms:EncryptionContext:Dept", "IT").is(ALLOW),
        c("EncryptionContext key name case", u(), "kms:Decrypt", KEY).kms(rp_if("Allow", &aws(ALICE), "kms:Decrypt", r#"{"StringEquals":{"kms:encryptioncontext:dept":"IT"}}"#)).key("kms:EncryptionContext:Dept", "IT").is(ALLOW),
        c("EncryptionContext value case", u(), "kms:Decrypt", KEY).kms(rp_if("Allow", &aws(ALICE), "kms:Decrypt", r#"{"StringEquals":{"kms:EncryptionContext:Dept":"it"}}"#)).key("kms:EncryptionContext:Dept", "IT").is(NO_RES),
        c("EncryptionContextKeys subset", u(), "kms:Decrypt", KEY).kms(rp_if("Allow", &aws(ALICE), "kms:Decrypt", r#"{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Dept","Proj"]}}"#)).key("kms:EncryptionContextKeys", "Dept").is(ALLOW),
        c("EncryptionContextKeys extra key", u(), "kms:Decrypt", KEY).kms(rp_if("Allow", &aws(ALICE), "kms:Decrypt", r#"{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Dept","Proj"]}}"#)).key("kms:EncryptionContextKeys", "Dept").key("kms:EncryptionContextKeys", "Other").is(NO_RES),
        c("ForAllValues with no context", u(), "kms:Decrypt", KEY).kms(rp_if("Allow", &aws(ALICE), "kms:Decrypt", r#"{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["Dept"]}}"#)).is(ALLOW),
        c("ForAnyValue with no context", u(), "kms:Decrypt", KEY).kms(rp_if("Allow", &aws(ALICE), "kms:Decrypt", r#"{"ForAnyValue:StringEquals":{"kms:EncryptionContextKeys":["Dept"]}}"#)).is(NO_RES),
        c("delegation within boundary", u(), "kms:Decrypt", KEY).kms(default_key_policy()).id(allow("kms:*", "*")).bnd(allow("kms:*", "*")).is(ALLOW),
        c("delegation outside boundary", u(), "kms:Decrypt", KEY).kms(default_key_policy()).id(allow("kms:*", "*")).bnd(allow("s3:*", "*")).is(NO_BND),
        c("key policy names role", session(), "kms:Decrypt", KEY).kms(rp("Allow", &aws(ROLE), "kms:Decrypt")).is(ALLOW),
        c("role grant narrowed by session policy", session(), "kms:Decrypt", KEY).kms(rp("Allow", &aws(ROLE), "kms:Decrypt")).sess(allow("s3:*", "*")).is(NO_SESS),
        c("session grant not narrowed", session(), "kms:Decrypt", KEY).kms(rp("Allow", &aws(SESSION), "kms:Decrypt")).sess(allow("s3:*", "*")).is(ALLOW),
        // ---- KMS cross-account ----
        c("cross-account key via account", bob_b(), "kms:Decrypt", KEY).kms(rp("Allow", &aws(B), "kms:Decrypt")).id(allow("kms:Decrypt", KEY)).is(ALLOW),
        c("cross-account key no IAM", bob_b(), "kms:Decrypt", KEY).kms(rp("Allow", &aws(B), "kms:Decrypt")).is(NO_ID),
        c("cross-account key not shared", bob_b(), "kms:Decrypt", KEY).kms(default_key_policy()).id(allow("kms:*", "*")).is(NO_RES),
        c("cross-account key names user, no IAM", bob_b(), "kms:Decrypt", KEY).kms(rp("Allow", &aws(BOB_B), "kms:Decrypt")).is(NO_ID),
        c("cross-account key names user", bob_b(), "kms:Decrypt", KEY).kms(rp("Allow", &aws(BOB_B), "kms:Decrypt")).id(allow("kms:Decrypt", "*")).is(ALLOW),
        c("cross-account grant", bob_b(), "kms:Decrypt", KEY).kms(default_key_policy()).grant().is(ALLOW),
        // ---- cross-account resource policies ----
        c("cross-account no resource policy", bob_b(), "secretsmanager:GetSecretValue", SECRET).id(allow("secretsmanager:*", "*")).is(NO_RES),
        c("cross-account via root ARN", bob_b(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws("arn:aws:iam::444455556666:root"), "secretsmanager:GetSecretValue")).id(allow("secretsmanager:*", "*")).is(ALLOW),
        c("cross-account via account id", bob_b(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(B), "secretsmanager:GetSecretValue")).id(allow("secretsmanager:*", "*")).is(ALLOW),
        c("cross-account without identity allow", bob_b(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(B), "secretsmanager:GetSecretValue")).is(NO_ID),
        c("cross-account names user", bob_b(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(BOB_B), "secretsmanager:*")).id(allow("secretsmanager:*", "*")).is(ALLOW),
        c("cross-account to everyone", bob_b(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", "*", "secretsmanager:*")).id(allow("secretsmanager:*", "*")).is(ALLOW),
        c("cross-account everyone, no IAM", bob_b(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", "*", "secretsmanager:*")).is(NO_ID),
        c("cross-account other account named", bob_b(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws("999988887777"), "secretsmanager:*")).id(allow("*", "*")).is(NO_RES),
        c("cross-account resource deny", bob_b(), "secretsmanager:GetSecretValue", SECRET).res(rp("Deny", &aws(BOB_B), "secretsmanager:*")).id(allow("*", "*")).is(DENY_RES),
        c("cross-account boundary", bob_b(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(B), "secretsmanager:*")).id(allow("*", "*")).bnd(allow("s3:*", "*")).is(NO_BND),
        c("explicit resource account", u(), "secretsmanager:ListSecrets", "*").racct(B).id(allow("*", "*")).is(NO_RES),
        c("root of other account", root_b(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(B), "secretsmanager:*")).is(ALLOW),
        // ---- same-account resource policies ----
        c("resource policy names user", u(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(ALICE), "secretsmanager:GetSecretValue")).is(ALLOW),
        c("resource policy names account only", u(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(A), "secretsmanager:GetSecretValue")).is(NO_ID),
        c("account delegation plus IAM", u(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(A), "secretsmanager:GetSecretValue")).id(allow("secretsmanager:*", "*")).is(ALLOW),
        c("resource policy to everyone", u(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", "*", "secretsmanager:GetSecretValue")).is(ALLOW),
        c("resource policy names someone else", u(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws("arn:aws:iam::111122223333:user/carol"), "secretsmanager:*")).is(NO_ID),
        c("user grant not limited by boundary", u(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(ALICE), "secretsmanager:*")).bnd(allow("s3:*", "*")).is(ALLOW),
        c("wildcard grant limited by boundary", u(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", "*", "secretsmanager:*")).bnd(allow("s3:*", "*")).is(NO_BND),
        c("role grant reaches session", session(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(ROLE), "secretsmanager:*")).is(ALLOW),
        c("role grant narrowed by boundary", session(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(ROLE), "secretsmanager:*")).bnd(allow("s3:*", "*")).is(NO_BND),
        c("session grant ignores boundary", session(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(SESSION), "secretsmanager:*")).bnd(allow("s3:*", "*")).is(ALLOW),
        c("role grant within session policy", session(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(ROLE), "secretsmanager:*")).sess(allow("secretsmanager:*", "*")).is(ALLOW),
        c("identity outside session policy", session(), "kms:Decrypt", KEY).id(allow("kms:*", "*")).sess(allow("s3:*", "*")).is(NO_SESS),
        c("identity within session policy", session(), "kms:Decrypt", KEY).id(allow("kms:*", "*")).sess(allow("kms:Decrypt", "*")).is(ALLOW),
        c("session policy deny", session(), "kms:Decrypt", KEY).id(allow("kms:*", "*")).sess(allow("*", "*")).sess(deny("kms:Decrypt", "*")).is(DENY_SESS),
        c("session policy alone grants nothing", session(), "kms:Decrypt", KEY).sess(allow("kms:*", "*")).is(NO_ID),
        c("boundary deny", u(), "kms:Decrypt", KEY).id(allow("*", "*")).bnd(doc(&[st(&[("Effect", "Allow"), ("Action", "*"), ("Resource", "*")]), st(&[("Effect", "Deny"), ("Action", "kms:Decrypt"), ("Resource", "*")])])).is(DENY_BND),
        c("boundary alone grants nothing", u(), "kms:Decrypt", KEY).bnd(allow("*", "*")).is(NO_ID),
        c("identity within boundary", u(), "kms:Decrypt", KEY).id(allow("kms:*", "*")).bnd(allow("kms:Decrypt", "*")).is(ALLOW),
        c("identity outside boundary", u(), "kms:Decrypt", KEY).id(allow("kms:*", "*")).bnd(allow("kms:Encrypt", "*")).is(NO_BND),
        c("second session policy allows", session(), "kms:Decrypt", KEY).id(allow("kms:*", "*")).sess(allow("s3:*", "*")).sess(allow("kms:*", "*")).is(ALLOW),
        c("boundary and session both apply", session(), "kms:Decrypt", KEY).id(allow("kms:*", "*")).bnd(allow("kms:*", "*")).sess(allow("s3:*", "*")).is(NO_SESS),
        // ---- NotPrincipal ----
        c("NotPrincipal exempts user and account", u(), "secretsmanager:GetSecretValue", SECRET)
            .res(doc(&[st(&[("Effect", "Deny"), ("NotPrincipal", &aws(&format!(r#"["{ALICE}","arn:aws:iam::{A}:root"]"#))), ("Action", "*"), ("Resource", "*")])]))
            .id(allow("*", "*")).is(ALLOW),
        c("NotPrincipal without account still denies", u(), "secretsmanager:GetSecretValue", SECRET)
            .res(doc(&[st(&[("Effect", "Deny"), ("NotPrincipal", &aws(ALICE)), ("Action", "*"), ("Resource", "*")])])).id(allow("*", "*")).is(DENY_RES),
        c("NotPrincipal names someone else", u(), "secretsmanager:GetSecretValue", SECRET)
            .res(doc(&[st(&[("Effect", "Deny"), ("NotPrincipal", &aws(&format!(r#"["arn:aws:iam::{A}:user/carol","{A}"]"#))), ("Action", "*"), ("Resource", "*")])])).id(allow("*", "*")).is(DENY_RES),
        c("NotPrincipal exempts full session chain", session(), "secretsmanager:GetSecretValue", SECRET)
            .res(doc(&[st(&[("Effect", "Deny"), ("NotPrincipal", &aws(&format!(r#"["{SESSION}","{ROLE}","{A}"]"#))), ("Action", "*"), ("Resource", "*")])])).id(allow("*", "*")).is(ALLOW),
        c("NotPrincipal session without role", session(), "secretsmanager:GetSecretValue", SECRET)
            .res(doc(&[st(&[("Effect", "Deny"), ("NotPrincipal", &aws(&format!(r#"["{SESSION}","{A}"]"#))), ("Action", "*"), ("Resource", "*")])])).id(allow("*", "*")).is(DENY_RES),
        c("NotPrincipal deny hits bounded principals", u(), "secretsmanager:GetSecretValue", SECRET)
            .res(doc(&[st(&[("Effect", "Deny"), ("NotPrincipal", &aws(&format!(r#"["{ALICE}","{A}"]"#))), ("Action", "*"), ("Resource", "*")])]))
            .id(allow("*", "*")).bnd(allow("*", "*")).is(DENY_RES),
        c("NotPrincipal allow", u(), "secretsmanager:GetSecretValue", SECRET)
            .res(doc(&[st(&[("Effect", "Allow"), ("NotPrincipal", &aws("arn:aws:iam::111122223333:user/carol")), ("Action", "*"), ("Resource", "*")])])).is(ALLOW),
        c("NotPrincipal allow excludes caller", u(), "secretsmanager:GetSecretValue", SECRET)
            .res(doc(&[st(&[("Effect", "Allow"), ("NotPrincipal", &aws(&format!(r#"["{ALICE}","{A}"]"#))), ("Action", "*"), ("Resource", "*")])])).is(NO_ID),
        c("carol unaffected by alice deny", carol(), "secretsmanager:GetSecretValue", SECRET).res(rp("Deny", &aws(ALICE), "*")).id(allow("*", "*")).is(ALLOW),
        // ---- services and anonymous callers ----
        c("service principal named", logs(), "kms:Encrypt", KEY).kms(rp("Allow", r#"{"Service":"logs.amazonaws.com"}"#, "kms:Encrypt")).is(ALLOW),
        c("service principal not named", logs(), "kms:Encrypt", KEY).kms(default_key_policy()).is(NO_RES),
        c("service principal case", logs(), "kms:Encrypt", KEY).kms(rp("Allow", r#"{"Service":"LOGS.amazonaws.com"}"#, "kms:Encrypt")).is(ALLOW),
        c("anonymous with *", anon(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", "*", "secretsmanager:GetSecretValue")).is(ALLOW),
        c("anonymous with AWS *", anon(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws("*"), "secretsmanager:GetSecretValue")).is(ALLOW),
        c("anonymous vs account", anon(), "secretsmanager:GetSecretValue", SECRET).res(rp("Allow", &aws(A), "secretsmanager:GetSecretValue")).is(NO_RES),
        c("anonymous without policy", anon(), "secretsmanager:GetSecretValue", SECRET).is(NO_RES),
        // ---- trust policies (sts:AssumeRole on the role) ----
        c("trust names user", u(), "sts:AssumeRole", ROLE).trust(doc(&[st(&[("Effect", "Allow"), ("Principal", &aws(ALICE)), ("Action", "sts:AssumeRole")])])).is(ALLOW),
        c("trust names account, no IAM", u(), "sts:AssumeRole", ROLE).trust(doc(&[st(&[("Effect", "Allow"), ("Principal", &aws(A)), ("Action", "sts:AssumeRole")])])).is(NO_ID),
        c("trust names account, IAM allows", u(), "sts:AssumeRole", ROLE).trust(doc(&[st(&[("Effect", "Allow"), ("Principal", &aws(A)), ("Action", "sts:AssumeRole")])])).id(allow("sts:AssumeRole", ROLE)).is(ALLOW),
        c("cross-account assume", bob_b(), "sts:AssumeRole", ROLE).trust(doc(&[st(&[("Effect", "Allow"), ("Principal", &aws(B)), ("Action", "sts:AssumeRole")])])).id(allow("sts:AssumeRole", "*")).is(ALLOW),
        c("cross-account assume without IAM", bob_b(), "sts:AssumeRole", ROLE).trust(doc(&[st(&[("Effect", "Allow"), ("Principal", &aws(B)), ("Action", "sts:AssumeRole")])])).is(NO_ID),
        c("ExternalId matches", bob_b(), "sts:AssumeRole", ROLE).trust(doc(&[st(&[("Effect", "Allow"), ("Principal", &aws(B)), ("Action", "sts:AssumeRole"), ("Condition", r#"{"StringEquals":{"sts:ExternalId":"xyz"}}"#)])]))
            .id(allow("sts:AssumeRole", "*")).key("sts:ExternalId", "xyz").is(ALLOW),
        c("ExternalId mismatch", bob_b(), "sts:AssumeRole", ROLE).trust(doc(&[st(&[("Effect", "Allow"), ("Principal", &aws(B)), ("Action", "sts:AssumeRole"), ("Condition", r#"{"StringEquals":{"sts:ExternalId":"xyz"}}"#)])]))
            .id(allow("sts:AssumeRole", "*")).key("sts:ExternalId", "abc").is(NO_RES),
        c("trust for a service", PrincipalInfo::service("ec2.amazonaws.com"), "sts:AssumeRole", ROLE).trust(doc(&[st(&[("Effect", "Allow"), ("Principal", r#"{"Service":"ec2.amazonaws.com"}"#), ("Action", "sts:AssumeRole")])])).is(ALLOW),
        c("trust wrong action", u(), "sts:TagSession", ROLE).trust(doc(&[st(&[("Effect", "Allow"), ("Principal", &aws(ALICE)), ("Action", "sts:AssumeRole")])])).is(NO_ID),
        // ---- String operators ----
        c("StringEquals", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEquals":{"aws:username":"alice"}}"#)).is(ALLOW),
        c("StringEquals is case-sensitive", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEquals":{"aws:username":"Alice"}}"#)).is(NO_ID),
        c("key names are case-insensitive", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEquals":{"AWS:UserName":"alice"}}"#)).is(ALLOW),
        c("StringNotEquals other", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringNotEquals":{"aws:username":"bob"}}"#)).is(ALLOW),
        c("StringNotEquals same", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringNotEquals":{"aws:username":"alice"}}"#)).is(NO_ID),
        c("StringNotEquals missing key", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringNotEquals":{"aws:PrincipalTag/dept":"x"}}"#)).is(ALLOW),
        c("StringEquals missing key", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEquals":{"aws:PrincipalTag/dept":"x"}}"#)).is(NO_ID),
        c("StringEqualsIgnoreCase", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEqualsIgnoreCase":{"aws:username":"ALICE"}}"#)).is(ALLOW),
        c("StringNotEqualsIgnoreCase", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringNotEqualsIgnoreCase":{"aws:username":"ALICE"}}"#)).is(NO_ID),
        c("StringNotEqualsIgnoreCase missing", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringNotEqualsIgnoreCase":{"s3:prefix":"x"}}"#)).is(ALLOW),
        c("StringLike *", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringLike":{"aws:username":"al*"}}"#)).is(ALLOW),
        c("StringLike ?", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringLike":{"aws:username":"a?ice"}}"#)).is(ALLOW),
        c("StringLike no match", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringLike":{"aws:username":"bo*"}}"#)).is(NO_ID),
        c("StringNotLike", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringNotLike":{"aws:username":"bo*"}}"#)).is(ALLOW),
        c("StringNotLike matching", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringNotLike":{"aws:username":"a*"}}"#)).is(NO_ID),
        c("StringNotLike missing", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringNotLike":{"s3:prefix":"a*"}}"#)).is(ALLOW),
        c("values are ORed", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEquals":{"aws:username":["bob","alice"]}}"#)).is(ALLOW),
        c("negated values are NORed", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringNotEquals":{"aws:username":["bob","alice"]}}"#)).is(NO_ID),
        c("keys are ANDed", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEquals":{"aws:username":"alice","aws:PrincipalTag/team":"red"}}"#)).is(NO_ID),
        c("operators are ANDed", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEquals":{"aws:username":"alice"},"StringLike":{"aws:PrincipalTag/team":"bl*"}}"#)).is(ALLOW),
        c("operators ANDed, one fails", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEquals":{"aws:username":"alice"},"StringLike":{"aws:PrincipalTag/team":"re*"}}"#)).is(NO_ID),
        c("IfExists missing", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEqualsIfExists":{"s3:prefix":"home/"}}"#)).is(ALLOW),
        c("IfExists present mismatch", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEqualsIfExists":{"s3:prefix":"home/"}}"#)).key("s3:prefix", "tmp/").is(NO_ID),
        c("IfExists present match", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEqualsIfExists":{"s3:prefix":"home/"}}"#)).key("s3:prefix", "home/").is(ALLOW),
        c("NotEqualsIfExists present equal", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringNotEqualsIfExists":{"aws:username":"alice"}}"#)).is(NO_ID),
        c("principal tag condition", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEquals":{"aws:PrincipalTag/team":"blue"}}"#)).is(ALLOW),
        c("session tag condition", session(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEquals":{"aws:PrincipalTag/team":"red"}}"#)).is(ALLOW),
        c("PrincipalType", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringEquals":{"aws:PrincipalType":"User"}}"#)).is(ALLOW),
        c("userid of session", session(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"StringLike":{"aws:userid":"AROAADMIN:*"}}"#)).is(ALLOW),
        // ---- Numeric ----
        c("NumericEquals", u(), "s3:ListBucket", "*").id(allow_if("s3:*", "*", r#"{"NumericEquals":{"s3:max-keys":"5"}}"#)).key("s3:max-keys", 5i64).is(ALLOW),
        c("NumericNotEquals", u(), "s3:ListBucket", "*").id(allow_if("s3:*", "*", r#"{"NumericNotEquals":{"s3:max-keys":5}}"#)).key("s3:max-keys", 5i64).is(NO_ID),
        c("NumericLessThan", u(), "s3:ListBucket", "*").id(allow_if("s3:*", "*", r#"{"NumericLessThan":{"s3:max-keys":"10"}}"#)).key("s3:max-keys", 5i64).is(ALLOW),
        c("NumericLessThan equal", u(), "s3:ListBucket", "*").id(allow_if("s3:*", "*", r#"{"NumericLessThan":{"s3:max-keys":"5"}}"#)).key("s3:max-keys", 5i64).is(NO_ID),
        c("NumericLessThanEquals", u(), "s3:ListBucket", "*").id(allow_if("s3:*", "*", r#"{"NumericLessThanEquals":{"s3:max-keys":"5"}}"#)).key("s3:max-keys", 5i64).is(ALLOW),
        c("NumericGreaterThan", u(), "s3:ListBucket", "*").id(allow_if("s3:*", "*", r#"{"NumericGreaterThan":{"s3:max-keys":"4"}}"#)).key("s3:max-keys", 5i64).is(ALLOW),
        c("NumericGreaterThanEquals", u(), "s3:ListBucket", "*").id(allow_if("s3:*", "*", r#"{"NumericGreaterThanEquals":{"s3:max-keys":"6"}}"#)).key("s3:max-keys", 5i64).is(NO_ID),
        c("Numeric missing", u(), "s3:ListBucket", "*").id(allow_if("s3:*", "*", r#"{"NumericEquals":{"s3:max-keys":"5"}}"#)).is(NO_ID),
        c("NumericNotEquals missing", u(), "s3:ListBucket", "*").id(allow_if("s3:*", "*", r#"{"NumericNotEquals":{"s3:max-keys":"5"}}"#)).is(ALLOW),
        c("Numeric decimal", u(), "s3:ListBucket", "*").id(allow_if("s3:*", "*", r#"{"NumericEquals":{"s3:max-keys":"5.0"}}"#)).key("s3:max-keys", "5").is(ALLOW),
        c("Numeric not a number", u(), "s3:ListBucket", "*").id(allow_if("s3:*", "*", r#"{"NumericEquals":{"s3:max-keys":"five"}}"#)).key("s3:max-keys", 5i64).is(NO_ID),
        c("NumericIfExists missing", u(), "s3:ListBucket", "*").id(allow_if("s3:*", "*", r#"{"NumericLessThanIfExists":{"s3:max-keys":"5"}}"#)).is(ALLOW),
        // ---- Date (now = 2024-06-01T12:00:00Z) ----
        c("DateGreaterThan", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"DateGreaterThan":{"aws:CurrentTime":"2024-01-01T00:00:00Z"}}"#)).is(ALLOW),
        c("DateLessThan past", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"DateLessThan":{"aws:CurrentTime":"2024-01-01"}}"#)).is(NO_ID),
        c("DateLessThan epoch", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"DateLessThan":{"aws:CurrentTime":"1735689600"}}"#)).is(ALLOW),
        c("DateEquals", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"DateEquals":{"aws:CurrentTime":"2024-06-01T14:00:00+02:00"}}"#)).is(ALLOW),
        c("DateNotEquals", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"DateNotEquals":{"aws:CurrentTime":"2024-06-01T12:00:00Z"}}"#)).is(NO_ID),
        c("DateLessThanEquals", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"DateLessThanEquals":{"aws:CurrentTime":"2024-06-01T12:00:00Z"}}"#)).is(ALLOW),
        c("DateGreaterThanEquals", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"DateGreaterThanEquals":{"aws:CurrentTime":"2024-06-01T12:00:01Z"}}"#)).is(NO_ID),
        c("Date on EpochTime", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"DateGreaterThan":{"aws:EpochTime":"2024-05-31T00:00:00Z"}}"#)).is(ALLOW),
        c("Date missing key", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"DateGreaterThan":{"aws:TokenIssueTime":"2020-01-01T00:00:00Z"}}"#)).is(NO_ID),
        c("DateIfExists missing", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"DateGreaterThanIfExists":{"aws:TokenIssueTime":"2020-01-01T00:00:00Z"}}"#)).is(ALLOW),
        c("token issue time", session(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"DateGreaterThan":{"aws:TokenIssueTime":"2024-06-01T00:00:00Z"}}"#)).key("aws:TokenIssueTime", datetime!(2024-06-01 11:00:00 UTC)).is(ALLOW),
        // ---- Bool ----
        c("Bool true", u(), "s3:GetObject", "*").tls(true).id(allow_if("s3:*", "*", r#"{"Bool":{"aws:SecureTransport":"true"}}"#)).is(ALLOW),
        c("Bool false", u(), "s3:GetObject", "*").tls(true).id(allow_if("s3:*", "*", r#"{"Bool":{"aws:SecureTransport":"false"}}"#)).is(NO_ID),
        c("Bool missing", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"Bool":{"aws:SecureTransport":"true"}}"#)).is(NO_ID),
        c("BoolIfExists missing", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"BoolIfExists":{"aws:MultiFactorAuthPresent":"true"}}"#)).is(ALLOW),
        c("deny without TLS", u(), "s3:GetObject", "*").tls(false).id(allow("*", "*"))
            .id(doc(&[st(&[("Effect", "Deny"), ("Action", "*"), ("Resource", "*"), ("Condition", r#"{"Bool":{"aws:SecureTransport":"false"}}"#)])])).is(DENY_ID),
        c("Bool JSON literal", u(), "s3:GetObject", "*").tls(true).id(r#"{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Condition":{"Bool":{"aws:SecureTransport":true}}}}"#).is(ALLOW),
        c("ViaAWSService false", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"Bool":{"aws:ViaAWSService":"false"}}"#)).is(ALLOW),
        // ---- Binary ----
        c("BinaryEquals", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"BinaryEquals":{"x:blob":"AQID"}}"#)).key("x:blob", vec![1u8, 2, 3]).is(ALLOW),
        c("BinaryEquals mismatch", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"BinaryEquals":{"x:blob":"AQIE"}}"#)).key("x:blob", vec![1u8, 2, 3]).is(NO_ID),
        // ---- IP (source 192.0.2.10) ----
        c("IpAddress", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"IpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#)).is(ALLOW),
        c("IpAddress outside", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"IpAddress":{"aws:SourceIp":"198.51.100.0/24"}}"#)).is(NO_ID),
        c("NotIpAddress outside", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"NotIpAddress":{"aws:SourceIp":"198.51.100.0/24"}}"#)).is(ALLOW),
        c("NotIpAddress inside", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"NotIpAddress":{"aws:SourceIp":"192.0.2.0/24"}}"#)).is(NO_ID),
        c("IpAddress bare address", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"IpAddress":{"aws:SourceIp":"192.0.2.10"}}"#)).is(ALLOW),
        c("IpAddress list", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"IpAddress":{"aws:SourceIp":["2001:db8::/32","192.0.2.0/28"]}}"#)).is(ALLOW),
        c("NotIpAddress missing key", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"NotIpAddress":{"aws:VpcSourceIp":"10.0.0.0/8"}}"#)).is(ALLOW),
        c("IpAddress v6", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"IpAddress":{"x:ip":"2001:DB8:1234:5678::/64"}}"#)).key("x:ip", "2001:db8:1234:5678::9").is(ALLOW),
        c("deny outside corporate range", u(), "s3:GetObject", "*").id(allow("*", "*"))
            .id(doc(&[st(&[("Effect", "Deny"), ("Action", "*"), ("Resource", "*"), ("Condition", r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#)])])).is(DENY_ID),
        // ---- ARN ----
        c("ArnEquals PrincipalArn", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", &format!(r#"{{"ArnEquals":{{"aws:PrincipalArn":"{ALICE}"}}}}"#))).is(ALLOW),
        c("ArnLike users", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:user/*"}}"#)).is(ALLOW),
        c("ArnLike roles", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}}"#)).is(NO_ID),
        c("ArnNotEquals self", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", &format!(r#"{{"ArnNotEquals":{{"aws:PrincipalArn":"{ALICE}"}}}}"#))).is(NO_ID),
        c("ArnNotLike roles", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"ArnNotLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}}"#)).is(ALLOW),
        c("PrincipalArn of session is the role", session(), "s3:GetObject", "*").id(allow_if("s3:*", "*", &format!(r#"{{"ArnEquals":{{"aws:PrincipalArn":"{ROLE}"}}}}"#))).is(ALLOW),
        c("ArnEquals missing", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"ArnEquals":{"aws:SourceArn":"arn:aws:s3:::b"}}"#)).is(NO_ID),
        c("ArnNotEquals missing", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"ArnNotEquals":{"aws:SourceArn":"arn:aws:s3:::b"}}"#)).is(ALLOW),
        c("ArnLike star stays in its field", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"ArnLike":{"aws:SourceArn":"arn:aws:sns:*:111122223333:*"}}"#)).key("aws:SourceArn", "arn:aws:sns:us-east-1:444455556666:111122223333:t").is(NO_ID),
        // ---- Null ----
        c("Null true on missing", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"Null":{"aws:TokenIssueTime":"true"}}"#)).is(ALLOW),
        c("Null false on missing", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"Null":{"aws:TokenIssueTime":"false"}}"#)).is(NO_ID),
        c("Null false on present", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"Null":{"aws:username":"false"}}"#)).is(ALLOW),
        c("Null true on present", u(), "s3:GetObject", "*").id(allow_if("s3:*", "*", r#"{"Null":{"aws:username":"true"}}"#)).is(NO_ID),
        // ---- set operators ----
        c("ForAllValues subset", u(), "iam:TagUser", "*").id(allow_if("iam:*", "*", r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["Env","Team"]}}"#)).key("aws:TagKeys", "Env").is(ALLOW),
        c("ForAllValues extra value", u(), "iam:TagUser", "*").id(allow_if("iam:*", "*", r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["Env","Team"]}}"#)).key("aws:TagKeys", "Env").key("aws:TagKeys", "Cost").is(NO_ID),
        c("ForAllValues empty", u(), "iam:TagUser", "*").id(allow_if("iam:*", "*", r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["Env"]}}"#)).is(ALLOW),
        c("ForAnyValue overlap", u(), "iam:TagUser", "*").id(allow_if("iam:*", "*", r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["Env"]}}"#)).key("aws:TagKeys", "Env").key("aws:TagKeys", "Cost").is(ALLOW),
        c("ForAnyValue disjoint", u(), "iam:TagUser", "*").id(allow_if("iam:*", "*", r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["Env"]}}"#)).key("aws:TagKeys", "Cost").is(NO_ID),
        c("ForAnyValue empty", u(), "iam:TagUser", "*").id(allow_if("iam:*", "*", r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["Env"]}}"#)).is(NO_ID),
        c("ForAnyValue StringLike", u(), "iam:TagUser", "*").id(allow_if("iam:*", "*", r#"{"ForAnyValue:StringLike":{"aws:TagKeys":["E*"]}}"#)).key("aws:TagKeys", "Cost").key("aws:TagKeys", "Env").is(ALLOW),
        c("ForAllValues negated ok", u(), "iam:TagUser", "*").id(allow_if("iam:*", "*", r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["Secret"]}}"#)).key("aws:TagKeys", "Env").is(ALLOW),
        c("ForAllValues negated hit", u(), "iam:TagUser", "*").id(allow_if("iam:*", "*", r#"{"ForAllValues:StringNotEquals":{"aws:TagKeys":["Secret"]}}"#)).key("aws:TagKeys", "Env").key("aws:TagKeys", "Secret").is(NO_ID),
        c("ForAnyValue negated some other", u(), "iam:TagUser", "*").id(allow_if("iam:*", "*", r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["Env"]}}"#)).key("aws:TagKeys", "Env").key("aws:TagKeys", "Cost").is(ALLOW),
        c("ForAnyValue negated none other", u(), "iam:TagUser", "*").id(allow_if("iam:*", "*", r#"{"ForAnyValue:StringNotEquals":{"aws:TagKeys":["Env"]}}"#)).key("aws:TagKeys", "Env").is(NO_ID),
        c("deny ForAnyValue forbidden tag", u(), "iam:TagUser", "*").id(allow("*", "*"))
            .id(doc(&[st(&[("Effect", "Deny"), ("Action", "*"), ("Resource", "*"), ("Condition", r#"{"ForAnyValue:StringEquals":{"aws:TagKeys":["Secret"]}}"#)])])).key("aws:TagKeys", "Secret").is(DENY_ID),
        c("multi-valued key, plain operator", u(), "kms:Decrypt", "*").id(allow_if("kms:*", "*", r#"{"StringEquals":{"aws:CalledVia":"athena.amazonaws.com"}}"#))
            .key("aws:CalledVia", "cloudformation.amazonaws.com").key("aws:CalledVia", "athena.amazonaws.com").is(ALLOW),
        c("multi-valued key, negated operator", u(), "kms:Decrypt", "*").id(allow_if("kms:*", "*", r#"{"StringNotEquals":{"aws:CalledVia":"athena.amazonaws.com"}}"#))
            .key("aws:CalledVia", "cloudformation.amazonaws.com").key("aws:CalledVia", "athena.amazonaws.com").is(NO_ID),
        c("ForAnyValue IfExists missing", u(), "iam:TagUser", "*").id(allow_if("iam:*", "*", r#"{"ForAnyValue:StringEqualsIfExists":{"aws:TagKeys":["Env"]}}"#)).is(ALLOW),
        c("request tags fill TagKeys", u(), "iam:TagUser", "*").id(allow_if("iam:*", "*", r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["Env"]},"StringEquals":{"aws:RequestTag/Env":"prod"}}"#)).key("aws:RequestTag/Env", "prod").key("aws:TagKeys", "Env").is(ALLOW),
        // ---- policy variables ----
        c("username in resource", u(), "s3:GetObject", "arn:aws:s3:::bucket/alice/file").id(allow("s3:GetObject", "arn:aws:s3:::bucket/${aws:username}/*")).is(ALLOW),
        c("username in resource, other home", u(), "s3:GetObject", "arn:aws:s3:::bucket/bob/file").id(allow("s3:GetObject", "arn:aws:s3:::bucket/${aws:username}/*")).is(NO_ID),
        c("no variables before 2012-10-17", u(), "s3:GetObject", "arn:aws:s3:::bucket/alice/file")
            .id(r#"{"Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/${aws:username}/*"}}"#).is(NO_ID),
        c("variables literal before 2012", u(), "s3:GetObject", "arn:aws:s3:::bucket/${aws:username}/file")
            .id(r#"{"Version":"2008-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/${aws:username}/*"}}"#).is(ALLOW),
        c("unresolvable variable", session(), "s3:GetObject", "arn:aws:s3:::bucket/s1/file").id(allow("s3:GetObject", "arn:aws:s3:::bucket/${aws:username}/*")).is(NO_ID),
        c("variable default", session(), "s3:GetObject", "arn:aws:s3:::bucket/anon/file").id(allow("s3:GetObject", "arn:aws:s3:::bucket/${aws:username, 'anon'}/*")).is(ALLOW),
        c("principal tag variable", u(), "s3:GetObject", "arn:aws:s3:::team-blue/x").id(allow("s3:GetObject", "arn:aws:s3:::team-${aws:PrincipalTag/team}/*")).is(ALLOW),
        c("variable in condition", u(), "secretsmanager:GetSecretValue", SECRET).id(allow_if("secretsmanager:*", "*", r#"{"StringEquals":{"aws:ResourceTag/owner":"${aws:username}"}}"#)).key("aws:ResourceTag/owner", "alice").is(ALLOW),
        c("variable in condition mismatch", u(), "secretsmanager:GetSecretValue", SECRET).id(allow_if("secretsmanager:*", "*", r#"{"StringEquals":{"aws:ResourceTag/owner":"${aws:username}"}}"#)).key("aws:ResourceTag/owner", "carol").is(NO_ID),
        c("unresolvable variable, negated", session(), "secretsmanager:GetSecretValue", SECRET).id(allow_if("secretsmanager:*", "*", r#"{"StringNotEquals":{"aws:ResourceTag/owner":"${aws:username}"}}"#)).key("aws:ResourceTag/owner", "x").is(NO_ID),
        c("unresolvable variable in deny", session(), "secretsmanager:GetSecretValue", SECRET).id(allow("*", "*"))
            .id(doc(&[st(&[("Effect", "Deny"), ("Action", "*"), ("Resource", "*"), ("Condition", r#"{"StringNotEquals":{"aws:ResourceTag/owner":"${aws:username}"}}"#)])])).key("aws:ResourceTag/owner", "x").is(ALLOW),
        c("${*} is a literal star", u(), "s3:GetObject", "arn:aws:s3:::b/*").id(allow("s3:GetObject", "arn:aws:s3:::b/${*}")).is(ALLOW),
        c("${*} is not a wildcard", u(), "s3:GetObject", "arn:aws:s3:::b/x").id(allow("s3:GetObject", "arn:aws:s3:::b/${*}")).is(NO_ID),
        c("${?} and ${$}", u(), "s3:GetObject", "arn:aws:s3:::b/?$").id(allow("s3:GetObject", "arn:aws:s3:::b/${?}${$}")).is(ALLOW),
        c("StringLike with variable", u(), "s3:ListBucket", "arn:aws:s3:::b").id(allow_if("s3:ListBucket", "*", r#"{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}"#)).key("s3:prefix", "home/alice/docs").is(ALLOW),
        c("StringLike variable, other home", u(), "s3:ListBucket", "arn:aws:s3:::b").id(allow_if("s3:ListBucket", "*", r#"{"StringLike":{"s3:prefix":"home/${aws:username}/*"}}"#)).key("s3:prefix", "home/carol/docs").is(NO_ID),
        c("no variables in Numeric", u(), "s3:ListBucket", "*").id(allow_if("s3:*", "*", r#"{"NumericEquals":{"s3:max-keys":"${s3:max-keys}"}}"#)).key("s3:max-keys", 5i64).is(NO_ID),
        c("multi-valued key is no variable", u(), "kms:Decrypt", "arn:aws:s3:::b/x").id(allow("kms:Decrypt", "arn:aws:s3:::b/${aws:CalledVia}")).key("aws:CalledVia", "x").key("aws:CalledVia", "y").is(NO_ID),
        c("source ip as variable", u(), "s3:GetObject", "arn:aws:s3:::b/192.0.2.10").id(allow("s3:GetObject", "arn:aws:s3:::b/${aws:SourceIp}")).is(ALLOW),
    ]
}

#[test]
fn evaluation_table() {
    let cases = cases();
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let mut names = std::collections::HashSet::new();
    let mut failures = Vec::new();
    for case in &cases {
        assert!(names.insert(case.name), "duplicate case name {}", case.name);
        let want = case
            .expect
            .unwrap_or_else(|| panic!("{} has no expectation", case.name));
        let got = case.run();
        if got != want {
            failures.push(format!("{}: want {want:?}, got {got:?}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn access_denied_messages_read_like_aws() {
    let ctx = EvalContext::builder(alice(), "kms:Decrypt", KEY).build();
    let result = evaluate(&EvalInput::new(&ctx));
    assert_eq!(
        result
            .access_denied_message(ALICE, "kms:Decrypt", KEY)
            .unwrap(),
        "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/k1 because no identity-based policy allows the kms:Decrypt action"
    );
    let e = result
        .access_denied_error(
            ALICE,
            "kms:Decrypt",
            KEY,
            citadel_iam::policy::ErrorFlavour::Kms,
        )
        .unwrap();
    assert_eq!((e.status, e.code.as_ref()), (400, "AccessDeniedException"));
    let e = result
        .access_denied_error(
            ALICE,
            "kms:Decrypt",
            KEY,
            citadel_iam::policy::ErrorFlavour::Iam,
        )
        .unwrap();
    assert_eq!((e.status, e.code.as_ref()), (403, "AccessDenied"));

    let forms = [
        (DENY_ID, "with an explicit deny in an identity-based policy"),
        (DENY_RES, "with an explicit deny in a resource-based policy"),
        (DENY_BND, "with an explicit deny in a permissions boundary"),
        (DENY_SESS, "with an explicit deny in a session policy"),
        (
            NO_ID,
            "because no identity-based policy allows the kms:Decrypt action",
        ),
        (
            NO_RES,
            "because no resource-based policy allows the kms:Decrypt action",
        ),
        (
            NO_BND,
            "because no permissions boundary allows the kms:Decrypt action",
        ),
        (
            NO_SESS,
            "because no session policy allows the kms:Decrypt action",
        ),
    ];
    for (decision, tail) in forms {
        let r = citadel_iam::policy::EvalResult {
            decision,
            statement: None,
        };
        let m = r.access_denied_message(ALICE, "kms:Decrypt", KEY).unwrap();
        assert_eq!(
            m,
            format!(
                "User: {ALICE} is not authorized to perform: kms:Decrypt on resource: {KEY} {tail}"
            )
        );
    }
    let allowed = citadel_iam::policy::EvalResult {
        decision: ALLOW,
        statement: None,
    };
    assert!(
        allowed
            .access_denied_message(ALICE, "kms:Decrypt", KEY)
            .is_none()
    );
}

#[test]
fn deciding_statement_is_reported() {
    let ctx = EvalContext::builder(alice(), "kms:Decrypt", KEY).build();
    let managed = PolicyKind::Identity(IdentityPolicyKind::Managed);
    let pols = vec![
        Arc::new(Policy::parse(&allow("s3:*", "*"), managed).unwrap()),
        Arc::new(
            Policy::parse(
                &doc(&[
                    st(&[("Effect", "Allow"), ("Action", "kms:*"), ("Resource", "*")]),
                    st(&[
                        ("Effect", "Deny"),
                        ("Action", "kms:Decrypt"),
                        ("Resource", "*"),
                    ]),
                ]),
                managed,
            )
            .unwrap(),
        ),
    ];
    let r = evaluate(&EvalInput::new(&ctx).identity_policies(&pols));
    assert_eq!(r.decision, DENY_ID);
    let s = r.statement.unwrap();
    assert_eq!(
        (s.policy_type, s.policy_index, s.statement_index),
        (PolicyType::Identity, 1, 1)
    );
    let r = evaluate(&EvalInput::new(&ctx).identity_policies(&pols[..1]));
    assert_eq!((r.decision, r.statement), (NO_ID, None));
    let ok = vec![
        pols[0].clone(),
        Arc::new(Policy::parse(&allow("kms:Decrypt", "*"), managed).unwrap()),
    ];
    let r = evaluate(&EvalInput::new(&ctx).identity_policies(&ok));
    assert_eq!(r.decision, ALLOW);
    assert_eq!(r.statement.unwrap().policy_index, 1);
}

#[test]
fn one_context_serves_several_resources() {
    let mut ctx = EvalContext::builder(alice(), "kms:Decrypt", KEY).build();
    let pols = vec![Arc::new(
        Policy::parse(
            &allow("kms:Decrypt", KEY),
            PolicyKind::Identity(IdentityPolicyKind::Managed),
        )
        .unwrap(),
    )];
    assert!(evaluate(&EvalInput::new(&ctx).identity_policies(&pols)).is_allowed());
    ctx.set_resource("arn:aws:kms:us-east-1:111122223333:key/k2");
    assert!(!evaluate(&EvalInput::new(&ctx).identity_policies(&pols)).is_allowed());
    ctx.set_action("kms:Encrypt");
    ctx.set_resource(KEY);
    assert!(!evaluate(&EvalInput::new(&ctx).identity_policies(&pols)).is_allowed());
}
