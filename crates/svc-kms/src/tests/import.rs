//! Imported key material: GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial,
//! expiry by the scheduler and on-demand rotation to imported material.

use super::*;
use citadel_crypto::key_import::{WrappingAlgorithm, wrap};

const MATERIAL: [u8; 32] = [0x11; 32];
const OTHER_MATERIAL: [u8; 32] = [0x22; 32];

impl Harness {
    async fn create_external(&self) -> String {
        let v = self.ok("CreateKey", json!({"Origin": "EXTERNAL"})).await;
        let m = &v["KeyMetadata"];
        assert_eq!(m["Origin"], "EXTERNAL");
        assert_eq!(m["KeyState"], "PendingImport");
        assert_eq!(m["Enabled"], false);
        assert!(m.get("CurrentKeyMaterialId").is_none());
        assert!(m.get("ExpirationModel").is_none());
        m["KeyId"].as_str().unwrap().to_owned()
    }

    /// GetParametersForImport, then the material wrapped as a customer would: (token, wrapped).
    async fn wrapped(&self, key: &str, algorithm: &str, material: &[u8]) -> (String, String) {
        let p = self
            .ok(
                "GetParametersForImport",
                json!({"KeyId": key, "WrappingAlgorithm": algorithm, "WrappingKeySpec": "RSA_2048"}),
            )
            .await;
        let public = unb64(&p["PublicKey"]);
        let alg = WrappingAlgorithm::from_name(algorithm).unwrap();
        let w = wrap(&public, alg, material).unwrap();
        (p["ImportToken"].as_str().unwrap().to_owned(), b64(&w))
    }

    async fn import(&self, key: &str, material: &[u8], extra: Value) -> Result<Value, AwsError> {
        let (token, wrapped) = self.wrapped(key, "RSAES_OAEP_SHA_256", material).await;
        let mut body = json!({
            "KeyId": key,
            "ImportToken": token,
            "EncryptedKeyMaterial": wrapped,
            "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE",
        });
        for (k, v) in extra.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        self.call("ImportKeyMaterial", body).await
    }

    async fn state(&self, key: &str) -> Value {
        self.ok("DescribeKey", json!({"KeyId": key})).await["KeyMetadata"].clone()
    }
}

#[tokio::test]
async fn import_enables_the_key_and_every_wrapping_algorithm_works() {
    let h = harness().await;
    for alg in [
        "RSAES_OAEP_SHA_1",
        "RSAES_OAEP_SHA_256",
        "RSA_AES_KEY_WRAP_SHA_1",
        "RSA_AES_KEY_WRAP_SHA_256",
    ] {
        let key = h.create_external().await;
        let e = h
            .err("Encrypt", json!({"KeyId": key, "Plaintext": b64(b"x")}))
            .await;
        assert_eq!(e.code, "KMSInvalidStateException");
        assert_eq!(
            e.message.unwrap(),
            format!("{} is pending import.", arn(&key))
        );
        let (token, wrapped) = h.wrapped(&key, alg, &MATERIAL).await;
        let v = h
            .ok(
                "ImportKeyMaterial",
                json!({"KeyId": key, "ImportToken": token, "EncryptedKeyMaterial": wrapped,
                       "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
            )
            .await;
        assert_eq!(v["KeyId"], arn(&key), "{alg}");
        let m = h.state(&key).await;
        assert_eq!(m["KeyState"], "Enabled", "{alg}");
        assert_eq!(m["ExpirationModel"], "KEY_MATERIAL_DOES_NOT_EXPIRE");
        assert_eq!(m["CurrentKeyMaterialId"], v["KeyMaterialId"]);
        let blob = h.encrypt(&key, b"hello", json!({})).await;
        let d = h.decrypt(&blob, json!({})).await.unwrap();
        assert_eq!(unb64(&d["Plaintext"]), b"hello");
    }
}

#[tokio::test]
async fn the_same_material_gets_the_same_id_in_another_key_only_by_key_id() {
    // Material ids bind the key id: equal material in two keys has two ids.
    let h = harness().await;
    let a = h.create_external().await;
    let b = h.create_external().await;
    let ia = h.import(&a, &MATERIAL, json!({})).await.unwrap();
    let ib = h.import(&b, &MATERIAL, json!({})).await.unwrap();
    assert_ne!(ia["KeyMaterialId"], ib["KeyMaterialId"]);
    assert_eq!(ia["KeyMaterialId"].as_str().unwrap().len(), 64);
}

#[tokio::test]
async fn delete_and_reimport_restore_old_ciphertexts() {
    let h = harness().await;
    let key = h.create_external().await;
    let first = h.import(&key, &MATERIAL, json!({})).await.unwrap();
    let blob = h.encrypt(&key, b"kept", json!({"a": "b"})).await;

    let d = h
        .ok("DeleteImportedKeyMaterial", json!({"KeyId": key}))
        .await;
    assert_eq!(d["KeyId"], arn(&key));
    assert_eq!(d["KeyMaterialId"], first["KeyMaterialId"]);
    let m = h.state(&key).await;
    assert_eq!(m["KeyState"], "PendingImport");
    assert!(m.get("ExpirationModel").is_none());
    let e = h.decrypt(&blob, json!({"a": "b"})).await.unwrap_err();
    assert_eq!(e.code, "KMSInvalidStateException");
    assert_eq!(
        e.message.unwrap(),
        format!("{} is pending import.", arn(&key))
    );
    // The secret is gone from the store, yet the key still loads.
    let path = crate::record::material_path(
        ACCOUNT,
        REGION,
        &key,
        first["KeyMaterialId"].as_str().unwrap(),
    );
    assert!(h.store.get(&path).await.unwrap().is_none());
    h.kms.invalidate_all();
    assert_eq!(h.state(&key).await["KeyState"], "PendingImport");

    // Different material is refused; the same material brings the key back.
    let e = h
        .import(&key, &OTHER_MATERIAL, json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "IncorrectKeyMaterialException");
    let again = h.import(&key, &MATERIAL, json!({})).await.unwrap();
    assert_eq!(again["KeyMaterialId"], first["KeyMaterialId"]);
    assert_eq!(h.state(&key).await["KeyState"], "Enabled");
    let d = h.decrypt(&blob, json!({"a": "b"})).await.unwrap();
    assert_eq!(unb64(&d["Plaintext"]), b"kept");
    // Reimporting the present material again (to change its expiry) is fine too.
    h.import(
        &key,
        &MATERIAL,
        json!({"KeyMaterialId": first["KeyMaterialId"], "ImportType": "EXISTING_KEY_MATERIAL"}),
    )
    .await
    .unwrap();
    let e = h
        .import(
            &key,
            &OTHER_MATERIAL,
            json!({"ImportType": "EXISTING_KEY_MATERIAL"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "IncorrectKeyMaterialException");
}

#[tokio::test]
async fn tokens_are_bound_to_their_key_and_expire_after_a_day() {
    let h = harness().await;
    let a = h.create_external().await;
    let b = h.create_external().await;
    let (token_a, wrapped_a) = h.wrapped(&a, "RSAES_OAEP_SHA_256", &MATERIAL).await;
    let import = |key: &str, token: &str, wrapped: &str| {
        json!({"KeyId": key, "ImportToken": token, "EncryptedKeyMaterial": wrapped,
               "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"})
    };
    let e = h
        .err("ImportKeyMaterial", import(&b, &token_a, &wrapped_a))
        .await;
    assert_eq!(e.code, "InvalidImportTokenException");
    let e = h
        .err(
            "ImportKeyMaterial",
            import(&a, &b64(b"garbage"), &wrapped_a),
        )
        .await;
    assert_eq!(e.code, "InvalidImportTokenException");
    // A token whose bytes were altered does not verify.
    let mut raw = unb64(&json!(token_a));
    let last = raw.len() - 1;
    raw[last] ^= 1;
    let e = h
        .err("ImportKeyMaterial", import(&a, &b64(&raw), &wrapped_a))
        .await;
    assert_eq!(e.code, "InvalidImportTokenException");
    // Material wrapped for another public key does not unwrap.
    let (_, wrapped_b) = h.wrapped(&b, "RSAES_OAEP_SHA_256", &MATERIAL).await;
    let e = h
        .err("ImportKeyMaterial", import(&a, &token_a, &wrapped_b))
        .await;
    assert_eq!(e.code, "InvalidCiphertextException");

    h.clock.advance(Duration::hours(24));
    let e = h
        .err("ImportKeyMaterial", import(&a, &token_a, &wrapped_a))
        .await;
    assert_eq!(e.code, "ExpiredImportTokenException");
    // A new GetParametersForImport cleans the expired parameters up; the token stays expired.
    let (token2, wrapped2) = h.wrapped(&a, "RSAES_OAEP_SHA_256", &MATERIAL).await;
    let e = h
        .err("ImportKeyMaterial", import(&a, &token_a, &wrapped_a))
        .await;
    assert_eq!(e.code, "ExpiredImportTokenException");
    h.ok("ImportKeyMaterial", import(&a, &token2, &wrapped2))
        .await;
}

#[tokio::test]
async fn input_is_validated_as_aws_does() {
    let h = harness().await;
    let key = h.create_external().await;
    let e = h
        .err(
            "GetParametersForImport",
            json!({"KeyId": key, "WrappingAlgorithm": "RSAES_PKCS1_V1_5", "WrappingKeySpec": "RSA_2048"}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    let e = h
        .err(
            "GetParametersForImport",
            json!({"KeyId": key, "WrappingAlgorithm": "SM2PKE", "WrappingKeySpec": "SM2"}),
        )
        .await;
    assert_eq!(e.code, "UnsupportedOperationException");
    // Only EXTERNAL keys take imported material.
    let own = h.create().await;
    for (op, body) in [
        (
            "GetParametersForImport",
            json!({"KeyId": own, "WrappingAlgorithm": "RSAES_OAEP_SHA_256", "WrappingKeySpec": "RSA_2048"}),
        ),
        ("DeleteImportedKeyMaterial", json!({"KeyId": own})),
    ] {
        let e = h.err(op, body).await;
        assert_eq!(e.code, "UnsupportedOperationException");
        assert_eq!(
            e.message.unwrap(),
            format!(
                "{} origin is AWS_KMS which is not valid for this operation.",
                arn(&own)
            )
        );
    }
    // ExpirationModel defaults to KEY_MATERIAL_EXPIRES, which needs ValidTo.
    let e = h
        .import(&key, &MATERIAL, json!({"ExpirationModel": null}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "ValidationException");
    let now = h.now().unix_timestamp();
    let e = h
        .import(&key, &MATERIAL, json!({"ValidTo": now + 3600}))
        .await
        .unwrap_err();
    assert_eq!(
        e.code, "ValidationException",
        "ValidTo with DOES_NOT_EXPIRE"
    );
    for bad in [now - 1, now + 366 * 86_400] {
        let e = h
            .import(
                &key,
                &MATERIAL,
                json!({"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": bad}),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "ValidationException");
    }
    // Symmetric material is exactly 256 bits.
    let e = h.import(&key, &[1u8; 16], json!({})).await.unwrap_err();
    assert_eq!(e.code, "ValidationException");
    let e = h
        .import(
            &key,
            &MATERIAL,
            json!({"ImportType": "NEW_KEY_MATERIAL", "KeyMaterialId": "ab".repeat(32)}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "ValidationException");
    // Nothing of this changed the key.
    assert_eq!(h.state(&key).await["KeyState"], "PendingImport");
    // Rotation settings do not apply to imported keys.
    h.import(&key, &MATERIAL, json!({})).await.unwrap();
    let e = h.err("EnableKeyRotation", json!({"KeyId": key})).await;
    assert_eq!(e.code, "UnsupportedOperationException");
}

#[tokio::test]
async fn material_expires_at_valid_to_through_the_scheduler() {
    let h = harness().await;
    let events = Arc::new(Collect::default());
    h.kms.set_events(events.clone());
    let key = h.create_external().await;
    let valid_to = h.now().unix_timestamp() + 2 * 86_400;
    h.import(
        &key,
        &MATERIAL,
        json!({"ExpirationModel": "KEY_MATERIAL_EXPIRES", "ValidTo": valid_to}),
    )
    .await
    .unwrap();
    let m = h.state(&key).await;
    assert_eq!(m["ExpirationModel"], "KEY_MATERIAL_EXPIRES");
    assert_eq!(m["ValidTo"].as_f64().unwrap() as i64, valid_to);
    let blob = h.encrypt(&key, b"soon gone", json!({})).await;

    h.clock.advance(Duration::days(1));
    let report = h.kms.run_due(h.now()).await.unwrap();
    assert!(report.expired.is_empty());
    h.clock.advance(Duration::days(1));
    let report = h.kms.run_due(h.now()).await.unwrap();
    assert_eq!(report.expired, vec![arn(&key)]);
    assert_eq!(h.state(&key).await["KeyState"], "PendingImport");
    let seen = events.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].detail_type, "KMS Imported Key Material Expiration");
    assert_eq!(seen[0].resources, vec![arn(&key)]);
    assert_eq!(
        h.decrypt(&blob, json!({})).await.unwrap_err().code,
        "KMSInvalidStateException"
    );
    // Idempotent: nothing left to do.
    assert!(h.kms.run_due(h.now()).await.unwrap().expired.is_empty());
    // Reimported without expiry, the old ciphertext opens again.
    h.import(&key, &MATERIAL, json!({})).await.unwrap();
    let d = h.decrypt(&blob, json!({})).await.unwrap();
    assert_eq!(unb64(&d["Plaintext"]), b"soon gone");
}

#[tokio::test]
async fn new_key_material_waits_for_rotate_key_on_demand() {
    let h = harness().await;
    let key = h.create_external().await;
    let first = h.import(&key, &MATERIAL, json!({})).await.unwrap();
    let e = h.err("RotateKeyOnDemand", json!({"KeyId": key})).await;
    assert_eq!(e.code, "KMSInvalidStateException");
    assert_eq!(
        e.message.unwrap(),
        format!(
            "No available key material pending rotation for the key: {}.",
            arn(&key)
        )
    );
    let old_blob = h.encrypt(&key, b"old", json!({})).await;
    let second = h
        .import(
            &key,
            &OTHER_MATERIAL,
            json!({"ImportType": "NEW_KEY_MATERIAL", "KeyMaterialDescription": "2025 material"}),
        )
        .await
        .unwrap();
    // Still the first material until the rotation.
    assert_eq!(
        h.state(&key).await["CurrentKeyMaterialId"],
        first["KeyMaterialId"]
    );
    let rotations = h
        .ok(
            "ListKeyRotations",
            json!({"KeyId": key, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"}),
        )
        .await;
    let list = rotations["Rotations"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["KeyMaterialState"], "CURRENT");
    assert_eq!(list[0]["ImportState"], "IMPORTED");
    assert_eq!(list[0]["ExpirationModel"], "KEY_MATERIAL_DOES_NOT_EXPIRE");
    assert_eq!(list[1]["KeyMaterialState"], "PENDING_ROTATION");
    assert_eq!(list[1]["KeyMaterialDescription"], "2025 material");
    assert!(list[1].get("RotationDate").is_none());
    let only_rotations = h.ok("ListKeyRotations", json!({"KeyId": key})).await;
    assert_eq!(only_rotations["Rotations"].as_array().unwrap().len(), 0);

    h.ok("RotateKeyOnDemand", json!({"KeyId": key})).await;
    let m = h.state(&key).await;
    assert_eq!(m["CurrentKeyMaterialId"], second["KeyMaterialId"]);
    let rotations = h.ok("ListKeyRotations", json!({"KeyId": key})).await;
    let list = rotations["Rotations"].as_array().unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0]["KeyMaterialState"], "CURRENT");
    assert_eq!(list[0]["RotationType"], "ON_DEMAND");
    let new_blob = h.encrypt(&key, b"new", json!({})).await;
    for (blob, text, material) in [
        (&old_blob, &b"old"[..], &first),
        (&new_blob, &b"new"[..], &second),
    ] {
        let d = h.decrypt(blob, json!({})).await.unwrap();
        assert_eq!(unb64(&d["Plaintext"]), text);
        assert_eq!(d["KeyMaterialId"], material["KeyMaterialId"]);
    }
    // Deleting the old (non-current) material makes the key unusable until it is back.
    h.ok(
        "DeleteImportedKeyMaterial",
        json!({"KeyId": key, "KeyMaterialId": first["KeyMaterialId"]}),
    )
    .await;
    assert_eq!(h.state(&key).await["KeyState"], "PendingImport");
    h.import(&key, &MATERIAL, json!({})).await.unwrap();
    assert_eq!(h.state(&key).await["KeyState"], "Enabled");
}

#[tokio::test]
async fn pending_material_can_be_deleted_and_replaced() {
    let h = harness().await;
    let key = h.create_external().await;
    h.import(&key, &MATERIAL, json!({})).await.unwrap();
    let pending = h
        .import(
            &key,
            &OTHER_MATERIAL,
            json!({"ImportType": "NEW_KEY_MATERIAL"}),
        )
        .await
        .unwrap();
    let e = h
        .import(&key, &[0x33; 32], json!({"ImportType": "NEW_KEY_MATERIAL"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "KMSInvalidStateException");
    h.ok(
        "DeleteImportedKeyMaterial",
        json!({"KeyId": key, "KeyMaterialId": pending["KeyMaterialId"]}),
    )
    .await;
    // Deleting pending material leaves the key usable and forgets that material.
    assert_eq!(h.state(&key).await["KeyState"], "Enabled");
    let list = h
        .ok(
            "ListKeyRotations",
            json!({"KeyId": key, "IncludeKeyMaterial": "ALL_KEY_MATERIAL"}),
        )
        .await;
    assert_eq!(list["Rotations"].as_array().unwrap().len(), 1);
    h.import(&key, &[0x33; 32], json!({"ImportType": "NEW_KEY_MATERIAL"}))
        .await
        .unwrap();
    // NEW_KEY_MATERIAL with material the key already has is refused.
    let e = h
        .import(&key, &MATERIAL, json!({"ImportType": "NEW_KEY_MATERIAL"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "IncorrectKeyMaterialException");
}

#[tokio::test]
async fn deleting_a_key_removes_its_import_parameters() {
    let h = harness().await;
    let key = h.create_external().await;
    h.wrapped(&key, "RSAES_OAEP_SHA_256", &MATERIAL).await;
    let prefix = crate::record::import_prefix(ACCOUNT, REGION, &key);
    assert_eq!(h.store.list(&prefix, None, 10).await.unwrap().len(), 1);
    // A key pending import can be scheduled for deletion.
    h.ok(
        "ScheduleKeyDeletion",
        json!({"KeyId": key, "PendingWindowInDays": 7}),
    )
    .await;
    h.clock.advance(Duration::days(8));
    let report = h.kms.run_due(h.now()).await.unwrap();
    assert_eq!(report.deleted, vec![arn(&key)]);
    assert!(h.store.list(&prefix, None, 10).await.unwrap().is_empty());
}

#[tokio::test]
async fn hmac_and_asymmetric_keys_take_imported_material() {
    use citadel_crypto::asymmetric::{KeyKind, generate, public_key_der};
    let h = harness().await;
    let import_as = |key: String, material: Vec<u8>, alg: &'static str| {
        let h = &h;
        async move {
            let (token, wrapped) = h.wrapped(&key, alg, &material).await;
            h.call(
                "ImportKeyMaterial",
                json!({"KeyId": key, "ImportToken": token, "EncryptedKeyMaterial": wrapped,
                       "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
            )
            .await
        }
    };

    // HMAC: the MAC is made with exactly the imported key.
    let v = h
        .ok(
            "CreateKey",
            json!({"Origin": "EXTERNAL", "KeySpec": "HMAC_256", "KeyUsage": "GENERATE_VERIFY_MAC"}),
        )
        .await;
    let hmac_key = v["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let e = import_as(hmac_key.clone(), vec![5u8; 16], "RSAES_OAEP_SHA_256")
        .await
        .unwrap_err();
    assert_eq!(
        e.code, "ValidationException",
        "HMAC_256 material is 32 to 64 bytes"
    );
    import_as(hmac_key.clone(), vec![5u8; 48], "RSAES_OAEP_SHA_256")
        .await
        .unwrap();
    let mac = h
        .ok(
            "GenerateMac",
            json!({"KeyId": hmac_key, "Message": b64(b"msg"), "MacAlgorithm": "HMAC_SHA_256"}),
        )
        .await;
    assert_eq!(
        unb64(&mac["Mac"]),
        citadel_crypto::hmac_sha256(&[5u8; 48], b"msg").to_vec()
    );
    // A malformed token is refused before anything is unwrapped.
    let e = h
        .call(
            "ImportKeyMaterial",
            json!({"KeyId": hmac_key, "ImportToken": "AA==", "EncryptedKeyMaterial": "AA==",
                   "ExpirationModel": "KEY_MATERIAL_DOES_NOT_EXPIRE"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "InvalidImportTokenException");

    // Asymmetric: a PKCS#8 private key, wrapped with RSA_AES_KEY_WRAP; GetPublicKey shows its
    // public half.
    let v = h
        .ok(
            "CreateKey",
            json!({"Origin": "EXTERNAL", "KeySpec": "ECC_NIST_P256", "KeyUsage": "SIGN_VERIFY"}),
        )
        .await;
    let ec_key = v["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let kind = KeyKind::from_key_spec("ECC_NIST_P256").unwrap();
    let pkcs8 = generate(kind).unwrap();
    let e = import_as(ec_key.clone(), vec![1u8; 32], "RSA_AES_KEY_WRAP_SHA_256")
        .await
        .unwrap_err();
    assert_eq!(e.code, "ValidationException");
    import_as(ec_key.clone(), pkcs8.to_vec(), "RSA_AES_KEY_WRAP_SHA_256")
        .await
        .unwrap();
    let public = h.ok("GetPublicKey", json!({"KeyId": ec_key})).await;
    assert_eq!(
        unb64(&public["PublicKey"]),
        public_key_der(kind, &pkcs8).unwrap()
    );
    // Asymmetric keys keep their first material.
    let other = generate(kind).unwrap();
    let e = import_as(ec_key.clone(), other.to_vec(), "RSA_AES_KEY_WRAP_SHA_256")
        .await
        .unwrap_err();
    assert_eq!(e.code, "IncorrectKeyMaterialException");
}
