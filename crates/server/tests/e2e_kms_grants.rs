//! KMS grants against the real binary in `--dev` mode, driven by the real `aws` CLI:
//! create-grant / list-grants / list-retirable-grants / retire-grant / revoke-grant, their
//! output shapes and errors, and grant tokens accepted on cryptographic calls.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, json, stderr};
use serde_json::Value;

const ACCOUNT: &str = "111122223333";
const SECRET: &str = "dev-secret";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const CAROL: &str = "arn:aws:iam::111122223333:role/carol";

struct Cli<'a> {
    server: &'a Server,
}

impl Cli<'_> {
    fn ok(&self, args: &[&str]) -> Value {
        let mut full = vec!["kms"];
        full.extend_from_slice(args);
        let out = self.server.aws(ACCOUNT, SECRET, &full);
        assert!(
            out.status.success(),
            "aws {full:?} failed: {}",
            stderr(&out)
        );
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            json(&out)
        }
    }

    /// Expects failure; returns the CLI's error line.
    fn fails(&self, args: &[&str]) -> String {
        let mut full = vec!["kms"];
        full.extend_from_slice(args);
        let out = self.server.aws(ACCOUNT, SECRET, &full);
        assert!(!out.status.success(), "aws {full:?} unexpectedly succeeded");
        stderr(&out).trim().to_owned()
    }
}

fn assert_error(line: &str, op: &str, code: &str, message: Option<&str>) {
    assert!(
        line.contains(&format!(
            "An error occurred ({code}) when calling the {op} operation"
        )),
        "{line}"
    );
    if let Some(m) = message {
        assert!(line.ends_with(m), "{line}");
    }
}

#[test]
fn grants_with_the_aws_cli() {
    let server = Server::dev().start();
    let cli = Cli { server: &server };
    let key = cli.ok(&["create-key"])["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let key_arn = format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/{key}");

    let g = cli.ok(&[
        "create-grant",
        "--key-id",
        &key,
        "--grantee-principal",
        BOB,
        "--retiring-principal",
        CAROL,
        "--operations",
        "Encrypt",
        "Decrypt",
        "--constraints",
        "EncryptionContextSubset={app=x}",
        "--name",
        "app-grant",
    ]);
    let grant_id = g["GrantId"].as_str().unwrap().to_owned();
    let token = g["GrantToken"].as_str().unwrap().to_owned();
    assert_eq!(grant_id.len(), 64);
    // Idempotent by name: same parameters, same grant.
    let again = cli.ok(&[
        "create-grant",
        "--key-id",
        &key,
        "--grantee-principal",
        BOB,
        "--retiring-principal",
        CAROL,
        "--operations",
        "Decrypt",
        "Encrypt",
        "--constraints",
        "EncryptionContextSubset={app=x}",
        "--name",
        "app-grant",
    ]);
    assert_eq!(again["GrantId"], grant_id.as_str());

    // The token is accepted at once on a cryptographic call.
    cli.ok(&[
        "encrypt",
        "--key-id",
        &key,
        "--plaintext",
        "aGVsbG8=",
        "--grant-tokens",
        &token,
    ]);
    let bad = cli.fails(&[
        "encrypt",
        "--key-id",
        &key,
        "--plaintext",
        "aGVsbG8=",
        "--grant-tokens",
        "bogus",
    ]);
    assert_error(
        &bad,
        "Encrypt",
        "InvalidGrantTokenException",
        Some("The request was rejected because the specified grant token is not valid."),
    );

    let list = cli.ok(&["list-grants", "--key-id", &key]);
    let grants = list["Grants"].as_array().unwrap();
    assert_eq!(grants.len(), 1);
    let e = &grants[0];
    assert_eq!(e["KeyId"], key_arn.as_str());
    assert_eq!(e["GrantId"], grant_id.as_str());
    assert_eq!(e["Name"], "app-grant");
    assert_eq!(e["GranteePrincipal"], BOB);
    assert_eq!(e["RetiringPrincipal"], CAROL);
    assert_eq!(
        e["IssuingAccount"],
        format!("arn:aws:iam::{ACCOUNT}:root").as_str()
    );
    assert_eq!(e["Operations"], serde_json::json!(["Encrypt", "Decrypt"]));
    assert_eq!(
        e["Constraints"],
        serde_json::json!({"EncryptionContextSubset": {"app": "x"}})
    );
    assert!(e["CreationDate"].is_string() || e["CreationDate"].is_number());
    // (The CLI follows NextMarker itself and drops Truncated from its output.)

    let retirable = cli.ok(&["list-retirable-grants", "--retiring-principal", CAROL]);
    assert_eq!(retirable["Grants"].as_array().unwrap().len(), 1);
    let none = cli.ok(&["list-retirable-grants", "--retiring-principal", BOB]);
    assert!(none["Grants"].as_array().unwrap().is_empty());

    // Errors.
    let e = cli.fails(&[
        "create-grant",
        "--key-id",
        &key,
        "--grantee-principal",
        "bob",
        "--operations",
        "Decrypt",
    ]);
    assert_error(
        &e,
        "CreateGrant",
        "InvalidArnException",
        Some("ARN does not refer to a valid principal: bob"),
    );
    let e = cli.fails(&[
        "create-grant",
        "--key-id",
        &key,
        "--grantee-principal",
        BOB,
        "--operations",
        "Sign",
    ]);
    assert_error(&e, "CreateGrant", "ValidationException", None);
    let e = cli.fails(&[
        "create-grant",
        "--key-id",
        &key,
        "--grantee-principal",
        BOB,
        "--operations",
        "CreateGrant",
    ]);
    assert_error(
        &e,
        "CreateGrant",
        "ValidationException",
        Some("Grants must not contain only the CreateGrant operation."),
    );
    let e = cli.fails(&["revoke-grant", "--key-id", &key, "--grant-id", "nope"]);
    assert_error(&e, "RevokeGrant", "InvalidGrantIdException", None);
    let zeros = "0".repeat(64);
    let e = cli.fails(&["revoke-grant", "--key-id", &key, "--grant-id", &zeros]);
    assert_error(&e, "RevokeGrant", "NotFoundException", None);
    let e = cli.fails(&["retire-grant", "--grant-token", "AAAA"]);
    assert_error(&e, "RetireGrant", "InvalidGrantTokenException", None);

    // Retire by token; revoke by id.
    cli.ok(&["retire-grant", "--grant-token", &token]);
    assert!(
        cli.ok(&["list-grants", "--key-id", &key])["Grants"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let g2 = cli.ok(&[
        "create-grant",
        "--key-id",
        &key,
        "--grantee-principal",
        BOB,
        "--operations",
        "DescribeKey",
    ]);
    let id2 = g2["GrantId"].as_str().unwrap();
    cli.ok(&["revoke-grant", "--key-id", &key, "--grant-id", id2]);
    let g3 = cli.ok(&[
        "create-grant",
        "--key-id",
        &key,
        "--grantee-principal",
        BOB,
        "--operations",
        "Decrypt",
    ]);
    cli.ok(&[
        "retire-grant",
        "--key-id",
        &key,
        "--grant-id",
        g3["GrantId"].as_str().unwrap(),
    ]);
    assert!(
        cli.ok(&["list-grants", "--key-id", &key])["Grants"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let e = cli.fails(&[
        "encrypt",
        "--key-id",
        &key,
        "--plaintext",
        "aGVsbG8=",
        "--grant-tokens",
        &token,
    ]);
    assert_error(&e, "Encrypt", "InvalidGrantTokenException", None);

    // Grant tokens never reach the log.
    assert!(!server.log().contains(&token));
}
