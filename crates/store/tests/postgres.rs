#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! The PostgreSQL backend against a real, private PostgreSQL server (initdb + pg_ctl in a temp
//! dir): the shared conformance suite, concurrent migrations, the sealed store on top, and
//! recovery after the database restarts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use citadel_store::pg_harness::PgServer;
use citadel_store::{
    Backend, Expect, Op, PostgresBackend, PostgresOptions, RootKey, SealedStore, StoreError,
    Zeroizing,
};

async fn connect(url: &str) -> PostgresBackend {
    PostgresBackend::connect(url, PostgresOptions::default())
        .await
        .unwrap()
}

// One server for the whole file: starting PostgreSQL costs a second or two, and each test uses
// its own database.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgres_backend() {
    let mut pg = PgServer::start();

    // --- The shared suite, as for SQLite.
    let db = pg.create_database("conformance");
    let backend = connect(&pg.url(&db)).await;
    assert_eq!(backend.name(), "postgres");
    citadel_store::testing::backend_conformance(Arc::new(backend.clone())).await;
    // Twice on the same database: the suite must not depend on an empty store, and versions
    // keep growing across pools.
    let again = connect(&pg.url(&db)).await;
    citadel_store::testing::backend_conformance(Arc::new(again)).await;

    // --- Keys sort by bytes, exactly like SQLite ("C" collation), whatever the database locale.
    let order = pg.create_database("ordering");
    let b = connect(&pg.url(&order)).await;
    for k in ["a/B", "a/a", "a/_", "a/Z", "a/é", "a/e", "a/~"] {
        b.put(k, Vec::new(), Expect::Any).await.unwrap();
    }
    let keys: Vec<String> = b
        .list("a/", None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    let mut expected = keys.clone();
    expected.sort(); // Rust's str order is byte order
    assert_eq!(keys, expected);
    assert_eq!(keys.first().map(String::as_str), Some("a/B"));

    // --- Several nodes migrating a fresh database at once: exactly one applies each migration.
    let fresh = pg.create_database("fresh");
    let url = pg.url(&fresh);
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let url = url.clone();
        tasks.push(tokio::spawn(async move { connect(&url).await }));
    }
    let nodes: Vec<PostgresBackend> = futures_join(tasks).await;
    assert_eq!(
        pg.psql(&fresh, "SELECT count(*) FROM citadel_schema_migrations"),
        "2" // entries and versions; the change-stream trigger
    );
    // Writes from one node are read by another, with one global version order.
    let v1 = nodes[0]
        .put("shared/k", b"a".to_vec(), Expect::Absent)
        .await
        .unwrap();
    let e = nodes[1].get("shared/k").await.unwrap().unwrap();
    assert_eq!((e.version, e.value.as_slice()), (v1, b"a".as_slice()));
    let v2 = nodes[2]
        .put("shared/k", b"b".to_vec(), Expect::Version(v1))
        .await
        .unwrap();
    assert!(v2 > v1);
    assert!(matches!(
        nodes[3]
            .put("shared/k", b"c".to_vec(), Expect::Version(v1))
            .await,
        Err(StoreError::Conflict { .. })
    ));

    // --- Concurrent batches on overlapping keys: serialization failures are retried inside,
    // so every batch either applies or reports a real conflict, and none is lost.
    batches_under_contention(&nodes).await;

    // --- A newer schema than this binary knows is refused.
    pg.psql(
        &fresh,
        "INSERT INTO citadel_schema_migrations (version) VALUES (99)",
    );
    let err = PostgresBackend::connect(&url, PostgresOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("newer"), "{err}");
    pg.psql(
        &fresh,
        "DELETE FROM citadel_schema_migrations WHERE version = 99",
    );

    // --- Password given separately; wrong password; unreachable server.
    let sealed_db = pg.create_database("sealed");
    let opts = PostgresOptions {
        password: Some(Zeroizing::new(pg.password().to_owned())),
        ..PostgresOptions::default()
    };
    let b = PostgresBackend::connect(&pg.url_without_password(&sealed_db), opts)
        .await
        .unwrap();
    let wrong = format!(
        "postgres://citadel:not-the-password@127.0.0.1:{}/{sealed_db}?sslmode=disable",
        pg.port()
    );
    let err = PostgresBackend::connect(&wrong, PostgresOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("password authentication failed"), "{err}");
    assert!(!err.contains("not-the-password"), "{err}");

    // --- The sealed store on PostgreSQL: initialize, write, reopen through a new pool.
    let root = RootKey::generate().unwrap();
    let store = SealedStore::new(Arc::new(b.clone()));
    store.initialize_file(&root).await.unwrap();
    store.unseal_with_key(&root).await.unwrap();
    store
        .put("kms/x", b"plaintext", Expect::Absent)
        .await
        .unwrap();
    let raw = b.get("kms/x").await.unwrap().unwrap();
    assert!(!raw.value.windows(9).any(|w| w == b"plaintext"));
    let other = SealedStore::new(Arc::new(connect(&pg.url(&sealed_db)).await));
    assert!(other.status().await.unwrap().initialized);
    other.unseal_with_key(&root).await.unwrap();
    assert_eq!(
        other.get("kms/x").await.unwrap().unwrap().value.as_slice(),
        b"plaintext"
    );

    // --- The database goes away: calls fail as Unavailable (not a panic, not a hang), and
    // succeed again once it is back, with no restart of ours and no acknowledged write lost.
    pg.stop();
    let started = Instant::now();
    let err = store.get("kms/x").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(err.is_unavailable());
    let err = b
        .put("down/k", b"x".to_vec(), Expect::Any)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)), "{err:?}");
    assert!(started.elapsed() < Duration::from_secs(30));
    let unreachable = PostgresBackend::connect(&pg.url(&sealed_db), PostgresOptions::default())
        .await
        .unwrap_err();
    assert!(
        matches!(unreachable, StoreError::Unavailable(_)),
        "{unreachable:?}"
    );
    assert!(!unreachable.to_string().contains(pg.password()));

    pg.restart();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match store.get("kms/x").await {
            Ok(Some(r)) => {
                assert_eq!(r.value.as_slice(), b"plaintext");
                break;
            }
            Ok(None) => panic!("an acknowledged write was lost"),
            Err(e) if Instant::now() < deadline => {
                assert!(e.is_unavailable(), "{e:?}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("no recovery after the database came back: {e}"),
        }
    }
    b.put("up/k", b"y".to_vec(), Expect::Absent).await.unwrap();
    b.batch(vec![Op::delete("up/k", Expect::Any)])
        .await
        .unwrap();
}

async fn futures_join<T: Send + 'static>(tasks: Vec<tokio::task::JoinHandle<T>>) -> Vec<T> {
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Each task moves one unit between two of four counters per batch (CAS on both). The total
/// must stay constant and every successful batch must be counted exactly once.
async fn batches_under_contention(nodes: &[PostgresBackend]) {
    const ACCOUNTS: usize = 4;
    const TASKS: usize = 8;
    const MOVES: usize = 15;
    let key = |i: usize| format!("bank/{i}");
    for i in 0..ACCOUNTS {
        nodes[0]
            .put(&key(i), 1000u64.to_be_bytes().to_vec(), Expect::Absent)
            .await
            .unwrap();
    }
    let read =
        |e: &citadel_store::Entry| u64::from_be_bytes(e.value.as_slice().try_into().unwrap());
    let mut handles = Vec::new();
    for t in 0..TASKS {
        let b = nodes[t % nodes.len()].clone();
        handles.push(tokio::spawn(async move {
            let mut done = 0usize;
            while done < MOVES {
                let from = (t + done) % ACCOUNTS;
                let to = (from + 1 + t % (ACCOUNTS - 1)) % ACCOUNTS;
                let ef = b.get(&key(from)).await.unwrap().unwrap();
                let et = b.get(&key(to)).await.unwrap().unwrap();
                let r = b
                    .batch(vec![
                        Op::put(
                            key(from),
                            (read(&ef) - 1).to_be_bytes().to_vec(),
                            Expect::Version(ef.version),
                        ),
                        Op::put(
                            key(to),
                            (read(&et) + 1).to_be_bytes().to_vec(),
                            Expect::Version(et.version),
                        ),
                    ])
                    .await;
                match r {
                    Ok(()) => done += 1,
                    Err(StoreError::Conflict { .. }) => {}
                    Err(e) => panic!("unexpected batch error: {e}"),
                }
            }
        }));
    }
    futures_join(handles).await;
    let mut total = 0;
    for i in 0..ACCOUNTS {
        total += read(&nodes[1].get(&key(i)).await.unwrap().unwrap());
    }
    assert_eq!(total, 1000 * ACCOUNTS as u64);
}
