//! The audit trail against the real binary: KMS calls made with the `aws` CLI produce CloudTrail
//! records that `aws cloudtrail lookup-events` finds, without the plaintext; the trail written
//! to the data directory verifies with `citadel audit verify`, and a log file edited by hand
//! makes it fail naming that file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::{BIN, Server, b64encode, json, stderr, stdout};
use serde_json::Value;

const ACCOUNT: &str = "111122223333";
const SECRET: &str = "dev-secret";
const PLAINTEXT: &str = "the-audit-must-never-see-this-plaintext";

fn ok(server: &Server, args: &[&str]) -> Value {
    let out = server.aws(ACCOUNT, SECRET, args);
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        stderr(&out)
    );
    json(&out)
}

fn verify(data_dir: &std::path::Path) -> std::process::Output {
    Command::new(BIN)
        .args(["audit", "verify", "--data-dir"])
        .arg(data_dir)
        .env_remove("CITADEL_DATA_DIR")
        .output()
        .unwrap()
}

#[test]
fn kms_calls_are_recorded_looked_up_and_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let server = Server::dev().data_dir(&data_dir).start();

    let key = ok(&server, &["kms", "create-key", "--description", "audited"]);
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let key_arn = key["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();
    let pt = tmp.path().join("pt");
    std::fs::write(&pt, PLAINTEXT).unwrap();
    let enc = ok(
        &server,
        &[
            "kms",
            "encrypt",
            "--key-id",
            &key_id,
            "--plaintext",
            &format!("fileb://{}", pt.display()),
            "--encryption-context",
            "Project=Alpha",
        ],
    );
    let ct = tmp.path().join("ct");
    // The CLI prints the blob base64; decrypt reads raw bytes from fileb://.
    let blob = enc["CiphertextBlob"].as_str().unwrap();
    let raw = Command::new("base64")
        .arg("-d")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write as _;
            c.stdin.take().unwrap().write_all(blob.as_bytes())?;
            c.wait_with_output()
        })
        .unwrap();
    std::fs::write(&ct, raw.stdout).unwrap();
    let dec = ok(
        &server,
        &[
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &format!("fileb://{}", ct.display()),
            "--encryption-context",
            "Project=Alpha",
        ],
    );
    assert_eq!(
        dec["Plaintext"].as_str().unwrap(),
        b64encode(PLAINTEXT.as_bytes())
    );
    // A failing call is recorded too.
    let bad = server.aws(
        ACCOUNT,
        SECRET,
        &["kms", "describe-key", "--key-id", "alias/missing"],
    );
    assert!(!bad.status.success());

    // lookup-events finds the Decrypt, with AWS's record shape and no plaintext.
    let found = ok(
        &server,
        &[
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=Decrypt",
        ],
    );
    let events = found["Events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{found}");
    let event = &events[0];
    assert_eq!(event["EventName"], "Decrypt");
    assert_eq!(event["EventSource"], "kms.amazonaws.com");
    assert_eq!(event["ReadOnly"], "true");
    assert_eq!(event["Username"], "root");
    assert_eq!(event["AccessKeyId"], ACCOUNT);
    assert_eq!(event["Resources"][0]["ResourceType"], "AWS::KMS::Key");
    assert_eq!(event["Resources"][0]["ResourceName"], key_arn.as_str());
    let text = event["CloudTrailEvent"].as_str().unwrap();
    assert!(!text.contains(PLAINTEXT));
    assert!(!text.contains(&b64encode(PLAINTEXT.as_bytes())));
    let record: Value = serde_json::from_str(text).unwrap();
    assert_eq!(record["eventVersion"], "1.11");
    assert_eq!(record["eventName"], "Decrypt");
    assert_eq!(record["awsRegion"], "us-east-1");
    assert_eq!(record["userIdentity"]["type"], "Root");
    assert_eq!(record["userIdentity"]["accountId"], ACCOUNT);
    assert_eq!(
        record["requestParameters"]["encryptionContext"]["Project"],
        "Alpha"
    );
    assert_eq!(record["responseElements"], Value::Null);
    assert_eq!(record["readOnly"], true);
    assert_eq!(record["managementEvent"], true);
    assert_eq!(record["eventType"], "AwsApiCall");
    assert_eq!(record["recipientAccountId"], ACCOUNT);
    assert_eq!(record["sourceIPAddress"], "127.0.0.1");
    assert!(
        record["userAgent"]
            .as_str()
            .unwrap()
            .starts_with("aws-cli/")
    );
    assert!(record["requestID"].as_str().is_some_and(|s| !s.is_empty()));

    // The Encrypt is found by its key, with the plaintext hidden.
    let by_key = ok(
        &server,
        &[
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            &format!("AttributeKey=ResourceName,AttributeValue={key_arn}"),
        ],
    );
    let names: Vec<&str> = by_key["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["EventName"].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"Encrypt") && names.contains(&"Decrypt"),
        "{names:?}"
    );
    let encrypt = by_key["Events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["EventName"] == "Encrypt")
        .unwrap();
    let encrypt: Value =
        serde_json::from_str(encrypt["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert_eq!(
        encrypt["requestParameters"]["plaintext"],
        "HIDDEN_DUE_TO_SECURITY_REASONS"
    );

    // The failed call carries its error.
    let failed = ok(
        &server,
        &[
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=DescribeKey",
        ],
    );
    let failed: Value =
        serde_json::from_str(failed["Events"][0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
    assert_eq!(failed["errorCode"], "NotFoundException");

    // Pagination (the CLI follows NextToken itself; --max-items/--page-size exercise it) and
    // AWS's errors.
    let paged = ok(
        &server,
        &[
            "cloudtrail",
            "lookup-events",
            "--page-size",
            "1",
            "--max-items",
            "3",
        ],
    );
    assert_eq!(paged["Events"].as_array().unwrap().len(), 3, "{paged}");
    assert!(paged["NextToken"].is_string(), "{paged}");
    let two = server.aws(
        ACCOUNT,
        SECRET,
        &[
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=Decrypt",
            "AttributeKey=ReadOnly,AttributeValue=true",
        ],
    );
    assert!(
        stderr(&two).contains("InvalidLookupAttributesException"),
        "{}",
        stderr(&two)
    );
    let range = server.aws(
        ACCOUNT,
        SECRET,
        &[
            "cloudtrail",
            "lookup-events",
            "--start-time",
            "2030-01-02T00:00:00Z",
            "--end-time",
            "2030-01-01T00:00:00Z",
        ],
    );
    assert!(
        stderr(&range).contains("InvalidTimeRangeException"),
        "{}",
        stderr(&range)
    );
    // Another account sees nothing of this one.
    let other = server.aws("444455556666", SECRET, &["cloudtrail", "lookup-events"]);
    assert!(other.status.success(), "{}", stderr(&other));
    let other = json(&other);
    assert!(
        other["Events"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["EventName"] == "LookupEvents"),
        "{other}"
    );

    // The public key that signs the digests.
    let keys = ok(&server, &["cloudtrail", "list-public-keys"]);
    assert_eq!(
        keys["PublicKeyList"][0]["Fingerprint"]
            .as_str()
            .unwrap()
            .len(),
        32
    );

    // A clean shutdown finishes the log files and writes the final digests: the trail verifies.
    assert!(server.terminate().success());
    let out = verify(&data_dir);
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    assert!(
        stdout(&out).contains("digest files valid"),
        "{}",
        stdout(&out)
    );

    // Edit one log file by hand: verification fails and names it.
    let logs: Vec<_> = walk(&data_dir.join("audit/AWSLogs"))
        .into_iter()
        .filter(|p| {
            p.to_string_lossy()
                .contains(&format!("/{ACCOUNT}/CloudTrail/us-east-1/"))
                && p.extension().is_some_and(|e| e == "json")
        })
        .collect();
    assert_eq!(logs.len(), 1, "{logs:?}");
    let text = std::fs::read_to_string(&logs[0]).unwrap();
    assert!(!text.contains(PLAINTEXT));
    std::fs::write(&logs[0], text.replace("\"Decrypt\"", "\"Encrypt\"")).unwrap();
    let out = verify(&data_dir);
    assert!(!out.status.success());
    let expected = format!(
        "Log file\t{}\tINVALID: hash value doesn't match",
        logs[0].display()
    );
    assert!(
        stdout(&out).contains(&expected),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}
