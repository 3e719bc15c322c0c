//! Asymmetric keys: Sign, Verify, GetPublicKey and DeriveSharedSecret.

use citadel_crypto::asymmetric::{self, Input, KeyKind, SigningAlgorithm};

use super::*;

impl Harness {
    async fn create_asym(&self, spec: &str, usage: &str) -> String {
        self.ok("CreateKey", json!({"KeySpec": spec, "KeyUsage": usage}))
            .await["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn public_key(&self, key: &str) -> Vec<u8> {
        unb64(&self.ok("GetPublicKey", json!({"KeyId": key})).await["PublicKey"])
    }
}

#[tokio::test]
async fn sign_and_verify_with_every_kind() {
    let h = harness().await;
    let msg = b"sign me";
    for (spec, alg) in [
        ("ECC_NIST_P256", "ECDSA_SHA_256"),
        ("ECC_SECG_P256K1", "ECDSA_SHA_256"),
        ("ECC_NIST_P384", "ECDSA_SHA_384"),
        ("ECC_NIST_EDWARDS25519", "ED25519_SHA_512"),
        ("ML_DSA_44", "ML_DSA_SHAKE_256"),
        ("RSA_2048", "RSASSA_PSS_SHA_384"),
    ] {
        let key = h.create_asym(spec, "SIGN_VERIFY").await;
        let v = h
            .ok(
                "Sign",
                json!({"KeyId": key, "Message": b64(msg), "SigningAlgorithm": alg}),
            )
            .await;
        assert_eq!(v["KeyId"], arn(&key));
        assert_eq!(v["SigningAlgorithm"], alg);
        let sig = unb64(&v["Signature"]);
        // The public key GetPublicKey gives verifies the signature outside KMS.
        let public = h.public_key(&key).await;
        let kind = KeyKind::from_key_spec(spec).unwrap();
        let algorithm = SigningAlgorithm::from_name(alg).unwrap();
        assert!(asymmetric::verify(
            kind,
            algorithm,
            &public,
            Input::Message(msg),
            &sig
        ));
        let ok = h
            .ok(
                "Verify",
                json!({"KeyId": key, "Message": b64(msg), "Signature": b64(&sig), "SigningAlgorithm": alg}),
            )
            .await;
        assert_eq!(ok["SignatureValid"], true);
        assert_eq!(ok["KeyId"], arn(&key));
        let mut bad = sig.clone();
        bad[5] ^= 0x40;
        let e = h
            .err(
                "Verify",
                json!({"KeyId": key, "Message": b64(msg), "Signature": b64(&bad), "SigningAlgorithm": alg}),
            )
            .await;
        assert_eq!(e.code, "KMSInvalidSignatureException", "{spec}");
        assert_eq!(e.message.as_deref(), Some(""));
    }
}

#[tokio::test]
async fn digest_mode_signs_the_digest() {
    let h = harness().await;
    let key = h.create_asym("ECC_NIST_P256", "SIGN_VERIFY").await;
    let msg = b"hash me";
    let digest = citadel_crypto::sha256(msg);
    let v = h
        .ok(
            "Sign",
            json!({"KeyId": key, "Message": b64(&digest), "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256"}),
        )
        .await;
    let sig = unb64(&v["Signature"]);
    // A DIGEST signature is a signature of the message.
    h.ok(
        "Verify",
        json!({"KeyId": key, "Message": b64(msg), "Signature": b64(&sig), "SigningAlgorithm": "ECDSA_SHA_256"}),
    )
    .await;
    let e = h
        .err(
            "Sign",
            json!({"KeyId": key, "Message": b64(&digest[..31]), "MessageType": "DIGEST", "SigningAlgorithm": "ECDSA_SHA_256"}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    assert_eq!(
        e.message.as_deref(),
        Some("Digest is invalid length for algorithm ECDSA_SHA_256.")
    );
    let ed = h.create_asym("ECC_NIST_EDWARDS25519", "SIGN_VERIFY").await;
    let e = h
        .err(
            "Sign",
            json!({"KeyId": ed, "Message": b64(&[0u8; 64]), "MessageType": "DIGEST", "SigningAlgorithm": "ED25519_SHA_512"}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    let ml = h.create_asym("ML_DSA_65", "SIGN_VERIFY").await;
    let e = h
        .err(
            "Sign",
            json!({"KeyId": ml, "Message": b64(&[0u8; 64]), "MessageType": "EXTERNAL_MU", "SigningAlgorithm": "ML_DSA_SHAKE_256"}),
        )
        .await;
    assert_eq!(e.code, "UnsupportedOperationException");
}

#[tokio::test]
async fn sign_refuses_wrong_keys_algorithms_states_and_dry_runs() {
    let h = harness().await;
    let sym = h.create().await;
    let e = h
        .err(
            "Sign",
            json!({"KeyId": sym, "Message": b64(b"m"), "SigningAlgorithm": "ECDSA_SHA_256"}),
        )
        .await;
    assert_eq!(e.code, "InvalidKeyUsageException");
    assert_eq!(
        e.message.unwrap(),
        format!(
            "{} key usage is ENCRYPT_DECRYPT which is not valid for Sign.",
            arn(&sym)
        )
    );
    let rsa_enc = h.create_asym("RSA_2048", "ENCRYPT_DECRYPT").await;
    let e = h
        .err(
            "Verify",
            json!({"KeyId": rsa_enc, "Message": b64(b"m"), "Signature": b64(b"s"), "SigningAlgorithm": "RSASSA_PSS_SHA_256"}),
        )
        .await;
    assert_eq!(e.code, "InvalidKeyUsageException");
    let key = h.create_asym("ECC_NIST_P256", "SIGN_VERIFY").await;
    let e = h
        .err(
            "Sign",
            json!({"KeyId": key, "Message": b64(b"m"), "SigningAlgorithm": "ECDSA_SHA_384"}),
        )
        .await;
    assert_eq!(e.code, "InvalidKeyUsageException");
    assert_eq!(
        e.message.as_deref(),
        Some("Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_NIST_P256.")
    );
    let e = h
        .err(
            "Sign",
            json!({"KeyId": key, "Message": b64(b"m"), "SigningAlgorithm": "ECDSA_SHA_256", "DryRun": true}),
        )
        .await;
    assert_eq!(e.code, "DryRunOperationException");
    h.ok("DisableKey", json!({"KeyId": key})).await;
    let e = h
        .err(
            "Sign",
            json!({"KeyId": key, "Message": b64(b"m"), "SigningAlgorithm": "ECDSA_SHA_256"}),
        )
        .await;
    assert_eq!(e.code, "DisabledException");
    let e = h.err("GetPublicKey", json!({"KeyId": key})).await;
    assert_eq!(e.code, "DisabledException");
}

#[tokio::test]
async fn get_public_key_and_describe_key_report_the_algorithms() {
    let h = harness().await;
    let key = h.create_asym("RSA_3072", "SIGN_VERIFY").await;
    let v = h.ok("GetPublicKey", json!({"KeyId": key})).await;
    assert_eq!(v["KeySpec"], "RSA_3072");
    assert_eq!(v["CustomerMasterKeySpec"], "RSA_3072");
    assert_eq!(v["KeyUsage"], "SIGN_VERIFY");
    assert_eq!(v["SigningAlgorithms"].as_array().unwrap().len(), 6);
    assert!(v.get("EncryptionAlgorithms").is_none());
    let m = h.ok("DescribeKey", json!({"KeyId": key})).await;
    assert_eq!(
        m["KeyMetadata"]["SigningAlgorithms"],
        v["SigningAlgorithms"]
    );
    let ml = h.create_asym("ML_DSA_87", "SIGN_VERIFY").await;
    let v = h.ok("GetPublicKey", json!({"KeyId": ml})).await;
    assert!(v.get("CustomerMasterKeySpec").is_none());
    assert_eq!(v["SigningAlgorithms"], json!(["ML_DSA_SHAKE_256"]));
    let ka = h.create_asym("ECC_NIST_P521", "KEY_AGREEMENT").await;
    let v = h.ok("GetPublicKey", json!({"KeyId": ka})).await;
    assert_eq!(v["KeyAgreementAlgorithms"], json!(["ECDH"]));
    let m = h.ok("DescribeKey", json!({"KeyId": ka})).await;
    assert_eq!(m["KeyMetadata"]["KeyAgreementAlgorithms"], json!(["ECDH"]));
    let sym = h.create().await;
    let e = h.err("GetPublicKey", json!({"KeyId": sym})).await;
    assert_eq!(e.code, "UnsupportedOperationException");
}

#[tokio::test]
async fn derive_shared_secret_agrees_with_the_peer() {
    let h = harness().await;
    let a = h.create_asym("ECC_NIST_P384", "KEY_AGREEMENT").await;
    let b = h.create_asym("ECC_NIST_P384", "KEY_AGREEMENT").await;
    let a_pub = h.public_key(&a).await;
    let b_pub = h.public_key(&b).await;
    let ab = h
        .ok(
            "DeriveSharedSecret",
            json!({"KeyId": a, "KeyAgreementAlgorithm": "ECDH", "PublicKey": b64(&b_pub)}),
        )
        .await;
    let ba = h
        .ok(
            "DeriveSharedSecret",
            json!({"KeyId": b, "KeyAgreementAlgorithm": "ECDH", "PublicKey": b64(&a_pub)}),
        )
        .await;
    assert_eq!(ab["SharedSecret"], ba["SharedSecret"]);
    assert_eq!(unb64(&ab["SharedSecret"]).len(), 48);
    assert_eq!(ab["KeyAgreementAlgorithm"], "ECDH");
    assert_eq!(ab["KeyOrigin"], "AWS_KMS");
    assert_eq!(ab["KeyId"], arn(&a));
    // A key from an external peer (here made by the crypto facade) works the same.
    let peer = asymmetric::generate(KeyKind::EccNistP384).unwrap();
    let peer_pub = asymmetric::public_key_der(KeyKind::EccNistP384, &peer).unwrap();
    let v = h
        .ok(
            "DeriveSharedSecret",
            json!({"KeyId": a, "KeyAgreementAlgorithm": "ECDH", "PublicKey": b64(&peer_pub)}),
        )
        .await;
    let theirs = asymmetric::ecdh(KeyKind::EccNistP384, &peer, &a_pub).unwrap();
    assert_eq!(unb64(&v["SharedSecret"]), *theirs);

    let e = h
        .err(
            "DeriveSharedSecret",
            json!({"KeyId": a, "KeyAgreementAlgorithm": "ECDH", "PublicKey": b64(b"junk")}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    let p256 = h.create_asym("ECC_NIST_P256", "KEY_AGREEMENT").await;
    let p256_pub = h.public_key(&p256).await;
    let e = h
        .err(
            "DeriveSharedSecret",
            json!({"KeyId": a, "KeyAgreementAlgorithm": "ECDH", "PublicKey": b64(&p256_pub)}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    let signer = h.create_asym("ECC_NIST_P384", "SIGN_VERIFY").await;
    let e = h
        .err(
            "DeriveSharedSecret",
            json!({"KeyId": signer, "KeyAgreementAlgorithm": "ECDH", "PublicKey": b64(&b_pub)}),
        )
        .await;
    assert_eq!(e.code, "InvalidKeyUsageException");
    assert_eq!(
        e.message.unwrap(),
        format!(
            "{} key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret.",
            arn(&signer)
        )
    );
    let e = h
        .err(
            "DeriveSharedSecret",
            json!({"KeyId": a, "KeyAgreementAlgorithm": "ECDH", "PublicKey": b64(&b_pub), "DryRun": true}),
        )
        .await;
    assert_eq!(e.code, "DryRunOperationException");
    // secp256k1 has no KEY_AGREEMENT usage in KMS.
    let e = h
        .err(
            "CreateKey",
            json!({"KeySpec": "ECC_SECG_P256K1", "KeyUsage": "KEY_AGREEMENT"}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
}
