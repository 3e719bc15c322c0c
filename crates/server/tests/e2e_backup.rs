//! `citadel operator backup` against a running server while it takes writes, and `citadel
//! operator restore` into an empty store of the other backend: SQLite → PostgreSQL → SQLite. A
//! node on the restored store, with the same root key, decrypts old ciphertexts and reads the
//! secret and parameters; another root key cannot unseal it; damaged backups and non-empty
//! targets are refused without writing anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use citadel_store::pg_harness::PgServer;
use common::{BIN, Server, b64decode, json, stderr, stdout};
use serde_json::Value;

/// Data lives in this account; its root may not take backups (they span every account).
const ACCOUNT: &str = "111122223333";
/// A dev-mode access key that is not 12 digits: the default (management) account's root.
const OPERATOR: (&str, &str) = ("AKIAOPERATOR", "dev-secret");

fn ok(server: &Server, args: &[&str]) -> Value {
    let out = server.aws(ACCOUNT, "dev-secret", args);
    assert!(
        out.status.success(),
        "aws {args:?} failed: {}",
        stderr(&out)
    );
    json(&out)
}

fn restore(from: &Path, target: &[&str], pg: Option<&PgServer>) -> Output {
    let mut cmd = Command::new(BIN);
    cmd.args(["operator", "restore", "--from"])
        .arg(from)
        .args(target)
        .env_remove("CITADEL_CONFIG")
        .env_remove("CITADEL_DATA_DIR")
        .env_remove("CITADEL_DATABASE_URL");
    match pg {
        Some(pg) => cmd.env("CITADEL_DATABASE_PASSWORD", pg.password()),
        None => cmd.env_remove("CITADEL_DATABASE_PASSWORD"),
    };
    cmd.output().unwrap()
}

fn pg_node(pg: &PgServer, db: &str, data_dir: &Path, root_key: &Path) -> Server {
    Server::dev()
        .data_dir(data_dir)
        .arg("--database-url")
        .arg(&pg.url_without_password(db))
        .arg("--root-key-file")
        .arg(root_key.to_str().unwrap())
        .env("CITADEL_DATABASE_PASSWORD", pg.password())
        .start()
}

fn sqlite_node(data_dir: &Path, root_key: &Path) -> Server {
    Server::dev()
        .data_dir(data_dir)
        .arg("--root-key-file")
        .arg(root_key.to_str().unwrap())
        .start()
}

/// The node serves what node A wrote before the backup.
fn assert_serves_old_data(node: &Server, ciphertext: &Path) {
    let dec = ok(
        node,
        &[
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &format!("fileb://{}", ciphertext.display()),
        ],
    );
    assert_eq!(
        b64decode(dec["Plaintext"].as_str().unwrap()),
        b"backed-up plaintext"
    );
    let v = ok(
        node,
        &[
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "app/db",
        ],
    );
    assert_eq!(v["SecretString"], "s3cr3t-value");
    let p = ok(
        node,
        &[
            "ssm",
            "get-parameter",
            "--name",
            "/app/password",
            "--with-decryption",
        ],
    );
    assert_eq!(p["Parameter"]["Value"], "p4ssw0rd-value");
    let p = ok(node, &["ssm", "get-parameter", "--name", "/app/url"]);
    assert_eq!(p["Parameter"]["Value"], "db.example.test:5432");
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn backup_while_writing_then_restore_across_backends() {
    let pg = PgServer::start();
    let work = tempfile::tempdir().unwrap();

    // --- Node A on SQLite: a KMS key and a ciphertext, a secret, parameters.
    let a_dir = work.path().join("a");
    let a = Server::dev().data_dir(&a_dir).start();
    let root_key = a_dir.join("root.key");
    let key = ok(&a, &["kms", "create-key"])["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let pt = work.path().join("plain.bin");
    std::fs::write(&pt, b"backed-up plaintext").unwrap();
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
    let ct = work.path().join("cipher.bin");
    std::fs::write(&ct, b64decode(enc["CiphertextBlob"].as_str().unwrap())).unwrap();
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
    for (name, value, kind) in [
        ("/app/url", "db.example.test:5432", "String"),
        ("/app/password", "p4ssw0rd-value", "SecureString"),
    ] {
        ok(
            &a,
            &[
                "ssm",
                "put-parameter",
                "--name",
                name,
                "--value",
                value,
                "--type",
                kind,
            ],
        );
    }

    // --- Backup while another client keeps writing parameters.
    let a = Arc::new(a);
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(std::sync::Mutex::new(Vec::<u32>::new()));
    let writer = {
        let (a, stop, acked) = (a.clone(), stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut i = 0u32;
            while !stop.load(Ordering::SeqCst) {
                let name = format!("/load/p{i:04}");
                let value = format!("v{i}");
                ok(
                    &a,
                    &[
                        "ssm",
                        "put-parameter",
                        "--name",
                        &name,
                        "--value",
                        &value,
                        "--type",
                        "String",
                    ],
                );
                acked.lock().unwrap().push(i);
                i += 1;
            }
        })
    };
    while acked.lock().unwrap().len() < 2 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let acked_before = acked.lock().unwrap().clone();
    let backup = work.path().join("a.backup");
    let out = a.operator(
        &["backup", "--out", backup.to_str().unwrap()],
        None,
        Some(OPERATOR),
    );
    assert!(out.status.success(), "backup failed: {}", stderr(&out));
    assert!(stdout(&out).contains("entries"), "{}", stdout(&out));
    // Let the writer land a few more writes after the snapshot, then stop it.
    let after = acked.lock().unwrap().len();
    while acked.lock().unwrap().len() < after + 2 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    writer.join().unwrap();
    let all_acked = acked.lock().unwrap().clone();

    assert_eq!(mode(&backup), 0o600);
    let bytes = std::fs::read(&backup).unwrap();
    assert_eq!(&bytes[..8], b"CITADELB");
    for plaintext in [
        b"s3cr3t-value".as_slice(),
        b"p4ssw0rd-value",
        b"backed-up plaintext",
    ] {
        assert!(
            !bytes.windows(plaintext.len()).any(|w| w == plaintext),
            "plaintext in the backup file"
        );
    }
    // No temporary file is left next to it.
    let leftovers: Vec<_> = std::fs::read_dir(work.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Only the management account's root may take a backup, and unsigned calls are refused.
    let out = a.operator(
        &["backup", "--out", work.path().join("x").to_str().unwrap()],
        None,
        Some((ACCOUNT, "dev-secret")),
    );
    assert!(!out.status.success());
    assert!(stderr(&out).contains("AccessDenied"), "{}", stderr(&out));
    assert!(!work.path().join("x").exists());

    // --- Restore into an empty PostgreSQL database.
    let db = pg.create_database("restored");
    let url = pg.url_without_password(&db);
    let out = restore(&backup, &["--database-url", &url], Some(&pg));
    assert!(out.status.success(), "restore failed: {}", stderr(&out));
    assert!(stdout(&out).contains("Restored"), "{}", stdout(&out));
    // A second restore into the now non-empty database is refused.
    let out = restore(&backup, &["--database-url", &url], Some(&pg));
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));

    // --- A node on PostgreSQL with A's root key serves A's data as of the snapshot.
    let b_dir = work.path().join("b");
    let b = pg_node(&pg, &db, &b_dir, &root_key);
    assert_serves_old_data(&b, &ct);
    let loaded = ok(&b, &["ssm", "get-parameters-by-path", "--path", "/load"]);
    let restored: Vec<u32> = loaded["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p["Name"].as_str().unwrap()["/load/p".len()..]
                .parse()
                .unwrap()
        })
        .collect();
    // Consistent: every write acknowledged before the backup began is in it, the set is a
    // prefix of the writer's sequence (no holes), and the last writes (after it) are not.
    for i in &acked_before {
        assert!(
            restored.contains(i),
            "write {i} acknowledged before the backup is missing"
        );
    }
    let mut sorted = restored.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, (0..sorted.len() as u32).collect::<Vec<_>>());
    assert!(
        sorted.len() < all_acked.len(),
        "writes after the snapshot are not in it"
    );
    // The restored node takes new writes.
    ok(
        &b,
        &[
            "ssm",
            "put-parameter",
            "--name",
            "/app/url",
            "--value",
            "db.moved.test:5432",
            "--type",
            "String",
            "--overwrite",
        ],
    );

    // --- A different root key cannot unseal the restored store.
    let wrong_key = work.path().join("wrong.key");
    let out = Command::new(BIN)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(work.path().join("wrong"))
        .args(["--database-url", &url, "--root-key-file"])
        .arg(&wrong_key)
        .env("CITADEL_DATABASE_PASSWORD", pg.password())
        .env_remove("CITADEL_CONFIG")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a wrong root key must not unseal");
    assert!(stderr(&out).contains("root key"), "{}", stderr(&out));

    // --- PostgreSQL → SQLite: backup from node B, restore into a new data directory.
    let backup_b = work.path().join("b.backup");
    let out = b.operator(
        &["backup", "--out", backup_b.to_str().unwrap()],
        None,
        Some(OPERATOR),
    );
    assert!(out.status.success(), "backup failed: {}", stderr(&out));
    let c_dir = work.path().join("c");
    let out = restore(&backup_b, &["--data-dir", c_dir.to_str().unwrap()], None);
    assert!(out.status.success(), "restore failed: {}", stderr(&out));
    assert_eq!(mode(&c_dir.join("citadel.db")), 0o600);
    let c = sqlite_node(&c_dir, &root_key);
    assert!(c.log().contains("opened SQLite store"), "{}", c.log());
    let dec = ok(
        &c,
        &[
            "kms",
            "decrypt",
            "--ciphertext-blob",
            &format!("fileb://{}", ct.display()),
        ],
    );
    assert_eq!(
        b64decode(dec["Plaintext"].as_str().unwrap()),
        b"backed-up plaintext"
    );
    let p = ok(&c, &["ssm", "get-parameter", "--name", "/app/url"]);
    assert_eq!(p["Parameter"]["Value"], "db.moved.test:5432");
    // Restoring into the data directory of a store that has data is refused.
    drop(c);
    let out = restore(&backup, &["--data-dir", c_dir.to_str().unwrap()], None);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));

    // --- Damaged backups are refused and write nothing: no database, no temporary file.
    let good = std::fs::read(&backup).unwrap();
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x40;
    for (what, data) in [
        ("truncated", good[..good.len() - 100].to_vec()),
        ("corrupted", flipped),
    ] {
        let bad = work.path().join(format!("{what}.backup"));
        std::fs::write(&bad, &data).unwrap();
        let d_dir = work.path().join(format!("d-{what}"));
        let out = restore(&bad, &["--data-dir", d_dir.to_str().unwrap()], None);
        assert!(!out.status.success(), "{what} backup restored");
        assert!(
            stderr(&out).contains("invalid backup file"),
            "{what}: {}",
            stderr(&out)
        );
        assert!(!d_dir.exists(), "{what}: something was written");
        // Into PostgreSQL too: the database stays untouched.
        let db = pg.create_database(&format!("bad_{what}"));
        let out = restore(
            &bad,
            &["--database-url", &pg.url_without_password(&db)],
            Some(&pg),
        );
        assert!(!out.status.success(), "{what} backup restored");
        // Checked before connecting: not even the schema was created.
        assert_eq!(
            pg.psql(
                &db,
                "SELECT count(*) FROM pg_tables WHERE tablename LIKE 'citadel%'"
            )
            .trim(),
            "0",
            "{what}"
        );
    }
    drop(b);
    drop(a);
}
