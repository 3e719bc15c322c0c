//! Production mode: only known credentials, TLS by default, writes that survive `kill -9`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{Server, json, parse_init, stderr, stdout};
use serde_json::{Value, json};

const ROOT_ID: &str = "AKIACITADELTESTROOT1";
const ROOT_SECRET: &str = "cItAdElTeStSeCrEt/0123456789abcdefGHIJKL";

fn production_file_seal() -> common::ServerBuilder {
    Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .env("CITADEL_ROOT_ACCESS_KEY_ID", ROOT_ID)
        .env("CITADEL_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
}

fn raw(server: &Server, id: &str, secret: &str, spec: Value) -> Value {
    let out = server.python("raw.py", id, secret, &[&spec.to_string()]);
    assert!(out.status.success(), "raw.py failed: {}", stderr(&out));
    json(&out)
}

#[test]
fn only_known_credentials_with_the_right_secret_are_accepted() {
    let server = production_file_seal().start();

    let out = server.aws(ROOT_ID, ROOT_SECRET, &["sts", "get-caller-identity"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["Arn"], "arn:aws:iam::000000000000:root");

    // Wrong secret: query protocol and JSON protocol each answer in their own dialect.
    let out = server.aws(
        ROOT_ID,
        "wrong-secret-wrong-secret-wrong-secret00",
        &["sts", "get-caller-identity"],
    );
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("SignatureDoesNotMatch"),
        "{}",
        stderr(&out)
    );
    let r = raw(
        &server,
        ROOT_ID,
        "wrong-secret-wrong-secret-wrong-secret00",
        json!({
        "target": "TrentService.ListKeys", "body": "{}",
        "content_type": "application/x-amz-json-1.1", "signing_name": "kms"}),
    );
    assert_eq!(r["status"], 400);
    assert_eq!(r["json"]["__type"], "InvalidSignatureException");
    assert_eq!(
        r["json"]["message"],
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );

    // Unknown access key.
    let out = server.aws(
        "AKIAUNKNOWNKEY000000",
        ROOT_SECRET,
        &["sts", "get-caller-identity"],
    );
    assert!(
        stderr(&out).contains("InvalidClientTokenId"),
        "{}",
        stderr(&out)
    );
    let r = raw(
        &server,
        "AKIAUNKNOWNKEY000000",
        ROOT_SECRET,
        json!({
        "target": "TrentService.ListKeys", "body": "{}",
        "content_type": "application/x-amz-json-1.1", "signing_name": "kms"}),
    );
    assert_eq!(r["json"]["__type"], "UnrecognizedClientException");
    assert_eq!(
        r["json"]["message"],
        "The security token included in the request is invalid."
    );

    // Body altered after signing.
    let r = raw(
        &server,
        ROOT_ID,
        ROOT_SECRET,
        json!({
        "target": "TrentService.ListKeys", "body": "{\"Limit\": 5}",
        "tamper_body": "{\"Limit\": 6}",
        "content_type": "application/x-amz-json-1.1", "signing_name": "kms"}),
    );
    assert_eq!(r["json"]["__type"], "InvalidSignatureException", "{r}");

    // A session token presented with a long-term key is refused.
    let r = raw(
        &server,
        ROOT_ID,
        ROOT_SECRET,
        json!({
        "target": "TrentService.ListKeys", "body": "{}", "session_token": "FwoGZXIvYXdzEXAMPLE",
        "content_type": "application/x-amz-json-1.1", "signing_name": "kms"}),
    );
    assert_eq!(r["json"]["__type"], "UnrecognizedClientException", "{r}");

    // Operator init is for production servers without root credentials only.
    let out = server.operator(&["init"], None, None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already initialized"),
        "{}",
        stderr(&out)
    );

    // The right signature reaches the operation.
    let r = raw(
        &server,
        ROOT_ID,
        ROOT_SECRET,
        json!({
        "target": "TrentService.ListKeys", "body": "{}",
        "content_type": "application/x-amz-json-1.1", "signing_name": "kms"}),
    );
    assert_eq!(r["status"], 200, "{r}");
    assert_eq!(r["json"], json!({"Keys": [], "Truncated": false}));

    let log = server.log();
    assert!(
        !log.contains(ROOT_SECRET),
        "the root secret reached the log"
    );
}

#[test]
fn credentials_created_at_init_survive_kill_9() {
    let server = Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .start();
    let init = parse_init(&server.operator(&["init"], None, None));
    let (id, secret) = (init.access_key_id, init.secret_access_key);
    assert!(
        !server.log().contains(&secret),
        "the root secret reached the log"
    );

    // A second init is refused: the secret is shown once.
    let out = server.operator(&["init"], None, None);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("already initialized"),
        "{}",
        stderr(&out)
    );

    let (data_dir, _keep) = server.kill9();
    let server = Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .data_dir(&data_dir)
        .start();
    let out = server.aws(&id, &secret, &["sts", "get-caller-identity"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["Account"], "000000000000");
}

#[test]
fn production_serves_tls_from_the_internal_ca() {
    let server = Server::production()
        .arg("--seal")
        .arg("file")
        .env("CITADEL_ROOT_ACCESS_KEY_ID", ROOT_ID)
        .env("CITADEL_ROOT_SECRET_ACCESS_KEY", ROOT_SECRET)
        .start();
    assert!(
        server.url.starts_with("https://127.0.0.1:"),
        "{}",
        server.url
    );
    let ca = server.data_dir.join("tls/ca.pem");
    assert!(ca.exists());

    let out = server.aws(
        ROOT_ID,
        ROOT_SECRET,
        &[
            "--ca-bundle",
            ca.to_str().unwrap(),
            "sts",
            "get-caller-identity",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(json(&out)["Arn"], "arn:aws:iam::000000000000:root");

    // The audit record names what the connection negotiated, as CloudTrail's tlsDetails do.
    let out = server.aws(
        ROOT_ID,
        ROOT_SECRET,
        &[
            "--ca-bundle",
            ca.to_str().unwrap(),
            "cloudtrail",
            "lookup-events",
            "--lookup-attributes",
            "AttributeKey=EventName,AttributeValue=GetCallerIdentity",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let found = json(&out);
    let record: serde_json::Value =
        serde_json::from_str(found["Events"][0]["CloudTrailEvent"].as_str().unwrap()).unwrap();
    let tls = &record["tlsDetails"];
    assert!(
        tls["tlsVersion"] == "TLSv1.3" || tls["tlsVersion"] == "TLSv1.2",
        "{record}"
    );
    assert!(
        tls["cipherSuite"].as_str().unwrap().contains("AES"),
        "{record}"
    );
    assert_eq!(
        tls["clientProvidedHostHeader"],
        server.url.trim_start_matches("https://")
    );

    // Without trusting the CA the client refuses the connection.
    let out = server.aws(ROOT_ID, ROOT_SECRET, &["sts", "get-caller-identity"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).to_lowercase().contains("ssl")
            || stderr(&out).to_lowercase().contains("certificate"),
        "{}",
        stderr(&out)
    );

    // openssl sees TLS 1.3 (or 1.2) with a certificate issued by the internal CA.
    let addr = server.url.trim_start_matches("https://").to_owned();
    let out = std::process::Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &addr,
            "-CAfile",
            ca.to_str().unwrap(),
            "-verify_return_error",
            "-brief",
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let all = format!("{}{}", stdout(&out), stderr(&out));
    assert!(all.contains("Verification: OK"), "{all}");
}

#[test]
fn a_flipped_byte_in_the_database_is_detected_not_served() {
    let server = Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .start();
    let init = parse_init(&server.operator(&["init"], None, None));
    let (id, secret) = (init.access_key_id, init.secret_access_key);
    let (data_dir, _keep) = server.kill9();

    // Flip one byte in the middle of the sealed access-key record, straight in the SQLite file.
    let db = data_dir.join("citadel.db");
    let script = format!(
        "import sqlite3\n\
         c = sqlite3.connect({db:?})\n\
         k = 'iam/access-key/{id}'\n\
         (v,) = c.execute('select value from entries where key = ?', (k,)).fetchone()\n\
         v = bytearray(v); v[len(v) // 2] ^= 0x01\n\
         c.execute('update entries set value = ? where key = ?', (bytes(v), k))\n\
         c.commit()\n",
        db = db.to_str().unwrap()
    );
    let out = std::process::Command::new("python3")
        .arg("-c")
        .arg(&script)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));

    let server = Server::production()
        .arg("--seal")
        .arg("file")
        .arg("--insecure-http")
        .data_dir(&data_dir)
        .start();
    let out = server.aws(&id, &secret, &["sts", "get-caller-identity"]);
    assert!(
        !out.status.success(),
        "a tampered credential must not authenticate"
    );
    assert!(stderr(&out).contains("InternalFailure"), "{}", stderr(&out));
    let log = server.log();
    assert!(
        log.contains("corrupt") && log.contains(&format!("iam/access-key/{id}")),
        "the corruption must be reported with the key name: {log}"
    );
    assert!(!log.contains(&secret));
}
