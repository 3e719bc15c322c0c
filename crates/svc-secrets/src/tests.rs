//! The handler end to end over a real sealed SQLite store and Citadel's real KMS (as the
//! `KeyService`), driven through `ServiceHandler::handle` with JSON bodies as the wire delivers
//! them, with a manual clock for deletion and rotation schedules.

use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use citadel_api::{
    AwsError, OperationInput, OperationOutput, Principal, PrincipalKind, RequestContext,
    ServiceHandler,
};
use citadel_iam::identity::EntityKind;
use citadel_iam::{Authorizer, IdentityStore};
use citadel_model::secretsmanager as sm;
use citadel_store::{RootKey, SealedStore, SqliteBackend};
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::record::{self, AWSCURRENT, AWSPENDING, AWSPREVIOUS};
use crate::rotation::{InvokeEnv, RotationEvent, RotationSettings, Rotator, RotatorError};
use crate::{ManualClock, SecretsManager};

const ACCOUNT: &str = "111122223333";
const OTHER: &str = "444455556666";
const REGION: &str = "us-east-1";
const LAMBDA: &str = "arn:aws:lambda:us-east-1:111122223333:function:test-rotator";

struct Harness {
    sm: Arc<SecretsManager>,
    clock: Arc<ManualClock>,
    store: Arc<SealedStore>,
    identities: Arc<IdentityStore>,
    authorizer: Arc<Authorizer>,
    kms: Arc<citadel_svc_kms::Kms>,
    _dir: tempfile::TempDir,
}

fn ctx(account: &str) -> RequestContext {
    RequestContext {
        request_id: "req".into(),
        region: REGION.into(),
        principal: Principal::root(account, "AKIDEXAMPLE"),
        source_ip: None,
        user_agent: None,
        dev_mode: true,
        secure_transport: true,
        authorized: Default::default(),
        called_via: None,
    }
}

fn prod_ctx(account: &str) -> RequestContext {
    RequestContext {
        dev_mode: false,
        ..ctx(account)
    }
}

fn user_ctx(name: &str, id: &str) -> RequestContext {
    RequestContext {
        principal: Principal {
            account_id: ACCOUNT.into(),
            arn: format!("arn:aws:iam::{ACCOUNT}:user/{name}"),
            user_id: id.into(),
            access_key_id: "AKIDUSER".into(),
            kind: PrincipalKind::User,
        },
        ..prod_ctx(ACCOUNT)
    }
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(dir.path()).await.unwrap());
    let store = Arc::new(SealedStore::new(backend));
    let root = RootKey::generate().unwrap();
    store.initialize_file(&root).await.unwrap();
    store.unseal_with_key(&root).await.unwrap();
    harness_over(store, dir).await
}

async fn harness_over(store: Arc<SealedStore>, dir: tempfile::TempDir) -> Harness {
    let clock = Arc::new(ManualClock::new(
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
    ));
    let identities = Arc::new(IdentityStore::new(store.clone()));
    let authorizer = Arc::new(Authorizer::new(identities.clone()));
    let kms = Arc::new(citadel_svc_kms::Kms::new(store.clone(), authorizer.clone()));
    let sm = Arc::new(SecretsManager::with_clock(
        store.clone(),
        authorizer.clone(),
        kms.clone(),
        clock.clone(),
    ));
    Harness {
        sm,
        clock,
        store,
        identities,
        authorizer,
        kms,
        _dir: dir,
    }
}

async fn call_on(
    sm: &SecretsManager,
    ctx: &RequestContext,
    op: &str,
    body: Value,
) -> Result<Value, AwsError> {
    let spec = sm::SPEC.operation(op).unwrap();
    let input = OperationInput::Json(Bytes::from(serde_json::to_vec(&body).unwrap()));
    match sm.handle(ctx, spec, input).await? {
        OperationOutput::Json(v) => {
            assert!(
                ctx.authorized.is_marked(),
                "{op} succeeded without authorizing"
            );
            Ok(v)
        }
        other => panic!("unexpected output {other:?}"),
    }
}

fn token(n: u32) -> String {
    format!("{n:08}-aaaa-bbbb-cccc-dddddddddddd")
}

impl Harness {
    async fn call_ctx(
        &self,
        ctx: &RequestContext,
        op: &str,
        body: Value,
    ) -> Result<Value, AwsError> {
        call_on(&self.sm, ctx, op, body).await
    }
    async fn call(&self, op: &str, body: Value) -> Result<Value, AwsError> {
        self.call_ctx(&ctx(ACCOUNT), op, body).await
    }
    async fn ok(&self, op: &str, body: Value) -> Value {
        self.call(op, body.clone())
            .await
            .unwrap_or_else(|e| panic!("{op} {body} failed: {e}"))
    }
    async fn err(&self, op: &str, body: Value) -> AwsError {
        match self.call(op, body.clone()).await {
            Ok(v) => panic!("{op} {body} unexpectedly succeeded: {v}"),
            Err(e) => e,
        }
    }
    async fn create(&self, name: &str, value: &str, t: u32) -> Value {
        self.ok(
            "CreateSecret",
            json!({"Name": name, "SecretString": value, "ClientRequestToken": token(t)}),
        )
        .await
    }
    async fn value(&self, id: &str) -> String {
        self.ok("GetSecretValue", json!({"SecretId": id})).await["SecretString"]
            .as_str()
            .unwrap()
            .to_owned()
    }
    async fn stages(&self, id: &str) -> Value {
        self.ok("DescribeSecret", json!({"SecretId": id})).await["VersionIdsToStages"].clone()
    }
}

fn assert_err(e: &AwsError, code: &str, message: &str) {
    assert_eq!(e.code, code, "{e}");
    assert_eq!(e.message.as_deref(), Some(message), "{e}");
}

// ----- create, read, versions -------------------------------------------------------------

#[tokio::test]
async fn create_get_describe_with_arn_suffix_and_every_secret_id_form() {
    let h = harness().await;
    let out = h.create("prod/db/password", "s3cr3t", 1).await;
    let arn = out["ARN"].as_str().unwrap().to_owned();
    let prefix = format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/db/password-");
    assert!(arn.starts_with(&prefix), "{arn}");
    let suffix = &arn[prefix.len()..];
    assert_eq!(suffix.len(), 6);
    assert!(suffix.bytes().all(|b| b.is_ascii_alphanumeric()));
    assert_eq!(out["VersionId"], token(1));
    assert_eq!(out["Name"], "prod/db/password");

    let partial = format!("arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:prod/db/password");
    for id in ["prod/db/password", arn.as_str(), partial.as_str()] {
        let v = h.ok("GetSecretValue", json!({"SecretId": id})).await;
        assert_eq!(v["SecretString"], "s3cr3t");
        assert_eq!(v["ARN"], arn);
        assert_eq!(v["VersionStages"], json!([AWSCURRENT]));
        assert_eq!(v["VersionId"], token(1));
    }
    // A wrong suffix is another secret.
    let wrong = format!("{prefix}zzzzzz");
    assert_err(
        &h.err("GetSecretValue", json!({"SecretId": wrong})).await,
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret.",
    );
    let d = h.ok("DescribeSecret", json!({"SecretId": arn})).await;
    assert_eq!(d["VersionIdsToStages"], json!({token(1): [AWSCURRENT]}));
    assert!(d.get("RotationEnabled").is_none());
    assert!(d["CreatedDate"].is_number());
    // Read today: LastAccessedDate is midnight UTC.
    let day = d["LastAccessedDate"].as_f64().unwrap() as i64;
    assert_eq!(day % 86_400, 0);

    // A binary secret round-trips.
    h.ok(
        "CreateSecret",
        json!({"Name": "bin", "SecretBinary": "AAEC/w==", "ClientRequestToken": token(2)}),
    )
    .await;
    let v = h.ok("GetSecretValue", json!({"SecretId": "bin"})).await;
    assert_eq!(v["SecretBinary"], "AAEC/w==");
    assert!(v.get("SecretString").is_none());

    // Without a value there is no version.
    let out = h
        .ok(
            "CreateSecret",
            json!({"Name": "empty", "ClientRequestToken": token(3)}),
        )
        .await;
    assert!(out.get("VersionId").is_none());
    assert_err(
        &h.err("GetSecretValue", json!({"SecretId": "empty"})).await,
        "ResourceNotFoundException",
        "Secrets Manager can't find the specified secret value for staging label: AWSCURRENT",
    );
}

#[tokio::test]
async fn bad_input_gets_aws_errors() {
    let h = harness().await;
    assert_err(
        &h.err(
            "CreateSecret",
            json!({"Name": "bad name!", "SecretString": "x", "ClientRequestToken": token(1)}),
        )
        .await,
        "ValidationException",
        "Invalid name. Must be a valid name containing alphanumeric characters, or any of the following: -/_+=.@!",
    );
    assert_err(
        &h.err(
            "CreateSecret",
            json!({"Name": "both", "SecretString": "x", "SecretBinary": "eA==", "ClientRequestToken": token(1)}),
        )
        .await,
        "InvalidParameterException",
        "You can't specify both a binary secret value and a string secret value in the same secret.",
    );
    let big = "x".repeat(65 * 1024);
    let e = h
        .err(
            "CreateSecret",
            json!({"Name": "big", "SecretString": big, "ClientRequestToken": token(1)}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    assert!(!e.message.as_deref().unwrap().contains("xxxx"));
    assert_err(
        &h.err(
            "CreateSecret",
            json!({"Name": "notoken", "SecretString": "x"}),
        )
        .await,
        "InvalidRequestException",
        "You must provide a ClientRequestToken value. We recommend a UUID-type value.",
    );
    h.create("dup", "x", 1).await;
    assert_err(
        &h.err(
            "CreateSecret",
            json!({"Name": "dup", "SecretString": "y", "ClientRequestToken": token(2)}),
        )
        .await,
        "ResourceExistsException",
        "The operation failed because the secret dup already exists.",
    );
    // The same request again (an SDK retry) is answered like the first.
    let again = h.create("dup", "x", 1).await;
    assert_eq!(again["VersionId"], token(1));
    // Nothing half-written: the failed creations left no secret.
    for name in ["both", "big", "notoken"] {
        assert_eq!(
            h.err("DescribeSecret", json!({"SecretId": name}))
                .await
                .code,
            "ResourceNotFoundException"
        );
    }
    assert_err(
        &h.err(
            "DeleteSecret",
            json!({"SecretId": "dup", "RecoveryWindowInDays": 31}),
        )
        .await,
        "InvalidParameterException",
        "The RecoveryWindowInDays value must be between 7 and 30 days (inclusive).",
    );
    assert_err(
        &h.err(
            "DeleteSecret",
            json!({"SecretId": "dup", "RecoveryWindowInDays": 7, "ForceDeleteWithoutRecovery": true}),
        )
        .await,
        "InvalidParameterException",
        "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays.",
    );
}

#[tokio::test]
async fn staging_labels_and_idempotency_behave_like_aws() {
    let h = harness().await;
    h.create("app", "v1", 1).await;
    // PutSecretValue moves AWSCURRENT; AWSPREVIOUS follows.
    let out = h
        .ok(
            "PutSecretValue",
            json!({"SecretId": "app", "SecretString": "v2", "ClientRequestToken": token(2)}),
        )
        .await;
    assert_eq!(out["VersionStages"], json!([AWSCURRENT]));
    assert_eq!(
        h.stages("app").await,
        json!({token(1): [AWSPREVIOUS], token(2): [AWSCURRENT]})
    );
    assert_eq!(h.value("app").await, "v2");
    let prev = h
        .ok(
            "GetSecretValue",
            json!({"SecretId": "app", "VersionStage": AWSPREVIOUS}),
        )
        .await;
    assert_eq!(prev["SecretString"], "v1");
    // Same token + same value: a no-op success. Different value: AWS's error.
    let again = h
        .ok(
            "PutSecretValue",
            json!({"SecretId": "app", "SecretString": "v2", "ClientRequestToken": token(2)}),
        )
        .await;
    assert_eq!(again["VersionId"], token(2));
    assert_err(
        &h.err(
            "PutSecretValue",
            json!({"SecretId": "app", "SecretString": "other", "ClientRequestToken": token(2)}),
        )
        .await,
        "ResourceExistsException",
        "You can't modify an existing version, you can only create a new version.",
    );
    // A string and a binary with the same bytes are different values.
    assert_eq!(
        h.err(
            "PutSecretValue",
            json!({"SecretId": "app", "SecretBinary": "djI=", "ClientRequestToken": token(2)}),
        )
        .await
        .code,
        "ResourceExistsException"
    );
    // AWSPENDING does not move AWSCURRENT.
    h.ok(
        "PutSecretValue",
        json!({"SecretId": "app", "SecretString": "v3", "ClientRequestToken": token(3), "VersionStages": [AWSPENDING]}),
    )
    .await;
    assert_eq!(h.value("app").await, "v2");
    // VersionId + VersionStage that do not match.
    assert_err(
        &h.err(
            "GetSecretValue",
            json!({"SecretId": "app", "VersionId": token(1), "VersionStage": AWSCURRENT}),
        )
        .await,
        "InvalidRequestException",
        "You provided a VersionStage that is not associated to the provided VersionId.",
    );
    assert_err(
        &h.err(
            "GetSecretValue",
            json!({"SecretId": "app", "VersionId": token(9)}),
        )
        .await,
        "ResourceNotFoundException",
        &format!(
            "Secrets Manager can't find the specified secret value for VersionId: {}",
            token(9)
        ),
    );
    // UpdateSecretVersionStage: AWSCURRENT needs RemoveFromVersionId.
    let e = h
        .err(
            "UpdateSecretVersionStage",
            json!({"SecretId": "app", "VersionStage": AWSCURRENT, "MoveToVersionId": token(3)}),
        )
        .await;
    assert_eq!(e.code, "InvalidParameterException");
    assert!(e.message.unwrap().contains(&token(2)));
    h.ok(
        "UpdateSecretVersionStage",
        json!({"SecretId": "app", "VersionStage": AWSCURRENT, "MoveToVersionId": token(3), "RemoveFromVersionId": token(2)}),
    )
    .await;
    assert_eq!(
        h.stages("app").await,
        json!({token(2): [AWSPREVIOUS], token(3): [AWSPENDING, AWSCURRENT]})
    );
    // v1 lost its last label: deprecated, listed only with IncludeDeprecated.
    let listed = h
        .ok("ListSecretVersionIds", json!({"SecretId": "app"}))
        .await;
    assert_eq!(listed["Versions"].as_array().unwrap().len(), 2);
    let all = h
        .ok(
            "ListSecretVersionIds",
            json!({"SecretId": "app", "IncludeDeprecated": true}),
        )
        .await;
    let versions = all["Versions"].as_array().unwrap();
    assert_eq!(versions.len(), 3);
    assert_eq!(versions[0]["KmsKeyIds"], json!(["DefaultEncryptionKey"]));
    // Removing a custom label; AWSCURRENT cannot be removed, only moved.
    h.ok(
        "UpdateSecretVersionStage",
        json!({"SecretId": "app", "VersionStage": AWSPENDING, "RemoveFromVersionId": token(3)}),
    )
    .await;
    assert_eq!(
        h.err(
            "UpdateSecretVersionStage",
            json!({"SecretId": "app", "VersionStage": AWSCURRENT, "RemoveFromVersionId": token(3)}),
        )
        .await
        .code,
        "InvalidParameterException"
    );
    // UpdateSecret: metadata only (no version), then a value (a version); a used token fails.
    let up = h
        .ok(
            "UpdateSecret",
            json!({"SecretId": "app", "Description": "the app", "ClientRequestToken": token(4)}),
        )
        .await;
    assert!(up.get("VersionId").is_none());
    let up = h
        .ok(
            "UpdateSecret",
            json!({"SecretId": "app", "SecretString": "v5", "ClientRequestToken": token(5)}),
        )
        .await;
    assert_eq!(up["VersionId"], token(5));
    assert_eq!(h.value("app").await, "v5");
    assert_err(
        &h.err(
            "UpdateSecret",
            json!({"SecretId": "app", "SecretString": "v5", "ClientRequestToken": token(5)}),
        )
        .await,
        "ResourceExistsException",
        "You can't modify an existing version, you can only create a new version.",
    );
    let d = h.ok("DescribeSecret", json!({"SecretId": "app"})).await;
    assert_eq!(d["Description"], "the app");
}

#[tokio::test]
async fn values_are_encrypted_under_kms_with_their_context() {
    let h = harness().await;
    h.create("enc", "plain-text-marker", 1).await;
    // The stored value record does not hold the plaintext, and names the AWS-managed key.
    let rows = h.store.list("secretsmanager/", None, 1000).await.unwrap();
    let mut saw_value = false;
    for (key, rec) in rows {
        let text = String::from_utf8_lossy(&rec.value).to_string();
        assert!(
            !text.contains("plain-text-marker"),
            "{key} holds the plaintext"
        );
        if key.contains("/value/") {
            let v: record::ValueRecord = serde_json::from_slice(&rec.value).unwrap();
            assert!(
                v.key_arn
                    .starts_with(&format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/"))
            );
            saw_value = true;
        }
    }
    assert!(saw_value);
    // KMS created aws/secretsmanager on first use.
    let aliases = call_kms(&h, "ListAliases", json!({})).await;
    assert!(
        aliases["Aliases"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["AliasName"] == "alias/aws/secretsmanager")
    );
    // A customer key, then rotating the secret to another key re-encrypts the labelled versions.
    let k1 = call_kms(&h, "CreateKey", json!({})).await["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap()
        .to_owned();
    h.ok(
        "CreateSecret",
        json!({"Name": "cmk", "SecretString": "one", "KmsKeyId": k1, "ClientRequestToken": token(2)}),
    )
    .await;
    assert_eq!(h.value("cmk").await, "one");
    let d = h.ok("DescribeSecret", json!({"SecretId": "cmk"})).await;
    assert_eq!(d["KmsKeyId"], k1);
    let k2 = call_kms(&h, "CreateKey", json!({})).await["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap()
        .to_owned();
    h.ok(
        "UpdateSecret",
        json!({"SecretId": "cmk", "KmsKeyId": k2, "ClientRequestToken": token(3)}),
    )
    .await;
    // Disabling the old key does not matter any more; disabling the new one does.
    call_kms(&h, "DisableKey", json!({"KeyId": k1})).await;
    assert_eq!(h.value("cmk").await, "one");
    call_kms(&h, "DisableKey", json!({"KeyId": k2})).await;
    let e = h.err("GetSecretValue", json!({"SecretId": "cmk"})).await;
    assert_eq!(e.code, "DecryptionFailure");
    let e = h
        .err(
            "PutSecretValue",
            json!({"SecretId": "cmk", "SecretString": "two", "ClientRequestToken": token(4)}),
        )
        .await;
    assert_eq!(e.code, "EncryptionFailure");
    // The failed write left nothing behind.
    assert_eq!(
        h.ok(
            "ListSecretVersionIds",
            json!({"SecretId": "cmk", "IncludeDeprecated": true})
        )
        .await["Versions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
}

async fn call_kms(h: &Harness, op: &str, body: Value) -> Value {
    let spec = citadel_model::kms::SPEC.operation(op).unwrap();
    let input = OperationInput::Json(Bytes::from(serde_json::to_vec(&body).unwrap()));
    match h.kms.handle(&ctx(ACCOUNT), spec, input).await.unwrap() {
        OperationOutput::Json(v) => v,
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn revoking_kms_decrypt_denies_get_secret_value() {
    let h = harness().await;
    let root = prod_ctx(ACCOUNT);
    // A customer key whose (default) key policy delegates to IAM. (The AWS-managed
    // aws/secretsmanager key lets every principal of the account use it through Secrets
    // Manager, as on AWS, so revoking kms:Decrypt only matters for customer keys.)
    let key = call_kms(&h, "CreateKey", json!({})).await["KeyMetadata"]["Arn"]
        .as_str()
        .unwrap()
        .to_owned();
    h.call_ctx(
        &root,
        "CreateSecret",
        json!({"Name": "guarded", "SecretString": "v", "KmsKeyId": key, "ClientRequestToken": token(1)}),
    )
    .await
    .unwrap();
    h.call_ctx(
        &root,
        "CreateSecret",
        json!({"Name": "default-key", "SecretString": "d", "ClientRequestToken": token(2)}),
    )
    .await
    .unwrap();
    let user = h
        .identities
        .create_user(ACCOUNT, "app", None, None, &[])
        .await
        .unwrap();
    let bob = user_ctx("app", &user.id);
    let sm_only = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    h.identities
        .put_inline_policy(ACCOUNT, EntityKind::User, "app", "sm", sm_only)
        .await
        .unwrap();
    let e = h
        .call_ctx(&bob, "GetSecretValue", json!({"SecretId": "guarded"}))
        .await
        .unwrap_err();
    assert_err(&e, "AccessDeniedException", "Access to KMS is not allowed");
    let v = h
        .call_ctx(&bob, "GetSecretValue", json!({"SecretId": "default-key"}))
        .await
        .unwrap();
    assert_eq!(v["SecretString"], "d");
    // With kms:Decrypt (through Secrets Manager only) it works.
    let with_kms = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"secretsmanager:GetSecretValue","Resource":"*"},{"Effect":"Allow","Action":"kms:Decrypt","Resource":"*","Condition":{"StringEquals":{"kms:ViaService":"secretsmanager.us-east-1.amazonaws.com"}}}]}"#;
    h.identities
        .put_inline_policy(ACCOUNT, EntityKind::User, "app", "sm", with_kms)
        .await
        .unwrap();
    let v = h
        .call_ctx(&bob, "GetSecretValue", json!({"SecretId": "guarded"}))
        .await
        .unwrap();
    assert_eq!(v["SecretString"], "v");
    // No secretsmanager permission at all: Secrets Manager's own denial, and no existence leak.
    let e = h
        .call_ctx(&bob, "DescribeSecret", json!({"SecretId": "guarded"}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    let e = h
        .call_ctx(
            &bob,
            "DescribeSecret",
            json!({"SecretId": "does-not-exist"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    let _ = &h.authorizer;
}

#[tokio::test]
async fn resource_policies_grant_within_the_account_and_block_public_access() {
    let h = harness().await;
    let root = prod_ctx(ACCOUNT);
    h.call_ctx(
        &root,
        "CreateSecret",
        json!({"Name": "shared", "SecretString": "v", "ClientRequestToken": token(1)}),
    )
    .await
    .unwrap();
    let user = h
        .identities
        .create_user(ACCOUNT, "carol", None, None, &[])
        .await
        .unwrap();
    let carol = user_ctx("carol", &user.id);
    assert_eq!(
        h.call_ctx(&carol, "DescribeSecret", json!({"SecretId": "shared"}))
            .await
            .unwrap_err()
            .code,
        "AccessDeniedException"
    );
    let policy = json!({"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS": format!("arn:aws:iam::{ACCOUNT}:user/carol")},"Action":"secretsmanager:DescribeSecret","Resource":"*"}]}).to_string();
    h.call_ctx(
        &root,
        "PutResourcePolicy",
        json!({"SecretId": "shared", "ResourcePolicy": policy, "BlockPublicPolicy": true}),
    )
    .await
    .unwrap();
    // The resource policy alone suffices within the account.
    h.call_ctx(&carol, "DescribeSecret", json!({"SecretId": "shared"}))
        .await
        .unwrap();
    let got = h
        .call_ctx(&root, "GetResourcePolicy", json!({"SecretId": "shared"}))
        .await
        .unwrap();
    assert_eq!(got["ResourcePolicy"], policy);
    // A public grant is refused with BlockPublicPolicy, and flagged by validation.
    let public = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    let e = h
        .call_ctx(
            &root,
            "PutResourcePolicy",
            json!({"SecretId": "shared", "ResourcePolicy": public, "BlockPublicPolicy": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "PublicPolicyException");
    let v = h
        .call_ctx(
            &root,
            "ValidateResourcePolicy",
            json!({"SecretId": "shared", "ResourcePolicy": public}),
        )
        .await
        .unwrap();
    assert_eq!(v["PolicyValidationPassed"], false);
    assert_eq!(v["ValidationErrors"][0]["CheckName"], "BROAD_ACCESS");
    // A policy that would deny the caller the next PutResourcePolicy locks them out.
    let lockout = json!({"Version":"2012-10-17","Statement":[{"Effect":"Deny","Principal":{"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},"Action":"secretsmanager:PutResourcePolicy","Resource":"*"}]}).to_string();
    let v = h
        .call_ctx(
            &root,
            "ValidateResourcePolicy",
            json!({"SecretId": "shared", "ResourcePolicy": lockout}),
        )
        .await
        .unwrap();
    assert_eq!(v["PolicyValidationPassed"], false, "{v}");
    assert_eq!(v["ValidationErrors"][0]["CheckName"], "LOCKOUT_PREVENTION");
    // Validating needs PutResourcePolicy too (carol may only describe).
    let e = h
        .call_ctx(
            &carol,
            "ValidateResourcePolicy",
            json!({"SecretId": "shared", "ResourcePolicy": policy}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    let v = h
        .call_ctx(
            &root,
            "ValidateResourcePolicy",
            json!({"ResourcePolicy": policy}),
        )
        .await
        .unwrap();
    assert_eq!(v["PolicyValidationPassed"], true);
    let e = h
        .call_ctx(
            &root,
            "PutResourcePolicy",
            json!({"SecretId": "shared", "ResourcePolicy": "{not json"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "MalformedPolicyDocumentException");
    h.call_ctx(&root, "DeleteResourcePolicy", json!({"SecretId": "shared"}))
        .await
        .unwrap();
    assert_eq!(
        h.call_ctx(&carol, "DescribeSecret", json!({"SecretId": "shared"}))
            .await
            .unwrap_err()
            .code,
        "AccessDeniedException"
    );
    // Dev mode keeps accounts apart.
    let other = ctx(OTHER);
    let arn = got["ARN"].as_str().unwrap();
    assert_eq!(
        call_on(&h.sm, &other, "DescribeSecret", json!({"SecretId": arn}))
            .await
            .unwrap_err()
            .code,
        "AccessDeniedException"
    );
}

// ----- deletion -----------------------------------------------------------------------------

#[tokio::test]
async fn deletion_window_restore_and_purge_exactly_once_across_restarts() {
    let h = harness().await;
    h.create("old", "v", 1).await;
    let out = h
        .ok(
            "DeleteSecret",
            json!({"SecretId": "old", "RecoveryWindowInDays": 7}),
        )
        .await;
    let deletion = out["DeletionDate"].as_f64().unwrap() as i64;
    assert_eq!(deletion, 1_700_000_000 + 7 * 86_400);
    assert_err(
        &h.err("GetSecretValue", json!({"SecretId": "old"})).await,
        "InvalidRequestException",
        "You can't perform this operation on the secret because it was marked for deletion.",
    );
    assert_err(
        &h.err(
            "CreateSecret",
            json!({"Name": "old", "SecretString": "x", "ClientRequestToken": token(2)}),
        )
        .await,
        "InvalidRequestException",
        "You can't create this secret because a secret with this name is already scheduled for deletion.",
    );
    let d = h.ok("DescribeSecret", json!({"SecretId": "old"})).await;
    assert!(d["DeletedDate"].is_number());
    let listed = h.ok("ListSecrets", json!({})).await;
    assert!(listed["SecretList"].as_array().unwrap().is_empty());
    let listed = h
        .ok("ListSecrets", json!({"IncludePlannedDeletion": true}))
        .await;
    assert_eq!(listed["SecretList"].as_array().unwrap().len(), 1);
    // Restore, delete again with the default window (30 days).
    h.ok("RestoreSecret", json!({"SecretId": "old"})).await;
    assert_eq!(h.value("old").await, "v");
    let out = h.ok("DeleteSecret", json!({"SecretId": "old"})).await;
    assert_eq!(
        out["DeletionDate"].as_f64().unwrap() as i64,
        1_700_000_000 + 30 * 86_400
    );
    // Not due yet.
    let r =
        h.sm.run_due(now_plus(&h.clock, Duration::days(29)))
            .await
            .unwrap();
    assert_eq!(r.purged, 0);
    // A new instance over the same store (a restart) purges it, exactly once.
    let second = Arc::new(SecretsManager::with_clock(
        h.store.clone(),
        h.authorizer.clone(),
        h.kms.clone(),
        h.clock.clone(),
    ));
    let when = now_plus(&h.clock, Duration::days(31));
    assert_eq!(second.run_due(when).await.unwrap().purged, 1);
    assert_eq!(h.sm.run_due(when).await.unwrap().purged, 0);
    assert_eq!(
        h.err("DescribeSecret", json!({"SecretId": "old"}))
            .await
            .code,
        "ResourceNotFoundException"
    );
    let leftovers = h.store.list("secretsmanager/", None, 100).await.unwrap();
    assert!(
        leftovers.is_empty(),
        "{:?}",
        leftovers.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    // The name is free again, with a new ARN.
    h.create("old", "new", 3).await;
    assert_eq!(h.value("old").await, "new");
    // Force delete: immediate; and a missing secret is not an error.
    h.ok(
        "DeleteSecret",
        json!({"SecretId": "old", "ForceDeleteWithoutRecovery": true}),
    )
    .await;
    h.ok(
        "DeleteSecret",
        json!({"SecretId": "old", "ForceDeleteWithoutRecovery": true}),
    )
    .await;
    assert!(
        h.store
            .list("secretsmanager/", None, 100)
            .await
            .unwrap()
            .is_empty()
    );
}

/// The test clock's time plus `d`.
fn now_plus(clock: &ManualClock, d: Duration) -> OffsetDateTime {
    crate::Clock::now(clock) + d
}

// ----- listing ------------------------------------------------------------------------------

#[tokio::test]
async fn list_filters_sorting_pagination_and_batch_get() {
    let h = harness().await;
    for (i, name) in ["alpha/db", "beta/db", "gamma/api", "Alpha/web"]
        .iter()
        .enumerate()
    {
        h.create(name, &format!("value-{i}"), i as u32 + 1).await;
        h.clock.advance(Duration::seconds(10));
    }
    h.ok(
        "TagResource",
        json!({"SecretId": "beta/db", "Tags": [{"Key": "team", "Value": "payments"}]}),
    )
    .await;
    h.ok(
        "UpdateSecret",
        json!({"SecretId": "gamma/api", "Description": "Public API key", "ClientRequestToken": token(20)}),
    )
    .await;
    let names = |v: &Value| -> Vec<String> {
        v["SecretList"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["Name"].as_str().unwrap().to_owned())
            .collect()
    };
    let all = h.ok("ListSecrets", json!({})).await;
    assert_eq!(
        names(&all),
        ["alpha/db", "beta/db", "gamma/api", "Alpha/web"]
    );
    let desc = h
        .ok(
            "ListSecrets",
            json!({"SortBy": "name", "SortOrder": "desc"}),
        )
        .await;
    assert_eq!(
        names(&desc),
        ["gamma/api", "beta/db", "alpha/db", "Alpha/web"]
    );
    // name: case-sensitive prefix; description: case-insensitive; tags; negation; all.
    let f = |key: &str, values: Value| json!({"Filters": [{"Key": key, "Values": values}]});
    assert_eq!(
        names(&h.ok("ListSecrets", f("name", json!(["alpha"]))).await),
        ["alpha/db"]
    );
    assert_eq!(
        names(
            &h.ok("ListSecrets", f("description", json!(["public"])))
                .await
        ),
        ["gamma/api"]
    );
    assert_eq!(
        names(&h.ok("ListSecrets", f("tag-key", json!(["team"]))).await),
        ["beta/db"]
    );
    assert_eq!(
        names(&h.ok("ListSecrets", f("tag-value", json!(["pay"]))).await),
        ["beta/db"]
    );
    assert_eq!(
        names(
            &h.ok("ListSecrets", f("name", json!(["!alpha", "!beta"])))
                .await
        ),
        ["gamma/api", "Alpha/web"]
    );
    assert_eq!(
        names(&h.ok("ListSecrets", f("all", json!(["api"]))).await),
        ["gamma/api"]
    );
    // Pagination.
    let p1 = h.ok("ListSecrets", json!({"MaxResults": 3})).await;
    assert_eq!(names(&p1).len(), 3);
    let next = p1["NextToken"].as_str().unwrap();
    let p2 = h
        .ok("ListSecrets", json!({"MaxResults": 3, "NextToken": next}))
        .await;
    assert_eq!(names(&p2), ["Alpha/web"]);
    assert!(p2.get("NextToken").is_none());
    assert_eq!(
        h.err("ListSecrets", json!({"NextToken": "bogus"}))
            .await
            .code,
        "InvalidNextTokenException"
    );
    assert_eq!(
        h.err(
            "ListSecrets",
            json!({"Filters": [{"Key": "nope", "Values": ["x"]}]})
        )
        .await
        .code,
        "ValidationException"
    );

    // BatchGetSecretValue by ids (a missing one goes to Errors) and by filter.
    let b = h
        .ok(
            "BatchGetSecretValue",
            json!({"SecretIdList": ["alpha/db", "missing", "beta/db"]}),
        )
        .await;
    assert_eq!(b["SecretValues"].as_array().unwrap().len(), 2);
    assert_eq!(b["Errors"][0]["SecretId"], "missing");
    assert_eq!(b["Errors"][0]["ErrorCode"], "ResourceNotFoundException");
    let b = h
        .ok(
            "BatchGetSecretValue",
            json!({"Filters": [{"Key": "name", "Values": ["alpha", "beta"]}], "MaxResults": 1}),
        )
        .await;
    assert_eq!(b["SecretValues"][0]["SecretString"], "value-0");
    let next = b["NextToken"].as_str().unwrap();
    let b = h
        .ok(
            "BatchGetSecretValue",
            json!({"Filters": [{"Key": "name", "Values": ["alpha", "beta"]}], "MaxResults": 1, "NextToken": next}),
        )
        .await;
    assert_eq!(b["SecretValues"][0]["SecretString"], "value-1");
    assert_err(
        &h.err(
            "BatchGetSecretValue",
            json!({"SecretIdList": ["a"], "Filters": [{"Key": "name", "Values": ["a"]}]}),
        )
        .await,
        "InvalidParameterException",
        "Either 'SecretIdList' or 'Filters' must be provided, but not both.",
    );
    // Tags round trip; untag.
    h.ok(
        "UntagResource",
        json!({"SecretId": "beta/db", "TagKeys": ["team"]}),
    )
    .await;
    assert!(
        h.ok("DescribeSecret", json!({"SecretId": "beta/db"}))
            .await
            .get("Tags")
            .is_none()
    );
}

#[tokio::test]
async fn random_passwords_through_the_handler() {
    let h = harness().await;
    let p = h.ok("GetRandomPassword", json!({})).await["RandomPassword"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(p.len(), 32);
    let p = h
        .ok(
            "GetRandomPassword",
            json!({"PasswordLength": 20, "ExcludePunctuation": true, "ExcludeCharacters": "aeiou", "IncludeSpace": false}),
        )
        .await["RandomPassword"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(p.len(), 20);
    assert!(
        p.chars()
            .all(|c| c.is_ascii_alphanumeric() && !"aeiou".contains(c))
    );
    assert_eq!(
        h.err("GetRandomPassword", json!({"PasswordLength": 4097}))
            .await
            .code,
        "ValidationException"
    );
    assert_err(
        &h.err("GetRandomPassword", json!({"PasswordLength": 2}))
            .await,
        "InvalidParameterException",
        "Password length is too short based on the required types.",
    );
}

// ----- rotation -----------------------------------------------------------------------------

/// A rotation function written against the API, as AWS's templates are: it calls back into the
/// handler for every step.
#[derive(Debug, Default)]
struct ApiRotator {
    sm: OnceLock<Arc<SecretsManager>>,
    fail_step: Mutex<Option<String>>,
    /// Steps seen, in order.
    seen: Mutex<Vec<String>>,
    /// Leave AWSCURRENT where it is in finishSecret (a broken rotation function).
    skip_finish: Mutex<bool>,
}

#[async_trait::async_trait]
impl Rotator for ApiRotator {
    async fn invoke(&self, event: &RotationEvent, env: &InvokeEnv) -> Result<(), RotatorError> {
        self.seen.lock().unwrap().push(event.step.clone());
        if self.fail_step.lock().unwrap().as_deref() == Some(event.step.as_str()) {
            return Err(RotatorError::new("the rotator exited with status 1"));
        }
        let sm = self.sm.get().unwrap().clone();
        let c = ctx(&env.account);
        let call = |op: &'static str, body: Value| {
            let sm = sm.clone();
            let c = c.clone();
            async move { call_on(&sm, &c, op, body).await }
        };
        let id = event.secret_id.clone();
        let token = event.client_request_token.clone();
        match event.step.as_str() {
            "createSecret" => {
                call(
                    "GetSecretValue",
                    json!({"SecretId": id, "VersionStage": AWSCURRENT}),
                )
                .await
                .map_err(|e| RotatorError::new(e.to_string()))?;
                if call(
                    "GetSecretValue",
                    json!({"SecretId": id, "VersionId": token, "VersionStage": AWSPENDING}),
                )
                .await
                .is_err()
                {
                    let pw = call(
                        "GetRandomPassword",
                        json!({"ExcludeCharacters": ":/@\"'\\"}),
                    )
                    .await
                    .map_err(|e| RotatorError::new(e.to_string()))?;
                    call(
                        "PutSecretValue",
                        json!({"SecretId": id, "ClientRequestToken": token, "SecretString": pw["RandomPassword"], "VersionStages": [AWSPENDING]}),
                    )
                    .await
                    .map_err(|e| RotatorError::new(e.to_string()))?;
                }
            }
            "setSecret" | "testSecret" => {}
            "finishSecret" => {
                if *self.skip_finish.lock().unwrap() {
                    return Ok(());
                }
                let d = call("DescribeSecret", json!({"SecretId": id}))
                    .await
                    .map_err(|e| RotatorError::new(e.to_string()))?;
                let current = d["VersionIdsToStages"]
                    .as_object()
                    .unwrap()
                    .iter()
                    .find(|(_, s)| s.as_array().unwrap().iter().any(|x| x == AWSCURRENT))
                    .map(|(k, _)| k.clone())
                    .unwrap();
                if current != token {
                    call(
                        "UpdateSecretVersionStage",
                        json!({"SecretId": id, "VersionStage": AWSCURRENT, "MoveToVersionId": token, "RemoveFromVersionId": current}),
                    )
                    .await
                    .map_err(|e| RotatorError::new(e.to_string()))?;
                }
            }
            other => return Err(RotatorError::new(format!("unknown step {other}"))),
        }
        Ok(())
    }
}

fn with_rotator(h: &Harness) -> Arc<ApiRotator> {
    let rotator = Arc::new(ApiRotator::default());
    rotator.sm.set(h.sm.clone()).unwrap();
    let mut settings = RotationSettings::default();
    settings
        .rotators
        .insert("test-rotator".into(), rotator.clone() as Arc<dyn Rotator>);
    h.sm.set_rotation(settings);
    rotator
}

#[tokio::test]
async fn rotation_runs_the_four_steps_and_moves_labels() {
    let h = harness().await;
    let rotator = with_rotator(&h);
    h.create("db", "initial", 1).await;
    // No rotator configured for the secret yet.
    assert_err(
        &h.err(
            "RotateSecret",
            json!({"SecretId": "db", "ClientRequestToken": token(2)}),
        )
        .await,
        "InvalidRequestException",
        "No Lambda rotation function ARN is associated with this secret.",
    );
    // An unknown function.
    assert_eq!(
        h.err(
            "RotateSecret",
            json!({"SecretId": "db", "ClientRequestToken": token(2), "RotationLambdaARN": "arn:aws:lambda:us-east-1:111122223333:function:nope"}),
        )
        .await
        .code,
        "AccessDeniedException"
    );
    // Too frequent, both rules.
    for rules in [
        json!({"ScheduleExpression": "rate(2 hours)"}),
        json!({"AutomaticallyAfterDays": 0}),
        json!({"AutomaticallyAfterDays": 5, "ScheduleExpression": "rate(5 days)"}),
    ] {
        let e = h
            .err(
                "RotateSecret",
                json!({"SecretId": "db", "ClientRequestToken": token(2), "RotationLambdaARN": LAMBDA, "RotationRules": rules}),
            )
            .await;
        assert!(
            e.code == "InvalidParameterException" || e.code == "ValidationException",
            "{e}"
        );
    }
    let out = h
        .ok(
            "RotateSecret",
            json!({"SecretId": "db", "ClientRequestToken": token(2), "RotationLambdaARN": LAMBDA, "RotationRules": {"AutomaticallyAfterDays": 30}}),
        )
        .await;
    assert_eq!(out["VersionId"], token(2));
    h.sm.rotations_settled().await;
    assert_eq!(
        *rotator.seen.lock().unwrap(),
        ["createSecret", "setSecret", "testSecret", "finishSecret"]
    );
    let d = h.ok("DescribeSecret", json!({"SecretId": "db"})).await;
    assert_eq!(
        d["VersionIdsToStages"],
        json!({token(1): [AWSPREVIOUS], token(2): [AWSCURRENT]})
    );
    assert_eq!(d["RotationEnabled"], true);
    assert_eq!(d["RotationLambdaARN"], LAMBDA);
    assert_eq!(d["RotationRules"]["AutomaticallyAfterDays"], 30);
    assert_eq!(d["LastRotatedDate"].as_f64().unwrap() as i64, 1_700_000_000);
    assert_eq!(
        d["NextRotationDate"].as_f64().unwrap() as i64,
        1_700_000_000 + 30 * 86_400
    );
    let new_value = h.value("db").await;
    assert_ne!(new_value, "initial");
    assert_eq!(new_value.len(), 32);

    // Scheduled: nothing before the date, a rotation at it.
    rotator.seen.lock().unwrap().clear();
    let r =
        h.sm.run_due(now_plus(&h.clock, Duration::days(29)))
            .await
            .unwrap();
    assert_eq!(r.rotations_started, 0);
    h.clock.advance(Duration::days(30));
    let r = h.sm.run_due(crate::Clock::now(&*h.clock)).await.unwrap();
    assert_eq!(r.rotations_started, 1);
    h.sm.rotations_settled().await;
    assert_eq!(rotator.seen.lock().unwrap().len(), 4);
    assert_ne!(h.value("db").await, new_value);
    let d = h.ok("DescribeSecret", json!({"SecretId": "db"})).await;
    assert_eq!(d["VersionIdsToStages"].as_object().unwrap().len(), 2);

    // RotateImmediately=false only tests the configuration, and removes its placeholder.
    rotator.seen.lock().unwrap().clear();
    let before = h.stages("db").await;
    h.ok(
        "RotateSecret",
        json!({"SecretId": "db", "ClientRequestToken": token(7), "RotateImmediately": false}),
    )
    .await;
    h.sm.rotations_settled().await;
    assert_eq!(*rotator.seen.lock().unwrap(), ["testSecret"]);
    assert_eq!(h.stages("db").await, before);

    // CancelRotateSecret turns automatic rotation off.
    h.ok("CancelRotateSecret", json!({"SecretId": "db"})).await;
    let d = h.ok("DescribeSecret", json!({"SecretId": "db"})).await;
    assert_eq!(d["RotationEnabled"], false);
    assert!(d.get("NextRotationDate").is_none());
}

#[tokio::test]
async fn a_failed_rotation_keeps_awscurrent_and_records_the_failure() {
    #[derive(Default)]
    struct Collect(std::sync::Mutex<Vec<citadel_events::Event>>);
    #[async_trait::async_trait]
    impl citadel_events::Publisher for Collect {
        async fn publish(&self, event: &citadel_events::Event) -> Result<(), String> {
            self.0.lock().unwrap().push(event.clone());
            Ok(())
        }
    }
    let h = harness().await;
    let events = Arc::new(Collect::default());
    h.sm.set_events(events.clone());
    let rotator = with_rotator(&h);
    h.create("db", "initial", 1).await;
    *rotator.fail_step.lock().unwrap() = Some("setSecret".into());
    h.ok(
        "RotateSecret",
        json!({"SecretId": "db", "ClientRequestToken": token(2), "RotationLambdaARN": LAMBDA}),
    )
    .await;
    h.sm.rotations_settled().await;
    assert_eq!(h.value("db").await, "initial");
    let d = h.ok("DescribeSecret", json!({"SecretId": "db"})).await;
    assert_eq!(
        d["VersionIdsToStages"],
        json!({token(1): [AWSCURRENT], token(2): [AWSPENDING]})
    );
    assert_eq!(d["CitadelLastRotationFailure"]["Step"], "setSecret");
    assert_eq!(d["CitadelLastRotationFailure"]["VersionId"], token(2));
    // The pending value exists (createSecret ran) but AWSCURRENT did not move.
    let pending = h
        .ok(
            "GetSecretValue",
            json!({"SecretId": "db", "VersionStage": AWSPENDING}),
        )
        .await;
    assert_ne!(pending["SecretString"], "initial");
    // Retrying reattempts the same pending version, whatever token the call brings.
    *rotator.fail_step.lock().unwrap() = None;
    let out = h
        .ok(
            "RotateSecret",
            json!({"SecretId": "db", "ClientRequestToken": token(3)}),
        )
        .await;
    assert_eq!(out["VersionId"], token(2));
    h.sm.rotations_settled().await;
    assert_eq!(
        h.value("db").await,
        pending["SecretString"].as_str().unwrap()
    );
    let d = h.ok("DescribeSecret", json!({"SecretId": "db"})).await;
    assert!(d.get("CitadelLastRotationFailure").is_none());
    assert_eq!(
        d["VersionIdsToStages"],
        json!({token(1): [AWSPREVIOUS], token(2): [AWSCURRENT]})
    );
    // A rotation function that never moves AWSCURRENT fails at the end.
    *rotator.skip_finish.lock().unwrap() = true;
    h.ok(
        "RotateSecret",
        json!({"SecretId": "db", "ClientRequestToken": token(4)}),
    )
    .await;
    h.sm.rotations_settled().await;
    let d = h.ok("DescribeSecret", json!({"SecretId": "db"})).await;
    assert_eq!(d["CitadelLastRotationFailure"]["Step"], "finishSecret");
    assert_eq!(
        h.value("db").await,
        pending["SecretString"].as_str().unwrap()
    );
    // Each outcome reached the event bus as Secrets Manager's service event.
    let seen = events.0.lock().unwrap().clone();
    let names: Vec<&str> = seen
        .iter()
        .map(|e| e.detail["eventName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["RotationFailed", "RotationSucceeded", "RotationFailed"]
    );
    assert_eq!(seen[0].source, "aws.secretsmanager");
    assert_eq!(seen[0].detail_type, "AWS Service Event via CloudTrail");
    assert_eq!(
        seen[0].detail["additionalEventData"]["SecretId"],
        d["ARN"].as_str().unwrap()
    );
}

#[tokio::test]
async fn an_interrupted_rotation_resumes_after_a_restart() {
    let h = harness().await;
    h.create("db", "initial", 1).await;
    // Simulate a crash after createSecret: the record says setSecret is next, and no task runs.
    let path = record::secret_path(ACCOUNT, REGION, "db");
    let rotator = with_rotator(&h);
    *rotator.fail_step.lock().unwrap() = Some("createSecret".into());
    {
        // Put the rotation in progress exactly as RotateSecret persists it, then as if
        // createSecret had completed.
        let loaded = h.sm.inner.load(&path).await.unwrap().unwrap();
        h.sm.inner
            .update(loaded, |cur| {
                let mut rec = cur.clone();
                crate::rotation::begin(&mut rec, &token(2), LAMBDA, false, 0);
                rec.rotation.lambda_arn = Some(LAMBDA.into());
                rec.rotation.configured = true;
                if let Some(p) = rec.rotation.in_progress.as_mut() {
                    p.next_step = 1;
                }
                Ok(crate::repo::Change::put(rec, ()))
            })
            .await
            .unwrap();
    }
    // The secret stays readable meanwhile.
    assert_eq!(h.value("db").await, "initial");
    // A second RotateSecret is refused while one is in progress.
    assert_err(
        &h.err(
            "RotateSecret",
            json!({"SecretId": "db", "ClientRequestToken": token(5)}),
        )
        .await,
        "InvalidRequestException",
        "A previous rotation isn't complete. That rotation will be reattempted.",
    );
    // "Restart": a new instance with the rotator; its scheduler resumes at setSecret.
    let second = Arc::new(SecretsManager::with_clock(
        h.store.clone(),
        h.authorizer.clone(),
        h.kms.clone(),
        h.clock.clone(),
    ));
    let rotator2 = Arc::new(ApiRotator::default());
    rotator2.sm.set(second.clone()).unwrap();
    let mut settings = RotationSettings::default();
    settings
        .rotators
        .insert("test-rotator".into(), rotator2.clone() as Arc<dyn Rotator>);
    second.set_rotation(settings);
    // createSecret had "completed" without a value: give the pending version one, as the
    // rotator did before the crash.
    call_on(
        &second,
        &ctx(ACCOUNT),
        "PutSecretValue",
        json!({"SecretId": "db", "ClientRequestToken": token(2), "SecretString": "rotated", "VersionStages": [AWSPENDING]}),
    )
    .await
    .unwrap();
    let r = second.run_due(crate::Clock::now(&*h.clock)).await.unwrap();
    assert_eq!(r.rotations_resumed, 1);
    second.rotations_settled().await;
    assert_eq!(
        *rotator2.seen.lock().unwrap(),
        ["setSecret", "testSecret", "finishSecret"]
    );
    let v = call_on(
        &second,
        &ctx(ACCOUNT),
        "GetSecretValue",
        json!({"SecretId": "db"}),
    )
    .await
    .unwrap();
    assert_eq!(v["SecretString"], "rotated");
    // Exactly once: nothing more to resume.
    let r = second.run_due(crate::Clock::now(&*h.clock)).await.unwrap();
    assert_eq!(r.rotations_resumed, 0);
    assert!(rotator.seen.lock().unwrap().is_empty());
}

#[tokio::test]
async fn command_rotators_get_the_lambda_event_on_stdin_and_time_out() {
    use crate::rotation::command::CommandRotator;
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("event.json");
    let ok = CommandRotator {
        argv: vec![
            "/bin/sh".into(),
            "-c".into(),
            format!(
                "cat > {} && test \"$SECRETS_MANAGER_ENDPOINT\" = http://127.0.0.1:1 && test \"$AWS_ACCESS_KEY_ID\" = {ACCOUNT}",
                out.display()
            ),
        ],
        timeout: std::time::Duration::from_secs(10),
        env: vec![],
    };
    let event = RotationEvent {
        step: "createSecret".into(),
        secret_id: "arn:aws:secretsmanager:us-east-1:111122223333:secret:x-AbCdEf".into(),
        client_request_token: token(1),
        rotation_token: "00000000-0000-0000-0000-000000000000".into(),
    };
    let env = InvokeEnv {
        endpoint: Some("http://127.0.0.1:1".into()),
        region: REGION.into(),
        account: ACCOUNT.into(),
        local: None,
    };
    ok.invoke(&event, &env).await.unwrap();
    let got: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(got["Step"], "createSecret");
    assert_eq!(got["ClientRequestToken"], token(1));
    let fails = CommandRotator {
        argv: vec!["/bin/sh".into(), "-c".into(), "exit 3".into()],
        ..ok.clone()
    };
    assert!(
        fails
            .invoke(&event, &env)
            .await
            .unwrap_err()
            .message
            .contains("status 3")
    );
    let garbage = CommandRotator {
        argv: vec!["/bin/sh".into(), "-c".into(), "echo '<html>oops'".into()],
        ..ok.clone()
    };
    assert!(
        garbage
            .invoke(&event, &env)
            .await
            .unwrap_err()
            .message
            .contains("not JSON")
    );
    let slow = CommandRotator {
        argv: vec!["/bin/sh".into(), "-c".into(), "sleep 30".into()],
        timeout: std::time::Duration::from_millis(300),
        env: vec![],
    };
    let started = std::time::Instant::now();
    assert!(
        slow.invoke(&event, &env)
            .await
            .unwrap_err()
            .message
            .contains("timed out")
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[tokio::test]
async fn webhook_rotators_sign_retry_and_time_out() {
    use crate::rotation::webhook::{WebhookRotator, signature};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::<String>::new()));
    let seen2 = seen.clone();
    // Answers 500, then 200 with `{}`, then `<html>`, then nothing at all (hangs).
    tokio::spawn(async move {
        let mut n = 0;
        loop {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 16 * 1024];
            let mut len = 0;
            loop {
                let r = sock.read(&mut buf[len..]).await.unwrap();
                len += r;
                let text = String::from_utf8_lossy(&buf[..len]).to_string();
                if let Some(i) = text.find("\r\n\r\n") {
                    let cl: usize = text
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(|v| v.trim().parse().unwrap())
                        })
                        .unwrap_or(0);
                    if len >= i + 4 + cl || r == 0 {
                        break;
                    }
                }
                if r == 0 {
                    break;
                }
            }
            seen2
                .lock()
                .unwrap()
                .push(String::from_utf8_lossy(&buf[..len]).to_string());
            let reply: Option<&str> = match n {
                0 => Some("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n"),
                1 => Some("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"),
                2 => Some("HTTP/1.1 200 OK\r\ncontent-length: 6\r\n\r\n<html>"),
                _ => None,
            };
            n += 1;
            match reply {
                Some(r) => {
                    sock.write_all(r.as_bytes()).await.unwrap();
                }
                None => {
                    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                }
            }
        }
    });
    let hook = WebhookRotator::new(
        &format!("http://{addr}/rotate"),
        zeroize::Zeroizing::new(b"k3y".to_vec()),
        std::time::Duration::from_millis(500),
        2,
    )
    .unwrap();
    let event = RotationEvent {
        step: "setSecret".into(),
        secret_id: "arn:aws:secretsmanager:us-east-1:111122223333:secret:x-AbCdEf".into(),
        client_request_token: token(1),
        rotation_token: "00000000-0000-0000-0000-000000000000".into(),
    };
    let env = InvokeEnv::default();
    // 500 is retried; the second attempt succeeds.
    hook.invoke(&event, &env).await.unwrap();
    {
        let seen = seen.lock().unwrap();
        assert_eq!(seen.len(), 2);
        let req = &seen[1];
        assert!(req.starts_with("POST /rotate HTTP/1.1"));
        let body = &req[req.find("\r\n\r\n").unwrap() + 4..];
        assert_eq!(body, event.to_json());
        let ts: i64 = req
            .lines()
            .find_map(|l| l.strip_prefix("x-citadel-timestamp: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let sig = req
            .lines()
            .find_map(|l| l.strip_prefix("x-citadel-signature: "))
            .unwrap()
            .trim();
        assert_eq!(sig, signature(b"k3y", ts, body));
    }
    // Garbage fails at once; a hanging receiver times out on every attempt.
    assert!(
        hook.invoke(&event, &env)
            .await
            .unwrap_err()
            .message
            .contains("not JSON")
    );
    let e = hook.invoke(&event, &env).await.unwrap_err();
    assert!(e.message.contains("timed out"), "{}", e.message);
    assert!(
        WebhookRotator::new(
            "https://x/",
            zeroize::Zeroizing::new(vec![1]),
            std::time::Duration::from_secs(1),
            1
        )
        .is_err()
    );
}

mod replication;
