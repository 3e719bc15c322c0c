//! `citadel serve --database-url postgres://…` against a private PostgreSQL server (initdb +
//! pg_ctl in a temp dir): data survives a restart of Citadel, a second node on the same database
//! uses what the first created, and a database outage is a 503 that heals without a restart.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;

use citadel_store::pg_harness::PgServer;
use common::{Server, b64decode, json, stderr};
use serde_json::Value;

const ACCOUNT: &str = "111122223333";

fn ok(server: &Server, args: &[&str]) -> Value {
    let out = server.aws(ACCOUNT, "dev-secret", args);
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        stderr(&out)
    );
    json(&out)
}

fn node(pg: &PgServer, db: &str, data_dir: Option<&Path>, root_key: Option<&Path>) -> Server {
    // The URL on the command line carries no password; it comes from the environment.
    let mut b = Server::dev()
        .arg("--database-url")
        .arg(&pg.url_without_password(db))
        .env("CITADEL_DATABASE_PASSWORD", pg.password());
    if let Some(d) = data_dir {
        b = b.data_dir(d);
    }
    if let Some(k) = root_key {
        b = b.arg("--root-key-file").arg(k.to_str().unwrap());
    }
    b.start()
}

#[test]
fn citadel_on_postgres_restarts_and_shares_state_between_nodes() {
    let mut pg = PgServer::start();
    let db = pg.create_database("citadel");
    let work = tempfile::tempdir().unwrap();

    // --- Node A creates a key, encrypts, and stores a secret.
    // Explicit data dirs: they must outlive the processes (restart, shared root key).
    let a_dir = work.path().join("node-a");
    let a = node(&pg, &db, Some(&a_dir), None);
    let root_key = a_dir.join("root.key");
    assert!(
        !a_dir.join("citadel.db").exists(),
        "the data must go to PostgreSQL, not SQLite"
    );
    assert!(a.log().contains("opened PostgreSQL store"), "{}", a.log());
    let key =
        ok(&a, &["kms", "create-key", "--description", "on postgres"])["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_owned();
    let pt = work.path().join("plain.bin");
    std::fs::write(&pt, b"multi-node plaintext").unwrap();
    let enc = ok(
        &a,
        &[
            "kms",
            "encrypt",
            "--key-id",
            &key,
            "--plaintext",
            &format!("fileb://{}", pt.display()),
        ],
    );
    let ct_bin = work.path().join("cipher.bin");
    std::fs::write(&ct_bin, b64decode(enc["CiphertextBlob"].as_str().unwrap())).unwrap();
    ok(
        &a,
        &[
            "secretsmanager",
            "create-secret",
            "--name",
            "app/db",
            "--secret-string",
            "s3cr3t-value",
        ],
    );
    let rows: u64 = pg
        .psql(&db, "SELECT count(*) FROM citadel_entries")
        .parse()
        .unwrap();
    assert!(rows > 0);
    // Sealed at rest: the secret's value is not in the database in the clear.
    assert_eq!(
        pg.psql(
            &db,
            "SELECT count(*) FROM citadel_entries WHERE position('s3cr3t-value'::bytea in value) > 0"
        ),
        "0"
    );
    let a_log = a.log();
    assert!(
        !a_log.contains(pg.password()),
        "the database password reached the log"
    );
    assert_eq!(a.terminate().code(), Some(0));

    // --- A new process on the same database (and root key) reads everything back.
    let a2 = node(&pg, &db, Some(&a_dir), None);
    let dec = ok(
        &a2,
        &[
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &format!("fileb://{}", ct_bin.display()),
        ],
    );
    assert_eq!(
        b64decode(dec["Plaintext"].as_str().unwrap()),
        b"multi-node plaintext"
    );
    let v = ok(
        &a2,
        &[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "app/db",
        ],
    );
    assert_eq!(v["SecretString"], "s3cr3t-value");
    assert_eq!(
        ok(&a2, &["kms", "describe-key", "--key-id", &key])["KeyMetadata"]["Description"],
        "on postgres"
    );

    // --- A second node (own data dir, same database and root key) uses A's key and secret.
    let b = node(&pg, &db, Some(&work.path().join("node-b")), Some(&root_key));
    assert_ne!(b.data_dir, a_dir);
    let dec = ok(
        &b,
        &[
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &format!("fileb://{}", ct_bin.display()),
        ],
    );
    assert_eq!(
        b64decode(dec["Plaintext"].as_str().unwrap()),
        b"multi-node plaintext"
    );
    let enc_b = ok(
        &b,
        &[
            "kms",
            "encrypt",
            "--key-id",
            &key,
            "--plaintext",
            &format!("fileb://{}", pt.display()),
        ],
    );
    let ct_b = work.path().join("cipher-b.bin");
    std::fs::write(&ct_b, b64decode(enc_b["CiphertextBlob"].as_str().unwrap())).unwrap();
    let dec = ok(
        &a2,
        &[
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &format!("fileb://{}", ct_b.display()),
        ],
    );
    assert_eq!(
        b64decode(dec["Plaintext"].as_str().unwrap()),
        b"multi-node plaintext"
    );
    let v = ok(
        &b,
        &[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "app/db",
        ],
    );
    assert_eq!(v["SecretString"], "s3cr3t-value");
    // A key B creates is listed on A.
    let key_b = ok(&b, &["kms", "create-key"])["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let listed = ok(&a2, &["kms", "list-keys"]);
    let ids: Vec<&str> = listed["Keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["KeyId"].as_str().unwrap())
        .collect();
    assert!(
        ids.contains(&key.as_str()) && ids.contains(&key_b.as_str()),
        "{ids:?}"
    );

    // --- The database goes away: a clear 503, and service resumes when it is back.
    pg.stop();
    let out = b.aws(ACCOUNT, "dev-secret", &["kms", "create-key"]);
    assert!(!out.status.success());
    let err = stderr(&out);
    assert!(
        err.contains("ServiceUnavailableException") && err.contains("database"),
        "{err}\n{}",
        b.log()
    );
    pg.restart();
    ok(&b, &["kms", "create-key"]);
    ok(
        &a2,
        &[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "app/db",
        ],
    );
    assert!(!b.log().contains(pg.password()));
}
