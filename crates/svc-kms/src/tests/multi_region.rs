//! Multi-Region keys: replicas in other Regions of the same account share id and material,
//! follow the primary's rotation, keep their own policy, tags and state, and the primary waits
//! for its replicas to be deleted.

use super::*;

const EU: &str = "eu-west-1";
const AP: &str = "ap-south-1";

fn ctx_in(region: &str) -> RequestContext {
    RequestContext {
        region: region.into(),
        ..ctx(ACCOUNT)
    }
}

fn arn_in(region: &str, id: &str) -> String {
    format!("arn:aws:kms:{region}:{ACCOUNT}:key/{id}")
}

impl Harness {
    async fn call_in(&self, region: &str, op: &str, body: Value) -> Result<Value, AwsError> {
        let spec = citadel_model::kms::SPEC.operation(op).unwrap();
        let input = OperationInput::Json(Bytes::from(body.to_string()));
        match self.kms.handle(&ctx_in(region), spec, input).await? {
            OperationOutput::Json(v) => Ok(v),
            other => panic!("unexpected output {other:?}"),
        }
    }

    async fn ok_in(&self, region: &str, op: &str, body: Value) -> Value {
        match self.call_in(region, op, body).await {
            Ok(v) => v,
            Err(e) => panic!("{op} in {region} failed: {e}"),
        }
    }

    async fn err_in(&self, region: &str, op: &str, body: Value) -> AwsError {
        match self.call_in(region, op, body).await {
            Ok(v) => panic!("{op} in {region} unexpectedly succeeded: {v}"),
            Err(e) => e,
        }
    }

    async fn create_mrk(&self) -> String {
        let v = self
            .ok(
                "CreateKey",
                json!({"MultiRegion": true, "Description": "primary", "Tags": [{"TagKey": "site", "TagValue": "us"}]}),
            )
            .await;
        v["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned()
    }

    async fn metadata_in(&self, region: &str, id: &str) -> Value {
        self.ok_in(region, "DescribeKey", json!({"KeyId": id}))
            .await["KeyMetadata"]
            .clone()
    }

    async fn encrypt_in(&self, region: &str, id: &str, plaintext: &[u8]) -> String {
        self.ok_in(
            region,
            "Encrypt",
            json!({"KeyId": id, "Plaintext": b64(plaintext)}),
        )
        .await["CiphertextBlob"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn decrypt_in(&self, region: &str, blob: &str, key_id: Option<&str>) -> Vec<u8> {
        let mut body = json!({"CiphertextBlob": blob});
        if let Some(k) = key_id {
            body["KeyId"] = json!(k);
        }
        unb64(&self.ok_in(region, "Decrypt", body).await["Plaintext"])
    }
}

fn config_regions(m: &Value) -> (String, String, Vec<String>) {
    let c = &m["MultiRegionConfiguration"];
    let replicas = c["ReplicaKeys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["Region"].as_str().unwrap().to_owned())
        .collect();
    (
        c["MultiRegionKeyType"].as_str().unwrap().to_owned(),
        c["PrimaryKey"]["Region"].as_str().unwrap().to_owned(),
        replicas,
    )
}

#[tokio::test]
async fn multi_region_keys_replicate_with_shared_material_and_own_properties() {
    let h = harness().await;
    // Single-Region keys say so and carry no configuration.
    let single = h.create().await;
    let m = h.metadata_in(REGION, &single).await;
    assert_eq!(m["MultiRegion"], false);
    assert!(m.get("MultiRegionConfiguration").is_none());

    let id = h.create_mrk().await;
    assert!(id.starts_with("mrk-") && id.len() == 36, "{id}");
    let m = h.metadata_in(REGION, &id).await;
    assert_eq!(m["MultiRegion"], true);
    assert_eq!(
        config_regions(&m),
        ("PRIMARY".into(), REGION.into(), vec![])
    );
    assert_eq!(
        m["MultiRegionConfiguration"]["PrimaryKey"]["Arn"],
        arn_in(REGION, &id)
    );

    let v = h
        .ok(
            "ReplicateKey",
            json!({"KeyId": id, "ReplicaRegion": EU, "Description": "replica",
                   "Tags": [{"TagKey": "site", "TagValue": "eu"}]}),
        )
        .await;
    let rm = &v["ReplicaKeyMetadata"];
    assert_eq!(rm["KeyId"], id.as_str());
    assert_eq!(rm["Arn"], arn_in(EU, &id));
    assert_eq!(rm["KeyState"], "Enabled");
    assert_eq!(rm["Description"], "replica");
    assert_eq!(
        config_regions(rm),
        ("REPLICA".into(), REGION.into(), vec![EU.to_owned()])
    );
    assert_eq!(
        v["ReplicaTags"],
        json!([{"TagKey": "site", "TagValue": "eu"}])
    );
    let policy: Value = serde_json::from_str(v["ReplicaPolicy"].as_str().unwrap()).unwrap();
    assert_eq!(policy["Id"], "key-default-1");

    // Both Regions describe the whole configuration.
    for region in [REGION, EU] {
        let m = h.metadata_in(region, &id).await;
        let (_, primary, replicas) = config_regions(&m);
        assert_eq!((primary.as_str(), replicas), (REGION, vec![EU.to_owned()]));
        assert_eq!(m["CurrentKeyMaterialId"], rm["CurrentKeyMaterialId"]);
    }

    // Same material: what one Region encrypts the other decrypts, with or without KeyId.
    let blob = h.encrypt_in(REGION, &id, b"across regions").await;
    assert_eq!(h.decrypt_in(EU, &blob, None).await, b"across regions");
    assert_eq!(
        h.decrypt_in(EU, &blob, Some(&arn_in(EU, &id))).await,
        b"across regions"
    );
    let blob = h.encrypt_in(EU, &id, b"back").await;
    assert_eq!(h.decrypt_in(REGION, &blob, Some(&id)).await, b"back");

    // Per-Region properties: tags, description, aliases, enabled state.
    let tags = |v: Value| v["Tags"].clone();
    assert_eq!(
        tags(h.ok("ListResourceTags", json!({"KeyId": id})).await),
        json!([{"TagKey": "site", "TagValue": "us"}])
    );
    h.ok_in(
        EU,
        "CreateAlias",
        json!({"AliasName": "alias/eu-only", "TargetKeyId": id}),
    )
    .await;
    assert_eq!(
        h.err("DescribeKey", json!({"KeyId": "alias/eu-only"}))
            .await
            .code,
        "NotFoundException"
    );
    h.ok_in(EU, "DisableKey", json!({"KeyId": id})).await;
    assert_eq!(h.metadata_in(REGION, &id).await["KeyState"], "Enabled");
    assert_eq!(h.metadata_in(EU, &id).await["KeyState"], "Disabled");
    h.ok_in(EU, "EnableKey", json!({"KeyId": id})).await;
    assert_eq!(h.metadata_in(REGION, &id).await["Description"], "primary");

    // A second replica shows up everywhere.
    h.ok("ReplicateKey", json!({"KeyId": id, "ReplicaRegion": AP}))
        .await;
    for region in [REGION, EU, AP] {
        let (_, _, mut replicas) = config_regions(&h.metadata_in(region, &id).await);
        replicas.sort();
        assert_eq!(replicas, vec![AP.to_owned(), EU.to_owned()], "{region}");
    }
    let blob = h.encrypt_in(AP, &id, b"third").await;
    assert_eq!(h.decrypt_in(EU, &blob, None).await, b"third");
}

#[tokio::test]
async fn replicate_key_refuses_what_aws_refuses() {
    let h = harness().await;
    let single = h.create().await;
    let e = h
        .err(
            "ReplicateKey",
            json!({"KeyId": single, "ReplicaRegion": EU}),
        )
        .await;
    assert_eq!(e.code, "UnsupportedOperationException");
    assert_eq!(
        e.message.unwrap(),
        format!("{} is not a multi-region primary key.", arn(&single))
    );

    let id = h.create_mrk().await;
    let e = h
        .err(
            "ReplicateKey",
            json!({"KeyId": id, "ReplicaRegion": REGION}),
        )
        .await;
    assert_eq!(e.code, "AlreadyExistsException");
    h.ok("ReplicateKey", json!({"KeyId": id, "ReplicaRegion": EU}))
        .await;
    let e = h
        .err("ReplicateKey", json!({"KeyId": id, "ReplicaRegion": EU}))
        .await;
    assert_eq!(e.code, "AlreadyExistsException");
    // A replica cannot be replicated.
    let e = h
        .err_in(
            EU,
            "ReplicateKey",
            json!({"KeyId": id, "ReplicaRegion": AP}),
        )
        .await;
    assert_eq!(e.code, "UnsupportedOperationException");
    assert_eq!(
        e.message.unwrap(),
        format!("{} is not a multi-region primary key.", arn_in(EU, &id))
    );
    for bad in ["Europe", "eu-west", "eu-west-1a"] {
        let e = h
            .err("ReplicateKey", json!({"KeyId": id, "ReplicaRegion": bad}))
            .await;
        assert_eq!(e.code, "ValidationException", "{bad}");
    }
    // The replica's policy is checked like CreateKey's.
    let e = h
        .err(
            "ReplicateKey",
            json!({"KeyId": id, "ReplicaRegion": AP, "Policy": "not json"}),
        )
        .await;
    assert_eq!(e.code, "MalformedPolicyDocumentException");
    // Nothing was left behind by the refusals.
    let (_, _, replicas) = config_regions(&h.metadata_in(REGION, &id).await);
    assert_eq!(replicas, vec![EU.to_owned()]);
    assert_eq!(
        h.err_in(AP, "DescribeKey", json!({"KeyId": id})).await.code,
        "NotFoundException"
    );
}

#[tokio::test]
async fn rotation_belongs_to_the_primary_and_reaches_every_replica() {
    let h = harness().await;
    let id = h.create_mrk().await;
    h.ok("ReplicateKey", json!({"KeyId": id, "ReplicaRegion": EU}))
        .await;
    let old_blob = h.encrypt_in(EU, &id, b"before").await;

    for op in [
        "EnableKeyRotation",
        "DisableKeyRotation",
        "RotateKeyOnDemand",
    ] {
        let e = h.err_in(EU, op, json!({"KeyId": id})).await;
        assert_eq!(e.code, "UnsupportedOperationException", "{op}");
    }

    h.ok("RotateKeyOnDemand", json!({"KeyId": id})).await;
    let us = h.metadata_in(REGION, &id).await;
    let eu = h.metadata_in(EU, &id).await;
    assert_eq!(us["CurrentKeyMaterialId"], eu["CurrentKeyMaterialId"]);
    let rotations = h.ok_in(EU, "ListKeyRotations", json!({"KeyId": id})).await;
    assert_eq!(rotations["Rotations"].as_array().unwrap().len(), 1);
    let blob = h.encrypt_in(EU, &id, b"after").await;
    assert_eq!(h.decrypt_in(REGION, &blob, None).await, b"after");
    assert_eq!(h.decrypt_in(REGION, &old_blob, None).await, b"before");

    // Automatic rotation: the status shows in the replica, and only the primary is scheduled.
    h.ok(
        "EnableKeyRotation",
        json!({"KeyId": id, "RotationPeriodInDays": 90}),
    )
    .await;
    let status = h
        .ok_in(EU, "GetKeyRotationStatus", json!({"KeyId": id}))
        .await;
    assert_eq!(status["KeyRotationEnabled"], true);
    assert_eq!(status["RotationPeriodInDays"], 90);
    h.clock.advance(Duration::days(91));
    let report = h.kms.run_due(h.now()).await.unwrap();
    assert_eq!(report.rotated, vec![arn(&id)]);
    let us = h.metadata_in(REGION, &id).await;
    let eu = h.metadata_in(EU, &id).await;
    assert_eq!(us["CurrentKeyMaterialId"], eu["CurrentKeyMaterialId"]);
    let blob = h.encrypt_in(EU, &id, b"automatic").await;
    assert_eq!(h.decrypt_in(REGION, &blob, None).await, b"automatic");
    let rotations = h.ok_in(EU, "ListKeyRotations", json!({"KeyId": id})).await;
    assert_eq!(rotations["Rotations"].as_array().unwrap().len(), 2);

    // A replica created after rotations has every material.
    h.ok("ReplicateKey", json!({"KeyId": id, "ReplicaRegion": AP}))
        .await;
    assert_eq!(h.decrypt_in(AP, &old_blob, None).await, b"before");
    assert_eq!(h.decrypt_in(AP, &blob, None).await, b"automatic");
}

#[tokio::test]
async fn update_primary_region_swaps_the_roles() {
    let h = harness().await;
    let id = h.create_mrk().await;
    h.ok("ReplicateKey", json!({"KeyId": id, "ReplicaRegion": EU}))
        .await;
    h.ok("EnableKeyRotation", json!({"KeyId": id})).await;

    let e = h
        .err(
            "UpdatePrimaryRegion",
            json!({"KeyId": id, "PrimaryRegion": AP}),
        )
        .await;
    assert_eq!(e.code, "NotFoundException");
    assert_eq!(
        e.message.unwrap(),
        format!("Key '{}' does not exist", arn_in(AP, &id))
    );
    let e = h
        .err_in(
            EU,
            "UpdatePrimaryRegion",
            json!({"KeyId": id, "PrimaryRegion": REGION}),
        )
        .await;
    assert_eq!(e.code, "UnsupportedOperationException");
    let single = h.create().await;
    let e = h
        .err(
            "UpdatePrimaryRegion",
            json!({"KeyId": single, "PrimaryRegion": EU}),
        )
        .await;
    assert_eq!(e.code, "UnsupportedOperationException");

    h.ok(
        "UpdatePrimaryRegion",
        json!({"KeyId": id, "PrimaryRegion": EU}),
    )
    .await;
    assert_eq!(
        config_regions(&h.metadata_in(REGION, &id).await),
        ("REPLICA".into(), EU.into(), vec![REGION.to_owned()])
    );
    assert_eq!(
        config_regions(&h.metadata_in(EU, &id).await),
        ("PRIMARY".into(), EU.into(), vec![REGION.to_owned()])
    );
    // The new primary rotates and replicates; the old one no longer may.
    let e = h.err("RotateKeyOnDemand", json!({"KeyId": id})).await;
    assert_eq!(e.code, "UnsupportedOperationException");
    h.ok_in(EU, "RotateKeyOnDemand", json!({"KeyId": id})).await;
    let blob = h.encrypt_in(EU, &id, b"new primary").await;
    assert_eq!(h.decrypt_in(REGION, &blob, None).await, b"new primary");
    h.ok_in(
        EU,
        "ReplicateKey",
        json!({"KeyId": id, "ReplicaRegion": AP}),
    )
    .await;
    let (_, primary, mut replicas) = config_regions(&h.metadata_in(REGION, &id).await);
    replicas.sort();
    assert_eq!(primary, EU);
    assert_eq!(replicas, vec![AP.to_owned(), REGION.to_owned()]);

    // The automatic schedule moved with the primary role.
    h.clock.advance(Duration::days(366));
    let report = h.kms.run_due(h.now()).await.unwrap();
    assert_eq!(report.rotated, vec![arn_in(EU, &id)]);
}

#[tokio::test]
async fn a_primary_waits_for_its_replicas_before_its_own_deletion() {
    let h = harness().await;
    let id = h.create_mrk().await;
    h.ok("ReplicateKey", json!({"KeyId": id, "ReplicaRegion": EU}))
        .await;

    let v = h
        .ok(
            "ScheduleKeyDeletion",
            json!({"KeyId": id, "PendingWindowInDays": 7}),
        )
        .await;
    assert_eq!(v["KeyState"], "PendingReplicaDeletion");
    assert!(v.get("DeletionDate").is_none());
    let m = h.metadata_in(REGION, &id).await;
    assert_eq!(m["KeyState"], "PendingReplicaDeletion");
    assert_eq!(m["PendingDeletionWindowInDays"], 7);
    assert!(m.get("DeletionDate").is_none());

    // Waiting for its replicas, it can be neither replicated nor moved.
    let e = h
        .err("ReplicateKey", json!({"KeyId": id, "ReplicaRegion": AP}))
        .await;
    assert_eq!(
        (e.code.as_ref(), e.message.unwrap()),
        (
            "KMSInvalidStateException",
            format!("{} is pending replica deletion.", arn(&id))
        )
    );
    let e = h
        .err(
            "UpdatePrimaryRegion",
            json!({"KeyId": id, "PrimaryRegion": EU}),
        )
        .await;
    assert_eq!(e.code, "KMSInvalidStateException");
    // Cancelling leaves it disabled, as for any key.
    h.ok("CancelKeyDeletion", json!({"KeyId": id})).await;
    assert_eq!(h.metadata_in(REGION, &id).await["KeyState"], "Disabled");
    h.ok(
        "ScheduleKeyDeletion",
        json!({"KeyId": id, "PendingWindowInDays": 10}),
    )
    .await;

    let v = h
        .ok_in(
            EU,
            "ScheduleKeyDeletion",
            json!({"KeyId": id, "PendingWindowInDays": 7}),
        )
        .await;
    assert_eq!(v["KeyState"], "PendingDeletion");
    h.clock.advance(Duration::days(8));
    let report = h.kms.run_due(h.now()).await.unwrap();
    assert_eq!(report.deleted, vec![arn_in(EU, &id)]);
    assert_eq!(
        h.err_in(EU, "DescribeKey", json!({"KeyId": id})).await.code,
        "NotFoundException"
    );
    // The primary's own waiting period has started now.
    let m = h.metadata_in(REGION, &id).await;
    assert_eq!(m["KeyState"], "PendingDeletion");
    assert!(m.get("DeletionDate").is_some());
    assert_eq!(config_regions(&m).2, Vec::<String>::new());
    h.clock.advance(Duration::days(11));
    let report = h.kms.run_due(h.now()).await.unwrap();
    assert_eq!(report.deleted, vec![arn(&id)]);

    // A replica may be deleted and recreated in the same Region.
    let id = h.create_mrk().await;
    h.ok("ReplicateKey", json!({"KeyId": id, "ReplicaRegion": EU}))
        .await;
    h.ok_in(
        EU,
        "ScheduleKeyDeletion",
        json!({"KeyId": id, "PendingWindowInDays": 7}),
    )
    .await;
    // While it waits, the Region still holds a replica.
    let e = h
        .err("ReplicateKey", json!({"KeyId": id, "ReplicaRegion": EU}))
        .await;
    assert_eq!(e.code, "AlreadyExistsException");
    h.clock.advance(Duration::days(8));
    h.kms.run_due(h.now()).await.unwrap();
    assert_eq!(
        h.metadata_in(REGION, &id).await["KeyState"],
        "Enabled",
        "a primary not pending deletion stays as it was"
    );
    h.ok("ReplicateKey", json!({"KeyId": id, "ReplicaRegion": EU}))
        .await;
    let blob = h.encrypt_in(REGION, &id, b"again").await;
    assert_eq!(h.decrypt_in(EU, &blob, None).await, b"again");
}

#[tokio::test]
async fn replication_is_authorized_by_the_primary_policy_with_the_replica_region() {
    let h = harness().await;
    let root = |region: &str| RequestContext {
        region: region.into(),
        ..prod_ctx(ACCOUNT)
    };
    // The primary's policy lets the account do everything except replicate to ap-south-1.
    let policy = format!(
        r#"{{"Version":"2012-10-17","Statement":[
            {{"Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCOUNT}:root"}},"Action":"kms:*","Resource":"*"}},
            {{"Effect":"Deny","Principal":{{"AWS":"*"}},"Action":"kms:ReplicateKey","Resource":"*",
              "Condition":{{"StringEquals":{{"kms:ReplicaRegion":"{AP}"}}}}}}]}}"#
    );
    let created = h
        .call_ctx(
            &root(REGION),
            "CreateKey",
            json!({"MultiRegion": true, "Policy": policy}),
        )
        .await
        .unwrap();
    let id = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let e = h
        .call_ctx(
            &root(REGION),
            "ReplicateKey",
            json!({"KeyId": id, "ReplicaRegion": AP}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    h.call_ctx(
        &root(REGION),
        "ReplicateKey",
        json!({"KeyId": id, "ReplicaRegion": EU}),
    )
    .await
    .unwrap();
    // The replica got the default policy, not the primary's: replicating it is not denied by
    // the primary's statement but refused because it is a replica.
    let p = h
        .call_ctx(&root(EU), "GetKeyPolicy", json!({"KeyId": id}))
        .await
        .unwrap();
    assert!(!p["Policy"].as_str().unwrap().contains("Deny"));
    // The replica's own policy must pass the lockout check in its Region.
    let alice_only = policy_for(&format!("arn:aws:iam::{ACCOUNT}:user/alice"));
    let e = h
        .call_ctx(
            &root(REGION),
            "ReplicateKey",
            json!({"KeyId": id, "ReplicaRegion": "us-west-2", "Policy": alice_only}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "MalformedPolicyDocumentException");
}
