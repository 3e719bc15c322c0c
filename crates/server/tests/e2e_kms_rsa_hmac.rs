//! HMAC keys, RSA encryption keys and data key pairs against the real binary in `--dev` mode,
//! driven by the real `aws` CLI, with `openssl` on the other side: it encrypts with the public
//! key KMS hands out, and checks that data-key-pair private keys match their public keys.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, b64decode, json, stderr};
use serde_json::Value;

const ACCOUNT: &str = "111122223333";
const SECRET: &str = "dev-secret";
const REGION: &str = "us-east-1";

fn arn(id: &str) -> String {
    format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}")
}

fn blob(v: &Value) -> Vec<u8> {
    b64decode(v.as_str().unwrap())
}

fn fileb(path: &Path) -> String {
    format!("fileb://{}", path.display())
}

struct Cli<'a> {
    server: &'a Server,
}

impl Cli<'_> {
    fn ok(&self, args: &[&str]) -> Value {
        let mut full = vec!["kms"];
        full.extend_from_slice(args);
        let out = self.server.aws(ACCOUNT, SECRET, &full);
        assert!(
            out.status.success(),
            "aws {full:?} failed: {}",
            stderr(&out)
        );
        json(&out)
    }

    /// Runs `aws kms …`, expects failure, returns the CLI's error text.
    fn fails(&self, args: &[&str]) -> String {
        let mut full = vec!["kms"];
        full.extend_from_slice(args);
        let out = self.server.aws(ACCOUNT, SECRET, &full);
        assert!(!out.status.success(), "aws {full:?} unexpectedly succeeded");
        stderr(&out).trim().to_owned()
    }

    fn create(&self, spec: &str, usage: &str) -> String {
        self.ok(&["create-key", "--key-spec", spec, "--key-usage", usage])["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

/// Asserts the CLI reported `code` for `op`, with `message` when given (AWS's empty messages are
/// only checked for their code).
fn assert_error(err: &str, op: &str, code: &str, message: Option<&str>) {
    let prefix = format!("An error occurred ({code}) when calling the {op} operation");
    assert!(err.contains(&prefix), "expected {prefix}, got: {err}");
    if let Some(m) = message {
        assert!(err.ends_with(m), "expected message {m:?}, got: {err}");
    }
}

fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn hmac_keys_with_the_aws_cli() {
    let server = Server::dev().start();
    let cli = Cli { server: &server };
    let dir = tempfile::tempdir().unwrap();
    let msg = dir.path().join("msg.bin");
    std::fs::write(&msg, b"message to authenticate").unwrap();
    for (spec, alg, len) in [
        ("HMAC_224", "HMAC_SHA_224", 28),
        ("HMAC_256", "HMAC_SHA_256", 32),
        ("HMAC_384", "HMAC_SHA_384", 48),
        ("HMAC_512", "HMAC_SHA_512", 64),
    ] {
        let key = cli.create(spec, "GENERATE_VERIFY_MAC");
        let v = cli.ok(&[
            "generate-mac",
            "--key-id",
            &key,
            "--message",
            &fileb(&msg),
            "--mac-algorithm",
            alg,
        ]);
        assert_eq!(v["KeyId"], arn(&key));
        assert_eq!(v["MacAlgorithm"], alg);
        let mac = blob(&v["Mac"]);
        assert_eq!(mac.len(), len);
        let mac_file = dir.path().join("mac.bin");
        std::fs::write(&mac_file, &mac).unwrap();
        let verify = |mac_path: &Path, algorithm: &str| {
            vec![
                "verify-mac".to_owned(),
                "--key-id".to_owned(),
                key.clone(),
                "--message".to_owned(),
                fileb(&msg),
                "--mac-algorithm".to_owned(),
                algorithm.to_owned(),
                "--mac".to_owned(),
                fileb(mac_path),
            ]
        };
        let args = verify(&mac_file, alg);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let v = cli.ok(&args);
        assert_eq!(v["MacValid"], true);
        assert_eq!(v["KeyId"], arn(&key));

        let mut flipped = mac.clone();
        flipped[len - 1] ^= 0x80;
        let bad_file = dir.path().join("bad.bin");
        std::fs::write(&bad_file, &flipped).unwrap();
        let args = verify(&bad_file, alg);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_error(
            &cli.fails(&args),
            "VerifyMac",
            "KMSInvalidMacException",
            None,
        );

        let other = if alg == "HMAC_SHA_512" {
            "HMAC_SHA_256"
        } else {
            "HMAC_SHA_512"
        };
        let args = verify(&mac_file, other);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        assert_error(
            &cli.fails(&args),
            "VerifyMac",
            "InvalidKeyUsageException",
            Some(&format!(
                "Algorithm {other} is incompatible with key spec {spec}."
            )),
        );
    }
}

#[test]
fn rsa_keys_interoperate_with_openssl() {
    let server = Server::dev().start();
    let cli = Cli { server: &server };
    let dir = tempfile::tempdir().unwrap();
    let pt_file = dir.path().join("pt.bin");
    let ct_file = dir.path().join("ct.bin");
    let pub_file = dir.path().join("pub.der");
    let plaintext = b"wrapped by openssl, unwrapped by KMS";
    std::fs::write(&pt_file, plaintext).unwrap();
    for (spec, modulus) in [("RSA_2048", 256), ("RSA_3072", 384), ("RSA_4096", 512)] {
        let key = cli.create(spec, "ENCRYPT_DECRYPT");
        let public = cli.ok(&["get-public-key", "--key-id", &key]);
        std::fs::write(&pub_file, blob(&public["PublicKey"])).unwrap();
        for (alg, md, hash_len) in [
            ("RSAES_OAEP_SHA_1", "sha1", 20),
            ("RSAES_OAEP_SHA_256", "sha256", 32),
        ] {
            // openssl encrypts with the public key; KMS decrypts.
            let ct = openssl(&[
                "pkeyutl",
                "-encrypt",
                "-pubin",
                "-inkey",
                pub_file.to_str().unwrap(),
                "-keyform",
                "DER",
                "-pkeyopt",
                "rsa_padding_mode:oaep",
                "-pkeyopt",
                &format!("rsa_oaep_md:{md}"),
                "-pkeyopt",
                &format!("rsa_mgf1_md:{md}"),
                "-in",
                pt_file.to_str().unwrap(),
            ]);
            assert_eq!(ct.len(), modulus);
            std::fs::write(&ct_file, &ct).unwrap();
            let decrypt = [
                "decrypt",
                "--key-id",
                &key,
                "--ciphertext-blob",
                &fileb(&ct_file),
                "--encryption-algorithm",
                alg,
            ];
            let d = cli.ok(&decrypt);
            assert_eq!(blob(&d["Plaintext"]), plaintext, "{spec} {alg}");
            assert_eq!(d["EncryptionAlgorithm"], alg);
            assert_eq!(d["KeyId"], arn(&key));

            // KMS encrypts, KMS decrypts; the ciphertext is raw RSA output.
            let e = cli.ok(&[
                "encrypt",
                "--key-id",
                &key,
                "--plaintext",
                &fileb(&pt_file),
                "--encryption-algorithm",
                alg,
            ]);
            assert_eq!(e["EncryptionAlgorithm"], alg);
            let ct = blob(&e["CiphertextBlob"]);
            assert_eq!(ct.len(), modulus);
            std::fs::write(&ct_file, &ct).unwrap();
            assert_eq!(blob(&cli.ok(&decrypt)["Plaintext"]), plaintext);

            // A ciphertext one byte short.
            std::fs::write(&ct_file, &ct[1..]).unwrap();
            assert_error(
                &cli.fails(&decrypt),
                "Decrypt",
                "InvalidCiphertextException",
                None,
            );

            // AWS's size limit, exactly at and just over it.
            let max = modulus - 2 * hash_len - 2;
            let big = dir.path().join("big.bin");
            std::fs::write(&big, vec![7u8; max]).unwrap();
            let encrypt_big = [
                "encrypt",
                "--key-id",
                &key,
                "--plaintext",
                &fileb(&big),
                "--encryption-algorithm",
                alg,
            ];
            cli.ok(&encrypt_big);
            std::fs::write(&big, vec![7u8; max + 1]).unwrap();
            assert_error(
                &cli.fails(&encrypt_big),
                "Encrypt",
                "ValidationException",
                Some(&format!(
                    "Algorithm {alg} and key spec {spec} cannot encrypt data larger than {max} bytes."
                )),
            );
        }
        // No algorithm means SYMMETRIC_DEFAULT, which an RSA key does not offer.
        assert_error(
            &cli.fails(&["encrypt", "--key-id", &key, "--plaintext", &fileb(&pt_file)]),
            "Encrypt",
            "InvalidKeyUsageException",
            Some(&format!(
                "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec {spec}."
            )),
        );
    }
}

#[test]
fn data_key_pairs_decrypt_to_private_keys_matching_their_public_keys() {
    let server = Server::dev().start();
    let cli = Cli { server: &server };
    let dir = tempfile::tempdir().unwrap();
    let key = cli.ok(&["create-key"])["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let blob_file = dir.path().join("blob.bin");
    let priv_file = dir.path().join("priv.der");
    for spec in [
        "RSA_2048",
        "RSA_3072",
        "RSA_4096",
        "ECC_NIST_P256",
        "ECC_NIST_P384",
        "ECC_NIST_P521",
        "ECC_SECG_P256K1",
        "ECC_NIST_EDWARDS25519",
    ] {
        for op in [
            "generate-data-key-pair",
            "generate-data-key-pair-without-plaintext",
        ] {
            let v = cli.ok(&[
                op,
                "--key-id",
                &key,
                "--key-pair-spec",
                spec,
                "--encryption-context",
                "purpose=pair",
            ]);
            assert_eq!(v["KeyPairSpec"], spec);
            assert_eq!(v["KeyId"], arn(&key));
            std::fs::write(&blob_file, blob(&v["PrivateKeyCiphertextBlob"])).unwrap();
            let d = cli.ok(&[
                "decrypt",
                "--ciphertext-blob",
                &fileb(&blob_file),
                "--encryption-context",
                "purpose=pair",
            ]);
            let private = blob(&d["Plaintext"]);
            if op == "generate-data-key-pair" {
                assert_eq!(blob(&v["PrivateKeyPlaintext"]), private);
            } else {
                assert!(v.get("PrivateKeyPlaintext").is_none());
            }
            std::fs::write(&priv_file, &private).unwrap();
            let derived = openssl(&[
                "pkey",
                "-in",
                priv_file.to_str().unwrap(),
                "-inform",
                "DER",
                "-pubout",
                "-outform",
                "DER",
            ]);
            assert_eq!(derived, blob(&v["PublicKey"]), "{spec} {op}");
        }
    }
    assert_error(
        &cli.fails(&[
            "generate-data-key-pair",
            "--key-id",
            &key,
            "--key-pair-spec",
            "SM2",
        ]),
        "GenerateDataKeyPair",
        "UnsupportedOperationException",
        None,
    );
    let rsa = cli.create("RSA_2048", "ENCRYPT_DECRYPT");
    assert_error(
        &cli.fails(&[
            "generate-data-key-pair",
            "--key-id",
            &rsa,
            "--key-pair-spec",
            "ECC_NIST_P256",
        ]),
        "GenerateDataKeyPair",
        "InvalidKeyUsageException",
        None,
    );
}
