//! HMAC keys (GenerateMac, VerifyMac), RSA encryption keys (Encrypt, Decrypt, ReEncrypt) and
//! data key pairs.

use citadel_crypto::asymmetric::{self, KeyKind};
use citadel_crypto::mac::{self, MacAlgorithm};
use citadel_crypto::rsa_encryption::{OaepHash, RsaPublicKey};

use super::*;

impl Harness {
    async fn rh_key(&self, spec: &str, usage: &str) -> String {
        self.ok("CreateKey", json!({"KeySpec": spec, "KeyUsage": usage}))
            .await["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The secret of a key's current material, read from the cache as the handlers do.
    async fn rh_secret(&self, id: &str) -> Vec<u8> {
        let key = self
            .kms
            .key_at(&crate::record::key_path(ACCOUNT, REGION, id))
            .await
            .unwrap()
            .unwrap();
        key.current_material().unwrap().secret().to_vec()
    }
}

fn assert_err(e: &AwsError, code: &str, message: &str) {
    assert_eq!(e.code, code, "{e}");
    assert_eq!(e.message.as_deref(), Some(message), "{e}");
}

#[tokio::test]
async fn hmac_keys_generate_and_verify_with_every_spec() {
    let h = harness().await;
    let msg = b"the message";
    for (spec, alg, len) in [
        ("HMAC_224", "HMAC_SHA_224", 28),
        ("HMAC_256", "HMAC_SHA_256", 32),
        ("HMAC_384", "HMAC_SHA_384", 48),
        ("HMAC_512", "HMAC_SHA_512", 64),
    ] {
        let key = h.rh_key(spec, "GENERATE_VERIFY_MAC").await;
        let meta = h.ok("DescribeKey", json!({"KeyId": key})).await;
        assert_eq!(meta["KeyMetadata"]["MacAlgorithms"], json!([alg]));
        let secret = h.rh_secret(&key).await;
        assert_eq!(secret.len(), len, "{spec}");

        let v = h
            .ok(
                "GenerateMac",
                json!({"KeyId": key, "Message": b64(msg), "MacAlgorithm": alg}),
            )
            .await;
        assert_eq!(v["KeyId"], arn(&key));
        assert_eq!(v["MacAlgorithm"], alg);
        let tag = unb64(&v["Mac"]);
        // The MAC is plain HMAC of the message under the key's material.
        let algorithm = MacAlgorithm::from_name(alg).unwrap();
        assert_eq!(tag, mac::generate(algorithm, &secret, msg));

        let ok = h
            .ok(
                "VerifyMac",
                json!({"KeyId": key, "Message": b64(msg), "MacAlgorithm": alg, "Mac": b64(&tag)}),
            )
            .await;
        assert_eq!(ok["MacValid"], true);
        assert_eq!(ok["KeyId"], arn(&key));
        assert_eq!(ok["MacAlgorithm"], alg);

        let mut bad = tag.clone();
        bad[0] ^= 1;
        let e = h
            .err(
                "VerifyMac",
                json!({"KeyId": key, "Message": b64(msg), "MacAlgorithm": alg, "Mac": b64(&bad)}),
            )
            .await;
        assert_err(&e, "KMSInvalidMacException", "");
        let e = h
            .err(
                "VerifyMac",
                json!({"KeyId": key, "Message": b64(b"other"), "MacAlgorithm": alg, "Mac": b64(&tag)}),
            )
            .await;
        assert_err(&e, "KMSInvalidMacException", "");
    }
}

#[tokio::test]
async fn mac_operations_refuse_wrong_algorithms_keys_and_states() {
    let h = harness().await;
    let key = h.rh_key("HMAC_224", "GENERATE_VERIFY_MAC").await;
    let e = h
        .err(
            "GenerateMac",
            json!({"KeyId": key, "Message": b64(b"m"), "MacAlgorithm": "HMAC_SHA_256"}),
        )
        .await;
    assert_err(
        &e,
        "InvalidKeyUsageException",
        "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224.",
    );
    let sym = h.create().await;
    let e = h
        .err(
            "GenerateMac",
            json!({"KeyId": sym, "Message": b64(b"m"), "MacAlgorithm": "HMAC_SHA_256"}),
        )
        .await;
    assert_err(
        &e,
        "InvalidKeyUsageException",
        &format!(
            "{} key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.",
            arn(&sym)
        ),
    );
    let e = h
        .err(
            "VerifyMac",
            json!({"KeyId": sym, "Message": b64(b"m"), "MacAlgorithm": "HMAC_SHA_256", "Mac": b64(b"x")}),
        )
        .await;
    assert_eq!(e.code, "InvalidKeyUsageException");
    // HMAC keys do not encrypt.
    let e = h
        .err("Encrypt", json!({"KeyId": key, "Plaintext": b64(b"m")}))
        .await;
    assert_err(
        &e,
        "InvalidKeyUsageException",
        &format!(
            "{} key usage is GENERATE_VERIFY_MAC which is not valid for Encrypt.",
            arn(&key)
        ),
    );
    // Message length is the model's 1..4096.
    let e = h
        .err(
            "GenerateMac",
            json!({"KeyId": key, "Message": b64(&[0u8; 4097]), "MacAlgorithm": "HMAC_SHA_224"}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    let e = h
        .err(
            "GenerateMac",
            json!({"KeyId": key, "Message": b64(b"m"), "MacAlgorithm": "HMAC_SHA_224", "DryRun": true}),
        )
        .await;
    assert_eq!(e.code, "DryRunOperationException");
    h.ok("DisableKey", json!({"KeyId": key})).await;
    let e = h
        .err(
            "GenerateMac",
            json!({"KeyId": key, "Message": b64(b"m"), "MacAlgorithm": "HMAC_SHA_224"}),
        )
        .await;
    assert_err(
        &e,
        "DisabledException",
        &format!("{} is disabled.", arn(&key)),
    );
}

#[tokio::test]
async fn rsa_keys_encrypt_and_decrypt_with_oaep() {
    let h = harness().await;
    let key = h.rh_key("RSA_2048", "ENCRYPT_DECRYPT").await;
    let public = unb64(&h.ok("GetPublicKey", json!({"KeyId": key})).await["PublicKey"]);
    for (alg, hash, max) in [
        ("RSAES_OAEP_SHA_1", OaepHash::Sha1, 214),
        ("RSAES_OAEP_SHA_256", OaepHash::Sha256, 190),
    ] {
        let pt = vec![0x42u8; max];
        let v = h
            .ok(
                "Encrypt",
                json!({"KeyId": key, "Plaintext": b64(&pt), "EncryptionAlgorithm": alg}),
            )
            .await;
        assert_eq!(v["EncryptionAlgorithm"], alg);
        assert_eq!(v["KeyId"], arn(&key));
        let ct = unb64(&v["CiphertextBlob"]);
        assert_eq!(ct.len(), 256);
        let d = h
            .ok(
                "Decrypt",
                json!({"KeyId": key, "CiphertextBlob": b64(&ct), "EncryptionAlgorithm": alg}),
            )
            .await;
        assert_eq!(unb64(&d["Plaintext"]), pt);
        assert_eq!(d["EncryptionAlgorithm"], alg);
        assert_eq!(d["KeyId"], arn(&key));
        assert!(d["KeyMaterialId"].as_str().unwrap().len() == 64);

        // Encrypted outside KMS with the public key: Decrypt accepts it.
        let outside = RsaPublicKey::from_spki(&public)
            .unwrap()
            .encrypt(hash, b"from outside")
            .unwrap();
        let d = h
            .ok(
                "Decrypt",
                json!({"KeyId": key, "CiphertextBlob": b64(&outside), "EncryptionAlgorithm": alg}),
            )
            .await;
        assert_eq!(unb64(&d["Plaintext"]), b"from outside");

        let e = h
            .err(
                "Encrypt",
                json!({"KeyId": key, "Plaintext": b64(&vec![0u8; max + 1]), "EncryptionAlgorithm": alg}),
            )
            .await;
        assert_err(
            &e,
            "ValidationException",
            &format!(
                "Algorithm {alg} and key spec RSA_2048 cannot encrypt data larger than {max} bytes."
            ),
        );
        // Wrong length, altered, or decrypted with the other hash: no details.
        for bad in [ct[1..].to_vec(), {
            let mut b = ct.clone();
            b[7] ^= 1;
            b
        }] {
            let e = h
                .err(
                    "Decrypt",
                    json!({"KeyId": key, "CiphertextBlob": b64(&bad), "EncryptionAlgorithm": alg}),
                )
                .await;
            assert_err(&e, "InvalidCiphertextException", "");
        }
    }
    let ct = unb64(
        &h.ok(
            "Encrypt",
            json!({"KeyId": key, "Plaintext": b64(b"x"), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
        )
        .await["CiphertextBlob"],
    );
    let e = h
        .err(
            "Decrypt",
            json!({"KeyId": key, "CiphertextBlob": b64(&ct), "EncryptionAlgorithm": "RSAES_OAEP_SHA_1"}),
        )
        .await;
    assert_err(&e, "InvalidCiphertextException", "");
    // Without the algorithm or the key, a raw RSA ciphertext is not a KMS ciphertext.
    for body in [
        json!({"KeyId": key, "CiphertextBlob": b64(&ct)}),
        json!({"CiphertextBlob": b64(&ct), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
    ] {
        assert_eq!(
            h.err("Decrypt", body).await.code,
            "InvalidCiphertextException"
        );
    }
    let e = h
        .err("Encrypt", json!({"KeyId": key, "Plaintext": b64(b"x")}))
        .await;
    assert_err(
        &e,
        "InvalidKeyUsageException",
        "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.",
    );
    let e = h
        .err(
            "Encrypt",
            json!({"KeyId": key, "Plaintext": b64(b"x"), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256", "EncryptionContext": {"a": "b"}}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    let e = h
        .err(
            "Encrypt",
            json!({"KeyId": key, "Plaintext": b64(b"x"), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256", "DryRun": true}),
        )
        .await;
    assert_eq!(e.code, "DryRunOperationException");
    // Data keys need a symmetric key.
    let e = h
        .err(
            "GenerateDataKey",
            json!({"KeyId": key, "KeySpec": "AES_256"}),
        )
        .await;
    assert_eq!(e.code, "InvalidKeyUsageException");
    // A symmetric key refuses the RSA algorithms.
    let sym = h.create().await;
    let e = h
        .err(
            "Encrypt",
            json!({"KeyId": sym, "Plaintext": b64(b"x"), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
        )
        .await;
    assert_err(
        &e,
        "InvalidKeyUsageException",
        "Algorithm RSAES_OAEP_SHA_256 is incompatible with key spec SYMMETRIC_DEFAULT.",
    );
    // A signing key does not decrypt.
    let signing = h.rh_key("RSA_2048", "SIGN_VERIFY").await;
    let e = h
        .err(
            "Decrypt",
            json!({"KeyId": signing, "CiphertextBlob": b64(&ct), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
        )
        .await;
    assert_err(
        &e,
        "InvalidKeyUsageException",
        &format!(
            "{} key usage is SIGN_VERIFY which is not valid for Decrypt.",
            arn(&signing)
        ),
    );
}

#[tokio::test]
async fn re_encrypt_moves_between_symmetric_and_rsa_keys() {
    let h = harness().await;
    let sym = h.create().await;
    let rsa = h.rh_key("RSA_3072", "ENCRYPT_DECRYPT").await;
    let blob = h.encrypt(&sym, b"moving", json!({"k": "v"})).await;
    let v = h
        .ok(
            "ReEncrypt",
            json!({
                "CiphertextBlob": b64(&blob),
                "SourceEncryptionContext": {"k": "v"},
                "DestinationKeyId": rsa,
                "DestinationEncryptionAlgorithm": "RSAES_OAEP_SHA_1",
            }),
        )
        .await;
    assert_eq!(v["SourceEncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    assert_eq!(v["DestinationEncryptionAlgorithm"], "RSAES_OAEP_SHA_1");
    assert_eq!(v["KeyId"], arn(&rsa));
    let rsa_blob = unb64(&v["CiphertextBlob"]);
    assert_eq!(rsa_blob.len(), 384);
    let back = h
        .ok(
            "ReEncrypt",
            json!({
                "CiphertextBlob": b64(&rsa_blob),
                "SourceKeyId": rsa,
                "SourceEncryptionAlgorithm": "RSAES_OAEP_SHA_1",
                "DestinationKeyId": sym,
                "DestinationEncryptionContext": {"n": "w"},
            }),
        )
        .await;
    assert_eq!(back["SourceEncryptionAlgorithm"], "RSAES_OAEP_SHA_1");
    assert_eq!(back["DestinationEncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    assert_eq!(back["SourceKeyId"], arn(&rsa));
    let out = unb64(&back["CiphertextBlob"]);
    let d = h.decrypt(&out, json!({"n": "w"})).await.unwrap();
    assert_eq!(unb64(&d["Plaintext"]), b"moving");
    // RSA to RSA, and the destination's size limit.
    let small = h.rh_key("RSA_2048", "ENCRYPT_DECRYPT").await;
    let v = h
        .ok(
            "ReEncrypt",
            json!({
                "CiphertextBlob": b64(&rsa_blob),
                "SourceKeyId": rsa,
                "SourceEncryptionAlgorithm": "RSAES_OAEP_SHA_1",
                "DestinationKeyId": small,
                "DestinationEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
            }),
        )
        .await;
    assert_eq!(unb64(&v["CiphertextBlob"]).len(), 256);
    let big = h
        .ok(
            "Encrypt",
            json!({"KeyId": rsa, "Plaintext": b64(&[1u8; 300]), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
        )
        .await;
    let e = h
        .err(
            "ReEncrypt",
            json!({
                "CiphertextBlob": big["CiphertextBlob"],
                "SourceKeyId": rsa,
                "SourceEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
                "DestinationKeyId": small,
                "DestinationEncryptionAlgorithm": "RSAES_OAEP_SHA_256",
            }),
        )
        .await;
    assert_err(
        &e,
        "ValidationException",
        "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes.",
    );
}

#[tokio::test]
async fn data_key_pairs_of_every_spec_decrypt_to_their_private_key() {
    let h = harness().await;
    let key = h.create().await;
    for spec in [
        "RSA_2048",
        "ECC_NIST_P256",
        "ECC_NIST_P384",
        "ECC_NIST_P521",
        "ECC_SECG_P256K1",
        "ECC_NIST_EDWARDS25519",
    ] {
        let v = h
            .ok(
                "GenerateDataKeyPair",
                json!({"KeyId": key, "KeyPairSpec": spec, "EncryptionContext": {"p": spec}}),
            )
            .await;
        assert_eq!(v["KeyPairSpec"], spec);
        assert_eq!(v["KeyId"], arn(&key));
        assert_eq!(v["KeyMaterialId"].as_str().unwrap().len(), 64);
        let private = unb64(&v["PrivateKeyPlaintext"]);
        let public = unb64(&v["PublicKey"]);
        let kind = KeyKind::from_key_spec(spec).unwrap();
        assert_eq!(asymmetric::public_key_der(kind, &private).unwrap(), public);
        let blob = unb64(&v["PrivateKeyCiphertextBlob"]);
        let d = h.decrypt(&blob, json!({"p": spec})).await.unwrap();
        assert_eq!(unb64(&d["Plaintext"]), private);
        assert_eq!(
            h.decrypt(&blob, json!({})).await.unwrap_err().code,
            "InvalidCiphertextException"
        );

        let w = h
            .ok(
                "GenerateDataKeyPairWithoutPlaintext",
                json!({"KeyId": key, "KeyPairSpec": spec}),
            )
            .await;
        assert!(w.get("PrivateKeyPlaintext").is_none());
        let private = unb64(
            &h.decrypt(&unb64(&w["PrivateKeyCiphertextBlob"]), json!({}))
                .await
                .unwrap()["Plaintext"],
        );
        assert_eq!(
            asymmetric::public_key_der(kind, &private).unwrap(),
            unb64(&w["PublicKey"])
        );
    }
    let e = h
        .err(
            "GenerateDataKeyPair",
            json!({"KeyId": key, "KeyPairSpec": "SM2"}),
        )
        .await;
    assert_eq!(e.code, "UnsupportedOperationException");
    let e = h
        .err(
            "GenerateDataKeyPair",
            json!({"KeyId": key, "KeyPairSpec": "ML_DSA_44"}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    let e = h
        .err(
            "GenerateDataKeyPairWithoutPlaintext",
            json!({"KeyId": key, "KeyPairSpec": "RSA_2048", "DryRun": true}),
        )
        .await;
    assert_eq!(e.code, "DryRunOperationException");
    let hmac = h.rh_key("HMAC_256", "GENERATE_VERIFY_MAC").await;
    let e = h
        .err(
            "GenerateDataKeyPair",
            json!({"KeyId": hmac, "KeyPairSpec": "RSA_2048"}),
        )
        .await;
    assert_err(
        &e,
        "InvalidKeyUsageException",
        &format!(
            "{} key usage is GENERATE_VERIFY_MAC which is not valid for GenerateDataKeyPair.",
            arn(&hmac)
        ),
    );
    let rsa = h.rh_key("RSA_2048", "ENCRYPT_DECRYPT").await;
    let e = h
        .err(
            "GenerateDataKeyPair",
            json!({"KeyId": rsa, "KeyPairSpec": "RSA_2048"}),
        )
        .await;
    assert_eq!(e.code, "InvalidKeyUsageException");
}
