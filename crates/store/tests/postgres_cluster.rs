#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // tests fail loudly
//! Several nodes on one PostgreSQL database (a private server, initdb + pg_ctl in a temp dir):
//! the change stream reaches every node, one node at a time leads, and leadership moves when
//! the leader's session ends or the database restarts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use citadel_store::pg_harness::PgServer;
use citadel_store::{
    Backend, ChangeFeed, Changed, Expect, Leadership, Op, PostgresBackend, PostgresOptions,
};

async fn connect(url: &str) -> PostgresBackend {
    PostgresBackend::connect(url, PostgresOptions::default())
        .await
        .unwrap()
}

/// Everything a feed delivered to a subscriber of `prefix`, as text.
fn record(feed: &ChangeFeed, prefix: &str) -> Arc<Mutex<Vec<String>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    feed.subscribe(prefix, move |c| {
        sink.lock().unwrap().push(match c {
            Changed::Key(k) => k.to_owned(),
            Changed::Everything => "*".to_owned(),
        });
    });
    seen
}

async fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !check() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn change_stream_and_leader_election() {
    let mut pg = PgServer::start();
    let db = pg.create_database("cluster");
    let url = pg.url(&db);
    let writer = connect(&url).await;
    let reader = connect(&url).await;

    // --- Change stream: B hears about A's committed writes, and only committed ones.
    let feed = Arc::new(ChangeFeed::new());
    let seen = record(&feed, "kms/");
    let watcher = reader.watch_changes(feed.clone());
    // Connecting announces "everything" (what was written before LISTEN was not announced).
    wait_until("the stream to connect", Duration::from_secs(10), || {
        seen.lock().unwrap().contains(&"*".to_owned())
    })
    .await;
    seen.lock().unwrap().clear();

    writer
        .put("kms/a/key/1", b"v1".to_vec(), Expect::Any)
        .await
        .unwrap();
    let latency = wait_until("a put to arrive", Duration::from_secs(1), || {
        seen.lock().unwrap().contains(&"kms/a/key/1".to_owned())
    })
    .await;
    assert!(latency < Duration::from_secs(1), "{latency:?}");
    writer
        .batch(vec![
            Op::put("kms/a/key/2", b"x".to_vec(), Expect::Absent),
            Op::delete("kms/a/key/1", Expect::Any),
            Op::put("secrets/other", b"y".to_vec(), Expect::Any),
        ])
        .await
        .unwrap();
    wait_until("a batch to arrive", Duration::from_secs(1), || {
        let s = seen.lock().unwrap();
        s.iter().filter(|k| *k == "kms/a/key/1").count() == 2 && s.contains(&"kms/a/key/2".into())
    })
    .await;
    // A failed expectation changes nothing and announces nothing; other prefixes stay away.
    let before = seen.lock().unwrap().len();
    assert!(
        writer
            .batch(vec![
                Op::put("kms/a/key/3", b"z".to_vec(), Expect::Any),
                Op::put("kms/a/key/2", b"z".to_vec(), Expect::Absent),
            ])
            .await
            .is_err()
    );
    writer
        .put("kms/a/key/4", b"w".to_vec(), Expect::Any)
        .await
        .unwrap();
    wait_until("the last put", Duration::from_secs(1), || {
        seen.lock().unwrap().contains(&"kms/a/key/4".into())
    })
    .await;
    let after: Vec<String> = seen.lock().unwrap()[before..].to_vec();
    assert_eq!(after, vec!["kms/a/key/4".to_owned()], "{after:?}");
    // An operator's TRUNCATE (e.g. before restoring by hand) means "everything".
    pg.psql(&db, "TRUNCATE citadel_entries");
    wait_until("a truncate to arrive", Duration::from_secs(2), || {
        seen.lock().unwrap().last().map(String::as_str) == Some("*")
    })
    .await;

    // --- Election: exactly one of two nodes leads; when its session ends the other takes over.
    let a = Leadership::follower();
    let b = Leadership::follower();
    let a_task = writer.run_election(a.clone());
    let b_task = reader.run_election(b.clone());
    wait_until("a leader", Duration::from_secs(10), || {
        a.is_leader() || b.is_leader()
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(a.is_leader() != b.is_leader(), "exactly one leader");
    let (leader_task, follower) = if a.is_leader() {
        (a_task, b.clone())
    } else {
        (b_task, a.clone())
    };
    // The leader process dies: its session ends, PostgreSQL releases the lock.
    leader_task.abort();
    let took = wait_until("fail-over", Duration::from_secs(10), || {
        follower.is_leader()
    })
    .await;
    assert!(took < Duration::from_secs(5), "fail-over took {took:?}");

    // --- The database restarts: the leader steps down, every cache is dropped, and both
    // come back by themselves.
    seen.lock().unwrap().clear();
    pg.restart();
    wait_until("leadership to return", Duration::from_secs(20), || {
        follower.is_leader()
    })
    .await;
    wait_until("the stream to reconnect", Duration::from_secs(20), || {
        seen.lock().unwrap().contains(&"*".to_owned())
    })
    .await;
    let mut stored = false;
    for _ in 0..50 {
        if writer
            .put("kms/after/restart", b"r".to_vec(), Expect::Any)
            .await
            .is_ok()
        {
            stored = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(stored);
    wait_until("a put after the restart", Duration::from_secs(2), || {
        seen.lock().unwrap().contains(&"kms/after/restart".into())
    })
    .await;
    assert!(feed.keys_seen() > 0 && feed.full_invalidations() >= 2);
    watcher.abort();
}
