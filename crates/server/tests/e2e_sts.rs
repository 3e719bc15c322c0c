//! STS against the real binary in production mode, driven by the real `aws` CLI: AssumeRole is
//! allowed only when the role's trust policy and the caller's identity policies allow; the
//! temporary credentials (with their session token) act as the assumed role, narrowed by a
//! session policy; a tampered token is refused; ExternalId conditions hold; GetSessionToken
//! works for a user. Expiry (with an injected clock) is unit-tested in `citadel-svc-sts`; cross-account
//! assume-role end to end is in `e2e_cross_account.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Creds, Server, json, stderr};
use serde_json::Value;

const ROOT_ID: &str = "AKIACITADELTESTROOT1";
const ROOT_SECRET: &str = "cItAdElTeStSeCrEt/0123456789abcdefGHIJKL";
const ACCT: &str = "000000000000";

fn production() -> common::ServerBuilder {
    Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .env("CITADEL_ROOT_ACCESS_KEY_ID", ROOT_ID)
        .env("CITADEL_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
}

fn ok(server: &Server, creds: &Creds, args: &[&str]) -> Value {
    let out = server.aws_as(creds, args);
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        stderr(&out)
    );
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        json(&out)
    }
}

fn fails(server: &Server, creds: &Creds, args: &[&str], code: &str) -> String {
    let out = server.aws_as(creds, args);
    let err = stderr(&out);
    assert!(!out.status.success(), "aws {args:?} should have failed");
    assert!(
        err.contains(&format!("({code})")),
        "aws {args:?}: expected {code}, got: {err}"
    );
    err
}

fn allow(action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}]}}"#
    )
}

fn trust(principal: &str, condition: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"sts:AssumeRole"{condition}}}]}}"#
    )
}

fn session(v: &Value) -> Creds {
    let c = &v["Credentials"];
    Creds {
        id: c["AccessKeyId"].as_str().unwrap().to_owned(),
        secret: c["SecretAccessKey"].as_str().unwrap().to_owned(),
        token: Some(c["SessionToken"].as_str().unwrap().to_owned()),
    }
}

fn new_user(server: &Server, root: &Creds, name: &str, policy: Option<&str>) -> Creds {
    ok(server, root, &["iam", "create-user", "--user-name", name]);
    if let Some(p) = policy {
        ok(
            server,
            root,
            &[
                "iam",
                "put-user-policy",
                "--user-name",
                name,
                "--policy-name",
                "p",
                "--policy-document",
                p,
            ],
        );
    }
    let key = ok(
        server,
        root,
        &["iam", "create-access-key", "--user-name", name],
    );
    Creds::new(
        key["AccessKey"]["AccessKeyId"].as_str().unwrap(),
        key["AccessKey"]["SecretAccessKey"].as_str().unwrap(),
    )
}

fn new_role(server: &Server, root: &Creds, name: &str, trust_doc: &str) -> String {
    let role = ok(
        server,
        root,
        &[
            "iam",
            "create-role",
            "--role-name",
            name,
            "--assume-role-policy-document",
            trust_doc,
        ],
    );
    role["Role"]["Arn"].as_str().unwrap().to_owned()
}

#[test]
fn assume_role_issues_credentials_that_act_as_the_role() {
    let server = production().start();
    let root = Creds::new(ROOT_ID, ROOT_SECRET);

    // ------------------------------------------------------------ the scene
    let alice_arn = format!("arn:aws:iam::{ACCT}:user/alice");
    let r = new_role(&server, &root, "R", &trust(&alice_arn, ""));
    ok(
        &server,
        &root,
        &[
            "iam",
            "put-role-policy",
            "--role-name",
            "R",
            "--policy-name",
            "list",
            "--policy-document",
            &allow("kms:ListKeys", "*"),
        ],
    );
    let alice = new_user(&server, &root, "alice", Some(&allow("sts:AssumeRole", "*")));

    // ------------------------------------------------------------ alice assumes R
    let assumed = ok(
        &server,
        &alice,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            &r,
            "--role-session-name",
            "s1",
        ],
    );
    let s1_arn = format!("arn:aws:sts::{ACCT}:assumed-role/R/s1");
    assert_eq!(assumed["AssumedRoleUser"]["Arn"], s1_arn.as_str());
    let s1 = session(&assumed);
    assert!(s1.id.starts_with("ASIA") && s1.id.len() == 20, "{}", s1.id);
    assert_eq!(s1.secret.len(), 40);
    assert!(s1.token.as_ref().unwrap().len() >= 88);
    assert!(assumed["Credentials"]["Expiration"].is_string());

    let who = ok(&server, &s1, &["sts", "get-caller-identity"]);
    assert_eq!(who["Arn"], s1_arn.as_str());
    assert_eq!(who["Account"], ACCT);
    let user_id = who["UserId"].as_str().unwrap();
    assert!(
        user_id.starts_with("AROA") && user_id.ends_with(":s1"),
        "{user_id}"
    );
    // The role's policy applies; alice's own (sts only) does not.
    ok(&server, &s1, &["kms", "list-keys"]);
    let err = fails(&server, &s1, &["iam", "list-users"], "AccessDenied");
    assert!(err.contains(&s1_arn), "{err}");

    // ------------------------------------------------------------ tokens
    // A tampered token, a missing one, and a token on a long-term key are all invalid.
    let mut tampered = s1.clone();
    let mut t = tampered.token.take().unwrap();
    let last = if t.ends_with('A') { "B" } else { "A" };
    t.replace_range(t.len() - 1.., last);
    tampered.token = Some(t);
    let err = fails(
        &server,
        &tampered,
        &["sts", "get-caller-identity"],
        "InvalidClientTokenId",
    );
    assert!(
        err.contains("The security token included in the request is invalid"),
        "{err}"
    );
    fails(
        &server,
        &tampered,
        &["kms", "list-keys"],
        "UnrecognizedClientException",
    );
    let mut no_token = s1.clone();
    no_token.token = None;
    fails(
        &server,
        &no_token,
        &["sts", "get-caller-identity"],
        "InvalidClientTokenId",
    );
    let mut long_with_token = alice.clone();
    long_with_token.token = s1.token.clone();
    fails(
        &server,
        &long_with_token,
        &["sts", "get-caller-identity"],
        "InvalidClientTokenId",
    );

    // ------------------------------------------------------------ session policy narrows
    let narrowed = ok(
        &server,
        &alice,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            &r,
            "--role-session-name",
            "narrow",
            "--policy",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:ListKeys","Resource":"*"}]}"#,
        ],
    );
    let narrow = session(&narrowed);
    let err = fails(
        &server,
        &narrow,
        &["kms", "list-keys"],
        "AccessDeniedException",
    );
    assert!(err.contains("session policy"), "{err}");

    // ------------------------------------------------------------ denials
    // bob: trusted through the account, but no identity policy allows sts:AssumeRole.
    let acct_role = new_role(
        &server,
        &root,
        "AccountTrust",
        &trust(&format!("arn:aws:iam::{ACCT}:root"), ""),
    );
    let bob = new_user(&server, &root, "bob", None);
    let err = fails(
        &server,
        &bob,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            &acct_role,
            "--role-session-name",
            "bb",
        ],
        "AccessDenied",
    );
    assert!(
        err.contains(&format!(
            "User: arn:aws:iam::{ACCT}:user/bob is not authorized to perform: sts:AssumeRole on resource: {acct_role}"
        )),
        "{err}"
    );
    // alice may call AssumeRole anywhere, but a role whose trust does not name her refuses.
    let other = new_role(
        &server,
        &root,
        "Other",
        &trust(&format!("arn:aws:iam::{ACCT}:user/carol"), ""),
    );
    fails(
        &server,
        &alice,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            &other,
            "--role-session-name",
            "xx",
        ],
        "AccessDenied",
    );
    // A role that does not exist answers the same.
    fails(
        &server,
        &alice,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            &format!("arn:aws:iam::{ACCT}:role/Nope"),
            "--role-session-name",
            "xx",
        ],
        "AccessDenied",
    );

    // ------------------------------------------------------------ ExternalId
    let ext = new_role(
        &server,
        &root,
        "Ext",
        &trust(
            &format!("arn:aws:iam::{ACCT}:root"),
            r#","Condition":{"StringEquals":{"sts:ExternalId":"s3cr3t-id"}}"#,
        ),
    );
    let assume_ext = |external: &str| {
        server.aws_as(
            &alice,
            &[
                "sts",
                "assume-role",
                "--role-arn",
                &ext,
                "--role-session-name",
                "ee",
                "--external-id",
                external,
            ],
        )
    };
    let out = assume_ext("wrong-id");
    assert!(!out.status.success());
    assert!(stderr(&out).contains("(AccessDenied)"), "{}", stderr(&out));
    let out = assume_ext("s3cr3t-id");
    assert!(out.status.success(), "{}", stderr(&out));

    // ------------------------------------------------------------ GetSessionToken
    let st = ok(
        &server,
        &alice,
        &["sts", "get-session-token", "--duration-seconds", "900"],
    );
    let alice_session = session(&st);
    assert!(alice_session.id.starts_with("ASIA"));
    let who = ok(&server, &alice_session, &["sts", "get-caller-identity"]);
    assert_eq!(
        who["Arn"],
        format!("arn:aws:iam::{ACCT}:user/alice").as_str()
    );
    // Without MFA, such a session may not call IAM nor get another session token.
    fails(
        &server,
        &alice_session,
        &["iam", "list-users"],
        "AccessDenied",
    );
    fails(
        &server,
        &alice_session,
        &["sts", "get-session-token"],
        "AccessDenied",
    );
    // It may assume the role alice may assume.
    ok(
        &server,
        &alice_session,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            &r,
            "--role-session-name",
            "via-session",
        ],
    );

    // ------------------------------------------------------------ role chaining
    ok(
        &server,
        &root,
        &[
            "iam",
            "put-role-policy",
            "--role-name",
            "R",
            "--policy-name",
            "chain",
            "--policy-document",
            &allow("sts:AssumeRole", "*"),
        ],
    );
    let err = fails(
        &server,
        &s1,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            &acct_role,
            "--role-session-name",
            "cc",
            "--duration-seconds",
            "3601",
        ],
        "ValidationError",
    );
    assert!(err.contains("1 hour session limit"), "{err}");
    ok(
        &server,
        &s1,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            &acct_role,
            "--role-session-name",
            "cc",
        ],
    );

    // ------------------------------------------------------------ sessions die with the role
    for policy in ["list", "chain"] {
        ok(
            &server,
            &root,
            &[
                "iam",
                "delete-role-policy",
                "--role-name",
                "R",
                "--policy-name",
                policy,
            ],
        );
    }
    ok(&server, &root, &["iam", "delete-role", "--role-name", "R"]);
    fails(
        &server,
        &s1,
        &["sts", "get-caller-identity"],
        "InvalidClientTokenId",
    );
}
