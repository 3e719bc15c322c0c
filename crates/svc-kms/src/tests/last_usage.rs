//! GetKeyLastUsage: the last successful cryptographic use, kept in memory, written by the
//! scheduler's flush and read back by a fresh instance.

use super::*;

#[tokio::test]
async fn last_usage_names_the_last_cryptographic_operation_and_its_request() {
    let h = harness().await;
    let k = h.create().await;
    let created =
        h.ok("DescribeKey", json!({"KeyId": k})).await["KeyMetadata"]["CreationDate"].clone();
    let u = h.ok("GetKeyLastUsage", json!({"KeyId": k})).await;
    assert_eq!(u["KeyId"], k.as_str());
    assert!(u.get("KeyLastUsage").is_none(), "{u}");
    assert_eq!(u["KeyCreationDate"], created);
    assert_eq!(u["TrackingStartDate"], created);

    let blob = h.encrypt(&k, b"x", json!({})).await;
    h.decrypt(&blob, json!({})).await.unwrap();
    // Management calls and failed calls are not uses.
    h.ok("DescribeKey", json!({"KeyId": k})).await;
    h.decrypt(&blob, json!({"wrong": "context"}))
        .await
        .unwrap_err();
    let u = h.ok("GetKeyLastUsage", json!({"KeyId": arn(&k)})).await;
    let last = &u["KeyLastUsage"];
    assert_eq!(last["Operation"], "Decrypt", "{u}");
    assert_eq!(last["KmsRequestId"], "req");
    assert_eq!(
        last["CloudTrailEventId"],
        citadel_api::cloudtrail_event_id("req").as_str()
    );
    assert!(last["Timestamp"].is_number());

    let e = h
        .err("GetKeyLastUsage", json!({"KeyId": "alias/anything"}))
        .await;
    assert_eq!(e.code, "ValidationException");

    // Written by the flush, so another instance (another node, a restart) sees it.
    h.kms.flush_last_usage().await.unwrap();
    let fresh = Kms::with_clock(h.store.clone(), h.authorizer.clone(), h.clock.clone());
    let spec = citadel_model::kms::SPEC
        .operation("GetKeyLastUsage")
        .unwrap();
    let body = json!({"KeyId": k});
    let OperationOutput::Json(v) = fresh
        .handle(
            &ctx(ACCOUNT),
            spec,
            OperationInput::Json(Bytes::from(body.to_string())),
        )
        .await
        .unwrap()
    else {
        panic!("not JSON")
    };
    assert_eq!(v["KeyLastUsage"]["Operation"], "Decrypt", "{v}");
}
