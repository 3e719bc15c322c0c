//! The identity store over a real sealed SQLite store.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use citadel_barrier::RootKey;
use citadel_iam::{IdentityError, IdentityStore};
use citadel_store::{SealedStore, SqliteBackend};
use secrecy::{ExposeSecret, SecretString};

async fn open(dir: &std::path::Path) -> Arc<SealedStore> {
    let backend = SqliteBackend::open(dir).await.unwrap();
    let store = Arc::new(SealedStore::new(Arc::new(backend)));
    let key = RootKey::from_bytes(&[7u8; 32]).unwrap();
    if !store.status().await.unwrap().initialized {
        store.initialize_file(&key).await.unwrap();
    }
    store.unseal_with_key(&key).await.unwrap();
    store
}

#[tokio::test]
async fn root_keys_are_created_once_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityStore::new(open(dir.path()).await);
    assert!(ids.lookup("AKIAUNKNOWN0000000").await.unwrap().is_none());

    let created = ids.create_root_access_key("111122223333").await.unwrap();
    assert!(created.access_key_id.starts_with("AKIA"));
    assert_eq!(created.access_key_id.len(), 20);
    assert_eq!(created.secret_access_key.expose_secret().len(), 40);
    assert!(!format!("{created:?}").contains(created.secret_access_key.expose_secret()));
    assert!(matches!(
        ids.create_root_access_key("111122223333").await,
        Err(IdentityError::RootKeyExists(_))
    ));

    let found = ids.lookup(&created.access_key_id).await.unwrap().unwrap();
    assert_eq!(found.principal.arn, "arn:aws:iam::111122223333:root");
    assert_eq!(found.principal.account_id, "111122223333");
    assert_eq!(
        found.secret().expose_secret(),
        created.secret_access_key.expose_secret()
    );
    assert!(!format!("{found:?}").contains(created.secret_access_key.expose_secret()));
    drop(ids);

    // Reopened from disk, without any cache.
    let ids = IdentityStore::new(open(dir.path()).await);
    let found = ids.lookup(&created.access_key_id).await.unwrap().unwrap();
    assert_eq!(found.principal.user_id, "111122223333");
}

#[tokio::test]
async fn configured_root_keys_are_idempotent_and_never_silently_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityStore::new(open(dir.path()).await);
    let secret = SecretString::from("wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY00");
    ids.ensure_root_access_key("000000000000", "AKIACONFIGURED00001", &secret)
        .await
        .unwrap();
    ids.ensure_root_access_key("000000000000", "AKIACONFIGURED00001", &secret)
        .await
        .unwrap();
    // A new secret for the same id replaces the old one (operator rotated it in the env).
    let secret2 = SecretString::from("another-secret-of-enough-length-000000000");
    ids.ensure_root_access_key("000000000000", "AKIACONFIGURED00001", &secret2)
        .await
        .unwrap();
    let found = ids.lookup("AKIACONFIGURED00001").await.unwrap().unwrap();
    assert_eq!(found.secret().expose_secret(), secret2.expose_secret());
    assert!(matches!(
        ids.ensure_root_access_key("000000000000", "AKIAOTHERKEY0000001", &secret)
            .await,
        Err(IdentityError::RootKeyMismatch(_))
    ));
    assert!(matches!(
        ids.ensure_root_access_key("000000000000", "bad id", &secret)
            .await,
        Err(IdentityError::InvalidAccessKeyId(_))
    ));
}
