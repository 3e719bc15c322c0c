//! The authorizer over a real sealed SQLite store: users, groups, managed policy versions,
//! boundaries and KMS key policies, as a request would meet them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;

use citadel_api::{AwsError, Principal, RequestContext};
use citadel_barrier::RootKey;
use citadel_iam::identity::{EntityKind, NewPolicy};
use citadel_iam::policy::{ErrorFlavour, Policy, PolicyKind};
use citadel_iam::{AccessRequest, Authorizer, IdentityStore};
use citadel_store::{SealedStore, SqliteBackend};

const ACCT: &str = "111122223333";
const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const OTHER_KEY: &str =
    "arn:aws:kms:us-east-1:111122223333:key/0987dcba-09fe-87dc-65ba-ab0987654321";

fn allow(action: &str, resource: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"{action}","Resource":"{resource}"}}]}}"#
    )
}

fn deny(action: &str, resource: &str) -> String {
    allow(action, resource).replace("\"Allow\"", "\"Deny\"")
}

/// The default key policy: the account's root, which delegates to IAM policies.
fn delegating_key_policy() -> Policy {
    Policy::parse(
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Sid":"Enable IAM User Permissions","Effect":"Allow","Principal":{{"AWS":"arn:aws:iam::{ACCT}:root"}},"Action":"kms:*","Resource":"*"}}]}}"#
        ),
        PolicyKind::KeyPolicy,
    )
    .unwrap()
}

struct World {
    ids: Arc<IdentityStore>,
    authz: Authorizer,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteBackend::open(dir.path()).await.unwrap();
    let store = Arc::new(SealedStore::new(Arc::new(backend)));
    let key = RootKey::from_bytes(&[7u8; 32]).unwrap();
    store.initialize_file(&key).await.unwrap();
    store.unseal_with_key(&key).await.unwrap();
    let ids = Arc::new(IdentityStore::new(store));
    World {
        authz: Authorizer::new(ids.clone()),
        ids,
        _dir: dir,
    }
}

fn ctx(principal: Principal) -> RequestContext {
    RequestContext {
        request_id: "req".into(),
        region: "us-east-1".into(),
        principal,
        source_ip: Some("192.0.2.10".parse().unwrap()),
        user_agent: None,
        dev_mode: false,
        secure_transport: true,
        authorized: Default::default(),
        called_via: None,
    }
}

impl World {
    /// Creates `name` with an access key and returns the principal it authenticates as.
    async fn user(&self, name: &str) -> Principal {
        self.ids
            .create_user(ACCT, name, None, None, &[])
            .await
            .unwrap();
        let key = self.ids.create_access_key(ACCT, name).await.unwrap();
        self.ids
            .lookup(&key.access_key_id)
            .await
            .unwrap()
            .unwrap()
            .principal
            .clone()
    }

    async fn kms(&self, who: &Principal, action: &str, resource: &str) -> Result<(), AwsError> {
        let req = AccessRequest::new(action, resource, ErrorFlavour::Kms);
        self.authz.authorize(&ctx(who.clone()), &req).await
    }

    async fn kms_with_key_policy(
        &self,
        who: &Principal,
        action: &str,
        policy: &Policy,
    ) -> Result<(), AwsError> {
        let req = AccessRequest {
            resource_policy: Some(policy),
            resource_policy_must_allow: true,
            ..AccessRequest::new(action, KEY, ErrorFlavour::Kms)
        };
        self.authz.authorize(&ctx(who.clone()), &req).await
    }
}

#[tokio::test]
async fn an_inline_policy_allows_exactly_what_it_names() {
    let w = world().await;
    let alice = w.user("alice").await;
    w.ids
        .put_inline_policy(
            ACCT,
            EntityKind::User,
            "alice",
            "enc",
            &allow("kms:Encrypt", KEY),
        )
        .await
        .unwrap();

    let c = ctx(alice.clone());
    w.authz
        .authorize(
            &c,
            &AccessRequest::new("kms:Encrypt", KEY, ErrorFlavour::Kms),
        )
        .await
        .unwrap();
    assert!(c.authorized.is_marked(), "an allow marks the request");
    w.kms_with_key_policy(&alice, "kms:Encrypt", &delegating_key_policy())
        .await
        .unwrap();

    let c = ctx(alice.clone());
    let e = w
        .authz
        .authorize(
            &c,
            &AccessRequest::new("kms:Decrypt", KEY, ErrorFlavour::Kms),
        )
        .await
        .unwrap_err();
    assert!(!c.authorized.is_marked(), "a denial does not mark");
    assert_eq!((e.code.as_ref(), e.status), ("AccessDeniedException", 400));
    assert_eq!(
        e.message.as_deref(),
        Some(
            "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab because no identity-based policy allows the kms:Decrypt action"
        )
    );
    assert!(w.kms(&alice, "kms:Encrypt", OTHER_KEY).await.is_err());

    // IAM's shape for IAM actions.
    let e = w
        .authz
        .authorize(
            &ctx(alice.clone()),
            &AccessRequest::new("iam:ListUsers", "*", ErrorFlavour::Iam),
        )
        .await
        .unwrap_err();
    assert_eq!((e.code.as_ref(), e.status), ("AccessDenied", 403));
    assert_eq!(
        e.message.as_deref(),
        Some(
            "User: arn:aws:iam::111122223333:user/alice is not authorized to perform: iam:ListUsers on resource: * because no identity-based policy allows the iam:ListUsers action"
        )
    );
    // GetCallerIdentity needs no policy.
    w.authz
        .authorize(
            &ctx(alice.clone()),
            &AccessRequest::new("sts:GetCallerIdentity", "*", ErrorFlavour::Sts),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn group_policies_apply_to_members_only() {
    let w = world().await;
    let bob = w.user("bob").await;
    w.ids.create_group(ACCT, "crypto", None).await.unwrap();
    w.ids
        .put_inline_policy(
            ACCT,
            EntityKind::Group,
            "crypto",
            "dec",
            &allow("kms:Decrypt", "*"),
        )
        .await
        .unwrap();
    assert!(w.kms(&bob, "kms:Decrypt", KEY).await.is_err());
    w.ids
        .add_user_to_group(ACCT, "crypto", "bob")
        .await
        .unwrap();
    w.kms(&bob, "kms:Decrypt", KEY).await.unwrap();
    w.ids
        .remove_user_from_group(ACCT, "crypto", "bob")
        .await
        .unwrap();
    assert!(w.kms(&bob, "kms:Decrypt", KEY).await.is_err());
}

#[tokio::test]
async fn a_managed_policys_default_version_applies_and_switching_takes_effect() {
    let w = world().await;
    let carol = w.user("carol").await;
    let managed = w
        .ids
        .create_policy(
            ACCT,
            &NewPolicy {
                name: "Crypto".into(),
                document: allow("kms:Encrypt", "*"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    w.ids
        .attach_policy(ACCT, EntityKind::User, "carol", &managed.arn)
        .await
        .unwrap();
    w.kms(&carol, "kms:Encrypt", KEY).await.unwrap();
    assert!(w.kms(&carol, "kms:Decrypt", KEY).await.is_err());

    // A new version that is not the default changes nothing.
    w.ids
        .create_policy_version(ACCT, &managed.arn, &allow("kms:Decrypt", "*"), false)
        .await
        .unwrap();
    w.kms(&carol, "kms:Encrypt", KEY).await.unwrap();
    assert!(w.kms(&carol, "kms:Decrypt", KEY).await.is_err());
    // Making it the default does, at once.
    w.ids
        .set_default_policy_version(ACCT, &managed.arn, "v2")
        .await
        .unwrap();
    w.kms(&carol, "kms:Decrypt", KEY).await.unwrap();
    assert!(w.kms(&carol, "kms:Encrypt", KEY).await.is_err());
    // Detaching removes it.
    w.ids
        .detach_policy(ACCT, EntityKind::User, "carol", &managed.arn)
        .await
        .unwrap();
    assert!(w.kms(&carol, "kms:Decrypt", KEY).await.is_err());
}

#[tokio::test]
async fn an_explicit_deny_wins() {
    let w = world().await;
    let dave = w.user("dave").await;
    w.ids
        .put_inline_policy(ACCT, EntityKind::User, "dave", "all", &allow("kms:*", "*"))
        .await
        .unwrap();
    w.kms(&dave, "kms:Decrypt", KEY).await.unwrap();
    w.ids.create_group(ACCT, "locked", None).await.unwrap();
    w.ids
        .put_inline_policy(
            ACCT,
            EntityKind::Group,
            "locked",
            "no-decrypt",
            &deny("kms:Decrypt", KEY),
        )
        .await
        .unwrap();
    w.ids
        .add_user_to_group(ACCT, "locked", "dave")
        .await
        .unwrap();
    let e = w.kms(&dave, "kms:Decrypt", KEY).await.unwrap_err();
    assert_eq!(
        e.message.as_deref(),
        Some(
            "User: arn:aws:iam::111122223333:user/dave is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab with an explicit deny in an identity-based policy"
        )
    );
    // Other keys and actions stay allowed.
    w.kms(&dave, "kms:Decrypt", OTHER_KEY).await.unwrap();
    w.kms(&dave, "kms:Encrypt", KEY).await.unwrap();
    // Even a key policy naming the user cannot override an explicit deny.
    let naming_dave = Policy::parse(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/dave"},"Action":"kms:*","Resource":"*"}]}"#,
        PolicyKind::KeyPolicy,
    )
    .unwrap();
    assert!(
        w.kms_with_key_policy(&dave, "kms:Decrypt", &naming_dave)
            .await
            .is_err()
    );
}

#[tokio::test]
async fn a_permissions_boundary_narrows() {
    let w = world().await;
    let erin = w.user("erin").await;
    w.ids
        .put_inline_policy(ACCT, EntityKind::User, "erin", "all", &allow("kms:*", "*"))
        .await
        .unwrap();
    let boundary = w
        .ids
        .create_policy(
            ACCT,
            &NewPolicy {
                name: "EncryptOnly".into(),
                document: allow("kms:Encrypt", "*"),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    w.ids
        .put_permissions_boundary(ACCT, EntityKind::User, "erin", &boundary.arn)
        .await
        .unwrap();
    w.kms(&erin, "kms:Encrypt", KEY).await.unwrap();
    let e = w.kms(&erin, "kms:Decrypt", KEY).await.unwrap_err();
    assert_eq!(
        e.message.as_deref(),
        Some(
            "User: arn:aws:iam::111122223333:user/erin is not authorized to perform: kms:Decrypt on resource: arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab because no permissions boundary allows the kms:Decrypt action"
        )
    );
    // The boundary alone grants nothing.
    w.ids
        .delete_inline_policy(ACCT, EntityKind::User, "erin", "all")
        .await
        .unwrap();
    assert!(w.kms(&erin, "kms:Encrypt", KEY).await.is_err());
}

#[tokio::test]
async fn root_is_allowed_identity_side_but_a_key_policy_must_still_allow() {
    let w = world().await;
    let root = Principal::root(ACCT, "AKIAROOTEXAMPLE");
    w.kms(&root, "kms:Decrypt", KEY).await.unwrap();
    w.authz
        .authorize(
            &ctx(root.clone()),
            &AccessRequest::new("iam:CreateUser", "*", ErrorFlavour::Iam),
        )
        .await
        .unwrap();
    w.kms_with_key_policy(&root, "kms:Decrypt", &delegating_key_policy())
        .await
        .unwrap();
    // A key policy that names only someone else locks root out too.
    let other = Policy::parse(
        r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"kms:*","Resource":"*"}]}"#,
        PolicyKind::KeyPolicy,
    )
    .unwrap();
    let e = w
        .kms_with_key_policy(&root, "kms:Decrypt", &other)
        .await
        .unwrap_err();
    assert!(
        e.message
            .as_deref()
            .unwrap()
            .ends_with("because no resource-based policy allows the kms:Decrypt action")
    );
    // A key the service could not parse a policy for allows no one.
    let req = AccessRequest {
        resource_policy_must_allow: true,
        ..AccessRequest::new("kms:Decrypt", KEY, ErrorFlavour::Kms)
    };
    assert!(w.authz.authorize(&ctx(root.clone()), &req).await.is_err());
}

#[tokio::test]
async fn key_policy_delegation_needs_the_iam_allow_and_service_keys_are_conditions() {
    let w = world().await;
    let frank = w.user("frank").await;
    let key_policy = delegating_key_policy();
    assert!(
        w.kms_with_key_policy(&frank, "kms:Encrypt", &key_policy)
            .await
            .is_err()
    );
    w.ids
        .put_inline_policy(
            ACCT,
            EntityKind::User,
            "frank",
            "via",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*","Condition":{"StringEquals":{"kms:EncryptionContext:app":"billing"},"Bool":{"aws:SecureTransport":"true"}}}]}"#,
        )
        .await
        .unwrap();
    let mut conditions = BTreeMap::new();
    conditions.insert(
        "kms:EncryptionContext:app".to_owned(),
        vec!["billing".to_owned()],
    );
    let req = AccessRequest {
        resource_policy: Some(&key_policy),
        resource_policy_must_allow: true,
        conditions: &conditions,
        ..AccessRequest::new("kms:Encrypt", KEY, ErrorFlavour::Kms)
    };
    w.authz.authorize(&ctx(frank.clone()), &req).await.unwrap();
    // Over plain HTTP the condition fails.
    let mut plain = ctx(frank.clone());
    plain.secure_transport = false;
    assert!(w.authz.authorize(&plain, &req).await.is_err());
    let mut payroll = conditions.clone();
    payroll.insert(
        "kms:EncryptionContext:app".to_owned(),
        vec!["payroll".to_owned()],
    );
    let req = AccessRequest {
        conditions: &payroll,
        ..req
    };
    assert!(w.authz.authorize(&ctx(frank.clone()), &req).await.is_err());
}

#[tokio::test]
async fn dev_mode_callers_are_root_equivalent() {
    let w = world().await;
    let mut c = ctx(Principal::root(ACCT, "AKIADEV"));
    c.dev_mode = true;
    let req = AccessRequest {
        resource_policy_must_allow: true,
        ..AccessRequest::new("kms:Decrypt", KEY, ErrorFlavour::Kms)
    };
    w.authz.authorize(&c, &req).await.unwrap();
    assert!(c.authorized.is_marked());
}
