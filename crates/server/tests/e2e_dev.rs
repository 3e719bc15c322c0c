//! `citadel serve --dev` driven by the real `aws` CLI, boto3, and botocore-signed raw requests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, json, stderr};
use serde_json::{Value, json};

fn raw(server: &Server, spec: Value) -> Value {
    let out = server.python("raw.py", "AKIDEXAMPLE", "dev-secret", &[&spec.to_string()]);
    assert!(out.status.success(), "raw.py failed: {}", stderr(&out));
    json(&out)
}

fn kms(target: &str, body: &str) -> Value {
    json!({"target": format!("TrentService.{target}"), "body": body,
           "content_type": "application/x-amz-json-1.1", "signing_name": "kms"})
}

#[test]
fn aws_cli_and_boto3_are_authenticated_and_answered() {
    let server = Server::dev().start();

    let out = server.aws("AKIDEXAMPLE", "anything", &["sts", "get-caller-identity"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let id = json(&out);
    assert_eq!(id["Account"], "000000000000");
    assert_eq!(id["Arn"], "arn:aws:iam::000000000000:root");
    assert_eq!(id["UserId"], "000000000000");

    // A 12-digit access key id selects the account.
    let out = server.aws("111122223333", "anything", &["sts", "get-caller-identity"]);
    assert_eq!(json(&out)["Arn"], "arn:aws:iam::111122223333:root");

    // A KMS call signed by the CLI is authenticated, routed, and answered with a clear error
    // when the operation is not implemented (never a fake success).
    let out = server.aws("AKIDEXAMPLE", "x", &["kms", "describe-custom-key-stores"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("UnsupportedOperationException")
            && stderr(&out).contains("kms:DescribeCustomKeyStores"),
        "{}",
        stderr(&out)
    );

    let out = server.python("boto3_smoke.py", "222233334444", "s", &[]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v = json(&out);
    assert_eq!(v["identity"]["Account"], "222233334444");
    assert_eq!(v["identity"]["Arn"], "arn:aws:iam::222233334444:root");
    assert!(!v["sts_request_id"].as_str().unwrap().is_empty());
    assert_eq!(v["kms"]["code"], "UnsupportedOperationException");
    assert_eq!(v["kms"]["status"], 400);
    assert!(!v["kms"]["request_id"].as_str().unwrap().is_empty());
}

#[test]
fn bad_signatures_get_precise_errors() {
    let server = Server::dev().start();

    let r = raw(
        &server,
        json!({"target": "TrentService.ListKeys", "body": "{}",
        "content_type": "application/x-amz-json-1.1", "sign": false}),
    );
    assert_eq!(r["status"], 400);
    assert_eq!(r["json"]["__type"], "MissingAuthenticationTokenException");
    assert_eq!(r["json"]["message"], "Missing Authentication Token");
    assert!(
        r["headers"]["x-amzn-requestid"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );

    let r = raw(
        &server,
        json!({"body": "Action=GetCallerIdentity&Version=2011-06-15",
        "content_type": "application/x-www-form-urlencoded", "sign": false}),
    );
    assert_eq!(r["status"], 403);
    assert!(
        r["body"]
            .as_str()
            .unwrap()
            .contains("<Code>MissingAuthenticationToken</Code>")
    );

    let mut expired = kms("ListKeys", "{}");
    expired["skew_seconds"] = json!(-20 * 60);
    let r = raw(&server, expired);
    assert_eq!(r["status"], 400);
    assert_eq!(r["json"]["__type"], "InvalidSignatureException");
    assert!(
        r["json"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature expired: ")
    );

    let mut future = kms("ListKeys", "{}");
    future["skew_seconds"] = json!(20 * 60);
    let r = raw(&server, future);
    assert_eq!(r["json"]["__type"], "InvalidSignatureException");
    assert!(
        r["json"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Signature not yet current: ")
    );

    let mut no_host = kms("ListKeys", "{}");
    no_host["drop_host_from_signature"] = json!(true);
    let r = raw(&server, no_host);
    assert_eq!(r["status"], 400);
    assert!(
        r["json"]["message"]
            .as_str()
            .unwrap()
            .contains("'Host' must be a 'SignedHeader'"),
        "{r}"
    );

    // Signed for another service than the one addressed.
    let mut wrong_service = kms("ListKeys", "{}");
    wrong_service["signing_name"] = json!("secretsmanager");
    let r = raw(&server, wrong_service);
    assert_eq!(r["json"]["__type"], "InvalidSignatureException");
    assert!(
        r["json"]["message"]
            .as_str()
            .unwrap()
            .contains("Credential should be scoped to correct service: 'kms'")
    );
}

#[test]
fn malformed_requests_get_precise_errors() {
    let server = Server::dev().start();

    let r = raw(&server, kms("FrobnicateKey", "{}"));
    assert_eq!(r["status"], 400);
    assert_eq!(r["json"]["__type"], "UnknownOperationException");

    let r = raw(
        &server,
        json!({"target": "NoSuchService_2020.Op", "body": "{}",
        "content_type": "application/x-amz-json-1.1"}),
    );
    assert_eq!(r["json"]["__type"], "UnknownOperationException");

    let mut wrong_type = kms("ListKeys", "{}");
    wrong_type["content_type"] = json!("text/plain");
    let r = raw(&server, wrong_type);
    assert_eq!(r["status"], 400);
    assert_eq!(r["json"]["__type"], "UnknownOperationException");

    let r = raw(&server, kms("ListKeys", "{\"Limit\": "));
    assert_eq!(r["status"], 400);
    assert_eq!(r["json"]["__type"], "SerializationException");

    let r = raw(&server, kms("GenerateDataKey", r#"{"KeyId": 5}"#));
    assert_eq!(r["status"], 400);
    assert_eq!(r["json"]["__type"], "SerializationException");

    let r = raw(
        &server,
        kms(
            "GenerateDataKey",
            r#"{"KeyId": "k", "NumberOfBytes": 2000}"#,
        ),
    );
    assert_eq!(r["status"], 400);
    assert_eq!(r["json"]["__type"], "ValidationException");
    assert_eq!(
        r["json"]["message"],
        "1 validation error detected: Value '2000' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
    );

    let r = raw(
        &server,
        json!({"target": "secretsmanager.GetSecretValue", "body": "{}",
        "content_type": "application/x-amz-json-1.1", "signing_name": "secretsmanager"}),
    );
    assert_eq!(r["json"]["__type"], "ValidationException");
    // Secrets Manager spells the member `Message`.
    assert!(
        r["json"]["Message"]
            .as_str()
            .unwrap()
            .contains("at 'secretId'"),
        "{r}"
    );

    let r = raw(
        &server,
        json!({"body": "Action=Frobnicate&Version=2011-06-15",
        "content_type": "application/x-www-form-urlencoded", "signing_name": "sts"}),
    );
    assert_eq!(r["status"], 400);
    assert!(
        r["body"]
            .as_str()
            .unwrap()
            .contains("<Code>InvalidAction</Code>")
    );

    // 100 MB: refused from the Content-Length, without reading it.
    let mut huge = kms("ListKeys", "");
    huge["body_size"] = json!(100 * 1024 * 1024);
    huge["sign"] = json!(false);
    let r = raw(&server, huge);
    assert_eq!(r["status"], 413, "{r}");
    assert_eq!(r["json"]["__type"], "RequestEntityTooLargeException");

    // The server is still healthy afterwards.
    let out = server.aws("AKIDEXAMPLE", "x", &["sts", "get-caller-identity"]);
    assert!(out.status.success());
}

#[test]
fn health_metrics_and_graceful_shutdown() {
    let server = Server::dev().start();
    let r = raw(
        &server,
        json!({"method": "GET", "path": "/_citadel/health", "sign": false}),
    );
    assert_eq!(r["status"], 200);
    assert_eq!(r["json"]["sealed"], false);
    assert_eq!(r["json"]["initialized"], true);

    server.aws("AKIDEXAMPLE", "x", &["sts", "get-caller-identity"]);
    let r = raw(
        &server,
        json!({"method": "GET", "path": "/metrics", "sign": false}),
    );
    assert_eq!(r["status"], 200);
    let body = r["body"].as_str().unwrap();
    assert!(
        body.contains(
            r#"citadel_requests_total{service="sts",operation="GetCallerIdentity",status="200"}"#
        ),
        "{body}"
    );
    assert!(body.contains("citadel_request_duration_seconds"));
    assert!(body.contains("citadel_sealed 0"));

    let out = server.operator(&["init"], None, None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("--dev"), "{}", stderr(&out));

    let log = server.log();
    let status = server.terminate();
    assert!(status.success(), "exit status {status}");
    // Logs never carry request secrets: no signature or authorization material.
    assert!(!log.contains("Signature="), "{log}");
}
