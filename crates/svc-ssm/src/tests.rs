//! The handler end to end over a real sealed SQLite store and Citadel's real KMS as the
//! KeyService, driven through `ServiceHandler::handle` with JSON bodies as the wire delivers
//! them, in dev mode and in production mode (IAM policies evaluated).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use bytes::Bytes;
use citadel_api::{
    AwsError, KeyService, OperationInput, OperationOutput, Principal, PrincipalKind,
    RequestContext, ServiceHandler,
};
use citadel_iam::identity::EntityKind;
use citadel_iam::{Authorizer, IdentityStore};
use citadel_store::{RootKey, SealedStore, SqliteBackend};
use citadel_svc_kms::Kms;
use serde_json::{Value, json};
use time::{Duration, OffsetDateTime};

use crate::{Limits, ManualClock, Ssm};

const ACCOUNT: &str = "111122223333";
const REGION: &str = "us-east-1";

struct Harness {
    ssm: Arc<Ssm>,
    kms: Arc<Kms>,
    identities: Arc<IdentityStore>,
    clock: Arc<ManualClock>,
    store: Arc<SealedStore>,
    _dir: tempfile::TempDir,
}

fn dev_ctx() -> RequestContext {
    RequestContext {
        request_id: "req".into(),
        region: REGION.into(),
        principal: Principal::root(ACCOUNT, "AKIDEXAMPLE"),
        source_ip: None,
        user_agent: None,
        dev_mode: true,
        secure_transport: true,
        authorized: Default::default(),
        called_via: None,
    }
}

fn prod_root() -> RequestContext {
    RequestContext {
        dev_mode: false,
        ..dev_ctx()
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
        ..prod_root()
    }
}

async fn harness_with(limits: Limits) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(SqliteBackend::open(dir.path()).await.unwrap());
    let store = Arc::new(SealedStore::new(backend));
    let root = RootKey::generate().unwrap();
    store.initialize_file(&root).await.unwrap();
    store.unseal_with_key(&root).await.unwrap();
    let clock = Arc::new(ManualClock::new(
        OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap(),
    ));
    let identities = Arc::new(IdentityStore::new(store.clone()));
    let authorizer = Arc::new(Authorizer::new(identities.clone()));
    let kms = Arc::new(Kms::new(store.clone(), authorizer.clone()));
    let ssm = Arc::new(
        Ssm::with_clock(
            store.clone(),
            authorizer,
            kms.clone() as Arc<dyn KeyService>,
            clock.clone(),
        )
        .with_limits(limits),
    );
    Harness {
        ssm,
        kms,
        identities,
        clock,
        store,
        _dir: dir,
    }
}

/// No throughput quota: tests below make many calls in a burst on purpose.
async fn harness() -> Harness {
    harness_with(Limits {
        standard_tps: 0,
        ..Limits::default()
    })
    .await
}

impl Harness {
    async fn call_ctx(
        &self,
        ctx: &RequestContext,
        op: &str,
        body: Value,
    ) -> Result<Value, AwsError> {
        let ctx = RequestContext {
            authorized: Default::default(),
            ..ctx.clone()
        };
        let spec = citadel_model::ssm::SPEC.operation(op).unwrap();
        let input = OperationInput::Json(Bytes::from(body.to_string()));
        match self.ssm.handle(&ctx, spec, input).await? {
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

    async fn call(&self, op: &str, body: Value) -> Result<Value, AwsError> {
        self.call_ctx(&dev_ctx(), op, body).await
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

    async fn put(&self, name: &str, value: &str, ty: &str) -> Value {
        self.ok(
            "PutParameter",
            json!({"Name": name, "Value": value, "Type": ty, "Overwrite": true}),
        )
        .await
    }

    async fn get(&self, name: &str, decrypt: bool) -> Result<Value, AwsError> {
        self.call(
            "GetParameter",
            json!({"Name": name, "WithDecryption": decrypt}),
        )
        .await
    }

    async fn kms_call(
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

    /// Creates IAM user `name` with one inline policy; returns its request context.
    async fn user(&self, name: &str, policy: Value) -> RequestContext {
        let info = self
            .identities
            .create_user(ACCOUNT, name, None, None, &[])
            .await
            .unwrap();
        self.identities
            .put_inline_policy(ACCOUNT, EntityKind::User, name, "p", &policy.to_string())
            .await
            .unwrap();
        user_ctx(name, &info.id)
    }

    async fn describe(&self, filters: Value) -> Vec<String> {
        names(
            &self
                .ok("DescribeParameters", json!({"ParameterFilters": filters}))
                .await,
            "Parameters",
        )
    }

    async fn exists(&self, name: &str) -> bool {
        self.get(name, false).await.is_ok()
    }
}

fn names(v: &Value, list: &str) -> Vec<String> {
    v[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            p.get("Name").map_or_else(
                || p.as_str().unwrap().to_owned(),
                |n| n.as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

// ----- basics ---------------------------------------------------------------------------------

#[tokio::test]
async fn put_get_overwrite_and_versions() {
    let h = harness().await;
    let v = h
        .ok(
            "PutParameter",
            json!({"Name": "/app/dev/db-url", "Value": "pg://a", "Type": "String", "Description": "db"}),
        )
        .await;
    assert_eq!(v, json!({"Version": 1, "Tier": "Standard"}));
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "/app/dev/db-url", "Value": "pg://b", "Type": "String"}),
        )
        .await;
    assert_eq!(e.code, "ParameterAlreadyExists");
    assert_eq!(
        e.message.as_deref(),
        Some(
            "The parameter already exists. To overwrite this request, set the overwrite option in the request to true."
        )
    );
    // Overwrite without Type keeps the type and the description.
    let v = h
        .ok(
            "PutParameter",
            json!({"Name": "/app/dev/db-url", "Value": "pg://b", "Overwrite": true}),
        )
        .await;
    assert_eq!(v["Version"], 2);
    let p = h.get("/app/dev/db-url", false).await.unwrap()["Parameter"].clone();
    assert_eq!(p["Value"], "pg://b");
    assert_eq!(p["Version"], 2);
    assert_eq!(p["Type"], "String");
    assert_eq!(p["DataType"], "text");
    assert_eq!(
        p["ARN"],
        "arn:aws:ssm:us-east-1:111122223333:parameter/app/dev/db-url"
    );
    assert!(p.get("Selector").is_none());
    let p = h.get("/app/dev/db-url:1", false).await.unwrap()["Parameter"].clone();
    assert_eq!(p["Value"], "pg://a");
    assert_eq!(p["Selector"], ":1");
    // By ARN.
    let p = h
        .get(
            "arn:aws:ssm:us-east-1:111122223333:parameter/app/dev/db-url",
            false,
        )
        .await
        .unwrap();
    assert_eq!(p["Parameter"]["Name"], "/app/dev/db-url");
    let e = h.get("/app/dev/db-url:101", false).await.unwrap_err();
    assert_eq!(e.code, "ParameterVersionNotFound");
    assert_eq!(
        e.message.as_deref(),
        Some(
            "Systems Manager could not find version 101 of /app/dev/db-url. Verify the version and try again."
        )
    );
    let e = h.get("/nope", false).await.unwrap_err();
    assert_eq!(e.code, "ParameterNotFound");
    // `a` and `/a` are one parameter.
    h.put("single", "1", "String").await;
    assert_eq!(
        h.get("/single", false).await.unwrap()["Parameter"]["Name"],
        "single"
    );
    // Changing the type is refused.
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "single", "Value": "x", "Type": "SecureString", "Overwrite": true}),
        )
        .await;
    assert_eq!(e.code, "HierarchyTypeMismatchException");
    // Type is required on create.
    let e = h
        .err("PutParameter", json!({"Name": "/new", "Value": "x"}))
        .await;
    assert_eq!(e.code, "ValidationException");
}

#[tokio::test]
async fn get_parameters_reports_invalid_names() {
    let h = harness().await;
    h.put("/a/one", "1", "String").await;
    h.put("/a/two", "x,y", "StringList").await;
    let v = h
        .ok(
            "GetParameters",
            json!({"Names": ["/a/one", "/a/missing", "/a/two:1", "/a/two:7", "bad:na:me"]}),
        )
        .await;
    assert_eq!(names(&v, "Parameters"), vec!["/a/one", "/a/two"]);
    assert_eq!(
        names(&v, "InvalidParameters"),
        vec!["/a/missing", "/a/two:7", "bad:na:me"]
    );
    assert_eq!(v["Parameters"][1]["Value"], "x,y");
    assert_eq!(v["Parameters"][1]["Selector"], ":1");
}

// ----- SecureString ---------------------------------------------------------------------------

#[tokio::test]
async fn secure_strings_are_kms_ciphertexts_until_decrypted() {
    let h = harness().await;
    h.put("/app/dev/db-password", "hunter2", "SecureString")
        .await;
    let hidden = h.get("/app/dev/db-password", false).await.unwrap()["Parameter"].clone();
    let blob = hidden["Value"].as_str().unwrap().to_owned();
    assert_ne!(blob, "hunter2");
    // The value is a real KMS ciphertext under the AWS-managed key alias/aws/ssm (created on
    // first use), whose key policy allows its use through SSM only: KMS refuses it directly.
    let arn = "arn:aws:ssm:us-east-1:111122223333:parameter/app/dev/db-password";
    let e = h
        .kms_call(
            &dev_ctx(),
            "Decrypt",
            json!({"CiphertextBlob": blob, "EncryptionContext": {"PARAMETER_ARN": arn}}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    let alias = h
        .kms_call(&dev_ctx(), "DescribeKey", json!({"KeyId": "alias/aws/ssm"}))
        .await
        .unwrap();
    assert_eq!(alias["KeyMetadata"]["KeyManager"], "AWS");

    let shown = h.get("/app/dev/db-password", true).await.unwrap();
    assert_eq!(shown["Parameter"]["Value"], "hunter2");
    let d = h
        .ok(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Name", "Values": ["/app/dev/db-password"]}]}),
        )
        .await;
    assert_eq!(d["Parameters"][0]["KeyId"], "alias/aws/ssm");
    assert_eq!(d["Parameters"][0]["Type"], "SecureString");

    // A customer key, named by alias; DescribeParameters echoes what the caller gave.
    let key = h
        .kms_call(&dev_ctx(), "CreateKey", json!({}))
        .await
        .unwrap();
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    h.kms_call(
        &dev_ctx(),
        "CreateAlias",
        json!({"AliasName": "alias/app", "TargetKeyId": key_id}),
    )
    .await
    .unwrap();
    h.ok(
        "PutParameter",
        json!({"Name": "/app/dev/api-key", "Value": "k3y", "Type": "SecureString", "KeyId": "alias/app"}),
    )
    .await;
    assert_eq!(
        h.get("/app/dev/api-key", true).await.unwrap()["Parameter"]["Value"],
        "k3y"
    );
    // Under a customer key the ciphertext opens directly too, bound to the parameter's ARN.
    let blob = h.get("/app/dev/api-key", false).await.unwrap()["Parameter"]["Value"].clone();
    let arn = "arn:aws:ssm:us-east-1:111122223333:parameter/app/dev/api-key";
    let out = h
        .kms_call(
            &dev_ctx(),
            "Decrypt",
            json!({"CiphertextBlob": blob, "EncryptionContext": {"PARAMETER_ARN": arn}}),
        )
        .await
        .unwrap();
    assert_eq!(
        B64.decode(out["Plaintext"].as_str().unwrap()).unwrap(),
        b"k3y"
    );
    assert_eq!(out["KeyId"], key["KeyMetadata"]["Arn"]);
    let e = h
        .kms_call(&dev_ctx(), "Decrypt", json!({"CiphertextBlob": blob}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "InvalidCiphertextException");
    let d = h
        .ok(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "KeyId", "Values": ["alias/app"]}]}),
        )
        .await;
    assert_eq!(names(&d, "Parameters"), vec!["/app/dev/api-key"]);
    // A disabled key cannot be read through.
    h.kms_call(&dev_ctx(), "DisableKey", json!({"KeyId": key_id}))
        .await
        .unwrap();
    let e = h.get("/app/dev/api-key", true).await.unwrap_err();
    assert_eq!(e.code, "InvalidKeyId");
    // A key that does not exist is InvalidKeyId, and nothing is written.
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "/app/dev/x", "Value": "v", "Type": "SecureString", "KeyId": "alias/none"}),
        )
        .await;
    assert_eq!(e.code, "InvalidKeyId");
    assert!(!h.exists("/app/dev/x").await);
    // KeyId only with SecureString.
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "/app/dev/y", "Value": "v", "Type": "String", "KeyId": "alias/app"}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
}

#[tokio::test]
async fn large_advanced_secure_strings_use_envelope_encryption() {
    let h = harness().await;
    let big = "s".repeat(8000);
    let v = h
        .ok(
            "PutParameter",
            json!({"Name": "/big", "Value": big, "Type": "SecureString", "Tier": "Advanced"}),
        )
        .await;
    assert_eq!(v["Tier"], "Advanced");
    assert_eq!(
        h.get("/big", true).await.unwrap()["Parameter"]["Value"],
        big
    );
    let hidden = h.get("/big", false).await.unwrap()["Parameter"]["Value"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(!hidden.contains("ssss"));
}

// ----- production mode: IAM decides -----------------------------------------------------------

#[tokio::test]
async fn a_dev_principal_reads_its_hierarchy_and_not_prod() {
    let h = harness().await;
    let root = prod_root();
    for (name, value, ty) in [
        ("/my-department/my-app/dev/db-url", "pg://dev", "String"),
        (
            "/my-department/my-app/dev/db-password",
            "devpw",
            "SecureString",
        ),
        ("/my-department/my-app/dev/deep/flag", "on", "String"),
        ("/my-department/my-app/prod/db-url", "pg://prod", "String"),
        (
            "/my-department/my-app/prod/db-password",
            "prodpw",
            "SecureString",
        ),
    ] {
        h.call_ctx(
            &root,
            "PutParameter",
            json!({"Name": name, "Value": value, "Type": ty}),
        )
        .await
        .unwrap();
    }
    let base = format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/my-department/my-app/dev");
    let dev = h
        .user(
            "dev",
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["ssm:GetParametersByPath", "ssm:GetParameter*"],
                 "Resource": [base.clone(), format!("{base}/*")]},
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}
            ]}),
        )
        .await;
    let v = h
        .call_ctx(
            &dev,
            "GetParametersByPath",
            json!({"Path": "/my-department/my-app/dev", "Recursive": true, "WithDecryption": true}),
        )
        .await
        .unwrap();
    let got: Vec<(String, String)> = v["Parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["Name"].as_str().unwrap().to_owned(),
                p["Value"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        got,
        vec![
            (
                "/my-department/my-app/dev/db-password".to_owned(),
                "devpw".to_owned()
            ),
            (
                "/my-department/my-app/dev/db-url".to_owned(),
                "pg://dev".to_owned()
            ),
            (
                "/my-department/my-app/dev/deep/flag".to_owned(),
                "on".to_owned()
            ),
        ]
    );
    let e = h
        .call_ctx(
            &dev,
            "GetParametersByPath",
            json!({"Path": "/my-department/my-app/prod", "Recursive": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    assert_eq!(
        e.message.as_deref(),
        Some(format!(
            "User: arn:aws:iam::{ACCOUNT}:user/dev is not authorized to perform: ssm:GetParametersByPath on resource: arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/my-department/my-app/prod because no identity-based policy allows the ssm:GetParametersByPath action"
        ).as_str())
    );
    let e = h
        .call_ctx(
            &dev,
            "GetParameter",
            json!({"Name": "/my-department/my-app/prod/db-url"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    // One denied name fails the whole GetParameters call.
    let e = h
        .call_ctx(
            &dev,
            "GetParameters",
            json!({"Names": ["/my-department/my-app/dev/db-url", "/my-department/my-app/prod/db-url"]}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    // The dev user cannot write.
    let e = h
        .call_ctx(
            &dev,
            "PutParameter",
            json!({"Name": "/my-department/my-app/dev/x", "Value": "v", "Type": "String"}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
}

#[tokio::test]
async fn reading_plaintext_needs_kms_decrypt() {
    let h = harness().await;
    let root = prod_root();
    let key = h.kms_call(&root, "CreateKey", json!({})).await.unwrap();
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    h.call_ctx(
        &root,
        "PutParameter",
        json!({"Name": "/s/pw", "Value": "topsecret", "Type": "SecureString", "KeyId": key_id}),
    )
    .await
    .unwrap();
    h.call_ctx(
        &root,
        "PutParameter",
        json!({"Name": "/s/default", "Value": "managed", "Type": "SecureString"}),
    )
    .await
    .unwrap();
    let reader = h
        .user(
            "reader",
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "ssm:GetParameter", "Resource": "*"}
            ]}),
        )
        .await;
    let v = h
        .call_ctx(&reader, "GetParameter", json!({"Name": "/s/pw"}))
        .await
        .unwrap();
    assert_ne!(v["Parameter"]["Value"], "topsecret");
    let e = h
        .call_ctx(
            &reader,
            "GetParameter",
            json!({"Name": "/s/pw", "WithDecryption": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    assert!(e.message.unwrap().contains("kms:Decrypt"));
    // The AWS-managed key's policy lets every principal of the account use it through SSM,
    // as on AWS: ssm:GetParameter alone reads what it protects.
    let v = h
        .call_ctx(
            &reader,
            "GetParameter",
            json!({"Name": "/s/default", "WithDecryption": true}),
        )
        .await
        .unwrap();
    assert_eq!(v["Parameter"]["Value"], "managed");
}

#[tokio::test]
async fn a_key_policy_can_allow_use_through_ssm_only() {
    let h = harness().await;
    let root = prod_root();
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "admin", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
         "Action": ["kms:Create*", "kms:Describe*", "kms:Put*", "kms:Get*", "kms:List*"], "Resource": "*"},
        {"Sid": "ssm-only", "Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:root")},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:GenerateDataKey*"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:ViaService": format!("ssm.{REGION}.amazonaws.com")}}}
    ]});
    let key = h
        .kms_call(&root, "CreateKey", json!({"Policy": policy.to_string()}))
        .await
        .unwrap();
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    h.call_ctx(
        &root,
        "PutParameter",
        json!({"Name": "/k/pw", "Value": "v1", "Type": "SecureString", "KeyId": key_id}),
    )
    .await
    .unwrap();
    let v = h
        .call_ctx(
            &root,
            "GetParameter",
            json!({"Name": "/k/pw", "WithDecryption": true}),
        )
        .await
        .unwrap();
    assert_eq!(v["Parameter"]["Value"], "v1");
    let blob = h
        .call_ctx(&root, "GetParameter", json!({"Name": "/k/pw"}))
        .await
        .unwrap()["Parameter"]["Value"]
        .clone();
    let e = h
        .kms_call(
            &root,
            "Decrypt",
            json!({"CiphertextBlob": blob, "EncryptionContext": {"PARAMETER_ARN": format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/k/pw")}}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
}

// ----- hierarchy reads ------------------------------------------------------------------------

#[tokio::test]
async fn get_parameters_by_path_pages_and_skips_deeper_levels() {
    let h = harness().await;
    for i in 0..23 {
        h.put(&format!("/p/item{i:02}"), &i.to_string(), "String")
            .await;
    }
    for i in 0..30 {
        h.put(&format!("/p/sub/deep{i:02}"), "d", "String").await;
    }
    h.put("/p/zz", "last", "String").await;
    h.put("/pother/x", "x", "String").await;
    // One level: 24 parameters in pages of 10, never the /p/sub/ subtree or /pother.
    let mut all = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let mut body = json!({"Path": "/p", "MaxResults": 10});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let v = h.ok("GetParametersByPath", body).await;
        all.extend(names(&v, "Parameters"));
        pages += 1;
        match v.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(all.len(), 24, "{all:?}");
    assert!(pages >= 3);
    assert!(
        all.iter()
            .all(|n| !n.starts_with("/p/sub/") && !n.starts_with("/pother"))
    );
    assert_eq!(all.last().unwrap(), "/p/zz");
    // Recursive sees everything under /p.
    let mut count = 0;
    let mut token: Option<String> = None;
    loop {
        let mut body = json!({"Path": "/p/", "Recursive": true});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let v = h.ok("GetParametersByPath", body).await;
        count += v["Parameters"].as_array().unwrap().len();
        match v.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(count, 54);
    // Filters: Type; a bad key; a bad token.
    h.put("/p/sub/secret", "s", "SecureString").await;
    let v = h
        .ok(
            "GetParametersByPath",
            json!({"Path": "/p", "Recursive": true, "ParameterFilters": [{"Key": "Type", "Values": ["SecureString"]}]}),
        )
        .await;
    assert_eq!(names(&v, "Parameters"), vec!["/p/sub/secret"]);
    let e = h
        .err(
            "GetParametersByPath",
            json!({"Path": "/p", "ParameterFilters": [{"Key": "Name", "Values": ["x"]}]}),
        )
        .await;
    assert_eq!(e.code, "InvalidFilterKey");
    let e = h
        .err(
            "GetParametersByPath",
            json!({"Path": "/p", "NextToken": "garbage!"}),
        )
        .await;
    assert_eq!(e.code, "InvalidNextToken");
    let e = h
        .err(
            "GetParametersByPath",
            json!({"Path": "/p", "MaxResults": 11}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
}

// ----- labels and history ---------------------------------------------------------------------

#[tokio::test]
async fn labels_move_between_versions_and_select_them() {
    let h = harness().await;
    for v in ["v1", "v2", "v3"] {
        h.put("/l/p", v, "String").await;
    }
    let out = h
        .ok(
            "LabelParameterVersion",
            json!({"Name": "/l/p", "ParameterVersion": 1, "Labels": ["prod", "1bad", "awsx"]}),
        )
        .await;
    assert_eq!(
        out,
        json!({"InvalidLabels": ["1bad", "awsx"], "ParameterVersion": 1})
    );
    assert_eq!(
        h.get("/l/p:prod", false).await.unwrap()["Parameter"]["Value"],
        "v1"
    );
    // Labelling the latest by default moves the label.
    let out = h
        .ok(
            "LabelParameterVersion",
            json!({"Name": "/l/p", "Labels": ["prod"]}),
        )
        .await;
    assert_eq!(out["ParameterVersion"], 3);
    assert_eq!(
        h.get("/l/p:prod", false).await.unwrap()["Parameter"]["Value"],
        "v3"
    );
    let e = h.get("/l/p:nolabel", false).await.unwrap_err();
    assert_eq!(e.code, "ParameterVersionNotFound");
    // Only invalid labels: nothing is written.
    let out = h
        .ok(
            "LabelParameterVersion",
            json!({"Name": "/l/p", "Labels": ["9lives"]}),
        )
        .await;
    assert_eq!(out["InvalidLabels"], json!(["9lives"]));
    // At most 10 labels per version.
    let ten: Vec<String> = (0..9).map(|i| format!("l{i}")).collect();
    h.ok(
        "LabelParameterVersion",
        json!({"Name": "/l/p", "ParameterVersion": 2, "Labels": ten}),
    )
    .await;
    let e = h
        .err(
            "LabelParameterVersion",
            json!({"Name": "/l/p", "ParameterVersion": 2, "Labels": ["x1", "x2"]}),
        )
        .await;
    assert_eq!(e.code, "ParameterVersionLabelLimitExceeded");
    let e = h
        .err(
            "LabelParameterVersion",
            json!({"Name": "/l/p", "ParameterVersion": 9, "Labels": ["x"]}),
        )
        .await;
    assert_eq!(e.code, "ParameterVersionNotFound");
    let e = h
        .err(
            "LabelParameterVersion",
            json!({"Name": "/l/none", "Labels": ["x"]}),
        )
        .await;
    assert_eq!(e.code, "ParameterNotFound");
    let out = h
        .ok(
            "UnlabelParameterVersion",
            json!({"Name": "/l/p", "ParameterVersion": 3, "Labels": ["prod", "l0"]}),
        )
        .await;
    assert_eq!(
        out,
        json!({"RemovedLabels": ["prod"], "InvalidLabels": ["l0"]})
    );
    // History: every version with its labels, paged.
    let v = h
        .ok(
            "GetParameterHistory",
            json!({"Name": "/l/p", "MaxResults": 2}),
        )
        .await;
    let first = v["Parameters"].as_array().unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(first[0]["Version"], 1);
    assert_eq!(first[1]["Labels"].as_array().unwrap().len(), 9);
    let v2 = h
        .ok(
            "GetParameterHistory",
            json!({"Name": "/l/p", "MaxResults": 2, "NextToken": v["NextToken"]}),
        )
        .await;
    assert_eq!(v2["Parameters"][0]["Version"], 3);
    assert_eq!(v2["Parameters"][0]["Value"], "v3");
    assert!(v2.get("NextToken").is_none());
    let e = h
        .err("GetParameterHistory", json!({"Name": "/l/none"}))
        .await;
    assert_eq!(e.code, "ParameterNotFound");
    assert_eq!(e.message.as_deref(), Some("Parameter /l/none not found."));
}

#[tokio::test]
async fn the_oldest_version_goes_unless_labelled() {
    let h = harness().await;
    for i in 1..=100 {
        h.put("/v/p", &format!("v{i}"), "String").await;
    }
    h.ok(
        "LabelParameterVersion",
        json!({"Name": "/v/p", "ParameterVersion": 1, "Labels": ["keep"]}),
    )
    .await;
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "/v/p", "Value": "v101", "Overwrite": true}),
        )
        .await;
    assert_eq!(e.code, "ParameterMaxVersionLimitExceeded");
    assert!(e.message.unwrap().contains("Version 1, the oldest version"));
    assert_eq!(
        h.get("/v/p", false).await.unwrap()["Parameter"]["Version"],
        100
    );
    h.ok(
        "UnlabelParameterVersion",
        json!({"Name": "/v/p", "ParameterVersion": 1, "Labels": ["keep"]}),
    )
    .await;
    let v = h
        .ok(
            "PutParameter",
            json!({"Name": "/v/p", "Value": "v101", "Overwrite": true}),
        )
        .await;
    assert_eq!(v["Version"], 101);
    assert_eq!(
        h.get("/v/p:1", false).await.unwrap_err().code,
        "ParameterVersionNotFound"
    );
    assert_eq!(
        h.get("/v/p:2", false).await.unwrap()["Parameter"]["Value"],
        "v2"
    );
    let hist = h.ok("GetParameterHistory", json!({"Name": "/v/p"})).await;
    assert_eq!(hist["Parameters"][0]["Version"], 2);
    assert!(hist.get("NextToken").is_some());
}

// ----- describe, delete, tags -----------------------------------------------------------------

#[tokio::test]
async fn describe_parameters_filters_and_pages() {
    let h = harness().await;
    h.put("/d/a/one", "1", "String").await;
    h.put("/d/a/two", "2", "StringList").await;
    h.put("/d/a/deeper/three", "3", "String").await;
    h.put("/d/b/four", "4", "SecureString").await;
    h.ok(
        "PutParameter",
        json!({"Name": "/d/tagged", "Value": "t", "Type": "String", "Tags": [{"Key": "team", "Value": "blue"}], "Tier": "Advanced"}),
    )
    .await;
    assert_eq!(
        h.describe(json!([{"Key": "Path", "Values": ["/d/a"]}]))
            .await,
        vec!["/d/a/one", "/d/a/two"]
    );
    assert_eq!(
        h.describe(json!([{"Key": "Path", "Option": "Recursive", "Values": ["/d/a"]}]))
            .await,
        vec!["/d/a/deeper/three", "/d/a/one", "/d/a/two"]
    );
    assert_eq!(
        h.describe(json!([{"Key": "Name", "Option": "BeginsWith", "Values": ["/d/b"]}]))
            .await,
        vec!["/d/b/four"]
    );
    assert_eq!(
        h.describe(json!([{"Key": "Name", "Option": "Contains", "Values": ["deeper"]}]))
            .await,
        vec!["/d/a/deeper/three"]
    );
    assert_eq!(
        h.describe(json!([{"Key": "Type", "Values": ["StringList", "SecureString"]}]))
            .await,
        vec!["/d/a/two", "/d/b/four"]
    );
    assert_eq!(
        h.describe(json!([{"Key": "Tier", "Values": ["Advanced"]}]))
            .await,
        vec!["/d/tagged"]
    );
    assert_eq!(
        h.describe(json!([{"Key": "tag:team", "Values": ["blue"]}]))
            .await,
        vec!["/d/tagged"]
    );
    assert_eq!(
        h.describe(json!([{"Key": "DataType", "Values": ["text"]}]))
            .await
            .len(),
        5
    );
    let legacy = h
        .ok(
            "DescribeParameters",
            json!({"Filters": [{"Key": "Name", "Values": ["/d/a/t"]}]}),
        )
        .await;
    assert_eq!(names(&legacy, "Parameters"), vec!["/d/a/two"]);
    let e = h
        .err(
            "DescribeParameters",
            json!({"Filters": [{"Key": "Name", "Values": ["x"]}], "ParameterFilters": [{"Key": "Name", "Values": ["x"]}]}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    let e = h
        .err(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Label", "Values": ["x"]}]}),
        )
        .await;
    assert_eq!(e.code, "InvalidFilterKey");
    let e = h
        .err(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Path", "Option": "Equals", "Values": ["/d"]}]}),
        )
        .await;
    assert_eq!(e.code, "InvalidFilterOption");
    // Pages of 2.
    let mut seen = Vec::new();
    let mut token = None;
    loop {
        let mut body = json!({"MaxResults": 2});
        if let Some(t) = &token {
            body["NextToken"] = json!(t);
        }
        let v = h.ok("DescribeParameters", body).await;
        let page = names(&v, "Parameters");
        assert!(page.len() <= 2);
        seen.extend(page);
        match v.get("NextToken").and_then(Value::as_str) {
            Some(t) => token = Some(t.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen.len(), 5);
    let p = h
        .ok(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Name", "Values": ["/d/a/one"]}]}),
        )
        .await["Parameters"][0]
        .clone();
    assert_eq!(
        p["LastModifiedUser"],
        format!("arn:aws:iam::{ACCOUNT}:root")
    );
    assert_eq!(p["Version"], 1);
    assert_eq!(p["Tier"], "Standard");
    assert!(p.get("KeyId").is_none());
}

#[tokio::test]
async fn delete_parameters_and_tags() {
    let h = harness().await;
    h.ok(
        "PutParameter",
        json!({"Name": "/t/a", "Value": "1", "Type": "String", "Tags": [{"Key": "env", "Value": "dev"}]}),
    )
    .await;
    h.put("/t/b", "2", "String").await;
    let tags = h
        .ok(
            "ListTagsForResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/t/a"}),
        )
        .await;
    assert_eq!(tags, json!({"TagList": [{"Key": "env", "Value": "dev"}]}));
    h.ok(
        "AddTagsToResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/t/a", "Tags": [{"Key": "env", "Value": "prod"}, {"Key": "team", "Value": "x"}]}),
    )
    .await;
    h.ok(
        "RemoveTagsFromResource",
        json!({"ResourceType": "Parameter", "ResourceId": "/t/a", "TagKeys": ["team"]}),
    )
    .await;
    let tags = h
        .ok(
            "ListTagsForResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/t/a"}),
        )
        .await;
    assert_eq!(tags, json!({"TagList": [{"Key": "env", "Value": "prod"}]}));
    let e = h
        .err(
            "ListTagsForResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/t/none"}),
        )
        .await;
    assert_eq!(e.code, "InvalidResourceId");
    let many: Vec<Value> = (0..50)
        .map(|i| json!({"Key": format!("k{i}"), "Value": "v"}))
        .collect();
    let e = h
        .err(
            "AddTagsToResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/t/a", "Tags": many}),
        )
        .await;
    assert_eq!(e.code, "TooManyTagsError");
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "/t/a", "Value": "1", "Overwrite": true, "Tags": [{"Key": "a", "Value": "b"}]}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");

    let out = h
        .ok(
            "DeleteParameters",
            json!({"Names": ["/t/a", "/t/missing", "/t/b"]}),
        )
        .await;
    assert_eq!(
        out,
        json!({"DeletedParameters": ["/t/a", "/t/b"], "InvalidParameters": ["/t/missing"]})
    );
    assert!(!h.exists("/t/a").await);
    let e = h.err("DeleteParameter", json!({"Name": "/t/a"})).await;
    assert_eq!(e.code, "ParameterNotFound");
    // Re-created from scratch: version 1, no old tags or history.
    h.put("/t/a", "new", "String").await;
    let p = h.get("/t/a", false).await.unwrap();
    assert_eq!(p["Parameter"]["Version"], 1);
    let tags = h
        .ok(
            "ListTagsForResource",
            json!({"ResourceType": "Parameter", "ResourceId": "/t/a"}),
        )
        .await;
    assert_eq!(tags, json!({"TagList": []}));
    h.ok("DeleteParameter", json!({"Name": "/t/a"})).await;
    // Nothing is left in storage for the deleted parameters but the counts.
    let left = h.store.list("ssm/", None, 100).await.unwrap();
    let keys: Vec<&str> = left.iter().map(|(k, _)| k.as_str()).collect();
    assert!(
        keys.iter()
            .all(|k| k.ends_with("/counts") || k.ends_with("/settings")),
        "{keys:?}"
    );
}

// ----- bad input ------------------------------------------------------------------------------

#[tokio::test]
async fn bad_input_gets_aws_errors_and_writes_nothing() {
    let h = harness().await;
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"Name": "/big", "Value": "x".repeat(4097), "Type": "String"}),
            "ValidationException",
        ),
        (
            json!({"Name": (1..=16).map(|i| format!("/l{i}")).collect::<String>(), "Value": "x", "Type": "String"}),
            "HierarchyLevelLimitExceededException",
        ),
        (
            json!({"Name": "awsfoo", "Value": "x", "Type": "String"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/aws/foo/bar", "Value": "x", "Type": "String"}),
            "AccessDeniedException",
        ),
        (
            json!({"Name": "/ssm/foo/bar", "Value": "x", "Type": "String"}),
            "ValidationException",
        ),
        (
            json!({"Name": "no/slash", "Value": "x", "Type": "String"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/pat", "Value": "abc1", "Type": "String", "AllowedPattern": "^[a-z]+$"}),
            "ParameterPatternMismatchException",
        ),
        (
            json!({"Name": "/pat", "Value": "abc", "Type": "String", "AllowedPattern": "[a-"}),
            "InvalidAllowedPatternException",
        ),
        (
            json!({"Name": "/pol", "Value": "x", "Type": "String", "Tier": "Advanced", "Policies": "{not json"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/pol", "Value": "x", "Type": "String", "Tier": "Advanced",
                   "Policies": r#"[{"Type":"Expiration","Version":"1.0","Attributes":{"Timestamp":"2001-01-01T00:00:00.000Z"}}]"#}),
            "InvalidPolicyAttributeException",
        ),
        (
            json!({"Name": "/pol", "Value": "x", "Type": "String", "Tier": "Standard",
                   "Policies": r#"[{"Type":"NoChangeNotification","Version":"1.0","Attributes":{"After":"3","Unit":"Days"}}]"#}),
            "ValidationException",
        ),
        (
            json!({"Name": "/dt", "Value": "x", "Type": "String", "DataType": "Text"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/ami", "Value": "not-an-ami", "Type": "String", "DataType": "aws:ec2:image"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/empty", "Value": "", "Type": "String"}),
            "ValidationException",
        ),
        (
            json!({"Name": "/ty", "Value": "x", "Type": "Number"}),
            "ValidationException",
        ),
    ];
    for (body, code) in cases {
        let e = h.err("PutParameter", body.clone()).await;
        assert_eq!(e.code, code, "{body}: {e}");
    }
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "/big", "Value": "x".repeat(4097), "Type": "String"}),
        )
        .await;
    assert!(e.message.unwrap().starts_with(
        "Standard tier parameters support a maximum parameter value of 4096 characters."
    ));
    let left = h.store.list("ssm/", None, 100).await.unwrap();
    assert!(
        left.iter()
            .all(|(k, _)| !k.contains("/p/") && !k.contains("/v/")),
        "{:?}",
        left.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    // AllowedPattern holds on later writes too.
    h.ok(
        "PutParameter",
        json!({"Name": "/pat", "Value": "abc", "Type": "String", "AllowedPattern": "^[a-z]+$"}),
    )
    .await;
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "/pat", "Value": "ABC", "Overwrite": true}),
        )
        .await;
    assert_eq!(e.code, "ParameterPatternMismatchException");
    assert_eq!(
        e.message.as_deref(),
        Some("Parameter value, cannot be validated against allowedPattern: ^[a-z]+$")
    );
    assert!(
        h.ok(
            "PutParameter",
            json!({"Name": "/ami", "Value": "ami-0123456789abcdef0", "Type": "String", "DataType": "aws:ec2:image"}),
        )
        .await["Version"]
            == 1
    );
}

// ----- tiers and quotas -----------------------------------------------------------------------

#[tokio::test]
async fn tiers_upgrade_never_downgrade_and_quotas_hold() {
    let h = harness_with(Limits {
        standard_parameters: 2,
        advanced_parameters: 1,
        standard_tps: 0,
        high_throughput_tps: 0,
    })
    .await;
    h.put("/q/1", "x", "String").await;
    h.put("/q/2", "x", "String").await;
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "/q/3", "Value": "x", "Type": "String"}),
        )
        .await;
    assert_eq!(e.code, "ParameterLimitExceeded");
    // Intelligent-Tiering picks Advanced when Standard is full.
    let v = h
        .ok(
            "PutParameter",
            json!({"Name": "/q/3", "Value": "x", "Type": "String", "Tier": "Intelligent-Tiering"}),
        )
        .await;
    assert_eq!(v["Tier"], "Advanced");
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "/q/4", "Value": "x", "Type": "String", "Tier": "Advanced"}),
        )
        .await;
    assert_eq!(e.code, "ParameterLimitExceeded");
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "/q/3", "Value": "y", "Overwrite": true, "Tier": "Standard"}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    assert!(e.message.unwrap().contains("can't downgrade"));
    // Overwriting without a tier keeps Advanced.
    let v = h
        .ok(
            "PutParameter",
            json!({"Name": "/q/3", "Value": "y", "Overwrite": true}),
        )
        .await;
    assert_eq!(v["Tier"], "Advanced");
    // Deleting frees a place.
    h.ok("DeleteParameter", json!({"Name": "/q/1"})).await;
    h.put("/q/5", "x", "String").await;
    // The default tier setting applies to writes without a Tier.
    h.ok("DeleteParameter", json!({"Name": "/q/3"})).await;
    h.ok(
        "UpdateServiceSetting",
        json!({"SettingId": "/ssm/parameter-store/default-parameter-tier", "SettingValue": "Advanced"}),
    )
    .await;
    let v = h
        .ok(
            "PutParameter",
            json!({"Name": "/q/6", "Value": "x", "Type": "String"}),
        )
        .await;
    assert_eq!(v["Tier"], "Advanced");
}

// ----- policies and the scheduler -------------------------------------------------------------

#[tokio::test]
async fn expiration_deletes_exactly_once() {
    let h = harness().await;
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let at = now + Duration::hours(2);
    let ts = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let policies = json!([
        {"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": ts}},
        {"Type": "ExpirationNotification", "Version": "1.0", "Attributes": {"Before": "1", "Unit": "Hours"}}
    ])
    .to_string();
    h.ok(
        "PutParameter",
        json!({"Name": "/e/x", "Value": "v", "Type": "String", "Tier": "Advanced", "Policies": policies}),
    )
    .await;
    // A second parameter whose expiration is replaced by an update.
    h.ok(
        "PutParameter",
        json!({"Name": "/e/y", "Value": "v", "Type": "String", "Tier": "Advanced", "Policies": policies}),
    )
    .await;
    h.ok(
        "PutParameter",
        json!({"Name": "/e/y", "Value": "v2", "Overwrite": true, "Policies": "[]"}),
    )
    .await;
    // Policies persist across a value update that does not mention them.
    h.ok(
        "PutParameter",
        json!({"Name": "/e/x", "Value": "v2", "Overwrite": true}),
    )
    .await;
    let d = h
        .ok(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Name", "Values": ["/e/x"]}]}),
        )
        .await;
    let pol = d["Parameters"][0]["Policies"].as_array().unwrap().clone();
    assert_eq!(pol.len(), 2);
    assert_eq!(pol[0]["PolicyType"], "Expiration");
    assert_eq!(pol[0]["PolicyStatus"], "Pending");
    let text: Value = serde_json::from_str(pol[0]["PolicyText"].as_str().unwrap()).unwrap();
    assert_eq!(text["Attributes"]["Timestamp"], ts);

    let ms = |t: OffsetDateTime| crate::clock::to_millis(t);
    assert_eq!(
        h.ssm.run_due(ms(now + Duration::hours(1))).await.unwrap(),
        0
    );
    assert!(h.exists("/e/x").await);
    h.clock.set(at + Duration::seconds(1));
    assert_eq!(
        h.ssm.run_due(ms(at + Duration::seconds(1))).await.unwrap(),
        1
    );
    assert!(!h.exists("/e/x").await);
    assert!(h.exists("/e/y").await);
    // Again: nothing left to do.
    assert_eq!(h.ssm.run_due(ms(at + Duration::days(1))).await.unwrap(), 0);
    // Through the ScheduledWork trait as the scheduler calls it.
    citadel_api::ScheduledWork::run_due(h.ssm.as_ref(), at.unix_timestamp() + 10)
        .await
        .unwrap();
    let due = h
        .store
        .list(crate::record::DUE_PREFIX, None, 10)
        .await
        .unwrap();
    assert!(due.is_empty());
}

// ----- throughput -----------------------------------------------------------------------------

#[tokio::test]
async fn throughput_quota_and_service_settings() {
    let h = harness_with(Limits {
        standard_tps: 5,
        high_throughput_tps: 1000,
        ..Limits::default()
    })
    .await;
    h.put("/tp", "x", "String").await;
    let mut throttled = None;
    for _ in 0..20 {
        if let Err(e) = h.get("/tp", false).await {
            throttled = Some(e);
            break;
        }
    }
    let e = throttled.expect("a burst beyond 5 TPS is throttled");
    assert_eq!(e.code, "ThrottlingException");
    assert_eq!(e.message.as_deref(), Some("Rate exceeded"));
    let s = h
        .ok(
            "GetServiceSetting",
            json!({"SettingId": "/ssm/parameter-store/high-throughput-enabled"}),
        )
        .await;
    assert_eq!(s["ServiceSetting"]["SettingValue"], "false");
    assert_eq!(s["ServiceSetting"]["Status"], "Default");
    assert_eq!(
        s["ServiceSetting"]["ARN"],
        "arn:aws:ssm:us-east-1:111122223333:servicesetting/ssm/parameter-store/high-throughput-enabled"
    );
    h.ok(
        "UpdateServiceSetting",
        json!({"SettingId": "/ssm/parameter-store/high-throughput-enabled", "SettingValue": "true"}),
    )
    .await;
    for _ in 0..50 {
        h.get("/tp", false).await.unwrap();
    }
    let s = h
        .ok(
            "GetServiceSetting",
            json!({"SettingId": "arn:aws:ssm:us-east-1:111122223333:servicesetting/ssm/parameter-store/high-throughput-enabled"}),
        )
        .await;
    assert_eq!(s["ServiceSetting"]["SettingValue"], "true");
    assert_eq!(s["ServiceSetting"]["Status"], "Customized");
    let e = h
        .err(
            "UpdateServiceSetting",
            json!({"SettingId": "/ssm/parameter-store/high-throughput-enabled", "SettingValue": "maybe"}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");
    let e = h
        .err("GetServiceSetting", json!({"SettingId": "/ssm/no/such"}))
        .await;
    assert_eq!(e.code, "ServiceSettingNotFound");
    let r = h
        .ok(
            "ResetServiceSetting",
            json!({"SettingId": "/ssm/parameter-store/high-throughput-enabled"}),
        )
        .await;
    assert_eq!(r["ServiceSetting"]["SettingValue"], "false");
}

// ----- /aws/reference/secretsmanager/ ---------------------------------------------------------

/// Connects a real Secrets Manager (same store, KMS and IAM) to `h.ssm`.
fn connect_secrets(h: &Harness) -> Arc<citadel_svc_secrets::SecretsManager> {
    let secrets = Arc::new(citadel_svc_secrets::SecretsManager::new(
        h.store.clone(),
        Arc::new(Authorizer::new(h.identities.clone())),
        h.kms.clone() as Arc<dyn KeyService>,
    ));
    h.ssm
        .set_secrets(secrets.clone() as Arc<dyn citadel_api::SecretReader>);
    secrets
}

async fn sm_call(
    secrets: &citadel_svc_secrets::SecretsManager,
    ctx: &RequestContext,
    op: &str,
    body: Value,
) -> Value {
    let spec = citadel_model::secretsmanager::SPEC.operation(op).unwrap();
    let input = OperationInput::Json(Bytes::from(body.to_string()));
    match secrets.handle(ctx, spec, input).await {
        Ok(OperationOutput::Json(v)) => v,
        other => panic!("{op}: {other:?}"),
    }
}

#[tokio::test]
async fn references_read_secrets_through_get_parameter() {
    let h = harness().await;
    let e = h
        .get("/aws/reference/secretsmanager/db", true)
        .await
        .unwrap_err();
    assert_eq!(e.code, "UnsupportedOperationException");
    let sm = connect_secrets(&h);
    let created = sm_call(
        &sm,
        &dev_ctx(),
        "CreateSecret",
        json!({"Name": "app/db", "SecretString": "first", "ClientRequestToken": "11111111-1111-1111-1111-111111111111"}),
    )
    .await;
    let first_version = created["VersionId"].as_str().unwrap().to_owned();
    let arn = created["ARN"].as_str().unwrap().to_owned();
    sm_call(
        &sm,
        &dev_ctx(),
        "PutSecretValue",
        json!({"SecretId": "app/db", "SecretString": "{\"password\":\"second\"}", "ClientRequestToken": "22222222-2222-2222-2222-222222222222"}),
    )
    .await;

    let p = h
        .get("/aws/reference/secretsmanager/app/db", true)
        .await
        .unwrap()["Parameter"]
        .clone();
    assert_eq!(p["Name"], "/aws/reference/secretsmanager/app/db");
    assert_eq!(p["Type"], "SecureString");
    assert_eq!(p["Value"], "{\"password\":\"second\"}");
    assert_eq!(p["Version"], 0);
    assert_eq!(p["ARN"], arn.as_str());
    assert!(p.get("DataType").is_none() && p.get("Selector").is_none());
    assert!(p["LastModifiedDate"].is_number());
    let source: Value = serde_json::from_str(p["SourceResult"].as_str().unwrap()).unwrap();
    assert_eq!(source["ARN"], arn.as_str());
    assert_eq!(source["name"], "app/db");
    assert_eq!(source["secretString"], "{\"password\":\"second\"}");
    assert_eq!(source["versionStages"], json!(["AWSCURRENT"]));
    assert!(source["createdDate"].as_str().unwrap().ends_with('M'));

    // By staging label and by VersionId.
    let p = h
        .get("/aws/reference/secretsmanager/app/db:AWSPREVIOUS", true)
        .await
        .unwrap()["Parameter"]
        .clone();
    assert_eq!(p["Value"], "first");
    assert_eq!(p["Name"], "/aws/reference/secretsmanager/app/db");
    assert_eq!(p["Selector"], ":AWSPREVIOUS");
    let by_id = format!("/aws/reference/secretsmanager/app/db:{first_version}");
    assert_eq!(
        h.get(&by_id, true).await.unwrap()["Parameter"]["Value"],
        "first"
    );
    // By the secret's ARN.
    let by_arn = format!("/aws/reference/secretsmanager/{arn}");
    assert_eq!(
        h.get(&by_arn, true).await.unwrap()["Parameter"]["Value"],
        "{\"password\":\"second\"}"
    );

    // WithDecryption is required.
    let e = h
        .get("/aws/reference/secretsmanager/app/db", false)
        .await
        .unwrap_err();
    assert_eq!(e.code, "ValidationException");
    // A missing secret, label or version.
    for missing in [
        "nope",
        "app/db:NOLABEL",
        "app/db:00000000-0000-0000-0000-000000000000",
    ] {
        let e = h
            .get(&format!("/aws/reference/secretsmanager/{missing}"), true)
            .await
            .unwrap_err();
        assert_eq!(e.code, "ParameterNotFound", "{missing}");
    }

    // GetParameters: references, missing ones and parameters together.
    h.put("/plain", "v", "String").await;
    let r = h
        .ok(
            "GetParameters",
            json!({"Names": ["/aws/reference/secretsmanager/app/db", "/aws/reference/secretsmanager/gone", "/plain"], "WithDecryption": true}),
        )
        .await;
    assert_eq!(
        names(&r, "Parameters"),
        ["/aws/reference/secretsmanager/app/db", "/plain"]
    );
    assert_eq!(
        r["InvalidParameters"],
        json!(["/aws/reference/secretsmanager/gone"])
    );
    let e = h
        .err(
            "GetParameters",
            json!({"Names": ["/aws/reference/secretsmanager/app/db", "/plain"]}),
        )
        .await;
    assert_eq!(e.code, "ValidationException");

    // Only the two reads.
    for path in ["/aws/reference/secretsmanager", "/aws/reference"] {
        let e = h
            .err(
                "GetParametersByPath",
                json!({"Path": path, "WithDecryption": true}),
            )
            .await;
        assert_eq!(e.code, "ValidationException", "{path}");
    }
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "/aws/reference/secretsmanager/x", "Value": "v", "Type": "String"}),
        )
        .await;
    assert_eq!(e.code, "AccessDeniedException");
}

#[tokio::test]
async fn references_need_get_secret_value_and_kms() {
    let h = harness().await;
    let sm = connect_secrets(&h);
    sm_call(
        &sm,
        &prod_root(),
        "CreateSecret",
        json!({"Name": "db", "SecretString": "s3cret", "ClientRequestToken": "33333333-3333-3333-3333-333333333333"}),
    )
    .await;
    let ssm_only = h
        .user(
            "ssm-only",
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "ssm:GetParameter*", "Resource": "*"},
                {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}),
        )
        .await;
    let e = h
        .call_ctx(
            &ssm_only,
            "GetParameter",
            json!({"Name": "/aws/reference/secretsmanager/db", "WithDecryption": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    let message = e.message.unwrap();
    assert!(
        message.contains("secretsmanager:GetSecretValue"),
        "{message}"
    );
    assert!(!message.contains("s3cret"));
    // A missing secret is no different for a caller who may not read it.
    let e = h
        .call_ctx(
            &ssm_only,
            "GetParameter",
            json!({"Name": "/aws/reference/secretsmanager/nope", "WithDecryption": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    // GetParameters refuses the whole request, as for a parameter it may not read.
    let e = h
        .call_ctx(
            &ssm_only,
            "GetParameters",
            json!({"Names": ["/aws/reference/secretsmanager/db"], "WithDecryption": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");

    let both = h
        .user(
            "both",
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": ["ssm:GetParameter", "secretsmanager:GetSecretValue"], "Resource": "*"}]}),
        )
        .await;
    // The secret's key is AWS-managed: kms:Decrypt through Secrets Manager comes with it.
    let p = h
        .call_ctx(
            &both,
            "GetParameter",
            json!({"Name": "/aws/reference/secretsmanager/db", "WithDecryption": true}),
        )
        .await
        .unwrap();
    assert_eq!(p["Parameter"]["Value"], "s3cret");

    let secrets_only = h
        .user(
            "secrets-only",
            json!({"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}),
        )
        .await;
    let e = h
        .call_ctx(
            &secrets_only,
            "GetParameter",
            json!({"Name": "/aws/reference/secretsmanager/db", "WithDecryption": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    assert!(e.message.unwrap().contains("ssm:GetParameter"));

    // A resource policy denying the caller is honoured as by GetSecretValue.
    sm_call(
        &sm,
        &prod_root(),
        "PutResourcePolicy",
        json!({"SecretId": "db", "ResourcePolicy": json!({"Version": "2012-10-17", "Statement": [
            {"Effect": "Deny", "Principal": {"AWS": format!("arn:aws:iam::{ACCOUNT}:user/both")},
             "Action": "secretsmanager:GetSecretValue", "Resource": "*"}]}).to_string()}),
    )
    .await;
    let e = h
        .call_ctx(
            &both,
            "GetParameter",
            json!({"Name": "/aws/reference/secretsmanager/db", "WithDecryption": true}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
}

// ----- operator quotas ------------------------------------------------------------------------

#[test]
fn quotas_from_config() {
    use crate::SsmConfig;
    assert_eq!(
        Limits::from_config(&SsmConfig::default()).unwrap(),
        Limits::default()
    );
    let c = SsmConfig {
        standard_parameters: Some(5),
        standard_tps: Some(0),
        high_throughput_tps: Some(0),
        ..SsmConfig::default()
    };
    let l = Limits::from_config(&c).unwrap();
    assert_eq!(
        (l.standard_parameters, l.standard_tps, l.high_throughput_tps),
        (5, 0, 0)
    );
    assert_eq!(l.advanced_parameters, Limits::default().advanced_parameters);
    for bad in [
        SsmConfig {
            standard_parameters: Some(0),
            ..SsmConfig::default()
        },
        SsmConfig {
            advanced_parameters: Some(0),
            ..SsmConfig::default()
        },
        SsmConfig {
            standard_tps: Some(50),
            high_throughput_tps: Some(49),
            ..SsmConfig::default()
        },
        // No quota for standard throughput but one for high throughput.
        SsmConfig {
            standard_tps: Some(0),
            ..SsmConfig::default()
        },
    ] {
        assert!(Limits::from_config(&bad).is_err(), "{bad:?}");
    }
    let parsed: SsmConfig =
        serde_json::from_value(json!({"standard_tps": 7, "high_throughput_tps": 70})).unwrap();
    assert_eq!(parsed.standard_tps, Some(7));
    assert!(serde_json::from_value::<SsmConfig>(json!({"standard_tps": -1})).is_err());
}

#[tokio::test]
async fn configured_quotas_apply() {
    let h = harness_with(Limits::default()).await;
    let config = crate::SsmConfig {
        standard_parameters: Some(1),
        standard_tps: Some(2),
        ..crate::SsmConfig::default()
    };
    h.ssm.configure(&config).unwrap();
    assert_eq!(h.ssm.limits().standard_tps, 2);
    // A bucket of 2: the write and one read, then refused.
    h.put("/one", "1", "String").await;
    h.ok("GetParameter", json!({"Name": "/one"})).await;
    let e = h.err("GetParameter", json!({"Name": "/one"})).await;
    assert_eq!(e.code, "ThrottlingException");
    // An invalid configuration changes nothing.
    let bad = crate::SsmConfig {
        standard_parameters: Some(0),
        ..crate::SsmConfig::default()
    };
    assert!(h.ssm.configure(&bad).is_err());
    assert_eq!(h.ssm.limits().standard_parameters, 1);
    h.ssm.set_limits(Limits {
        standard_tps: 0,
        ..h.ssm.limits()
    });
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "/two", "Value": "2", "Type": "String"}),
        )
        .await;
    assert_eq!(e.code, "ParameterLimitExceeded", "{e}");
}

// ----- events ---------------------------------------------------------------------------------

/// Writes emit "Parameter Store Change" and an expiration "Parameter Store Policy Action" (a
/// collecting publisher stands in for the bus, which citadel-svc-events tests itself).
#[tokio::test]
async fn writes_and_expirations_emit_parameter_store_events() {
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
    h.ssm.set_events(events.clone());
    h.ok(
        "PutParameter",
        json!({"Name": "/ev/a", "Value": "1", "Type": "SecureString", "Description": "d"}),
    )
    .await;
    h.ok(
        "PutParameter",
        json!({"Name": "/ev/a", "Value": "2", "Overwrite": true}),
    )
    .await;
    h.ok(
        "LabelParameterVersion",
        json!({"Name": "/ev/a", "ParameterVersion": 1, "Labels": ["old"]}),
    )
    .await;
    // A failed write emits nothing.
    h.call(
        "PutParameter",
        json!({"Name": "/ev/a", "Value": "3", "Type": "SecureString"}),
    )
    .await
    .unwrap_err();
    h.ok(
        "PutParameter",
        json!({"Name": "/ev/b", "Value": "x", "Type": "String"}),
    )
    .await;
    h.ok(
        "DeleteParameters",
        json!({"Names": ["/ev/a", "/ev/b", "/ev/none"]}),
    )
    .await;
    let now = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let at = now + Duration::hours(2);
    let ts = at
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let policies =
        json!([{"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": ts}}])
            .to_string();
    h.ok(
        "PutParameter",
        json!({"Name": "/ev/c", "Value": "v", "Type": "String", "Tier": "Advanced", "Policies": policies}),
    )
    .await;
    h.clock.set(at + Duration::seconds(1));
    h.ssm
        .run_due(crate::clock::to_millis(at + Duration::seconds(1)))
        .await
        .unwrap();

    let seen = events.0.lock().unwrap().clone();
    let summary: Vec<(String, String, String)> = seen
        .iter()
        .map(|e| {
            let d = &e.detail;
            let name = d["name"].as_str().or(d["parameter-name"].as_str()).unwrap();
            let what = d["operation"]
                .as_str()
                .or(d["policy-type"].as_str())
                .unwrap();
            (e.detail_type.clone(), name.to_owned(), what.to_owned())
        })
        .collect();
    let change = |n: &str, op: &str| {
        (
            "Parameter Store Change".to_owned(),
            n.to_owned(),
            op.to_owned(),
        )
    };
    assert_eq!(
        summary,
        vec![
            change("/ev/a", "Create"),
            change("/ev/a", "Update"),
            change("/ev/a", "LabelParameterVersion"),
            change("/ev/b", "Create"),
            change("/ev/a", "Delete"),
            change("/ev/b", "Delete"),
            change("/ev/c", "Create"),
            (
                "Parameter Store Policy Action".to_owned(),
                "/ev/c".to_owned(),
                "Expiration".to_owned()
            ),
        ]
    );
    assert_eq!(seen[0].source, "aws.ssm");
    assert_eq!(seen[0].detail["type"], "SecureString");
    assert_eq!(seen[0].detail["description"], "d");
    assert_eq!(
        seen[0].resources,
        vec![format!("arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/ev/a")]
    );
}

// ----- notification policies ------------------------------------------------------------------

#[derive(Default)]
struct Collect(std::sync::Mutex<Vec<citadel_events::Event>>);

#[async_trait::async_trait]
impl citadel_events::Publisher for Collect {
    async fn publish(&self, event: &citadel_events::Event) -> Result<(), String> {
        self.0.lock().unwrap().push(event.clone());
        Ok(())
    }
}

impl Collect {
    /// The policy types of the "Parameter Store Policy Action" events seen since the last call.
    fn take_policy_actions(&self) -> Vec<(String, String)> {
        std::mem::take(&mut *self.0.lock().unwrap())
            .into_iter()
            .filter(|e| e.detail_type == "Parameter Store Policy Action")
            .map(|e| {
                (
                    e.detail["parameter-name"].as_str().unwrap().to_owned(),
                    e.detail["policy-type"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

async fn due_keys(h: &Harness) -> Vec<String> {
    h.store
        .list(crate::record::DUE_PREFIX, None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|(k, _)| k)
        .collect()
}

async fn statuses(h: &Harness, name: &str) -> Vec<(String, String)> {
    let d = h
        .ok(
            "DescribeParameters",
            json!({"ParameterFilters": [{"Key": "Name", "Values": [name]}]}),
        )
        .await;
    d["Parameters"][0]["Policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["PolicyType"].as_str().unwrap().to_owned(),
                p["PolicyStatus"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn notification_policies_fire_once_per_period_across_restarts() {
    let h = harness().await;
    let events = Arc::new(Collect::default());
    h.ssm.set_events(events.clone());
    let start = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let ms = |t: OffsetDateTime| crate::clock::to_millis(t);
    let expires = start + Duration::days(10);
    let ts = expires
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let policies = json!([
        {"Type": "Expiration", "Version": "1.0", "Attributes": {"Timestamp": ts}},
        {"Type": "ExpirationNotification", "Version": "1.0", "Attributes": {"Before": "2", "Unit": "Days"}},
        {"Type": "NoChangeNotification", "Version": "1.0", "Attributes": {"After": "3", "Unit": "Days"}}
    ])
    .to_string();
    h.ok(
        "PutParameter",
        json!({"Name": "/n/a", "Value": "v", "Type": "SecureString", "Tier": "Advanced", "Policies": policies}),
    )
    .await;
    events.take_policy_actions();
    // The expiration and both notifications each hold one due entry.
    assert_eq!(due_keys(&h).await.len(), 3);

    assert_eq!(
        h.ssm.run_due(ms(start + Duration::days(1))).await.unwrap(),
        0
    );
    assert!(events.take_policy_actions().is_empty());

    // Three days unchanged: one NoChangeNotification, with AWS's detail members.
    let t = start + Duration::days(3) + Duration::seconds(1);
    h.ssm.run_due(ms(t)).await.unwrap();
    let seen = events.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let d = &seen[0].detail;
    assert_eq!(seen[0].detail_type, "Parameter Store Policy Action");
    assert_eq!(seen[0].source, "aws.ssm");
    assert_eq!(d["parameter-name"], "/n/a");
    assert_eq!(d["parameter-type"], "SecureString");
    assert_eq!(d["policy-type"], "NoChangeNotification");
    assert_eq!(d["action-status"], "Success");
    assert!(
        d["action-reason"]
            .as_str()
            .unwrap()
            .starts_with("The parameter has not been changed for 3 days.")
    );
    let content: Value = serde_json::from_str(d["policy-content"].as_str().unwrap()).unwrap();
    assert_eq!(content["Attributes"]["After"], "3");
    events.take_policy_actions();
    // Again, and from a second instance over the same store (a restart): nothing twice.
    h.ssm.run_due(ms(t)).await.unwrap();
    let restarted = Ssm::with_clock(
        h.store.clone(),
        Arc::new(Authorizer::new(h.identities.clone())),
        h.kms.clone() as Arc<dyn KeyService>,
        h.clock.clone(),
    );
    let again = Arc::new(Collect::default());
    restarted.set_events(again.clone());
    restarted.run_due(ms(t)).await.unwrap();
    assert!(events.take_policy_actions().is_empty());
    assert!(again.take_policy_actions().is_empty());
    assert_eq!(
        statuses(&h, "/n/a").await,
        vec![
            ("Expiration".to_owned(), "Pending".to_owned()),
            ("ExpirationNotification".to_owned(), "Pending".to_owned()),
            ("NoChangeNotification".to_owned(), "Finished".to_owned()),
        ]
    );

    // A change at day 4 starts a new unchanged period: due again at day 7.
    h.clock.set(start + Duration::days(4));
    h.ok(
        "PutParameter",
        json!({"Name": "/n/a", "Value": "v2", "Overwrite": true}),
    )
    .await;
    events.take_policy_actions();
    assert_eq!(statuses(&h, "/n/a").await[2].1, "Pending");
    h.ssm.run_due(ms(start + Duration::days(6))).await.unwrap();
    assert!(events.take_policy_actions().is_empty());
    // Day 8: the new NoChange period (day 7) and the expiration notice (10 − 2 days).
    h.ssm
        .run_due(ms(start + Duration::days(8) + Duration::seconds(1)))
        .await
        .unwrap();
    assert_eq!(
        events.take_policy_actions(),
        vec![
            ("/n/a".to_owned(), "NoChangeNotification".to_owned()),
            ("/n/a".to_owned(), "ExpirationNotification".to_owned()),
        ]
    );
    // Only the expiration is left to act; it deletes the parameter and its last entry.
    assert_eq!(due_keys(&h).await.len(), 1);
    h.clock.set(expires + Duration::seconds(1));
    assert_eq!(
        h.ssm
            .run_due(ms(expires + Duration::seconds(1)))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        events.take_policy_actions(),
        vec![("/n/a".to_owned(), "Expiration".to_owned())]
    );
    assert!(due_keys(&h).await.is_empty());
}

#[tokio::test]
async fn writes_move_and_delete_notification_entries() {
    let h = harness().await;
    let events = Arc::new(Collect::default());
    h.ssm.set_events(events.clone());
    let start = OffsetDateTime::from_unix_timestamp(1_700_000_000).unwrap();
    let ms = |t: OffsetDateTime| crate::clock::to_millis(t);
    let no_change = |n: &str| {
        json!([{"Type": "NoChangeNotification", "Version": "1.0", "Attributes": {"After": n, "Unit": "Hours"}}])
            .to_string()
    };
    h.ok(
        "PutParameter",
        json!({"Name": "/m/a", "Value": "v", "Type": "String", "Tier": "Advanced", "Policies": no_change("2")}),
    )
    .await;
    // New policies replace the entry (2 hours → 5 hours).
    h.ok(
        "PutParameter",
        json!({"Name": "/m/a", "Value": "v", "Overwrite": true, "Policies": no_change("5")}),
    )
    .await;
    let keys = due_keys(&h).await;
    assert_eq!(keys.len(), 1);
    assert!(keys[0].ends_with("/m/a#NoChangeNotification"), "{keys:?}");
    h.ssm.run_due(ms(start + Duration::hours(3))).await.unwrap();
    assert!(events.take_policy_actions().is_empty());
    // An ExpirationNotification without an Expiration has nothing to count back from.
    h.ok(
        "PutParameter",
        json!({"Name": "/m/b", "Value": "v", "Type": "String", "Tier": "Advanced",
               "Policies": json!([{"Type": "ExpirationNotification", "Version": "1.0", "Attributes": {"Before": "1", "Unit": "Hours"}}]).to_string()}),
    )
    .await;
    assert_eq!(due_keys(&h).await.len(), 1);
    // An empty policy list removes the entry; deleting a parameter removes its entries.
    h.ok(
        "PutParameter",
        json!({"Name": "/m/a", "Value": "v", "Overwrite": true, "Policies": "[]"}),
    )
    .await;
    assert!(due_keys(&h).await.is_empty());
    h.ok(
        "PutParameter",
        json!({"Name": "/m/c", "Value": "v", "Type": "String", "Tier": "Advanced", "Policies": no_change("1")}),
    )
    .await;
    assert_eq!(due_keys(&h).await.len(), 1);
    h.ok("DeleteParameter", json!({"Name": "/m/c"})).await;
    assert!(due_keys(&h).await.is_empty());
    h.ssm.run_due(ms(start + Duration::days(30))).await.unwrap();
    assert!(events.take_policy_actions().is_empty());
}

// ----- resource policies (sharing) ------------------------------------------------------------

const OTHER: &str = "444455556666";

fn other_ctx(dev: bool) -> RequestContext {
    RequestContext {
        principal: Principal::root(OTHER, "AKIDOTHER"),
        dev_mode: dev,
        ..dev_ctx()
    }
}

fn share_doc(arn: &str, actions: Value) -> String {
    json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{OTHER}:root")},
        "Action": actions, "Resource": arn}]})
    .to_string()
}

fn param_arn(name: &str) -> String {
    format!(
        "arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{}",
        name.trim_start_matches('/')
    )
}

#[tokio::test]
async fn resource_policies_share_advanced_parameters_with_other_accounts() {
    let h = harness().await;
    h.put("/sh/std", "v", "String").await;
    for name in ["/sh/b", "/sh/c"] {
        h.ok(
            "PutParameter",
            json!({"Name": name, "Value": "shared-value", "Type": "String", "Tier": "Advanced"}),
        )
        .await;
    }
    let b = param_arn("/sh/b");
    let doc = share_doc(&b, json!(["ssm:GetParameter", "ssm:GetParameters"]));
    // Standard parameters cannot be shared; unknown parameters are not found.
    let e = h
        .err(
            "PutResourcePolicy",
            json!({"ResourceArn": param_arn("/sh/std"), "Policy": share_doc(&param_arn("/sh/std"), json!("ssm:GetParameter"))}),
        )
        .await;
    assert_eq!(e.code, "ResourcePolicyInvalidParameterException");
    let e = h
        .err(
            "PutResourcePolicy",
            json!({"ResourceArn": param_arn("/sh/none"), "Policy": share_doc(&param_arn("/sh/none"), json!("ssm:GetParameter"))}),
        )
        .await;
    assert_eq!(e.code, "ResourceNotFoundException");
    let e = h
        .err(
            "PutResourcePolicy",
            json!({"ResourceArn": b, "Policy": share_doc(&b, json!("ssm:PutParameter"))}),
        )
        .await;
    assert_eq!(e.code, "MalformedResourcePolicyDocumentException");

    // Before sharing, the other account is refused.
    let other = other_ctx(true);
    let e = h
        .call_ctx(&other, "GetParameter", json!({"Name": b}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");

    let put = h
        .ok(
            "PutResourcePolicy",
            json!({"ResourceArn": b, "Policy": doc}),
        )
        .await;
    let id = put["PolicyId"].as_str().unwrap().to_owned();
    let hash = put["PolicyHash"].as_str().unwrap().to_owned();
    let got = h
        .call_ctx(&other, "GetParameter", json!({"Name": b}))
        .await
        .unwrap();
    assert_eq!(got["Parameter"]["Value"], "shared-value");
    assert_eq!(got["Parameter"]["ARN"], b);
    let got = h
        .call_ctx(
            &other,
            "GetParameters",
            json!({"Names": [b, param_arn("/sh/c")]}),
        )
        .await;
    // /sh/c is not shared: the whole call is refused, as an unauthorized name is on AWS.
    assert_eq!(got.unwrap_err().code, "AccessDeniedException");
    let got = h
        .call_ctx(&other, "GetParameters", json!({"Names": [b]}))
        .await
        .unwrap();
    assert_eq!(names(&got, "Parameters"), vec!["/sh/b"]);
    // The policy allows reads only: history was not shared.
    let e = h
        .call_ctx(&other, "GetParameterHistory", json!({"Name": b}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    // Production: the other account's root is allowed by the policy through the authorizer.
    let got = h
        .call_ctx(&other_ctx(false), "GetParameter", json!({"Name": b}))
        .await
        .unwrap();
    assert_eq!(got["Parameter"]["Value"], "shared-value");
    let e = h
        .call_ctx(
            &other_ctx(false),
            "GetParameter",
            json!({"Name": param_arn("/sh/c")}),
        )
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");

    // Shared=true lists it for the other account only.
    let d = h
        .call_ctx(&other, "DescribeParameters", json!({"Shared": true}))
        .await
        .unwrap();
    assert_eq!(names(&d, "Parameters"), vec!["/sh/b"]);
    assert_eq!(d["Parameters"][0]["ARN"], b);
    let d = h.ok("DescribeParameters", json!({"Shared": true})).await;
    assert!(names(&d, "Parameters").is_empty());

    // Updates need the current hash.
    let wider = share_doc(
        &b,
        json!([
            "ssm:GetParameter",
            "ssm:GetParameters",
            "ssm:GetParameterHistory"
        ]),
    );
    let e = h
        .err(
            "PutResourcePolicy",
            json!({"ResourceArn": b, "Policy": wider, "PolicyId": id, "PolicyHash": "stale"}),
        )
        .await;
    assert_eq!(e.code, "ResourcePolicyConflictException");
    let updated = h
        .ok(
            "PutResourcePolicy",
            json!({"ResourceArn": b, "Policy": wider, "PolicyId": id, "PolicyHash": hash}),
        )
        .await;
    assert_eq!(updated["PolicyId"], id.as_str());
    let new_hash = updated["PolicyHash"].as_str().unwrap().to_owned();
    assert_ne!(new_hash, hash);
    h.call_ctx(&other, "GetParameterHistory", json!({"Name": b}))
        .await
        .unwrap();
    let list = h.ok("GetResourcePolicies", json!({"ResourceArn": b})).await;
    assert_eq!(list["Policies"].as_array().unwrap().len(), 1);
    assert_eq!(list["Policies"][0]["PolicyHash"], new_hash.as_str());
    // The other account cannot manage the policies.
    let e = h
        .call_ctx(&other, "GetResourcePolicies", json!({"ResourceArn": b}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");

    let e = h
        .err(
            "DeleteResourcePolicy",
            json!({"ResourceArn": b, "PolicyId": "nope", "PolicyHash": new_hash}),
        )
        .await;
    assert_eq!(e.code, "ResourcePolicyNotFoundException");
    let e = h
        .err(
            "DeleteResourcePolicy",
            json!({"ResourceArn": b, "PolicyId": id, "PolicyHash": hash}),
        )
        .await;
    assert_eq!(e.code, "ResourcePolicyConflictException");
    h.ok(
        "DeleteResourcePolicy",
        json!({"ResourceArn": b, "PolicyId": id, "PolicyHash": new_hash}),
    )
    .await;
    assert_eq!(
        h.call_ctx(&other, "GetParameter", json!({"Name": b}))
            .await
            .unwrap_err()
            .code,
        "AccessDeniedException"
    );
    let d = h
        .call_ctx(&other, "DescribeParameters", json!({"Shared": true}))
        .await
        .unwrap();
    assert!(names(&d, "Parameters").is_empty());

    // Deleting the parameter deletes its policies and shares.
    h.ok(
        "PutResourcePolicy",
        json!({"ResourceArn": b, "Policy": doc}),
    )
    .await;
    h.ok("DeleteParameter", json!({"Name": "/sh/b"})).await;
    assert!(
        h.store
            .list("ssm/shared/", None, 10)
            .await
            .unwrap()
            .is_empty()
    );
    h.ok(
        "PutParameter",
        json!({"Name": "/sh/b", "Value": "again", "Type": "String", "Tier": "Advanced"}),
    )
    .await;
    let list = h.ok("GetResourcePolicies", json!({"ResourceArn": b})).await;
    assert!(list["Policies"].as_array().unwrap().is_empty());
    assert_eq!(
        h.call_ctx(&other, "GetParameter", json!({"Name": b}))
            .await
            .unwrap_err()
            .code,
        "AccessDeniedException"
    );
}

// ----- public parameters ----------------------------------------------------------------------

#[tokio::test]
async fn public_parameters_are_readable_by_every_account_and_read_only() {
    let h = harness().await;
    h.ssm.set_public_parameters(
        crate::PublicParameters::parse(
            r#"{"/aws/service/global-infrastructure/regions/us-east-1": "us-east-1",
                "/aws/service/global-infrastructure/regions/eu-west-1": "eu-west-1",
                "/aws/service/ami/al2023": {"Value": "ami-0123456789abcdef0", "DataType": "aws:ec2:image"}}"#,
            0,
        )
        .unwrap(),
    );
    for ctx in [dev_ctx(), other_ctx(true), other_ctx(false)] {
        let got = h
            .call_ctx(
                &ctx,
                "GetParameter",
                json!({"Name": "/aws/service/global-infrastructure/regions/us-east-1"}),
            )
            .await
            .unwrap();
        assert_eq!(got["Parameter"]["Value"], "us-east-1");
        assert_eq!(
            got["Parameter"]["ARN"],
            "arn:aws:ssm:us-east-1::parameter/aws/service/global-infrastructure/regions/us-east-1"
        );
    }
    let by_path = h
        .ok(
            "GetParametersByPath",
            json!({"Path": "/aws/service/global-infrastructure/regions", "MaxResults": 1}),
        )
        .await;
    assert_eq!(
        names(&by_path, "Parameters"),
        vec!["/aws/service/global-infrastructure/regions/eu-west-1"]
    );
    let rest = h
        .ok(
            "GetParametersByPath",
            json!({"Path": "/aws/service/global-infrastructure/regions", "NextToken": by_path["NextToken"]}),
        )
        .await;
    assert_eq!(
        names(&rest, "Parameters"),
        vec!["/aws/service/global-infrastructure/regions/us-east-1"]
    );
    assert!(rest.get("NextToken").is_none());
    let all = h
        .ok(
            "GetParametersByPath",
            json!({"Path": "/aws/service", "Recursive": true}),
        )
        .await;
    assert_eq!(names(&all, "Parameters").len(), 3);
    let got = h
        .ok(
            "GetParameters",
            json!({"Names": ["/aws/service/ami/al2023", "/aws/service/none"]}),
        )
        .await;
    assert_eq!(got["Parameters"][0]["DataType"], "aws:ec2:image");
    assert_eq!(got["InvalidParameters"], json!(["/aws/service/none"]));
    let e = h
        .err(
            "PutParameter",
            json!({"Name": "/aws/service/ami/al2023", "Value": "x", "Type": "String", "Overwrite": true}),
        )
        .await;
    assert_eq!(e.code, "AccessDeniedException");
}

/// Creating different parameters at once contends only on the account's counts record: every
/// writer gets through (after retries), none gets `TooManyUpdates`.
#[tokio::test]
async fn concurrent_creates_of_different_parameters_all_succeed() {
    let h = Arc::new(harness().await);
    let mut tasks = Vec::new();
    for i in 0..32 {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            h.call(
                "PutParameter",
                json!({"Name": format!("/concurrent/p{i}"), "Value": "v", "Type": "String"}),
            )
            .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let listed = h
        .ok(
            "GetParametersByPath",
            json!({"Path": "/concurrent", "MaxResults": 10}),
        )
        .await;
    assert_eq!(listed["Parameters"].as_array().unwrap().len(), 10);
}
