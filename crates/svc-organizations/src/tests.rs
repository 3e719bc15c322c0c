use std::sync::Arc;

use citadel_api::Principal;
use citadel_model::all_specs;

use super::*;

const MGMT: &str = "000000000000";

async fn service() -> (Organizations, Arc<IdentityStore>, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let backend = citadel_store::SqliteBackend::open(dir.path().join("db"))
        .await
        .unwrap();
    let store = Arc::new(SealedStore::new(Arc::new(backend)));
    let key = citadel_barrier::RootKey::generate().unwrap();
    store.initialize_file(&key).await.unwrap();
    store.unseal_with_key(&key).await.unwrap();
    let identities = Arc::new(IdentityStore::new(store.clone()));
    (
        Organizations::new(store, identities.clone(), MGMT),
        identities,
        dir,
    )
}

fn ctx(account: &str) -> RequestContext {
    RequestContext {
        request_id: "r".into(),
        region: "us-east-1".into(),
        principal: Principal::root(account, "AKIA"),
        source_ip: None,
        user_agent: None,
        dev_mode: false,
        secure_transport: true,
        authorized: Default::default(),
        called_via: None,
    }
}

fn op(name: &str) -> &'static OperationSpec {
    let spec = all_specs()
        .iter()
        .find(|s| s.name == "organizations")
        .unwrap();
    spec.operations.iter().find(|o| o.name == name).unwrap()
}

async fn call(
    s: &Organizations,
    account: &str,
    name: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value, AwsError> {
    let input = OperationInput::Json(serde_json::to_vec(&body).unwrap().into());
    match s.handle(&ctx(account), op(name), input).await? {
        OperationOutput::Json(v) => Ok(v),
        OperationOutput::QueryXml(_) => panic!("not JSON"),
    }
}

#[test]
fn account_ids_are_twelve_digits() {
    for _ in 0..100 {
        let id = random_account_id().unwrap();
        assert_eq!(id.len(), 12);
        assert!(id.bytes().all(|b| b.is_ascii_digit()));
    }
}

#[tokio::test]
async fn create_describe_list() {
    let (s, identities, _dir) = service().await;
    let out = call(
        &s,
        MGMT,
        "CreateAccount",
        serde_json::json!({"Email": "dev@example.com", "AccountName": "dev"}),
    )
    .await
    .unwrap();
    let status = &out["CreateAccountStatus"];
    assert_eq!(status["State"], "SUCCEEDED");
    let id = status["AccountId"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 12);
    let req = status["Id"].as_str().unwrap();
    assert!(req.starts_with("car-"));

    let again = call(
        &s,
        MGMT,
        "DescribeCreateAccountStatus",
        serde_json::json!({"CreateAccountRequestId": req}),
    )
    .await
    .unwrap();
    assert_eq!(again["CreateAccountStatus"]["AccountId"], id.as_str());

    let d = call(
        &s,
        MGMT,
        "DescribeAccount",
        serde_json::json!({"AccountId": id}),
    )
    .await
    .unwrap();
    assert_eq!(d["Account"]["Name"], "dev");
    assert_eq!(d["Account"]["Email"], "dev@example.com");

    let l = call(&s, MGMT, "ListAccounts", serde_json::json!({}))
        .await
        .unwrap();
    let ids: Vec<_> = l["Accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["Id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, vec![MGMT.to_owned(), id.clone()]);

    let o = call(&s, MGMT, "DescribeOrganization", serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(o["Organization"]["MasterAccountId"], MGMT);

    // The access role exists in the new account, trusting the management root.
    let role = identities.get_role(&id, DEFAULT_ROLE_NAME).await.unwrap();
    assert!(
        role.assume_role_policy
            .contains("arn:aws:iam::000000000000:root")
    );

    // The same email again fails as AWS reports it.
    let dup = call(
        &s,
        MGMT,
        "CreateAccount",
        serde_json::json!({"Email": "DEV@example.com", "AccountName": "dev2"}),
    )
    .await
    .unwrap();
    assert_eq!(dup["CreateAccountStatus"]["State"], "FAILED");
    assert_eq!(
        dup["CreateAccountStatus"]["FailureReason"],
        "EMAIL_ALREADY_EXISTS"
    );

    // Member accounts may not use Organizations.
    let e = call(&s, &id, "ListAccounts", serde_json::json!({}))
        .await
        .unwrap_err();
    assert_eq!(e.code, "AccessDeniedException");
    let e = call(
        &s,
        MGMT,
        "DescribeAccount",
        serde_json::json!({"AccountId": "123456789012"}),
    )
    .await
    .unwrap_err();
    assert_eq!(e.code, "AccountNotFoundException");
}
