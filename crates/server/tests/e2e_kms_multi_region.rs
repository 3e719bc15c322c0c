//! Multi-Region KMS keys against the real binary in `--dev` mode: the `aws` CLI with `--region`
//! and boto3 clients of two Regions (`tests/clients/kms_multi_region.py`) on one endpoint.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, json, stderr};
use serde_json::{Value, json};

const ACCOUNT: &str = "111122223333";
const SECRET: &str = "dev-secret";

fn arn(region: &str, id: &str) -> String {
    format!("arn:aws:kms:{region}:{ACCOUNT}:key/{id}")
}

/// `aws kms …` in `region` (the last `--region` given to the CLI wins).
fn kms(server: &Server, region: &str, args: &[&str]) -> std::process::Output {
    let mut full = vec!["kms"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--region", region]);
    server.aws(ACCOUNT, SECRET, &full)
}

fn kms_ok(server: &Server, region: &str, args: &[&str]) -> Value {
    let out = kms(server, region, args);
    assert!(
        out.status.success(),
        "aws kms {args:?} in {region} failed: {}",
        stderr(&out)
    );
    if out.stdout.is_empty() {
        Value::Null
    } else {
        json(&out)
    }
}

#[test]
fn multi_region_keys_with_the_aws_cli() {
    let server = Server::dev().start();
    let created = kms_ok(
        &server,
        "us-east-1",
        &["create-key", "--multi-region", "--description", "cli mrk"],
    );
    let m = &created["KeyMetadata"];
    let id = m["KeyId"].as_str().unwrap().to_owned();
    assert!(id.starts_with("mrk-") && id.len() == 36, "{id}");
    assert_eq!(m["MultiRegion"], true);
    assert_eq!(
        m["MultiRegionConfiguration"]["MultiRegionKeyType"],
        "PRIMARY"
    );

    let replicated = kms_ok(
        &server,
        "us-east-1",
        &[
            "replicate-key",
            "--key-id",
            &id,
            "--replica-region",
            "eu-west-1",
        ],
    );
    assert_eq!(
        replicated["ReplicaKeyMetadata"]["Arn"],
        arn("eu-west-1", &id)
    );
    for region in ["us-east-1", "eu-west-1"] {
        let d = kms_ok(&server, region, &["describe-key", "--key-id", &id]);
        let c = &d["KeyMetadata"]["MultiRegionConfiguration"];
        assert_eq!(c["PrimaryKey"]["Arn"], arn("us-east-1", &id), "{region}");
        assert_eq!(
            c["ReplicaKeys"],
            json!([{"Arn": arn("eu-west-1", &id), "Region": "eu-west-1"}]),
            "{region}"
        );
    }

    // Encrypt in us-east-1, decrypt in eu-west-1 naming the replica's ARN.
    let dir = tempfile::tempdir().unwrap();
    let plain = dir.path().join("plain.txt");
    std::fs::write(&plain, b"cli across regions").unwrap();
    let enc = kms_ok(
        &server,
        "us-east-1",
        &[
            "encrypt",
            "--key-id",
            &id,
            "--plaintext",
            &format!("fileb://{}", plain.display()),
        ],
    );
    // The CLI prints blobs in base64; `fileb://` wants the raw bytes (coreutils decodes).
    let b64_path = dir.path().join("blob.b64");
    std::fs::write(&b64_path, enc["CiphertextBlob"].as_str().unwrap()).unwrap();
    let raw = std::process::Command::new("base64")
        .arg("-d")
        .arg(&b64_path)
        .output()
        .unwrap();
    assert!(raw.status.success());
    let blob_path = dir.path().join("blob.bin");
    std::fs::write(&blob_path, raw.stdout).unwrap();
    let dec = kms_ok(
        &server,
        "eu-west-1",
        &[
            "decrypt",
            "--key-id",
            &arn("eu-west-1", &id),
            "--ciphertext-blob",
            &format!("fileb://{}", blob_path.display()),
            "--query",
            "KeyId",
        ],
    );
    assert_eq!(dec, json!(arn("eu-west-1", &id)));

    // Rotation settings belong to the primary.
    let out = kms(
        &server,
        "eu-west-1",
        &["enable-key-rotation", "--key-id", &id],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("UnsupportedOperationException"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn multi_region_keys_with_boto3_in_two_regions() {
    let server = Server::dev().start();
    let out = server.python("kms_multi_region.py", ACCOUNT, SECRET, &[]);
    assert!(
        out.status.success(),
        "kms_multi_region.py failed: {}\n{}",
        stderr(&out),
        server.log()
    );
    let v = json(&out);
    let id = v["key_id"].as_str().unwrap();
    let us = arn("us-east-1", id);
    let eu = arn("eu-west-1", id);
    assert_eq!(v["primary_multi_region"], true);
    assert_eq!(
        v["primary_config"],
        json!({"type": "PRIMARY", "primary": "us-east-1", "primary_arn": us, "replicas": []})
    );
    assert_eq!(v["replica_arn"], eu.as_str());
    assert_eq!(v["replica_state"], "Enabled");
    let as_replica = json!({"type": "REPLICA", "primary": "us-east-1", "primary_arn": us, "replicas": ["eu-west-1"]});
    assert_eq!(v["replica_config"], as_replica);
    assert_eq!(v["describe_eu"], as_replica);
    assert_eq!(
        v["describe_us"],
        json!({"type": "PRIMARY", "primary": "us-east-1", "primary_arn": us, "replicas": ["eu-west-1"]})
    );
    assert_eq!(
        v["replica_tags"],
        json!([{"TagKey": "site", "TagValue": "eu"}])
    );
    assert_eq!(v["replica_policy_id"], "key-default-1");

    assert_eq!(v["eu_decrypts_us"], "from us-east-1");
    assert_eq!(v["eu_decrypt_key_id"], eu.as_str());
    assert_eq!(v["alias_in_us"], "NotFoundException");
    assert_eq!(v["tags_us"], json!([{"TagKey": "site", "TagValue": "us"}]));
    assert_eq!(v["tags_eu"], json!([{"TagKey": "site", "TagValue": "eu"}]));
    assert_eq!(v["description_us"], "primary");
    assert_eq!(v["description_eu"], "replica");
    assert_eq!(v["state_after_eu_disable"], json!(["Enabled", "Disabled"]));

    assert_eq!(
        v["replica_enable_rotation"]["code"],
        "UnsupportedOperationException"
    );
    assert_eq!(v["material_ids_match"], true);
    assert_eq!(v["us_decrypts_eu_after_rotation"], "after rotation");
    assert_eq!(v["replicate_again"], "AlreadyExistsException");
    assert_eq!(
        v["replicate_replica"],
        json!({"code": "UnsupportedOperationException",
               "message": format!("{eu} is not a multi-region primary key.")})
    );

    assert_eq!(
        v["after_update_us"],
        json!({"type": "REPLICA", "primary": "eu-west-1", "primary_arn": eu, "replicas": ["us-east-1"]})
    );
    assert_eq!(
        v["after_update_eu"],
        json!({"type": "PRIMARY", "primary": "eu-west-1", "primary_arn": eu, "replicas": ["us-east-1"]})
    );

    assert_eq!(v["primary_deletion_state"], "PendingReplicaDeletion");
    assert_eq!(v["primary_deletion_date"], false);
    assert_eq!(v["primary_window"], 7);
    assert_eq!(v["replica_deletion_state"], "PendingDeletion");
    assert_eq!(v["state_after_cancel"], "Disabled");
}
