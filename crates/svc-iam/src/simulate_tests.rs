//! The policy simulator through the IAM handler, over a real sealed store.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use citadel_api::{OperationInput, OperationOutput, Principal, RequestContext, ServiceHandler};
use citadel_barrier::RootKey;
use citadel_iam::IdentityStore;
use citadel_model::iam;
use citadel_store::{SealedStore, SqliteBackend};

use crate::Iam;

const ACCOUNT: &str = "111122223333";

struct Harness {
    iam: Iam,
    _dir: tempfile::TempDir,
}

async fn harness() -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let backend = SqliteBackend::open(dir.path()).await.unwrap();
    let store = Arc::new(SealedStore::new(Arc::new(backend)));
    let key = RootKey::from_bytes(&[7u8; 32]).unwrap();
    store.initialize_file(&key).await.unwrap();
    store.unseal_with_key(&key).await.unwrap();
    Harness {
        iam: Iam::new(Arc::new(IdentityStore::new(store))),
        _dir: dir,
    }
}

fn ctx() -> RequestContext {
    RequestContext {
        request_id: "req".into(),
        region: "us-east-1".into(),
        principal: Principal::root(ACCOUNT, "AKIDEXAMPLE"),
        source_ip: None,
        user_agent: None,
        dev_mode: false,
        secure_transport: true,
        authorized: Default::default(),
        called_via: None,
    }
}

impl Harness {
    async fn call(
        &self,
        op: &str,
        params: &[(&str, &str)],
    ) -> Result<String, citadel_api::AwsError> {
        let spec = iam::SPEC.operation(op).unwrap();
        let input = OperationInput::Query(
            params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        );
        match self.iam.handle(&ctx(), spec, input).await? {
            OperationOutput::QueryXml(x) => Ok(x),
            other => panic!("unexpected output {other:?}"),
        }
    }

    async fn err(&self, op: &str, params: &[(&str, &str)]) -> String {
        self.call(op, params).await.unwrap_err().code.to_string()
    }
}

/// The `<member>` bodies of `EvaluationResults`, in order.
fn results(xml: &str) -> Vec<String> {
    let inner = xml
        .split_once("<EvaluationResults>")
        .and_then(|(_, r)| r.rsplit_once("</EvaluationResults>"))
        .map(|(r, _)| r)
        .unwrap_or_default();
    // Results hold nested <member>s (MatchedStatements, MissingContextValues): split on the
    // result's first element instead.
    inner
        .split("<member><EvalActionName>")
        .skip(1)
        .map(str::to_owned)
        .collect()
}

fn decision(result: &str) -> &str {
    result
        .split_once("<EvalDecision>")
        .and_then(|(_, r)| r.split_once("</EvalDecision>"))
        .map(|(d, _)| d)
        .unwrap()
}

const ENCRYPT_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:Encrypt","Resource":"*"}]}"#;
const KMS_ALL: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#;
const DENY_DECRYPT: &str = r#"{"Version":"2012-10-17","Statement":[{"Sid":"NoDecrypt","Effect":"Deny","Action":"kms:Decrypt","Resource":"*"}]}"#;
const FROM_TEN: &str = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}"#;

#[tokio::test]
async fn custom_policy_allows_and_implicitly_denies() {
    let h = harness().await;
    let xml = h
        .call(
            "SimulateCustomPolicy",
            &[
                ("PolicyInputList.member.1", ENCRYPT_ONLY),
                ("ActionNames.member.1", "kms:Encrypt"),
                ("ActionNames.member.2", "kms:Decrypt"),
            ],
        )
        .await
        .unwrap();
    let r = results(&xml);
    assert_eq!(r.len(), 2, "{xml}");
    assert!(r[0].starts_with("kms:Encrypt<"), "{xml}");
    assert_eq!(decision(&r[0]), "allowed");
    assert!(
        r[0].contains("<SourcePolicyId>PolicyInputList.1</SourcePolicyId>"),
        "{xml}"
    );
    assert!(
        r[0].contains("<SourcePolicyType>IAM Policy</SourcePolicyType>"),
        "{xml}"
    );
    assert!(
        r[0].contains("<EvalResourceName>*</EvalResourceName>"),
        "{xml}"
    );
    assert_eq!(decision(&r[1]), "implicitDeny");
    assert!(!r[1].contains("SourcePolicyId"), "{xml}");
    assert!(xml.contains("<IsTruncated>false</IsTruncated>"), "{xml}");
}

#[tokio::test]
async fn explicit_deny_wins_and_names_its_policy() {
    let h = harness().await;
    let xml = h
        .call(
            "SimulateCustomPolicy",
            &[
                ("PolicyInputList.member.1", KMS_ALL),
                ("PolicyInputList.member.2", DENY_DECRYPT),
                ("ActionNames.member.1", "kms:Decrypt"),
                ("ActionNames.member.2", "kms:Encrypt"),
                (
                    "ResourceArns.member.1",
                    "arn:aws:kms:us-east-1:111122223333:key/k1",
                ),
            ],
        )
        .await
        .unwrap();
    let r = results(&xml);
    assert_eq!(decision(&r[0]), "explicitDeny", "{xml}");
    assert!(
        r[0].contains("<SourcePolicyId>PolicyInputList.2</SourcePolicyId>"),
        "{xml}"
    );
    assert_eq!(decision(&r[1]), "allowed", "{xml}");
    assert!(
        r[1].contains("<SourcePolicyId>PolicyInputList.1</SourcePolicyId>"),
        "{xml}"
    );
    assert!(
        r[1].contains(
            "<EvalResourceName>arn:aws:kms:us-east-1:111122223333:key/k1</EvalResourceName>"
        ),
        "{xml}"
    );
}

#[tokio::test]
async fn conditions_report_missing_keys_and_use_context_entries() {
    let h = harness().await;
    let base = [
        ("PolicyInputList.member.1", FROM_TEN),
        ("ActionNames.member.1", "s3:GetObject"),
    ];
    let xml = h.call("SimulateCustomPolicy", &base).await.unwrap();
    let r = results(&xml);
    assert_eq!(decision(&r[0]), "implicitDeny", "{xml}");
    assert!(
        r[0].contains("<MissingContextValues><member>aws:SourceIp</member></MissingContextValues>"),
        "{xml}"
    );

    let with_ip = |ip: &'static str| {
        let mut p = base.to_vec();
        p.push(("ContextEntries.member.1.ContextKeyName", "aws:SourceIp"));
        p.push(("ContextEntries.member.1.ContextKeyValues.member.1", ip));
        p.push(("ContextEntries.member.1.ContextKeyType", "ip"));
        p
    };
    let xml = h
        .call("SimulateCustomPolicy", &with_ip("10.1.2.3"))
        .await
        .unwrap();
    let r = results(&xml);
    assert_eq!(decision(&r[0]), "allowed", "{xml}");
    assert!(!r[0].contains("aws:SourceIp</member>"), "{xml}");
    let xml = h
        .call("SimulateCustomPolicy", &with_ip("192.0.2.1"))
        .await
        .unwrap();
    assert_eq!(decision(&results(&xml)[0]), "implicitDeny", "{xml}");

    // An action the conditioned statement does not cover reports no missing keys.
    let xml = h
        .call(
            "SimulateCustomPolicy",
            &[
                ("PolicyInputList.member.1", FROM_TEN),
                ("ActionNames.member.1", "s3:PutObject"),
            ],
        )
        .await
        .unwrap();
    assert!(!xml.contains("aws:SourceIp"), "{xml}");
}

#[tokio::test]
async fn bad_input_gets_aws_errors() {
    let h = harness().await;
    assert_eq!(
        h.err(
            "SimulateCustomPolicy",
            &[
                ("PolicyInputList.member.1", "{\"Statement\": 3}"),
                ("ActionNames.member.1", "kms:Encrypt"),
            ],
        )
        .await,
        "MalformedPolicyDocument"
    );
    assert_eq!(
        h.err(
            "SimulateCustomPolicy",
            &[
                ("PolicyInputList.member.1", ENCRYPT_ONLY),
                ("ActionNames.member.1", "kms:Encrypt"),
                ("ContextEntries.member.1.ContextKeyName", "aws:SourceIp"),
                (
                    "ContextEntries.member.1.ContextKeyValues.member.1",
                    "10.0.0.1"
                ),
                ("ContextEntries.member.1.ContextKeyType", "ipaddress"),
            ],
        )
        .await,
        "InvalidInput"
    );
    assert_eq!(
        h.err(
            "SimulateCustomPolicy",
            &[
                ("PolicyInputList.member.1", ENCRYPT_ONLY),
                ("ActionNames.member.1", "kms:Encrypt"),
                ("ContextEntries.member.1.ContextKeyName", "aws:SourceIp"),
                (
                    "ContextEntries.member.1.ContextKeyValues.member.1",
                    "not-an-ip"
                ),
                ("ContextEntries.member.1.ContextKeyType", "ip"),
            ],
        )
        .await,
        "InvalidInput"
    );
    assert_eq!(
        h.err(
            "SimulatePrincipalPolicy",
            &[
                ("PolicySourceArn", "arn:aws:iam::111122223333:user/nobody"),
                ("ActionNames.member.1", "kms:Encrypt"),
            ],
        )
        .await,
        "NoSuchEntity"
    );
    assert_eq!(
        h.err(
            "SimulatePrincipalPolicy",
            &[
                ("PolicySourceArn", "arn:aws:iam::111122223333:role/nobody"),
                ("ActionNames.member.1", "kms:Encrypt"),
            ],
        )
        .await,
        "NoSuchEntity"
    );
}

#[tokio::test]
async fn principal_policies_of_users_groups_and_roles() {
    let h = harness().await;
    h.call("CreateUser", &[("UserName", "alice")])
        .await
        .unwrap();
    h.call(
        "PutUserPolicy",
        &[
            ("UserName", "alice"),
            ("PolicyName", "encrypt"),
            ("PolicyDocument", ENCRYPT_ONLY),
        ],
    )
    .await
    .unwrap();
    h.call("CreateGroup", &[("GroupName", "ops")])
        .await
        .unwrap();
    h.call(
        "PutGroupPolicy",
        &[
            ("GroupName", "ops"),
            ("PolicyName", "no-decrypt"),
            ("PolicyDocument", DENY_DECRYPT),
        ],
    )
    .await
    .unwrap();
    h.call(
        "AddUserToGroup",
        &[("GroupName", "ops"), ("UserName", "alice")],
    )
    .await
    .unwrap();

    let alice = "arn:aws:iam::111122223333:user/alice";
    let xml = h
        .call(
            "SimulatePrincipalPolicy",
            &[
                ("PolicySourceArn", alice),
                ("ActionNames.member.1", "kms:Encrypt"),
                ("ActionNames.member.2", "kms:Decrypt"),
                ("ActionNames.member.3", "kms:Sign"),
            ],
        )
        .await
        .unwrap();
    let r = results(&xml);
    assert_eq!(decision(&r[0]), "allowed", "{xml}");
    assert!(
        r[0].contains(
            "<SourcePolicyId>encrypt</SourcePolicyId><SourcePolicyType>user</SourcePolicyType>"
        ),
        "{xml}"
    );
    assert_eq!(decision(&r[1]), "explicitDeny", "{xml}");
    assert!(
        r[1].contains(
            "<SourcePolicyId>no-decrypt</SourcePolicyId><SourcePolicyType>group</SourcePolicyType>"
        ),
        "{xml}"
    );
    assert_eq!(decision(&r[2]), "implicitDeny", "{xml}");

    // Extra policies in the request join the user's own.
    let xml = h
        .call(
            "SimulatePrincipalPolicy",
            &[
                ("PolicySourceArn", alice),
                ("PolicyInputList.member.1", KMS_ALL),
                ("ActionNames.member.1", "kms:Sign"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(decision(&results(&xml)[0]), "allowed", "{xml}");

    // A policy using ${aws:username} sees the user's name.
    let own_prefix = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::b/${aws:username}/*"}]}"#;
    let xml = h
        .call(
            "SimulatePrincipalPolicy",
            &[
                ("PolicySourceArn", alice),
                ("PolicyInputList.member.1", own_prefix),
                ("ActionNames.member.1", "s3:GetObject"),
                ("ResourceArns.member.1", "arn:aws:s3:::b/alice/x"),
                ("ResourceArns.member.2", "arn:aws:s3:::b/bob/x"),
            ],
        )
        .await
        .unwrap();
    let r = results(&xml);
    assert_eq!(decision(&r[0]), "allowed", "{xml}");
    assert_eq!(decision(&r[1]), "implicitDeny", "{xml}");

    // The group on its own.
    let xml = h
        .call(
            "SimulatePrincipalPolicy",
            &[
                ("PolicySourceArn", "arn:aws:iam::111122223333:group/ops"),
                ("ActionNames.member.1", "kms:Decrypt"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(decision(&results(&xml)[0]), "explicitDeny", "{xml}");

    // A role with an inline policy.
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:root"},"Action":"sts:AssumeRole"}]}"#;
    h.call(
        "CreateRole",
        &[("RoleName", "worker"), ("AssumeRolePolicyDocument", trust)],
    )
    .await
    .unwrap();
    h.call(
        "PutRolePolicy",
        &[
            ("RoleName", "worker"),
            ("PolicyName", "kms"),
            ("PolicyDocument", KMS_ALL),
        ],
    )
    .await
    .unwrap();
    let xml = h
        .call(
            "SimulatePrincipalPolicy",
            &[
                ("PolicySourceArn", "arn:aws:iam::111122223333:role/worker"),
                ("ActionNames.member.1", "kms:Decrypt"),
                ("ActionNames.member.2", "s3:GetObject"),
            ],
        )
        .await
        .unwrap();
    let r = results(&xml);
    assert_eq!(decision(&r[0]), "allowed", "{xml}");
    assert!(
        r[0].contains("<SourcePolicyType>role</SourcePolicyType>"),
        "{xml}"
    );
    assert_eq!(decision(&r[1]), "implicitDeny", "{xml}");
}

#[tokio::test]
async fn boundaries_resource_policies_and_paging() {
    let h = harness().await;
    let xml = h
        .call(
            "SimulateCustomPolicy",
            &[
                ("PolicyInputList.member.1", KMS_ALL),
                ("PermissionsBoundaryPolicyInputList.member.1", ENCRYPT_ONLY),
                ("ActionNames.member.1", "kms:Encrypt"),
                ("ActionNames.member.2", "kms:Decrypt"),
            ],
        )
        .await
        .unwrap();
    let r = results(&xml);
    assert_eq!(decision(&r[0]), "allowed", "{xml}");
    assert!(
        r[0].contains("<AllowedByPermissionsBoundary>true</AllowedByPermissionsBoundary>"),
        "{xml}"
    );
    assert_eq!(decision(&r[1]), "implicitDeny", "{xml}");
    assert!(
        r[1].contains("<AllowedByPermissionsBoundary>false</AllowedByPermissionsBoundary>"),
        "{xml}"
    );

    // A resource policy granting the caller allows without any identity policy.
    let bucket_policy = r#"{"Version":"2012-10-17","Statement":[{"Sid":"Alice","Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::b/*"}]}"#;
    let xml = h
        .call(
            "SimulateCustomPolicy",
            &[
                ("PolicyInputList.member.1", ENCRYPT_ONLY),
                ("ResourcePolicy", bucket_policy),
                ("ResourceOwner", ACCOUNT),
                ("CallerArn", "arn:aws:iam::111122223333:user/alice"),
                ("ActionNames.member.1", "s3:GetObject"),
                ("ResourceArns.member.1", "arn:aws:s3:::b/k"),
            ],
        )
        .await
        .unwrap();
    let r = results(&xml);
    assert_eq!(decision(&r[0]), "allowed", "{xml}");
    assert!(
        r[0].contains("<SourcePolicyId>ResourcePolicy</SourcePolicyId>"),
        "{xml}"
    );

    // Cross-account: the caller's own policies must allow too, and the details say so.
    let xml = h
        .call(
            "SimulateCustomPolicy",
            &[
                ("PolicyInputList.member.1", ENCRYPT_ONLY),
                (
                    "ResourcePolicy",
                    &bucket_policy.replace("user/alice", "root"),
                ),
                ("ResourceOwner", "444455556666"),
                ("CallerArn", "arn:aws:iam::111122223333:user/alice"),
                ("ActionNames.member.1", "s3:GetObject"),
                ("ResourceArns.member.1", "arn:aws:s3:::b/k"),
            ],
        )
        .await
        .unwrap();
    let r = results(&xml);
    assert_eq!(decision(&r[0]), "implicitDeny", "{xml}");
    assert!(
        r[0].contains("<key>IAM Policy</key><value>implicitDeny</value>"),
        "{xml}"
    );
    assert!(
        r[0].contains("<key>Resource Policy</key><value>allowed</value>"),
        "{xml}"
    );

    // Paging over action × resource pairs.
    let page = |marker: Option<&'static str>| {
        let mut p = vec![
            ("PolicyInputList.member.1", ENCRYPT_ONLY),
            ("ActionNames.member.1", "kms:Encrypt"),
            ("ActionNames.member.2", "kms:Decrypt"),
            (
                "ResourceArns.member.1",
                "arn:aws:kms:us-east-1:111122223333:key/a",
            ),
            (
                "ResourceArns.member.2",
                "arn:aws:kms:us-east-1:111122223333:key/b",
            ),
            ("MaxItems", "3"),
        ];
        if let Some(m) = marker {
            p.push(("Marker", m));
        }
        p
    };
    let xml = h.call("SimulateCustomPolicy", &page(None)).await.unwrap();
    assert_eq!(results(&xml).len(), 3, "{xml}");
    assert!(
        xml.contains("<IsTruncated>true</IsTruncated><Marker>3</Marker>"),
        "{xml}"
    );
    let xml = h
        .call("SimulateCustomPolicy", &page(Some("3")))
        .await
        .unwrap();
    let r = results(&xml);
    assert_eq!(r.len(), 1, "{xml}");
    assert!(r[0].starts_with("kms:Decrypt<"), "{xml}");
    assert!(r[0].contains("key/b</EvalResourceName>"), "{xml}");
    assert!(xml.contains("<IsTruncated>false</IsTruncated>"), "{xml}");
    assert_eq!(
        h.err("SimulateCustomPolicy", &page(Some("9"))).await,
        "InvalidInput"
    );
}
