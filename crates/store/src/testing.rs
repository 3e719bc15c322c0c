//! The conformance suite every [`Backend`] must pass.
//!
//! Call [`backend_conformance`] from a test with a fresh backend (SQLite in a temp dir,
//! PostgreSQL in a scratch database). All keys it writes are under a random prefix, so it can
//! share a database with other tests.
//!
//! This is test support code compiled into the library only with the `conformance` feature: it
//! asserts, and a failed assertion is the test failure we want, hence the allowances below.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

pub mod snapshot;

use crate::StoreError;
use crate::backend::{Backend, Expect, Op};

fn random_prefix() -> String {
    let bytes = citadel_crypto::random_array::<8>().expect("random prefix");
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("conformance-{hex}/")
}

fn is_conflict(r: &Result<impl std::fmt::Debug, StoreError>) -> bool {
    matches!(r, Err(StoreError::Conflict { .. }))
}

/// Runs every conformance check against `b`. Panics (fails the test) on the first violation.
pub async fn backend_conformance(b: Arc<dyn Backend>) {
    let p = random_prefix();
    crud_and_cas(b.as_ref(), &p).await;
    versions_never_repeat(b.as_ref(), &p).await;
    list_and_pagination(b.as_ref(), &p).await;
    batch_is_atomic(b.as_ref(), &p).await;
    values_and_keys(b.as_ref(), &p).await;
    concurrent_cas_counter(Arc::clone(&b), &p).await;
}

async fn crud_and_cas(b: &dyn Backend, p: &str) {
    let k = format!("{p}crud/a");
    assert!(b.get(&k).await.unwrap().is_none());

    // Version expectations on an absent key fail; Absent succeeds once.
    assert!(is_conflict(
        &b.put(&k, b"x".to_vec(), Expect::Version(1)).await
    ));
    let v1 = b.put(&k, b"one".to_vec(), Expect::Absent).await.unwrap();
    assert!(v1 > 0);
    assert!(is_conflict(
        &b.put(&k, b"dup".to_vec(), Expect::Absent).await
    ));
    let e = b.get(&k).await.unwrap().unwrap();
    assert_eq!((e.version, e.value.as_slice()), (v1, b"one".as_slice()));

    // Compare-and-swap: the right version wins, a stale one conflicts and changes nothing.
    let v2 = b
        .put(&k, b"two".to_vec(), Expect::Version(v1))
        .await
        .unwrap();
    assert!(v2 > v1);
    assert!(is_conflict(
        &b.put(&k, b"stale".to_vec(), Expect::Version(v1)).await
    ));
    assert_eq!(b.get(&k).await.unwrap().unwrap().value, b"two");
    let v3 = b.put(&k, b"three".to_vec(), Expect::Any).await.unwrap();
    assert!(v3 > v2);

    // Deletes honour expectations too.
    assert!(is_conflict(&b.delete(&k, Expect::Version(v2)).await));
    assert!(is_conflict(&b.delete(&k, Expect::Absent).await));
    assert!(b.delete(&k, Expect::Version(v3)).await.unwrap());
    assert!(b.get(&k).await.unwrap().is_none());
    assert!(!b.delete(&k, Expect::Any).await.unwrap());
    assert!(!b.delete(&k, Expect::Absent).await.unwrap());
    assert!(is_conflict(&b.delete(&k, Expect::Version(v3)).await));
    let v4 = b.put(&k, b"any".to_vec(), Expect::Any).await.unwrap();
    assert!(v4 > v3);
}

async fn versions_never_repeat(b: &dyn Backend, p: &str) {
    // A deleted and re-created key must not get its old version back (no ABA), and versions
    // are unique across keys.
    let k = format!("{p}aba/k");
    let old = b.put(&k, b"1".to_vec(), Expect::Absent).await.unwrap();
    b.delete(&k, Expect::Any).await.unwrap();
    let new = b.put(&k, b"2".to_vec(), Expect::Absent).await.unwrap();
    assert!(new > old);
    assert!(is_conflict(
        &b.put(&k, b"3".to_vec(), Expect::Version(old)).await
    ));
    let other = b
        .put(&format!("{p}aba/other"), b"x".to_vec(), Expect::Any)
        .await
        .unwrap();
    assert!(other > new);
}

async fn list_and_pagination(b: &dyn Backend, p: &str) {
    let base = format!("{p}list/");
    let names = ["b", "a", "c/1", "c/2", "d", "e%", "e_", "é", "ü/x"];
    for n in names {
        b.put(&format!("{base}{n}"), n.as_bytes().to_vec(), Expect::Any)
            .await
            .unwrap();
    }
    // Neighbours that share a textual prefix but must not match.
    b.put(&format!("{p}list0"), b"x".to_vec(), Expect::Any)
        .await
        .unwrap();
    b.put(&format!("{p}lisu/"), b"x".to_vec(), Expect::Any)
        .await
        .unwrap();

    let mut expected: Vec<String> = names.iter().map(|n| format!("{base}{n}")).collect();
    expected.sort();

    let all = b.list(&base, None, 100).await.unwrap();
    let keys: Vec<String> = all.iter().map(|(k, _)| k.clone()).collect();
    assert_eq!(keys, expected, "keys in byte order, prefix respected");
    for (k, e) in &all {
        assert_eq!(e.value, k.strip_prefix(&base).unwrap().as_bytes());
    }

    // Page through with every page size; the concatenation must be the full listing.
    for page_size in 1..=expected.len() + 1 {
        let mut seen = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let page = b.list(&base, after.as_deref(), page_size).await.unwrap();
            assert!(page.len() <= page_size);
            seen.extend(page.iter().map(|(k, _)| k.clone()));
            if page.len() < page_size {
                break;
            }
            after = page.last().map(|(k, _)| k.clone());
        }
        assert_eq!(seen, expected, "page size {page_size}");
    }

    assert!(b.list(&base, None, 0).await.unwrap().is_empty());
    // Sub-prefix, prefixes with LIKE metacharacters, and start_after semantics.
    let c: Vec<String> = b
        .list(&format!("{base}c/"), None, 10)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(c, vec![format!("{base}c/1"), format!("{base}c/2")]);
    let pct = b.list(&format!("{base}e%"), None, 10).await.unwrap();
    assert_eq!(pct.len(), 1);
    let under = b.list(&format!("{base}e_"), None, 10).await.unwrap();
    assert_eq!(under.len(), 1);
    let after_c = b.list(&base, Some(&format!("{base}c/1")), 2).await.unwrap();
    let after_c: Vec<&str> = after_c.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(after_c, vec![format!("{base}c/2"), format!("{base}d")]);
    // start_after before the prefix range, and past its end.
    assert_eq!(
        b.list(&base, Some(p), 100).await.unwrap().len(),
        names.len()
    );
    assert!(
        b.list(&base, Some(&format!("{p}list0")), 100)
            .await
            .unwrap()
            .is_empty()
    );
    assert!(
        b.list(&format!("{p}nothing/"), None, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn batch_is_atomic(b: &dyn Backend, p: &str) {
    let a = format!("{p}batch/a");
    let c = format!("{p}batch/c");
    let d = format!("{p}batch/d");
    let va = b.put(&a, b"a0".to_vec(), Expect::Absent).await.unwrap();
    let vd = b.put(&d, b"d0".to_vec(), Expect::Absent).await.unwrap();

    // The last op conflicts: nothing of the batch may be visible.
    let r = b
        .batch(vec![
            Op::put(&a, b"a1".to_vec(), Expect::Version(va)),
            Op::put(&c, b"c1".to_vec(), Expect::Absent),
            Op::delete(&d, Expect::Version(vd)),
            Op::put(&a, b"a2".to_vec(), Expect::Version(va)),
        ])
        .await;
    assert!(is_conflict(&r), "{r:?}");
    assert_eq!(b.get(&a).await.unwrap().unwrap().value, b"a0");
    assert_eq!(b.get(&a).await.unwrap().unwrap().version, va);
    assert!(b.get(&c).await.unwrap().is_none());
    assert!(b.get(&d).await.unwrap().is_some());

    // The same batch without the conflicting op applies entirely.
    b.batch(vec![
        Op::put(&a, b"a1".to_vec(), Expect::Version(va)),
        Op::put(&c, b"c1".to_vec(), Expect::Absent),
        Op::delete(&d, Expect::Version(vd)),
    ])
    .await
    .unwrap();
    let ea = b.get(&a).await.unwrap().unwrap();
    assert_eq!(ea.value, b"a1");
    assert!(ea.version > va);
    assert_eq!(b.get(&c).await.unwrap().unwrap().value, b"c1");
    assert!(b.get(&d).await.unwrap().is_none());

    // Later ops see earlier ones of the same batch.
    b.batch(vec![
        Op::put(&d, b"d1".to_vec(), Expect::Absent),
        Op::delete(&d, Expect::Any),
        Op::put(&d, b"d2".to_vec(), Expect::Absent),
    ])
    .await
    .unwrap();
    assert_eq!(b.get(&d).await.unwrap().unwrap().value, b"d2");
    b.batch(Vec::new()).await.unwrap();

    // An invalid key anywhere refuses the whole batch.
    let r = b
        .batch(vec![
            Op::put(format!("{p}batch/e"), b"e".to_vec(), Expect::Any),
            Op::put("", b"bad".to_vec(), Expect::Any),
        ])
        .await;
    assert!(matches!(r, Err(StoreError::InvalidKey(_))), "{r:?}");
    assert!(b.get(&format!("{p}batch/e")).await.unwrap().is_none());
}

async fn values_and_keys(b: &dyn Backend, p: &str) {
    let empty = format!("{p}values/empty");
    b.put(&empty, Vec::new(), Expect::Any).await.unwrap();
    assert!(b.get(&empty).await.unwrap().unwrap().value.is_empty());

    let big = format!("{p}values/big");
    let value: Vec<u8> = (0..(1usize << 20)).map(|i| (i % 251) as u8).collect();
    b.put(&big, value.clone(), Expect::Any).await.unwrap();
    assert_eq!(b.get(&big).await.unwrap().unwrap().value, value);

    let binary = format!("{p}values/binary");
    b.put(&binary, vec![0, 255, 0, 1], Expect::Any)
        .await
        .unwrap();
    assert_eq!(
        b.get(&binary).await.unwrap().unwrap().value,
        vec![0, 255, 0, 1]
    );

    let unicode = format!("{p}values/ключ/🔑 with space");
    b.put(&unicode, b"u".to_vec(), Expect::Any).await.unwrap();
    assert_eq!(b.get(&unicode).await.unwrap().unwrap().value, b"u");

    for bad in [
        String::new(),
        format!("{p}nul\0"),
        "k".repeat(crate::MAX_KEY_LEN + 1),
    ] {
        assert!(matches!(b.get(&bad).await, Err(StoreError::InvalidKey(_))));
        assert!(matches!(
            b.put(&bad, Vec::new(), Expect::Any).await,
            Err(StoreError::InvalidKey(_))
        ));
        assert!(matches!(
            b.delete(&bad, Expect::Any).await,
            Err(StoreError::InvalidKey(_))
        ));
    }
}

async fn concurrent_cas_counter(b: Arc<dyn Backend>, p: &str) {
    const TASKS: u64 = 16;
    const INCREMENTS: u64 = 25;
    let key = format!("{p}counter");
    b.put(&key, 0u64.to_be_bytes().to_vec(), Expect::Absent)
        .await
        .unwrap();
    let mut handles = Vec::new();
    for _ in 0..TASKS {
        let b = Arc::clone(&b);
        let key = key.clone();
        handles.push(tokio::spawn(async move {
            let mut conflicts = 0u64;
            for _ in 0..INCREMENTS {
                loop {
                    let e = b.get(&key).await.unwrap().unwrap();
                    let n = u64::from_be_bytes(e.value.as_slice().try_into().unwrap());
                    match b
                        .put(
                            &key,
                            (n + 1).to_be_bytes().to_vec(),
                            Expect::Version(e.version),
                        )
                        .await
                    {
                        Ok(_) => break,
                        Err(StoreError::Conflict { .. }) => conflicts += 1,
                        Err(e) => panic!("unexpected error: {e}"),
                    }
                }
            }
            conflicts
        }));
    }
    for h in handles {
        h.await.unwrap();
    }
    let e = b.get(&key).await.unwrap().unwrap();
    let n = u64::from_be_bytes(e.value.as_slice().try_into().unwrap());
    assert_eq!(n, TASKS * INCREMENTS, "no increment may be lost");
}
