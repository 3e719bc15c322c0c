//! The IAM repository over a real sealed SQLite store: entities, limits, conflicts, credential
//! lookup for user keys and the policies the authorizer reads.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use citadel_api::{AwsError, PrincipalKind};
use citadel_barrier::RootKey;
use citadel_iam::IdentityStore;
use citadel_iam::identity::{
    DetailFilter, EntityKind, NewPolicy, NewRole, PageRequest, PolicySource, PolicyUsage, Tag,
};
use citadel_iam::policy::{ActionElement, Policy};
use citadel_store::{SealedStore, SqliteBackend};
use secrecy::ExposeSecret;

const ACCT: &str = "111122223333";
const DOC: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;
const TRUST: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;

async fn open(dir: &std::path::Path) -> Arc<SealedStore> {
    let backend = SqliteBackend::open(dir).await.unwrap();
    let store = Arc::new(SealedStore::new(Arc::new(backend)));
    let key = RootKey::from_bytes(&[9u8; 32]).unwrap();
    if !store.status().await.unwrap().initialized {
        store.initialize_file(&key).await.unwrap();
    }
    store.unseal_with_key(&key).await.unwrap();
    store
}

fn code(r: Result<impl std::fmt::Debug, AwsError>) -> (String, u16, String) {
    let e = r.expect_err("expected an error");
    (e.code.to_string(), e.status, e.message.unwrap_or_default())
}

/// Whether a statement of `policy` names `action` in its `Action`.
fn allows_action(policy: &Policy, action: &str) -> bool {
    policy.statements().iter().any(|s| {
        matches!(s.action(), ActionElement::Action(patterns) if patterns.iter().any(|p| p.as_str() == action))
    })
}

fn all() -> PageRequest {
    PageRequest::default()
}

#[tokio::test]
async fn users_are_created_once_found_case_insensitively_and_listed_in_pages() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityStore::new(open(dir.path()).await);

    let alice = ids
        .create_user(ACCT, "alice", None, None, &[])
        .await
        .unwrap();
    assert_eq!(alice.arn, "arn:aws:iam::111122223333:user/alice");
    assert_eq!(alice.path, "/");
    assert!(alice.id.starts_with("AIDA"));
    assert_eq!(alice.id.len(), 21);
    assert!(
        alice
            .id
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
    );

    assert_eq!(
        code(ids.create_user(ACCT, "Alice", None, None, &[]).await),
        (
            "EntityAlreadyExists".into(),
            409,
            "User with name Alice already exists.".into()
        )
    );
    assert_eq!(ids.get_user(ACCT, "ALICE").await.unwrap().name, "alice");
    assert_eq!(
        code(ids.get_user(ACCT, "bob").await),
        (
            "NoSuchEntity".into(),
            404,
            "The user with name bob cannot be found.".into()
        )
    );
    // Other accounts are separate.
    assert!(ids.get_user("444455556666", "alice").await.is_err());

    let tags = [Tag {
        key: "team".into(),
        value: "blue".into(),
    }];
    let carol = ids
        .create_user(ACCT, "carol", Some("/eng/"), None, &tags)
        .await
        .unwrap();
    assert_eq!(carol.arn, "arn:aws:iam::111122223333:user/eng/carol");
    assert_eq!(carol.tags, tags);
    ids.create_user(ACCT, "bob", None, None, &[]).await.unwrap();

    let p1 = ids
        .list_users(
            ACCT,
            None,
            &PageRequest {
                marker: None,
                max_items: Some(2),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        p1.items.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ["alice", "bob"]
    );
    assert!(p1.is_truncated());
    let p2 = ids
        .list_users(
            ACCT,
            None,
            &PageRequest {
                marker: p1.marker.clone(),
                max_items: Some(2),
            },
        )
        .await
        .unwrap();
    assert_eq!(
        p2.items.iter().map(|u| u.name.as_str()).collect::<Vec<_>>(),
        ["carol"]
    );
    assert!(!p2.is_truncated());
    let eng = ids.list_users(ACCT, Some("/eng/"), &all()).await.unwrap();
    assert_eq!(eng.items.len(), 1);

    // Bad names never reach the store.
    let (c, s, _) = code(ids.create_user(ACCT, "bad name", None, None, &[]).await);
    assert_eq!((c.as_str(), s), ("ValidationError", 400));
    let (c, _, _) = code(ids.create_user(ACCT, "x", Some("nopath"), None, &[]).await);
    assert_eq!(c, "ValidationError");
}

#[tokio::test]
async fn access_keys_authenticate_as_the_user_until_deactivated_or_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityStore::new(open(dir.path()).await);
    ids.create_user(ACCT, "alice", Some("/team/"), None, &[])
        .await
        .unwrap();
    let user = ids.get_user(ACCT, "alice").await.unwrap();

    let k1 = ids.create_access_key(ACCT, "alice").await.unwrap();
    assert!(k1.access_key_id.starts_with("AKIA"));
    assert_eq!(k1.access_key_id.len(), 20);
    assert_eq!(k1.secret_access_key.expose_secret().len(), 40);
    assert!(!format!("{k1:?}").contains(k1.secret_access_key.expose_secret()));
    let k2 = ids.create_access_key(ACCT, "ALICE").await.unwrap();
    assert_eq!(
        code(ids.create_access_key(ACCT, "alice").await),
        (
            "LimitExceeded".into(),
            409,
            "Cannot exceed quota for AccessKeysPerUser: 2".into()
        )
    );

    let cred = ids.lookup(&k1.access_key_id).await.unwrap().unwrap();
    assert_eq!(cred.principal.kind, PrincipalKind::User);
    assert_eq!(
        cred.principal.arn,
        "arn:aws:iam::111122223333:user/team/alice"
    );
    assert_eq!(cred.principal.user_id, user.id);
    assert_eq!(cred.principal.account_id, ACCT);
    assert!(cred.active);
    assert_eq!(
        cred.secret().expose_secret(),
        k1.secret_access_key.expose_secret()
    );

    let keys = ids.list_access_keys(ACCT, "alice", &all()).await.unwrap();
    assert_eq!(
        keys.items
            .iter()
            .map(|k| k.access_key_id.as_str())
            .collect::<Vec<_>>(),
        [k1.access_key_id.as_str(), k2.access_key_id.as_str()]
    );

    // Deactivation is visible to the very next lookup (the cache entry is gone).
    ids.update_access_key(ACCT, "alice", &k1.access_key_id, false)
        .await
        .unwrap();
    assert!(!ids.lookup(&k1.access_key_id).await.unwrap().unwrap().active);
    ids.update_access_key(ACCT, "alice", &k1.access_key_id, true)
        .await
        .unwrap();
    assert!(ids.lookup(&k1.access_key_id).await.unwrap().unwrap().active);

    // A key of another user is not found through this one.
    ids.create_user(ACCT, "bob", None, None, &[]).await.unwrap();
    assert_eq!(
        code(
            ids.update_access_key(ACCT, "bob", &k1.access_key_id, false)
                .await
        )
        .0,
        "NoSuchEntity"
    );

    // Renaming the user renames the principal its keys authenticate as.
    ids.update_user(ACCT, "alice", Some("/"), Some("alicia"))
        .await
        .unwrap();
    let cred = ids.lookup(&k1.access_key_id).await.unwrap().unwrap();
    assert_eq!(cred.principal.arn, "arn:aws:iam::111122223333:user/alicia");
    assert!(ids.get_user(ACCT, "alice").await.is_err());

    // A user with keys cannot be deleted.
    assert_eq!(
        code(ids.delete_user(ACCT, "alicia").await),
        (
            "DeleteConflict".into(),
            409,
            "Cannot delete entity, must delete access keys first.".into()
        )
    );
    ids.delete_access_key(ACCT, "alicia", &k1.access_key_id)
        .await
        .unwrap();
    assert!(ids.lookup(&k1.access_key_id).await.unwrap().is_none());
    assert_eq!(
        code(
            ids.delete_access_key(ACCT, "alicia", &k1.access_key_id)
                .await
        ),
        (
            "NoSuchEntity".into(),
            404,
            format!(
                "The Access Key with id {} cannot be found.",
                k1.access_key_id
            )
        )
    );
    ids.delete_access_key(ACCT, "alicia", &k2.access_key_id)
        .await
        .unwrap();
    ids.delete_user(ACCT, "alicia").await.unwrap();
    assert!(ids.lookup(&k2.access_key_id).await.unwrap().is_none());

    // Reopened without caches, the store agrees.
    drop(ids);
    let ids = IdentityStore::new(open(dir.path()).await);
    assert!(ids.lookup(&k1.access_key_id).await.unwrap().is_none());
    assert!(ids.get_user(ACCT, "bob").await.is_ok());
}

#[tokio::test]
async fn last_use_is_kept_in_memory_and_persisted_lazily() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path()).await;
    let ids = IdentityStore::new(store.clone());
    ids.create_user(ACCT, "alice", None, None, &[])
        .await
        .unwrap();
    let k = ids.create_access_key(ACCT, "alice").await.unwrap();
    let usage = ids
        .access_key_last_used(ACCT, &k.access_key_id)
        .await
        .unwrap();
    assert_eq!(usage.user_name.as_deref(), Some("alice"));
    assert!(usage.last_used.is_none());

    ids.record_use(&k.access_key_id, "kms", "eu-west-1");
    ids.record_use(&k.access_key_id, "sts", "us-east-1");
    let usage = ids
        .access_key_last_used(ACCT, &k.access_key_id)
        .await
        .unwrap();
    let last = usage.last_used.unwrap();
    assert_eq!(
        (last.service.as_str(), last.region.as_str()),
        ("sts", "us-east-1")
    );

    // The first use was persisted off the request path; a fresh node sees it.
    let mut persisted = None;
    for _ in 0..100 {
        let fresh = IdentityStore::new(store.clone());
        persisted = fresh
            .access_key_last_used(ACCT, &k.access_key_id)
            .await
            .unwrap()
            .last_used;
        if persisted.is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(persisted.unwrap().service, "kms");
    assert!(
        ids.access_key_last_used("444455556666", &k.access_key_id)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn groups_memberships_and_their_conflicts() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityStore::new(open(dir.path()).await);
    ids.create_user(ACCT, "alice", None, None, &[])
        .await
        .unwrap();
    let g = ids.create_group(ACCT, "devs", None).await.unwrap();
    assert!(g.id.starts_with("AGPA"));
    assert_eq!(g.arn, "arn:aws:iam::111122223333:group/devs");
    assert_eq!(
        code(ids.create_group(ACCT, "DEVS", None).await),
        (
            "EntityAlreadyExists".into(),
            409,
            "Group with name DEVS already exists.".into()
        )
    );
    ids.add_user_to_group(ACCT, "devs", "alice").await.unwrap();
    // Adding twice is harmless.
    ids.add_user_to_group(ACCT, "Devs", "alice").await.unwrap();
    let (group, members) = ids.get_group(ACCT, "devs", &all()).await.unwrap();
    assert_eq!(group.name, "devs");
    assert_eq!(members.items.len(), 1);
    assert_eq!(members.items[0].name, "alice");
    let groups = ids
        .list_groups_for_user(ACCT, "alice", &all())
        .await
        .unwrap();
    assert_eq!(groups.items[0].name, "devs");

    assert_eq!(
        code(ids.delete_group(ACCT, "devs").await).2,
        "Cannot delete entity, must remove users from group first."
    );
    assert_eq!(
        code(ids.delete_user(ACCT, "alice").await).2,
        "Cannot delete entity, must remove users from group first."
    );
    assert_eq!(
        code(ids.add_user_to_group(ACCT, "devs", "nobody").await).2,
        "The user with name nobody cannot be found."
    );
    assert_eq!(
        code(ids.add_user_to_group(ACCT, "nogroup", "alice").await).2,
        "The group with name nogroup cannot be found."
    );

    // Renamed users stay members.
    ids.update_user(ACCT, "alice", None, Some("alicia"))
        .await
        .unwrap();
    let (_, members) = ids.get_group(ACCT, "devs", &all()).await.unwrap();
    assert_eq!(members.items[0].name, "alicia");

    for i in 0..9 {
        ids.create_group(ACCT, &format!("g{i}"), None)
            .await
            .unwrap();
        ids.add_user_to_group(ACCT, &format!("g{i}"), "alicia")
            .await
            .unwrap();
    }
    ids.create_group(ACCT, "g10", None).await.unwrap();
    assert_eq!(
        code(ids.add_user_to_group(ACCT, "g10", "alicia").await).2,
        "Cannot exceed quota for GroupsPerUser: 10"
    );

    ids.remove_user_from_group(ACCT, "devs", "alicia")
        .await
        .unwrap();
    ids.remove_user_from_group(ACCT, "devs", "alicia")
        .await
        .unwrap();
    let (_, members) = ids.get_group(ACCT, "devs", &all()).await.unwrap();
    assert!(members.items.is_empty());
    ids.delete_group(ACCT, "devs").await.unwrap();
    assert!(ids.get_group(ACCT, "devs", &all()).await.is_err());
}

#[tokio::test]
async fn managed_policies_versions_and_attachments() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityStore::new(open(dir.path()).await);
    let p = ids
        .create_policy(
            ACCT,
            &NewPolicy {
                name: "Encrypt".into(),
                path: Some("/app/".into()),
                document: DOC.into(),
                description: Some("encrypt only".into()),
                tags: vec![],
            },
        )
        .await
        .unwrap();
    assert_eq!(p.arn, "arn:aws:iam::111122223333:policy/app/Encrypt");
    assert!(p.id.starts_with("ANPA"));
    assert_eq!(p.default_version_id, "v1");
    assert_eq!(
        code(
            ids.create_policy(
                ACCT,
                &NewPolicy {
                    name: "encrypt".into(),
                    document: DOC.into(),
                    ..Default::default()
                }
            )
            .await
        ),
        (
            "EntityAlreadyExists".into(),
            409,
            "A policy called encrypt already exists. Duplicate names are not allowed.".into()
        )
    );
    assert_eq!(
        code(
            ids.create_policy(
                ACCT,
                &NewPolicy {
                    name: "Bad".into(),
                    document: "{not json".into(),
                    ..Default::default()
                }
            )
            .await
        ),
        (
            "MalformedPolicyDocument".into(),
            400,
            "Syntax errors in policy.".into()
        )
    );
    // A policy is found by its exact ARN only (path included).
    assert_eq!(
        code(
            ids.get_policy(ACCT, "arn:aws:iam::111122223333:policy/Encrypt")
                .await
        ),
        (
            "NoSuchEntity".into(),
            404,
            "Policy arn:aws:iam::111122223333:policy/Encrypt does not exist or is not attachable."
                .into()
        )
    );

    for n in 2..=5 {
        let v = ids
            .create_policy_version(ACCT, &p.arn, DOC, n == 5)
            .await
            .unwrap();
        assert_eq!(v.version_id, format!("v{n}"));
    }
    assert_eq!(
        code(ids.create_policy_version(ACCT, &p.arn, DOC, false).await).2,
        "A managed policy can have up to 5 versions. Before you create a new version, you must delete an existing version."
    );
    let versions = ids
        .list_policy_versions(ACCT, &p.arn, &all())
        .await
        .unwrap();
    assert_eq!(
        versions
            .items
            .iter()
            .map(|v| v.version_id.as_str())
            .collect::<Vec<_>>(),
        ["v5", "v4", "v3", "v2", "v1"]
    );
    assert!(versions.items[0].is_default);
    assert_eq!(
        code(ids.delete_policy_version(ACCT, &p.arn, "v5").await).2,
        "Cannot delete the default version of a policy."
    );
    ids.delete_policy_version(ACCT, &p.arn, "v2").await.unwrap();
    // Version numbers are never reused.
    let v = ids
        .create_policy_version(ACCT, &p.arn, DOC, false)
        .await
        .unwrap();
    assert_eq!(v.version_id, "v6");
    ids.set_default_policy_version(ACCT, &p.arn, "v1")
        .await
        .unwrap();
    assert_eq!(
        ids.get_policy(ACCT, &p.arn)
            .await
            .unwrap()
            .default_version_id,
        "v1"
    );
    let v1 = ids.get_policy_version(ACCT, &p.arn, "v1").await.unwrap();
    assert_eq!(v1.document.as_deref(), Some(DOC));
    assert!(v1.is_default);
    assert_eq!(
        code(ids.get_policy_version(ACCT, &p.arn, "v2").await).0,
        "NoSuchEntity"
    );

    // Attachments count, refuse deletion, and are idempotent.
    ids.create_user(ACCT, "alice", None, None, &[])
        .await
        .unwrap();
    ids.attach_policy(ACCT, EntityKind::User, "alice", &p.arn)
        .await
        .unwrap();
    ids.attach_policy(ACCT, EntityKind::User, "alice", &p.arn)
        .await
        .unwrap();
    assert_eq!(
        ids.get_policy(ACCT, &p.arn).await.unwrap().attachment_count,
        1
    );
    let attached = ids
        .list_attached_policies(ACCT, EntityKind::User, "alice", None, &all())
        .await
        .unwrap();
    assert_eq!(attached.items[0].name, "Encrypt");
    assert_eq!(attached.items[0].arn, p.arn);
    assert_eq!(
        code(ids.delete_policy(ACCT, &p.arn).await).2,
        "Cannot delete a policy attached to entities."
    );
    assert_eq!(
        code(ids.delete_user(ACCT, "alice").await).2,
        "Cannot delete entity, must detach all policies first."
    );
    assert_eq!(
        code(
            ids.attach_policy(
                ACCT,
                EntityKind::User,
                "alice",
                "arn:aws:iam::aws:policy/ReadOnlyAccess"
            )
            .await
        ),
        (
            "NoSuchEntity".into(),
            404,
            "Policy arn:aws:iam::aws:policy/ReadOnlyAccess does not exist or is not attachable."
                .into()
        )
    );
    ids.detach_policy(ACCT, EntityKind::User, "alice", &p.arn)
        .await
        .unwrap();
    assert_eq!(
        code(
            ids.detach_policy(ACCT, EntityKind::User, "alice", &p.arn)
                .await
        ),
        (
            "NoSuchEntity".into(),
            404,
            format!("Policy {} was not found.", p.arn)
        )
    );
    assert_eq!(
        code(ids.delete_policy(ACCT, &p.arn).await).2,
        "This policy has more than one version. Before you delete a policy, you must delete the policy's versions. The default version is deleted with the policy."
    );
    for v in ["v3", "v4", "v5", "v6"] {
        ids.delete_policy_version(ACCT, &p.arn, v).await.unwrap();
    }
    ids.delete_policy(ACCT, &p.arn).await.unwrap();
    assert!(ids.get_policy(ACCT, &p.arn).await.is_err());

    // At most ten managed policies per entity.
    for i in 0..11 {
        ids.create_policy(
            ACCT,
            &NewPolicy {
                name: format!("p{i}"),
                document: DOC.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    }
    ids.create_role(
        ACCT,
        &NewRole {
            name: "r".into(),
            assume_role_policy: TRUST.into(),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    for i in 0..10 {
        ids.attach_policy(
            ACCT,
            EntityKind::Role,
            "r",
            &format!("arn:aws:iam::111122223333:policy/p{i}"),
        )
        .await
        .unwrap();
    }
    assert_eq!(
        code(
            ids.attach_policy(
                ACCT,
                EntityKind::Role,
                "r",
                "arn:aws:iam::111122223333:policy/p10"
            )
            .await
        ),
        (
            "LimitExceeded".into(),
            409,
            "Cannot exceed quota for PoliciesPerRole: 10".into()
        )
    );
    let listed = ids
        .list_policies(ACCT, None, true, None, None, &all())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 10);
    let listed = ids
        .list_policies(ACCT, Some("Local"), false, None, None, &all())
        .await
        .unwrap();
    assert_eq!(listed.items.len(), 11);
    let listed = ids
        .list_policies(ACCT, Some("AWS"), false, None, None, &all())
        .await
        .unwrap();
    assert!(listed.items.is_empty());
}

#[tokio::test]
async fn inline_policies_and_their_aggregate_limit() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityStore::new(open(dir.path()).await);
    ids.create_user(ACCT, "alice", None, None, &[])
        .await
        .unwrap();
    ids.put_inline_policy(ACCT, EntityKind::User, "alice", "p1", DOC)
        .await
        .unwrap();
    let got = ids
        .get_inline_policy(ACCT, EntityKind::User, "ALICE", "p1")
        .await
        .unwrap();
    assert_eq!(got.entity_name, "alice");
    assert_eq!(got.document, DOC);
    assert_eq!(
        code(
            ids.get_inline_policy(ACCT, EntityKind::User, "alice", "nope")
                .await
        ),
        (
            "NoSuchEntity".into(),
            404,
            "The user policy with name nope cannot be found.".into()
        )
    );
    // 2048 characters (without whitespace) across all of a user's inline policies.
    let padded = |n: usize| {
        format!(
            "{{\"Statement\":[{{\"Sid\":\"{}\",\"Effect\":\"Allow\",\"Action\":\"*\",\"Resource\":\"*\"}}]}}",
            "a".repeat(n)
        )
    };
    let big = padded(2048 - DOC.len() - padded(0).len());
    assert_eq!(big.len() + DOC.len(), 2048);
    ids.put_inline_policy(ACCT, EntityKind::User, "alice", "p2", &big)
        .await
        .unwrap();
    let e = code(
        ids.put_inline_policy(ACCT, EntityKind::User, "alice", "p3", DOC)
            .await,
    );
    assert_eq!(
        e,
        (
            "LimitExceeded".into(),
            409,
            "Maximum policy size of 2048 bytes exceeded for user alice".into()
        )
    );
    // Replacing a policy counts only its new size.
    ids.put_inline_policy(ACCT, EntityKind::User, "alice", "p2", DOC)
        .await
        .unwrap();
    let names = ids
        .list_inline_policies(ACCT, EntityKind::User, "alice", &all())
        .await
        .unwrap();
    assert_eq!(names.items, ["p1", "p2"]);
    assert_eq!(
        code(ids.delete_user(ACCT, "alice").await).2,
        "Cannot delete entity, must delete policies first."
    );
    ids.delete_inline_policy(ACCT, EntityKind::User, "alice", "p1")
        .await
        .unwrap();
    ids.delete_inline_policy(ACCT, EntityKind::User, "alice", "p2")
        .await
        .unwrap();
    ids.delete_user(ACCT, "alice").await.unwrap();
}

#[tokio::test]
async fn roles_trust_policies_and_updates() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityStore::new(open(dir.path()).await);
    let r = ids
        .create_role(
            ACCT,
            &NewRole {
                name: "Admin".into(),
                path: Some("/ops/".into()),
                assume_role_policy: TRUST.into(),
                description: Some("admins".into()),
                max_session_duration: Some(7200),
                permissions_boundary: None,
                tags: vec![Tag {
                    key: "k".into(),
                    value: "v".into(),
                }],
            },
        )
        .await
        .unwrap();
    assert_eq!(r.arn, "arn:aws:iam::111122223333:role/ops/Admin");
    assert!(r.id.starts_with("AROA"));
    assert_eq!(r.max_session_duration, 7200);
    assert_eq!(
        code(
            ids.create_role(
                ACCT,
                &NewRole {
                    name: "admin".into(),
                    assume_role_policy: TRUST.into(),
                    ..Default::default()
                }
            )
            .await
        )
        .2,
        "Role with name admin already exists."
    );
    let (c, _, _) = code(
        ids.create_role(
            ACCT,
            &NewRole {
                name: "x".into(),
                assume_role_policy: TRUST.into(),
                max_session_duration: Some(60),
                ..Default::default()
            },
        )
        .await,
    );
    assert_eq!(c, "ValidationError");
    ids.update_role(ACCT, "admin", Some("new"), Some(43200))
        .await
        .unwrap();
    let got = ids.get_role(ACCT, "Admin").await.unwrap();
    assert_eq!(got.description.as_deref(), Some("new"));
    assert_eq!(got.max_session_duration, 43200);
    assert_eq!(got.assume_role_policy, TRUST);
    let new_trust = TRUST.replace("111122223333:root", "444455556666:root");
    ids.update_assume_role_policy(ACCT, "Admin", &new_trust)
        .await
        .unwrap();
    assert_eq!(
        ids.get_role(ACCT, "Admin")
            .await
            .unwrap()
            .assume_role_policy,
        new_trust
    );
    assert_eq!(
        code(ids.update_assume_role_policy(ACCT, "Admin", "nope").await).0,
        "MalformedPolicyDocument"
    );
    ids.tag_role(
        ACCT,
        "Admin",
        &[Tag {
            key: "K".into(),
            value: "v2".into(),
        }],
    )
    .await
    .unwrap();
    let tags = ids.list_role_tags(ACCT, "Admin", &all()).await.unwrap();
    assert_eq!(tags.items.len(), 1);
    assert_eq!(tags.items[0].value, "v2");
    ids.untag_role(ACCT, "Admin", &["k".into()]).await.unwrap();
    assert!(
        ids.list_role_tags(ACCT, "Admin", &all())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    ids.put_inline_policy(ACCT, EntityKind::Role, "Admin", "inline", DOC)
        .await
        .unwrap();
    assert_eq!(
        code(ids.delete_role(ACCT, "Admin").await).2,
        "Cannot delete entity, must delete policies first."
    );
    ids.delete_inline_policy(ACCT, EntityKind::Role, "Admin", "inline")
        .await
        .unwrap();
    ids.delete_role(ACCT, "Admin").await.unwrap();
    assert_eq!(
        code(ids.get_role(ACCT, "Admin").await).2,
        "The role with name Admin cannot be found."
    );
}

#[tokio::test]
async fn the_authorizer_sees_user_group_and_boundary_policies_and_changes_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityStore::new(open(dir.path()).await);
    ids.create_user(
        ACCT,
        "alice",
        None,
        None,
        &[Tag {
            key: "team".into(),
            value: "blue".into(),
        }],
    )
    .await
    .unwrap();
    let key = ids.create_access_key(ACCT, "alice").await.unwrap();
    let principal = ids
        .lookup(&key.access_key_id)
        .await
        .unwrap()
        .unwrap()
        .principal
        .clone();
    assert!(ids.identity_policies(&principal).await.unwrap().is_empty());
    assert!(
        ids.permissions_boundary(&principal)
            .await
            .unwrap()
            .is_none()
    );

    ids.put_inline_policy(ACCT, EntityKind::User, "alice", "own", DOC)
        .await
        .unwrap();
    let managed = ids
        .create_policy(
            ACCT,
            &NewPolicy {
                name: "Managed".into(),
                document: DOC.replace("Encrypt", "Decrypt"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    ids.attach_policy(ACCT, EntityKind::User, "alice", &managed.arn)
        .await
        .unwrap();
    ids.create_group(ACCT, "devs", None).await.unwrap();
    ids.put_inline_policy(ACCT, EntityKind::Group, "devs", "group-inline", DOC)
        .await
        .unwrap();
    ids.add_user_to_group(ACCT, "devs", "alice").await.unwrap();

    let got = ids.principal_policies(&principal).await.unwrap();
    assert_eq!(got.tags.len(), 1);
    let sources: Vec<&PolicySource> = got.sources.iter().collect();
    assert_eq!(sources.len(), 3);
    assert!(matches!(
        sources[0],
        PolicySource::Inline { owner: EntityKind::User, policy_name, .. } if policy_name == "own"
    ));
    assert!(matches!(
        sources[1],
        PolicySource::Managed { policy_arn, version_id, attached_to: EntityKind::User, .. }
            if *policy_arn == managed.arn && version_id == "v1"
    ));
    assert!(matches!(
        sources[2],
        PolicySource::Inline { owner: EntityKind::Group, owner_arn, .. }
            if owner_arn == "arn:aws:iam::111122223333:group/devs"
    ));
    assert_eq!(got.identity.len(), 3);
    assert!(allows_action(&got.identity[1], "kms:Decrypt"));

    // A new default version is what the next request sees (the cache was invalidated).
    ids.create_policy_version(ACCT, &managed.arn, &DOC.replace("Encrypt", "Sign"), true)
        .await
        .unwrap();
    let got = ids.identity_policies(&principal).await.unwrap();
    assert!(allows_action(&got[1].1, "kms:Sign"));

    // The boundary, too.
    ids.put_permissions_boundary(ACCT, EntityKind::User, "alice", &managed.arn)
        .await
        .unwrap();
    let (source, doc) = ids.permissions_boundary(&principal).await.unwrap().unwrap();
    assert!(allows_action(&doc, "kms:Sign"));
    assert!(matches!(source, PolicySource::Managed { .. }));
    assert_eq!(
        ids.get_policy(ACCT, &managed.arn)
            .await
            .unwrap()
            .permissions_boundary_usage_count,
        1
    );
    assert_eq!(
        code(
            ids.put_permissions_boundary(
                ACCT,
                EntityKind::User,
                "alice",
                "arn:aws:iam::111122223333:policy/Missing"
            )
            .await
        ),
        (
            "NoSuchEntity".into(),
            404,
            "Scope ARN: arn:aws:iam::111122223333:policy/Missing does not exist or is not attachable."
                .into()
        )
    );
    ids.delete_permissions_boundary(ACCT, EntityKind::User, "alice")
        .await
        .unwrap();
    assert!(
        ids.permissions_boundary(&principal)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        ids.get_policy(ACCT, &managed.arn)
            .await
            .unwrap()
            .permissions_boundary_usage_count,
        0
    );

    // Leaving the group drops its policies.
    ids.remove_user_from_group(ACCT, "devs", "alice")
        .await
        .unwrap();
    assert_eq!(ids.identity_policies(&principal).await.unwrap().len(), 2);

    // Root is governed by no identity policies.
    let root = citadel_api::Principal::root(ACCT, "AKIAROOT");
    assert!(ids.identity_policies(&root).await.unwrap().is_empty());

    // Roles (and, later, sessions of them) carry the role's policies.
    let role = ids
        .create_role(
            ACCT,
            &NewRole {
                name: "R".into(),
                assume_role_policy: TRUST.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    ids.put_inline_policy(ACCT, EntityKind::Role, "R", "rp", DOC)
        .await
        .unwrap();
    let session = citadel_api::Principal {
        account_id: ACCT.into(),
        arn: "arn:aws:sts::111122223333:assumed-role/R/s1".into(),
        user_id: format!("{}:s1", role.id),
        access_key_id: "ASIAEXAMPLE".into(),
        kind: PrincipalKind::AssumedRole,
    };
    let got = ids.identity_policies(&session).await.unwrap();
    assert_eq!(got.len(), 1);
    assert!(matches!(
        &got[0].0,
        PolicySource::Inline {
            owner: EntityKind::Role,
            ..
        }
    ));

    // A principal whose entity was deleted and re-created under its name is not that entity.
    let mut stale = principal.clone();
    stale.user_id = "AIDAAAAAAAAAAAAAAAAAA".into();
    assert!(ids.identity_policies(&stale).await.unwrap().is_empty());
    assert_eq!(ids.identity_policies(&principal).await.unwrap().len(), 2);
}

#[tokio::test]
async fn concurrent_writers_never_lose_changes() {
    let dir = tempfile::tempdir().unwrap();
    let ids = Arc::new(IdentityStore::new(open(dir.path()).await));
    ids.create_user(ACCT, "alice", None, None, &[])
        .await
        .unwrap();
    ids.create_group(ACCT, "devs", None).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..8 {
        let ids = ids.clone();
        tasks.push(tokio::spawn(async move {
            ids.put_inline_policy(ACCT, EntityKind::User, "alice", &format!("p{i}"), DOC)
                .await
        }));
    }
    let mut ok = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(()) => ok += 1,
            Err(e) => assert!(
                e.code == "LimitExceeded" || e.code == "ConcurrentModification",
                "{e}"
            ),
        }
    }
    let names = ids
        .list_inline_policies(ACCT, EntityKind::User, "alice", &all())
        .await
        .unwrap();
    assert_eq!(names.items.len(), ok);
}

fn new_role(name: &str) -> NewRole {
    NewRole {
        name: name.into(),
        assume_role_policy: TRUST.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn instance_profiles_hold_one_role_and_block_its_deletion() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityStore::new(open(dir.path()).await);
    let tags = [Tag {
        key: "app".into(),
        value: "web".into(),
    }];
    let web = ids
        .create_instance_profile(ACCT, "web", Some("/app/"), &tags)
        .await
        .unwrap();
    assert_eq!(
        web.arn,
        "arn:aws:iam::111122223333:instance-profile/app/web"
    );
    assert!(
        web.id.starts_with("AIPA") && web.id.len() == 21,
        "{}",
        web.id
    );
    assert!(web.roles.is_empty());
    assert_eq!(web.tags, tags);
    assert_eq!(
        code(ids.create_instance_profile(ACCT, "WEB", None, &[]).await),
        (
            "EntityAlreadyExists".into(),
            409,
            "Instance Profile WEB already exists.".into()
        )
    );
    assert_eq!(
        code(ids.get_instance_profile(ACCT, "nope").await),
        (
            "NoSuchEntity".into(),
            404,
            "Instance Profile nope cannot be found.".into()
        )
    );
    let (c, _, _) = code(
        ids.create_instance_profile(ACCT, "bad name", None, &[])
            .await,
    );
    assert_eq!(c, "ValidationError");

    ids.create_role(ACCT, &new_role("app")).await.unwrap();
    ids.create_role(ACCT, &new_role("other")).await.unwrap();
    assert_eq!(
        code(ids.add_role_to_instance_profile(ACCT, "web", "ghost").await).2,
        "The role with name ghost cannot be found."
    );
    ids.add_role_to_instance_profile(ACCT, "Web", "APP")
        .await
        .unwrap();
    let got = ids.get_instance_profile(ACCT, "web").await.unwrap();
    assert_eq!(got.roles.len(), 1);
    assert_eq!(got.roles[0].name, "app");
    // One role per profile, the same one included.
    for role in ["other", "app"] {
        assert_eq!(
            code(ids.add_role_to_instance_profile(ACCT, "web", role).await),
            (
                "LimitExceeded".into(),
                409,
                "Cannot exceed quota for InstanceSessionsPerInstanceProfile: 1".into()
            )
        );
    }
    // A role may be in several profiles.
    ids.create_instance_profile(ACCT, "batch", None, &[])
        .await
        .unwrap();
    ids.add_role_to_instance_profile(ACCT, "batch", "app")
        .await
        .unwrap();
    let for_role = ids
        .list_instance_profiles_for_role(ACCT, "app", &all())
        .await
        .unwrap();
    assert_eq!(
        for_role
            .items
            .iter()
            .map(|p| p.name.as_str())
            .collect::<Vec<_>>(),
        ["batch", "web"]
    );
    assert!(
        ids.list_instance_profiles_for_role(ACCT, "other", &all())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    let conflict = (
        "DeleteConflict".into(),
        409,
        "Cannot delete entity, must remove roles from instance profile first.".into(),
    );
    assert_eq!(code(ids.delete_role(ACCT, "app").await), conflict);
    assert_eq!(
        code(ids.delete_instance_profile(ACCT, "web").await),
        conflict
    );

    let listed = ids
        .list_instance_profiles(
            ACCT,
            None,
            &PageRequest {
                marker: None,
                max_items: Some(1),
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.items[0].name, "batch");
    assert!(listed.is_truncated());
    let only_app = ids
        .list_instance_profiles(ACCT, Some("/app/"), &all())
        .await
        .unwrap();
    assert_eq!(only_app.items.len(), 1);
    assert_eq!(only_app.items[0].roles[0].name, "app");

    // Tags.
    ids.tag_instance_profile(
        ACCT,
        "web",
        &[Tag {
            key: "env".into(),
            value: "prod".into(),
        }],
    )
    .await
    .unwrap();
    ids.untag_instance_profile(ACCT, "web", &["APP".into()])
        .await
        .unwrap();
    let tags = ids
        .list_instance_profile_tags(ACCT, "web", &all())
        .await
        .unwrap();
    assert_eq!(
        tags.items,
        [Tag {
            key: "env".into(),
            value: "prod".into()
        }]
    );

    // Out again, then everything can go.
    assert_eq!(
        code(
            ids.remove_role_from_instance_profile(ACCT, "web", "other")
                .await
        )
        .0,
        "NoSuchEntity"
    );
    for profile in ["web", "batch"] {
        ids.remove_role_from_instance_profile(ACCT, profile, "app")
            .await
            .unwrap();
    }
    assert!(
        ids.get_instance_profile(ACCT, "web")
            .await
            .unwrap()
            .roles
            .is_empty()
    );
    ids.delete_role(ACCT, "app").await.unwrap();
    ids.delete_instance_profile(ACCT, "web").await.unwrap();
    ids.delete_instance_profile(ACCT, "batch").await.unwrap();
    assert!(
        ids.list_instance_profiles(ACCT, None, &all())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn renamed_groups_keep_members_and_policies() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityStore::new(open(dir.path()).await);
    ids.create_user(ACCT, "alice", None, None, &[])
        .await
        .unwrap();
    ids.create_user(ACCT, "bob", None, None, &[]).await.unwrap();
    let g = ids.create_group(ACCT, "devs", None).await.unwrap();
    ids.create_group(ACCT, "ops", None).await.unwrap();
    let managed = ids
        .create_policy(
            ACCT,
            &NewPolicy {
                name: "Managed".into(),
                document: DOC.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    ids.attach_policy(ACCT, EntityKind::Group, "devs", &managed.arn)
        .await
        .unwrap();
    ids.put_inline_policy(ACCT, EntityKind::Group, "devs", "inline", DOC)
        .await
        .unwrap();
    for u in ["alice", "bob"] {
        ids.add_user_to_group(ACCT, "devs", u).await.unwrap();
    }
    let key = ids.create_access_key(ACCT, "alice").await.unwrap();
    let principal = ids
        .lookup(&key.access_key_id)
        .await
        .unwrap()
        .unwrap()
        .principal
        .clone();
    assert_eq!(ids.identity_policies(&principal).await.unwrap().len(), 2);

    assert_eq!(
        code(ids.update_group(ACCT, "devs", None, Some("OPS")).await),
        (
            "EntityAlreadyExists".into(),
            409,
            "Group with name OPS already exists.".into()
        )
    );
    assert_eq!(
        code(ids.update_group(ACCT, "nope", None, Some("x")).await).2,
        "The group with name nope cannot be found."
    );
    assert_eq!(
        code(ids.update_group(ACCT, "devs", Some("bad"), None).await).0,
        "ValidationError"
    );

    ids.update_group(ACCT, "devs", Some("/eng/"), Some("engineers"))
        .await
        .unwrap();
    assert!(ids.get_group(ACCT, "devs", &all()).await.is_err());
    let (group, members) = ids.get_group(ACCT, "engineers", &all()).await.unwrap();
    assert_eq!(group.id, g.id);
    assert_eq!(group.arn, "arn:aws:iam::111122223333:group/eng/engineers");
    assert_eq!(
        members
            .items
            .iter()
            .map(|u| u.name.as_str())
            .collect::<Vec<_>>(),
        ["alice", "bob"]
    );
    let groups = ids.list_groups_for_user(ACCT, "bob", &all()).await.unwrap();
    assert_eq!(groups.items[0].name, "engineers");
    let attached = ids
        .list_attached_policies(ACCT, EntityKind::Group, "engineers", None, &all())
        .await
        .unwrap();
    assert_eq!(attached.items[0].arn, managed.arn);
    ids.get_inline_policy(ACCT, EntityKind::Group, "engineers", "inline")
        .await
        .unwrap();
    // The members' permissions follow at once.
    let got = ids.principal_policies(&principal).await.unwrap();
    assert_eq!(got.identity.len(), 2);
    assert!(got.sources.iter().all(|s| matches!(
        s,
        PolicySource::Inline { owner_arn, .. } if owner_arn.ends_with("group/eng/engineers")
    ) || matches!(
        s,
        PolicySource::Managed { attached_to_arn, .. } if attached_to_arn.ends_with("group/eng/engineers")
    )));

    // Case-only renames change the spelling; membership changes still work.
    ids.update_group(ACCT, "engineers", None, Some("Engineers"))
        .await
        .unwrap();
    ids.remove_user_from_group(ACCT, "Engineers", "alice")
        .await
        .unwrap();
    let (group, members) = ids.get_group(ACCT, "engineers", &all()).await.unwrap();
    assert_eq!(group.name, "Engineers");
    assert_eq!(members.items.len(), 1);
    assert!(
        ids.list_groups_for_user(ACCT, "alice", &all())
            .await
            .unwrap()
            .items
            .is_empty()
    );
}

#[tokio::test]
async fn entities_for_policy_authorization_details_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let ids = IdentityStore::new(open(dir.path()).await);
    let policy = ids
        .create_policy(
            ACCT,
            &NewPolicy {
                name: "Shared".into(),
                document: DOC.into(),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    ids.create_policy_version(ACCT, &policy.arn, &DOC.replace("Encrypt", "Decrypt"), true)
        .await
        .unwrap();
    ids.create_user(ACCT, "alice", None, None, &[])
        .await
        .unwrap();
    ids.create_user(ACCT, "bob", Some("/eng/"), Some(&policy.arn), &[])
        .await
        .unwrap();
    ids.create_group(ACCT, "devs", None).await.unwrap();
    ids.add_user_to_group(ACCT, "devs", "alice").await.unwrap();
    ids.create_role(ACCT, &new_role("app")).await.unwrap();
    ids.create_instance_profile(ACCT, "app", None, &[])
        .await
        .unwrap();
    ids.add_role_to_instance_profile(ACCT, "app", "app")
        .await
        .unwrap();
    for (kind, name) in [
        (EntityKind::User, "alice"),
        (EntityKind::Group, "devs"),
        (EntityKind::Role, "app"),
    ] {
        ids.attach_policy(ACCT, kind, name, &policy.arn)
            .await
            .unwrap();
    }
    ids.put_inline_policy(ACCT, EntityKind::Role, "app", "own", DOC)
        .await
        .unwrap();

    // ------------------------------------------------ ListEntitiesForPolicy
    let kinds = [EntityKind::Group, EntityKind::User, EntityKind::Role];
    let names = |p: &citadel_iam::identity::Page<citadel_iam::identity::PolicyEntity>| {
        p.items
            .iter()
            .map(|e| (e.kind, e.name.clone()))
            .collect::<Vec<_>>()
    };
    let every = ids
        .list_entities_for_policy(ACCT, &policy.arn, &kinds, None, PolicyUsage::Any, &all())
        .await
        .unwrap();
    assert_eq!(
        names(&every),
        [
            (EntityKind::Group, "devs".to_owned()),
            (EntityKind::User, "alice".to_owned()),
            (EntityKind::User, "bob".to_owned()),
            (EntityKind::Role, "app".to_owned()),
        ]
    );
    let policies_only = ids
        .list_entities_for_policy(
            ACCT,
            &policy.arn,
            &kinds,
            None,
            PolicyUsage::PermissionsPolicy,
            &all(),
        )
        .await
        .unwrap();
    assert_eq!(policies_only.items.len(), 3);
    let boundaries = ids
        .list_entities_for_policy(
            ACCT,
            &policy.arn,
            &kinds,
            None,
            PolicyUsage::PermissionsBoundary,
            &all(),
        )
        .await
        .unwrap();
    assert_eq!(names(&boundaries), [(EntityKind::User, "bob".to_owned())]);
    let eng = ids
        .list_entities_for_policy(
            ACCT,
            &policy.arn,
            &kinds,
            Some("/eng/"),
            PolicyUsage::Any,
            &all(),
        )
        .await
        .unwrap();
    assert_eq!(names(&eng), [(EntityKind::User, "bob".to_owned())]);
    let roles = ids
        .list_entities_for_policy(
            ACCT,
            &policy.arn,
            &[EntityKind::Role],
            None,
            PolicyUsage::Any,
            &all(),
        )
        .await
        .unwrap();
    assert_eq!(names(&roles), [(EntityKind::Role, "app".to_owned())]);
    // Pages of one.
    let mut seen = Vec::new();
    let mut marker = None;
    loop {
        let p = ids
            .list_entities_for_policy(
                ACCT,
                &policy.arn,
                &kinds,
                None,
                PolicyUsage::Any,
                &PageRequest {
                    marker: marker.clone(),
                    max_items: Some(1),
                },
            )
            .await
            .unwrap();
        seen.extend(names(&p));
        marker = p.marker;
        if marker.is_none() {
            break;
        }
    }
    assert_eq!(seen, names(&every));
    assert_eq!(
        code(
            ids.list_entities_for_policy(
                ACCT,
                "arn:aws:iam::111122223333:policy/Nope",
                &kinds,
                None,
                PolicyUsage::Any,
                &all(),
            )
            .await
        ),
        (
            "NoSuchEntity".into(),
            404,
            "Policy arn:aws:iam::111122223333:policy/Nope does not exist or is not attachable."
                .into()
        )
    );

    // ------------------------------------------------ GetAccountAuthorizationDetails
    let d = ids
        .account_authorization_details(ACCT, DetailFilter::ALL, &all())
        .await
        .unwrap();
    assert!(d.marker.is_none());
    assert_eq!(d.users.len(), 2);
    assert_eq!(d.users[0].user.name, "alice");
    assert_eq!(d.users[0].groups, ["devs"]);
    assert_eq!(d.users[0].attached[0].name, "Shared");
    assert_eq!(
        d.users[1].user.permissions_boundary.as_deref(),
        Some(policy.arn.as_str())
    );
    assert_eq!(d.groups.len(), 1);
    assert_eq!(d.groups[0].attached[0].arn, policy.arn);
    assert_eq!(d.roles.len(), 1);
    assert_eq!(d.roles[0].inline[0].name, "own");
    assert_eq!(d.roles[0].inline[0].document, DOC);
    assert_eq!(d.roles[0].instance_profiles[0].name, "app");
    assert_eq!(d.roles[0].instance_profiles[0].roles[0].name, "app");
    assert_eq!(d.policies.len(), 1);
    let versions: Vec<(&str, bool)> = d.policies[0]
        .versions
        .iter()
        .map(|v| (v.version_id.as_str(), v.is_default))
        .collect();
    assert_eq!(versions, [("v2", true), ("v1", false)]);
    assert_eq!(d.policies[0].policy.attachment_count, 3);
    assert_eq!(d.policies[0].policy.permissions_boundary_usage_count, 1);

    let roles_only = ids
        .account_authorization_details(
            ACCT,
            DetailFilter {
                users: false,
                groups: false,
                roles: true,
                local_policies: false,
            },
            &all(),
        )
        .await
        .unwrap();
    assert!(roles_only.users.is_empty() && roles_only.groups.is_empty());
    assert!(roles_only.policies.is_empty());
    assert_eq!(roles_only.roles.len(), 1);

    let mut total = (0, 0, 0, 0);
    let mut marker = None;
    let mut pages = 0;
    loop {
        let p = ids
            .account_authorization_details(
                ACCT,
                DetailFilter::ALL,
                &PageRequest {
                    marker: marker.clone(),
                    max_items: Some(2),
                },
            )
            .await
            .unwrap();
        pages += 1;
        total.0 += p.users.len();
        total.1 += p.groups.len();
        total.2 += p.roles.len();
        total.3 += p.policies.len();
        marker = p.marker;
        if marker.is_none() {
            break;
        }
    }
    assert_eq!((total, pages), ((2, 1, 1, 1), 3));

    // ------------------------------------------------ GetAccountSummary
    let s = ids.account_summary(ACCT).await.unwrap();
    let at = |k: &str| *s.get(k).unwrap_or_else(|| panic!("{k} missing"));
    assert_eq!(at("Users"), 2);
    assert_eq!(at("Groups"), 1);
    assert_eq!(at("Roles"), 1);
    assert_eq!(at("Policies"), 1);
    assert_eq!(at("InstanceProfiles"), 1);
    assert_eq!(at("PolicyVersionsInUse"), 4);
    assert_eq!(at("UsersQuota"), 5000);
    assert_eq!(at("InstanceProfilesQuota"), 1000);
    assert_eq!(at("AccessKeysPerUserQuota"), 2);
    assert_eq!(at("PolicySizeQuota"), 6144);
    assert_eq!(at("MFADevices"), 0);
    assert_eq!(at("AccountAccessKeysPresent"), 0);
    // Other accounts see none of it.
    let other = ids.account_summary("444455556666").await.unwrap();
    assert_eq!(other.get("Users"), Some(&0));
}
