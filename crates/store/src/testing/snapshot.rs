//! Conformance checks for [`Backend::snapshot`] and [`Backend::load_into_empty`], which every
//! backend must pass (SQLite in its unit tests, PostgreSQL in `tests/backup.rs`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use crate::StoreError;
use crate::backend::{Backend, Entry, Expect, Op};
use crate::snapshot::{LoadChunk, PAGE_SIZE, Page, load_channel};

/// Every entry of a snapshot, checking the page contract on the way: ascending keys, no page
/// above [`PAGE_SIZE`], the announced count delivered.
async fn drain(b: &dyn Backend) -> Vec<(String, Entry)> {
    let mut snap = b.snapshot().await.unwrap();
    let announced = snap.entries();
    let mut all: Vec<(String, Entry)> = Vec::new();
    while let Some(page) = snap.next_page().await.unwrap() {
        assert!(!page.is_empty() && page.len() <= PAGE_SIZE);
        all.extend(page);
    }
    assert_eq!(all.len() as u64, announced);
    assert!(all.windows(2).all(|w| w[0].0 < w[1].0), "keys ascend");
    all
}

/// Snapshot consistency on a backend that may hold other data (keys under a random prefix):
/// writes committed after the snapshot began — including while it is being read — are not in
/// it, and an open snapshot never blocks writers.
pub async fn snapshot_conformance(b: Arc<dyn Backend>) {
    let bytes = citadel_crypto::random_array::<8>().unwrap();
    let p: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let p = format!("snapshot-{p}/");
    // More than two pages, so the read spans several queries of the one transaction.
    let n = PAGE_SIZE * 2 + 17;
    let mut before = Vec::new();
    for chunk in (0..n).collect::<Vec<_>>().chunks(100) {
        b.batch(
            chunk
                .iter()
                .map(|i| Op::put(format!("{p}{i:05}"), vec![0u8; 3], Expect::Any))
                .collect(),
        )
        .await
        .unwrap();
    }
    for (k, e) in b.list(&p, None, n + 10).await.unwrap() {
        before.push((k, e));
    }
    assert_eq!(before.len(), n);

    let mut snap = b.snapshot().await.unwrap();
    // Writes while the snapshot is open and partly read: they must succeed (no blocking) and
    // stay invisible to it.
    let first = snap.next_page().await.unwrap().unwrap();
    let writer = Arc::clone(&b);
    let wp = p.clone();
    let writes = tokio::spawn(async move {
        for i in (0..n).step_by(7) {
            writer
                .put(&format!("{wp}{i:05}"), b"changed".to_vec(), Expect::Any)
                .await
                .unwrap();
        }
        writer
            .batch(vec![
                Op::put(format!("{wp}zz-new"), b"new".to_vec(), Expect::Absent),
                Op::delete(format!("{wp}00001"), Expect::Any),
            ])
            .await
            .unwrap();
    });
    tokio::time::timeout(std::time::Duration::from_secs(30), writes)
        .await
        .expect("writes must not wait for an open snapshot")
        .unwrap();
    let mut seen: Page = first;
    while let Some(page) = snap.next_page().await.unwrap() {
        seen.extend(page);
    }
    let ours: Vec<(String, Entry)> = seen
        .into_iter()
        .filter(|(k, _)| k.starts_with(&p))
        .collect();
    assert_eq!(ours, before, "the snapshot is the state when it began");

    // A new snapshot sees the writes; one dropped half way leaves nothing behind.
    let now: Vec<(String, Entry)> = drain(b.as_ref())
        .await
        .into_iter()
        .filter(|(k, _)| k.starts_with(&p))
        .collect();
    assert_eq!(now.len(), n); // one added, one deleted
    assert!(
        now.iter()
            .any(|(k, e)| k.ends_with("zz-new") && e.value == b"new")
    );
    let mut half = b.snapshot().await.unwrap();
    let _ = half.next_page().await.unwrap();
    drop(half);
    b.put(&format!("{p}after-drop"), Vec::new(), Expect::Absent)
        .await
        .unwrap();
}

/// Bulk-load semantics on an EMPTY backend: failed loads (no end marker, a producer error, keys
/// out of order) leave it empty; a good load keeps keys, values and versions, and later writes
/// get higher versions; a second load into the now non-empty store is refused.
pub async fn load_conformance(target: Arc<dyn Backend>) {
    assert!(
        drain(target.as_ref()).await.is_empty(),
        "needs an empty store"
    );
    let big_version = 9_000_000_000u64; // above i32, far above the target's own counter
    let entries: Page = (0..(PAGE_SIZE + 5))
        .map(|i| {
            (
                format!("load/{i:04}"),
                Entry {
                    version: big_version - i as u64,
                    value: vec![(i % 251) as u8; i % 40],
                },
            )
        })
        .collect();
    let pages: Vec<Page> = entries.chunks(PAGE_SIZE).map(<[_]>::to_vec).collect();

    // 1. The producer stops without the end marker: nothing is kept.
    let (tx, input) = load_channel();
    let feeder = {
        let pages = pages.clone();
        tokio::spawn(async move {
            for p in pages {
                if tx.send(Ok(LoadChunk::Entries(p))).await.is_err() {
                    break;
                }
            }
        })
    };
    assert!(target.load_into_empty(input).await.is_err());
    feeder.await.unwrap();
    assert!(drain(target.as_ref()).await.is_empty());

    // 2. The producer reports an error after some pages.
    let (tx, input) = load_channel();
    let first = pages[0].clone();
    let feeder = tokio::spawn(async move {
        let _ = tx.send(Ok(LoadChunk::Entries(first))).await;
        let _ = tx.send(Err(StoreError::InvalidBackup("boom".into()))).await;
    });
    let err = target.load_into_empty(input).await.unwrap_err();
    assert!(err.to_string().contains("boom"), "{err}");
    feeder.await.unwrap();
    assert!(drain(target.as_ref()).await.is_empty());

    // 3. Keys out of order (a damaged input) are refused.
    let (tx, input) = load_channel();
    let mut reversed = pages[0].clone();
    reversed.reverse();
    let feeder = tokio::spawn(async move {
        let _ = tx.send(Ok(LoadChunk::Entries(reversed))).await;
        let _ = tx.send(Ok(LoadChunk::End)).await;
    });
    assert!(target.load_into_empty(input).await.is_err());
    feeder.await.unwrap();
    assert!(drain(target.as_ref()).await.is_empty());

    // 4. A good load.
    let (tx, input) = load_channel();
    let feeder = {
        let pages = pages.clone();
        tokio::spawn(async move {
            for p in pages {
                tx.send(Ok(LoadChunk::Entries(p))).await.unwrap();
            }
            tx.send(Ok(LoadChunk::End)).await.unwrap();
        })
    };
    let summary = target.load_into_empty(input).await.unwrap();
    feeder.await.unwrap();
    assert_eq!(summary.entries, entries.len() as u64);
    assert_eq!(summary.max_version, big_version);
    assert_eq!(drain(target.as_ref()).await, entries);
    let (k0, e0) = &entries[0];
    assert_eq!(target.get(k0).await.unwrap().as_ref(), Some(e0));
    // Compare-and-swap works against a loaded version, and versions keep increasing above it.
    let v = target
        .put(k0, b"next".to_vec(), Expect::Version(e0.version))
        .await
        .unwrap();
    assert!(v > big_version, "{v} must exceed every loaded version");
    let w = target
        .put("load/new", Vec::new(), Expect::Absent)
        .await
        .unwrap();
    assert!(w > v);

    // 5. Loading into a non-empty store is refused and changes nothing.
    let (tx, input) = load_channel();
    let other = vec![(
        "aaa/other".to_owned(),
        Entry {
            version: 1,
            value: Vec::new(),
        },
    )];
    let feeder = tokio::spawn(async move {
        let _ = tx.send(Ok(LoadChunk::Entries(other))).await;
        let _ = tx.send(Ok(LoadChunk::End)).await;
    });
    let err = target.load_into_empty(input).await.unwrap_err();
    assert!(
        matches!(err, StoreError::InvalidConfig(_)) && err.to_string().contains("not empty"),
        "{err}"
    );
    feeder.await.unwrap();
    assert!(target.get("aaa/other").await.unwrap().is_none());
}
