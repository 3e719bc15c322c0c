//! Secrets Manager secrets read through Parameter Store (`/aws/reference/secretsmanager/…`)
//! against the real binary with the `aws` CLI and boto3 (`tests/clients/ssm_reference.py`):
//! values, the secret's ARN, SourceResult, versions by staging label and VersionId, mixed
//! GetParameters, AWS's refusals (no decryption, path reads, writes), a production user who may
//! read parameters but not the secret, and the operator's `[ssm]` throughput quota.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, json, stderr};
use serde_json::{Value, json};

const ACCOUNT: &str = "111122223333";
const SECRET: &str = "dev-secret";
const REF: &str = "/aws/reference/secretsmanager/";

const ROOT_ID: &str = "AKIACITADELTESTROOT1";
const ROOT_SECRET: &str = "cItAdElTeStSeCrEt/0123456789abcdefGHIJKL";

fn ok(server: &Server, args: &[&str]) -> Value {
    server.aws_ok(ACCOUNT, SECRET, args)
}

fn fails(server: &Server, args: &[&str], code: &str) -> String {
    server.aws_fails(ACCOUNT, SECRET, args, code)
}

fn get_reference(server: &Server, name: &str) -> Value {
    ok(
        server,
        &[
            "ssm",
            "get-parameter",
            "--name",
            &format!("{REF}{name}"),
            "--with-decryption",
        ],
    )["Parameter"]
        .clone()
}

#[test]
fn secrets_through_get_parameter_with_the_cli() {
    let server = Server::dev().start();
    let created = ok(
        &server,
        &[
            "secretsmanager",
            "create-secret",
            "--name",
            "app/db",
            "--secret-string",
            "first-value",
        ],
    );
    let arn = created["ARN"].as_str().unwrap();
    let first_version = created["VersionId"].as_str().unwrap();
    let second = ok(
        &server,
        &[
            "secretsmanager",
            "put-secret-value",
            "--secret-id",
            "app/db",
            "--secret-string",
            "second-value",
        ],
    );

    let p = get_reference(&server, "app/db");
    assert_eq!(p["Name"], format!("{REF}app/db"));
    assert_eq!(p["Type"], "SecureString");
    assert_eq!(p["Value"], "second-value");
    assert_eq!(p["Version"], 0);
    assert_eq!(p["ARN"], arn);
    let source: Value = serde_json::from_str(p["SourceResult"].as_str().unwrap()).unwrap();
    assert_eq!(source["ARN"], arn);
    assert_eq!(source["name"], "app/db");
    assert_eq!(source["versionId"], second["VersionId"]);
    assert_eq!(source["secretString"], "second-value");
    assert_eq!(source["versionStages"], json!(["AWSCURRENT"]));

    // A version by staging label and by VersionId.
    let previous = get_reference(&server, "app/db:AWSPREVIOUS");
    assert_eq!(previous["Value"], "first-value");
    assert_eq!(previous["Selector"], ":AWSPREVIOUS");
    let by_id = get_reference(&server, &format!("app/db:{first_version}"));
    assert_eq!(by_id["Value"], "first-value");
    // By the secret's ARN.
    assert_eq!(get_reference(&server, arn)["Value"], "second-value");

    // GetParameters: a reference, a missing secret and a parameter together.
    ok(
        &server,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/app/plain",
            "--value",
            "p",
            "--type",
            "String",
        ],
    );
    let got = ok(
        &server,
        &[
            "ssm",
            "get-parameters",
            "--names",
            &format!("{REF}app/db"),
            &format!("{REF}app/missing"),
            "/app/plain",
            "--with-decryption",
        ],
    );
    let mut found: Vec<(String, String)> = got["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["Name"].as_str().unwrap().to_owned(),
                p["Value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("/app/plain".to_owned(), "p".to_owned()),
            (format!("{REF}app/db"), "second-value".to_owned())
        ]
    );
    assert_eq!(
        got["InvalidParameters"],
        json!([format!("{REF}app/missing")])
    );

    let missing = format!("{REF}app/missing");
    fails(
        &server,
        &[
            "ssm",
            "get-parameter",
            "--name",
            &missing,
            "--with-decryption",
        ],
        "ParameterNotFound",
    );
    let reference = format!("{REF}app/db");
    let err = fails(
        &server,
        &["ssm", "get-parameter", "--name", &reference],
        "ValidationException",
    );
    assert!(err.contains("WithDecryption"), "{err}");
    assert!(!err.contains("second-value"));
    fails(
        &server,
        &[
            "ssm",
            "get-parameters-by-path",
            "--path",
            "/aws/reference/secretsmanager",
            "--with-decryption",
        ],
        "ValidationException",
    );
    fails(
        &server,
        &[
            "ssm",
            "put-parameter",
            "--name",
            &reference,
            "--value",
            "x",
            "--type",
            "String",
            "--overwrite",
        ],
        "AccessDeniedException",
    );
    // The secret is untouched by any of that.
    assert_eq!(get_reference(&server, "app/db")["Value"], "second-value");
}

/// A production user allowed `ssm:GetParameter` but not `secretsmanager:GetSecretValue` cannot
/// read the secret through Parameter Store; with both, it can.
#[test]
fn reading_a_reference_needs_get_secret_value() {
    let server = Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .env("CITADEL_ROOT_ACCESS_KEY_ID", ROOT_ID)
        .env("CITADEL_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
        .start();
    let root = |args: &[&str]| server.aws_ok(ROOT_ID, ROOT_SECRET, args);
    root(&[
        "secretsmanager",
        "create-secret",
        "--name",
        "prod/db",
        "--secret-string",
        "prod-password",
    ]);
    let user = |name: &str, actions: Value| {
        let policy = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": actions, "Resource": "*"}]});
        root(&["iam", "create-user", "--user-name", name]);
        root(&[
            "iam",
            "put-user-policy",
            "--user-name",
            name,
            "--policy-name",
            "p",
            "--policy-document",
            &policy.to_string(),
        ]);
        let key = root(&["iam", "create-access-key", "--user-name", name]);
        (
            key["AccessKey"]["AccessKeyId"].as_str().unwrap().to_owned(),
            key["AccessKey"]["SecretAccessKey"]
                .as_str()
                .unwrap()
                .to_owned(),
        )
    };
    let reference = format!("{REF}prod/db");
    let get = [
        "ssm",
        "get-parameter",
        "--name",
        &reference,
        "--with-decryption",
    ];

    let (id, secret) = user("ssm-reader", json!(["ssm:GetParameter", "kms:Decrypt"]));
    let err = server.aws_fails(&id, &secret, &get, "AccessDeniedException");
    assert!(err.contains("secretsmanager:GetSecretValue"), "{err}");
    assert!(!err.contains("prod-password"));

    let (id, secret) = user(
        "reader",
        json!(["ssm:GetParameter", "secretsmanager:GetSecretValue"]),
    );
    let p = server.aws_ok(&id, &secret, &get);
    assert_eq!(p["Parameter"]["Value"], "prod-password");
}

#[test]
fn boto3_reference_story() {
    let server = Server::dev().start();
    let out = server.python("ssm_reference.py", ACCOUNT, SECRET, &["story"]);
    assert!(
        out.status.success(),
        "ssm_reference.py failed: {}",
        stderr(&out)
    );
    let v = json(&out);
    assert_eq!(
        v["current"],
        json!({
            "name": format!("{REF}ref/db"),
            "type": "SecureString",
            "password": "pw2",
            "version": 0,
            "arn_is_secret": true,
            "modified_is_date": true,
            "source_version_is_second": true,
            "source_stages": ["AWSCURRENT"],
            "source_keys": ["ARN", "createdDate", "name", "secretString", "versionId", "versionStages"],
        })
    );
    assert_eq!(v["previous"], "pw1");
    assert_eq!(v["by_version_id"], "pw1");
    assert_eq!(v["binary"], json!([0, 1, 254, 255]));
    assert_eq!(
        v["get_parameters"],
        json!({"found": [format!("{REF}ref/db"), "/ref/plain"], "invalid": [format!("{REF}ref/missing")]})
    );
    assert_eq!(v["missing"], "ParameterNotFound");
    assert_eq!(v["without_decryption"], "ValidationException");
    assert_eq!(v["by_path"], "ValidationException");
    assert_eq!(v["put"], "AccessDeniedException");
}

/// `[ssm] standard_tps` replaces AWS's 40 requests per second; nonsense refuses to start.
#[test]
fn the_operators_throughput_quota_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("citadel.toml");
    std::fs::write(
        &config,
        "[ssm]\nstandard_tps = 2\nhigh_throughput_tps = 100\n",
    )
    .unwrap();
    let server = Server::dev()
        .arg("--config")
        .arg(config.to_str().unwrap())
        .start();
    let out = server.python("ssm_reference.py", ACCOUNT, SECRET, &["throttle"]);
    assert!(
        out.status.success(),
        "ssm_reference.py failed: {}",
        stderr(&out)
    );
    let v = json(&out);
    let codes: Vec<&str> = v["codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    let served = codes.iter().filter(|c| **c == "ParameterNotFound").count();
    let throttled = codes
        .iter()
        .filter(|c| **c == "ThrottlingException")
        .count();
    assert_eq!(served + throttled, 30, "{codes:?}");
    // A bucket of 2, refilled at 2 per second while the burst ran (AWS's 40 would serve all).
    let elapsed = v["elapsed"].as_f64().unwrap();
    let most = 2.0 + 2.0 * elapsed.ceil() + 1.0;
    assert!(
        served >= 2 && served as f64 <= most,
        "{elapsed}s: {codes:?}"
    );
    assert!(throttled > 0, "{elapsed}s: {codes:?}");
    assert_eq!(v["after_pause"], "ParameterNotFound");
    drop(server);

    std::fs::write(&config, "[ssm]\nstandard_parameters = 0\n").unwrap();
    let out = std::process::Command::new(common::BIN)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .env_remove("CITADEL_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("[ssm] standard_parameters must be at least 1"),
        "{err}"
    );
}
