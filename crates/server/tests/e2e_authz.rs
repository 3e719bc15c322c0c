//! Authorization against the real binary in production mode, driven by the real `aws` CLI: a
//! user allowed only `kms:Encrypt` on one key can encrypt with it and nothing else; IAM actions
//! are denied with IAM's error; a policy attached later takes effect at once; and a key policy
//! that does not delegate to the account denies even a user whose IAM policies allow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, b64decode, json, stderr};
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

fn ok(server: &Server, id: &str, secret: &str, args: &[&str]) -> Value {
    let out = server.aws(id, secret, args);
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

fn root_ok(server: &Server, args: &[&str]) -> Value {
    ok(server, ROOT_ID, ROOT_SECRET, args)
}

/// Runs `aws …` expecting it to fail with `code`; returns the CLI's error text.
fn fails(server: &Server, id: &str, secret: &str, args: &[&str], code: &str) -> String {
    let out = server.aws(id, secret, args);
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

#[test]
fn identity_and_key_policies_decide_what_a_user_may_do() {
    let server = production().start();

    // ------------------------------------------------------------ root sets the scene
    let key = root_ok(&server, &["kms", "create-key"]);
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let key_arn = key["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    root_ok(&server, &["iam", "create-user", "--user-name", "alice"]);
    let access = root_ok(
        &server,
        &["iam", "create-access-key", "--user-name", "alice"],
    );
    let alice_id = access["AccessKey"]["AccessKeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let alice_secret = access["AccessKey"]["SecretAccessKey"]
        .as_str()
        .unwrap()
        .to_owned();
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
            &allow("kms:Encrypt", &key_arn),
        ],
    );
    let alice = |args: &[&str]| ok(&server, &alice_id, &alice_secret, args);
    let alice_fails =
        |args: &[&str], code: &str| fails(&server, &alice_id, &alice_secret, args, code);

    // ------------------------------------------------------------ alice: encrypt only
    let who = alice(&["sts", "get-caller-identity"]);
    assert_eq!(who["Arn"], "arn:aws:iam::000000000000:user/alice");
    let enc = alice(&[
        "kms",
        "encrypt",
        "--key-id",
        &key_id,
        "--plaintext",
        "aGVsbG8=",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let ct_path = dir.path().join("ct.bin");
    std::fs::write(&ct_path, b64decode(enc["CiphertextBlob"].as_str().unwrap())).unwrap();
    let blob = format!("fileb://{}", ct_path.display());
    assert_eq!(enc["KeyId"], key_arn.as_str());
    let err = alice_fails(
        &["kms", "decrypt", "--ciphertext-blob", &blob],
        "AccessDeniedException",
    );
    assert!(
        err.contains(&format!(
            "User: arn:aws:iam::000000000000:user/alice is not authorized to perform: kms:Decrypt on resource: {key_arn} because no identity-based policy allows the kms:Decrypt action"
        )),
        "{err}"
    );
    // Another key is out of reach, and so is IAM.
    let other = root_ok(&server, &["kms", "create-key"]);
    let other_id = other["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    alice_fails(
        &[
            "kms",
            "encrypt",
            "--key-id",
            &other_id,
            "--plaintext",
            "aGVsbG8=",
        ],
        "AccessDeniedException",
    );
    let err = alice_fails(&["iam", "list-users"], "AccessDenied");
    assert!(
        err.contains(
            "User: arn:aws:iam::000000000000:user/alice is not authorized to perform: iam:ListUsers on resource: *"
        ),
        "{err}"
    );
    // The CLI does not show the status; IAM's AccessDenied is 403, as boto3 reports.
    let out = server.aws(&alice_id, &alice_secret, &["--debug", "iam", "list-users"]);
    assert!(
        stderr(&out).contains("Response headers") && stderr(&out).contains("403"),
        "IAM access denied must be 403"
    );
    alice_fails(&["kms", "list-keys"], "AccessDeniedException");

    // ------------------------------------------------------------ root grants decrypt
    let managed = root_ok(
        &server,
        &[
            "iam",
            "create-policy",
            "--policy-name",
            "Decrypt",
            "--policy-document",
            &allow("kms:Decrypt", "*"),
        ],
    );
    let managed_arn = managed["Policy"]["Arn"].as_str().unwrap().to_owned();
    root_ok(
        &server,
        &[
            "iam",
            "attach-user-policy",
            "--user-name",
            "alice",
            "--policy-arn",
            &managed_arn,
        ],
    );
    let dec = alice(&["kms", "decrypt", "--ciphertext-blob", &blob]);
    assert_eq!(b64decode(dec["Plaintext"].as_str().unwrap()), b"aGVsbG8=");

    // ------------------------------------------------------------ a key that does not delegate
    // A key whose policy names only the root user explicitly: the account's IAM policies no
    // longer count, so alice is denied even though her policies allow.
    let locked = root_ok(&server, &["kms", "create-key"]);
    let locked_id = locked["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let locked_arn = locked["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    root_ok(
        &server,
        &[
            "iam",
            "put-user-policy",
            "--user-name",
            "alice",
            "--policy-name",
            "locked-too",
            "--policy-document",
            &allow("kms:*", &locked_arn),
        ],
    );
    let alice_can_encrypt_locked = || {
        server
            .aws(
                &alice_id,
                &alice_secret,
                &[
                    "kms",
                    "encrypt",
                    "--key-id",
                    &locked_id,
                    "--plaintext",
                    "aGVsbG8=",
                ],
            )
            .status
            .success()
    };
    // With the default key policy (delegating to the account), her IAM allow works.
    assert!(alice_can_encrypt_locked());
    // The lockout safety check refuses a policy that shuts root out…
    let alice_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:user/alice"},"Action":"kms:Encrypt","Resource":"*"}]}"#;
    let err = fails(
        &server,
        ROOT_ID,
        ROOT_SECRET,
        &[
            "kms",
            "put-key-policy",
            "--key-id",
            &locked_id,
            "--policy-name",
            "default",
            "--policy",
            alice_only,
        ],
        "MalformedPolicyDocumentException",
    );
    assert!(
        err.contains(
            "The new key policy will not allow you to update the key policy in the future."
        ),
        "{err}"
    );
    // …and malformed policies with the problem named.
    let err = fails(
        &server,
        ROOT_ID,
        ROOT_SECRET,
        &[
            "kms",
            "put-key-policy",
            "--key-id",
            &locked_id,
            "--policy-name",
            "default",
            "--policy",
            r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
        ],
        "MalformedPolicyDocumentException",
    );
    assert!(err.contains("Missing required field Principal"), "{err}");
    // Naming the root user explicitly (bypassing the check, as an operator would) stops the
    // delegation to IAM policies.
    let root_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:root"},"Action":"kms:*","Resource":"*","Condition":{"StringEquals":{"aws:PrincipalType":"Account"}}}]}"#;
    root_ok(
        &server,
        &[
            "kms",
            "put-key-policy",
            "--key-id",
            &locked_id,
            "--policy-name",
            "default",
            "--policy",
            root_only,
            "--bypass-policy-lockout-safety-check",
        ],
    );
    let err = alice_fails(
        &[
            "kms",
            "encrypt",
            "--key-id",
            &locked_id,
            "--plaintext",
            "aGVsbG8=",
        ],
        "AccessDeniedException",
    );
    assert!(
        err.contains(&format!(
            "User: arn:aws:iam::000000000000:user/alice is not authorized to perform: kms:Encrypt on resource: {locked_arn}"
        )),
        "{err}"
    );
    // Root still can.
    root_ok(
        &server,
        &[
            "kms",
            "encrypt",
            "--key-id",
            &locked_id,
            "--plaintext",
            "aGVsbG8=",
        ],
    );
}
