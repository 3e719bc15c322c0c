//! Multi-Region secrets: replicas in another Region of the same store, kept in step by the
//! primary's writes, refusing writes themselves, promoted by StopReplicationToReplica.

use super::*;

const EU: &str = "eu-west-1";
const AP: &str = "ap-south-1";
const NOT_ON_REPLICA: &str =
    "Operation not permitted on a replica secret. Call must be made in primary secret's region.";

fn ctx_in(region: &str) -> RequestContext {
    RequestContext {
        region: region.into(),
        ..ctx(ACCOUNT)
    }
}

impl Harness {
    async fn ok_in(&self, region: &str, op: &str, body: Value) -> Value {
        self.call_ctx(&ctx_in(region), op, body.clone())
            .await
            .unwrap_or_else(|e| panic!("{op} {body} in {region} failed: {e}"))
    }
    async fn err_in(&self, region: &str, op: &str, body: Value) -> AwsError {
        match self.call_ctx(&ctx_in(region), op, body.clone()).await {
            Ok(v) => panic!("{op} {body} in {region} unexpectedly succeeded: {v}"),
            Err(e) => e,
        }
    }
    async fn value_in(&self, region: &str, id: &str) -> String {
        self.ok_in(region, "GetSecretValue", json!({"SecretId": id}))
            .await["SecretString"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    async fn kms_in(&self, region: &str, op: &str, body: Value) -> Value {
        let spec = citadel_model::kms::SPEC.operation(op).unwrap();
        let input = OperationInput::Json(Bytes::from(serde_json::to_vec(&body).unwrap()));
        match self.kms.handle(&ctx_in(region), spec, input).await.unwrap() {
            OperationOutput::Json(v) => v,
            other => panic!("{other:?}"),
        }
    }
}

fn status_of(describe: &Value, region: &str) -> Value {
    describe["ReplicationStatus"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Region"] == region)
        .cloned()
        .unwrap_or(Value::Null)
}

#[tokio::test]
async fn a_replica_follows_every_write_of_its_primary_at_once() {
    let h = harness().await;
    let out = h
        .ok(
            "CreateSecret",
            json!({"Name": "app/db", "SecretString": "v1", "ClientRequestToken": token(1),
                   "Tags": [{"Key": "team", "Value": "a"}],
                   "AddReplicaRegions": [{"Region": EU}]}),
        )
        .await;
    assert_eq!(out["ReplicationStatus"][0]["Region"], EU);
    assert_eq!(out["ReplicationStatus"][0]["Status"], "InSync");
    assert_eq!(
        out["ReplicationStatus"][0]["KmsKeyId"],
        "alias/aws/secretsmanager"
    );
    let arn = out["ARN"].as_str().unwrap().to_owned();
    let replica_arn = arn.replace(REGION, EU);

    // The replica: same name and suffix, its Region's ARN, the value, the labels.
    let r = h
        .ok_in(EU, "GetSecretValue", json!({"SecretId": "app/db"}))
        .await;
    assert_eq!(r["SecretString"], "v1");
    assert_eq!(r["ARN"], replica_arn);
    assert_eq!(r["VersionId"], token(1));
    let d = h
        .ok_in(EU, "DescribeSecret", json!({"SecretId": replica_arn}))
        .await;
    assert_eq!(d["PrimaryRegion"], REGION);
    assert!(d.get("ReplicationStatus").is_none());
    assert_eq!(d["Tags"], json!([{"Key": "team", "Value": "a"}]));

    // PutSecretValue on the primary: the replica has the new AWSCURRENT immediately.
    h.ok(
        "PutSecretValue",
        json!({"SecretId": "app/db", "SecretString": "v2", "ClientRequestToken": token(2)}),
    )
    .await;
    assert_eq!(h.value_in(EU, "app/db").await, "v2");
    let prev = h
        .ok_in(
            EU,
            "GetSecretValue",
            json!({"SecretId": "app/db", "VersionStage": AWSPREVIOUS}),
        )
        .await;
    assert_eq!(prev["SecretString"], "v1");

    // UpdateSecret (value and description), label moves and tags follow too.
    h.ok(
        "UpdateSecret",
        json!({"SecretId": "app/db", "SecretString": "v3", "Description": "the db",
               "ClientRequestToken": token(3)}),
    )
    .await;
    h.ok(
        "UpdateSecretVersionStage",
        json!({"SecretId": "app/db", "VersionStage": "blue", "MoveToVersionId": token(1)}),
    )
    .await;
    h.ok(
        "TagResource",
        json!({"SecretId": "app/db", "Tags": [{"Key": "env", "Value": "prod"}]}),
    )
    .await;
    let primary = h.ok("DescribeSecret", json!({"SecretId": "app/db"})).await;
    let replica = h
        .ok_in(EU, "DescribeSecret", json!({"SecretId": "app/db"}))
        .await;
    assert_eq!(primary["VersionIdsToStages"], replica["VersionIdsToStages"]);
    assert_eq!(replica["Description"], "the db");
    assert_eq!(primary["Tags"], replica["Tags"]);
    assert_eq!(h.value_in(EU, "app/db").await, "v3");
    assert_eq!(primary["PrimaryRegion"], REGION);
    let s = status_of(&primary, EU);
    assert_eq!(s["Status"], "InSync");
    // Read in eu-west-1 today: the primary shows the replica's last access.
    assert!(s["LastAccessedDate"].is_number());

    // The replica's values are sealed under eu-west-1's aws/secretsmanager, with the replica's
    // ARN in the encryption context: the primary's ciphertexts are not reused.
    let versions = h
        .ok_in(EU, "ListSecretVersionIds", json!({"SecretId": "app/db"}))
        .await;
    assert_eq!(versions["ARN"], replica_arn);
    let stored = h
        .store
        .list(&format!("secretsmanager/{ACCOUNT}/{EU}/value/"), None, 100)
        .await
        .unwrap();
    assert_eq!(stored.len(), 3);
    for (_, rec) in stored {
        let v: record::ValueRecord = serde_json::from_slice(&rec.value).unwrap();
        assert!(v.key_arn.contains(&format!(":{EU}:")), "{}", v.key_arn);
    }

    // ListSecrets' primary-region filter, seen from both Regions.
    h.create("standalone", "x", 9).await;
    let filter = json!({"Filters": [{"Key": "primary-region", "Values": [REGION]}]});
    let here = h.ok("ListSecrets", filter.clone()).await;
    assert_eq!(here["SecretList"].as_array().unwrap().len(), 1);
    assert_eq!(here["SecretList"][0]["Name"], "app/db");
    let there = h.ok_in(EU, "ListSecrets", filter).await;
    assert_eq!(there["SecretList"][0]["PrimaryRegion"], REGION);
    let none = h
        .ok(
            "ListSecrets",
            json!({"Filters": [{"Key": "primary-region", "Values": [EU]}]}),
        )
        .await;
    assert!(none["SecretList"].as_array().unwrap().is_empty());
}

#[tokio::test]
async fn writes_to_a_replica_are_refused() {
    let h = harness().await;
    h.ok(
        "CreateSecret",
        json!({"Name": "ro", "SecretString": "v", "ClientRequestToken": token(1),
               "AddReplicaRegions": [{"Region": EU}]}),
    )
    .await;
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let attempts = [
        (
            "PutSecretValue",
            json!({"SecretId": "ro", "SecretString": "x", "ClientRequestToken": token(2)}),
        ),
        (
            "UpdateSecret",
            json!({"SecretId": "ro", "Description": "d", "ClientRequestToken": token(3)}),
        ),
        ("DeleteSecret", json!({"SecretId": "ro"})),
        ("RestoreSecret", json!({"SecretId": "ro"})),
        (
            "TagResource",
            json!({"SecretId": "ro", "Tags": [{"Key": "k", "Value": "v"}]}),
        ),
        ("UntagResource", json!({"SecretId": "ro", "TagKeys": ["k"]})),
        (
            "PutResourcePolicy",
            json!({"SecretId": "ro", "ResourcePolicy": policy}),
        ),
        ("DeleteResourcePolicy", json!({"SecretId": "ro"})),
        (
            "RotateSecret",
            json!({"SecretId": "ro", "RotationLambdaARN": LAMBDA, "ClientRequestToken": token(4)}),
        ),
        ("CancelRotateSecret", json!({"SecretId": "ro"})),
        (
            "UpdateSecretVersionStage",
            json!({"SecretId": "ro", "VersionStage": "x", "MoveToVersionId": token(1)}),
        ),
        (
            "ReplicateSecretToRegions",
            json!({"SecretId": "ro", "AddReplicaRegions": [{"Region": AP}]}),
        ),
        (
            "RemoveRegionsFromReplication",
            json!({"SecretId": "ro", "RemoveReplicaRegions": [REGION]}),
        ),
    ];
    for (op, body) in attempts {
        assert_err(
            &h.err_in(EU, op, body).await,
            "InvalidParameterException",
            NOT_ON_REPLICA,
        );
    }
    assert_eq!(h.value_in(EU, "ro").await, "v");
    // Replicating to the primary's own Region is refused.
    assert_err(
        &h.err(
            "ReplicateSecretToRegions",
            json!({"SecretId": "ro", "AddReplicaRegions": [{"Region": REGION}]}),
        )
        .await,
        "InvalidParameterException",
        "Invalid replica region.",
    );
    // StopReplicationToReplica on the primary is refused.
    assert_eq!(
        h.err("StopReplicationToReplica", json!({"SecretId": "ro"}))
            .await
            .code,
        "InvalidRequestException"
    );
}

#[tokio::test]
async fn removing_replicas_deletes_them_and_then_the_primary_can_go() {
    let h = harness().await;
    let arn = h.create("multi", "v", 1).await["ARN"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = h
        .ok(
            "ReplicateSecretToRegions",
            json!({"SecretId": "multi", "AddReplicaRegions": [{"Region": EU}, {"Region": AP}]}),
        )
        .await;
    assert_eq!(out["ARN"], arn);
    assert_eq!(out["ReplicationStatus"].as_array().unwrap().len(), 2);
    assert_eq!(h.value_in(AP, "multi").await, "v");
    let e = h.err("DeleteSecret", json!({"SecretId": "multi"})).await;
    assert_err(
        &e,
        "InvalidParameterException",
        &format!("You can't delete secret {arn} that still has replica regions [{EU}, {AP}]"),
    );
    let out = h
        .ok(
            "RemoveRegionsFromReplication",
            json!({"SecretId": "multi", "RemoveReplicaRegions": [EU]}),
        )
        .await;
    assert_eq!(out["ReplicationStatus"][0]["Region"], AP);
    assert_eq!(
        h.err_in(EU, "DescribeSecret", json!({"SecretId": "multi"}))
            .await
            .code,
        "ResourceNotFoundException"
    );
    assert!(
        h.store
            .list(&format!("secretsmanager/{ACCOUNT}/{EU}/"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    // Idempotent.
    h.ok(
        "RemoveRegionsFromReplication",
        json!({"SecretId": "multi", "RemoveReplicaRegions": [EU, AP]}),
    )
    .await;
    let d = h.ok("DescribeSecret", json!({"SecretId": "multi"})).await;
    assert!(d.get("ReplicationStatus").is_none());
    assert!(d.get("PrimaryRegion").is_none());
    h.ok(
        "DeleteSecret",
        json!({"SecretId": "multi", "ForceDeleteWithoutRecovery": true}),
    )
    .await;
}

#[tokio::test]
async fn a_promoted_replica_survives_its_old_primary() {
    let h = harness().await;
    h.ok(
        "CreateSecret",
        json!({"Name": "dr", "SecretString": "v1", "ClientRequestToken": token(1),
               "AddReplicaRegions": [{"Region": EU}, {"Region": AP}]}),
    )
    .await;
    let out = h
        .ok_in(EU, "StopReplicationToReplica", json!({"SecretId": "dr"}))
        .await;
    assert!(out["ARN"].as_str().unwrap().contains(EU));
    let d = h.ok("DescribeSecret", json!({"SecretId": "dr"})).await;
    let regions: Vec<&Value> = d["ReplicationStatus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| &s["Region"])
        .collect();
    assert_eq!(regions, vec![&json!(AP)]);
    let promoted = h
        .ok_in(EU, "DescribeSecret", json!({"SecretId": "dr"}))
        .await;
    assert!(promoted.get("PrimaryRegion").is_none());
    // The old primary's writes no longer reach it.
    h.ok(
        "PutSecretValue",
        json!({"SecretId": "dr", "SecretString": "v2", "ClientRequestToken": token(2)}),
    )
    .await;
    assert_eq!(h.value_in(EU, "dr").await, "v1");
    assert_eq!(h.value_in(AP, "dr").await, "v2");
    // The disaster: the old primary goes, after its remaining replica.
    h.ok(
        "RemoveRegionsFromReplication",
        json!({"SecretId": "dr", "RemoveReplicaRegions": [AP]}),
    )
    .await;
    h.ok(
        "DeleteSecret",
        json!({"SecretId": "dr", "ForceDeleteWithoutRecovery": true}),
    )
    .await;
    assert_eq!(h.value_in(EU, "dr").await, "v1");
    h.ok_in(
        EU,
        "PutSecretValue",
        json!({"SecretId": "dr", "SecretString": "v3", "ClientRequestToken": token(3)}),
    )
    .await;
    assert_eq!(h.value_in(EU, "dr").await, "v3");
    // And it can be replicated on its own.
    h.ok_in(
        EU,
        "ReplicateSecretToRegions",
        json!({"SecretId": "dr", "AddReplicaRegions": [{"Region": REGION}]}),
    )
    .await;
    assert_eq!(h.value("dr").await, "v3");
}

#[tokio::test]
async fn a_same_named_secret_fails_the_replica_unless_overwritten() {
    let h = harness().await;
    h.create("dup", "primary", 1).await;
    let theirs = h
        .ok_in(
            EU,
            "CreateSecret",
            json!({"Name": "dup", "SecretString": "theirs", "ClientRequestToken": token(2)}),
        )
        .await;
    let out = h
        .ok(
            "ReplicateSecretToRegions",
            json!({"SecretId": "dup", "AddReplicaRegions": [{"Region": EU}]}),
        )
        .await;
    assert_eq!(out["ReplicationStatus"][0]["Status"], "Failed");
    assert_eq!(
        out["ReplicationStatus"][0]["StatusMessage"],
        format!("Replication failed: Secret name dup already exists in region {EU}.")
    );
    assert_eq!(h.value_in(EU, "dup").await, "theirs");
    // Later writes leave it alone too.
    h.ok(
        "PutSecretValue",
        json!({"SecretId": "dup", "SecretString": "p2", "ClientRequestToken": token(3)}),
    )
    .await;
    assert_eq!(h.value_in(EU, "dup").await, "theirs");
    let out = h
        .ok(
            "ReplicateSecretToRegions",
            json!({"SecretId": "dup", "AddReplicaRegions": [{"Region": EU}],
                   "ForceOverwriteReplicaSecret": true}),
        )
        .await;
    assert_eq!(out["ReplicationStatus"][0]["Status"], "InSync");
    assert_eq!(h.value_in(EU, "dup").await, "p2");
    assert_eq!(
        h.err_in(
            EU,
            "GetSecretValue",
            json!({"SecretId": theirs["ARN"].as_str().unwrap()})
        )
        .await
        .code,
        "ResourceNotFoundException"
    );
    // The overwritten secret's values are gone with it.
    let values = h
        .store
        .list(&format!("secretsmanager/{ACCOUNT}/{EU}/value/"), None, 100)
        .await
        .unwrap();
    assert_eq!(values.len(), 2);
}

#[tokio::test]
async fn a_replica_key_that_cannot_encrypt_fails_the_replica_not_the_write() {
    let h = harness().await;
    let key = h.kms_in(EU, "CreateKey", json!({})).await["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = h
        .ok(
            "CreateSecret",
            json!({"Name": "k", "SecretString": "v1", "ClientRequestToken": token(1),
                   "AddReplicaRegions": [{"Region": EU, "KmsKeyId": key}]}),
        )
        .await;
    assert_eq!(out["ReplicationStatus"][0]["Status"], "InSync");
    assert_eq!(out["ReplicationStatus"][0]["KmsKeyId"], key);
    let versions = h
        .ok_in(EU, "ListSecretVersionIds", json!({"SecretId": "k"}))
        .await;
    assert_eq!(versions["Versions"][0]["KmsKeyIds"], json!([key]));
    h.kms_in(EU, "DisableKey", json!({"KeyId": key})).await;
    // The primary write succeeds; the replica stays at its last consistent state.
    h.ok(
        "PutSecretValue",
        json!({"SecretId": "k", "SecretString": "v2", "ClientRequestToken": token(2)}),
    )
    .await;
    assert_eq!(h.value("k").await, "v2");
    let d = h.ok("DescribeSecret", json!({"SecretId": "k"})).await;
    let s = status_of(&d, EU);
    assert_eq!(s["Status"], "Failed");
    assert!(
        s["StatusMessage"]
            .as_str()
            .unwrap()
            .starts_with("Replication failed:"),
        "{s}"
    );
    // The failed replica keeps its own consistent state: the labels of the versions it has.
    let replica = h
        .ok_in(EU, "DescribeSecret", json!({"SecretId": "k"}))
        .await;
    assert_eq!(
        replica["VersionIdsToStages"],
        json!({token(1): [AWSCURRENT]})
    );
    // The key is back: the next write brings the replica in step with every version.
    h.kms_in(EU, "EnableKey", json!({"KeyId": key})).await;
    h.ok(
        "PutSecretValue",
        json!({"SecretId": "k", "SecretString": "v3", "ClientRequestToken": token(3)}),
    )
    .await;
    let d = h.ok("DescribeSecret", json!({"SecretId": "k"})).await;
    assert_eq!(status_of(&d, EU)["Status"], "InSync");
    assert_eq!(h.value_in(EU, "k").await, "v3");
    let v2 = h
        .ok_in(
            EU,
            "GetSecretValue",
            json!({"SecretId": "k", "VersionId": token(2)}),
        )
        .await;
    assert_eq!(v2["SecretString"], "v2");
}

#[tokio::test]
async fn a_rotation_of_the_primary_reaches_the_replica_and_not_its_schedule() {
    let h = harness().await;
    h.ok(
        "CreateSecret",
        json!({"Name": "rot", "SecretString": "v1", "ClientRequestToken": token(1),
               "AddReplicaRegions": [{"Region": EU}]}),
    )
    .await;
    // Staging-label moves a rotator makes through the API, and the backend's cleanup after it,
    // reach the replica; the replica never schedules work of its own.
    h.ok(
        "PutSecretValue",
        json!({"SecretId": "rot", "SecretString": "v2", "ClientRequestToken": token(2),
               "VersionStages": [AWSPENDING]}),
    )
    .await;
    assert_eq!(
        h.ok_in(
            EU,
            "GetSecretValue",
            json!({"SecretId": "rot", "VersionStage": AWSPENDING})
        )
        .await["SecretString"],
        "v2"
    );
    h.ok(
        "UpdateSecretVersionStage",
        json!({"SecretId": "rot", "VersionStage": AWSCURRENT, "MoveToVersionId": token(2),
               "RemoveFromVersionId": token(1)}),
    )
    .await;
    assert_eq!(h.value_in(EU, "rot").await, "v2");
    let due = h.store.list(record::DUE_PREFIX, None, 100).await.unwrap();
    assert!(due.iter().all(|(k, _)| !k.contains(EU)), "{due:?}");
}
