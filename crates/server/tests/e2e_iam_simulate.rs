//! The IAM policy simulator against the real binary in production mode, driven by the real
//! `aws` CLI: `simulate-custom-policy` and `simulate-principal-policy` answer from the same
//! evaluator that authorizes requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, json, stderr};
use serde_json::Value;

const ROOT_ID: &str = "AKIACITADELTESTROOT1";
const ROOT_SECRET: &str = "cItAdElTeStSeCrEt/0123456789abcdefGHIJKL";

fn production() -> common::ServerBuilder {
    Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .env("CITADEL_ROOT_ACCESS_KEY_ID", ROOT_ID)
        .env("CITADEL_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
}

fn root_ok(server: &Server, args: &[&str]) -> Value {
    let out = server.aws(ROOT_ID, ROOT_SECRET, args);
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

fn root_fails(server: &Server, args: &[&str], code: &str) {
    let out = server.aws(ROOT_ID, ROOT_SECRET, args);
    let err = stderr(&out);
    assert!(!out.status.success(), "aws {args:?} should have failed");
    assert!(
        err.contains(&format!("({code})")),
        "aws {args:?}: expected {code}, got: {err}"
    );
}

/// `(EvalActionName, EvalDecision)` of each result.
fn decisions(v: &Value) -> Vec<(String, String)> {
    v["EvaluationResults"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["EvalActionName"].as_str().unwrap().to_owned(),
                r["EvalDecision"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(a, d)| ((*a).to_owned(), (*d).to_owned()))
        .collect()
}

const KMS_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#;
const DENY_DECRYPT: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}"#;
const ENCRYPT_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;
const FROM_TEN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;

#[test]
fn simulate_custom_and_principal_policies_with_the_aws_cli() {
    let server = production().start();

    // ---------------------------------------------------------------- custom policies
    let v = root_ok(
        &server,
        &[
            "iam",
            "simulate-custom-policy",
            "--policy-input-list",
            KMS_ALL,
            DENY_DECRYPT,
            "--action-names",
            "kms:Encrypt",
            "kms:Decrypt",
            "s3:GetObject",
        ],
    );
    assert_eq!(
        decisions(&v),
        pairs(&[
            ("kms:Encrypt", "allowed"),
            ("kms:Decrypt", "explicitDeny"),
            ("s3:GetObject", "implicitDeny"),
        ]),
        "{v}"
    );
    let results = &v["EvaluationResults"];
    assert_eq!(results[0]["EvalResourceName"], "*");
    assert_eq!(
        results[0]["MatchedStatements"][0]["SourcePolicyId"],
        "PolicyInputList.1"
    );
    assert_eq!(
        results[1]["MatchedStatements"][0]["SourcePolicyId"],
        "PolicyInputList.2"
    );

    // A condition: missing context, then supplied with --context-entries.
    let v = root_ok(
        &server,
        &[
            "iam",
            "simulate-custom-policy",
            "--policy-input-list",
            FROM_TEN,
            "--action-names",
            "s3:GetObject",
            "--resource-arns",
            "arn:aws:s3:::bucket/key",
        ],
    );
    assert_eq!(
        decisions(&v),
        pairs(&[("s3:GetObject", "implicitDeny")]),
        "{v}"
    );
    assert_eq!(
        v["EvaluationResults"][0]["MissingContextValues"],
        serde_json::json!(["aws:SourceIp"])
    );
    assert_eq!(
        v["EvaluationResults"][0]["EvalResourceName"],
        "arn:aws:s3:::bucket/key"
    );
    let v = root_ok(
        &server,
        &[
            "iam",
            "simulate-custom-policy",
            "--policy-input-list",
            FROM_TEN,
            "--action-names",
            "s3:GetObject",
            "--context-entries",
            "ContextKeyName=aws:SourceIp,ContextKeyValues=10.1.2.3,ContextKeyType=ip",
        ],
    );
    assert_eq!(decisions(&v), pairs(&[("s3:GetObject", "allowed")]), "{v}");

    // Paging.
    let v = root_ok(
        &server,
        &[
            "iam",
            "simulate-custom-policy",
            "--policy-input-list",
            KMS_ALL,
            "--action-names",
            "kms:Encrypt",
            "kms:Decrypt",
            "kms:Sign",
            "--max-items",
            "2",
            "--no-paginate",
        ],
    );
    assert_eq!(v["EvaluationResults"].as_array().unwrap().len(), 2, "{v}");
    assert_eq!(v["IsTruncated"], true, "{v}");
    assert!(v["Marker"].is_string(), "{v}");

    // Bad input.
    root_fails(
        &server,
        &[
            "iam",
            "simulate-custom-policy",
            "--policy-input-list",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Perhaps","Action":"kms:*","Resource":"*"}]}"#,
            "--action-names",
            "kms:Encrypt",
        ],
        "MalformedPolicyDocument",
    );
    root_fails(
        &server,
        &[
            "iam",
            "simulate-custom-policy",
            "--policy-input-list",
            FROM_TEN,
            "--action-names",
            "s3:GetObject",
            "--context-entries",
            "ContextKeyName=aws:SourceIp,ContextKeyValues=10.1.2.3,ContextKeyType=ipv4",
        ],
        "InvalidInput",
    );

    // ---------------------------------------------------------------- principal policies
    let user = root_ok(&server, &["iam", "create-user", "--user-name", "alice"]);
    let alice = user["User"]["Arn"].as_str().unwrap().to_owned();
    root_ok(
        &server,
        &[
            "iam",
            "put-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "encrypt-only",
            "--policy-document",
            ENCRYPT_ONLY,
        ],
    );
    let v = root_ok(
        &server,
        &[
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            &alice,
            "--action-names",
            "kms:Encrypt",
            "kms:Decrypt",
        ],
    );
    assert_eq!(
        decisions(&v),
        pairs(&[("kms:Encrypt", "allowed"), ("kms:Decrypt", "implicitDeny")]),
        "{v}"
    );
    let matched = &v["EvaluationResults"][0]["MatchedStatements"][0];
    assert_eq!(matched["SourcePolicyId"], "encrypt-only");
    assert_eq!(matched["SourcePolicyType"], "user");

    // A group's deny reaches its members.
    root_ok(&server, &["iam", "create-group", "--group-name", "ops"]);
    root_ok(
        &server,
        &[
            "iam",
            "put-group-policy",
            "--group-name",
            "ops",
            "--policy-name",
            "no-decrypt",
            "--policy-document",
            DENY_DECRYPT,
        ],
    );
    root_ok(
        &server,
        &[
            "iam",
            "add-user-to-group",
            "--group-name",
            "ops",
            "--user-name",
            "alice",
        ],
    );
    let v = root_ok(
        &server,
        &[
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            &alice,
            "--policy-input-list",
            KMS_ALL,
            "--action-names",
            "kms:Decrypt",
            "kms:Sign",
        ],
    );
    assert_eq!(
        decisions(&v),
        pairs(&[("kms:Decrypt", "explicitDeny"), ("kms:Sign", "allowed")]),
        "{v}"
    );
    assert_eq!(
        v["EvaluationResults"][0]["MatchedStatements"][0]["SourcePolicyType"],
        "group"
    );

    root_fails(
        &server,
        &[
            "iam",
            "simulate-principal-policy",
            "--policy-source-arn",
            "arn:aws:iam::000000000000:user/nobody",
            "--action-names",
            "kms:Encrypt",
        ],
        "NoSuchEntity",
    );
}
