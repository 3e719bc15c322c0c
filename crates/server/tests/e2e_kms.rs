//! KMS against the real binary in `--dev` mode, driven by the real `aws` CLI, boto3
//! (`tests/clients/kms_*.py`) and botocore-signed raw requests: the user story of the KMS issue,
//! its list of bad inputs with AWS's codes and messages, and durability across `kill -9`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use common::{Server, b64decode, json, stderr};
use serde_json::{Value, json};

/// A 12-digit access key id selects the account in dev mode.
const ACCOUNT: &str = "111122223333";
const SECRET: &str = "dev-secret";
const REGION: &str = "us-east-1";

fn arn(id: &str) -> String {
    format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}")
}

struct Cli<'a> {
    server: &'a Server,
}

impl Cli<'_> {
    /// Runs `aws kms …` and returns its JSON output (`null` for commands that print nothing).
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

    /// Runs `aws kms …`, expects failure, returns the CLI's error line.
    fn fails(&self, args: &[&str]) -> String {
        let mut full = vec!["kms"];
        full.extend_from_slice(args);
        let out = self.server.aws(ACCOUNT, SECRET, &full);
        assert!(!out.status.success(), "aws {full:?} unexpectedly succeeded");
        strip_retries(stderr(&out).trim())
    }
}

fn fileb(path: &Path) -> String {
    format!("fileb://{}", path.display())
}

/// The CLI's error line without the retry note botocore may add:
/// `An error occurred (Code) when calling the Op operation[ (reached max retries: 0)]: message`.
fn cli_error(op: &str, code: &str, message: &str) -> String {
    format!("An error occurred ({code}) when calling the {op} operation: {message}")
        .trim()
        .to_owned()
}

/// Normalizes what [`Cli::fails`] returned to the form [`cli_error`] builds.
fn strip_retries(err: &str) -> String {
    match (err.find(" (reached max retries: "), err.find("):")) {
        (Some(start), Some(end)) if start < end => format!("{}{}", &err[..start], &err[end + 1..])
            .trim()
            .to_owned(),
        _ => err.to_owned(),
    }
}

#[test]
fn the_issue_user_story_with_the_aws_cli() {
    let server = Server::dev().start();
    let cli = Cli { server: &server };
    let dir = tempfile::tempdir().unwrap();

    let created = cli.ok(&[
        "create-key",
        "--description",
        "user story",
        "--tags",
        "TagKey=team,TagValue=platform",
    ]);
    let m = &created["KeyMetadata"];
    let key = m["KeyId"].as_str().unwrap().to_owned();
    assert_eq!(m["Arn"], arn(&key));
    assert_eq!(m["AWSAccountId"], ACCOUNT);
    assert_eq!(m["KeyState"], "Enabled");
    assert_eq!(m["KeySpec"], "SYMMETRIC_DEFAULT");
    assert_eq!(m["KeyUsage"], "ENCRYPT_DECRYPT");
    assert_eq!(m["Description"], "user story");
    cli.ok(&[
        "create-alias",
        "--alias-name",
        "alias/story",
        "--target-key-id",
        &key,
    ]);

    // Binary plaintext from a file, encrypted through the alias, decrypted without naming the key.
    let plaintext: Vec<u8> = (0..=255u8).chain(0..=255u8).collect();
    let pt = dir.path().join("plain.bin");
    std::fs::write(&pt, &plaintext).unwrap();
    let enc = cli.ok(&[
        "encrypt",
        "--key-id",
        "alias/story",
        "--plaintext",
        &fileb(&pt),
        "--encryption-context",
        "app=story,stage=test",
    ]);
    assert_eq!(enc["KeyId"], arn(&key));
    assert_eq!(enc["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    let blob = b64decode(enc["CiphertextBlob"].as_str().unwrap());
    let ct = dir.path().join("cipher.bin");
    std::fs::write(&ct, &blob).unwrap();
    let dec = cli.ok(&[
        "decrypt",
        "--ciphertext-blob",
        &fileb(&ct),
        "--encryption-context",
        "stage=test,app=story",
    ]);
    assert_eq!(dec["KeyId"], arn(&key));
    assert_eq!(b64decode(dec["Plaintext"].as_str().unwrap()), plaintext);

    // Re-encrypt to another key.
    let key2 = cli.ok(&["create-key"])["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let re = cli.ok(&[
        "re-encrypt",
        "--ciphertext-blob",
        &fileb(&ct),
        "--source-encryption-context",
        "app=story,stage=test",
        "--destination-key-id",
        &key2,
    ]);
    assert_eq!(re["SourceKeyId"], arn(&key));
    assert_eq!(re["KeyId"], arn(&key2));
    let ct2 = dir.path().join("cipher2.bin");
    std::fs::write(&ct2, b64decode(re["CiphertextBlob"].as_str().unwrap())).unwrap();
    let dec = cli.ok(&["decrypt", "--ciphertext-blob", &fileb(&ct2)]);
    assert_eq!(dec["KeyId"], arn(&key2));
    assert_eq!(b64decode(dec["Plaintext"].as_str().unwrap()), plaintext);

    // Data keys and random bytes.
    let dk = cli.ok(&[
        "generate-data-key",
        "--key-id",
        &key,
        "--key-spec",
        "AES_256",
    ]);
    let dk_plain = b64decode(dk["Plaintext"].as_str().unwrap());
    assert_eq!(dk_plain.len(), 32);
    let dk_ct = dir.path().join("dk.bin");
    std::fs::write(&dk_ct, b64decode(dk["CiphertextBlob"].as_str().unwrap())).unwrap();
    let dec = cli.ok(&["decrypt", "--ciphertext-blob", &fileb(&dk_ct)]);
    assert_eq!(b64decode(dec["Plaintext"].as_str().unwrap()), dk_plain);
    let wo = cli.ok(&[
        "generate-data-key-without-plaintext",
        "--key-id",
        "alias/story",
        "--number-of-bytes",
        "64",
    ]);
    assert!(wo.get("Plaintext").is_none());
    assert_eq!(wo["KeyId"], arn(&key));
    let rnd = cli.ok(&["generate-random", "--number-of-bytes", "48"]);
    assert_eq!(b64decode(rnd["Plaintext"].as_str().unwrap()).len(), 48);

    // Describe, list, tags.
    let d = cli.ok(&["describe-key", "--key-id", "alias/story"]);
    assert_eq!(d["KeyMetadata"]["KeyId"], key);
    let keys = cli.ok(&["list-keys"]);
    let ids: Vec<&str> = keys["Keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["KeyId"].as_str().unwrap())
        .collect();
    assert!(ids.contains(&key.as_str()) && ids.contains(&key2.as_str()));
    let aliases = cli.ok(&["list-aliases"]);
    assert_eq!(
        aliases["Aliases"],
        json!([{
            "AliasName": "alias/story",
            "AliasArn": format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/story"),
            "TargetKeyId": key,
            "CreationDate": aliases["Aliases"][0]["CreationDate"],
            "LastUpdatedDate": aliases["Aliases"][0]["LastUpdatedDate"],
        }])
    );
    cli.ok(&[
        "tag-resource",
        "--key-id",
        &key,
        "--tags",
        "TagKey=env,TagValue=test",
    ]);
    cli.ok(&["untag-resource", "--key-id", &key, "--tag-keys", "team"]);
    let tags = cli.ok(&["list-resource-tags", "--key-id", &key]);
    assert_eq!(tags["Tags"], json!([{"TagKey": "env", "TagValue": "test"}]));

    // Rotation: old ciphertexts still decrypt afterwards.
    cli.ok(&[
        "enable-key-rotation",
        "--key-id",
        &key,
        "--rotation-period-in-days",
        "90",
    ]);
    let status = cli.ok(&["get-key-rotation-status", "--key-id", &key]);
    assert_eq!(status["KeyRotationEnabled"], true);
    assert_eq!(status["RotationPeriodInDays"], 90);
    assert!(status["NextRotationDate"].is_number());
    let before = d["KeyMetadata"]["CurrentKeyMaterialId"].clone();
    cli.ok(&["rotate-key-on-demand", "--key-id", &key]);
    let rotations = cli.ok(&["list-key-rotations", "--key-id", &key]);
    assert_eq!(rotations["Rotations"].as_array().unwrap().len(), 1);
    assert_eq!(rotations["Rotations"][0]["RotationType"], "ON_DEMAND");
    assert_eq!(rotations["Rotations"][0]["KeyMaterialState"], "CURRENT");
    let after =
        cli.ok(&["describe-key", "--key-id", &key])["KeyMetadata"]["CurrentKeyMaterialId"].clone();
    assert_ne!(before, after);
    let dec = cli.ok(&[
        "decrypt",
        "--ciphertext-blob",
        &fileb(&ct),
        "--encryption-context",
        "app=story,stage=test",
    ]);
    assert_eq!(b64decode(dec["Plaintext"].as_str().unwrap()), plaintext);
    assert_eq!(dec["KeyMaterialId"], before);

    // Disabled: encrypt fails with DisabledException, through the alias too.
    cli.ok(&["disable-key", "--key-id", &key]);
    let err = cli.fails(&[
        "encrypt",
        "--key-id",
        "alias/story",
        "--plaintext",
        &fileb(&pt),
    ]);
    assert_eq!(
        err,
        cli_error(
            "Encrypt",
            "DisabledException",
            &format!("{} is disabled.", arn(&key))
        )
    );
    cli.ok(&["enable-key", "--key-id", &key]);

    // Scheduled for deletion: KMSInvalidStateException; cancelling leaves the key Disabled.
    let sched = cli.ok(&[
        "schedule-key-deletion",
        "--key-id",
        &key,
        "--pending-window-in-days",
        "7",
    ]);
    assert_eq!(sched["KeyId"], arn(&key));
    assert_eq!(sched["KeyState"], "PendingDeletion");
    assert_eq!(sched["PendingWindowInDays"], 7);
    assert!(sched["DeletionDate"].is_number());
    let err = cli.fails(&["encrypt", "--key-id", &key, "--plaintext", &fileb(&pt)]);
    assert_eq!(
        err,
        cli_error(
            "Encrypt",
            "KMSInvalidStateException",
            &format!("{} is pending deletion.", arn(&key))
        )
    );
    let err = cli.fails(&["decrypt", "--ciphertext-blob", &fileb(&dk_ct)]);
    assert!(err.contains("(KMSInvalidStateException)"), "{err}");
    let cancel = cli.ok(&["cancel-key-deletion", "--key-id", &key]);
    assert_eq!(cancel["KeyId"], arn(&key));
    let d = cli.ok(&["describe-key", "--key-id", &key]);
    assert_eq!(d["KeyMetadata"]["KeyState"], "Disabled");
    assert_eq!(d["KeyMetadata"]["Enabled"], false);

    cli.ok(&["delete-alias", "--alias-name", "alias/story"]);
    let err = cli.fails(&["describe-key", "--key-id", "alias/story"]);
    assert_eq!(
        err,
        cli_error(
            "DescribeKey",
            "NotFoundException",
            &format!("Alias arn:aws:kms:{REGION}:{ACCOUNT}:alias/story is not found.")
        )
    );

    // Plaintext never reaches the log (this is how the base64 of bytes 0..=31 begins).
    let log = server.log();
    assert!(
        !log.contains("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"),
        "plaintext in the log"
    );
}

#[test]
fn the_issue_bad_inputs_get_aws_codes_and_messages() {
    let server = Server::dev().start();
    let out = server.python("kms_errors.py", ACCOUNT, SECRET, &[]);
    assert!(
        out.status.success(),
        "kms_errors.py failed: {}",
        stderr(&out)
    );
    let v = json(&out);
    let key = v["key"].as_str().unwrap();
    let disabled = v["disabled"].as_str().unwrap();
    let expect = |case: &str, code: &str, message: &str| {
        assert_eq!(v[case]["code"], code, "{case}: {}", v[case]);
        assert_eq!(v[case]["message"], message, "{case}");
        assert_eq!(v[case]["status"], 400, "{case}");
    };
    assert_eq!(v["plaintext_4096"], json!({"ok": true}));
    expect(
        "plaintext_4097",
        "ValidationException",
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096",
    );
    expect(
        "data_key_bytes_0",
        "ValidationException",
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    expect(
        "data_key_bytes_1025",
        "ValidationException",
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
    );
    for case in ["data_key_spec_and_bytes", "data_key_neither"] {
        expect(
            case,
            "ValidationException",
            "Please specify either number of bytes or key spec.",
        );
    }
    expect(
        "random_0",
        "ValidationException",
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1",
    );
    expect(
        "random_1025",
        "ValidationException",
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024",
    );
    expect(
        "unknown_alias",
        "NotFoundException",
        &format!("Alias arn:aws:kms:{REGION}:{ACCOUNT}:alias/does-not-exist is not found."),
    );
    expect(
        "unknown_key",
        "NotFoundException",
        &format!(
            "Key '{}' does not exist",
            arn("00000000-0000-4000-8000-000000000000")
        ),
    );
    expect(
        "invalid_key_id",
        "NotFoundException",
        "Invalid keyId 'fake-key-id'",
    );
    expect(
        "alias_to_disabled",
        "DisabledException",
        &format!("{} is disabled.", arn(disabled)),
    );
    // Wrong context, tampering, truncation: InvalidCiphertextException with an empty message.
    for case in [
        "context_differs_by_case",
        "context_missing",
        "truncated_ciphertext",
        "flipped_ciphertext",
    ] {
        expect(case, "InvalidCiphertextException", "");
    }
    expect(
        "decrypt_with_other_key",
        "IncorrectKeyException",
        "The key ID in the request does not identify a CMK that can perform this operation.",
    );
    expect(
        "grant_tokens_11",
        "ValidationException",
        "1 validation error detected: Value '[token0, token1, token2, token3, token4, token5, token6, token7, token8, token9, token10]' at 'grantTokens' failed to satisfy constraint: Member must have length less than or equal to 10",
    );
    expect(
        "unknown_grant_token",
        "InvalidGrantTokenException",
        "The request was rejected because the specified grant token is not valid.",
    );
    assert_eq!(v["policy_over_32k"]["code"], "LimitExceededException");
    assert_eq!(
        v["policy_not_json"]["code"],
        "MalformedPolicyDocumentException"
    );
    expect(
        "pending_window_6",
        "ValidationException",
        "PendingWindowInDays should be between 7 and 30, but it is 6",
    );
    expect(
        "pending_window_31",
        "ValidationException",
        "PendingWindowInDays should be between 7 and 30, but it is 31",
    );
    assert_eq!(v["reserved_alias"]["code"], "NotAuthorizedException");
    expect(
        "alias_without_prefix",
        "ValidationException",
        "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html",
    );
    expect(
        "alias_with_colon",
        "ValidationException",
        "alias/a:b contains invalid characters for an alias",
    );
    expect(
        "alias_exists",
        "AlreadyExistsException",
        &format!(
            "An alias with the name arn:aws:kms:{REGION}:{ACCOUNT}:alias/taken already exists"
        ),
    );
    expect(
        "alias_to_alias",
        "ValidationException",
        "Aliases must refer to keys. Not aliases",
    );
    expect(
        "delete_unknown_alias",
        "NotFoundException",
        &format!("Alias arn:aws:kms:{REGION}:{ACCOUNT}:alias/never is not found."),
    );
    expect(
        "tag_reserved",
        "TagException",
        "Tags beginning with aws: are reserved",
    );
    expect("tag_duplicate", "TagException", "Duplicate tag keys");
    expect(
        "rotation_period_89",
        "ValidationException",
        "1 validation error detected: Value '89' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to 90",
    );
    assert_eq!(
        v["china_only_key_spec"]["code"],
        "UnsupportedOperationException"
    );
    expect(
        "cancel_not_pending",
        "KMSInvalidStateException",
        &format!("{} is not pending deletion.", arn(key)),
    );
    expect(
        "dry_run",
        "DryRunOperationException",
        "The request would have succeeded, but the DryRun option is set.",
    );
    expect(
        "on_demand_26",
        "LimitExceededException",
        &format!(
            "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {}",
            arn(key)
        ),
    );
    assert_eq!(v["old_blob_after_rotations"], json!({"ok": true}));
    for case in ["create_alias_pending_deletion", "enable_pending_deletion"] {
        expect(
            case,
            "KMSInvalidStateException",
            &format!("{} is pending deletion.", arn(disabled)),
        );
    }

    // Invalid base64 in a blob member: refused while decoding, before any key is looked at.
    let raw = server.python(
        "raw.py",
        ACCOUNT,
        SECRET,
        &[&json!({
            "target": "TrentService.Decrypt",
            "body": "{\"CiphertextBlob\": \"not*base64!\"}",
            "content_type": "application/x-amz-json-1.1",
            "signing_name": "kms",
        })
        .to_string()],
    );
    assert!(raw.status.success(), "{}", stderr(&raw));
    let r = json(&raw);
    assert_eq!(r["status"], 400);
    assert_eq!(r["json"]["__type"], "SerializationException");
    assert!(
        r["json"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Unexpected type or value in the request body"),
        "{r}"
    );

    // The CLI with a ciphertext one byte short.
    let cli = Cli { server: &server };
    let dir = tempfile::tempdir().unwrap();
    let pt = dir.path().join("p");
    std::fs::write(&pt, b"abc").unwrap();
    let enc = cli.ok(&["encrypt", "--key-id", key, "--plaintext", &fileb(&pt)]);
    let mut blob = b64decode(enc["CiphertextBlob"].as_str().unwrap());
    blob.pop();
    let ct = dir.path().join("short");
    std::fs::write(&ct, &blob).unwrap();
    let err = cli.fails(&["decrypt", "--ciphertext-blob", &fileb(&ct)]);
    assert_eq!(err, cli_error("Decrypt", "InvalidCiphertextException", ""));
}

#[test]
fn boto3_envelope_encryption_story() {
    let server = Server::dev().start();
    let out = server.python("kms_story.py", ACCOUNT, SECRET, &[]);
    assert!(
        out.status.success(),
        "kms_story.py failed: {}",
        stderr(&out)
    );
    let v = json(&out);
    let key = v["metadata"]["KeyId"].as_str().unwrap();
    assert_eq!(v["metadata"]["Arn"], arn(key));
    assert_eq!(v["metadata"]["Description"], "boto3 story");
    assert_eq!(v["metadata"]["KeyManager"], "CUSTOMER");
    assert_eq!(v["creation_date_is_datetime"], true);
    assert_eq!(v["data_key_len"], 32);
    assert_eq!(v["data_key_round_trip"], true);
    assert_eq!(v["decrypt_key_id"], arn(key));
    assert_eq!(v["without_plaintext_has_plaintext"], false);
    assert_eq!(v["without_plaintext_len"], 64);
    assert_eq!(v["re_encrypt_source"], arn(key));
    assert_eq!(v["re_encrypt_round_trip"], true);
    assert_eq!(
        v["tags"],
        json!([{"TagKey": "owner", "TagValue": "alice"}, {"TagKey": "team", "TagValue": "platform"}])
    );
    assert_eq!(v["policy_names"], json!(["default"]));
    assert_eq!(
        v["default_policy_principal"],
        format!("arn:aws:iam::{ACCOUNT}:root")
    );
    assert_eq!(v["rotation_enabled"], true);
    assert_eq!(v["rotation_period"], 180);
    assert_eq!(v["rotations"], json!(["ON_DEMAND", "ON_DEMAND"]));
    assert_eq!(v["old_data_key_after_rotation"], true);
    assert_eq!(v["listed_keys"], true);
    assert_eq!(
        v["aliases"],
        json!([
            "alias/page-0",
            "alias/page-1",
            "alias/page-2",
            "alias/page-3",
            "alias/story"
        ])
    );
    assert_eq!(v["aliases_of_key"], json!(["alias/story"]));
    assert_eq!(v["scheduled_state"], "PendingDeletion");
    assert_eq!(v["scheduled_window"], 7);
    assert_eq!(v["decrypt_pending_deletion"], "KMSInvalidStateException");
    assert_eq!(v["after_cancel"], "Disabled");
}

#[test]
fn keys_and_ciphertexts_survive_kill_9() {
    let server = Server::dev().start();
    let cli = Cli { server: &server };
    let dir = tempfile::tempdir().unwrap();
    let key = cli.ok(&["create-key"])["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    cli.ok(&[
        "create-alias",
        "--alias-name",
        "alias/durable",
        "--target-key-id",
        &key,
    ]);
    cli.ok(&["rotate-key-on-demand", "--key-id", &key]);
    let pt = dir.path().join("p");
    std::fs::write(&pt, b"survives a crash").unwrap();
    let enc = cli.ok(&[
        "encrypt",
        "--key-id",
        "alias/durable",
        "--plaintext",
        &fileb(&pt),
        "--encryption-context",
        "k=v",
    ]);
    let ct = dir.path().join("c");
    std::fs::write(&ct, b64decode(enc["CiphertextBlob"].as_str().unwrap())).unwrap();

    let (data_dir, _keep) = server.kill9();
    let server = Server::dev().data_dir(&data_dir).start();
    let cli = Cli { server: &server };
    let dec = cli.ok(&[
        "decrypt",
        "--ciphertext-blob",
        &fileb(&ct),
        "--encryption-context",
        "k=v",
    ]);
    assert_eq!(
        b64decode(dec["Plaintext"].as_str().unwrap()),
        b"survives a crash"
    );
    assert_eq!(dec["KeyId"], arn(&key));
    let d = cli.ok(&["describe-key", "--key-id", "alias/durable"]);
    assert_eq!(d["KeyMetadata"]["KeyId"], key);
    let rotations = cli.ok(&["list-key-rotations", "--key-id", &key]);
    assert_eq!(rotations["Rotations"].as_array().unwrap().len(), 1);
}

/// Metering: `citadel usage report` shows the account's keys and requests at AWS's prices; an
/// account root sees only its own account.
#[test]
fn usage_report_counts_requests_and_key_hours() {
    let server = Server::dev().start();
    let cli = Cli { server: &server };
    let key = cli.ok(&["create-key"])["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    for _ in 0..4 {
        cli.ok(&["encrypt", "--key-id", &key, "--plaintext", "eA=="]);
    }
    cli.ok(&["generate-random", "--number-of-bytes", "8"]);

    let out = server.usage(&["report", "--json"], (ACCOUNT, SECRET));
    assert!(out.status.success(), "{}", stderr(&out));
    let report = json(&out);
    let accounts = report["Accounts"].as_array().unwrap();
    assert_eq!(accounts.len(), 1, "{report}");
    let a = &accounts[0];
    assert_eq!(a["Account"], ACCOUNT);
    let encrypts: u64 = a["Requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["KeyId"] == key.as_str() && r["Operation"] == "Encrypt")
        .map(|r| r["Count"].as_u64().unwrap())
        .sum();
    assert_eq!(encrypts, 4);
    // CreateKey is free: 4 Encrypt + 1 GenerateRandom.
    assert_eq!(a["BillableRequests"], 5);
    let k = a["Keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["KeyId"] == key.as_str())
        .unwrap();
    assert_eq!(k["KeyManager"], "CUSTOMER");
    assert_eq!(k["Hours"], 1);
    assert!(a["TotalUsd"].as_f64().unwrap() > 0.0);

    // The text form, and another account's root seeing nothing of this one.
    let out = server.usage(&["report"], (ACCOUNT, SECRET));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(text.contains(&key) && text.contains("Encrypt"), "{text}");
    let out = server.usage(&["report", "--json"], ("444455556666", SECRET));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(ACCOUNT));
    // A malformed month is refused.
    let out = server.usage(&["report", "--month", "2026-13"], (ACCOUNT, SECRET));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("Invalid month"), "{}", stderr(&out));
}
