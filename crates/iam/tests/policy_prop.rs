#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Properties of the policy engine: parsing never panics on any input; evaluation never panics;
//! an applicable explicit deny always wins; without an applicable allow nothing is allowed.

use std::sync::Arc;

use citadel_iam::policy::{
    EvalContext, EvalDecision, EvalInput, IdentityPolicyKind, Policy, PolicyKind, PrincipalInfo,
    evaluate,
};
use proptest::prelude::*;
use serde_json::Value;

const A: &str = "111122223333";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/k1";
const ROLE: &str = "arn:aws:iam::111122223333:role/Admin";
const MANAGED: PolicyKind = PolicyKind::Identity(IdentityPolicyKind::Managed);

const KINDS: [PolicyKind; 7] = [
    MANAGED,
    PolicyKind::Identity(IdentityPolicyKind::UserInline),
    PolicyKind::Resource,
    PolicyKind::Trust,
    PolicyKind::Session,
    PolicyKind::Boundary,
    PolicyKind::KeyPolicy,
];

// ---- arbitrary JSON, biased towards policy vocabulary so the parser gets deep ----

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::sample::select(vec![
            "Version", "Statement", "Sid", "Effect", "Allow", "Deny", "Principal", "NotPrincipal",
            "Action", "NotAction", "Resource", "NotResource", "Condition", "AWS", "Service", "Id",
            "2012-10-17", "2008-10-17", "*", "kms:*", "s3:Get*", "arn:aws:s3:::b/*",
            "StringEquals", "ForAnyValue:StringLike", "DateLessThanIfExists", "IpAddress", "Null",
            "NumericLessThan", "Bool", "BinaryEquals", "ArnLike", "aws:username", "aws:SourceIp",
            "${aws:username}", "${*}", "${x, 'd'}", "10.0.0.0/8", "2020-01-01T00:00:00Z", "111122223333",
            "arn:aws:iam::111122223333:root", "true", "AQID",
        ]).prop_map(str::to_owned),
        1 => ".{0,12}",
    ]
}

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        word().prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((word(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

// ---- well-formed policies from a small grammar ----

fn pick(items: &'static [&'static str]) -> impl Strategy<Value = &'static str> {
    prop::sample::select(items)
}

const ACTIONS: &[&str] = &[
    "kms:Decrypt",
    "kms:*",
    "kms:Enc*",
    "s3:GetObject",
    "s3:*",
    "*",
    "sts:AssumeRole",
    "kms:?ecrypt",
    "iam:Tag*",
];
const RESOURCES: &[&str] = &[
    "*",
    KEY,
    "arn:aws:kms:*:111122223333:key/*",
    "arn:aws:s3:::b/${aws:username}/*",
    "arn:aws:s3:::b/${*}",
    "arn:aws:secretsmanager:us-east-1:111122223333:secret:*",
    "arn:aws:s3:::*",
    "arn:aws:s3:::b/${aws:PrincipalTag/team, 'none'}",
];
const CONDITIONS: &[&str] = &[
    r#"{"StringEquals":{"aws:username":"alice"}}"#,
    r#"{"StringNotEquals":{"aws:username":["bob","${aws:PrincipalTag/team}"]}}"#,
    r#"{"StringLikeIfExists":{"s3:prefix":"home/${aws:username}/*"}}"#,
    r#"{"ForAllValues:StringEquals":{"aws:TagKeys":["Env","Team"]}}"#,
    r#"{"ForAnyValue:StringNotLike":{"aws:TagKeys":["S*"]}}"#,
    r#"{"NumericLessThan":{"s3:max-keys":"10"},"NumericNotEquals":{"x:n":["a","2.5"]}}"#,
    r#"{"DateGreaterThan":{"aws:CurrentTime":"2020-01-01T00:00:00Z"}}"#,
    r#"{"DateLessThanIfExists":{"aws:TokenIssueTime":1700000000}}"#,
    r#"{"Bool":{"aws:SecureTransport":"${x:flag}"}}"#,
    r#"{"BinaryEquals":{"x:blob":["AQID","not base64!"]}}"#,
    r#"{"IpAddress":{"aws:SourceIp":["192.0.2.0/24","2001:db8::/32"]}}"#,
    r#"{"NotIpAddress":{"aws:SourceIp":"10.0.0.0/8"}}"#,
    r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::*:role/*"}}"#,
    r#"{"ArnNotEquals":{"aws:SourceArn":"${aws:PrincipalArn}"}}"#,
    r#"{"Null":{"aws:TokenIssueTime":"true"}}"#,
    r#"{"StringEqualsIgnoreCase":{"aws:PrincipalTag/team":"BLUE"}}"#,
];
const PRINCIPALS: &[&str] = &[
    r#""*""#,
    r#"{"AWS":"111122223333"}"#,
    r#"{"AWS":"arn:aws:iam::111122223333:user/alice"}"#,
    r#"{"AWS":"arn:aws:iam::111122223333:role/Admin"}"#,
    r#"{"AWS":"arn:aws:sts::111122223333:assumed-role/Admin/s1"}"#,
    r#"{"AWS":["444455556666","arn:aws:iam::444455556666:user/bob"]}"#,
    r#"{"Service":"logs.amazonaws.com"}"#,
];

fn list(items: &'static [&'static str]) -> impl Strategy<Value = String> {
    prop::collection::vec(pick(items), 1..3).prop_map(|v| {
        let quoted: Vec<String> = v.iter().map(|s| format!("\"{s}\"")).collect();
        format!("[{}]", quoted.join(","))
    })
}

fn statement(
    with_principal: bool,
    actions: &'static [&'static str],
) -> impl Strategy<Value = String> {
    (
        any::<bool>(),
        any::<bool>(),
        list(actions),
        any::<bool>(),
        list(RESOURCES),
        prop::option::of(pick(CONDITIONS)),
        pick(PRINCIPALS),
        any::<bool>(),
    )
        .prop_map(
            move |(allow, not_action, acts, not_res, res, cond, principal, not_principal)| {
                let mut parts = vec![format!(
                    r#""Effect":"{}""#,
                    if allow { "Allow" } else { "Deny" }
                )];
                parts.push(format!(
                    r#""{}":{acts}"#,
                    if not_action { "NotAction" } else { "Action" }
                ));
                parts.push(format!(
                    r#""{}":{res}"#,
                    if not_res { "NotResource" } else { "Resource" }
                ));
                if let Some(c) = cond {
                    parts.push(format!(r#""Condition":{c}"#));
                }
                if with_principal {
                    let key = if not_principal {
                        "NotPrincipal"
                    } else {
                        "Principal"
                    };
                    parts.push(format!(r#""{key}":{principal}"#));
                }
                format!("{{{}}}", parts.join(","))
            },
        )
}

fn policy_json(
    with_principal: bool,
    actions: &'static [&'static str],
) -> impl Strategy<Value = String> {
    prop::collection::vec(statement(with_principal, actions), 1..4).prop_map(|s| {
        format!(
            r#"{{"Version":"2012-10-17","Statement":[{}]}}"#,
            s.join(",")
        )
    })
}

fn principal() -> impl Strategy<Value = PrincipalInfo> {
    prop_oneof![
        Just(PrincipalInfo::user(A, "alice", "AIDAA").with_tags([("team", "blue")])),
        Just(PrincipalInfo::user(A, "carol", "AIDAC")),
        Just(PrincipalInfo::user("444455556666", "bob", "AIDAB")),
        Just(PrincipalInfo::root(A)),
        Just(PrincipalInfo::assumed_role(ROLE, "AROAX", "s1")),
        Just(PrincipalInfo::service("logs.amazonaws.com")),
        Just(PrincipalInfo::anonymous()),
    ]
}

fn non_root_principal() -> impl Strategy<Value = PrincipalInfo> {
    principal().prop_filter("root is allowed by default", |p| {
        p.kind != citadel_iam::policy::PrincipalType::Root
    })
}

#[derive(Debug, Clone)]
struct Request {
    principal: PrincipalInfo,
    action: &'static str,
    resource: &'static str,
    keys: Vec<(&'static str, &'static str)>,
    tls: bool,
}

fn request(
    principals: BoxedStrategy<PrincipalInfo>,
    actions: &'static [&'static str],
) -> impl Strategy<Value = Request> {
    (
        principals,
        pick(actions),
        pick(&[
            KEY,
            "arn:aws:kms:us-east-1:444455556666:key/k",
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:x",
            "*",
            "arn:aws:s3:::b/alice/x",
        ]),
        prop::collection::vec(
            pick(&[
                "aws:TagKeys=Env",
                "aws:TagKeys=Secret",
                "s3:max-keys=5",
                "s3:prefix=home/alice/x",
                "x:flag=true",
                "x:n=2.5",
                "aws:SourceArn=arn:aws:s3:::b",
            ]),
            0..4,
        ),
        any::<bool>(),
    )
        .prop_map(|(principal, action, resource, kv, tls)| Request {
            principal,
            action,
            resource,
            keys: kv.into_iter().filter_map(|s| s.split_once('=')).collect(),
            tls,
        })
}

impl Request {
    fn context(&self) -> EvalContext {
        let mut b = EvalContext::builder(self.principal.clone(), self.action, self.resource)
            .secure_transport(self.tls)
            .source_ip("192.0.2.7".parse().unwrap())
            .current_time(time::macros::datetime!(2024-06-01 00:00 UTC));
        for (k, v) in &self.keys {
            b = b.key(k, *v);
        }
        b.build()
    }
}

struct Policies {
    identity: Vec<Arc<Policy>>,
    boundary: Option<Policy>,
    session: Vec<Arc<Policy>>,
    resource: Option<Policy>,
}

fn parse_all(
    identity: &[String],
    boundary: &Option<String>,
    session: &[String],
    resource: &Option<String>,
) -> Policies {
    let p = |json: &str, kind| Policy::parse(json, kind).unwrap_or_else(|e| panic!("{e}: {json}"));
    Policies {
        identity: identity.iter().map(|j| Arc::new(p(j, MANAGED))).collect(),
        boundary: boundary.as_deref().map(|j| p(j, PolicyKind::Boundary)),
        session: session
            .iter()
            .map(|j| Arc::new(p(j, PolicyKind::Session)))
            .collect(),
        resource: resource.as_deref().map(|j| p(j, PolicyKind::Resource)),
    }
}

fn run(ctx: &EvalContext, p: &Policies, kms: bool, grant: bool) -> EvalDecision {
    let mut input = EvalInput::new(ctx)
        .identity_policies(&p.identity)
        .permissions_boundary(p.boundary.as_ref())
        .session_policies(&p.session)
        .resource_policy(p.resource.as_ref())
        .grant_allows(grant);
    input.kms_key_policy = kms;
    evaluate(&input).decision
}

const REQUEST_ACTIONS: &[&str] = &[
    "kms:Decrypt",
    "kms:Encrypt",
    "s3:GetObject",
    "sts:AssumeRole",
    "iam:TagUser",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn parse_never_panics_on_arbitrary_json(v in json()) {
        let text = v.to_string();
        for kind in KINDS {
            let _ = Policy::parse(&text, kind);
        }
        // Wrapped so that the top level is a policy-shaped object more often.
        let wrapped = format!(r#"{{"Version":"2012-10-17","Statement":{text}}}"#);
        for kind in KINDS {
            if let Err(e) = Policy::parse(&wrapped, kind) {
                // Every error renders in every flavour without panicking.
                let _ = e.to_aws_error();
                let _ = e.to_aws_error_for(citadel_iam::policy::ErrorFlavour::Kms);
            }
        }
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(s in "\\PC{0,200}") {
        for kind in KINDS {
            let _ = Policy::parse(&s, kind);
        }
    }

    #[test]
    fn generated_policies_parse_and_evaluation_never_panics(
        identity in prop::collection::vec(policy_json(false, ACTIONS), 0..3),
        boundary in prop::option::of(policy_json(false, ACTIONS)),
        session in prop::collection::vec(policy_json(false, ACTIONS), 0..2),
        resource in prop::option::of(policy_json(true, ACTIONS)),
        req in request(principal().boxed(), REQUEST_ACTIONS),
        kms in any::<bool>(),
        grant in any::<bool>(),
    ) {
        let p = parse_all(&identity, &boundary, &session, &resource);
        let ctx = req.context();
        let d = run(&ctx, &p, kms, grant);
        let r = citadel_iam::policy::EvalResult { decision: d, statement: None };
        prop_assert_eq!(r.access_denied_message("arn", req.action, req.resource).is_none(), d == EvalDecision::Allow);
    }

    #[test]
    fn explicit_deny_always_wins(
        identity in prop::collection::vec(policy_json(false, ACTIONS), 0..3),
        boundary in prop::option::of(policy_json(false, ACTIONS)),
        session in prop::collection::vec(policy_json(false, ACTIONS), 0..2),
        resource in prop::option::of(policy_json(true, ACTIONS)),
        req in request(principal().boxed(), REQUEST_ACTIONS),
        kms in any::<bool>(),
        grant in any::<bool>(),
        place in 0usize..4,
    ) {
        let mut identity = identity;
        let mut boundary = boundary;
        let mut session = session;
        let mut resource = resource;
        let deny_all = r#"{"Version":"2012-10-17","Statement":{"Effect":"Deny","Action":"*","Resource":"*"}}"#.to_owned();
        let allow_all = r#"{"Effect":"Allow","Action":"*","Resource":"*"}"#;
        match place {
            0 => identity.push(deny_all),
            1 => boundary = Some(format!(r#"{{"Version":"2012-10-17","Statement":[{allow_all},{{"Effect":"Deny","Action":"*","Resource":"*"}}]}}"#)),
            2 => session.push(deny_all),
            _ => {
                let base = resource.unwrap_or_else(|| r#"{"Version":"2012-10-17","Statement":[]}"#.to_owned());
                let mut v: Value = serde_json::from_str(&base).unwrap();
                let stmts = v["Statement"].as_array_mut().unwrap();
                stmts.push(serde_json::json!({"Effect":"Deny","Principal":"*","Action":"*","Resource":"*"}));
                resource = Some(v.to_string());
            }
        }
        let p = parse_all(&identity, &boundary, &session, &resource);
        let ctx = req.context();
        let d = run(&ctx, &p, kms, grant);
        prop_assert!(matches!(d, EvalDecision::ExplicitDeny(_)), "{:?}", d);
    }

    #[test]
    fn no_applicable_allow_means_implicit_deny(
        identity in prop::collection::vec(policy_json(false, ACTIONS), 0..3),
        boundary in prop::option::of(policy_json(false, ACTIONS)),
        session in prop::collection::vec(policy_json(false, ACTIONS), 0..2),
        resource in prop::option::of(policy_json(true, ACTIONS)),
        req in request(non_root_principal().boxed(), REQUEST_ACTIONS),
        kms in any::<bool>(),
    ) {
        // Keep only statements that cannot apply: Allow statements are rewritten to an action
        // no request uses, so nothing allows; Deny statements stay and may deny.
        let neuter = |json: &String| {
            let mut v: Value = serde_json::from_str(json).unwrap();
            for s in v["Statement"].as_array_mut().unwrap() {
                if s["Effect"] == "Allow" {
                    let o = s.as_object_mut().unwrap();
                    o.remove("NotAction");
                    o.insert("Action".into(), Value::from("none:Nothing"));
                }
            }
            v.to_string()
        };
        let identity: Vec<String> = identity.iter().map(neuter).collect();
        let boundary = boundary.as_ref().map(neuter);
        let session: Vec<String> = session.iter().map(neuter).collect();
        let resource = resource.as_ref().map(neuter);
        let p = parse_all(&identity, &boundary, &session, &resource);
        let ctx = req.context();
        let d = run(&ctx, &p, kms, false);
        prop_assert!(d != EvalDecision::Allow, "{:?}", d);
    }
}
