//! Multi-Region secrets against the real binary with the real `aws` CLI (`--region`): a replica
//! created with the secret serves its value in the other Region and follows every write of the
//! primary at once, refuses writes itself, and the disaster-recovery story — promote the
//! replica, lose the primary, keep serving and writing in the replica's Region — plus
//! remove-regions-from-replication and a kill -9 right after a write.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, json, stderr};
use serde_json::Value;

const ACCOUNT: &str = "111122223333";
const SECRET: &str = "dev-secret";
const PRIMARY: &str = "us-east-1";
const REPLICA: &str = "eu-west-1";
const THIRD: &str = "ap-south-1";

/// `aws secretsmanager … --region <region>` (the last `--region` wins over the helper's).
fn sm(server: &Server, region: &str, args: &[&str]) -> std::process::Output {
    let mut full = vec!["secretsmanager"];
    full.extend_from_slice(args);
    full.extend_from_slice(&["--region", region]);
    server.aws(ACCOUNT, SECRET, &full)
}

fn ok(server: &Server, region: &str, args: &[&str]) -> Value {
    let out = sm(server, region, args);
    assert!(
        out.status.success(),
        "aws {args:?} in {region} failed: {}",
        stderr(&out)
    );
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        Value::Null
    } else {
        json(&out)
    }
}

fn fails(server: &Server, region: &str, args: &[&str], code: &str, message: &str) {
    let out = sm(server, region, args);
    assert!(!out.status.success(), "aws {args:?} in {region} succeeded");
    let err = stderr(&out);
    assert!(err.contains(&format!("({code})")), "{err}");
    assert!(err.contains(message), "{err}");
}

fn value(server: &Server, region: &str, id: &str) -> String {
    ok(server, region, &["get-secret-value", "--secret-id", id])["SecretString"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn status(server: &Server, id: &str, region: &str) -> Value {
    let d = ok(server, PRIMARY, &["describe-secret", "--secret-id", id]);
    d["ReplicationStatus"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|s| s["Region"] == region)
        .cloned()
        .unwrap_or(Value::Null)
}

#[test]
fn replicas_follow_the_primary_and_survive_its_loss() {
    let server = Server::dev().start();
    let out = ok(
        &server,
        PRIMARY,
        &[
            "create-secret",
            "--name",
            "app/db",
            "--secret-string",
            "v1",
            "--add-replica-regions",
            &format!("Region={REPLICA}"),
        ],
    );
    let arn = out["ARN"].as_str().unwrap().to_owned();
    assert_eq!(out["ReplicationStatus"][0]["Status"], "InSync");
    assert_eq!(value(&server, REPLICA, "app/db"), "v1");
    let replica = ok(
        &server,
        REPLICA,
        &["describe-secret", "--secret-id", "app/db"],
    );
    assert_eq!(replica["ARN"], arn.replace(PRIMARY, REPLICA));
    assert_eq!(replica["PrimaryRegion"], PRIMARY);

    // A write of the primary is in the replica when it is acknowledged.
    ok(
        &server,
        PRIMARY,
        &[
            "put-secret-value",
            "--secret-id",
            "app/db",
            "--secret-string",
            "v2",
        ],
    );
    assert_eq!(value(&server, REPLICA, "app/db"), "v2");
    let primary = ok(
        &server,
        PRIMARY,
        &["describe-secret", "--secret-id", "app/db"],
    );
    let replica = ok(
        &server,
        REPLICA,
        &["describe-secret", "--secret-id", "app/db"],
    );
    assert_eq!(primary["VersionIdsToStages"], replica["VersionIdsToStages"]);
    assert_eq!(primary["PrimaryRegion"], PRIMARY);
    assert_eq!(status(&server, "app/db", REPLICA)["Status"], "InSync");

    // The replica is read-only.
    let not_here = "Operation not permitted on a replica secret. Call must be made in primary secret's region.";
    fails(
        &server,
        REPLICA,
        &[
            "put-secret-value",
            "--secret-id",
            "app/db",
            "--secret-string",
            "x",
        ],
        "InvalidParameterException",
        not_here,
    );
    fails(
        &server,
        REPLICA,
        &["delete-secret", "--secret-id", "app/db"],
        "InvalidParameterException",
        not_here,
    );
    // The primary cannot go while it has replicas.
    fails(
        &server,
        PRIMARY,
        &[
            "delete-secret",
            "--secret-id",
            "app/db",
            "--force-delete-without-recovery",
        ],
        "InvalidParameterException",
        "still has replica regions",
    );

    // A second replica, then remove-regions-from-replication deletes it at once.
    let out = ok(
        &server,
        PRIMARY,
        &[
            "replicate-secret-to-regions",
            "--secret-id",
            "app/db",
            "--add-replica-regions",
            &format!("Region={THIRD}"),
        ],
    );
    assert_eq!(out["ReplicationStatus"][0]["Status"], "InSync");
    assert_eq!(value(&server, THIRD, "app/db"), "v2");
    let filtered = ok(
        &server,
        THIRD,
        &[
            "list-secrets",
            "--filters",
            &format!("Key=primary-region,Values={PRIMARY}"),
        ],
    );
    assert_eq!(filtered["SecretList"].as_array().unwrap().len(), 1);
    ok(
        &server,
        PRIMARY,
        &[
            "remove-regions-from-replication",
            "--secret-id",
            "app/db",
            "--remove-replica-regions",
            THIRD,
        ],
    );
    fails(
        &server,
        THIRD,
        &["get-secret-value", "--secret-id", "app/db"],
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    );

    // Disaster recovery: promote the replica in its Region, then lose the primary.
    ok(
        &server,
        REPLICA,
        &["stop-replication-to-replica", "--secret-id", "app/db"],
    );
    assert_eq!(status(&server, "app/db", REPLICA), Value::Null);
    ok(
        &server,
        PRIMARY,
        &[
            "delete-secret",
            "--secret-id",
            "app/db",
            "--force-delete-without-recovery",
        ],
    );
    fails(
        &server,
        PRIMARY,
        &["get-secret-value", "--secret-id", "app/db"],
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    );
    assert_eq!(value(&server, REPLICA, "app/db"), "v2");
    ok(
        &server,
        REPLICA,
        &[
            "put-secret-value",
            "--secret-id",
            "app/db",
            "--secret-string",
            "v3",
        ],
    );
    assert_eq!(value(&server, REPLICA, "app/db"), "v3");
    let promoted = ok(
        &server,
        REPLICA,
        &["describe-secret", "--secret-id", "app/db"],
    );
    assert!(promoted.get("PrimaryRegion").is_none(), "{promoted}");
}

#[test]
fn primary_and_replica_agree_after_kill_9() {
    let server = Server::dev().start();
    ok(
        &server,
        PRIMARY,
        &[
            "create-secret",
            "--name",
            "durable",
            "--secret-string",
            "v1",
            "--add-replica-regions",
            &format!("Region={REPLICA}"),
        ],
    );
    let put = ok(
        &server,
        PRIMARY,
        &[
            "put-secret-value",
            "--secret-id",
            "durable",
            "--secret-string",
            "after-crash",
        ],
    );
    let (data_dir, _keep) = server.kill9();
    let server = Server::dev().data_dir(&data_dir).start();
    for region in [PRIMARY, REPLICA] {
        let v = ok(
            &server,
            region,
            &["get-secret-value", "--secret-id", "durable"],
        );
        assert_eq!(v["SecretString"], "after-crash", "{region}");
        assert_eq!(v["VersionId"], put["VersionId"], "{region}");
    }
    let primary = ok(
        &server,
        PRIMARY,
        &["describe-secret", "--secret-id", "durable"],
    );
    let replica = ok(
        &server,
        REPLICA,
        &["describe-secret", "--secret-id", "durable"],
    );
    assert_eq!(primary["VersionIdsToStages"], replica["VersionIdsToStages"]);
    assert_eq!(status(&server, "durable", REPLICA)["Status"], "InSync");
}
