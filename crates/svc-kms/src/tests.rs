//! The handler end to end over a real sealed SQLite store, driven through `ServiceHandler::handle`
//! with JSON bodies as the wire delivers them, and a manual clock.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use citadel_api::{
    AwsError, OperationInput, OperationOutput, Principal, RequestContext, ServiceHandler,
};
use citadel_store::{Backend, Entry, Expect, Op, RootKey, SealedStore, SqliteBackend};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicUsize, Ordering};
use time::{Duration, OffsetDateTime};

use crate::state::{KeyOp, KeyState, Outcome, outcome};
use crate::{Kms, ManualClock};
use citadel_iam::{Authorizer, IdentityStore};

const ACCOUNT: &str = "111122223333";
const OTHER: &str = "444455556666";
const REGION: &str = "us-east-1";

struct Harness {
    kms: Arc<Kms>,
    authorizer: Arc<Authorizer>,
    clock: Arc<ManualClock>,
    store: Arc<SealedStore>,
    backend: Arc<Counting>,
    _dir: tempfile::TempDir,
}

/// SQLite that counts reads, to show which requests touch storage.
struct Counting {
    inner: SqliteBackend,
    reads: AtomicUsize,
}

#[async_trait::async_trait]
impl Backend for Counting {
    fn name(&self) -> &'static str {
        "counting-sqlite"
    }
    async fn get(&self, key: &str) -> citadel_store::Result<Option<Entry>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.get(key).await
    }
    async fn put(&self, key: &str, value: Vec<u8>, expect: Expect) -> citadel_store::Result<u64> {
        self.inner.put(key, value, expect).await
    }
    async fn delete(&self, key: &str, expect: Expect) -> citadel_store::Result<bool> {
        self.inner.delete(key, expect).await
    }
    async fn list(
        &self,
        prefix: &str,
        start_after: Option<&str>,
        limit: usize,
    ) -> citadel_store::Result<Vec<(String, Entry)>> {
        self.reads.fetch_add(1, Ordering::SeqCst);
        self.inner.list(prefix, start_after, limit).await
    }
    async fn batch(&self, ops: Vec<Op>) -> citadel_store::Result<()> {
        self.inner.batch(ops).await
    }
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

/// An event bus that keeps what it is given.
#[derive(Default)]
struct Collect(std::sync::Mutex<Vec<citadel_events::Event>>);

#[async_trait::async_trait]
impl citadel_events::Publisher for Collect {
    async fn publish(&self, event: &citadel_events::Event) -> Result<(), String> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

/// A production-mode request (policies are evaluated) from the root user of `account`.
fn prod_ctx(account: &str) -> RequestContext {
    RequestContext {
        dev_mode: false,
        ..ctx(account)
    }
}

fn b64(bytes: &[u8]) -> String {
    B64.encode(bytes)
}

fn unb64(v: &Value) -> Vec<u8> {
    B64.decode(v.as_str().unwrap()).unwrap()
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(Counting {
        inner: SqliteBackend::open(dir.path()).await.unwrap(),
        reads: AtomicUsize::new(0),
    });
    let store = Arc::new(SealedStore::new(backend.clone()));
    let root = RootKey::generate().unwrap();
    store.initialize_file(&root).await.unwrap();
    store.unseal_with_key(&root).await.unwrap();
    let clock = Arc::new(ManualClock::new(
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
    ));
    let authorizer = Arc::new(Authorizer::new(Arc::new(IdentityStore::new(store.clone()))));
    let kms = Arc::new(Kms::with_clock(
        store.clone(),
        authorizer.clone(),
        clock.clone(),
    ));
    Harness {
        kms,
        authorizer,
        clock,
        store,
        backend,
        _dir: dir,
    }
}

impl Harness {
    async fn call_as(&self, account: &str, op: &str, body: Value) -> Result<Value, AwsError> {
        let spec = citadel_model::kms::SPEC.operation(op).unwrap();
        let input = OperationInput::Json(Bytes::from(body.to_string()));
        match self.kms.handle(&ctx(account), spec, input).await? {
            OperationOutput::Json(v) => Ok(v),
            other => panic!("unexpected output {other:?}"),
        }
    }

    async fn call(&self, op: &str, body: Value) -> Result<Value, AwsError> {
        self.call_as(ACCOUNT, op, body).await
    }

    async fn ok(&self, op: &str, body: Value) -> Value {
        match self.call(op, body).await {
            Ok(v) => v,
            Err(e) => panic!("{op} failed: {e}"),
        }
    }

    async fn err(&self, op: &str, body: Value) -> AwsError {
        match self.call(op, body).await {
            Ok(v) => panic!("{op} unexpectedly succeeded: {v}"),
            Err(e) => e,
        }
    }

    async fn create(&self) -> String {
        self.ok("CreateKey", json!({})).await["KeyMetadata"]["KeyId"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn encrypt(&self, key: &str, plaintext: &[u8], context: Value) -> Vec<u8> {
        let v = self
            .ok(
                "Encrypt",
                json!({"KeyId": key, "Plaintext": b64(plaintext), "EncryptionContext": context}),
            )
            .await;
        unb64(&v["CiphertextBlob"])
    }

    async fn decrypt(&self, blob: &[u8], context: Value) -> Result<Value, AwsError> {
        self.call(
            "Decrypt",
            json!({"CiphertextBlob": b64(blob), "EncryptionContext": context}),
        )
        .await
    }

    fn now(&self) -> OffsetDateTime {
        crate::Clock::now(self.clock.as_ref())
    }
}

fn arn(id: &str) -> String {
    format!("arn:aws:kms:{REGION}:{ACCOUNT}:key/{id}")
}

#[tokio::test]
async fn create_key_returns_aws_key_metadata() {
    let h = harness().await;
    let v = h
        .ok(
            "CreateKey",
            json!({"Description": "app key", "Tags": [{"TagKey": "team", "TagValue": "a"}]}),
        )
        .await;
    let m = &v["KeyMetadata"];
    let id = m["KeyId"].as_str().unwrap();
    assert!(crate::names::is_key_id(id));
    assert_eq!(m["Arn"], arn(id));
    assert_eq!(m["AWSAccountId"], ACCOUNT);
    assert_eq!(m["Enabled"], true);
    assert_eq!(m["KeyState"], "Enabled");
    assert_eq!(m["Description"], "app key");
    assert_eq!(m["KeyUsage"], "ENCRYPT_DECRYPT");
    assert_eq!(m["KeySpec"], "SYMMETRIC_DEFAULT");
    assert_eq!(m["CustomerMasterKeySpec"], "SYMMETRIC_DEFAULT");
    assert_eq!(m["EncryptionAlgorithms"], json!(["SYMMETRIC_DEFAULT"]));
    assert_eq!(m["Origin"], "AWS_KMS");
    assert_eq!(m["KeyManager"], "CUSTOMER");
    assert_eq!(m["MultiRegion"], false);
    assert_eq!(m["CreationDate"], json!(1_700_000_000.0));
    assert_eq!(m["CurrentKeyMaterialId"].as_str().unwrap().len(), 64);
    let mut fields: Vec<&str> = m.as_object().unwrap().keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "AWSAccountId",
            "Arn",
            "CreationDate",
            "CurrentKeyMaterialId",
            "CustomerMasterKeySpec",
            "Description",
            "Enabled",
            "EncryptionAlgorithms",
            "KeyId",
            "KeyManager",
            "KeySpec",
            "KeyState",
            "KeyUsage",
            "MultiRegion",
            "Origin"
        ]
    );
    // DescribeKey by id, ARN, alias and alias ARN gives the same metadata.
    h.ok(
        "CreateAlias",
        json!({"AliasName": "alias/app", "TargetKeyId": id}),
    )
    .await;
    for key_id in [
        id.to_owned(),
        arn(id),
        "alias/app".to_owned(),
        format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/app"),
    ] {
        let d = h.ok("DescribeKey", json!({"KeyId": key_id})).await;
        assert_eq!(&d["KeyMetadata"], m, "{key_id}");
    }
    let policy = h.ok("GetKeyPolicy", json!({"KeyId": id})).await;
    assert_eq!(policy["PolicyName"], "default");
    assert_eq!(policy["Policy"], crate::record::default_policy(ACCOUNT));
    let tags = h.ok("ListResourceTags", json!({"KeyId": id})).await;
    assert_eq!(tags["Tags"], json!([{"TagKey": "team", "TagValue": "a"}]));
    assert_eq!(tags["Truncated"], false);
}

#[tokio::test]
async fn unsupported_key_specs_and_bad_create_input_are_refused() {
    let h = harness().await;
    for (body, code) in [
        (
            json!({"KeySpec": "SM2", "KeyUsage": "SIGN_VERIFY"}),
            "UnsupportedOperationException",
        ),
        (
            json!({"KeySpec": "RSA_2048", "KeyUsage": "GENERATE_VERIFY_MAC"}),
            "ValidationException",
        ),
        (json!({"KeySpec": "HMAC_256"}), "ValidationException"),
        (
            json!({"Origin": "AWS_CLOUDHSM"}),
            "UnsupportedOperationException",
        ),
        (
            json!({"KeySpec": "SYMMETRIC_DEFAULT", "CustomerMasterKeySpec": "SYMMETRIC_DEFAULT"}),
            "ValidationException",
        ),
        (json!({"KeyUsage": "SIGN_VERIFY"}), "ValidationException"),
        (json!({"KeySpec": "NOPE"}), "ValidationException"),
        (
            json!({"Policy": "not json"}),
            "MalformedPolicyDocumentException",
        ),
        (
            json!({"Policy": format!("{{\"a\":\"{}\"}}", "x".repeat(33_000))}),
            "LimitExceededException",
        ),
        (
            json!({"Tags": [{"TagKey": "aws:x", "TagValue": "1"}]}),
            "TagException",
        ),
    ] {
        let e = h.err("CreateKey", body.clone()).await;
        assert_eq!(e.code, code, "{body}: {e}");
    }
    let keys = h.ok("ListKeys", json!({})).await;
    assert_eq!(
        keys["Keys"],
        json!([]),
        "a refused CreateKey leaves nothing behind"
    );
}

#[tokio::test]
async fn encrypt_decrypt_reencrypt_and_data_keys() {
    let h = harness().await;
    let k1 = h.create().await;
    let k2 = h.create().await;
    let ctx = json!({"purpose": "test", "Dept": "IT"});
    let blob = h.encrypt(&k1, b"secret payload", ctx.clone()).await;

    let d = h.decrypt(&blob, ctx.clone()).await.unwrap();
    assert_eq!(unb64(&d["Plaintext"]), b"secret payload");
    assert_eq!(d["KeyId"], arn(&k1));
    assert_eq!(d["EncryptionAlgorithm"], "SYMMETRIC_DEFAULT");
    assert_eq!(d["KeyMaterialId"].as_str().unwrap().len(), 64);

    // The context must match exactly, case included; order does not matter.
    let d = h
        .decrypt(&blob, json!({"Dept": "IT", "purpose": "test"}))
        .await
        .unwrap();
    assert_eq!(unb64(&d["Plaintext"]), b"secret payload");
    for wrong in [
        json!({"Purpose": "test", "Dept": "IT"}),
        json!({"purpose": "Test", "Dept": "IT"}),
        json!({"purpose": "test"}),
        json!({}),
    ] {
        let e = h.decrypt(&blob, wrong).await.unwrap_err();
        assert_eq!(e.code, "InvalidCiphertextException");
        assert_eq!(e.message.as_deref(), Some(""));
    }
    let e = h
        .decrypt(&blob[..blob.len() - 1], ctx.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code, "InvalidCiphertextException");
    assert_eq!(e.message.as_deref(), Some(""));

    // KeyId on Decrypt: the right key (any form) works, another key is IncorrectKeyException.
    let d = h
        .call(
            "Decrypt",
            json!({"CiphertextBlob": b64(&blob), "EncryptionContext": ctx, "KeyId": arn(&k1)}),
        )
        .await
        .unwrap();
    assert_eq!(d["KeyId"], arn(&k1));
    let e = h
        .err(
            "Decrypt",
            json!({"CiphertextBlob": b64(&blob), "EncryptionContext": ctx, "KeyId": k2}),
        )
        .await;
    assert_eq!(e.code, "IncorrectKeyException");
    assert_eq!(
        e.message.unwrap(),
        "The key ID in the request does not identify a CMK that can perform this operation."
    );

    // ReEncrypt to another key with another context.
    let r = h
        .ok(
            "ReEncrypt",
            json!({"CiphertextBlob": b64(&blob), "SourceEncryptionContext": ctx,
                   "DestinationKeyId": k2, "DestinationEncryptionContext": {"v": "2"}}),
        )
        .await;
    assert_eq!(r["SourceKeyId"], arn(&k1));
    assert_eq!(r["KeyId"], arn(&k2));
    let blob2 = unb64(&r["CiphertextBlob"]);
    let d = h.decrypt(&blob2, json!({"v": "2"})).await.unwrap();
    assert_eq!(d["KeyId"], arn(&k2));
    assert_eq!(unb64(&d["Plaintext"]), b"secret payload");
    let e = h
        .err(
            "ReEncrypt",
            json!({"CiphertextBlob": b64(&blob), "SourceEncryptionContext": ctx,
                   "SourceKeyId": k2, "DestinationKeyId": k2}),
        )
        .await;
    assert_eq!(e.code, "IncorrectKeyException");

    // Data keys.
    let g = h
        .ok(
            "GenerateDataKey",
            json!({"KeyId": k1, "KeySpec": "AES_256", "EncryptionContext": {"a": "b"}}),
        )
        .await;
    let pt = unb64(&g["Plaintext"]);
    assert_eq!(pt.len(), 32);
    let d = h
        .decrypt(&unb64(&g["CiphertextBlob"]), json!({"a": "b"}))
        .await
        .unwrap();
    assert_eq!(unb64(&d["Plaintext"]), pt);
    let g = h
        .ok(
            "GenerateDataKeyWithoutPlaintext",
            json!({"KeyId": k1, "NumberOfBytes": 7}),
        )
        .await;
    assert!(g.get("Plaintext").is_none());
    let d = h
        .decrypt(&unb64(&g["CiphertextBlob"]), json!({}))
        .await
        .unwrap();
    assert_eq!(unb64(&d["Plaintext"]).len(), 7);
    for body in [
        json!({"KeyId": k1}),
        json!({"KeyId": k1, "KeySpec": "AES_128", "NumberOfBytes": 16}),
    ] {
        let e = h.err("GenerateDataKey", body).await;
        assert_eq!(
            e.message.unwrap(),
            "Please specify either number of bytes or key spec."
        );
    }
    let e = h
        .err(
            "GenerateDataKey",
            json!({"KeyId": k1, "NumberOfBytes": 1025}),
        )
        .await;
    assert_eq!(
        e.message.unwrap(),
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
    );

    let r = h.ok("GenerateRandom", json!({"NumberOfBytes": 1024})).await;
    assert_eq!(unb64(&r["Plaintext"]).len(), 1024);
    let e = h.err("GenerateRandom", json!({"NumberOfBytes": 0})).await;
    assert_eq!(
        e.message.unwrap(),
        "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"
    );

    // DryRun checks everything and then refuses.
    let e = h
        .err(
            "Encrypt",
            json!({"KeyId": k1, "Plaintext": b64(b"x"), "DryRun": true}),
        )
        .await;
    assert_eq!(e.code, "DryRunOperationException");
    let e = h
        .err(
            "Encrypt",
            json!({"KeyId": k1, "Plaintext": b64(b"x"), "EncryptionAlgorithm": "RSAES_OAEP_SHA_256"}),
        )
        .await;
    assert_eq!(e.code, "InvalidKeyUsageException");
    let e = h
        .err(
            "Encrypt",
            json!({"KeyId": k1, "Plaintext": b64(&[0u8; 4097])}),
        )
        .await;
    assert_eq!(
        e.message.unwrap(),
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"
    );
}

#[tokio::test]
async fn unknown_keys_and_aliases_get_aws_not_found_messages() {
    let h = harness().await;
    let missing = "00000000-0000-4000-8000-000000000000";
    let e = h.err("DescribeKey", json!({"KeyId": missing})).await;
    assert_eq!(e.code, "NotFoundException");
    assert_eq!(
        e.message.unwrap(),
        format!("Key '{}' does not exist", arn(missing))
    );
    let e = h
        .err(
            "Encrypt",
            json!({"KeyId": "alias/nope", "Plaintext": b64(b"x")}),
        )
        .await;
    assert_eq!(e.code, "NotFoundException");
    assert_eq!(
        e.message.unwrap(),
        format!("Alias arn:aws:kms:{REGION}:{ACCOUNT}:alias/nope is not found.")
    );
    let e = h.err("DescribeKey", json!({"KeyId": "fake-key-id"})).await;
    assert_eq!(e.message.unwrap(), "Invalid keyId 'fake-key-id'");
    // A blob that is not ours at all.
    let e = h
        .decrypt(b"definitely not a ciphertext blob", json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "InvalidCiphertextException");
}

#[tokio::test]
async fn keys_are_private_to_their_account() {
    let h = harness().await;
    let k = h.create().await;
    let blob = h.encrypt(&k, b"p", json!({})).await;
    // Another account naming the key by ARN is denied; by bare id it looks in its own account.
    let e = h
        .call_as(OTHER, "DescribeKey", json!({"KeyId": arn(&k)}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    let e = h
        .call_as(OTHER, "DescribeKey", json!({"KeyId": k}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "NotFoundException");
    let e = h
        .call_as(
            OTHER,
            "Decrypt",
            json!({"CiphertextBlob": b64(&blob), "KeyId": arn(&k)}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    // Without KeyId the ciphertext names the key, and the key's account refuses just the same.
    let e = h
        .call_as(OTHER, "Decrypt", json!({"CiphertextBlob": b64(&blob)}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    let keys = h.call_as(OTHER, "ListKeys", json!({})).await.unwrap();
    assert_eq!(keys["Keys"], json!([]));
}

/// Builds a request body from a key id and a ciphertext of that key.
type BodyFn = Box<dyn Fn(&str, &[u8]) -> Value>;

/// Puts a fresh key into `state`.
async fn key_in(h: &Harness, state: KeyState) -> String {
    let k = h.create().await;
    match state {
        KeyState::Enabled => {}
        KeyState::Disabled => {
            h.ok("DisableKey", json!({"KeyId": k})).await;
        }
        KeyState::PendingDeletion => {
            h.ok(
                "ScheduleKeyDeletion",
                json!({"KeyId": k, "PendingWindowInDays": 7}),
            )
            .await;
        }
        other => panic!("cannot reach {other:?} yet"),
    }
    k
}

#[tokio::test]
async fn every_operation_in_every_reachable_state_follows_the_table() {
    let h = harness().await;
    let source = h.create().await;
    for state in [
        KeyState::Enabled,
        KeyState::Disabled,
        KeyState::PendingDeletion,
    ] {
        let cases: Vec<(&str, KeyOp, BodyFn)> = vec![
            (
                "Encrypt",
                KeyOp::Encrypt,
                Box::new(|k, _| json!({"KeyId": k, "Plaintext": "eA=="})),
            ),
            (
                "Decrypt",
                KeyOp::Decrypt,
                Box::new(|_, b| json!({"CiphertextBlob": b64(b)})),
            ),
            (
                "ReEncrypt",
                KeyOp::ReEncryptFrom,
                Box::new(|_, b| json!({"CiphertextBlob": b64(b), "DestinationKeyId": "SOURCE"})),
            ),
            (
                "ReEncrypt",
                KeyOp::ReEncryptTo,
                Box::new(|k, _| json!({"CiphertextBlob": "SOURCEBLOB", "DestinationKeyId": k})),
            ),
            (
                "GenerateDataKey",
                KeyOp::GenerateDataKey,
                Box::new(|k, _| json!({"KeyId": k, "KeySpec": "AES_256"})),
            ),
            (
                "GenerateDataKeyWithoutPlaintext",
                KeyOp::GenerateDataKeyWithoutPlaintext,
                Box::new(|k, _| json!({"KeyId": k, "NumberOfBytes": 16})),
            ),
            (
                "DescribeKey",
                KeyOp::DescribeKey,
                Box::new(|k, _| json!({"KeyId": k})),
            ),
            (
                "EnableKey",
                KeyOp::EnableKey,
                Box::new(|k, _| json!({"KeyId": k})),
            ),
            (
                "DisableKey",
                KeyOp::DisableKey,
                Box::new(|k, _| json!({"KeyId": k})),
            ),
            (
                "ScheduleKeyDeletion",
                KeyOp::ScheduleKeyDeletion,
                Box::new(|k, _| json!({"KeyId": k, "PendingWindowInDays": 7})),
            ),
            (
                "CancelKeyDeletion",
                KeyOp::CancelKeyDeletion,
                Box::new(|k, _| json!({"KeyId": k})),
            ),
            (
                "UpdateKeyDescription",
                KeyOp::UpdateKeyDescription,
                Box::new(|k, _| json!({"KeyId": k, "Description": "d"})),
            ),
            (
                "TagResource",
                KeyOp::TagResource,
                Box::new(|k, _| json!({"KeyId": k, "Tags": [{"TagKey": "a", "TagValue": "b"}]})),
            ),
            (
                "UntagResource",
                KeyOp::UntagResource,
                Box::new(|k, _| json!({"KeyId": k, "TagKeys": ["a"]})),
            ),
            (
                "ListResourceTags",
                KeyOp::ListResourceTags,
                Box::new(|k, _| json!({"KeyId": k})),
            ),
            (
                "GetKeyPolicy",
                KeyOp::GetKeyPolicy,
                Box::new(|k, _| json!({"KeyId": k})),
            ),
            (
                "PutKeyPolicy",
                KeyOp::PutKeyPolicy,
                Box::new(
                    |k, _| json!({"KeyId": k, "Policy": crate::record::default_policy(ACCOUNT)}),
                ),
            ),
            (
                "ListKeyPolicies",
                KeyOp::ListKeyPolicies,
                Box::new(|k, _| json!({"KeyId": k})),
            ),
            (
                "EnableKeyRotation",
                KeyOp::EnableKeyRotation,
                Box::new(|k, _| json!({"KeyId": k})),
            ),
            (
                "DisableKeyRotation",
                KeyOp::DisableKeyRotation,
                Box::new(|k, _| json!({"KeyId": k})),
            ),
            (
                "GetKeyRotationStatus",
                KeyOp::GetKeyRotationStatus,
                Box::new(|k, _| json!({"KeyId": k})),
            ),
            (
                "RotateKeyOnDemand",
                KeyOp::RotateKeyOnDemand,
                Box::new(|k, _| json!({"KeyId": k})),
            ),
            (
                "ListKeyRotations",
                KeyOp::ListKeyRotations,
                Box::new(|k, _| json!({"KeyId": k})),
            ),
            (
                "CreateAlias",
                KeyOp::CreateAlias,
                Box::new(|k, _| json!({"AliasName": format!("alias/{k}-x"), "TargetKeyId": k})),
            ),
            (
                "CreateGrant",
                KeyOp::CreateGrant,
                Box::new(
                    |k, _| json!({"KeyId": k, "GranteePrincipal": "arn:aws:iam::111122223333:user/bob", "Operations": ["Decrypt"]}),
                ),
            ),
            (
                "ListGrants",
                KeyOp::ListGrants,
                Box::new(|k, _| json!({"KeyId": k})),
            ),
            (
                "RevokeGrant",
                KeyOp::RevokeGrant,
                Box::new(|k, _| json!({"KeyId": k, "GrantId": "GRANTID"})),
            ),
            (
                "RetireGrant",
                KeyOp::RetireGrant,
                Box::new(|k, _| json!({"KeyId": k, "GrantId": "GRANTID"})),
            ),
        ];
        for (op, key_op, body) in &cases {
            let k = h.create().await;
            // A ciphertext and a grant made while the key could still encrypt.
            let blob = h.encrypt(&k, b"x", json!({})).await;
            let grant = h
                .ok(
                    "CreateGrant",
                    json!({"KeyId": k, "GranteePrincipal": "arn:aws:iam::111122223333:user/bob", "Operations": ["Decrypt"]}),
                )
                .await["GrantId"]
                .as_str()
                .unwrap()
                .to_owned();
            let source_blob = h.encrypt(&source, b"x", json!({})).await;
            let k = {
                // Move the key into the state under test.
                match state {
                    KeyState::Enabled => k,
                    KeyState::Disabled => {
                        h.ok("DisableKey", json!({"KeyId": k})).await;
                        k
                    }
                    _ => {
                        h.ok(
                            "ScheduleKeyDeletion",
                            json!({"KeyId": k, "PendingWindowInDays": 7}),
                        )
                        .await;
                        k
                    }
                }
            };
            let mut req = body(&k, &blob);
            if req["DestinationKeyId"] == "SOURCE" {
                req["DestinationKeyId"] = json!(source);
            }
            if req["CiphertextBlob"] == "SOURCEBLOB" {
                req["CiphertextBlob"] = json!(b64(&source_blob));
            }
            if req["GrantId"] == "GRANTID" {
                req["GrantId"] = json!(grant);
            }
            let got = h.call(op, req).await;
            let arn = arn(&k);
            match outcome(state, *key_op) {
                Outcome::Ok => assert!(got.is_ok(), "{op} in {state:?}: {:?}", got.err()),
                Outcome::Disabled => {
                    let e = got.unwrap_err();
                    assert_eq!(e.code, "DisabledException", "{op} in {state:?}");
                    assert_eq!(e.message.unwrap(), format!("{arn} is disabled."));
                }
                Outcome::Invalid => {
                    let e = got.unwrap_err();
                    assert_eq!(e.code, "KMSInvalidStateException", "{op} in {state:?}");
                    assert_eq!(e.message.unwrap(), format!("{arn} is pending deletion."));
                }
                Outcome::NotPendingDeletion => {
                    let e = got.unwrap_err();
                    assert_eq!(e.code, "KMSInvalidStateException", "{op} in {state:?}");
                    assert_eq!(
                        e.message.unwrap(),
                        format!("{arn} is not pending deletion.")
                    );
                }
            }
        }
    }
    // DeleteAlias works whatever the state of the key.
    for state in [KeyState::Enabled, KeyState::Disabled] {
        let k = key_in(&h, state).await;
        h.ok(
            "CreateAlias",
            json!({"AliasName": format!("alias/d-{k}"), "TargetKeyId": k}),
        )
        .await;
        if state == KeyState::Disabled {
            h.ok("ScheduleKeyDeletion", json!({"KeyId": k})).await;
        }
        h.ok("DeleteAlias", json!({"AliasName": format!("alias/d-{k}")}))
            .await;
    }
}

#[tokio::test]
async fn deletion_schedule_cancel_and_destroy() {
    let h = harness().await;
    let k = h.create().await;
    h.ok(
        "CreateAlias",
        json!({"AliasName": "alias/doomed", "TargetKeyId": k}),
    )
    .await;
    let blob = h.encrypt(&k, b"x", json!({})).await;
    let e = h
        .err(
            "ScheduleKeyDeletion",
            json!({"KeyId": k, "PendingWindowInDays": 6}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    assert_eq!(
        e.message.unwrap(),
        "PendingWindowInDays should be between 7 and 30, but it is 6"
    );
    let s = h.ok("ScheduleKeyDeletion", json!({"KeyId": k})).await;
    assert_eq!(s["KeyId"], arn(&k));
    assert_eq!(s["KeyState"], "PendingDeletion");
    assert_eq!(s["PendingWindowInDays"], 30);
    assert_eq!(s["DeletionDate"], json!(1_700_000_000.0 + 30.0 * 86_400.0));
    let d = h.ok("DescribeKey", json!({"KeyId": k})).await;
    assert_eq!(d["KeyMetadata"]["KeyState"], "PendingDeletion");
    assert_eq!(d["KeyMetadata"]["Enabled"], false);
    assert_eq!(d["KeyMetadata"]["DeletionDate"], s["DeletionDate"]);

    let c = h.ok("CancelKeyDeletion", json!({"KeyId": k})).await;
    assert_eq!(c["KeyId"], arn(&k));
    let d = h.ok("DescribeKey", json!({"KeyId": k})).await;
    assert_eq!(d["KeyMetadata"]["KeyState"], "Disabled");
    assert!(d["KeyMetadata"].get("DeletionDate").is_none());
    // Nothing is due any more: the index entry went with the cancellation.
    h.clock.advance(Duration::days(31));
    assert_eq!(
        h.kms.run_due(h.now()).await.unwrap(),
        crate::DueReport::default()
    );

    h.ok(
        "ScheduleKeyDeletion",
        json!({"KeyId": k, "PendingWindowInDays": 7}),
    )
    .await;
    h.clock.advance(Duration::days(7) - Duration::seconds(1));
    let report = h.kms.run_due(h.now()).await.unwrap();
    assert!(report.deleted.is_empty());
    h.clock.advance(Duration::seconds(1));
    let report = h.kms.run_due(h.now()).await.unwrap();
    assert_eq!(report.deleted, vec![arn(&k)]);
    // Idempotent.
    assert_eq!(
        h.kms.run_due(h.now()).await.unwrap(),
        crate::DueReport::default()
    );

    let e = h.err("DescribeKey", json!({"KeyId": k})).await;
    assert_eq!(e.code, "NotFoundException");
    let a = h.ok("ListAliases", json!({})).await;
    assert_eq!(a["Aliases"], json!([]));
    let e = h.decrypt(&blob, json!({})).await.unwrap_err();
    assert_eq!(e.code, "InvalidCiphertextException");
    // Nothing of the key is left in the store but its usage-ledger entry (times, no material).
    let left: Vec<_> = h
        .store
        .list("kms/", None, 100)
        .await
        .unwrap()
        .into_iter()
        .filter(|(k, _)| !k.starts_with("kms/usage/destroyed/"))
        .collect();
    assert!(
        left.is_empty(),
        "{:?}",
        left.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn rotation_on_demand_and_automatic_keeps_old_ciphertexts_readable() {
    let h = harness().await;
    let k = h.create().await;
    let before = h.encrypt(&k, b"old", json!({"c": "1"})).await;
    let s = h.ok("GetKeyRotationStatus", json!({"KeyId": k})).await;
    assert_eq!(s["KeyRotationEnabled"], false);
    assert!(s.get("NextRotationDate").is_none());

    let e = h
        .err(
            "EnableKeyRotation",
            json!({"KeyId": k, "RotationPeriodInDays": 89}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    h.ok(
        "EnableKeyRotation",
        json!({"KeyId": k, "RotationPeriodInDays": 90}),
    )
    .await;
    let s = h.ok("GetKeyRotationStatus", json!({"KeyId": k})).await;
    assert_eq!(s["KeyRotationEnabled"], true);
    assert_eq!(s["RotationPeriodInDays"], 90);
    assert_eq!(s["KeyId"], k);
    assert_eq!(
        s["NextRotationDate"],
        json!(1_700_000_000.0 + 90.0 * 86_400.0)
    );

    let material0 =
        h.ok("DescribeKey", json!({"KeyId": k})).await["KeyMetadata"]["CurrentKeyMaterialId"]
            .clone();
    let r = h.ok("RotateKeyOnDemand", json!({"KeyId": k})).await;
    assert_eq!(r["KeyId"], k);
    let material1 =
        h.ok("DescribeKey", json!({"KeyId": k})).await["KeyMetadata"]["CurrentKeyMaterialId"]
            .clone();
    assert_ne!(material0, material1);
    let after = h.encrypt(&k, b"new", json!({})).await;
    let d = h.decrypt(&before, json!({"c": "1"})).await.unwrap();
    assert_eq!(unb64(&d["Plaintext"]), b"old");
    assert_eq!(d["KeyMaterialId"], material0);
    let d = h.decrypt(&after, json!({})).await.unwrap();
    assert_eq!(d["KeyMaterialId"], material1);

    // Automatic rotation when due, and only then; twice is once.
    h.clock.advance(Duration::days(90) - Duration::seconds(1));
    assert!(h.kms.run_due(h.now()).await.unwrap().rotated.is_empty());
    h.clock.advance(Duration::seconds(1));
    let report = h.kms.run_due(h.now()).await.unwrap();
    assert_eq!(report.rotated, vec![arn(&k)]);
    assert!(h.kms.run_due(h.now()).await.unwrap().rotated.is_empty());
    let s = h.ok("GetKeyRotationStatus", json!({"KeyId": k})).await;
    assert_eq!(
        s["NextRotationDate"],
        json!(1_700_000_000.0 + 180.0 * 86_400.0)
    );
    let d = h.decrypt(&before, json!({"c": "1"})).await.unwrap();
    assert_eq!(unb64(&d["Plaintext"]), b"old");

    let l = h.ok("ListKeyRotations", json!({"KeyId": k})).await;
    let rotations = l["Rotations"].as_array().unwrap();
    assert_eq!(rotations.len(), 2);
    assert_eq!(rotations[0]["RotationType"], "ON_DEMAND");
    assert_eq!(rotations[0]["KeyMaterialState"], "NON_CURRENT");
    assert_eq!(rotations[1]["RotationType"], "AUTOMATIC");
    assert_eq!(rotations[1]["KeyMaterialState"], "CURRENT");
    let l = h
        .ok(
            "ListKeyRotations",
            json!({"KeyId": k, "IncludeKeyMaterial": "ALL_KEY_MATERIAL", "Limit": 2}),
        )
        .await;
    assert_eq!(l["Rotations"].as_array().unwrap().len(), 2);
    assert_eq!(l["Rotations"][0]["KeyMaterialId"], material0);
    assert!(l["Rotations"][0].get("RotationType").is_none());
    assert_eq!(l["Truncated"], true);
    let l = h
        .ok(
            "ListKeyRotations",
            json!({"KeyId": k, "IncludeKeyMaterial": "ALL_KEY_MATERIAL", "Marker": l["NextMarker"]}),
        )
        .await;
    assert_eq!(l["Rotations"].as_array().unwrap().len(), 1);
    assert_eq!(l["Truncated"], false);

    // 25 on-demand rotations per key, then LimitExceededException.
    for _ in 1..25 {
        h.ok("RotateKeyOnDemand", json!({"KeyId": k})).await;
    }
    let e = h.err("RotateKeyOnDemand", json!({"KeyId": k})).await;
    assert_eq!(e.code, "LimitExceededException");
    assert_eq!(
        e.message.unwrap(),
        format!(
            "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {}",
            arn(&k)
        )
    );
    let d = h.decrypt(&before, json!({"c": "1"})).await.unwrap();
    assert_eq!(unb64(&d["Plaintext"]), b"old");

    // A disabled key is not rotated; once enabled again it is.
    h.ok("DisableKey", json!({"KeyId": k})).await;
    h.clock.advance(Duration::days(91));
    let report = h.kms.run_due(h.now()).await.unwrap();
    assert!(report.rotated.is_empty());
    assert_eq!(report.deferred, 1);
    h.ok("EnableKey", json!({"KeyId": k})).await;
    assert_eq!(h.kms.run_due(h.now()).await.unwrap().rotated, vec![arn(&k)]);

    h.ok("DisableKeyRotation", json!({"KeyId": k})).await;
    let s = h.ok("GetKeyRotationStatus", json!({"KeyId": k})).await;
    assert_eq!(s["KeyRotationEnabled"], false);
    h.clock.advance(Duration::days(400));
    assert_eq!(
        h.kms.run_due(h.now()).await.unwrap(),
        crate::DueReport::default()
    );
}

#[tokio::test]
async fn aliases_lifecycle_and_rules() {
    let h = harness().await;
    let k1 = h.create().await;
    let k2 = h.create().await;
    h.ok(
        "CreateAlias",
        json!({"AliasName": "alias/app", "TargetKeyId": k1}),
    )
    .await;
    let e = h
        .err(
            "CreateAlias",
            json!({"AliasName": "alias/app", "TargetKeyId": k2}),
        )
        .await;
    assert_eq!(e.code, "AlreadyExistsException");
    assert_eq!(
        e.message.unwrap(),
        format!("An alias with the name arn:aws:kms:{REGION}:{ACCOUNT}:alias/app already exists")
    );
    let e = h
        .err(
            "CreateAlias",
            json!({"AliasName": "app", "TargetKeyId": k2}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    let e = h
        .err(
            "CreateAlias",
            json!({"AliasName": "alias/aws/app", "TargetKeyId": k2}),
        )
        .await;
    assert_eq!(e.code, "NotAuthorizedException");
    let e = h
        .err(
            "CreateAlias",
            json!({"AliasName": "alias/x", "TargetKeyId": "alias/app"}),
        )
        .await;
    assert_eq!(
        e.message.unwrap(),
        "Aliases must refer to keys. Not aliases"
    );
    let e = h
        .err(
            "CreateAlias",
            json!({"AliasName": "alias/bad name", "TargetKeyId": k1}),
        )
        .await;
    assert_eq!(
        e.message.unwrap(),
        "1 validation error detected: Value 'alias/bad name' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"
    );

    // Encrypt through the alias; the blob names the key, not the alias.
    let blob = h.encrypt("alias/app", b"x", json!({})).await;
    h.ok(
        "UpdateAlias",
        json!({"AliasName": "alias/app", "TargetKeyId": k2}),
    )
    .await;
    let d = h.decrypt(&blob, json!({})).await.unwrap();
    assert_eq!(d["KeyId"], arn(&k1));
    let e2 = h
        .ok(
            "Encrypt",
            json!({"KeyId": "alias/app", "Plaintext": b64(b"y")}),
        )
        .await;
    assert_eq!(e2["KeyId"], arn(&k2));

    let l = h.ok("ListAliases", json!({"KeyId": k2})).await;
    assert_eq!(l["Aliases"].as_array().unwrap().len(), 1);
    assert_eq!(l["Aliases"][0]["AliasName"], "alias/app");
    assert_eq!(l["Aliases"][0]["TargetKeyId"], k2);
    assert_eq!(
        l["Aliases"][0]["AliasArn"],
        format!("arn:aws:kms:{REGION}:{ACCOUNT}:alias/app")
    );
    assert_eq!(
        h.ok("ListAliases", json!({"KeyId": k1})).await["Aliases"],
        json!([])
    );

    // An alias to a disabled key: DisabledException naming the key.
    h.ok("DisableKey", json!({"KeyId": k2})).await;
    let e = h
        .err(
            "Encrypt",
            json!({"KeyId": "alias/app", "Plaintext": b64(b"y")}),
        )
        .await;
    assert_eq!(e.code, "DisabledException");
    assert_eq!(e.message.unwrap(), format!("{} is disabled.", arn(&k2)));

    // Pagination over all aliases.
    for i in 0..5 {
        h.ok(
            "CreateAlias",
            json!({"AliasName": format!("alias/p{i}"), "TargetKeyId": k1}),
        )
        .await;
    }
    let mut names = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut body = json!({"Limit": 2});
        if let Some(m) = &marker {
            body["Marker"] = json!(m);
        }
        let page = h.ok("ListAliases", body).await;
        for a in page["Aliases"].as_array().unwrap() {
            names.push(a["AliasName"].as_str().unwrap().to_owned());
        }
        if page["Truncated"] == false {
            break;
        }
        marker = Some(page["NextMarker"].as_str().unwrap().to_owned());
    }
    assert_eq!(
        names,
        [
            "alias/app",
            "alias/p0",
            "alias/p1",
            "alias/p2",
            "alias/p3",
            "alias/p4"
        ]
    );

    h.ok("DeleteAlias", json!({"AliasName": "alias/app"})).await;
    let e = h
        .err("DeleteAlias", json!({"AliasName": "alias/app"}))
        .await;
    assert_eq!(e.code, "NotFoundException");
    assert_eq!(
        e.message.unwrap(),
        format!("Alias arn:aws:kms:{REGION}:{ACCOUNT}:alias/app is not found.")
    );
    let e = h
        .err(
            "UpdateAlias",
            json!({"AliasName": "alias/app", "TargetKeyId": k1}),
        )
        .await;
    assert_eq!(e.code, "NotFoundException");

    // No alias to a key waiting for deletion.
    h.ok("ScheduleKeyDeletion", json!({"KeyId": k2})).await;
    let e = h
        .err(
            "CreateAlias",
            json!({"AliasName": "alias/late", "TargetKeyId": k2}),
        )
        .await;
    assert_eq!(e.code, "KMSInvalidStateException");
}

#[tokio::test]
async fn tags_and_key_lists_paginate() {
    let h = harness().await;
    let k = h.create().await;
    let tags: Vec<Value> = (0..7)
        .map(|i| json!({"TagKey": format!("t{i}"), "TagValue": format!("v{i}")}))
        .collect();
    h.ok("TagResource", json!({"KeyId": k, "Tags": tags})).await;
    let p = h
        .ok("ListResourceTags", json!({"KeyId": k, "Limit": 5}))
        .await;
    assert_eq!(p["Tags"].as_array().unwrap().len(), 5);
    assert_eq!(p["Truncated"], true);
    let p = h
        .ok(
            "ListResourceTags",
            json!({"KeyId": k, "Limit": 5, "Marker": p["NextMarker"]}),
        )
        .await;
    assert_eq!(p["Tags"].as_array().unwrap().len(), 2);
    h.ok(
        "UntagResource",
        json!({"KeyId": k, "TagKeys": ["t0", "nope"]}),
    )
    .await;
    let p = h.ok("ListResourceTags", json!({"KeyId": k})).await;
    assert_eq!(p["Tags"].as_array().unwrap().len(), 6);
    let e = h
        .err(
            "TagResource",
            json!({"KeyId": k, "Tags": [{"TagKey": "d", "TagValue": "1"}, {"TagKey": "d", "TagValue": "2"}]}),
        )
        .await;
    assert_eq!(e.code, "TagException");
    assert_eq!(e.message.unwrap(), "Duplicate tag keys");

    let mut ids = vec![k.clone()];
    for _ in 0..4 {
        ids.push(h.create().await);
    }
    ids.sort();
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut body = json!({"Limit": 2});
        if let Some(m) = &marker {
            body["Marker"] = json!(m);
        }
        let page = h.ok("ListKeys", body).await;
        for e in page["Keys"].as_array().unwrap() {
            assert_eq!(e["KeyArn"], arn(e["KeyId"].as_str().unwrap()));
            seen.push(e["KeyId"].as_str().unwrap().to_owned());
        }
        if page["Truncated"] == false {
            assert!(page.get("NextMarker").is_none());
            break;
        }
        marker = Some(page["NextMarker"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, ids);
    let e = h.err("ListKeys", json!({"Marker": "garbage"})).await;
    assert_eq!(e.code, "InvalidMarkerException");

    h.ok(
        "UpdateKeyDescription",
        json!({"KeyId": k, "Description": "new"}),
    )
    .await;
    let d = h.ok("DescribeKey", json!({"KeyId": k})).await;
    assert_eq!(d["KeyMetadata"]["Description"], "new");
    let p = h.ok("ListKeyPolicies", json!({"KeyId": k})).await;
    assert_eq!(p, json!({"PolicyNames": ["default"], "Truncated": false}));
    let custom = crate::record::default_policy(ACCOUNT).replace("key-default-1", "custom");
    h.ok("PutKeyPolicy", json!({"KeyId": k, "Policy": custom}))
        .await;
    let p = h
        .ok("GetKeyPolicy", json!({"KeyId": k, "PolicyName": "default"}))
        .await;
    assert_eq!(p["Policy"], custom);
    let e = h
        .err(
            "PutKeyPolicy",
            json!({"KeyId": k, "Policy": format!("{{\"a\":\"{}\"}}", "x".repeat(32_800))}),
        )
        .await;
    assert_eq!(e.code, "LimitExceededException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_changes_are_not_lost() {
    let h = harness().await;
    let k = h.create().await;
    let mut tasks = Vec::new();
    for i in 0..12 {
        let kms = h.kms.clone();
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            let spec = citadel_model::kms::SPEC.operation("TagResource").unwrap();
            let body = json!({"KeyId": k, "Tags": [{"TagKey": format!("t{i}"), "TagValue": "v"}]});
            kms.handle(
                &ctx(ACCOUNT),
                spec,
                OperationInput::Json(Bytes::from(body.to_string())),
            )
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let p = h.ok("ListResourceTags", json!({"KeyId": k})).await;
    assert_eq!(p["Tags"].as_array().unwrap().len(), 12);

    // Racing CreateAlias calls for one name: exactly one wins.
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let kms = h.kms.clone();
        let k = k.clone();
        tasks.push(tokio::spawn(async move {
            let spec = citadel_model::kms::SPEC.operation("CreateAlias").unwrap();
            let body = json!({"AliasName": "alias/race", "TargetKeyId": k});
            kms.handle(
                &ctx(ACCOUNT),
                spec,
                OperationInput::Json(Bytes::from(body.to_string())),
            )
            .await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(_) => wins += 1,
            Err(e) => assert_eq!(e.code, "AlreadyExistsException"),
        }
    }
    assert_eq!(wins, 1);

    // Two schedulers at once destroy a key once.
    h.ok(
        "ScheduleKeyDeletion",
        json!({"KeyId": k, "PendingWindowInDays": 7}),
    )
    .await;
    h.clock.advance(Duration::days(8));
    let (a, b) = tokio::join!(h.kms.run_due(h.now()), h.kms.run_due(h.now()));
    assert_eq!(a.unwrap().deleted.len() + b.unwrap().deleted.len(), 1);
}

#[tokio::test]
async fn the_hot_path_reads_no_storage_and_sealing_empties_the_cache() {
    let h = harness().await;
    let k = h.create().await;
    h.ok(
        "CreateAlias",
        json!({"AliasName": "alias/hot", "TargetKeyId": k}),
    )
    .await;
    let blob = h.encrypt(&k, b"warm", json!({})).await;
    h.encrypt("alias/hot", b"warm", json!({})).await;
    let reads = h.backend.reads.load(Ordering::SeqCst);
    for _ in 0..20 {
        h.encrypt("alias/hot", b"hot", json!({"a": "b"})).await;
        let d = h.decrypt(&blob, json!({})).await.unwrap();
        assert_eq!(unb64(&d["Plaintext"]), b"warm");
        h.ok("GenerateDataKey", json!({"KeyId": k, "KeySpec": "AES_128"}))
            .await;
        h.ok(
            "GenerateDataKeyWithoutPlaintext",
            json!({"KeyId": arn(&k), "NumberOfBytes": 8}),
        )
        .await;
    }
    assert_eq!(
        h.backend.reads.load(Ordering::SeqCst),
        reads,
        "the hot path read storage"
    );

    // A change made through KMS is seen at once (the cache entry was dropped).
    h.ok("DisableKey", json!({"KeyId": k})).await;
    assert_eq!(
        h.err("Encrypt", json!({"KeyId": k, "Plaintext": b64(b"x")}))
            .await
            .code,
        "DisabledException"
    );
    h.ok("EnableKey", json!({"KeyId": k})).await;

    h.store.seal();
    let e = h
        .err("Encrypt", json!({"KeyId": k, "Plaintext": b64(b"x")}))
        .await;
    assert_eq!(e.code, "ServiceUnavailableException");
    assert_eq!(e.status, 503);
    assert!(
        h.kms
            .cache
            .key(&crate::record::key_path(ACCOUNT, REGION, &k))
            .is_none(),
        "decrypted material must not outlive the seal"
    );
    assert!(h.kms.run_due(h.now()).await.is_err());
}

#[tokio::test]
async fn the_scheduler_entry_point_runs_due_work() {
    let h = harness().await;
    let k = h.create().await;
    h.ok(
        "ScheduleKeyDeletion",
        json!({"KeyId": k, "PendingWindowInDays": 7}),
    )
    .await;
    let work: Arc<dyn citadel_api::ScheduledWork> = h.kms.clone();
    assert_eq!(work.name(), "kms");
    let now = h.now().unix_timestamp();
    work.run_due(now + 6 * 86_400).await.unwrap();
    assert!(h.call("DescribeKey", json!({"KeyId": k})).await.is_ok());
    work.run_due(now + 7 * 86_400).await.unwrap();
    assert_eq!(
        h.err("DescribeKey", json!({"KeyId": k})).await.code,
        "NotFoundException"
    );
}

#[tokio::test]
async fn a_restarted_instance_decrypts_what_the_first_encrypted() {
    let h = harness().await;
    let k = h.create().await;
    h.ok("RotateKeyOnDemand", json!({"KeyId": k})).await;
    let blob = h.encrypt(&k, b"persisted", json!({"x": "y"})).await;
    let fresh = Kms::with_clock(h.store.clone(), h.authorizer.clone(), h.clock.clone());
    let spec = citadel_model::kms::SPEC.operation("Decrypt").unwrap();
    let body = json!({"CiphertextBlob": b64(&blob), "EncryptionContext": {"x": "y"}});
    let out = fresh
        .handle(
            &ctx(ACCOUNT),
            spec,
            OperationInput::Json(Bytes::from(body.to_string())),
        )
        .await
        .unwrap();
    let OperationOutput::Json(v) = out else {
        panic!("not JSON")
    };
    assert_eq!(unb64(&v["Plaintext"]), b"persisted");
}

#[tokio::test]
async fn key_material_never_reaches_debug_output() {
    let h = harness().await;
    let k = h.create().await;
    h.encrypt(&k, b"x", json!({})).await;
    let dbg = format!("{:?}", h.kms);
    assert!(dbg.contains("KeyCache"));
    let key = h
        .kms
        .key_at(&crate::record::key_path(ACCOUNT, REGION, &k))
        .await
        .unwrap()
        .unwrap();
    let material = key.current_material().unwrap();
    let dbg = format!("{key:?} {material:?}");
    assert!(!dbg.contains(&hex::encode(material.secret())));
}

impl Harness {
    async fn call_ctx(
        &self,
        ctx: &RequestContext,
        op: &str,
        body: Value,
    ) -> Result<Value, AwsError> {
        let spec = citadel_model::kms::SPEC.operation(op).unwrap();
        let input = OperationInput::Json(Bytes::from(body.to_string()));
        match self.kms.handle(ctx, spec, input).await? {
            OperationOutput::Json(v) => Ok(v),
            other => panic!("unexpected output {other:?}"),
        }
    }
}

/// A key policy naming only `principal` for every KMS action.
fn policy_for(principal: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Principal":{{"AWS":"{principal}"}},"Action":"kms:*","Resource":"*"}}]}}"#
    )
}

#[tokio::test]
async fn key_policies_are_enforced_with_the_lockout_safety_check() {
    let h = harness().await;
    let root = prod_ctx(ACCOUNT);
    let created = h.call_ctx(&root, "CreateKey", json!({})).await.unwrap();
    let k = created["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    assert!(root.authorized.is_marked());
    h.call_ctx(&prod_ctx(ACCOUNT), "DescribeKey", json!({"KeyId": k}))
        .await
        .unwrap();

    // A policy that would lock the caller out is refused, on CreateKey and PutKeyPolicy alike.
    let alice_only = policy_for("arn:aws:iam::111122223333:user/alice");
    let lockout = "The new key policy will not allow you to update the key policy in the future.";
    let e = h
        .call_ctx(
            &prod_ctx(ACCOUNT),
            "CreateKey",
            json!({"Policy": alice_only}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_ref(), e.message.as_deref()),
        ("MalformedPolicyDocumentException", Some(lockout))
    );
    let e = h
        .call_ctx(
            &prod_ctx(ACCOUNT),
            "PutKeyPolicy",
            json!({"KeyId": k, "Policy": alice_only}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_ref(), e.message.as_deref()),
        ("MalformedPolicyDocumentException", Some(lockout))
    );
    // A malformed policy names its problem.
    let e = h
        .call_ctx(
            &prod_ctx(ACCOUNT),
            "PutKeyPolicy",
            json!({"KeyId": k, "Policy": r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#}),
        )
        .await
        .unwrap_err();
    assert_eq!(
        (e.code.as_ref(), e.message.as_deref()),
        (
            "MalformedPolicyDocumentException",
            Some("Missing required field Principal")
        )
    );
    // Bypassing the check takes effect at once: root itself is now shut out of the key.
    h.call_ctx(
        &prod_ctx(ACCOUNT),
        "PutKeyPolicy",
        json!({"KeyId": k, "Policy": alice_only, "BypassPolicyLockoutSafetyCheck": true}),
    )
    .await
    .unwrap();
    let e = h
        .call_ctx(&prod_ctx(ACCOUNT), "DescribeKey", json!({"KeyId": k}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    assert_eq!(
        e.message.as_deref(),
        Some(
            format!(
                "User: arn:aws:iam::111122223333:root is not authorized to perform: kms:DescribeKey on resource: {} because no resource-based policy allows the kms:DescribeKey action",
                arn(&k)
            )
            .as_str()
        )
    );
    // Dev mode is root-equivalent: no policy is evaluated.
    h.ok("DescribeKey", json!({"KeyId": k})).await;
    // A policy naming root explicitly lets root in again (and passes the check).
    let root_only = policy_for("arn:aws:iam::111122223333:root");
    h.call_ctx(
        &prod_ctx(ACCOUNT),
        "CreateKey",
        json!({"Policy": root_only}),
    )
    .await
    .unwrap();
}

// ----- grants -------------------------------------------------------------------------------

fn user_ctx(arn: &str) -> RequestContext {
    let kind = if arn.contains(":assumed-role/") {
        citadel_api::PrincipalKind::AssumedRole
    } else {
        citadel_api::PrincipalKind::User
    };
    RequestContext {
        principal: Principal {
            account_id: ACCOUNT.into(),
            arn: arn.into(),
            user_id: "AIDAEXAMPLE".into(),
            access_key_id: "AKIDUSER".into(),
            kind,
        },
        ..prod_ctx(ACCOUNT)
    }
}

const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const CAROL: &str = "arn:aws:iam::111122223333:user/carol";

impl Harness {
    async fn grant(&self, ctx: &RequestContext, body: Value) -> Result<(String, String), AwsError> {
        let v = self.call_ctx(ctx, "CreateGrant", body).await?;
        Ok((
            v["GrantId"].as_str().unwrap().to_owned(),
            v["GrantToken"].as_str().unwrap().to_owned(),
        ))
    }
}

#[tokio::test]
async fn grants_allow_exactly_their_operations_and_stop_when_retired_or_revoked() {
    let h = harness().await;
    let root = prod_ctx(ACCOUNT);
    let k = h.call_ctx(&root, "CreateKey", json!({})).await.unwrap()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let app = json!({"app": "x"});
    let blob = b64(&h.encrypt(&k, b"secret", app.clone()).await);
    let bob = user_ctx(BOB);
    let decrypt = json!({"CiphertextBlob": blob, "EncryptionContext": app});
    let e = h
        .call_ctx(&bob, "Decrypt", decrypt.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");

    let (gid, token) = h
        .grant(
            &root,
            json!({"KeyId": k, "GranteePrincipal": BOB, "Operations": ["Decrypt"]}),
        )
        .await
        .unwrap();
    assert!(gid.len() == 64 && gid.bytes().all(|b| b.is_ascii_hexdigit()));
    // Usable at once, with or without the token.
    let out = h.call_ctx(&bob, "Decrypt", decrypt.clone()).await.unwrap();
    assert_eq!(unb64(&out["Plaintext"]), b"secret");
    let mut with_token = decrypt.clone();
    with_token["GrantTokens"] = json!([token]);
    h.call_ctx(&bob, "Decrypt", with_token.clone())
        .await
        .unwrap();
    // Nothing else: not Encrypt, not DescribeKey, not the grant's own retirement.
    for (op, body) in [
        ("Encrypt", json!({"KeyId": k, "Plaintext": b64(b"x")})),
        ("DescribeKey", json!({"KeyId": k})),
        ("RetireGrant", json!({"KeyId": k, "GrantId": gid})),
        (
            "CreateGrant",
            json!({"KeyId": k, "GranteePrincipal": CAROL, "Operations": ["Decrypt"]}),
        ),
    ] {
        let e = h.call_ctx(&bob, op, body).await.unwrap_err();
        assert_eq!(e.code, "AccessDeniedException", "{op}");
    }
    // Another user gets nothing from bob's grant.
    let e = h
        .call_ctx(&user_ctx(CAROL), "Decrypt", decrypt.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    // Malformed and unknown tokens are refused.
    let mut bad = decrypt.clone();
    bad["GrantTokens"] = json!(["not-a-token"]);
    assert_eq!(
        h.call_ctx(&bob, "Decrypt", bad).await.unwrap_err().code,
        "InvalidGrantTokenException"
    );

    // Retiring stops the grant at once, and its token with it.
    h.call_ctx(&root, "RetireGrant", json!({"KeyId": k, "GrantId": gid}))
        .await
        .unwrap();
    let e = h
        .call_ctx(&bob, "Decrypt", decrypt.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    assert_eq!(
        h.call_ctx(&bob, "Decrypt", with_token)
            .await
            .unwrap_err()
            .code,
        "InvalidGrantTokenException"
    );

    // Constraints: Equals needs the exact context, Subset its pairs.
    let other = b64(&h.encrypt(&k, b"other", json!({"app": "y"})).await);
    let wide = b64(&h
        .encrypt(&k, b"wide", json!({"app": "x", "env": "prod"}))
        .await);
    let (eq_id, _) = h
        .grant(
            &root,
            json!({"KeyId": k, "GranteePrincipal": BOB, "Operations": ["Decrypt"],
                   "Constraints": {"EncryptionContextEquals": {"app": "x"}}}),
        )
        .await
        .unwrap();
    h.call_ctx(&bob, "Decrypt", decrypt.clone()).await.unwrap();
    for (blob, ctx) in [
        (&other, json!({"app": "y"})),
        (&wide, json!({"app": "x", "env": "prod"})),
    ] {
        let e = h
            .call_ctx(
                &bob,
                "Decrypt",
                json!({"CiphertextBlob": blob, "EncryptionContext": ctx}),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
    }
    let carol = user_ctx(CAROL);
    let (sub_id, _) = h
        .grant(
            &root,
            json!({"KeyId": k, "GranteePrincipal": CAROL, "Operations": ["Decrypt", "RetireGrant"],
                   "Constraints": {"EncryptionContextSubset": {"app": "x"}}}),
        )
        .await
        .unwrap();
    h.call_ctx(
        &carol,
        "Decrypt",
        json!({"CiphertextBlob": wide, "EncryptionContext": {"app": "x", "env": "prod"}}),
    )
    .await
    .unwrap();
    let e = h
        .call_ctx(
            &carol,
            "Decrypt",
            json!({"CiphertextBlob": other, "EncryptionContext": {"app": "y"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    // A grantee holding RetireGrant may retire its own grant.
    h.call_ctx(
        &carol,
        "RetireGrant",
        json!({"KeyId": k, "GrantId": sub_id}),
    )
    .await
    .unwrap();
    let e = h
        .call_ctx(
            &carol,
            "Decrypt",
            json!({"CiphertextBlob": wide, "EncryptionContext": {"app": "x", "env": "prod"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");

    // Revoking needs kms:RevokeGrant (bob has none) and takes effect at once.
    let e = h
        .call_ctx(&bob, "RevokeGrant", json!({"KeyId": k, "GrantId": eq_id}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    h.call_ctx(&root, "RevokeGrant", json!({"KeyId": k, "GrantId": eq_id}))
        .await
        .unwrap();
    let e = h
        .call_ctx(&bob, "Decrypt", decrypt.clone())
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");

    // A grant to a role serves its sessions; the retiring principal may retire it.
    let (role_gid, _) = h
        .grant(
            &root,
            json!({"KeyId": k, "GranteePrincipal": "arn:aws:iam::111122223333:role/app",
                   "RetiringPrincipal": CAROL, "Operations": ["Decrypt", "DescribeKey"]}),
        )
        .await
        .unwrap();
    let session = user_ctx("arn:aws:sts::111122223333:assumed-role/app/s1");
    h.call_ctx(&session, "Decrypt", decrypt.clone())
        .await
        .unwrap();
    h.call_ctx(&session, "DescribeKey", json!({"KeyId": k}))
        .await
        .unwrap();
    h.call_ctx(
        &carol,
        "RetireGrant",
        json!({"KeyId": k, "GrantId": role_gid}),
    )
    .await
    .unwrap();
    assert_eq!(
        h.call_ctx(&session, "Decrypt", decrypt)
            .await
            .unwrap_err()
            .code,
        "AccessDeniedException"
    );
}

#[tokio::test]
async fn grantees_with_create_grant_delegate_only_what_they_hold() {
    let h = harness().await;
    let root = prod_ctx(ACCOUNT);
    let k = h.call_ctx(&root, "CreateKey", json!({})).await.unwrap()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    h.grant(
        &root,
        json!({"KeyId": k, "GranteePrincipal": BOB, "Operations": ["Decrypt", "CreateGrant"],
               "Constraints": {"EncryptionContextSubset": {"app": "x"}}}),
    )
    .await
    .unwrap();
    let bob = user_ctx(BOB);
    h.grant(
        &bob,
        json!({"KeyId": k, "GranteePrincipal": CAROL, "Operations": ["Decrypt"],
               "Constraints": {"EncryptionContextEquals": {"app": "x", "b": "1"}}}),
    )
    .await
    .unwrap();
    for body in [
        json!({"KeyId": k, "GranteePrincipal": CAROL, "Operations": ["Encrypt"],
               "Constraints": {"EncryptionContextSubset": {"app": "x"}}}),
        json!({"KeyId": k, "GranteePrincipal": CAROL, "Operations": ["Decrypt"]}),
        json!({"KeyId": k, "GranteePrincipal": CAROL, "Operations": ["Decrypt"],
               "Constraints": {"EncryptionContextSubset": {"b": "1"}}}),
    ] {
        let e = h.grant(&bob, body).await.unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
    }
}

#[tokio::test]
async fn grant_names_lists_validation_limit_and_deletion() {
    let h = harness().await;
    let k = h.create().await;
    let body = json!({"KeyId": k, "GranteePrincipal": BOB, "Operations": ["Encrypt", "Decrypt"],
                      "Name": "app", "RetiringPrincipal": CAROL});
    let (id1, t1) = h.grant(&ctx(ACCOUNT), body.clone()).await.unwrap();
    let (id2, t2) = h.grant(&ctx(ACCOUNT), body.clone()).await.unwrap();
    assert_eq!(id1, id2, "same name and parameters: the same grant");
    assert_ne!(t1, t2, "a fresh token every time");
    for t in [&t1, &t2] {
        h.ok(
            "Encrypt",
            json!({"KeyId": k, "Plaintext": b64(b"x"), "GrantTokens": [t]}),
        )
        .await;
    }
    let mut changed = body.clone();
    changed["Operations"] = json!(["Decrypt"]);
    let (id3, _) = h.grant(&ctx(ACCOUNT), changed).await.unwrap();
    assert_ne!(id1, id3, "same name, other parameters: a new grant");

    let l = h.ok("ListGrants", json!({"KeyId": k})).await;
    let grants = l["Grants"].as_array().unwrap();
    assert_eq!(grants.len(), 2);
    assert_eq!(l["Truncated"], false);
    let g = grants
        .iter()
        .find(|g| g["GrantId"] == id1.as_str())
        .unwrap();
    assert_eq!(g["KeyId"], arn(&k));
    assert_eq!(g["Name"], "app");
    assert_eq!(g["GranteePrincipal"], BOB);
    assert_eq!(g["RetiringPrincipal"], CAROL);
    assert_eq!(g["IssuingAccount"], "arn:aws:iam::111122223333:root");
    assert_eq!(g["Operations"], json!(["Encrypt", "Decrypt"]));
    assert_eq!(g["CreationDate"], json!(1_700_000_000.0));
    let p1 = h.ok("ListGrants", json!({"KeyId": k, "Limit": 1})).await;
    assert_eq!(p1["Truncated"], true);
    let p2 = h
        .ok(
            "ListGrants",
            json!({"KeyId": k, "Limit": 1, "Marker": p1["NextMarker"]}),
        )
        .await;
    assert_eq!(p2["Truncated"], false);
    assert_ne!(p1["Grants"][0]["GrantId"], p2["Grants"][0]["GrantId"]);
    let f = h
        .ok("ListGrants", json!({"KeyId": k, "GrantId": id3}))
        .await;
    assert_eq!(f["Grants"].as_array().unwrap().len(), 1);
    let r = h
        .ok("ListRetirableGrants", json!({"RetiringPrincipal": CAROL}))
        .await;
    assert_eq!(r["Grants"].as_array().unwrap().len(), 2);
    let r = h
        .ok(
            "ListRetirableGrants",
            json!({"RetiringPrincipal": CAROL, "Limit": 1}),
        )
        .await;
    assert_eq!(r["Truncated"], true);
    let r2 = h
        .ok(
            "ListRetirableGrants",
            json!({"RetiringPrincipal": CAROL, "Marker": r["NextMarker"]}),
        )
        .await;
    assert_eq!(r2["Grants"].as_array().unwrap().len(), 1);

    // Bad input.
    let cases = [
        (
            json!({"KeyId": k, "GranteePrincipal": "bob", "Operations": ["Decrypt"]}),
            "InvalidArnException",
            Some("ARN does not refer to a valid principal: bob"),
        ),
        (
            json!({"KeyId": k, "GranteePrincipal": BOB, "Operations": ["Sign"]}),
            "ValidationException",
            None,
        ),
        (
            json!({"KeyId": k, "GranteePrincipal": BOB, "Operations": ["CreateGrant"]}),
            "ValidationException",
            Some("Grants must not contain only the CreateGrant operation."),
        ),
        (
            json!({"KeyId": k, "GranteePrincipal": BOB, "Operations": ["Decrypt"],
                "Constraints": {"EncryptionContextEquals": {"a": "1"}, "EncryptionContextSubset": {"a": "1"}}}),
            "ValidationException",
            None,
        ),
        (
            json!({"KeyId": k, "GranteePrincipal": BOB, "Operations": ["Bogus"]}),
            "ValidationException",
            None,
        ),
    ];
    for (body, code, message) in cases {
        let e = h.err("CreateGrant", body).await;
        assert_eq!(e.code, code);
        if let Some(m) = message {
            assert_eq!(e.message.as_deref(), Some(m));
        }
    }
    let unknown = "0".repeat(64);
    assert_eq!(
        h.err("RevokeGrant", json!({"KeyId": k, "GrantId": unknown}))
            .await
            .code,
        "NotFoundException"
    );
    assert_eq!(
        h.err("RevokeGrant", json!({"KeyId": k, "GrantId": "nope"}))
            .await
            .code,
        "InvalidGrantIdException"
    );
    assert_eq!(
        h.err("RetireGrant", json!({"GrantToken": "AAAA"}))
            .await
            .code,
        "InvalidGrantTokenException"
    );
    // Retiring by token.
    h.ok("RetireGrant", json!({"GrantToken": t1})).await;
    let l = h.ok("ListGrants", json!({"KeyId": k})).await;
    assert_eq!(l["Grants"].as_array().unwrap().len(), 1);

    // The per-key limit (lowered for the test).
    let mut limited = Kms::with_clock(h.store.clone(), h.authorizer.clone(), h.clock.clone());
    limited.grant_limit = 2;
    let spec = citadel_model::kms::SPEC.operation("CreateGrant").unwrap();
    let dev = ctx(ACCOUNT);
    let call = |n: u32| {
        let body = json!({"KeyId": k, "GranteePrincipal": BOB, "Operations": ["Decrypt"], "Name": format!("n{n}")});
        limited.handle(
            &dev,
            spec,
            OperationInput::Json(Bytes::from(body.to_string())),
        )
    };
    call(1).await.unwrap();
    let e = call(2).await.unwrap_err();
    assert_eq!(e.code, "LimitExceededException");

    // Deleting the key deletes its grants.
    h.ok(
        "ScheduleKeyDeletion",
        json!({"KeyId": k, "PendingWindowInDays": 7}),
    )
    .await;
    h.clock.advance(Duration::days(8));
    h.kms.run_due(h.now()).await.unwrap();
    let left = h
        .store
        .list(&crate::record::grants_prefix(ACCOUNT, REGION), None, 10)
        .await
        .unwrap();
    assert!(left.is_empty());
}

// ----- KeyService: other services calling KMS on a caller's behalf ---------------------------

mod forwarded {
    use super::*;
    use citadel_api::KeyService;
    use std::collections::BTreeMap;

    /// The trait's methods, not the handler's same-named inherent ones.
    fn keys(h: &Harness) -> &dyn KeyService {
        &*h.kms
    }

    fn parameter_context() -> BTreeMap<String, String> {
        BTreeMap::from([(
            "PARAMETER_ARN".to_owned(),
            "arn:aws:ssm:us-east-1:111122223333:parameter/app/db".to_owned(),
        )])
    }

    #[tokio::test]
    async fn the_managed_key_is_created_on_first_use_and_usable_only_through_its_service() {
        let h = harness().await;
        let direct = ctx(ACCOUNT);
        let via = direct.via("ssm");
        // Nobody but SSM creates alias/aws/ssm: a direct reference is simply not found.
        let e = keys(&h)
            .encrypt(&direct, "alias/aws/ssm", b"x", &parameter_context())
            .await
            .unwrap_err();
        assert_eq!(e.code, "NotFoundException");

        let sealed = keys(&h)
            .encrypt(&via, "alias/aws/ssm", b"db-password", &parameter_context())
            .await
            .unwrap();
        let again = keys(&h)
            .encrypt(&via, "alias/aws/ssm", b"other", &parameter_context())
            .await
            .unwrap();
        assert_eq!(
            sealed.key_arn, again.key_arn,
            "one managed key per account and region"
        );
        let opened = keys(&h)
            .decrypt(&via, &sealed.ciphertext, &parameter_context())
            .await
            .unwrap();
        assert_eq!(opened.plaintext.as_slice(), b"db-password");
        assert_eq!(opened.key_arn, sealed.key_arn);
        assert!(!format!("{opened:?}").contains("db-password"));

        // The wrong encryption context does not open it.
        let e = keys(&h)
            .decrypt(&via, &sealed.ciphertext, &BTreeMap::new())
            .await
            .unwrap_err();
        assert_eq!(e.code, "InvalidCiphertextException");

        // Directly (not through SSM) even the account's root cannot use it, in dev mode too …
        let blob = b64(&sealed.ciphertext);
        let e = h
            .call_as(
                ACCOUNT,
                "Decrypt",
                json!({"CiphertextBlob": blob, "EncryptionContext": parameter_context()}),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
        // … nor through another service …
        let e = keys(&h)
            .decrypt(
                &direct.via("secretsmanager"),
                &sealed.ciphertext,
                &parameter_context(),
            )
            .await
            .unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
        // … nor manage it; but it can read its metadata, which says who manages it.
        for (op, body) in [
            ("DisableKey", json!({"KeyId": "alias/aws/ssm"})),
            (
                "ScheduleKeyDeletion",
                json!({"KeyId": sealed.key_arn, "PendingWindowInDays": 7}),
            ),
            (
                "PutKeyPolicy",
                json!({"KeyId": sealed.key_arn, "Policy": crate::record::default_policy(ACCOUNT)}),
            ),
            ("DisableKeyRotation", json!({"KeyId": sealed.key_arn})),
            (
                "TagResource",
                json!({"KeyId": sealed.key_arn, "Tags": [{"TagKey": "a", "TagValue": "b"}]}),
            ),
        ] {
            let e = h.call_as(ACCOUNT, op, body).await.unwrap_err();
            assert_eq!(e.code, "AccessDeniedException", "{op}");
        }
        let d = h
            .call_as(ACCOUNT, "DescribeKey", json!({"KeyId": "alias/aws/ssm"}))
            .await
            .unwrap();
        assert_eq!(d["KeyMetadata"]["KeyManager"], "AWS");
        assert_eq!(d["KeyMetadata"]["Arn"], sealed.key_arn.as_str());
        let r = h
            .call_as(
                ACCOUNT,
                "GetKeyRotationStatus",
                json!({"KeyId": sealed.key_arn}),
            )
            .await
            .unwrap();
        assert_eq!(r["KeyRotationEnabled"], true);
        let aliases = h.call_as(ACCOUNT, "ListAliases", json!({})).await.unwrap();
        assert!(
            aliases["Aliases"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["AliasName"] == "alias/aws/ssm")
        );
        // Another account gets its own.
        let theirs = keys(&h)
            .encrypt(
                &ctx(OTHER).via("ssm"),
                "alias/aws/ssm",
                b"x",
                &parameter_context(),
            )
            .await
            .unwrap();
        assert_ne!(theirs.key_arn, sealed.key_arn);
    }

    #[tokio::test]
    async fn customer_keys_see_kms_via_service_and_the_callers_identity() {
        let h = harness().await;
        let root = prod_ctx(ACCOUNT);
        // A key policy that lets the account use the key only through Secrets Manager.
        let policy = json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
             "Action": ["kms:Describe*", "kms:Put*", "kms:Get*"], "Resource": "*"},
            {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
             "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey"], "Resource": "*",
             "Condition": {"StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com"}}}
        ]})
        .to_string();
        let k = h
            .call_ctx(&root, "CreateKey", json!({"Policy": policy}))
            .await
            .unwrap()["KeyMetadata"]["Arn"]
            .as_str()
            .unwrap()
            .to_owned();
        let context = BTreeMap::from([("SecretARN".to_owned(), "arn:x".to_owned())]);
        let via = root.via("secretsmanager");
        let data_key = keys(&h)
            .generate_data_key(&via, &k, &context)
            .await
            .unwrap();
        assert_eq!(data_key.plaintext.len(), 32);
        assert_eq!(data_key.key_arn, k);
        assert!(!format!("{data_key:?}").contains(&format!("{:?}", &data_key.plaintext[..4])));
        let opened = keys(&h)
            .decrypt(&via, &data_key.ciphertext, &context)
            .await
            .unwrap();
        assert_eq!(opened.plaintext, data_key.plaintext);
        assert_eq!(keys(&h).describe_key(&via, &k).await.unwrap(), k);
        // The same calls directly, or via another service, are refused by the key policy.
        let e = keys(&h)
            .decrypt(&root, &data_key.ciphertext, &context)
            .await
            .unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
        let e = keys(&h)
            .generate_data_key(&root.via("ssm"), &k, &context)
            .await
            .unwrap_err();
        assert_eq!(e.code, "AccessDeniedException");
        // Plaintext limits are KMS's own.
        let e = keys(&h)
            .encrypt(&via, &k, &[0u8; 4097], &context)
            .await
            .unwrap_err();
        assert_eq!(e.code, "ValidationException");
    }
}

// ----- metering -------------------------------------------------------------------------------

#[tokio::test]
async fn usage_counts_authorized_requests_per_key_and_prices_key_hours() {
    let h = harness().await;
    // The harness clock starts at 2023-11-14T22:13:20Z.
    let month = crate::metering::month_of(1_700_000_000_000);
    assert_eq!(month, "2023-11");
    let kept = h.create().await;
    let doomed = h.create().await;
    for _ in 0..3 {
        h.encrypt(&kept, b"x", json!({})).await;
    }
    h.ok("GenerateRandom", json!({"NumberOfBytes": 8})).await;
    // Another account's denied attempt is not billed to anyone.
    h.call_as(
        OTHER,
        "Encrypt",
        json!({"KeyId": arn(&kept), "Plaintext": "eA=="}),
    )
    .await
    .unwrap_err();
    // Forwarded calls (Parameter Store) are KMS requests too.
    citadel_api::KeyService::encrypt(
        &*h.kms,
        &ctx(ACCOUNT).via("ssm"),
        "alias/aws/ssm",
        b"x",
        &Default::default(),
    )
    .await
    .unwrap();
    h.ok(
        "ScheduleKeyDeletion",
        json!({"KeyId": doomed, "PendingWindowInDays": 7}),
    )
    .await;
    h.clock.advance(Duration::days(7));
    h.kms.run_due(h.now()).await.unwrap();

    let report = h
        .kms
        .usage_report(Some(ACCOUNT), &month)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(report.accounts.len(), 1);
    let a = &report.accounts[0];
    let count = |key: &str, op: &str| {
        a.requests
            .iter()
            .filter(|r| r.key_id == key && r.operation == op)
            .map(|r| r.count)
            .sum::<u64>()
    };
    assert_eq!(count(&kept, "Encrypt"), 3);
    assert_eq!(count("-", "GenerateRandom"), 1);
    assert_eq!(count(&kept, "CreateKey") + count("-", "CreateKey"), 2);
    let managed: Vec<_> = a.keys.iter().filter(|k| k.key_manager == "AWS").collect();
    assert_eq!(managed.len(), 1);
    assert_eq!(managed[0].cost_usd, 0.0);
    assert_eq!(count(&managed[0].key_id, "Encrypt"), 1);
    // CreateKey and ScheduleKeyDeletion are free: 3 Encrypt, GenerateRandom and the forwarded
    // Encrypt are billable.
    assert_eq!(a.billable_requests, 5, "{:?}", a.requests);
    // Both keys were created at 2023-11-14T22:13Z and it is now 2023-11-21T22:13Z: the
    // destroyed key is still reported for the 7 days it existed, the kept one for the 7 days
    // so far, each prorated against the month's 720 hours.
    let d = a.keys.iter().find(|k| k.key_id == doomed).unwrap();
    assert!(d.destroyed);
    assert_eq!(d.hours, 7 * 24);
    let k = a.keys.iter().find(|k| k.key_id == kept).unwrap();
    assert!(!k.destroyed);
    assert_eq!(k.hours, 7 * 24);
    assert!(
        (k.cost_usd - 7.0 * 24.0 / (30.0 * 24.0)).abs() < 1e-3,
        "{}",
        k.cost_usd
    );
    assert!(a.total_usd > 0.0);
    // The other account used nothing billable; a malformed month is refused.
    let theirs = h
        .kms
        .usage_report(Some(OTHER), &month)
        .await
        .unwrap()
        .unwrap();
    assert!(theirs.accounts.iter().all(|a| a.billable_requests == 0));
    assert!(h.kms.usage_report(None, "2023-13").await.unwrap().is_none());
    // Counts reach the ledger once: a second report shows the same numbers.
    let again = h
        .kms
        .usage_report(Some(ACCOUNT), &month)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.accounts[0].billable_requests, 5);
}

/// Decrypt without KeyId finds another account's key from the ciphertext (the owner index), and
/// its key policy decides.
#[tokio::test]
async fn decrypt_without_key_id_reaches_a_key_of_another_account_its_policy_allows() {
    let h = harness().await;
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
         "Action": "kms:*", "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{OTHER}:root")},
         "Action": "kms:Decrypt", "Resource": "*"}
    ]})
    .to_string();
    let k = h
        .call_ctx(&prod_ctx(ACCOUNT), "CreateKey", json!({"Policy": policy}))
        .await
        .unwrap()["KeyMetadata"]["KeyId"]
        .as_str()
        .unwrap()
        .to_owned();
    let blob = h.encrypt(&k, b"shared", json!({})).await;
    let out = h
        .call_ctx(
            &prod_ctx(OTHER),
            "Decrypt",
            json!({"CiphertextBlob": b64(&blob)}),
        )
        .await
        .unwrap();
    assert_eq!(unb64(&out["Plaintext"]), b"shared");
    assert_eq!(out["KeyId"], arn(&k));
    // Encrypt is not in the policy.
    let e = h
        .call_ctx(
            &prod_ctx(OTHER),
            "Encrypt",
            json!({"KeyId": arn(&k), "Plaintext": "eA=="}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
}

/// The events an automatic rotation and a deletion emit on the bus (a collecting publisher
/// stands in for the bus here; the bus itself is tested in citadel-svc-events).
#[tokio::test]
async fn rotation_and_deletion_emit_their_events() {
    let h = harness().await;
    let events = Arc::new(Collect::default());
    h.kms.set_events(events.clone());
    let rotated = h.create().await;
    h.ok(
        "EnableKeyRotation",
        json!({"KeyId": rotated, "RotationPeriodInDays": 90}),
    )
    .await;
    let doomed = h.create().await;
    h.ok(
        "ScheduleKeyDeletion",
        json!({"KeyId": doomed, "PendingWindowInDays": 7}),
    )
    .await;
    h.clock.advance(Duration::days(7));
    h.kms.run_due(h.now()).await.unwrap();
    h.clock.advance(Duration::days(83));
    h.kms.run_due(h.now()).await.unwrap();
    let seen = events.0.lock().unwrap().clone();
    let kinds: Vec<(String, Value)> = seen
        .iter()
        .map(|e| (e.detail_type.clone(), e.detail.clone()))
        .collect();
    assert_eq!(seen.len(), 2, "{kinds:?}");
    assert_eq!(seen[0].detail_type, "KMS CMK Deletion");
    assert_eq!(seen[0].source, "aws.kms");
    assert_eq!(seen[0].account, ACCOUNT);
    assert_eq!(seen[0].resources, vec![arn(&doomed)]);
    assert_eq!(seen[1].detail_type, "KMS CMK Rotation");
    assert_eq!(seen[1].resources, vec![arn(&rotated)]);
}
mod import;
mod last_usage;
mod multi_region;
mod rsa_hmac;
mod signing;
