//! Imported key material (BYOK) against the real binary: the `aws` CLI and `openssl` follow
//! AWS's documented procedure (download the wrapping key and token, wrap with openssl, import),
//! plus deletion and re-import, the errors for wrong material and tokens, rotation to new
//! imported material, and the manual rotation of imported keys by re-pointing an alias.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, b64decode, json, stderr};
use serde_json::Value;

const ACCOUNT: &str = "111122223333";
const SECRET: &str = "dev-secret";
const REGION: &str = "us-east-1";

fn arn(id: &str) -> String {
    format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}")
}

fn fileb(path: &Path) -> String {
    format!("fileb://{}", path.display())
}

struct Cli<'a> {
    server: &'a Server,
    dir: &'a Path,
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
        if out.stdout.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            json(&out)
        }
    }

    /// Expects failure; returns the CLI's error text.
    fn fails(&self, args: &[&str]) -> String {
        let mut full = vec!["kms"];
        full.extend_from_slice(args);
        let out = self.server.aws(ACCOUNT, SECRET, &full);
        assert!(!out.status.success(), "aws {full:?} unexpectedly succeeded");
        stderr(&out)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn create_external(&self) -> String {
        let v = self.ok(&[
            "create-key",
            "--origin",
            "EXTERNAL",
            "--description",
            "byok",
        ]);
        assert_eq!(v["KeyMetadata"]["Origin"], "EXTERNAL");
        assert_eq!(v["KeyMetadata"]["KeyState"], "PendingImport");
        v["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned()
    }

    /// get-parameters-for-import, saving WrappingPublicKey.der and ImportToken.bin under
    /// `prefix`; returns their paths.
    fn parameters(&self, key: &str, algorithm: &str, prefix: &str) -> (PathBuf, PathBuf) {
        let v = self.ok(&[
            "get-parameters-for-import",
            "--key-id",
            key,
            "--wrapping-algorithm",
            algorithm,
            "--wrapping-key-spec",
            "RSA_3072",
        ]);
        assert_eq!(v["KeyId"], arn(key));
        assert!(v["ParametersValidTo"].is_number() || v["ParametersValidTo"].is_string());
        let public = self.path(&format!("{prefix}-WrappingPublicKey.der"));
        let token = self.path(&format!("{prefix}-ImportToken.bin"));
        std::fs::write(&public, b64decode(v["PublicKey"].as_str().unwrap())).unwrap();
        std::fs::write(&token, b64decode(v["ImportToken"].as_str().unwrap())).unwrap();
        (public, token)
    }

    fn import(
        &self,
        key: &str,
        token: &Path,
        wrapped: &Path,
        extra: &[&str],
    ) -> Result<Value, String> {
        let token = fileb(token);
        let wrapped = fileb(wrapped);
        let mut args = vec![
            "kms",
            "import-key-material",
            "--key-id",
            key,
            "--import-token",
            &token,
            "--encrypted-key-material",
            &wrapped,
        ];
        if !extra.contains(&"--expiration-model") {
            args.extend_from_slice(&["--expiration-model", "KEY_MATERIAL_DOES_NOT_EXPIRE"]);
        }
        args.extend_from_slice(extra);
        let out = self.server.aws(ACCOUNT, SECRET, &args);
        if out.status.success() {
            Ok(json(&out))
        } else {
            Err(stderr(&out))
        }
    }

    fn encrypt(&self, key: &str, text: &str) -> (PathBuf, String) {
        let plain = self.path(&format!("plain-{text}"));
        std::fs::write(&plain, text).unwrap();
        let v = self.ok(&["encrypt", "--key-id", key, "--plaintext", &fileb(&plain)]);
        let blob = self.path(&format!("blob-{text}"));
        std::fs::write(&blob, b64decode(v["CiphertextBlob"].as_str().unwrap())).unwrap();
        (blob, v["KeyId"].as_str().unwrap().to_owned())
    }

    fn decrypt(&self, blob: &Path) -> Result<(String, String), String> {
        let out = self.server.aws(
            ACCOUNT,
            SECRET,
            &["kms", "decrypt", "--ciphertext-blob", &fileb(blob)],
        );
        if !out.status.success() {
            return Err(stderr(&out));
        }
        let v = json(&out);
        Ok((
            String::from_utf8(b64decode(v["Plaintext"].as_str().unwrap())).unwrap(),
            v["KeyId"].as_str().unwrap().to_owned(),
        ))
    }

    fn state(&self, key: &str) -> Value {
        self.ok(&["describe-key", "--key-id", key])["KeyMetadata"].clone()
    }
}

fn openssl(args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .output()
        .expect("running openssl");
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn random_material(path: &Path) {
    openssl(&["rand", "-out", path.to_str().unwrap(), "32"]);
}

/// RSAES_OAEP_SHA_256, exactly as AWS's documentation has openssl do it.
fn wrap_oaep_sha256(public: &Path, input: &Path, output: &Path) {
    openssl(&[
        "pkeyutl",
        "-encrypt",
        "-in",
        input.to_str().unwrap(),
        "-out",
        output.to_str().unwrap(),
        "-inkey",
        public.to_str().unwrap(),
        "-keyform",
        "DER",
        "-pubin",
        "-pkeyopt",
        "rsa_padding_mode:oaep",
        "-pkeyopt",
        "rsa_oaep_md:sha256",
        "-pkeyopt",
        "rsa_mgf1_md:sha256",
    ]);
}

/// RSA_AES_KEY_WRAP_SHA_256: a fresh AES key wraps the material (RFC 5649), the wrapping
/// public key encrypts the AES key, and the two are concatenated.
fn wrap_rsa_aes_sha256(dir: &Path, public: &Path, input: &Path, output: &Path) {
    let aes = dir.join("aes-key.bin");
    openssl(&["rand", "-out", aes.to_str().unwrap(), "32"]);
    let aes_hex: String = std::fs::read(&aes)
        .unwrap()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let kwp = dir.join("material-kwp.bin");
    openssl(&[
        "enc",
        "-id-aes256-wrap-pad",
        "-K",
        &aes_hex,
        "-iv",
        "A65959A6",
        "-in",
        input.to_str().unwrap(),
        "-out",
        kwp.to_str().unwrap(),
    ]);
    let wrapped_aes = dir.join("aes-key-wrapped.bin");
    wrap_oaep_sha256(public, &aes, &wrapped_aes);
    let mut all = std::fs::read(&wrapped_aes).unwrap();
    all.extend(std::fs::read(&kwp).unwrap());
    std::fs::write(output, all).unwrap();
}

#[test]
fn byok_with_the_aws_cli_and_openssl() {
    let server = Server::dev().start();
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli {
        server: &server,
        dir: dir.path(),
    };
    let key = cli.create_external();
    let material = cli.path("PlaintextKeyMaterial.bin");
    random_material(&material);

    // Crypto before the import: the key is pending import.
    let plain = cli.path("p.txt");
    std::fs::write(&plain, "x").unwrap();
    let err = cli.fails(&["encrypt", "--key-id", &key, "--plaintext", &fileb(&plain)]);
    assert!(err.contains("KMSInvalidStateException"), "{err}");
    assert!(
        err.contains(&format!("{} is pending import.", arn(&key))),
        "{err}"
    );

    let (public, token) = cli.parameters(&key, "RSAES_OAEP_SHA_256", "k1");
    let wrapped = cli.path("EncryptedKeyMaterial.bin");
    wrap_oaep_sha256(&public, &material, &wrapped);
    let imported = cli.import(&key, &token, &wrapped, &[]).unwrap();
    assert_eq!(imported["KeyId"], arn(&key));
    let meta = cli.state(&key);
    assert_eq!(meta["KeyState"], "Enabled");
    assert_eq!(meta["ExpirationModel"], "KEY_MATERIAL_DOES_NOT_EXPIRE");
    assert_eq!(meta["CurrentKeyMaterialId"], imported["KeyMaterialId"]);

    let (blob, _) = cli.encrypt(&key, "first secret");
    assert_eq!(cli.decrypt(&blob).unwrap().0, "first secret");

    // Delete the material: the key waits for an import, old ciphertexts do not decrypt.
    let deleted = cli.ok(&["delete-imported-key-material", "--key-id", &key]);
    assert_eq!(deleted["KeyMaterialId"], imported["KeyMaterialId"]);
    assert_eq!(cli.state(&key)["KeyState"], "PendingImport");
    let err = cli.decrypt(&blob).unwrap_err();
    assert!(err.contains("KMSInvalidStateException"), "{err}");

    // Different material is refused.
    let other = cli.path("OtherMaterial.bin");
    random_material(&other);
    let (public2, token2) = cli.parameters(&key, "RSAES_OAEP_SHA_256", "k1-again");
    let wrapped_other = cli.path("EncryptedOther.bin");
    wrap_oaep_sha256(&public2, &other, &wrapped_other);
    let err = cli.import(&key, &token2, &wrapped_other, &[]).unwrap_err();
    assert!(err.contains("IncorrectKeyMaterialException"), "{err}");

    // A token of another key is refused.
    let key2 = cli.create_external();
    let (public3, token3) = cli.parameters(&key2, "RSA_AES_KEY_WRAP_SHA_256", "k2");
    let wrapped_for_key2 = cli.path("EncryptedForKey2.bin");
    wrap_rsa_aes_sha256(dir.path(), &public3, &material, &wrapped_for_key2);
    let err = cli
        .import(&key, &token3, &wrapped_for_key2, &[])
        .unwrap_err();
    assert!(err.contains("InvalidImportTokenException"), "{err}");

    // The same material, wrapped anew, brings the key and its old ciphertexts back.
    let rewrapped = cli.path("Rewrapped.bin");
    wrap_oaep_sha256(&public2, &material, &rewrapped);
    let again = cli.import(&key, &token2, &rewrapped, &[]).unwrap();
    assert_eq!(again["KeyMaterialId"], imported["KeyMaterialId"]);
    assert_eq!(cli.state(&key)["KeyState"], "Enabled");
    assert_eq!(cli.decrypt(&blob).unwrap().0, "first secret");

    // RSA_AES_KEY_WRAP_SHA_256 with openssl's AES key wrap with padding.
    let with_expiry = cli.import(
        &key2,
        &token3,
        &wrapped_for_key2,
        &[
            "--expiration-model",
            "KEY_MATERIAL_EXPIRES",
            "--valid-to",
            "2099-01-01T00:00:00Z",
        ],
    );
    // 2099 is more than 365 days away.
    let err = with_expiry.unwrap_err();
    assert!(err.contains("ValidationException"), "{err}");
    cli.import(&key2, &token3, &wrapped_for_key2, &[]).unwrap();
    let (blob2, owner) = cli.encrypt(&key2, "second secret");
    assert_eq!(owner, arn(&key2));
    assert_eq!(cli.decrypt(&blob2).unwrap().0, "second secret");

    // New material for an on-demand rotation: pending until rotate-key-on-demand.
    let next = cli.path("NextMaterial.bin");
    random_material(&next);
    let (public4, token4) = cli.parameters(&key, "RSAES_OAEP_SHA_256", "k1-next");
    let wrapped_next = cli.path("EncryptedNext.bin");
    wrap_oaep_sha256(&public4, &next, &wrapped_next);
    let pending = cli
        .import(
            &key,
            &token4,
            &wrapped_next,
            &["--import-type", "NEW_KEY_MATERIAL"],
        )
        .unwrap();
    let rotations = cli.ok(&[
        "list-key-rotations",
        "--key-id",
        &key,
        "--include-key-material",
        "ALL_KEY_MATERIAL",
    ]);
    let states: Vec<&str> = rotations["Rotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["KeyMaterialState"].as_str().unwrap())
        .collect();
    assert_eq!(states, ["CURRENT", "PENDING_ROTATION"]);
    cli.ok(&["rotate-key-on-demand", "--key-id", &key]);
    assert_eq!(
        cli.state(&key)["CurrentKeyMaterialId"],
        pending["KeyMaterialId"]
    );
    let rotations = cli.ok(&["list-key-rotations", "--key-id", &key]);
    assert_eq!(rotations["Rotations"][0]["RotationType"], "ON_DEMAND");
    assert_eq!(rotations["Rotations"][0]["ImportState"], "IMPORTED");
    let (blob3, _) = cli.encrypt(&key, "after rotation");
    assert_eq!(cli.decrypt(&blob3).unwrap().0, "after rotation");
    assert_eq!(cli.decrypt(&blob).unwrap().0, "first secret");

    // Automatic rotation does not apply to imported keys.
    let err = cli.fails(&["enable-key-rotation", "--key-id", &key]);
    assert!(err.contains("UnsupportedOperationException"), "{err}");
}

#[test]
fn manual_rotation_of_imported_keys_by_alias() {
    let server = Server::dev().start();
    let dir = tempfile::tempdir().unwrap();
    let cli = Cli {
        server: &server,
        dir: dir.path(),
    };
    let mut keys = Vec::new();
    for name in ["old", "new"] {
        let key = cli.create_external();
        let material = cli.path(&format!("{name}-material.bin"));
        random_material(&material);
        let (public, token) = cli.parameters(&key, "RSAES_OAEP_SHA_256", name);
        let wrapped = cli.path(&format!("{name}-wrapped.bin"));
        wrap_oaep_sha256(&public, &material, &wrapped);
        cli.import(&key, &token, &wrapped, &[]).unwrap();
        keys.push(key);
    }
    cli.ok(&[
        "create-alias",
        "--alias-name",
        "alias/app-byok",
        "--target-key-id",
        &keys[0],
    ]);
    let (before, owner) = cli.encrypt("alias/app-byok", "before");
    assert_eq!(owner, arn(&keys[0]));

    cli.ok(&[
        "update-alias",
        "--alias-name",
        "alias/app-byok",
        "--target-key-id",
        &keys[1],
    ]);
    let (after, owner) = cli.encrypt("alias/app-byok", "after");
    assert_eq!(owner, arn(&keys[1]));
    // Decrypt finds the key from the ciphertext: both generations still decrypt.
    assert_eq!(
        cli.decrypt(&before).unwrap(),
        ("before".into(), arn(&keys[0]))
    );
    assert_eq!(
        cli.decrypt(&after).unwrap(),
        ("after".into(), arn(&keys[1]))
    );
}

#[test]
fn byok_with_boto3() {
    let server = Server::dev().start();
    let out = server.python("kms_import.py", ACCOUNT, SECRET, &[]);
    assert!(
        out.status.success(),
        "kms_import.py failed: {}\n{}",
        stderr(&out),
        server.log()
    );
    let v = json(&out);
    assert_eq!(v["created_state"], "PendingImport");
    assert_eq!(v["origin"], "EXTERNAL");
    assert_eq!(v["encrypt_before_import"], "KMSInvalidStateException");
    assert_eq!(v["material_id_len"], 64);
    assert_eq!(v["state_after_import"], "Enabled");
    assert_eq!(v["decrypted"], "bring your own key");
    assert_eq!(v["state_after_delete"], "PendingImport");
    assert_eq!(v["decrypt_after_delete"], "KMSInvalidStateException");
    assert_eq!(v["other_material"], "IncorrectKeyMaterialException");
    assert_eq!(v["state_after_reimport"], "Enabled");
    assert_eq!(v["expiration_model"], "KEY_MATERIAL_EXPIRES");
    assert!(v["valid_to_days"].as_i64().unwrap() >= 29, "{v}");
    assert_eq!(v["decrypted_again"], "bring your own key");
    assert_eq!(v["wrong_token"], "InvalidImportTokenException");
}
