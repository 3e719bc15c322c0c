#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! Snapshots, bulk loads and backup files across both backends: the snapshot/load conformance
//! checks on PostgreSQL (SQLite runs them in its unit tests), and a sealed store moved
//! SQLite → file → PostgreSQL → file → SQLite, readable with the same root key only; damaged
//! files and non-empty targets are refused without writing anything.

use std::path::Path;
use std::sync::Arc;

use citadel_store::pg_harness::PgServer;
use citadel_store::{
    Backend, Expect, PostgresBackend, PostgresOptions, RootKey, SealedStore, SqliteBackend,
    StoreError, backup_to_file, restore_file, testing, verify_file,
};

async fn pg(url: &str) -> PostgresBackend {
    PostgresBackend::connect(url, PostgresOptions::default())
        .await
        .unwrap()
}

async fn all_entries(b: &dyn Backend) -> Vec<(String, citadel_store::Entry)> {
    let mut out = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = b.list("", after.as_deref(), 500).await.unwrap();
        let done = page.len() < 500;
        after = page.last().map(|(k, _)| k.clone());
        out.extend(page);
        if done {
            return out;
        }
    }
}

fn mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn snapshots_loads_and_backup_files_across_backends() {
    let server = PgServer::start();
    let dir = tempfile::tempdir().unwrap();

    // --- Conformance on PostgreSQL.
    let db = server.create_database("snap");
    testing::snapshot::snapshot_conformance(Arc::new(pg(&server.url(&db)).await)).await;
    let db = server.create_database("load");
    testing::snapshot::load_conformance(Arc::new(pg(&server.url(&db)).await)).await;

    // --- A sealed SQLite store with data.
    let root = RootKey::generate().unwrap();
    let sqlite = Arc::new(SqliteBackend::open(dir.path().join("a")).await.unwrap());
    let store = SealedStore::new(sqlite.clone());
    store.initialize_file(&root).await.unwrap();
    store.unseal_with_key(&root).await.unwrap();
    for i in 0..700 {
        store
            .put(
                &format!("kms/k{i:04}"),
                format!("plaintext-{i}").as_bytes(),
                Expect::Absent,
            )
            .await
            .unwrap();
    }
    store.rotate().await.unwrap(); // two keyring terms in the copy
    store
        .put("secrets/s", b"after-rotation", Expect::Absent)
        .await
        .unwrap();

    let file = dir.path().join("a.backup");
    let header = backup_to_file(sqlite.as_ref(), &file, "2026-01-01T00:00:00Z".into())
        .await
        .unwrap();
    assert_eq!(header.source_backend, "sqlite");
    assert_eq!(
        header.entries,
        all_entries(sqlite.as_ref()).await.len() as u64
    );
    assert_eq!(mode(&file), 0o600);
    assert_eq!(verify_file(&file).unwrap(), header);
    let bytes = std::fs::read(&file).unwrap();
    assert!(
        !bytes.windows(10).any(|w| w == b"plaintext-"),
        "no plaintext in the file"
    );

    // --- SQLite → PostgreSQL: same entries and versions; the same root key reads the data.
    let db = server.create_database("restored");
    let target = pg(&server.url(&db)).await;
    let report = restore_file(&file, &target).await.unwrap();
    assert_eq!(report.header, header);
    assert_eq!(
        all_entries(&target).await,
        all_entries(sqlite.as_ref()).await
    );
    let moved = SealedStore::new(Arc::new(target.clone()));
    moved.unseal_with_key(&root).await.unwrap();
    assert_eq!(
        moved
            .get("kms/k0042")
            .await
            .unwrap()
            .unwrap()
            .value
            .as_slice(),
        b"plaintext-42"
    );
    assert_eq!(
        moved
            .get("secrets/s")
            .await
            .unwrap()
            .unwrap()
            .value
            .as_slice(),
        b"after-rotation"
    );
    // Versions keep growing above the restored ones on the new backend.
    let old = moved.get("kms/k0001").await.unwrap().unwrap().version;
    let max = report.loaded.max_version;
    let new = moved
        .put("kms/k0001", b"changed", Expect::Version(old))
        .await
        .unwrap();
    assert!(new > max);

    // A different root key cannot unseal the copy.
    let stranger = SealedStore::new(Arc::new(pg(&server.url(&db)).await));
    let err = stranger
        .unseal_with_key(&RootKey::generate().unwrap())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidRootKey), "{err:?}");

    // --- A non-empty target is refused, unchanged.
    let before = all_entries(&target).await;
    let err = restore_file(&file, &target).await.unwrap_err();
    assert!(err.to_string().contains("not empty"), "{err}");
    assert_eq!(all_entries(&target).await, before);

    // --- PostgreSQL → SQLite.
    let file2 = dir.path().join("b.backup");
    let header2 = backup_to_file(&target, &file2, "2026-01-02T00:00:00Z".into())
        .await
        .unwrap();
    assert_eq!(header2.source_backend, "postgres");
    let back = SqliteBackend::open(dir.path().join("b")).await.unwrap();
    restore_file(&file2, &back).await.unwrap();
    let back_store = SealedStore::new(Arc::new(back.clone()));
    back_store.unseal_with_key(&root).await.unwrap();
    assert_eq!(
        back_store
            .get("kms/k0001")
            .await
            .unwrap()
            .unwrap()
            .value
            .as_slice(),
        b"changed"
    );
    assert!(back.put("x/y", Vec::new(), Expect::Any).await.unwrap() > new);

    // --- Damaged files are refused before anything is written.
    let fresh = SqliteBackend::open(dir.path().join("c")).await.unwrap();
    let good = std::fs::read(&file).unwrap();
    let mut cases: Vec<(&str, Vec<u8>)> = vec![
        ("truncated", good[..good.len() / 2].to_vec()),
        ("no trailer", good[..good.len() - 32].to_vec()),
        ("empty", Vec::new()),
        ("extra byte", [good.as_slice(), b"x"].concat()),
    ];
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x01;
    cases.push(("one bit flipped", flipped));
    let mut version = good.clone();
    version[11] = 9;
    cases.push(("unknown format version", version));
    let mut magic = good.clone();
    magic[0] = b'X';
    cases.push(("wrong magic", magic));
    for (what, bytes) in cases {
        let bad = dir.path().join("bad.backup");
        std::fs::write(&bad, &bytes).unwrap();
        let err = restore_file(&bad, &fresh).await.unwrap_err();
        assert!(
            matches!(err, StoreError::InvalidBackup(_)),
            "{what}: {err:?}"
        );
        assert!(verify_file(&bad).is_err(), "{what}");
        assert!(
            all_entries(&fresh).await.is_empty(),
            "{what}: nothing written"
        );
    }
    let err = restore_file(&dir.path().join("missing"), &fresh)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::InvalidBackup(_)), "{err:?}");
}
