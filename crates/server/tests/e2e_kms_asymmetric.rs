//! Asymmetric KMS keys against the real binary in `--dev` mode: every key spec with every
//! signing algorithm through the real `aws` CLI, signatures checked by `openssl` with the public
//! key `get-public-key` returns, ECDH agreeing with `openssl pkeyutl -derive`, and AWS's errors
//! for bad input.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{Server, b64decode, json, stderr};
use serde_json::Value;

const ACCOUNT: &str = "111122223333";
const SECRET: &str = "dev-secret";

struct Fixture {
    server: Server,
    dir: tempfile::TempDir,
}

impl Fixture {
    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, bytes).unwrap();
        p
    }

    /// Runs `aws kms …` and returns its JSON output.
    fn kms(&self, args: &[&str]) -> Value {
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
    fn kms_fails(&self, args: &[&str]) -> String {
        let mut full = vec!["kms"];
        full.extend_from_slice(args);
        let out = self.server.aws(ACCOUNT, SECRET, &full);
        assert!(!out.status.success(), "aws {full:?} unexpectedly succeeded");
        stderr(&out)
    }

    fn create(&self, spec: &str, usage: &str) -> String {
        let v = self.kms(&["create-key", "--key-spec", spec, "--key-usage", usage]);
        let m = &v["KeyMetadata"];
        assert_eq!(m["KeySpec"], spec);
        assert_eq!(m["KeyUsage"], usage);
        m["KeyId"].as_str().unwrap().to_owned()
    }

    /// `get-public-key` → DER file → PEM via `openssl pkey -pubin -inform DER` (which proves
    /// openssl reads the SubjectPublicKeyInfo). Returns the PEM path (`None` for key types
    /// openssl 3.0 does not know, ML-DSA) and the GetPublicKey output.
    fn public_key(&self, key: &str, openssl_reads: bool) -> (Option<PathBuf>, Value) {
        let v = self.kms(&["get-public-key", "--key-id", key]);
        let der = self.write(
            &format!("{key}.der"),
            &b64decode(v["PublicKey"].as_str().unwrap()),
        );
        if !openssl_reads {
            return (None, v);
        }
        let pem = self.path(&format!("{key}.pem"));
        openssl(&[
            "pkey",
            "-pubin",
            "-inform",
            "DER",
            "-in",
            &der.display().to_string(),
            "-out",
            &pem.display().to_string(),
        ]);
        (Some(pem), v)
    }

    /// `aws kms sign`; returns the signature written to a file.
    fn sign(&self, key: &str, alg: &str, message: &Path, message_type: &str) -> PathBuf {
        let v = self.kms(&[
            "sign",
            "--key-id",
            key,
            "--signing-algorithm",
            alg,
            "--message-type",
            message_type,
            "--message",
            &fileb(message),
        ]);
        assert_eq!(v["SigningAlgorithm"], alg);
        let sig = b64decode(v["Signature"].as_str().unwrap());
        self.write(&format!("{key}-{alg}-{message_type}.sig"), &sig)
    }

    fn verify_args<'a>(key: &'a str, alg: &'a str, message: &'a str, sig: &'a str) -> Vec<&'a str> {
        vec![
            "verify",
            "--key-id",
            key,
            "--signing-algorithm",
            alg,
            "--message",
            message,
            "--signature",
            sig,
        ]
    }
}

fn fileb(path: &Path) -> String {
    format!("fileb://{}", path.display())
}

/// Runs openssl and asserts success; returns stdout.
fn openssl(args: &[&str]) -> Vec<u8> {
    let out = Command::new("openssl").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// openssl's name for the hash of a KMS signing algorithm.
fn hash_of(alg: &str) -> &'static str {
    if alg.ends_with("256") {
        "-sha256"
    } else if alg.ends_with("384") {
        "-sha384"
    } else {
        "-sha512"
    }
}

/// Verifies `sig` over `message` with openssl and the PEM public key, as a third party would.
fn openssl_verifies(alg: &str, pem: &Path, message: &Path, sig: &Path) {
    let (pem, message, sig) = (
        pem.display().to_string(),
        message.display().to_string(),
        sig.display().to_string(),
    );
    if alg == "ED25519_SHA_512" {
        openssl(&[
            "pkeyutl", "-verify", "-pubin", "-inkey", &pem, "-rawin", "-in", &message, "-sigfile",
            &sig,
        ]);
        return;
    }
    let mut args = vec!["dgst", hash_of(alg), "-verify", &pem, "-signature", &sig];
    if alg.starts_with("RSASSA_PSS") {
        // AWS's PSS salt is as long as the hash: openssl's -1.
        args.extend([
            "-sigopt",
            "rsa_padding_mode:pss",
            "-sigopt",
            "rsa_pss_saltlen:-1",
        ]);
    }
    args.push(&message);
    let out = openssl(&args);
    assert!(String::from_utf8_lossy(&out).contains("Verified OK"));
}

/// One signing key spec: every algorithm it offers, RAW and DIGEST, checked by openssl (but
/// ML-DSA, which openssl 3.0 does not know) and by `aws kms verify`, and a tampered signature.
fn check_signing_spec(f: &Fixture, spec: &str, algs: &[&str], message: &Path) {
    let key = f.create(spec, "SIGN_VERIFY");
    let ml_dsa = spec.starts_with("ML_DSA");
    let (pem, public) = f.public_key(&key, !ml_dsa);
    assert_eq!(public["KeySpec"], spec);
    assert_eq!(public["KeyUsage"], "SIGN_VERIFY");
    assert_eq!(
        public["SigningAlgorithms"].as_array().unwrap().len(),
        algs.len()
    );
    let described = f.kms(&["describe-key", "--key-id", &key]);
    assert_eq!(
        described["KeyMetadata"]["SigningAlgorithms"],
        public["SigningAlgorithms"]
    );
    for alg in algs {
        let raw = f.sign(&key, alg, message, "RAW");
        if let Some(pem) = &pem {
            openssl_verifies(alg, pem, message, &raw);
        }
        let v = f.kms(&Fixture::verify_args(
            &key,
            alg,
            &fileb(message),
            &fileb(&raw),
        ));
        assert_eq!(v["SignatureValid"], true, "{spec} {alg}");
        let digestible = !ml_dsa && *alg != "ED25519_SHA_512";
        if digestible {
            // The digest as a client computes it, signed in DIGEST mode, is a signature of
            // the message for openssl.
            let digest = f.write(
                &format!("{key}-{alg}.digest"),
                &openssl(&[
                    "dgst",
                    hash_of(alg),
                    "-binary",
                    &message.display().to_string(),
                ]),
            );
            let sig = f.sign(&key, alg, &digest, "DIGEST");
            openssl_verifies(alg, pem.as_ref().unwrap(), message, &sig);
        }
    }
    // A signature with one flipped byte is refused with AWS's empty-message exception.
    let alg = algs[0];
    let raw = f.path(&format!("{key}-{alg}-RAW.sig"));
    let mut bad = std::fs::read(&raw).unwrap();
    bad[7] ^= 0x01;
    let bad = f.write(&format!("{key}.bad"), &bad);
    let err = f.kms_fails(&Fixture::verify_args(
        &key,
        alg,
        &fileb(message),
        &fileb(&bad),
    ));
    assert!(
        err.contains("(KMSInvalidSignatureException)"),
        "{spec}: {err}"
    );
}

/// Every key spec with every signing algorithm it offers, RAW and DIGEST, verified by openssl
/// and by `aws kms verify`, plus a tampered signature; ECDH against openssl; bad input.
#[test]
fn every_spec_and_algorithm_with_the_aws_cli_and_openssl() {
    let f = Fixture {
        server: Server::dev().start(),
        dir: tempfile::tempdir().unwrap(),
    };
    let message = f.write(
        "message.bin",
        b"Citadel signs this with every asymmetric key spec.\n",
    );
    let rsa_algs: &[&str] = &[
        "RSASSA_PSS_SHA_256",
        "RSASSA_PSS_SHA_384",
        "RSASSA_PSS_SHA_512",
        "RSASSA_PKCS1_V1_5_SHA_256",
        "RSASSA_PKCS1_V1_5_SHA_384",
        "RSASSA_PKCS1_V1_5_SHA_512",
    ];
    let table: &[(&str, &[&str])] = &[
        ("RSA_2048", rsa_algs),
        ("RSA_3072", rsa_algs),
        ("RSA_4096", rsa_algs),
        ("ECC_NIST_P256", &["ECDSA_SHA_256"]),
        ("ECC_NIST_P384", &["ECDSA_SHA_384"]),
        ("ECC_NIST_P521", &["ECDSA_SHA_512"]),
        ("ECC_SECG_P256K1", &["ECDSA_SHA_256"]),
        ("ECC_NIST_EDWARDS25519", &["ED25519_SHA_512"]),
        ("ML_DSA_44", &["ML_DSA_SHAKE_256"]),
        ("ML_DSA_65", &["ML_DSA_SHAKE_256"]),
        ("ML_DSA_87", &["ML_DSA_SHAKE_256"]),
    ];
    // Three CLI workers at a time: the CLI's start-up dominates the run time.
    std::thread::scope(|scope| {
        for worker in 0..3 {
            let (f, message) = (&f, &message);
            scope.spawn(move || {
                for (spec, algs) in table.iter().skip(worker).step_by(3) {
                    check_signing_spec(f, spec, algs, message);
                }
            });
        }
    });

    // ECDH: KMS and openssl, each with its own private key and the other's public key, derive
    // the same secret.
    for (spec, curve) in [
        ("ECC_NIST_P256", "P-256"),
        ("ECC_NIST_P384", "P-384"),
        ("ECC_NIST_P521", "P-521"),
    ] {
        let key = f.create(spec, "KEY_AGREEMENT");
        let (kms_pem, public) = f.public_key(&key, true);
        assert_eq!(
            public["KeyAgreementAlgorithms"],
            serde_json::json!(["ECDH"])
        );
        let peer = f.path(&format!("peer-{curve}.pem"));
        let peer_der = f.path(&format!("peer-{curve}.der"));
        let shared = f.path(&format!("shared-{curve}.bin"));
        let (peer_s, peer_der_s) = (peer.display().to_string(), peer_der.display().to_string());
        openssl(&[
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            &format!("ec_paramgen_curve:{curve}"),
            "-out",
            &peer_s,
        ]);
        openssl(&[
            "pkey",
            "-in",
            &peer_s,
            "-pubout",
            "-outform",
            "DER",
            "-out",
            &peer_der_s,
        ]);
        let v = f.kms(&[
            "derive-shared-secret",
            "--key-id",
            &key,
            "--key-agreement-algorithm",
            "ECDH",
            "--public-key",
            &fileb(&peer_der),
        ]);
        assert_eq!(v["KeyAgreementAlgorithm"], "ECDH");
        assert_eq!(v["KeyOrigin"], "AWS_KMS");
        openssl(&[
            "pkeyutl",
            "-derive",
            "-inkey",
            &peer_s,
            "-peerkey",
            &kms_pem.unwrap().display().to_string(),
            "-out",
            &shared.display().to_string(),
        ]);
        assert_eq!(
            b64decode(v["SharedSecret"].as_str().unwrap()),
            std::fs::read(&shared).unwrap(),
            "{spec}"
        );
        // A public key that is not an SPKI is a validation error.
        let junk = f.write("junk.der", b"not a public key");
        let err = f.kms_fails(&[
            "derive-shared-secret",
            "--key-id",
            &key,
            "--key-agreement-algorithm",
            "ECDH",
            "--public-key",
            &fileb(&junk),
        ]);
        assert!(err.contains("(ValidationException)"), "{err}");
    }

    // Bad input.
    let ec = f.create("ECC_NIST_P256", "SIGN_VERIFY");
    let err = f.kms_fails(&[
        "sign",
        "--key-id",
        &ec,
        "--signing-algorithm",
        "RSASSA_PSS_SHA_256",
        "--message",
        &fileb(&message),
    ]);
    assert!(
        err.contains("(InvalidKeyUsageException)")
            && err.contains(
                "Algorithm RSASSA_PSS_SHA_256 is incompatible with key spec ECC_NIST_P256."
            ),
        "{err}"
    );
    let short = f.write("short.bin", &[0u8; 31]);
    let err = f.kms_fails(&[
        "sign",
        "--key-id",
        &ec,
        "--signing-algorithm",
        "ECDSA_SHA_256",
        "--message-type",
        "DIGEST",
        "--message",
        &fileb(&short),
    ]);
    assert!(
        err.contains("(ValidationException)")
            && err.contains("Digest is invalid length for algorithm ECDSA_SHA_256."),
        "{err}"
    );
    let sym = f.kms(&["create-key"])["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let err = f.kms_fails(&[
        "sign",
        "--key-id",
        &sym,
        "--signing-algorithm",
        "ECDSA_SHA_256",
        "--message",
        &fileb(&message),
    ]);
    let sym_arn = format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/{sym}");
    assert!(
        err.contains("(InvalidKeyUsageException)")
            && err.contains(&format!(
                "{sym_arn} key usage is ENCRYPT_DECRYPT which is not valid for Sign."
            )),
        "{err}"
    );
    let err = f.kms_fails(&["get-public-key", "--key-id", &sym]);
    assert!(err.contains("(UnsupportedOperationException)"), "{err}");
}
