#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers may fail loudly
//! The sealed store over real SQLite databases in temporary directories: seal lifecycle, Shamir
//! unseal, rotation, and tampering with the database behind the store's back.

use std::path::Path;
use std::sync::Arc;

use citadel_barrier::{RootKey, envelope_term, file};
use citadel_store::{
    Backend, DB_FILE_NAME, Expect, Op, SealType, SealedStore, SqliteBackend, StoreError,
    put_json_op,
};
use serde::{Deserialize, Serialize};

async fn open(dir: &Path) -> (Arc<SqliteBackend>, SealedStore) {
    let backend = Arc::new(SqliteBackend::open(dir).await.unwrap());
    let store = SealedStore::new(backend.clone());
    (backend, store)
}

async fn unsealed_file_store(dir: &Path) -> (Arc<SqliteBackend>, SealedStore, RootKey) {
    let (backend, store) = open(dir).await;
    let root = RootKey::generate().unwrap();
    store.initialize_file(&root).await.unwrap();
    store.unseal_with_key(&root).await.unwrap();
    (backend, store, root)
}

fn is_sealed_err<T: std::fmt::Debug>(r: Result<T, StoreError>) -> bool {
    matches!(r, Err(StoreError::Sealed))
}

async fn assert_all_data_ops_sealed(store: &SealedStore) {
    assert!(store.is_sealed());
    assert!(is_sealed_err(store.get("kms/a").await));
    assert!(is_sealed_err(store.put("kms/a", b"v", Expect::Any).await));
    assert!(is_sealed_err(store.delete("kms/a", Expect::Any).await));
    assert!(is_sealed_err(store.list("kms/", None, 10).await));
    assert!(is_sealed_err(
        store.batch(vec![Op::delete("kms/a", Expect::Any)]).await
    ));
    assert!(is_sealed_err(store.get_json::<u64>("kms/a").await));
    assert!(is_sealed_err(
        store.put_json("kms/a", &1u64, Expect::Any).await
    ));
    assert!(is_sealed_err(store.rotate().await));
}

#[tokio::test]
async fn file_seal_lifecycle() {
    let dir = tempfile::tempdir().unwrap();
    let (_backend, store) = open(dir.path()).await;

    let status = store.status().await.unwrap();
    assert!(!status.initialized && status.sealed);
    assert_eq!(status.seal_type, None);
    assert_all_data_ops_sealed(&store).await;
    let root = RootKey::generate().unwrap();
    assert!(matches!(
        store.unseal_with_key(&root).await,
        Err(StoreError::NotInitialized)
    ));

    store.initialize_file(&root).await.unwrap();
    let status = store.status().await.unwrap();
    assert!(status.initialized && status.sealed);
    assert_eq!(status.seal_type, Some(SealType::File));
    assert_eq!(status.term, None);
    assert_all_data_ops_sealed(&store).await;

    // Initializing again, either way, is refused.
    assert!(matches!(
        store.initialize_file(&root).await,
        Err(StoreError::AlreadyInitialized)
    ));
    assert!(matches!(
        store.initialize_shamir(3, 2).await,
        Err(StoreError::AlreadyInitialized)
    ));

    // A wrong key is detected by the keyring's AEAD.
    let wrong = RootKey::generate().unwrap();
    assert!(matches!(
        store.unseal_with_key(&wrong).await,
        Err(StoreError::InvalidRootKey)
    ));
    assert!(store.is_sealed());
    assert!(matches!(
        store.submit_unseal_share("AAAA").await,
        Err(StoreError::InvalidShare(_))
    ));

    store.unseal_with_key(&root).await.unwrap();
    let status = store.status().await.unwrap();
    assert!(!status.sealed);
    assert_eq!(status.term, Some(1));
    // Idempotent with the right key, refused with a wrong one.
    store.unseal_with_key(&root).await.unwrap();
    assert!(matches!(
        store.unseal_with_key(&wrong).await,
        Err(StoreError::InvalidRootKey)
    ));

    let v = store.put("kms/a", b"secret", Expect::Absent).await.unwrap();
    let got = store.get("kms/a").await.unwrap().unwrap();
    assert_eq!(
        (got.version, got.value.as_slice()),
        (v, b"secret".as_slice())
    );
    assert!(!format!("{got:?}").contains("secret"));

    store.seal();
    assert_all_data_ops_sealed(&store).await;
    store.unseal_with_key(&root).await.unwrap();
    assert_eq!(
        &*store.get("kms/a").await.unwrap().unwrap().value,
        b"secret"
    );
}

#[tokio::test]
async fn values_are_encrypted_at_rest_and_bound_to_their_key() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, store, _root) = unsealed_file_store(dir.path()).await;
    store
        .put("secrets/one", b"plaintext-marker-123", Expect::Any)
        .await
        .unwrap();
    let raw = backend.get("secrets/one").await.unwrap().unwrap();
    assert!(
        !raw.value
            .windows(b"plaintext-marker-123".len())
            .any(|w| w == b"plaintext-marker-123")
    );
    assert_eq!(envelope_term(&raw.value), Some(1));

    // Copying a sealed value to another key (through the raw backend) is detected.
    backend
        .put("secrets/two", raw.value.clone(), Expect::Any)
        .await
        .unwrap();
    let err = store.get("secrets/two").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { key: Some(ref k), .. } if k == "secrets/two"),
        "{err}"
    );
    assert_eq!(
        &*store.get("secrets/one").await.unwrap().unwrap().value,
        b"plaintext-marker-123"
    );
}

#[tokio::test]
async fn reserved_keys_are_refused_and_hidden() {
    let dir = tempfile::tempdir().unwrap();
    let (_backend, store, _root) = unsealed_file_store(dir.path()).await;
    for key in ["sys/keyring", "sys/seal-config", "sys/anything"] {
        assert!(matches!(
            store.get(key).await,
            Err(StoreError::ReservedKey(_))
        ));
        assert!(matches!(
            store.put(key, b"x", Expect::Any).await,
            Err(StoreError::ReservedKey(_))
        ));
        assert!(matches!(
            store.delete(key, Expect::Any).await,
            Err(StoreError::ReservedKey(_))
        ));
        assert!(matches!(
            store
                .batch(vec![
                    Op::put("kms/ok", b"x".to_vec(), Expect::Any),
                    Op::delete(key, Expect::Any)
                ])
                .await,
            Err(StoreError::ReservedKey(_))
        ));
    }
    assert!(store.get("kms/ok").await.unwrap().is_none());
    assert!(matches!(
        store.list("sys/", None, 10).await,
        Err(StoreError::ReservedKey(_))
    ));
    assert!(matches!(
        store.get("").await,
        Err(StoreError::InvalidKey(_))
    ));

    // Keys around "sys/" in order; listing from the top must skip the reserved ones and still
    // return full pages.
    for k in ["a", "s", "sys", "sys0", "t"] {
        store.put(k, k.as_bytes(), Expect::Any).await.unwrap();
    }
    let all: Vec<String> = store
        .list("", None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(all, vec!["a", "s", "sys", "sys0", "t"]);
    let mut paged = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.list("", after.as_deref(), 1).await.unwrap();
        if page.is_empty() {
            break;
        }
        assert_eq!(page.len(), 1, "pages stay full across the reserved range");
        after = Some(page[0].0.clone());
        paged.push(page[0].0.clone());
    }
    assert_eq!(paged, all);
    let sy: Vec<String> = store
        .list("sy", None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(sy, vec!["sys", "sys0"]);
}

#[tokio::test]
async fn reopen_persists_and_key_file_provider_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let key_path = dir.path().join("keys").join("root.key");
    let data = dir.path().join("data");
    {
        let root = file::load_or_create(&key_path).unwrap();
        let (_b, store) = open(&data).await;
        store.initialize_file(&root).await.unwrap();
        store.unseal_with_key(&root).await.unwrap();
        store.put("kms/k1", b"v1", Expect::Absent).await.unwrap();
        store
            .put_json("kms/k2", &vec![1, 2, 3], Expect::Absent)
            .await
            .unwrap();
    }
    let root = file::load(&key_path).unwrap();
    let (_b, store) = open(&data).await;
    assert!(store.is_sealed());
    let status = store.status().await.unwrap();
    assert!(status.initialized && status.sealed);
    store.unseal_with_key(&root).await.unwrap();
    assert_eq!(&*store.get("kms/k1").await.unwrap().unwrap().value, b"v1");
    assert_eq!(
        store.get_json::<Vec<i32>>("kms/k2").await.unwrap().unwrap(),
        vec![1, 2, 3]
    );
}

#[tokio::test]
async fn shamir_init_and_unseal_with_any_threshold_subset() {
    let dir = tempfile::tempdir().unwrap();
    let (_backend, store) = open(dir.path()).await;
    for (shares, threshold) in [(3, 1), (2, 3), (0, 0), (5, 0)] {
        assert!(matches!(
            store.initialize_shamir(shares, threshold).await,
            Err(StoreError::InvalidSealConfig(_))
        ));
    }
    assert!(!store.status().await.unwrap().initialized);

    let shares = store.initialize_shamir(5, 3).await.unwrap();
    assert_eq!(shares.len(), 5);
    let status = store.status().await.unwrap();
    assert!(status.initialized && status.sealed);
    assert_eq!(status.seal_type, Some(SealType::Shamir));
    assert_eq!(
        (status.shares, status.threshold, status.unseal_progress),
        (5, 3, 0)
    );
    assert!(matches!(
        store.unseal_with_key(&RootKey::generate().unwrap()).await,
        Err(StoreError::WrongSealType { .. })
    ));

    // Two shares: still sealed.
    let p = store.submit_unseal_share(&shares[0]).await.unwrap();
    assert!(p.sealed && p.progress == 1 && p.threshold == 3);
    let p = store.submit_unseal_share(&shares[1]).await.unwrap();
    assert!(p.sealed && p.progress == 2);
    assert_eq!(store.status().await.unwrap().unseal_progress, 2);
    assert_all_data_ops_sealed(&store).await;
    let p = store.submit_unseal_share(&shares[2]).await.unwrap();
    assert!(!p.sealed && p.progress == 0);
    store.put("kms/x", b"shamir", Expect::Any).await.unwrap();
    // Submitting to an unsealed store changes nothing.
    assert!(!store.submit_unseal_share(&shares[3]).await.unwrap().sealed);

    // Every 3-subset, in any order, unseals.
    for a in 0..5 {
        for b in 0..5 {
            for c in 0..5 {
                if a >= b || b >= c {
                    continue;
                }
                store.seal();
                assert!(store.is_sealed());
                for i in [c, a, b] {
                    store.submit_unseal_share(&shares[i]).await.unwrap();
                }
                assert!(!store.is_sealed(), "subset {a}{b}{c}");
                assert_eq!(
                    &*store.get("kms/x").await.unwrap().unwrap().value,
                    b"shamir"
                );
            }
        }
    }
}

#[tokio::test]
async fn shamir_wrong_malformed_and_duplicate_shares() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let (_backend, store) = open(dir.path()).await;
    let shares = store.initialize_shamir(5, 3).await.unwrap();

    // A tampered share (still well-formed) reconstructs a wrong key: detected, progress reset.
    let mut raw = base64::engine::general_purpose::STANDARD
        .decode(&shares[2])
        .unwrap();
    raw[10] ^= 0x01;
    let tampered = base64::engine::general_purpose::STANDARD.encode(raw);
    store.submit_unseal_share(&shares[0]).await.unwrap();
    store.submit_unseal_share(&shares[1]).await.unwrap();
    assert!(matches!(
        store.submit_unseal_share(&tampered).await,
        Err(StoreError::InvalidUnsealKey)
    ));
    let status = store.status().await.unwrap();
    assert!(status.sealed);
    assert_eq!(status.unseal_progress, 0);

    // Shares of another initialization do not open this keyring either.
    let other_dir = tempfile::tempdir().unwrap();
    let (_ob, other) = open(other_dir.path()).await;
    let foreign = other.initialize_shamir(5, 3).await.unwrap();
    for s in &foreign[..3] {
        let r = store.submit_unseal_share(s).await;
        assert!(r.is_ok() || matches!(r, Err(StoreError::InvalidUnsealKey)));
    }
    assert!(store.is_sealed());
    assert_eq!(store.status().await.unwrap().unseal_progress, 0);

    // Malformed and duplicate shares are refused without touching progress.
    store.submit_unseal_share(&shares[4]).await.unwrap();
    for bad in ["", "garbage!", "AAAA", &shares[4]] {
        let err = store.submit_unseal_share(bad).await.unwrap_err();
        assert!(matches!(err, StoreError::InvalidShare(_)), "{err}");
    }
    assert_eq!(store.status().await.unwrap().unseal_progress, 1);

    store.reset_unseal_progress();
    assert_eq!(store.status().await.unwrap().unseal_progress, 0);
    // Sealing also discards partial progress.
    store.submit_unseal_share(&shares[0]).await.unwrap();
    store.seal();
    assert_eq!(store.status().await.unwrap().unseal_progress, 0);
    for s in &shares[2..5] {
        store.submit_unseal_share(&format!(" {s}\n")).await.unwrap();
    }
    assert!(!store.is_sealed());
}

#[tokio::test]
async fn shamir_one_of_one_and_file_store_rejects_shares() {
    let dir = tempfile::tempdir().unwrap();
    let (_backend, store) = open(dir.path()).await;
    let shares = store.initialize_shamir(1, 1).await.unwrap();
    let p = store.submit_unseal_share(&shares[0]).await.unwrap();
    assert!(!p.sealed);

    let dir = tempfile::tempdir().unwrap();
    let (_b, file_store) = open(dir.path()).await;
    file_store
        .initialize_file(&RootKey::generate().unwrap())
        .await
        .unwrap();
    assert!(matches!(
        file_store.submit_unseal_share(&shares[0]).await,
        Err(StoreError::WrongSealType { .. })
    ));
}

#[tokio::test]
async fn rotate_keeps_old_values_and_uses_new_term() {
    let dir = tempfile::tempdir().unwrap();
    let root;
    {
        let (backend, store, r) = unsealed_file_store(dir.path()).await;
        root = r;
        store.put("kms/old", b"old", Expect::Any).await.unwrap();
        assert_eq!(store.rotate().await.unwrap(), 2);
        assert_eq!(store.status().await.unwrap().term, Some(2));
        store.put("kms/new", b"new", Expect::Any).await.unwrap();
        let old = backend.get("kms/old").await.unwrap().unwrap();
        let new = backend.get("kms/new").await.unwrap().unwrap();
        assert_eq!(envelope_term(&old.value), Some(1));
        assert_eq!(envelope_term(&new.value), Some(2));
        assert_eq!(&*store.get("kms/old").await.unwrap().unwrap().value, b"old");
        assert_eq!(&*store.get("kms/new").await.unwrap().unwrap().value, b"new");
        assert_eq!(store.rotate().await.unwrap(), 3);
    }
    // The rotated keyring was persisted under the same root key.
    let (_backend, store) = open(dir.path()).await;
    store.unseal_with_key(&root).await.unwrap();
    assert_eq!(store.status().await.unwrap().term, Some(3));
    assert_eq!(&*store.get("kms/old").await.unwrap().unwrap().value, b"old");
    assert_eq!(&*store.get("kms/new").await.unwrap().unwrap().value, b"new");
}

#[tokio::test]
async fn a_second_node_follows_a_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, a, root) = unsealed_file_store(dir.path()).await;
    let b = SealedStore::new(backend.clone());
    b.unseal_with_key(&root).await.unwrap();
    assert_eq!(a.rotate().await.unwrap(), 2);
    a.put("kms/after", b"rotated", Expect::Any).await.unwrap();
    // Node b still has term 1 only; it reloads the keyring when it meets term 2.
    assert_eq!(b.status().await.unwrap().term, Some(1));
    assert_eq!(
        &*b.get("kms/after").await.unwrap().unwrap().value,
        b"rotated"
    );
    assert_eq!(b.status().await.unwrap().term, Some(2));
    // And b's next rotation builds on a's.
    assert_eq!(b.rotate().await.unwrap(), 3);
}

#[tokio::test]
async fn batch_encrypts_and_is_atomic() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, store, _root) = unsealed_file_store(dir.path()).await;
    let v = store.put("kms/a", b"a0", Expect::Absent).await.unwrap();
    let r = store
        .batch(vec![
            Op::put("kms/a", b"a1".to_vec(), Expect::Version(v)),
            Op::put("kms/b", b"b1".to_vec(), Expect::Absent),
            Op::put("kms/a", b"a2".to_vec(), Expect::Version(v)),
        ])
        .await;
    assert!(
        matches!(r, Err(StoreError::Conflict { ref key }) if key == "kms/a"),
        "{r:?}"
    );
    assert_eq!(&*store.get("kms/a").await.unwrap().unwrap().value, b"a0");
    assert!(store.get("kms/b").await.unwrap().is_none());

    store
        .batch(vec![
            Op::put("kms/a", b"a1".to_vec(), Expect::Version(v)),
            put_json_op("kms/b", &"b1", Expect::Absent).unwrap(),
        ])
        .await
        .unwrap();
    assert_eq!(&*store.get("kms/a").await.unwrap().unwrap().value, b"a1");
    assert_eq!(
        store.get_json::<String>("kms/b").await.unwrap().unwrap(),
        "b1"
    );
    let raw = backend.get("kms/a").await.unwrap().unwrap();
    assert_ne!(raw.value, b"a1");
    assert_eq!(envelope_term(&raw.value), Some(1));
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
struct Counter {
    n: u64,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_cas_through_the_sealed_store() {
    let dir = tempfile::tempdir().unwrap();
    let (_backend, store, _root) = unsealed_file_store(dir.path()).await;
    let store = Arc::new(store);
    store
        .put_json("kms/counter", &Counter { n: 0 }, Expect::Absent)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            for _ in 0..20 {
                loop {
                    let cur = store
                        .get_json_versioned::<Counter>("kms/counter")
                        .await
                        .unwrap()
                        .unwrap();
                    let next = Counter { n: cur.value.n + 1 };
                    match store
                        .put_json("kms/counter", &next, Expect::Version(cur.version))
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => continue,
                        Err(e) => panic!("{e}"),
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let end = store
        .get_json::<Counter>("kms/counter")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(end, Counter { n: 200 });
}

#[tokio::test]
async fn json_decode_errors_do_not_echo_values() {
    let dir = tempfile::tempdir().unwrap();
    let (_backend, store, _root) = unsealed_file_store(dir.path()).await;
    store
        .put_json("secrets/s", &"hunter2-secret", Expect::Any)
        .await
        .unwrap();
    let err = store.get_json::<u64>("secrets/s").await.unwrap_err();
    assert!(matches!(err, StoreError::Decode { .. }), "{err}");
    assert!(!err.to_string().contains("hunter2"), "{err}");
}

// ----- tampering with the database behind the store's back ----------------------------------

fn db_path(dir: &Path) -> std::path::PathBuf {
    dir.join(DB_FILE_NAME)
}

#[tokio::test]
async fn flipped_byte_in_a_stored_value_reads_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let root = {
        let (_b, store, root) = unsealed_file_store(dir.path()).await;
        store
            .put("kms/victim", b"precious", Expect::Any)
            .await
            .unwrap();
        store
            .put("kms/bystander", b"fine", Expect::Any)
            .await
            .unwrap();
        root
    };
    {
        let conn = rusqlite::Connection::open(db_path(dir.path())).unwrap();
        let mut value: Vec<u8> = conn
            .query_row(
                "SELECT value FROM entries WHERE key = 'kms/victim'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let mid = value.len() / 2;
        value[mid] ^= 0x01;
        conn.execute(
            "UPDATE entries SET value = ?1 WHERE key = 'kms/victim'",
            [&value],
        )
        .unwrap();
    }
    let (_b, store) = open(dir.path()).await;
    store.unseal_with_key(&root).await.unwrap();
    let err = store.get("kms/victim").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { key: Some(ref k), .. } if k == "kms/victim"),
        "{err}"
    );
    assert!(matches!(
        store.list("kms/", None, 10).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert_eq!(
        &*store.get("kms/bystander").await.unwrap().unwrap().value,
        b"fine"
    );
}

#[tokio::test]
async fn swapped_rows_read_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let root = {
        let (_b, store, root) = unsealed_file_store(dir.path()).await;
        store.put("kms/a", b"value-a", Expect::Any).await.unwrap();
        store.put("kms/b", b"value-b", Expect::Any).await.unwrap();
        root
    };
    {
        let conn = rusqlite::Connection::open(db_path(dir.path())).unwrap();
        let a: Vec<u8> = conn
            .query_row("SELECT value FROM entries WHERE key = 'kms/a'", [], |r| {
                r.get(0)
            })
            .unwrap();
        let b: Vec<u8> = conn
            .query_row("SELECT value FROM entries WHERE key = 'kms/b'", [], |r| {
                r.get(0)
            })
            .unwrap();
        conn.execute("UPDATE entries SET value = ?1 WHERE key = 'kms/a'", [&b])
            .unwrap();
        conn.execute("UPDATE entries SET value = ?1 WHERE key = 'kms/b'", [&a])
            .unwrap();
    }
    let (_b, store) = open(dir.path()).await;
    store.unseal_with_key(&root).await.unwrap();
    for k in ["kms/a", "kms/b"] {
        let err = store.get(k).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { key: Some(_), .. }),
            "{err}"
        );
    }
}

#[tokio::test]
async fn flipped_byte_in_the_raw_file_inside_a_value_reads_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let (root, sealed_value) = {
        let (backend, store, root) = unsealed_file_store(dir.path()).await;
        store
            .put("kms/victim", &[0x42u8; 256], Expect::Any)
            .await
            .unwrap();
        let raw = backend.get("kms/victim").await.unwrap().unwrap().value;
        (root, raw)
    };
    // All connections are closed, so the WAL has been checkpointed into the main file.
    let path = db_path(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    let needle = &sealed_value[40..72];
    let pos = bytes
        .windows(needle.len())
        .position(|w| w == needle)
        .expect("sealed value is in the database file");
    bytes[pos + 5] ^= 0x10;
    std::fs::write(&path, &bytes).unwrap();

    let (_b, store) = open(dir.path()).await;
    store.unseal_with_key(&root).await.unwrap();
    let err = store.get("kms/victim").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { key: Some(ref k), .. } if k == "kms/victim"),
        "{err}"
    );
}

#[tokio::test]
async fn damaged_database_page_reads_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    // Values big enough that the entries table spans several leaf pages, so one leaf can be
    // damaged without touching the page that holds the keyring.
    let (root, victim) = {
        let (backend, store, root) = unsealed_file_store(dir.path()).await;
        for i in 0..20u8 {
            store
                .put(&format!("kms/k{i:02}"), &[i; 1500], Expect::Any)
                .await
                .unwrap();
        }
        (root, backend.get("kms/k10").await.unwrap().unwrap().value)
    };
    let path = db_path(dir.path());
    let page_size: usize = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let size: i64 = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        usize::try_from(size).unwrap()
    };
    // Overwrite the b-tree header of the leaf page holding kms/k10 with an invalid page type.
    let mut bytes = std::fs::read(&path).unwrap();
    let pos = bytes
        .windows(32)
        .position(|w| w == &victim[40..72])
        .expect("sealed value is in the database file");
    let page_start = pos / page_size * page_size;
    assert!(page_start > 0);
    bytes[page_start..page_start + 8].copy_from_slice(&[0xFF; 8]);
    std::fs::write(&path, &bytes).unwrap();

    let backend = Arc::new(SqliteBackend::open(dir.path()).await.unwrap());
    let store = SealedStore::new(backend.clone());
    store.unseal_with_key(&root).await.unwrap();
    let err = store.get("kms/k10").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { key: None, .. }),
        "{err}"
    );
    assert!(err.to_string().contains("damaged"), "{err}");
    assert!(matches!(
        store.list("kms/", None, 100).await,
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        backend.quick_check().await,
        Err(StoreError::Corrupt { .. })
    ));
}

#[tokio::test]
async fn damaged_keyring_page_refuses_unseal_as_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let root = {
        let (_b, store, root) = unsealed_file_store(dir.path()).await;
        store.put("kms/k", b"v", Expect::Any).await.unwrap();
        root
    };
    let path = db_path(dir.path());
    let (root_page, page_size): (i64, i64) = {
        let conn = rusqlite::Connection::open(&path).unwrap();
        let root_page = conn
            .query_row(
                "SELECT rootpage FROM sqlite_master WHERE name = 'entries'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        let page_size = conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .unwrap();
        (root_page, page_size)
    };
    let mut bytes = std::fs::read(&path).unwrap();
    let offset = usize::try_from((root_page - 1) * page_size).unwrap();
    bytes[offset..offset + 8].copy_from_slice(&[0xFF; 8]);
    std::fs::write(&path, &bytes).unwrap();

    let (_b, store) = open(dir.path()).await;
    let err = store.unseal_with_key(&root).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { key: None, .. }),
        "{err}"
    );
    assert!(store.is_sealed());
}

#[tokio::test]
async fn damaged_file_header_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    drop(unsealed_file_store(dir.path()).await);
    let path = db_path(dir.path());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[0..16].copy_from_slice(b"Not SQLite at al");
    std::fs::write(&path, &bytes).unwrap();
    let err = SqliteBackend::open(dir.path()).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Corrupt { key: None, .. }),
        "{err}"
    );
}

#[tokio::test]
async fn tampered_keyring_record_refuses_unseal() {
    let dir = tempfile::tempdir().unwrap();
    let (backend, store, root) = unsealed_file_store(dir.path()).await;
    store.seal();
    let mut raw = backend.get("sys/keyring").await.unwrap().unwrap();
    let last = raw.value.len() - 1;
    raw.value[last] ^= 1;
    backend
        .put("sys/keyring", raw.value, Expect::Any)
        .await
        .unwrap();
    assert!(matches!(
        store.unseal_with_key(&root).await,
        Err(StoreError::InvalidRootKey)
    ));
    assert!(store.is_sealed());
}
