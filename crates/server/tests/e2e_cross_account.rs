//! Accounts the AWS way, against the real binary in production mode with the real `aws` CLI:
//! the root of the default (management) account creates a member account through
//! Organizations, assumes `OrganizationAccountAccessRole` in it, creates a role there, and then
//! the seed's cross-account key policy holds: a key in the management account whose policy
//! allows that role `kms:Decrypt`/`kms:CreateGrant` under `kms:ViaService` and
//! `kms:CallerAccount` conditions refuses a direct Decrypt (no Citadel service set ViaService),
//! and without the ViaService condition allows Decrypt but nothing else. Principals of a member
//! account cannot use Organizations.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Creds, Server, b64decode, json, stderr};
use serde_json::Value;

const ROOT_ID: &str = "AKIACITADELTESTROOT1";
const ROOT_SECRET: &str = "cItAdElTeStSeCrEt/0123456789abcdefGHIJKL";
const MGMT: &str = "000000000000";

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

fn session(v: &Value) -> Creds {
    let c = &v["Credentials"];
    Creds {
        id: c["AccessKeyId"].as_str().unwrap().to_owned(),
        secret: c["SecretAccessKey"].as_str().unwrap().to_owned(),
        token: Some(c["SessionToken"].as_str().unwrap().to_owned()),
    }
}

fn assume(server: &Server, creds: &Creds, role_arn: &str, name: &str) -> Creds {
    session(&ok(
        server,
        creds,
        &[
            "sts",
            "assume-role",
            "--role-arn",
            role_arn,
            "--role-session-name",
            name,
        ],
    ))
}

/// The seed's key policy: the key's own account administers it; the role of the member
/// account may Decrypt and CreateGrant, from that account, (optionally) only via SSM.
fn key_policy(member: &str, role: &str, via_service: bool) -> String {
    let via = if via_service {
        r#""StringEquals":{"kms:ViaService":"ssm.us-east-1.amazonaws.com","kms:CallerAccount":"MEMBER"}"#
    } else {
        r#""StringEquals":{"kms:CallerAccount":"MEMBER"}"#
    }
    .replace("MEMBER", member);
    format!(
        r#"{{"Version":"2012-10-17","Statement":[
          {{"Sid":"Admin","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{MGMT}:root"}},"Action":"kms:*","Resource":"*"}},
          {{"Sid":"CrossAccount","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{member}:role/{role}"}},
            "Action":["kms:Decrypt","kms:CreateGrant"],"Resource":"*","Condition":{{{via}}}}}]}}"#
    )
}

#[test]
fn organizations_member_account_and_cross_account_key_policy() {
    let server = production().start();
    let root = Creds {
        id: ROOT_ID.into(),
        secret: ROOT_SECRET.into(),
        token: None,
    };

    // The management root creates a member account.
    let created = ok(
        &server,
        &root,
        &[
            "organizations",
            "create-account",
            "--email",
            "dev@example.com",
            "--account-name",
            "dev",
        ],
    );
    let status = &created["CreateAccountStatus"];
    assert_eq!(status["State"], "SUCCEEDED");
    let member = status["AccountId"].as_str().unwrap().to_owned();
    assert_eq!(member.len(), 12);
    assert!(member.bytes().all(|b| b.is_ascii_digit()));
    assert_ne!(member, MGMT);
    let again = ok(
        &server,
        &root,
        &[
            "organizations",
            "describe-create-account-status",
            "--create-account-request-id",
            status["Id"].as_str().unwrap(),
        ],
    );
    assert_eq!(again["CreateAccountStatus"]["AccountId"], member.as_str());
    let described = ok(
        &server,
        &root,
        &["organizations", "describe-account", "--account-id", &member],
    );
    assert_eq!(described["Account"]["Name"], "dev");
    let listed = ok(&server, &root, &["organizations", "list-accounts"]);
    let ids: Vec<&str> = listed["Accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["Id"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&MGMT) && ids.contains(&member.as_str()),
        "{ids:?}"
    );
    let org = ok(&server, &root, &["organizations", "describe-organization"]);
    assert_eq!(org["Organization"]["MasterAccountId"], MGMT);

    // The operator works in the member account through OrganizationAccountAccessRole.
    let ops = assume(
        &server,
        &root,
        &format!("arn:aws:iam::{member}:role/OrganizationAccountAccessRole"),
        "ops",
    );
    let me = ok(&server, &ops, &["sts", "get-caller-identity"]);
    assert_eq!(me["Account"], member.as_str());
    assert_eq!(
        me["Arn"],
        format!("arn:aws:sts::{member}:assumed-role/OrganizationAccountAccessRole/ops").as_str()
    );

    // A member account's administrator cannot use Organizations.
    fails(
        &server,
        &ops,
        &["organizations", "list-accounts"],
        "AccessDeniedException",
    );

    // Key in the management account.
    let key = ok(&server, &root, &["kms", "create-key"]);
    let key_arn = key["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    let enc = ok(
        &server,
        &root,
        &[
            "kms",
            "encrypt",
            "--key-id",
            &key_arn,
            "--plaintext",
            "aGVsbG8=",
        ],
    );
    let dir = tempfile::tempdir().unwrap();
    let ct_path = dir.path().join("ct.bin");
    std::fs::write(&ct_path, b64decode(enc["CiphertextBlob"].as_str().unwrap())).unwrap();
    let ct = format!("fileb://{}", ct_path.display());

    // In the member account: ROLENAME, trusting the management account, allowed by its identity
    // policy to Decrypt/CreateGrant (and, to prove the key policy limits it, Encrypt) on the key.
    let role = "ROLENAME";
    ok(
        &server,
        &ops,
        &[
            "iam",
            "create-role",
            "--role-name",
            role,
            "--assume-role-policy-document",
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{MGMT}:root"}},"Action":"sts:AssumeRole"}}]}}"#
            ),
        ],
    );
    ok(
        &server,
        &ops,
        &[
            "iam",
            "put-role-policy",
            "--role-name",
            role,
            "--policy-name",
            "use-key",
            "--policy-document",
            &format!(
                r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":["kms:Decrypt","kms:CreateGrant","kms:Encrypt"],"Resource":"{key_arn}"}}]}}"#
            ),
        ],
    );
    let app = assume(
        &server,
        &root,
        &format!("arn:aws:iam::{member}:role/{role}"),
        "app",
    );
    let decrypt = [
        "kms",
        "decrypt",
        "--key-id",
        key_arn.as_str(),
        "--ciphertext-blob",
        ct.as_str(),
    ];

    // Before any key policy names the role: denied (the default policy trusts only its account).
    fails(&server, &app, &decrypt, "AccessDeniedException");

    // The seed's policy: ViaService is required, and a direct call carries none.
    ok(
        &server,
        &root,
        &[
            "kms",
            "put-key-policy",
            "--key-id",
            &key_arn,
            "--policy-name",
            "default",
            "--policy",
            &key_policy(&member, role, true),
        ],
    );
    fails(&server, &app, &decrypt, "AccessDeniedException");

    // Without the ViaService condition: Decrypt works, nothing else does.
    ok(
        &server,
        &root,
        &[
            "kms",
            "put-key-policy",
            "--key-id",
            &key_arn,
            "--policy-name",
            "default",
            "--policy",
            &key_policy(&member, role, false),
        ],
    );
    let plain = ok(&server, &app, &decrypt);
    assert_eq!(b64decode(plain["Plaintext"].as_str().unwrap()), b"aGVsbG8=");
    assert_eq!(plain["KeyId"], key_arn.as_str());
    fails(
        &server,
        &app,
        &[
            "kms",
            "encrypt",
            "--key-id",
            &key_arn,
            "--plaintext",
            "aGVsbG8=",
        ],
        "AccessDeniedException",
    );
    fails(
        &server,
        &app,
        &["kms", "describe-key", "--key-id", &key_arn],
        "AccessDeniedException",
    );
    // Key management never crosses accounts, whatever the policy says.
    fails(
        &server,
        &ops,
        &["kms", "disable-key", "--key-id", &key_arn],
        "AccessDeniedException",
    );
    // The other account's ViaService-less statement names the role, not the ops session.
    fails(&server, &ops, &decrypt, "AccessDeniedException");
    // The key's own account still administers it.
    ok(
        &server,
        &root,
        &["kms", "describe-key", "--key-id", &key_arn],
    );
}
